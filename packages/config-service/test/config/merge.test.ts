import { describe, expect, it } from 'vitest';
import { EXTENSIONS_LOWEST_FIRST, layerOrder, mergeSources, pathKey, selectSources } from '../../src/config/merge.js';
import { parseDocument } from '../../src/config/parse.js';
import type { MergedConfig, PropertySource, PropertyValue } from '../../src/config/types.js';
import { bytes, configFor, sourcesFor } from './helpers.js';

const n = (text: string) => ({ kind: 'number', text }) as const;

function src(name: string, entries: Array<[string[], PropertyValue | null]>): PropertySource {
  return { name, entries: entries.map(([path, value], i) => ({ path, value, origin: { document: name, line: i + 1, column: 1 } })) };
}

function plain(config: MergedConfig): Record<string, unknown> {
  return Object.fromEntries([...config.values()].map((p) => [p.path.join('|'), p.value]));
}

describe('layerOrder (SPEC §2.1)', () => {
  it('orders shared, app, then per profile shared and app', () => {
    expect(layerOrder('orders', ['p1', 'p2'])).toEqual([
      { scope: 'shared' },
      { scope: 'app' },
      { scope: 'shared', profile: 'p1' },
      { scope: 'app', profile: 'p1' },
      { scope: 'shared', profile: 'p2' },
      { scope: 'app', profile: 'p2' },
    ]);
  });

  it('counts a repeated profile at its last position', () => {
    expect(layerOrder('orders', ['a', 'b', 'a']).map((l) => `${l.scope}:${l.profile ?? ''}`)).toEqual([
      'shared:',
      'app:',
      'shared:b',
      'app:b',
      'shared:a',
      'app:a',
    ]);
  });

  it('ranks extensions as Spring Boot does', () => {
    expect(EXTENSIONS_LOWEST_FIRST).toEqual(['.json', '.yaml', '.yml', '.properties']);
  });
});

describe('mergeSources (SPEC §2.2)', () => {
  it('lets higher sources win path by path and tracks overridden origins', () => {
    const merged = mergeSources([src('low', [[['a'], 'x'], [['b'], 'y']]), src('high', [[['a'], 'z']])]);
    expect(plain(merged)).toEqual({ a: 'z', b: 'y' });
    expect(merged.get(pathKey(['a']))).toEqual({
      path: ['a'],
      value: 'z',
      origin: { document: 'high', line: 1, column: 1 },
      overridden: [{ document: 'low', line: 1, column: 1 }],
    });
  });

  it('keeps parent and child values from different layers', () => {
    const merged = mergeSources([src('low', [[['l', 'c'], 'INFO']]), src('high', [[['l', 'c', 'db'], 'DEBUG']])]);
    expect(plain(merged)).toEqual({ 'l|c': 'INFO', 'l|c|db': 'DEBUG' });
  });

  it('replaces lists whole and drops lower values under a list path', () => {
    const merged = mergeSources([
      src('low', [[['l'], ['a', 'b', 'c']], [['l', 'x'], '1'], [['k'], '2']]),
      src('high', [[['l'], ['d']]]),
    ]);
    expect(plain(merged)).toEqual({ k: '2', l: ['d'] });
  });

  it('removes a path and everything under it on null; a higher layer may set it again', () => {
    const merged = mergeSources([
      src('low', [[['p'], 'x'], [['p', 'host'], 'h'], [['q'], 'keep']]),
      src('mid', [[['p'], null]]),
      src('high', [[['p', 'port'], n('1')]]),
    ]);
    expect(plain(merged)).toEqual({ 'p|port': n('1'), q: 'keep' });
  });

  it('applies a source removals before its own values', () => {
    expect(plain(mergeSources([src('low', [[['a', 'b'], '1']]), src('one', [[['a', 'c'], '2'], [['a'], null]])]))).toEqual({ 'a|c': '2' });
  });

  it('iterates in path order', () => {
    const merged = mergeSources([src('s', [[['b'], '1'], [['a', 'z'], '2'], [['a'], '3']])]);
    expect([...merged.keys()]).toEqual([pathKey(['a']), pathKey(['a', 'z']), pathKey(['b'])]);
  });
});

describe('selectSources (SPEC §2.3)', () => {
  const yaml = 'a: base\nb: base\n---\nspring.config.activate.on-profile: prod\na: prod\n---\na: later\nc: later\n---\nspring.config.activate.on-profile: "!prod"\nb: not-prod\n';
  const parsed = parseDocument({ path: 'application.yml', bytes: bytes(yaml) });

  it('puts matching activated documents above unconditional ones, later documents above earlier', () => {
    expect(selectSources(parsed, ['prod']).map((s) => s.name)).toEqual([
      'application.yml (document #0)',
      'application.yml (document #2)',
      'application.yml (document #1)',
    ]);
    expect(plain(mergeSources(selectSources(parsed, ['prod'])))).toEqual({ a: 'prod', b: 'base', c: 'later' });
    expect(plain(mergeSources(selectSources(parsed, [])))).toEqual({ a: 'later', b: 'not-prod', c: 'later' });
  });
});

describe('case 03: precedence', () => {
  const files = {
    'application.yml': 'db: {pool: 5, host: shared-db}\n',
    'application-dev.yml': 'db: {pool: 10}\n',
    'orders/application.yml': 'db: {pool: 20, timeout: 3s}\n',
    'orders/application-dev.yml': 'db: {timeout: 9s}\n',
  };

  it('gives application-dev precedence over orders/application', () => {
    expect(plain(configFor(files, 'orders', ['dev']))).toEqual({ 'db|host': 'shared-db', 'db|pool': n('10'), 'db|timeout': '9s' });
    expect(sourcesFor(files, 'orders', ['dev']).map((s) => s.name).reverse()).toEqual([
      'orders/application-dev.yml',
      'application-dev.yml',
      'orders/application.yml',
      'application.yml',
    ]);
  });

  it('lets .properties beat .yml beat .yaml beat .json in one layer', () => {
    const same = {
      'orders/application.json': '{"a": "json", "b": "json", "c": "json", "d": "json"}',
      'orders/application.yaml': 'a: yaml\nb: yaml\nc: yaml\n',
      'orders/application.yml': 'a: yml\nb: yml\n',
      'orders/application.properties': 'a=properties\n',
    };
    expect(plain(configFor(same, 'orders'))).toEqual({ a: 'properties', b: 'yml', c: 'yaml', d: 'json' });
  });
});

describe('case 04: lists replace', () => {
  const files = {
    'application.yml': 'allowed-origins: [https://a.example.com, https://b.example.com, https://c.example.com]\n',
    'application-dev.yml': 'allowed-origins: [https://dev.example.com]\n',
    'orders/application.yml': 'name: orders\n',
  };

  it('keeps only the higher list', () => {
    expect(plain(configFor(files, 'orders', ['dev']))).toEqual({ 'allowed-origins': ['https://dev.example.com'], name: 'orders' });
  });

  it('lets [] replace a list', () => {
    expect(plain(configFor({ ...files, 'application-dev.yml': 'allowed-origins: []\n' }, 'orders', ['dev']))).toEqual({
      'allowed-origins': [],
      name: 'orders',
    });
  });

  it('lets a properties list replace a YAML list whole', () => {
    expect(plain(configFor({ ...files, 'application-dev.properties': 'allowed-origins[0]=https://p.example.com\n' }, 'orders', ['dev']))).toEqual({
      'allowed-origins': ['https://p.example.com'],
      name: 'orders',
    });
  });
});
