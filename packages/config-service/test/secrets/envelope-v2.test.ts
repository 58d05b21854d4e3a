/**
 * Envelope version 2 (bound values): the documented layout, the binding authenticated as
 * AAD, the binding check before decryption, prefixes, and version-1 compatibility.
 */
import { constants, createDecipheriv, privateDecrypt } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DECRYPT_REASONS,
  decryptValue,
  encryptValue,
  inspectValue,
  openValue,
  type SecretBinding,
} from '../../src/secrets/envelope.js';
import { createKeyring, type Keyring } from '../../src/secrets/keyring.js';
import { leakedIn, payloadOf, rsaKey, tempDir, thrown, type TestKey } from './keys.js';

let k1: TestKey;
let k2: TestKey;
let ring: Keyring;
const plain = 'bound-secret-Zq7-ü';

beforeAll(() => {
  const dir = tempDir('envelope-v2');
  k1 = rsaKey(dir, 'k1');
  k2 = rsaKey(dir, 'k2');
  ring = createKeyring([k1, k2]);
});

/** Byte offsets of a v2 payload: binding at 3+L, wrapped key after it. */
function layout(raw: Buffer): { idLen: number; bindingAt: number; bindingLen: number; wrappedAt: number; ivAt: number } {
  const idLen = raw[1]!;
  const bindingLen = raw[2 + idLen]!;
  const bindingAt = 3 + idLen;
  const w = raw.readUInt16BE(bindingAt + bindingLen);
  const wrappedAt = bindingAt + bindingLen + 2;
  return { idLen, bindingAt, bindingLen, wrappedAt, ivAt: wrappedAt + w };
}

