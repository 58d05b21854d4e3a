/**
 * AppConfigReader and its document parser (issue 7): one parse per blob however many
 * requests read it at once, a document error remembered by blob id (with the commit of
 * each request), and errors that depend on the machine's load (worker deadline and heap)
 * never remembered. The repository is a real working tree read through DirectorySource.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppConfigReader, type DocumentParser } from '../../src/config/app-config.js';
import { limitError } from '../../src/config/limits.js';
import { parseDocument } from '../../src/config/parse.js';
import { DirectorySource } from '../../src/validate/directory-source.js';

let dir: string;
let source: DirectorySource;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'app-config-'));
  mkdirSync(path.join(dir, 'orders'));
  mkdirSync(path.join(dir, 'broken'));
  writeFileSync(path.join(dir, 'orders', 'application.yml'), 'a: 1\n');
  writeFileSync(path.join(dir, 'broken', 'application.yml'), 'a: 1\na: 2\n');
  source = await DirectorySource.open(dir);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Thrown = Error & { code?: string; data?: Record<string, unknown> };

/** The error `p` rejects with (fails the test when it resolves). */
async function rejection(p: Promise<unknown>): Promise<Thrown> {
  try {
    await p;
  } catch (e) {
    return e as Thrown;
  }
  throw new Error('expected a rejection');
}

/** A parser that records each call and answers when `release` is called. */
function gatedParser(): { parse: DocumentParser; calls: string[]; release: () => void } {
  const calls: string[] = [];
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  return {
    calls,
    release: () => open(),
    parse: async (input) => {
      calls.push(input.path);
      await gate;
      return parseDocument(input);
    },
  };
}

describe('AppConfigReader document parsing', () => {
  it('keeps parsed documents within parsedCacheBytes (estimated at 16 bytes per byte of text)', async () => {
    const calls: string[] = [];
    const parse: DocumentParser = async (input) => {
      calls.push(input.path);
      return parseDocument(input);
    };
    // 'a: 1\n' is 5 bytes: 5 * 16 + 512 = 592 estimated; room for one document, not two.
    const tight = new AppConfigReader(source, 'folders', { parse, parsedCacheBytes: 1200 });
    await tight.read('c1', 'orders', []);
    await tight.read('c1', 'orders', []);
    expect(calls).toEqual(['orders/application.yml']);
    await rejection(tight.read('c1', 'broken', [])); // an error entry (1024) evicts the document
    await tight.read('c1', 'orders', []);
    expect(calls).toEqual(['orders/application.yml', 'broken/application.yml', 'orders/application.yml']);
    calls.length = 0;
    const roomy = new AppConfigReader(source, 'folders', { parse, parsedCacheBytes: 10_000 });
    await roomy.read('c1', 'orders', []);
    await rejection(roomy.read('c1', 'broken', []));
    await roomy.read('c1', 'orders', []);
    expect(calls).toEqual(['orders/application.yml', 'broken/application.yml']);
  });

  it('parses a blob once for concurrent reads, then serves it from the cache', async () => {
    const p = gatedParser();
    const reader = new AppConfigReader(source, 'folders', { parse: p.parse });
    const reads = [reader.read('c1', 'orders', []), reader.read('c1', 'orders', []), reader.read('c2', 'orders', [])];
    await new Promise((r) => setTimeout(r, 20));
    p.release();
    const results = await Promise.all(reads);
    expect(results.map((r) => [...r.merged.values()].map((m) => [m.path, m.value]))).toEqual(Array(3).fill([[['a'], { kind: 'number', text: '1' }]]));
    await reader.read('c3', 'orders', []);
    expect(p.calls).toEqual(['orders/application.yml']);
  });

  it('remembers a document error by blob id and names the commit of each request', async () => {
    let calls = 0;
    const reader = new AppConfigReader(source, 'folders', {
      parse: async (input) => {
        calls++;
        return parseDocument(input);
      },
    });
    const first = await rejection(reader.read('c1', 'broken', []));
    const second = await rejection(reader.read('c2', 'broken', []));
    expect([first.code, first.message, first.data]).toEqual([
      'CFG_ERR_DOCUMENT_INVALID',
      'broken/application.yml:2:1: duplicate key "a" (commit c1)',
      { document: 'broken/application.yml', line: 2, column: 1, commit: 'c1' },
    ]);
    expect([second.code, second.message]).toEqual(['CFG_ERR_DOCUMENT_INVALID', 'broken/application.yml:2:1: duplicate key "a" (commit c2)']);
    expect(calls).toBe(1);
  });

  it('never remembers a worker deadline or heap error (they depend on the load, not the bytes)', async () => {
    let calls = 0;
    const reader = new AppConfigReader(source, 'folders', {
      parse: async (input) => {
        calls++;
        throw limitError({ document: input.path }, 'parseTimeoutMs', 20_000, 'the time to parse (waiting for a free worker included)', '(the worker was stopped)');
      },
    });
    for (const commit of ['c1', 'c2']) {
      const err = await rejection(reader.read(commit, 'orders', []));
      expect([err.code, err.message, err.data?.limit, err.data?.commit]).toEqual([
        'CFG_ERR_DOCUMENT_LIMIT_EXCEEDED',
        `orders/application.yml: the time to parse (waiting for a free worker included) exceeds documents.parseTimeoutMs = 20000 (the worker was stopped) (commit ${commit})`,
        'documents.parseTimeoutMs',
        commit,
      ]);
    }
    expect(calls).toBe(2);
  });
});

describe('which folders are applications', () => {
  it('only folders holding documents, a schema.json or raw files; docs/, scripts/ and .github/ are not', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'apps-'));
    const files: Record<string, string> = {
      'application.yml': 'shared: 1\n',
      'orders/application.yml': 'a: 1\n',
      'billing/application-prod.properties': 'a=1\n',
      'schemas-only/schema.json': '{}\n',
      'static/files/logback.xml': '<configuration/>\n',
      'per-profile/files-prod/x.txt': 'x\n',
      'docs/README.md': '# How to use this repository\n',
      'docs/application-notes.txt': 'not a document\n',
      'scripts/check.sh': 'true\n',
      '.github/workflows/ci.yml': 'on: push\n',
      'nested/sub/application.yml': 'a: 1\n',
    };
    for (const [p, c] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
      writeFileSync(path.join(root, p), c);
    }
    const reader = new AppConfigReader(await DirectorySource.open(root), 'folders');
    expect(await reader.listApps('w')).toEqual(['billing', 'orders', 'per-profile', 'schemas-only', 'static']);
    for (const app of ['docs', 'scripts', 'nested', 'github']) expect(await reader.appExists('w', app)).toBe(false);
    await expect(reader.read('w', 'docs', [])).rejects.toMatchObject({ code: 'CFG_ERR_APP_NOT_FOUND' });
    // A folder with only a schema is an application: it is served the shared defaults.
    expect((await reader.read('w', 'schemas-only', [])).merged.get(JSON.stringify(['shared']))?.value).toEqual({ kind: 'number', text: '1' });
    rmSync(root, { recursive: true, force: true });
  });
});
