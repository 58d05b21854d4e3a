/**
 * config-init (the built bundle) against transport faults on real parts (issue 7):
 *
 * - through an L4 proxy that accepts and resets while a REAL config-service restarts
 *   behind it: every run waits for the service and publishes; none exits 77;
 * - a real mTLS server that rejects the client certificate: exit 77 under TLS 1.3 and
 *   TLS 1.2, both for a server that answers with a TLS alert (`openssl s_server`) and for
 *   config-service, which answers 401;
 * - a certificate replaced on disk while config-init retries: the new one is used (the
 *   service's audit event carries its fingerprint).
 *
 * Needs the `openssl` command (Debian: `apt-get install openssl`); the tests fail, naming
 * it, when it is missing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCa, type CertificateBundle } from 'config-service';
import {
  httpsGet,
  makeCerts,
  makeGitRepo,
  makeIssuer,
  runInit,
  startInit,
  startTcpProxy,
  startTestService,
  type ClientCert,
  type GitTestRepo,
  type TestIssuer,
  type TestPki,
  type TestService,
} from '#helpers';

const FILES = { 'orders/application.yml': 'orders:\n  currency: EUR\n  retries: 3\n' };
const EXPECTED_PROPERTIES = 'orders.currency=EUR\norders.retries=3\n';

let pki: TestPki;
let orders: ClientCert;
let foreign: ClientCert;
let expired: ClientCert;
let otherCa: CertificateBundle;
let repo: GitTestRepo;
let issuer: TestIssuer;
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  pki = await makeCerts('init-transport');
  otherCa = await createCa({ commonName: 'some other CA' });
  const day = 86_400_000;
  [orders, foreign, expired] = await Promise.all([
    pki.client('orders'),
    pki.client('orders', { ca: otherCa }),
    pki.client('orders', { notBefore: new Date(Date.now() - 10 * day), notAfter: new Date(Date.now() - day) }),
  ]);
  repo = await makeGitRepo(FILES, { branch: 'main' });
  issuer = makeIssuer(pki.dir);
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(() => repo?.remove());

function startService(port = 0): Promise<TestService> {
  const jwt = { publicKeyFile: issuer.publicKeyFile, issuer: issuer.issuer, audience: issuer.audience };
  return startTestService({ pki, repository: { path: repo.dir, branch: 'main' }, settings: { jwt }, server: { port } });
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

function initArgs(server: string, out: string, cert: { certFile: string; keyFile: string }, extra: string[] = []): string[] {
  return ['fetch', '--server', server, '--app', 'orders', '--cert', cert.certFile, '--key', cert.keyFile, '--ca', pki.caFile,
    '--output-dir', out, '--format', 'properties', '--termination-log', '', ...extra];
}

/** Waits until `cond()` holds, polling; fails after `timeoutMs` with `what`. */
async function waitFor(cond: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function auditEvents(service: TestService, query: string): Promise<Array<Record<string, unknown>>> {
  const token = await issuer.sign({ sub: 'auditor', scope: 'audit:read', apps: ['*'] });
  const res = await httpsGet(service.apiUrl, `/v1/audit?${query}`, { ca: pki.ca.certPem, headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return res.json<{ events: Array<Record<string, unknown>> }>().events;
}

const fingerprint = (pem: string): string => new X509Certificate(pem).fingerprint256.replaceAll(':', '').toLowerCase();

describe('config-init through an L4 proxy while config-service restarts', () => {
  it('20 runs started while the backend is down all wait for it and publish (none exits 77)', async () => {
    // A real service, stopped: its port is where it will come back.
    const first = await startService();
    const port = portOf(first.apiUrl);
    await first.close();
    const proxy = await startTcpProxy({ targetPort: port });
    cleanups.push(() => proxy.close());

    const outs = Array.from({ length: 20 }, () => path.join(mkdtempSync(path.join(os.tmpdir(), 'init-restart-')), 'config'));
    const runs = outs.map((out) => startInit(initArgs(`https://127.0.0.1:${proxy.port}`, out, orders, ['--deadline', '120000', '--timeout', '5000'])));
    // The balancer accepts and resets every connection while the backend is down. Before
    // the fix, 3 such resets in a row were taken for a certificate rejection (exit 77):
    // every run must live through 3 of them here.
    await Promise.all(runs.map((r) => r.waitForStderr(/(retrying[^\n]*ECONNRESET[^\n]*\n[\s\S]*){3}/)));
    const resetsWhileDown = proxy.stats.reset;

    const second = await startService(port);
    cleanups.push(() => second.close());
    const results = await Promise.all(runs.map((r) => r.done));

    expect(resetsWhileDown).toBeGreaterThanOrEqual(60);
    expect(proxy.stats.targetFailures).toBeGreaterThanOrEqual(60);
    expect(results.map((r) => r.code)).toEqual(Array(20).fill(0));
    for (const [i, r] of results.entries()) {
      expect(r.stderr).not.toMatch(/rejected the client certificate|exit 77/);
      expect(r.stderr).toMatch(/ECONNRESET.*\(before the TLS handshake completed\)/);
      expect(readFileSync(path.join(outs[i]!, 'application.properties'), 'utf8')).toBe(EXPECTED_PROPERTIES);
    }
  });

  it('connections reset on accept, then black-holed, are retried until the service answers', async () => {
    const service = await startService();
    cleanups.push(() => service.close());
    const proxy = await startTcpProxy({ targetPort: portOf(service.apiUrl), mode: 'reset-on-accept' });
    cleanups.push(() => proxy.close());
    const outs = Array.from({ length: 3 }, () => path.join(mkdtempSync(path.join(os.tmpdir(), 'init-proxy-')), 'config'));
    const runs = outs.map((out) => startInit(initArgs(`https://127.0.0.1:${proxy.port}`, out, orders, ['--deadline', '120000', '--timeout', '1000'])));
    await waitFor(() => proxy.stats.reset >= 6, '6 connections reset on accept');
    await proxy.setMode('drop');
    await waitFor(() => proxy.stats.dropped >= 3, '3 connections black-holed');
    // Switching to forward resumes held connections, so wait until one attempt gave up on its own.
    await Promise.race(runs.map((r) => r.waitForStderr(/ETIMEDOUT: attempt timed out after 1000 ms/)));
    await proxy.setMode('forward');
    const results = await Promise.all(runs.map((r) => r.done));
    expect(results.map((r) => r.code)).toEqual([0, 0, 0]);
    for (const [i, r] of results.entries()) {
      expect(readFileSync(path.join(outs[i]!, 'application.properties'), 'utf8')).toBe(EXPECTED_PROPERTIES);
      expect(r.stderr).not.toMatch(/exit 77/);
    }
    expect(results.some((r) => /ETIMEDOUT: attempt timed out after 1000 ms/.test(r.stderr))).toBe(true);
  });

  it('a backend that stays down ends in 69 at the deadline, not 77', async () => {
    const stopped = await startService();
    const port = portOf(stopped.apiUrl);
    await stopped.close();
    const proxy = await startTcpProxy({ targetPort: port });
    cleanups.push(() => proxy.close());
    const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'init-down-')), 'config');
    const res = await runInit(initArgs(`https://127.0.0.1:${proxy.port}`, out, orders, ['--deadline', '3000', '--timeout', '1000']));
    expect(res.code).toBe(69);
    expect(res.stderr).toMatch(/config-service unavailable: gave up after \d+ attempt\(s\) in \d+ ms \(deadline 3000 ms\)/);
    expect(res.stderr).toMatch(/last error: .*ECONNRESET.*\(before the TLS handshake completed\)/);
    expect(proxy.stats.targetFailures).toBeGreaterThanOrEqual(2);
  });
});

