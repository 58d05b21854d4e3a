import { beforeAll, describe, expect, it } from 'vitest';
import { flatten, toTree } from '../../src/config/tree.js';
import { pathKey } from '../../src/config/paths.js';
import { applySecrets, applySecretsToFlatMap, applySecretsToSource, REDACTED, secretKeysOf } from '../../src/secrets/apply.js';
import { DECRYPT_REASONS, encryptValue } from '../../src/secrets/envelope.js';
import { createKeyring, type Keyring } from '../../src/secrets/keyring.js';
import { configOf } from '../config/helpers.js';
import { leakedIn, payloadOf, rsaKey, tempDir, thrown, type TestKey } from './keys.js';

let k1: TestKey;
let k2: TestKey;
let ring: Keyring;
const c: Record<string, string> = {};

beforeAll(() => {
  const dir = tempDir('apply');
  k1 = rsaKey(dir, 'k1');
  k2 = rsaKey(dir, 'k2');
  ring = createKeyring([k1, k2], 'k2');
  c.password = encryptValue('db-pass-ü', k1);
  c.item = encryptValue('list-item', k2);
  c.token = encryptValue('tok-123', k2);
  c.deep = encryptValue('deep', k1);
  c.annotated = encryptValue('annotated', k2);
  c.props = encryptValue('from-properties', k1);
});

/** YAML with secrets at the top level, in lists, in maps in lists, in lists in lists, under a bracketed key. */
function yaml(): string {
  return [
    'db:',
    '  user: app',
    `  password: '${c.password}'`,
    'list:',
    '  - plain',
    `  - '${c.item}'`,
    `  - token: '${c.token}'`,
    '    name: x',
    `  - ['${c.deep}', nested]`,
    'annotations:',
    `  "[app.example.com/secret]": '${c.annotated}'`,
    "note: 'see {cipher} in the docs'",
    'port: 8080',
    'on: true',
    '',
  ].join('\n');
}

const SECRET_KEYS = ['annotations[app.example.com/secret]', 'db.password', 'list[1]', 'list[2].token', 'list[3][0]'];

describe('applySecrets', () => {
  it('decrypt: every {cipher} value anywhere becomes its plaintext; exact output', () => {
    const config = configOf(yaml());
    const { config: out, secretKeys } = applySecrets(config, 'decrypt', ring);
    expect(secretKeys).toEqual(SECRET_KEYS);
    expect(flatten(out)).toEqual([
      ['annotations[app.example.com/secret]', 'annotated'],
      ['db.password', 'db-pass-ü'],
      ['db.user', 'app'],
      ['list[0]', 'plain'],
      ['list[1]', 'list-item'],
      ['list[2].name', 'x'],
      ['list[2].token', 'tok-123'],
      ['list[3][0]', 'deep'],
      ['list[3][1]', 'nested'],
      ['note', 'see {cipher} in the docs'],
      ['on', 'true'],
      ['port', '8080'],
    ]);
    expect(toTree(out)).toEqual({
      annotations: { 'app.example.com/secret': 'annotated' },
      db: { password: 'db-pass-ü', user: 'app' },
      list: ['plain', 'list-item', { name: 'x', token: 'tok-123' }, ['deep', 'nested']],
      note: 'see {cipher} in the docs',
      on: true,
      port: { kind: 'number', text: '8080' },
    });
  });

  it('redact: every {cipher} value becomes "<redacted>"; same secretKeys; no key needed', () => {
    const config = configOf(yaml());
    const { config: out, secretKeys } = applySecrets(config, 'redact', createKeyring([]));
    expect(secretKeys).toEqual(SECRET_KEYS);
    expect(REDACTED).toBe('<redacted>');
    expect(toTree(out)).toEqual({
      annotations: { 'app.example.com/secret': '<redacted>' },
      db: { password: '<redacted>', user: 'app' },
      list: ['plain', '<redacted>', { name: 'x', token: '<redacted>' }, ['<redacted>', 'nested']],
      note: 'see {cipher} in the docs',
      on: true,
      port: { kind: 'number', text: '8080' },
    });
    const text = JSON.stringify(toTree(out));
    for (const v of Object.values(c)) expect(text).not.toContain(payloadOf(v));
  });

  it('keeps key order, origins, and the very same objects for properties without secrets', () => {
    const config = configOf(yaml());
    const { config: out } = applySecrets(config, 'decrypt', ring);
    expect([...out.keys()]).toEqual([...config.keys()]);
    const user = pathKey(['db', 'user']);
    const pw = pathKey(['db', 'password']);
    expect(out.get(user)).toBe(config.get(user));
    expect(out.get(pw)).not.toBe(config.get(pw));
    expect(out.get(pw)?.origin).toEqual(config.get(pw)?.origin);
    expect(config.get(pw)?.value).toBe(c.password); // the input is not modified
  });

  it('secretKeysOf names the same keys without decrypting; sorts list indices numerically', () => {
    expect(secretKeysOf(configOf(yaml()))).toEqual(SECRET_KEYS);
    const many = configOf(`xs: [${Array.from({ length: 12 }, (_, i) => (i % 5 === 0 ? `'${c.item}'` : `v${i}`)).join(', ')}]\n`);
    expect(secretKeysOf(many)).toEqual(['xs[0]', 'xs[5]', 'xs[10]']);
    expect(secretKeysOf(configOf('a: 1\nb: [x, {y: z}]\n'))).toEqual([]);
  });

  it('fails closed: one undecryptable value fails the whole request, naming its key and key id', () => {
    const tampered = (() => {
      const raw = Buffer.from(payloadOf(c.token!), 'base64');
      raw[raw.length - 1] = raw[raw.length - 1]! ^ 0xff;
      return `{cipher}{key:k2}${raw.toString('base64')}`;
    })();
    const config = configOf(yaml().replace(c.token!, tampered));
    const err = thrown(() => applySecrets(config, 'decrypt', ring));
    expect(err.code).toBe('CFG_ERR_SECRET_DECRYPT_FAILED');
    expect(err.statusCode).toBe(422);
    // The file and line are those of the property (the list `list`), from its origin.
    expect(err.message).toBe(`Cannot decrypt the secret at key 'list[2].token' in orders/application.yml:4:1 (key id 'k2'): ${DECRYPT_REASONS.authentication}`);
    expect(err.data).toEqual({ key: 'list[2].token', keyId: 'k2', reason: DECRYPT_REASONS.authentication, document: 'orders/application.yml', line: 4, column: 1 });
    expect(leakedIn(err, ['tok-123', 'db-pass-ü', payloadOf(tampered), payloadOf(c.password!)])).toEqual([]);
    // redact mode does not decrypt, so it does not fail
    expect(applySecrets(config, 'redact', ring).secretKeys).toEqual(SECRET_KEYS);
  });

  it('an unknown key id fails with that key id; a lower layer is never served instead', () => {
    const k3 = rsaKey(tempDir('apply3'), 'k3');
    const other = encryptValue('unreachable', k3);
    const config = configOf(`db:\n  password: '${other}'\n`);
    const err = thrown(() => applySecrets(config, 'decrypt', ring));
    expect(err.data).toEqual({ key: 'db.password', keyId: 'k3', reason: DECRYPT_REASONS.unknownKey, document: 'orders/application.yml', line: 2, column: 3 });
  });
});

