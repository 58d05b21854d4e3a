/**
 * `config-init exec` (the built bundle) against the REAL config-service over mTLS:
 * case 10 (env values byte for byte in the child), case 11 (names, collisions, spring
 * naming) and a refused code-loading variable.
 *
 * Needs the service to answer `format=env` with `Accept: application/json` as a JSON map
 * of names to values (and `envNaming=spring`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCerts, makeGitRepo, runInit, startTestService, type ClientCert, type TestPki, type TestService } from '#helpers';

/** Case 10's repository, as in ../shared/cases/10-env-quoting.md. */
const CASE_10 = [
  'db:',
  '  password: "pa$$word#1 x"',
  "win: 'C:\\new\\x'",
  'greeting: "it\'s \\"ok\\""',
  'empty: ""',
  "mixed: 'a''b\"c`d $(id)'",
  'tls:',
  '  key: |',
  '    -----BEGIN PRIVATE KEY-----',
  '    MIIBfakeFAKEfake',
  '    -----END PRIVATE KEY-----',
  '',
].join('\n');

/** The child: prints the named variables as JSON (null when unset) on stdout. */
const PRINT_ENV = 'const o = {}; for (const n of process.argv.slice(1)) o[n] = process.env[n] ?? null; process.stdout.write(JSON.stringify(o));';

let pki: TestPki;
let orders: ClientCert;
const services: TestService[] = [];

beforeAll(async () => {
  pki = await makeCerts('init-exec');
  orders = await pki.client('orders');
});
afterAll(async () => {
  for (const s of services) await s.close();
});

async function serve(files: Record<string, string>): Promise<TestService> {
  const repo = await makeGitRepo(files, { branch: 'main' });
  const service = await startTestService({ pki, repository: { path: repo.dir, branch: 'main' } });
  services.push(service);
  return service;
}

function execArgs(service: TestService, extra: string[], command: string[]): string[] {
  return ['exec', '--server', service.apiUrl, '--app', 'orders', '--cert', orders.certFile, '--key', orders.keyFile, '--ca', pki.caFile,
    '--termination-log', '', '--deadline', '10000', ...extra, '--', ...command];
}

describe('case 10: exec hands the child exactly the configured values', () => {
  it('DB_PASSWORD, WIN, GREETING, EMPTY, MIXED and TLS_KEY byte for byte, nothing executed', async () => {
    const service = await serve({ 'orders/application.yml': CASE_10 });
    const names = ['DB_PASSWORD', 'WIN', 'GREETING', 'EMPTY', 'MIXED', 'TLS_KEY'];
    const res = await runInit(execArgs(service, [], [process.execPath, '-e', PRINT_ENV, ...names]));
    expect(res.stderr).not.toContain('pa$$word');
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual({
      DB_PASSWORD: 'pa$$word#1 x',
      WIN: 'C:\\new\\x',
      GREETING: 'it\'s "ok"',
      EMPTY: '',
      MIXED: 'a\'b"c`d $(id)',
      TLS_KEY: '-----BEGIN PRIVATE KEY-----\nMIIBfakeFAKEfake\n-----END PRIVATE KEY-----\n',
    });
  });

  it('--dry-run prints names, sizes and hashes but no value, and starts nothing', async () => {
    const service = await serve({ 'orders/application.yml': CASE_10 });
    const res = await runInit(execArgs(service, ['--dry-run'], [process.execPath, '-e', 'process.stdout.write("STARTED")']));
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^env DB_PASSWORD\t12 bytes\tsha256:[0-9a-f]{64}$/m);
    expect(res.stdout).toMatch(/^env EMPTY\t0 bytes\tsha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855$/m);
    expect(res.stdout).not.toContain('STARTED');
    for (const v of ['pa$$word', 'C:\\new', 'MIIBfake', '$(id)']) expect(res.stdout + res.stderr).not.toContain(v);
  });
});

describe('case 11: environment names', () => {
  const REPO = [
    'spring.datasource.url: jdbc:postgresql://db.example.com/orders',
    'servers:',
    '  - host: a.example.com',
    '  - host: b.example.com',
    'feature-flags:',
    '  new-checkout: true',
    '',
  ].join('\n');

  it('standard names reach the child', async () => {
    const service = await serve({ 'orders/application.yml': REPO });
    const names = ['SPRING_DATASOURCE_URL', 'SERVERS_0_HOST', 'SERVERS_1_HOST', 'FEATURE_FLAGS_NEW_CHECKOUT'];
    const res = await runInit(execArgs(service, [], [process.execPath, '-e', PRINT_ENV, ...names]));
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual({
      SPRING_DATASOURCE_URL: 'jdbc:postgresql://db.example.com/orders',
      SERVERS_0_HOST: 'a.example.com',
      SERVERS_1_HOST: 'b.example.com',
      FEATURE_FLAGS_NEW_CHECKOUT: 'true',
    });
  });

  it('--env-naming spring gives relaxed-binding names', async () => {
    const service = await serve({ 'orders/application.yml': REPO });
    const res = await runInit(execArgs(service, ['--env-naming', 'spring'], [process.execPath, '-e', PRINT_ENV, 'FEATUREFLAGS_NEWCHECKOUT', 'FEATURE_FLAGS_NEW_CHECKOUT']));
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual({ FEATUREFLAGS_NEWCHECKOUT: 'true', FEATURE_FLAGS_NEW_CHECKOUT: null });
  });

  it('a name collision → exit 65, the child never starts', async () => {
    const service = await serve({ 'orders/application.yml': `${REPO}  new_checkout: false\n` });
    const res = await runInit(execArgs(service, [], [process.execPath, '-e', 'process.stdout.write("STARTED")']));
    expect(res.code).toBe(65);
    expect(res.stderr).toMatch(/HTTP 422/);
    expect(res.stdout).toBe('');
  });
});

describe('refused code-loading variables', () => {
  it('node.options in the repository (NODE_OPTIONS) → 65 naming it, child never started; allowed by name it passes', async () => {
    const service = await serve({ 'orders/application.yml': 'node:\n  options: --require /tmp/evil.js\nsafe: ok\n' });
    const refused = await runInit(execArgs(service, [], [process.execPath, '-e', 'process.stdout.write("STARTED")']));
    expect(refused.code).toBe(65);
    expect(refused.stderr).toMatch(/the configuration sets NODE_OPTIONS, which changes how a process loads code/);
    expect(refused.stderr).not.toContain('evil');
    expect(refused.stdout).toBe('');

    // Allowed by name, the child gets it. The child is printenv, not node: a node child
    // would act on NODE_OPTIONS and try to load the file.
    const allowed = await runInit(execArgs(service, ['--allow-env', 'NODE_OPTIONS'], ['/usr/bin/printenv', 'NODE_OPTIONS']));
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.stdout).toBe('--require /tmp/evil.js\n');
  });
});
