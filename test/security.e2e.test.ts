/**
 * Identity and access on the real service over real TLS (SPEC §3, §5): a matrix of
 * callers, each row asserting the status, the problem code and detail, that nothing of
 * another application's configuration is in the body, and the audit event (read back
 * through `GET /v1/audit`). Then cases 01 and 02 (path traversal) on the v1 route, rate
 * limits, security headers and slow-client timeouts.
 */
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from 'node:tls';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  httpsGet,
  makeCerts,
  makeGitRepo,
  makeIssuer,
  startTestService,
  type ClientCert,
  type HttpsResult,
  type TestIssuer,
  type TestPki,
  type TestService,
} from '#helpers';

/** Strings that must never be in a body that is not the owner's own configuration. */
const CANARIES = ['OTHER-APP-CANARY-31', 'CANARY-9c41e', 'OTHER-TEAM-7d2'];

let pki: TestPki;
let otherPki: TestPki;
let issuer: TestIssuer;
let service: TestService;
const certs: Record<string, ClientCert> = {};

const REPO = {
  'orders/application.yml': 'x: 1\n',
  'orders/application-dev.yml': 'x: 2\n',
  'orders/application-eu.yml': 'y: 3\n',
  'orders/application-prod.yml': 'x: 9\n',
  'payments/application.yml': 'secret: OTHER-APP-CANARY-31\n',
  'secrets/other-team.yml': 'token: OTHER-TEAM-7d2\n',
};

beforeAll(async () => {
  pki = await makeCerts('security');
  otherPki = await makeCerts('other');
  issuer = makeIssuer(pki.dir);
  const day = 86_400_000;
  const now = Date.now();
  certs.orders = await pki.client('orders');
  certs.billing = await pki.client('billing');
  certs.expired = await pki.client('orders', { notBefore: new Date(now - 3 * day), notAfter: new Date(now - day) });
  certs.future = await pki.client('orders', { notBefore: new Date(now + day), notAfter: new Date(now + 2 * day) });
  certs.revoked = await pki.client('orders');
  certs.selfSigned = await pki.selfSigned('orders');
  certs.otherCa = await otherPki.client('orders');
  await pki.writeCrl([certs.revoked.serial]);

  // Canary files next to the data directory and in its parent (cases README).
  const base = mkdtempSync(path.join(os.tmpdir(), 'sec-base-'));
  const holder = path.join(base, 'holder');
  mkdirSync(holder);
  writeFileSync(path.join(base, 'canary.yml'), 'leak: CANARY-9c41e\n');
  writeFileSync(path.join(holder, 'canary.yml'), 'leak: CANARY-9c41e\n');
  const repo = await makeGitRepo(REPO);
  service = await startTestService({
    pki,
    dataDir: path.join(holder, 'data'),
    repository: { path: repo.dir, branch: 'main' },
    server: { tls: { crl: [pki.crlFile] } },
    settings: {
      jwt: { publicKeyFile: issuer.publicKeyFile, issuer: issuer.issuer, audience: issuer.audience },
      policy: { defaultOwnApp: true, grants: [{ subjects: ['billing'], apps: ['orders'], profiles: ['dev', 'eu'], scopes: ['config:read'] }] },
    },
  });
});

afterAll(async () => {
  await service?.close();
});

const fingerprint = (pem: string): string => new X509Certificate(pem).fingerprint256.replaceAll(':', '').toLowerCase();

async function get(rawPath: string, who: { cert?: ClientCert; token?: string } = {}): Promise<HttpsResult> {
  return httpsGet(service.apiUrl, rawPath, {
    ca: pki.ca.certPem,
    ...(who.cert && { cert: who.cert.cert, key: who.cert.key }),
    ...(who.token && { headers: { authorization: `Bearer ${who.token}` } }),
  });
}

async function auditEvent(requestId: string): Promise<Record<string, unknown>> {
  const token = await issuer.sign({ sub: 'auditor', scope: 'audit:read', apps: ['*'] });
  const res = await get('/v1/audit?limit=1000', { token });
  expect(res.status).toBe(200);
  const event = res.json<{ events: Array<Record<string, unknown>> }>().events.find((e) => e.requestId === requestId);
  expect(event, `audit event of ${requestId}`).toBeDefined();
  return event!;
}

function expectNoCanary(res: HttpsResult): void {
  for (const c of CANARIES) expect(res.body).not.toContain(c);
  for (const [k, v] of Object.entries(res.headers)) for (const c of CANARIES) expect(`${k}: ${v}`).not.toContain(c);
}

