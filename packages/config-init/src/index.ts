/**
 * config-init: fetch one application's configuration from config-service over mutual TLS
 * and publish it atomically (SPEC §7).
 *
 * `run(options, deps)` does one fetch-and-publish and returns an exit code and a message;
 * it never touches `process`. `main(argv, env, io)` parses the command line and calls it;
 * only `cli.ts` touches `process`.
 */
import { helpText, parseCommandLine, type Format, type Options } from './args.js';
import { ConfigInitError, exitCodeFor, toConfigInitError, EXIT } from './errors.js';
import { fetchConfig, loadTlsMaterial, realFetchDeps, type FetchDeps, type FetchResult } from './fetch.js';
import { createLogger, writeTerminationLog, type LogSink } from './log.js';
import { publishFiles, sha256Hex, type PublishFile } from './publish.js';

export { parseCommandLine, helpText, OPTION_TABLE, FORMATS, type Options, type Format, type Command, type LogFormat } from './args.js';
export { ERROR_EXIT_CODES, EXIT, ConfigInitError, UsageError, FetchError, PublishError, exitCodeFor, type ErrorCode } from './errors.js';
export { fetchConfig, loadTlsMaterial, backoffDelay, parseRetryAfter, configUrl, type FetchOptions, type FetchResult, type FetchDeps, type FetchedDocument, type TlsMaterial, type RetryInfo } from './fetch.js';
export { publishFiles, sha256Hex, fileNameViolation, type PublishFile, type PublishOptions, type PublishResult } from './publish.js';
export { createLogger, writeTerminationLog, type Logger, type LogSink } from './log.js';

declare const __CONFIG_INIT_VERSION__: string | undefined;

/** Version of config-init (set by the bundler; `0.0.0-dev` when run from source). */
export const VERSION: string = typeof __CONFIG_INIT_VERSION__ === 'string' ? __CONFIG_INIT_VERSION__ : '0.0.0-dev';

/** Visible file name per format. */
export const OUTPUT_NAMES: Readonly<Record<Format, string>> = {
  json: 'application.json',
  yaml: 'application.yaml',
  properties: 'application.properties',
  env: 'application.env',
  dotenv: '.env',
};

/** Name of the metadata file published with every set. */
export const META_FILE = '.config-meta.json';

/** Content of `.config-meta.json`. Hashes only, never values. */
export interface ConfigMeta {
  /** Application name. */
  app: string;
  /** Profiles asked for, in order. */
  profiles: string[];
  /** Ref asked for (`null` = the repository's default branch). */
  ref: string | null;
  /** Commit every file was read at. */
  commit: string;
  /** When the set was fetched (ISO 8601, UTC). */
  time: string;
  /** The config-service base URL. */
  server: string;
  /** File name → SHA-256 hex of its bytes (the meta file itself excluded). */
  files: Record<string, string>;
}

/** Injected effects of {@link run}; every member is optional. */
export interface RunDeps extends Partial<FetchDeps> {
  /** Log lines go here (stderr in the CLI). Default: discarded. */
  stderr?: LogSink;
  /** `--dry-run` output goes here (stdout in the CLI). Default: `stderr`. */
  stdout?: LogSink;
}

/** Outcome of one run. */
export interface RunResult {
  /** Process exit code (sysexits, SPEC §7). */
  exitCode: number;
  /** One line saying what happened; the failure cause on error. */
  message: string;
  /** Error code on failure. */
  code?: string;
  /** Commit published (on success). */
  commit?: string;
  /** Published file name → SHA-256 (on success). */
  files?: Record<string, string>;
}

/** Builds the file set (documents + meta) from a fetch result. Pure. */
export function buildFileSet(options: Options, fetched: FetchResult, now: number): { files: PublishFile[]; meta: ConfigMeta } {
  const files: PublishFile[] = fetched.documents.map((d) => ({ name: OUTPUT_NAMES[d.format], content: d.body }));
  const hashes: Record<string, string> = {};
  for (const f of files) hashes[f.name] = sha256Hex(f.content);
  const server = new URL(options.server.href);
  const meta: ConfigMeta = {
    app: options.app,
    profiles: [...options.profiles],
    ref: options.ref ?? null,
    commit: fetched.commit,
    time: new Date(now).toISOString(),
    server: server.href,
    files: hashes,
  };
  files.push({ name: META_FILE, content: `${JSON.stringify(meta, null, 2)}\n` });
  return { files, meta };
}

