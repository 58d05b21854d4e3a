/**
 * A Git mirror that never lies (SPEC §4, issue 8), at service level against the real `git
 * http-backend`: a data directory tampered with while the service was stopped, a remote that
 * sends a pack lacking the commit it advertised, the default branch deleted at the remote,
 * slow, hanging and trickling remotes, 503 with `Retry-After`, a token rotated the
 * Kubernetes way while the old one is revoked, and sync times kept across a restart.
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
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

let root: string;
let srv: string;
let server: GitHttpServer;
let pki: TestPki;
let issuer: TestIssuer;
let token: string;
const cleanup: Array<() => Promise<void> | void> = [];
let remotes = 0;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'cfg-git-failures-'));
  srv = join(root, 'srv');
  mkdirSync(srv);
  server = await startGitHttpServer({ projectRoot: srv });
  pki = await makeCerts('git-failures');
  issuer = makeIssuer(pki.dir);
  token = await issuer.sign({ sub: 'ops', scope: 'config:read admin', apps: ['*'] });
});

afterEach(async () => {
  server.configure({ delayMs: undefined, hang: undefined, trickleMs: undefined, rewriteWants: undefined, auth: undefined });
  while (cleanup.length > 0) await cleanup.pop()!();
});

afterAll(async () => {
  await server?.close();
  rmSync(root, { recursive: true, force: true });
});

/** A work tree and its bare clone served at `<server>/<name>.git`. */
async function newRemote(files: Record<string, string> = { 'orders/application.yml': 'x: 0\n' }): Promise<{ work: GitTestRepo; bare: string; url: string; push(...args: string[]): void }> {
  const name = `r${++remotes}`;
  const work = await makeGitRepo(files);
  const bare = join(srv, `${name}.git`);
  runGit(root, 'clone', '-q', '--bare', work.dir, bare);
  cleanup.push(() => work.remove());
  return { work, bare, url: `${server.url}/${name}.git`, push: (...args) => work.git('push', '-q', bare, ...args) };
}

async function start(repository: Record<string, unknown>, more: { dataDir?: string; git?: Record<string, unknown> } = {}): Promise<TestService> {
  const svc = await startTestService({
    pki,
    repository: { pollIntervalMs: 0, ...repository },
    settings: { jwt: { publicKeyFile: issuer.publicKeyFile, issuer: issuer.issuer, audience: issuer.audience }, ...(more.git && { git: more.git }) },
    ...(more.dataDir && { dataDir: more.dataDir }),
  });
  cleanup.push(() => svc.close());
  return svc;
}

const config = (svc: TestService, query = ''): Promise<HttpsResult> => httpsGet(svc.apiUrl, `/v1/apps/orders/config${query}`, { ca: pki.ca.certPem, headers: { authorization: `Bearer ${token}` } });
const adminSync = (svc: TestService): Promise<HttpsResult> => httpsGet(svc.apiUrl, '/v1/admin/sync', { ca: pki.ca.certPem, method: 'POST', headers: { authorization: `Bearer ${token}` } });

async function ready(svc: TestService): Promise<{ status: number; repo: Record<string, unknown> }> {
  const res = await fetch(`${svc.managementUrl}/health/ready`);
  const body = (await res.json()) as { checks: { repositories: Array<Record<string, unknown>> } };
  return { status: res.status, repo: body.checks.repositories[0]! };
}

const logObjects = (svc: TestService): Array<Record<string, unknown>> => svc.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
const refusals = (svc: TestService) => logObjects(svc).filter((o) => o.msg === 'git mirror refused; it will be cloned again into a fresh folder');

