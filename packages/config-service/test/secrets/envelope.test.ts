import { constants, createDecipheriv, privateDecrypt } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { CIPHER_PREFIX, DECRYPT_REASONS, decryptValue, encryptValue, inspectValue, isCipherText } from '../../src/secrets/envelope.js';
import { createKeyring, type Keyring } from '../../src/secrets/keyring.js';
import { leakedIn, payloadOf, rsaKey, tempDir, thrown, type TestKey } from './keys.js';

let k1: TestKey;
let k2: TestKey;
let ring: Keyring;

beforeAll(() => {
  const dir = tempDir('envelope');
  k1 = rsaKey(dir, 'k1');
  k2 = rsaKey(dir, 'k2', 3072);
  ring = createKeyring([k1, k2]);
});

/** Asserts a decrypt error: code, status, message and data naming key and key id, and no leak. */
function expectDecryptError(err: ReturnType<typeof thrown>, keyPath: string, keyId: string, reason: string, secrets: string[]): void {
  expect(err.code).toBe('CFG_ERR_SECRET_DECRYPT_FAILED');
  expect(err.statusCode).toBe(422);
  expect(err.message).toBe(`Cannot decrypt the secret at key '${keyPath}' (key id '${keyId}'): ${reason}`);
  expect(err.data).toEqual({ key: keyPath, keyId, reason });
  expect(leakedIn(err, secrets)).toEqual([]);
}

describe('encryptValue / decryptValue round trip', () => {
  const samples: Array<[string, string]> = [
    ['ascii', 'p@ssw0rd!'],
    ['empty string', ''],
    ['unicode (CJK, emoji, combining, RTL)', 'пароль 密码 🔐👩‍💻 é e\u0301 שלום'],
    ['control characters and NUL', 'a\u0000b\n\r\t"\'\\${x}'],
    ['a value that looks like a cipher', '{cipher}{key:k1}AAAA'],
    ['a PEM private key', '-----BEGIN PRIVATE KEY-----\nMIIE...\n-----END PRIVATE KEY-----\n'],
  ];
  it.each(samples)('%s', (_name, plain) => {
    const text = encryptValue(plain, k1);
    expect(text.startsWith('{cipher}{key:k1}')).toBe(true);
    expect(payloadOf(text)).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
    expect(decryptValue(text, ring)).toBe(plain);
  });

  it('a large value (1 MiB of multi-byte text)', () => {
    const plain = 'ü€'.repeat(512 * 1024);
    const text = encryptValue(plain, k2);
    expect(text.startsWith('{cipher}{key:k2}')).toBe(true);
    expect(decryptValue(text, ring)).toBe(plain);
  });

  it('fresh data key and IV every time: the same value encrypts differently', () => {
    const a = encryptValue('same', k1);
    const b = encryptValue('same', k1);
    expect(a).not.toBe(b);
    expect(decryptValue(a, ring)).toBe('same');
    expect(decryptValue(b, ring)).toBe('same');
  });

  it('any string round-trips (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), (s) => decryptValue(encryptValue(s, k1), ring) === s),
      { numRuns: 60 },
    );
  });

  it('without the {key:} prefix the key id inside the payload is used', () => {
    const text = encryptValue('rotate me', k2);
    expect(decryptValue(`${CIPHER_PREFIX}${payloadOf(text)}`, ring)).toBe('rotate me');
  });

  it('white space around the base64 text (YAML folding) is ignored', () => {
    const text = encryptValue('x', k1);
    expect(decryptValue(`{cipher}{key:k1} ${payloadOf(text)}\n`, ring)).toBe('x');
  });

  it('follows the documented layout: version 1 | id | wrapped key | iv | tag | ciphertext, AAD = header', () => {
    const plain = 'layout check ✓';
    const raw = Buffer.from(payloadOf(encryptValue(plain, k2)), 'base64');
    expect(raw[0]).toBe(1);
    const idLen = raw[1]!;
    expect(raw.subarray(2, 2 + idLen).toString('ascii')).toBe('k2');
    const w = raw.readUInt16BE(2 + idLen);
    expect(w).toBe(384); // RSA-3072 modulus bytes
    const ivAt = 4 + idLen + w;
    const dataKey = privateDecrypt({ key: k2.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, raw.subarray(4 + idLen, ivAt));
    expect(dataKey.length).toBe(32);
    const d = createDecipheriv('aes-256-gcm', dataKey, raw.subarray(ivAt, ivAt + 12));
    d.setAAD(raw.subarray(0, ivAt));
    d.setAuthTag(raw.subarray(ivAt + 12, ivAt + 28));
    const out = Buffer.concat([d.update(raw.subarray(ivAt + 28)), d.final()]).toString('utf8');
    expect(out).toBe(plain);
    expect(raw.length - ivAt - 28).toBe(Buffer.byteLength(plain, 'utf8'));
  });

  it('inspectValue names the key ids without decrypting', () => {
    const text = encryptValue('x', k2);
    expect(inspectValue(text)).toEqual({ prefixKeyId: 'k2', keyId: 'k2', version: 1, wrappedBytes: 384 });
    expect(inspectValue(`{cipher}${payloadOf(text)}`)).toEqual({ keyId: 'k2', version: 1, wrappedBytes: 384 });
  });

  it('refuses unfit keys at encryption time (caller bug)', () => {
    expect(() => encryptValue('x', { id: 'bad id', publicKey: k1.publicKey })).toThrow(TypeError);
  });
});

