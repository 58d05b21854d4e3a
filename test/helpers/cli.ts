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
