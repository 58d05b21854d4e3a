/**
 * The table of `src/transport-errors.ts`, row by row, against real servers on loopback:
 * plain TCP servers that reset, close or hang, a plain-HTTP port, a server our CA does
 * not trust, `openssl s_server` (alerts) and Node's TLS server (no alert) under TLS 1.2
 * and 1.3. Then the re-reading and new-connection rules of {@link TlsClient}.
 */
import http from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { copyFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FetchError } from '../src/errors.js';
import { classifyTransportError, Retryable } from '../src/retry.js';
import { errorCode, tlsAlertOf, type TransportFailure } from '../src/transport-errors.js';
import { loadTlsMaterial, TlsClient, type AttemptOutcome, type TlsFiles, type TlsReloadInfo } from '../src/transport.js';
import { makeCerts, type TestCerts } from './helpers/certs.js';
import { configAnswer, startServer, type TestServer } from './helpers/server.js';
import { freePort, startOpensslServer } from './helpers/openssl-server.js';

let certs: TestCerts;

beforeAll(async () => {
  certs = await makeCerts();
});

const fingerprint = (pem: string): string => new X509Certificate(pem).fingerprint256;

async function clientFor(which: 'client' | 'foreign' | 'expired' = 'client', opts: { files?: TlsFiles; onReload?: (i: TlsReloadInfo) => void } = {}): Promise<TlsClient> {
  const f = certs.files;
  const files = which === 'client' ? { certFile: f.cert, keyFile: f.key, caFile: f.ca } : which === 'foreign' ? { certFile: f.foreignCert, keyFile: f.foreignKey, caFile: f.ca } : { certFile: f.expiredCert, keyFile: f.expiredKey, caFile: f.ca };
  return new TlsClient({ initial: await loadTlsMaterial(opts.files ?? files), files: opts.files, onReload: opts.onReload });
}

async function once(url: string, which: 'client' | 'foreign' | 'expired' = 'client', timeoutMs = 3000): Promise<AttemptOutcome> {
  const client = await clientFor(which);
  try {
    return await client.request(new URL('/', url), 'text/plain', timeoutMs);
  } finally {
    client.close();
  }
}

function failureOf(outcome: AttemptOutcome): TransportFailure {
  if (!('failure' in outcome)) throw new Error(`expected a transport failure, got HTTP ${outcome.res.status}`);
  return outcome.failure;
}

