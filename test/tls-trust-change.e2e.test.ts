/**
 * Trust changes reach open connections (issue 7): keep-alive connections opened BEFORE a
 * CRL or CA bundle change, each a raw TLS socket that sends its HTTP/1.1 requests one
 * after the other on the same connection.
 *
 * - A CRL that newly revokes a certificate: the next request on that certificate's open
 *   connection is 401 (exact problem body, reason `CERT_REVOKED`), audited, and the
 *   connection is closed (`Connection: close`).
 * - A CA bundle that no longer holds the client's CA: the same, with exactly the detail
 *   and reason a new handshake with that certificate gets (`SELF_SIGNED_CERT_IN_CHAIN`:
 *   a Node client sends its CA certificate along); the event records the certificate
 *   under `actor.claimed`.
 * - A connection whose certificate still verifies is served on, on the same socket.
 */
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { createCa, createCrl, type CertificateBundle } from 'config-service';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsGet, makeCerts, makeGitRepo, makeIssuer, startTestService, writeFileAtomic, type ClientCert, type TestIssuer, type TestPki, type TestService } from '#helpers';

let pki: TestPki;
let caB: CertificateBundle;
let crlB: string;
let issuer: TestIssuer;
let service: TestService;
/** Issued by the test CA (A). */
let orders: ClientCert;
let victim: ClientCert;
/** Issued by the second CA (B), which stays trusted. */
let billing: ClientCert;

const fingerprint = (pem: string): string => new X509Certificate(pem).fingerprint256.replaceAll(':', '').toLowerCase();

beforeAll(async () => {
  pki = await makeCerts('trust-change');
  issuer = makeIssuer(pki.dir);
  caB = await createCa({ commonName: 'second test CA' });
  orders = await pki.client('orders');
  victim = await pki.client('orders');
  billing = await pki.client('billing', { ca: caB });
  // Bundle A + B; every CA of the bundle has a CRL (CRLs are configured).
  writeFileSync(pki.caFile, `${pki.ca.certPem}\n${caB.certPem}\n`);
  await pki.writeCrl([]);
  crlB = path.join(pki.dir, 'crl-b.pem');
  writeFileSync(crlB, await createCrl(caB, []));
  const repo = await makeGitRepo({ 'orders/application.yml': 'x: 1\n', 'billing/application.yml': 'y: 2\n' });
  service = await startTestService({
    pki,
    repository: { path: repo.dir, branch: 'main' },
    server: { tls: { crl: [pki.crlFile, crlB] } },
    settings: { jwt: { publicKeyFile: issuer.publicKeyFile, issuer: issuer.issuer, audience: issuer.audience } },
  });
});

afterAll(async () => {
  await service?.close();
});

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** One TLS connection that sends HTTP/1.1 requests one at a time and reads each response. */
class KeepAliveConnection {
  readonly socket: TLSSocket;
  #buffer = Buffer.alloc(0);
  #waiter: (() => void) | undefined;
  closed = false;
  readonly #closedPromise: Promise<void>;

