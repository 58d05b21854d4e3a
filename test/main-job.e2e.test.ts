/**
 * The main job end to end: config-service serves a real Git repository (a local path, and
 * the same repository through `git http-backend`) over real mTLS; the real, bundled
 * config-init publishes the files; exit codes follow SPEC §7; every request is audited.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  httpsGet,
  makeCerts,
  makeGitRepo,
  makeIssuer,
  runInit,
  startGitHttpServer,
  startTestService,
  type ClientCert,
  type GitHttpServer,
  type GitTestRepo,
  type TestIssuer,
  type TestPki,
  type TestService,
} from '#helpers';

const DB_PASSWORD = 'hunter2-Db-Pa55-9f3a';
const FILES = {
  'application.yml': 'server:\n  port: 8080\nlogging:\n  level:\n    root: INFO\n',
  'application-prod.yml': 'logging:\n  level:\n    root: WARN\n',
  'orders/application.yml': `spring:\n  datasource:\n    url: jdbc:postgresql://db/orders\n    password: ${DB_PASSWORD}\norders:\n  currency: EUR\n  retries: [100, 200]\n`,
  'orders/application-prod.yml': 'orders:\n  retries: [500]\n',
  'payments/application.properties': 'payments.url=https://psp.example.com\n',
};

/** What config-init must publish for orders/prod, byte for byte. */
const EXPECTED_PROPERTIES = [
  'logging.level.root=WARN',
  'orders.currency=EUR',
  'orders.retries[0]=500',
  'server.port=8080',
  'spring.datasource.password=' + DB_PASSWORD,
  'spring.datasource.url=jdbc\\:postgresql\\://db/orders',
  '',
].join('\n');
const EXPECTED_JSON = `{
  "logging": {
    "level": {
      "root": "WARN"
    }
  },
  "orders": {
    "currency": "EUR",
    "retries": [
      500
    ]
  },
  "server": {
    "port": 8080
  },
  "spring": {
    "datasource": {
      "password": "${DB_PASSWORD}",
      "url": "jdbc:postgresql://db/orders"
    }
  }
}
`;
const EXPECTED_ENV = [
  "export LOGGING_LEVEL_ROOT='WARN'",
  "export ORDERS_CURRENCY='EUR'",
  "export ORDERS_RETRIES_0='500'",
  "export SERVER_PORT='8080'",
  `export SPRING_DATASOURCE_PASSWORD='${DB_PASSWORD}'`,
  "export SPRING_DATASOURCE_URL='jdbc:postgresql://db/orders'",
  '',
].join('\n');

const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

let pki: TestPki;
let orders: ClientCert;
let payments: ClientCert;
let ghost: ClientCert;
let repo: GitTestRepo;
let issuer: TestIssuer;
let local: TestService;
let gitServer: GitHttpServer;
let remote: TestService;

beforeAll(async () => {
  pki = await makeCerts('main-job');
  [orders, payments, ghost] = await Promise.all([pki.client('orders'), pki.client('payments'), pki.client('ghost')]);
  repo = await makeGitRepo(FILES, { branch: 'main' });
  issuer = makeIssuer(pki.dir);
  const jwt = { publicKeyFile: issuer.publicKeyFile, issuer: issuer.issuer, audience: issuer.audience };
  local = await startTestService({ pki, repository: { path: repo.dir, branch: 'main' }, settings: { jwt } });

  // The same repository served over HTTP by git http-backend, mirrored by the service.
  const root = mkdtempSync(path.join(os.tmpdir(), 'git-root-'));
  repo.git('clone', '-q', '--bare', repo.dir, path.join(root, 'config.git'));
  gitServer = await startGitHttpServer({ projectRoot: root });
  remote = await startTestService({ pki, repository: { url: `${gitServer.url}/config.git`, branch: 'main', pollIntervalMs: 0 }, settings: { jwt } });
});

afterAll(async () => {
  await local?.close();
  await remote?.close();
  await gitServer?.close();
});

function initArgs(service: TestService, client: ClientCert, app: string, out: string, extra: string[] = []): string[] {
  return ['fetch', '--server', service.apiUrl, '--app', app, '--cert', client.certFile, '--key', client.keyFile, '--ca', pki.caFile, '--output-dir', out, '--termination-log', '', ...extra];
}

function visibleFiles(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir)) if (!name.startsWith('..')) out[name] = readFileSync(path.join(dir, name), 'utf8');
  return out;
}

