/**
 * Secrets in the wrong shape (issue 7), end to end on the real service over mTLS with a
 * real Git repository and the built CLI as child processes:
 *
 * - a placeholder over a secret is served with the plaintext inside to a `secrets:read`
 *   caller, refused (422 `secret_reference`) for a caller without it;
 * - decrypt failures name the file, the key and the key id; the audit event records the
 *   key ids (`secretKeyIds`);
 * - values are bound to their application: a bound value copied into another
 *   application's folder is refused; version-1 values still decrypt;
 * - `config-service encrypt --app`, `POST /v1/encrypt` with `app`, `encrypt rebind` (file
 *   bytes unchanged but for the rewritten values) and `validate` reporting unbound values.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  httpsGet,
  makeCerts,
  makeGitRepo,
  makeIssuer,
  startTestService,
  type ClientCert,
  type GitTestRepo,
  type TestIssuer,
  type TestPki,
  type TestService,
} from '#helpers';

const CLI = fileURLToPath(new URL('../packages/config-service/dist/cli/main.js', import.meta.url));

/** Runs the built CLI as a child process. */
function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const UNBOUND_WARNING =
  'config-service: warning: the value is not bound to an application and decrypts in any document; add --app <name> or --shared (docs/secrets.md, "Binding")\n';

let pki: TestPki;
let issuer: TestIssuer;
let keysDir: string;
let repo: GitTestRepo;
let service: TestService;
const certs: Record<string, ClientCert> = {};
/** Cipher texts by name, made by the built CLI. */
const c: Record<string, string> = {};
const keyFile = (id: string, kind: 'private' | 'public'): string => path.join(keysDir, `${id}.${kind}.pem`);

/** `config-service encrypt` with key `id` (public key only); returns the `{cipher}` text. */
function encrypt(id: string, value: string, ...binding: string[]): string {
  const r = cli('encrypt', '--public-key', keyFile(id, 'public'), '--key-id', id, ...binding, '--value', value);
  expect(r.status).toBe(0);
  expect(r.stderr).toBe(binding.length === 0 ? UNBOUND_WARNING : '');
  return r.stdout.trim();
}

/** Flips one byte near the end of the payload (inside the ciphertext or tag). */
function tamper(cipher: string): string {
  const m = /^(\{cipher\}(?:\{[^}]*\})*)([A-Za-z0-9+/=]+)$/.exec(cipher)!;
  const raw = Buffer.from(m[2]!, 'base64');
  raw[raw.length - 3] = raw[raw.length - 3]! ^ 0x20;
  return `${m[1]}${raw.toString('base64')}`;
}

function get(p: string, auth: { cert?: ClientCert; token?: string }) {
  return httpsGet(service.apiUrl, p, {
    ca: pki.ca.certPem,
    ...(auth.cert && { cert: auth.cert.cert, key: auth.cert.key }),
    ...(auth.token && { headers: { authorization: `Bearer ${auth.token}` } }),
  });
}

function postEncrypt(body: string, auth: { cert?: ClientCert; token?: string }, query = '') {
  return httpsGet(service.apiUrl, `/v1/encrypt${query}`, {
    ca: pki.ca.certPem,
    ...(auth.cert && { cert: auth.cert.cert, key: auth.cert.key }),
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', ...(auth.token && { authorization: `Bearer ${auth.token}` }) },
  });
}

/** The audit event of one request, by its request id. */
async function eventOf(requestId: string): Promise<Record<string, unknown>> {
  const token = await issuer.sign({ sub: 'auditor', scope: 'audit:read', apps: ['*'] });
  const res = await get('/v1/audit?limit=200', { token });
  expect(res.status).toBe(200);
  const ev = res.json<{ events: Array<Record<string, unknown>> }>().events.find((e) => e.requestId === requestId);
  expect(ev).toBeDefined();
  return ev!;
}

/** The exact problem document the service sends. */
function problem(status: number, title: string, code: string, detail: string, instance: string): Record<string, unknown> {
  return { type: `urn:config-service:problem:${code}`, title, status, detail, code, instance };
}

const ORDERS_PW = 'pa55-w0rd/ü';

