import { describe, expect, it } from 'vitest';
import { parseDocument } from '../../src/config/parse.js';
import type { ParsedDocument, PropertyEntry } from '../../src/config/types.js';
import { bytes } from './helpers.js';

const n = (text: string) => ({ kind: 'number', text }) as const;

function parse(text: string | Uint8Array, path = 'orders/application.yml'): ParsedDocument {
  return parseDocument({ path, bytes: bytes(text), commit: 'abc123' });
}

/** path (dotted, for readability) → value of the only source. */
function values(text: string, path?: string): Record<string, unknown> {
  const doc = parse(text, path);
  expect(doc.sources).toHaveLength(1);
  return Object.fromEntries((doc.sources[0]?.source.entries ?? []).map((e: PropertyEntry) => [e.path.join('|'), e.value]));
}

function thrown(fn: () => unknown): Error & { code?: string; data?: Record<string, unknown> } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string; data?: Record<string, unknown> };
  }
  throw new Error('expected an error');
}

describe('YAML 1.2 core schema', () => {
  it('keeps YAML 1.1 words as strings, keys too (case 05)', () => {
    expect(values('feature:\n  mode: on\ncountry: NO\nconfirm: yes\nlegacy: True\ny: n\noff: Off\n')).toEqual({
      'feature|mode': 'on',
      country: 'NO',
      confirm: 'yes',
      legacy: true,
      y: 'n',
      off: 'Off',
    });
  });

  it('keeps exact integers, decimal 0640, octal 0o640, dates as strings (case 06)', () => {
    expect(values('snowflake-id: 12345678901234567891\nfile-mode: 0640\nfile-mode-octal: 0o640\napi-version: 2010-09-09\nneg: -9007199254740993\nhex: 0x1F\n')).toEqual({
      'snowflake-id': n('12345678901234567891'),
      'file-mode': n('640'),
      'file-mode-octal': n('416'),
      'api-version': '2010-09-09',
      neg: n('-9007199254740993'),
      hex: n('31'),
    });
  });

  it('writes floats with a spelling valid in JSON, YAML 1.1 and YAML 1.2', () => {
    expect(values('a: 1.50\nb: 1e3\nc: .5\nd: -2.5E-3\ne: .inf\nf: 1.0\n')).toEqual({
      a: n('1.50'),
      b: n('1.0e+3'),
      c: n('0.5'),
      d: n('-2.5E-3'),
      e: '.inf',
      f: n('1.0'),
    });
  });

  it('reads `%YAML 1.1` documents with 1.1 rules, timestamps still strings', () => {
    expect(values('%YAML 1.1\n---\nconfirm: yes\nmode: 0640\nday: 2010-09-09\nword: on\n')).toEqual({
      confirm: true,
      mode: n('416'),
      day: '2010-09-09',
      word: true,
    });
  });

  it('refuses typed values without a text form (!!binary)', () => {
    expect(thrown(() => parse('%YAML 1.1\n---\na: !!binary aGVsbG8=\n')).message).toBe(
      'orders/application.yml:3:13: unsupported value type (binary and other typed values cannot be served)',
    );
  });

  it('turns non-string keys into their string form', () => {
    expect(values('1: one\ntrue: yes-key\n0o10: eight\n')).toEqual({ '1': 'one', true: 'yes-key', '8': 'eight' });
  });

  it('applies merge keys, own keys winning', () => {
    expect(values('base: &b\n  host: h\n  port: 1\nsvc:\n  <<: *b\n  port: 2\n')).toEqual({
      'base|host': 'h',
      'base|port': n('1'),
      'svc|port': n('2'),
      'svc|host': 'h',
    });
  });

  it('stops alias bombs with an error before expanding them', () => {
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 9; i++) bomb.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
    const err = thrown(() => parse(bomb.join('\n') + '\n'));
    expect(err.code).toBe('CFG_ERR_DOCUMENT_LIMIT_EXCEEDED');
    // Named at the outermost alias being expanded when the 1001st expansion happened: e's first *d.
    expect(err.message).toBe('orders/application.yml:5:8: the number of alias expansions exceeds documents.maxAliases = 1000 (alias bomb?)');
  });

  it('rejects duplicate keys naming file, line, column and key', () => {
    const err = thrown(() => parse('a: 1\nfeature:\n  x: 1\n  feature: 2\nfeature: 3\n'));
    expect(err.code).toBe('CFG_ERR_DOCUMENT_INVALID');
    expect(err.message).toBe('orders/application.yml:5:1: duplicate key "feature"');
    expect(err.data).toEqual({ document: 'orders/application.yml', line: 5, column: 1 });
  });

  it('reports syntax errors with position and without the value', () => {
    const err = thrown(() => parse('a: "secret-value\nb: 1\n'));
    expect(err.code).toBe('CFG_ERR_DOCUMENT_INVALID');
    expect(err.message.startsWith('orders/application.yml:')).toBe(true);
    expect(err.message).not.toContain('secret-value');
  });
});

