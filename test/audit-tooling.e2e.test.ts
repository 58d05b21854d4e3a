/**
 * Issue 11, "Audit tooling" and "Start-up and errors" on the real service: a development
 * token minted by `config-service jwt issue` reads `GET /v1/audit` (a date alone as
 * `since`), `format=xml` answers one clear 400, and `config-service audit query|verify`
 * open the store by `--sqlite`, page through every event (`--limit`, `--cursor`, `--all`)
 * and refuse unknown values with exit 64.
 */
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, SERVICE_CLI, httpsGet, makeCerts, runCli, makeGitRepo, runServiceCli, startTestService, type ClientCert, type GitTestRepo, type TestPki, type TestService } from '#helpers';

let pki: TestPki;
let repo: GitTestRepo;
let service: TestService;
let orders: ClientCert;
let token: string;
const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-tooling-'));

beforeAll(async () => {
  pki = await makeCerts('audit-tooling');
  orders = await pki.client('orders');
  repo = await makeGitRepo({ 'orders/application.yml': 'x: 1\n' });
  const keygen = await runServiceCli(['jwt', 'keygen', '--dir', path.join(dir, 'jwt')]);
  expect(keygen.status, keygen.stderr).toBe(0);
  expect(keygen.stdout).toBe(`${path.join(dir, 'jwt', 'jwt-private.pem')}\n${path.join(dir, 'jwt', 'jwt-public.pem')}\n`);
  service = await startTestService({
    pki,
    repository: { path: repo.dir },
    settings: { jwt: { publicKeyFile: path.join(dir, 'jwt', 'jwt-public.pem'), issuer: 'dev', audience: 'config-service' } },
    server: { rateLimit: { max: 0 } },
  });
  const issued = await runServiceCli(['jwt', 'issue', '--key', path.join(dir, 'jwt', 'jwt-private.pem'), '--sub', 'auditor', '--scope', 'audit:read', '--apps', '*', '--ttl', '15m', '--issuer', 'dev', '--audience', 'config-service']);
  expect(issued.status, issued.stderr).toBe(0);
  token = issued.stdout.trim();
  // 6 requests: 5 allowed, 1 denied (an application orders' certificate may not read).
  for (let i = 0; i < 5; i++) expect((await get('/v1/apps/orders/config', { cert: orders })).status).toBe(200);
  expect((await get('/v1/apps/nope/config', { cert: orders })).status).toBe(403);
});

afterAll(async () => {
  await service?.close();
  repo?.remove();
});

function get(p: string, who: { cert?: ClientCert; token?: string }) {
  return httpsGet(service.apiUrl, p, {
    ca: pki.ca.certPem,
    ...(who.cert && { cert: who.cert.cert, key: who.cert.key }),
    ...(who.token && { headers: { authorization: `Bearer ${who.token}` } }),
  });
}

describe('jwt issue', () => {
  it('mints a token whose claims are the ones docs/security.md shows', () => {
    const [header, payload] = token.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p!, 'base64url').toString('utf8')) as Record<string, unknown>);
    expect(header).toEqual({ alg: 'ES256', typ: 'JWT' });
    expect(Object.keys(payload!).sort()).toEqual(['apps', 'aud', 'exp', 'iat', 'iss', 'scope', 'sub']);
    expect(payload).toMatchObject({ sub: 'auditor', scope: 'audit:read', apps: ['*'], iss: 'dev', aud: 'config-service' });
    expect((payload!.exp as number) - (payload!.iat as number)).toBe(900);
  });

  it.each([
    [['--scope', 'audit:reed'], "--scope: unknown scope 'audit:reed'; the scopes are config:read, secrets:read, audit:read, encrypt, admin"],
    [['--scope', 'audit:read', '--ttl', '2d'], "--ttl: '2d' is not a duration from 1s to 24h (such as 900, 15m, 1h)"],
  ])('refuses %j with exit 64', async (extra, message) => {
    const r = await runServiceCli(['jwt', 'issue', '--key', path.join(dir, 'jwt', 'jwt-private.pem'), '--sub', 'a', ...extra]);
    expect(r.status).toBe(64);
    expect(r.stderr).toBe(`config-service: CFG_ERR_USAGE: ${message}\n`);
  });
});

