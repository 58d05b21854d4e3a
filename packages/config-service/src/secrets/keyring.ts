/**
 * The secrets keyring (SPEC §2.5, settings `secrets`): the RSA keys that wrap and unwrap
 * the data keys of `{cipher}` values, by id, and the key `POST /v1/encrypt` uses.
 *
 * Rotation: several keys live side by side. A value names its key inside its payload
 * (and in its `{key:<id>}` prefix), so values encrypted with an old key keep decrypting
 * as long as that key's private key stays configured, while `encryptKey` points new
 * values at the new key. See docs/secrets.md for the steps.
 */
import { readFileSync } from 'node:fs';
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { CFG_ERR_SETTINGS_INVALID, CFG_ERR_SECRET_KEY_UNKNOWN, withData } from '../errors.js';
import type { Settings } from '../settings/schema.js';
import { KEY_ID_PATTERN, type DecryptionKeys, type EncryptionKey } from './envelope.js';

/** Smallest RSA modulus accepted, bits (NIST SP 800-57 Part 1: 112-bit security). */
export const MIN_RSA_BITS = 2048;

/** One key of the keyring. */
export interface KeyringEntry {
  readonly id: string;
  /** RSA public key; derived from the private key when only that is configured. */
  readonly publicKey: KeyObject;
  /** RSA private key; absent for an encrypt-only key. */
  readonly privateKey?: KeyObject;
  /** Modulus length, bits (≥ {@link MIN_RSA_BITS}). */
  readonly bits: number;
}

/** The keys, by id, and the default key for encryption. */
export interface Keyring extends DecryptionKeys {
  /** Every key, in settings order. */
  readonly keys: readonly KeyringEntry[];
  /** The id `POST /v1/encrypt` uses when the caller names none; absent when there are no keys. */
  readonly encryptKeyId: string | undefined;
  /**
   * Setting `secrets.requireBinding`: unbound (version-1) values fail to decrypt when
   * served (default false: they decrypt, and `validate` warns about them).
   */
  readonly requireBinding: boolean;
  /** The key with `id`, if configured. */
  get(id: string): KeyringEntry | undefined;
  /**
   * The key to encrypt with: `id`, or the default {@link encryptKeyId}.
   * @throws CFG_ERR_SECRET_KEY_UNKNOWN (400, `secret_key_unknown`) when `id` is not
   *   configured, or no key is configured at all.
   */
  encryptionKey(id?: string): EncryptionKey;
}

/** The `secrets` section of the settings (`requireBinding` may be left out: default false). */
export type SecretsSettings = Omit<Settings['secrets'], 'requireBinding'> & { readonly requireBinding?: boolean };

/**
 * Builds a keyring from keys already in memory (tests, tooling).
 *
 * @param keys - the keys in order; ids must be unique and match `KEY_ID_PATTERN`.
 * @param encryptKeyId - the default encryption key; default: the first key.
 * @param options.requireBinding - see {@link Keyring.requireBinding}; default false.
 * @throws TypeError on a duplicate or malformed id, an unknown `encryptKeyId`, or a key
 *   that is not RSA ≥ 2048 bits.
 */
export function createKeyring(
  keys: ReadonlyArray<{ id: string; publicKey?: KeyObject; privateKey?: KeyObject }>,
  encryptKeyId?: string,
  options: { readonly requireBinding?: boolean } = {},
): Keyring {
  const entries: KeyringEntry[] = keys.map((k) => {
    if (!KEY_ID_PATTERN.test(k.id)) throw new TypeError(`createKeyring: malformed key id '${k.id}'`);
    const publicKey = k.publicKey ?? (k.privateKey ? createPublicKey(k.privateKey) : undefined);
    if (publicKey === undefined) throw new TypeError(`createKeyring: key '${k.id}' has neither a public nor a private key`);
    const problem = rsaProblem(publicKey);
    if (problem) throw new TypeError(`createKeyring: key '${k.id}': ${problem}`);
    return { id: k.id, publicKey, ...(k.privateKey && { privateKey: k.privateKey }), bits: publicKey.asymmetricKeyDetails?.modulusLength ?? 0 };
  });
  const byId = new Map<string, KeyringEntry>();
  for (const e of entries) {
    if (byId.has(e.id)) throw new TypeError(`createKeyring: duplicate key id '${e.id}'`);
    byId.set(e.id, e);
  }
  if (encryptKeyId !== undefined && !byId.has(encryptKeyId)) throw new TypeError(`createKeyring: unknown encryptKeyId '${encryptKeyId}'`);
  const defaultId = encryptKeyId ?? entries[0]?.id;
  return Object.freeze({
    keys: Object.freeze(entries),
    encryptKeyId: defaultId,
    requireBinding: options.requireBinding === true,
    get: (id: string) => byId.get(id),
    has: (id: string) => byId.has(id),
    privateKeyFor: (id: string) => byId.get(id)?.privateKey,
    encryptionKey(id?: string): EncryptionKey {
      const want = id ?? defaultId;
      if (want === undefined) throw new CFG_ERR_SECRET_KEY_UNKNOWN('no key is configured (secrets.keys)');
      const entry = byId.get(want);
      // The id is echoed only when it is well-formed, so a request cannot inject text.
      if (!entry) throw new CFG_ERR_SECRET_KEY_UNKNOWN(KEY_ID_PATTERN.test(want) ? `key id '${want}' is not configured` : 'malformed key id');
      return { id: entry.id, publicKey: entry.publicKey };
    },
  });
}

