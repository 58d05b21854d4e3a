/**
 * `--files`: raw files listed, fetched at the pinned commit, verified (size, SHA-256) and
 * published inside the same atomic set under `files/`, against a real mTLS server.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readlink, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseCommandLine, type Options } from '../src/args.js';
import { fileUrl, filePathViolation, filesListUrl } from '../src/fetch.js';
import { publishFiles } from '../src/publish.js';
import { run, runExec, type RunResult } from '../src/index.js';
import { makeCerts, type TestCerts } from './helpers/certs.js';
import { configAnswer, envAnswer, fileListAnswer, problem, rawFileAnswer, startServer, type Answer, type SeenRequest, type TestServer } from './helpers/server.js';
import { readVisible } from './helpers/visible.js';

const COMMIT = 'd'.repeat(40);
const OTHER = 'e'.repeat(40);
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

const FILES = [
  { path: 'logback.xml', content: '<configuration>\n  <root level="INFO"/>\n</configuration>\n' },
  { path: 'certs/partner ca.pem', content: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' },
  { path: 'deep/a#b/ü 100%.bin', content: Buffer.from([0, 1, 2, 255, 254, 10, 13]) },
];

let certs: TestCerts;
let server: TestServer;
let out: string;
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
  out = join(await mkdtemp(join(tmpdir(), 'config-init-files-')), 'config');
  logs = '';
});

function options(extra: string[] = [], command = 'fetch'): Options {
  const cmd = parseCommandLine(
    [command, '--server', server.url, '--app', 'orders', '--profile', 'prod,eu', '--cert', certs.files.cert, '--key', certs.files.key, '--ca', certs.files.ca,
      '--output-dir', out, '--termination-log', '', '--deadline', '3000', '--files', ...extra, ...(command === 'exec' ? ['--', 'x'] : [])],
    {},
  );
  if (cmd.kind === 'help' || cmd.kind === 'version') throw new Error('no options');
  return cmd.options;
}

function runWith(opts: Options): Promise<RunResult> {
  return run(opts, { stderr: { write: (s: string) => (logs += s) } });
}

/** Serves the configuration, the list and the files; `tweak` may replace any answer. */
function serve(files: { path: string; content: Buffer | string }[], tweak: (req: SeenRequest) => Answer | undefined = () => undefined): void {
  server.handler = (req) => {
    const t = tweak(req);
    if (t) return t;
    if (req.path.endsWith('/config')) {
      return req.query.get('format') === 'env' ? envAnswer({ A: '1' }, COMMIT) : configAnswer('properties', 'a=1\n', COMMIT);
    }
    if (req.path === '/v1/apps/orders/files') return fileListAnswer(COMMIT, files);
    const rel = req.path.replace('/v1/apps/orders/files/', '').split('/').map(decodeURIComponent).join('/');
    const f = files.find((x) => x.path === rel);
    return f ? rawFileAnswer(f.content, COMMIT) : problem(404, 'file_not_found', 'no such file');
  };
}

async function publishOld(): Promise<string> {
  return (await publishFiles({ dir: out, mode: 0o640, files: [{ name: 'application.properties', content: 'old=1\n' }] })).version;
}

async function expectOld(version: string): Promise<void> {
  expect(await readlink(join(out, '..data'))).toBe(version);
  expect([...(await readVisible(out)).keys()]).toEqual(['application.properties']);
}

