/**
 * `.properties` values typed by the application's schema (issue 11), through the whole
 * serving pipeline (`AppConfigReader.readRendered`) over a real working tree.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AppConfigReader } from '../../src/config/app-config.js';
import { DirectorySource } from '../../src/validate/directory-source.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function reader(files: Record<string, string>): Promise<AppConfigReader> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'coerce-'));
  dirs.push(dir);
  for (const [p, c] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    writeFileSync(path.join(dir, p), c);
  }
  return new AppConfigReader(await DirectorySource.open(dir), 'folders');
}

const SCHEMA = JSON.stringify({
  type: 'object',
  properties: {
    'max-items': { type: 'integer' },
    enabled: { type: 'boolean' },
    ratio: { type: 'number' },
    big: { type: 'integer' },
    code: { type: 'string' },
    ports: { type: 'array', items: { type: 'integer' } },
    either: { anyOf: [{ type: 'integer' }, { type: 'string', pattern: '^x' }] },
    db: { type: 'object', properties: { pool: { type: 'integer' } } },
  },
});

const FILES = {
  'application.yml': 'max-items: 100\n',
  'orders/application.yml': 'db:\n  pool: 10\n',
  'orders/application-dev.properties': 'max-items=5\nenabled=true\nratio=2.5\nbig=12345678901234567891\ncode=007\nports[0]=80\nports[1]=443\neither=42\ndb.pool=007\nfree=3\n',
  'orders/schema.json': SCHEMA,
};

async function json(r: AppConfigReader, profiles: string[], resolve = true): Promise<string> {
  return (await r.readRendered('w', 'orders', profiles, 'json', { resolve })).text;
}

describe('.properties values and the schema', () => {
  it('take the schema\'s types: the served type of a key no longer depends on the profile', async () => {
    const r = await reader(FILES);
    expect(JSON.parse(await json(r, []))).toEqual({ db: { pool: 10 }, 'max-items': 100 });
    const dev = await json(r, ['dev']);
    // Exact digits beyond 2^53; a key the schema types as string stays a string; a key it does not know stays a string.
    expect(dev).toBe(
      '{\n  "big": 12345678901234567891,\n  "code": "007",\n  "db": {\n    "pool": 7\n  },\n  "either": 42,\n  "enabled": true,\n  "free": "3",\n  "max-items": 5,\n  "ports": [\n    80,\n    443\n  ],\n  "ratio": 2.5\n}\n',
    );
    // resolve=false serves the same types.
    expect(await json(r, ['dev'], false)).toBe(dev);
    // Text formats read the same either way.
    expect((await r.readRendered('w', 'orders', ['dev'], 'properties', { resolve: true })).text).toContain('max-items=5\n');
  });

  it('a value that cannot take the declared type is the usual 422 naming file, line and key, never the value', async () => {
    const r = await reader({ ...FILES, 'orders/application-dev.properties': 'max-items=0x10\nenabled=yes\n' });
    await expect(json(r, ['dev'])).rejects.toMatchObject({
      code: 'CFG_ERR_SCHEMA_VIOLATION',
      message: "orders/schema.json: at 'max-items': must be integer (set in orders/application-dev.properties:1:1)",
    });
    const bool = await reader({ ...FILES, 'orders/application-dev.properties': 'enabled=yes\n' });
    await expect(json(bool, ['dev'])).rejects.toMatchObject({ message: "orders/schema.json: at 'enabled': must be boolean (set in orders/application-dev.properties:1:1)" });
    const only = await reader({ ...FILES, 'orders/application-dev.properties': 'max-items=5.5\n' });
    await expect(json(only, ['dev'])).rejects.toMatchObject({
      message: "orders/schema.json: at 'max-items': must be integer (set in orders/application-dev.properties:1:1)",
    });
  });

  it('YAML and JSON values are never converted: a quoted "5" is still refused by an integer schema', async () => {
    const r = await reader({ ...FILES, 'orders/application-dev.yml': 'max-items: "5"\n', 'orders/application-dev.properties': '' });
    await expect(json(r, ['dev'])).rejects.toMatchObject({ code: 'CFG_ERR_SCHEMA_VIOLATION', message: expect.stringContaining("at 'max-items': must be integer") });
  });

  it('without a schema, .properties values stay strings', async () => {
    const { 'orders/schema.json': _schema, ...rest } = FILES;
    const r = await reader(rest);
    expect(JSON.parse(await json(r, ['dev']))).toMatchObject({ 'max-items': '5', enabled: 'true', ports: ['80', '443'] });
  });

  it('placeholders resolve first, then the value is typed', async () => {
    const r = await reader({ ...FILES, 'orders/application-dev.properties': 'base=40\nmax-items=${base}\n' });
    expect(JSON.parse(await json(r, ['dev']))).toMatchObject({ 'max-items': 40, base: '40' });
  });
});
