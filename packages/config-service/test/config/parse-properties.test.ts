import { describe, expect, it } from 'vitest';
import { parseDocument } from '../../src/config/parse.js';
import type { PropertyEntry } from '../../src/config/types.js';
import { bytes } from './helpers.js';
import { javaLoad } from './java.js';

function entries(content: string | Uint8Array, path = 'orders/application.properties'): readonly PropertyEntry[] {
  const doc = parseDocument({ path, bytes: bytes(content) });
  expect(doc.sources).toHaveLength(1);
  return doc.sources[0]?.source.entries ?? [];
}

function values(content: string | Uint8Array): Record<string, unknown> {
  return Object.fromEntries(entries(content).map((e) => [e.path.join('|'), e.value]));
}

/** Key → value exactly as java.util.Properties holds it (keys not split into paths). */
function flatValues(content: string | Uint8Array): Record<string, string> {
  return Object.fromEntries(entries(content).map((e) => [e.path.join('.'), e.value as string]));
}

// Case 08: the last line holds the single byte 0xE9, so the file is not valid UTF-8.
const CASE_08 = Buffer.concat([
  Buffer.from('city=B\\u00FCckeburg\ngreeting = Hello\\\n           World\npath=C:\\\\tmp\\\\x\ncolon\\:key=v1\nspaced\\ key=v2\ntag=caf', 'latin1'),
  Buffer.from([0xe9]),
  Buffer.from('\n'),
]);

describe('java.util.Properties.load rules', () => {
  it('reads case 08 (escapes, continuation, escaped separators, ISO-8859-1 fallback)', () => {
    expect(values(CASE_08)).toEqual({
      city: 'Bückeburg',
      greeting: 'HelloWorld',
      path: 'C:\\tmp\\x',
      'colon:key': 'v1',
      'spaced key': 'v2',
      tag: 'café',
    });
  });

  it('reads UTF-8 when the bytes are valid UTF-8 (case 08, dev document)', () => {
    expect(values('tag=café\n')).toEqual({ tag: 'café' });
  });

  it('handles separators, comments, blank lines and escapes', () => {
    expect(
      values('# comment\n! also comment\n\n   a = 1\nb:2\nc 3\nd\ne=\nf  =  x  \ng=\\t\\n\\r\\f\\q\\\\\nh\\=i=j\n  # indented comment\nk==v\n'),
    ).toEqual({ a: '1', b: '2', c: '3', d: '', e: '', f: 'x  ', g: '\t\n\r\fq\\', 'h=i': 'j', k: '=v' });
  });

  it('continues lines (odd backslashes) but not after an even number', () => {
    expect(values('a=x\\\\\nb=y\\\\\\\n   z\nc=1\\\n\nd=2\n# c \\\ne=3\nlast=end\\')).toEqual({
      a: 'x\\',
      b: 'y\\z',
      c: '1',
      d: '2',
      e: '3',
      last: 'end',
    });
  });

  it('treats CRLF line ends as one terminator, also after a continuation (case 12)', () => {
    expect(values('a=1\r\nmsg=hello \\\r\n   world\r\n')).toEqual({ a: '1', msg: 'hello world' });
  });

  it('drops a BOM and keeps the last of a repeated key', () => {
    expect(values('\ufeffa=1\nb=2\na=3\n')).toEqual({ b: '2', a: '3' });
  });

  it('refuses a malformed \\uXXXX escape with its position, not its value', () => {
    try {
      entries('ok=1\nkey=secret\\u12G4\n');
      expect.unreachable();
    } catch (e) {
      const err = e as Error & { code: string; data: unknown };
      expect(err.code).toBe('CFG_ERR_DOCUMENT_INVALID');
      expect(err.message).toBe('orders/application.properties:2:11: malformed \\uXXXX escape in the value of "key"');
      expect(err.data).toEqual({ document: 'orders/application.properties', line: 2, column: 11 });
    }
  });

  it('reads an empty or comment-only file as one empty source', () => {
    expect(parseDocument({ path: 'application.properties', bytes: bytes('# nothing\n') }).sources).toEqual([
      { source: { name: 'application.properties', entries: [] } },
    ]);
  });

  it('keeps line and column of each key', () => {
    expect(entries('\n  a.b=1\nc=2\n').map((e) => [e.path, e.origin])).toEqual([
      [['a', 'b'], { document: 'orders/application.properties', line: 2, column: 3 }],
      [['c'], { document: 'orders/application.properties', line: 3, column: 1 }],
    ]);
  });
});

describe('Spring property names', () => {
  it('assembles list[0], servers[0].host and map[some.key]', () => {
    expect(values('list[0]=x\nlist[1]=y\nservers[0].host=h\nservers[0].port=1\nservers[1].host=i\nmap[some.key]=v\n')).toEqual({
      list: ['x', 'y'],
      servers: [{ host: 'h', port: '1' }, { host: 'i' }],
      'map|some.key': 'v',
    });
  });

  it('refuses a gap in list indices', () => {
    expect(() => entries('list[0]=x\nlist[2]=y\n')).toThrow('orders/application.properties:1:1: list "list" has no element [1] (indices must be 0, 1, 2, ...)');
  });

  it('refuses two spellings of one path with different values', () => {
    expect(() => entries('a.b=1\na[b]=2\n')).toThrow(
      'orders/application.properties:2:1: two spellings of one property path with different values: "a.b" (line 1, column 1) and "a[b]" (line 2, column 1)',
    );
  });
});

describe('agrees with java.util.Properties (Java 17)', () => {
  it('reads the same keys and values as Java for tricky inputs', () => {
    const inputs: Array<string | Uint8Array> = [
      CASE_08,
      'a=1\r\nmsg=hello \\\r\n   world\r\n',
      'a=x\\\\\nb=y\\\\\\\n   z\nc=1\\\n\nd=2\n# c \\\ne=3\nlast=end\\',
      '# comment\n! also\n\n   a = 1\nb:2\nc 3\nd\ne=\nf  =  x  \ng=\\t\\n\\r\\f\\q\\\\\nh\\=i=j\n  # indented\nk==v\n\tx\\ y\\:z : w\n',
      'tag=café\nemoji=ok 😀\n',
      'p=a\\\r   b\\\r\n\t\fc\rq=\\u0041\\u00e9\n',
    ];
    const java = javaLoad(inputs);
    inputs.forEach((input, i) => {
      const expected = (java[i] as { bytes: Record<string, string>; utf8: Record<string, string> });
      // Spring Boot (and this service) read valid UTF-8 as UTF-8, otherwise ISO-8859-1.
      const valid = (() => {
        try {
          new TextDecoder('utf-8', { fatal: true }).decode(bytes(input));
          return true;
        } catch {
          return false;
        }
      })();
      expect(flatValues(input)).toEqual(valid ? expected.utf8 : expected.bytes);
    });
  });
});
