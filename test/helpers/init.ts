/**
 * Runs the real config-init as a child process: the bundle (`node dist/config-init.mjs`) or,
 * with `E2E_CONFIG_INIT=sea`, the single executable (`dist/sea/config-init`, built by
 * `build-sea.mjs`). test/package.json's `test` script runs the config-init end-to-end files
 * once with each, so the same tests prove both.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

const PKG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../packages/config-init');

/** Path of the built config-init bundle. */
export const CONFIG_INIT_BIN = path.join(PKG, 'dist/config-init.mjs');
/** Path of the built single executable (linux-x64). */
export const CONFIG_INIT_SEA = path.join(PKG, 'dist/sea/config-init');

/** Which build of config-init the end-to-end tests run. */
export type InitBuild = 'bundle' | 'sea';
/** `sea` when `E2E_CONFIG_INIT=sea`, else `bundle`. */
export const INIT_BUILD: InitBuild = process.env.E2E_CONFIG_INIT === 'sea' ? 'sea' : 'bundle';

/**
 * The command line that starts config-init: `[node, bundle]` or `[executable]`.
 * @throws when the single executable was not built.
 */
export function initCommand(build: InitBuild = INIT_BUILD): string[] {
  if (build === 'bundle') return [process.execPath, CONFIG_INIT_BIN];
  if (!existsSync(CONFIG_INIT_SEA)) throw new Error(`${CONFIG_INIT_SEA} is missing: run \`npx -y pnpm@10.34.9 --filter config-init build:sea\``);
  return [CONFIG_INIT_SEA];
}

export interface InitResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts `config-init <args>` with `env` (merged over a minimal PATH-only environment). */
export function spawnInit(args: string[], env: Record<string, string> = {}): InitProcess {
  return startInit(args, { env });
}

/** Runs `config-init <args>` with `env` (merged over a minimal PATH-only environment). */
export function runInit(args: string[], env: Record<string, string> = {}): Promise<InitResult> {
  return startInit(args, { env }).done;
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
  /** A bundle to run with node instead of {@link initCommand}'s build; another user needs a copy it can read. */
  bin?: string;
}

/** A started config-init process: the child (to send signals), its output so far, and its result once it exits. */
export interface InitProcess {
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  /** stderr so far. */
  readonly stderr: string;
  /** Resolves when stderr matches `re`; rejects when the process ends first or after `timeoutMs` (default 60 s). */
  waitForStderr(re: RegExp, timeoutMs?: number): Promise<void>;
  /** The outcome once the process has ended. */
  readonly done: Promise<InitResult>;
}

/**
 * Starts `config-init <args>` ({@link initCommand}'s build, or `opts.bin`) and returns at
 * once, so a test can act while it retries (restart a server, rotate a certificate),
 * signal it, and wait for log lines.
 */
export function startInit(args: string[], opts: StartInitOptions = {}): InitProcess {
  const env = { PATH: process.env.PATH ?? '', ...opts.env };
  const program = opts.bin !== undefined ? [process.execPath, opts.bin] : initCommand();
  const [cmd, ...argv] = opts.as
    ? [
      'setpriv',
      `--reuid=${opts.as.uid}`, `--regid=${opts.as.gid}`,
      ...(opts.as.groups && opts.as.groups.length > 0 ? [`--groups=${opts.as.groups.join(',')}`] : ['--clear-groups']),
      '--', ...program, ...args,
    ]
    : [...program, ...args];
  const child = spawn(cmd!, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
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
    child,
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
