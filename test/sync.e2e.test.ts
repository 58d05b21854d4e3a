/**
 * Case 14 at service level: a force-pushed branch is followed after a push webhook and after
 * an admin sync (SPEC §4, §5.2). A bare repository served by the real `git http-backend`,
 * the service mirroring it with polling off, rewrites made with the git CLI.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  httpsGet,
  makeCerts,
  makeIssuer,
  startGitRemote,
  startTestService,
  writeWebhookSecret,
  type ClientCert,
  type GitRemote,
  type GitTestRepo,
  type HttpsResult,
  type TestIssuer,
  type TestPki,
  type TestService,
} from '#helpers';

const HOOK_SECRET = 'whsec-case14-7f3a9c1e5b';
/** Never in any body once the branch was rewritten (case 14). */
const FORBIDDEN = ['LEAKED-123', '<<<<<<<', '=======', '>>>>>>>'];

let root: string;
let remote: GitRemote;
let work: GitTestRepo;
let pki: TestPki;
let issuer: TestIssuer;
let orders: ClientCert;
let service: TestService;
let c0: string;
let c1: string;
let c2: string;
/** Every response body received after the first rewrite. */
const afterRewrite: HttpsResult[] = [];

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'cfg-sync-e2e-'));
  remote = await startGitRemote(root, { 'orders/application.yml': 'x: 0\n' });
  work = remote.work;
  c0 = work.commit;
  c1 = work.commitFiles({ 'orders/application.yml': 'x: 1\napi-key: LEAKED-123\n' }, 'c1');
  remote.push('main');

  pki = await makeCerts('sync');
  issuer = makeIssuer(pki.dir);
  orders = await pki.client('orders');
  service = await startTestService({
    pki,
    repository: { url: remote.url, branch: 'main', pollIntervalMs: 0, webhookSecretFile: writeWebhookSecret(root, HOOK_SECRET) },
    settings: { jwt: { publicKeyFile: issuer.publicKeyFile, issuer: issuer.issuer, audience: issuer.audience } },
  });
});

afterAll(async () => {
  await service?.close();
  await remote?.close();
  rmSync(root, { recursive: true, force: true });
});

async function config(format = 'json'): Promise<HttpsResult> {
  return httpsGet(service.apiUrl, `/v1/apps/orders/config?format=${format}`, { ca: pki.ca.certPem, cert: orders.cert, key: orders.key });
}

function pushPayload(before: string, after: string): string {
  // The shape of a GitHub push event (only the bytes matter to the signature).
  return JSON.stringify({ ref: 'refs/heads/main', before, after, forced: true, repository: { full_name: 'platform/config' }, pusher: { name: 'dev' } });
}

