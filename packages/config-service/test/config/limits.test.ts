/**
 * The `documents:` limits (issue 7): bytes, nesting depth, keys and alias expansions, each
 * with its exact message and position, and the linear duplicate-key check that replaced
 * the `yaml` library's quadratic `uniqueKeys`.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_DOCUMENT_LIMITS, type DocumentLimits } from '../../src/config/limits.js';
import { parseDocument } from '../../src/config/parse.js';
import parseInWorker from '../../src/config/parse-worker.js';
import type { ParsedDocument } from '../../src/config/types.js';
import { bytes } from './helpers.js';

type Thrown = Error & { code?: string; data?: Record<string, unknown> };

function parse(text: string, path = 'orders/application.yml', limits: Partial<DocumentLimits> = {}): ParsedDocument {
  return parseDocument({ path, bytes: bytes(text), limits: { ...DEFAULT_DOCUMENT_LIMITS, ...limits } });
}

function thrown(fn: () => unknown): Thrown {
  try {
    fn();
  } catch (e) {
    return e as Thrown;
  }
  throw new Error('expected an error');
}

/** The error of parsing `text`: code, message and data in one object, for one exact assertion. */
function failure(text: string, path = 'orders/application.yml', limits: Partial<DocumentLimits> = {}): { code?: string; message: string; data?: Record<string, unknown> } {
  const e = thrown(() => parse(text, path, limits));
  return { code: e.code, message: e.message, data: e.data };
}

const LIMIT = 'CFG_ERR_DOCUMENT_LIMIT_EXCEEDED';

describe('documents.maxBytes', () => {
  it('refuses a file over the limit before decoding it, naming the byte offset', () => {
    expect(failure('a: 1\n', 'orders/application.yml', { maxBytes: 4 })).toEqual({
      code: LIMIT,
      message: 'orders/application.yml: 5 bytes exceeds documents.maxBytes = 4 (crossed at byte offset 4)',
      data: { document: 'orders/application.yml', offset: 4, limit: 'documents.maxBytes', value: 4 },
    });
    expect(failure('a=1\n', 'orders/application.properties', { maxBytes: 3 }).message).toBe(
      'orders/application.properties: 4 bytes exceeds documents.maxBytes = 3 (crossed at byte offset 3)',
    );
  });

  it('reads a file of exactly maxBytes', () => {
    expect(parse('a: 1\n', 'orders/application.yml', { maxBytes: 5 }).sources[0]?.source.entries).toHaveLength(1);
  });

  it('defaults to 16 MiB, 64 levels, 100000 keys, 1000 alias expansions', () => {
    expect(DEFAULT_DOCUMENT_LIMITS).toEqual({ maxBytes: 16_777_216, maxDepth: 64, maxKeys: 100_000, maxAliases: 1_000 });
  });
});