describe('isCipherText', () => {
  it.each([
    ['{cipher}abc', true],
    ['{cipher}{key:k1}abc', true],
    ['{cipher}', true],
    ['x{cipher}abc', false],
    [' {cipher}abc', false],
    ['{CIPHER}abc', false],
    [42, false],
    [null, false],
    [undefined, false],
    [['{cipher}abc'], false],
  ])('%j → %s', (v, want) => {
    expect(isCipherText(v)).toBe(want);
  });
});

describe('decryption failures: code, key path, key id, never the value', () => {
  const plain = 'the-plaintext-Zq7';

  it('tampered ciphertext, IV, tag or wrapped key → authentication failed', () => {
    const text = encryptValue(plain, k1);
    const raw = Buffer.from(payloadOf(text), 'base64');
    const w = raw.readUInt16BE(4);
    const ivAt = 6 + w;
    for (const [what, at] of [['wrapped key', 6 + 10], ['iv', ivAt + 3], ['tag', ivAt + 12 + 5], ['ciphertext', raw.length - 1]] as const) {
      const bad = Buffer.from(raw);
      bad[at] = bad[at]! ^ 0x01;
      const badText = `{cipher}{key:k1}${bad.toString('base64')}`;
      const err = thrown(() => decryptValue(badText, ring, 'db.password'));
      expectDecryptError(err, 'db.password', 'k1', DECRYPT_REASONS.authentication, [plain, payloadOf(text), bad.toString('base64')]);
      void what;
    }
  });

  it('every single-byte change anywhere fails (property); never returns a value', () => {
    const text = encryptValue(plain, k1);
    const raw = Buffer.from(payloadOf(text), 'base64');
    fc.assert(
      fc.property(fc.integer({ min: 0, max: raw.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, xor) => {
        const bad = Buffer.from(raw);
        bad[at] = bad[at]! ^ xor;
        for (const t of [`{cipher}{key:k1}${bad.toString('base64')}`, `{cipher}${bad.toString('base64')}`]) {
          const err = thrown(() => decryptValue(t, ring, 'a.b'));
          expect(err.code).toBe('CFG_ERR_SECRET_DECRYPT_FAILED');
          expect(leakedIn(err, [plain, bad.toString('base64')])).toEqual([]);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('truncated payloads fail (every byte length, and broken base64)', () => {
    const text = encryptValue(plain, k1);
    const raw = Buffer.from(payloadOf(text), 'base64');
    for (let n = 0; n < raw.length; n += 7) {
      const t = `{cipher}{key:k1}${raw.subarray(0, n).toString('base64')}`;
      const err = thrown(() => decryptValue(t, ring, 'list[3].secret'));
      expect(err.code).toBe('CFG_ERR_SECRET_DECRYPT_FAILED');
      expect(err.data?.key).toBe('list[3].secret');
      expect(err.data?.keyId).toBe('k1');
      expect([DECRYPT_REASONS.malformed, DECRYPT_REASONS.authentication]).toContain(err.data?.reason);
    }
    const cut = text.slice(0, text.length - 3);
    expectDecryptError(thrown(() => decryptValue(cut, ring, 'x')), 'x', 'k1', DECRYPT_REASONS.malformed, [plain, payloadOf(cut)]);
  });

  it('a payload of k1 with the prefix {key:k2} → prefix mismatch', () => {
    const text = encryptValue(plain, k1);
    const forged = `{cipher}{key:k2}${payloadOf(text)}`;
    expectDecryptError(thrown(() => decryptValue(forged, ring, 'db.password')), 'db.password', 'k2', DECRYPT_REASONS.prefixMismatch, [plain, payloadOf(text)]);
  });

  it('changing the key id inside the payload (to another configured key) fails authentication', () => {
    const text = encryptValue(plain, k1);
    const raw = Buffer.from(payloadOf(text), 'base64');
    raw[3] = '2'.charCodeAt(0); // "k1" → "k2": same length, AAD differs, and k2 cannot unwrap
    const forged = `{cipher}${raw.toString('base64')}`;
    expectDecryptError(thrown(() => decryptValue(forged, ring, 'p')), 'p', 'k2', DECRYPT_REASONS.authentication, [plain]);
  });

  it('unknown key id', () => {
    const only2 = createKeyring([k2]);
    const text = encryptValue(plain, k1);
    expectDecryptError(thrown(() => decryptValue(text, only2, 'db.password')), 'db.password', 'k1', DECRYPT_REASONS.unknownKey, [plain, payloadOf(text)]);
    expectDecryptError(thrown(() => decryptValue(text, createKeyring([]), 'db.password')), 'db.password', 'k1', DECRYPT_REASONS.unknownKey, [plain]);
  });

  it('wrong key under the right id → authentication failed', () => {
    const impostor = createKeyring([{ id: 'k1', privateKey: k2.privateKey }]);
    const text = encryptValue(plain, k1);
    expectDecryptError(thrown(() => decryptValue(text, impostor, 'db.password')), 'db.password', 'k1', DECRYPT_REASONS.authentication, [plain, payloadOf(text)]);
  });

  it('a key configured with its public key only cannot decrypt', () => {
    const publicOnly = createKeyring([{ id: 'k1', publicKey: k1.publicKey }]);
    const text = encryptValue(plain, k1);
    expectDecryptError(thrown(() => decryptValue(text, publicOnly, 'db.password')), 'db.password', 'k1', DECRYPT_REASONS.noPrivateKey, [plain]);
  });

  it('malformed texts: bad base64, bad key prefix, unsupported version, no key path given', () => {
    const text = encryptValue(plain, k1);
    const raw = Buffer.from(payloadOf(text), 'base64');
    raw[0] = 3;
    const v3 = `{cipher}{key:k1}${raw.toString('base64')}`;
    expectDecryptError(thrown(() => decryptValue(v3, ring, 'a')), 'a', 'k1', DECRYPT_REASONS.unsupportedVersion, [plain]);
    expectDecryptError(thrown(() => decryptValue('{cipher}not*base64', ring, 'a')), 'a', '?', DECRYPT_REASONS.malformed, ['not*base64']);
    expectDecryptError(thrown(() => decryptValue('{cipher}', ring, 'a')), 'a', '?', DECRYPT_REASONS.malformed, []);
    const injected = `{cipher}{key:evil'id}${payloadOf(text)}`;
    expectDecryptError(thrown(() => decryptValue(injected, ring, 'a')), 'a', '?', DECRYPT_REASONS.malformed, ["evil'id", payloadOf(text)]);
    expectDecryptError(thrown(() => decryptValue('plain', ring)), '(value)', '?', DECRYPT_REASONS.malformed, ['plain']);
  });
});
