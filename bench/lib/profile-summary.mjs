#!/usr/bin/env node
// Summarises a V8 CPU profile (`node --cpu-prof`): where the main thread's time went in a
// window, by function (self time), by module or package (self time), and the inclusive
// time of a few concerns (a frame and everything it called).
// Usage: node profile-summary.mjs <file.cpuprofile> [--from <s>] [--to <s>] [--top <n>]
//   --from/--to: seconds after the profile started (default: all of it)
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

/** Where a frame belongs: an npm package, a module of this repository, or Node itself. */
export function moduleOf(url) {
  if (!url) return '(native / V8)';
  const pkg = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  const own = /packages\/config-service\/dist\/(.+)$/.exec(url);
  if (own) return `config-service/${own[1].replace(/\.js$/, '')}`;
  const init = /packages\/config-init\/dist\/(.+)$/.exec(url);
  if (init) return `config-init/${init[1].replace(/\.m?js$/, '')}`;
  if (url.startsWith('node:')) return url.replace(/^node:(internal\/)?/, 'node:').split('/').slice(0, 2).join('/');
  return url.split('/').slice(-2).join('/');
}

/** Concerns counted with their callees: the innermost matching frame of a sample wins. */
export const CONCERNS = [
  ['audit store commit', (f) => /audit\/(sqlite-store|sqlite-writer|sqlite-protocol|postgres-store|commit-queue|chain|event-json|log-line)|better-sqlite3/.test(f.url)],
  ['logging (pino, redaction)', (f) => /node_modules\/.*\/(pino|@pinojs|pino-std-serializers|sonic-boom|fast-redact)\//.test(f.url) || /dist\/logger\.js/.test(f.url)],
  ['peer certificate, identity', (f) => /auth\/identity|peer-trust|@peculiar|asn1js|pvtsutils|tsyringe/.test(f.url) || f.functionName === 'getPeerCertificate' || f.functionName === 'getPeerX509Certificate'],
  ['Git (isomorphic-git reads and fetches, pack reader, mirror checks)', (f) => /isomorphic-git|pako|git\/(repository|pack-reader|mirror|mirror-fetch|mirror-integrity)/.test(f.url)],
  ['parse, merge, render', (f) => /dist\/config\/|yaml\/dist/.test(f.url)],
  ['rate limit', (f) => /@fastify\/rate-limit|toad-cache/.test(f.url)],
  ['TLS (node:_tls_wrap, node:tls)', (f) => /^node:(_tls_wrap|tls|_tls_common)/.test(f.url)],
  ['HTTP and Fastify (routing, hooks, replies)', (f) => /node_modules\/.*\/(fastify|find-my-way|light-my-request|avvio|fast-json-stringify)\/|^node:_http/.test(f.url)],
  ['garbage collection', (f) => f.functionName === '(garbage collector)'],
];

export function summarise(profile, { from, to, top = 30 } = {}) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map();
  let t = 0;
  profile.samples.forEach((id, i) => {
    t += profile.timeDeltas[i] ?? 0;
    const s = t / 1e6;
    if ((from !== undefined && s < from) || (to !== undefined && s > to)) return;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0));
  });
  let total = 0;
  let idle = 0;
  const byFn = new Map();
  const byModule = new Map();
  const byConcern = new Map(CONCERNS.map(([name]) => [name, 0]));
  for (const [id, us] of selfUs) {
    const n = nodes.get(id);
    const f = n.callFrame;
    total += us;
    if (f.functionName === '(idle)') {
      idle += us;
      continue;
    }
    const fn = `${f.functionName || '(anonymous)'} (${moduleOf(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''})`;
    byFn.set(fn, (byFn.get(fn) ?? 0) + us);
    const mod = moduleOf(f.url);
    byModule.set(mod, (byModule.get(mod) ?? 0) + us);
    // The innermost frame on this sample's stack that belongs to a concern (so native
    // callees count for the concern that called them).
    let hit;
    for (let cur = id; cur !== undefined && hit === undefined; cur = parent.get(cur)) {
      const frame = nodes.get(cur).callFrame;
      hit = CONCERNS.find(([, test]) => test(frame))?.[0];
    }
    if (hit) byConcern.set(hit, byConcern.get(hit) + us);
  }
  const busy = total - idle;
  const rows = (map) => [...map].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, us]) => ({ name: k, ms: us / 1000, share: us / busy }));
  return { totalMs: total / 1000, busyMs: busy / 1000, functions: rows(byFn), modules: rows(byModule), concerns: [...byConcern].map(([k, us]) => ({ name: k, ms: us / 1000, share: us / busy })) };
}

/** Markdown of a summary. */
export function summaryMarkdown(title, s, top = 20) {
  const pct = (x) => `${(x * 100).toFixed(1)}%`;
  const lines = [`#### ${title}`, '', `Main thread busy ${s.busyMs.toFixed(0)} ms of ${s.totalMs.toFixed(0)} ms sampled.`, ''];
  lines.push('| concern (with its callees) | share of busy time |', '| --- | --- |');
  for (const c of s.concerns) lines.push(`| ${c.name} | ${pct(c.share)} |`);
  lines.push('', '| module (self time) | share |', '| --- | --- |');
  for (const m of s.modules.slice(0, 12)) lines.push(`| ${m.name} | ${pct(m.share)} |`);
  lines.push('', '| function (self time) | share |', '| --- | --- |');
  for (const f of s.functions.slice(0, top)) lines.push(`| \`${f.name.replace(/\|/g, '\\|')}\` | ${pct(f.share)} |`);
  if (s.threads?.length) {
    lines.push('', 'Other threads of the process over the same window (busy time, top functions by self time):', '');
    for (const t of s.threads) lines.push(`- ${t.role}: busy ${t.busyMs.toFixed(0)} ms of ${t.totalMs.toFixed(0)} ms; ${t.top.map((f) => `\`${f.name}\` ${pct(f.share)}`).join(', ')}`);
  }
  return `${lines.join('\n')}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { from: { type: 'string' }, to: { type: 'string' }, top: { type: 'string', default: '30' } } });
  const profile = JSON.parse(readFileSync(positionals[0], 'utf8'));
  const s = summarise(profile, { from: values.from && Number(values.from), to: values.to && Number(values.to), top: Number(values.top) });
  process.stdout.write(summaryMarkdown(positionals[0], s, Number(values.top)));
}
