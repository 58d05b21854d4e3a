/**
 * Certificate and CRL rotation without a restart (SPEC §3): the server certificate files
 * are replaced and a CRL entry is added while the service runs. New connections see the
 * new server certificate and the revoked client certificate gets 401 `CERT_REVOKED`
 * within seconds; a keep-alive connection opened before the change still completes a
 * request; a broken file is logged (naming the setting) and the old material kept.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { connect, type TLSSocket } from 'node:tls';
import { certificateSerial } from 'config-service';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsGet, makeCerts, makeGitRepo, makeIssuer, startTestService, writeFileAtomic, type ClientCert, type TestIssuer, type TestPki, type TestService } from '#helpers';

let pki: TestPki;
let issuer: TestIssuer;
let service: TestService;
let orders: ClientCert;
let victim: ClientCert;
let repoDir: string;

const normalize = (serial: string): string => serial.toLowerCase().replace(/^(00)+/, '');

beforeAll(async () => {
  pki = await makeCerts('reload');
  issuer = makeIssuer(pki.dir);
  orders = await pki.client('orders');
  victim = await pki.client('orders');
  await pki.writeCrl([]);
  const repo = await makeGitRepo({ 'orders/application.yml': 'x: 1\n' });
  repoDir = repo.dir;
  service = await startTestService({
    pki,
    repository: { path: repo.dir, branch: 'main' },
    server: { tls: { crl: [pki.crlFile] } },
    settings: { jwt: { publicKeyFile: issuer.publicKeyFile, issuer: issuer.issuer, audience: issuer.audience } },
  });
});

afterAll(async () => {
  await service?.close();
});

const port = (): number => Number(new URL(service.apiUrl).port);

/** Serial of the server certificate a NEW connection sees. */
function peerSerial(): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: port(), ca: pki.ca.certPem, cert: orders.cert, key: orders.key, servername: 'localhost' }, () => {
      const serial = normalize(s.getPeerCertificate().serialNumber);
      s.end();
      resolve(serial);
    });
    s.on('error', reject);
  });
}

/** One keep-alive connection (node https.Agent, one socket) for a client certificate. */
function keepAlive(cert: ClientCert) {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: pki.ca.certPem, cert: cert.cert, key: cert.key, servername: 'localhost' });
  const get = (p: string) =>
    new Promise<{ status: number; body: string; socket: TLSSocket; serverSerial: string }>((resolve, reject) => {
      const req = https.request(`${service.apiUrl}${p}`, { agent }, (res) => {
        // Read before 'end': the agent takes the socket back to its pool then.
        const socket = res.socket as TLSSocket;
        const serverSerial = normalize(socket.getPeerCertificate().serialNumber);
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, socket, serverSerial }));
      });
      req.on('error', reject);
      req.end();
    });
  return { get, close: () => agent.destroy() };
}

async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function auditEvent(requestId: string): Promise<Record<string, unknown>> {
  const token = await issuer.sign({ sub: 'auditor', scope: 'audit:read', apps: ['*'] });
  const res = await httpsGet(service.apiUrl, '/v1/audit?limit=1000', { ca: pki.ca.certPem, headers: { authorization: `Bearer ${token}` } });
  const event = res.json<{ events: Array<Record<string, unknown>> }>().events.find((e) => e.requestId === requestId);
  expect(event).toBeDefined();
  return event!;
}

