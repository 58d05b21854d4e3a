/**
 * Spring Cloud Config compatibility (SPEC §5.3) on the real service over mTLS:
 * `SPRING(app, profiles, label)` = GET /{app}/{profiles}/{label}. Cases 01, 02, 03, 13 and
 * 17 (../shared/cases/), the Environment JSON shape, and the flat document forms.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsGet, makeCerts, makeGitRepo, startTestService, type ClientCert, type GitTestRepo, type TestPki, type TestService } from '#helpers';

let pki: TestPki;
let orders: ClientCert;
let foo: ClientCert;
const services: TestService[] = [];
const repos: GitTestRepo[] = [];

beforeAll(async () => {
  pki = await makeCerts('spring');
  orders = await pki.client('orders');
  foo = await pki.client('foo');
});

afterAll(async () => {
  for (const s of services) await s.close();
  for (const r of repos) r.remove();
});

/** Minimal view of the audit store the API app carries (decorated by the audit plugin). */
interface AuditEventView {
  requestId: string;
  action: string;
  outcome: string;
  status: number;
  reason?: string;
  app?: string;
  profiles: string[];
  ref?: string;
  commit?: string;
  format?: string;
  bodySha256?: string;
}
function auditOf(service: TestService): { query(q: { limit?: number; action?: string }): Promise<{ events: AuditEventView[] }> } {
  return (service.api as unknown as { auditStore: { query(q: { limit?: number; action?: string }): Promise<{ events: AuditEventView[] }> } }).auditStore;
}

async function serve(files: Record<string, string | Uint8Array>, layout: 'folders' | 'spring' = 'folders', dataDir?: string) {
  const repo = await makeGitRepo(files, { branch: 'main' });
  repos.push(repo);
  const service = await startTestService({ pki, repository: { path: repo.dir, branch: 'main', layout }, ...(dataDir && { dataDir }) });
  services.push(service);
  const get = (rawPath: string, cert: ClientCert = orders, headers?: Record<string, string>) =>
    httpsGet(service.apiUrl, rawPath, { ca: pki.ca.certPem, cert: cert.cert, key: cert.key, ...(headers && { headers }) });
  return { repo, service, get };
}

describe('case 03: precedence on the Spring route', () => {
  const folders = {
    'application.yml': 'db: {pool: 5, host: shared-db}\n',
    'application-dev.yml': 'db: {pool: 10}\n',
    'orders/application.yml': 'db: {pool: 20, timeout: 3s}\n',
    'orders/application-dev.yml': 'db: {timeout: 9s}\n',
  };

  it('SPRING(orders, dev, main) lists the four documents highest first with exact sources', async () => {
    const { repo, get } = await serve(folders);
    const res = await get('/orders/dev/main');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.headers['config-commit']).toBe(repo.commit);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toBe(
      `{"name":"orders","profiles":["dev"],"label":"main","version":"${repo.commit}","state":null,"propertySources":[` +
        '{"name":"orders/application-dev.yml","source":{"db.timeout":"9s"}},' +
        '{"name":"application-dev.yml","source":{"db.pool":10}},' +
        '{"name":"orders/application.yml","source":{"db.pool":20,"db.timeout":"3s"}},' +
        '{"name":"application.yml","source":{"db.pool":5,"db.host":"shared-db"}}]}',
    );
    // Without a label: the default branch, same documents.
    const noLabel = await get('/orders/dev');
    expect(noLabel.status).toBe(200);
    expect(noLabel.body).toBe(res.body);
    // If-None-Match with the ETag served → 304.
    const again = await get('/orders/dev/main', orders, { 'if-none-match': res.headers.etag as string });
    expect(again.status).toBe(304);
  });

  it('spring layout: the same values, documents named as they are in the repository', async () => {
    const { repo, get } = await serve(
      {
        'application.yml': folders['application.yml'],
        'application-dev.yml': folders['application-dev.yml'],
        'orders.yml': folders['orders/application.yml'],
        'orders-dev.yml': folders['orders/application-dev.yml'],
      },
      'spring',
    );
    const res = await get('/orders/dev/main');
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({
      name: 'orders',
      profiles: ['dev'],
      label: 'main',
      version: repo.commit,
      state: null,
      propertySources: [
        { name: 'orders-dev.yml', source: { 'db.timeout': '9s' } },
        { name: 'application-dev.yml', source: { 'db.pool': 10 } },
        { name: 'orders.yml', source: { 'db.pool': 20, 'db.timeout': '3s' } },
        { name: 'application.yml', source: { 'db.pool': 5, 'db.host': 'shared-db' } },
      ],
    });
  });
});

