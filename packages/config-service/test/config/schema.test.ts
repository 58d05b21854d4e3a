/**
 * Application schemas (SPEC §2.4): validation of the merged tree, messages naming key and
 * rule (never the value), invalid schema files, dialects, the compile cache, and
 * `AppConfigReader.readSchema` in both layouts.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AppConfigReader } from '../../src/config/app-config.js';
import { checkSchema, findSchemaViolation, parseSchemaFile, resolveAndCheck, schemaInstance, type AppSchema } from '../../src/config/schema.js';
import { DirectorySource } from '../../src/validate/directory-source.js';
import { configOf } from './helpers.js';

let n = 0;
/** A schema with a fresh blob id (the compile cache is keyed by it). */
function schema(json: unknown, path = 'orders/schema.json'): AppSchema {
  n += 1;
  return { oid: `oid-${n}`, path, json };
}

function thrown(fn: () => unknown): Error & { code?: string; statusCode?: number; data?: unknown } {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected an error');
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('checkSchema', () => {
  const S = schema({
    type: 'object',
    required: ['server'],
    properties: {
      server: { type: 'object', required: ['port'], properties: { port: { type: 'integer', maximum: 65535 } }, additionalProperties: false },
      servers: { type: 'array', items: { type: 'object', properties: { port: { type: 'integer' } } } },
      big: { type: 'integer' },
    },
  });

  it('a configuration that holds passes; exact numbers are JSON numbers for the check', () => {
    expect(() => checkSchema(configOf('server.port: 8080\nbig: 12345678901234567891\nservers: [{port: 1}]\n'), S)).not.toThrow();
    expect(schemaInstance(configOf('server.port: 8080\nf: 1.50\nok: true\nl: [a]\n'))).toEqual({ server: { port: 8080 }, f: 1.5, ok: true, l: ['a'] });
  });

  it('a type violation names the key path, the rule and where the value was set, never the value', () => {
    const err = thrown(() => checkSchema(configOf('server:\n  port: "eighty-eighty"\n'), S));
    expect(err.code).toBe('CFG_ERR_SCHEMA_VIOLATION');
    expect(err.statusCode).toBe(422);
    expect(err.message).toBe("orders/schema.json: at 'server.port': must be integer (set in orders/application.yml:2:3)");
    expect(err.message).not.toContain('eighty');
    expect(err.data).toEqual({ schema: 'orders/schema.json', key: 'server.port', rule: 'must be integer', keyword: 'type' });
  });

  it('required properties, at the root and nested', () => {
    expect(thrown(() => checkSchema(configOf('other: 1\n'), S)).message).toBe("orders/schema.json: at '(root)': must have required property 'server'");
    expect(thrown(() => checkSchema(configOf('server.host: h\n'), S)).message).toBe(
      "orders/schema.json: at 'server': must have required property 'port' (set in orders/application.yml:1:1)",
    );
  });

  it('list elements as [n], additional properties by name, bounds', () => {
    expect(findSchemaViolation(configOf('server.port: 1\nservers:\n  - port: 1\n  - port: x\n'), S)?.key).toBe('servers[1].port');
    expect(thrown(() => checkSchema(configOf('server: {port: 1, extra: 2}\n'), S)).message).toBe(
      "orders/schema.json: at 'server': must NOT have additional properties ('extra') (set in orders/application.yml:1:19)",
    );
    expect(findSchemaViolation(configOf('server.port: 70000\n'), S)).toEqual({
      key: 'server.port',
      rule: 'must be <= 65535',
      keyword: 'maximum',
      origin: { document: 'orders/application.yml', line: 1, column: 1, commit: 'c0ffee' },
      message: "orders/schema.json: at 'server.port': must be <= 65535 (set in orders/application.yml:1:1)",
    });
  });

  it('a value that is also a parent is a dotted key of the tree, as the json format serves it', () => {
    const s = schema({ properties: { logging: { properties: { com: { properties: { 'example.db': { enum: ['DEBUG', 'INFO'] } } } } } } });
    const v = findSchemaViolation(configOf('logging.com.example: INFO\nlogging.com.example.db: LOUD\n'), s);
    expect(v?.message).toBe("orders/schema.json: at 'logging.com.example.db': must be equal to one of the allowed values (set in orders/application.yml:2:1)");
  });

  it('draft 2020-12 and 2019-09 schemas by $schema', () => {
    const s2020 = schema({ $schema: 'https://json-schema.org/draft/2020-12/schema', properties: { pair: { prefixItems: [{ type: 'string' }, { type: 'integer' }] } } });
    expect(findSchemaViolation(configOf('pair: [a, 1]\n'), s2020)).toBeUndefined();
    expect(findSchemaViolation(configOf('pair: [a, b]\n'), s2020)?.message).toBe("orders/schema.json: at 'pair[1]': must be integer (set in orders/application.yml:1:1)");
    const s2019 = schema({ $schema: 'https://json-schema.org/draft/2019-09/schema', dependentRequired: { tls: ['cert'] } });
    expect(findSchemaViolation(configOf('tls: true\n'), s2019)?.rule).toBe('must have property cert when property tls is present');
  });

  it('a schema that does not compile is CFG_ERR_SCHEMA_INVALID naming the file', () => {
    const err = thrown(() => checkSchema(configOf('a: 1\n'), schema({ type: 'nope' }, 'billing/schema.json')));
    expect(err.code).toBe('CFG_ERR_SCHEMA_INVALID');
    expect(err.statusCode).toBe(422);
    expect(err.message).toMatch(/^billing\/schema\.json: not a usable JSON Schema: schema is invalid: /);
  });

  it('compiled schemas are cached by blob id', () => {
    const a = { oid: 'same-oid', path: 'orders/schema.json', json: { properties: { a: { type: 'integer' } } } };
    expect(findSchemaViolation(configOf('a: x\n'), a)?.rule).toBe('must be integer');
    // Same blob id: the cached compilation is used, whatever the JSON says.
    expect(findSchemaViolation(configOf('a: x\n'), { ...a, json: {} })?.rule).toBe('must be integer');
  });
});

describe('parseSchemaFile', () => {
  it('parses JSON (BOM ignored)', () => {
    expect(parseSchemaFile('s.json', enc('\uFEFF{"type": "object"}'))).toEqual({ type: 'object' });
    expect(parseSchemaFile('s.json', enc('true'))).toBe(true);
  });

  it('not JSON: names the file, line and column', () => {
    const err = thrown(() => parseSchemaFile('orders/schema.json', enc('{\n  "type": "object",\n  oops\n}\n')));
    expect(err.code).toBe('CFG_ERR_SCHEMA_INVALID');
    expect(err.message).toBe('orders/schema.json:3:3: not valid JSON');
    expect(thrown(() => parseSchemaFile('orders/schema.json', enc('[1]'))).message).toBe('orders/schema.json: a JSON Schema must be an object or a boolean');
  });
});

describe('resolveAndCheck', () => {
  const reader = (s: AppSchema | null) => ({ readSchema: async () => s });

  it('resolves placeholders, then checks the schema on the resolved values', async () => {
    const s = schema({ properties: { url: { pattern: '^http://' } } });
    const merged = configOf('host: h\nurl: http://${host}/\n');
    const out = await resolveAndCheck(reader(s), 'c', 'orders', merged, { resolve: true });
    expect(out.get('["url"]')?.value).toBe('http://h/');
    await expect(resolveAndCheck(reader(s), 'c', 'orders', configOf('url: ${scheme:ftp}://h\n'), { resolve: true })).rejects.toMatchObject({
      code: 'CFG_ERR_SCHEMA_VIOLATION',
      message: 'orders/schema.json: at \'url\': must match pattern "^http://" (set in orders/application.yml:1:1)',
    });
  });

  it('resolve=false serves the merged configuration as it is and skips the schema', async () => {
    const merged = configOf('port: ${p}\n');
    expect(await resolveAndCheck(reader(schema({ properties: { port: { type: 'integer' } } })), 'c', 'orders', merged, { resolve: false })).toBe(merged);
    await expect(resolveAndCheck(reader(null), 'c', 'orders', merged, { resolve: true })).rejects.toMatchObject({ code: 'CFG_ERR_PLACEHOLDER' });
  });
});

describe('AppConfigReader.readSchema', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  function repo(files: Record<string, string>): string {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-schema-'));
    dirs.push(dir);
    for (const [p, c] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, p)), { recursive: true });
      writeFileSync(join(dir, p), c);
    }
    return dir;
  }

  it('folders: <app>/schema.json', async () => {
    const reader = new AppConfigReader(await DirectorySource.open(repo({ 'orders/application.yml': 'a: 1\n', 'orders/schema.json': '{"type":"object"}' })), 'folders');
    expect(await reader.readSchema('c', 'orders')).toEqual({ oid: expect.stringMatching(/^[0-9a-f]{40}$/), path: 'orders/schema.json', json: { type: 'object' } });
    expect(await reader.readSchema('c', 'billing')).toBeNull();
  });

  it('spring: <app>.schema.json at the root, which is no application of its own', async () => {
    const reader = new AppConfigReader(await DirectorySource.open(repo({ 'orders.yml': 'a: 1\n', 'orders.schema.json': '{"type":"object"}', 'application.yml': 'b: 2\n' })), 'spring');
    expect((await reader.readSchema('c', 'orders'))?.path).toBe('orders.schema.json');
    expect(await reader.listApps('c')).toEqual(['orders']);
    expect(await reader.appExists('c', 'orders.schema')).toBe(false);
  });
});
