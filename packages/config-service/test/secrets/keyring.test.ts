import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DECRYPT_REASONS, decryptValue, encryptValue } from '../../src/secrets/envelope.js';
import { createKeyring, loadKeyring } from '../../src/secrets/keyring.js';
import { leakedIn, rsaKey, tempDir, thrown, type TestKey } from './keys.js';

let dir: string;
let k1: TestKey;
let k2: TestKey;

beforeAll(() => {
  dir = tempDir('keyring');
  k1 = rsaKey(dir, 'k1');
  k2 = rsaKey(dir, 'k2');
});

function settingError(fn: () => unknown, setting: string): ReturnType<typeof thrown> {
  const err = thrown(fn);
  expect(err.code).toBe('CFG_ERR_SETTINGS_INVALID');
  expect(err.data).toEqual({ setting });
  expect(err.message).toContain(`  ${setting}: `);
  expect(err.message).not.toContain('BEGIN');
  return err;
}

describe('loadKeyring', () => {
  it('no secrets settings → an empty keyring; encrypting names the missing setting', () => {
    for (const ring of [loadKeyring(undefined), loadKeyring({ keys: [] })]) {
      expect(ring.keys).toEqual([]);
      expect(ring.encryptKeyId).toBeUndefined();
      const err = thrown(() => ring.encryptionKey());
      expect(err.code).toBe('CFG_ERR_SECRET_KEY_UNKNOWN');
      expect(err.statusCode).toBe(400);
      expect(err.message).toBe('No encryption key: no key is configured (secrets.keys)');
    }
  });

  it('private key only: the public key is derived; it encrypts and decrypts', () => {
    const ring = loadKeyring({ keys: [{ id: 'k1', privateKeyFile: k1.privateKeyFile }] });
    expect(ring.encryptKeyId).toBe('k1');
    expect(ring.get('k1')?.bits).toBe(2048);
    expect(ring.get('k1')?.publicKey.export({ type: 'spki', format: 'pem' })).toBe(k1.publicKey.export({ type: 'spki', format: 'pem' }));
    expect(decryptValue(encryptValue('v', ring.encryptionKey()), ring)).toBe('v');
  });

  it('public key only: encrypts; cannot decrypt', () => {
    const ring = loadKeyring({ keys: [{ id: 'k1', publicKeyFile: k1.publicKeyFile }] });
    const text = encryptValue('v', ring.encryptionKey('k1'));
    expect(thrown(() => decryptValue(text, ring, 'a')).data?.reason).toBe(DECRYPT_REASONS.noPrivateKey);
    const full = loadKeyring({ keys: [{ id: 'k1', privateKeyFile: k1.privateKeyFile }] });
    expect(decryptValue(text, full)).toBe('v');
  });

  it('both files of one pair; PKCS#1 PEM works too', () => {
    const pkcs1 = path.join(dir, 'k1.pkcs1.pem');
    writeFileSync(pkcs1, k1.privateKey.export({ type: 'pkcs1', format: 'pem' }));
    const ring = loadKeyring({ keys: [{ id: 'k1', privateKeyFile: pkcs1, publicKeyFile: k1.publicKeyFile }] });
    expect(decryptValue(encryptValue('v', ring.encryptionKey()), ring)).toBe('v');
  });

  it('a public key that does not belong to the private key', () => {
    settingError(() => loadKeyring({ keys: [{ id: 'k1', privateKeyFile: k1.privateKeyFile, publicKeyFile: k2.publicKeyFile }] }), 'secrets.keys[0].publicKeyFile');
  });

  it('RSA below 2048 bits is refused, naming secrets.keys[i].privateKeyFile', () => {
    const small = rsaKey(dir, 'small', 1024);
    const err = settingError(
      () => loadKeyring({ keys: [{ id: 'k1', privateKeyFile: k1.privateKeyFile }, { id: 'small', privateKeyFile: small.privateKeyFile }] }),
      'secrets.keys[1].privateKeyFile',
    );
    expect(err.message).toContain('1024 bits; at least 2048');
    settingError(() => loadKeyring({ keys: [{ id: 'small', publicKeyFile: small.publicKeyFile }] }), 'secrets.keys[0].publicKeyFile');
  });

  it('non-RSA keys (EC, RSA-PSS) are refused', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ecFile = path.join(dir, 'ec.pem');
    writeFileSync(ecFile, ec.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    expect(settingError(() => loadKeyring({ keys: [{ id: 'e', privateKeyFile: ecFile }] }), 'secrets.keys[0].privateKeyFile').message).toContain('RSA key is required (got ec)');
    const pss = generateKeyPairSync('rsa-pss', { modulusLength: 2048 });
    const pssFile = path.join(dir, 'pss.pem');
    writeFileSync(pssFile, pss.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    settingError(() => loadKeyring({ keys: [{ id: 'p', privateKeyFile: pssFile }] }), 'secrets.keys[0].privateKeyFile');
  });

  it('unreadable, garbage and passphrase-protected files', () => {
    expect(settingError(() => loadKeyring({ keys: [{ id: 'k', privateKeyFile: path.join(dir, 'missing.pem') }] }), 'secrets.keys[0].privateKeyFile').message).toContain('ENOENT');
    const junk = path.join(dir, 'junk.pem');
    writeFileSync(junk, 'not a key');
    settingError(() => loadKeyring({ keys: [{ id: 'k', privateKeyFile: junk }] }), 'secrets.keys[0].privateKeyFile');
    settingError(() => loadKeyring({ keys: [{ id: 'k', publicKeyFile: junk }] }), 'secrets.keys[0].publicKeyFile');
    const locked = path.join(dir, 'locked.pem');
    writeFileSync(locked, k1.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }));
    const err = settingError(() => loadKeyring({ keys: [{ id: 'k', privateKeyFile: locked }] }), 'secrets.keys[0].privateKeyFile');
    expect(leakedIn(err, [readFileSync(locked, 'utf8').split('\n')[1]!])).toEqual([]);
  });

  it('a key without files, duplicate ids, bad ids', () => {
    settingError(() => loadKeyring({ keys: [{ id: 'k1' }] }), 'secrets.keys[0]');
    settingError(
      () => loadKeyring({ keys: [{ id: 'k1', privateKeyFile: k1.privateKeyFile }, { id: 'k1', privateKeyFile: k2.privateKeyFile }] }),
      'secrets.keys[1].id',
    );
    settingError(() => loadKeyring({ keys: [{ id: 'a b', privateKeyFile: k1.privateKeyFile }] }), 'secrets.keys[0].id');
  });

  it('encryptKey: must name a configured key; default is the first key', () => {
    const keys = [
      { id: 'k1', privateKeyFile: k1.privateKeyFile },
      { id: 'k2', privateKeyFile: k2.privateKeyFile },
    ];
    expect(loadKeyring({ keys }).encryptKeyId).toBe('k1');
    expect(loadKeyring({ keys, encryptKey: 'k2' }).encryptKeyId).toBe('k2');
    settingError(() => loadKeyring({ keys, encryptKey: 'k3' }), 'secrets.encryptKey');
  });

  it('encryptionKey(id) for a named key; unknown ids are echoed only when well-formed', () => {
    const ring = loadKeyring({ keys: [{ id: 'k1', privateKeyFile: k1.privateKeyFile }] });
    expect(ring.encryptionKey('k1').id).toBe('k1');
    expect(thrown(() => ring.encryptionKey('k9')).message).toBe("No encryption key: key id 'k9' is not configured");
    expect(thrown(() => ring.encryptionKey('<script>')).message).toBe('No encryption key: malformed key id');
  });
});

