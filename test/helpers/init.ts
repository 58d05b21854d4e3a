/**
 * Runs the real, bundled config-init as a child process.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Path of the built config-init bundle. */
export const CONFIG_INIT_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../packages/config-init/dist/config-init.mjs');

export interface InitResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `config-init <args>` with `env` (merged over a minimal PATH-only environment). */
export function runInit(args: string[], env: Record<string, string> = {}): Promise<InitResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CONFIG_INIT_BIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Who runs config-init: numeric ids, set with `setpriv` (util-linux); needs root. */
export interface InitIdentity {
  /** Real and effective user id. */
  uid: number;
  /** Real and effective group id. */
  gid: number;
  /** Supplementary groups (a Kubernetes pod's fsGroup is one); none when empty. */
  groups?: number[];
}

/** How {@link startInit} runs config-init. */
export interface StartInitOptions {
  /** Environment, merged over a minimal PATH-only one. */
  env?: Record<string, string>;
  /** Run as another user through `setpriv --reuid --regid --groups|--clear-groups`. */
  as?: InitIdentity;
  /** The bundle to run (default {@link CONFIG_INIT_BIN}); another user needs a copy it can read. */
  bin?: string;
}

/** A config-init child process that is still running. */
export interface InitProcess {
  /** stderr so far. */
  readonly stderr: string;
  /** Resolves when stderr matches `re`; rejects when the process ends first or after `timeoutMs` (default 60 s). */
  waitForStderr(re: RegExp, timeoutMs?: number): Promise<void>;
  /** The outcome once the process has ended. */
  readonly done: Promise<InitResult>;
}

/**
 * Starts `config-init <args>` (the built bundle) and returns at once, so a test can act
 * while it retries (restart a server, rotate a certificate) and wait for log lines.
 */
export function startInit(args: string[], opts: StartInitOptions = {}): InitProcess {
  const bin = opts.bin ?? CONFIG_INIT_BIN;
  const env = { PATH: process.env.PATH ?? '', ...opts.env };
  const [cmd, argv] = opts.as
    ? ['setpriv', [
      `--reuid=${opts.as.uid}`, `--regid=${opts.as.gid}`,
      ...(opts.as.groups && opts.as.groups.length > 0 ? [`--groups=${opts.as.groups.join(',')}`] : ['--clear-groups']),
      '--', process.execPath, bin, ...args,
    ]]
    : [process.execPath, [bin, ...args]];
  const child = spawn(cmd, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let ended = false;
  const watchers = new Set<() => void>();
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => {
    stderr += d;
    for (const w of watchers) w();
  });
  const done = new Promise<InitResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      ended = true;
      for (const w of watchers) w();
      resolve({ code, signal, stdout, stderr });
    });
  });
  return {
    get stderr() {
      return stderr;
    },
    done,
    waitForStderr: (re, timeoutMs = 60_000) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`config-init never logged ${re} within ${timeoutMs} ms; stderr so far:\n${stderr}`)), timeoutMs);
        const finish = (err?: Error): void => {
          clearTimeout(timer);
          watchers.delete(check);
          if (err) reject(err);
          else resolve();
        };
        const check = (): void => {
          if (re.test(stderr)) finish();
          else if (ended) finish(new Error(`config-init ended before logging ${re}; stderr:\n${stderr}`));
        };
        watchers.add(check);
        check();
      }),
  };
}
