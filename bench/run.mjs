#!/usr/bin/env node
// `pnpm bench`: config-service against its baselines, measured in one run, written to
// bench/RESULTS.md. Read bench/README.md for what each figure means.
//
// Servers (config-service through its CLI, `config-service serve`, and the ceiling) run
// pinned with taskset to one CPU, the load generators (ab, the Node storm client, curl,
// config-init) to another; server CPU time per request is read from /proc (utime + stime
// of the server and its worker processes). Figures are ratios to a baseline measured in
// the same round; each is reported as the median and the range over the rounds.
//
// Usage: node bench/run.mjs [--rounds 3] [--seconds 3] [--apps 2000] [--commits 5000]
//        [--out bench/RESULTS.md] [--keep] [--profile] [--service-root <checkout>]
//   --no-profile: skip the CPU profiles of config-service (keep-alive, fresh connections,
//              cold storm) whose summaries go to bench/profiles/ and RESULTS.md
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { abVersion, ensureAb, runAb } from './lib/ab.mjs';
import { appName, commitOneApp, GIT_ENV, makeBigRepo } from './lib/big-repo.mjs';
import { startGitHttp } from './lib/git-http.mjs';
import { cpuPlan, cpuSeconds, pinSelf, rssMiB, runPinned, spawnPinned, treeRss } from './lib/proc.mjs';
import { heapMarkdown, summariseHeap } from './lib/heap-summary.mjs';
import { summarise, summaryMarkdown } from './lib/profile-summary.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({
  options: {
    'service-root': { type: 'string', default: root },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '3' },
    apps: { type: 'string', default: '2000' },
    commits: { type: 'string', default: '5000' },
    out: { type: 'string', default: path.join(root, 'bench/RESULTS.md') },
    keep: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: true },
    'no-profile': { type: 'boolean', default: false },
  },
});
// --service-root: measure the built config-service and config-init of another checkout
// (an older commit, for before/after figures); its settings may not know server.workers.
const serviceRoot = path.resolve(opt['service-root']);
const CLI = path.join(serviceRoot, 'packages/config-service/bin/config-service.mjs');
const INIT = path.join(serviceRoot, 'packages/config-init/dist/config-init.mjs');
const WORKERS = serviceRoot === root;
if (opt['no-profile']) opt.profile = false;
const ROUNDS = Number(opt.rounds);
const SECONDS = Number(opt.seconds);
const APPS = Number(opt.apps);
const COMMITS = Number(opt.commits);
const started = Date.now();
const loadAtStart = os.loadavg()[0];
const log = (msg) => process.stdout.write(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${msg}\n`);

// ---------------------------------------------------------------- set-up
ensureAb(log);
const cpu = cpuPlan();
pinSelf(cpu.load);
log(`CPUs ${cpu.cpus.join(',')}: servers on ${cpu.server}, load generators on ${cpu.load}`);
const work = mkdtempSync(path.join(os.tmpdir(), 'config-service-bench-'));
const children = new Set();
const cleanup = () => {
  for (const c of children) c.kill('SIGKILL');
  if (!opt.keep) rmSync(work, { recursive: true, force: true });
};
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

const svc = await import(path.join(root, 'packages/config-service/dist/index.js'));
const pkiDir = path.join(work, 'pki');
const pki = await svc.initPki(pkiDir);
const owner = await svc.issueClientFiles(pkiDir, appName(0)); // reads its own app (default policy)
const reader = await svc.issueClientFiles(pkiDir, 'bench-reader'); // a grant reads every app
const pemOf = (c) => {
  const file = `${c.cert}.ab.pem`;
  writeFileSync(file, `${readFileSync(c.cert, 'utf8').trim()}\n${readFileSync(c.key, 'utf8').trim()}\n`);
  return file;
};
const ownerPem = pemOf(owner);
const webhookSecret = path.join(work, 'webhook.secret');
writeFileSync(webhookSecret, 'bench-webhook-secret-0123456789abcdef\n');

log(`making a ${APPS}-app, ${COMMITS}-commit repository (git fast-import)`);
const remoteRoot = path.join(work, 'remote');
const remote = path.join(remoteRoot, 'config.git');
makeBigRepo({ dir: remote, apps: APPS, commits: COMMITS });
const gitHttp = await startGitHttp(remoteRoot);
const remoteUrl = `${gitHttp.url}/config.git`;
const cliMirror = path.join(work, 'cli-mirror.git');
// Asynchronously: the Git HTTP server runs in this process.
const cloned = await runPinned(cpu.load, 'git', ['clone', '-q', '--mirror', remoteUrl, cliMirror], { env: { ...process.env, ...GIT_ENV } });
if (cloned.code !== 0) throw new Error(`git clone --mirror failed: ${cloned.stderr}`);

async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Starts `config-service serve` pinned to `cpus`; resolves once /health/ready is 200. */
async function startService({ workers, cpus, name, cpuProf, heapDir }) {
  const port = await freePort();
  const mport = await freePort();
  const dataDir = path.join(work, 'data'); // shared by every start: the mirror is cloned once
  const file = path.join(work, `service-${name}.yml`);
  writeFileSync(
    file,
    [
      'server:',
      '  host: 127.0.0.1',
      `  port: ${port}`,
      ...(WORKERS ? [`  workers: ${workers}`] : []),
      `  tls: { cert: ${pki.serverCert}, key: ${pki.serverKey}, clientCa: ${pki.caCert} }`,
      // The limiter runs on every request, as in production, but never refuses one here.
      '  rateLimit: { max: 1000000000 }',
      `management: { host: 127.0.0.1, port: ${mport} }`,
      `dataDir: ${dataDir}`,
      'repositories:',
      '  - name: config',
      `    url: ${remoteUrl}`,
      '    pollIntervalMs: 0',
      `    webhookSecretFile: ${webhookSecret}`,
      'policy:',
      '  grants:',
      "    - { subjects: [bench-reader], apps: ['*'], scopes: [config:read] }",
      'log: { level: info }',
      '',
    ].join('\n'),
  );
  const logFile = path.join(work, `service-${name}.log`);
  const { openSync } = await import('node:fs');
  const out = openSync(logFile, 'a');
  const args = [...(cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${cpuProf}`] : []), ...(heapDir ? ['--heapsnapshot-signal=SIGURG', `--diagnostic-dir=${heapDir}`] : []), CLI, 'serve', '--config', file];
  const child = spawnPinned(cpus, process.execPath, args, { stdio: ['ignore', out, out] });
  children.add(child);
  const spawnedAt = Date.now();
  const ready = `http://127.0.0.1:${mport}/health/ready`;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`config-service exited ${child.exitCode}; see ${logFile}`);
    const ok = await fetch(ready).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() - spawnedAt > 300_000) throw new Error(`config-service not ready after 300 s; see ${logFile}`);
    await sleep(200);
  }
  // Every worker listens before the primary reports ready; give stragglers a moment.
  await sleep(300);
  return {
    pid: child.pid,
    origin: `https://127.0.0.1:${port}`,
    management: `http://127.0.0.1:${mport}`,
    spawnedAt,
    logFile,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      children.delete(child);
    },
  };
}

