#!/usr/bin/env node
// Throughput of GET /v1/apps/{app}/config over mTLS, as a ratio against a baseline run in
// the same process: a bare Fastify HTTPS server with the same TLS settings returning the
// same bytes from memory (SPEC §11's ceiling). Three runs of config-service:
//   warm   – rendered-response cache on (the default)
//   nocache – rendered-response cache off: every request resolves the ref, reads trees
//             and blobs from Git (parsed documents stay cached by blob id) and renders
//   ceiling – the baseline
// Usage: pnpm build && node bench/serve.mjs [--requests 4000] [--connections 8]
// Figures are ratios; absolute numbers swing with the machine.
import { mkdtempSync, writeFileSync, mkdirSync, cpSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const requireFromTest = createRequire(path.join(root, 'test/package.json'));
const requireFromService = createRequire(path.join(root, 'packages/config-service/package.json'));
const { Pool } = requireFromTest('undici');
const { pino } = requireFromTest('pino');
const Fastify = requireFromService('fastify');
const svc = await import(path.join(root, 'packages/config-service/dist/index.js'));

const { values } = parseArgs({ options: { requests: { type: 'string', default: '4000' }, connections: { type: 'string', default: '8' } } });
const REQUESTS = Number(values.requests);
const CONNECTIONS = Number(values.connections);

const work = mkdtempSync(path.join(os.tmpdir(), 'bench-serve-'));
const repo = path.join(work, 'repo');
cpSync(path.join(root, 'examples/config-repo'), repo, { recursive: true });
const git = (...args) => execFileSync('git', ['-C', repo, ...args], { env: { ...process.env, GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@b', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@b' } });
execFileSync('git', ['init', '-q', '-b', 'main', repo]);
git('add', '-A');
git('commit', '-q', '-m', 'bench');

const pkiDir = path.join(work, 'pki');
mkdirSync(pkiDir);
const files = await svc.initPki(pkiDir);
const client = await svc.issueClientFiles(pkiDir, 'orders');
const { readFileSync } = await import('node:fs');
const tls = { ca: readFileSync(files.caCert, 'utf8'), cert: readFileSync(client.cert, 'utf8'), key: readFileSync(client.key, 'utf8') };
const PATH = '/v1/apps/orders/config?profile=prod&format=properties';

async function load(url) {
  const pool = new Pool(url, { connections: CONNECTIONS, connect: { ...tls, servername: 'localhost' } });
  const one = async () => {
    const res = await pool.request({ path: PATH, method: 'GET' });
    await res.body.arrayBuffer();
    if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
  };
  for (let i = 0; i < 200; i++) await one(); // warm-up: handshakes, JIT
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: CONNECTIONS * 4 }, async () => {
    while (next++ < REQUESTS) await one();
  }));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await pool.close();
  return REQUESTS / seconds;
}

async function runService(cacheEntries) {
  const settings = svc.loadSettings({
    env: {},
    overrides: {
      server: { host: '127.0.0.1', port: 0, tls: { cert: files.serverCert, key: files.serverKey, clientCa: files.caCert }, rateLimit: { max: 0 } },
      management: { host: '127.0.0.1', port: 0 },
      dataDir: path.join(work, `data-${cacheEntries}`),
      repositories: [{ name: 'config', path: repo }],
      cache: { maxEntries: cacheEntries },
      log: { level: 'warn' },
    },
  });
  const service = await svc.startService(settings, { logger: pino({ level: 'warn' }) });
  try {
    const rate = await load(service.apiUrl);
    const stats = service.api.auditStore.stats;
    console.log(`  audit: ${stats.events} events in ${stats.transactions} transactions (largest batch ${stats.maxBatchSize})`);
    return rate;
  } finally {
    await service.close();
  }
}

async function runCeiling(body) {
  const app = Fastify({ https: { cert: readFileSync(files.serverCert), key: readFileSync(files.serverKey), ca: readFileSync(files.caCert), requestCert: true, rejectUnauthorized: false } });
  app.get('/v1/apps/:app/config', async (_req, reply) => reply.type('text/x-java-properties; charset=utf-8').send(body));
  await app.listen({ host: '127.0.0.1', port: 0 });
  try {
    return await load(`https://127.0.0.1:${app.server.address().port}`);
  } finally {
    await app.close();
  }
}

const body = Buffer.from('x'.repeat(655));
const ceiling = await runCeiling(body);
const warm = await runService(5000);
const nocache = await runService(0);
const fmt = (n) => `${n.toFixed(0).padStart(7)} req/s`;
console.log(`requests per run: ${REQUESTS}, connections: ${CONNECTIONS}`);
console.log(`ceiling (Fastify, bytes from memory) ${fmt(ceiling)}  1.00x`);
console.log(`config-service, warm cache           ${fmt(warm)}  ${(warm / ceiling).toFixed(2)}x`);
console.log(`config-service, no response cache    ${fmt(nocache)}  ${(nocache / ceiling).toFixed(2)}x`);
