/**
 * The contract between the serving pipeline (`AppConfigReader.readRendered`) and the
 * secrets step (SPEC §2.5). `config/` never decrypts: the routes hand in a
 * {@link SecretsStep} made by `secrets/` (`secretsStep`), and this folder only says
 * where each secret was written and which binding that place gives.
 *
 * Bindings (docs/secrets.md, "Binding"): a value bound to an application decrypts only
 * when it is read from that application's own documents; a value bound to `shared` only
 * from the shared `application*` documents at the repository root.
 */
import type { SecretBinding } from '../secrets/binding.js';
import type { SecretSource } from './placeholders.js';
import type { MergedConfig } from './types.js';

/** What {@link SecretsStep.apply} is told about the resolved configuration. */
export interface SecretsApplyContext {
  /** The binding of a document, by its path from the repository root (see {@link documentBinding}). */
  bindingOf(document: string): SecretBinding;
  /**
   * Values that are a whole copy of one secret, by flattened name: the secret copied.
   * Their value is its `{cipher}` text; it is decrypted as written in the secret's own
   * document (its binding, its file in errors).
   */
  readonly copies: ReadonlyMap<string, SecretSource>;
  /**
   * Values with a secret composed into a longer text, by flattened name: the secret keys
   * they hold. Their value is final (the step's `compose` made it); it is served as it
   * is (or masked) and counts as a secret key.
   */
  readonly composed: ReadonlyMap<string, readonly string[]>;
}

/** The result of {@link SecretsStep.apply}. */
export interface SecretsResult {
  /** The configuration with every secret decrypted or redacted; same keys, same order. */
  readonly config: MergedConfig;
  /**
   * Flattened names of the values that are or carry a secret (never values), sorted as
   * the `properties` output sorts names; for the audit event.
   */
  readonly secretKeys: string[];
  /** Ids of the keys used to decrypt what is served, sorted, each once; `[]` when nothing was decrypted. */
  readonly secretKeyIds: string[];
}

/**
 * The secrets step of one request (decrypt for a caller allowed `secrets:read`, redact
 * for anyone else, mask for `explain=true`). Made by `secrets/apply.ts` `secretsStep`.
 */
export interface SecretsStep {
  /** True for a secret value (`{cipher}` text). */
  isSecret(text: string): boolean;
  /**
   * The text put where a placeholder places `secret` inside a longer value of key `key`:
   * the plaintext (decrypt), or the `{cipher}` text (mask; the value is then masked by
   * {@link apply}). Absent (redact): such a value is refused with CFG_ERR_SECRET_REFERENCE.
   *
   * @param binding - the binding of the document the secret is written in.
   * @throws CFG_ERR_SECRET_DECRYPT_FAILED (422) naming the secret's key, file and key id.
   */
  readonly compose?: (secret: SecretSource, key: string, binding: SecretBinding) => string;
  /**
   * Decrypts or redacts every secret of the (resolved) configuration, leaves composed
   * values as they are (masked in mask mode), and lists the secret keys and key ids.
   *
   * @throws CFG_ERR_SECRET_DECRYPT_FAILED (422) for the first secret (in key order) that
   *   cannot be decrypted (decrypt mode only), naming its key, file and key id.
   */
  apply(config: MergedConfig, context: SecretsApplyContext): SecretsResult;
}

const SHARED_DOCUMENT = /^application(?:-[^/]*)?\.(?:yml|yaml|json|properties)$/;

/**
 * The binding a document gives the secrets written in it, for a read of application
 * `app` (both layouts, SPEC §2):
 *
 * - a file at the repository root named `application.<ext>` or `application-<profile>.<ext>`
 *   is a shared document: `shared`;
 * - any other document read for `app` is the application's own: `app:<app>`
 *   (`<app>/application*.<ext>` in the `folders` layout; `<app>.<ext>` and
 *   `<app>-<profile>.<ext>` in the `spring` layout).
 *
 * @param app - the application the documents are read for (a valid name).
 * @param document - the document path from the repository root (`orders/application.yml`).
 */
export function documentBinding(app: string, document: string): SecretBinding {
  if (!document.includes('/') && SHARED_DOCUMENT.test(document)) return 'shared';
  return `app:${app}`;
}