describe('Environment JSON for two profiles', () => {
  it('SPRING(orders, "dev,eu", main): Spring field order, sources highest first, flattened values', async () => {
    const { repo, get } = await serve({
      'application.yml': 'server:\n  port: 8080\nfeatures: [a, b]\n---\nspring.config.activate.on-profile: eu\nregion: eu-west-1\n',
      'application-dev.yml': 'logging.level.root: DEBUG\n',
      'application-eu.yml': 'features: []\n',
      'orders/application.yml': 'name: orders\nproxy: http://proxy\n',
      'orders/application-dev.yml': 'debug: true\n',
      'orders/application-eu.yml': [
        'big: 12345678901234567891',
        'ratio: 1.50',
        'enabled: false',
        'hosts:',
        '  - name: a',
        '    port: 1',
        '  - name: b',
        '    port: 2',
        'empty: []',
        'proxy: ~',
        '"[app.example.com/source]": x',
        '',
      ].join('\n'),
    });
    const res = await get('/orders/dev,eu/main');
    expect(res.status).toBe(200);
    // Written literally: the shape and order of Spring Cloud Config's Environment
    // (name, profiles, label, version, state, propertySources[{name, source}]).
    expect(res.body).toBe(
      '{"name":"orders","profiles":["dev","eu"],"label":"main",' +
        `"version":"${repo.commit}","state":null,"propertySources":[` +
        '{"name":"orders/application-eu.yml","source":{"big":12345678901234567891,"ratio":1.50,"enabled":false,' +
        '"hosts[0].name":"a","hosts[0].port":1,"hosts[1].name":"b","hosts[1].port":2,"empty":"","[app.example.com/source]":"x"}},' +
        '{"name":"application-eu.yml","source":{"features":""}},' +
        '{"name":"orders/application-dev.yml","source":{"debug":true}},' +
        '{"name":"application-dev.yml","source":{"logging.level.root":"DEBUG"}},' +
        '{"name":"orders/application.yml","source":{"name":"orders","proxy":"http://proxy"}},' +
        '{"name":"application.yml (document #1)","source":{"region":"eu-west-1"}},' +
        '{"name":"application.yml (document #0)","source":{"server.port":8080,"features[0]":"a","features[1]":"b"}}]}',
    );
  });

  it('unknown application → 404 app_not_found, not an empty environment', async () => {
    const { get } = await serve({ 'application.yml': 'a: 1\n', 'orders/application.yml': 'x: 1\n' });
    const res = await get('/nosuchapp/default', await pki.client('nosuchapp'));
    expect(res.status).toBe(404);
    expect(res.json<{ code: string }>().code).toBe('app_not_found');
  });
});

