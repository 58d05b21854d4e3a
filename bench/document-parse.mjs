// Where to parse a document: on the event loop, or in a worker thread?
// For Spring-style YAML documents of growing size: the time one parse holds the thread
// that runs it (median of warm runs), and the time a worker parse takes end to end (a
// warm pool: copy in, parse, clone the result back). Run `pnpm build` first.
//
//   node bench/document-parse.mjs [--runs 15]
import { parseArgs } from 'node:util';
import { DocumentParserPool } from '../packages/config-service/dist/document-parser.js';
import { parseDocument } from '../packages/config-service/dist/config/parse.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '15' } } });
const runs = Number(values.runs);

/** A Spring Boot-like document of about `kib` KiB. */
function document(kib) {
  const parts = ['app:'];
  for (let i = 0; parts.join('\n').length < kib * 1024; i++) {
    parts.push(`  feature${i}:\n    enabled: true\n    url: http://svc-${i}.example.com:8080/path\n    timeouts: [100, 200, 300]`);
  }
  return Buffer.from(`${parts.join('\n')}\n`);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const limits = { maxBytes: 16 * 1024 * 1024, maxDepth: 64, maxKeys: 100_000, maxAliases: 1_000 };
// Threshold 0: every parse goes to a worker.
const pool = new DocumentParserPool({ ...limits, parseTimeoutMs: 60_000, workerThresholdBytes: 0, workers: 1, workerMemoryMb: 1024 });
await pool.parse({ path: 'warm/application.yml', bytes: document(4) });

console.log('| KiB | inline parse, ms (event loop held) | worker parse end to end, ms | inline / worker |');
console.log('| --- | --- | --- | --- |');
for (const kib of [4, 16, 64, 256, 1024]) {
  const bytes = document(kib);
  const inline = [];
  const worker = [];
  for (let i = 0; i < runs + 3; i++) {
    let t = performance.now();
    parseDocument({ path: 'a/application.yml', bytes, limits });
    if (i >= 3) inline.push(performance.now() - t);
    t = performance.now();
    await pool.parse({ path: 'a/application.yml', bytes });
    if (i >= 3) worker.push(performance.now() - t);
  }
  const a = median(inline);
  const b = median(worker);
  console.log(`| ${kib} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${(a / b).toFixed(2)} |`);
}
await pool.close();
