/**
 * Case 15 at service level: Git credentials never appear anywhere (SPEC §4). The real
 * service mirrors a repository from the real `git http-backend` behind HTTP Basic auth.
 *
 * Three ways to give the credential — a token in the URL, a URL-encoded password in the
 * URL, a token in `auth.passwordFile` — times three situations: (a) remote reachable,
 * (b) remote unreachable, (c) the server refuses the password. Debug logging throughout.
 * Searched for every form of the secret: every log line, every body and header of the
 * config (json, properties), Spring, `/v1/apps` and management routes, the audit store
 * (through SQLite and `GET /v1/audit`), and every byte of the data directory (mirror
 * config, snapshot, audit file and its WAL).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  httpsGet,
  makeCerts,
  makeGitRepo,
  makeIssuer,
  runGit,
  startGitHttpServer,
  startTestService,
  type ClientCert,
  type GitTestRepo,
  type HttpsResult,
  type TestIssuer,
  type TestPki,
  type TestService,
} from '#helpers';

const USER = 'deploy-bot';
const TOKEN = 'S3cr3t-T0ken-xyz';
const PASSWORD = 'p@ss/w0rd';

type Sqlite = new (file: string, opts: { readonly: boolean }) => { prepare(sql: string): { all(): unknown[] }; close(): void };
const requireFromService = createRequire(new URL('../packages/config-service/package.json', import.meta.url));
const Database = requireFromService('better-sqlite3') as Sqlite;

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** Every form of `password` (and the Basic pair) that must never show. */
function forbiddenForms(password: string): string[] {
  const enc = encodeURIComponent(password);
  return [...new Set([password, enc, enc.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()), b64(`${USER}:${password}`), b64(`${USER}:${password}`).replace(/=+$/, ''), b64(password).replace(/=+$/, '')])];
}

it('the forbidden forms are the ones case 15 names', () => {
  expect(forbiddenForms(PASSWORD)).toEqual(expect.arrayContaining([PASSWORD, 'p%40ss%2Fw0rd', 'p%40ss%2fw0rd', b64(`${USER}:${PASSWORD}`)]));
  expect(forbiddenForms(TOKEN)).toEqual(expect.arrayContaining([TOKEN, b64(`${USER}:${TOKEN}`)]));
});

let root: string;
let srv: string;
let work: GitTestRepo;
let pki: TestPki;
let issuer: TestIssuer;
let orders: ClientCert;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'cfg-cred-e2e-'));
  srv = join(root, 'srv');
  work = await makeGitRepo({ 'orders/application.yml': 'x: 0\nserver:\n  port: 8080\n', 'orders/application-dev.yml': 'x: 1\n' });
  runGit(root, 'clone', '-q', '--bare', work.dir, join(srv, 'config.git'));
  pki = await makeCerts('cred');
  issuer = makeIssuer(pki.dir);
  orders = await pki.client('orders');
});

afterAll(() => {
  work?.remove();
  rmSync(root, { recursive: true, force: true });
});

/** How the service is given the credential. */
interface Mode {
  readonly name: string;
  /** The secret the service is configured with (what must never show). */
  readonly secret: string;
  /** Repository settings for a server at `base` (`http://127.0.0.1:<port>`). */
  repository(base: string): Record<string, unknown>;
}

