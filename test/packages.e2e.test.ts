/**
 * Installable CLIs (issue 10): `npm pack` of each package (its `prepack` builds it) gives a
 * tarball that `npm install -g` installs into an empty prefix outside the checkout, with
 * dependencies from the registry as usual, and the installed `config-service` and
 * `config-init` run: `--help`, `pki`, `encrypt` (stdout is exactly the `{cipher}` value, so
 * `X=$(config-service encrypt ...)` captures only it), `validate`, `serve` until ready, and
 * `config-init fetch` against it. Also: `pnpm --silent` prints nothing but the command's
 * own output, as docs/config-init.md and README.md say.
 *
 * Takes one to four minutes: npm resolves about 190 packages and compiles better-sqlite3.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, machineEnv, makeGitRepo, outsideCheckout, runCli, sampleRepoFiles, serveAndFetch, type Program } from '#helpers';

const TIMEOUT = 600_000;
const PNPM = ['-y', 'pnpm@10.34.9'];
const version = (pkg: string) => (JSON.parse(readFileSync(path.join(REPO_ROOT, 'packages', pkg, 'package.json'), 'utf8')) as { version: string }).version;
/** The machine's environment: Node.js, npm, a compiler for better-sqlite3, npm's cache and CA bundle. */
const baseEnv = (): NodeJS.ProcessEnv => machineEnv();

const tarballs: Record<'config-service' | 'config-init', string> = { 'config-service': '', 'config-init': '' };
let prefix: string;
let packDir: string;
let service: Program;
let init: Program;

beforeAll(async () => {
  packDir = outsideCheckout('npm-pack-');
  for (const pkg of ['config-init', 'config-service'] as const) {
    const out = execFileSync('npm', ['pack', '--pack-destination', packDir, '--json'], { cwd: path.join(REPO_ROOT, 'packages', pkg), env: baseEnv(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    // `npm pack --json` prints the prepack build's output first, then the JSON array.
    const [info] = JSON.parse(out.slice(out.lastIndexOf('\n[') + 1)) as [{ filename: string }];
    tarballs[pkg] = path.join(packDir, info.filename);
  }
  prefix = outsideCheckout('npm-prefix-');
  const res = await runCli('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--allow-scripts=better-sqlite3', tarballs['config-init'], tarballs['config-service']], {
    cwd: outsideCheckout('npm-cwd-'),
    env: baseEnv(),
  });
  if (res.code !== 0) throw new Error(`npm install -g exited ${res.code}:\n${res.stderr}`);
  const env = { ...baseEnv(), PATH: `${path.join(prefix, 'bin')}:${baseEnv().PATH ?? ''}` };
  service = { command: path.join(prefix, 'bin', 'config-service'), env };
  init = { command: path.join(prefix, 'bin', 'config-init'), env };
}, TIMEOUT);

afterAll(() => {
  for (const dir of [prefix, packDir]) if (dir) rmSync(dir, { recursive: true, force: true });
});

function tarList(file: string): string[] {
  return execFileSync('tar', ['-tzf', file], { encoding: 'utf8' }).split('\n').filter(Boolean);
}

describe('npm pack', () => {
  it('config-service: bin and the built dist, no sources, tests or workspace: specifiers', () => {
    const files = tarList(tarballs['config-service']);
    expect(files).toContain('package/bin/config-service.mjs');
    expect(files).toContain('package/dist/cli/main.js');
    expect(files.filter((f) => /^package\/(src|test)\//.test(f))).toEqual([]);
    const pkg = execFileSync('tar', ['-xzOf', tarballs['config-service'], 'package/package.json'], { encoding: 'utf8' });
    expect(pkg).not.toContain('workspace:');
  });

  it('config-init: the bundle, no single executable (100 MB) and no sources', () => {
    const files = tarList(tarballs['config-init']);
    expect(files).toContain('package/bin/config-init.mjs');
    expect(files).toContain('package/dist/config-init.mjs');
    expect(files.filter((f) => /^package\/(src|test|dist\/sea)\//.test(f))).toEqual([]);
  });
});

describe('npm install -g of the tarballs', () => {
  it('config-service --help and config-init --version run by name from outside the checkout', async () => {
    const cwd = outsideCheckout('npm-run-');
    const help = await runCli('config-service', ['--help'], { cwd, env: service.env });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('validate');
    const v = await runCli('config-init', ['--version'], { cwd, env: init.env });
    expect(v.stdout).toBe(`config-init ${version('config-init')}\n`);
    expect((await runCli('config-service', ['--version'], { cwd, env: service.env })).stdout).toBe(`${version('config-service')}\n`);
  });

  it('config-service encrypt writes exactly the {cipher} value on stdout', async () => {
    const cwd = outsideCheckout('npm-encrypt-');
    expect((await runCli('config-service', ['encrypt', 'keygen', '--dir', cwd, '--id', 'k1'], { cwd, env: service.env })).code).toBe(0);
    const res = await runCli('config-service', ['encrypt', '--public-key', path.join(cwd, 'k1.public.pem'), '--key-id', 'k1', '--value', 's3cret'], { cwd, env: service.env });
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^\{cipher\}\{key:k1\}[A-Za-z0-9+/=_-]+\n$/);
  });

  it('config-service validate on a configuration repository', async () => {
    const repo = await makeGitRepo(sampleRepoFiles());
    const res = await runCli('config-service', ['validate', '.'], { cwd: repo.dir, env: service.env });
    expect(res.stdout).toMatch(/^0 errors, 0 warnings; checked \d+ documents, 3 applications/m);
    expect(res.code).toBe(0);
  });

  it('serve (SQLite audit: better-sqlite3 was built) until ready; the installed config-init fetches', async () => {
    const res = await serveAndFetch(service, init);
    expect(res.ready.status).toBe('ready');
    expect(res.fetch.code).toBe(0);
    expect(res.properties).toMatch(/^server\.port=8080$/m);
  });
});

describe('from the checkout', () => {
  it('pnpm --silent config-service prints only the command\'s output (no banner)', async () => {
    const res = await runCli('npx', [...PNPM, '--silent', 'config-service', '--version'], { cwd: REPO_ROOT, env: baseEnv() });
    expect(res.stdout).toBe(`${version('config-service')}\n`);
    const loud = await runCli('npx', [...PNPM, 'config-service', '--version'], { cwd: REPO_ROOT, env: baseEnv() });
    expect(loud.stdout).toContain('> node packages/config-service/bin/config-service.mjs');
  });
});
