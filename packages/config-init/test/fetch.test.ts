import { X509Certificate } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { chmod, chown, copyFile, mkdir, mkdtemp, readFile, readlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseCommandLine, type Options } from '../src/args.js';
import { configUrl } from '../src/fetch.js';
import { publishFiles, sha256Hex } from '../src/publish.js';
import { ROOT_WARNING, run, type RunResult } from '../src/index.js';
import { makeCerts, type TestCerts } from './helpers/certs.js';
import { configAnswer, problem, startServer, type TestServer } from './helpers/server.js';
import { readVisible } from './helpers/visible.js';
import { freePort, startOpensslServer } from './helpers/openssl-server.js';

const COMMIT = 'a'.repeat(40);
const COMMIT2 = 'b'.repeat(40);

let certs: TestCerts;
let server: TestServer;
let out: string;
let logs: string;

beforeAll(async () => {
  certs = await makeCerts();
  server = await startServer(certs);
});
afterAll(async () => {
  await server.close();
});
beforeEach(async () => {
  server.requests = [];
  out = join(await mkdtemp(join(tmpdir(), 'config-init-fetch-')), 'config');
  logs = '';
});

function options(extra: string[] = [], url = server.url): Options {
  const cmd = parseCommandLine(
    ['--server', url, '--app', 'orders', '--profile', 'prod,eu', '--cert', certs.files.cert, '--key', certs.files.key, '--ca', certs.files.ca,
      '--output-dir', out, '--termination-log', '', '--deadline', '5000', ...extra],
    {},
  );
  if (cmd.kind !== 'fetch') throw new Error('not fetch');
  return cmd.options;
}

function runWith(opts: Options): Promise<RunResult> {
  return run(opts, { stderr: { write: (s: string) => (logs += s) } });
}

async function publishOld(): Promise<string> {
  const res = await publishFiles({ dir: out, mode: 0o640, files: [{ name: 'application.properties', content: 'config.version=1\n' }] });
  return res.version;
}

async function expectOldSetUntouched(version: string): Promise<void> {
  expect(await readlink(join(out, '..data'))).toBe(version);
  expect(await readFile(join(out, 'application.properties'), 'utf8')).toBe('config.version=1\n');
}

