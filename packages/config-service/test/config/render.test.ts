import dotenv from 'dotenv';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { render } from '../../src/config/render.js';
import { toTree } from '../../src/config/tree.js';
import type { MergedConfig, TreeValue } from '../../src/config/types.js';
import { configFor, configOf } from './helpers.js';

function thrown(fn: () => unknown): Error & { code?: string; data?: Record<string, unknown> } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string; data?: Record<string, unknown> };
  }
  throw new Error('expected an error');
}

/** The tree as `yaml.parse(..., { intAsBigInt: true })` would give it. */
function asJs(v: TreeValue): unknown {
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (Array.isArray(v)) return v.map(asJs);
  if (typeof v === 'object' && (v as { kind?: string }).kind === 'number') {
    const text = (v as { text: string }).text;
    return /^-?[0-9]+$/.test(text) ? BigInt(text) : Number(text);
  }
  return Object.fromEntries(Object.entries(v as Record<string, TreeValue>).map(([k, x]) => [k, asJs(x)]));
}

/** Checks that the YAML output reads back to the same tree under YAML 1.2 and YAML 1.1. */
function expectYamlRoundTrip(config: MergedConfig): string {
  const text = render(config, 'yaml');
  const expected = asJs(toTree(config));
  expect(parseYaml(text, { version: '1.2', intAsBigInt: true })).toEqual(expected);
  expect(parseYaml(text, { version: '1.1', intAsBigInt: true })).toEqual(expected);
  return text;
}

const CASE_03 = {
  'application.yml': 'db: {pool: 5, host: shared-db}\n',
  'application-dev.yml': 'db: {pool: 10}\n',
  'orders/application.yml': 'db: {pool: 20, timeout: 3s}\n',
  'orders/application-dev.yml': 'db: {timeout: 9s}\n',
};

describe('case 03: the same values in every format', () => {
  const config = configFor(CASE_03, 'orders', ['dev']);
  it('json', () => {
    expect(render(config, 'json')).toBe('{\n  "db": {\n    "host": "shared-db",\n    "pool": 10,\n    "timeout": "9s"\n  }\n}\n');
  });
  it('yaml', () => {
    expect(expectYamlRoundTrip(config)).toBe('db:\n  host: shared-db\n  pool: 10\n  timeout: 9s\n');
  });
  it('properties', () => {
    expect(render(config, 'properties')).toBe('db.host=shared-db\ndb.pool=10\ndb.timeout=9s\n');
  });
  it('env', () => {
    expect(render(config, 'env')).toBe("export DB_HOST='shared-db'\nexport DB_POOL='10'\nexport DB_TIMEOUT='9s'\n");
  });
  it('dotenv', () => {
    expect(render(config, 'dotenv')).toBe("DB_HOST='shared-db'\nDB_POOL='10'\nDB_TIMEOUT='9s'\n");
  });
});

describe('case 04: lists replace', () => {
  const files = {
    'application.yml': 'allowed-origins: [https://a.example.com, https://b.example.com, https://c.example.com]\n',
    'application-dev.yml': 'allowed-origins: [https://dev.example.com]\n',
    'orders/application.yml': 'name: orders\n',
  };
  const config = configFor(files, 'orders', ['dev']);
  it('json, properties, env', () => {
    expect(render(config, 'json')).toBe('{\n  "allowed-origins": [\n    "https://dev.example.com"\n  ],\n  "name": "orders"\n}\n');
    expect(render(config, 'properties')).toBe('allowed-origins[0]=https\\://dev.example.com\nname=orders\n');
    expect(render(config, 'env')).toBe("export ALLOWED_ORIGINS_0='https://dev.example.com'\nexport NAME='orders'\n");
  });
  it('[] stays []', () => {
    const empty = configFor({ ...files, 'application-dev.yml': 'allowed-origins: []\n' }, 'orders', ['dev']);
    expect(render(empty, 'json')).toBe('{\n  "allowed-origins": [],\n  "name": "orders"\n}\n');
    expect(render(empty, 'properties')).toBe('allowed-origins=\nname=orders\n');
    expect(render(empty, 'env')).toBe("export ALLOWED_ORIGINS=''\nexport NAME='orders'\n");
  });
});

describe('case 05: YAML 1.1 words', () => {
  const config = configOf('feature:\n  mode: on\ncountry: NO\nconfirm: yes\nlegacy: True\n');
  it('json', () => {
    expect(JSON.stringify(JSON.parse(render(config, 'json')))).toBe('{"confirm":"yes","country":"NO","feature":{"mode":"on"},"legacy":true}');
  });
  it('yaml quotes the words for YAML 1.1 readers', () => {
    expect(expectYamlRoundTrip(config)).toBe('confirm: "yes"\ncountry: "NO"\nfeature:\n  mode: "on"\nlegacy: true\n');
  });
  it('properties, env, dotenv', () => {
    expect(render(config, 'properties')).toBe('confirm=yes\ncountry=NO\nfeature.mode=on\nlegacy=true\n');
    expect(render(config, 'env')).toBe("export CONFIRM='yes'\nexport COUNTRY='NO'\nexport FEATURE_MODE='on'\nexport LEGACY='true'\n");
    expect(dotenv.parse(render(config, 'dotenv'))).toEqual({ CONFIRM: 'yes', COUNTRY: 'NO', FEATURE_MODE: 'on', LEGACY: 'true' });
  });
});