describe('documents.maxDepth', () => {
  it('stops 300,000 levels of JSON arrays at the 65th level, before the composer recurses', () => {
    const json = `{"a":${'['.repeat(300_000)}${']'.repeat(300_000)}}`;
    expect(failure(json, 'orders/application.json')).toEqual({
      code: LIMIT,
      message: 'orders/application.json:1:69: nesting exceeds documents.maxDepth = 64 (maps and lists inside each other)',
      data: { document: 'orders/application.json', line: 1, column: 69, limit: 'documents.maxDepth', value: 64 },
    });
  });

  it('stops 300,000 levels of JSON objects and of YAML flow maps', () => {
    expect(failure(`${'{"a":'.repeat(300_000)}1${'}'.repeat(300_000)}`, 'orders/application.json').message).toBe(
      'orders/application.json:1:321: nesting exceeds documents.maxDepth = 64 (maps and lists inside each other)',
    );
    expect(failure(`a: ${'{b: '.repeat(300_000)}1${'}'.repeat(300_000)}\n`).message).toBe(
      'orders/application.yml:1:256: nesting exceeds documents.maxDepth = 64 (maps and lists inside each other)',
    );
  });

  it('stops 300,000 compact block sequences (- - -), also when a dedent follows (it overflowed the stack)', () => {
    const expected = 'orders/application.yml:2:127: nesting exceeds documents.maxDepth = 64 (maps and lists inside each other)';
    expect(failure(`a:\n${'- '.repeat(300_000)}x\n`).message).toBe(expected);
    expect(failure(`a:\n${'- '.repeat(300_000)}x\nb: 1\n`).message).toBe(expected);
  });

  it('stops indentation nesting at the key that opens the 65th map', () => {
    const lines: string[] = [];
    for (let i = 0; i < 100; i++) lines.push(`${' '.repeat(i)}k${i}:`);
    expect(failure(`${lines.join('\n')} 1\n`).message).toBe(
      'orders/application.yml:65:65: nesting exceeds documents.maxDepth = 64 (maps and lists inside each other)',
    );
  });

  it('reads exactly 64 levels', () => {
    const doc = parse(`a: ${'['.repeat(63)}1${']'.repeat(63)}\n`);
    expect(doc.sources[0]?.source.entries).toHaveLength(1);
    expect(failure(`a: ${'['.repeat(64)}1${']'.repeat(64)}\n`).message).toBe(
      'orders/application.yml:1:67: nesting exceeds documents.maxDepth = 64 (maps and lists inside each other)',
    );
  });

  it('counts the levels of a property path: map keys, dotted segments and list indices', () => {
    const limits = { maxDepth: 5 };
    expect(failure('a:\n  b.c.d.e.f: 1\n', 'orders/application.yml', limits)).toEqual({
      code: LIMIT,
      message: 'orders/application.yml:2:3: the depth of this property path exceeds documents.maxDepth = 5 (map keys, dotted segments and list indices)',
      data: { document: 'orders/application.yml', line: 2, column: 3, limit: 'documents.maxDepth', value: 5 },
    });
    expect(parse('a:\n  b.c.d[0]: 1\n', 'orders/application.yml', limits).sources[0]?.source.entries).toHaveLength(1);
    expect(failure('x=1\na.b.c.d[0][1]=1\n', 'orders/application.properties', limits).message).toBe(
      'orders/application.properties:2:1: the depth of this property path exceeds documents.maxDepth = 5 (map keys, dotted segments and list indices)',
    );
  });

  it('stops a .properties key of 300,000 segments (it overflowed the stack when rendered)', () => {
    expect(failure(`a${'.a'.repeat(300_000)}=1\n`, 'orders/application.properties').message).toBe(
      'orders/application.properties:1:1: the depth of this property path exceeds documents.maxDepth = 64 (map keys, dotted segments and list indices)',
    );
  });
});