/** Signs a token with the test issuer's key, with full control over header and claims. */
async function token(claims: Record<string, unknown>, opts: { iss?: string; aud?: string | null; exp?: number; key?: 'other' } = {}): Promise<string> {
  const nowS = Math.floor(Date.now() / 1000);
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).setIssuer(opts.iss ?? issuer.issuer).setIssuedAt(nowS - 60).setExpirationTime(opts.exp ?? nowS + 300);
  if (opts.aud !== null) jwt = jwt.setAudience(opts.aud ?? issuer.audience);
  const key = opts.key === 'other' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey : issuer.privateKey;
  return jwt.sign(key);
}

function unsignedToken(claims: Record<string, unknown>): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const nowS = Math.floor(Date.now() / 1000);
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...claims, iss: issuer.issuer, aud: issuer.audience, iat: nowS, exp: nowS + 300 })}.`;
}

interface Row {
  name: string;
  path: string;
  who: () => Promise<{ cert?: ClientCert; token?: string }>;
  status: 401 | 403;
  detail: RegExp;
  reason: RegExp;
  actor: () => Record<string, unknown>;
}

const PAYMENTS = '/v1/apps/payments/config';
const certActor = (c: () => ClientCert, issuerDn: string, subject?: string) => () => ({
  kind: 'certificate',
  fingerprint256: fingerprint(c().cert),
  issuer: issuerDn,
  ...(subject && { subject }),
});
/** A certificate that did not verify: what it claims is recorded under `claimed`, never as `subject`. */
const claimedActor = (c: () => ClientCert, issuerDn: string, subject: string) => () => ({
  kind: 'certificate',
  claimed: { subject, fingerprint256: fingerprint(c().cert), issuer: issuerDn },
});
const OUR_CA = 'CN=security test CA';
const readAll = { sub: 'tool', scope: 'config:read', apps: ['*'] };

const MATRIX: Row[] = [
  { name: 'no certificate and no token', path: PAYMENTS, who: async () => ({}), status: 401, detail: /client certificate or a bearer token/, reason: /^no_credentials$/, actor: () => ({ kind: 'anonymous' }) },
  { name: 'self-signed certificate', path: PAYMENTS, who: async () => ({ cert: certs.selfSigned }), status: 401, detail: /client certificate is self-signed and not trusted/, reason: /^certificate_rejected:DEPTH_ZERO_SELF_SIGNED_CERT$/, actor: claimedActor(() => certs.selfSigned!, 'CN=orders', 'orders') },
  { name: 'certificate from another CA', path: PAYMENTS, who: async () => ({ cert: certs.otherCa }), status: 401, detail: /client certificate is not issued by a trusted CA/, reason: /^certificate_rejected:UNABLE_TO_GET_ISSUER_CERT_LOCALLY$/, actor: claimedActor(() => certs.otherCa!, 'CN=other test CA', 'orders') },
  { name: 'expired certificate', path: '/v1/apps/orders/config', who: async () => ({ cert: certs.expired }), status: 401, detail: /client certificate expired/, reason: /^certificate_rejected:CERT_HAS_EXPIRED$/, actor: claimedActor(() => certs.expired!, OUR_CA, 'orders') },
  { name: 'certificate not yet valid', path: '/v1/apps/orders/config', who: async () => ({ cert: certs.future }), status: 401, detail: /client certificate is not yet valid/, reason: /^certificate_rejected:CERT_NOT_YET_VALID$/, actor: claimedActor(() => certs.future!, OUR_CA, 'orders') },
  { name: 'certificate revoked by the CRL', path: '/v1/apps/orders/config', who: async () => ({ cert: certs.revoked }), status: 401, detail: /client certificate revoked/, reason: /^certificate_rejected:CERT_REVOKED$/, actor: claimedActor(() => certs.revoked!, OUR_CA, 'orders') },
  { name: 'valid certificate for another app', path: PAYMENTS, who: async () => ({ cert: certs.orders }), status: 403, detail: /no-grant-for-app/, reason: /^no-grant-for-app$/, actor: certActor(() => certs.orders!, OUR_CA, 'orders') },
  { name: 'profile the policy excludes', path: '/v1/apps/orders/config?profile=dev,prod', who: async () => ({ cert: certs.billing }), status: 403, detail: /profile-not-granted:prod/, reason: /^profile-not-granted:prod$/, actor: certActor(() => certs.billing!, OUR_CA, 'billing') },
  { name: 'JWT with a bad signature', path: PAYMENTS, who: async () => ({ token: await token(readAll, { key: 'other' }) }), status: 401, detail: /bearer token signature is invalid/, reason: /^token_rejected:signature_invalid$/, actor: () => ({ kind: 'jwt' }) },
  { name: 'expired JWT', path: PAYMENTS, who: async () => ({ token: await token(readAll, { exp: Math.floor(Date.now() / 1000) - 600 }) }), status: 401, detail: /bearer token expired/, reason: /^token_rejected:expired$/, actor: () => ({ kind: 'jwt' }) },
  { name: 'JWT for another audience', path: PAYMENTS, who: async () => ({ token: await token(readAll, { aud: 'someone-else' }) }), status: 401, detail: /audience is not accepted/, reason: /^token_rejected:audience_mismatch$/, actor: () => ({ kind: 'jwt' }) },
  { name: 'JWT without an audience', path: PAYMENTS, who: async () => ({ token: await token(readAll, { aud: null }) }), status: 401, detail: /lacks a required claim/, reason: /^token_rejected:claim_missing$/, actor: () => ({ kind: 'jwt' }) },
  { name: 'JWT from another issuer', path: PAYMENTS, who: async () => ({ token: await token(readAll, { iss: 'https://evil.test' }) }), status: 401, detail: /issuer is not accepted/, reason: /^token_rejected:issuer_mismatch$/, actor: () => ({ kind: 'jwt' }) },
  { name: 'JWT with alg none', path: PAYMENTS, who: async () => ({ token: unsignedToken(readAll) }), status: 401, detail: /unsigned bearer tokens are not accepted/, reason: /^token_rejected:unsigned$/, actor: () => ({ kind: 'jwt' }) },
  {
    name: 'JWT HS256-signed with the public key as the secret',
    path: PAYMENTS,
    who: async () => ({ token: await new SignJWT(readAll).setProtectedHeader({ alg: 'HS256' }).setIssuer(issuer.issuer).setAudience(issuer.audience).setIssuedAt().setExpirationTime('5m').sign(new TextEncoder().encode(issuer.publicKeyPem)) }),
    status: 401,
    detail: /algorithm is not accepted/,
    reason: /^token_rejected:algorithm_not_allowed$/,
    actor: () => ({ kind: 'jwt' }),
  },
  { name: 'JWT without the config:read scope', path: PAYMENTS, who: async () => ({ token: await token({ sub: 'tool', scope: 'audit:read', apps: ['*'] }) }), status: 403, detail: /token-scope-missing:config:read/, reason: /^token-scope-missing:config:read$/, actor: () => ({ kind: 'jwt', subject: 'tool', issuer: issuer.issuer }) },
  { name: 'JWT whose apps claim excludes the app', path: PAYMENTS, who: async () => ({ token: await token({ sub: 'tool', scope: 'config:read', apps: ['orders', 'pay*-x'] }) }), status: 403, detail: /token-apps-exclude-app/, reason: /^token-apps-exclude-app$/, actor: () => ({ kind: 'jwt', subject: 'tool', issuer: issuer.issuer }) },
];

describe('identity and access matrix', () => {
  for (const row of MATRIX) {
    it(`${row.name}: ${row.status}, the rule named, no other app's data, audited`, async () => {
      const res = await get(row.path, await row.who());
      expect(res.status).toBe(row.status);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.headers['cache-control']).toBe('no-store');
      const body = res.json<{ code: string; detail: string; instance: string; status: number }>();
      expect(body.code).toBe(row.status === 401 ? 'unauthenticated' : 'forbidden');
      expect(body.status).toBe(row.status);
      expect(body.detail).toMatch(row.detail);
      // No internals: no stack, file path, library name or error class.
      expect(body.detail).not.toMatch(/\bat \w|\/|node_modules|Error|fast-jwt|openssl/i);
      expect(res.headers['request-id']).toBe(body.instance);
      expectNoCanary(res);

      const event = await auditEvent(body.instance);
      expect(event).toMatchObject({ outcome: 'denied', status: row.status });
      // Exactly: a certificate that did not verify never names a subject (issue 11).
      expect(event.actor).toEqual(row.actor());
      expect(String(event.reason)).toMatch(row.reason);
      expect(JSON.stringify(event)).not.toMatch(/OTHER-APP-CANARY-31/);
    });
  }

  it('an audit query by actor never returns attempts with certificates that did not verify (issue 11)', async () => {
    // A certificate from a foreign CA claiming to be "orders".
    const forged = await get(PAYMENTS, { cert: certs.otherCa });
    expect(forged.status).toBe(401);
    const forgedEvent = await auditEvent(forged.json<{ instance: string }>().instance);
    expect(forgedEvent.actor).toEqual({ kind: 'certificate', claimed: { subject: 'orders', fingerprint256: fingerprint(certs.otherCa!.cert), issuer: 'CN=other test CA' } });
    const own = await get('/v1/apps/orders/config?profile=dev', { cert: certs.orders });
    expect(own.status).toBe(200);

    const token = await issuer.sign({ sub: 'auditor', scope: 'audit:read', apps: ['*'] });
    const byActor = await get('/v1/audit?actor=orders&limit=1000', { token });
    expect(byActor.status).toBe(200);
    const events = byActor.json<{ events: Array<{ requestId: string; reason?: string; actor: { subject?: string } }> }>().events;
    expect(events.map((e) => e.requestId)).toContain(own.headers['request-id']);
    expect(events.map((e) => e.requestId)).not.toContain(forged.headers['request-id']);
    for (const e of events) {
      expect(e.actor.subject).toBe('orders');
      expect(String(e.reason)).not.toMatch(/^certificate_rejected:/);
    }
    // The CSV export carries the claim in its own columns.
    const csv = await get(`/v1/audit?format=csv&limit=1000`, { token });
    const [header, ...rows] = csv.body.trimEnd().split('\r\n');
    const cols = header!.split(',');
    const row = rows.find((r) => r.includes(forged.headers['request-id']!))!.split(',');
    expect(row[cols.indexOf('actorSubject')]).toBe('');
    expect(row[cols.indexOf('actorClaimedSubject')]).toBe('orders');
    expect(row[cols.indexOf('actorClaimedFingerprint256')]).toBe(fingerprint(certs.otherCa!.cert));
  });

  it('the allowed counterparts answer 200 and are audited as allowed', async () => {
    const own = await get('/v1/apps/orders/config?profile=dev', { cert: certs.orders });
    expect(own.status).toBe(200);
    expect(own.json()).toEqual({ x: 2 });
    expectNoCanary(own);
    const granted = await get('/v1/apps/orders/config?profile=dev,eu', { cert: certs.billing });
    expect(granted.status).toBe(200);
    const tool = await get(PAYMENTS, { token: await token({ sub: 'tool', scope: 'config:read', apps: ['pay*'] }) });
    expect(tool.status).toBe(200);
    expect(tool.body).toContain('OTHER-APP-CANARY-31');
    const event = await auditEvent(own.headers['request-id']!);
    expect(event).toMatchObject({ outcome: 'allowed', status: 200, app: 'orders', actor: { kind: 'certificate', subject: 'orders', fingerprint256: fingerprint(certs.orders!.cert), issuer: OUR_CA } });
  });

  it('sets the security headers on every response', async () => {
    for (const res of [await get('/v1/apps/orders/config', { cert: certs.orders }), await get(PAYMENTS), await get('/nope', { cert: certs.orders })]) {
      expect(res.headers['strict-transport-security']).toMatch(/^max-age=\d+/);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['content-security-policy']).toBe("default-src 'none'; frame-ancestors 'none'");
      expect(res.headers['referrer-policy']).toBe('no-referrer');
      expect(res.headers['cache-control']).toBe('no-store');
    }
  });
});

