#!/usr/bin/env node
// Summarises a V8 heap snapshot (`node --heapsnapshot-signal`, or any .heapsnapshot): the
// self size of every object grouped by what it is (constructor name for objects, the node
// type for strings, code, arrays and native memory), largest first. A heap snapshot holds
// the JavaScript heap and the native memory V8 knows of (ArrayBuffer backing stores), not
// the whole RSS; the caller compares it with the RSS.
// Usage: node heap-summary.mjs <file.heapsnapshot> [--top <n>]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

/** @returns { totalBytes, groups: [{ name, bytes, count }] } sorted by bytes. */
export function summariseHeap(snapshot, top = 20) {
  const meta = snapshot.snapshot.meta;
  const fields = meta.node_fields;
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const types = meta.node_types[typeAt];
  const { nodes, strings } = snapshot;
  const groups = new Map();
  let total = 0;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt]];
    const size = nodes[i + sizeAt];
    total += size;
    // Objects and closures by constructor (or function) name; the rest by their type.
    const name = type === 'object' || type === 'closure' || type === 'native' ? `${type} ${strings[nodes[i + nameAt]]}` : type;
    const g = groups.get(name) ?? { name, bytes: 0, count: 0 };
    g.bytes += size;
    g.count += 1;
    groups.set(name, g);
  }
  return { totalBytes: total, groups: [...groups.values()].sort((a, b) => b.bytes - a.bytes).slice(0, top) };
}

/** Markdown of a summary, with the process's RSS and heap figures for scale. */
export function heapMarkdown(title, s, memory) {
  const mib = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const lines = [`#### ${title}`, ''];
  if (memory) lines.push(`RSS ${mib(memory.rss)}; V8 heap used ${mib(memory.heapUsed)}; external (Buffers, ArrayBuffers) ${mib(memory.external)}.`, '');
  lines.push(`Heap snapshot: ${mib(s.totalBytes)} of objects.`, '', '| what (self size) | MiB | objects |', '| --- | --- | --- |');
  for (const g of s.groups) lines.push(`| \`${g.name.replace(/\|/g, '\\|').slice(0, 80)}\` | ${(g.bytes / 2 ** 20).toFixed(1)} | ${g.count} |`);
  return `${lines.join('\n')}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '20' } } });
  const s = summariseHeap(JSON.parse(readFileSync(positionals[0], 'utf8')), Number(values.top));
  process.stdout.write(heapMarkdown(positionals[0], s));
}
