/**
 * GitMirror end to end: a real `git http-backend` behind a node:http server (with Basic
 * auth), real repositories made with the git CLI, isomorphic-git fetching. Cases 14 and 15,
 * SPEC §4 and §11.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GitMirror, type MirrorLogger } from '../packages/config-service/src/git/mirror.ts';
import { startGitHttpServer, type GitHttpServer } from './helpers/git-http-server.ts';
import { GIT_ENV, makeGitRepo, runGit, type GitTestRepo } from './helpers/git-repo.ts';

const USER = 'deploy-bot';
const PASSWORD = 'p@ss/w0rd';
const TOKEN = 'S3cr3t-T0ken-xyz';
const b64 = (s: string): string => Buffer.from(s).toString('base64');
/** Every form of the credentials that must never show (case 15). */
const FORBIDDEN = [
  PASSWORD,
  'p%40ss%2Fw0rd',
  'p%40ss%2fw0rd',
  b64(`${USER}:${PASSWORD}`),
  TOKEN,
  b64(`${USER}:${TOKEN}`),
  'wrong-Pa55',
  b64(`${USER}:wrong-Pa55`),
];

interface Captured {
  readonly logger: MirrorLogger;
  readonly lines: string[];
  readonly entries: Array<{ level: string; obj: Record<string, unknown>; msg: string }>;
}

function captureLogger(): Captured {
  const lines: string[] = [];
  const entries: Captured['entries'] = [];
  const at =
    (level: string) =>
    (obj: Record<string, unknown>, msg: string): void => {
      entries.push({ level, obj, msg });
      lines.push(JSON.stringify({ level, ...obj, msg }));
    };
  return { logger: { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') }, lines, entries };
}

function expectNoSecret(...texts: string[]): void {
  for (const t of texts) for (const s of FORBIDDEN) expect(t.includes(s), `${JSON.stringify(s)} found in ${t}`).toBe(false);
}

async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; statusCode?: number }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string; statusCode?: number };
  }
  throw new Error('expected a rejection');
}

const decode = (b: Uint8Array): string => new TextDecoder().decode(b);

async function readAt(mirror: GitMirror, ref: string | undefined, path: string): Promise<{ commit: string; body: string | null }> {
  const { commit } = await mirror.repository.resolveRef(ref);
  const file = await mirror.repository.readFileAt(commit, path);
  return { commit, body: file === null ? null : decode(file.bytes) };
}

let root: string;
let srv: string;
let bare: string;
let work: GitTestRepo;
let server: GitHttpServer | undefined;

beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), 'cfg-mirror-e2e-'));
  srv = join(root, 'srv');
  bare = join(srv, 'config.git');
  work = await makeGitRepo({ 'orders/application.yml': 'x: 0\n' });
  runGit(root, 'clone', '-q', '--bare', work.dir, bare);
});

afterEach(async () => {
  await server?.close();
  server = undefined;
  work.remove();
  rmSync(root, { recursive: true, force: true });
});