describe('--files', () => {
  it('publishes every raw file under files/ in the same set, pinned to the config commit, with hashes in the meta', async () => {
    serve(FILES);
    const res = await runWith(options(['--ref', 'main']));
    expect(res).toMatchObject({ exitCode: 0, commit: COMMIT });
    expect(server.requests.map((r) => r.path)).toEqual([
      '/v1/apps/orders/config',
      '/v1/apps/orders/files',
      '/v1/apps/orders/files/logback.xml',
      '/v1/apps/orders/files/certs/partner%20ca.pem',
      '/v1/apps/orders/files/deep/a%23b/%C3%BC%20100%25.bin',
    ]);
    expect(server.requests[0]?.query.get('ref')).toBe('main');
    for (const r of server.requests.slice(1)) {
      expect(r.query.get('ref')).toBe(COMMIT);
      expect(r.query.get('profile')).toBe('prod,eu');
    }
    expect(server.requests[1]?.accept).toBe('application/json, application/problem+json;q=0.1');
    expect(await readlink(join(out, 'files'))).toBe('..data/files');
    for (const f of FILES) {
      expect(await readFile(join(out, 'files', ...f.path.split('/')))).toEqual(Buffer.from(f.content));
      expect((await stat(join(out, 'files', ...f.path.split('/')))).mode & 0o777).toBe(0o640);
    }
    const meta = JSON.parse(await readFile(join(out, '.config-meta.json'), 'utf8')) as { files: Record<string, string>; commit: string };
    expect(meta.commit).toBe(COMMIT);
    expect(meta.files).toEqual({
      'application.properties': sha('a=1\n'),
      'files/logback.xml': sha(FILES[0]?.content ?? ''),
      'files/certs/partner ca.pem': sha(FILES[1]?.content ?? ''),
      'files/deep/a#b/ü 100%.bin': sha(FILES[2]?.content ?? ''),
    });
    expect(logs).not.toContain('BEGIN CERTIFICATE');
  });

  it('an empty list still publishes an empty files/ folder', async () => {
    serve([]);
    const res = await runWith(options());
    expect(res.exitCode).toBe(0);
    expect(await readlink(join(out, 'files'))).toBe('..data/files');
    expect((await stat(join(out, 'files'))).isDirectory()).toBe(true);
  });

  it('without --files nothing is listed and no files/ link appears; a later run without it removes the link', async () => {
    serve(FILES);
    expect((await runWith(options())).exitCode).toBe(0);
    const cmd = parseCommandLine(['--server', server.url, '--app', 'orders', '--cert', certs.files.cert, '--key', certs.files.key, '--ca', certs.files.ca,
      '--output-dir', out, '--termination-log', ''], {});
    if (cmd.kind !== 'fetch') throw new Error('not fetch');
    server.requests = [];
    expect((await runWith(cmd.options)).exitCode).toBe(0);
    expect(server.requests.map((r) => r.path)).toEqual(['/v1/apps/orders/config']);
    expect([...(await readVisible(out)).keys()]).toEqual(['.config-meta.json', 'application.properties']);
  });

  it.each<[string, (req: SeenRequest) => Answer | undefined, RegExp]>([
    ['a size that differs', (r) => (r.path.endsWith('/logback.xml') ? rawFileAnswer('short', COMMIT) : undefined), /file 'logback.xml': size 5 differs from the listed 56/],
    ['a hash that differs', (r) => (r.path.endsWith('/logback.xml') ? rawFileAnswer('X'.repeat(56), COMMIT) : undefined), /file 'logback.xml': sha256 [0-9a-f]{64} differs from the listed/],
    ['a file from another commit', (r) => (r.path.endsWith('/logback.xml') ? rawFileAnswer(FILES[0]?.content ?? '', OTHER) : undefined), /differs from the pinned commit/],
    ['a list from another commit', (r) => (r.path === '/v1/apps/orders/files' ? fileListAnswer(OTHER, FILES) : undefined), /file list: commit e+ differs from the pinned commit d+/],
    ['a list that is not JSON', (r) => (r.path === '/v1/apps/orders/files' ? { status: 200, headers: { 'content-type': 'text/html' }, body: '<html>' } : undefined), /file list: unexpected Content-Type 'text\/html'/],
    ['a list entry with a bad hash', (r) => (r.path === '/v1/apps/orders/files' ? fileListAnswer(COMMIT, FILES, { sha256: { 'logback.xml': 'zz' } }) : undefined), /bad sha256/],
    ['a list entry with a negative size', (r) => (r.path === '/v1/apps/orders/files' ? fileListAnswer(COMMIT, FILES, { size: { 'logback.xml': -1 } }) : undefined), /bad size/],
  ])('%s → 65, old set untouched', async (_name, tweak, message) => {
    serve(FILES, tweak);
    const old = await publishOld();
    const res = await runWith(options());
    expect(res.exitCode).toBe(65);
    expect(res.message).toMatch(message);
    await expectOld(old);
  });

  it('a listed file that is gone (404) → 66, old set untouched', async () => {
    serve(FILES, (r) => (r.path.endsWith('.bin') ? problem(404, 'file_not_found', 'gone') : undefined));
    const old = await publishOld();
    const res = await runWith(options());
    expect(res.exitCode).toBe(66);
    expect(res.message).toMatch(/file 'deep\/a#b\/ü 100%.bin'\): HTTP 404 file_not_found/);
    await expectOld(old);
  });

  it('retries a 503 on one file and then publishes', async () => {
    let failed = false;
    serve(FILES, (r) => {
      if (r.path.endsWith('/logback.xml') && !failed) {
        failed = true;
        return problem(503, 'repo_unavailable', 'later');
      }
      return undefined;
    });
    const res = await runWith(options());
    expect(res.exitCode).toBe(0);
    expect(logs).toMatch(/retrying.*target="file 'logback.xml'"/);
  });

  it.each(['../etc/passwd', 'a/../../b', '/etc/passwd', 'a\\b', 'a\u0000b', 'a//b', 'a/./b', 'a/', '', 'tab\there'])(
    'refuses the listed path %j → 65 before requesting any file; old set untouched',
    async (bad) => {
      serve([...FILES, { path: bad, content: 'x' }]);
      const old = await publishOld();
      const res = await runWith(options());
      expect(res.exitCode).toBe(65);
      expect(res.code).toBe('CFG_INIT_ERR_UNSAFE_PATH');
      expect(server.requests.map((r) => r.path)).toEqual(['/v1/apps/orders/config', '/v1/apps/orders/files']);
      await expectOld(old);
    },
  );

  it.each<[string, { path: string; content: string }[], RegExp]>([
    ['a path listed twice', [{ path: 'a.xml', content: '1' }, { path: 'a.xml', content: '1' }], /listed twice/],
    ['a path that is also a folder', [{ path: 'conf', content: '1' }, { path: 'conf/x.xml', content: '2' }], /'conf' is also a file/],
  ])('%s → 65', async (_name, files, message) => {
    serve(files);
    const res = await runWith(options());
    expect(res.exitCode).toBe(65);
    expect(res.message).toMatch(message);
  });

  it('--dry-run lists the raw files with sizes and hashes and writes nothing', async () => {
    serve(FILES);
    let stdout = '';
    const res = await run(options(['--dry-run']), { stdout: { write: (s: string) => (stdout += s) } });
    expect(res.exitCode).toBe(0);
    expect(stdout).toContain(`${out}/files/certs/partner ca.pem\t${Buffer.byteLength(FILES[1]?.content ?? '')} bytes\tsha256:${sha(FILES[1]?.content ?? '')}\n`);
    expect(stdout).not.toContain('BEGIN CERTIFICATE');
    await expect(stat(out)).rejects.toThrow(/ENOENT/);
  });

  it('exec --files publishes the files (and meta) before starting the command, all at the env map commit', async () => {
    serve(FILES);
    const res = await runExec(options([], 'exec'), [process.execPath, '-e', `process.exit(require("fs").existsSync(${JSON.stringify(join(out, 'files', 'logback.xml'))}) ? 7 : 1)`], {
      stderr: { write: (s: string) => (logs += s) },
    });
    expect(res.exitCode).toBe(7);
    expect(server.requests[0]?.query.get('format')).toBe('env');
    expect(server.requests[1]?.query.get('ref')).toBe(COMMIT);
    expect([...(await readVisible(out)).keys()].filter((k) => !k.includes('/'))).toEqual(['.config-meta.json', 'files']);
  });

  it('builds list and file URLs with a path prefix and per-segment encoding', () => {
    const base = new URL('https://gw.example/config/');
    expect(filesListUrl(base, 'orders', [], undefined).href).toBe('https://gw.example/config/v1/apps/orders/files');
    expect(fileUrl(base, 'orders', 'a b/c?d#e/f%g', ['prod'], 'abc').href).toBe('https://gw.example/config/v1/apps/orders/files/a%20b/c%3Fd%23e/f%25g?profile=prod&ref=abc');
  });

  it.each<[string, string | null]>([
    ['logback.xml', null],
    ['a/b/c.txt', null],
    ['...', null],
    ['.hidden/x', null],
    ['..', "has a '.' or '..' segment"],
    ['a/..', "has a '.' or '..' segment"],
    ['/a', 'is absolute'],
    ['a\\b', 'contains a backslash'],
    ['a\u0000', 'contains NUL'],
    ['a\nb', 'contains a control character'],
    ['', 'is empty'],
    [`${'x'.repeat(256)}`, 'has a segment longer than 255 bytes'],
  ])('filePathViolation(%j) = %j', (path, expected) => {
    expect(filePathViolation(path)).toBe(expected);
  });
});