describe('flattening to property paths', () => {
  it('treats dotted keys and nested maps as one path; brackets keep dots', () => {
    const doc = parse('logging.level:\n  com.example: INFO\nannotations:\n  "[app.example.com/source]": https://x\n');
    expect(doc.sources[0]?.source.entries).toEqual([
      { path: ['logging', 'level', 'com', 'example'], value: 'INFO', origin: { document: 'orders/application.yml', line: 2, column: 3, commit: 'abc123' } },
      { path: ['annotations', 'app.example.com/source'], value: 'https://x', origin: { document: 'orders/application.yml', line: 4, column: 3, commit: 'abc123' } },
    ]);
  });

  it('keeps lists as one value, [] as a value, null as null; empty maps give nothing', () => {
    expect(values('l: [a, {b.c: 1, d: ~}, [x]]\ne: []\nm: {}\np: ~\nq: null\n')).toEqual({
      l: ['a', { b: { c: n('1') }, d: '' }, ['x']],
      e: [],
      p: null,
      q: null,
    });
  });

  it('assembles indexed keys into one list', () => {
    expect(values('servers[0].host: a\nservers[1]:\n  host: b\n')).toEqual({ servers: [{ host: 'a' }, { host: 'b' }] });
  });

  it('allows a path that is a value and a parent', () => {
    expect(values('a: 1\na.b: 2\n')).toEqual({ a: n('1'), 'a|b': n('2') });
  });

  it('rejects two spellings of one path with different values (case 07)', () => {
    const err = thrown(() => parse('a.b: 1\na:\n  b: 2\n'));
    expect(err.code).toBe('CFG_ERR_DOCUMENT_INVALID');
    expect(err.message).toBe('orders/application.yml:3:3: two spellings of one property path with different values: "a.b" (line 1, column 1) and "a" > "b" (line 3, column 3)');
    expect(err.data).toEqual({ document: 'orders/application.yml', line: 3, column: 3 });
  });

  it('accepts two spellings with the same value', () => {
    expect(values('a.b: 1\na:\n  b: 1\n')).toEqual({ 'a|b': n('1') });
  });

  it('refuses a scalar or list document root', () => {
    expect(thrown(() => parse('- a\n- b\n')).message).toBe('orders/application.yml:1:1: the document root must be a map of keys');
  });
});

describe('empty documents, BOM, CRLF (case 12)', () => {
  it('reads empty and comment-only documents as one empty source', () => {
    for (const text of ['', '# only a comment\n', '\n\n', '---\n', '~\n']) {
      expect(parse(text).sources).toEqual([{ source: { name: 'orders/application.yml', entries: [] } }]);
    }
  });

  it('ignores a UTF-8 BOM and keeps retries [] and proxy null', () => {
    const withBom = new Uint8Array([0xef, 0xbb, 0xbf, ...bytes('server.port: 8081\nretries: []\nproxy: ~\n')]);
    expect(values(withBom as unknown as string)).toEqual({ 'server|port': n('8081'), retries: [], proxy: null });
  });

  it('accepts CRLF with no CR in values or keys', () => {
    expect(values('a: 1\r\nmsg: hello\r\nblock: |\r\n  x\r\n  y\r\n')).toEqual({ a: n('1'), msg: 'hello', block: 'x\ny\n' });
  });
});