describe('cases 01 and 02: traversal through names on the v1 route', () => {
  const REJECTED = [
    '/v1/apps/..%252F..%252F..%252F..%252Fcanary.yml%23x/config',
    '/v1/apps/..%2F..%2F..%2Fcanary/config',
    '/v1/apps/..%2F..%2Fsecrets%2Fother-team/config',
    '/v1/apps/orders/config?profile=dev,..%2F..%2Fsecrets%2Fother-team',
    '/v1/apps/orders/config?profile=dev%2C..%252Fsecrets%252Fother-team',
    '/v1/apps/orders/config?profile=..',
    '/v1/apps/orders/config?profile=dev,',
    // Decoded twice these would be valid names (`orders`, `dev`): rejected proves one decoding.
    '/v1/apps/%256Frders/config',
    '/v1/apps/orders/config?profile=%2564ev',
  ];

  for (const rawPath of REJECTED) {
    it(`${rawPath} → 400 invalid_name, audited, nothing leaked`, async () => {
      const res = await get(rawPath, { cert: certs.orders });
      expect(res.status).toBe(400);
      const body = res.json<{ code: string; instance: string }>();
      expect(body.code).toBe('invalid_name');
      expectNoCanary(res);
      const event = await auditEvent(body.instance);
      expect(['error', 'denied']).toContain(event.outcome);
      expect(event).toMatchObject({ status: 400, reason: 'invalid_name', action: 'config.read' });
      expect(event.commit).toBeUndefined(); // rejected before any Git lookup
    });
  }

  it('answers bad percent-encoding and overlong segments with problem+json, audited, input not echoed', async () => {
    for (const [rawPath, status, code] of [
      ['/v1/apps/%%2e%C0/config', 400, 'invalid_request'],
      [`/v1/apps/${'a'.repeat(1500)}/config`, 414, 'uri_too_long'],
    ] as const) {
      const res = await get(rawPath, { cert: certs.orders });
      expect(res.status).toBe(status);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      const body = res.json<{ code: string; instance: string; detail: string }>();
      expect(body.code).toBe(code);
      expect(res.body).not.toContain('%%2e');
      expect(res.body).not.toContain('aaaaaaaaaa');
      expect(await auditEvent(body.instance)).toMatchObject({ outcome: 'error', status, reason: code, actor: { kind: 'certificate', fingerprint256: fingerprint(certs.orders!.cert), issuer: OUR_CA } });
    }
  });

  it('still answers a normal request: CONFIG(orders, "dev,eu", main, json) = {x: 2, y: 3}', async () => {
    const res = await get('/v1/apps/orders/config?profile=dev,eu&ref=main&format=json', { cert: certs.orders });
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ x: 2, y: 3 });
  });
});

