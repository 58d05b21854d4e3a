#!/usr/bin/env node
// Long-poll cost (issue 12): one config-service replica holding N idle long-polls
// (`wait=` with `If-None-Match`), each on its own mTLS connection. Reports
//   - the replica's plain read rate (GET config, warm cache, keep-alive, same process layout),
//   - its RSS per held request (RSS with N held minus RSS before, after a GC, divided by N),
//   - the time from a push webhook to the first and to the last of the N answers.
// The replica runs in its own process (this script with --serve), mirroring a remote served
// by `git http-backend` with polling off, so only the webhook moves it. The clients run here.
// Usage: pnpm build && node bench/long-poll.mjs [--waiters 10000] [--batch 200]
// Figures swing with the machine; run it alone.
import { execFileSync, fork, spawn } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const requireFromTest = createRequire(path.join(root, 'test/package.json'));
const { values } = parseArgs({ options: { serve: { type: 'string' }, waiters: { type: 'string', default: '10000' }, batch: { type: 'string', default: '200' }, reads: { type: 'string', default: '3000' } } });

if (values.serve !== undefined) {
  // ---- the replica (child process): starts the service, answers stats over IPC
  const svc = await import(path.join(root, 'packages/config-service/dist/index.js'));
  const { pino } = requireFromTest('pino');
  const settings = svc.loadSettings({ env: {}, overrides: JSON.parse(values.serve) });
  const service = await svc.startService(settings, { logger: pino({ level: 'warn' }) });
  process.on('message', async (m) => {
    if (m === 'stats') {
      globalThis.gc?.();
      process.send({ rss: process.memoryUsage().rss, heapUsed: process.memoryUsage().heapUsed, waiters: service.api.longPoll.waiters, groups: service.api.longPoll.groups, timers: service.api.longPoll.timers });
    } else if (m === 'close') {
      await service.close();
      process.exit(0);
    }
  });
  process.send({ apiUrl: service.apiUrl });
} else {
  await main();
}

