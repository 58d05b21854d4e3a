/**
 * `server.workers` (SPEC §10: a replica uses every core): `config-service serve` with two
 * API workers behind one listener. Every 200 has its committed audit event (the body's
 * hash included) whichever worker answered, both workers serve, `audit verify` passes
 * over the one chain they share, a webhook makes the primary fetch the remote ONCE and
 * every worker serve the new commit (long-polls held in either worker wake), both workers
 * sign checkpoints of that chain, and SIGTERM closes everything with exit code 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path, { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  httpsGet,
  makeCerts,
  makeGitRepo,
  runGit,
  runServiceCli,
  SERVICE_CLI,
  startGitHttpServer,
  type ClientCert,
  type GitHttpServer,
  type GitTestRepo,
  type TestPki,
} from '#helpers';

const SECRET = 'workers-test-webhook-secret-0123456789';

let dir: string;
let pki: TestPki;
let orders: ClientCert;
let work: GitTestRepo;
let bare: string;
let git: GitHttpServer;
let child: ChildProcess;
let output = '';
let api = '';
let management = '';
let settingsFile = '';

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'cfgsvc-workers-'));
  pki = await makeCerts('workers');
  orders = await pki.client('orders');
  work = await makeGitRepo({ 'orders/application.yml': 'greeting: one\n' });
  const srv = join(dir, 'srv');
  bare = join(srv, 'config.git');
  runGit(dir, 'clone', '-q', '--bare', work.dir, bare);
  git = await startGitHttpServer({ projectRoot: srv });
  writeFileSync(join(dir, 'webhook.secret'), `${SECRET}\n`);
  const keygen = await runServiceCli(['audit', 'keygen', '--dir', join(dir, 'keys'), '--id', 'cp1']);
  expect(keygen.status, keygen.stderr).toBe(0);
  settingsFile = join(dir, 'service.yml');
  writeFileSync(
    settingsFile,
    [
      'server:',
      '  host: 127.0.0.1',
      '  port: 0',
      '  workers: 2',
      `  tls: { cert: ${JSON.stringify(pki.serverCertFile)}, key: ${JSON.stringify(pki.serverKeyFile)}, clientCa: ${JSON.stringify(pki.caFile)} }`,
      '  rateLimit: { max: 0 }',
      'management: { host: 127.0.0.1, port: 0 }',
      `dataDir: ${JSON.stringify(join(dir, 'data'))}`,
      'repositories:',
      '  - name: config',
      `    url: ${git.url}/config.git`,
      '    branch: main',
      '    pollIntervalMs: 0',
      `    webhookSecretFile: ${JSON.stringify(join(dir, 'webhook.secret'))}`,
      'audit:',
      '  checkpoints:',
      `    keys: [{ id: cp1, privateKeyFile: ${JSON.stringify(join(dir, 'keys', 'cp1.private.pem'))} }]`,
      '    everyEvents: 40',
      'log: { level: info }',
      '',
    ].join('\n'),
  );
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CONFIG_SERVICE_')));
  child = spawn(process.execPath, [SERVICE_CLI, 'serve', '--config', settingsFile], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (output += d));
  child.stderr!.on('data', (d: Buffer) => (output += d));
  const until = Date.now() + 120_000;
  while (!api) {
    const line = output.split('\n').find((l) => l.includes('"config-service listening"'));
    if (line) ({ api, management } = JSON.parse(line) as { api: string; management: string });
    if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}:\n${output}`);
    if (Date.now() > until) throw new Error(`serve did not listen:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}, 180_000);

afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await git?.close();
  work?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const get = (p: string) => httpsGet(api, p, { ca: pki.ca.certPem, cert: orders.cert, key: orders.key });

/** The JSON log lines written so far. */
function logLines(): Array<Record<string, unknown>> {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('server.workers: 2', () => {
  const served: Array<{ requestId: string; sha256: string; commit: string }> = [];

  it('serves from both workers, each request on its own connection', async () => {
    for (let round = 0; round < 6; round++) {
      const batch = await Promise.all(Array.from({ length: 20 }, () => get('/v1/apps/orders/config?format=properties')));
      for (const res of batch) {
        expect(res.status).toBe(200);
        expect(res.body).toBe('greeting=one\n');
        served.push({ requestId: res.headers['request-id']!, sha256: createHash('sha256').update(res.body).digest('hex'), commit: res.headers['config-commit']! });
      }
    }
    // One "audit event" line per request, written by the worker that answered it.
    const pids = new Set(logLines().filter((l) => l.msg === 'audit event').map((l) => l.pid));
    expect(pids.size).toBe(2);
  });

  it('reports both workers in readiness, and their requests summed once in /metrics', async () => {
    const ready = await fetch(`${management}/health/ready`);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { checks: { workers: unknown } }).checks.workers).toEqual({ listening: 2, wanted: 2 });
    const text = await (await fetch(`${management}/metrics`)).text();
    const types = text.split('\n').filter((l) => l.startsWith('# TYPE '));
    expect(new Set(types).size).toBe(types.length); // no series family twice
    const allowed = text.split('\n').find((l) => l.startsWith('config_service_requests_total{') && l.includes('action="config.read"') && l.includes('status="200"'));
    expect(Number(allowed?.split(' ').pop())).toBe(served.length);
    expect(text).toMatch(/^config_service_git_ready\{repository="config"\} 1$/m);
  });

  it('a webhook makes the primary fetch once, every worker serves the new commit, and long-polls held in every worker wake', async () => {
    const fetchesBefore = git.log.filter((r) => r.method === 'POST' && r.url.endsWith('/git-upload-pack')).length;
    // Long-polls on their own connections (so both workers hold some): each is answered by
    // the primary's publication of the new refs, not by its wait running out (that is 304).
    const current = await get('/v1/apps/orders/config?format=properties');
    const held = Array.from({ length: 8 }, () => httpsGet(api, '/v1/apps/orders/config?format=properties&wait=60s', { ca: pki.ca.certPem, cert: orders.cert, key: orders.key, headers: { 'if-none-match': current.headers.etag! } }));
    await new Promise((r) => setTimeout(r, 500));
    const commit = work.commitFiles({ 'orders/application.yml': 'greeting: two\n' }, 'two');
    work.git('push', '-q', bare, 'main');
    const body = JSON.stringify({ ref: 'refs/heads/main' });
    const signature = `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;
    const hook = await httpsGet(api, '/v1/hooks/git?repo=config', {
      ca: pki.ca.certPem,
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', 'x-hub-signature-256': signature, 'x-github-event': 'push' },
    });
    expect(hook.status).toBe(202);
    const until = Date.now() + 60_000;
    for (;;) {
      const batch = await Promise.all(Array.from({ length: 10 }, () => get('/v1/apps/orders/config?format=properties')));
      if (batch.every((r) => r.status === 200 && r.headers['config-commit'] === commit && r.body === 'greeting=two\n')) {
        for (const res of batch) served.push({ requestId: res.headers['request-id']!, sha256: createHash('sha256').update(res.body).digest('hex'), commit });
        break;
      }
      if (Date.now() > until) throw new Error(`the new commit is not served by every worker: ${batch.map((r) => r.headers['config-commit']).join(' ')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const fetches = git.log.filter((r) => r.method === 'POST' && r.url.endsWith('/git-upload-pack')).length - fetchesBefore;
    expect(fetches).toBe(1);
    const answers = await Promise.all(held);
    const heldIds = new Set(answers.map((r) => r.headers['request-id']));
    await new Promise((r) => setTimeout(r, 200)); // the audit lines are written asynchronously
    expect(new Set(logLines().filter((l) => l.msg === 'audit event' && heldIds.has(l.reqId as string)).map((l) => l.pid)).size).toBe(2);
    for (const res of answers) {
      expect(res.status).toBe(200);
      expect(res.headers['config-commit']).toBe(commit);
      expect(res.body).toBe('greeting=two\n');
      served.push({ requestId: res.headers['request-id']!, sha256: createHash('sha256').update(res.body).digest('hex'), commit });
    }
  });

  it('stops on SIGTERM with every event committed: each 200 has its event and the chain verifies', async () => {
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (c) => resolve(c))));
    expect(code, output).toBe(0);
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CONFIG_SERVICE_')));
    // Both workers signed checkpoints of the one chain; the copies on the log stream match
    // those stored, and the chain verifies against them.
    const checkpointLines = output.split('\n').filter((l) => l.includes('"audit checkpoint"'));
    expect(new Set(checkpointLines.map((l) => (JSON.parse(l) as { pid: number }).pid)).size).toBe(2);
    const evidence = join(dir, 'log-stream.jsonl');
    writeFileSync(evidence, `${checkpointLines.join('\n')}\n`);
    const verify = await runServiceCli(['audit', 'verify', '--config', settingsFile, '--checkpoints', evidence, '--public-key', join(dir, 'keys', 'cp1.public.pem')], { env });
    expect(verify.status, verify.stderr).toBe(0);
    const verdict = JSON.parse(verify.stdout) as { ok: boolean; notProven: string[]; checkpoints: { outside: number; stored: number; matched: number } };
    expect(verdict).toMatchObject({ ok: true, notProven: [] });
    expect(verdict.checkpoints.outside).toBe(checkpointLines.length);
    expect(verdict.checkpoints.matched).toBe(verdict.checkpoints.outside + verdict.checkpoints.stored);
    const query = await runServiceCli(['audit', 'query', '--config', settingsFile, '--action', 'config.read', '--limit', '1000'], { env });
    expect(query.status, query.stderr).toBe(0);
    const events = new Map(
      query.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { requestId: string; status: number; bodySha256?: string; commit?: string })
        .map((e) => [e.requestId, e]),
    );
    expect(served.length).toBeGreaterThanOrEqual(130);
    for (const s of served) {
      expect(events.get(s.requestId), s.requestId).toMatchObject({ status: 200, bodySha256: s.sha256, commit: s.commit });
    }
  });
});