describe('a real mTLS server that rejects the client certificate → 77', () => {
  const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

  async function freePort(): Promise<number> {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    return port;
  }

  /** `openssl s_server` verifying client certificates inside the handshake (it answers a bad one with a TLS alert). */
  async function opensslServer(version: '-tls1_2' | '-tls1_3'): Promise<string> {
    if (!hasOpenssl) throw new Error('this test needs the openssl command (Debian: apt-get install openssl)');
    const port = await freePort();
    const child: ChildProcess = spawn('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, version, '-cert', pki.serverCertFile, '-key', pki.serverKeyFile,
      '-CAfile', pki.caFile, '-Verify', '1', '-verify_return_error', '-www', '-quiet'], { stdio: 'ignore' });
    cleanups.push(() => {
      child.kill('SIGKILL');
    });
    for (let i = 0; i < 100; i++) {
      const up = await new Promise<boolean>((resolve) => {
        const c = net.connect(port, '127.0.0.1', () => (c.destroy(), resolve(true)));
        c.on('error', () => resolve(false));
      });
      if (up) return `https://127.0.0.1:${port}`;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`openssl s_server never listened on ${port}`);
  }

  it.each<['-tls1_3' | '-tls1_2', 'foreign' | 'expired', string, string]>([
    ['-tls1_3', 'foreign', 'after the TLSv1.3 handshake', 'TLS alert 48 unknown_ca'],
    ['-tls1_3', 'expired', 'after the TLSv1.3 handshake', 'TLS alert 45 certificate_expired'],
    ['-tls1_2', 'foreign', 'during the TLS handshake', 'TLS alert 48 unknown_ca'],
    ['-tls1_2', 'expired', 'during the TLS handshake', 'TLS alert 45 certificate_expired'],
  ])('openssl s_server %s, a %s certificate: TLS alert → 77 at once, nothing retried', async (version, which, when, alert) => {
    const url = await opensslServer(version);
    const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'init-alert-')), 'config');
    const res = await runInit(initArgs(url, out, which === 'foreign' ? foreign : expired, ['--deadline', '60000']));
    expect(res.code).toBe(77);
    expect(res.stderr).toContain(`the server rejected the client certificate ${when} (${alert}); check --cert (env CONFIG_INIT_CERT) (expiry, issuer) and that the service trusts its CA`);
    expect(res.stderr).not.toMatch(/retrying/);
    expect(existsSync(out)).toBe(false);
  });

  it.each<[string, Record<string, string>]>([
    ['TLS 1.3', {}],
    // Node's own switch caps config-init's side at TLS 1.2.
    ['TLS 1.2', { NODE_OPTIONS: '--tls-max-v1.2' }],
  ])('config-service refuses a certificate of another CA with 401 under %s → 77', async (_name, env) => {
    const service = await startService();
    cleanups.push(() => service.close());
    const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'init-401-')), 'config');
    const res = await runInit(initArgs(service.apiUrl, out, foreign, ['--deadline', '60000']), env);
    expect(res.code).toBe(77);
    expect(res.stderr).toMatch(/config-service refused app 'orders' \(format properties\): HTTP 401/);
    expect(res.stderr).not.toMatch(/retrying/);
    const denied = await auditEvents(service, 'outcome=denied');
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({ status: 401, outcome: 'denied', actor: { kind: 'certificate', claimed: { fingerprint256: fingerprint(foreign.cert) } } });
    // An unverified certificate is recorded as what it claims, never as the subject.
    expect(denied[0]!.actor).not.toHaveProperty('subject');
  });
});

