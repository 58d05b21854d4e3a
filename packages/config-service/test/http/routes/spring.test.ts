import { describe, expect, it } from 'vitest';
import { flattenSource, parseFlatDocument, renderSpringEnvironment, springLabel, toSpringEnvironment } from '../../../src/http/routes/spring.js';
import { parseDocument } from '../../../src/config/parse.js';
import type { PropertySource } from '../../../src/config/types.js';

const source = (path: string, text: string): PropertySource[] =>
  parseDocument({ path, bytes: new TextEncoder().encode(text) }).sources.map((s) => s.source);

describe('springLabel', () => {
  it.each([
    ['feature(_)pay-42', 'feature/pay-42'],
    ['feature/pay-42', 'feature/pay-42'],
    ['a(_)b(_)c', 'a/b/c'],
    ['orders#1.4-ab12cd', 'orders#1.4-ab12cd'],
    ['v1.2.0', 'v1.2.0'],
  ])('%s → %s', (raw, ref) => expect(springLabel(raw)).toBe(ref));

  it.each(['feature(_)..(_)x', 'feature/../x', 'a(_)(_)b', '(_)', '', 'x.lock', 'a@{1}', '(_)etc'])('refuses %j with CFG_ERR_INVALID_REF', (raw) => {
    expect(() => springLabel(raw)).toThrow(expect.objectContaining({ code: 'CFG_ERR_INVALID_REF', statusCode: 400 }));
  });
});

describe('parseFlatDocument', () => {
  it.each([
    ['orders-dev.yml', { app: 'orders', profiles: 'dev', format: 'yaml' }],
    ['orders-dev.yaml', { app: 'orders', profiles: 'dev', format: 'yaml' }],
    ['orders-dev,eu.properties', { app: 'orders', profiles: 'dev,eu', format: 'properties' }],
    ['my-app-dev.json', { app: 'my-app', profiles: 'dev', format: 'json' }],
    ['foo-development-db.yml', { app: 'foo-development', profiles: 'db', format: 'yaml' }],
  ])('%s', (segment, expected) => expect(parseFlatDocument(segment)).toEqual(expected));

  it.each(['orders.yml', 'orders-.yml', '-dev.yml', 'orders-dev.txt', 'orders-dev', 'orders-dev.yml.bak'])('%s is not a document request', (segment) => {
    expect(parseFlatDocument(segment)).toBeUndefined();
  });
});

describe('flattenSource', () => {
  it('flattens like YamlProcessor: lists indexed, empty list "", nulls left out, document order, typed values', () => {
    const [s] = source(
      'orders/application.yml',
      'z: 1\nlist: [a, {host: h, port: 2}, [x]]\nempty: []\nunset: ~\nflag: true\n"[a.b/c]": v\nbig: 123456789012345678901\n',
    );
    expect(flattenSource(s!)).toEqual([
      ['z', { kind: 'number', text: '1' }],
      ['list[0]', 'a'],
      ['list[1].host', 'h'],
      ['list[1].port', { kind: 'number', text: '2' }],
      ['list[2][0]', 'x'],
      ['empty', ''],
      ['flag', true],
      ['[a.b/c]', 'v'],
      ['big', { kind: 'number', text: '123456789012345678901' }],
    ]);
  });
});

describe('renderSpringEnvironment', () => {
  it('writes Spring field order, highest source first, exact number digits, no repository URL', () => {
    const sources = [...source('application.yml', 'a: 1\n---\nspring.config.activate.on-profile: dev\nb: 2.50\n'), ...source('orders/application-dev.yml', 's: "x\\"y"\n')];
    const env = toSpringEnvironment({ app: 'orders', profiles: ['dev'], label: 'feature/x', commit: 'c'.repeat(40), sources });
    expect(renderSpringEnvironment(env)).toBe(
      `{"name":"orders","profiles":["dev"],"label":"feature/x","version":"${'c'.repeat(40)}","state":null,"propertySources":[` +
        '{"name":"orders/application-dev.yml","source":{"s":"x\\"y"}},' +
        '{"name":"application.yml (document #1)","source":{"b":2.50}},' +
        '{"name":"application.yml (document #0)","source":{"a":1}}]}',
    );
  });
});