describe('flat document forms', () => {
  it('/{app}-{profiles}.{ext} and /{label}/{app}-{profiles}.{ext} serve the merged document', async () => {
    const { repo, get } = await serve({
      'application.yml': 'db: {pool: 5, host: shared-db}\n',
      'orders/application.yml': 'db: {pool: 20}\n',
      'orders/application-dev.yml': 'db: {timeout: 9s}\n',
      'my-app/application.yml': 'x: 1\n',
      'my-app/application-dev.yml': 'x: 2\n',
    });
    const yml = await get('/orders-dev.yml');
    expect(yml.status).toBe(200);
    expect(yml.headers['content-type']).toBe('application/yaml; charset=utf-8');
    expect(yml.headers['config-commit']).toBe(repo.commit);
    expect(yml.body).toBe('db:\n  host: shared-db\n  pool: 20\n  timeout: 9s\n');
    expect((await get('/orders-dev.yaml')).body).toBe(yml.body);
    const props = await get('/main/orders-dev.properties');
    expect(props.status).toBe(200);
    expect(props.body).toBe('db.host=shared-db\ndb.pool=20\ndb.timeout=9s\n');
    const json = await get('/main/orders-dev.json');
    expect(json.status).toBe(200);
    expect(json.body).toBe('{\n  "db": {\n    "host": "shared-db",\n    "pool": 20,\n    "timeout": "9s"\n  }\n}\n');
    // The split is at the LAST '-': app `my-app`, profile `dev`.
    const hyphen = await get('/my-app-dev.properties', await pki.client('my-app'));
    expect(hyphen.status).toBe(200);
    expect(hyphen.body).toBe('db.host=shared-db\ndb.pool=5\nx=2\n');
    // No '-' before the extension: not a Spring resource.
    const none = await get('/orders.yml');
    expect(none.status).toBe(404);
    expect(none.json<{ code: string }>().code).toBe('not_found');
  });

  it('flat forms resolve placeholders unless resolvePlaceholders=false; the Environment never does', async () => {
    const { get } = await serve({ 'orders/application.yml': 'host: db.local\nurl: jdbc://${host}:${port:5432}/orders\n' });
    const resolved = await get('/orders-default.properties');
    expect(resolved.status).toBe(200);
    expect(resolved.body).toBe('host=db.local\nurl=jdbc\\://db.local\\:5432/orders\n');
    const raw = await get('/orders-default.properties?resolvePlaceholders=false');
    expect(raw.status).toBe(200);
    expect(raw.body).toBe('host=db.local\nurl=jdbc\\://${host}\\:${port\\:5432}/orders\n');
    const env = await get('/orders/default');
    expect(env.json<{ propertySources: Array<{ source: Record<string, unknown> }> }>().propertySources[0]!.source).toEqual({ host: 'db.local', url: 'jdbc://${host}:${port:5432}/orders' });
  });

  it('a {cipher} value that cannot be decrypted fails closed (422), never served as is', async () => {
    const { get } = await serve({ 'orders/application.yml': 'db.password: "{cipher}AAAA"\nuser: app\n' });
    for (const p of ['/orders/default', '/orders-default.yml']) {
      const res = await get(p);
      expect(res.status, p).toBe(422);
      expect(res.json<{ code: string }>().code, p).toBe('secret_decrypt_failed');
      expect(res.body, p).not.toContain('AAAA');
    }
  });

  it('does not shadow /v1 or the management paths', async () => {
    const { repo, get } = await serve({ 'orders/application.yml': 'x: 1\n' });
    const apps = await get('/v1/apps');
    expect(apps.status).toBe(200);
    // `repositories` added with several repositories (issue 8); `commit` stays with one.
    expect(apps.json()).toEqual({ apps: ['orders'], commit: repo.commit, repositories: [{ name: 'config', commit: repo.commit, apps: ['orders'] }] });
    for (const p of ['/v1/apps/orders', '/v1/nothing', '/health/live', '/health/ready', '/v1-dev.yml']) {
      const res = await get(p);
      expect(res.status, p).toBe(404);
      expect(res.json<{ code: string }>().code, p).toBe('not_found');
    }
  });
});

