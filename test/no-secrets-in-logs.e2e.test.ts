/**
 * A configuration value (`CANARY-SECRET-5e1f`, a database password in the test repository)
 * and the bearer tokens used never appear in any log line (debug level, captured from the
 * service's logger), in any error body or in any audit event, across reads in every
 * format, denials, broken documents, unrenderable formats, rejected tokens and log
 * objects that carry credentials.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsGet, makeCerts, makeGitRepo, makeIssuer, startTestService, type ClientCert, type HttpsResult, type TestIssuer, type TestPki, type TestService } from '#helpers';

const CANARY = 'CANARY-SECRET-5e1f';

let pki: TestPki;
let issuer: TestIssuer;
let service: TestService;
let orders: ClientCert;
let payments: ClientCert;
const tokens: string[] = [];
const errorBodies: HttpsResult[] = [];

beforeAll(async () => {
  pki = await makeCerts('nosecrets');
  issuer = makeIssuer(pki.dir);
  orders = await pki.client('orders');
  payments = await pki.client('payments');
  const repo = await makeGitRepo({
    'orders/application.yml': `db:\n  url: jdbc:postgresql://db/orders\n  password: ${CANARY}\n`,
    'orders/application-broken.yml': `a: ${CANARY}\na: ${CANARY}-again\n`,
    'orders/application-twice.yml': `a.b: ${CANARY}\na:\n  b: other-${CANARY}\n`,
    'orders/application-clash.yml': `my-key: ${CANARY}\nmy_key: x\n`,
    'orders/application-badyaml.yml': `key: "${CANARY}\n  - [unclosed\n`,
    'orders/application-badprops.properties': `p=${CANARY}\\u12\n`,
    'payments/application.yml': `secret: ${CANARY}\n`,
  });
  service = await startTestService({
    pki,
    repository: { path: repo.dir, branch: 'main' },
    settings: { jwt: { publicKeyFile: issuer.publicKeyFile, issuer: issuer.issuer, audience: issuer.audience } },
    logLevel: 'debug',
  });
});

afterAll(async () => {
  await service?.close();
});

async function get(rawPath: string, who: { cert?: ClientCert; token?: string }): Promise<HttpsResult> {
  const res = await httpsGet(service.apiUrl, rawPath, {
    ca: pki.ca.certPem,
    ...(who.cert && { cert: who.cert.cert, key: who.cert.key }),
    ...(who.token && { headers: { authorization: `Bearer ${who.token}` } }),
  });
  if (res.status >= 400) errorBodies.push(res);
  return res;
}

async function sign(claims: Record<string, unknown>): Promise<string> {
  const t = await issuer.sign(claims);
  tokens.push(t);
  return t;
}

describe('no secret in logs, error bodies or audit events', () => {
  it('serves the value to its owner in every format (the only place it may appear)', async () => {
    for (const format of ['json', 'yaml', 'properties', 'env', 'dotenv']) {
      const res = await get(`/v1/apps/orders/config?format=${format}`, { cert: orders });
      expect(res.status, format).toBe(200);
      expect(res.body).toContain(CANARY);
    }
    const t = await sign({ sub: 'tool', scope: 'config:read', apps: ['orders'] });
    expect((await get('/v1/apps/orders/config', { token: t })).status).toBe(200);
  });

  it('fails broken documents and unrenderable formats without quoting the value', async () => {
    for (const [profile, format] of [['broken', 'json'], ['twice', 'json'], ['clash', 'env'], ['badyaml', 'json'], ['badprops', 'json']] as const) {
      const res = await get(`/v1/apps/orders/config?profile=${profile}&format=${format}`, { cert: orders });
      expect(res.status, profile).toBeGreaterThanOrEqual(400);
      expect(res.status, profile).toBeLessThan(500);
    }
  });

  it('denies other callers and rejected tokens without the value', async () => {
    expect((await get('/v1/apps/orders/config', { cert: payments })).status).toBe(403);
    expect((await get('/v1/apps/payments/config', { cert: orders })).status).toBe(403);
    const narrow = await sign({ sub: 'tool', scope: 'config:read', apps: ['billing'] });
    expect((await get('/v1/apps/orders/config', { token: narrow })).status).toBe(403);
    const forged = `${(await sign({ sub: 'tool', scope: 'config:read', apps: ['*'] })).slice(0, -4)}AAAA`;
    tokens.push(forged);
    expect((await get('/v1/apps/orders/config', { token: forged })).status).toBe(401);
    expect((await get('/v1/apps/orders/config', {})).status).toBe(401);
    expect((await get('/v1/apps/nope/config', { cert: orders })).status).toBe(403);
    expect((await get('/v1/apps/orders/config?ref=no-such-ref', { cert: orders })).status).toBe(404);
  });

  it('redacts credentials and values that reach the logger as objects', () => {
    service.api.log.info({ req: { headers: { authorization: `Bearer ${tokens[0]}` } } }, 'headers');
    service.api.log.warn({ password: CANARY, token: tokens[0], err: { data: { value: CANARY } } }, 'credentials');
    service.logger.error({ secret: { value: CANARY }, plaintext: CANARY, decrypted: CANARY }, 'values');
  });

  it('leaves no trace of the value or a token in any log line, error body or audit event', async () => {
    expect(service.logs.length).toBeGreaterThan(20); // debug logging really happened
    expect(service.logs.some((l) => l.includes('incoming request'))).toBe(true);
    for (const line of service.logs) {
      expect(line).not.toContain(CANARY);
      for (const t of tokens) expect(line).not.toContain(t.split('.')[2]!); // the signature part alone is enough to spot a token
      expect(line).not.toMatch(/PRIVATE KEY|Bearer ey/);
    }
    expect(errorBodies.length).toBeGreaterThanOrEqual(10);
    for (const res of errorBodies) {
      expect(res.body).not.toContain(CANARY);
      expect(JSON.stringify(res.headers)).not.toContain(CANARY);
    }
    const auditor = await sign({ sub: 'auditor', scope: 'audit:read', apps: ['*'] });
    const audit = await httpsGet(service.apiUrl, '/v1/audit?limit=1000', { ca: pki.ca.certPem, headers: { authorization: `Bearer ${auditor}` } });
    expect(audit.status).toBe(200);
    expect(audit.json<{ events: unknown[] }>().events.length).toBeGreaterThanOrEqual(15);
    expect(audit.body).not.toContain(CANARY);
    for (const t of tokens) expect(audit.body).not.toContain(t.split('.')[2]!);
    const ready = await fetch(`${service.managementUrl}/health/ready`);
    expect(await ready.text()).not.toContain(CANARY);
  });
});
