/**
 * Several repositories (SPEC §4, issue 8) at service level, against two real `git
 * http-backend` servers: `team-a` (orders, pay-*) on server A, `team-b` (billing) on server
 * B, and a template entry (`svc-*`, one repository per application, at most two mirrored)
 * on server A. Each application is served from its own repository, a failing repository
 * never lends another one's documents, made-up names create nothing, overlapping globs
 * stop the start.
 */
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  httpsGet,
  makeCerts,
  makeGitRepo,
  makeIssuer,
  runGit,
  startGitHttpServer,
  startTestService,
  type GitHttpServer,
  type GitTestRepo,
  type HttpsResult,
  type TestIssuer,
  type TestPki,
  type TestService,
} from '#helpers';

const HOOK_SECRET_A = 'whsec-team-a-5c1f9e7a3b2d';
const HOOK_SECRET_B = 'whsec-team-b-8e2a4c6f0d1b';

let root: string;
let srvA: string;
let srvB: string;
let serverA: GitHttpServer;
let serverB: GitHttpServer;
let teamA: GitTestRepo;
let teamB: GitTestRepo;
let svcOne: GitTestRepo;
let svcTwo: GitTestRepo;
let svcThree: GitTestRepo;
let pki: TestPki;
let issuer: TestIssuer;
let token: string;
let service: TestService;

function repositories(a: string, b: string): Array<Record<string, unknown>> {
  return [
    { name: 'team-a', url: `${a}/team-a.git`, apps: ['orders', 'pay-*'], pollIntervalMs: 0, webhookSecretFile: join(root, 'hook-a') },
    { name: 'team-b', url: `${b}/team-b.git`, apps: ['billing'], pollIntervalMs: 0, webhookSecretFile: join(root, 'hook-b') },
    { name: 'per-app', url: `${a}/apps/{app}.git`, apps: ['svc-*'], pollIntervalMs: 0, maxMirrors: 2 },
  ];
}

async function bare(work: GitTestRepo, dir: string): Promise<void> {
  runGit(root, 'clone', '-q', '--bare', work.dir, dir);
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'cfg-repos-e2e-'));
  srvA = join(root, 'srv-a');
  srvB = join(root, 'srv-b');
  teamA = await makeGitRepo({
    'orders/application.yml': 'owner: team-a\n',
    'pay-eu/application.yml': 'owner: team-a-pay\n',
    // Not claimed by team-a's globs: never served from here.
    'billing/application.yml': 'owner: WRONG-team-a\n',
  });
  teamB = await makeGitRepo({ 'billing/application.yml': 'owner: team-b\n', 'orders/application.yml': 'owner: WRONG-team-b\n' });
  svcOne = await makeGitRepo({ 'svc-one/application.yml': 'owner: svc-one-repo\n' });
  svcTwo = await makeGitRepo({ 'svc-two/application.yml': 'owner: svc-two-repo\n' });
  svcThree = await makeGitRepo({ 'svc-three/application.yml': 'owner: svc-three-repo\n' });
  await bare(teamA, join(srvA, 'team-a.git'));
  await bare(teamB, join(srvB, 'team-b.git'));
  await bare(svcOne, join(srvA, 'apps', 'svc-one.git'));
  await bare(svcTwo, join(srvA, 'apps', 'svc-two.git'));
  await bare(svcThree, join(srvA, 'apps', 'svc-three.git'));
  writeFileSync(join(root, 'hook-a'), `${HOOK_SECRET_A}\n`);
  writeFileSync(join(root, 'hook-b'), `${HOOK_SECRET_B}\n`);
  serverA = await startGitHttpServer({ projectRoot: srvA });
  serverB = await startGitHttpServer({ projectRoot: srvB });
  pki = await makeCerts('repos');
  issuer = makeIssuer(pki.dir);
  token = await issuer.sign({ sub: 'ops', scope: 'config:read admin audit:read', apps: ['*'] });
  service = await startTestService({
    pki,
    repository: {},
    server: { rateLimit: { max: 0 } },
    settings: { repositories: repositories(serverA.url, serverB.url), jwt: { publicKeyFile: issuer.publicKeyFile, issuer: issuer.issuer, audience: issuer.audience } },
  });
});

