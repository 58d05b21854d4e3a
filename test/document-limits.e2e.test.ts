/**
 * Hostile documents (issue 7): a real Git remote (`git http-backend`) holds, for the one
 * application `hostile`, a JSON and a YAML file nested 300,000 levels deep, a ~13 MiB YAML
 * file with 200,000 keys, an alias bomb and a 17 MiB file. Each read answers its exact 422
 * `document_limit_exceeded`; the service stays alive; other applications and
 * `/health/live` are answered while the big file is being parsed in a worker thread;
 * worker deadlines and heap limits; `config-service validate` (a child process) reports
 * the same limits as file:line errors.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  httpsGet,
  makeCerts,
  makeGitRepo,
  runGit,
  runServiceCli,
  startGitHttpServer,
  startTestService,
  type ClientCert,
  type GitHttpServer,
  type GitTestRepo,
  type HttpsResult,
  type TestPki,
  type TestService,
} from '#helpers';

const MiB = 1024 * 1024;
const LEVELS = 300_000;

/** ~13 MiB: 200,000 lines of 68 bytes. */
function bigYaml(): string {
  const lines: string[] = [];
  for (let i = 0; i < 200_000; i++) lines.push(`key${String(i).padStart(6, '0')}: ${'v'.repeat(56)}`);
  return `${lines.join('\n')}\n`;
}

/** Exactly 17 MiB: one key, then comment lines. */
function hugeYaml(): string {
  const head = 'a: 1\n';
  const line = `#${'x'.repeat(62)}\n`;
  const body = line.repeat(Math.floor((17 * MiB - head.length) / line.length));
  return head + body + '#'.repeat(17 * MiB - head.length - body.length - 1) + '\n';
}

/** 9 anchors of 9 aliases each: 9^9 values when expanded. */
function aliasBomb(): string {
  const lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
  for (let i = 1; i < 9; i++) lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
  return `${lines.join('\n')}\n`;
}

const FILES: Record<string, string> = {
  'application.yml': 'shared: yes\n',
  'orders/application.yml': 'server:\n  port: 8080\n',
  'billing/application.yml': 'currency: EUR\n',
  'hostile/application.yml': 'name: hostile\n',
  'hostile/application-deepjson.json': `{"a":${'['.repeat(LEVELS)}${']'.repeat(LEVELS)}}`,
  'hostile/application-deepyaml.yml': `a:\n${'- '.repeat(LEVELS)}x\nb: 1\n`,
  'hostile/application-big.yml': bigYaml(),
  'hostile/application-bomb.yml': aliasBomb(),
  'hostile/application-huge.yml': hugeYaml(),
};

/** The `detail` of each hostile profile's 422, without the ` (commit …)` suffix. */
const DETAILS: Record<string, string> = {
  deepjson: 'hostile/application-deepjson.json:1:69: nesting exceeds documents.maxDepth = 64 (maps and lists inside each other)',
  deepyaml: 'hostile/application-deepyaml.yml:2:127: nesting exceeds documents.maxDepth = 64 (maps and lists inside each other)',
  big: 'hostile/application-big.yml:100001:1: the number of keys exceeds documents.maxKeys = 100000 (map keys and list items)',
  bomb: 'hostile/application-bomb.yml:5:8: the number of alias expansions exceeds documents.maxAliases = 1000 (alias bomb?)',
  huge: 'hostile/application-huge.yml: 17825792 bytes exceeds documents.maxBytes = 16777216 (crossed at byte offset 16777216)',
};

let root: string;
let work: GitTestRepo;
let server: GitHttpServer;
let pki: TestPki;
let hostile: ClientCert;
let orders: ClientCert;
let billing: ClientCert;
let service: TestService;
const extra: TestService[] = [];

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'cfg-limits-e2e-'));
  const srv = join(root, 'srv');
  mkdirSync(srv);
  work = await makeGitRepo(FILES);
  expect(Buffer.byteLength(FILES['hostile/application-huge.yml']!)).toBe(17 * MiB);
  runGit(root, 'clone', '-q', '--bare', work.dir, join(srv, 'config.git'));
  server = await startGitHttpServer({ projectRoot: srv });
  pki = await makeCerts('limits');
  [hostile, orders, billing] = await Promise.all([pki.client('hostile'), pki.client('orders'), pki.client('billing')]);
  service = await startTestService({ pki, repository: { url: `${server.url}/config.git`, branch: 'main', pollIntervalMs: 0 }, server: { rateLimit: { max: 0 } } });
});

afterAll(async () => {
  for (const s of extra) await s.close();
  await service?.close();
  await server?.close();
  work?.remove();
  if (root) rmSync(root, { recursive: true, force: true });
});

