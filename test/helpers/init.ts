/**
 * Runs the real config-init as a child process: the bundle (`node dist/config-init.mjs`) or,
 * with `E2E_CONFIG_INIT=sea`, the single executable (`dist/sea/config-init`, built by
 * `build-sea.mjs`). test/package.json's `test` script runs the config-init end-to-end files
 * once with each, so the same tests prove both.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
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

/** A started config-init: the child (to send signals) and its result once it exits. */
export interface InitProcess {
  child: ChildProcess;
  done: Promise<InitResult>;
}

/** Starts `config-init <args>` with `env` (merged over a minimal PATH-only environment). */
export function spawnInit(args: string[], env: Record<string, string> = {}): InitProcess {
  const [command, ...pre] = initCommand();
  const child = spawn(command!, [...pre, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d));
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  const done = new Promise<InitResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

/** Runs `config-init <args>` with `env` (merged over a minimal PATH-only environment). */
export function runInit(args: string[], env: Record<string, string> = {}): Promise<InitResult> {
  return spawnInit(args, env).done;
}
