/**
 * Templates end to end (issue 12, docs/templates.md): `templates/**` rendered with Liquid by
 * the real service over the merged configuration, a `{cipher}` secret decrypted for the
 * application's own certificate and refused for a caller without `secrets:read`, each kind
 * of bad template's 422 naming template, line and key (never a value), `config-init
 * --templates` publishing the exact bytes, and `config-service validate` reporting the same
 * problems as file:line.
 */
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  httpsGet,
  makeCerts,
  makeGitRepo,
  runInit,
  runServiceCli,
  startTestService,
  type ClientCert,
  type GitTestRepo,
  type HttpsResult,
  type TestPki,
  type TestService,
} from '#helpers';

const SECRET = 'Db-Pa55-templ4te-7e1';

const NGINX = [
  'upstream backend {',
  '{% for u in upstreams %}  server {{ u.addr }}:{{ server.port }}; # {{ u.name }}',
  '{% endfor %}}',
  '{% include "_partials/footer.conf" %}',
].join('\n');
const NGINX_OUT = ['upstream backend {', '  server 10.0.0.1:8080; # a', '  server 10.0.0.2:8080; # b', '}', '# generated for db.internal', ''].join('\n');
const DATASOURCE = 'url=jdbc:postgresql://{{ db.host }}/orders\nuser={{ db.user }}\npassword={{ db.password }}\n';

let pki: TestPki;
let orders: ClientCert;
let dashboard: ClientCert;
let broken: ClientCert;
let repo: GitTestRepo;
let service: TestService;
let keysDir: string;

beforeAll(async () => {
  pki = await makeCerts('templates');
  orders = await pki.client('orders');
  dashboard = await pki.client('dashboard');
  broken = await pki.client('broken');
  keysDir = mkdtempSync(path.join(os.tmpdir(), 'templates-keys-'));
  expect((await runServiceCli(['encrypt', 'keygen', '--dir', keysDir, '--id', 'k1'])).status).toBe(0);
  const enc = await runServiceCli(['encrypt', '--public-key', path.join(keysDir, 'k1.public.pem'), '--key-id', 'k1', '--app', 'orders', '--value', SECRET]);
  expect(enc.status).toBe(0);
  const cipher = enc.stdout.trim();
  repo = await makeGitRepo({
    'orders/application.yml': `server:\n  port: 8080\ndb:\n  host: db.internal\n  user: app\n  password: '${cipher}'\nupstreams:\n  - name: a\n    addr: 10.0.0.1\n  - name: b\n    addr: 10.0.0.2\n`,
    'orders/templates/nginx.conf': NGINX,
    'orders/templates/_partials/footer.conf': '# generated for {{ db.host }}\n',
    'orders/templates/db/datasource.properties': DATASOURCE,
    'broken/application.yml': 'a: 1\nname: broken\n',
    'broken/templates/missing.conf': 'line1\nvalue={{ name }}-{{ db.host }}\n',
    'broken/templates/syntax.conf': 'ok\n{% for x in a %}\n',
    'broken/templates/filter.conf': '{{ name | shout }}\n',
    'broken/templates/huge.conf': '{% for i in (1..200000) %}0123456789{% endfor %}',
    'broken/templates/escape.conf': '{% include "../application.yml" %}',
    'broken/templates/fine.conf': 'name={{ name }}\n',
  });
  service = await startTestService({
    pki,
    repository: { path: repo.dir, branch: 'main' },
    settings: {
      secrets: { keys: [{ id: 'k1', privateKeyFile: path.join(keysDir, 'k1.private.pem') }] },
      policy: { grants: [{ subjects: ['dashboard'], apps: ['orders'], scopes: ['config:read'] }] },
      templates: { maxOutputBytes: 65_536 },
    },
  });
});

afterAll(async () => {
  await service?.close();
  repo?.remove();
});