describe('case 13: labels with slashes and other legal characters', () => {
  it('(_) and %2F labels, a # branch and an annotated tag; bad refs → 400 before any lookup', async () => {
    const { repo, get } = await serve({ 'orders/application.yml': 'x: from-main\n' });
    repo.git('checkout', '-q', '-b', 'feature/pay-42');
    const feature = repo.commitFiles({ 'orders/application.yml': 'x: from-feature\n' }, 'feature');
    repo.git('checkout', '-q', 'main');
    repo.git('checkout', '-q', '-b', 'orders#1.4-ab12cd');
    const hashBranch = repo.commitFiles({ 'orders/application.yml': 'x: from-hash-branch\n' }, 'hash branch');
    repo.git('checkout', '-q', 'main');
    const tagged = repo.commitFiles({ 'orders/application.yml': 'x: from-tag\n' }, 'release');
    repo.git('tag', '-a', 'v1.2.0', '-m', 'v1.2.0');
    const tagObject = repo.git('rev-parse', 'v1.2.0');
    expect(tagObject).not.toBe(tagged);
    repo.commitFiles({ 'orders/application.yml': 'x: after-tag\n' }, 'after');

    const env = (label: string, commit: string, x: string) =>
      `{"name":"orders","profiles":["default"],"label":${JSON.stringify(label)},"version":"${commit}","state":null,` +
      `"propertySources":[{"name":"orders/application.yml","source":{"x":"${x}"}}]}`;

    for (const raw of ['feature(_)pay-42', 'feature%2Fpay-42', 'feature%2fpay-42']) {
      const res = await get(`/orders/default/${raw}`);
      expect(res.status, raw).toBe(200);
      expect(res.headers['config-commit'], raw).toBe(feature);
      expect(res.body, raw).toBe(env('feature/pay-42', feature, 'from-feature'));
    }
    const hash = await get('/orders/default/orders%231.4-ab12cd');
    expect(hash.status).toBe(200);
    expect(hash.body).toBe(env('orders#1.4-ab12cd', hashBranch, 'from-hash-branch'));
    const tag = await get('/orders/default/v1.2.0');
    expect(tag.status).toBe(200);
    expect(tag.body).toBe(env('v1.2.0', tagged, 'from-tag'));
    const flat = await get('/feature(_)pay-42/orders-default.yml');
    expect(flat.status).toBe(200);
    expect(flat.headers['config-commit']).toBe(feature);
    expect(flat.body).toBe('x: from-feature\n');

    const bad = ['feature%2F..%2Fx', 'feature(_)..(_)x', 'refs%2Fheads%2F..%2F..%2Fconfig', 'refs(_)heads(_)..(_)..(_)config', 'a%2F%2Fb', 'a(_)(_)b', 'x.lock', 'a@%7B1%7D'];
    for (const raw of bad) {
      const res = await get(`/orders/default/${raw}`);
      expect(res.status, raw).toBe(400);
      expect(res.json<{ code: string }>().code, raw).toBe('invalid_ref');
    }
    const flatBad = await get('/feature(_)..(_)x/orders-default.yml');
    expect(flatBad.status).toBe(400);
    expect(flatBad.json<{ code: string }>().code).toBe('invalid_ref');
    const missing = await get('/orders/default/no-such-branch');
    expect(missing.status).toBe(404);
    expect(missing.json<{ code: string }>().code).toBe('ref_not_found');
  });
});

describe('cases 01 and 02: traversal through the Spring route', () => {
  it('rejects every traversal with 400, leaks no canary, audits each, and still serves', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'spring-canary-'));
    const holder = path.join(root, 'svc');
    const dataDir = path.join(holder, 'data');
    mkdirSync(dataDir, { recursive: true });
    for (const dir of [dataDir, holder, root]) writeFileSync(path.join(dir, 'canary.yml'), 'leak: CANARY-9c41e\n');
    const { repo, service, get } = await serve(
      {
        'orders/application.yml': 'x: 1\n',
        'orders/application-dev.yml': 'x: 2\n',
        'orders/application-eu.yml': 'y: 3\n',
        'secrets/other-team.yml': 'token: OTHER-TEAM-7d2\n',
      },
      'folders',
      dataDir,
    );
    const rejected: Array<[string, number, string]> = [
      ['/..%252F..%252F..%252F..%252Fcanary.yml%23x/dev', 400, 'invalid_name'],
      ['/..%2F..%2Fsecrets%2Fother-team/default', 400, 'invalid_name'],
      ['/orders/dev,..%2Fsecrets%2Fother-team/main', 400, 'invalid_name'],
      ['/orders/dev%2C..%252Fsecrets%252Fother-team/main', 400, 'invalid_name'],
      ['/..%2F..%2Fcanary/dev/main', 400, 'invalid_name'],
      ['/..%2F..%2Fsecrets%2Fother-team-default.yml', 400, 'invalid_name'],
      ['/main/..%2Fsecrets%2Fother-team.yml', 400, 'invalid_name'],
      ['/main/orders-dev,..%2Fcanary.yml', 400, 'invalid_name'],
      ['/secrets/other-team', 403, 'forbidden'],
    ];
    const events = auditOf(service);
    for (const [p, status, code] of rejected) {
      const res = await get(p);
      expect(res.status, p).toBe(status);
      const problem = res.json<{ code: string; instance: string }>();
      expect(problem.code, p).toBe(code);
      expect(res.body, p).not.toContain('CANARY-9c41e');
      expect(res.body, p).not.toContain('OTHER-TEAM-7d2');
      const page = await events.query({ limit: 100 });
      const mine = page.events.filter((e) => e.requestId === problem.instance);
      expect(mine, p).toHaveLength(1);
      expect(mine[0]!.outcome, p).toBe(status === 403 ? 'denied' : 'error');
      expect(mine[0]!.status, p).toBe(status);
      expect(mine[0]!.reason, p).toBeTruthy();
      expect(mine[0]!.commit, p).toBeUndefined();
    }
    const ok = await get('/orders/dev,eu/main');
    expect(ok.status).toBe(200);
    expect(ok.body).toBe(
      `{"name":"orders","profiles":["dev","eu"],"label":"main","version":"${repo.commit}","state":null,"propertySources":[` +
        '{"name":"orders/application-eu.yml","source":{"y":3}},{"name":"orders/application-dev.yml","source":{"x":2}},' +
        '{"name":"orders/application.yml","source":{"x":1}}]}',
    );
    const [last] = (await events.query({ limit: 1 })).events;
    expect(last).toMatchObject({ action: 'spring.environment', outcome: 'allowed', status: 200, app: 'orders', profiles: ['dev', 'eu'], ref: 'main', commit: repo.commit, format: 'json' });
  });
});