describe('documents.maxKeys', () => {
  const limits = { maxKeys: 3 };

  it('names the key one over the limit', () => {
    expect(failure('a: 1\nb: 2\nc: 3\nd: 4\n', 'orders/application.yml', limits)).toEqual({
      code: LIMIT,
      message: 'orders/application.yml:4:1: the number of keys exceeds documents.maxKeys = 3 (map keys and list items)',
      data: { document: 'orders/application.yml', line: 4, column: 1, limit: 'documents.maxKeys', value: 3 },
    });
    expect(parse('a: 1\nb: 2\nc: 3\n', 'orders/application.yml', limits).sources[0]?.source.entries).toHaveLength(3);
  });

  it('counts list items and nested keys in source order', () => {
    expect(failure('a: 1\nb: [1, 2]\n', 'orders/application.yml', limits).message).toBe(
      'orders/application.yml:2:8: the number of keys exceeds documents.maxKeys = 3 (map keys and list items)',
    );
    expect(failure('a: 1\nb:\n  c: 1\n  d: 2\n', 'orders/application.yml', limits).message).toBe(
      'orders/application.yml:4:3: the number of keys exceeds documents.maxKeys = 3 (map keys and list items)',
    );
    expect(failure('a:\n  -\n  -\n  -\n', 'orders/application.yml', limits).message).toBe(
      'orders/application.yml:4:4: the number of keys exceeds documents.maxKeys = 3 (map keys and list items)',
    );
  });

  it('names the same key whether reading stopped early (many keys) or not (few more)', () => {
    const keys = (n: number, value: string): string => Array.from({ length: n }, (_, i) => `k${i}:${value}`).join('\n') + '\n';
    const expected = 'orders/application.yml:11:1: the number of keys exceeds documents.maxKeys = 10 (map keys and list items)';
    // 5,000 keys: the token count stops reading long before the end.
    expect(failure(keys(5_000, ' v'), 'orders/application.yml', { maxKeys: 10 }).message).toBe(expected);
    // 11 keys without values: read to the end, then counted.
    expect(failure(keys(11, ''), 'orders/application.yml', { maxKeys: 10 }).message).toBe(expected);
  });

  it('counts the documents of one file together; empty and ~ documents are no keys', () => {
    expect(failure('a: 1\n---\nb: 1\n---\nc: 1\n', 'orders/application.yml', { maxKeys: 2 }).message).toBe(
      'orders/application.yml:5:1: the number of keys exceeds documents.maxKeys = 2 (map keys and list items)',
    );
    // 150 roots that are no keys would prove 50 keys (2 nodes per key) if they counted.
    const quiet = `${'--- ~\n'.repeat(150)}${'---\n'.repeat(50)}---\na: 1\nb: 2\nc: 3\n`;
    expect(parse(quiet, 'orders/application.yml', { maxKeys: 50 }).sources.map((s) => s.source.entries.length)).toEqual([3]);
  });

  it('counts keys again after alias and merge-key expansion, named at the alias', () => {
    expect(failure('a: &x {b: 1, c: 2}\nd: *x\n', 'orders/application.yml', { maxKeys: 5 })).toEqual({
      code: LIMIT,
      message: 'orders/application.yml:2:4: the number of keys after alias expansion exceeds documents.maxKeys = 5 (map keys and list items)',
      data: { document: 'orders/application.yml', line: 2, column: 4, limit: 'documents.maxKeys', value: 5 },
    });
    expect(failure('base: &b {x: 1, y: 2}\nm:\n  <<: *b\n', 'orders/application.yml', { maxKeys: 5 }).message).toBe(
      'orders/application.yml:3:3: the number of keys after alias expansion exceeds documents.maxKeys = 5 (map keys and list items)',
    );
  });

  it('refuses a file of comments, line breaks or commas by its token count (bounded memory)', () => {
    expect(failure(`a: 1\n${'#\n'.repeat(300)}`, 'orders/application.yml', { maxKeys: 10 })).toEqual({
      code: LIMIT,
      message: 'orders/application.yml:98:1: the number of YAML tokens exceeds 20 × documents.maxKeys = 200 (comments, indentation and line breaks included)',
      data: { document: 'orders/application.yml', line: 98, column: 1, limit: 'documents.maxKeys', value: 10 },
    });
    // Syntax errors before the point where reading stopped are still named first.
    expect(failure(`a: [${','.repeat(1_000)}]\n`, 'orders/application.yml', { maxKeys: 10 }).message).toBe('orders/application.yml:1:6: invalid YAML: unexpected token');
  });

  it('counts .properties key lines', () => {
    expect(failure('a=1\n# comment\nb=2\n\nc=3\n', 'orders/application.properties', { maxKeys: 2 })).toEqual({
      code: LIMIT,
      message: 'orders/application.properties:5:1: the number of keys exceeds documents.maxKeys = 2 (key lines)',
      data: { document: 'orders/application.properties', line: 5, column: 1, limit: 'documents.maxKeys', value: 2 },
    });
  });
});

