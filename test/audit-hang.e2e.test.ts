/**
 * A hung or broken audit database fails requests closed, and readiness follows it (issue
 * 7): the real service with `audit.store: postgres` reaches the real PostgreSQL through a
 * TCP proxy the test controls (helpers/tcp-proxy.ts).
 *
 * - drop (packets silently lost, nothing closed): a read gets 503 `audit_unavailable`
 *   instead of waiting for the database, readiness turns 503 naming why;
 * - reset (connections reset): the same, failing fast;
 * - refuse (nothing listens): the same;
 * - then the proxy forwards again and, WITHOUT any request, readiness returns to 200 (the
 *   periodic probe); reads are served again, each refused request has its refusal record
 *   (status 503) and no served event, and `audit verify` finds the chain intact.
 *
 * Deadlines are generous and no duration is asserted: a request that hung would fail the
 * test by its 60 s client deadline, never by a timing threshold.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCerts, makeGitRepo, startTcpProxy, startTestService, type ClientCert, type GitTestRepo, type TcpProxy, type TcpProxyMode, type TestPki, type TestService } from '#helpers';
import { psql, testDatabaseUrl } from './helpers/postgres.ts';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../packages/config-service/dist/cli/main.js', import.meta.url));
const URL_ENV = 'CONFIG_SERVICE_AUDIT_DATABASE_URL';
const table = `audit_hang_${randomBytes(6).toString('hex')}`;

let url: string;
let pki: TestPki;
let orders: ClientCert;
let repo: GitTestRepo;
let proxy: TcpProxy;
let service: TestService;
let agent: Agent;

beforeAll(async () => {
  url = testDatabaseUrl();
  const target = new URL(url);
  proxy = await startTcpProxy({ targetHost: target.hostname, targetPort: Number(target.port || 5432) });
  pki = await makeCerts('audit-hang');
  orders = await pki.client('orders');
  repo = await makeGitRepo({ 'orders/application.yml': 'server: {port: 8080}\n' });
  service = await startTestService({
    pki,
    repository: { path: repo.dir, branch: 'main' },
    settings: {
      audit: {
        store: 'postgres',
        commitTimeoutMs: 1500,
        healthCheckIntervalMs: 300,
        postgres: { table, connectTimeoutMs: 1000, queryTimeoutMs: 1000, poolSize: 4 },
      },
    },
    env: { [URL_ENV]: proxy.rewrite(url) },
  });
  // One client for the whole file; a request that hangs fails at 60 s instead of blocking.
  agent = new Agent({ connect: { ca: pki.ca.certPem, cert: orders.cert, key: orders.key, servername: 'localhost' }, headersTimeout: 60_000, bodyTimeout: 60_000 });
});

afterAll(async () => {
  await agent?.close();
  await service?.close();
  await proxy?.close();
  if (url) await psql(url, `DROP TABLE IF EXISTS "${table}", "${table}_anchor", "${table}_head", "${table}_checkpoints"`);
});

async function read(): Promise<{ status: number; body: string; requestId: string }> {
  const res = await agent.request({ origin: service.apiUrl, path: '/v1/apps/orders/config?format=json', method: 'GET' });
  return { status: res.statusCode, body: await res.body.text(), requestId: String(res.headers['request-id']) };
}

interface Ready {
  status: number;
  body: { status: string; checks: { audit: { healthy: boolean; reason?: string; since?: string } } };
}
async function ready(): Promise<Ready> {
  const res = await fetch(`${service.managementUrl}/health/ready`, { signal: AbortSignal.timeout(60_000) });
  return { status: res.status, body: (await res.json()) as Ready['body'] };
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${service.managementUrl}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`metric ${name} not found`);
  return Number(m[1]);
}

async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `[status, reason]` of every stored event of one request, in chain order (read with psql). */
async function eventsOf(requestId: string): Promise<string[][]> {
  return psql(url, `SELECT status, coalesce(event::json->>'reason', '') FROM "${table}" WHERE request_id = '${requestId}' ORDER BY seq`);
}

async function auditVerify(): Promise<unknown> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-hang-cli-'));
  const settingsFile = path.join(dir, 'service.yml');
  writeFileSync(
    settingsFile,
    [
      'server:',
      '  tls:',
      `    cert: ${JSON.stringify(pki.serverCertFile)}`,
      `    key: ${JSON.stringify(pki.serverKeyFile)}`,
      `    clientCa: ${JSON.stringify(pki.caFile)}`,
      `dataDir: ${JSON.stringify(path.join(dir, 'data'))}`,
      'repositories:',
      `  - { name: config, path: ${JSON.stringify(repo.dir)} }`,
      'audit:',
      '  store: postgres',
      `  postgres: { table: ${table} }`,
      '',
    ].join('\n'),
  );
  const { stdout } = await run(process.execPath, [CLI, 'audit', 'verify', '--config', settingsFile], { encoding: 'utf8', env: { ...process.env, [URL_ENV]: url } });
  return JSON.parse(stdout);
}