/**
 * One fetch-and-publish: read the client credentials, fetch every format at one commit,
 * check everything, then publish atomically. On failure nothing is published, the cause is
 * logged and written to the termination log (when that file exists).
 *
 * @param options - validated options (see `parseCommandLine`).
 * @param deps - clock, randomness, sleep and output sinks (tests inject them).
 * @returns the exit code and a one-line message; never throws.
 */
export async function run(options: Options, deps: RunDeps = {}): Promise<RunResult> {
  const fetchDeps: FetchDeps = {
    now: deps.now ?? realFetchDeps.now,
    sleep: deps.sleep ?? realFetchDeps.sleep,
    random: deps.random ?? realFetchDeps.random,
  };
  const sink: LogSink = deps.stderr ?? { write: () => true };
  const log = createLogger(sink, options.logFormat, fetchDeps.now);
  fetchDeps.onRetry = deps.onRetry ?? ((r) => log.warn('attempt failed; retrying', { app: options.app, attempt: r.attempt, format: r.format, cause: r.cause, delayMs: r.delayMs }));
  try {
    const tls = await loadTlsMaterial(options);
    const fetched = await fetchConfig(
      {
        server: options.server,
        app: options.app,
        profiles: options.profiles,
        ref: options.ref,
        formats: options.formats,
        timeoutMs: options.timeoutMs,
        deadlineMs: options.deadlineMs,
        allowEmpty: options.allowEmpty,
        tls,
      },
      fetchDeps,
    );
    const { files, meta } = buildFileSet(options, fetched, fetchDeps.now());
    if (options.dryRun) {
      const out = deps.stdout ?? sink;
      for (const f of files) {
        out.write(`${options.outputDir.replace(/\/+$/, '')}/${f.name}\t${Buffer.byteLength(f.content)} bytes\tsha256:${sha256Hex(f.content)}\n`);
      }
      const message = `dry run: ${files.length} file(s) at commit ${fetched.commit} not written`;
      log.info(message, { app: options.app, commit: fetched.commit, files: meta.files });
      return { exitCode: EXIT.OK, message, commit: fetched.commit, files: meta.files };
    }
    const published = await publishFiles({ dir: options.outputDir, files, mode: options.fileMode, now: fetchDeps.now });
    const message = `published ${files.length} file(s) at commit ${fetched.commit} into ${options.outputDir}`;
    log.info(message, {
      app: options.app,
      commit: fetched.commit,
      files: { ...published.files },
      attempts: fetched.attempts,
      version: published.version,
    });
    return { exitCode: EXIT.OK, message, commit: fetched.commit, files: { ...published.files } };
  } catch (thrown) {
    const err: ConfigInitError = toConfigInitError(thrown);
    const exitCode = exitCodeFor(err);
    log.error(err.message, { app: options.app, code: err.code, exitCode });
    await writeTerminationLog(options.terminationLog, `config-init: exit ${exitCode} ${err.code}: ${err.message}`);
    return { exitCode, message: err.message, code: err.code };
  }
}

/** Output streams of {@link main}. */
export interface MainIo {
  /** Help, version and `--dry-run` listing. */
  stdout: LogSink;
  /** Logs and errors. */
  stderr: LogSink;
}

/** The termination-log path when the command line could not be parsed. */
function fallbackTerminationLog(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): string {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a.startsWith('--termination-log=')) return a.slice('--termination-log='.length);
    if (a === '--termination-log') return argv[i + 1] ?? '';
  }
  return env.CONFIG_INIT_TERMINATION_LOG || '/dev/termination-log';
}

/**
 * The CLI: parses `argv` and `env`, prints help or version, or runs a fetch.
 *
 * @param argv - arguments after the program name.
 * @param env - environment (for `CONFIG_INIT_*` fallbacks).
 * @param io - output streams; the bin passes `process.stdout` / `process.stderr`.
 * @returns the exit code; the caller sets `process.exitCode`.
 */
export async function main(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  io: MainIo = { stdout: { write: () => true }, stderr: { write: () => true } },
): Promise<number> {
  let command;
  try {
    command = parseCommandLine(argv, env);
  } catch (thrown) {
    const err = toConfigInitError(thrown);
    const exitCode = exitCodeFor(err);
    io.stderr.write(`config-init: ${err.message}\n`);
    await writeTerminationLog(fallbackTerminationLog(argv, env), `config-init: exit ${exitCode} ${err.code}: ${err.message}`);
    return exitCode;
  }
  if (command.kind === 'help') {
    io.stdout.write(helpText());
    return EXIT.OK;
  }
  if (command.kind === 'version') {
    io.stdout.write(`config-init ${VERSION}\n`);
    return EXIT.OK;
  }
  const result = await run(command.options, { stderr: io.stderr, stdout: io.stdout });
  return result.exitCode;
}
