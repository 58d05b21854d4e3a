/**
 * Raw files (SPEC §2, §5.1) on the real service over mTLS: `GET /v1/apps/{app}/files`
 * (list with overlay) and `GET /v1/apps/{app}/files/{path}` (raw bytes); traversal
 * attempts, symlinks and LFS pointers refused; canary rules of ../shared/cases/README.md.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCerts, makeGitRepo, runInit, startTestService, type ClientCert, type GitTestRepo, type TestPki, type TestService } from '#helpers';

let pki: TestPki;
let orders: ClientCert;
let links: ClientCert;
let lfs: ClientCert;
let service: TestService;
let repo: GitTestRepo;

const sha256 = (b: string | Uint8Array): string => createHash('sha256').update(b).digest('hex');
const BINARY = Uint8Array.from({ length: 256 }, (_, i) => i);
const LOGBACK = '<configuration/>\n';
const LOGBACK_PROD = '<configuration debug="true"/>\n';
const APP_CONF = 'a=1\n';
const EXTRA_PROD = 'prod extra\n';
const EXTRA_EU = 'eu extra\n';
const LFS_POINTER = 'version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n';

interface Response {
  status: number;
  headers: Record<string, string>;
  bytes: Buffer;
  text: string;
  json<T = unknown>(): T;
}

/**
 * GETs a raw path with a client certificate and keeps the body as bytes. node:https sends
 * the path exactly as written (undici and WHATWG URL parsing would remove `..` and `%2e%2e`
 * segments before they reach the service).
 */
function get(rawPath: string, cert: ClientCert = orders, headers: Record<string, string> = {}): Promise<Response> {
  const url = new URL(service.apiUrl);
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: url.hostname, port: url.port, path: rawPath, method: 'GET', ca: pki.ca.certPem, cert: cert.cert, key: cert.key, servername: 'localhost', headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const bytes = Buffer.concat(chunks);
          const h: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h[k] = Array.isArray(v) ? v.join(', ') : String(v);
          resolve({ status: res.statusCode ?? 0, headers: h, bytes, text: bytes.toString('utf8'), json: <T>() => JSON.parse(bytes.toString('utf8')) as T });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

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
const auditEvents = async (): Promise<AuditEventView[]> =>
  (await (service.api as unknown as { auditStore: { query(q: { limit: number }): Promise<{ events: AuditEventView[] }> } }).auditStore.query({ limit: 200 })).events;

beforeAll(async () => {
  pki = await makeCerts('files');
  orders = await pki.client('orders');
  links = await pki.client('links');
  lfs = await pki.client('lfs');
  repo = await makeGitRepo({
    'application.yml': 'shared: 1\n',
    'orders/application.yml': 'x: 1\n',
    'orders/files/logback.xml': LOGBACK,
    'orders/files/conf/app.conf': APP_CONF,
    'orders/files/bin.dat': BINARY,
    'orders/files-prod/logback.xml': LOGBACK_PROD,
    'orders/files-prod/extra.txt': EXTRA_PROD,
    'orders/files-eu/extra.txt': EXTRA_EU,
    'links/application.yml': 'x: 1\n',
    'links/files/ok.txt': 'ok\n',
    'lfs/application.yml': 'x: 1\n',
    'lfs/files/big.bin': LFS_POINTER,
    'secrets/other-team.yml': 'token: OTHER-TEAM-7d2\n',
  });
  symlinkSync('../../secrets/other-team.yml', path.join(repo.dir, 'links/files/evil.yml'));
  repo.commitFiles({}, 'symlink');
  // Canary files beside the service's data directory (cases README).
  const root = mkdtempSync(path.join(os.tmpdir(), 'files-canary-'));
  const dataDir = path.join(root, 'svc', 'data');
  mkdirSync(dataDir, { recursive: true });
  for (const dir of [dataDir, path.dirname(dataDir), root]) writeFileSync(path.join(dir, 'canary.yml'), 'leak: CANARY-9c41e\n');
  service = await startTestService({ pki, repository: { path: repo.dir, branch: 'main' }, dataDir });
});

afterAll(async () => {
  await service?.close();
  repo?.remove();
});

const commit = (): string => repo.git('rev-parse', 'HEAD');

describe('GET /v1/apps/{app}/files', () => {
  it('lists files/ with path, size and sha256, sorted by path', async () => {
    const res = await get('/v1/apps/orders/files');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers['config-commit']).toBe(commit());
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.json()).toEqual({
      commit: commit(),
      files: [
        { path: 'bin.dat', size: 256, sha256: sha256(BINARY) },
        { path: 'conf/app.conf', size: Buffer.byteLength(APP_CONF), sha256: sha256(APP_CONF) },
        { path: 'logback.xml', size: Buffer.byteLength(LOGBACK), sha256: sha256(LOGBACK) },
      ],
    });
  });

  it('overlays files-<profile>/ by path, the later profile winning', async () => {
    const prod = await get('/v1/apps/orders/files?profile=prod');
    expect(prod.status).toBe(200);
    expect(prod.json<{ files: unknown[] }>().files).toEqual([
      { path: 'bin.dat', size: 256, sha256: sha256(BINARY) },
      { path: 'conf/app.conf', size: Buffer.byteLength(APP_CONF), sha256: sha256(APP_CONF) },
      { path: 'extra.txt', size: Buffer.byteLength(EXTRA_PROD), sha256: sha256(EXTRA_PROD) },
      { path: 'logback.xml', size: Buffer.byteLength(LOGBACK_PROD), sha256: sha256(LOGBACK_PROD) },
    ]);
    const prodEu = await get('/v1/apps/orders/files?profile=prod,eu');
    expect(prodEu.json<{ files: Array<{ path: string; sha256: string }> }>().files.find((f) => f.path === 'extra.txt')).toEqual({ path: 'extra.txt', size: Buffer.byteLength(EXTRA_EU), sha256: sha256(EXTRA_EU) });
    const euProd = await get('/v1/apps/orders/files?profile=eu,prod');
    expect(euProd.json<{ files: Array<{ path: string; sha256: string }> }>().files.find((f) => f.path === 'extra.txt')).toEqual({ path: 'extra.txt', size: Buffer.byteLength(EXTRA_PROD), sha256: sha256(EXTRA_PROD) });
  });

  it('refuses a symlink (422 unsupported_entry), an LFS pointer (422), an unknown app (404), another app (403)', async () => {
    const link = await get('/v1/apps/links/files', links);
    expect(link.status).toBe(422);
    expect(link.json<{ code: string }>().code).toBe('unsupported_entry');
    expect(link.text).not.toContain('OTHER-TEAM-7d2');
    const pointer = await get('/v1/apps/lfs/files', lfs);
    expect(pointer.status).toBe(422);
    expect(pointer.json<{ code: string }>().code).toBe('unsupported_entry');
    const unknown = await get('/v1/apps/nosuch/files', await pki.client('nosuch'));
    expect(unknown.status).toBe(404);
    expect(unknown.json<{ code: string }>().code).toBe('app_not_found');
    const other = await get('/v1/apps/secrets/files');
    expect(other.status).toBe(403);
    const badProfile = await get('/v1/apps/orders/files?profile=prod,..%2F..%2Fsecrets');
    expect(badProfile.status).toBe(400);
    expect(badProfile.json<{ code: string }>().code).toBe('invalid_name');
  });
});

