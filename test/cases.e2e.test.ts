/**
 * Handed cases 03, 04, 05, 12 and 16 (b) (../shared/cases/) on the real service over mTLS:
 * `CONFIG(app, profiles, ref, format)` = GET /v1/apps/{app}/config?profile=&ref=&format=.
 */
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsGet, makeCerts, makeGitRepo, runInit, startTestService, type ClientCert, type TestPki, type TestService } from '#helpers';

let pki: TestPki;
let orders: ClientCert;

beforeAll(async () => {
  pki = await makeCerts('cases');
  orders = await pki.client('orders');
});

/** Starts a service on a fresh repository holding `files`; returns a CONFIG() caller. */
async function serve(files: Record<string, string | Uint8Array>, layout: 'folders' | 'spring' = 'folders') {
  const repo = await makeGitRepo(files, { branch: 'main' });
  const service = await startTestService({ pki, repository: { path: repo.dir, branch: 'main', layout } });
  const config = async (app: string, profiles: string, ref: string, format: string) => {
    const q = new URLSearchParams({ ...(profiles && { profile: profiles }), ref, format });
    return httpsGet(service.apiUrl, `/v1/apps/${app}/config?${q}`, { ca: pki.ca.certPem, cert: orders.cert, key: orders.key });
  };
  return { repo, service, config };
}

const services: TestService[] = [];
afterAll(async () => {
  for (const s of services) await s.close();
});

describe('case 03: precedence of shared, app and profile documents', () => {
  const folders = {
    'application.yml': 'db: {pool: 5, host: shared-db}\n',
    'application-dev.yml': 'db: {pool: 10}\n',
    'orders/application.yml': 'db: {pool: 20, timeout: 3s}\n',
    'orders/application-dev.yml': 'db: {timeout: 9s}\n',
  };
  const spring = {
    'application.yml': folders['application.yml'],
    'application-dev.yml': folders['application-dev.yml'],
    'orders.yml': folders['orders/application.yml'],
    'orders-dev.yml': folders['orders/application-dev.yml'],
  };
  const expected: Record<string, string> = {
    json: '{\n  "db": {\n    "host": "shared-db",\n    "pool": 10,\n    "timeout": "9s"\n  }\n}\n',
    yaml: 'db:\n  host: shared-db\n  pool: 10\n  timeout: 9s\n',
    properties: 'db.host=shared-db\ndb.pool=10\ndb.timeout=9s\n',
    env: "export DB_HOST='shared-db'\nexport DB_POOL='10'\nexport DB_TIMEOUT='9s'\n",
  };

  for (const [layout, files] of [['folders', folders], ['spring', spring]] as const) {
    it(`${layout} layout: db.pool=10, db.host=shared-db, db.timeout=9s in every format`, async () => {
      const { service, config, repo } = await serve(files, layout);
      services.push(service);
      for (const format of ['json', 'yaml', 'properties', 'env']) {
        const res = await config('orders', 'dev', 'main', format);
        expect(res.status, format).toBe(200);
        expect(res.body, format).toBe(expected[format]);
        expect(res.headers['config-commit']).toBe(repo.commit);
      }
    });
  }
});

describe('case 04: lists are replaced whole', () => {
  const base = {
    'application.yml': 'allowed-origins: [https://a.example.com, https://b.example.com, https://c.example.com]\n',
    'application-dev.yml': 'allowed-origins: [https://dev.example.com]\n',
    'orders/application.yml': 'name: orders\n',
  };

  it('a shorter list in a higher layer leaves no stale items', async () => {
    const { service, config } = await serve(base);
    services.push(service);
    const json = await config('orders', 'dev', 'main', 'json');
    expect(json.json()).toEqual({ 'allowed-origins': ['https://dev.example.com'], name: 'orders' });
    const props = await config('orders', 'dev', 'main', 'properties');
    expect(props.body.split('\n').filter((l) => l.startsWith('allowed-origins['))).toEqual(['allowed-origins[0]=https\\://dev.example.com']);
    const env = await config('orders', 'dev', 'main', 'env');
    expect(env.body).toBe("export ALLOWED_ORIGINS_0='https://dev.example.com'\nexport NAME='orders'\n");
    expect(env.body).not.toMatch(/ALLOWED_ORIGINS_[12]/);
  });

  it('an empty list replaces the lower list with []', async () => {
    const { service, config } = await serve({ ...base, 'application-dev.yml': 'allowed-origins: []\n' });
    services.push(service);
    const json = await config('orders', 'dev', 'main', 'json');
    expect(json.json()).toEqual({ 'allowed-origins': [], name: 'orders' });
  });
});

describe('case 05: YAML 1.1 words stay strings', () => {
  it('on, NO and yes are strings, True is a boolean, in every format', async () => {
    const { service, config } = await serve({ 'orders/application.yml': 'feature:\n  mode: on\ncountry: NO\nconfirm: yes\nlegacy: True\n' });
    services.push(service);
    const json = await config('orders', '', 'main', 'json');
    expect(JSON.stringify(json.json())).toBe('{"confirm":"yes","country":"NO","feature":{"mode":"on"},"legacy":true}');
    const props = await config('orders', '', 'main', 'properties');
    expect(props.body).toBe('confirm=yes\ncountry=NO\nfeature.mode=on\nlegacy=true\n');
    const env = await config('orders', '', 'main', 'env');
    expect(env.body).toBe("export CONFIRM='yes'\nexport COUNTRY='NO'\nexport FEATURE_MODE='on'\nexport LEGACY='true'\n");
  });
});