/** The documents of the first commit; `@name@` stands for cipher text `c.name`. */
const TEMPLATES: Record<string, string> = {
  'application.yml': "# shared defaults\nshared:\n  token: '@sharedTok@'\n  legacy: '@sharedLegacy@'\n",
  'orders/application.yml': "db:\n  user: app\n  password: '@ordersPw@'\n  url: jdbc:postgresql://db/app?user=${db.user}&password=${db.password}\n",
  'billing/application.yml': "db:\n  password: '@ordersPw@'\n",
  'broken/application.yml': "db:\n  password: '@brokenPw@'\n",
  'legacy/application.yml': "db:\n  password: '@legacyPw@'\n  url: jdbc:x?password=${db.password}\n",
  'inventory/application.yml': [
    '# Inventory: comments, order and quoting survive a rebind',
    'db:',
    '  password: "@invPw@"   # double-quoted, with a comment',
    "  other: '@invOther@'   # another key: skipped",
    "  bound: '@invBound@'",
    'hosts:',
    '  - plain',
    "  - '@invItem@'",
    '',
  ].join('\n'),
  'inventory/application-prod.properties': '# prod, CRLF line endings\r\ndb.password=@invProd@\r\ndb.user=inv\r\n',
  // A raw file, not a document: never decrypted, never rewritten.
  'inventory/files/secret.yml': "token: '@invRaw@'\n",
};

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/@(\w+)@/g, (_, name: string) => values[name] ?? `@${name}@`);
}

beforeAll(async () => {
  pki = await makeCerts('secrets-binding');
  for (const app of ['orders', 'billing', 'broken', 'legacy', 'inventory', 'tooling']) certs[app] = await pki.client(app);
  issuer = makeIssuer(pki.dir);
  keysDir = mkdtempSync(path.join(os.tmpdir(), 'secrets-binding-keys-'));
  for (const id of ['k1', 'k2']) expect(cli('encrypt', 'keygen', '--dir', keysDir, '--id', id).status).toBe(0);

  c.ordersPw = encrypt('k2', ORDERS_PW, '--app', 'orders');
  c.sharedTok = encrypt('k2', 'shared-tok', '--shared');
  c.sharedLegacy = encrypt('k1', 'legacy-shared');
  c.brokenPw = tamper(encrypt('k2', 'broken-pw', '--app', 'broken'));
  c.legacyPw = encrypt('k1', 'legacy-pw');
  c.invPw = encrypt('k1', 'inv-pw');
  c.invOther = encrypt('k2', 'inv-other');
  c.invBound = encrypt('k1', 'inv-bound', '--app', 'inventory');
  c.invItem = encrypt('k1', 'inv-item');
  c.invProd = encrypt('k1', 'inv-prod');
  c.invRaw = encrypt('k1', 'inv-raw');

  repo = await makeGitRepo(Object.fromEntries(Object.entries(TEMPLATES).map(([p, t]) => [p, fill(t, c)])), { branch: 'main' });
  service = await startTestService({
    pki,
    repository: { path: repo.dir, branch: 'main', refCacheMs: 0 },
    settings: {
      jwt: { publicKeyFile: issuer.publicKeyFile, issuer: issuer.issuer, audience: issuer.audience },
      secrets: {
        keys: [
          { id: 'k1', privateKeyFile: keyFile('k1', 'private') },
          { id: 'k2', privateKeyFile: keyFile('k2', 'private') },
        ],
        encryptKey: 'k2',
      },
      policy: { grants: [{ subjects: ['tooling'], apps: ['inventory'], scopes: ['encrypt'] }] },
    },
  });
});

afterAll(async () => {
  await service?.close();
});

