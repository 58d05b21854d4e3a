/**
 * Replicas share sync signals (SPEC §10): "a webhook received by one replica reaches the
 * others through PostgreSQL LISTEN/NOTIFY". Two services — two replicas, each with its own
 * data directory and mirror of one remote served by the real `git http-backend`, polling
 * off, sharing one PostgreSQL audit table — a commit pushed to the remote, a signed webhook
 * sent to replica A only, and both A and B serve the new commit within a bounded wait.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signWebhook } from 'config-service';
import {
  httpsGet,
  makeCerts,
  makeGitRepo,
  runGit,
  startGitHttpServer,
  startTestService,
  type ClientCert,
  type GitHttpServer,
  type GitTestRepo,
  type HttpsResult,
  type TestPki,
  type TestService,
} from '#helpers';
import { psql, testDatabaseUrl } from './helpers/postgres.ts';

const URL_ENV = 'CONFIG_SERVICE_AUDIT_DATABASE_URL';
const HOOK_SECRET = 'whsec-replicas-4d8b2e6f1a';
const table = `audit_sync_${randomBytes(6).toString('hex')}`;

let url: string;
let root: string;
let bare: string;
let work: GitTestRepo;
let server: GitHttpServer;
let pki: TestPki;
let orders: ClientCert;
let a: TestService | undefined;
let b: TestService | undefined;
let c1: string;

beforeAll(async () => {
  url = testDatabaseUrl();
  root = mkdtempSync(join(tmpdir(), 'cfg-sync-replicas-'));
  const srv = join(root, 'srv');
  bare = join(srv, 'config.git');
  work = await makeGitRepo({ 'orders/application.yml': 'x: 1\n' });
  c1 = work.commit;
  runGit(root, 'clone', '-q', '--bare', work.dir, bare);
  server = await startGitHttpServer({ projectRoot: srv });

  pki = await makeCerts('sync-replicas');
  orders = await pki.client('orders');
  const secretFile = join(root, 'webhook-secret');
  writeFileSync(secretFile, `${HOOK_SECRET}\n`, { mode: 0o600 });
  const replica = () =>
    startTestService({
      pki,
      repository: { url: `${server.url}/config.git`, branch: 'main', pollIntervalMs: 0, webhookSecretFile: secretFile },
      settings: { audit: { store: 'postgres', postgres: { table } } },
      env: { [URL_ENV]: url },
    });
  a = await replica();
  b = await replica();
});

afterAll(async () => {
  await a?.close();
  await b?.close();
  await server?.close();
  work?.remove();
  if (root) rmSync(root, { recursive: true, force: true });
  if (url) await psql(url, `DROP TABLE IF EXISTS "${table}", "${table}_anchor", "${table}_head", "${table}_checkpoints"`);
});

async function config(service: TestService): Promise<HttpsResult> {
  return httpsGet(service.apiUrl, '/v1/apps/orders/config?format=json', { ca: pki.ca.certPem, cert: orders.cert, key: orders.key });
}

/** Polls CONFIG(orders) on `service` until it serves `commit` (at most `ms`). */
async function untilServes(service: TestService, commit: string, ms = 10_000): Promise<HttpsResult> {
  const deadline = Date.now() + ms;
  for (;;) {
    const res = await config(service);
    if (res.status === 200 && res.headers['config-commit'] === commit) return res;
    if (Date.now() > deadline) throw new Error(`still serving ${String(res.headers['config-commit'])} after ${ms} ms, want ${commit}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('replicas share sync signals through PostgreSQL LISTEN/NOTIFY', () => {
  it('both replicas serve the first commit', async () => {
    for (const service of [a!, b!]) {
      const res = await config(service);
      expect(res.status).toBe(200);
      expect(res.headers['config-commit']).toBe(c1);
    }
  });

  it('a webhook sent to replica A only brings A and B to the new commit', async () => {
    const c2 = work.commitFiles({ 'orders/application.yml': 'x: 2\n' }, 'c2');
    work.git('push', '-q', bare, 'main');
    // Polling is off: without a signal neither replica would see C2.
    expect((await config(b!)).headers['config-commit']).toBe(c1);

    const body = JSON.stringify({ ref: 'refs/heads/main', before: c1, after: c2, repository: { full_name: 'platform/config' } });
    const [header, signature] = signWebhook('github', body, HOOK_SECRET);
    const hook = await httpsGet(a!.apiUrl, '/v1/hooks/git', {
      ca: pki.ca.certPem,
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', [header]: signature, 'x-github-event': 'push', 'x-github-delivery': randomUUID() },
    });
    expect(hook.status).toBe(202);
    expect(hook.json<Record<string, unknown>>()).toEqual({ accepted: true, repository: 'config', sync: 'scheduled' });

    const [resA, resB] = await Promise.all([untilServes(a!, c2), untilServes(b!, c2)]);
    expect(resA.json<Record<string, unknown>>().x).toBe(2);
    expect(resB.json<Record<string, unknown>>().x).toBe(2);
    // B synced because of A's signal, and says so.
    const msgs = (s: TestService) => s.logs.map((l) => (JSON.parse(l) as { msg?: string }).msg);
    expect(msgs(b!)).toContain('sync signal from another replica; syncing');
    expect(msgs(a!)).not.toContain('sync signal from another replica; syncing');
  });

  it('a long-poll held on replica B is answered when a webhook reaches replica A (issue 12)', async () => {
    const cur = await config(b!);
    const before = cur.headers['config-commit'] as string;
    const held = httpsGet(b!.apiUrl, '/v1/apps/orders/config?format=json&wait=120s', { ca: pki.ca.certPem, cert: orders.cert, key: orders.key, headers: { 'if-none-match': cur.headers.etag as string } });
    const deadline = Date.now() + 30_000;
    while (b!.api.longPoll.waiters < 1) {
      if (Date.now() > deadline) throw new Error('never held');
      await new Promise((r) => setTimeout(r, 20));
    }
    const c3 = work.commitFiles({ 'orders/application.yml': 'x: 3\n' }, 'c3');
    work.git('push', '-q', bare, 'main');
    const body = JSON.stringify({ ref: 'refs/heads/main', before, after: c3, repository: { full_name: 'platform/config' } });
    const [header, signature] = signWebhook('github', body, HOOK_SECRET);
    const hook = await httpsGet(a!.apiUrl, '/v1/hooks/git', {
      ca: pki.ca.certPem,
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', [header]: signature, 'x-github-event': 'push', 'x-github-delivery': randomUUID() },
    });
    expect(hook.status).toBe(202);
    const res = await held;
    expect(res.status).toBe(200);
    expect(res.headers['config-commit']).toBe(c3);
    expect(res.json<Record<string, unknown>>().x).toBe(3);
  });

  it('the database password and connection string never reach either replica log', () => {
    const u = new URL(url);
    const secrets = [url, ...(u.password ? [u.password, decodeURIComponent(u.password)] : [])];
    for (const service of [a!, b!]) {
      expect(service.logs.length).toBeGreaterThan(0);
      for (const line of service.logs) for (const s of secrets) expect(line.includes(s), 'a log line holds the database credential').toBe(false);
    }
  });
});
