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
