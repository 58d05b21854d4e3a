/**
 * Runs the built `config-service` CLI as a child process (as an operator or a CI job
 * would), so a crash, an exit code and every byte of output are observed for real.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from './cli.ts';

/** The built CLI entry (`packages/config-service/dist/cli/main.js`). */
export const SERVICE_CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'packages', 'config-service', 'dist', 'cli', 'main.js');

/** What a CLI run did. */
export interface CliRun {
  /** Exit code, or `null` when it died from a signal. */
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `config-service <args>` without blocking the test's event loop.
 * @param opts.env - the child's environment (default: this process's, without `CONFIG_SERVICE_*`).
 */
export async function runServiceCli(args: readonly string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<CliRun> {
  const env = opts.env ?? Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CONFIG_SERVICE_')));
  const { code, signal, stdout, stderr } = await runCli(process.execPath, [SERVICE_CLI, ...args], { cwd: process.cwd(), env });
  return { status: code, signal, stdout, stderr };
}