describe('GET /v1/apps/{app}/files/{path}', () => {
  it('serves the exact bytes with content type, Config-Commit, ETag and no-store; audited with the body hash', async () => {
    const xml = await get('/v1/apps/orders/files/logback.xml');
    expect(xml.status).toBe(200);
    expect(xml.text).toBe(LOGBACK);
    expect(xml.headers['content-type']).toBe('application/xml');
    expect(xml.headers['config-commit']).toBe(commit());
    expect(xml.headers['cache-control']).toBe('no-store');
    expect(xml.headers.etag).toBe(`"${repo.git('rev-parse', 'HEAD:orders/files/logback.xml')}"`);
    const notModified = await get('/v1/apps/orders/files/logback.xml', orders, { 'if-none-match': xml.headers.etag as string });
    expect(notModified.status).toBe(304);

    const prod = await get('/v1/apps/orders/files/logback.xml?profile=prod&ref=main');
    expect(prod.status).toBe(200);
    expect(prod.text).toBe(LOGBACK_PROD);

    const bin = await get('/v1/apps/orders/files/bin.dat');
    expect(bin.status).toBe(200);
    expect(bin.headers['content-type']).toBe('application/octet-stream');
    expect(Buffer.compare(bin.bytes, Buffer.from(BINARY))).toBe(0);
    const [event] = await auditEvents();
    expect(event).toMatchObject({ action: 'files.read', outcome: 'allowed', status: 200, app: 'orders', profiles: [], commit: commit(), bodySha256: sha256(BINARY) });

    const nested = await get('/v1/apps/orders/files/conf/app.conf');
    expect(nested.status).toBe(200);
    expect(nested.headers['content-type']).toBe('text/plain');
    expect(nested.text).toBe(APP_CONF);
    const eu = await get('/v1/apps/orders/files/extra.txt?profile=prod,eu');
    expect(eu.text).toBe(EXTRA_EU);
  });

  it('missing file → 404 file_not_found; symlink → 422; LFS pointer → 422', async () => {
    const missing = await get('/v1/apps/orders/files/nope.xml');
    expect(missing.status).toBe(404);
    expect(missing.json<{ code: string }>().code).toBe('file_not_found');
    const onlyInProd = await get('/v1/apps/orders/files/extra.txt');
    expect(onlyInProd.status).toBe(404);
    const link = await get('/v1/apps/links/files/evil.yml', links);
    expect(link.status).toBe(422);
    expect(link.json<{ code: string }>().code).toBe('unsupported_entry');
    expect(link.text).not.toContain('OTHER-TEAM-7d2');
    expect((await get('/v1/apps/links/files/ok.txt', links)).text).toBe('ok\n');
    const pointer = await get('/v1/apps/lfs/files/big.bin', lfs);
    expect(pointer.status).toBe(422);
    expect(pointer.json<{ code: string }>().code).toBe('unsupported_entry');
  });

  it('rejects traversal, backslashes, NUL and empty segments with 400 before any lookup; no canary leaks', async () => {
    const rejected: Array<[string, string]> = [
      ['/v1/apps/orders/files/..%2F..%2Fapplication.yml', 'invalid_path'],
      ['/v1/apps/orders/files/..%2F..%2Fsecrets%2Fother-team.yml', 'invalid_path'],
      ['/v1/apps/orders/files/%2e%2e/x', 'invalid_path'],
      ['/v1/apps/orders/files/%2E%2E%2F%2E%2E%2Fcanary.yml', 'invalid_path'],
      ['/v1/apps/orders/files/../../secrets/other-team.yml', 'invalid_path'],
      ['/v1/apps/orders/files/conf/../../application.yml', 'invalid_path'],
      ['/v1/apps/orders/files/./logback.xml', 'invalid_path'],
      ['/v1/apps/orders/files/conf//app.conf', 'invalid_path'],
      ['/v1/apps/orders/files/conf%5C..%5C..%5Capplication.yml', 'invalid_path'],
      ['/v1/apps/orders/files/logback.xml%00.txt', 'invalid_path'],
      ['/v1/apps/orders/files/', 'invalid_path'],
      ['/v1/apps/..%2Fsecrets/files/other-team.yml', 'invalid_name'],
      ['/v1/apps/..%252F..%252Fcanary.yml%23x/files/a', 'invalid_name'],
    ];
    for (const [p, code] of rejected) {
      const res = await get(p);
      expect(res.status, p).toBe(400);
      const problem = res.json<{ code: string; instance: string }>();
      expect(problem.code, p).toBe(code);
      expect(res.text, p).not.toContain('CANARY-9c41e');
      expect(res.text, p).not.toContain('OTHER-TEAM-7d2');
      const mine = (await auditEvents()).filter((e) => e.requestId === problem.instance);
      expect(mine, p).toHaveLength(1);
      expect(mine[0], p).toMatchObject({ action: 'files.read', outcome: 'error', status: 400, reason: code });
      expect(mine[0]!.commit, p).toBeUndefined();
    }
    // Decoded exactly once: `%252F` is the three characters `%2F` inside one file name.
    const once = await get('/v1/apps/orders/files/..%252F..%252Fsecrets%252Fother-team.yml');
    expect(once.status).toBe(404);
    expect(once.json<{ code: string }>().code).toBe('file_not_found');
    expect(once.text).not.toContain('OTHER-TEAM-7d2');
    // The service still answers a normal request.
    const ok = await get('/v1/apps/orders/files/logback.xml');
    expect(ok.status).toBe(200);
    expect(ok.text).toBe(LOGBACK);
  });
});