describe('config-service encrypt --app / --shared (built CLI)', () => {
  it('writes {cipher}{key:<id>}{app:<name>}<base64> and {cipher}{key:<id>}{shared}<base64>; unbound values warn', () => {
    expect(c.ordersPw).toMatch(/^\{cipher\}\{key:k2\}\{app:orders\}[A-Za-z0-9+/]+={0,2}$/);
    expect(c.sharedTok).toMatch(/^\{cipher\}\{key:k2\}\{shared\}[A-Za-z0-9+/]+={0,2}$/);
    expect(c.legacyPw).toMatch(/^\{cipher\}\{key:k1\}[A-Za-z0-9+/]+={0,2}$/);
    // Version byte 2 inside a bound payload, 1 inside an unbound one.
    expect(Buffer.from(c.ordersPw!.replace(/^(\{[^}]*\})+/, ''), 'base64')[0]).toBe(2);
    expect(Buffer.from(c.legacyPw!.replace(/^(\{[^}]*\})+/, ''), 'base64')[0]).toBe(1);
  });

  it('usage errors exit 64 and never echo the value', () => {
    const both = cli('encrypt', '--public-key', keyFile('k2', 'public'), '--key-id', 'k2', '--app', 'orders', '--shared', '--value', 'echo-me-not');
    expect(both.status).toBe(64);
    expect(both.stderr).toBe('error: give --app <name> or --shared, not both\n');
    const bad = cli('encrypt', '--public-key', keyFile('k2', 'public'), '--key-id', 'k2', '--app', 'Orders/..', '--value', 'echo-me-not');
    expect(bad.status).toBe(64);
    expect(bad.stderr).toBe('error: --app must be a valid application name\n');
    expect(bad.stdout).toBe('');
  });
});