/** Why a key is unfit (not RSA, too short), or undefined when it is fine. */
export function rsaProblem(key: KeyObject): string | undefined {
  if (key.asymmetricKeyType !== 'rsa') return `an RSA key is required (got ${key.asymmetricKeyType ?? key.type})`;
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS) return `the RSA key has ${bits} bits; at least ${MIN_RSA_BITS} are required`;
  return undefined;
}

function settingError(setting: string, problem: string): Error {
  return withData(new CFG_ERR_SETTINGS_INVALID(`  ${setting}: ${problem}`), { setting });
}

function readKeyFile(setting: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw settingError(setting, `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/**
 * Reads the keys of the `secrets` settings (PEM files) into a keyring.
 *
 * - `privateKeyFile`: a PEM RSA private key (PKCS#8 `PRIVATE KEY` or PKCS#1
 *   `RSA PRIVATE KEY`), unencrypted. Needed to decrypt.
 * - `publicKeyFile`: a PEM RSA public key (SPKI `PUBLIC KEY` or PKCS#1 `RSA PUBLIC KEY`).
 *   Optional when the private key is given (the public key is derived from it); when both
 *   are given they must be one pair.
 * - RSA only (not RSA-PSS keys), modulus ≥ 2048 bits; ids unique.
 * - `encryptKey`: must name a configured key; default the first key (every key has a
 *   public key, given or derived).
 * - `requireBinding`: copied to {@link Keyring.requireBinding}.
 *
 * @param settings - the `secrets` section (file paths already absolute).
 * @returns the keyring (empty when no key is configured; every `{cipher}` value then
 *   fails to decrypt and `POST /v1/encrypt` answers `secret_key_unknown`).
 * @throws CFG_ERR_SETTINGS_INVALID naming the first bad setting, e.g.
 *   `secrets.keys[1].privateKeyFile: the RSA key has 1024 bits; ...`; `data.setting` holds
 *   the setting path. Messages never quote key material.
 */
export function loadKeyring(settings: SecretsSettings | undefined): Keyring {
  const keys = settings?.keys ?? [];
  const loaded: Array<{ id: string; publicKey?: KeyObject; privateKey?: KeyObject }> = [];
  const seen = new Set<string>();
  keys.forEach((k, i) => {
    const at = `secrets.keys[${i}]`;
    if (typeof k.id !== 'string' || !KEY_ID_PATTERN.test(k.id)) throw settingError(`${at}.id`, 'must match ^[A-Za-z0-9._-]{1,64}$');
    if (seen.has(k.id)) throw settingError(`${at}.id`, `duplicate key id '${k.id}'`);
    seen.add(k.id);
    if (!k.privateKeyFile && !k.publicKeyFile) throw settingError(at, 'set privateKeyFile (to decrypt) or publicKeyFile (to encrypt), or both');
    let privateKey: KeyObject | undefined;
    let publicKey: KeyObject | undefined;
    if (k.privateKeyFile) {
      const setting = `${at}.privateKeyFile`;
      const pem = readKeyFile(setting, k.privateKeyFile);
      try {
        privateKey = createPrivateKey({ key: pem, format: 'pem' });
      } catch {
        throw settingError(setting, `${k.privateKeyFile} is not an unencrypted PEM private key`);
      }
      const problem = rsaProblem(privateKey);
      if (problem) throw settingError(setting, problem);
    }
    if (k.publicKeyFile) {
      const setting = `${at}.publicKeyFile`;
      const pem = readKeyFile(setting, k.publicKeyFile);
      try {
        publicKey = createPublicKey({ key: pem, format: 'pem' });
      } catch {
        throw settingError(setting, `${k.publicKeyFile} is not a PEM public key`);
      }
      const problem = rsaProblem(publicKey);
      if (problem) throw settingError(setting, problem);
      if (privateKey) {
        const derived = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
        if (!derived.equals(publicKey.export({ type: 'spki', format: 'der' }))) {
          throw settingError(setting, `does not belong to the private key of ${at}.privateKeyFile`);
        }
      }
    }
    loaded.push({ id: k.id, ...(publicKey && { publicKey }), ...(privateKey && { privateKey }) });
  });
  const encryptKey = settings?.encryptKey;
  if (encryptKey !== undefined && !seen.has(encryptKey)) {
    throw settingError('secrets.encryptKey', KEY_ID_PATTERN.test(encryptKey) ? `names no key of secrets.keys ('${encryptKey}')` : 'names no key of secrets.keys');
  }
  return createKeyring(loaded, encryptKey, { requireBinding: settings?.requireBinding === true });
}