afterAll(async () => {
  await service?.close();
  await serverA?.close();
  await serverB?.close();
  for (const r of [teamA, teamB, svcOne, svcTwo, svcThree]) r?.remove();
  rmSync(root, { recursive: true, force: true });
});

const get = (svc: TestService, path: string): Promise<HttpsResult> => httpsGet(svc.apiUrl, path, { ca: pki.ca.certPem, headers: { authorization: `Bearer ${token}` } });
const post = (svc: TestService, path: string, body = '', headers: Record<string, string> = {}): Promise<HttpsResult> =>
  httpsGet(svc.apiUrl, path, { ca: pki.ca.certPem, method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });

async function ready(svc: TestService): Promise<{ status: number; body: { status: string; checks: { repositories: Array<Record<string, unknown>>; templates?: unknown[] } } }> {
  const res = await fetch(`${svc.managementUrl}/health/ready`);
  return { status: res.status, body: (await res.json()) as never };
}

/** The service's own metric series (name and labels, no values; Node's process series vary by themselves). */
async function series(svc: TestService): Promise<Set<string>> {
  const text = await (await fetch(`${svc.managementUrl}/metrics`)).text();
  return new Set(text.split('\n').filter((l) => l.startsWith('config_service_')).map((l) => l.slice(0, l.lastIndexOf(' '))));
}