let fileCount = 0;
const MODES: readonly Mode[] = [
  {
    name: 'token in the URL',
    secret: TOKEN,
    repository: (base) => ({ url: `${base.replace('http://', `http://${USER}:${TOKEN}@`)}/config.git`, allowInsecureHttp: true }),
  },
  {
    name: 'URL-encoded password in the URL',
    secret: PASSWORD,
    repository: (base) => ({ url: `${base.replace('http://', `http://${USER}:p%40ss%2Fw0rd@`)}/config.git`, allowInsecureHttp: true }),
  },
  {
    name: 'token in auth.passwordFile',
    secret: TOKEN,
    repository: (base) => {
      const file = join(root, `git-token-${++fileCount}`);
      writeFileSync(file, `${TOKEN}\n`, { mode: 0o600 });
      // The test's Git server is plain HTTP on 127.0.0.1.
      return { url: `${base}/config.git`, auth: { username: USER, passwordFile: file }, allowInsecureHttp: true };
    },
  },
];

/** Everything a client, an operator or an attacker with the data directory could read. */
async function collectEverything(service: TestService): Promise<{ texts: Array<[where: string, text: string]>; config: HttpsResult }> {
  const texts: Array<[string, string]> = [];
  const record = (where: string, res: HttpsResult): HttpsResult => {
    texts.push([`${where} body`, res.body]);
    for (const [k, v] of Object.entries(res.headers)) texts.push([`${where} header ${k}`, `${k}: ${v}`]);
    return res;
  };
  const asOrders = { ca: pki.ca.certPem, cert: orders.cert, key: orders.key };
  const config = record('config json', await httpsGet(service.apiUrl, '/v1/apps/orders/config?profile=dev', asOrders));
  record('config properties', await httpsGet(service.apiUrl, '/v1/apps/orders/config?profile=dev&format=properties', asOrders));
  record('spring', await httpsGet(service.apiUrl, '/orders/default', asOrders));
  record('spring dev', await httpsGet(service.apiUrl, '/orders/dev/main', asOrders));
  record('apps', await httpsGet(service.apiUrl, '/v1/apps', asOrders));
  const admin = await issuer.sign({ sub: 'ops', scope: 'admin audit:read', apps: ['*'] });
  record('admin sync', await httpsGet(service.apiUrl, '/v1/admin/sync', { ca: pki.ca.certPem, method: 'POST', headers: { authorization: `Bearer ${admin}` } }));
  const audit = record('GET /v1/audit', await httpsGet(service.apiUrl, '/v1/audit?limit=1000', { ca: pki.ca.certPem, headers: { authorization: `Bearer ${admin}` } }));
  expect(audit.status).toBe(200);
  for (const path of ['/health/live', '/health/ready', '/info', '/metrics']) {
    const res = await fetch(`${service.managementUrl}${path}`);
    const headers: Record<string, string> = {};
    res.headers.forEach((v, k) => (headers[k] = v));
    record(path, { status: res.status, headers, body: await res.text(), json: () => undefined as never });
  }
  await service.close();
  // The audit store, read directly.
  const db = new Database(service.auditPath, { readonly: true });
  try {
    texts.push(['audit sqlite', JSON.stringify(db.prepare('SELECT * FROM sqlite_master').all())]);
    for (const { name } of db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>) {
      texts.push([`audit table ${name}`, JSON.stringify(db.prepare(`SELECT * FROM "${name}"`).all())]);
    }
  } finally {
    db.close();
  }
  // Every byte of the data directory: mirror config, snapshot, refs, audit file and WAL.
  for (const entry of readdirSync(service.dataDir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = join(entry.parentPath, entry.name);
    texts.push([`file ${file}`, readFileSync(file).toString('latin1')]);
  }
  texts.push(['logs', service.logs.join('\n')]);
  return { texts, config };
}

function expectNoSecret(texts: ReadonlyArray<[string, string]>, secret: string): void {
  const forms = forbiddenForms(secret);
  const hits = texts.flatMap(([where, text]) => forms.filter((f) => text.includes(f)).map((f) => `${JSON.stringify(f)} in ${where}`));
  expect(hits).toEqual([]);
}

describe.each(MODES)('case 15, $name', (mode) => {
  it('(a) remote reachable, debug logging: served; the credential shows nowhere', async () => {
    const server = await startGitHttpServer({ projectRoot: srv, auth: { username: USER, password: mode.secret } });
    const service = await startTestService({
      pki,
      repository: { ...mode.repository(server.url), pollIntervalMs: 0 },
      settings: { jwt: { publicKeyFile: issuer.publicKeyFile, issuer: issuer.issuer, audience: issuer.audience } },
      logLevel: 'debug',
    });
    try {
      const { texts, config } = await collectEverything(service);
      expect(config.status).toBe(200);
      expect(config.json()).toEqual({ x: 1, server: { port: 8080 } });
      expect(config.headers['config-commit']).toBe(work.commit);
      // Fetched with the credential: 401 challenge, then authorized requests.
      expect(server.log.some((r) => r.status === 200 && r.authorization === `Basic ${b64(`${USER}:${mode.secret}`)}`)).toBe(true);
      expect(service.logs.some((l) => l.includes('"level":20'))).toBe(true);
      expectNoSecret(texts, mode.secret);
      // isomorphic-git stored the remote URL without userinfo.
      const mirrorConfig = readFileSync(join(service.dataDir, 'mirrors', 'config.git', 'config'), 'utf8');
      expect(mirrorConfig).toContain(`url = ${server.url}/config.git`);
      expect(mirrorConfig).not.toContain('@');
    } finally {
      await service.close();
      await server.close();
    }
  });

  it('(b) remote unreachable: 503 repo_unavailable, no mirror; the credential shows nowhere', async () => {
    const server = await startGitHttpServer({ projectRoot: srv, auth: { username: USER, password: mode.secret } });
    const deadBase = server.url;
    await server.close();
    const service = await startTestService({
      pki,
      repository: { ...mode.repository(deadBase), pollIntervalMs: 0 },
      settings: { jwt: { publicKeyFile: issuer.publicKeyFile, issuer: issuer.issuer, audience: issuer.audience } },
      logLevel: 'debug',
    });
    try {
      const { texts, config } = await collectEverything(service);
      expect(config.status).toBe(503);
      expect(config.json()).toMatchObject({ code: 'repo_unavailable', detail: "Repository 'config' is unavailable: no mirror yet and the last sync failed" });
      expect(readdirSync(join(service.dataDir, 'mirrors')).filter((n) => !n.includes('.tmp-'))).toEqual([]);
      const admin = texts.find(([where]) => where === 'admin sync body')![1];
      expect(JSON.parse(admin)).toMatchObject({ status: 503, code: 'repo_unavailable', detail: "Repository 'config' is unavailable: fetch failed: connection refused" });
      expectNoSecret(texts, mode.secret);
    } finally {
      await service.close();
    }
  });

  it('(c) wrong password (the server answers 401): 503 repo_auth_failed; the credential shows nowhere', async () => {
    const server = await startGitHttpServer({ projectRoot: srv, auth: { username: USER, password: 'the-right-one-42' } });
    const service = await startTestService({
      pki,
      repository: { ...mode.repository(server.url), pollIntervalMs: 0 },
      settings: { jwt: { publicKeyFile: issuer.publicKeyFile, issuer: issuer.issuer, audience: issuer.audience } },
      logLevel: 'debug',
    });
    try {
      const { texts, config } = await collectEverything(service);
      expect(config.status).toBe(503);
      expect(config.json()).toMatchObject({ code: 'repo_auth_failed', detail: "Repository 'config' refused the configured credentials" });
      expect(server.log.filter((r) => r.status === 401).length).toBeGreaterThanOrEqual(1);
      // The secret was sent (and refused): the search below is meaningful.
      expect(server.log.some((r) => r.authorization === `Basic ${b64(`${USER}:${mode.secret}`)}`)).toBe(true);
      expectNoSecret(texts, mode.secret);
    } finally {
      await service.close();
      await server.close();
    }
  });
});

describe('case 15 with a mirror on disk: the last good mirror keeps serving', () => {
  it('(b) remote gone and (c) credentials refused after a restart: 200 from the mirror, the failure in /health/ready, nothing shows', async () => {
    const mode = MODES[0]!;
    const server = await startGitHttpServer({ projectRoot: srv, auth: { username: USER, password: mode.secret } });
    const jwt = { publicKeyFile: issuer.publicKeyFile, issuer: issuer.issuer, audience: issuer.audience };
    const first = await startTestService({ pki, repository: { ...mode.repository(server.url), pollIntervalMs: 0 }, settings: { jwt }, logLevel: 'debug' });
    const dataDir = first.dataDir;
    const base = server.url;
    expect((await collectEverything(first)).config.status).toBe(200); // closes `first`

    // (c) The server now refuses the credential; the service restarts on the same data directory.
    const refusing = await startGitHttpServer({ projectRoot: srv, auth: { username: USER, password: 'rotated-elsewhere-7' } });
    const second = await startTestService({ pki, repository: { ...mode.repository(refusing.url), pollIntervalMs: 0 }, settings: { jwt }, logLevel: 'debug', dataDir });
    try {
      const { texts, config } = await collectEverything(second); // closes `second`
      expect(config.status).toBe(200);
      expect(config.json()).toEqual({ x: 1, server: { port: 8080 } });
      expect(config.headers['config-commit']).toBe(work.commit);
      // collectEverything read /health/ready (and closed the service).
      // Per repository since several are supported (issue 8): checks.repositories[].
      const ready = JSON.parse(texts.find(([where]) => where === '/health/ready body')![1]) as { checks: { repositories: Array<{ name: string; ready: boolean; state: string; lastError: string | null }> } };
      expect(ready.checks.repositories).toEqual([expect.objectContaining({ name: 'config', ready: true, state: 'repo_auth_failed' })]);
      expect(ready.checks.repositories[0]!.lastError).toMatch(/credentials/);
      expectNoSecret(texts, mode.secret);
    } finally {
      await second.close();
      await refusing.close();
    }

    // (b) The remote is gone altogether.
    await server.close();
    const third = await startTestService({ pki, repository: { ...mode.repository(base), pollIntervalMs: 0 }, settings: { jwt }, logLevel: 'debug', dataDir });
    try {
      const { texts, config } = await collectEverything(third);
      expect(config.status).toBe(200);
      expect(config.headers['config-commit']).toBe(work.commit);
      expectNoSecret(texts, mode.secret);
    } finally {
      await third.close();
    }
  });
});

it('case 15 literally: https://deploy-bot:S3cr3t-T0ken-xyz@git.example.test/… (host not found) → 503, nothing shows', async () => {
  const service = await startTestService({
    pki,
    repository: { url: `https://${USER}:${TOKEN}@git.example.test/platform/config.git`, pollIntervalMs: 0 },
    settings: { jwt: { publicKeyFile: issuer.publicKeyFile, issuer: issuer.issuer, audience: issuer.audience } },
    logLevel: 'debug',
  });
  try {
    const { texts, config } = await collectEverything(service);
    expect(config.status).toBe(503);
    expect(config.json()).toMatchObject({ code: 'repo_unavailable' });
    const ready = texts.find(([where]) => where === '/health/ready body')![1];
    expect(JSON.parse(ready)).toMatchObject({ status: 'not_ready', checks: { repositories: [{ name: 'config', ready: false, lastError: expect.stringMatching(/^Repository 'config' is unavailable: fetch failed: /) }] } });
    expectNoSecret(texts, TOKEN);
  } finally {
    await service.close();
  }
});