/** Starts the ceiling pinned to `cpus` with `body` as its answer. */
async function startCeiling(body, mediaType) {
  const bodyFile = path.join(work, 'ceiling-body');
  writeFileSync(bodyFile, body);
  const child = spawnPinned(cpu.server, process.execPath, [path.join(root, 'bench/lib/ceiling.mjs'), pki.serverCert, pki.serverKey, pki.caCert, bodyFile, mediaType], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  const port = await new Promise((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (d) => {
      text += d;
      const m = /listening (\d+)/.exec(text);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`ceiling exited ${code}`)));
  });
  return { pid: child.pid, origin: `https://127.0.0.1:${port}`, stop: async () => child.kill('SIGTERM') };
}

/** One GET with a client certificate; resolves { status, headers, body }. */
function get(url, cert, headers = {}) {
  return new Promise((resolve, reject) => {
    https
      .get(url, { cert: readFileSync(cert.cert), key: readFileSync(cert.key), ca: readFileSync(pki.caCert), headers, agent: false }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      })
      .on('error', reject);
  });
}

/** ab against `server`, with its CPU time per request. */
async function abRun(server, { keepAlive, concurrency, seconds = SECONDS }) {
  const url = `${server.origin}/v1/apps/${appName(0)}/config?profile=prod`;
  const c0 = cpuSeconds(server.pid);
  const r = await runAb(cpu.load, { url, requests: 2_000_000, concurrency, keepAlive, pem: ownerPem, seconds });
  const c1 = cpuSeconds(server.pid);
  return { ...r, cpuUs: ((c1 - c0) * 1e6) / r.complete };
}

/** The storm client: one request per path, fresh connections unless keepAlive. */
async function storm(server, paths, { concurrency = 64, keepAlive = false, cert = reader } = {}) {
  const c0 = cpuSeconds(server.pid);
  const arg = path.join(work, 'storm-options.json');
  writeFileSync(arg, JSON.stringify({ origin: server.origin, cert: cert.cert, key: cert.key, paths, concurrency, keepAlive }));
  const r = await runPinned(cpu.load, process.execPath, [path.join(root, 'bench/lib/storm-client.mjs'), arg]);
  const c1 = cpuSeconds(server.pid);
  if (r.code !== 0) throw new Error(`storm client exited ${r.code}: ${r.stderr}`);
  const out = JSON.parse(r.stdout);
  if (out.completed !== paths.length) throw new Error(`storm: ${out.completed} of ${paths.length} answered 200: ${JSON.stringify(out.statuses)}`);
  return { ...out, cpuUs: ((c1 - c0) * 1e6) / out.completed, clientBusy: out.clientCpuSeconds / out.seconds };
}

