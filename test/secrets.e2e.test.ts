/**
 * Secrets end to end (SPEC §2.5, §5.2): `POST /v1/encrypt` on the real service over mTLS
 * and JWT, the built `config-service encrypt` CLI offline, and — once the config route
 * applies secrets — decrypt for `secrets:read`, `<redacted>` for everyone else, key names
 * in the audit event, and fail-closed decryption errors.
 *
 * The `{cipher}` texts are decoded here by an independent implementation of the layout
 * documented in docs/secrets.md, so the format is pinned, not just round-tripped.
 */
import { execFile } from 'node:child_process';
import { constants, createDecipheriv, createPrivateKey, privateDecrypt } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
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

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../packages/config-service/dist/cli/main.js', import.meta.url));

let pki: TestPki;
let tooling: ClientCert;
let orders: ClientCert;
let issuer: TestIssuer;
let keysDir: string;
let repo: GitTestRepo;
let service: TestService;
const PLAIN = 'Sup3r-s3cret-ü-🔐';
let offlineCipher: string;

/** Runs the built CLI. */
async function cli(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return stdout;
}

/** Decodes a `{cipher}` text by the documented v1 layout, independently of the service code. */
function decodeCipher(text: string, privateKeyPem: string): { keyId: string; prefixKeyId?: string; plaintext: string } {
  const m = /^\{cipher\}(?:\{key:([A-Za-z0-9._-]+)\})?([A-Za-z0-9+/]+={0,2})$/.exec(text);
  if (!m) throw new Error('not a {cipher} text');
  const raw = Buffer.from(m[2]!, 'base64');
  expect(raw[0]).toBe(1);
  const l = raw[1]!;
  const keyId = raw.subarray(2, 2 + l).toString('ascii');
  const w = raw.readUInt16BE(2 + l);
  const ivAt = 4 + l + w;
  const dataKey = privateDecrypt(
    { key: createPrivateKey(privateKeyPem), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
    raw.subarray(4 + l, ivAt),
  );
  const d = createDecipheriv('aes-256-gcm', dataKey, raw.subarray(ivAt, ivAt + 12));
  d.setAAD(raw.subarray(0, ivAt));
  d.setAuthTag(raw.subarray(ivAt + 12, ivAt + 28));
  const plaintext = Buffer.concat([d.update(raw.subarray(ivAt + 28)), d.final()]).toString('utf8');
  return { keyId, ...(m[1] !== undefined && { prefixKeyId: m[1] }), plaintext };
}

const keyFile = (id: string, kind: 'private' | 'public') => path.join(keysDir, `${id}.${kind}.pem`);

function post(body: string | Uint8Array, contentType: string, auth: { cert?: ClientCert; token?: string }, query = '') {
  return httpsGet(service.apiUrl, `/v1/encrypt${query}`, {
    ca: pki.ca.certPem,
    ...(auth.cert && { cert: auth.cert.cert, key: auth.cert.key }),
    method: 'POST',
    body,
    headers: { 'content-type': contentType, ...(auth.token && { authorization: `Bearer ${auth.token}` }) },
  });
}

async function auditEvents(query: string): Promise<Array<Record<string, unknown>>> {
  const token = await issuer.sign({ sub: 'auditor', scope: 'audit:read', apps: ['*'] });
  const res = await httpsGet(service.apiUrl, `/v1/audit?${query}`, { ca: pki.ca.certPem, headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return res.json<{ events: Array<Record<string, unknown>> }>().events;
}

beforeAll(async () => {
  pki = await makeCerts('secrets');
  tooling = await pki.client('tooling');
  orders = await pki.client('orders');
  issuer = makeIssuer(pki.dir);
  keysDir = mkdtempSync(path.join(os.tmpdir(), 'secrets-keys-'));
  // Development keys made by the built CLI: k1 (old), k2 (current encryptKey).
  for (const id of ['k1', 'k2']) {
    expect(await cli('encrypt', 'keygen', '--dir', keysDir, '--id', id)).toBe(`${keyFile(id, 'private')}\n${keyFile(id, 'public')}\n`);
    expect(statSync(keyFile(id, 'private')).mode & 0o777).toBe(0o600);
  }
  // Offline encryption with the old key's public key only: no service involved.
  offlineCipher = (await cli('encrypt', '--public-key', keyFile('k1', 'public'), '--key-id', 'k1', '--value', PLAIN)).trim();
  const tampered = (() => {
    const raw = Buffer.from(offlineCipher.replace(/^\{cipher\}\{key:k1\}/, ''), 'base64');
    raw[raw.length - 2] = raw[raw.length - 2]! ^ 0x10;
    return `{cipher}{key:k1}${raw.toString('base64')}`;
  })();
  repo = await makeGitRepo(
    {
      'orders/application.yml': `name: orders\ndb:\n  user: app\n  password: '${offlineCipher}'\nhosts: [a, '${offlineCipher}']\n`,
      'broken/application.yml': `db:\n  password: '${tampered}'\n`,
      'application.yml': 'db:\n  password: lower-layer-default\n',
    },
    { branch: 'main' },
  );
  service = await startTestService({
    pki,
    repository: { path: repo.dir, branch: 'main' },
    settings: {
      jwt: { publicKeyFile: issuer.publicKeyFile, issuer: issuer.issuer, audience: issuer.audience },
      secrets: {
        keys: [
          { id: 'k1', privateKeyFile: keyFile('k1', 'private') },
          { id: 'k2', privateKeyFile: keyFile('k2', 'private'), publicKeyFile: keyFile('k2', 'public') },
        ],
        encryptKey: 'k2',
      },
      policy: { grants: [{ subjects: ['tooling'], apps: ['*'], scopes: ['encrypt'] }] },
    },
  });
});

afterAll(async () => {
  await service?.close();
});

describe('config-service encrypt (built CLI, offline)', () => {
  it('prints {cipher}{key:k1}<base64> in the documented layout', () => {
    expect(offlineCipher).toMatch(/^\{cipher\}\{key:k1\}[A-Za-z0-9+/]+={0,2}$/);
    expect(decodeCipher(offlineCipher, readFileSync(keyFile('k1', 'private'), 'utf8'))).toEqual({ keyId: 'k1', prefixKeyId: 'k1', plaintext: PLAIN });
  });

  it('reads the value from stdin and exits 64 on usage errors', async () => {
    const child = execFile(process.execPath, [CLI, 'encrypt', '--public-key', keyFile('k2', 'public'), '--key-id', 'k2'], { encoding: 'utf8' });
    const out = new Promise<string>((resolve, reject) => {
      let s = '';
      child.stdout!.on('data', (d: string) => (s += d));
      child.on('close', (code) => (code === 0 ? resolve(s) : reject(new Error(`exit ${code}`))));
    });
    child.stdin!.end('from-stdin\n');
    expect(decodeCipher((await out).trim(), readFileSync(keyFile('k2', 'private'), 'utf8')).plaintext).toBe('from-stdin');
    const usage = await run(process.execPath, [CLI, 'encrypt', '--value', 'x']).catch((e: { code: number; stderr: string }) => e);
    expect((usage as { code: number }).code).toBe(64);
    expect((usage as { stderr: string }).stderr).not.toContain('x\n');
  });
});

describe('POST /v1/encrypt', () => {
  it('mTLS with an `encrypt` grant: JSON body → {cipher} with the encryptKey (k2), no-store', async () => {
    const res = await post(JSON.stringify({ value: PLAIN }), 'application/json', { cert: tooling });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['cache-control']).toBe('no-store');
    const { cipher } = res.json<{ cipher: string }>();
    expect(Object.keys(res.json<object>())).toEqual(['cipher']);
    expect(cipher.startsWith('{cipher}{key:k2}')).toBe(true);
    expect(decodeCipher(cipher, readFileSync(keyFile('k2', 'private'), 'utf8')).plaintext).toBe(PLAIN);
  });

  it('a named key (JSON `key` or `?key=`) and a text/plain body', async () => {
    const a = await post(JSON.stringify({ value: 'v1', key: 'k1' }), 'application/json', { cert: tooling });
    expect(a.status).toBe(200);
    expect(decodeCipher(a.json<{ cipher: string }>().cipher, readFileSync(keyFile('k1', 'private'), 'utf8'))).toMatchObject({ keyId: 'k1', plaintext: 'v1' });
    const b = await post('plain text\nvalue', 'text/plain; charset=utf-8', { cert: tooling });
    expect(b.status).toBe(200);
    expect(decodeCipher(b.json<{ cipher: string }>().cipher, readFileSync(keyFile('k2', 'private'), 'utf8')).plaintext).toBe('plain text\nvalue');
    const c = await post('q', 'text/plain', { cert: tooling }, '?key=k1');
    expect(c.json<{ cipher: string }>().cipher.startsWith('{cipher}{key:k1}')).toBe(true);
    const empty = await post(JSON.stringify({ value: '' }), 'application/json', { cert: tooling });
    expect(decodeCipher(empty.json<{ cipher: string }>().cipher, readFileSync(keyFile('k2', 'private'), 'utf8')).plaintext).toBe('');
  });

  it('JWT: scope `encrypt` with apps ["*"] is allowed; without the scope or all apps it is 403', async () => {
    const ok = await post(JSON.stringify({ value: 'jwt-value' }), 'application/json', { token: await issuer.sign({ sub: 'ci', scope: 'encrypt', apps: ['*'] }) });
    expect(ok.status).toBe(200);
    const noScope = await post(JSON.stringify({ value: 'jwt-value' }), 'application/json', { token: await issuer.sign({ sub: 'ci', scope: 'config:read', apps: ['*'] }) });
    expect(noScope.status).toBe(403);
    expect(noScope.json()).toMatchObject({ code: 'forbidden', detail: expect.stringContaining('token-scope-missing:encrypt') });
    const oneApp = await post(JSON.stringify({ value: 'jwt-value' }), 'application/json', { token: await issuer.sign({ sub: 'ci', scope: 'encrypt', apps: ['orders'] }) });
    expect(oneApp.status).toBe(403);
  });

  it('a certificate without a grant is refused before the body is read (403, not 413)', async () => {
    const small = await post(JSON.stringify({ value: 'x' }), 'application/json', { cert: orders });
    expect(small.status).toBe(403);
    expect(small.json()).toMatchObject({ code: 'forbidden' });
    const big = await post(JSON.stringify({ value: 'x'.repeat(100_000) }), 'application/json', { cert: orders });
    expect(big.status).toBe(403);
  });

  it('limits and validation: 413 over 64 KiB, 400 for bad bodies and unknown keys, 415 for other media types', async () => {
    const ok = await post(JSON.stringify({ value: 'y'.repeat(60_000) }), 'application/json', { cert: tooling });
    expect(ok.status).toBe(200);
    const tooBig = await post(JSON.stringify({ value: 'y'.repeat(70_000) }), 'application/json', { cert: tooling });
    expect(tooBig.status).toBe(413);
    expect(tooBig.headers['content-type']).toMatch(/^application\/problem\+json/);

    const notString = await post(JSON.stringify({ value: 42 }), 'application/json', { cert: tooling });
    expect(notString.status).toBe(400);
    expect(notString.json()).toMatchObject({ code: 'invalid_request' });
    const extra = await post(JSON.stringify({ value: 'secret-extra', other: 1 }), 'application/json', { cert: tooling });
    expect(extra.status).toBe(400);
    expect(extra.body).not.toContain('secret-extra');
    const badJson = await post('{"value": "secret-in-bad-json', 'application/json', { cert: tooling });
    expect(badJson.status).toBe(400);
    expect(badJson.body).not.toContain('secret-in-bad-json');

    const unknown = await post(JSON.stringify({ value: 'v', key: 'k9' }), 'application/json', { cert: tooling });
    expect(unknown.status).toBe(400);
    expect(unknown.json()).toMatchObject({ code: 'secret_key_unknown', detail: "No encryption key: key id 'k9' is not configured" });
    const xml = await post('<v>secret</v>', 'application/xml', { cert: tooling });
    expect(xml.status).toBe(415);
  });

  it('is audited as secrets.encrypt (allowed and denied), never with the value; the log has no value either', async () => {
    const marker = `audit-marker-${Date.now()}`;
    expect((await post(JSON.stringify({ value: marker }), 'application/json', { cert: tooling })).status).toBe(200);
    expect((await post(JSON.stringify({ value: marker }), 'application/json', { cert: orders })).status).toBe(403);
    const events = await auditEvents('action=secrets.encrypt&limit=2');
    expect(events[0]).toMatchObject({ action: 'secrets.encrypt', outcome: 'denied', status: 403, reason: 'no-grant-for-scope:encrypt', secretKeys: [], actor: { subject: 'orders' } });
    expect(events[1]).toMatchObject({ action: 'secrets.encrypt', outcome: 'allowed', status: 200, reason: 'grant[0]', secretKeys: [], actor: { subject: 'tooling' } });
    expect(events[1]!.app).toBeUndefined();
    expect(events[1]!.bodySha256).toMatch(/^[0-9a-f]{64}$/);
    const all = JSON.stringify(await auditEvents('limit=1000'));
    for (const v of [marker, PLAIN, 'jwt-value', 'secret-extra', 'secret-in-bad-json']) expect(all).not.toContain(v);
    const logs = service.logs.join('\n');
    for (const v of [marker, PLAIN, 'jwt-value', 'secret-extra', 'secret-in-bad-json', 'plain text']) expect(logs).not.toContain(v);
    expect(logs).toContain('"keyId":"k2"');
  });
});

describe('GET /v1/apps/{app}/config with {cipher} values', () => {
  const config = (app: string, auth: { cert?: ClientCert; token?: string }, format = 'json') =>
    httpsGet(service.apiUrl, `/v1/apps/${app}/config?format=${format}`, {
      ca: pki.ca.certPem,
      ...(auth.cert && { cert: auth.cert.cert, key: auth.cert.key }),
      ...(auth.token && { headers: { authorization: `Bearer ${auth.token}` } }),
    });

  it('the own app (secrets:read by default) gets the plaintext; the audit event names the keys', async () => {
    const res = await config('orders', { cert: orders });
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ db: { password: PLAIN, user: 'app' }, hosts: ['a', PLAIN], name: 'orders' });
    const ev = (await auditEvents('app=orders&action=config.read&limit=1'))[0]!;
    expect(ev).toMatchObject({ outcome: 'allowed', secretKeys: ['db.password', 'hosts[1]'] });
    expect(JSON.stringify(ev)).not.toContain(PLAIN);
  });

  it('a caller with config:read only gets "<redacted>" for the same keys, in every format', async () => {
    const token = await issuer.sign({ sub: 'reader', scope: 'config:read', apps: ['*'] });
    const res = await config('orders', { token });
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ db: { password: '<redacted>', user: 'app' }, hosts: ['a', '<redacted>'], name: 'orders' });
    const props = await config('orders', { token }, 'properties');
    expect(props.body).toContain('db.password=<redacted>');
    expect(props.body).not.toContain(PLAIN);
    expect(props.body).not.toContain('{cipher}');
    const ev = (await auditEvents('app=orders&actor=reader&limit=1'))[0]!;
    expect(ev).toMatchObject({ outcome: 'allowed', secretKeys: ['db.password', 'hosts[1]'] });
    // A decrypted response is never served from the cache to a redacted caller, or back.
    expect((await config('orders', { cert: orders })).json()).toMatchObject({ db: { password: PLAIN } });
  });

  it('an undecryptable value fails closed: 422 secret_decrypt_failed naming key and key id, never the lower layer', async () => {
    const broken = await pki.client('broken');
    const res = await config('broken', { cert: broken });
    expect(res.status).toBe(422);
    expect(res.json()).toMatchObject({
      code: 'secret_decrypt_failed',
      detail: "Cannot decrypt the secret at key 'db.password' in broken/application.yml:2:3 (key id 'k1'): authentication failed (wrong key, or the value was altered)",
    });
    expect(res.body).not.toContain('lower-layer-default');
    expect(res.body).not.toContain('{cipher}');
  });
});