async function webhook(body: string, headers: Record<string, string>): Promise<HttpsResult> {
  // No client certificate, no token: the signature is the authentication.
  return httpsGet(service.apiUrl, '/v1/hooks/git', { ca: pki.ca.certPem, method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
}

const githubSignature = (body: string, secret = HOOK_SECRET): string => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

async function adminSync(): Promise<HttpsResult> {
  const token = await issuer.sign({ sub: 'ops-bot', scope: 'admin', apps: ['*'] });
  return httpsGet(service.apiUrl, '/v1/admin/sync', { ca: pki.ca.certPem, method: 'POST', headers: { authorization: `Bearer ${token}` } });
}

/** Polls CONFIG(orders) until it serves `commit` (at most `ms`). */
async function untilServes(commit: string, ms = 15_000): Promise<HttpsResult> {
  const deadline = Date.now() + ms;
  for (;;) {
    const res = await config();
    if (res.headers['config-commit'] === commit) return res;
    if (Date.now() > deadline) throw new Error(`still serving ${res.headers['config-commit']} after ${ms} ms, want ${commit}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${service.managementUrl}/metrics`)).text();
  // Git series are per repository since several are supported (issue 8).
  const line = text.split('\n').find((l) => l.startsWith(`${name}{repository="config"} `));
  return Number(line?.split(' ')[1]);
}

async function auditEvents(action: string): Promise<Array<Record<string, unknown>>> {
  const token = await issuer.sign({ sub: 'auditor', scope: 'audit:read', apps: ['*'] });
  const res = await httpsGet(service.apiUrl, `/v1/audit?action=${action}&limit=1000`, { ca: pki.ca.certPem, headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return res.json<{ events: Array<Record<string, unknown>> }>().events;
}

const forcedLines = (): Array<Record<string, unknown>> =>
  service.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((o) => o.msg === 'git ref force-updated');

describe('case 14: a force-pushed branch, at service level', () => {
  it('serves C1 first', async () => {
    const res = await config();
    expect(res.status).toBe(200);
    expect(res.headers['config-commit']).toBe(c1);
    expect(res.json<Record<string, unknown>>().x).toBe(1);
  });

  it('force-push to C2, GitHub webhook (202 at once) → C2, x = 2, no api-key', async () => {
    work.git('reset', '-q', '--hard', c0);
    c2 = work.commitFiles({ 'orders/application.yml': 'x: 2\n' }, 'c2');
    expect(work.git('rev-parse', `${c2}^`)).toBe(c0);
    remote.push('--force', 'main');

    const body = pushPayload(c1, c2);
    const hook = await webhook(body, { 'x-hub-signature-256': githubSignature(body), 'x-github-event': 'push', 'x-github-delivery': randomUUID() });
    expect(hook.status).toBe(202);
    expect(hook.json()).toEqual({ accepted: true, repository: 'config', sync: 'scheduled' });

    const res = await untilServes(c2);
    afterRewrite.push(res);
    expect(res.json()).toEqual({ x: 2 });
    for (const format of ['properties', 'yaml', 'env']) {
      const r = await config(format);
      expect([r.status, r.headers['config-commit']]).toEqual([200, c2]);
      expect(r.body).not.toContain('api');
      afterRewrite.push(r);
    }
    const spring = await httpsGet(service.apiUrl, '/orders/default', { ca: pki.ca.certPem, cert: orders.cert, key: orders.key });
    expect(spring.status).toBe(200);
    expect(spring.json<{ version: string }>().version).toBe(c2);
    afterRewrite.push(spring);
    expect(forcedLines().map((o) => [o.ref, o.from, o.to])).toEqual([['refs/heads/main', c1, c2]]);
  });

  it('force-push back to C0, POST /v1/admin/sync waits and lists the forced update → C0, x = 0', async () => {
    remote.push('--force', `${c0}:refs/heads/main`);
    const sync = await adminSync();
    afterRewrite.push(sync);
    expect(sync.status).toBe(200);
    const body = sync.json<{ repository: string; source: string; commit: string; updates: unknown[]; forcedUpdates: number; durationMs: number }>();
    expect(body).toMatchObject({ repository: 'config', source: 'mirror', commit: c0, forcedUpdates: 1 });
    expect(body.updates).toEqual([{ ref: 'refs/heads/main', from: c2, to: c0, forced: true }]);
    expect(body.durationMs).toBeGreaterThanOrEqual(0);

    // Served at once: the admin sync waited for the sync.
    const res = await config();
    afterRewrite.push(res);
    expect([res.status, res.headers['config-commit']]).toEqual([200, c0]);
    expect(res.json()).toEqual({ x: 0 });
  });

  it('no body after the rewrite holds the removed key or conflict markers', () => {
    expect(afterRewrite.length).toBeGreaterThanOrEqual(7);
    for (const r of afterRewrite) for (const bad of FORBIDDEN) expect(r.body, r.body).not.toContain(bad);
  });

  it('the log records each non-fast-forward move old → new; /metrics counts 2', async () => {
    expect(forcedLines()).toEqual([
      expect.objectContaining({ level: 30, repo: 'config', ref: 'refs/heads/main', from: c1, to: c2, forced: true }),
      expect.objectContaining({ level: 30, repo: 'config', ref: 'refs/heads/main', from: c2, to: c0, forced: true }),
    ]);
    expect(await metric('config_service_git_forced_updates_total')).toBe(2);
    expect(service.logs.some((l) => l.includes('"msg":"webhook accepted"') && l.includes('"style":"github"') && l.includes('"event":"push"'))).toBe(true);
    for (const l of service.logs) expect(l).not.toContain(HOOK_SECRET);
  });

  it('a bad signature is 401 and audited; no signature is 401; nothing is synced', async () => {
    const syncs = await metric('config_service_git_syncs_total');
    const body = pushPayload(c0, c1);
    const bad = await webhook(body, { 'x-hub-signature-256': githubSignature(body, 'not-the-secret') });
    expect(bad.status).toBe(401);
    expect(bad.headers['content-type']).toContain('application/problem+json');
    expect(bad.json()).toMatchObject({ code: 'unauthenticated', status: 401 });
    const tampered = await webhook(`${body} `, { 'x-hub-signature-256': githubSignature(body) });
    expect(tampered.status).toBe(401);
    const none = await webhook(body, {});
    expect(none.status).toBe(401);
    expect(none.json()).toMatchObject({ code: 'unauthenticated' });
    const gitlab = await webhook(body, { 'x-gitlab-token': 'guess' });
    expect(gitlab.status).toBe(401);

    const events = await auditEvents('git.webhook');
    const byId = (r: HttpsResult) => events.find((e) => e.requestId === r.headers['request-id']);
    expect(byId(bad)).toMatchObject({ outcome: 'denied', status: 401, reason: 'webhook_signature_invalid', actor: { kind: 'anonymous', subject: 'webhook:github' } });
    expect(byId(tampered)).toMatchObject({ outcome: 'denied', reason: 'webhook_signature_invalid' });
    expect(byId(none)).toMatchObject({ outcome: 'denied', status: 401, reason: 'webhook_signature_missing', actor: { kind: 'anonymous', subject: 'webhook' } });
    expect(byId(gitlab)).toMatchObject({ outcome: 'denied', reason: 'webhook_signature_invalid', actor: { subject: 'webhook:gitlab' } });
    expect(events.filter((e) => e.outcome === 'allowed')).toEqual([expect.objectContaining({ status: 202, actor: { kind: 'anonymous', subject: 'webhook:github' } })]);
    const admin = await auditEvents('admin.sync');
    expect(admin).toEqual([expect.objectContaining({ outcome: 'allowed', status: 200, commit: c0, actor: expect.objectContaining({ kind: 'jwt', subject: 'ops-bot' }) })]);

    await new Promise((r) => setTimeout(r, 200));
    expect(await metric('config_service_git_syncs_total')).toBe(syncs);
  });

  it('admin sync needs the admin scope', async () => {
    const token = await issuer.sign({ sub: 'reader', scope: 'config:read audit:read', apps: ['*'] });
    const res = await httpsGet(service.apiUrl, '/v1/admin/sync', { ca: pki.ca.certPem, method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(403);
    expect(res.json()).toMatchObject({ code: 'forbidden', detail: expect.stringContaining('token-scope-missing:admin') });
    const cert = await httpsGet(service.apiUrl, '/v1/admin/sync', { ca: pki.ca.certPem, cert: orders.cert, key: orders.key, method: 'POST' });
    expect(cert.status).toBe(403);
  });

  it('a burst of webhooks coalesces: all 202, at most two syncs for the burst (plus the admin sync after it)', async () => {
    const before = await metric('config_service_git_syncs_total');
    const body = pushPayload(c0, c0);
    const sig = githubSignature(body);
    const answers = await Promise.all(Array.from({ length: 6 }, () => webhook(body, { 'x-hub-signature-256': sig, 'x-github-event': 'push' })));
    expect(answers.map((a) => a.status)).toEqual([202, 202, 202, 202, 202, 202]);
    // An admin sync after the burst waits out the queued sync (if any) and runs one more at most.
    const sync = await adminSync();
    expect(sync.status).toBe(200);
    expect(sync.json()).toMatchObject({ commit: c0, updates: [], forcedUpdates: 0 });
    const after = await metric('config_service_git_syncs_total');
    expect(after - before).toBeGreaterThanOrEqual(1);
    expect(after - before).toBeLessThanOrEqual(3);
    expect(await metric('config_service_git_forced_updates_total')).toBe(2);
  });
});
