/**
 * TLS material validation and reload (src/http/tls.ts) on a real `tls.Server`.
 */
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import { pino } from 'pino';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyBaseLogger } from 'fastify';
import { loadTlsMaterial, secureContextOptions, TlsReloader, type TlsFileSettings } from '../../src/http/tls.js';
import { certificateSerial, createCa, createCrl, issueCertificate, type CertificateBundle } from '../../src/pki/pki.js';

let ca: CertificateBundle;
let otherCa: CertificateBundle;
let server1: CertificateBundle;
let server2: CertificateBundle;

beforeAll(async () => {
  ca = await createCa({ commonName: 'Reload CA' });
  otherCa = await createCa({ commonName: 'Other CA' });
  const opts = { kind: 'server' as const, commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] };
  server1 = await issueCertificate(ca, opts);
  server2 = await issueCertificate(ca, opts);
});

function writeAtomic(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

async function files(): Promise<TlsFileSettings & { dir: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tls-reload-'));
  const f = { dir, cert: path.join(dir, 'server.crt'), key: path.join(dir, 'server.key'), clientCa: path.join(dir, 'ca.crt'), crl: [path.join(dir, 'crl.pem')] };
  writeFileSync(f.cert, server1.certPem);
  writeFileSync(f.key, server1.keyPem);
  writeFileSync(f.clientCa, ca.certPem);
  writeFileSync(f.crl[0]!, await createCrl(ca, []));
  return f;
}

async function expectInvalid(promise: Promise<unknown>, setting: string, rule: RegExp): Promise<void> {
  const err = (await promise.then(() => undefined, (e: unknown) => e)) as (Error & { code?: string; data?: { setting?: string } }) | undefined;
  expect(err, 'should have failed').toBeDefined();
  expect(err!.code).toBe('CFG_ERR_SETTINGS_INVALID');
  expect(err!.data?.setting).toBe(setting);
  expect(err!.message).toContain(setting);
  expect(err!.message).toMatch(rule);
  expect(err!.message).not.toContain('PRIVATE KEY');
}

describe('loadTlsMaterial', () => {
  it('loads valid material with its revocation list', async () => {
    const f = await files();
    const victim = await issueCertificate(ca, { kind: 'client', commonName: 'victim' });
    writeFileSync(f.crl[0]!, await createCrl(ca, [{ serialNumber: certificateSerial(victim.certPem) }]));
    const m = await loadTlsMaterial(f);
    expect(m.serverSerial).toBe(certificateSerial(server1.certPem));
    expect(m.crl).toHaveLength(1);
    expect(m.revoked.size).toBe(1);
    expect(m.warnings).toEqual([]);
  });

  it('names server.tls.key when the key belongs to another certificate', async () => {
    const f = await files();
    writeFileSync(f.key, server2.keyPem);
    await expectInvalid(loadTlsMaterial(f), 'server.tls.key', /does not belong/);
  });

  it('names server.tls.cert for garbage and for an expired certificate', async () => {
    const f = await files();
    writeFileSync(f.cert, 'not a certificate');
    await expectInvalid(loadTlsMaterial(f), 'server.tls.cert', /no PEM certificate/);
    const expired = await issueCertificate(ca, { kind: 'server', commonName: 'localhost', notBefore: new Date(Date.now() - 3 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
    writeFileSync(f.cert, expired.certPem);
    writeFileSync(f.key, expired.keyPem);
    await expectInvalid(loadTlsMaterial(f), 'server.tls.cert', /expired at/);
  });

  it('names server.tls.clientCa for a bundle without certificates', async () => {
    const f = await files();
    writeFileSync(f.clientCa, '');
    await expectInvalid(loadTlsMaterial(f), 'server.tls.clientCa', /no PEM certificate/);
  });

  it('names server.tls.crl[0] for an unparsable CRL and for one with a bad signature', async () => {
    const f = await files();
    writeFileSync(f.crl[0]!, '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n');
    await expectInvalid(loadTlsMaterial(f), 'server.tls.crl[0]', /not a valid X\.509 CRL/);
    writeFileSync(f.crl[0]!, 'garbage');
    await expectInvalid(loadTlsMaterial(f), 'server.tls.crl[0]', /no PEM CRL/);
    // Same issuer name as the trusted CA, signed by another key.
    const impostor = await createCa({ commonName: 'Reload CA' });
    writeFileSync(f.crl[0]!, await createCrl(impostor, []));
    await expectInvalid(loadTlsMaterial(f), 'server.tls.crl[0]', /not signed by its issuer/);
  });

  it('warns about a CRL of a CA outside the bundle and about a stale CRL', async () => {
    const f = await files();
    const stale = await createCrl(ca, [], { thisUpdate: new Date(Date.now() - 10 * 86_400_000), nextUpdate: new Date(Date.now() - 86_400_000) });
    writeFileSync(f.crl[0]!, stale + (await createCrl(otherCa, [])));
    const m = await loadTlsMaterial(f);
    expect(m.crl).toHaveLength(2);
    expect(m.warnings.join('\n')).toMatch(/nextUpdate/);
    expect(m.warnings.join('\n')).toMatch(/not in server\.tls\.clientCa/);
  });

  it('reads missing files as a settings error naming the file setting', async () => {
    const f = await files();
    await expectInvalid(loadTlsMaterial({ ...f, crl: [path.join(f.dir, 'missing.pem')] }), 'server.tls.crl[0]', /ENOENT/);
  });
});

describe('TlsReloader', () => {
  let server: Server | undefined;
  let reloader: TlsReloader | undefined;
  afterEach(async () => {
    reloader?.stop();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  const peerSerial = (port: number): Promise<string> =>
    new Promise((resolve, reject) => {
      const s = connect({ port, host: '127.0.0.1', ca: ca.certPem, servername: 'localhost' }, () => {
        const serial = s.getPeerCertificate().serialNumber.toLowerCase().replace(/^(00)+/, '');
        s.end();
        resolve(serial);
      });
      s.on('error', reject);
    });

  async function until(check: () => boolean | Promise<boolean>, ms = 8000): Promise<void> {
    const end = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > end) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('installs new material on change, keeps the old on a bad file, and counts both', async () => {
    const f = await files();
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (l: string) => void lines.push(l) }) as unknown as FastifyBaseLogger;
    const material = await loadTlsMaterial(f);
    server = createServer({ ...secureContextOptions(material) }, (s) => s.end());
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    reloader = new TlsReloader(server, f, material, logger, { pollIntervalMs: 200, debounceMs: 50 });
    await reloader.start();
    expect(await peerSerial(port)).toBe(certificateSerial(server1.certPem));

    writeAtomic(f.key, server2.keyPem);
    writeAtomic(f.cert, server2.certPem);
    await until(async () => (await peerSerial(port)) === certificateSerial(server2.certPem));
    expect(reloader.stats.reloads).toBe(1);
    expect(reloader.stats.serverSerial).toBe(certificateSerial(server2.certPem));
    // A new server certificate is not a trust change: open connections keep their verdict.
    expect(reloader.trustGeneration).toBe(0);

    writeAtomic(f.crl[0]!, 'broken');
    await until(() => reloader!.stats.failures >= 1);
    expect(reloader.stats.lastError).toMatch(/server\.tls\.crl\[0\]/);
    expect(await peerSerial(port)).toBe(certificateSerial(server2.certPem));
    const errorLine = lines.find((l) => l.includes('do not validate'));
    expect(errorLine).toContain('server.tls.crl[0]');
    expect(lines.join('\n')).not.toContain('PRIVATE KEY');

    const victim = await issueCertificate(ca, { kind: 'client', commonName: 'victim' });
    writeAtomic(f.crl[0]!, await createCrl(ca, [{ serialNumber: certificateSerial(victim.certPem) }]));
    await until(() => reloader!.isRevoked('CN=Reload CA', certificateSerial(victim.certPem)));
    expect(reloader.stats.reloads).toBe(2);
    // A new CRL is: the generation moves, and the revoked chain no longer verifies.
    expect(reloader.trustGeneration).toBe(1);
    const der = (pem: string) => new Uint8Array(Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64'));
    expect(reloader.verifyPeer([der(victim.certPem)])).toBe('CERT_REVOKED');
    const fine = await issueCertificate(ca, { kind: 'client', commonName: 'fine' });
    expect(reloader.verifyPeer([der(fine.certPem)])).toBeUndefined();
    writeAtomic(f.clientCa, otherCa.certPem);
    await until(() => reloader!.trustGeneration === 2);
    expect(reloader.verifyPeer([der(fine.certPem)])).toBe('UNABLE_TO_GET_ISSUER_CERT_LOCALLY');
  });

  it('stamps each connection with the trust generation its handshake was verified under', async () => {
    const f = await files();
    const logger = pino({ level: 'silent' }) as unknown as FastifyBaseLogger;
    const material = await loadTlsMaterial(f);
    const sockets: TLSSocket[] = [];
    server = createServer({ ...secureContextOptions(material) }, (s) => {
      sockets.push(s);
      s.end();
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    reloader = new TlsReloader(server, f, material, logger, { pollIntervalMs: 100, debounceMs: 20, handshakeTimeoutMs: 60_000 });
    await reloader.start();
    await peerSerial(port);
    await until(() => sockets.length === 1); // the server sees the handshake end after the client
    expect(reloader.handshakeGeneration(sockets[0]!)).toBe(0);
    writeAtomic(f.crl[0]!, await createCrl(ca, [], { crlNumber: 99n }));
    await until(() => reloader!.trustGeneration === 1);
    // Within a handshake timeout of the change a connection may have been accepted under
    // the old trust: it is stamped with the previous generation (re-verified on first use).
    await peerSerial(port);
    await until(() => sockets.length === 2);
    expect(reloader.handshakeGeneration(sockets[1]!)).toBe(0);
  });

  it('reloads from the periodic stat alone (no folder watch), and ignores unchanged files', async () => {
    const f = await files();
    const logger = pino({ level: 'silent' }) as unknown as FastifyBaseLogger;
    const material = await loadTlsMaterial(f);
    server = createServer({ ...secureContextOptions(material) }, (s) => s.end());
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    reloader = new TlsReloader(server, f, material, logger, { pollIntervalMs: 100, debounceMs: 20, watchFolders: false });
    await reloader.start();
    writeFileSync(path.join(f.dir, 'unrelated.txt'), 'x');
    await new Promise((r) => setTimeout(r, 400));
    expect(reloader.stats).toMatchObject({ reloads: 0, failures: 0 });
    expect(await reloader.reload()).toBe(false); // nothing changed
    writeAtomic(f.key, server2.keyPem);
    writeAtomic(f.cert, server2.certPem);
    await until(() => reloader!.stats.reloads === 1);
  });
});
