/**
 * The `{cipher}` envelope format of encrypted configuration values (SPEC §2.5).
 *
 * ## Text form
 * A configuration string value is encrypted when it starts with `{cipher}`:
 *
 * - `{cipher}{key:<id>}<base64>` — what {@link encryptValue} writes; `<id>` names the key
 *   (`^[A-Za-z0-9._-]{1,64}$`, the `secrets.keys[].id` syntax), so an operator can see
 *   which key a value needs without decoding it.
 * - `{cipher}<base64>` — also accepted; the key id embedded in the payload is used.
 *
 * `<base64>` is standard base64 (RFC 4648 §4, `+/`, with `=` padding, no line breaks).
 * White space around the base64 text is ignored when decrypting (YAML folding may add
 * some); anything else outside the alphabet makes the value malformed.
 *
 * ## Binary payload, version 1
 * ```
 * offset  size  field
 * 0       1     version = 0x01
 * 1       1     L = key-id length in bytes (1..64)
 * 2       L     key id, ASCII
 * 2+L     2     W = wrapped-key length, unsigned big-endian (the RSA modulus size in bytes)
 * 4+L     W     wrapped data key: RSA-OAEP (RFC 8017 §7.1) with SHA-256, MGF1-SHA-256,
 *               empty label, of the 32-byte AES-256 data key
 * 4+L+W   12    IV (96 bits, random per value; NIST SP 800-38D §8.2.2)
 * 16+L+W  16    GCM authentication tag (128 bits; NIST SP 800-38D §5.2.1.2)
 * 32+L+W  rest  AES-256-GCM ciphertext of the UTF-8 plaintext (same length as the plaintext)
 * ```
 * The GCM additional authenticated data (AAD) is bytes `0 .. 4+L+W` (version, key id and
 * wrapped key), so changing the version, the key id or the wrapped key makes
 * authentication fail; a `{key:<id>}` prefix that differs from the embedded key id is
 * refused before any decryption.
 *
 * Every value gets a fresh random data key and IV from `node:crypto`'s CSPRNG, so the
 * same plaintext encrypts to different texts and the (key, IV) pair never repeats
 * (NIST SP 800-38D §8: a 96-bit random IV is safe far beyond the number of values any
 * one data key encrypts, which is one).
 *
 * ## Failures
 * Every decryption failure is `CFG_ERR_SECRET_DECRYPT_FAILED` (HTTP 422, problem code
 * `secret_decrypt_failed`) naming the key path (given by the caller) and the key id, with
 * one of the fixed reasons in {@link DECRYPT_REASONS}. Neither the message nor `data`
 * ever holds the ciphertext, the plaintext, the data key or an unchecked key id. A
 * failure to unwrap the data key and a failed GCM tag check give the same reason, so the
 * error is no padding oracle (RFC 8017 §7.1.2 note on Manger's attack).
 */
import { createCipheriv, createDecipheriv, privateDecrypt, publicEncrypt, randomBytes, constants, type KeyObject } from 'node:crypto';
import { CFG_ERR_SECRET_DECRYPT_FAILED, withData } from '../errors.js';

/** The marker that makes a string value a secret. */
export const CIPHER_PREFIX = '{cipher}';

/** Payload format version written by {@link encryptValue}. */
export const ENVELOPE_VERSION = 1;

/** Syntax of a key id (same as the `secrets.keys[].id` setting). */
export const KEY_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** AES-256 data key length, bytes. */
const DATA_KEY_BYTES = 32;
/** GCM IV length, bytes (96 bits, NIST SP 800-38D §8.2). */
const IV_BYTES = 12;
/** GCM tag length, bytes (128 bits). */
const TAG_BYTES = 16;
/** Largest wrapped key accepted (an RSA-8192 modulus). */
const MAX_WRAPPED_BYTES = 1024;

