/**
 * Runs installed or packaged `config-service` / `config-init` programs as a user would:
 * by command name or path, from a folder outside the checkout, with a small environment.
 * Used by the image build check and the tarball install test.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (the checkout the tests run from). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `command args` in `cwd` with exactly `env`; resolves when it exits. */
export function runCli(command: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/**
 * The machine's environment as a user's shell has it (PATH, HOME, CA bundles such as
 * NODE_EXTRA_CA_CERTS that npm and pnpm need to reach the registry), without what the
 * test runner and package managers add (`npm_*`, `PNPM_*`, `VITEST*`, `NODE_ENV`,
 * `NODE_OPTIONS`, `INIT_CWD`, the suite's own `E2E_*`).
 */
export function machineEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || /^(npm_|pnpm_|vitest|e2e_)/i.test(k) || ['NODE_ENV', 'NODE_OPTIONS', 'INIT_CWD', 'TEST', 'VITEST'].includes(k)) continue;
    env[k] = v;
  }
  return env;
}

/** A fresh folder under the OS temp folder, never inside the checkout. */
export function outsideCheckout(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  if (path.relative(REPO_ROOT, dir).split(path.sep)[0] !== '..') throw new Error(`${dir} is inside the checkout ${REPO_ROOT}`);
  return dir;
}

/** The files of examples/config-repo (path → content), to commit into a test repository. */
export function sampleRepoFiles(): Record<string, string> {
  const base = path.join(REPO_ROOT, 'examples/config-repo');
  const files: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const name of readdirSync(path.join(base, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      if (statSync(path.join(base, r)).isDirectory()) walk(r);
      else files[r] = readFileSync(path.join(base, r), 'utf8');
    }
  };
  walk('');
  return files;
}

/** A running `config-service serve` child process. */
export interface ServeProcess {
  api: string;
  management: string;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** SIGTERM, then waits for the exit; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Writes a service.yml in `dir` (API on 127.0.0.1, ephemeral ports, TLS files of a
 * `config-service pki init` folder, one local repository) and starts
 * `command serve --config <file>`; resolves once it logs `config-service listening`.
 * @throws when the process exits first or does not listen within `timeoutMs`.
 */
export async function startServeCli(command: string, opts: { dir: string; pkiDir: string; repoDir: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<ServeProcess> {
  const settings = path.join(opts.dir, 'service.yml');
  writeFileSync(
    settings,
    [
      'server:',
      '  host: 127.0.0.1',
      '  port: 0',
      `  tls: { cert: ${JSON.stringify(path.join(opts.pkiDir, 'server.crt'))}, key: ${JSON.stringify(path.join(opts.pkiDir, 'server.key'))}, clientCa: ${JSON.stringify(path.join(opts.pkiDir, 'ca.crt'))} }`,
      'management: { host: 127.0.0.1, port: 0 }',
      `dataDir: ${JSON.stringify(path.join(opts.dir, 'data'))}`,
      'repositories:',
      '  - name: config',
      `    path: ${JSON.stringify(opts.repoDir)}`,
      '    branch: main',
      'log: { level: info }',
      '',
    ].join('\n'),
  );
  const child = spawn(command, ['serve', '--config', settings], { cwd: opts.dir, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const listening = new Promise<{ api: string; management: string }>((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d;
      for (const line of out.split('\n')) {
        if (!line.includes('config-service listening')) continue;
        const { api, management } = JSON.parse(line) as { api: string; management: string };
        resolve({ api, management });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d: Buffer) => (out += d));
    child.on('error', reject);
    void exited.then((code) => reject(new Error(`config-service serve exited ${code} before listening:\n${out}`)));
    setTimeout(() => reject(new Error(`config-service serve did not listen within ${opts.timeoutMs ?? 60_000} ms:\n${out}`)), opts.timeoutMs ?? 60_000).unref();
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    return exited;
  };
  try {
    const urls = await listening;
    return { ...urls, output: () => out, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Polls `url` until it answers 200 or `timeoutMs` passes; resolves with the last body. */
export async function waitFor200(url: string, timeoutMs = 60_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const res = await fetch(url);
      last = `${res.status} ${await res.text()}`;
      if (res.status === 200) return last.slice(4);
    } catch (err) {
      last = String(err);
    }
    if (Date.now() > until) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms; last: ${last}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A program to run: command (name on PATH, or path) and its environment. */
export interface Program {
  command: string;
  env: NodeJS.ProcessEnv;
}

/**
 * The whole job with installed programs, from folders outside the checkout:
 * `config-service pki init` and `pki issue --app orders`, `serve` on the sample repository
 * until `/health/ready` answers 200, then `config-init fetch` of orders/prod over mTLS.
 * @returns the commit served, what config-init printed and the published application.properties.
 */
export async function serveAndFetch(service: Program, init: Program): Promise<{ commit: string; ready: { status: string }; fetch: CliResult; properties: string }> {
  const { makeGitRepo } = await import('./git-repo.ts');
  const work = outsideCheckout('cli-serve-');
  const pkiDir = path.join(work, 'pki');
  for (const args of [['pki', 'init', '--dir', pkiDir], ['pki', 'issue', '--dir', pkiDir, '--app', 'orders']]) {
    const res = await runCli(service.command, args, { cwd: work, env: service.env });
    if (res.code !== 0) throw new Error(`config-service ${args.join(' ')} exited ${res.code}: ${res.stderr}`);
  }
  const repo = await makeGitRepo(sampleRepoFiles());
  const serve = await startServeCli(service.command, { dir: work, pkiDir, repoDir: repo.dir, env: service.env });
  try {
    const ready = JSON.parse(await waitFor200(`${serve.management}/health/ready`)) as { status: string };
    const out = path.join(work, 'config');
    const fetch = await runCli(
      init.command,
      ['fetch', '--server', serve.api, '--app', 'orders', '--profile', 'prod', '--cert', path.join(pkiDir, 'orders.crt'), '--key', path.join(pkiDir, 'orders.key'),
        '--ca', path.join(pkiDir, 'ca.crt'), '--output-dir', out, '--termination-log', ''],
      { cwd: work, env: init.env },
    );
    const properties = fetch.code === 0 ? readFileSync(path.join(out, 'application.properties'), 'utf8') : '';
    return { commit: repo.commit, ready, fetch, properties };
  } finally {
    const code = await serve.stop();
    if (code !== 0) throw new Error(`config-service serve exited ${code} on SIGTERM:\n${serve.output()}`);
  }
}