describe('GitMirror over the real git http-backend', () => {
  it('clones and fetches with basic auth from URL credentials (URL-encoded password); nothing secret shows', async () => {
    server = await startGitHttpServer({ projectRoot: srv, auth: { username: USER, password: PASSWORD } });
    const cap = captureLogger();
    const url = `${server.url.replace('http://', `http://${USER}:p%40ss%2Fw0rd@`)}/config.git`;
    const mirror = new GitMirror({ name: 'config', url, dataDir: join(root, 'data'), defaultBranch: 'main', logger: cap.logger });
    expect(mirror.url).toBe(`${server.url}/config.git`);
    expect(mirror.gitdir).toBe(join(root, 'data', 'mirrors', 'config.git'));
    expect(mirror.ready).toBe(false);

    const first = await mirror.sync();
    expect([first.initial, first.commit, first.forcedUpdates]).toEqual([true, work.commit, 0]);
    expect(first.updates).toEqual([{ ref: 'refs/heads/main', from: null, to: work.commit, forced: false }]);
    expect(mirror.ready).toBe(true);
    expect(await readAt(mirror, undefined, 'orders/application.yml')).toEqual({ commit: work.commit, body: 'x: 0\n' });
    // The credentials went as a Basic header, after a 401 challenge.
    expect(server.log.map((r) => r.status)).toEqual([401, 200, 200]);
    expect(server.log[1]?.authorization).toBe(`Basic ${b64(`${USER}:${PASSWORD}`)}`);

    const c1 = work.commitFiles({ 'orders/application.yml': 'x: 1\n' }, 'c1');
    work.git('push', '-q', bare, 'main');
    const second = await mirror.sync();
    expect([second.initial, second.commit]).toEqual([false, c1]);
    expect(second.updates).toEqual([{ ref: 'refs/heads/main', from: work.commit, to: c1, forced: false }]);
    expect(await readAt(mirror, 'main', 'orders/application.yml')).toEqual({ commit: c1, body: 'x: 1\n' });
    expect(mirror.stats).toMatchObject({ syncs: 2, failures: 0, forcedUpdates: 0 });
    expect(mirror.stats.lastSuccessAt).toBeInstanceOf(Date);

    expect(cap.lines.some((l) => l.includes('"level":"debug"'))).toBe(true);
    expectNoSecret(...cap.lines, JSON.stringify(mirror.stats), mirror.url);
    // isomorphic-git stored the remote without credentials.
    expectNoSecret(execFileSync('git', ['-C', mirror.gitdir, 'config', '--get', 'remote.origin.url'], { env: GIT_ENV, encoding: 'utf8' }));
  });

  it('a token from a file (credentials option) works too', async () => {
    server = await startGitHttpServer({ projectRoot: srv, auth: { username: USER, password: TOKEN } });
    const cap = captureLogger();
    const mirror = new GitMirror({
      name: 'config',
      url: `${server.url}/config.git`,
      dataDir: join(root, 'data'),
      defaultBranch: 'main',
      credentials: { username: USER, password: TOKEN },
      logger: cap.logger,
    });
    expect((await mirror.sync()).commit).toBe(work.commit);
    expectNoSecret(...cap.lines);
  });

  it('a wrong password is CFG_ERR_REPO_AUTH_FAILED at once (no retry storm), and shows nowhere', async () => {
    server = await startGitHttpServer({ projectRoot: srv, auth: { username: USER, password: PASSWORD } });
    const cap = captureLogger();
    const mirror = new GitMirror({
      name: 'config',
      url: `${server.url.replace('http://', `http://${USER}:wrong-Pa55@`)}/config.git`,
      dataDir: join(root, 'data'),
      defaultBranch: 'main',
      logger: cap.logger,
    });
    const err = await rejection(mirror.sync());
    expect([err.code, err.statusCode, err.message]).toEqual([
      'CFG_ERR_REPO_AUTH_FAILED',
      503,
      "Repository 'config' refused the configured credentials",
    ]);
    expect(server.log.map((r) => r.status)).toEqual([401, 401]);
    expect(mirror.ready).toBe(false);
    expect(mirror.stats).toMatchObject({ syncs: 0, failures: 1, lastError: "Repository 'config' refused the configured credentials", lastErrorCode: 'CFG_ERR_REPO_AUTH_FAILED' });
    expect(cap.entries.filter((e) => e.level === 'error').map((e) => e.obj)).toEqual([
      { repo: 'config', code: 'CFG_ERR_REPO_AUTH_FAILED', state: 'repo_auth_failed', reason: "Repository 'config' refused the configured credentials", ready: false, failures: 1 },
    ]);
    expectNoSecret(...cap.lines, err.message, err.stack ?? '', JSON.stringify(err), JSON.stringify(mirror.stats));
  });

  it('no credentials for a server that wants them is CFG_ERR_REPO_AUTH_FAILED', async () => {
    server = await startGitHttpServer({ projectRoot: srv, auth: { username: USER, password: PASSWORD } });
    const mirror = new GitMirror({ name: 'config', url: `${server.url}/config.git`, dataDir: join(root, 'data'), defaultBranch: 'main', logger: captureLogger().logger });
    expect((await rejection(mirror.sync())).code).toBe('CFG_ERR_REPO_AUTH_FAILED');
    expect(server.requests).toBe(1);
  });

  it('unreachable with no mirror is CFG_ERR_REPO_UNAVAILABLE 503 with a generic, sanitized reason', async () => {
    server = await startGitHttpServer({ projectRoot: srv });
    const deadUrl = server.url;
    await server.close();
    server = undefined;
    const cap = captureLogger();
    const mirror = new GitMirror({
      name: 'config',
      url: `${deadUrl.replace('http://', `http://${USER}:${encodeURIComponent(TOKEN)}@`)}/config.git`,
      dataDir: join(root, 'data'),
      defaultBranch: 'main',
      logger: cap.logger,
    });
    const err = await rejection(mirror.sync());
    expect([err.code, err.statusCode, err.message]).toEqual([
      'CFG_ERR_REPO_UNAVAILABLE',
      503,
      "Repository 'config' is unavailable: fetch failed: connection refused",
    ]);
    expect(mirror.ready).toBe(false);
    expectNoSecret(...cap.lines, err.message, JSON.stringify(mirror.stats));
  });

  it('a missing default branch is CFG_ERR_REPO_UNAVAILABLE naming it; the other branches are mirrored all the same', async () => {
    server = await startGitHttpServer({ projectRoot: srv });
    const mirror = new GitMirror({ name: 'config', url: `${server.url}/config.git`, dataDir: join(root, 'data'), defaultBranch: 'trunk', logger: captureLogger().logger });
    const err = await rejection(mirror.sync());
    expect([err.code, err.message]).toEqual(['CFG_ERR_REPO_UNAVAILABLE', "Repository 'config' is unavailable: default branch 'trunk' not found on the remote; the other refs were updated"]);
    // Changed on purpose (issue 8): the refs that exist are served; a request without a ref names the missing branch.
    expect(mirror.ready).toBe(true);
    expect(await mirror.repository.resolveRef('main')).toEqual({ commit: work.commit, ref: 'refs/heads/main' });
    expect(await rejection(mirror.repository.resolveRef())).toMatchObject({ code: 'CFG_ERR_REF_NOT_FOUND', message: "Ref 'trunk' not found in repository 'config'" });
    expect(mirror.status).toMatchObject({ state: 'repo_unavailable', commit: null, lastErrorCode: 'CFG_ERR_REPO_UNAVAILABLE' });
  });

  it('follows force-pushes C1 → C2 → C0 and logs each non-fast-forward move (case 14)', async () => {
    server = await startGitHttpServer({ projectRoot: srv });
    const c0 = work.commit;
    const c1 = work.commitFiles({ 'orders/application.yml': 'x: 1\napi-key: LEAKED-123\n' }, 'c1');
    work.git('push', '-q', bare, 'main');
    const cap = captureLogger();
    const mirror = new GitMirror({ name: 'config', url: `${server.url}/config.git`, dataDir: join(root, 'data'), defaultBranch: 'main', logger: cap.logger });
    await mirror.sync();
    expect(await readAt(mirror, 'main', 'orders/application.yml')).toEqual({ commit: c1, body: 'x: 1\napi-key: LEAKED-123\n' });

    work.git('reset', '-q', '--hard', c0);
    const c2 = work.commitFiles({ 'orders/application.yml': 'x: 2\n' }, 'c2');
    work.git('push', '-q', '--force', bare, 'main');
    const r2 = await mirror.sync();
    expect([r2.commit, r2.forcedUpdates]).toEqual([c2, 1]);
    expect(r2.updates).toEqual([{ ref: 'refs/heads/main', from: c1, to: c2, forced: true }]);
    expect(await readAt(mirror, 'main', 'orders/application.yml')).toEqual({ commit: c2, body: 'x: 2\n' });

    work.git('push', '-q', '--force', bare, `${c0}:refs/heads/main`);
    const r3 = await mirror.sync();
    expect(r3.updates).toEqual([{ ref: 'refs/heads/main', from: c2, to: c0, forced: true }]);
    const now = await readAt(mirror, undefined, 'orders/application.yml');
    expect(now).toEqual({ commit: c0, body: 'x: 0\n' });

    const files = await mirror.repository.listFiles(c0, '');
    const bodies = await Promise.all(files.map(async (f) => decode(await mirror.repository.readBlob(f.oid))));
    for (const b of bodies) for (const bad of ['LEAKED-123', '<<<<<<<', '=======', '>>>>>>>']) expect(b.includes(bad)).toBe(false);

    expect(cap.entries.filter((e) => e.msg === 'git ref force-updated')).toEqual([
      { level: 'info', obj: { repo: 'config', ref: 'refs/heads/main', from: c1, to: c2, forced: true }, msg: 'git ref force-updated' },
      { level: 'info', obj: { repo: 'config', ref: 'refs/heads/main', from: c2, to: c0, forced: true }, msg: 'git ref force-updated' },
    ]);
    expect(mirror.stats).toMatchObject({ syncs: 3, failures: 0, forcedUpdates: 2 });
  });

  it('follows new, deleted and moved branches and tags (prune, pruneTags)', async () => {
    server = await startGitHttpServer({ projectRoot: srv });
    work.git('tag', '-a', '-m', 'v1', 'v1.0.0');
    work.git('branch', 'feature/pay-42');
    work.git('push', '-q', bare, 'feature/pay-42', 'v1.0.0');
    const mirror = new GitMirror({ name: 'config', url: `${server.url}/config.git`, dataDir: join(root, 'data'), defaultBranch: 'main', logger: captureLogger().logger });
    await mirror.sync();
    const tagObject = work.git('rev-parse', 'v1.0.0');
    expect(tagObject).not.toBe(work.commit);
    expect(await mirror.repository.resolveRef('v1.0.0')).toEqual({ commit: work.commit, ref: 'refs/tags/v1.0.0' });
    expect(await mirror.repository.resolveRef('feature/pay-42')).toEqual({ commit: work.commit, ref: 'refs/heads/feature/pay-42' });
    expect(await mirror.repository.resolveRef('refs/heads/feature/pay-42')).toEqual({ commit: work.commit, ref: 'refs/heads/feature/pay-42' });

    const c1 = work.commitFiles({ 'orders/application.yml': 'x: 1\n' }, 'c1');
    work.git('tag', '-f', '-a', '-m', 'v1 again', 'v1.0.0');
    work.git('push', '-q', '--force', bare, 'main', 'v1.0.0');
    work.git('push', '-q', bare, '--delete', 'feature/pay-42');
    const r = await mirror.sync();
    expect(r.updates).toEqual([
      { ref: 'refs/heads/main', from: work.commit, to: c1, forced: false },
      { ref: 'refs/tags/v1.0.0', from: tagObject, to: work.git('rev-parse', 'v1.0.0'), forced: true },
      { ref: 'refs/heads/feature/pay-42', from: work.commit, to: null, forced: false },
    ]);
    expect(await mirror.repository.resolveRef('v1.0.0')).toEqual({ commit: c1, ref: 'refs/tags/v1.0.0' });
    expect((await rejection(mirror.repository.resolveRef('feature/pay-42'))).code).toBe('CFG_ERR_REF_NOT_FOUND');
  });

  it('keeps serving the last good mirror when the server is down, also after a restart', async () => {
    server = await startGitHttpServer({ projectRoot: srv });
    const dataDir = join(root, 'data');
    const mirror = new GitMirror({ name: 'config', url: `${server.url}/config.git`, dataDir, defaultBranch: 'main', logger: captureLogger().logger });
    await mirror.sync();
    const url = server.url;
    await server.close();
    server = undefined;
    work.commitFiles({ 'orders/application.yml': 'x: unseen\n' }, 'c1');
    work.git('push', '-q', bare, 'main');

    const cap = captureLogger();
    const err = await rejection(mirror.sync());
    expect([err.code, err.message]).toEqual(['CFG_ERR_REPO_UNAVAILABLE', "Repository 'config' is unavailable: fetch failed: connection refused"]);
    expect(mirror.ready).toBe(true);
    expect(mirror.stats).toMatchObject({ syncs: 1, failures: 1, lastError: err.message });
    expect(await readAt(mirror, undefined, 'orders/application.yml')).toEqual({ commit: work.git('rev-parse', 'HEAD~1'), body: 'x: 0\n' });

    // Restart: a new instance on the same data directory, remote still down.
    const restarted = new GitMirror({ name: 'config', url: `${url}/config.git`, dataDir, defaultBranch: 'main', logger: cap.logger });
    expect(restarted.ready).toBe(false); // checked first (issue 8)
    await restarted.open();
    expect(restarted.ready).toBe(true);
    expect(restarted.stats.lastSuccessAt).toEqual(mirror.stats.lastSuccessAt); // kept on disk
    expect((await rejection(restarted.sync())).code).toBe('CFG_ERR_REPO_UNAVAILABLE');
    expect(restarted.ready).toBe(true);
    expect(cap.entries.map((e) => [e.level, e.msg])).toContainEqual(['warn', 'git mirror sync failed; the last good mirror keeps serving']);
    expect(await readAt(restarted, 'main', 'orders/application.yml')).toEqual({ commit: work.git('rev-parse', 'HEAD~1'), body: 'x: 0\n' });
  });

  it('reads see only the last published snapshot, never refs a half-done fetch left on disk', async () => {
    server = await startGitHttpServer({ projectRoot: srv });
    const dataDir = join(root, 'data');
    const mirror = new GitMirror({ name: 'config', url: `${server.url}/config.git`, dataDir, defaultBranch: 'main', logger: captureLogger().logger });
    await mirror.sync();
    // isomorphic-git writes refs before the pack: emulate a fetch that died in between.
    writeFileSync(join(mirror.gitdir, 'refs/remotes/origin/main'), `${'ab'.repeat(20)}\n`);
    writeFileSync(join(mirror.gitdir, 'refs/remotes/origin/ghost'), `${'cd'.repeat(20)}\n`);
    expect(await readAt(mirror, undefined, 'orders/application.yml')).toEqual({ commit: work.commit, body: 'x: 0\n' });
    expect((await rejection(mirror.repository.resolveRef('ghost'))).code).toBe('CFG_ERR_REF_NOT_FOUND');
    const restarted = new GitMirror({ name: 'config', url: `${server.url}/config.git`, dataDir, defaultBranch: 'main', logger: captureLogger().logger });
    await restarted.open();
    expect(await readAt(restarted, undefined, 'orders/application.yml')).toEqual({ commit: work.commit, body: 'x: 0\n' });
    // The next sync repairs the disk state.
    const c1 = work.commitFiles({ 'orders/application.yml': 'x: 1\n' }, 'c1');
    work.git('push', '-q', bare, 'main');
    const r = await restarted.sync();
    expect(r.updates).toEqual([{ ref: 'refs/heads/main', from: work.commit, to: c1, forced: false }]);
    expect(await readAt(restarted, undefined, 'orders/application.yml')).toEqual({ commit: c1, body: 'x: 1\n' });
    expect(existsSync(join(mirror.gitdir, 'refs/remotes/origin/ghost'))).toBe(false);
  });

  it('serves consistent reads while a sync is running', async () => {
    server = await startGitHttpServer({ projectRoot: srv });
    const mirror = new GitMirror({ name: 'config', url: `${server.url}/config.git`, dataDir: join(root, 'data'), defaultBranch: 'main', logger: captureLogger().logger });
    await mirror.sync();
    const c1 = work.commitFiles({ 'orders/application.yml': 'x: 1\n' }, 'c1');
    work.git('push', '-q', bare, 'main');
    const want = new Map([[work.commit, 'x: 0\n'], [c1, 'x: 1\n']]);
    let done = false;
    const syncing = mirror.sync().finally(() => {
      done = true;
    });
    const seen: Array<[string, string | null]> = [];
    while (!done) {
      const r = await readAt(mirror, undefined, 'orders/application.yml');
      seen.push([r.commit, r.body]);
      // Requests arrive through I/O: let the sync's I/O run between reads (a read served
      // from the caches alone never leaves the microtask queue).
      await new Promise((resolve) => setImmediate(resolve));
    }
    await syncing;
    expect(seen.length).toBeGreaterThan(0);
    for (const [commit, body] of seen) expect(body).toBe(want.get(commit));
    expect(await readAt(mirror, undefined, 'orders/application.yml')).toEqual({ commit: c1, body: 'x: 1\n' });
  });

  it('coalesces concurrent syncs into one fetch', async () => {
    server = await startGitHttpServer({ projectRoot: srv });
    const mirror = new GitMirror({ name: 'config', url: `${server.url}/config.git`, dataDir: join(root, 'data'), defaultBranch: 'main', logger: captureLogger().logger });
    const all = await Promise.all(Array.from({ length: 5 }, () => mirror.sync()));
    expect(new Set(all).size).toBe(1);
    expect(server.log.map((r) => `${r.method} ${r.url}`)).toEqual(['GET /config.git/info/refs?service=git-upload-pack', 'POST /config.git/git-upload-pack']);
    expect(mirror.stats.syncs).toBe(1);
    // Once settled, a new call fetches again.
    await mirror.sync();
    expect(server.requests).toBe(4);
  });

  it('fetches a new branch without re-downloading the history (SPEC §11)', async () => {
    // 50 commits of poorly compressible content, made with git fast-import.
    let seed = 42;
    const rnd = (): string => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed.toString(36);
    };
    let stream = '';
    for (let i = 1; i <= 50; i++) {
      const body = Array.from({ length: 400 }, rnd).join(' ');
      const data = `app-${i}:\n  blob: "${body}"\n`;
      stream += `commit refs/heads/main\ncommitter T <t@example.test> 1704067200 +0000\ndata ${String(i).length + 1}\nc${i}\n`;
      if (i === 1) stream += `from ${work.commit}\n`;
      stream += `M 100644 inline apps/app-${i}/application.yml\ndata ${Buffer.byteLength(data)}\n${data}\n`;
    }
    execFileSync('git', ['-C', work.dir, 'fast-import', '--quiet'], { env: GIT_ENV, input: stream });
    work.git('reset', '-q', '--hard', 'main');
    work.git('push', '-q', bare, 'main');
    server = await startGitHttpServer({ projectRoot: srv });
    const mirror = new GitMirror({ name: 'config', url: `${server.url}/config.git`, dataDir: join(root, 'data'), defaultBranch: 'main', logger: captureLogger().logger });
    await mirror.sync();
    const firstBytes = server.bytesSent;
    expect(firstBytes).toBeGreaterThan(50 * 1500);

    work.git('checkout', '-q', '-b', 'feature/new');
    const newCommit = work.commitFiles({ 'orders/application.yml': 'x: new-branch\n' }, 'small change');
    work.git('tag', 'v-new', 'main');
    work.git('push', '-q', bare, 'feature/new', 'v-new');
    const r = await mirror.sync();
    const secondBytes = server.bytesSent - firstBytes;
    expect(r.updates).toEqual([
      { ref: 'refs/heads/feature/new', from: null, to: newCommit, forced: false },
      { ref: 'refs/tags/v-new', from: null, to: work.git('rev-parse', 'main'), forced: false },
    ]);
    expect(await readAt(mirror, 'feature/new', 'orders/application.yml')).toEqual({ commit: newCommit, body: 'x: new-branch\n' });
    expect(secondBytes).toBeLessThan(2_000);
    expect(secondBytes * 50).toBeLessThan(firstBytes);

    // Nothing new: almost nothing is transferred.
    await mirror.sync();
    expect(server.bytesSent - firstBytes - secondBytes).toBeLessThan(500);
  });

  it('polls after start() and stop() waits for the sync in flight', async () => {
    server = await startGitHttpServer({ projectRoot: srv });
    const mirror = new GitMirror({ name: 'config', url: `${server.url}/config.git`, dataDir: join(root, 'data'), defaultBranch: 'main', pollIntervalMs: 50, logger: captureLogger().logger });
    await mirror.sync();
    const c1 = work.commitFiles({ 'orders/application.yml': 'x: polled\n' }, 'c1');
    work.git('push', '-q', bare, 'main');
    mirror.start();
    const deadline = Date.now() + 20_000;
    while ((await mirror.repository.resolveRef()).commit !== c1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    expect((await readAt(mirror, undefined, 'orders/application.yml')).body).toBe('x: polled\n');
    const inflight = mirror.sync();
    await mirror.stop();
    const before = server.requests;
    await expect(inflight).resolves.toMatchObject({ commit: c1 });
    await new Promise((r) => setTimeout(r, 200));
    expect(server.requests).toBe(before);
  });
});
