/**
 * Placeholders over secrets through the real serving pipeline (`AppConfigReader.readRendered`
 * over a working tree, `secretsStep` with real keys): placeholders resolve after
 * decryption for `secrets:read`, are refused for everyone else, are masked by explain;
 * copies stay secrets; bindings are checked per document; schemas see the final values.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { AppConfigReader } from '../../src/config/app-config.js';
import { DirectorySource } from '../../src/validate/directory-source.js';
import { secretsStep } from '../../src/secrets/apply.js';
import { encryptValue } from '../../src/secrets/envelope.js';
import { createKeyring, type Keyring } from '../../src/secrets/keyring.js';
import { rsaKey, tempDir, type TestKey } from './keys.js';

let k1: TestKey;
let k2: TestKey;
let ring: Keyring;
let reader: AppConfigReader;
const c: Record<string, string> = {};

function write(root: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text);
  }
}

beforeAll(async () => {
  const dir = tempDir('placeholders');
  k1 = rsaKey(dir, 'k1');
  k2 = rsaKey(dir, 'k2');
  ring = createKeyring([k1, k2], 'k2');
  c.orders = encryptValue('pw-Ü&1', k2, 'app:orders');
  c.shared = encryptValue('shared-token', k1, 'shared');
  c.legacy = encryptValue('legacy-${not.a.placeholder}', k1);
  const root = tempDir('placeholders-repo');
  write(root, {
    'application.yml': [`shared:`, `  token: '${c.shared}'`, `  alias: '\${db.password:none}'`, ''].join('\n'),
    'orders/application.yml': [
      'db:',
      `  password: '${c.orders}'`,
      '  url: jdbc:postgresql://db/app?password=${db.password}',
      '  copy: ${db.password}',
      `  legacy: '${c.legacy}'`,
      'api:',
      '  url: https://api/?t=${shared.token}&l=${db.legacy}',
      '  chained: ${db.url}&ssl=true',
      'plain: ${name:orders}',
      '',
    ].join('\n'),
    'orders/schema.json': JSON.stringify({
      type: 'object',
      properties: {
        db: {
          type: 'object',
          properties: {
            // The final value: the plaintext inside; a secret itself is still its {cipher} text.
            url: { type: 'string', pattern: '^jdbc:postgresql://db/app\\?password=\\S+$' },
            password: { type: 'string', pattern: '^\\{cipher\\}' },
          },
        },
      },
    }),
    'narrow/application.yml': [`db:`, `  password: '${encryptValue('pw-narrow', k2, 'app:narrow')}'`, '  url: x?password=${db.password}', ''].join('\n'),
    'narrow/schema.json': JSON.stringify({ properties: { db: { properties: { url: { maxLength: 5 } } } } }),
    'billing/application.yml': ['db:', `  password: '${c.orders}'`, ''].join('\n'),
    'keyname/application.yml': [`k: '${encryptValue('x', k1, 'app:keyname')}'`, 'v: ${a.${k}}', ''].join('\n'),
  });
  reader = new AppConfigReader(await DirectorySource.open(root), 'folders');
});

const render = (app: string, mode: 'decrypt' | 'redact' | 'explain', resolve = true, keys: Keyring = ring) =>
  reader.readRendered('worktree', app, [], 'json', { resolve, secrets: secretsStep(mode, keys), ...(mode === 'explain' && { explain: true }) });

describe('placeholders over secrets', () => {
  it('secrets:read: placeholders resolve after decryption; composed and copied keys are secret keys; key ids listed', async () => {
    const out = await render('orders', 'decrypt');
    expect(JSON.parse(out.text)).toEqual({
      api: { chained: 'jdbc:postgresql://db/app?password=pw-Ü&1&ssl=true', url: 'https://api/?t=shared-token&l=legacy-${not.a.placeholder}' },
      db: {
        copy: 'pw-Ü&1',
        legacy: 'legacy-${not.a.placeholder}',
        password: 'pw-Ü&1',
        url: 'jdbc:postgresql://db/app?password=pw-Ü&1',
      },
      plain: 'orders',
      // A shared document's copy of the app's secret decrypts as written in orders/ (its binding).
      shared: { alias: 'pw-Ü&1', token: 'shared-token' },
    });
    expect(out.secretKeys).toEqual(['api.chained', 'api.url', 'db.copy', 'db.legacy', 'db.password', 'db.url', 'shared.alias', 'shared.token']);
    expect(out.secretKeyIds).toEqual(['k1', 'k2']);
  });

  it('without secrets:read: a value composing a secret is refused (422 secret_reference), naming keys only', async () => {
    const err = await render('orders', 'redact').then(
      () => {
        throw new Error('expected a refusal');
      },
      (e: Error & { code?: string; statusCode?: number; data?: unknown }) => e,
    );
    expect(err.code).toBe('CFG_ERR_SECRET_REFERENCE');
    expect(err.statusCode).toBe(422);
    // Key order: api.chained (through db.url) comes first.
    expect(err.message).toBe(
      "orders/application.yml:3:3: key 'db.url' puts the secret at key 'db.password' into a longer value, which is served only to callers allowed secrets:read (reached from key 'api.chained': api.chained -> db.url)",
    );
    expect(err.data).toEqual({ kind: 'secret', key: 'api.chained', chain: ['api.chained', 'db.url'], secret: 'db.password', document: 'orders/application.yml', line: 3, column: 3 });
    expect(JSON.stringify({ m: err.message, d: err.data })).not.toMatch(/pw-|cipher\}\{key/);
  });

  it('without secrets:read and resolve=false: served as written, secrets redacted', async () => {
    const out = await render('orders', 'redact', false);
    expect(JSON.parse(out.text).db).toEqual({
      copy: '${db.password}',
      legacy: '<redacted>',
      password: '<redacted>',
      url: 'jdbc:postgresql://db/app?password=${db.password}',
    });
    expect(out.secretKeys).toEqual(['db.legacy', 'db.password', 'shared.token']);
    expect(out.secretKeyIds).toEqual([]);
  });

  it('explain masks composed values and copies, never refusing and never decrypting', async () => {
    const out = await render('orders', 'explain');
    const body = JSON.parse(out.text) as { config: Record<string, Record<string, string>>; properties: Record<string, { value: string }> };
    expect(body.config.db).toEqual({ copy: '<redacted>', legacy: '<redacted>', password: '<redacted>', url: '<redacted>' });
    expect(body.config.api).toEqual({ chained: '<redacted>', url: '<redacted>' });
    expect(body.properties['db.url']?.value).toBe('<redacted>');
    expect(out.text).not.toMatch(/pw-|shared-token|legacy-|\{cipher\}/);
    expect(out.secretKeyIds).toEqual([]);
  });

  it('the schema checks the final value; its message never quotes it', async () => {
    const e = await render('narrow', 'decrypt').catch((x: Error & { code?: string }) => x);
    expect((e as { code?: string }).code).toBe('CFG_ERR_SCHEMA_VIOLATION');
    expect((e as Error).message).toBe("narrow/schema.json: at 'db.url': must NOT have more than 5 characters (set in narrow/application.yml:3:3)");
    expect((e as Error).message).not.toContain('pw-narrow');
  });

  it('a bound value copied into another application is refused with file, key, key id and reason', async () => {
    const e = (await render('billing', 'decrypt').catch((x: unknown) => x)) as Error & { data?: unknown };
    expect(e.message).toBe(
      "Cannot decrypt the secret at key 'db.password' in billing/application.yml:2:3 (key id 'k2'): bound to another application (the value is bound to application 'orders')",
    );
    // Redacted callers decrypt nothing, so they are not affected.
    expect(JSON.parse((await render('billing', 'redact')).text).db).toEqual({ password: '<redacted>' });
  });

  it('requireBinding refuses the unbound value, naming its document', async () => {
    const strict = createKeyring([k1, k2], 'k2', { requireBinding: true });
    const e = (await render('orders', 'decrypt', true, strict).catch((x: unknown) => x)) as Error;
    expect(e.message).toBe(
      "Cannot decrypt the secret at key 'db.legacy' in orders/application.yml:5:3 (key id 'k1'): the value is not bound to an application (secrets.requireBinding is on)",
    );
  });

  it('a secret can never name a placeholder key', async () => {
    for (const mode of ['decrypt', 'redact'] as const) {
      const e = (await render('keyname', mode).catch((x: unknown) => x)) as Error & { code?: string };
      expect(e.code).toBe('CFG_ERR_SECRET_REFERENCE');
      expect(e.message).toBe("keyname/application.yml:2:1: a placeholder key in key 'v' is built from the secret at key 'k'; a secret cannot name a key");
    }
  });
});
