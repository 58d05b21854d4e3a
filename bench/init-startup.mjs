#!/usr/bin/env node
// Start-up cost of config-init (SPEC §11: it must stay close to a dependency-free Node
// fetch-and-write). Wall time of whole processes, as ratios against `node -e 0` measured
// in the same run:
//   node -e 0                      the floor
//   config-init --version          loading the bundle
//   config-init fetch (1 format)   a complete mTLS fetch and atomic publish against a
//                                  running config-service on this machine
// each for the bundle (`node dist/config-init.mjs`) and the single executable
// (`dist/sea/config-init`, SPEC §7), with the size of both files.
// Usage: pnpm build && pnpm --filter config-init build:sea && node bench/init-startup.mjs [--runs 30]
import { spawn, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { pino } = createRequire(path.join(root, 'test/package.json'))('pino');
const svc = await import(path.join(root, 'packages/config-service/dist/index.js'));
const INIT = path.join(root, 'packages/config-init/dist/config-init.mjs');
const SEA = path.join(root, 'packages/config-init/dist/sea/config-init');
if (!existsSync(SEA)) throw new Error(`${SEA} is missing: run \`npx -y pnpm@10.34.9 --filter config-init build:sea\` first`);
const { values } = parseArgs({ options: { runs: { type: 'string', default: '30' } } });
const RUNS = Number(values.runs);

const work = mkdtempSync(path.join(os.tmpdir(), 'bench-init-'));
const repo = path.join(work, 'repo');
cpSync(path.join(root, 'examples/config-repo'), repo, { recursive: true });
const env = { ...process.env, GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@b', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@b' };
execFileSync('git', ['init', '-q', '-b', 'main', repo]);
execFileSync('git', ['-C', repo, 'add', '-A'], { env });
execFileSync('git', ['-C', repo, 'commit', '-q', '-m', 'bench'], { env });
const pkiDir = path.join(work, 'pki');
const files = await svc.initPki(pkiDir);
const client = await svc.issueClientFiles(pkiDir, 'orders');
const settings = svc.loadSettings({
  env: {},
  overrides: {
    server: { host: '127.0.0.1', port: 0, tls: { cert: files.serverCert, key: files.serverKey, clientCa: files.caCert }, rateLimit: { max: 0 } },
    management: { host: '127.0.0.1', port: 0 },
    dataDir: path.join(work, 'data'),
    repositories: [{ name: 'config', path: repo }],
    log: { level: 'warn' },
  },
});
const service = await svc.startService(settings, { logger: pino({ level: 'warn' }) });

// The service runs in this process, so children are awaited, never run synchronously.
function run(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr}`))));
  });
}

async function median(cmd, args) {
  const times = [];
  for (let i = 0; i < RUNS; i++) {
    const t = process.hrtime.bigint();
    await run(cmd, args);
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

try {
  const out = path.join(work, 'out');
  const floor = await median(process.execPath, ['-e', '0']);
  const fetchArgs = ['fetch', '--server', service.apiUrl, '--app', 'orders', '--profile', 'prod',
    '--cert', client.cert, '--key', client.key, '--ca', files.caCert, '--output-dir', out, '--termination-log', ''];
  // Interleaved, so load changes during the run hit both builds alike.
  const version = await median(process.execPath, [INIT, '--version']);
  const seaVersion = await median(SEA, ['--version']);
  const fetch = await median(process.execPath, [INIT, ...fetchArgs]);
  const seaFetch = await median(SEA, fetchArgs);
  const kib = (f) => `${(statSync(f).size / 1024).toFixed(0)} KiB`;
  const mib = (f) => `${(statSync(f).size / 1024 / 1024).toFixed(1)} MiB`;
  const row = (name, ms) => console.log(`${name.padEnd(42)}${ms.toFixed(1).padStart(7)} ms  ${(ms / floor).toFixed(2)}x`);
  console.log(`runs: ${RUNS} each (median wall time); bundle ${kib(INIT)} (plus node, ${mib(process.execPath)}); single executable ${mib(SEA)}`);
  row('node -e 0', floor);
  row('config-init --version (bundle)', version);
  row('config-init --version (single executable)', seaVersion);
  row('config-init fetch + publish (bundle)', fetch);
  row('config-init fetch + publish (single executable)', seaFetch);
} finally {
  await service.close();
}