describe('TLS rotation while the service runs', () => {
  it('new connections get the new certificate and CRL within seconds; live connections keep working', async () => {
    const oldSerial = certificateSerial(readFileSync(pki.serverCertFile, 'utf8'));
    expect(await peerSerial()).toBe(oldSerial);

    const ordersConn = keepAlive(orders);
    const victimConn = keepAlive(victim);
    try {
      const before = await ordersConn.get('/v1/apps/orders/config');
      expect(before.status).toBe(200);
      expect(before.serverSerial).toBe(oldSerial);
      expect((await victimConn.get('/v1/apps/orders/config')).status).toBe(200);

      const started = Date.now();
      const newSerial = await pki.rotateServerCert();
      await pki.writeCrl([victim.serial]);

      await until('the new server certificate', async () => ((await peerSerial()) === newSerial ? true : undefined));
      const revoked = await until('the revoked certificate to be refused', async () => {
        const res = await httpsGet(service.apiUrl, '/v1/apps/orders/config', { ca: pki.ca.certPem, cert: victim.cert, key: victim.key });
        return res.status === 401 ? res : undefined;
      });
      const elapsed = Date.now() - started;
      expect(elapsed).toBeLessThan(8000);

      const problem = revoked.json<{ code: string; detail: string; instance: string }>();
      expect(problem.code).toBe('unauthenticated');
      expect(problem.detail).toMatch(/client certificate revoked/);
      expect(await auditEvent(problem.instance)).toMatchObject({ outcome: 'denied', status: 401, reason: 'certificate_rejected:CERT_REVOKED' });

      // The keep-alive connection opened before the change completes a request, on the same
      // socket, still with the old server certificate.
      const after = await ordersConn.get('/v1/apps/orders/config');
      expect(after.status).toBe(200);
      expect(after.socket).toBe(before.socket);
      expect(after.serverSerial).toBe(oldSerial);

      // The revoked certificate's own live connection is refused from now on too.
      const victimAfter = await victimConn.get('/v1/apps/orders/config');
      expect(victimAfter.status).toBe(401);
      expect(await auditEvent(JSON.parse(victimAfter.body).instance)).toMatchObject({ reason: 'certificate_rejected:CERT_REVOKED' });

      // New connections of a valid certificate: 200 with the new server certificate.
      const fresh = keepAlive(orders);
      const res = await fresh.get('/v1/apps/orders/config');
      fresh.close();
      expect(res.status).toBe(200);
      expect(res.serverSerial).toBe(newSerial);

      const stats = service.api.tlsReloader.stats;
      expect(stats.reloads).toBeGreaterThanOrEqual(1);
      expect(stats.failures).toBe(0);
      expect(stats.serverSerial).toBe(newSerial);
      const metrics = await (await fetch(`${service.managementUrl}/metrics`)).text();
      expect(metrics).toMatch(new RegExp(`^config_service_tls_reloads_total ${stats.reloads}$`, 'm'));
      expect(metrics).toMatch(/^config_service_tls_reload_failures_total 0$/m);
    } finally {
      ordersConn.close();
      victimConn.close();
    }
  });

  it('keeps the current material when a new file is broken, logging the setting and no key material', async () => {
    const current = await peerSerial();
    const goodCert = readFileSync(pki.serverCertFile, 'utf8');
    const failuresBefore = service.api.tlsReloader.stats.failures;
    writeFileAtomic(pki.serverCertFile, '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n');
    await until('the failed reload', async () => (service.api.tlsReloader.stats.failures > failuresBefore ? true : undefined));
    expect(await peerSerial()).toBe(current);
    const ok = await httpsGet(service.apiUrl, '/v1/apps/orders/config', { ca: pki.ca.certPem, cert: orders.cert, key: orders.key });
    expect(ok.status).toBe(200);
    const line = service.logs.find((l) => l.includes('do not validate'));
    expect(line).toBeDefined();
    expect(JSON.parse(line!)).toMatchObject({ level: 50, setting: 'server.tls.cert' });
    expect(service.logs.join('\n')).not.toMatch(/PRIVATE KEY|BEGIN CERTIFICATE/);

    // A key that does not match the certificate is refused the same way.
    const otherKey = readFileSync((await pki.client('x')).keyFile, 'utf8');
    writeFileAtomic(pki.serverCertFile, goodCert);
    writeFileAtomic(pki.serverKeyFile, otherKey);
    await until('the key mismatch', async () => (service.api.tlsReloader.stats.lastError?.includes('server.tls.key') ? true : undefined));
    expect(await peerSerial()).toBe(current);

    // Fixed files are picked up again.
    const next = await pki.rotateServerCert();
    await until('the repaired material', async () => ((await peerSerial()) === next ? true : undefined));
    expect(service.api.tlsReloader.stats.lastError).toBeUndefined();
  });

  it('refuses to start with a CRL file that does not parse, naming the setting', async () => {
    const bad = `${pki.dir}/bad-crl.pem`;
    writeFileSync(bad, '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n');
    await expect(
      startTestService({ pki, repository: { path: repoDir, branch: 'main' }, server: { tls: { crl: [bad] } } }),
    ).rejects.toMatchObject({ code: 'CFG_ERR_SETTINGS_INVALID', message: expect.stringContaining('server.tls.crl[0]') });
  });
});
