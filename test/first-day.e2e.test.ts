/**
 * Issue 11 on the real service: `.properties` values typed by the application's schema
 * (the v1 route types them, the Spring route serves them as Spring Cloud Config does), a
 * folder without configuration (`docs/`) is no application, and `config-service serve`
 * names every bad setting and file in one message.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsGet, makeCerts, makeGitRepo, makeIssuer, runServiceCli, startTestService, type ClientCert, type GitTestRepo, type TestIssuer, type TestPki, type TestService } from '#helpers';

let pki: TestPki;
let repo: GitTestRepo;
let service: TestService;
let issuer: TestIssuer;
const certs: Record<string, ClientCert> = {};

beforeAll(async () => {
  pki = await makeCerts('first-day');
  issuer = makeIssuer(pki.dir);
  certs.orders = await pki.client('orders');
  certs.docs = await pki.client('docs');
  repo = await makeGitRepo({
    'application.yml': 'max-items: 100\n',
    'orders/application.yml': 'name: orders\n',
    'orders/application-dev.properties': 'max-items=5\nfeature.enabled=true\n',
    'orders/schema.json': JSON.stringify({ properties: { 'max-items': { type: 'integer' }, feature: { properties: { enabled: { type: 'boolean' } } } } }),
    'billing/application-dev.properties': 'max-items=5\n',
    'docs/README.md': '# How this repository is laid out\n',
    '.github/workflows/ci.yml': 'on: push\n',
  });
  service = await startTestService({
    pki,
    repository: { path: repo.dir },
    settings: { jwt: { publicKeyFile: issuer.publicKeyFile, issuer: issuer.issuer, audience: issuer.audience } },
  });
});

afterAll(async () => {
  await service?.close();
  repo?.remove();
});

function get(p: string, who: { cert?: ClientCert; token?: string }) {
  return httpsGet(service.apiUrl, p, {
    ca: pki.ca.certPem,
    ...(who.cert && { cert: who.cert.cert, key: who.cert.key }),
    ...(who.token && { headers: { authorization: `Bearer ${who.token}` } }),
  });
}

describe('.properties values under a schema', () => {
  it('GET /v1/apps/orders/config serves max-items as an integer in every profile', async () => {
    const base = await get('/v1/apps/orders/config', { cert: certs.orders });
    const dev = await get('/v1/apps/orders/config?profile=dev', { cert: certs.orders });
    expect(base.json()).toEqual({ 'max-items': 100, name: 'orders' });
    expect(dev.body).toBe('{\n  "feature": {\n    "enabled": true\n  },\n  "max-items": 5,\n  "name": "orders"\n}\n');
    const yaml = await get('/v1/apps/orders/config?profile=dev&format=yaml', { cert: certs.orders });
    expect(yaml.body).toContain('max-items: 5\n');
    expect(yaml.body).not.toContain('"5"');
  });

  it('explain=true shows the typed value, and the overridden one as its document wrote it', async () => {
    const res = await get('/v1/apps/orders/config?profile=dev&explain=true', { cert: certs.orders });
    const body = res.json<{ properties: Record<string, { value: unknown; overridden: Array<{ value: unknown }> }> }>();
    expect(body.properties['max-items']!.value).toBe(5);
    expect(body.properties['max-items']!.overridden.map((o) => o.value)).toEqual([100]);
  });

  it('without a schema, the values stay strings (billing)', async () => {
    const token = await issuer.sign({ sub: 'reader', scope: 'config:read', apps: ['*'] });
    const res = await get('/v1/apps/billing/config?profile=dev', { token });
    expect(res.json()).toEqual({ 'max-items': '5' });
  });

  it('the Spring endpoint serves the .properties source as Spring Cloud Config does: strings', async () => {
    const res = await get('/orders/dev', { cert: certs.orders });
    expect(res.status).toBe(200);
    const sources = res.json<{ propertySources: Array<{ name: string; source: Record<string, unknown> }> }>().propertySources;
    expect(sources.find((s) => s.name.endsWith('orders/application-dev.properties'))?.source).toEqual({ 'max-items': '5', 'feature.enabled': 'true' });
  });
});

describe('a folder without configuration is no application', () => {
  it('docs/ is 404 app_not_found and not listed by GET /v1/apps', async () => {
    const res = await get('/v1/apps/docs/config', { cert: certs.docs });
    expect(res.status).toBe(404);
    expect(res.json()).toMatchObject({ code: 'app_not_found' });
    const token = await issuer.sign({ sub: 'lister', scope: 'config:read', apps: ['*'] });
    const apps = await get('/v1/apps', { token });
    expect(apps.status).toBe(200);
    expect(JSON.stringify(apps.json())).not.toContain('docs');
    expect(JSON.stringify(apps.json())).toContain('orders');
  });
});

describe('config-service serve with bad settings', () => {
  it('names every bad setting in one message, one line each, with did-you-mean', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'first-day-settings-'));
    writeFileSync(
      path.join(dir, 'service.yml'),
      ['server:', '  tls: { cert: server.crt, key: server.key, clientCA: ca.crt }', 'reposotories:', '  - { name: config, path: repo }', 'log: { level: loud }', ''].join('\n'),
    );
    const r = await runServiceCli(['serve', '--config', path.join(dir, 'service.yml')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      [
        'config-service: CFG_ERR_SETTINGS_INVALID: Invalid service settings:',
        "  reposotories: unknown setting; did you mean 'repositories'?",
        "  server.tls.clientCA: unknown setting; did you mean 'clientCa'?",
        '  log.level: must be one of: fatal, error, warn, info, debug, trace, silent',
        '',
      ].join('\n'),
    );
  });

  it('names every unusable file at once', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'first-day-files-'));
    mkdirSync(path.join(dir, 'repo'));
    writeFileSync(path.join(dir, 'ca.crt'), 'not a certificate\n');
    writeFileSync(
      path.join(dir, 'service.yml'),
      [
        'server:',
        '  tls: { cert: server.crt, key: server.key, clientCa: ca.crt }',
        'repositories:',
        '  - { name: config, path: repo }',
        'secrets:',
        '  keys: [{ id: k1, privateKeyFile: keys/k1.private.pem }]',
        '',
      ].join('\n'),
    );
    const r = await runServiceCli(['serve', '--config', path.join(dir, 'service.yml')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      [
        'config-service: CFG_ERR_SETTINGS_INVALID: Invalid service settings:',
        `  server.tls.cert: cannot read ${path.join(dir, 'server.crt')} (ENOENT)`,
        `  server.tls.key: cannot read ${path.join(dir, 'server.key')} (ENOENT)`,
        `  server.tls.clientCa: ${path.join(dir, 'ca.crt')}: no PEM certificate (-----BEGIN CERTIFICATE-----) found`,
        `  secrets.keys[0].privateKeyFile: cannot read ${path.join(dir, 'keys/k1.private.pem')} (ENOENT)`,
        '',
      ].join('\n'),
    );
  });
});