describe('applySecretsToSource / applySecretsToFlatMap (Spring property sources)', () => {
  it('a property source: decrypt and redact, unsets kept', () => {
    const origin = { document: 'orders.properties' };
    const source = {
      name: 'orders.properties',
      entries: [
        { path: ['db', 'password'], value: c.props!, origin },
        { path: ['db', 'user'], value: 'app', origin },
        { path: ['hosts'], value: ['a', c.item!], origin },
        { path: ['gone'], value: null, origin },
      ],
    };
    const dec = applySecretsToSource(source, 'decrypt', ring);
    expect(dec.secretKeys).toEqual(['db.password', 'hosts[1]']);
    expect(dec.source.name).toBe('orders.properties');
    expect(dec.source.entries.map((e) => e.value)).toEqual(['from-properties', 'app', ['a', 'list-item'], null]);
    expect(dec.source.entries[1]).toBe(source.entries[1]);
    const red = applySecretsToSource(source, 'redact', ring);
    expect(red.source.entries.map((e) => e.value)).toEqual([REDACTED, 'app', ['a', REDACTED], null]);
  });

  it('a flattened map: names as given, order kept', () => {
    const flat = { 'z.secret': c.props!, 'a.plain': 'x', 'list[0]': c.item!, port: 8080 };
    const dec = applySecretsToFlatMap(flat, 'decrypt', ring);
    expect(dec.source).toEqual({ 'z.secret': 'from-properties', 'a.plain': 'x', 'list[0]': 'list-item', port: 8080 });
    expect(Object.keys(dec.source)).toEqual(Object.keys(flat));
    expect(dec.secretKeys).toEqual(['list[0]', 'z.secret']);
    expect(applySecretsToFlatMap(flat, 'redact', ring).source).toEqual({ 'z.secret': REDACTED, 'a.plain': 'x', 'list[0]': REDACTED, port: 8080 });
    const err = thrown(() => applySecretsToFlatMap({ 'z.secret': '{cipher}AAAA' }, 'decrypt', ring));
    expect(err.data?.key).toBe('z.secret');
  });
});