describe('documents.maxAliases', () => {
  it('names the alias one over the limit', () => {
    expect(failure('a: &x 1\nb: *x\nc: *x\nd: *x\n', 'orders/application.yml', { maxAliases: 2 })).toEqual({
      code: LIMIT,
      message: 'orders/application.yml:4:4: the number of alias expansions exceeds documents.maxAliases = 2 (alias bomb?)',
      data: { document: 'orders/application.yml', line: 4, column: 4, limit: 'documents.maxAliases', value: 2 },
    });
    expect(failure('a: &x 1\nb: *x\n', 'orders/application.yml', { maxAliases: 0 }).message).toBe(
      'orders/application.yml:2:4: the number of alias expansions exceeds documents.maxAliases = 0 (alias bomb?)',
    );
  });

  it('names the outermost alias when the limit is crossed inside an expansion', () => {
    expect(failure('a: &x [1]\nb: &y [*x, *x]\nc: *y\n', 'orders/application.yml', { maxAliases: 3 }).message).toBe(
      'orders/application.yml:3:4: the number of alias expansions exceeds documents.maxAliases = 3 (alias bomb?)',
    );
  });

  it('stops a self-referencing anchor', () => {
    expect(failure('a: &x [*x]\n').message).toBe('orders/application.yml:1:8: the number of alias expansions exceeds documents.maxAliases = 1000 (alias bomb?)');
  });
});

describe('duplicate keys: one Set per map, the message and position of the yaml library', () => {
  it('names the second key in block and flow maps, JSON and list items', () => {
    expect(failure('a: 1\nfeature:\n  x: 1\n  feature: 2\nfeature: 3\n')).toEqual({
      code: 'CFG_ERR_DOCUMENT_INVALID',
      message: 'orders/application.yml:5:1: duplicate key "feature"',
      data: { document: 'orders/application.yml', line: 5, column: 1 },
    });
    expect(failure('x: {a: 1, b: 2, a: 3}\n').message).toBe('orders/application.yml:1:17: duplicate key "a"');
    expect(failure('{"a": 1,\n "a": 2}', 'orders/application.json').message).toBe('orders/application.json:2:2: duplicate key "a"');
    expect(failure('l:\n  - a: 1\n    a: 2\n').message).toBe('orders/application.yml:3:5: duplicate key "a"');
  });

  it('compares scalar values as the yaml library does (1 and 0x1 are one key; 1 and 1.0 are not)', () => {
    // `1.0` is then read as the property path 1 > 0, as Spring reads a dotted key.
    expect(failure('1: a\n0x1: b\n').message).toBe('orders/application.yml:2:1: duplicate key "0x1"');
    expect(failure('~: a\nnull: b\n').message).toBe('orders/application.yml:2:1: duplicate key "null"');
    expect(parse('1: a\n1.0: b\n').sources[0]?.source.entries.map((e) => e.path)).toEqual([['1'], ['1', '0']]);
  });

  it('allows one key in different maps and in different documents', () => {
    expect(parse('a:\n  x: 1\nb:\n  x: 2\n').sources[0]?.source.entries).toHaveLength(2);
    expect(parse('x: 1\n---\nx: 2\n').sources).toHaveLength(2);
  });

  it('finds the duplicate at the end of 50,000 keys', () => {
    const text = `${Array.from({ length: 50_000 }, (_, i) => `key${i}: v`).join('\n')}\nkey7: again\n`;
    expect(failure(text).message).toBe('orders/application.yml:50001:1: duplicate key "key7"');
  });
});

describe('.properties continuation lines', () => {
  it('joins 100,000 continuation lines into one value', () => {
    const doc = parse(`a=${'x\\\n  '.repeat(100_000)}end\n`, 'orders/application.properties');
    expect(doc.sources[0]?.source.entries[0]?.value).toBe(`${'x'.repeat(100_000)}end`);
  });
});

describe('the parse worker entry', () => {
  it('answers the parsed document, or a document error as data', () => {
    const ok = parseInWorker({ path: 'orders/application.yml', bytes: bytes('a: 1\n'), limits: DEFAULT_DOCUMENT_LIMITS });
    expect(ok).toEqual({ ok: true, document: parse('a: 1\n') });
    expect(parseInWorker({ path: 'orders/application.yml', bytes: bytes('a: 1\nb: 2\n'), limits: { ...DEFAULT_DOCUMENT_LIMITS, maxKeys: 1 } })).toEqual({
      ok: false,
      error: {
        code: LIMIT,
        message: 'orders/application.yml:2:1: the number of keys exceeds documents.maxKeys = 1 (map keys and list items)',
        data: { document: 'orders/application.yml', line: 2, column: 1, limit: 'documents.maxKeys', value: 1 },
      },
    });
  });
});
