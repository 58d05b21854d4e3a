import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { initPki } from '../../src/pki/files.js';
import { checkSettingFiles } from '../../src/settings/files.js';
import { loadSettings } from '../../src/settings/load.js';

describe('checkSettingFiles', () => {
  it('names every unusable file at once, one line each, never the content', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'setting-files-'));
    const pki = await initPki(path.join(dir, 'pki'));
    writeFileSync(path.join(dir, 'not-a-cert.pem'), 'hello\n');
    writeFileSync(path.join(dir, 'jwks.json'), '{ nope');
    mkdirSync(path.join(dir, 'a-folder'));
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(path.join(dir, 'rsa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    const settings = loadSettings({
      baseDir: dir,
      env: {},
      overrides: {
        server: { tls: { cert: pki.serverCert, key: 'missing.key', clientCa: 'not-a-cert.pem', crl: ['a-folder'] } },
        repositories: [{ name: 'config', path: 'repo', webhookSecretFile: 'no-secret' }],
        secrets: { keys: [{ id: 'k1', publicKeyFile: 'rsa.pub', privateKeyFile: 'rsa.pub' }] },
        jwt: { jwksFile: 'jwks.json' },
      },
    });
    expect(checkSettingFiles(settings)).toEqual([
      `  server.tls.key: cannot read ${path.join(dir, 'missing.key')} (ENOENT)`,
      `  server.tls.clientCa: ${path.join(dir, 'not-a-cert.pem')}: no PEM certificate (-----BEGIN CERTIFICATE-----) found`,
      `  server.tls.crl[0]: ${path.join(dir, 'a-folder')}: not a regular file`,
      `  secrets.keys[0].privateKeyFile: ${path.join(dir, 'rsa.pub')}: not an unencrypted PEM private key`,
      `  jwt.jwksFile: ${path.join(dir, 'jwks.json')}: not JSON (a JWK Set is expected)`,
      `  repositories[0].webhookSecretFile: cannot read ${path.join(dir, 'no-secret')} (ENOENT)`,
    ]);
  });

  it('accepts a usable set', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'setting-files-'));
    const pki = await initPki(dir);
    const settings = loadSettings({ env: {}, overrides: { server: { tls: { cert: pki.serverCert, key: pki.serverKey, clientCa: pki.caCert } }, repositories: [{ name: 'c', path: dir }] } });
    expect(checkSettingFiles(settings)).toEqual([]);
  });
});
