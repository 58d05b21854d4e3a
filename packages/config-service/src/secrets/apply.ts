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
 * `CFG_ERR_SECRET_DECRYPT_FAILED` (422) naming its key and key id. A lower layer's value
 * for that key is never served instead; nothing is served.
 */
import { compareTokens, formatPropertyName, type NameToken } from '../config/paths.js';
import { isNumberLiteral } from '../config/values.js';
import type { MergedConfig, MergedProperty, PropertySource, PropertyValue, TreeValue } from '../config/types.js';
import { decryptValue, isCipherText, type DecryptionKeys } from './envelope.js';

/** What a caller gets for secret values: the plaintext, or {@link REDACTED}. */
export type SecretsMode = 'decrypt' | 'redact';

/** The value every secret is replaced by in `redact` mode. */
export const REDACTED = '<redacted>';

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
}

type Visit = (text: string, tokens: readonly NameToken[]) => string;

/** Maps every `{cipher}` string under `value`; returns `value` itself when nothing changed. */
function walk(value: TreeValue, tokens: NameToken[], visit: Visit): TreeValue {
  if (typeof value === 'string') return isCipherText(value) ? visit(value, tokens) : value;
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
      found.push(tokens);
      return text;
    });
  }
  return sortNames(found);
}

function visitor(mode: SecretsMode, keyring: DecryptionKeys, found: Array<readonly NameToken[]>): Visit {
  return (text, tokens) => {
    found.push(tokens);
    return mode === 'decrypt' ? decryptValue(text, keyring, formatPropertyName(tokens)) : REDACTED;
  };
}

/**
 * Decrypts (`decrypt`) or redacts (`redact`) every `{cipher}` value of a merged
 * configuration (SPEC §2.5). Decrypted values are strings (as Spring Cloud Config serves
 * them); nothing else changes, and properties without secrets are the same objects.
 *
 * @param config - the merge result.
 * @param mode - `decrypt` for a caller allowed `secrets:read` on the app and profiles,
 *   else `redact`.
 * @param keyring - the keys (only used in `decrypt` mode).
 * @returns the new configuration and the secret key names.
 * @throws CFG_ERR_SECRET_DECRYPT_FAILED (422, `secret_decrypt_failed`), `decrypt` mode
 *   only, for the first value (in key order) that cannot be decrypted, naming its
 *   flattened key and key id; `data: { key, keyId, reason }`. Fails closed.
 */
export function applySecrets(config: MergedConfig, mode: SecretsMode, keyring: DecryptionKeys): AppliedSecrets {
  const found: Array<readonly NameToken[]> = [];
  const visit = visitor(mode, keyring, found);
  const out = new Map<string, MergedProperty>();
  for (const [k, p] of config) {
    const value = walk(p.value as TreeValue, [...p.path], visit) as PropertyValue;
    out.set(k, value === p.value ? p : { ...p, value });
  }
  return { config: out, secretKeys: sortNames(found) };
}

/** The result of {@link applySecretsToSource}. */
export interface AppliedSourceSecrets {
  readonly source: PropertySource;
  /** Flattened names of the secret values of this source, sorted as in {@link AppliedSecrets}. */
  readonly secretKeys: string[];
}

/**
 * {@link applySecrets} for one property source (the Spring route's per-document
 * `propertySources`, SPEC §5.3): each entry's value is decrypted or redacted; `null`
 * entries (unsets) stay. Errors as {@link applySecrets}.
 */
export function applySecretsToSource(source: PropertySource, mode: SecretsMode, keyring: DecryptionKeys): AppliedSourceSecrets {
  const found: Array<readonly NameToken[]> = [];
  const visit = visitor(mode, keyring, found);
  const entries = source.entries.map((e) => {
    if (e.value === null) return e;
    const value = walk(e.value as TreeValue, [...e.path], visit) as PropertyValue;
    return value === e.value ? e : { ...e, value };
  });
  return { source: { name: source.name, entries }, secretKeys: sortNames(found) };
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
