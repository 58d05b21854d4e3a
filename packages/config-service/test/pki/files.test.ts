import { X509Certificate } from 'node:crypto';
import { chmod, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { initPki, issueClientFiles, spiffeId } from '../../src/pki/files.js';
import { handshake } from './tls-helpers.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cfg-pki-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const mode = async (file: string): Promise<number> => (await stat(file)).mode & 0o777;

describe('initPki', () => {
  it('writes ca.crt, ca.key, server.crt, server.key with keys at 0600 and a server cert for localhost, 127.0.0.1, ::1', async () => {
    const files = await initPki(path.join(dir, 'pki'));
    const root = path.join(dir, 'pki');
    expect(files).toEqual({
      caCert: path.join(root, 'ca.crt'),
      caKey: path.join(root, 'ca.key'),
      serverCert: path.join(root, 'server.crt'),
      serverKey: path.join(root, 'server.key'),
    });
    expect((await readdir(root)).sort()).toEqual(['ca.crt', 'ca.key', 'server.crt', 'server.key']);
    expect(await mode(files.caKey)).toBe(0o600);
    expect(await mode(files.serverKey)).toBe(0o600);
    expect(await mode(files.caCert)).toBe(0o644);
    expect(await mode(files.serverCert)).toBe(0o644);
    expect(await mode(root)).toBe(0o700);
    const ca = new X509Certificate(await readFile(files.caCert));
    const server = new X509Certificate(await readFile(files.serverCert));
    expect(ca.subject).toBe('CN=config-service development CA');
    expect(ca.ca).toBe(true);
    expect(server.subject).toBe('CN=localhost');
    expect(server.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(server.checkIssued(ca) && server.verify(ca.publicKey)).toBe(true);
    expect((await readFile(files.caKey, 'utf8')).startsWith('-----BEGIN PRIVATE KEY-----\n')).toBe(true);
  });

  it('takes custom server names, telling DNS names from IP addresses', async () => {
    const files = await initPki(dir, { serverNames: ['config.internal', '10.0.0.5', 'fd00::5'] });
    const server = new X509Certificate(await readFile(files.serverCert));
    expect(server.subject).toBe('CN=config.internal');
    expect(server.subjectAltName).toBe('DNS:config.internal, IP Address:10.0.0.5, IP Address:FD00:0:0:0:0:0:0:5');
  });

  it('refuses to replace an existing CA unless forced', async () => {
    const files = await initPki(dir);
    const before = await readFile(files.caCert, 'utf8');
    await expect(initPki(dir)).rejects.toMatchObject({
      code: 'CFG_ERR_PKI',
      message: `${files.caCert} already exists; use --force to replace the CA (certificates it issued stop being trusted)`,
    });
    expect(await readFile(files.caCert, 'utf8')).toBe(before);
    await rm(files.caCert);
    await expect(initPki(dir)).rejects.toMatchObject({ code: 'CFG_ERR_PKI', message: `${files.caKey} already exists; use --force to replace the CA (certificates it issued stop being trusted)` });
    await initPki(dir, { force: true });
    expect(await readFile(files.caCert, 'utf8')).not.toBe(before);
    expect((await readdir(dir)).sort()).toEqual(['ca.crt', 'ca.key', 'server.crt', 'server.key']);
  });

  it('refuses an empty server name list', async () => {
    await expect(initPki(dir, { serverNames: [] })).rejects.toMatchObject({
      code: 'CFG_ERR_PKI',
      message: 'serverNames must name at least one DNS name or IP address',
    });
  });
});

describe('issueClientFiles', () => {
  it('writes <app>.crt and <app>.key (0600) with CN, SPIFFE URI SAN and DNS SAN, and they pass mutual TLS', async () => {
    const pki = await initPki(dir);
    const files = await issueClientFiles(dir, 'orders');
    expect(files).toEqual({ cert: path.join(dir, 'orders.crt'), key: path.join(dir, 'orders.key') });
    expect(await mode(files.key)).toBe(0o600);
    const cert = new X509Certificate(await readFile(files.cert));
    expect(cert.subject).toBe('CN=orders');
    expect(cert.subjectAltName).toBe('DNS:orders.default.svc, URI:spiffe://example.org/ns/default/sa/orders');
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);

    const r = await handshake(
      { key: await readFile(pki.serverKey), cert: await readFile(pki.serverCert), ca: await readFile(pki.caCert), requestCert: true, rejectUnauthorized: true },
      { ca: await readFile(pki.caCert), key: await readFile(files.key), cert: await readFile(files.cert), servername: 'localhost' },
    );
    expect(r).toMatchObject({ accepted: true, serverAuthorized: true });
  });

  it('uses the given trust domain and namespace, and leaves out the DNS SAN for names that are not DNS labels', async () => {
    await initPki(dir);
    const a = await issueClientFiles(dir, 'billing', { trustDomain: 'corp.test', namespace: 'payments', validityDays: 7 });
    const certA = new X509Certificate(await readFile(a.cert));
    expect(certA.subjectAltName).toBe('DNS:billing.payments.svc, URI:spiffe://corp.test/ns/payments/sa/billing');
    expect(Date.parse(certA.validTo) - Date.parse(certA.validFrom)).toBe(7 * 86_400_000 + 300_000);
    const b = await issueClientFiles(dir, 'my_app.v2');
    expect(new X509Certificate(await readFile(b.cert)).subjectAltName).toBe('URI:spiffe://example.org/ns/default/sa/my_app.v2');
  });

  it('refuses to replace an existing certificate or key without force, and leaves both as they were', async () => {
    await initPki(dir);
    const files = await issueClientFiles(dir, 'orders');
    const [cert, key] = [await readFile(files.cert, 'utf8'), await readFile(files.key, 'utf8')];
    await expect(issueClientFiles(dir, 'orders')).rejects.toMatchObject({
      code: 'CFG_ERR_PKI',
      message: `${files.cert} and ${files.key} already exist; use --force to replace them (the old certificate stays valid until it expires or is revoked)`,
    });
    await rm(files.cert);
    await expect(issueClientFiles(dir, 'orders')).rejects.toMatchObject({ code: 'CFG_ERR_PKI', message: expect.stringMatching(/^\S+orders\.key already exists; use --force to replace it/) });
    expect(await readFile(files.key, 'utf8')).toBe(key);
    expect(cert).toContain('BEGIN CERTIFICATE');
  });

  it('renews with force: issuing again replaces both files, and the key ends up 0600 whatever its old mode', async () => {
    await initPki(dir);
    const files = await issueClientFiles(dir, 'orders');
    const before = await readFile(files.cert, 'utf8');
    await chmod(files.key, 0o644);
    await issueClientFiles(dir, 'orders', { force: true });
    expect(await readFile(files.cert, 'utf8')).not.toBe(before);
    expect(await mode(files.key)).toBe(0o600);
    expect((await readdir(dir)).sort()).toEqual(['ca.crt', 'ca.key', 'orders.crt', 'orders.key', 'server.crt', 'server.key']);
  });

  it.each([
    ['ca', 'Invalid client (reserved in the PKI directory) name: ca'],
    ['server', 'Invalid client (reserved in the PKI directory) name: server'],
    ['../evil', 'Invalid application name: ../evil'],
    ['Orders', 'Invalid application name: Orders'],
    ['-x', 'Invalid application name: -x'],
  ])('refuses the app name %j', async (app, message) => {
    await initPki(dir);
    await expect(issueClientFiles(dir, app)).rejects.toMatchObject({ code: 'CFG_ERR_INVALID_NAME', message });
    expect((await readdir(dir)).sort()).toEqual(['ca.crt', 'ca.key', 'server.crt', 'server.key']);
  });

  it('refuses a bad namespace or trust domain', async () => {
    expect(() => spiffeId('Example.org', 'default', 'a')).toThrow('Invalid trust domain name: Example.org');
    expect(() => spiffeId('example.org', 'a/b', 'a')).toThrow('Invalid namespace name: a/b');
    expect(spiffeId('example.org', 'default', 'a')).toBe('spiffe://example.org/ns/default/sa/a');
  });

  it('needs the CA', async () => {
    await expect(issueClientFiles(dir, 'orders')).rejects.toMatchObject({
      code: 'CFG_ERR_PKI',
      message: `${path.join(dir, 'ca.crt')} not found; run 'config-service pki init' first`,
    });
  });

  it('refuses a CA whose key file was swapped', async () => {
    await initPki(dir);
    const other = await mkdtemp(path.join(tmpdir(), 'cfg-pki-other-'));
    try {
      const second = await initPki(other);
      await writeFile(path.join(dir, 'ca.key'), await readFile(second.caKey));
      await expect(issueClientFiles(dir, 'orders')).rejects.toMatchObject({
        code: 'CFG_ERR_PKI',
        message: 'CA private key does not belong to the CA certificate',
      });
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });
});