describe('case 12: empty documents, nulls, empty lists, BOM, CRLF', () => {
  it('serves 200 with the exact values in json, properties and env', async () => {
    const { service, config, repo } = await serve({
      'application.yml': '',
      'orders/application.yml': '# only a comment\n',
      'orders/application-dev.yml': Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('server.port: 8081\nretries: []\nproxy: ~\n')]),
      'application-dev.properties': 'a=1\r\nmsg=hello \\\r\n   world\r\n',
    });
    services.push(service);
    const json = await config('orders', 'dev', 'main', 'json');
    expect(json.status).toBe(200);
    expect(json.json()).toEqual({ a: '1', msg: 'hello world', retries: [], server: { port: 8081 } });
    expect(json.body).not.toContain('\uFEFF');
    expect(json.body).not.toContain('\r');
    const props = await config('orders', 'dev', 'main', 'properties');
    expect(props.status).toBe(200);
    expect(props.body).toBe('a=1\nmsg=hello world\nretries=\nserver.port=8081\n');
    const env = await config('orders', 'dev', 'main', 'env');
    expect(env.status).toBe(200);
    expect(env.body).toBe("export A='1'\nexport MSG='hello world'\nexport RETRIES=''\nexport SERVER_PORT='8081'\n");
    // SPRING(orders, dev, main): empty documents are empty property sources; the null is unset.
    const spring = await httpsGet(service.apiUrl, '/orders/dev/main', { ca: pki.ca.certPem, cert: orders.cert, key: orders.key });
    expect(spring.status).toBe(200);
    expect(spring.json()).toEqual({
      name: 'orders',
      profiles: ['dev'],
      label: 'main',
      version: repo.commit,
      state: null,
      propertySources: [
        { name: 'orders/application-dev.yml', source: { 'server.port': 8081, retries: '' } },
        { name: 'application-dev.properties', source: { a: '1', msg: 'hello world' } },
        { name: 'orders/application.yml', source: {} },
        { name: 'application.yml', source: {} },
      ],
    });
  });
});

describe('case 16 (b): an empty configuration never replaces a published set', () => {
  it('exits 65 without --allow-empty and leaves the old set untouched; --allow-empty publishes it', async () => {
    const empty = await pki.client('empty');
    const { service, repo } = await serve({ 'empty/application.yml': '# nothing here yet\n' });
    const out = mkdtempSync(path.join(os.tmpdir(), 'init-out-'));
    const args = ['fetch', '--server', service.apiUrl, '--app', 'empty', '--cert', empty.certFile, '--key', empty.keyFile, '--ca', pki.caFile, '--output-dir', out, '--termination-log', ''];

    const first = await runInit([...args, '--allow-empty']);
    expect(first.code).toBe(0);
    expect(readFileSync(path.join(out, 'application.properties'), 'utf8')).toBe('');
    const before = readdirSync(out).sort();

    const second = await runInit(args);
    expect(second.code).toBe(65);
    expect(second.stderr).toMatch(/empty/i);
    expect(readdirSync(out).sort()).toEqual(before);
    expect(JSON.parse(readFileSync(path.join(out, '.config-meta.json'), 'utf8'))).toMatchObject({ app: 'empty', commit: repo.commit });
  });
});

describe('explain=true (SPEC §5.1) on the case 03 repository', () => {
  it('lists each value with its origin and the lower values it overrode, highest first; secrets masked', async () => {
    const { repo, service } = await serve({
      'application.yml': 'db: {pool: 5, host: shared-db}\n',
      'application-dev.yml': 'db: {pool: 10}\n',
      'orders/application.yml': 'db: {pool: 20, timeout: 3s}\npassword: "{cipher}not-even-valid"\n',
      'orders/application-dev.yml': 'db: {timeout: 9s}\n',
    });
    const at = (document: string, line: number, column: number) => ({ document, line, column, commit: repo.commit });
    const get = (query: string) => httpsGet(service.apiUrl, `/v1/apps/orders/config?profile=dev&${query}`, { ca: pki.ca.certPem, cert: orders.cert, key: orders.key });
    const res = await get('explain=true');
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({
      config: { db: { host: 'shared-db', pool: 10, timeout: '9s' }, password: '<redacted>' },
      properties: {
        'db.host': { value: 'shared-db', origin: at('application.yml', 1, 15), overridden: [] },
        'db.pool': {
          value: 10,
          origin: at('application-dev.yml', 1, 6),
          overridden: [
            { value: 20, origin: at('orders/application.yml', 1, 6) },
            { value: 5, origin: at('application.yml', 1, 6) },
          ],
        },
        'db.timeout': { value: '9s', origin: at('orders/application-dev.yml', 1, 6), overridden: [{ value: '3s', origin: at('orders/application.yml', 1, 16) }] },
        password: { value: '<redacted>', origin: at('orders/application.yml', 2, 1), overridden: [] },
      },
    });
    expect(res.body).not.toContain('not-even-valid');
    const yaml = await get('format=yaml&explain=true');
    expect(yaml.status).toBe(400);
    expect(yaml.json<{ code: string }>().code).toBe('invalid_request');
  });
});