async function tcpServer(onConnection: (socket: Socket) => void): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    onConnection(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('what Node reports, and how config-init classifies it', () => {
  it('nothing listens: ECONNREFUSED before the handshake → retried', async () => {
    const f = failureOf(await once(`https://127.0.0.1:${await freePort()}`));
    expect(errorCode(f.error)).toBe('ECONNREFUSED');
    expect(f).toMatchObject({ handshakeDone: false, reused: false, answered: false });
    expect(classifyTransportError(f)).toBeInstanceOf(Retryable);
  });

  it.each<[string, (s: Socket) => void, RegExp]>([
    ['an L4 proxy that accepts and resets at once', (s) => s.resetAndDestroy(), /^(connect|read) ECONNRESET/],
    ['a server that reads the ClientHello and resets', (s) => s.once('data', () => s.resetAndDestroy()), /^read ECONNRESET$/],
    ['a server that accepts and closes (FIN)', (s) => s.end(), /^Client network socket disconnected before secure TLS connection was established$/],
  ])('%s: ECONNRESET before the handshake → retried, not a certificate rejection', async (_name, behave, message) => {
    const server = await tcpServer(behave);
    try {
      for (let i = 0; i < 5; i++) {
        const f = failureOf(await once(server.url));
        expect(errorCode(f.error)).toBe('ECONNRESET');
        expect((f.error as Error).message).toMatch(message);
        expect(f.handshakeDone).toBe(false);
        const r = classifyTransportError(f);
        expect(r).toBeInstanceOf(Retryable);
        expect((r as Retryable).silentClose).toBe(false);
      }
    } finally {
      await server.close();
    }
  });

  it('a server that accepts and never answers: our ETIMEDOUT → retried', async () => {
    const server = await tcpServer(() => undefined);
    try {
      const f = failureOf(await once(server.url, 'client', 300));
      expect(errorCode(f.error)).toBe('ETIMEDOUT');
      expect(f.handshakeDone).toBe(false);
      expect(classifyTransportError(f)).toBeInstanceOf(Retryable);
    } finally {
      await server.close();
    }
  });

  it('a plain-HTTP port: EPROTO wrong version number, no alert → retried', async () => {
    const plain = http.createServer((_q, a) => a.end('plain'));
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    try {
      const f = failureOf(await once(`https://127.0.0.1:${(plain.address() as AddressInfo).port}`));
      expect(errorCode(f.error)).toBe('EPROTO');
      expect((f.error as Error).message).toMatch(/wrong version number/);
      expect(tlsAlertOf(f.error)).toBeUndefined();
      expect(classifyTransportError(f)).toBeInstanceOf(Retryable);
    } finally {
      plain.closeAllConnections();
      await new Promise<void>((r) => plain.close(() => r()));
    }
  });

  it('a server our CA does not trust → final 77 CFG_INIT_ERR_SERVER_UNTRUSTED', async () => {
    const client = new TlsClient({ initial: { ...(await loadTlsMaterial({ certFile: certs.files.cert, keyFile: certs.files.key, caFile: certs.files.foreignCert })) } });
    const server = await startServer(certs);
    try {
      const f = failureOf(await client.request(new URL('/', server.url), 'text/plain', 3000));
      // The test server sends its chain with the CA, which --ca does not hold.
      expect(errorCode(f.error)).toBe('SELF_SIGNED_CERT_IN_CHAIN');
      expect((classifyTransportError(f) as FetchError).code).toBe('CFG_INIT_ERR_SERVER_UNTRUSTED');
    } finally {
      client.close();
      await server.close();
    }
  });

  it.each<[string, 'foreign' | 'expired', number, string]>([
    ['-tls1_2', 'foreign', 48, 'unknown_ca'],
    ['-tls1_2', 'expired', 45, 'certificate_expired'],
    ['-tls1_3', 'foreign', 48, 'unknown_ca'],
    ['-tls1_3', 'expired', 45, 'certificate_expired'],
  ])('openssl s_server %s refusing a %s client certificate: alert → final 77', async (version, which, alert, name) => {
    const server = await startOpensslServer(certs, [version]);
    try {
      const f = failureOf(await once(server.url, which));
      if (version === '-tls1_2') {
        // The alert replaces the server's Finished: no secureConnect, and Node says EPROTO.
        expect(f.handshakeDone).toBe(false);
        expect(errorCode(f.error)).toBe('EPROTO');
      } else {
        // TLS 1.3: our side finished first; the alert comes with the first read.
        expect(f.handshakeDone).toBe(true);
        expect(f.protocol).toBe('TLSv1.3');
        expect(errorCode(f.error)).toMatch(/^ERR_SSL_(SSLV3|TLSV1)_ALERT_/);
      }
      expect(tlsAlertOf(f.error)).toEqual({ number: alert, name, certificate: true });
      const r = classifyTransportError(f);
      expect(r).toBeInstanceOf(FetchError);
      expect((r as FetchError).code).toBe('CFG_INIT_ERR_NOT_AUTHORIZED');
    } finally {
      await server.close();
    }
  });

  it.each<[string, boolean]>([
    ['TLSv1.2', false],
    ['TLSv1.3', true],
  ])('a Node.js server (rejectUnauthorized) refusing the certificate under %s: ECONNRESET, no alert → retried', async (version, handshakeDone) => {
    const server = await startServer(certs, { minVersion: version as 'TLSv1.2', maxVersion: version as 'TLSv1.2' });
    try {
      const f = failureOf(await once(server.url, 'foreign'));
      expect(errorCode(f.error)).toBe('ECONNRESET');
      expect(tlsAlertOf(f.error)).toBeUndefined();
      expect(f.handshakeDone).toBe(handshakeDone);
      const r = classifyTransportError(f);
      expect(r).toBeInstanceOf(Retryable);
      // Under TLS 1.2 it is indistinguishable from a proxy that closes; under TLS 1.3 it is
      // the ambiguous "silent close after the handshake".
      expect((r as Retryable).silentClose).toBe(handshakeDone);
      expect(server.requests).toHaveLength(0);
    } finally {
      await server.close();
    }
  });

  it('a reused keep-alive socket the server drops: reused, not a silent close', async () => {
    const server = await startServer(certs);
    server.handler = (_r, n) => (n === 1 ? configAnswer('properties', 'a=1\n', 'a'.repeat(40)) : 'destroy');
    const client = await clientFor();
    try {
      const first = await client.request(new URL('/', server.url), 'text/plain', 3000);
      expect('res' in first && first.res.status).toBe(200);
      const f = failureOf(await client.request(new URL('/', server.url), 'text/plain', 3000));
      expect(f).toMatchObject({ reused: true, handshakeDone: true, answered: false });
      expect((classifyTransportError(f) as Retryable).silentClose).toBe(false);
      expect(server.connections).toHaveLength(1);
    } finally {
      client.close();
      await server.close();
    }
  });
});

describe('TlsClient: fresh material for every attempt, a new connection after a failure', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer(certs);
  });
  afterAll(async () => {
    await server.close();
  });

  /** A kubelet-style secret volume: tls.crt and tls.key are links through `..data`, swapped by rename. */
  async function secretVolume(cert: string, key: string): Promise<{ files: TlsFiles; swap(cert: string, key: string): Promise<void> }> {
    const { mkdtemp, mkdir, symlink } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'config-init-secret-'));
    let n = 0;
    const version = async (c: string, k: string): Promise<string> => {
      const v = `..v${++n}`;
      await mkdir(join(dir, v));
      await copyFile(c, join(dir, v, 'tls.crt'));
      await copyFile(k, join(dir, v, 'tls.key'));
      return v;
    };
    await symlink(await version(cert, key), join(dir, '..data'));
    await symlink('..data/tls.crt', join(dir, 'tls.crt'));
    await symlink('..data/tls.key', join(dir, 'tls.key'));
    await copyFile(certs.files.ca, join(dir, 'ca.crt'));
    return {
      files: { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), caFile: join(dir, 'ca.crt') },
      swap: async (c, k) => {
        await symlink(await version(c, k), join(dir, '..data_tmp'));
        await rename(join(dir, '..data_tmp'), join(dir, '..data'));
      },
    };
  }

  it('keeps one connection while attempts succeed and the files do not change', async () => {
    server.handler = () => configAnswer('properties', 'a=1\n', 'a'.repeat(40));
    server.connections = [];
    const vol = await secretVolume(certs.files.cert, certs.files.key);
    const client = await clientFor('client', { files: vol.files });
    try {
      for (let i = 0; i < 3; i++) expect('res' in (await client.request(new URL('/', server.url), 'text/plain', 3000))).toBe(true);
      expect(server.connections).toHaveLength(1);
    } finally {
      client.close();
    }
  });

  it('uses a certificate rotated on disk on the next attempt, on a new connection', async () => {
    server.handler = () => configAnswer('properties', 'a=1\n', 'a'.repeat(40));
    server.connections = [];
    server.requests = [];
    const reloads: TlsReloadInfo[] = [];
    const vol = await secretVolume(certs.files.cert, certs.files.key);
    const client = await clientFor('client', { files: vol.files, onReload: (i) => reloads.push(i) });
    try {
      await client.request(new URL('/', server.url), 'text/plain', 3000);
      await vol.swap(certs.files.nextCert, certs.files.nextKey);
      await client.request(new URL('/', server.url), 'text/plain', 3000);
      expect(server.requests.map((r) => r.peerFingerprint256)).toEqual([fingerprint(certs.client.certPem), fingerprint(certs.nextClient.certPem)]);
      expect(server.connections).toHaveLength(2);
      expect(reloads).toEqual([{ outcome: 'changed' }]);
    } finally {
      client.close();
    }
  });

  it('opens a new connection after a failure, even with unchanged files (503 behind a load balancer)', async () => {
    server.handler = (_r, n) => (n === 1 ? { status: 503 } : configAnswer('properties', 'a=1\n', 'a'.repeat(40)));
    server.connections = [];
    server.requests = [];
    const client = await clientFor();
    try {
      const first = await client.request(new URL('/', server.url), 'text/plain', 3000);
      expect('res' in first && first.res.status).toBe(503);
      // The retry loop drops the connection after any failed attempt.
      client.discardConnection();
      await client.request(new URL('/', server.url), 'text/plain', 3000);
      expect(server.connections).toHaveLength(2);
    } finally {
      client.close();
    }
  });

  it('keeps the last good material when a re-read finds a key that does not match the certificate', async () => {
    server.handler = () => configAnswer('properties', 'a=1\n', 'a'.repeat(40));
    server.requests = [];
    const reloads: TlsReloadInfo[] = [];
    const vol = await secretVolume(certs.files.cert, certs.files.key);
    const client = await clientFor('client', { files: vol.files, onReload: (i) => reloads.push(i) });
    try {
      await client.request(new URL('/', server.url), 'text/plain', 3000);
      await vol.swap(certs.files.nextCert, certs.files.key);
      const second = await client.request(new URL('/', server.url), 'text/plain', 3000);
      expect('res' in second && second.res.status).toBe(200);
      expect(server.requests.map((r) => r.peerFingerprint256)).toEqual([fingerprint(certs.client.certPem), fingerprint(certs.client.certPem)]);
      expect(reloads).toHaveLength(1);
      expect(reloads[0]?.outcome).toBe('kept');
      expect(reloads[0]?.reason).toMatch(/^the client certificate, key or CA is not usable \(.*\); check --cert/);
      expect(reloads[0]?.reason).not.toContain('PRIVATE KEY');
    } finally {
      client.close();
    }
  });

  it('re-reads a removed file as a kept-material warning, never a crash', async () => {
    server.handler = () => configAnswer('properties', 'a=1\n', 'a'.repeat(40));
    const reloads: TlsReloadInfo[] = [];
    const vol = await secretVolume(certs.files.cert, certs.files.key);
    const client = await clientFor('client', { files: vol.files, onReload: (i) => reloads.push(i) });
    try {
      await client.request(new URL('/', server.url), 'text/plain', 3000);
      await writeFile(join(vol.files.certFile, '..', '..data_gone'), '');
      await rename(join(vol.files.certFile, '..', '..data_gone'), join(vol.files.certFile, '..', '..data'));
      const second = await client.request(new URL('/', server.url), 'text/plain', 3000);
      expect('res' in second && second.res.status).toBe(200);
      expect(reloads[0]).toMatchObject({ outcome: 'kept' });
      expect(reloads[0]?.reason).toMatch(/cannot read --cert \(env CONFIG_INIT_CERT\) file '.*tls\.crt': ENOTDIR/);
    } finally {
      client.close();
    }
  });
});