describe('case 06: number fidelity', () => {
  const config = configOf('snowflake-id: 12345678901234567891\nfile-mode: 0640\nfile-mode-octal: 0o640\napi-version: 2010-09-09\n');
  it('json keeps the digits', () => {
    const body = render(config, 'json');
    expect(body).toBe('{\n  "api-version": "2010-09-09",\n  "file-mode": 640,\n  "file-mode-octal": 416,\n  "snowflake-id": 12345678901234567891\n}\n');
    expect(body).toContain('12345678901234567891');
  });
  it('yaml, properties, env', () => {
    expect(expectYamlRoundTrip(config)).toBe('api-version: "2010-09-09"\nfile-mode: 640\nfile-mode-octal: 416\nsnowflake-id: 12345678901234567891\n');
    expect(render(config, 'properties')).toBe('api-version=2010-09-09\nfile-mode=640\nfile-mode-octal=416\nsnowflake-id=12345678901234567891\n');
    expect(render(config, 'env')).toBe("export API_VERSION='2010-09-09'\nexport FILE_MODE='640'\nexport FILE_MODE_OCTAL='416'\nexport SNOWFLAKE_ID='12345678901234567891'\n");
  });
});

describe('case 07: dotted keys', () => {
  const config = configFor(
    {
      'application.yml': 'logging.level:\n  com.example: INFO\n',
      'orders/application-dev.yml': 'logging:\n  level:\n    com.example.db: DEBUG\nannotations:\n  "[app.example.com/source]": https://git.example.com/orders\n',
    },
    'orders',
    ['dev'],
  );
  it('json and yaml', () => {
    expect(JSON.stringify(JSON.parse(render(config, 'json')))).toBe(
      '{"annotations":{"app.example.com/source":"https://git.example.com/orders"},"logging":{"level":{"com":{"example":"INFO","example.db":"DEBUG"}}}}',
    );
    expect(expectYamlRoundTrip(config)).toBe(
      'annotations:\n  app.example.com/source: https://git.example.com/orders\nlogging:\n  level:\n    com:\n      example: INFO\n      example.db: DEBUG\n',
    );
  });
  it('properties', () => {
    expect(render(config, 'properties')).toBe(
      'annotations[app.example.com/source]=https\\://git.example.com/orders\nlogging.level.com.example=INFO\nlogging.level.com.example.db=DEBUG\n',
    );
  });
  it('422 for two spellings in one document', () => {
    const err = thrown(() => configOf('a.b: 1\na: {b: 2}\n'));
    expect(err.code).toBe('CFG_ERR_DOCUMENT_INVALID');
    expect((err as { statusCode?: number }).statusCode).toBe(422);
    expect(err.message).toBe('orders/application.yml:2:5: two spellings of one property path with different values: "a.b" (line 1, column 1) and "a" > "b" (line 2, column 5)');
  });
});

describe('case 09: properties output', () => {
  const config = configOf(
    '"odd key:x=y": v\nmotd: "line1\\nline2"\nindent: "  two leading spaces"\nwin-path: \'C:\\new\\table\'\nprice: "5€ #1 !"\nemoji: "ok 😀"\n',
  );
  it('is pure ASCII with Java escapes', () => {
    const text = render(config, 'properties');
    expect(text).toBe(
      'emoji=ok \\uD83D\\uDE00\nindent=\\  two leading spaces\nmotd=line1\\nline2\nodd\\ key\\:x\\=y=v\nprice=5\\u20AC \\#1 \\!\nwin-path=C\\:\\\\new\\\\table\n',
    );
    expect(/^[\x20-\x7e\n]*$/.test(text)).toBe(true);
  });
});

describe('case 10: env and dotenv quoting', () => {
  const config = configOf(
    'db:\n  password: "pa$$word#1 x"\nwin: \'C:\\new\\x\'\ngreeting: "it\'s \\"ok\\""\nempty: ""\nmixed: \'a\'\'b"c`d $(id)\'\ntls:\n  key: |\n    -----BEGIN PRIVATE KEY-----\n    MIIBfakeFAKEfake\n    -----END PRIVATE KEY-----\n',
  );
  it('env uses single quotes', () => {
    expect(render(config, 'env')).toBe(
      "export DB_PASSWORD='pa$$word#1 x'\nexport EMPTY=''\nexport GREETING='it'\\''s \"ok\"'\nexport MIXED='a'\\''b\"c`d $(id)'\nexport TLS_KEY='-----BEGIN PRIVATE KEY-----\nMIIBfakeFAKEfake\n-----END PRIVATE KEY-----\n'\nexport WIN='C:\\new\\x'\n",
    );
  });
  it('dotenv picks a quoting that dotenv reads back', () => {
    const text = render(config, 'dotenv');
    expect(text).toBe(
      "DB_PASSWORD='pa$$word#1 x'\nEMPTY=''\nGREETING=`it's \"ok\"`\nMIXED=a'b\"c`d $(id)\nTLS_KEY='-----BEGIN PRIVATE KEY-----\nMIIBfakeFAKEfake\n-----END PRIVATE KEY-----\n'\nWIN='C:\\new\\x'\n",
    );
    expect(dotenv.parse(text)).toEqual({
      DB_PASSWORD: 'pa$$word#1 x',
      EMPTY: '',
      GREETING: 'it\'s "ok"',
      MIXED: 'a\'b"c`d $(id)',
      TLS_KEY: '-----BEGIN PRIVATE KEY-----\nMIIBfakeFAKEfake\n-----END PRIVATE KEY-----\n',
      WIN: 'C:\\new\\x',
    });
  });
});