describe('placeholders over secrets (GET /v1/apps/{app}/config)', () => {
  it('a secrets:read caller gets the composed value with the plaintext inside; composed keys are secret keys; key ids audited', async () => {
    const res = await get('/v1/apps/orders/config', { cert: certs.orders });
    expect(res.status).toBe(200);
    expect(res.body).toBe(
      [
        '{',
        '  "db": {',
        `    "password": "${ORDERS_PW}",`,
        `    "url": "jdbc:postgresql://db/app?user=app&password=${ORDERS_PW}",`,
        '    "user": "app"',
        '  },',
        '  "shared": {',
        '    "legacy": "legacy-shared",',
        '    "token": "shared-tok"',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    const ev = await eventOf(res.headers['request-id']!);
    expect(ev).toMatchObject({ action: 'config.read', outcome: 'allowed', status: 200, secretKeys: ['db.password', 'db.url', 'shared.legacy', 'shared.token'], secretKeyIds: ['k1', 'k2'] });
    expect(JSON.stringify(ev)).not.toContain(ORDERS_PW);
  });

  it('a caller without secrets:read is refused with 422 secret_reference naming the key and the secret key; never a value', async () => {
    const token = await issuer.sign({ sub: 'reader', scope: 'config:read', apps: ['*'] });
    for (const format of ['json', 'properties', 'env']) {
      const res = await get(`/v1/apps/orders/config?format=${format}`, { token });
      expect(res.status).toBe(422);
      expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
      expect(res.json()).toEqual(
        problem(
          422,
          'Unprocessable Content',
          'secret_reference',
          "orders/application.yml:4:3: key 'db.url' puts the secret at key 'db.password' into a longer value, which is served only to callers allowed secrets:read",
          res.headers['request-id']!,
        ),
      );
      expect(res.body).not.toMatch(/\{cipher\}|pa55/);
    }
    const res = await get('/v1/apps/orders/config', { token });
    const ev = await eventOf(res.headers['request-id']!);
    expect(ev).toMatchObject({ outcome: 'error', status: 422, reason: 'secret_reference', secretKeys: [] });
    expect(ev.secretKeyIds).toBeUndefined();
  });

  it('the same caller with resolve=false gets the placeholders as written and the secrets redacted', async () => {
    const token = await issuer.sign({ sub: 'reader', scope: 'config:read', apps: ['*'] });
    const res = await get('/v1/apps/orders/config?resolve=false&format=properties', { token });
    expect(res.status).toBe(200);
    expect(res.body).toBe(
      'db.password=<redacted>\n' +
        'db.url=jdbc\\:postgresql\\://db/app?user\\=${db.user}&password\\=${db.password}\n' +
        'db.user=app\n' +
        'shared.legacy=<redacted>\n' +
        'shared.token=<redacted>\n',
    );
  });

  it('explain=true masks the composed value for everyone', async () => {
    const res = await get('/v1/apps/orders/config?explain=true', { cert: certs.orders });
    expect(res.status).toBe(200);
    expect(res.json<{ config: unknown }>().config).toEqual({
      db: { password: '<redacted>', url: '<redacted>', user: 'app' },
      shared: { legacy: '<redacted>', token: '<redacted>' },
    });
    expect(res.body).not.toMatch(/\{cipher\}|pa55|shared-tok/);
  });

  it('a version-1 (unbound) value is still served, composed too', async () => {
    const res = await get(`/v1/apps/legacy/config?ref=${repo.commit}&format=properties`, { cert: certs.legacy });
    expect(res.status).toBe(200);
    expect(res.body).toBe('db.password=legacy-pw\ndb.url=jdbc\\:x?password\\=legacy-pw\nshared.legacy=legacy-shared\nshared.token=shared-tok\n');
    expect(await eventOf(res.headers['request-id']!)).toMatchObject({ secretKeys: ['db.password', 'db.url', 'shared.legacy', 'shared.token'], secretKeyIds: ['k1', 'k2'] });
  });
});

describe('decrypt failures name file, key and key id; bindings', () => {
  it('a value bound to orders, copied into billing/, is refused: exact 422, key id in the audit event', async () => {
    const res = await get('/v1/apps/billing/config', { cert: certs.billing });
    expect(res.status).toBe(422);
    expect(res.json()).toEqual(
      problem(
        422,
        'Unprocessable Content',
        'secret_decrypt_failed',
        "Cannot decrypt the secret at key 'db.password' in billing/application.yml:2:3 (key id 'k2'): bound to another application (the value is bound to application 'orders')",
        res.headers['request-id']!,
      ),
    );
    const ev = await eventOf(res.headers['request-id']!);
    expect(ev).toMatchObject({ outcome: 'error', status: 422, reason: 'secret_decrypt_failed', secretKeys: [], secretKeyIds: ['k2'] });
  });

  it('a tampered value: exact 422 naming the file, the key and the key id', async () => {
    const res = await get('/v1/apps/broken/config', { cert: certs.broken });
    expect(res.status).toBe(422);
    expect(res.json()).toEqual(
      problem(
        422,
        'Unprocessable Content',
        'secret_decrypt_failed',
        "Cannot decrypt the secret at key 'db.password' in broken/application.yml:2:3 (key id 'k2'): authentication failed (wrong key, or the value was altered)",
        res.headers['request-id']!,
      ),
    );
    expect(res.body).not.toContain('broken-pw');
    expect((await eventOf(res.headers['request-id']!)).secretKeyIds).toEqual(['k2']);
  });

  it('secrets.requireBinding (CONFIG_SERVICE_SECRETS_REQUIRE_BINDING=true) refuses unbound values when serving', async () => {
    const strict = await startTestService({
      pki,
      repository: { path: repo.dir, branch: 'main', refCacheMs: 0 },
      env: { CONFIG_SERVICE_SECRETS_REQUIRE_BINDING: 'true' },
      settings: { secrets: { keys: [{ id: 'k1', privateKeyFile: keyFile('k1', 'private') }, { id: 'k2', privateKeyFile: keyFile('k2', 'private') }] } },
    });
    try {
      const res = await httpsGet(strict.apiUrl, `/v1/apps/legacy/config?ref=${repo.commit}`, { ca: pki.ca.certPem, cert: certs.legacy!.cert, key: certs.legacy!.key });
      expect(res.status).toBe(422);
      expect(res.json()).toEqual(
        problem(
          422,
          'Unprocessable Content',
          'secret_decrypt_failed',
          "Cannot decrypt the secret at key 'db.password' in legacy/application.yml:2:3 (key id 'k1'): the value is not bound to an application (secrets.requireBinding is on)",
          res.headers['request-id']!,
        ),
      );
    } finally {
      await strict.close();
    }
  });

  it('the Spring Environment keeps placeholders for the client, decrypts each source checked against its own document', async () => {
    const res = await get('/orders/default', { cert: certs.orders });
    expect(res.status).toBe(200);
    expect(res.body).toBe(
      JSON.stringify({
        name: 'orders',
        profiles: ['default'],
        label: 'main',
        version: repo.git('rev-parse', 'HEAD'),
        state: null,
        propertySources: [
          {
            name: 'orders/application.yml',
            source: { 'db.user': 'app', 'db.password': ORDERS_PW, 'db.url': 'jdbc:postgresql://db/app?user=${db.user}&password=${db.password}' },
          },
          { name: 'application.yml', source: { 'shared.token': 'shared-tok', 'shared.legacy': 'legacy-shared' } },
        ],
      }),
    );
    expect(await eventOf(res.headers['request-id']!)).toMatchObject({ action: 'spring.environment', secretKeys: ['db.password', 'shared.legacy', 'shared.token'], secretKeyIds: ['k1', 'k2'] });
    // The copied value fails there too, with the same detail.
    const billing = await get('/billing/default', { cert: certs.billing });
    expect(billing.status).toBe(422);
    expect(billing.json<{ detail: string }>().detail).toBe(
      "Cannot decrypt the secret at key 'db.password' in billing/application.yml:2:3 (key id 'k2'): bound to another application (the value is bound to application 'orders')",
    );
  });
});

describe('POST /v1/encrypt with an app', () => {
  it('binds to the app, checked against the caller’s encrypt grant; the bound value is served to that app', async () => {
    const ok = await postEncrypt(JSON.stringify({ value: 'api-key-1', app: 'inventory' }), { cert: certs.tooling });
    expect(ok.status).toBe(200);
    const { cipher } = ok.json<{ cipher: string }>();
    expect(cipher).toMatch(/^\{cipher\}\{key:k2\}\{app:inventory\}[A-Za-z0-9+/]+={0,2}$/);
    expect(await eventOf(ok.headers['request-id']!)).toMatchObject({ action: 'secrets.encrypt', app: 'inventory', outcome: 'allowed', reason: 'grant[0]', secretKeyIds: ['k2'] });

    const other = await postEncrypt(JSON.stringify({ value: 'x', app: 'orders' }), { cert: certs.tooling });
    expect(other.status).toBe(403);
    expect(other.json<{ detail: string }>().detail).toBe('Not allowed by the access policy (no-grant-for-app)');
    expect(await eventOf(other.headers['request-id']!)).toMatchObject({ app: 'orders', outcome: 'denied', reason: 'no-grant-for-app' });
    // Unbound and shared values are readable everywhere: they need `encrypt` on every app.
    for (const body of [{ value: 'x' }, { value: 'x', shared: true }]) {
      const res = await postEncrypt(JSON.stringify(body), { cert: certs.tooling });
      expect(res.status).toBe(403);
      expect(res.json<{ detail: string }>().detail).toBe('Not allowed by the access policy (no-grant-for-scope:encrypt)');
    }
    // ?app= is checked before the body is read (403, not 413); so is a caller with no encrypt grant at all.
    expect((await postEncrypt(JSON.stringify({ value: 'y'.repeat(100_000) }), { cert: certs.tooling }, '?app=orders')).status).toBe(403);
    expect((await postEncrypt(JSON.stringify({ value: 'y'.repeat(100_000), app: 'orders' }), { cert: certs.orders })).status).toBe(403);
    // A JWT whose apps claim covers the app may encrypt for it.
    const jwt = await issuer.sign({ sub: 'ci', scope: 'encrypt', apps: ['inv*'] });
    expect((await postEncrypt(JSON.stringify({ value: 'z', app: 'inventory' }), { token: jwt })).status).toBe(200);
    expect((await postEncrypt(JSON.stringify({ value: 'z', app: 'orders' }), { token: jwt })).json<{ detail: string }>().detail).toBe(
      'Not allowed by the access policy (token-apps-exclude-app)',
    );

    const commit = repo.commitFiles({ 'inventory/application-api.yml': `api:\n  key: '${cipher}'\n` }, 'api key');
    const served = await get(`/v1/apps/inventory/config?profile=api&ref=${commit}&format=properties`, { cert: certs.inventory });
    expect(served.status).toBe(200);
    expect(served.body).toContain('api.key=api-key-1\n');
  });
});

describe('validate and encrypt rebind (built CLI on the working tree)', () => {
  const unbound = (file: string, line: number, column: number, key: string, id: string, severity = 'warning'): string =>
    `${file}:${line}:${column}: ${severity}: the secret at key '${key}' (key id '${id}') is not bound to an application (envelope version 1), so a copy of it decrypts in any application's documents; bind it with 'config-service encrypt rebind'`;
  const billingLine =
    "billing/application.yml:2:3: error: the secret at key 'db.password' (key id 'k2') is bound to another application (the value is bound to application 'orders'); it fails to decrypt here";

  it('validate reports every unbound value as a warning (file:line, key) and the copied value as an error', () => {
    const r = cli('validate', repo.dir);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe(
      [
        unbound('application.yml', 4, 3, 'shared.legacy', 'k1'),
        billingLine,
        unbound('inventory/application-prod.properties', 2, 1, 'db.password', 'k1'),
        unbound('inventory/application.yml', 3, 3, 'db.password', 'k1'),
        unbound('inventory/application.yml', 4, 3, 'db.other', 'k2'),
        unbound('inventory/application.yml', 6, 1, 'hosts[1]', 'k1'),
        unbound('legacy/application.yml', 2, 3, 'db.password', 'k1'),
        '1 error, 6 warnings; checked 8 documents, 5 applications, 3 profile sets',
        '',
      ].join('\n'),
    );
  });

  it('encrypt rebind rewrites only the unbound values of the key, in place, printing key names only', async () => {
    const before: Record<string, string> = {};
    for (const f of ['application.yml', 'inventory/application.yml', 'inventory/application-prod.properties', 'inventory/files/secret.yml', 'legacy/application.yml']) {
      before[f] = readFileSync(path.join(repo.dir, f), 'latin1');
    }
    const r = cli('encrypt', 'rebind', '--private-key', keyFile('k1', 'private'), '--key-id', 'k1', '--repo', repo.dir, 'application.yml', 'inventory', 'legacy');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(
      [
        "application.yml:3: shared.token: already bound to the shared documents (key k2)",
        'application.yml:4: shared.legacy: rebound to the shared documents (key k1)',
        "inventory/application-api.yml:2: api.key: already bound to application 'inventory' (key k2)",
        "inventory/application-prod.properties:2: db.password: rebound to application 'inventory' (key k1)",
        "inventory/application.yml:3: db.password: rebound to application 'inventory' (key k1)",
        "inventory/application.yml:4: db.other: skipped: encrypted with key 'k2' (run again with that key)",
        "inventory/application.yml:5: db.bound: already bound to application 'inventory' (key k1)",
        "inventory/application.yml:6: hosts[1]: rebound to application 'inventory' (key k1)",
        "legacy/application.yml:2: db.password: rebound to application 'legacy' (key k1)",
        '5 values rebound in 4 documents; 3 already bound; 1 skipped (other key); 0 errors; checked 5 documents',
        '',
      ].join('\n'),
    );
    for (const v of ['legacy-shared', 'inv-pw', 'inv-item', 'inv-prod', 'legacy-pw']) expect(r.stdout).not.toContain(v);

    // Every byte is unchanged but the rewritten values: the files are the templates filled
    // with the new texts, which are bound to the documents' applications.
    const after = (f: string): string => readFileSync(path.join(repo.dir, f), 'latin1');
    const tokenAt = (text: string, template: string, name: string, values: Record<string, string> = c): string => {
      const at = template.indexOf(`@${name}@`);
      const prefix = fill(template.slice(0, at), values);
      expect(text.startsWith(prefix)).toBe(true);
      return /^\{cipher\}[^'"\s]*/.exec(text.slice(prefix.length))![0];
    };
    const fresh: Record<string, string> = {};
    fresh.sharedLegacy = tokenAt(after('application.yml'), TEMPLATES['application.yml']!, 'sharedLegacy');
    fresh.invPw = tokenAt(after('inventory/application.yml'), TEMPLATES['inventory/application.yml']!, 'invPw');
    fresh.invItem = tokenAt(after('inventory/application.yml'), TEMPLATES['inventory/application.yml']!, 'invItem', { ...c, invPw: fresh.invPw });
    fresh.invProd = tokenAt(after('inventory/application-prod.properties'), TEMPLATES['inventory/application-prod.properties']!, 'invProd');
    fresh.legacyPw = tokenAt(after('legacy/application.yml'), TEMPLATES['legacy/application.yml']!, 'legacyPw');
    expect(fresh.sharedLegacy).toMatch(/^\{cipher\}\{key:k1\}\{shared\}[A-Za-z0-9+/]+={0,2}$/);
    for (const n of ['invPw', 'invItem', 'invProd']) expect(fresh[n]).toMatch(/^\{cipher\}\{key:k1\}\{app:inventory\}[A-Za-z0-9+/]+={0,2}$/);
    expect(fresh.legacyPw).toMatch(/^\{cipher\}\{key:k1\}\{app:legacy\}[A-Za-z0-9+/]+={0,2}$/);
    const now = { ...c, ...fresh };
    for (const f of Object.keys(before)) expect(after(f)).toBe(fill(TEMPLATES[f]!, now));
    // The old texts are gone; the CRLF line endings of the .properties file are kept.
    expect(after('inventory/application-prod.properties').split('\r\n')).toHaveLength(4);
    expect(after('legacy/application.yml')).not.toContain(c.legacyPw);

    // Served after a commit: the same plaintexts, decrypted as bound values.
    const commit = repo.commitFiles({}, 'rebind');
    const inv = await get(`/v1/apps/inventory/config?profile=prod&ref=${commit}&format=properties`, { cert: certs.inventory });
    expect(inv.status).toBe(200);
    expect(inv.body).toBe(
      [
        'db.bound=inv-bound',
        'db.other=inv-other',
        'db.password=inv-prod',
        'db.user=inv',
        'hosts[0]=plain',
        'hosts[1]=inv-item',
        'shared.legacy=legacy-shared',
        'shared.token=shared-tok',
        '',
      ].join('\n'),
    );
    const legacy = await get(`/v1/apps/legacy/config?ref=${commit}&format=properties`, { cert: certs.legacy });
    expect(legacy.body).toBe('db.password=legacy-pw\ndb.url=jdbc\\:x?password\\=legacy-pw\nshared.legacy=legacy-shared\nshared.token=shared-tok\n');
  });

  it('after the rebind, validate reports only what is left; --unbound-secrets error makes it an error', () => {
    const r = cli('validate', repo.dir);
    expect(r.stdout).toBe([billingLine, unbound('inventory/application.yml', 4, 3, 'db.other', 'k2'), '1 error, 1 warning; checked 8 documents, 5 applications, 3 profile sets', ''].join('\n'));
    const strict = cli('validate', repo.dir, '--unbound-secrets', 'error');
    expect(strict.status).toBe(1);
    expect(strict.stdout).toContain(`${unbound('inventory/application.yml', 4, 3, 'db.other', 'k2', 'error')}\n2 errors, 0 warnings;`);
  });

  it('rebind refuses a path outside the repository and a file that is not a document', () => {
    const outside = cli('encrypt', 'rebind', '--private-key', keyFile('k1', 'private'), '--key-id', 'k1', '--repo', repo.dir, '..');
    expect(outside.status).toBe(1);
    expect(outside.stderr).toBe(`config-service: CFG_ERR_INVALID_REQUEST: Invalid request: .. is outside the repository ${repo.dir}\n`);
    const notDoc = cli('encrypt', 'rebind', '--private-key', keyFile('k1', 'private'), '--key-id', 'k1', '--repo', repo.dir, 'inventory/files/secret.yml');
    expect(notDoc.status).toBe(1);
    expect(notDoc.stderr).toBe(
      "config-service: CFG_ERR_INVALID_REQUEST: Invalid request: inventory/files/secret.yml: not a document of the 'folders' layout (application*.<ext> at the root or in an application's folder)\n",
    );
    expect(readFileSync(path.join(repo.dir, 'inventory/files/secret.yml'), 'utf8')).toBe(`token: '${c.invRaw}'\n`);
  });
});

describe('nothing secret in the service log', () => {
  it('no plaintext and no ciphertext of this file reaches a log line', () => {
    const logs = service.logs.join('\n');
    for (const v of [ORDERS_PW, 'shared-tok', 'legacy-shared', 'broken-pw', 'legacy-pw', 'inv-pw', 'inv-other', 'inv-item', 'inv-prod', 'api-key-1']) expect(logs).not.toContain(v);
    for (const text of Object.values(c)) expect(logs).not.toContain(text.replace(/^(\{[^}]*\})+/, '').slice(0, 40));
    expect(logs).toContain('"binding":"app:inventory"');
  });
});
