/**
 * Handed cases 06–11, 13 and 17 (../shared/cases/) on the real service over mTLS, with the
 * real consumers of each format: java.util.Properties (Java 17), sh and bash, the dotenv
 * parser, and config-init.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import dotenv from 'dotenv';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsGet, makeCerts, makeGitRepo, runGit, runInit, startTestService, type ClientCert, type TestPki, type TestService } from '#helpers';
import { javaLoad } from '../packages/config-service/test/config/java.ts';

let pki: TestPki;
let orders: ClientCert;
let foo: ClientCert;
const services: TestService[] = [];

beforeAll(async () => {
  pki = await makeCerts('cases-formats');
  [orders, foo] = await Promise.all([pki.client('orders'), pki.client('foo')]);
});
afterAll(async () => {
  for (const s of services) await s.close();
});

async function serve(files: Record<string, string | Uint8Array>, layout: 'folders' | 'spring' = 'folders') {
  const repo = await makeGitRepo(files, { branch: 'main' });
  const service = await startTestService({ pki, repository: { path: repo.dir, branch: 'main', layout } });
  services.push(service);
  const get = (p: string, client: ClientCert = orders, headers: Record<string, string> = {}) =>
    httpsGet(service.apiUrl, p, { ca: pki.ca.certPem, cert: client.cert, key: client.key, headers });
  const config = (app: string, profiles: string, format: string, extra: Record<string, string> = {}, client: ClientCert = orders) =>
    get(`/v1/apps/${app}/config?${new URLSearchParams({ ...(profiles && { profile: profiles }), ref: 'main', format, ...extra })}`, client);
  return { repo, service, get, config };
}

describe('case 06: big integers, leading zeros, dates', () => {
  it('keeps exact digits, reads 0640 as decimal and 0o640 as octal, and dates as strings in every format', async () => {
    const { config } = await serve({ 'orders/application.yml': 'snowflake-id: 12345678901234567891\nfile-mode: 0640\nfile-mode-octal: 0o640\napi-version: 2010-09-09\n' });
    const json = await config('orders', '', 'json');
    expect(json.body).toContain('"snowflake-id": 12345678901234567891\n');
    expect(json.body).not.toMatch(/1\.23\d*e\+?19|12345678901234567000/i);
    expect(json.body).toContain('"file-mode": 640,');
    expect(json.body).toContain('"file-mode-octal": 416,');
    expect(json.body).toContain('"api-version": "2010-09-09",');
    const props = await config('orders', '', 'properties');
    expect(props.body).toBe('api-version=2010-09-09\nfile-mode=640\nfile-mode-octal=416\nsnowflake-id=12345678901234567891\n');
    const env = await config('orders', '', 'env');
    expect(env.body).toBe("export API_VERSION='2010-09-09'\nexport FILE_MODE='640'\nexport FILE_MODE_OCTAL='416'\nexport SNOWFLAKE_ID='12345678901234567891'\n");
    const yaml = await config('orders', '', 'yaml');
    // Read back under YAML 1.2 and 1.1 rules, the date stays a string and the numbers stay exact.
    for (const version of ['1.2', '1.1'] as const) {
      const back = parseYaml(yaml.body, { version, intAsBigInt: true }) as Record<string, unknown>;
      expect(back['api-version']).toBe('2010-09-09');
      expect(back['snowflake-id']).toBe(12345678901234567891n);
      expect(back['file-mode']).toBe(640n);
      expect(back['file-mode-octal']).toBe(416n);
    }
  });
});

describe('case 07: dotted keys, nested maps, a value that is also a parent', () => {
  it('keeps both values and the literal dotted key in json, yaml and properties', async () => {
    const { config } = await serve({
      'application.yml': 'logging.level:\n  com.example: INFO\n',
      'orders/application-dev.yml': 'logging:\n  level:\n    com.example.db: DEBUG\nannotations:\n  "[app.example.com/source]": https://git.example.com/orders\n',
    });
    const expected = { annotations: { 'app.example.com/source': 'https://git.example.com/orders' }, logging: { level: { com: { example: 'INFO', 'example.db': 'DEBUG' } } } };
    const json = await config('orders', 'dev', 'json');
    expect(json.status).toBe(200);
    expect(JSON.stringify(json.json())).toBe(JSON.stringify(expected));
    const yaml = await config('orders', 'dev', 'yaml');
    expect(parseYaml(yaml.body)).toEqual(expected);
    const props = await config('orders', 'dev', 'properties');
    expect(props.body).toBe(
      'annotations[app.example.com/source]=https\\://git.example.com/orders\nlogging.level.com.example=INFO\nlogging.level.com.example.db=DEBUG\n',
    );
  });

  it('answers 422 naming the file and both spellings when one document spells a path twice', async () => {
    const { config } = await serve({ 'orders/application.yml': 'a.b: 1\na:\n  b: 2\n' });
    const res = await config('orders', '', 'json');
    expect(res.status).toBe(422);
    const problem = res.json<{ code: string; detail: string }>();
    expect(problem.code).toBe('document_invalid');
    expect(problem.detail).toContain('orders/application.yml');
    expect(problem.detail).toContain('"a.b"');
    expect(problem.detail).toContain('"a" > "b"');
  });
});

describe('case 08: reading .properties', () => {
  it('decodes escapes, continuations, escaped separators and the UTF-8/ISO-8859-1 rule like Java', async () => {
    const latin1 = Buffer.concat([
      Buffer.from('city=B\\u00FCckeburg\ngreeting = Hello\\\n           World\npath=C:\\\\tmp\\\\x\ncolon\\:key=v1\nspaced\\ key=v2\ntag=caf'),
      Buffer.from([0xe9]),
      Buffer.from('\n'),
    ]);
    const { config } = await serve({ 'orders/application.properties': latin1, 'orders/application-dev.properties': 'tag=café\n' });
    const expected = { city: 'Bückeburg', 'colon:key': 'v1', greeting: 'HelloWorld', path: 'C:\\tmp\\x', 'spaced key': 'v2', tag: 'café' };
    for (const profile of ['', 'dev']) {
      const res = await config('orders', profile, 'json');
      expect(res.json()).toEqual(expected);
      expect(res.body).not.toContain('Ã');
      expect(res.body).not.toContain('\uFFFD');
    }
  });
});

describe('case 09: rendered .properties reads back exactly in Java', () => {
  it('is pure ASCII and java.util.Properties reads every key and value back, from bytes and through UTF-8', async () => {
    const { config } = await serve({
      'orders/application.yml': '"odd key:x=y": v\nmotd: "line1\\nline2"\nindent: "  two leading spaces"\nwin-path: \'C:\\new\\table\'\nprice: "5€ #1 !"\nemoji: "ok 😀"\n',
    });
    const res = await config('orders', '', 'properties');
    expect(res.status).toBe(200);
    expect(/^[\x00-\x7f]*$/.test(res.body)).toBe(true);
    const [read] = javaLoad([res.body]);
    const expected = { 'odd key:x=y': 'v', motd: 'line1\nline2', indent: '  two leading spaces', 'win-path': 'C:\\new\\table', price: '5€ #1 !', emoji: 'ok 😀' };
    expect(read!.bytes).toEqual(expected);
    expect(read!.utf8).toEqual(expected);
  });
});

describe('case 10: env and dotenv output', () => {
  const repo = {
    'orders/application.yml': [
      'db:',
      '  password: "pa$$word#1 x"',
      "win: 'C:\\new\\x'",
      'greeting: "it\'s \\"ok\\""',
      'empty: ""',
      "mixed: 'a''b\"c`d $(id)'",
      'tls:',
      '  key: |',
      '    -----BEGIN PRIVATE KEY-----',
      '    MIIBfakeFAKEfake',
      '    -----END PRIVATE KEY-----',
      '',
    ].join('\n'),
  };
  const expected: Record<string, string> = {
    DB_PASSWORD: 'pa$$word#1 x',
    WIN: 'C:\\new\\x',
    GREETING: 'it\'s "ok"',
    EMPTY: '',
    MIXED: 'a\'b"c`d $(id)',
    TLS_KEY: '-----BEGIN PRIVATE KEY-----\nMIIBfakeFAKEfake\n-----END PRIVATE KEY-----\n',
  };

  it('sh and bash sourcing of the env format give every value byte for byte, with nothing executed', async () => {
    const { config } = await serve(repo);
    const res = await config('orders', '', 'env');
    expect(res.status).toBe(200);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'env-'));
    writeFileSync(path.join(dir, 'out.env'), res.body);
    for (const shell of ['sh', 'bash']) {
      for (const [name, value] of Object.entries(expected)) {
        const out = execFileSync(shell, ['-c', `set -a; . ./out.env; printenv ${name}`], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
        expect(out, `${shell} ${name}`).toBe(`${value}\n`);
      }
    }
  });

  it('the dotenv parser reads the dotenv format back byte for byte', async () => {
    const { config } = await serve(repo);
    const res = await config('orders', '', 'dotenv');
    expect(res.status).toBe(200);
    expect(dotenv.parse(res.body)).toEqual(expected);
  });
});

describe('case 11: environment names and collisions', () => {
  const colliding = 'spring.datasource.url: jdbc:postgresql://db.example.com/orders\nservers:\n  - host: a.example.com\n  - host: b.example.com\nfeature-flags:\n  new-checkout: true\n  new_checkout: false\n';

  it('answers 422 naming both keys, and config-init exits 65 and publishes nothing', async () => {
    const { config, service } = await serve({ 'orders/application.yml': colliding });
    const res = await config('orders', '', 'env');
    expect(res.status).toBe(422);
    const detail = res.json<{ detail: string; code: string }>();
    expect(detail.code).toBe('unrenderable');
    expect(detail.detail).toContain('feature-flags.new-checkout');
    expect(detail.detail).toContain('feature-flags.new_checkout');
    expect(detail.detail).toContain('FEATURE_FLAGS_NEW_CHECKOUT');

    const out = mkdtempSync(path.join(os.tmpdir(), 'init-out-'));
    const init = await runInit(['fetch', '--server', service.apiUrl, '--app', 'orders', '--format', 'properties,env', '--cert', orders.certFile, '--key', orders.keyFile, '--ca', pki.caFile, '--output-dir', out, '--termination-log', '']);
    expect(init.code).toBe(65);
    expect(readdirSync(out)).toEqual([]);
  });

  it('names every key exactly, and follows Spring relaxed binding with envNaming=spring', async () => {
    const { config } = await serve({ 'orders/application.yml': colliding.replace('  new_checkout: false\n', '') });
    const env = await config('orders', '', 'env');
    expect(env.body).toBe(
      "export FEATURE_FLAGS_NEW_CHECKOUT='true'\nexport SERVERS_0_HOST='a.example.com'\nexport SERVERS_1_HOST='b.example.com'\nexport SPRING_DATASOURCE_URL='jdbc:postgresql://db.example.com/orders'\n",
    );
    const spring = await config('orders', '', 'env', { envNaming: 'spring' });
    expect(spring.body).toContain("export FEATUREFLAGS_NEWCHECKOUT='true'\n");
    for (const body of [env.body, spring.body]) {
      for (const line of body.trim().split('\n')) expect(line).toMatch(/^export [A-Z_][A-Z0-9_]*='/);
    }
  });
});

describe('case 13: refs with slashes and other legal characters (v1 route)', () => {
  it('serves branches with / and #, peels annotated tags, and refuses illegal refs before any lookup', async () => {
    const { repo, get, service } = await serve({ 'orders/application.yml': 'x: from-main\n' });
    runGit(repo.dir, 'checkout', '-q', '-b', 'feature/pay-42');
    const featureCommit = repo.commitFiles({ 'orders/application.yml': 'x: from-feature\n' }, 'feature');
    runGit(repo.dir, 'checkout', '-q', '-b', 'orders#1.4-ab12cd', 'main');
    const hashCommit = repo.commitFiles({ 'orders/application.yml': 'x: from-hash-branch\n' }, 'hash');
    runGit(repo.dir, 'checkout', '-q', 'main');
    const tagCommit = repo.commitFiles({ 'orders/application.yml': 'x: from-tag\n' }, 'tagged');
    runGit(repo.dir, 'tag', '-a', 'v1.2.0', '-m', 'release 1.2.0');
    const tagObject = runGit(repo.dir, 'rev-parse', 'v1.2.0').trim();
    expect(tagObject).not.toBe(tagCommit);

    const at = (ref: string) => get(`/v1/apps/orders/config?ref=${encodeURIComponent(ref)}&format=json`);
    for (const [ref, x, commit] of [
      ['feature/pay-42', 'from-feature', featureCommit],
      ['orders#1.4-ab12cd', 'from-hash-branch', hashCommit],
      ['v1.2.0', 'from-tag', tagCommit],
    ] as const) {
      const res = await at(ref);
      expect(res.status, ref).toBe(200);
      expect(res.json(), ref).toEqual({ x });
      expect(res.headers['config-commit'], ref).toBe(commit);
    }
    for (const bad of ['feature/../x', 'feature(_)..(_)x', 'refs/heads/../../config', 'a//b', 'x.lock', 'a@{1}']) {
      const res = await at(bad);
      expect(res.status, bad).toBe(400);
      const problem = res.json<{ code: string; instance: string }>();
      expect(problem.code, bad).toBe('invalid_ref');
      // Refused before any lookup: the audit event has no commit.
      const { events } = await service.api.auditStore.query({ limit: 20 });
      const event = events.find((e) => e.requestId === problem.instance);
      expect(event, bad).toMatchObject({ outcome: 'error', status: 400, reason: 'invalid_ref' });
      expect(event?.commit, bad).toBeUndefined();
    }
  });
});

describe('case 17: the Spring Cloud Config sample repository (v1 route)', () => {
  const sample = fileURLToPath(new URL('./fixtures/spring-config-repo', import.meta.url));
  let config: Awaited<ReturnType<typeof serve>>['config'];

  beforeAll(async () => {
    const files: Record<string, Uint8Array> = {};
    const copy = mkdtempSync(path.join(os.tmpdir(), 'spring-sample-'));
    cpSync(sample, copy, { recursive: true });
    const walk = (dir: string, prefix = ''): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const rel = prefix + entry.name;
        if (entry.isDirectory()) walk(path.join(dir, entry.name), `${rel}/`);
        else files[rel] = execFileSync('cat', [path.join(dir, entry.name)]);
      }
    };
    walk(copy);
    ({ config } = await serve(files, 'spring'));
  });

  const flat = (body: Record<string, unknown>, key: string): unknown => key.split('.').reduce<unknown>((node, seg) => (node as Record<string, unknown>)?.[seg], body);

  it('CONFIG(foo, development): the app profile document wins, shared defaults fill in', async () => {
    const res = await config('foo', 'development', 'json', {}, foo);
    expect(res.status).toBe(200);
    const body = res.json<Record<string, unknown>>();
    expect(body.foo).toBe('from foo development');
    expect(body.bar).toBe('spam');
    expect(flat(body, 'democonfigclient.message')).toBe('hello spring io');
    expect(flat(body, 'eureka.client.serviceUrl.defaultZone')).toBe('http://localhost:8761/eureka/');
  });

  it('CONFIG(foo, dev): foo-dev.yml and application-dev.yml apply', async () => {
    const body = (await config('foo', 'dev', 'json', {}, foo)).json<Record<string, unknown>>();
    expect(flat(body, 'democonfigclient.message')).toBe('hello from dev profile');
    expect(flat(body, 'my.prop')).toBe('from application-dev.yml');
  });

  it('CONFIG(foo, "development,db", properties): foo-db.properties adds foo.db', async () => {
    const res = await config('foo', 'development,db', 'properties', {}, foo);
    expect(res.status).toBe(200);
    const [read] = javaLoad([res.body]);
    expect(read!.bytes['foo.db']).toBe('mycooldb');
    expect(read!.bytes.foo).toBe('from foo development');
  });
});
