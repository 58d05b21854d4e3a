import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { initPki, issueClientFiles } from '../../src/pki/files.js';
import { buildPkcs12 } from '../../src/pki/pkcs12.js';

describe('buildPkcs12', () => {
  it.each(['ecdsa-p256', 'rsa-2048'] as const)('writes a keystore the JVM reads (%s): keytool lists one PrivateKeyEntry with the chain', async (algorithm) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'p12-'));
    await initPki(dir, { algorithm });
    const files = await issueClientFiles(dir, 'orders');
    const chain = readFileSync(files.cert, 'utf8') + readFileSync(path.join(dir, 'ca.crt'), 'utf8');
    const der = await buildPkcs12(readFileSync(files.key, 'utf8'), chain, 'chang3it!', 'orders');
    const p12 = path.join(dir, 'orders.p12');
    writeFileSync(p12, der);
    const out = execFileSync('keytool', ['-list', '-v', '-keystore', p12, '-storetype', 'PKCS12', '-storepass', 'chang3it!'], { encoding: 'utf8' });
    expect(out).toContain('Your keystore contains 1 entry');
    expect(out).toMatch(/Alias name: orders/);
    expect(out).toContain('Entry type: PrivateKeyEntry');
    expect(out).toContain('Certificate chain length: 2');
    expect(out).toContain('Owner: CN=orders');
    // The private key decrypts too: keytool copies the entry into a JKS keystore.
    const jks = path.join(dir, 'orders.jks');
    execFileSync('keytool', ['-importkeystore', '-noprompt', '-srckeystore', p12, '-srcstoretype', 'PKCS12', '-srcstorepass', 'chang3it!', '-destkeystore', jks, '-deststoretype', 'JKS', '-deststorepass', 'other-pass'], { encoding: 'utf8' });
    expect(execFileSync('keytool', ['-list', '-keystore', jks, '-storetype', 'JKS', '-storepass', 'other-pass'], { encoding: 'utf8' })).toMatch(/orders, .*PrivateKeyEntry/);
    // The wrong password is refused (the MAC holds).
    const wrong = spawnSync('keytool', ['-list', '-keystore', p12, '-storetype', 'PKCS12', '-storepass', 'wrong-password'], { encoding: 'utf8' });
    expect(wrong.status).not.toBe(0);
    expect(wrong.stdout + wrong.stderr).toMatch(/password was incorrect|integrity/i);
  }, 60_000);

  it('refuses a short password and a key that is not the certificate\'s', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'p12-'));
    await initPki(dir);
    const a = await issueClientFiles(dir, 'orders');
    const b = await issueClientFiles(dir, 'billing');
    await expect(buildPkcs12(readFileSync(a.key, 'utf8'), readFileSync(a.cert, 'utf8'), '12345', 'orders')).rejects.toMatchObject({ code: 'CFG_ERR_PKI', message: expect.stringContaining('at least 6 characters') });
    await expect(buildPkcs12(readFileSync(b.key, 'utf8'), readFileSync(a.cert, 'utf8'), '123456', 'orders')).rejects.toMatchObject({ code: 'CFG_ERR_PKI', message: 'the private key does not belong to the certificate' });
  });
});