const KEY_PREFIX_RE = /^\{key:([^}]*)\}/;
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * The fixed reasons a decryption fails with (the `reason` of the error's `data`). No
 * reason ever carries data from the value.
 */
export const DECRYPT_REASONS = Object.freeze({
  malformed: 'the value is not a valid {cipher} envelope',
  unsupportedVersion: 'unsupported envelope version',
  prefixMismatch: 'the {key:} prefix does not match the key id inside the value',
  unknownKey: 'no key with this id is configured',
  noPrivateKey: 'the key has no private key configured',
  authentication: 'authentication failed (wrong key, or the value was altered)',
  invalidText: 'the decrypted value is not valid UTF-8',
} as const);

/** One of {@link DECRYPT_REASONS}' values. */
export type DecryptReason = (typeof DECRYPT_REASONS)[keyof typeof DECRYPT_REASONS];

/** A key that can wrap data keys: its id and RSA public key. */
export interface EncryptionKey {
  readonly id: string;
  /** RSA public key (≥ 2048 bits). */
  readonly publicKey: KeyObject;
}

/** What {@link decryptValue} needs to look keys up; `Keyring` (keyring.ts) implements it. */
export interface DecryptionKeys {
  /** The RSA private key of key `id`; `undefined` when the id is unknown or has only a public key. */
  privateKeyFor(id: string): KeyObject | undefined;
  /** Whether key `id` is configured at all (with or without a private key). */
  has(id: string): boolean;
}

/**
 * True when `value` is a string that starts with `{cipher}` (the whole string is then an
 * encrypted value; SPEC §2.5). Nothing else is checked, so a malformed envelope is still
 * "cipher text" and fails when decrypted. Never throws.
 */
export function isCipherText(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith(CIPHER_PREFIX);
}

/**
 * Encrypts `plaintext` for `key` (SPEC §2.5): a fresh 256-bit AES data key and 96-bit IV,
 * AES-256-GCM over the UTF-8 bytes (NIST SP 800-38D), the data key wrapped with
 * RSA-OAEP-SHA-256 / MGF1-SHA-256 (RFC 8017 §7.1). Layout: this module's header.
 *
 * @param plaintext - any string (empty too); lone surrogates are encoded as U+FFFD.
 * @param key - the key id (`KEY_ID_PATTERN`) and its RSA public key.
 * @returns `{cipher}{key:<id>}<base64>`.
 * @throws TypeError when the key id does not match `KEY_ID_PATTERN` or the key is not an
 *   RSA public key of at least 2048 bits (a caller bug; keys are checked at load time).
 */
export function encryptValue(plaintext: string, key: EncryptionKey): string {
  if (!KEY_ID_PATTERN.test(key.id)) throw new TypeError('encryptValue: the key id must match ^[A-Za-z0-9._-]{1,64}$');
  const details = key.publicKey.asymmetricKeyDetails;
  if (key.publicKey.asymmetricKeyType !== 'rsa' || (details?.modulusLength ?? 0) < 2048) {
    throw new TypeError('encryptValue: the key must be an RSA key of at least 2048 bits');
  }
  const dataKey = randomBytes(DATA_KEY_BYTES);
  try {
    const wrapped = publicEncrypt({ key: key.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, dataKey);
    const id = Buffer.from(key.id, 'ascii');
    const header = Buffer.alloc(4 + id.length + wrapped.length);
    header.writeUInt8(ENVELOPE_VERSION, 0);
    header.writeUInt8(id.length, 1);
    id.copy(header, 2);
    header.writeUInt16BE(wrapped.length, 2 + id.length);
    wrapped.copy(header, 4 + id.length);
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', dataKey, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(header);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return `${CIPHER_PREFIX}{key:${key.id}}${Buffer.concat([header, iv, tag, body]).toString('base64')}`;
  } finally {
    dataKey.fill(0);
  }
}

/** The parts of an envelope, before decryption. */
export interface EnvelopeInfo {
  /** The key id of the `{key:}` prefix, when there is one. */
  readonly prefixKeyId?: string;
  /** The key id inside the payload. */
  readonly keyId: string;
  readonly version: number;
}

interface Parsed extends EnvelopeInfo {
  readonly aad: Buffer;
  readonly wrapped: Buffer;
  readonly iv: Buffer;
  readonly tag: Buffer;
  readonly body: Buffer;
}

class EnvelopeError extends Error {
  constructor(
    readonly reason: DecryptReason,
    readonly keyId: string | undefined,
  ) {
    super(reason);
  }
}

function parseEnvelope(text: string): Parsed {
  if (!isCipherText(text)) throw new EnvelopeError(DECRYPT_REASONS.malformed, undefined);
  let rest = text.slice(CIPHER_PREFIX.length);
  let prefixKeyId: string | undefined;
  const m = KEY_PREFIX_RE.exec(rest);
  if (m) {
    const id = m[1] as string;
    if (!KEY_ID_PATTERN.test(id)) throw new EnvelopeError(DECRYPT_REASONS.malformed, undefined);
    prefixKeyId = id;
    rest = rest.slice(m[0].length);
  }
  const b64 = rest.trim();
  if (b64.length === 0 || !BASE64_RE.test(b64)) throw new EnvelopeError(DECRYPT_REASONS.malformed, prefixKeyId);
  const raw = Buffer.from(b64, 'base64');
  if (raw.length < 2) throw new EnvelopeError(DECRYPT_REASONS.malformed, prefixKeyId);
  const version = raw.readUInt8(0);
  if (version !== ENVELOPE_VERSION) throw new EnvelopeError(DECRYPT_REASONS.unsupportedVersion, prefixKeyId);
  const idLength = raw.readUInt8(1);
  if (idLength < 1 || idLength > 64 || raw.length < 4 + idLength) throw new EnvelopeError(DECRYPT_REASONS.malformed, prefixKeyId);
  const keyId = raw.subarray(2, 2 + idLength).toString('latin1');
  if (!KEY_ID_PATTERN.test(keyId)) throw new EnvelopeError(DECRYPT_REASONS.malformed, prefixKeyId);
  if (prefixKeyId !== undefined && prefixKeyId !== keyId) throw new EnvelopeError(DECRYPT_REASONS.prefixMismatch, prefixKeyId);
  const wrappedLength = raw.readUInt16BE(2 + idLength);
  const ivAt = 4 + idLength + wrappedLength;
  if (wrappedLength === 0 || wrappedLength > MAX_WRAPPED_BYTES || raw.length < ivAt + IV_BYTES + TAG_BYTES) {
    throw new EnvelopeError(DECRYPT_REASONS.malformed, keyId);
  }
  return {
    ...(prefixKeyId !== undefined && { prefixKeyId }),
    keyId,
    version,
    aad: raw.subarray(0, ivAt),
    wrapped: raw.subarray(4 + idLength, ivAt),
    iv: raw.subarray(ivAt, ivAt + IV_BYTES),
    tag: raw.subarray(ivAt + IV_BYTES, ivAt + IV_BYTES + TAG_BYTES),
    body: raw.subarray(ivAt + IV_BYTES + TAG_BYTES),
  };
}

/**
 * Reads the key ids and version of an envelope without decrypting it (for `validate` and
 * tooling: which key does a value need?).
 *
 * @param text - a `{cipher}` value.
 * @returns the key ids and version.
 * @throws CFG_ERR_SECRET_DECRYPT_FAILED (422) when the envelope is malformed, of an
 *   unsupported version, or its `{key:}` prefix differs from the embedded key id.
 */
export function inspectValue(text: string, keyPath?: string): EnvelopeInfo {
  try {
    const p = parseEnvelope(text);
    return { ...(p.prefixKeyId !== undefined && { prefixKeyId: p.prefixKeyId }), keyId: p.keyId, version: p.version };
  } catch (err) {
    throw toDecryptError(err, keyPath);
  }
}

/** The key path shown when a caller gives none. */
const NO_KEY_PATH = '(value)';

/**
 * Makes the one decryption error: `CFG_ERR_SECRET_DECRYPT_FAILED` (422) naming `keyPath`
 * and `keyId` (`?` when unknown), `data: { key, keyId, reason }`.
 *
 * @param keyPath - flattened property name (`spring.datasource.password`, `list[0].token`).
 * @param keyId - a key id matching `KEY_ID_PATTERN`, or undefined.
 * @param reason - one of {@link DECRYPT_REASONS}.
 */
export function secretDecryptError(keyPath: string, keyId: string | undefined, reason: DecryptReason): Error & { data: Record<string, unknown> } {
  const id = keyId ?? '?';
  return withData(new CFG_ERR_SECRET_DECRYPT_FAILED(keyPath, id, reason), { key: keyPath, keyId: id, reason });
}

function toDecryptError(err: unknown, keyPath: string | undefined): Error {
  if (err instanceof EnvelopeError) return secretDecryptError(keyPath ?? NO_KEY_PATH, err.keyId, err.reason);
  return err as Error;
}

/**
 * Decrypts a `{cipher}` value (SPEC §2.5; layout and algorithms in this module's header:
 * RSA-OAEP-SHA-256 per RFC 8017 §7.1.2 unwraps the data key, AES-256-GCM per
 * NIST SP 800-38D checks the tag over AAD and ciphertext, then decrypts). The key is the
 * one named inside the payload; a `{key:<id>}` prefix must name the same key.
 *
 * @param text - `{cipher}{key:<id>}<base64>` or `{cipher}<base64>`.
 * @param keyring - the keys (see `loadKeyring`).
 * @param keyPath - the flattened property name, for the error message. Default `(value)`.
 * @returns the plaintext.
 * @throws CFG_ERR_SECRET_DECRYPT_FAILED (422, `secret_decrypt_failed`) naming `keyPath`
 *   and the key id, with `data: { key, keyId, reason }` where reason is one of
 *   {@link DECRYPT_REASONS}: malformed or truncated envelope, unsupported version,
 *   prefix/key-id mismatch, unknown key id, no private key, authentication failure
 *   (wrong key or tampered value), invalid UTF-8. Never names the value.
 */
export function decryptValue(text: string, keyring: DecryptionKeys, keyPath?: string): string {
  let keyId: string | undefined;
  try {
    const p = parseEnvelope(text);
    keyId = p.keyId;
    if (!keyring.has(p.keyId)) throw new EnvelopeError(DECRYPT_REASONS.unknownKey, p.keyId);
    const privateKey = keyring.privateKeyFor(p.keyId);
    if (privateKey === undefined) throw new EnvelopeError(DECRYPT_REASONS.noPrivateKey, p.keyId);
    let dataKey: Buffer;
    try {
      dataKey = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, p.wrapped);
    } catch {
      throw new EnvelopeError(DECRYPT_REASONS.authentication, p.keyId);
    }
    try {
      if (dataKey.length !== DATA_KEY_BYTES) throw new EnvelopeError(DECRYPT_REASONS.authentication, p.keyId);
      const decipher = createDecipheriv('aes-256-gcm', dataKey, p.iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(p.aad);
      decipher.setAuthTag(p.tag);
      let plain: Buffer;
      try {
        plain = Buffer.concat([decipher.update(p.body), decipher.final()]);
      } catch {
        throw new EnvelopeError(DECRYPT_REASONS.authentication, p.keyId);
      }
      try {
        return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(plain);
      } catch {
        throw new EnvelopeError(DECRYPT_REASONS.invalidText, p.keyId);
      } finally {
        plain.fill(0);
      }
    } finally {
      dataKey.fill(0);
    }
  } catch (err) {
    if (err instanceof EnvelopeError) throw secretDecryptError(keyPath ?? NO_KEY_PATH, err.keyId ?? keyId, err.reason);
    throw err;
  }
}