/** Reads a folder into path → bytes (recursively), for committing it as it is. */
function readTree(dir: string, prefix = ''): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    const rel = prefix ? `${prefix}/${name}` : name;
    if (statSync(full).isDirectory()) Object.assign(out, readTree(full, rel));
    else out[rel] = readFileSync(full);
  }
  return out;
}

describe("case 17: Spring Cloud Config's own sample repository", () => {
  const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'spring-config-repo');

  it('SPRING(foo, development, main) lists the documents as Spring documents them, nothing resolved', async () => {
    const { repo, get } = await serve(readTree(fixture), 'spring');
    const res = await get('/foo/development/main', foo);
    expect(res.status).toBe(200);
    expect(res.body).toBe(
      `{"name":"foo","profiles":["development"],"label":"main","version":"${repo.commit}","state":null,"propertySources":[` +
        '{"name":"foo-development.properties","source":{"bar":"spam","foo":"from foo development"}},' +
        '{"name":"foo.properties","source":{"foo":"from foo props","democonfigclient.message":"hello spring io"}},' +
        '{"name":"application.yml (document #0)","source":{"info.description":"Spring Cloud Samples",' +
        '"info.url":"https://github.com/spring-cloud-samples","eureka.client.serviceUrl.defaultZone":"http://localhost:8761/eureka/","foo":"baz"}}]}',
    );

    // The `cloud` document applies as its own source, above the file's first document, and
    // its placeholders are served as written (Spring clients resolve them).
    const cloud = await get('/foo/cloud/main', foo);
    expect(cloud.status).toBe(200);
    const env = cloud.json<{ propertySources: Array<{ name: string; source: Record<string, unknown> }> }>();
    expect(env.propertySources.map((s) => s.name)).toEqual(['foo.properties', 'application.yml (document #1)', 'application.yml (document #0)']);
    const doc1 = env.propertySources[1]!.source;
    expect(doc1['spring.cloud.config.uri']).toBe('${vcap.services.${PREFIX:}configserver.credentials.uri:http://user:password@${PREFIX:}configserver.${application.domain:cfapps.io}}');
    expect(doc1['oauth2.resource.serviceId']).toBe('${PREFIX:}resource');
    expect(doc1['hystrix.command.default.execution.isolation.thread.timeoutInMilliseconds']).toBe(60000);
    expect(doc1['eureka.instance.nonSecurePort']).toBe(80);
    expect(Object.keys(doc1)).not.toContain('spring.config.activate.on-profile');
    // The `docker` document does not apply.
    expect(cloud.body).not.toContain('CONFIGSERVER_1_PORT_8888_TCP_ADDR');
  });
});