async function auditEvents(service: TestService, query: string): Promise<Array<Record<string, unknown>>> {
  const token = await issuer.sign({ sub: 'auditor', scope: 'audit:read', apps: ['*'] });
  const res = await httpsGet(service.apiUrl, `/v1/audit?${query}`, { ca: pki.ca.certPem, headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return res.json<{ events: Array<Record<string, unknown>> }>().events;
}

describe.each([
  ['a local repository read in place', () => local],
  ['a remote repository mirrored over HTTP (git http-backend)', () => remote],
])('config-init against %s', (_name, service) => {
  it('publishes properties, json and env byte for byte, through ..data, with the meta file', async () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'init-out-'));
    const res = await runInit(initArgs(service(), orders, 'orders', out, ['--profile', 'prod', '--format', 'properties,json,env']));
    expect(res.stderr).not.toContain(DB_PASSWORD);
    expect(res.code).toBe(0);

    const files = visibleFiles(out);
    expect(Object.keys(files).sort()).toEqual(['.config-meta.json', 'application.env', 'application.json', 'application.properties']);
    expect(files['application.properties']).toBe(EXPECTED_PROPERTIES);
    expect(files['application.json']).toBe(EXPECTED_JSON);
    expect(files['application.env']).toBe(EXPECTED_ENV);

    for (const name of Object.keys(files)) {
      expect(lstatSync(path.join(out, name)).isSymbolicLink()).toBe(true);
      expect(readlinkSync(path.join(out, name))).toBe(`..data/${name}`);
      expect(statSync(path.join(out, name)).mode & 0o777).toBe(0o640);
    }
    expect(readdirSync(out).filter((n) => n.startsWith('..')).length).toBe(2); // ..data and one version

    const meta = JSON.parse(files['.config-meta.json']!) as Record<string, unknown>;
    expect(meta).toMatchObject({ app: 'orders', profiles: ['prod'], ref: null, commit: repo.commit });
    expect(meta.files).toEqual({
      'application.properties': sha256(EXPECTED_PROPERTIES),
      'application.json': sha256(EXPECTED_JSON),
      'application.env': sha256(EXPECTED_ENV),
    });
  });

  it("exits 77 with another application's certificate and publishes nothing", async () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'init-out-'));
    const res = await runInit(initArgs(service(), payments, 'orders', out));
    expect(res.code).toBe(77);
    expect(res.stderr).toMatch(/403|forbidden/i);
    expect(readdirSync(out)).toEqual([]);
  });

  it('exits 66 for an application that does not exist', async () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'init-out-'));
    const res = await runInit(initArgs(service(), ghost, 'ghost', out));
    expect(res.code).toBe(66);
    expect(res.stderr).toMatch(/app_not_found/);
    expect(readdirSync(out)).toEqual([]);
  });
});

describe('config-init when the service is down', () => {
  it('exits 69 after retrying until the deadline, writes the cause to the termination log and publishes nothing', async () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'init-out-'));
    const termination = path.join(out, '..', `termination-${path.basename(out)}.log`);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(termination, '');
    // A port that was just free: nothing listens there.
    const { createServer } = await import('node:net');
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const res = await runInit([
      'fetch', '--server', `https://127.0.0.1:${port}`, '--app', 'orders', '--cert', orders.certFile, '--key', orders.keyFile, '--ca', pki.caFile,
      '--output-dir', out, '--deadline', '2000', '--timeout', '500', '--termination-log', termination,
    ]);
    expect(res.code).toBe(69);
    expect(res.stderr.match(/retrying/g)?.length ?? 0).toBeGreaterThanOrEqual(2);
    expect(res.stderr).toMatch(/deadline 2000 ms/);
    expect(readFileSync(termination, 'utf8')).toMatch(/unavailable|ECONNREFUSED|connection refused/i);
    expect(readdirSync(out)).toEqual([]);
  });
});