const configPath = (i, profile) => `/v1/apps/${appName(i)}/config${profile ? `?profile=${profile}` : ''}`;
const stormPaths = Array.from({ length: APPS }, (_, i) => configPath(i, 'prod'));

/** Signs and sends a GitHub-style push webhook. */
async function webhook(server) {
  const body = JSON.stringify({ ref: 'refs/heads/main', repository: { clone_url: remoteUrl } });
  const secret = readFileSync(webhookSecret, 'utf8').trim();
  const sig = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
  const res = await fetchTls(`${server.origin}/v1/hooks/git?repo=config`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-hub-signature-256': sig, 'x-github-event': 'push' } });
  if (res.status !== 202) throw new Error(`webhook answered ${res.status}: ${res.body}`);
}

function fetchTls(url, { method, body, headers }) {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, headers, ca: readFileSync(pki.caCert), agent: false }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Polls `path` (keep-alive, every 2 ms) until `done(res)`; resolves the time it took, ms. */
async function pollUntil(server, pathName, done, since) {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, cert: readFileSync(reader.cert), key: readFileSync(reader.key), ca: readFileSync(pki.caCert) });
  try {
    for (;;) {
      const res = await new Promise((resolve, reject) => {
        https.get(`${server.origin}${pathName}`, { agent }, (r) => {
          r.resume();
          r.on('end', () => resolve(r));
        }).on('error', reject);
      });
      if (done(res)) return Number(process.hrtime.bigint() - since) / 1e6;
      if (Number(process.hrtime.bigint() - since) > 120e9) throw new Error(`${pathName}: not served within 120 s`);
      await sleep(2);
    }
  } finally {
    agent.destroy();
  }
}

