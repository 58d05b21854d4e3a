/**
 * The `{cipher}` envelope format of encrypted configuration values (SPEC §2.5).
 *
 * ## Text form
 * A configuration string value is encrypted when it starts with `{cipher}`:
 *
 * - `{cipher}{key:<id>}<base64>` — what {@link encryptValue} writes; `<id>` names the key
 *   (`^[A-Za-z0-9._-]{1,64}$`, the `secrets.keys[].id` syntax), so an operator can see
 *   which key a value needs without decoding it.
 * - `{cipher}{key:<id>}{app:<name>}<base64>` and `{cipher}{key:<id>}{shared}<base64>` —
 *   a value bound to application `<name>` (or to the shared `application*` documents),
 *   version 2 below; what {@link encryptValue} writes when given a binding.
 * - `{cipher}<base64>` — also accepted; the key id (and binding) embedded in the payload
 *   are used. A `{key:}` or binding prefix must agree with the payload.
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
 * refused before any decryption. A version-1 value is *unbound*: it decrypts wherever it
 * is copied to.
 *
 * ## Binary payload, version 2 (bound)
 * ```
 * offset    size  field
 * 0         1     version = 0x02
 * 1         1     L = key-id length in bytes (1..64)
 * 2         L     key id, ASCII
 * 2+L       1     B = binding length in bytes (1..{@link MAX_BINDING_BYTES})
 * 3+L       B     binding, ASCII: `app:<name>` (SPEC §5 application name) or `shared`
 * 3+L+B     2     W = wrapped-key length, unsigned big-endian
 * 5+L+B     W     wrapped data key (as in version 1)
 * 5+L+B+W   12    IV
 * 17+L+B+W  16    GCM authentication tag
 * 33+L+B+W  rest  AES-256-GCM ciphertext
 * ```
 * The AAD is bytes `0 .. 5+L+B+W`: version, key id, binding and wrapped key. The binding
 * names where the value belongs; the service compares it with the binding of the
 * document the value is read from (`app:<app>` for an application's own documents,
 * `shared` for the shared `application*` documents) before decrypting, and a binding
 * edited to match fails authentication. A version-2 value cannot be turned into a
 * version-1 one either: the version byte and the binding are authenticated.
 *
 * Every value gets a fresh random data key and IV from `node:crypto`'s CSPRNG, so the
 * same plaintext encrypts to different texts and the (key, IV) pair never repeats
 * (NIST SP 800-38D §8: a 96-bit random IV is safe far beyond the number of values any
 * one data key encrypts, which is one).
 *
 * ## Failures
 * Every decryption failure is `CFG_ERR_SECRET_DECRYPT_FAILED` (HTTP 422, problem code
 * `secret_decrypt_failed`) naming the key path and the document it was written in (both
 * given by the caller, {@link DecryptContext}) and the key id, with one of the fixed
 * reasons in {@link DECRYPT_REASONS}. Neither the message nor `data`
 * ever holds the ciphertext, the plaintext, the data key or an unchecked key id. A
 * failure to unwrap the data key and a failed GCM tag check give the same reason, so the
 * error is no padding oracle (RFC 8017 §7.1.2 note on Manger's attack).
 */
import { createCipheriv, createDecipheriv, privateDecrypt, publicEncrypt, randomBytes, constants, type KeyObject } from 'node:crypto';
import { CFG_ERR_SECRET_DECRYPT_FAILED, withData } from '../errors.js';
import { bindingPrefix, describeBinding, isBinding, MAX_BINDING_BYTES, type SecretBinding } from './binding.js';

export { appBinding, describeBinding, isBinding, MAX_BINDING_BYTES, SHARED_BINDING, type SecretBinding } from './binding.js';

/** The marker that makes a string value a secret. */
export const CIPHER_PREFIX = '{cipher}';

/** Payload format version of an unbound value (what {@link encryptValue} writes without a binding). */
export const ENVELOPE_VERSION = 1;

/** Payload format version of a bound value (what {@link encryptValue} writes with a binding). */
export const ENVELOPE_VERSION_BOUND = 2;

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
const BINDING_PREFIX_RE = /^\{(shared|app:[^}]*)\}/;
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
  bindingPrefixMismatch: 'the {app:} or {shared} prefix does not match the binding inside the value',
  boundElsewhere: 'bound to another application',
  notBound: 'the value is not bound to an application (secrets.requireBinding is on)',
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
 * @param binding - where the value belongs (`app:<name>` or `shared`): a version-2 value,
 *   authenticated with its binding. Absent: an unbound version-1 value.
 * @returns `{cipher}{key:<id>}<base64>` (unbound), `{cipher}{key:<id>}{app:<name>}<base64>`
 *   or `{cipher}{key:<id>}{shared}<base64>` (bound).
 * @throws TypeError when the key id does not match `KEY_ID_PATTERN`, the key is not an
 *   RSA public key of at least 2048 bits, or the binding is malformed (a caller bug; keys
 *   are checked at load time, names at the edge).
 */