describe('config-init --files', () => {
  it('publishes the raw files of the profiles asked for, at the config commit, inside the atomic set', async () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'init-files-'));
    const res = await runInit([
      'fetch', '--server', service.apiUrl, '--app', 'orders', '--profile', 'prod,eu', '--files',
      '--cert', orders.certFile, '--key', orders.keyFile, '--ca', pki.caFile, '--output-dir', out, '--termination-log', '',
    ]);
    expect(res.code, res.stderr).toBe(0);
    expect(readlinkSync(path.join(out, 'files'))).toBe('..data/files');
    expect(readFileSync(path.join(out, 'files/logback.xml'), 'utf8')).toBe(LOGBACK_PROD);
    expect(readFileSync(path.join(out, 'files/extra.txt'), 'utf8')).toBe(EXTRA_EU);
    expect(readFileSync(path.join(out, 'files/conf/app.conf'), 'utf8')).toBe(APP_CONF);
    expect(new Uint8Array(readFileSync(path.join(out, 'files/bin.dat')))).toEqual(BINARY);
    const meta = JSON.parse(readFileSync(path.join(out, '.config-meta.json'), 'utf8')) as { commit: string; files: Record<string, string> };
    expect(meta.commit).toBe(commit());
    expect(meta.files['files/bin.dat']).toBe(sha256(BINARY));
  });
});