describe('fetch and publish against a real mTLS server', () => {
  it('200 → files published with meta, logs carry hashes but no values', async () => {
    server.handler = () => configAnswer('properties', 'config.version=2\ndb.password=s3cr3t\n', COMMIT, 2);
    const res = await runWith(options());
    expect(res).toMatchObject({ exitCode: 0, commit: COMMIT });
    const req = server.requests[0];
    expect(req?.path).toBe('/v1/apps/orders/config');
    expect(req?.query.get('profile')).toBe('prod,eu');
    expect(req?.query.get('format')).toBe('properties');
    expect(req?.query.has('ref')).toBe(false);
    expect(req?.accept).toContain('text/x-java-properties');
    expect(req?.peerCn).toBe('orders');
    const visible = await readVisible(out);
    expect(visible.get('application.properties')?.content.toString()).toBe('config.version=2\ndb.password=s3cr3t\n');
    const meta = JSON.parse(visible.get('.config-meta.json')?.content.toString() ?? '') as Record<string, unknown>;
    expect(meta).toMatchObject({
      app: 'orders',
      profiles: ['prod', 'eu'],
      ref: null,
      commit: COMMIT,
      server: `${server.url}/`,
      files: { 'application.properties': sha256Hex('config.version=2\ndb.password=s3cr3t\n') },
    });
    expect(typeof meta.time).toBe('string');
    expect(logs).toContain(COMMIT);
    expect(logs).not.toContain('s3cr3t');
  });

  it('keeps a server path prefix and sends ref when asked', async () => {
    server.handler = () => configAnswer('properties', 'a=1\n', COMMIT);
    const res = await runWith(options(['--ref', 'release/1.0']));
    expect(res.exitCode).toBe(0);
    expect(server.requests[0]?.query.get('ref')).toBe('release/1.0');
    expect(configUrl(new URL('https://h/base/'), 'a', [], 'json', 'f#1').href).toBe('https://h/base/v1/apps/a/config?format=json&ref=f%231');
  });

  it('pins every further format to the first commit', async () => {
    server.handler = (req) =>
      configAnswer(req.query.get('format') ?? '', req.query.get('format') === 'json' ? '{"a":1}' : 'a: 1\n', COMMIT);
    const res = await runWith(options(['--format', 'json,yaml,properties,env,dotenv', '--ref', 'main']));
    expect(res.exitCode).toBe(0);
    expect(server.requests.map((r) => r.query.get('format'))).toEqual(['json', 'yaml', 'properties', 'env', 'dotenv']);
    expect(server.requests[0]?.query.get('ref')).toBe('main');
    for (const r of server.requests.slice(1)) expect(r.query.get('ref')).toBe(COMMIT);
    const visible = await readVisible(out);
    expect([...visible.keys()]).toEqual(['.config-meta.json', '.env', 'application.env', 'application.json', 'application.properties', 'application.yaml']);
  });

  it('fails 65 when a pinned answer comes from another commit', async () => {
    server.handler = (_req, n) => configAnswer(n === 1 ? 'json' : 'yaml', n === 1 ? '{"a":1}' : 'a: 1\n', n === 1 ? COMMIT : COMMIT2);
    const old = await publishOld();
    const res = await runWith(options(['--format', 'json,yaml']));
    expect(res.exitCode).toBe(65);
    expect(res.message).toMatch(/pinned commit/);
    await expectOldSetUntouched(old);
  });

  it.each<[string, number, () => ReturnType<typeof problem>, RegExp]>([
    ['404 app_not_found → 66', 66, () => problem(404, 'app_not_found', "Application 'orders' not found"), /HTTP 404 app_not_found/],
    ['404 ref_not_found → 66', 66, () => problem(404, 'ref_not_found', "Ref 'x' not found"), /ref_not_found/],
    ['403 → 77', 77, () => problem(403, 'forbidden', 'not allowed'), /HTTP 403/],
    ['401 → 77', 77, () => problem(401, 'unauthorized', 'no identity'), /HTTP 401/],
    ['422 → 65', 65, () => problem(422, 'document_invalid', 'orders/application.yml:3:1 duplicate key'), /HTTP 422 document_invalid/],
    ['400 → 64', 64, () => problem(400, 'invalid_request', 'bad profile'), /HTTP 400/],
    ['409 → 65', 65, () => ({ status: 409, body: '' }), /HTTP 409/],
  ])('%s, not retried, old set untouched', async (_name, exitCode, answer, message) => {
    server.handler = answer;
    const old = await publishOld();
    const res = await runWith(options());
    expect(res.exitCode).toBe(exitCode);
    expect(res.message).toMatch(message);
    expect(server.requests).toHaveLength(1);
    await expectOldSetUntouched(old);
  });

  it.each<[string, () => ReturnType<typeof configAnswer>, RegExp]>([
    ['missing Config-Commit', () => ({ status: 200, headers: { 'content-type': 'text/plain' }, body: 'a=1' }), /Config-Commit/],
    ['HTML error page', () => ({ status: 200, headers: { 'content-type': 'text/html', 'config-commit': COMMIT }, body: '<html>' }), /Content-Type/],
    ['problem+json with 200', () => ({ status: 200, headers: { 'content-type': 'application/problem+json', 'config-commit': COMMIT }, body: '{}' }), /Content-Type/],
    ['bad property count', () => ({ status: 200, headers: { 'content-type': 'text/plain', 'config-commit': COMMIT, 'config-property-count': 'x' }, body: 'a=1' }), /Property-Count/],
    ['invalid UTF-8', () => ({ status: 200, headers: { 'content-type': 'text/plain', 'config-commit': COMMIT }, body: Buffer.from([0x61, 0x3d, 0xff]) }), /UTF-8/],
    ['redirect', () => ({ status: 302, headers: { location: '/x' } }), /HTTP 302/],
  ])('malformed answer (%s) → 65', async (_name, answer, message) => {
    server.handler = answer;
    const res = await runWith(options());
    expect(res.exitCode).toBe(65);
    expect(res.message).toMatch(message);
  });

  it('invalid JSON for format json → 65', async () => {
    server.handler = () => configAnswer('json', '{"a":', COMMIT);
    const res = await runWith(options(['--format', 'json']));
    expect(res.exitCode).toBe(65);
    expect(res.message).toMatch(/not valid JSON/);
  });

  it('empty configuration → 65 and the old set untouched; with --allow-empty it is published', async () => {
    server.handler = () => configAnswer('properties', '', COMMIT, 0);
    const old = await publishOld();
    const res = await runWith(options());
    expect(res.exitCode).toBe(65);
    expect(res.code).toBe('CFG_INIT_ERR_EMPTY_CONFIG');
    await expectOldSetUntouched(old);

    const allowed = await runWith(options(['--allow-empty']));
    expect(allowed.exitCode).toBe(0);
    expect(await readFile(join(out, 'application.properties'), 'utf8')).toBe('');
  });

  it('judges emptiness by the body when Config-Property-Count is absent', async () => {
    server.handler = () => ({ status: 200, headers: { 'content-type': 'application/json', 'config-commit': COMMIT }, body: '{ }\n' });
    expect((await runWith(options(['--format', 'json']))).exitCode).toBe(65);
  });

  it('503 then 200 → success after a retry', async () => {
    server.handler = (_req, n) => (n === 1 ? problem(503, 'repo_unavailable', 'git down') : configAnswer('properties', 'a=1\n', COMMIT));
    const res = await runWith(options());
    expect(res.exitCode).toBe(0);
    expect(server.requests).toHaveLength(2);
    expect(logs).toMatch(/retrying.*HTTP 503 repo_unavailable/);
  });

  it('a dropped connection then 200 → success after a retry', async () => {
    server.handler = (_req, n) => (n === 1 ? 'destroy' : configAnswer('properties', 'a=1\n', COMMIT));
    const res = await runWith(options());
    expect(res.exitCode).toBe(0);
    expect(server.requests).toHaveLength(2);
  });

  it('429 with Retry-After: waits at least that long', async () => {
    server.handler = (_req, n) =>
      n === 1 ? { status: 429, headers: { 'retry-after': '1', 'content-type': 'application/problem+json' }, body: '{"code":"rate_limited"}' } : configAnswer('properties', 'a=1\n', COMMIT);
    const res = await runWith(options());
    expect(res.exitCode).toBe(0);
    const [a, b] = server.requests;
    expect((b?.time ?? 0) - (a?.time ?? 0)).toBeGreaterThanOrEqual(950);
  });

  it('Retry-After beyond the deadline → 69 at once, not a useless wait', async () => {
    server.handler = () => ({ status: 503, headers: { 'retry-after': '120' } });
    const res = await runWith(options(['--deadline', '3000']));
    expect(res.exitCode).toBe(69);
    // One request and no retry: the 120 s wait would end past the deadline.
    expect(server.requests).toHaveLength(1);
    expect(logs).not.toMatch(/retrying/);
  });

  it('an attempt that hangs times out and is retried', async () => {
    server.handler = (_req, n) => (n === 1 ? 'hang' : configAnswer('properties', 'a=1\n', COMMIT));
    const t0 = Date.now();
    const res = await runWith(options(['--timeout', '300']));
    expect(res.exitCode).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    expect(server.requests).toHaveLength(2);
    expect(logs).toMatch(/attempt timed out after 300 ms/);
  });

  it('a server that never answers → 69 at the deadline', async () => {
    server.handler = () => 'hang';
    const res = await runWith(options(['--timeout', '400', '--deadline', '1000']));
    expect(res.exitCode).toBe(69);
    expect(res.message).toMatch(/timed out/);
    expect(res.message).toMatch(/deadline 1000 ms/);
  });

  it('5xx for the whole deadline → 69', async () => {
    server.handler = () => problem(500, 'internal', 'boom');
    const res = await runWith(options(['--deadline', '1200']));
    expect(res.exitCode).toBe(69);
    expect(res.message).toMatch(/HTTP 500/);
    expect(server.requests.length).toBeGreaterThan(1);
  });

  it('server down for the whole deadline → 69, old set untouched, cause in the termination log', async () => {
    const port = await freePort();
    const old = await publishOld();
    const tlog = join(out, '..', 'termination-log');
    await writeFile(tlog, '');
    const cmd = parseCommandLine(
      ['--server', `https://127.0.0.1:${port}`, '--app', 'orders', '--cert', certs.files.cert, '--key', certs.files.key, '--ca', certs.files.ca,
        '--output-dir', out, '--deadline', '1500', '--termination-log', tlog],
      {},
    );
    if (cmd.kind !== 'fetch') throw new Error('not fetch');
    const res = await runWith(cmd.options);
    expect(res.exitCode).toBe(69);
    expect(res.message).toMatch(/ECONNREFUSED/);
    // Retried with backoff until the deadline (the waits are random: counted, not timed).
    expect(res.message).toMatch(/deadline 1500 ms/);
    expect(logs.match(/retrying/g)?.length ?? 0).toBeGreaterThanOrEqual(2);
    await expectOldSetUntouched(old);
    const t = await readFile(tlog, 'utf8');
    expect(t).toMatch(/^config-init: exit 69 CFG_INIT_ERR_UNAVAILABLE: config-service unavailable/);
  });

  it('does not create a missing termination log file', async () => {
    server.handler = () => problem(404, 'app_not_found', 'nope');
    const tlog = join(out, '..', 'no-such-termination-log');
    const res = await runWith(options(['--termination-log', tlog]));
    expect(res.exitCode).toBe(66);
    await expect(readFile(tlog)).rejects.toThrow(/ENOENT/);
  });

  it('a Node.js server that closes after the TLS 1.3 handshake (no alert) → retried to the deadline, 69 saying it may reject the certificate', async () => {
    server.handler = () => configAnswer('properties', 'a=1\n', COMMIT);
    const old = await publishOld();
    const res = await runWith(options(['--cert', certs.files.foreignCert, '--key', certs.files.foreignKey, '--deadline', '2000', '--timeout', '1000']));
    // Node's TLS server (rejectUnauthorized) sends no alert: it completes the handshake and
    // destroys the socket. A backend dying right after the handshake looks the same, so
    // this is retried like any reset, and the final message says what it may mean.
    expect(res.exitCode).toBe(69);
    expect(res.code).toBe('CFG_INIT_ERR_UNAVAILABLE');
    expect(res.message).toMatch(/\d+ attempt\(s\) completed the TLS handshake and the server then closed the connection without a TLS alert or an HTTP answer/);
    expect(server.requests).toHaveLength(0);
    expect(logs).toMatch(/cause="ECONNRESET: socket hang up \(after a completed TLSv1\.3 handshake, without a TLS alert or an HTTP answer\)"/);
    await expectOldSetUntouched(old);
  });

  it.each(['-tls1_3', '-tls1_2'])('a TLS alert from the server (openssl s_server %s, unknown ca) → 77 at once', async (version) => {
    const s = await startOpensslServer(certs, [version]);
    try {
      const res = await runWith(options(['--cert', certs.files.foreignCert, '--key', certs.files.foreignKey], s.url));
      expect(res.exitCode).toBe(77);
      const when = version === '-tls1_3' ? 'after the TLSv1.3 handshake' : 'during the TLS handshake';
      expect(res.message).toBe(`the server rejected the client certificate ${when} (TLS alert 48 unknown_ca); check --cert (env CONFIG_INIT_CERT) (expiry, issuer) and that the service trusts its CA`);
      expect(logs).not.toMatch(/retrying/);
    } finally {
      await s.close();
    }
  });

  it('a server certificate from an unknown CA → 77, not retried', async () => {
    server.handler = () => configAnswer('properties', 'a=1\n', COMMIT);
    const res = await runWith(options(['--ca', certs.files.foreignCert]));
    expect(res.exitCode).toBe(77);
    expect(res.message).toMatch(/server certificate is not trusted/);
  });

  it.each<[string, string[], number, RegExp]>([
    ['missing cert file', ['--cert', '/nonexistent/client.pem'], 64, /--cert \(env CONFIG_INIT_CERT\) file '\/nonexistent\/client.pem': ENOENT/],
    ['missing key file', ['--key', '/nonexistent/key.pem'], 64, /--key .*ENOENT/],
    ['key that is not PEM', ['--key', '/etc/hostname'], 64, /not usable/],
    ['key of another certificate', ['--key', '__foreignKey__'], 64, /not usable/],
  ])('%s → exit 64 without printing key material', async (_name, extra, exitCode, message) => {
    const args = extra.map((a) => (a === '__foreignKey__' ? certs.files.foreignKey : a));
    const res = await runWith(options(args));
    expect(res.exitCode).toBe(exitCode);
    expect(res.message).toMatch(message);
    expect(logs).not.toContain('PRIVATE KEY');
    expect(server.requests).toHaveLength(0);
  });

  it('--dry-run fetches and checks but writes nothing', async () => {
    server.handler = () => configAnswer('properties', 'a=1\n', COMMIT);
    let stdout = '';
    const res = await run(options(['--dry-run']), { stdout: { write: (s: string) => (stdout += s) } });
    expect(res.exitCode).toBe(0);
    expect(stdout).toContain(`application.properties\t4 bytes\tsha256:${sha256Hex('a=1\n')}`);
    expect(stdout).not.toContain('a=1');
    await expect(readFile(join(out, 'application.properties'))).rejects.toThrow(/ENOENT/);
  });

  it('a certificate rotated on disk between attempts is used by the next attempt, on a new connection', async () => {
    const tlsDir = await mkdtemp(join(tmpdir(), 'config-init-tls-'));
    const cert = join(tlsDir, 'tls.crt');
    const key = join(tlsDir, 'tls.key');
    await copyFile(certs.files.cert, cert);
    await copyFile(certs.files.key, key);
    server.connections = [];
    server.handler = (_req, n) => {
      if (n === 1) {
        // Rotated while the first answer is on its way, as cert-manager may do at any time.
        writeFileSync(`${cert}.new`, certs.nextClient.certPem);
        writeFileSync(`${key}.new`, certs.nextClient.keyPem);
        renameSync(`${key}.new`, key);
        renameSync(`${cert}.new`, cert);
        return problem(503, 'unavailable', 'restarting');
      }
      return configAnswer('properties', 'a=1\n', COMMIT);
    };
    const res = await runWith(options(['--cert', cert, '--key', key]));
    expect(res.exitCode).toBe(0);
    const fp = (pem: string): string => new X509Certificate(pem).fingerprint256;
    expect(server.requests.map((r) => r.peerFingerprint256)).toEqual([fp(certs.client.certPem), fp(certs.nextClient.certPem)]);
    expect(server.connections).toHaveLength(2);
    expect(logs).toMatch(/INFO  config-init: the client certificate, key or CA changed on disk; the next attempt uses them on a new connection/);
  });

  it('warns when --file-mode hides the files from a setgid output folder\'s group', async () => {
    if (process.getuid?.() !== 0) throw new Error('this test needs root (it gives the output folder another group)');
    server.handler = () => configAnswer('properties', 'a=1\n', COMMIT);
    await mkdir(out, { recursive: true });
    await chown(out, 0, 20_000);
    await chmod(out, 0o2770);
    const res = await runWith(options(['--file-mode', '0600']));
    expect(res.exitCode).toBe(0);
    expect(logs).toContain("WARN  config-init: --file-mode 0600 gives the output folder's group 20000 no read access: an application that reads through that group (Kubernetes fsGroup) cannot read the files; the default 0640 can");
    logs = '';
    expect((await runWith(options())).exitCode).toBe(0);
    expect(logs).not.toContain('WARN');
  });

  it('running as root publishes but warns why and how to avoid it; another uid does not', async () => {
    server.handler = () => configAnswer('properties', 'a=1\n', COMMIT);
    let rootLogs = '';
    const res = await run(options(), { uid: 0, stderr: { write: (s: string) => (rootLogs += s) } });
    expect(res.exitCode).toBe(0);
    expect(rootLogs).toContain(`WARN  config-init: ${ROOT_WARNING} app=orders uid=0`);
    expect(ROOT_WARNING).toMatch(/^running as root \(uid 0\): config-init needs no root; .*runAsNonRoot: true and runAsUser .*fsGroup/);
    let userLogs = '';
    expect((await run(options(), { uid: 10001, stderr: { write: (s: string) => (userLogs += s) } })).exitCode).toBe(0);
    expect(userLogs).not.toContain('running as root');
  });

  it('JSON logs carry level, time, msg, app, commit and file hashes', async () => {
    server.handler = () => configAnswer('properties', 'a=1\n', COMMIT);
    await runWith(options(['--log-format', 'json']));
    const line = JSON.parse(logs.trim().split('\n').pop() ?? '') as Record<string, unknown>;
    expect(line).toMatchObject({ level: 'info', app: 'orders', commit: COMMIT, files: { 'application.properties': sha256Hex('a=1\n') } });
    expect(typeof line.time).toBe('string');
    expect(typeof line.msg).toBe('string');
  });

  it('the published line counts requests across formats and retries, not "attempts"', async () => {
    let calls = 0;
    server.handler = (req) => {
      calls++;
      if (calls === 2) return problem(503, 'repo_unavailable', 'try again');
      const format = req.query.get('format') ?? 'json';
      return configAnswer(format, format === 'json' ? '{"a":1}' : format === 'yaml' ? 'a: 1\n' : 'a=1\n', COMMIT);
    };
    await runWith(options(['--log-format', 'json', '--format', 'json,yaml,properties']));
    const line = JSON.parse(logs.trim().split('\n').pop() ?? '') as Record<string, unknown>;
    expect(line.msg).toMatch(/^published 4 file\(s\)/);
    expect(line).toMatchObject({ requests: 4, retries: 1 });
    expect(line).not.toHaveProperty('attempts');
  });
});