describe('the audit log', () => {
  it('holds one event per request: allowed with commit and body hash, denied with the reason, not found', async () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'init-out-'));
    expect((await runInit(initArgs(local, orders, 'orders', out, ['--profile', 'prod', '--format', 'properties']))).code).toBe(0);
    expect((await runInit(initArgs(local, payments, 'orders', mkdtempSync(path.join(os.tmpdir(), 'init-out-'))))).code).toBe(77);

    const allowed = (await auditEvents(local, 'app=orders&outcome=allowed&limit=1'))[0]!;
    expect(allowed).toMatchObject({
      action: 'config.read',
      app: 'orders',
      profiles: ['prod'],
      commit: repo.commit,
      format: 'properties',
      outcome: 'allowed',
      status: 200,
      reason: 'default:own-app',
      bodySha256: sha256(EXPECTED_PROPERTIES),
      actor: { kind: 'certificate', subject: 'orders', issuer: 'CN=main-job test CA' },
    });
    expect((allowed.actor as { fingerprint256: string }).fingerprint256).toMatch(/^[0-9a-f]{64}$/);

    const denied = (await auditEvents(local, 'app=orders&outcome=denied&limit=1'))[0]!;
    expect(denied).toMatchObject({ action: 'config.read', app: 'orders', outcome: 'denied', status: 403, reason: 'no-grant-for-app', actor: { kind: 'certificate', subject: 'payments' } });
    expect(denied.bodySha256).toBeUndefined();
    expect(denied.commit).toBeUndefined();

    const missing = (await auditEvents(local, 'app=ghost&limit=1'))[0]!;
    expect(missing).toMatchObject({ app: 'ghost', outcome: 'error', status: 404, reason: 'app_not_found' });

    // The audit query itself is audited too, with the JWT subject.
    const reads = await auditEvents(local, 'action=audit.read&limit=1');
    expect(reads[0]).toMatchObject({ actor: { kind: 'jwt', subject: 'auditor', issuer: issuer.issuer }, outcome: 'allowed', status: 200 });
  });

  it('refuses the audit query without the audit:read scope', async () => {
    const token = await issuer.sign({ sub: 'someone', scope: 'config:read', apps: ['*'] });
    const res = await httpsGet(local.apiUrl, '/v1/audit', { ca: pki.ca.certPem, headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(403);
    expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(res.json()).toMatchObject({ code: 'forbidden', status: 403 });
  });
});

describe('management listener', () => {
  it('reports live and ready without a certificate', async () => {
    const live = await fetch(`${local.managementUrl}/health/live`);
    expect(live.status).toBe(200);
    const ready = await fetch(`${remote.managementUrl}/health/ready`);
    expect(ready.status).toBe(200);
    // Per repository since several are supported (issue 8).
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { repositories: [{ name: 'config', ready: true, state: 'ok', lastError: null }], audit: { healthy: true } } });
  });

  it('serves Prometheus metrics and build info', async () => {
    const res = await fetch(`${remote.managementUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toMatch(/^config_service_requests_total\{action="config\.read",outcome="allowed",status="200"\} [1-9]/m);
    expect(text).toMatch(/^config_service_requests_total\{action="config\.read",outcome="denied",status="403"\} [1-9]/m);
    expect(text).toMatch(/^config_service_git_ready\{repository="config"\} 1$/m);
    expect(text).toMatch(/^config_service_git_syncs_total\{repository="config"\} [1-9]/m);
    // Every `_total` series of the service is a counter (OpenMetrics naming).
    const totals = [...text.matchAll(/^# TYPE (config_service_\S+_total) (\S+)$/gm)].map((m) => [m[1], m[2]]);
    expect(totals.length).toBeGreaterThan(5);
    expect(totals.filter(([, type]) => type !== 'counter')).toEqual([]);
    expect(text).toMatch(/^config_service_audit_healthy 1$/m);
    const info = (await (await fetch(`${remote.managementUrl}/info`)).json()) as Record<string, unknown>;
    expect(info).toMatchObject({ name: 'config-service', version: '0.1.0', node: process.version });
    expect(typeof info.uptimeSeconds).toBe('number');
  });
});

describe('logs', () => {
  it('hold no configuration secret, private key or token', () => {
    const forbidden = [DB_PASSWORD, orders.key.split('\n')[1]!, pki.ca.keyPem.split('\n')[1]!];
    for (const service of [local, remote]) {
      expect(service.logs.length).toBeGreaterThan(5);
      for (const line of service.logs) for (const secret of forbidden) expect(line).not.toContain(secret);
      // Bearer tokens are never logged (they all start with the ES256 header's base64url).
      for (const line of service.logs) expect(line).not.toMatch(/eyJhbGciOiJFUzI1NiJ9\.[A-Za-z0-9_-]{20,}/);
    }
    expect(existsSync(local.auditPath)).toBe(true);
  });

  it('carry every audit event too, for log shippers', () => {
    const events = local.logs.map((l) => JSON.parse(l) as { msg: string; audit?: { action: string; outcome: string; hash: string } }).filter((r) => r.msg === 'audit event');
    expect(events.some((e) => e.audit?.action === 'config.read' && e.audit.outcome === 'allowed')).toBe(true);
    expect(events.some((e) => e.audit?.action === 'config.read' && e.audit.outcome === 'denied')).toBe(true);
    for (const e of events) expect(e.audit?.hash).toMatch(/^[0-9a-f]{64}$/);
  });
});
