#!/usr/bin/env node
// The audit path alone (issue 9), in-process: append an event to the SQLite store (WAL,
// synchronous=FULL, every event committed before the "response") and write its log line,
// with C events in flight at once, as concurrent requests do. Three variants, measured in
// the same run, rounds interleaved:
//   old          – the audit store of a baseline commit (better-sqlite3 transaction on the
//                  event loop) and the log line as before: pino serialises the event object
//                  and applies the baseline's redaction paths (its logger.ts, bundled too)
//   worker       – this build's store (a writer thread owns the connection), old log line
//   worker+raw   – this build's store and its log line written from the stored text
// For each: events/s and event-loop busy time per event (performance.eventLoopUtilization,
// the main thread only), and the ratios to `old` per round.
// Usage: pnpm build && node bench/audit-path.mjs [--events 20000] [--concurrency 32] [--rounds 3] [--baseline <git ref>]
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '3' },
    baseline: { type: 'string', default: 'fed5eb6' },
  },
});
const EVENTS = Number(values.events);
const CONCURRENCY = Number(values.concurrency);
const ROUNDS = Number(values.rounds);

const requireFromService = createRequire(path.join(root, 'packages/config-service/package.json'));
const { pino } = requireFromService('pino');
const svcDist = path.join(root, 'packages/config-service/dist');
const current = await import(pathToFileURL(path.join(svcDist, 'audit/index.js')).href);
const { loggerOptions } = await import(pathToFileURL(path.join(svcDist, 'logger.js')).href);
const { eventLogJson, storedEventJson } = await import(pathToFileURL(path.join(svcDist, 'audit/event-json.js')).href);
const { eventBodyJson } = await import(pathToFileURL(path.join(svcDist, 'audit/chain.js')).href);

// The baseline's audit module, bundled from its sources at that commit (dependencies resolved
// from this checkout's config-service package).
const work = mkdtempSync(path.join(os.tmpdir(), 'bench-audit-path-'));
const src = path.join(work, 'src');
mkdirSync(src);
execFileSync('sh', ['-c', `git -C "${root}" archive ${values.baseline} packages/config-service/src | tar -x -C "${src}"`]);
const { build } = await import('esbuild');
const baselineOut = path.join(work, 'baseline');
await build({
  // The audit module and the logger options (pino redaction paths then) of the baseline.
  entryPoints: { audit: path.join(src, 'packages/config-service/src/audit/index.ts'), logger: path.join(src, 'packages/config-service/src/logger.ts') },
  bundle: true,
  platform: 'node',
  format: 'esm',
  outdir: baselineOut,
  outExtension: { '.js': '.mjs' },
  logLevel: 'error',
  plugins: [
    {
      name: 'deps-from-checkout',
      setup(b) {
        b.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith('node:') ? { external: true } : { path: requireFromService.resolve(args.path), external: true }));
      },
    },
  ],
});
const baseline = await import(pathToFileURL(path.join(baselineOut, 'audit.mjs')).href);
const baselineLogger = await import(pathToFileURL(path.join(baselineOut, 'logger.mjs')).href);

function event(i) {
  return {
    time: new Date().toISOString(),
    requestId: `req-${i}`,
    actor: { kind: 'certificate', subject: 'orders', fingerprint256: 'ab'.repeat(32), issuer: 'CN=Test CA,O=Example' },
    clientAddress: '10.0.0.1',
    action: 'config.read',
    app: 'orders',
    profiles: ['prod'],
    ref: 'main',
    commit: 'c0ffee'.padEnd(40, '0'),
    format: 'json',
    outcome: 'allowed',
    status: 200,
    secretKeys: ['spring.datasource.password'],
    bodySha256: 'cd'.repeat(32),
    durationMs: 1.5,
  };
}

/** One run: EVENTS appends with CONCURRENCY in flight, each followed by its log line. */
async function run(variant) {
  const dir = mkdtempSync(path.join(work, `${variant}-`));
  const file = path.join(dir, 'audit.sqlite');
  const store = variant === 'old' ? baseline.openSqliteAuditStore({ path: file }) : current.openSqliteAuditStore({ path: file });
  // The old log line goes through the baseline's logger options (path redaction); the raw
  // one through this build's (serializers of known keys, none of them `audit`).
  const options = variant === 'worker+raw' ? loggerOptions('info') : baselineLogger.loggerOptions('info');
  const logger = pino(options, pino.destination({ dest: '/dev/null', sync: false }));
  const raw = current.rawJsonLogger(logger);
  const logOld = (e) => logger.info({ reqId: e.requestId, audit: e }, 'audit event');
  const logRaw = (e) => current.logAuditEvent(raw, e.requestId, eventLogJson(storedEventJson(e) ?? eventBodyJson(e), e.prevHash, e.hash));
  const log = variant === 'worker+raw' ? logRaw : logOld;
  // Warm-up (and the writer thread's start) outside the measurement.
  for (let i = 0; i < 200; i++) log(await store.append(event(-i)));
  let next = 0;
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < EVENTS) {
        const e = await store.append(event(next++));
        log(e);
      }
    }),
  );
  const ms = performance.now() - t0;
  const elu = performance.eventLoopUtilization(elu0);
  const transactions = store.stats.transactions;
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  return { eventsPerSec: EVENTS / (ms / 1000), busyUsPerEvent: (elu.active * 1000) / EVENTS, eventsPerTxn: (EVENTS + 200) / transactions };
}

const variants = ['old', 'worker', 'worker+raw'];
const results = Object.fromEntries(variants.map((v) => [v, []]));
for (let r = 0; r < ROUNDS; r++) for (const v of variants) results[v].push(await run(v));
rmSync(work, { recursive: true, force: true });

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;
const fmt = (n, d = 0) => n.toFixed(d);
process.stdout.write(`audit path: ${EVENTS} events, ${CONCURRENCY} in flight, ${ROUNDS} rounds, baseline ${values.baseline}, node ${process.version}, ${os.cpus().length} CPUs\n\n`);
process.stdout.write('| variant | events/s (median) | ratio to old (per round) | event-loop busy µs/event (median) | ratio to old (per round) | events per transaction |\n');
process.stdout.write('| --- | --- | --- | --- | --- | --- |\n');
for (const v of variants) {
  const rs = results[v];
  const rate = rs.map((x, i) => x.eventsPerSec / results.old[i].eventsPerSec);
  const busy = rs.map((x, i) => x.busyUsPerEvent / results.old[i].busyUsPerEvent);
  process.stdout.write(
    `| ${v} | ${fmt(median(rs.map((x) => x.eventsPerSec)))} | ${fmt(median(rate), 2)}x (${spread(rate)}) | ${fmt(median(rs.map((x) => x.busyUsPerEvent)), 1)} | ${fmt(median(busy), 2)}x (${spread(busy)}) | ${fmt(median(rs.map((x) => x.eventsPerTxn)), 1)} |\n`,
  );
}
