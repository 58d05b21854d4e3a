/**
 * Serving secrets (SPEC §2.5): every `{cipher}` string of a merged configuration is
 * decrypted for a caller allowed `secrets:read` on the application, and replaced by
 * `"<redacted>"` for anyone else. The names of the secret keys (never their values) go
 * into the audit event either way.
 *
 * "Every" means anywhere: a property's own value, an item of a list value, a value inside
 * a map inside a list, at any depth. Only whole strings count: a value that merely
 * contains `{cipher}` later in the text is an ordinary string.
 *
 * Fail closed: one value that cannot be decrypted fails the whole request with
 * `CFG_ERR_SECRET_DECRYPT_FAILED` (422) naming its key, the document it is written in
 * and its key id. A lower layer's value for that key is never served instead; nothing is
 * served.
 *
 * Bindings: every value is decrypted with the binding of the document it is written in
 * (`app:<app>` or `shared`, from the property's origin), so a bound value copied into
 * another application's document fails ("bound to another application").
 *
 * Placeholders over secrets: {@link secretsStep} is the step `AppConfigReader.readRendered`
 * runs; its `compose` gives a secret's plaintext to a value that puts it inside a longer
 * text (decrypt mode), and `apply` counts such values as secret keys.
 */
import type { SecretSource } from '../config/placeholders.js';
import { compareTokens, formatPropertyName, type NameToken } from '../config/paths.js';
import type { SecretsApplyContext, SecretsResult, SecretsStep } from '../config/secrets-step.js';
import { isNumberLiteral } from '../config/values.js';
import type { MergedConfig, MergedProperty, Origin, PropertySource, PropertyValue, TreeValue } from '../config/types.js';
import { decryptValue, isCipherText, openValue, type DecryptContext, type DecryptionKeys, type SecretBinding } from './envelope.js';

/** What a caller gets for secret values: the plaintext, or {@link REDACTED}. */
export type SecretsMode = 'decrypt' | 'redact';

/**
 * The mode of a {@link secretsStep}: `decrypt` and `redact` as {@link SecretsMode};
 * `explain` redacts like `redact`, and also masks values that compose a secret instead of
 * refusing them (an explanation is for reading precedence, never secrets).
 */
export type SecretsStepMode = SecretsMode | 'explain';

/** The value every secret is replaced by in `redact` mode. */
export const REDACTED = '<redacted>';

/** The keys a step decrypts with, and setting `secrets.requireBinding`. */
export type StepKeys = DecryptionKeys & { readonly requireBinding?: boolean };

/** The result of {@link applySecrets}. */
export interface AppliedSecrets {
  /** The configuration with every `{cipher}` value decrypted or redacted; same key order. */
  readonly config: MergedConfig;
  /**
   * The flattened Spring names of the secret values (`db.password`, `hosts[1]`,
   * `users[0].token`), sorted as the `properties` output sorts names (element by
   * element; list indices numerically). Empty when there is none.
   */
  readonly secretKeys: string[];
  /** Ids of the keys that decrypted the values, sorted, each once; `[]` in `redact` mode. */
  readonly secretKeyIds: string[];
}

/** Called for every string leaf; returns the leaf to serve (`text` itself when unchanged). */
type Visit = (text: string, tokens: readonly NameToken[]) => string;

/** Maps every string under `value` through `visit`; returns `value` itself when nothing changed. */
function walk(value: TreeValue, tokens: NameToken[], visit: Visit): TreeValue {
  if (typeof value === 'string') return visit(value, tokens);
  if (Array.isArray(value)) {
    let changed = false;
    const out = (value as readonly TreeValue[]).map((item, i) => {
      const next = walk(item, [...tokens, { index: i }], visit);
      if (next !== item) changed = true;
      return next;
    });
    return changed ? out : value;
  }
  if (typeof value === 'object' && value !== null && !isNumberLiteral(value)) {
    const map = value as { readonly [key: string]: TreeValue };
    let changed = false;
    const out: Array<[string, TreeValue]> = Object.keys(map).map((k) => {
      const item = map[k] as TreeValue;
      const next = walk(item, [...tokens, k], visit);
      if (next !== item) changed = true;
      return [k, next];
    });
    // Object.fromEntries defines own data properties, so a key named `__proto__` is safe.
    return changed ? Object.fromEntries(out) : value;
  }
  return value;
}