function read(svc: TestService, app: string, cert: ClientCert, profile?: string): Promise<HttpsResult> {
  return httpsGet(svc.apiUrl, `/v1/apps/${app}/config${profile ? `?profile=${profile}` : ''}`, { ca: pki.ca.certPem, cert: cert.cert, key: cert.key });
}

function problem422(detail: string): Record<string, unknown> {
  return {
    type: 'urn:config-service:problem:document_limit_exceeded',
    title: 'Unprocessable Content',
    status: 422,
    detail: `${detail} (commit ${work.commit})`,
    code: 'document_limit_exceeded',
    instance: expect.any(String),
  };
}

/** The service's log lines as objects. */
function logLines(svc: TestService): Array<Record<string, unknown>> {
  return svc.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function until(what: string, condition: () => boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('hostile documents on a real remote, one application', () => {
  it('parses the 13 MiB document in a worker: /health/live and another application answer meanwhile; then its exact 422', async () => {
    const isStart = (o: Record<string, unknown>): boolean => o.msg === 'parsing a document in a worker thread' && o.document === 'hostile/application-big.yml';
    const isEnd = (o: Record<string, unknown>): boolean => o.msg === 'parsed a document in a worker thread' && o.document === 'hostile/application-big.yml';
    let bigSettled = false;
    const big = read(service, 'hostile', hostile, 'big').finally(() => {
      bigSettled = true;
    });
    await until('the worker parse to start', () => logLines(service).some(isStart));

    const [live, other] = await Promise.all([fetch(`${service.managementUrl}/health/live`), read(service, 'orders', orders)]);
    // Both answered while the big document was still being parsed.
    const parsingStillRunning = !logLines(service).some(isEnd);
    const bigStillPending = !bigSettled;
    expect(live.status).toBe(200);
    expect(other.status).toBe(200);
    expect(other.json()).toEqual({ server: { port: 8080 }, shared: 'yes' });
    expect({ parsingStillRunning, bigStillPending }).toEqual({ parsingStillRunning: true, bigStillPending: true });

    const res = await big;
    expect(res.status).toBe(422);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.json()).toEqual(problem422(DETAILS.big!));
  });

  it.each(['deepjson', 'deepyaml', 'bomb', 'huge'])('profile %s: its exact 422, and the service stays alive', async (profile) => {
    const res = await read(service, 'hostile', hostile, profile);
    expect(res.status).toBe(422);
    expect(res.json()).toEqual(problem422(DETAILS[profile]!));
    expect((await fetch(`${service.managementUrl}/health/live`)).status).toBe(200);
  });

  it('the same 422 again, from the blob id, without parsing again', async () => {
    const workerParses = logLines(service).filter((o) => o.msg === 'parsing a document in a worker thread').length;
    const res = await read(service, 'hostile', hostile, 'big');
    expect(res.json()).toEqual(problem422(DETAILS.big!));
    expect(logLines(service).filter((o) => o.msg === 'parsing a document in a worker thread').length).toBe(workerParses);
  });

  it('every other application, and the hostile one without the hostile profiles, keep being served', async () => {
    const [o, b, h] = await Promise.all([read(service, 'orders', orders), read(service, 'billing', billing), read(service, 'hostile', hostile)]);
    expect([o.status, b.status, h.status]).toEqual([200, 200, 200]);
    expect(b.json()).toEqual({ currency: 'EUR', shared: 'yes' });
    expect(h.json()).toEqual({ name: 'hostile', shared: 'yes' });
    expect((await fetch(`${service.managementUrl}/health/ready`)).status).toBe(200);
  });
});

describe('worker limits (the same repository, read in place)', () => {
  it('a worker past documents.parseTimeoutMs is stopped: 422 naming the file and the limit; others keep being served', async () => {
    const svc = await startTestService({ pki, repository: { path: work.dir }, settings: { documents: { parseTimeoutMs: 1 } } });
    extra.push(svc);
    const res = await read(svc, 'hostile', hostile, 'big');
    expect(res.status).toBe(422);
    expect(res.json()).toEqual(
      problem422('hostile/application-big.yml: the time to parse (waiting for a free worker included) exceeds documents.parseTimeoutMs = 1 (the worker was stopped)'),
    );
    expect(logLines(svc).some((o) => o.msg === 'document parse stopped: documents.parseTimeoutMs reached' && o.document === 'hostile/application-big.yml')).toBe(true);
    expect((await read(svc, 'orders', orders)).status).toBe(200);
    expect((await fetch(`${svc.managementUrl}/health/live`)).status).toBe(200);
  });

  it('a worker out of documents.workerMemoryMb dies alone: 422 naming the file and the limit', async () => {
    const svc = await startTestService({ pki, repository: { path: work.dir }, settings: { documents: { workerMemoryMb: 64 } } });
    extra.push(svc);
    const res = await read(svc, 'hostile', hostile, 'big');
    expect(res.status).toBe(422);
    expect(res.json()).toEqual(
      problem422('hostile/application-big.yml: the memory to parse exceeds documents.workerMemoryMb = 64 (the worker ran out of memory and was stopped)'),
    );
    expect((await read(svc, 'billing', billing)).status).toBe(200);
    expect((await fetch(`${svc.managementUrl}/health/live`)).status).toBe(200);
  });
});

describe('config-service validate on the hostile checkout (child process)', () => {
  it('reports every limit as file:line:column errors and exits 1, never crashing', async () => {
    const r = await runServiceCli(['validate', work.dir]);
    expect({ status: r.status, signal: r.signal, stderr: r.stderr }).toEqual({ status: 1, signal: null, stderr: '' });
    expect(r.stdout).toBe(
      [
        `hostile/application-big.yml:100001:1: error: ${DETAILS.big!.slice('hostile/application-big.yml:100001:1: '.length)}`,
        `hostile/application-bomb.yml:5:8: error: ${DETAILS.bomb!.slice('hostile/application-bomb.yml:5:8: '.length)}`,
        `hostile/application-deepjson.json:1:69: error: ${DETAILS.deepjson!.slice('hostile/application-deepjson.json:1:69: '.length)}`,
        `hostile/application-deepyaml.yml:2:127: error: ${DETAILS.deepyaml!.slice('hostile/application-deepyaml.yml:2:127: '.length)}`,
        `hostile/application-huge.yml:1:1: error: ${DETAILS.huge!.slice('hostile/application-huge.yml: '.length)}`,
        '5 errors, 0 warnings; checked 9 documents, 3 applications, 6 profile sets',
        '',
      ].join('\n'),
    );
    const json = await runServiceCli(['validate', work.dir, '--format', 'json']);
    const report = JSON.parse(json.stdout) as { findings: Array<{ file: string; check: string }> };
    expect(report.findings.map((f) => [f.file, f.check])).toEqual([
      ['hostile/application-big.yml', 'limit'],
      ['hostile/application-bomb.yml', 'limit'],
      ['hostile/application-deepjson.json', 'limit'],
      ['hostile/application-deepyaml.yml', 'limit'],
      ['hostile/application-huge.yml', 'limit'],
    ]);
  });

  it('applies the limits of --config and of CONFIG_SERVICE_DOCUMENTS_* (the rest of the settings file is ignored)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-limits-validate-'));
    mkdirSync(join(dir, 'orders'));
    writeFileSync(join(dir, 'orders', 'application.yml'), 'a: 1\nb: 2\nc: 3\n');
    const settings = join(dir, 'service.yml');
    writeFileSync(settings, 'server:\n  tls: {cert: /nowhere.crt, key: /nowhere.key, clientCa: /nowhere-ca.crt}\ndocuments:\n  maxKeys: 2\n');
    try {
      const expected = 'orders/application.yml:3:1: error: the number of keys exceeds documents.maxKeys = 2 (map keys and list items)\n1 error, 0 warnings; checked 1 document, 1 application, 1 profile set\n';
      const viaFile = await runServiceCli(['validate', dir, '--config', settings]);
      expect({ status: viaFile.status, stdout: viaFile.stdout, stderr: viaFile.stderr }).toEqual({ status: 1, stdout: expected, stderr: '' });
      const viaEnv = await runServiceCli(['validate', dir], { env: { ...process.env, CONFIG_SERVICE_DOCUMENTS_MAX_KEYS: '2' } });
      expect({ status: viaEnv.status, stdout: viaEnv.stdout }).toEqual({ status: 1, stdout: expected });
      const fine = await runServiceCli(['validate', dir]);
      expect({ status: fine.status, stdout: fine.stdout }).toEqual({ status: 0, stdout: '0 errors, 0 warnings; checked 1 document, 1 application, 1 profile set\n' });
      const bad = await runServiceCli(['validate', dir], { env: { ...process.env, CONFIG_SERVICE_DOCUMENTS_MAX_DEPTH: '0' } });
      expect({ status: bad.status, stdout: bad.stdout, stderr: bad.stderr }).toEqual({
        status: 1,
        stdout: '',
        stderr: 'config-service: CFG_ERR_SETTINGS_INVALID: Invalid service settings:\n  documents.maxDepth: Expected integer to be greater or equal to 1 (from CONFIG_SERVICE_DOCUMENTS_MAX_DEPTH)\n',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