// ---------------------------------------------------------------- results
const results = new Map(); // key -> { label, unit, base, values: [{ value, base }] }
/** A ratio (`text` undefined) or, with `text`, an absolute figure shown per round. */
function record(key, label, value, base, text) {
  if (!results.has(key)) results.set(key, { label, text: text !== undefined, rows: [] });
  results.get(key).rows.push({ value, base, text });
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// ---------------------------------------------------------------- 1. one worker, keep-alive, fresh, init, webhook
log('starting config-service (server.workers: 1); the first start clones the mirror');
const profDir = path.join(root, 'bench/profiles');
let service = await startService({ workers: 1, cpus: cpu.server, name: 'w1' });
const sample = await get(`${service.origin}${configPath(0, 'prod')}`, owner);
if (sample.status !== 200) throw new Error(`first read answered ${sample.status}: ${sample.body}`);
log(`the document: ${sample.body.length} bytes of ${sample.headers['content-type']}`);
const ceiling = await startCeiling(sample.body, sample.headers['content-type']);
for (const s of [ceiling, service]) await abRun(s, { keepAlive: true, concurrency: 10, seconds: 1 }); // warm-up

for (let round = 1; round <= ROUNDS; round++) {
  log(`round ${round}/${ROUNDS}: keep-alive and fresh connections (ab)`);
  const order = round % 2 ? [ceiling, service] : [service, ceiling];
  for (const [key, keepAlive, concurrency] of [['ka10', true, 10], ['ka50', true, 50], ['fresh10', false, 10]]) {
    const r = new Map();
    for (const s of order) r.set(s, await abRun(s, { keepAlive, concurrency }));
    const a = r.get(service);
    const b = r.get(ceiling);
    record(`${key}.rps`, `${keepAlive ? 'keep-alive' : 'fresh connection per request'}, ${concurrency} connections: requests/s`, a.rps / b.rps, b.rps);
    record(`${key}.cpu`, `${keepAlive ? 'keep-alive' : 'fresh connection per request'}, ${concurrency} connections: server CPU per request`, a.cpuUs / b.cpuUs, b.cpuUs);
    record(`${key}.p50`, `${keepAlive ? 'keep-alive' : 'fresh connection'}, ${concurrency} connections: p50 latency`, a.p50 / Math.max(b.p50, 1), b.p50);
    record(`${key}.p99`, `${keepAlive ? 'keep-alive' : 'fresh connection'}, ${concurrency} connections: p99 latency`, a.p99 / Math.max(b.p99, 1), b.p99);
    record(`${key}.abs`, `${keepAlive ? 'keep-alive' : 'fresh'} ${concurrency}: config-service req/s, CPU µs/req, p50/p99 ms`, a.rps, b.rps, `${a.rps.toFixed(0)} req/s, ${a.cpuUs.toFixed(0)} µs, ${a.p50}/${a.p99} ms vs ceiling ${b.rps.toFixed(0)} req/s, ${b.cpuUs.toFixed(0)} µs, ${b.p50}/${b.p99} ms`);
  }

  log(`round ${round}/${ROUNDS}: config-init, plain Node and curl, whole processes`);
  const outDir = path.join(work, 'init-out');
  const url = `${service.origin}${configPath(0, 'prod')}&format=properties`;
  const times = { init: [], node: [], curl: [] };
  for (let i = 0; i < 10; i++) {
    const init = await runPinned(cpu.load, process.execPath, [INIT, 'fetch', '--server', service.origin, '--app', appName(0), '--profile', 'prod', '--cert', owner.cert, '--key', owner.key, '--ca', pki.caCert, '--output-dir', outDir, '--termination-log', '']);
    if (init.code !== 0) throw new Error(`config-init exited ${init.code}: ${init.stderr}`);
    times.init.push(init.wallMs);
    const plain = await runPinned(cpu.load, process.execPath, [path.join(root, 'bench/lib/plain-fetch.mjs'), url, owner.cert, owner.key, pki.caCert, path.join(work, 'plain.properties')]);
    if (plain.code !== 0) throw new Error(`plain fetch exited ${plain.code}: ${plain.stderr}`);
    times.node.push(plain.wallMs);
    const curl = await runPinned(cpu.load, 'curl', ['-sf', '--cert', owner.cert, '--key', owner.key, '--cacert', pki.caCert, '-o', path.join(work, 'curl.properties'), url]);
    if (curl.code !== 0) throw new Error(`curl exited ${curl.code}`);
    times.curl.push(curl.wallMs);
  }
  record('init.init', 'config-init fetch + publish, whole process: wall time vs a dependency-free Node fetch-and-write', median(times.init) / median(times.node), median(times.node));
  record('init.curl', '`curl` one-shot fetch, whole process: wall time vs a dependency-free Node fetch-and-write', median(times.curl) / median(times.node), median(times.node));

  log(`round ${round}/${ROUNDS}: webhook to served, against git fetch`);
  for (const kind of ['commit', 'branch']) {
    const branch = kind === 'commit' ? 'main' : `bench-${round}-${Date.now()}`;
    const app = appName(round);
    const commit = commitOneApp(remote, { app, branch, marker: `${kind}-${round}-${Date.now()}` });
    const t0 = process.hrtime.bigint();
    await webhook(service);
    const served =
      kind === 'commit'
        ? await pollUntil(service, configPath(round, 'prod'), (r) => r.statusCode === 200 && r.headers['config-commit'] === commit, t0)
        : await pollUntil(service, `${configPath(round, 'prod')}&ref=${branch}`, (r) => r.statusCode === 200 && r.headers['config-commit'] === commit, t0);
    const g = await runPinned(cpu.load, 'git', ['-C', cliMirror, 'fetch', '-q', 'origin'], { env: { ...process.env, ...GIT_ENV } });
    if (g.code !== 0) throw new Error(`git fetch exited ${g.code}: ${g.stderr}`);
    record(`hook.${kind}`, `webhook to first response with the new ${kind === 'commit' ? 'commit' : 'branch'}: time vs \`git fetch\` by the git CLI`, served / g.wallMs, g.wallMs);
  }
}

await service.stop();

// ---------------------------------------------------------------- 2. deploy storms, one and two workers; memory
const twoWorkerCpus = cpu.sharedForTwoWorkers ? `${cpu.cpus[0]},${cpu.cpus[1]}` : cpu.serverWide;
for (const workers of WORKERS ? [1, 2] : [1]) {
  for (let round = 1; round <= ROUNDS; round++) {
    log(`round ${round}/${ROUNDS}: deploy storm, server.workers: ${workers}`);
    const cpus = workers === 1 ? cpu.server : twoWorkerCpus;
    const s = await startService({ workers, cpus, name: `storm-w${workers}-${round}` });
    const rssStart = treeRss(s.pid);
    const cold = await storm(s, stormPaths);
    const warm = await storm(s, stormPaths);
    const ceil = await storm(ceiling, stormPaths);
    record(`storm${workers}.cold`, `deploy storm, first read of each app, server.workers: ${workers}: completed/s vs ceiling`, cold.rps / ceil.rps, ceil.rps);
    record(`storm${workers}.coldcpu`, `deploy storm, first read, server.workers: ${workers}: server CPU per connection vs ceiling`, cold.cpuUs / ceil.cpuUs, ceil.cpuUs);
    record(`storm${workers}.warm`, `deploy storm again, every app read once, server.workers: ${workers}: completed/s vs ceiling`, warm.rps / ceil.rps, ceil.rps);
    record(`storm${workers}.warmcpu`, `deploy storm again, server.workers: ${workers}: server CPU per connection vs ceiling`, warm.cpuUs / ceil.cpuUs, ceil.cpuUs);
    record(`storm${workers}.abs`, `storm, server.workers: ${workers}: completed/s and CPU ms per connection (cold, warm, ceiling); load generator busy`, cold.rps, ceil.rps,
      `${cold.rps.toFixed(0)}/s ${(cold.cpuUs / 1000).toFixed(1)} ms, ${warm.rps.toFixed(0)}/s ${(warm.cpuUs / 1000).toFixed(1)} ms, ${ceil.rps.toFixed(0)}/s ${(ceil.cpuUs / 1000).toFixed(1)} ms; client ${(cold.clientBusy * 100).toFixed(0)}%/${(warm.clientBusy * 100).toFixed(0)}%/${(ceil.clientBusy * 100).toFixed(0)}%`);
    if (workers === 2) {
      const one = results.get('storm1.cold').rows[round - 1];
      record('storm2vs1.cold', 'deploy storm, first read: server.workers 2 vs 1, completed/s', cold.rps / (one.value * one.base), one.value * one.base);
      const oneWarm = results.get('storm1.warm').rows[round - 1];
      record('storm2vs1.warm', 'deploy storm again: server.workers 2 vs 1, completed/s', warm.rps / (oneWarm.value * oneWarm.base), oneWarm.value * oneWarm.base);
    }
    if (workers === 1) {
      // A commit that touches one application: every other application's next read should be warm.
      const commit = commitOneApp(remote, { app: appName(APPS - 1), marker: `storm-${round}-${Date.now()}` });
      const t0 = process.hrtime.bigint();
      await webhook(s);
      await pollUntil(s, configPath(APPS - 1, 'prod'), (r) => r.headers['config-commit'] === commit, t0);
      const after = await storm(s, stormPaths);
      record('storm1.aftercommit', 'deploy storm after a commit that touches one app, server.workers: 1: completed/s vs the warm storm', after.rps / warm.rps, warm.rps);
      // Memory: every app × profile read once (keep-alive: this measures memory, not speed).
      const rest = [];
      for (let i = 0; i < APPS; i++) rest.push(configPath(i), configPath(i, 'staging'));
      await storm(s, rest, { keepAlive: true, concurrency: 16 });
      const rssAll = treeRss(s.pid);
      record('rss.start', 'RSS at start (mirror on disk), MiB: config-service vs the ceiling process', rssStart[0].rss / rssMiB(ceiling.pid), rssMiB(ceiling.pid));
      record('rss.all', `RSS after every app × profile (${APPS} × 3) was read once, MiB: config-service vs the ceiling process`, rssAll[0].rss / rssMiB(ceiling.pid), rssMiB(ceiling.pid));
      record('rss.abs', 'RSS MiB at start / after every app × profile read', rssAll[0].rss, rssStart[0].rss, `${rssStart[0].rss.toFixed(0)} / ${rssAll[0].rss.toFixed(0)} MiB (ceiling ${rssMiB(ceiling.pid).toFixed(0)} MiB)`);
    } else {
      record('rss.workers', 'RSS of each process after the storms, server.workers: 2 (primary first), MiB', 0, 0, treeRss(s.pid).map((p) => p.rss.toFixed(0)).join(' / '));
    }
    await s.stop();
  }
}
// ---------------------------------------------------------------- 3. profiles (after the measurements)
const profiles = [];
let memory;
let initProfile;

/**
 * RSS, V8 heap and external memory (the service's /metrics) and a heap snapshot summary
 * after every app × profile was read once, as the RSS figure was measured.
 */
async function memoryProfile() {
  const dir = path.join(work, 'heap');
  mkdirSync(dir, { recursive: true });
  const s = await startService({ workers: 1, cpus: cpu.server, name: 'heap', heapDir: dir });
  await storm(s, stormPaths);
  const rest = [];
  for (let i = 0; i < APPS; i++) rest.push(configPath(i), configPath(i, 'staging'));
  await storm(s, rest, { keepAlive: true, concurrency: 16 });
  const metrics = await (await fetch(`${s.management}/metrics`)).text();
  const metric = (name) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(metrics)?.[1]);
  const mem = { rss: metric('process_resident_memory_bytes'), heapUsed: metric('nodejs_heap_size_used_bytes'), external: metric('nodejs_external_memory_bytes') };
  // SIGURG: ignored by default; SIGUSR2 is one of the signals the service shuts down on (close-with-grace).
  process.kill(s.pid, 'SIGURG');
  // The process writes the snapshot synchronously: once the file exists and the process
  // answers again, the file is complete.
  let file;
  for (const until = Date.now() + 300_000; file === undefined; await sleep(200)) {
    file = readdirSync(dir).find((f) => f.endsWith('.heapsnapshot'));
    if (Date.now() > until) throw new Error('no heap snapshot within 300 s');
  }
  for (const until = Date.now() + 300_000; !(await fetch(`${s.management}/health/live`).then((r) => r.ok, () => false)); await sleep(200)) {
    if (Date.now() > until) throw new Error('the service did not answer after its heap snapshot');
  }
  await s.stop();
  const summary = summariseHeap(JSON.parse(readFileSync(path.join(dir, file), 'utf8')));
  writeFileSync(path.join(profDir, 'memory.md'), heapMarkdown(`memory after every app × profile (${APPS} × 3) was read once, server.workers: 1`, summary, mem));
  return { summary, mem };
}

