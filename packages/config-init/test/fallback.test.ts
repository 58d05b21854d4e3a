/**
 * `--fallback-dir` / `--fallback-max-age`: a copy of each published set is kept; when the
 * service stays unreachable (exit 69 only) a usable copy is published, logged as FALLBACK,
 * and the run exits 0. Against a real mTLS server.
 */
import { mkdtemp, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseCommandLine, type Options } from '../src/args.js';
import { FALLBACK_FILE_MODE, loadFallback } from '../src/fallback.js';
import { run, sha256Hex, type RunDeps, type RunResult } from '../src/index.js';
import { makeCerts, type TestCerts } from './helpers/certs.js';
import { configAnswer, fileListAnswer, problem, rawFileAnswer, startServer, type TestServer } from './helpers/server.js';
import { readVisible } from './helpers/visible.js';

const COMMIT = 'f'.repeat(40);
const PROPS = 'config.version=1\ndb.password=s3cr3t\n';
const HOUR = 3600_000;

let certs: TestCerts;
let server: TestServer;
let base: string;
let out: string;
let fb: string;
let tlog: string;
let logs: string;

beforeAll(async () => {
  certs = await makeCerts();
  server = await startServer(certs);
});
afterAll(async () => {
  await server.close();
});
beforeEach(async () => {
  server.requests = [];
  base = await mkdtemp(join(tmpdir(), 'config-init-fallback-'));
  out = join(base, 'config');
  fb = join(base, 'fallback');
  tlog = join(base, 'termination-log');
  await writeFile(tlog, '');
  logs = '';
});

function options(extra: string[] = [], app = 'orders'): Options {
  const cmd = parseCommandLine(
    ['--server', server.url, '--app', app, '--profile', 'prod', '--cert', certs.files.cert, '--key', certs.files.key, '--ca', certs.files.ca,
      '--output-dir', out, '--termination-log', tlog, '--deadline', '600', '--timeout', '300', '--fallback-dir', fb, ...extra],
    {},
  );
  if (cmd.kind !== 'fetch') throw new Error('not fetch');
  return cmd.options;
}

function runWith(opts: Options, deps: RunDeps = {}): Promise<RunResult> {
  return run(opts, { stderr: { write: (s: string) => (logs += s) }, ...deps });
}

/** A first, successful run that leaves a fallback copy; returns the meta time. */
async function goodRun(extra: string[] = []): Promise<string> {
  server.handler = (req) => {
    if (req.path === '/v1/apps/orders/files') return fileListAnswer(COMMIT, [{ path: 'conf/logback.xml', content: '<c/>\n' }]);
    if (req.path.startsWith('/v1/apps/orders/files/')) return rawFileAnswer('<c/>\n', COMMIT);
    return configAnswer('properties', PROPS, COMMIT, 2);
  };
  const res = await runWith(options(extra));
  expect(res.exitCode).toBe(0);
  const meta = JSON.parse(await readFile(join(fb, '.config-meta.json'), 'utf8')) as { time: string };
  return meta.time;
}

function down(): void {
  server.handler = () => problem(503, 'repo_unavailable', 'git down');
}

describe('fallback copy', () => {
  it('keeps a byte-identical copy of each published set, files 0600, through ..data', async () => {
    await goodRun(['--files']);
    const published = await readVisible(out);
    const copy = await readVisible(fb);
    expect([...copy.keys()]).toEqual([...published.keys()]);
    for (const [name, f] of copy) {
      expect(f.content, name).toEqual(published.get(name)?.content);
      if (!f.isDirectory) expect(f.mode, name).toBe(FALLBACK_FILE_MODE);
    }
    expect(await readlink(join(fb, '..data'))).toMatch(/^\.\.\d{4}_/);
    expect((await stat(join(fb, await readlink(join(fb, '..data'))))).mode & 0o777).toBe(0o700);
  });
});