describe('rate limits and slow clients', () => {
  let limited: TestService;
  beforeAll(async () => {
    const repo = await makeGitRepo(REPO);
    limited = await startTestService({
      pki,
      repository: { path: repo.dir, branch: 'main' },
      server: { rateLimit: { max: 5, timeWindowMs: 60_000 }, headersTimeoutMs: 1000, requestTimeoutMs: 3000 },
      settings: { jwt: { publicKeyFile: issuer.publicKeyFile, issuer: issuer.issuer, audience: issuer.audience } },
    });
  });
  afterAll(async () => {
    await limited?.close();
  });
  const getLimited = (p: string, who: { cert?: ClientCert; token?: string }) =>
    httpsGet(limited.apiUrl, p, { ca: pki.ca.certPem, ...(who.cert && { cert: who.cert.cert, key: who.cert.key }), ...(who.token && { headers: { authorization: `Bearer ${who.token}` } }) });

  it('answers 429 problem+json with Retry-After per identity; other identities are unaffected', async () => {
    const statuses: number[] = [];
    let last: HttpsResult | undefined;
    for (let i = 0; i < 7; i++) {
      last = await getLimited('/v1/apps/orders/config', { cert: certs.orders });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
    expect(last!.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(Number(last!.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(last!.headers['retry-after'])).toBeLessThanOrEqual(60);
    const body = last!.json<{ code: string; instance: string }>();
    expect(body.code).toBe('rate_limited');
    // Another certificate (another identity) still gets through.
    expect((await getLimited('/v1/apps/billing/config', { cert: certs.billing })).status).not.toBe(429);
    // A token subject has its own bucket.
    const t = await issuer.sign({ sub: 'limited-tool', scope: 'config:read', apps: ['*'] });
    const tokenStatuses: number[] = [];
    for (let i = 0; i < 6; i++) tokenStatuses.push((await getLimited('/v1/apps/orders/config', { token: t })).status);
    expect(tokenStatuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(tokenStatuses[5]).toBe(429);
  });

  it('limits unauthenticated requests per client IP', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await getLimited('/v1/apps/orders/config', {})).status);
    // The IP bucket also counted the token requests above (before authentication).
    expect(statuses).toContain(429);
    expect(statuses.filter((s) => s !== 401 && s !== 429)).toEqual([]);
  });

  it('closes a connection whose headers do not arrive within server.headersTimeoutMs', async () => {
    const started = Date.now();
    const closedAfter = await new Promise<number>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: Number(new URL(limited.apiUrl).port), ca: pki.ca.certPem, cert: certs.orders!.cert, key: certs.orders!.key, servername: 'localhost' }, () => {
        socket.write('GET /v1/apps/orders/config HTTP/1.1\r\nHost: localhost\r\n'); // never finishes the headers
      });
      let response = '';
      socket.on('data', (d: Buffer) => (response += d.toString()));
      socket.on('close', () => {
        expect(response === '' || /^HTTP\/1\.1 408/.test(response)).toBe(true);
        resolve(Date.now() - started);
      });
      socket.on('error', reject);
      setTimeout(() => reject(new Error('connection still open after 8 s')), 8000).unref();
    });
    expect(closedAfter).toBeGreaterThanOrEqual(900);
    expect(closedAfter).toBeLessThan(5000);
  });
});