async function main() {
  const WAITERS = Number(values.waiters);
  const BATCH = Number(values.batch);
  const { Client, Pool } = requireFromTest('undici');
  const svc = await import(path.join(root, 'packages/config-service/dist/index.js'));
  const work = mkdtempSync(path.join(os.tmpdir(), 'bench-long-poll-'));
  const env = { ...process.env, GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@b', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@b', GIT_CONFIG_GLOBAL: '/dev/null' };
  const git = (cwd, ...args) => execFileSync('git', ['-C', cwd, ...args], { env, encoding: 'utf8' }).trim();

  // A remote: a bare repository served by `git http-backend` (CGI) on 127.0.0.1.
  const repo = path.join(work, 'repo');
  cpSync(path.join(root, 'examples/config-repo'), repo, { recursive: true });
  execFileSync('git', ['init', '-q', '-b', 'main', repo]);
  git(repo, 'add', '-A');
  git(repo, 'commit', '-q', '-m', 'bench');
  const srv = path.join(work, 'srv');
  mkdirSync(srv);
  execFileSync('git', ['clone', '-q', '--bare', repo, path.join(srv, 'config.git')], { env });
  const gitServer = createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    const cgi = spawn('git', ['http-backend'], {
      env: { ...env, GIT_PROJECT_ROOT: srv, GIT_HTTP_EXPORT_ALL: '1', PATH_INFO: u.pathname, QUERY_STRING: u.search.slice(1), REQUEST_METHOD: req.method, CONTENT_TYPE: req.headers['content-type'] ?? '', REMOTE_ADDR: '127.0.0.1' },
    });
    req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let headersDone = false;
    cgi.stdout.on('data', (chunk) => {
      if (headersDone) return void res.write(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      headersDone = true;
      let status = 200;
      for (const line of head.subarray(0, end).toString().split('\r\n')) {
        const [k, ...v] = line.split(':');
        if (k.toLowerCase() === 'status') status = Number(v.join(':').trim().split(' ')[0]);
        else res.setHeader(k, v.join(':').trim());
      }
      res.writeHead(status);
      res.write(head.subarray(end + 4));
    });
    cgi.stdout.on('end', () => res.end());
  });
  await new Promise((r) => gitServer.listen(0, '127.0.0.1', r));
  const remote = `http://127.0.0.1:${gitServer.address().port}/config.git`;

  const pkiDir = path.join(work, 'pki');
  mkdirSync(pkiDir);
  const files = await svc.initPki(pkiDir);
  const client = await svc.issueClientFiles(pkiDir, 'orders');
  const tls = { ca: readFileSync(files.caCert, 'utf8'), cert: readFileSync(client.cert, 'utf8'), key: readFileSync(client.key, 'utf8'), servername: 'localhost' };
  const secretFile = path.join(work, 'webhook-secret');
  const SECRET = 'bench-webhook-secret-0123456789';
  writeFileSync(secretFile, SECRET);

  const overrides = {
    server: { host: '127.0.0.1', port: 0, tls: { cert: files.serverCert, key: files.serverKey, clientCa: files.caCert }, rateLimit: { max: 0 } },
    management: { host: '127.0.0.1', port: 0 },
    dataDir: path.join(work, 'data'),
    repositories: [{ name: 'config', url: remote, branch: 'main', pollIntervalMs: 0, webhookSecretFile: secretFile }],
    longPoll: { maxWaiters: WAITERS + 1000, maxWaitersPerIdentity: WAITERS + 1000 },
    log: { level: 'warn' },
  };
  const child = fork(fileURLToPath(import.meta.url), ['--serve', JSON.stringify(overrides)], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = () => new Promise((r) => child.once('message', r));
  const { apiUrl } = await next();
  const stats = async () => {
    child.send('stats');
    return next();
  };
  const PATH = '/v1/apps/orders/config?profile=prod&format=properties';

  // 1. Plain read rate (warm cache), 16 keep-alive connections.
  const pool = new Pool(apiUrl, { connections: 16, connect: tls });
  const get = async (headers = {}) => {
    const res = await pool.request({ path: PATH, method: 'GET', headers });
    await res.body.arrayBuffer();
    return res;
  };
  const first = await get();
  const etag = first.headers.etag;
  for (let i = 0; i < 200; i++) await get();
  const READS = Number(values.reads);
  let n = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (n++ < READS) await get();
  }));
  const readRate = READS / (Number(process.hrtime.bigint() - t0) / 1e9);
  await pool.close();

  // 2. N idle long-polls, each on its own connection.
  const before = await stats();
  const clients = [];
  const answers = [];
  for (let i = 0; i < WAITERS; i += BATCH) {
    const batch = [];
    for (let j = i; j < Math.min(WAITERS, i + BATCH); j++) {
      const c = new Client(apiUrl, { connect: tls, bodyTimeout: 600_000, headersTimeout: 600_000 });
      clients.push(c);
      const p = c.request({ path: `${PATH}&wait=300s`, method: 'GET', headers: { 'if-none-match': etag } }).then(async (res) => {
        await res.body.arrayBuffer();
        return { status: res.statusCode, at: Date.now() };
      });
      answers.push(p);
      batch.push(c);
    }
    // Let the batch's handshakes finish before the next one starts.
    for (;;) {
      const s = await stats();
      if (s.waiters >= Math.min(WAITERS, i + BATCH)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const held = await stats();

  // 3. A push and its webhook: every waiter is answered with the new configuration.
  writeFileSync(path.join(repo, 'orders/application.yml'), `${readFileSync(path.join(repo, 'orders/application.yml'), 'utf8')}\nbench:\n  changed: ${randomUUID()}\n`);
  git(repo, 'commit', '-q', '-am', 'change');
  git(repo, 'push', '-q', path.join(srv, 'config.git'), 'main');
  const body = JSON.stringify({ ref: 'refs/heads/main', repository: { full_name: 'bench/config' } });
  const hookPool = new Pool(apiUrl, { connections: 1, connect: { ca: tls.ca, servername: 'localhost' } });
  const hookAt = Date.now();
  const hook = await hookPool.request({ path: '/v1/hooks/git', method: 'POST', body, headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}` } });
  await hook.body.arrayBuffer();
  if (hook.statusCode !== 202) throw new Error(`webhook: ${hook.statusCode}`);
  const results = await Promise.all(answers);
  const ok = results.filter((r) => r.status === 200).length;
  const times = results.map((r) => r.at - hookAt).sort((a, b) => a - b);
  await hookPool.close();
  await Promise.all(clients.map((c) => c.close()));
  child.send('close');
  await new Promise((r) => child.once('exit', r));
  gitServer.close();
  rmSync(work, { recursive: true, force: true });

  const perWaiter = (held.rss - before.rss) / WAITERS;
  const kib = (b) => `${(b / 1024).toFixed(1)} KiB`;
  console.log(`| measure | value |`);
  console.log(`| --- | --- |`);
  console.log(`| plain read rate (GET config, warm cache, 64 in flight over 16 connections) | ${readRate.toFixed(0)} req/s |`);
  console.log(`| held long-polls | ${held.waiters} (groups ${held.groups}, hub timers ${held.timers}) |`);
  console.log(`| replica RSS before / with them held | ${kib(before.rss)} / ${kib(held.rss)} |`);
  console.log(`| RSS per held request (connection included) | ${kib(perWaiter)} |`);
  console.log(`| heap per held request | ${kib((held.heapUsed - before.heapUsed) / WAITERS)} |`);
  console.log(`| answered 200 after the webhook | ${ok} of ${WAITERS} |`);
  console.log(`| webhook to first / median / last answer | ${times[0]} / ${times[Math.floor(times.length / 2)]} / ${times[times.length - 1]} ms |`);
  console.log(`| last answer vs. plain reads (N / read rate) | ${(times[times.length - 1] / 1000).toFixed(2)} s vs ${(WAITERS / readRate).toFixed(2)} s |`);
}