describe('docs/security.md, "Development tokens"', () => {
  it('the curl example runs as written (only the port differs) and prints today\'s events', async () => {
    const docs = readFileSync(path.join(REPO_ROOT, 'docs/security.md'), 'utf8');
    const section = docs.slice(docs.indexOf('### Development tokens'));
    const block = /Mint a token and call the API[\s\S]*?```sh\n([\s\S]*?)```/.exec(section)?.[1];
    expect(block).toContain('curl --fail-with-body --cacert pki/ca.crt');
    const work = mkdtempSync(path.join(os.tmpdir(), 'docs-jwt-'));
    mkdirSync(path.join(work, 'pki'));
    copyFileSync(pki.caFile, path.join(work, 'pki', 'ca.crt'));
    cpSync(path.join(dir, 'jwt'), path.join(work, 'jwt'), { recursive: true });
    const port = new URL(service.apiUrl).port;
    const script = `set -eu\nconfig-service() { ${JSON.stringify(process.execPath)} ${JSON.stringify(SERVICE_CLI)} "$@"; }\n${block!.replaceAll('localhost:8443', `localhost:${port}`)}`;
    const r = await runCli('bash', ['-c', script], { cwd: work, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    expect(r.code, r.stderr).toBe(0);
    const body = JSON.parse(r.stdout) as { events: Array<{ time: string }> };
    expect(body.events.length).toBeGreaterThanOrEqual(6);
    expect(body.events.length).toBeLessThanOrEqual(10);
    for (const e of body.events) expect(e.time.slice(0, 10)).toBe(new Date().toISOString().slice(0, 10));
  });
});

describe('GET /v1/audit', () => {
  it('accepts a date alone as since/until (UTC midnight), as docs/api.md says', async () => {
    const today = new Date().toISOString().slice(0, 10);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const res = await get(`/v1/audit?since=${today}&until=${tomorrow}&limit=1000`, { token });
    expect(res.status, res.body).toBe(200);
    expect(res.json<{ events: unknown[] }>().events.length).toBeGreaterThanOrEqual(6);
    const none = await get(`/v1/audit?since=${tomorrow}`, { token });
    expect(none.json<{ events: unknown[] }>().events).toEqual([]);
  });

  it('answers an impossible date with one 400 from the stores\' parser', async () => {
    const res = await get('/v1/audit?since=2026-02-30', { token });
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({ code: 'invalid_request', detail: 'Invalid request: since must be an ISO 8601 date, or date-time with Z or an offset' });
  });
});

describe('an unknown value of a listed parameter', () => {
  it('format=xml is one 400 naming the formats that exist', async () => {
    const res = await get('/v1/apps/orders/config?format=xml', { cert: orders });
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({ code: 'invalid_request', detail: "querystring parameter 'format' must be one of: json, yaml, properties, env, dotenv" });
  });

  it('an unknown parameter and a bad outcome are named once each', async () => {
    const res = await get('/v1/audit?outcome=bogus', { token });
    expect(res.status).toBe(400);
    expect(res.json<{ detail: string }>().detail).toBe("querystring parameter 'outcome' must be one of: allowed, denied, error");
  });
});

describe('config-service audit query / verify', () => {
  let all: Array<{ seq: number; requestId: string }>;
  beforeAll(async () => {
    // Everything above is committed before its response: the file holds it now.
    const r = await runServiceCli(['audit', 'query', '--sqlite', service.auditPath, '--all']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    all = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { seq: number; requestId: string });
  });

  it('--all streams every event, newest first, beyond one page', () => {
    expect(all.length).toBeGreaterThanOrEqual(9);
    expect(all.map((e) => e.seq)).toEqual([...all.map((e) => e.seq)].sort((a, b) => b - a));
    expect(new Set(all.map((e) => e.seq)).size).toBe(all.length);
  });

  it('--limit stops and prints the cursor of the rest; --cursor continues exactly there', async () => {
    const first = await runServiceCli(['audit', 'query', '--sqlite', service.auditPath, '--limit', '3']);
    expect(first.status).toBe(0);
    expect(first.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual(all.slice(0, 3).map((e) => e.seq));
    const m = /^more events: run again with --cursor (\S+) \(or use --all\)\n$/.exec(first.stderr);
    expect(m, first.stderr).not.toBeNull();
    const rest = await runServiceCli(['audit', 'query', '--sqlite', service.auditPath, '--cursor', m![1]!, '--all']);
    expect(rest.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual(all.slice(3).map((e) => e.seq));
    // More than 1000 is no longer capped: --limit 5000 returns everything there is.
    const big = await runServiceCli(['audit', 'query', '--sqlite', service.auditPath, '--limit', '5000']);
    expect(big.stdout.trim().split('\n')).toHaveLength(all.length);
    expect(big.stderr).toBe('');
  });

  it('filters with a date and an outcome', async () => {
    const today = new Date().toISOString().slice(0, 10);
    const r = await runServiceCli(['audit', 'query', '--sqlite', service.auditPath, '--since', today, '--outcome', 'denied', '--all']);
    expect(r.status).toBe(0);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { outcome: string; app: string });
    expect(events.length).toBeGreaterThanOrEqual(1);
    for (const e of events) expect(e.outcome).toBe('denied');
  });

  it.each([
    [['--outcome', 'bogus'], /error: option '--outcome <outcome>' argument 'bogus' is invalid\. Allowed choices are allowed, denied, error\./],
    [['--since', 'yesterday'], /^config-service: CFG_ERR_USAGE: --since must be an ISO 8601 date, or date-time with Z or an offset\n$/],
    [['--limit', '0'], /^config-service: CFG_ERR_USAGE: --limit: '0' is not an integer >= 1\n$/],
    [['--cursor', 'bogus'], /^config-service: CFG_ERR_USAGE: --cursor: not a cursor that audit query printed\n$/],
    [['--all', '--limit', '3'], /^config-service: CFG_ERR_USAGE: --all and --limit: give one\n$/],
  ])('refuses %j with exit 64 and prints nothing on stdout', async (args, stderr) => {
    const r = await runServiceCli(['audit', 'query', '--sqlite', service.auditPath, ...args]);
    expect(r.status).toBe(64);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(stderr);
  });

  it('refuses a missing --sqlite file (never creates an empty log) and two stores at once', async () => {
    const missing = path.join(dir, 'nope.sqlite');
    const r = await runServiceCli(['audit', 'verify', '--sqlite', missing]);
    expect(r.status).toBe(64);
    expect(r.stderr).toBe(`config-service: CFG_ERR_USAGE: --sqlite: no audit file at ${missing}\n`);
    const both = await runServiceCli(['audit', 'verify', '--sqlite', service.auditPath, '--postgres']);
    expect(both.status).toBe(64);
    expect(both.stderr).toBe('config-service: CFG_ERR_USAGE: --sqlite and --postgres both name an audit store; give one\n');
    const unset = await runServiceCli(['audit', 'verify', '--postgres']);
    expect(unset.status).toBe(64);
    expect(unset.stderr).toBe('config-service: CFG_ERR_USAGE: --postgres: the environment variable CONFIG_SERVICE_AUDIT_DATABASE_URL must hold the PostgreSQL connection string\n');
  });

  it('audit verify --sqlite checks the chain without a settings file', async () => {
    const r = await runServiceCli(['audit', 'verify', '--sqlite', service.auditPath]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, checked: all.length });
    expect(readFileSync(service.auditPath).length).toBeGreaterThan(0);
  });
});