const UNAVAILABLE = (requestId: string) => ({
  type: 'urn:config-service:problem:audit_unavailable',
  title: 'Service Unavailable',
  status: 503,
  detail: 'The audit log cannot record this request; nothing was served',
  code: 'audit_unavailable',
  instance: requestId,
});

/**
 * Why readiness may say the store is down, per fault. Readiness shows the latest failure
 * (of a request's commit or of a probe), so each fault has a few exact wordings.
 */
const DROP = /^(an audit event was not committed within 1500 ms( \(its transaction was in flight\))?|(write|probe) failed: (PostgreSQL did not answer within 2000 ms|no connection to PostgreSQL within 1000 ms|the probe did not finish within 1500 ms))$/;
const RESET = /^(write|probe) failed: the connection to PostgreSQL was reset or closed$/;
const REFUSED = /^(write|probe) failed: PostgreSQL refused the connection \(ECONNREFUSED\)$/;
const FAULTS = {
  drop: { reasons: [DROP], refusal: /^audit_unavailable:commit_(timeout|failed)$/ },
  reset: { reasons: [RESET], refusal: /^audit_unavailable:commit_failed$/ },
  // Open connections are reset first (a refusing proxy keeps them), then nothing listens.
  refuse: { reasons: [REFUSED, RESET], refusal: /^audit_unavailable:commit_failed$/ },
} as const satisfies Record<Exclude<TcpProxyMode, 'forward' | 'reset-on-accept'>, { reasons: RegExp[]; refusal: RegExp }>;

describe('audit store behind a faulty network (PostgreSQL through a TCP proxy)', () => {
  it('serves and is ready while the database answers', async () => {
    const ok = await read();
    expect(ok.status).toBe(200);
    expect(await eventsOf(ok.requestId)).toEqual([['200', 'default:own-app']]);
    expect(await ready()).toMatchObject({ status: 200, body: { status: 'ready', checks: { audit: { healthy: true } } } });
  });

  it.each(['drop', 'reset', 'refuse'] as const)('%s: reads fail closed with 503, readiness names why; both recover by themselves', async (mode) => {
    const failuresBefore = (await metric('config_service_audit_commit_timeouts_total')) + (await metric('config_service_audit_failed_transactions_total'));
    if (mode === 'refuse') await proxy.setMode('reset');
    await proxy.setMode(mode);

    // A read while the database is unreachable: 503, nothing served (the request does not hang).
    const refused = await read();
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body)).toEqual(UNAVAILABLE(refused.requestId));

    // Readiness reports it, naming why.
    const notReady = await until('readiness 503', async () => {
      const r = await ready();
      return r.status === 503 ? r : undefined;
    });
    expect(notReady.body.status).toBe('not_ready');
    expect(notReady.body.checks.audit.healthy).toBe(false);
    const reason = notReady.body.checks.audit.reason ?? '';
    expect(FAULTS[mode].reasons.some((r) => r.test(reason)), `unexpected reason: ${reason}`).toBe(true);
    expect(Date.parse(notReady.body.checks.audit.since ?? '')).not.toBeNaN();
    expect(await metric('config_service_audit_healthy')).toBe(0);
    const failuresAfter = (await metric('config_service_audit_commit_timeouts_total')) + (await metric('config_service_audit_failed_transactions_total'));
    expect(failuresAfter).toBeGreaterThan(failuresBefore);

    // The network comes back: readiness recovers with no request sent (the periodic probe).
    await proxy.setMode('forward');
    const back = await until('readiness 200', async () => {
      const r = await ready();
      return r.status === 200 ? r : undefined;
    });
    expect(back.body.checks.audit).toEqual({ healthy: true });
    expect(await metric('config_service_audit_healthy')).toBe(1);

    // Reads are served again.
    const ok = await read();
    expect(ok.status).toBe(200);
    expect(await eventsOf(ok.requestId)).toEqual([['200', 'default:own-app']]);

    // The refused request has its refusal record (committed once the database answered),
    // and no event claims it was served: its transaction, resumed when the network came
    // back, was rolled back before COMMIT because its caller had given up.
    const records = await until('the refusal record', async () => {
      const rows = await eventsOf(refused.requestId);
      return rows.length > 0 && rows[rows.length - 1]?.[0] === '503' ? rows : undefined;
    });
    expect(records).toEqual([['503', expect.stringMatching(FAULTS[mode].refusal)]]);
    expect(await auditVerify()).toMatchObject({ ok: true, checked: Number((await psql(url, `SELECT count(*) FROM "${table}"`))[0]?.[0]) });
  });
});