describe('multi-document YAML', () => {
  it('names documents as Spring Boot does and returns activations', () => {
    const doc = parse('a: 1\n---\nspring.config.activate.on-profile: prod & eu\na: 2\n---\n# empty\n---\nspring:\n  profiles: [dev, qa]\na: 3\n', 'application.yml');
    expect(doc.sources.map((s) => [s.source.name, s.activation, s.source.entries.map((e) => e.path.join('.'))])).toEqual([
      ['application.yml (document #0)', undefined, ['a']],
      ['application.yml (document #1)', 'prod & eu', ['a']],
      ['application.yml (document #2)', '(dev) | (qa)', ['a']],
    ]);
  });

  it('refuses a malformed activation expression', () => {
    const err = thrown(() => parse('a: 1\n---\nspring.config.activate.on-profile: a & b | c\n'));
    expect(err.message).toBe('orders/application.yml:3:1: malformed profile expression');
  });
});

describe('JSON documents', () => {
  it('reads JSON with exact big ints and dotted keys as paths', () => {
    expect(values('{"a.b": 12345678901234567891, "c": {"d": [1, "x", null]}, "e": null, "f": 1.5}', 'orders/application.json')).toEqual({
      'a|b': n('12345678901234567891'),
      'c|d': [n('1'), 'x', ''],
      e: null,
      f: n('1.5'),
    });
  });

  it('rejects duplicate keys in JSON', () => {
    expect(thrown(() => parse('{"a": 1,\n "a": 2}', 'orders/application.json')).message).toBe('orders/application.json:2:2: duplicate key "a"');
  });
});

it('rejects unknown extensions', () => {
  expect(thrown(() => parse('a: 1', 'orders/application.toml')).message).toBe(
    'orders/application.toml: unsupported document type (expected .yml, .yaml, .json, .properties)',
  );
});

describe('syntax errors point where the fix goes', () => {
  it.each([
    ['a line indented deeper than the key above it', 'server:\n  port: 8080\n    host: x\n', '3:5', "invalid YAML: bad indentation: this line is indented deeper than the key above it (or a key lacks its ':')"],
    ['a line indented less than its siblings', 'a:\n  b: 1\n c: 2\n', '3:2', 'invalid YAML: bad indentation'],
    ['an unclosed double quote', 'a: 1\nb: "abc\nc: 2\n', '2:4', 'invalid YAML: a quoted value is not closed (its closing quote is missing)'],
    ['an unclosed single quote', "a: 1\nb:\n  c: 'abc\n", '3:6', 'invalid YAML: a quoted value is not closed (its closing quote is missing)'],
    ['a tab as indentation', 'a:\n\tb: 1\n', '2:1', 'invalid YAML: tab characters must not be used for indentation'],
    ['a duplicate key', 'a: 1\nb: 2\na: 3\n', '3:1', 'duplicate key "a"'],
    ['an unclosed flow sequence', 'a: [1, 2\nb: 3\n', '1:4', 'invalid YAML: a flow sequence ([) is not closed with ]'],
    ['an unclosed flow map, nested', 'a:\n  b: {x: 1, y: 2\n', '2:6', 'invalid YAML: a flow map ({) is not closed with }'],
  ])('%s: file:line:column of the fault', (_name, text, at, message) => {
    const err = thrown(() => parse(text));
    expect(err.code).toBe('CFG_ERR_DOCUMENT_INVALID');
    expect(err.message).toBe(`orders/application.yml:${at}: ${message}`);
    const [line, column] = at.split(':').map(Number);
    expect(err.data).toMatchObject({ document: 'orders/application.yml', line, column });
  });
});