describe('a certificate replaced while config-init retries', () => {
  it('is used by the next attempt: the audit event carries the new fingerprint', async () => {
    // A kubelet-style secret volume: tls.crt and tls.key are links through ..data.
    const secret = mkdtempSync(path.join(os.tmpdir(), 'init-secret-'));
    let n = 0;
    const version = (cert: ClientCert): string => {
      const v = `..v${++n}`;
      mkdirSync(path.join(secret, v));
      writeFileSync(path.join(secret, v, 'tls.crt'), cert.cert);
      writeFileSync(path.join(secret, v, 'tls.key'), cert.key, { mode: 0o600 });
      return v;
    };
    symlinkSync(version(expired), path.join(secret, '..data'));
    symlinkSync('..data/tls.crt', path.join(secret, 'tls.crt'));
    symlinkSync('..data/tls.key', path.join(secret, 'tls.key'));
    copyFileSync(pki.caFile, path.join(secret, 'ca.crt'));
    const rotated = await pki.client('orders');

    // The service is down: nothing listens where it will come up.
    const stopped = await startService();
    const port = portOf(stopped.apiUrl);
    await stopped.close();
    const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'init-rotate-')), 'config');
    const run = startInit(initArgs(`https://127.0.0.1:${port}`, out, { certFile: path.join(secret, 'tls.crt'), keyFile: path.join(secret, 'tls.key') },
      ['--ca', path.join(secret, 'ca.crt'), '--deadline', '120000', '--timeout', '5000']));
    await run.waitForStderr(/retrying.*ECONNREFUSED/);

    // cert-manager renews the (expired) certificate: the kubelet swaps ..data.
    symlinkSync(version(rotated), path.join(secret, '..data_tmp'));
    renameSync(path.join(secret, '..data_tmp'), path.join(secret, '..data'));
    const service = await startService(port);
    cleanups.push(() => service.close());

    const res = await run.done;
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/the client certificate, key or CA changed on disk; the next attempt uses them on a new connection/);
    expect(readFileSync(path.join(out, 'application.properties'), 'utf8')).toBe(EXPECTED_PROPERTIES);
    const events = await auditEvents(service, 'app=orders&action=config.read');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ status: 200, outcome: 'allowed', actor: { kind: 'certificate', subject: 'orders', fingerprint256: fingerprint(rotated.cert) } });
    expect(fingerprint(rotated.cert)).not.toBe(fingerprint(expired.cert));
  });
});