describe('rotation', () => {
  it('values of k1 still decrypt after k2 becomes encryptKey; new values use k2', () => {
    const before = loadKeyring({ keys: [{ id: 'k1', privateKeyFile: k1.privateKeyFile }] });
    const old = encryptValue('old secret', before.encryptionKey());
    expect(old.startsWith('{cipher}{key:k1}')).toBe(true);

    const after = loadKeyring({
      keys: [
        { id: 'k1', privateKeyFile: k1.privateKeyFile },
        { id: 'k2', privateKeyFile: k2.privateKeyFile },
      ],
      encryptKey: 'k2',
    });
    const fresh = encryptValue('new secret', after.encryptionKey());
    expect(fresh.startsWith('{cipher}{key:k2}')).toBe(true);
    expect(decryptValue(old, after)).toBe('old secret');
    expect(decryptValue(fresh, after)).toBe('new secret');

    // After re-encrypting everything, k1 is retired: its old values now fail, naming k1.
    const retired = loadKeyring({ keys: [{ id: 'k2', privateKeyFile: k2.privateKeyFile }] });
    const err = thrown(() => decryptValue(old, retired, 'db.password'));
    expect(err.data).toEqual({ key: 'db.password', keyId: 'k1', reason: DECRYPT_REASONS.unknownKey });
    expect(decryptValue(fresh, retired)).toBe('new secret');
  });

  it('createKeyring refuses malformed input (caller bugs)', () => {
    expect(() => createKeyring([{ id: 'k1' }])).toThrow(TypeError);
    expect(() => createKeyring([k1, { ...k2, id: 'k1' }])).toThrow(TypeError);
    expect(() => createKeyring([k1], 'k2')).toThrow(TypeError);
  });
});
