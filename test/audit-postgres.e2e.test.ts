/**
 * The PostgreSQL audit store end to end (SPEC §6, §10): the real service over mTLS with
 * `audit.store: postgres` and the connection string in the environment, the events read
 * back from PostgreSQL with `psql`, and the built `config-service audit verify` / `audit
 * query` CLI on the same table. The test database comes from helpers/postgres.ts.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsGet, makeCerts, makeGitRepo, startTestService, type ClientCert, type GitTestRepo, type TestPki, type TestService } from '#helpers';
import { psql, testDatabaseUrl } from './helpers/postgres.ts';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../packages/config-service/dist/cli/main.js', import.meta.url));
const URL_ENV = 'CONFIG_SERVICE_AUDIT_DATABASE_URL';

let url: string;
let pki: TestPki;
let orders: ClientCert;
let repo: GitTestRepo;
let service: TestService | undefined;
const table = `audit_e2e_${randomBytes(6).toString('hex')}`;

beforeAll(async () => {
  url = testDatabaseUrl();
  pki = await makeCerts('audit-pg');
  orders = await pki.client('orders');
  repo = await makeGitRepo({
    'orders/application.yml': 'server: {port: 8080}\n',
    'billing/application.yml': 'server: {port: 9090}\n',
  });
});

afterAll(async () => {
  await service?.close();
  if (url) await psql(url, `DROP TABLE IF EXISTS "${table}", "${table}_anchor", "${table}_head", "${table}_checkpoints"`);
});

/** Runs the built CLI; resolves with its exit code and output even when it fails. */
async function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { encoding: 'utf8', env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('audit store: PostgreSQL', () => {
  it('records an allowed and a denied request in PostgreSQL, and `audit verify` reports an intact chain', async () => {
    service = await startTestService({
      pki,
      repository: { path: repo.dir, branch: 'main' },
      settings: { audit: { store: 'postgres', postgres: { table } } },
      env: { [URL_ENV]: url },
    });
    const get = (app: string) =>
      httpsGet(service!.apiUrl, `/v1/apps/${app}/config?format=json`, { ca: pki.ca.certPem, cert: orders.cert, key: orders.key });

    const allowed = await get('orders');
    expect(allowed.status).toBe(200);
    const denied = await get('billing');
    expect(denied.status).toBe(403);

    // Both events are committed before their responses were sent.
    const rows = await psql(url, `SELECT seq, request_id, actor_subject, action, app, outcome, status, commit_id FROM "${table}" ORDER BY seq`);
    expect(rows).toEqual([
      ['1', allowed.headers['request-id'], 'orders', 'config.read', 'orders', 'allowed', '200', repo.commit],
      ['2', denied.headers['request-id'], 'orders', 'config.read', 'billing', 'denied', '403', expect.any(String)],
    ]);
    const [[eventJson]] = (await psql(url, `SELECT event FROM "${table}" WHERE seq = 1`)) as [[string]];
    expect(JSON.parse(eventJson)).toMatchObject({ seq: 1, app: 'orders', outcome: 'allowed', status: 200 });

    // The connection string (with its password) never reaches the log.
    const password = decodeURIComponent(new URL(url).password);
    for (const line of service.logs) {
      expect(line).not.toContain(url);
      if (password) expect(line).not.toContain(`:${password}@`);
    }
    await service.close();
    service = undefined;

    // The CLI opens the same store from a settings file and the environment.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-pg-cli-'));
    const settingsFile = path.join(dir, 'service.yml');
    writeFileSync(
      settingsFile,
      [
        'server:',
        '  tls:',
        `    cert: ${JSON.stringify(pki.serverCertFile)}`,
        `    key: ${JSON.stringify(pki.serverKeyFile)}`,
        `    clientCa: ${JSON.stringify(pki.caFile)}`,
        `dataDir: ${JSON.stringify(path.join(dir, 'data'))}`,
        'repositories:',
        `  - { name: config, path: ${JSON.stringify(repo.dir)} }`,
        'audit:',
        '  store: postgres',
        `  postgres: { table: ${table} }`,
        '',
      ].join('\n'),
    );
    const env = { ...process.env, [URL_ENV]: url };
    const verify = await cli(['audit', 'verify', '--config', settingsFile], env);
    expect(verify).toMatchObject({ code: 0 });
    const verdict = JSON.parse(verify.stdout) as { storeId: string };
    expect(verdict).toEqual({
      ok: true,
      checked: 2,
      storeId: verdict.storeId,
      lastSeq: 2,
      firstSeq: 1,
      checkpoints: { outside: 0, stored: 0, matched: 0, pruned: 0 },
      notProven: [
        'No outside checkpoints were given (--checkpoints): the chain was checked as the database holds it. That the newest events were not deleted together with the counter, or that the whole chain was not rewritten by someone who can write to the database, cannot be proven without checkpoints kept outside it (the log stream, a witness file).',
        'No public key was given (--public-key, or audit.checkpoints.keys in the settings): no signature was checked, neither of the retention anchor nor of stored checkpoints.',
      ],
    });
    expect(verdict.storeId).toMatch(/^[0-9a-f-]{36}$/);

    const query = await cli(['audit', 'query', '--config', settingsFile, '--outcome', 'denied'], env);
    expect(query.code).toBe(0);
    const lines = query.stdout.trim().split('\n').map((l) => JSON.parse(l) as { seq: number; app: string });
    expect(lines.map((e) => [e.seq, e.app])).toEqual([[2, 'billing']]);

    // Without a settings file: --postgres reads the connection string from the variable.
    const direct = await cli(['audit', 'verify', '--postgres', '--table', table], env);
    expect(direct).toMatchObject({ code: 0 });
    // The same store, the same verdict, opened without a settings file.
    expect(JSON.parse(direct.stdout)).toEqual(verdict);
    const { [URL_ENV]: _none, ...base } = process.env;
    const all = await cli(['audit', 'query', '--postgres', '--table', table, '--all'], { ...base, MY_AUDIT_DB: url });
    expect(all.code).toBe(64);
    expect(all.stderr).toBe(`config-service: CFG_ERR_USAGE: --postgres: the environment variable ${URL_ENV} must hold the PostgreSQL connection string\n`);
    const named = await cli(['audit', 'query', '--postgres', '--database-url-env', 'MY_AUDIT_DB', '--table', table, '--all'], { ...base, MY_AUDIT_DB: url });
    expect(named.code).toBe(0);
    expect(named.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual([2, 1]);

    // A tampered row is named by `audit verify`, which then exits 1.
    await psql(url, `UPDATE "${table}" SET event = replace(event, '"status":403', '"status":200') WHERE seq = 2`);
    const broken = await cli(['audit', 'verify', '--config', settingsFile], env);
    expect(broken.code).toBe(1);
    expect(JSON.parse(broken.stdout)).toMatchObject({ ok: false, checked: 2, firstBreak: { seq: 2, reason: 'hash mismatch' } });

    // Without the variable the CLI fails and names it, and nothing of the URL is printed.
    const { [URL_ENV]: _unset, ...noUrl } = env;
    const missing = await cli(['audit', 'verify', '--config', settingsFile], noUrl);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain(URL_ENV);
    expect(missing.stderr + missing.stdout).not.toContain(url);

    // A wrong password fails closed without printing it.
    const wrong = new URL(url);
    wrong.password = `wrong-${randomBytes(6).toString('hex')}`;
    const refused = await cli(['audit', 'verify', '--config', settingsFile], { ...env, [URL_ENV]: wrong.toString() });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr + refused.stdout).not.toContain(wrong.password);
  });
});
