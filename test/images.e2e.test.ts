/**
 * The container images build, checked without a container engine (issue 10): for each
 * Dockerfile under docs/kubernetes/, every RUN of its `build` stage runs exactly as written
 * in an empty temporary folder (test/helpers/dockerfile.ts), the final stage's files are
 * assembled from it, and the programs of the final image run from outside the checkout:
 * `config-service --help`, `validate` on the sample repository, `pki` and `serve` until
 * `/health/ready` answers, and the image's `config-init` (the single executable, with no
 * Node.js on PATH) fetching a configuration from that service over mTLS.
 *
 * Takes about 40 s on a 2-core machine with a warm pnpm store (`pnpm fetch` and
 * `pnpm install` reuse it; better-sqlite3 comes from the store's side-effects cache).
 */
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  REPO_ROOT,
  buildDockerfile,
  imagePath,
  machineEnv,
  makeGitRepo,
  outsideCheckout,
  runCli,
  sampleRepoFiles,
  serveAndFetch,
  type BuiltImage,
} from '#helpers';

const BUILD_TIMEOUT = 600_000;
/**
 * What the base image provides to RUN lines: the machine's environment (Node.js and sh on
 * PATH, HOME with the npx cache and the pnpm store, the CA bundle the registry needs).
 */
const BASE_ENV = machineEnv();

let service: BuiltImage;
let init: BuiltImage;

beforeAll(async () => {
  // One after the other: two cores, and each build is itself parallel.
  service = await buildDockerfile(path.join(REPO_ROOT, 'docs/kubernetes/Dockerfile.config-service'), REPO_ROOT, { env: BASE_ENV });
  init = await buildDockerfile(path.join(REPO_ROOT, 'docs/kubernetes/Dockerfile.config-init'), REPO_ROOT, { env: BASE_ENV });
}, BUILD_TIMEOUT);

afterAll(() => {
  service?.remove();
  init?.remove();
});

/** config-service's image: its own folders on PATH, then the machine's (the base image's Node.js). */
const serviceEnv = () => ({ PATH: `${imagePath(service)}:${BASE_ENV.PATH ?? ''}`, HOME: outsideCheckout('image-home-') });
/** config-init's image (distroless/cc): only its own folders, so no Node.js can be found. */
const initEnv = () => ({ PATH: imagePath(init) });

describe('Dockerfile.config-service', () => {
  it('final stage: numeric non-root user, entry point on PATH, no sources or build tools copied', () => {
    expect(service.user).toBe('10001:10001');
    expect(service.entrypoint).toEqual(['config-service']);
    expect(service.cmd).toEqual(['serve', '--config', '/etc/config-service/service.yml']);
    expect(readlinkSync(service.hostPath('/usr/local/bin/config-service'))).toBe('../../../opt/config-service/bin/config-service.mjs');
    expect(existsSync(service.hostPath('/opt/config-service/dist/cli/main.js'))).toBe(true);
    expect(existsSync(service.hostPath('/opt/config-service/src'))).toBe(false);
    expect(existsSync(service.hostPath('/src'))).toBe(false);
    // Production dependencies only, at the lockfile's exact versions.
    const pkg = JSON.parse(readFileSync(service.hostPath('/opt/config-service/package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(pkg.dependencies.fastify).toMatch(/^\d+\.\d+\.\d+$/);
    expect(existsSync(service.hostPath('/opt/config-service/node_modules/typescript'))).toBe(false);
    expect(existsSync(service.hostPath('/opt/config-service/node_modules/better-sqlite3'))).toBe(true);
  });

  it('config-service --help runs from outside the checkout', async () => {
    const res = await runCli('config-service', ['--help'], { cwd: outsideCheckout('image-cwd-'), env: serviceEnv() });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    for (const command of ['serve', 'pki', 'encrypt', 'audit', 'validate']) expect(res.stdout).toContain(command);
  });

  it('config-service validate passes on the sample repository and fails on a broken one', async () => {
    const cwd = outsideCheckout('image-validate-');
    const repo = await makeGitRepo(sampleRepoFiles());
    const ok = await runCli('config-service', ['validate', repo.dir, '--layout', 'folders'], { cwd, env: serviceEnv() });
    expect(ok.stdout).toMatch(/^0 errors, 0 warnings; checked \d+ documents, 3 applications/m);
    expect(ok.code).toBe(0);
    repo.commitFiles({ 'orders/application.yml': 'a: 1\na: 2\n' }, 'duplicate key');
    const bad = await runCli('config-service', ['validate', repo.dir], { cwd, env: serviceEnv() });
    expect(bad.stdout).toContain('orders/application.yml:2:1: error: duplicate key "a"');
    expect(bad.code).toBe(1);
  });

  it('pki, then serve until /health/ready answers; the image\'s config-init fetches over mTLS', async () => {
    const res = await serveAndFetch({ command: 'config-service', env: serviceEnv() }, { command: init.hostPath('/usr/local/bin/config-init'), env: initEnv() });
    expect(res.ready.status).toBe('ready');
    expect(res.fetch.stderr).toContain(res.commit);
    expect(res.fetch.code).toBe(0);
    expect(res.properties).toMatch(/^server\.port=8080$/m);
  });
});

describe('Dockerfile.config-init', () => {
  it('final stage: distroless non-root user, the single executable as entry point', () => {
    expect(init.user).toBe('65532:65532');
    expect(init.entrypoint).toEqual(['/usr/local/bin/config-init']);
    expect(init.cmd).toEqual(['fetch']);
  });

  it('config-init --help and --version run with no Node.js on PATH, from outside the checkout', async () => {
    const env = initEnv();
    expect(env.PATH.split(':').some((d) => existsSync(path.join(d, 'node')))).toBe(false);
    const help = await runCli('config-init', ['--help'], { cwd: outsideCheckout('image-cwd-'), env });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--server <url>');
    expect(help.stderr).toBe('');
    const version = await runCli('config-init', ['--version'], { cwd: outsideCheckout('image-cwd-'), env });
    expect(version.stdout.trim()).toBe(`config-init ${(JSON.parse(readFileSync(path.join(REPO_ROOT, 'packages/config-init/package.json'), 'utf8')) as { version: string }).version}`);
  });
});