function get(p: string, who: ClientCert = orders): Promise<HttpsResult> {
  return httpsGet(service.apiUrl, p, { ca: pki.ca.certPem, cert: who.cert, key: who.key });
}

describe('GET /v1/apps/{app}/templates', () => {
  it('renders the exact bytes over the merged configuration, partials included; the secret decrypted for the own certificate', async () => {
    const nginx = await get('/v1/apps/orders/templates/nginx.conf');
    expect(nginx.status).toBe(200);
    expect(nginx.body).toBe(NGINX_OUT);
    expect(nginx.headers['config-commit']).toBe(repo.commit);
    const ds = await get('/v1/apps/orders/templates/db/datasource.properties');
    expect(ds.status).toBe(200);
    expect(ds.headers['content-type']).toMatch(/^text\/x-java-properties/);
    expect(ds.body).toBe(`url=jdbc:postgresql://db.internal/orders\nuser=app\npassword=${SECRET}\n`);
    const again = await httpsGet(service.apiUrl, '/v1/apps/orders/templates/db/datasource.properties', { ca: pki.ca.certPem, cert: orders.cert, key: orders.key, headers: { 'if-none-match': ds.headers.etag as string } });
    expect(again.status).toBe(304);
  });

  it('lists the rendered templates (size, sha256), never the partials; a partial is not served', async () => {
    const list = await get('/v1/apps/orders/templates');
    expect(list.status).toBe(200);
    expect(list.headers.etag).toMatch(/^W\/"/);
    const body = list.json<{ commit: string; templates: Array<{ path: string; size: number; sha256: string }> }>();
    expect(body.commit).toBe(repo.commit);
    expect(body.templates.map((t) => [t.path, t.size])).toEqual([
      ['db/datasource.properties', Buffer.byteLength(`url=jdbc:postgresql://db.internal/orders\nuser=app\npassword=${SECRET}\n`)],
      ['nginx.conf', Buffer.byteLength(NGINX_OUT)],
    ]);
    const partial = await get('/v1/apps/orders/templates/_partials/footer.conf');
    expect(partial.status).toBe(404);
    expect(partial.json<{ code: string }>().code).toBe('template_not_found');
  });

  it('a caller without secrets:read: a template that outputs the secret is 422 secret_reference naming template, line and key; the others render', async () => {
    const ds = await get('/v1/apps/orders/templates/db/datasource.properties', dashboard);
    expect(ds.status).toBe(422);
    const p = ds.json<{ code: string; detail: string }>();
    expect(p.code).toBe('secret_reference');
    expect(p.detail).toBe("orders/templates/db/datasource.properties:3:10: the template puts the secret at key 'db.password' into its output, which is served only to callers allowed secrets:read");
    expect(ds.body).not.toContain(SECRET);
    expect(ds.body).not.toContain('{cipher}');
    const nginx = await get('/v1/apps/orders/templates/nginx.conf', dashboard);
    expect(nginx.status).toBe(200);
    expect(nginx.body).toBe(NGINX_OUT);
    expect((await get('/v1/apps/orders/templates', dashboard)).status).toBe(422);
  });

  it('each kind of bad template is its own 422 template_invalid naming template, line and key; never a value', async () => {
    const detail = async (name: string): Promise<{ status: number; code: string; detail: string; body: string }> => {
      const res = await get(`/v1/apps/broken/templates/${name}`, broken);
      const j = res.json<{ code: string; detail: string }>();
      return { status: res.status, code: j.code, detail: j.detail, body: res.body };
    };
    expect(await detail('missing.conf')).toMatchObject({ status: 422, code: 'template_invalid', detail: "broken/templates/missing.conf:2:21: undefined variable 'db' (no such key in the configuration)" });
    expect(await detail('syntax.conf')).toMatchObject({ status: 422, code: 'template_invalid', detail: 'broken/templates/syntax.conf:2:1: syntax error: tag {% for x in a %} not closed' });
    expect(await detail('filter.conf')).toMatchObject({ status: 422, code: 'template_invalid', detail: "broken/templates/filter.conf:1:1: undefined filter 'shout'" });
    expect(await detail('huge.conf')).toMatchObject({ status: 422, code: 'template_invalid', detail: expect.stringMatching(/^broken\/templates\/huge\.conf:1:\d+: the output exceeds templates\.maxOutputBytes = 65536 bytes$/) as unknown as string });
    expect(await detail('escape.conf')).toMatchObject({ status: 422, code: 'template_invalid', detail: "broken/templates/escape.conf:1:1: '../application.yml' names no file of the templates folders" });
    const missing = await detail('missing.conf');
    expect(missing.body).not.toContain('broken-'); // no value of the configuration
    // A bad template breaks only itself: the good one of the same application renders.
    const fine = await get('/v1/apps/broken/templates/fine.conf', broken);
    expect(fine.status).toBe(200);
    expect(fine.body).toBe('name=broken\n');
  });
});

describe('config-init --templates', () => {
  it('publishes the rendered templates under templates/ with the exact bytes, at the commit of the rest', async () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'templates-out-'));
    const res = await runInit([
      '--server', service.apiUrl, '--app', 'orders', '--cert', orders.certFile, '--key', orders.keyFile, '--ca', pki.caFile,
      '--output-dir', out, '--format', 'properties', '--templates', '--termination-log', '', '--deadline', '20000',
    ]);
    expect(res.stderr).not.toContain(SECRET);
    expect(res.code).toBe(0);
    expect(readFileSync(path.join(out, 'templates', 'nginx.conf'), 'utf8')).toBe(NGINX_OUT);
    expect(readFileSync(path.join(out, 'templates', 'db', 'datasource.properties'), 'utf8')).toBe(`url=jdbc:postgresql://db.internal/orders\nuser=app\npassword=${SECRET}\n`);
    expect(readdirSync(path.join(out, 'templates')).sort()).toEqual(['db', 'nginx.conf']);
    const meta = JSON.parse(readFileSync(path.join(out, '.config-meta.json'), 'utf8')) as { commit: string; files: Record<string, string> };
    expect(meta.commit).toBe(repo.commit);
    expect(Object.keys(meta.files).sort()).toEqual(['application.properties', 'templates/db/datasource.properties', 'templates/nginx.conf']);
  });

  it('a template that cannot render fails the whole run with 65, publishing nothing', async () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'templates-out-'));
    const res = await runInit([
      '--server', service.apiUrl, '--app', 'broken', '--cert', broken.certFile, '--key', broken.keyFile, '--ca', pki.caFile,
      '--output-dir', out, '--templates', '--termination-log', '', '--deadline', '20000',
    ]);
    expect(res.code).toBe(65);
    expect(res.stderr).toContain('template_invalid');
    expect(readdirSync(out)).toEqual([]);
  });
});

describe('config-service validate', () => {
  it('renders every template for every profile and reports each problem as file:line:column', async () => {
    const run = await runServiceCli(['validate', repo.dir]);
    expect(run.status).toBe(1);
    const lines = run.stdout.split('\n').filter((l) => l.includes('/templates/'));
    expect(lines).toEqual([
      "broken/templates/escape.conf:1:1: error: '../application.yml' names no file of the templates folders [in broken]",
      "broken/templates/filter.conf:1:1: error: undefined filter 'shout' [in broken]",
      expect.stringMatching(/^broken\/templates\/huge\.conf:1:\d+: error: the output exceeds templates\.maxOutputBytes = 1048576 bytes \[in broken\]$/),
      "broken/templates/missing.conf:2:21: error: undefined variable 'db' (no such key in the configuration) [in broken]",
      'broken/templates/syntax.conf:2:1: error: syntax error: tag {% for x in a %} not closed [in broken]',
    ]);
    expect(run.stdout).not.toContain(SECRET);
  });
});