describe('fallback on an unreachable service', () => {
  it('publishes the last good set, exits 0, logs FALLBACK at warn with commit and age, writes the termination log', async () => {
    const time = await goodRun(['--files']);
    // The pod restarted: a fresh emptyDir, and the service is down.
    out = join(base, 'fresh');
    down();
    logs = '';
    const res = await runWith(options(['--files', '--log-format', 'json']));
    expect(res.exitCode).toBe(0);
    expect(res.fallback?.commit).toBe(COMMIT);
    expect(res.fallback?.time).toBe(time);
    expect(res.fallback?.ageMs).toBeGreaterThanOrEqual(0);
    expect(res.fallback?.ageMs).toBeLessThan(30_000);
    expect(await readFile(join(out, 'application.properties'), 'utf8')).toBe(PROPS);
    expect(await readFile(join(out, 'files', 'conf', 'logback.xml'), 'utf8')).toBe('<c/>\n');
    expect((await stat(join(out, 'application.properties'))).mode & 0o777).toBe(0o640);
    const meta = JSON.parse(await readFile(join(out, '.config-meta.json'), 'utf8')) as { commit: string; time: string; files: Record<string, string> };
    expect(meta).toMatchObject({ commit: COMMIT, time, files: { 'application.properties': sha256Hex(PROPS), 'files/conf/logback.xml': sha256Hex('<c/>\n') } });

    const lines = logs.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const warn = lines.find((l) => l.fallback === true);
    expect(warn).toMatchObject({ level: 'warn', app: 'orders', commit: COMMIT, fallback: true, fetchedAt: time });
    expect(String(warn?.msg)).toMatch(/^FALLBACK: config-service unavailable; published the last good set at commit f{40} from .* \(age \d+ ms\)/);
    expect(String(warn?.cause)).toMatch(/HTTP 503 repo_unavailable/);
    expect(logs).not.toContain('s3cr3t');
    expect(await readFile(tlog, 'utf8')).toMatch(new RegExp(`^config-init: exit 0 FALLBACK: config-service unavailable; published the last good set at commit ${COMMIT} from ${time.replace(/\./g, '\\.')} \\(age \\d+ ms\\) into .*; cause: config-service unavailable: gave up after \\d+ attempt`));
  });

  it('replaces a newer-looking but failed state: the old output dir gets the fallback set atomically', async () => {
    await goodRun();
    down();
    const res = await runWith(options());
    expect(res.exitCode).toBe(0);
    expect([...(await readVisible(out)).keys()]).toEqual(['.config-meta.json', 'application.properties']);
  });

  it('a set older than --fallback-max-age is not used: 69, and the reason is logged', async () => {
    await goodRun();
    out = join(base, 'fresh');
    down();
    const res = await runWith(options(['--fallback-max-age', '1h']), { now: () => Date.now() + 2 * HOUR });
    expect(res.exitCode).toBe(69);
    expect(res.message).toMatch(/; fallback not used: the fallback set from .* is \d+ ms old \(more than --fallback-max-age 3600000 ms\)$/);
    expect(logs).toMatch(/WARN  config-init: fallback not used/);
    await expect(stat(out)).rejects.toThrow(/ENOENT/);
    expect(await readFile(tlog, 'utf8')).toMatch(/^config-init: exit 69 CFG_INIT_ERR_UNAVAILABLE: .*fallback not used/);
  });

  it('the same set within --fallback-max-age is used', async () => {
    await goodRun();
    out = join(base, 'fresh');
    down();
    const res = await runWith(options(['--fallback-max-age', '3h']), { now: () => Date.now() + 2 * HOUR });
    expect(res.exitCode).toBe(0);
    expect(res.fallback?.ageMs).toBeGreaterThanOrEqual(2 * HOUR);
  });

  it.each<[string, () => ReturnType<typeof problem>, number]>([
    ['404', () => problem(404, 'app_not_found', 'gone'), 66],
    ['403', () => problem(403, 'forbidden', 'no'), 77],
    ['422', () => problem(422, 'document_invalid', 'broken'), 65],
  ])('never on %s: the error stands (exit %i) and nothing is published', async (_name, answer, exitCode) => {
    await goodRun();
    out = join(base, 'fresh');
    server.handler = answer;
    const res = await runWith(options());
    expect(res.exitCode).toBe(exitCode);
    expect(res.fallback).toBeUndefined();
    expect(logs).not.toMatch(/FALLBACK/);
    await expect(stat(out)).rejects.toThrow(/ENOENT/);
  });

  it('never on an empty configuration (65)', async () => {
    await goodRun();
    server.handler = () => configAnswer('properties', '', COMMIT, 0);
    const res = await runWith(options());
    expect(res.exitCode).toBe(65);
    expect(res.fallback).toBeUndefined();
  });

  it.each<[string, string[], string, RegExp]>([
    ['another app', [], 'billing', /the fallback set is for app 'orders', not 'billing'/],
    ['other profiles', ['--profile', 'dev'], 'orders', /for profiles 'prod', not 'prod,dev'/],
    ['another ref', ['--ref', 'v2'], 'orders', /for ref '\(default\)', not 'v2'/],
    ['a format it does not hold', ['--format', 'json'], 'orders', /has no application.json/],
    ['files it does not hold', ['--files'], 'orders', /has no files\/ folder/],
  ])('not for %s → 69', async (_name, extra, app, reason) => {
    await goodRun();
    out = join(base, 'fresh');
    down();
    const res = await runWith(options(extra, app));
    expect(res.exitCode).toBe(69);
    expect(res.message).toMatch(reason);
  });

  it('a damaged copy is not used → 69', async () => {
    await goodRun();
    await writeFile(join(fb, '..data', 'application.properties'), 'tampered=1\n');
    out = join(base, 'fresh');
    down();
    const res = await runWith(options());
    expect(res.exitCode).toBe(69);
    expect(res.message).toMatch(/damaged: application.properties does not match its SHA-256/);
  });

  it('no copy yet → 69 saying so', async () => {
    down();
    const res = await runWith(options());
    expect(res.exitCode).toBe(69);
    expect(res.message).toMatch(/fallback not used: no fallback set in '.*fallback' \(ENOENT\)/);
  });

  it('--dry-run lists the fallback set and writes nothing', async () => {
    await goodRun();
    out = join(base, 'fresh');
    down();
    let stdout = '';
    const res = await run(options(['--dry-run']), { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (logs += s) } });
    expect(res.exitCode).toBe(0);
    expect(stdout).toContain(`${out}/application.properties\t${PROPS.length} bytes\tsha256:${sha256Hex(PROPS)}\n`);
    expect(logs).toMatch(/FALLBACK: config-service unavailable; dry run: would publish/);
    await expect(stat(out)).rejects.toThrow(/ENOENT/);
  });

  it('a failed copy does not fail the publication', async () => {
    await writeFile(fb, 'a file where the fallback folder should be');
    server.handler = () => configAnswer('properties', PROPS, COMMIT, 2);
    const res = await runWith(options());
    expect(res.exitCode).toBe(0);
    expect(logs).toMatch(/WARN  config-init: could not keep a copy of the set for the fallback: cannot/);
  });

  it('loadFallback rejects a meta time in the future', async () => {
    await goodRun();
    const reason = await loadFallback(fb, { app: 'orders', profiles: ['prod'], ref: undefined, names: [], files: false, maxAgeMs: HOUR, now: Date.now() - HOUR });
    expect(reason).toMatch(/lies in the future/);
  });
});