/** Every file and link under `dir`, with a hash of its content (or link target) and mode. */
function fingerprint(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out.push(`${relative(dir, p)} -> ${readlinkSync(p)}`);
      else if (st.isDirectory()) walk(p);
      else out.push(`${relative(dir, p)} ${st.mode.toString(8)} ${st.size} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
    }
  };
  walk(dir);
  return out;
}

describe('the data directory is trusted only as far as it checks out', () => {
  it('a mirror folder replaced by a symlink while stopped: refused, nothing written through it, cloned afresh', async () => {
    const remote = await newRemote();
    const dataDir = mkdtempSync(join(root, 'data-'));
    const first = await start({ url: remote.url }, { dataDir });
    expect((await config(first)).headers['config-commit']).toBe(remote.work.commit);
    await first.close();
    const mirror = join(dataDir, 'mirrors', 'config.git');
    // The victim: a valid mirror elsewhere (another team's), which must stay byte-for-byte the same.
    const victim = join(root, `victim-${remotes}`);
    cpSync(mirror, victim, { recursive: true });
    rmSync(mirror, { recursive: true });
    symlinkSync(victim, mirror);
    const before = fingerprint(victim);
    const c1 = remote.work.commitFiles({ 'orders/application.yml': 'x: 1\n' }, 'c1');
    remote.push('main');

    const second = await start({ url: remote.url }, { dataDir });
    const res = await config(second);
    expect([res.status, res.headers['config-commit'], res.json()]).toEqual([200, c1, { x: 1 }]);
    expect(refusals(second)).toEqual([expect.objectContaining({ level: 50, repo: 'config', path: mirror, reason: "'mirrors/config.git' is a symbolic link" })]);
    expect(lstatSync(mirror).isSymbolicLink()).toBe(false);
    expect(lstatSync(mirror).isDirectory()).toBe(true);
    expect(fingerprint(victim)).toEqual(before);
    const r = await ready(second);
    expect(r.status).toBe(200);
    expect(r.repo).toMatchObject({ state: 'ok', commit: c1, refused: { path: mirror, reason: "'mirrors/config.git' is a symbolic link" } });
  });

  it('a ref pointing at a missing object (snapshot and ref file edited while stopped): refused, cloned afresh', async () => {
    const remote = await newRemote();
    const dataDir = mkdtempSync(join(root, 'data-'));
    await (await start({ url: remote.url }, { dataDir })).close();
    const mirror = join(dataDir, 'mirrors', 'config.git');
    const ghost = 'ab'.repeat(20);
    const snapshotFile = join(mirror, 'config-service-snapshot.json');
    const snapshot = JSON.parse(readFileSync(snapshotFile, 'utf8')) as { refs: Record<string, string> };
    snapshot.refs['refs/remotes/origin/main'] = ghost;
    writeFileSync(snapshotFile, JSON.stringify(snapshot));
    writeFileSync(join(mirror, 'refs/remotes/origin/main'), `${ghost}\n`);

    const svc = await start({ url: remote.url }, { dataDir });
    expect((await config(svc)).headers['config-commit']).toBe(remote.work.commit);
    expect(refusals(svc)).toEqual([expect.objectContaining({ path: mirror, reason: `refs/heads/main points at ${ghost}, which the mirror does not hold` })]);
  });

  it('pack files truncated while stopped: refused, cloned afresh; with the remote down, not ready with that reason and never 500', async () => {
    const remote = await newRemote();
    const dataDir = mkdtempSync(join(root, 'data-'));
    await (await start({ url: remote.url }, { dataDir })).close();
    const packDir = join(dataDir, 'mirrors', 'config.git', 'objects', 'pack');
    const pack = readdirSync(packDir).find((f) => f.endsWith('.pack'))!;
    truncateSync(join(packDir, pack), Math.floor(lstatSync(join(packDir, pack)).size / 2));

    // Remote down: nothing to serve, and it says why.
    const down = await start({ url: `${server.url}/no-such-repository.git` }, { dataDir });
    const r = await ready(down);
    expect(r.status).toBe(503);
    expect(r.repo).toMatchObject({ ready: false, state: 'mirror_invalid', refused: { reason: `${pack} is truncated or damaged (its trailer does not match the index)` } });
    const res = await config(down);
    expect([res.status, res.json<{ code: string }>().code]).toEqual([503, 'repo_unavailable']);
    expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    await down.close();

    // Remote back (the refused mirror was removed): a fresh clone serves.
    const svc = await start({ url: remote.url }, { dataDir });
    expect((await config(svc)).headers['config-commit']).toBe(remote.work.commit);
    expect(existsSync(join(packDir, pack))).toBe(true); // the same content, fetched again
  });

  it('a remote that answers with a pack lacking the advertised commit: not published, the previous refs keep serving', async () => {
    const remote = await newRemote();
    const svc = await start({ url: remote.url });
    const c0 = remote.work.commit;
    const c1 = remote.work.commitFiles({ 'orders/application.yml': 'x: 1\n' }, 'c1');
    remote.push('main');
    server.configure({ rewriteWants: { [c1]: c0 } });
    const sync = await adminSync(svc);
    expect(sync.status).toBe(503);
    expect(sync.json()).toMatchObject({
      code: 'repo_unavailable',
      detail: `Repository 'config' is unavailable: the fetch was refused: refs/heads/main points at ${c1}, which the mirror does not hold; the previous refs keep serving`,
    });
    expect(Number(sync.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    const res = await config(svc);
    expect([res.status, res.headers['config-commit'], res.json()]).toEqual([200, c0, { x: 0 }]);
    expect((await ready(svc)).repo).toMatchObject({ ready: true, state: 'repo_unavailable', commit: c0 });

    server.configure({ rewriteWants: undefined });
    expect((await adminSync(svc)).json()).toMatchObject({ commit: c1 });
    // The update landed once: by this sync, or by the mirror's own retry after the failure
    // when that ran first (then this sync found nothing new).
    expect(logObjects(svc).filter((o) => o.msg === 'git mirror updated' && o.from === c0)).toEqual([expect.objectContaining({ to: c1, forced: false, updates: 1 })]);
    expect((await config(svc)).json()).toEqual({ x: 1 });
  });
});

describe('refs that disappear', () => {
  it('the default branch deleted at the remote: the other updates land, requests without a ref name the missing branch', async () => {
    const remote = await newRemote();
    remote.work.git('branch', 'release');
    remote.work.git('branch', 'feature/old');
    remote.push('release', 'feature/old');
    const svc = await start({ url: remote.url });
    expect((await config(svc)).json()).toEqual({ x: 0 });
    expect((await config(svc, '?ref=feature/old')).status).toBe(200);

    remote.work.git('checkout', '-q', 'release');
    const r1 = remote.work.commitFiles({ 'orders/application.yml': 'x: release-1\n' }, 'r1');
    remote.push('release');
    runGit(remote.bare, 'symbolic-ref', 'HEAD', 'refs/heads/release');
    remote.push('--delete', 'main', 'feature/old');

    const sync = await adminSync(svc);
    expect(sync.json()).toMatchObject({ status: 503, code: 'repo_unavailable', detail: "Repository 'config' is unavailable: default branch 'main' not found on the remote; the other refs were updated" });
    const noRef = await config(svc);
    expect([noRef.status, noRef.json()]).toEqual([404, expect.objectContaining({ code: 'ref_not_found', detail: "Ref 'main' not found in repository 'config'" })]);
    expect(noRef.body).not.toContain('x');
    const release = await config(svc, '?ref=release');
    expect([release.status, release.headers['config-commit'], release.json()]).toEqual([200, r1, { x: 'release-1' }]);
    expect((await config(svc, '?ref=feature/old')).json()).toMatchObject({ code: 'ref_not_found' });
    const refs = runGit(join(svc.dataDir, 'mirrors', 'config.git'), 'for-each-ref', '--format=%(refname)').split('\n');
    expect(refs.filter((r) => r.startsWith('refs/remotes/origin/') && !r.endsWith('/HEAD'))).toEqual(['refs/remotes/origin/release']);
    const r = await ready(svc);
    expect(r.repo).toMatchObject({ ready: true, commit: null, lastError: "Repository 'config' is unavailable: default branch 'main' not found on the remote; the other refs were updated" });
    expect(logObjects(svc).filter((o) => o.msg === 'git ref deleted').map((o) => o.ref).sort()).toEqual(['refs/heads/feature/old', 'refs/heads/main']);
  });
});

describe('slow and failing remotes', () => {
  it('a remote that delays every response by 8 s: the sync succeeds (Node\'s default 5 s socket timeout no longer applies)', async () => {
    const remote = await newRemote();
    server.configure({ delayMs: 8000 });
    const svc = await start({ url: remote.url });
    expect((await config(svc)).headers['config-commit']).toBe(remote.work.commit);
    expect(server.log.filter((r) => r.url.startsWith(new URL(remote.url).pathname)).length).toBeGreaterThanOrEqual(2);
  });

  it('a remote that hangs, then one that trickles: each sync fails at its timeout, serving continues, readiness says why', async () => {
    const remote = await newRemote();
    const svc = await start({ url: remote.url }, { git: { connectTimeoutMs: 1000, idleTimeoutMs: 1500, syncTimeoutMs: 4000 } });
    server.configure({ hang: true });
    const hung = await adminSync(svc);
    expect(hung.json()).toMatchObject({ status: 503, code: 'repo_unavailable', detail: "Repository 'config' is unavailable: fetch failed: the remote sent nothing for git.idleTimeoutMs (1500 ms)" });
    expect(Number(hung.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect((await config(svc)).status).toBe(200);
    expect(await ready(svc)).toMatchObject({ status: 200, repo: { ready: true, state: 'repo_unavailable', lastError: "Repository 'config' is unavailable: fetch failed: the remote sent nothing for git.idleTimeoutMs (1500 ms)" } });

    server.configure({ hang: false, trickleMs: 300 });
    const trickled = await adminSync(svc);
    expect(trickled.json()).toMatchObject({ status: 503, detail: "Repository 'config' is unavailable: the sync did not finish within git.syncTimeoutMs (4000 ms)" });
    expect((await config(svc)).status).toBe(200);
    expect((await ready(svc)).repo).toMatchObject({ lastError: "Repository 'config' is unavailable: the sync did not finish within git.syncTimeoutMs (4000 ms)" });
    expect(typeof (await ready(svc)).repo.nextAttemptAt).toBe('string');
  });

  it('no mirror and the remote down: 503 repo_unavailable with Retry-After (seconds to the next attempt)', async () => {
    const svc = await start({ url: `${server.url}/missing-${Date.now()}.git` }, { git: { retryMinMs: 20_000, retryMaxMs: 60_000 } });
    const res = await config(svc);
    expect(res.status).toBe(503);
    expect(res.json()).toMatchObject({ code: 'repo_unavailable' });
    const retry = Number(res.headers['retry-after']);
    // The first retry is drawn in [10 s, 20 s].
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(20);
    expect((await ready(svc)).repo).toMatchObject({ ready: false, state: 'repo_unavailable', lastError: "Repository 'config' is unavailable: fetch failed: HTTP 404" });
  });

  it('sync times are kept on disk: after a restart with the remote down, /health/ready still tells how old the mirror is', async () => {
    const remote = await newRemote();
    const dataDir = mkdtempSync(join(root, 'data-'));
    const first = await start({ url: remote.url }, { dataDir });
    const before = (await ready(first)).repo;
    expect(typeof before.lastSyncAt).toBe('string');
    await first.close();
    const svc = await start({ url: `${server.url}/gone-${Date.now()}.git` }, { dataDir });
    const r = await ready(svc);
    expect(r.status).toBe(200);
    expect(r.repo).toMatchObject({ ready: true, commit: remote.work.commit, lastSyncAt: before.lastSyncAt, commitFetchedAt: before.commitFetchedAt, state: 'repo_unavailable' });
    expect(r.repo.syncAgeMs).toBeGreaterThanOrEqual(0);
  });
});

describe('credentials that rotate', () => {
  it('a token file rotated with a Kubernetes-style ..data swap while running, the old token revoked: no restart needed', async () => {
    const OLD = 'old-T0ken-4f9a2c7e1b';
    const NEW = 'new-T0ken-8d3b6a0f5e';
    const remote = await newRemote();
    const authServer = await startGitHttpServer({ projectRoot: srv, auth: { username: 'deploy-bot', password: OLD } });
    cleanup.push(() => authServer.close());
    // A Secret volume: token -> ..data/token, ..data -> ..<timestamp>.
    const vol = join(root, `secret-${remotes}`);
    mkdirSync(join(vol, '..2024_01_01'), { recursive: true });
    writeFileSync(join(vol, '..2024_01_01', 'token'), `${OLD}\n`);
    symlinkSync('..2024_01_01', join(vol, '..data'));
    symlinkSync('..data/token', join(vol, 'token'));
    const url = `${authServer.url}${new URL(remote.url).pathname}`;
    const svc = await start({ url, auth: { username: 'deploy-bot', passwordFile: join(vol, 'token') }, allowInsecureHttp: true });
    expect((await config(svc)).headers['config-commit']).toBe(remote.work.commit);

    // The Git host revokes the old token before the new one reaches the volume.
    authServer.configure({ auth: { username: 'deploy-bot', password: NEW } });
    const c1 = remote.work.commitFiles({ 'orders/application.yml': 'x: rotated\n' }, 'c1');
    remote.push('main');
    const refused = await adminSync(svc);
    expect(refused.json()).toMatchObject({ status: 503, code: 'repo_auth_failed' });
    expect(await ready(svc)).toMatchObject({ status: 200, repo: { state: 'repo_auth_failed', lastErrorCode: 'CFG_ERR_REPO_AUTH_FAILED' } });
    const metrics = await (await fetch(`${svc.managementUrl}/metrics`)).text();
    expect(metrics).toContain('config_service_git_state{repository="config",state="repo_auth_failed"} 1');
    expect(logObjects(svc).some((o) => o.state === 'repo_auth_failed' && o.code === 'CFG_ERR_REPO_AUTH_FAILED')).toBe(true);

    // kubelet's atomic swap: a new timestamped folder, then ..data renamed over.
    mkdirSync(join(vol, '..2024_02_01'));
    writeFileSync(join(vol, '..2024_02_01', 'token'), `${NEW}\n`);
    symlinkSync('..2024_02_01', join(vol, '..data_tmp'));
    renameSync(join(vol, '..data_tmp'), join(vol, '..data'));
    rmSync(join(vol, '..2024_01_01'), { recursive: true });

    const ok = await adminSync(svc);
    expect([ok.status, ok.json<{ commit: string }>().commit]).toEqual([200, c1]);
    expect((await config(svc)).json()).toEqual({ x: 'rotated' });
    expect((await ready(svc)).repo).toMatchObject({ state: 'ok', lastError: null });
    const everything = [...svc.logs, metrics, JSON.stringify((await ready(svc)).repo)].join('\n');
    for (const secret of [OLD, NEW, Buffer.from(`deploy-bot:${OLD}`).toString('base64'), Buffer.from(`deploy-bot:${NEW}`).toString('base64')]) expect(everything).not.toContain(secret);
  });
});