  private constructor(socket: TLSSocket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, d]);
      this.#waiter?.();
    });
    this.#closedPromise = new Promise((resolve) =>
      socket.on('close', () => {
        this.closed = true;
        this.#waiter?.();
        resolve();
      }),
    );
    socket.on('error', () => undefined);
  }

  static open(cert: ClientCert): Promise<KeepAliveConnection> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: Number(new URL(service.apiUrl).port), ca: pki.ca.certPem, cert: cert.cert, key: cert.key, servername: 'localhost' }, () =>
        resolve(new KeepAliveConnection(s)),
      );
      s.once('error', reject);
    });
  }

  /** Sends one GET and reads its response (Content-Length framed); fails after 30 s. */
  async get(p: string): Promise<RawResponse> {
    if (this.closed) throw new Error('connection closed');
    this.socket.write(`GET ${p} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    const end = Date.now() + 30_000;
    for (;;) {
      const res = this.#parse();
      if (res) return res;
      if (this.closed) throw new Error('connection closed before a full response');
      if (Date.now() > end) throw new Error('no response within 30 s');
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
        setTimeout(resolve, 100);
      });
    }
  }

  /** Resolves when the server closed the connection; fails after 30 s. */
  async waitClosed(): Promise<void> {
    await Promise.race([this.#closedPromise, new Promise((_, reject) => setTimeout(() => reject(new Error('connection still open after 30 s')), 30_000))]);
  }

  close(): void {
    this.socket.destroy();
  }

  #parse(): RawResponse | undefined {
    const headEnd = this.#buffer.indexOf('\r\n\r\n');
    if (headEnd < 0) return undefined;
    const [statusLine, ...lines] = this.#buffer.subarray(0, headEnd).toString('latin1').split('\r\n');
    const headers: Record<string, string> = {};
    for (const l of lines) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    if (this.#buffer.length < headEnd + 4 + length) return undefined;
    const body = this.#buffer.subarray(headEnd + 4, headEnd + 4 + length).toString('utf8');
    this.#buffer = this.#buffer.subarray(headEnd + 4 + length);
    return { status: Number(statusLine!.split(' ')[1]), headers, body };
  }
}

async function until<T>(what: string, check: () => Promise<T | undefined> | T | undefined, ms = 30_000): Promise<T> {
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
  expect(event, `audit event of ${requestId}`).toBeDefined();
  return event!;
}

const unauthenticated = (detail: string, instance: string) => ({
  type: 'urn:config-service:problem:unauthenticated',
  title: 'Unauthorized',
  status: 401,
  detail,
  code: 'unauthenticated',
  instance,
});

/** Waits until the reloader has installed a new trust generation. */
async function nextTrustGeneration(before: number): Promise<void> {
  await until('the new client CA bundle or CRL to be installed', () => (service.api.tlsReloader.trustGeneration > before ? true : undefined));
}

describe('trust changes reach open connections', () => {
  it('a CRL that newly revokes a certificate: its open connection gets 401 CERT_REVOKED and is closed; others are served on', async () => {
    const victimConn = await KeepAliveConnection.open(victim);
    const ordersConn = await KeepAliveConnection.open(orders);
    try {
      expect((await victimConn.get('/v1/apps/orders/config')).status).toBe(200);
      expect((await ordersConn.get('/v1/apps/orders/config')).status).toBe(200);

      const generation = service.api.tlsReloader.trustGeneration;
      await pki.writeCrl([victim.serial]);
      await nextTrustGeneration(generation);

      const refused = await victimConn.get('/v1/apps/orders/config');
      expect(refused.status).toBe(401);
      expect(refused.headers['connection']).toBe('close');
      expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
      const requestId = refused.headers['request-id']!;
      expect(JSON.parse(refused.body)).toEqual(unauthenticated('Not authenticated: client certificate revoked', requestId));
      await victimConn.waitClosed();
      expect(await auditEvent(requestId)).toMatchObject({
        outcome: 'denied',
        status: 401,
        reason: 'certificate_rejected:CERT_REVOKED',
        actor: { kind: 'certificate', claimed: { subject: 'orders', fingerprint256: fingerprint(victim.cert), issuer: 'CN=trust-change test CA' } },
      });

      // A certificate of the same CA that is not revoked: served on, on the same socket.
      const again = await ordersConn.get('/v1/apps/orders/config');
      expect(again.status).toBe(200);
      expect(JSON.parse(again.body)).toEqual({ x: 1 });
      expect(again.headers['connection']).not.toBe('close');
      expect(ordersConn.closed).toBe(false);
    } finally {
      victimConn.close();
      ordersConn.close();
    }
  });

  it('a CA bundle without the client CA: its open connection gets what a new handshake gets, audited, and is closed; a certificate that still verifies is served on', async () => {
    const ordersConn = await KeepAliveConnection.open(orders);
    const billingConn = await KeepAliveConnection.open(billing);
    try {
      expect((await ordersConn.get('/v1/apps/orders/config')).status).toBe(200);
      expect((await billingConn.get('/v1/apps/billing/config')).status).toBe(200);

      const generation = service.api.tlsReloader.trustGeneration;
      writeFileAtomic(pki.caFile, caB.certPem);
      await nextTrustGeneration(generation);

      const refused = await ordersConn.get('/v1/apps/orders/config');
      expect(refused.status).toBe(401);
      expect(refused.headers['connection']).toBe('close');
      const requestId = refused.headers['request-id']!;
      // Node clients send their CA certificate with their own (OpenSSL builds the chain from
      // `ca`), so the chain ends at a root the bundle no longer holds.
      expect(JSON.parse(refused.body)).toEqual(unauthenticated('Not authenticated: client certificate chains to an untrusted root', requestId));
      await ordersConn.waitClosed();
      const event = await auditEvent(requestId);
      expect(event).toMatchObject({ outcome: 'denied', status: 401, reason: 'certificate_rejected:SELF_SIGNED_CERT_IN_CHAIN' });
      expect(event.actor).toEqual({ kind: 'certificate', claimed: { subject: 'orders', fingerprint256: fingerprint(orders.cert), issuer: 'CN=trust-change test CA' } });

      // A new connection with the same certificate is told exactly the same (OpenSSL's verdict).
      const fresh = await httpsGet(service.apiUrl, '/v1/apps/orders/config', { ca: pki.ca.certPem, cert: orders.cert, key: orders.key });
      expect(fresh.status).toBe(401);
      expect(fresh.json()).toEqual(unauthenticated('Not authenticated: client certificate chains to an untrusted root', fresh.headers['request-id']!));
      expect(await auditEvent(fresh.headers['request-id']!)).toMatchObject({ reason: 'certificate_rejected:SELF_SIGNED_CERT_IN_CHAIN' });

      // The certificate of the CA that stays: served on, on the same socket.
      const kept = await billingConn.get('/v1/apps/billing/config');
      expect(kept.status).toBe(200);
      expect(JSON.parse(kept.body)).toEqual({ y: 2 });
      expect(billingConn.closed).toBe(false);
      expect((await billingConn.get('/v1/apps/billing/config')).status).toBe(200);
    } finally {
      ordersConn.close();
      billingConn.close();
    }
  });
});