export function encryptValue(plaintext: string, key: EncryptionKey, binding?: SecretBinding): string {
  if (!KEY_ID_PATTERN.test(key.id)) throw new TypeError('encryptValue: the key id must match ^[A-Za-z0-9._-]{1,64}$');
  const details = key.publicKey.asymmetricKeyDetails;
  if (key.publicKey.asymmetricKeyType !== 'rsa' || (details?.modulusLength ?? 0) < 2048) {
    throw new TypeError('encryptValue: the key must be an RSA key of at least 2048 bits');
  }
  if (binding !== undefined && !isBinding(binding)) throw new TypeError("encryptValue: the binding must be 'shared' or 'app:<application name>'");
  const dataKey = randomBytes(DATA_KEY_BYTES);
  try {
    const wrapped = publicEncrypt({ key: key.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, dataKey);
    const id = Buffer.from(key.id, 'ascii');
    const bound = binding === undefined ? undefined : Buffer.from(binding, 'ascii');
    const bindingBytes = bound === undefined ? 0 : 1 + bound.length;
    const header = Buffer.alloc(4 + id.length + bindingBytes + wrapped.length);
    header.writeUInt8(bound === undefined ? ENVELOPE_VERSION : ENVELOPE_VERSION_BOUND, 0);
    header.writeUInt8(id.length, 1);
    id.copy(header, 2);
    let at = 2 + id.length;
    if (bound !== undefined) {
      header.writeUInt8(bound.length, at);
      bound.copy(header, at + 1);
      at += 1 + bound.length;
    }
    header.writeUInt16BE(wrapped.length, at);
    wrapped.copy(header, at + 2);
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', dataKey, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(header);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    const prefix = binding === undefined ? '' : bindingPrefix(binding);
    return `${CIPHER_PREFIX}{key:${key.id}}${prefix}${Buffer.concat([header, iv, tag, body]).toString('base64')}`;
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
  /** 1 (unbound) or 2 (bound). */
  readonly version: number;
  /** Version 2 only: where the value belongs (checked by the tag only when decrypted). */
  readonly binding?: SecretBinding;
  /**
   * Bytes of the RSA-OAEP-wrapped data key: the modulus size of the key that wrapped it
   * (384 for RSA-3072), so a public key can tell whether the value could be its own.
   */
  readonly wrappedBytes: number;
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
    readonly boundTo?: SecretBinding,
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
  let prefixBinding: SecretBinding | undefined;
  const b = BINDING_PREFIX_RE.exec(rest);
  if (b) {
    if (!isBinding(b[1])) throw new EnvelopeError(DECRYPT_REASONS.malformed, prefixKeyId);
    prefixBinding = b[1];
    rest = rest.slice(b[0].length);
  }
  const b64 = rest.trim();
  if (b64.length === 0 || !BASE64_RE.test(b64)) throw new EnvelopeError(DECRYPT_REASONS.malformed, prefixKeyId);
  const raw = Buffer.from(b64, 'base64');
  if (raw.length < 2) throw new EnvelopeError(DECRYPT_REASONS.malformed, prefixKeyId);
  const version = raw.readUInt8(0);
  if (version !== ENVELOPE_VERSION && version !== ENVELOPE_VERSION_BOUND) throw new EnvelopeError(DECRYPT_REASONS.unsupportedVersion, prefixKeyId);
  const idLength = raw.readUInt8(1);
  if (idLength < 1 || idLength > 64 || raw.length < 4 + idLength) throw new EnvelopeError(DECRYPT_REASONS.malformed, prefixKeyId);
  const keyId = raw.subarray(2, 2 + idLength).toString('latin1');
  if (!KEY_ID_PATTERN.test(keyId)) throw new EnvelopeError(DECRYPT_REASONS.malformed, prefixKeyId);
  if (prefixKeyId !== undefined && prefixKeyId !== keyId) throw new EnvelopeError(DECRYPT_REASONS.prefixMismatch, prefixKeyId);
  let at = 2 + idLength;
  let binding: SecretBinding | undefined;
  if (version === ENVELOPE_VERSION_BOUND) {
    const bindingLength = raw.readUInt8(at);
    if (bindingLength < 1 || bindingLength > MAX_BINDING_BYTES || raw.length < at + 1 + bindingLength + 2) throw new EnvelopeError(DECRYPT_REASONS.malformed, keyId);
    const text = raw.subarray(at + 1, at + 1 + bindingLength).toString('latin1');
    if (!isBinding(text)) throw new EnvelopeError(DECRYPT_REASONS.malformed, keyId);
    binding = text;
    at += 1 + bindingLength;
  }
  if (prefixBinding !== undefined && prefixBinding !== binding) throw new EnvelopeError(DECRYPT_REASONS.bindingPrefixMismatch, keyId);
  const wrappedLength = raw.readUInt16BE(at);
  const ivAt = at + 2 + wrappedLength;
  if (wrappedLength === 0 || wrappedLength > MAX_WRAPPED_BYTES || raw.length < ivAt + IV_BYTES + TAG_BYTES) {
    throw new EnvelopeError(DECRYPT_REASONS.malformed, keyId);
  }
  return {
    ...(prefixKeyId !== undefined && { prefixKeyId }),
    keyId,
    version,
    ...(binding !== undefined && { binding }),
    wrappedBytes: wrappedLength,
    aad: raw.subarray(0, ivAt),
    wrapped: raw.subarray(at + 2, ivAt),
    iv: raw.subarray(ivAt, ivAt + IV_BYTES),
    tag: raw.subarray(ivAt + IV_BYTES, ivAt + IV_BYTES + TAG_BYTES),
    body: raw.subarray(ivAt + IV_BYTES + TAG_BYTES),
  };
}

/**
 * Where a secret is read, for messages and for the binding check. Every field is optional.
 */
export interface DecryptContext {
  /** Flattened property name (`spring.datasource.password`, `list[0].token`). Default `(value)`. */
  readonly key?: string;
  /** The document the value was written in (`orders/application-prod.yml`), from the property's origin. */
  readonly document?: string;
  /** 1-based line and column of the key in `document`. */
  readonly line?: number;
  readonly column?: number;
  /**
   * The binding of `document` (`app:<app>` or `shared`). When given, a bound (version 2)
   * value must carry exactly this binding, else it fails with "bound to another
   * application" before anything is decrypted.
   */
  readonly binding?: SecretBinding;
  /** Refuse unbound (version 1) values (setting `secrets.requireBinding`). Default false. */
  readonly requireBinding?: boolean;
}

/**
 * Reads the key ids, version and binding of an envelope without decrypting it (for
 * `validate` and tooling: which key does a value need, where is it bound?).
 *
 * @param text - a `{cipher}` value.
 * @param at - the key path (a string, as before) or a {@link DecryptContext}, for the error.
 * @returns the key ids, version and binding (as written; authenticated only by decrypting).
 * @throws CFG_ERR_SECRET_DECRYPT_FAILED (422) when the envelope is malformed, of an
 *   unsupported version, or a `{key:}` / binding prefix differs from the payload.
 */
export function inspectValue(text: string, at?: string | DecryptContext): EnvelopeInfo {
  try {
    const p = parseEnvelope(text);
    return {
      ...(p.prefixKeyId !== undefined && { prefixKeyId: p.prefixKeyId }),
      keyId: p.keyId,
      version: p.version,
      ...(p.binding !== undefined && { binding: p.binding }),
      wrappedBytes: p.wrapped.length,
    };
  } catch (err) {
    throw toDecryptError(err, contextOf(at));
  }
}

/** The key path shown when a caller gives none. */
const NO_KEY_PATH = '(value)';

function contextOf(at: string | DecryptContext | undefined): DecryptContext {
  return typeof at === 'string' ? { key: at } : (at ?? {});
}

/**
 * Makes the one decryption error: `CFG_ERR_SECRET_DECRYPT_FAILED` (422),
 * `Cannot decrypt the secret at key '<key>' in <document>:<line>:<column> (key id '<id>'): <reason>`
 * (the ` in <document>...` part only when the document is known; `?` for an unknown key
 * id; for a value bound elsewhere the reason is followed by
 * ` (the value is bound to application '<name>')`), with
 * `data: { key, keyId, reason, document?, line?, column?, boundTo? }`.
 *
 * @param at - the key path, or a {@link DecryptContext} naming key and document.
 * @param keyId - a key id matching `KEY_ID_PATTERN`, or undefined.
 * @param reason - one of {@link DECRYPT_REASONS}.
 * @param boundTo - for `boundElsewhere`: the binding the value carries.
 */
export function secretDecryptError(
  at: string | DecryptContext,
  keyId: string | undefined,
  reason: DecryptReason,
  boundTo?: SecretBinding,
): Error & { data: Record<string, unknown> } {
  const ctx = contextOf(at);
  const key = ctx.key ?? NO_KEY_PATH;
  const id = keyId ?? '?';
  let where = '';
  if (ctx.document !== undefined) {
    where = ` in ${ctx.document}`;
    if (ctx.line !== undefined) where += `:${ctx.line}:${ctx.column ?? 1}`;
  }
  const detail = boundTo === undefined ? reason : `${reason} (the value is bound to ${describeBinding(boundTo)})`;
  return withData(new CFG_ERR_SECRET_DECRYPT_FAILED(`'${key}'${where}`, id, detail), {
    key,
    keyId: id,
    reason,
    ...(ctx.document !== undefined && { document: ctx.document }),
    ...(ctx.document !== undefined && ctx.line !== undefined && { line: ctx.line, column: ctx.column ?? 1 }),
    ...(boundTo !== undefined && { boundTo }),
  });
}

function toDecryptError(err: unknown, ctx: DecryptContext): Error {
  if (err instanceof EnvelopeError) return secretDecryptError(ctx, err.keyId, err.reason, err.boundTo);
  return err as Error;
}

/** The result of {@link openValue}. */
export interface OpenedValue {
  readonly plaintext: string;
  /** The key that unwrapped the data key. */
  readonly keyId: string;
  /** 1 (unbound) or 2 (bound). */
  readonly version: number;
  /** The authenticated binding of a version-2 value. */
  readonly binding?: SecretBinding;
}

/**
 * Decrypts a `{cipher}` value and says which key and binding it had (SPEC §2.5; layout
 * and algorithms in this module's header: RSA-OAEP-SHA-256 per RFC 8017 §7.1.2 unwraps
 * the data key, AES-256-GCM per NIST SP 800-38D checks the tag over AAD and ciphertext,
 * then decrypts). The key is the one named inside the payload; a `{key:<id>}` prefix must
 * name the same key, a binding prefix the same binding.
 *
 * Checks before any decryption: with `at.binding`, a version-2 value bound elsewhere is
 * refused ("bound to another application"); with `at.requireBinding`, a version-1 value
 * is refused ("not bound").
 *
 * @param text - a `{cipher}` text of any form of this module's header.
 * @param keyring - the keys (see `loadKeyring`).
 * @param at - the key path, or a {@link DecryptContext} (key, document, line, binding).
 * @returns the plaintext, the key id and the version and binding.
 * @throws CFG_ERR_SECRET_DECRYPT_FAILED (422, `secret_decrypt_failed`) naming the key,
 *   the document (when given) and the key id, with `data: { key, keyId, reason, ... }`
 *   where reason is one of {@link DECRYPT_REASONS}: malformed or truncated envelope,
 *   unsupported version, prefix/payload mismatch, bound to another application, not bound
 *   (with `requireBinding`), unknown key id, no private key, authentication failure
 *   (wrong key, tampered value or binding), invalid UTF-8. Never names the value.
 */
export function openValue(text: string, keyring: DecryptionKeys, at?: string | DecryptContext): OpenedValue {
  const ctx = contextOf(at);
  let keyId: string | undefined;
  try {
    const p = parseEnvelope(text);
    keyId = p.keyId;
    if (p.binding !== undefined && ctx.binding !== undefined && p.binding !== ctx.binding) {
      throw new EnvelopeError(DECRYPT_REASONS.boundElsewhere, p.keyId, p.binding);
    }
    if (p.binding === undefined && ctx.requireBinding === true) throw new EnvelopeError(DECRYPT_REASONS.notBound, p.keyId);
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
        const plaintext = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(plain);
        return { plaintext, keyId: p.keyId, version: p.version, ...(p.binding !== undefined && { binding: p.binding }) };
      } catch {
        throw new EnvelopeError(DECRYPT_REASONS.invalidText, p.keyId);
      } finally {
        plain.fill(0);
      }
    } finally {
      dataKey.fill(0);
    }
  } catch (err) {
    if (err instanceof EnvelopeError) throw secretDecryptError(ctx, err.keyId ?? keyId, err.reason, err.boundTo);
    throw err;
  }
}

/**
 * Decrypts a `{cipher}` value: {@link openValue}'s plaintext. Same checks and errors.
 *
 * @param text - `{cipher}{key:<id>}<base64>`, `{cipher}<base64>`, or a bound form.
 * @param keyring - the keys (see `loadKeyring`).
 * @param at - the key path for the error message (default `(value)`), or a
 *   {@link DecryptContext} naming key, document and expected binding.
 * @returns the plaintext.
 * @throws CFG_ERR_SECRET_DECRYPT_FAILED (422) as {@link openValue}.
 */
export function decryptValue(text: string, keyring: DecryptionKeys, at?: string | DecryptContext): string {
  return openValue(text, keyring, at).plaintext;
}