/** A CPU profile of one `config-init fetch` process (its main thread), sampled every 100 µs. */
async function configInitProfile() {
  const s = await startService({ workers: 1, cpus: cpu.server, name: 'prof-init' });
  const dir = path.join(work, 'prof-init');
  mkdirSync(dir, { recursive: true });
  const args = ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval', '100', INIT, 'fetch', '--server', s.origin, '--app', appName(0), '--profile', 'prod'];
  const r = await runPinned(cpu.load, process.execPath, [...args, '--cert', owner.cert, '--key', owner.key, '--ca', pki.caCert, '--output-dir', path.join(work, 'init-prof-out'), '--termination-log', '']);
  await s.stop();
  if (r.code !== 0) throw new Error(`config-init exited ${r.code}: ${r.stderr}`);
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  const summary = summarise(JSON.parse(readFileSync(path.join(dir, file), 'utf8')));
  writeFileSync(path.join(profDir, 'config-init.md'), summaryMarkdown('config-init fetch + publish, one whole process (its main thread)', summary));
  return summary;
}

/** Where one config-init process spends its busy time, by module. */
function initLine(summary) {
  const top = summary.modules.slice(0, 5).map((m) => `${m.name} ${(m.share * 100).toFixed(0)}%`).join(', ');
  return `busy ${summary.busyMs.toFixed(0)} ms of ${summary.totalMs.toFixed(0)} ms (the rest waits for the network and the server); by module, self time: ${top}`;
}