async function metricLines(svc: TestService, prefix: string): Promise<string[]> {
  const text = await (await fetch(`${svc.managementUrl}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith(prefix));
}

const mirrorFolders = (dataDir: string): string[] => {
  const out: string[] = [];
  const walk = (d: string, rel: string): void => {
    if (!existsSync(d)) return;
    for (const n of readdirSync(d)) {
      if (n.endsWith('.git')) out.push(`${rel}${n}`);
      else if (n.endsWith('.apps')) walk(join(d, n), `${rel}${n}/`);
    }
  };
  walk(join(dataDir, 'mirrors'), '');
  return out.sort();
};

describe('two static repositories and a URL template', () => {
  it('serves each application from its own repository, never from another that holds the same folder', async () => {
    const cases: Array<[string, string, string]> = [
      ['orders', 'team-a', teamA.commit],
      ['pay-eu', 'team-a', teamA.commit],
      ['billing', 'team-b', teamB.commit],
      ['svc-one', 'per-app/svc-one', svcOne.commit],
    ];
    for (const [app, repo, commit] of cases) {
      const res = await get(service, `/v1/apps/${app}/config`);
      expect([app, res.status, res.headers['config-commit']]).toEqual([app, 200, commit]);
      expect(res.body).not.toContain('WRONG');
      const spring = await get(service, `/${app}/default`);
      expect([app, spring.status, spring.json<{ version: string }>().version]).toEqual([app, 200, commit]);
      expect(spring.body).not.toContain('WRONG');
      void repo;
    }
    expect((await get(service, '/v1/apps/billing/config')).json()).toEqual({ owner: 'team-b' });
    expect((await get(service, '/v1/apps/orders/config')).json()).toEqual({ owner: 'team-a' });
    expect((await get(service, '/v1/apps/svc-one/config')).json()).toEqual({ owner: 'svc-one-repo' });
    expect(mirrorFolders(service.dataDir)).toEqual(['per-app.apps/svc-one.git', 'team-a.git', 'team-b.git']);

    // Every audit event names the repository it read.
    const audit = await get(service, '/v1/audit?action=config.read&limit=100');
    const events = audit.json<{ events: Array<{ app: string; repository?: string }> }>().events;
    expect(new Set(events.map((e) => `${e.app} ${e.repository}`))).toEqual(new Set(['orders team-a', 'pay-eu team-a', 'billing team-b', 'svc-one per-app/svc-one']));

    // History and diff read the application's repository.
    const history = await get(service, '/v1/apps/billing/history');
    expect([history.status, history.json<{ commit: string }>().commit]).toEqual([200, teamB.commit]);
  });

  it('/v1/apps lists per repository, each application under the repository that serves it', async () => {
    const res = await get(service, '/v1/apps');
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({
      apps: ['billing', 'orders', 'pay-eu', 'svc-one'],
      repositories: [
        { name: 'team-a', commit: teamA.commit, apps: ['orders', 'pay-eu'] },
        { name: 'team-b', commit: teamB.commit, apps: ['billing'] },
        { name: 'per-app/svc-one', commit: svcOne.commit, apps: ['svc-one'] },
      ],
    });
  });

  it('/health/ready and /metrics are per repository; the per-application ones do not decide readiness', async () => {
    const r = await ready(service);
    expect(r.status).toBe(200);
    expect(r.body.checks.repositories.map((x) => [x.name, x.kind, x.required, x.ready, x.state, x.commit])).toEqual([
      ['team-a', 'mirror', true, true, 'ok', teamA.commit],
      ['team-b', 'mirror', true, true, 'ok', teamB.commit],
      ['per-app/svc-one', 'per-application', false, true, 'ok', svcOne.commit],
    ]);
    for (const x of r.body.checks.repositories) {
      expect(typeof x.lastSyncAt).toBe('string');
      expect(typeof x.commitFetchedAt).toBe('string');
    }
    expect(r.body.checks.templates).toEqual([{ name: 'per-app', mirrors: 1, maxMirrors: 2, evictions: 0 }]);
    const readyLines = await metricLines(service, 'config_service_git_ready{');
    expect(readyLines.sort()).toEqual(['config_service_git_ready{repository="per-app/svc-one"} 1', 'config_service_git_ready{repository="team-a"} 1', 'config_service_git_ready{repository="team-b"} 1']);
    expect(await metricLines(service, 'config_service_git_state{repository="team-b",state="ok"}')).toEqual(['config_service_git_state{repository="team-b",state="ok"} 1']);
    expect((await metricLines(service, 'config_service_git_served_commit_age_seconds{repository="team-a"}')).length).toBe(1);
  });

  it('a client asking for 1,000 distinct unknown applications creates no mirror and no new metric series', async () => {
    // One unknown name first, so the request counter's 404 series exists before the snapshot.
    expect((await get(service, '/v1/apps/unknown-0/config')).status).toBe(404);
    const before = await series(service);
    const folders = mirrorFolders(service.dataDir);
    for (let i = 1; i <= 1000; i += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, (_, k) => get(service, `/v1/apps/unknown-${i + k}/config`)));
      for (const res of batch) {
        expect(res.status).toBe(404);
        expect(res.json()).toMatchObject({ code: 'app_not_found' });
      }
    }
    // Names the template claims but the Git server does not have: one clone attempt each, nothing kept.
    for (let i = 0; i < 20; i++) {
      const res = await get(service, `/v1/apps/svc-missing-${i}/config`);
      expect([res.status, res.json<{ code: string }>().code]).toEqual([404, 'app_not_found']);
    }
    // Asked again within the backoff: answered from memory, no new clone.
    const requests = serverA.requests;
    expect((await get(service, '/v1/apps/svc-missing-0/config')).status).toBe(404);
    expect(serverA.requests).toBe(requests);
    expect(mirrorFolders(service.dataDir)).toEqual(folders);
    expect(await series(service)).toEqual(before);
  });

  it('the template keeps at most maxMirrors: the least recently read one is removed', async () => {
    expect((await get(service, '/v1/apps/svc-two/config')).json()).toEqual({ owner: 'svc-two-repo' });
    expect((await get(service, '/v1/apps/svc-three/config')).json()).toEqual({ owner: 'svc-three-repo' });
    expect(mirrorFolders(service.dataDir)).toEqual(['per-app.apps/svc-three.git', 'per-app.apps/svc-two.git', 'team-a.git', 'team-b.git']);
    expect((await ready(service)).body.checks.templates).toEqual([{ name: 'per-app', mirrors: 2, maxMirrors: 2, evictions: 1 }]);
    expect(await metricLines(service, 'config_service_git_ready{repository="per-app/svc-one"}')).toEqual([]);
    expect(service.logs.some((l) => l.includes('"msg":"per-application mirror removed"') && l.includes('"repo":"per-app/svc-one"'))).toBe(true);
    // Asked again: cloned again.
    expect((await get(service, '/v1/apps/svc-one/config')).json()).toEqual({ owner: 'svc-one-repo' });
  });

  it('a webhook names its repository by the payload URL or ?repo=, and is checked with that repository\'s secret', async () => {
    const c1 = teamB.commitFiles({ 'billing/application.yml': 'owner: team-b\nversion: 2\n' }, 'b2');
    teamB.git('push', '-q', join(srvB, 'team-b.git'), 'main');
    const body = JSON.stringify({ ref: 'refs/heads/main', repository: { clone_url: `${serverB.url}/team-b.git`, html_url: 'https://example.test/x' } });
    const sign = (b: string, secret: string): string => `sha256=${createHmac('sha256', secret).update(b).digest('hex')}`;
    // Team A's secret does not verify team B's delivery.
    expect((await post(service, '/v1/hooks/git', body, { 'x-hub-signature-256': sign(body, HOOK_SECRET_A) })).status).toBe(401);
    const hook = await post(service, '/v1/hooks/git', body, { 'x-hub-signature-256': sign(body, HOOK_SECRET_B) });
    expect([hook.status, hook.json()]).toEqual([202, { accepted: true, repository: 'team-b', sync: 'scheduled' }]);
    const deadline = Date.now() + 20_000;
    while ((await get(service, '/v1/apps/billing/config')).headers['config-commit'] !== c1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect((await get(service, '/v1/apps/billing/config')).json()).toEqual({ owner: 'team-b', version: 2 });

    // ?repo= wins; an unknown one is 404; no name at all with several repositories is 400.
    const named = '{}';
    expect((await post(service, '/v1/hooks/git?repo=team-a', named, { 'x-hub-signature-256': sign(named, HOOK_SECRET_A) })).json()).toEqual({ accepted: true, repository: 'team-a', sync: 'scheduled' });
    expect((await post(service, '/v1/hooks/git?repo=nope', named, { 'x-hub-signature-256': sign(named, HOOK_SECRET_A) })).json()).toMatchObject({ status: 404, code: 'repo_not_found' });
    expect((await post(service, '/v1/hooks/git', named, { 'x-hub-signature-256': sign(named, HOOK_SECRET_A) })).json()).toMatchObject({ status: 400, code: 'invalid_request' });
    // The template entry has no secret: its webhooks are off.
    expect((await post(service, '/v1/hooks/git?repo=per-app/svc-one', named, { 'x-hub-signature-256': sign(named, HOOK_SECRET_A) })).json()).toMatchObject({ status: 404, code: 'webhook_disabled' });

    // Admin sync names its repository too.
    const admin = { authorization: `Bearer ${token}` };
    expect((await post(service, '/v1/admin/sync', '', admin)).json()).toMatchObject({ status: 400, code: 'invalid_request' });
    expect((await post(service, '/v1/admin/sync?repo=team-b', '', admin)).json()).toMatchObject({ repository: 'team-b', source: 'mirror', commit: c1 });
    expect((await post(service, '/v1/admin/sync?repo=per-app/svc-one', '', admin)).json()).toMatchObject({ repository: 'per-app/svc-one', commit: svcOne.commit });
    expect((await post(service, '/v1/admin/sync?repo=per-app/svc-nine', '', admin)).json()).toMatchObject({ status: 404, code: 'repo_not_found' });
  });

  it('one log line per sync that changed something, with "repo" once', () => {
    const lines = service.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    const updated = lines.filter((o) => o.msg === 'git mirror updated' && o.repo === 'team-b');
    expect(updated.length).toBeGreaterThanOrEqual(2);
    const last = updated.at(-1)!;
    expect(last).toMatchObject({ level: 30, repo: 'team-b', from: teamB.commit, forced: false, initial: false, updates: 1 });
    expect(typeof last.to).toBe('string');
    expect(typeof last.durationMs).toBe('number');
    for (const l of service.logs) expect(l.split('"repo":').length, l).toBeLessThanOrEqual(2);
  });
});

describe('a failure in one repository', () => {
  it('leaves the others serving and never serves another repository\'s document for that app', async () => {
    // Restart on a new data directory with team-b's server down: no mirror of team-b anywhere.
    const url = serverB.url;
    await serverB.close();
    const svc = await startTestService({
      pki,
      repository: {},
      server: { rateLimit: { max: 0 } },
      settings: { repositories: repositories(serverA.url, url), jwt: { publicKeyFile: issuer.publicKeyFile, issuer: issuer.issuer, audience: issuer.audience } },
    });
    try {
      const orders = await get(svc, '/v1/apps/orders/config');
      expect([orders.status, orders.json()]).toEqual([200, { owner: 'team-a' }]);
      const billing = await get(svc, '/v1/apps/billing/config');
      expect(billing.status).toBe(503);
      expect(billing.json()).toMatchObject({ code: 'repo_unavailable', detail: "Repository 'team-b' is unavailable: no mirror yet and the last sync failed" });
      expect(Number(billing.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(billing.body).not.toContain('WRONG');
      const spring = await get(svc, '/billing/default');
      expect(spring.status).toBe(503);
      const r = await ready(svc);
      expect(r.status).toBe(503);
      expect(r.body.checks.repositories.map((x) => [x.name, x.ready, x.state])).toEqual([
        ['team-a', true, 'ok'],
        ['team-b', false, 'repo_unavailable'],
      ]);
      const apps = await get(svc, '/v1/apps');
      expect(apps.json()).toMatchObject({ apps: ['orders', 'pay-eu'], repositories: [{ name: 'team-a' }, { name: 'team-b', error: 'repo_unavailable' }] });
    } finally {
      await svc.close();
      serverB = await startGitHttpServer({ projectRoot: srvB });
    }
  });

  it('a broken document in one repository is that repository\'s error only', async () => {
    teamA.commitFiles({ 'orders/application.yml': 'owner: [unclosed\n' }, 'broken');
    teamA.git('push', '-q', join(srvA, 'team-a.git'), 'main');
    await post(service, '/v1/admin/sync?repo=team-a', '', { authorization: `Bearer ${token}` });
    const orders = await get(service, '/v1/apps/orders/config');
    expect([orders.status, orders.json<{ code: string }>().code]).toEqual([422, 'document_invalid']);
    expect(orders.body).not.toContain('WRONG');
    expect((await get(service, '/v1/apps/billing/config')).status).toBe(200);
  });
});

describe('start-up', () => {
  it('refuses overlapping application globs, naming both entries', async () => {
    await expect(
      startTestService({
        pki,
        repository: {},
        settings: {
          repositories: [
            { name: 'team-a', url: `${serverA.url}/team-a.git`, apps: ['orders', 'pay-*'] },
            { name: 'team-b', url: `${serverB.url}/team-b.git`, apps: ['*-eu'] },
          ],
        },
      }),
    ).rejects.toMatchObject({
      code: 'CFG_ERR_SETTINGS_INVALID',
      message: expect.stringContaining("'team-a' (apps 'pay-*') and 'team-b' (apps '*-eu') both claim applications, e.g. 'pay-eu'"),
    });
  });
});
