import { describe, expect, it } from 'vitest';
import { mergeSources } from '../../src/config/merge.js';
import { flatten, toTree } from '../../src/config/tree.js';
import type { PropertySource, PropertyValue } from '../../src/config/types.js';
import { configFor } from './helpers.js';

const n = (text: string) => ({ kind: 'number', text }) as const;

function src(entries: Array<[string[], PropertyValue]>): PropertySource {
  return { name: 's', entries: entries.map(([path, value]) => ({ path, value, origin: { document: 's' } })) };
}

const CASE_07 = {
  'application.yml': 'logging.level:\n  com.example: INFO\n',
  'orders/application-dev.yml': 'logging:\n  level:\n    com.example.db: DEBUG\nannotations:\n  "[app.example.com/source]": https://git.example.com/orders\n',
};

describe('toTree', () => {
  it('keeps a value that is also a parent as a dotted key (case 07)', () => {
    expect(JSON.stringify(toTree(configFor(CASE_07, 'orders', ['dev'])))).toBe(
      '{"annotations":{"app.example.com/source":"https://git.example.com/orders"},"logging":{"level":{"com":{"example":"INFO","example.db":"DEBUG"}}}}',
    );
  });

  it('puts the rest of the path in the deepest map that can hold it', () => {
    const tree = toTree(mergeSources([src([[['a'], 'v'], [['a', 'b', 'c'], 'w'], [['x', 'y'], ['l']], [['x', 'y', 'z'], 'u']])]));
    expect(tree).toEqual({ a: 'v', 'a.b.c': 'w', x: { y: ['l'], 'y.z': 'u' } });
  });

  it('is deterministic and survives a literal key spelled like a dotted one', () => {
    const tree = toTree(mergeSources([src([[['c', 'example.db'], 'literal'], [['c', 'example'], 'INFO'], [['c', 'example', 'db'], 'DEBUG']])]));
    expect(tree).toEqual({ c: { example: 'INFO', 'example.db': 'DEBUG' }, 'c.example.db': 'literal' });
  });

  it('holds a key named __proto__ as data', () => {
    const tree = toTree(mergeSources([src([[['__proto__', 'x'], 'v']])]));
    expect(Object.keys(tree)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(tree)).toBe(Object.prototype);
    expect(JSON.stringify(tree)).toBe('{"__proto__":{"x":"v"}}');
  });
});

describe('flatten', () => {
  it('writes Spring flattened names, sorted with numeric indices', () => {
    const config = mergeSources([
      src([
        [['list'], Array.from({ length: 11 }, (_, i) => n(String(i)))],
        [['annotations', 'app.example.com/source'], 'u'],
        [['servers'], [{ host: 'a', tags: ['x', 'y'] }, { host: 'b' }]],
        [['retries'], []],
        [['flag'], false],
        [['big'], n('12345678901234567891')],
      ]),
    ]);
    expect(flatten(config)).toEqual([
      ['annotations[app.example.com/source]', 'u'],
      ['big', '12345678901234567891'],
      ['flag', 'false'],
      ['list[0]', '0'],
      ['list[1]', '1'],
      ['list[2]', '2'],
      ['list[3]', '3'],
      ['list[4]', '4'],
      ['list[5]', '5'],
      ['list[6]', '6'],
      ['list[7]', '7'],
      ['list[8]', '8'],
      ['list[9]', '9'],
      ['list[10]', '10'],
      ['retries', ''],
      ['servers[0].host', 'a'],
      ['servers[0].tags[0]', 'x'],
      ['servers[0].tags[1]', 'y'],
      ['servers[1].host', 'b'],
    ]);
  });

  it('flattens case 07', () => {
    expect(flatten(configFor(CASE_07, 'orders', ['dev']))).toEqual([
      ['annotations[app.example.com/source]', 'https://git.example.com/orders'],
      ['logging.level.com.example', 'INFO'],
      ['logging.level.com.example.db', 'DEBUG'],
    ]);
  });
});