/** RSS, heap and external memory, and the largest groups of the heap snapshot. */
function memoryLine({ summary, mem }) {
  const mib = (b) => `${(b / 2 ** 20).toFixed(0)} MiB`;
  const largest = summary.groups.slice(0, 4).map((g) => `\`${g.name}\` ${mib(g.bytes)}`).join(', ');
  return `RSS ${mib(mem.rss)}: V8 heap used ${mib(mem.heapUsed)}, external (Buffers) ${mib(mem.external)}, the rest outside both (other threads' heaps: the SQLite writer, parse workers when started; compiled code; the allocator); largest in the heap: ${largest}`;
}
if (opt.profile) {
  rmSync(profDir, { recursive: true, force: true });
  mkdirSync(profDir, { recursive: true });
  const profiled = async (name, title, load) => {
    const dir = path.join(work, `prof-${name}`);
    const s = await startService({ workers: 1, cpus: cpu.server, name: `prof-${name}`, cpuProf: dir });
    const from = (Date.now() - s.spawnedAt) / 1000;
    await load(s);
    const to = (Date.now() - s.spawnedAt) / 1000;
    await s.stop();
    // One profile per thread: CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile; the main
    // thread is thread 0. The others (the audit writer, parse workers) are summarised over the
    // same window, shifted by when each thread started.
    const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
    const threadOf = (f) => Number(f.split('.')[4]);
    const read = (f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8'));
    const mainFile = files.find((f) => threadOf(f) === 0);
    if (mainFile === undefined) throw new Error(`no main-thread profile in ${dir}: ${files.join(', ')}`);
    const main = read(mainFile);
    const summary = summarise(main, { from, to });
    summary.threads = files
      .filter((f) => f !== mainFile)
      .map((f) => {
        const p = read(f);
        const shift = (p.startTime - main.startTime) / 1e6;
        const s = summarise(p, { from: from - shift, to: to - shift });
        const role = s.modules.some((m) => /sqlite-writer|better-sqlite3/.test(m.name)) ? 'audit writer (SQLite)' : s.modules.some((m) => m.name.includes('parse-worker')) ? 'document parser' : `thread ${threadOf(f)}`;
        return { role, busyMs: s.busyMs, totalMs: s.totalMs, top: s.functions.slice(0, 3) };
      })
      .filter((t) => t.busyMs > 0);
    writeFileSync(path.join(profDir, `${name}.md`), summaryMarkdown(title, summary));
    profiles.push({ name, title, summary });
  };
  log('CPU profiles of config-service (keep-alive, fresh connections, cold storm)');
  await profiled('keep-alive', 'keep-alive, 10 connections (ab -k), warm', async (s) => {
    await abRun(s, { keepAlive: true, concurrency: 10, seconds: 1 });
    await abRun(s, { keepAlive: true, concurrency: 10, seconds: 6 });
  });
  await profiled('fresh', 'fresh connection per request, 10 connections (ab), warm', async (s) => {
    await abRun(s, { keepAlive: false, concurrency: 10, seconds: 1 });
    await abRun(s, { keepAlive: false, concurrency: 10, seconds: 6 });
  });
  await profiled('storm-cold', 'deploy storm, first read of each of the 2,000 apps (fresh connections, 64 at once)', async (s) => {
    await storm(s, stormPaths);
  });
  await profiled('webhook', 'webhook to served: 5 commits, each announced by a signed webhook, then read until served', async (s) => {
    for (let i = 0; i < 5; i++) {
      const commit = commitOneApp(remote, { app: appName(i), marker: `profile-${i}-${Date.now()}` });
      const t0 = process.hrtime.bigint();
      await webhook(s);
      await pollUntil(s, configPath(i, 'prod'), (r) => r.headers['config-commit'] === commit, t0);
    }
  });
  log('memory profile: heap snapshot after every app × profile was read once');
  memory = await memoryProfile();
  log('CPU profile of one config-init run (the whole process)');
  initProfile = await configInitProfile();
}
await ceiling.stop();
await gitHttp.close();

/** The main thread's busy share of the window, its concerns at `min` or more, and the other threads' busy shares. */
function profileLine(summary, min) {
  const pct = (x) => `${(x * 100).toFixed(0)}%`;
  const concerns = summary.concerns.filter((c) => c.share >= min).sort((a, b) => b.share - a.share);
  const threads = (summary.threads ?? []).map((t) => `${t.role} thread busy ${pct(t.busyMs / t.totalMs)} of the window`);
  return [`main thread busy ${pct(summary.busyMs / summary.totalMs)} of the window, of which ${concerns.map((c) => `${c.name} ${pct(c.share)}`).join(', ') || 'no concern over the threshold'}`, ...threads].join('; ');
}

// ---------------------------------------------------------------- RESULTS.md
const versions = {
  node: process.version,
  ab: abVersion(),
  git: execFileSync('git', ['--version']).toString().trim(),
  curl: execFileSync('curl', ['--version']).toString().split('\n')[0],
  openssl: process.versions.openssl,
  commit: (() => {
    try {
      return execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD']).toString().trim() + (execFileSync('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no']).toString().trim() ? ' (with uncommitted changes)' : '');
    } catch {
      return 'unknown';
    }
  })(),
};
const fmt = (x) => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2));
const lines = [
  '# Benchmark results',
  '',
  `Written by \`pnpm bench\` (bench/run.mjs) on ${new Date().toISOString()} in ${((Date.now() - started) / 1000).toFixed(0)} s; what each figure means is in bench/README.md.`,
  '',
  `- Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} CPUs (${cpu.cpus.length} usable), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}; load average at the end ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`,
  `- Servers pinned to CPU ${cpu.server} (two workers: CPUs ${twoWorkerCpus}${cpu.sharedForTwoWorkers ? ', one of them shared with the load generator: this machine has only 2 CPUs' : ''}); load generators pinned to CPU ${cpu.load}`,
  `- Versions: Node ${versions.node} (OpenSSL ${versions.openssl}), ${versions.ab}, ${versions.git}, ${versions.curl}; config-service at ${WORKERS ? versions.commit : serviceRoot}`,
  // The load at the end counts the benchmark's own servers and clients; only the load at the
  // start says whether other jobs ran.
  ...(loadAtStart > 1.5
    ? [`- **The machine was busy with other jobs** (load average ${loadAtStart.toFixed(1)} at the start, on ${os.cpus().length} CPUs): absolute figures swing several times between runs, and so do the ratios more than on a quiet machine; each ratio is still measured against its baseline in the same round.`]
    : []),
  `- Repository: ${APPS} applications × 3 documents, ${COMMITS} commits, served over Git smart HTTP (git http-backend) and mirrored by config-service; audit store SQLite with synchronous=FULL, every event committed before its response; log level info`,
  `- Rounds: ${ROUNDS}; ab runs of ${SECONDS} s; the storm is ${APPS} fresh mTLS connections, one GET each of a different application, 64 at once (Node client, bench/lib/storm-client.mjs)`,
  '',
  '| measure | config-service ÷ baseline, median | range over rounds | baseline (median) |',
  '| --- | --- | --- | --- |',
];
for (const [key, r] of results) {
  if (r.text) continue;
  const ratios = r.rows.map((x) => x.value);
  const base = median(r.rows.map((x) => x.base));
  const baseText = key.endsWith('.cpu') || key.endsWith('cpu') ? `${fmt(base)} µs` : key.includes('.p') ? `${fmt(base)} ms` : key.startsWith('init') || key.startsWith('hook') ? `${fmt(base)} ms` : key.startsWith('rss') ? `${fmt(base)} MiB` : `${fmt(base)}/s`;
  lines.push(`| ${r.label} | ${fmt(median(ratios))}x | ${fmt(Math.min(...ratios))}–${fmt(Math.max(...ratios))} | ${baseText} |`);
}
// Targets of issue 9: met or not, and for each one missed what its profile shows.
const med = (key) => (results.has(key) ? median(results.get(key).rows.map((x) => x.value)) : undefined);
const rssAll = results.has('rss.abs') ? median(results.get('rss.abs').rows.map((x) => x.value)) : undefined;
const TARGETS = [
  ['keep-alive, 10 connections: ≥ 0.7x the ceiling’s requests/s', med('ka10.rps'), (v) => v >= 0.7, 'keep-alive'],
  ['keep-alive, 10 connections: ≤ 1.5x the ceiling’s server CPU per request', med('ka10.cpu'), (v) => v <= 1.5, 'keep-alive'],
  ['keep-alive, 50 connections: ≥ 0.7x the ceiling’s requests/s', med('ka50.rps'), (v) => v >= 0.7, 'keep-alive'],
  ['keep-alive, 50 connections: ≤ 1.5x the ceiling’s server CPU per request', med('ka50.cpu'), (v) => v <= 1.5, 'keep-alive'],
  ['fresh connection + read: ≥ 0.9x the ceiling’s rate', med('fresh10.rps'), (v) => v >= 0.9, 'fresh'],
  ['fresh connection + read: server CPU ≤ 1.15x', med('fresh10.cpu'), (v) => v <= 1.15, 'fresh'],
  ['deploy storm, first read of each app: ≥ 0.7x the ceiling’s completed/s', med('storm1.cold'), (v) => v >= 0.7, 'storm-cold'],
  ['after a commit that touches one app, the other apps’ next reads are warm (that storm ≥ 0.9x the warm storm)', med('storm1.aftercommit'), (v) => v >= 0.9, 'storm-cold'],
  ['deploy storm, server.workers 2 vs 1: ≥ 1.6x', med('storm2vs1.cold'), (v) => v >= 1.6, undefined],
  ['RSS after every app × profile was read: ≤ 200 MiB per worker (absolute, MiB)', rssAll, (v) => v <= 200, 'memory'],
  ['webhook to served, new commit: ≤ 1.0x git fetch', med('hook.commit'), (v) => v <= 1.0, 'webhook'],
  ['webhook to served, new branch: ≤ 1.0x git fetch', med('hook.branch'), (v) => v <= 1.0, 'webhook'],
  ['config-init: close to a dependency-free Node fetch-and-write (≤ 1.15x)', med('init.init'), (v) => v <= 1.15, 'config-init'],
];
lines.push('', '## Targets', '', '| target | median | met? | what limits it (profile of the service, share of its main thread) |', '| --- | --- | --- | --- |');
for (const [label, value, ok, profile] of TARGETS) {
  if (value === undefined) continue;
  const met = ok(value);
  let why = '';
  if (!met && label.includes('2 vs 1') && cpu.sharedForTwoWorkers) why = 'not measurable here: with 2 CPUs, the second worker shares the load generator’s CPU (server CPU per connection is in the table above)';
  else if (!met && profile === 'memory' && memory) why = `[memory](profiles/memory.md): ${memoryLine(memory)}`;
  else if (!met && profile === 'config-init' && initProfile) why = `[config-init](profiles/config-init.md): ${initLine(initProfile)}`;
  else if (!met && profile) {
    const p = profiles.find((x) => x.name === profile);
    if (p) why = `[${profile}](profiles/${profile}.md): ${profileLine(p.summary, 0.03)}`;
  }
  lines.push(`| ${label} | ${fmt(value)}${label.includes('MiB') ? ' MiB' : 'x'} | ${met ? 'met' : '**missed**'} | ${why} |`);
}
if (profiles.length > 0) {
  lines.push('', 'Profiles (`node --cpu-prof`, summarised by bench/lib/profile-summary.mjs; the whole tables are in bench/profiles/):', '');
  for (const p of profiles) {
    const top = p.summary.functions.slice(0, 5).map((f) => `\`${f.name}\` ${(f.share * 100).toFixed(1)}%`).join(', ');
    lines.push(`- ${p.title}: ${profileLine(p.summary, 0.01)}; top functions of the main thread (self time): ${top}`);
  }
  if (memory) lines.push(`- memory (heap snapshot, bench/lib/heap-summary.mjs), after every app × profile was read once: ${memoryLine(memory)}`);
  if (initProfile) lines.push(`- config-init fetch + publish, one whole process: ${initLine(initProfile)}`);
}
lines.push('', 'Absolute figures per round (unreliable on a shared machine; read the ratios):', '');
for (const [, r] of results) {
  if (!r.text) continue;
  lines.push(`- ${r.label}: ${r.rows.map((x, i) => `round ${i + 1}: ${x.text}`).join('; ')}`);
}
writeFileSync(opt.out, `${lines.join('\n')}\n`);
log(`wrote ${path.relative(process.cwd(), opt.out)}`);
process.stdout.write(`${lines.join('\n')}\n`);