function sortNames(found: Array<readonly NameToken[]>): string[] {
  return [...found].sort(compareTokens).map(formatPropertyName);
}

/**
 * The flattened names of the `{cipher}` values of `config` (see
 * {@link AppliedSecrets.secretKeys} for order), without decrypting anything.
 * Never throws.
 */
export function secretKeysOf(config: MergedConfig): string[] {
  const found: Array<readonly NameToken[]> = [];
  for (const p of config.values()) {
    walk(p.value as TreeValue, [...p.path], (text, tokens) => {
      if (isCipherText(text)) found.push(tokens);
      return text;
    });
  }
  return sortNames(found);
}

/** Decrypts with one keyring for one request: remembers plaintexts (per binding) and the key ids used. */
class Opener {
  readonly #keys: StepKeys;
  readonly #memo = new Map<string, { plaintext: string; keyId: string }>();
  readonly ids = new Set<string>();

  constructor(keys: StepKeys) {
    this.#keys = keys;
  }

  /** The plaintext of `text` written at `origin` under key `key`; `binding` absent: not checked. */
  open(text: string, key: string, origin: Origin, binding: SecretBinding | undefined): string {
    const memoKey = `${binding ?? ''}\0${text}`;
    let hit = this.#memo.get(memoKey);
    if (hit === undefined) {
      const at: DecryptContext = {
        key,
        document: origin.document,
        ...(origin.line !== undefined && { line: origin.line, column: origin.column ?? 1 }),
        ...(binding !== undefined && { binding }),
        requireBinding: this.#keys.requireBinding === true,
      };
      const opened = openValue(text, this.#keys, at);
      hit = { plaintext: opened.plaintext, keyId: opened.keyId };
      this.#memo.set(memoKey, hit);
    }
    this.ids.add(hit.keyId);
    return hit.plaintext;
  }

  sortedIds(): string[] {
    return [...this.ids].sort();
  }
}

/**
 * The secrets step of one request, for `AppConfigReader.readRendered` (SPEC §2.5):
 *
 * - `decrypt` (a caller allowed `secrets:read`): every secret is decrypted, checked
 *   against the binding of the document it is written in; a value that puts a secret
 *   inside a longer text gets its plaintext (`compose`) and counts as a secret key.
 * - `redact` (anyone else): every secret is `"<redacted>"`; a value that puts a secret
 *   inside a longer text is refused (no `compose`: CFG_ERR_SECRET_REFERENCE).
 * - `explain`: as `redact`, but such a value is served as `"<redacted>"` too.
 *
 * One step per request: it remembers the key ids used (`secretKeyIds`) and decrypts
 * each (binding, value) once.
 *
 * @param mode - see {@link SecretsStepMode}.
 * @param keys - the keyring (`requireBinding` from the settings).
 */
export function secretsStep(mode: SecretsStepMode, keys: StepKeys): SecretsStep {
  const opener = new Opener(keys);
  const compose =
    mode === 'decrypt'
      ? (secret: SecretSource, _key: string, binding: SecretBinding): string => opener.open(secret.text, secret.key, secret.origin, binding)
      : mode === 'explain'
        ? (secret: SecretSource): string => secret.text
        : undefined;
  return {
    isSecret: isCipherText,
    ...(compose !== undefined && { compose }),
    apply: (config, context) => applyStep(config, mode, opener, context),
  };
}

function applyStep(config: MergedConfig, mode: SecretsStepMode, opener: Opener, context: Partial<SecretsApplyContext>): SecretsResult {
  const found: Array<readonly NameToken[]> = [];
  const composed = context.composed ?? new Map<string, readonly string[]>();
  const copies = context.copies ?? new Map<string, SecretSource>();
  const out = new Map<string, MergedProperty>();
  for (const [k, p] of config) {
    const visit: Visit = (text, tokens) => {
      if (composed.size > 0 && composed.has(formatPropertyName(tokens))) {
        found.push(tokens);
        return mode === 'decrypt' ? text : REDACTED;
      }
      if (!isCipherText(text)) return text;
      found.push(tokens);
      if (mode !== 'decrypt') return REDACTED;
      const name = formatPropertyName(tokens);
      // A copy is decrypted as written in the secret's own document.
      const copy = copies.get(name);
      const source = copy === undefined ? { key: name, origin: p.origin } : { key: copy.key, origin: copy.origin };
      const binding = context.bindingOf?.(source.origin.document);
      return opener.open(text, source.key, source.origin, binding);
    };
    const value = walk(p.value as TreeValue, [...p.path], visit) as PropertyValue;
    out.set(k, value === p.value ? p : { ...p, value });
  }
  return { config: out, secretKeys: sortNames(found), secretKeyIds: opener.sortedIds() };
}

/**
 * Decrypts (`decrypt`) or redacts (`redact`) every `{cipher}` value of a merged
 * configuration (SPEC §2.5). Decrypted values are strings (as Spring Cloud Config serves
 * them); nothing else changes, and properties without secrets are the same objects.
 * Errors name the key and the document of the property's origin.
 *
 * @param config - the merge result.
 * @param mode - `decrypt` for a caller allowed `secrets:read` on the app and profiles,
 *   else `redact`.
 * @param keys - the keys (only used in `decrypt` mode).
 * @param context.bindingOf - the binding of a document; absent: bindings are not checked
 *   (tooling and tests; the routes always check, through {@link secretsStep}).
 * @returns the new configuration, the secret key names and the key ids used.
 * @throws CFG_ERR_SECRET_DECRYPT_FAILED (422, `secret_decrypt_failed`), `decrypt` mode
 *   only, for the first value (in key order) that cannot be decrypted, naming its
 *   flattened key, document and key id; `data: { key, keyId, reason, document, ... }`.
 *   Fails closed.
 */
export function applySecrets(config: MergedConfig, mode: SecretsMode, keys: StepKeys, context: Partial<SecretsApplyContext> = {}): AppliedSecrets {
  return applyStep(config, mode, new Opener(keys), context);
}

/** The result of {@link applySecretsToSource}. */
export interface AppliedSourceSecrets {
  readonly source: PropertySource;
  /** Flattened names of the secret values of this source, sorted as in {@link AppliedSecrets}. */
  readonly secretKeys: string[];
  /** Ids of the keys that decrypted them, sorted, each once; `[]` in `redact` mode. */
  readonly secretKeyIds: string[];
}

/**
 * {@link applySecrets} for one property source (the Spring route's per-document
 * `propertySources`, SPEC §5.3): each entry's value is decrypted or redacted, checked
 * against `bindingOf` its document; `null` entries (unsets) stay. Placeholders are not
 * resolved here (Spring clients resolve them). Errors as {@link applySecrets}.
 */
export function applySecretsToSource(
  source: PropertySource,
  mode: SecretsMode,
  keys: StepKeys,
  bindingOf?: (document: string) => SecretBinding,
): AppliedSourceSecrets {
  const found: Array<readonly NameToken[]> = [];
  const opener = new Opener(keys);
  const entries = source.entries.map((e) => {
    if (e.value === null) return e;
    const visit: Visit = (text, tokens) => {
      if (!isCipherText(text)) return text;
      found.push(tokens);
      return mode === 'decrypt' ? opener.open(text, formatPropertyName(tokens), e.origin, bindingOf?.(e.origin.document)) : REDACTED;
    };
    const value = walk(e.value as TreeValue, [...e.path], visit) as PropertyValue;
    return value === e.value ? e : { ...e, value };
  });
  return { source: { name: source.name, entries }, secretKeys: sortNames(found), secretKeyIds: opener.sortedIds() };
}

/**
 * {@link applySecrets} for an already flattened map (`{ "db.password": "{cipher}..." }`,
 * the `source` object of a Spring property source): each `{cipher}` string value is
 * decrypted or redacted under its own (flattened) name; other values are copied as they
 * are. Returns a new object with the same key order, and the secret names sorted by code
 * units. Errors as {@link applySecrets}.
 */
export function applySecretsToFlatMap<V>(source: Readonly<Record<string, V>>, mode: SecretsMode, keyring: DecryptionKeys): { source: Record<string, V | string>; secretKeys: string[] } {
  const names: string[] = [];
  const out: Array<[string, V | string]> = Object.keys(source).map((name) => {
    const v = source[name] as V;
    if (!isCipherText(v)) return [name, v];
    names.push(name);
    return [name, mode === 'decrypt' ? decryptValue(v, keyring, name) : REDACTED];
  });
  return { source: Object.fromEntries(out), secretKeys: names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)) };
}