describe('bound values (version 2)', () => {
  it.each<[SecretBinding, string]>([
    ['app:orders', '{app:orders}'],
    ['shared', '{shared}'],
  ])('%s: written as {cipher}{key:k1}%s<base64>, decrypts where bound', (binding, prefix) => {
    const text = encryptValue(plain, k1, binding);
    expect(text.startsWith(`{cipher}{key:k1}${prefix}`)).toBe(true);
    expect(payloadOf(text)).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
    expect(openValue(text, ring, { key: 'db.password', binding })).toEqual({ plaintext: plain, keyId: 'k1', version: 2, binding });
    expect(inspectValue(text)).toEqual({ prefixKeyId: 'k1', keyId: 'k1', version: 2, binding, wrappedBytes: 256 });
    // Without prefixes the payload alone says everything.
    expect(decryptValue(`{cipher}${payloadOf(text)}`, ring, { binding })).toBe(plain);
  });

  it('follows the documented layout: 2 | L | id | B | binding | W | wrapped | iv | tag | ciphertext, AAD = header', () => {
    const raw = Buffer.from(payloadOf(encryptValue(plain, k2, 'app:orders')), 'base64');
    expect(raw[0]).toBe(2);
    const { idLen, bindingAt, bindingLen, wrappedAt, ivAt } = layout(raw);
    expect(raw.subarray(2, 2 + idLen).toString('ascii')).toBe('k2');
    expect(bindingLen).toBe('app:orders'.length);
    expect(raw.subarray(bindingAt, bindingAt + bindingLen).toString('ascii')).toBe('app:orders');
    expect(ivAt - wrappedAt).toBe(256); // RSA-2048 modulus bytes
    const dataKey = privateDecrypt({ key: k2.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, raw.subarray(wrappedAt, ivAt));
    const d = createDecipheriv('aes-256-gcm', dataKey, raw.subarray(ivAt, ivAt + 12));
    d.setAAD(raw.subarray(0, ivAt));
    d.setAuthTag(raw.subarray(ivAt + 12, ivAt + 28));
    expect(Buffer.concat([d.update(raw.subarray(ivAt + 28)), d.final()]).toString('utf8')).toBe(plain);
  });

  it('a value bound to orders read in billing: refused before decryption, naming file, key, key id and reason', () => {
    const text = encryptValue(plain, k1, 'app:orders');
    const err = thrown(() =>
      decryptValue(text, ring, { key: 'db.password', document: 'billing/application.yml', line: 3, column: 5, binding: 'app:billing' }),
    );
    expect(err.code).toBe('CFG_ERR_SECRET_DECRYPT_FAILED');
    expect(err.statusCode).toBe(422);
    expect(err.message).toBe(
      "Cannot decrypt the secret at key 'db.password' in billing/application.yml:3:5 (key id 'k1'): bound to another application (the value is bound to application 'orders')",
    );
    expect(err.data).toEqual({
      key: 'db.password',
      keyId: 'k1',
      reason: DECRYPT_REASONS.boundElsewhere,
      document: 'billing/application.yml',
      line: 3,
      column: 5,
      boundTo: 'app:orders',
    });
    expect(leakedIn(err, [plain, payloadOf(text)])).toEqual([]);
  });

  it('shared and application bindings do not stand in for each other', () => {
    const shared = encryptValue(plain, k1, 'shared');
    expect(thrown(() => decryptValue(shared, ring, { key: 'a', binding: 'app:orders' })).message).toBe(
      "Cannot decrypt the secret at key 'a' (key id 'k1'): bound to another application (the value is bound to the shared documents)",
    );
    const own = encryptValue(plain, k1, 'app:orders');
    expect(thrown(() => decryptValue(own, ring, { key: 'a', binding: 'shared' })).data?.reason).toBe(DECRYPT_REASONS.boundElsewhere);
  });

  it('AAD: editing the binding inside the payload to the reader’s app fails authentication (same length and longer)', () => {
    const text = encryptValue(plain, k1, 'app:orders');
    const raw = Buffer.from(payloadOf(text), 'base64');
    const { bindingAt, bindingLen } = layout(raw);
    // Same length: app:orders → app:orderz.
    const same = Buffer.from(raw);
    same.write('app:orderz', bindingAt, 'ascii');
    const forgedSame = `{cipher}{key:k1}{app:orderz}${same.toString('base64')}`;
    expect(thrown(() => decryptValue(forgedSame, ring, { key: 'p', binding: 'app:orderz' })).data).toEqual({
      key: 'p',
      keyId: 'k1',
      reason: DECRYPT_REASONS.authentication,
    });
    // Another length: app:orders → app:billing (the length byte changes too).
    const billing = Buffer.from('app:billing', 'ascii');
    const longer = Buffer.concat([raw.subarray(0, bindingAt - 1), Buffer.from([billing.length]), billing, raw.subarray(bindingAt + bindingLen)]);
    const forged = `{cipher}{key:k1}{app:billing}${longer.toString('base64')}`;
    expect(inspectValue(forged).binding).toBe('app:billing');
    const err = thrown(() => decryptValue(forged, ring, { key: 'p', binding: 'app:billing' }));
    expect(err.data?.reason).toBe(DECRYPT_REASONS.authentication);
    expect(leakedIn(err, [plain])).toEqual([]);
  });

  it('AAD: a version-2 value cannot be downgraded to an unbound version-1 value', () => {
    const raw = Buffer.from(payloadOf(encryptValue(plain, k1, 'app:orders')), 'base64');
    const { bindingAt, bindingLen } = layout(raw);
    const v1 = Buffer.concat([Buffer.from([1]), raw.subarray(1, bindingAt - 1), raw.subarray(bindingAt + bindingLen)]);
    const downgraded = `{cipher}{key:k1}${v1.toString('base64')}`;
    expect(inspectValue(downgraded)).toEqual({ prefixKeyId: 'k1', keyId: 'k1', version: 1, wrappedBytes: 256 });
    expect(thrown(() => decryptValue(downgraded, ring, { key: 'p', binding: 'app:billing' })).data?.reason).toBe(DECRYPT_REASONS.authentication);
  });

  it('a binding prefix that differs from the payload is refused; so is a binding prefix on a version-1 value', () => {
    const bound = encryptValue(plain, k1, 'app:orders');
    const relabelled = `{cipher}{key:k1}{app:billing}${payloadOf(bound)}`;
    expect(thrown(() => decryptValue(relabelled, ring, 'x')).data).toEqual({ key: 'x', keyId: 'k1', reason: DECRYPT_REASONS.bindingPrefixMismatch });
    const unbound = encryptValue(plain, k1);
    const claimed = `{cipher}{key:k1}{shared}${payloadOf(unbound)}`;
    expect(thrown(() => decryptValue(claimed, ring, 'x')).data?.reason).toBe(DECRYPT_REASONS.bindingPrefixMismatch);
    expect(thrown(() => decryptValue(`{cipher}{key:k1}{app:Bad..name}${payloadOf(bound)}`, ring, 'x')).data?.reason).toBe(DECRYPT_REASONS.malformed);
  });

  it('tampering anywhere in a bound payload fails; the error never holds the value', () => {
    const text = encryptValue(plain, k2, 'shared');
    const raw = Buffer.from(payloadOf(text), 'base64');
    for (let at = 0; at < raw.length; at += 13) {
      const bad = Buffer.from(raw);
      bad[at] = bad[at]! ^ 0x04;
      const err = thrown(() => decryptValue(`{cipher}${bad.toString('base64')}`, ring, { key: 'k', binding: 'shared' }));
      expect(err.code).toBe('CFG_ERR_SECRET_DECRYPT_FAILED');
      expect(leakedIn(err, [plain, bad.toString('base64')])).toEqual([]);
    }
  });

  it('encryptValue refuses a malformed binding (caller bug)', () => {
    expect(() => encryptValue('x', k1, 'app:Orders' as SecretBinding)).toThrow(TypeError);
    expect(() => encryptValue('x', k1, 'app:a..b' as SecretBinding)).toThrow(TypeError);
    expect(() => encryptValue('x', k1, 'everyone' as SecretBinding)).toThrow(TypeError);
  });
});

describe('version 1 (unbound) values', () => {
  it('still decrypt wherever they are read, with or without an expected binding', () => {
    const text = encryptValue(plain, k1);
    expect(openValue(text, ring, { key: 'a', binding: 'app:billing' })).toEqual({ plaintext: plain, keyId: 'k1', version: 1 });
    expect(decryptValue(text, ring, { binding: 'shared' })).toBe(plain);
  });

  it('requireBinding refuses them, naming file, key and key id', () => {
    const text = encryptValue(plain, k2);
    const err = thrown(() => decryptValue(text, ring, { key: 'db.password', document: 'orders/application.yml', line: 2, column: 3, binding: 'app:orders', requireBinding: true }));
    expect(err.message).toBe(
      "Cannot decrypt the secret at key 'db.password' in orders/application.yml:2:3 (key id 'k2'): the value is not bound to an application (secrets.requireBinding is on)",
    );
    // A bound value is not affected by requireBinding.
    expect(decryptValue(encryptValue(plain, k2, 'app:orders'), ring, { binding: 'app:orders', requireBinding: true })).toBe(plain);
  });
});
