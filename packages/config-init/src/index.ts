/**
 * config-init: fetch one application's configuration from config-service over mutual TLS
 * and publish it atomically (SPEC §7).
 *
 * `run(options, deps)` does one fetch-and-publish, `runExec(options, command, deps, watch?)`
 * one fetch-and-start (and keeps watching with `--watch`), `runWatch(options, watch, deps)`
 * the sidecar loop; each returns an exit code and a message and never touches `process`. `main(argv, env, io)` parses the command line and calls it;
 * only `cli.ts` touches `process`.
 */
import { helpText, parseCommandLine, type Options } from './args.js';
import { ConfigInitError, exitCodeFor, toConfigInitError, EXIT } from './errors.js';
import { childEnv, refusedEnvNames, startCommand, type SignalSource } from './exec.js';
import { expectationOf, loadFallback, saveFallback } from './fallback.js';
import { fetchConfig, fetchOptionsOf, loadTlsMaterial, realFetchDeps, type FetchDeps, type FetchResult } from './fetch.js';
import { createLogger, writeTerminationLog, type Logger, type LogSink } from './log.js';
import { checkOutputDir, publishFiles, sha256Hex, type PublishFile, type PublishResult } from './publish.js';
import { buildFileSet } from './set.js';
import { superviseWithWatch } from './exec-watch.js';
import { watchLoop } from './watch.js';
import type { WatchOptions } from './watch-args.js';

export { parseCommandLine, helpText, OPTION_TABLE, FORMATS, ENV_NAME_RE, type Options, type Format, type Command, type LogFormat, type EnvNaming, type WatchOptions } from './args.js';
export { notifyChange, findProcesses, readPidFile, type NotifyTargets, type NotifyReport, type ProcessTable } from './notify.js';
export { startHealthServer, WatchState, type HealthServer } from './health.js';
export { pollOnce, type PollTarget, type PollOutcome } from './poll.js';
export { ERROR_EXIT_CODES, EXIT, ConfigInitError, UsageError, FetchError, PublishError, exitCodeFor, type ErrorCode } from './errors.js';
export { fetchConfig, loadTlsMaterial, backoffDelay, parseRetryAfter, configUrl, filesListUrl, fileUrl, filePathViolation, type FetchOptions, type FetchResult, type FetchDeps, type FetchedDocument, type FetchedEnv, type FetchedFile, type FileEntry, type TlsMaterial, type TlsFiles, type TlsReloadInfo, type RetryInfo } from './fetch.js';
export { publishFiles, publishPathViolation, sha256Hex, fileNameViolation, type PublishFile, type PublishOptions, type PublishResult } from './publish.js';
export { buildFileSet, OUTPUT_NAMES, META_FILE, FILES_DIR, type ConfigMeta, type FileSet } from './set.js';
export { REFUSED_ENV_NAMES, REFUSED_ENV_PREFIXES, FORWARDED_SIGNALS, refusedEnvNames, isRefusedEnvName, childEnv, startCommand, signalExitCode, type SignalSource, type ForwardedSignal, type CommandOutcome } from './exec.js';
export { saveFallback, loadFallback, FALLBACK_FILE_MODE, type FallbackSet, type FallbackExpectation } from './fallback.js';
export { createLogger, writeTerminationLog, type Logger, type LogSink } from './log.js';

declare const __CONFIG_INIT_VERSION__: string | undefined;

/** Version of config-init (set by the bundler; `0.0.0-dev` when run from source). */
export const VERSION: string = typeof __CONFIG_INIT_VERSION__ === 'string' ? __CONFIG_INIT_VERSION__ : '0.0.0-dev';

/** Injected effects of {@link run}; every member is optional. */
export interface RunDeps extends Partial<FetchDeps> {
  /** The effective user id of the process (the CLI passes `process.geteuid()`); 0 logs the root warning. */
  uid?: number | undefined;
  /** Log lines go here (stderr in the CLI). Default: discarded. */
  stderr?: LogSink;
  /** `--dry-run` output goes here (stdout in the CLI). Default: `stderr`. */
  stdout?: LogSink;
}

/** Injected effects of {@link runExec}. */
export interface ExecDeps extends RunDeps {
  /** The environment the configuration is merged over (the CLI passes `process.env`). Default: empty. */
  baseEnv?: Readonly<Record<string, string | undefined>>;
  /** Signals to forward to the command (the CLI passes `process`). Default: none. */
  signals?: SignalSource;
  /** Called with the child's pid once it runs. */
  onSpawn?: (pid: number) => void;
}

/** Outcome of one run. */
export interface RunResult {
  /** Process exit code (sysexits, SPEC §7; for `exec` the command's code). */
  exitCode: number;
  /** One line saying what happened; the failure cause on error. */
  message: string;
  /** Error code on failure. */
  code?: string;
  /** Commit published (on success) or handed to the command. */
  commit?: string;
  /** Published file name → SHA-256 (on success). */
  files?: Record<string, string>;
  /** Set when the fallback set was published instead of a fresh one. */
  fallback?: { commit: string; time: string; ageMs: number };
}

interface Context {
  fetchDeps: FetchDeps;
  sink: LogSink;
  out: LogSink;
  log: Logger;
}

function contextOf(options: Options, deps: RunDeps): Context {
  const fetchDeps: FetchDeps = {
    now: deps.now ?? realFetchDeps.now,
    sleep: deps.sleep ?? realFetchDeps.sleep,
    random: deps.random ?? realFetchDeps.random,
  };
  const sink: LogSink = deps.stderr ?? { write: () => true };
  const log = createLogger(sink, options.logFormat, fetchDeps.now);
  fetchDeps.onRetry = deps.onRetry ?? ((r) => log.warn('attempt failed; retrying', { app: options.app, attempt: r.attempt, target: r.target, cause: r.cause, delayMs: r.delayMs }));
  fetchDeps.onTlsReload = deps.onTlsReload ?? ((r) => {
    if (r.outcome === 'changed') log.info('the client certificate, key or CA changed on disk; the next attempt uses them on a new connection', { app: options.app });
    else log.warn(`could not re-read the client certificate, key or CA; this attempt uses the last good ones: ${r.reason ?? ''}`, { app: options.app });
  });
  if (deps.uid === 0) log.warn(ROOT_WARNING, { app: options.app, uid: 0 });
  return { fetchDeps, sink, out: deps.stdout ?? sink, log };
}

/**
 * Logged when config-init runs as root (uid 0). Root is not needed to publish into a
 * volume (Kubernetes `fsGroup` makes it group-writable) and it is a smell in an init
 * container: the published files belong to root, so a later run as the application's
 * user (a restart, the watch sidecar) cannot remove them, and a bug or a compromised image
 * acts with root's power on every volume of the pod. Pod Security "restricted" refuses it.
 */
export const ROOT_WARNING =
  "running as root (uid 0): config-init needs no root; files it publishes belong to root, so a later run as the application's user cannot remove them, and a bug or a compromised image would act as root on every volume of the pod. Set the container's securityContext runAsNonRoot: true and runAsUser (and the pod's fsGroup, so the volume is group-writable): see docs/config-init.md, 'Running as root'";

/** Logs what a publication could not do (it still succeeded) and a mode that hides the files from the volume's group. */
function logPublishWarnings(options: Options, log: Logger, published: PublishResult): void {
  for (const w of published.warnings) log.warn(w, { app: options.app, path: options.outputDir });
  if (published.volumeGid !== undefined && (options.fileMode & 0o040) === 0) {
    log.warn(`--file-mode ${options.fileMode.toString(8).padStart(4, '0')} gives the output folder's group ${published.volumeGid} no read access: an application that reads through that group (Kubernetes fsGroup) cannot read the files; the default 0640 can`, { app: options.app, path: options.outputDir });
  }
}

/** `path  size  sha256` lines of a dry run (never a value). */
function listFiles(out: LogSink, dir: string, files: readonly PublishFile[]): void {
  for (const f of files) {
    out.write(`${dir.replace(/\/+$/, '')}/${f.name}\t${Buffer.byteLength(f.content)} bytes\tsha256:${sha256Hex(f.content)}\n`);
  }
}

/** Logs a failure, writes the termination log and builds the result. */
async function fail(options: Options, log: Logger, thrown: unknown, extra = ''): Promise<RunResult> {
  const err: ConfigInitError = toConfigInitError(thrown);
  const exitCode = exitCodeFor(err);
  const message = `${err.message}${extra}`;
  log.error(message, { app: options.app, code: err.code, exitCode });
  await writeTerminationLog(options.terminationLog, `config-init: exit ${exitCode} ${err.code}: ${message}`);
  return { exitCode, message, code: err.code };
}

/**
 * The exit-69 path with `--fallback-dir`: publishes the last good set when it is usable.
 *
 * Decision: a published fallback exits **0** (the pod starts with the last good
 * configuration; exiting non-zero would make the fallback useless in an init container),
 * logged at warn level as `FALLBACK` with the commit and the age, and the same line goes to
 * the termination log. Returns the reason (one line) when the fallback cannot be used;
 * the caller then fails with 69.
 */
async function tryFallback(options: Options, ctx: Context, cause: ConfigInitError): Promise<RunResult | string> {
  const dir = options.fallbackDir;
  if (dir === undefined) return 'no --fallback-dir';
  const set = await loadFallback(dir, expectationOf(options, options.fallbackMaxAgeMs, ctx.fetchDeps.now()));
  if (typeof set === 'string') return set;
  const { meta, ageMs } = set;
  if (options.dryRun) {
    listFiles(ctx.out, options.outputDir, set.files);
  } else {
    logPublishWarnings(options, ctx.log, await publishFiles({ dir: options.outputDir, files: set.files, directories: set.directories, mode: options.fileMode, now: ctx.fetchDeps.now }));
  }
  const message = `FALLBACK: config-service unavailable; ${options.dryRun ? 'dry run: would publish' : 'published'} the last good set at commit ${meta.commit} from ${meta.time} (age ${ageMs} ms) into ${options.outputDir}`;
  ctx.log.warn(message, { app: options.app, commit: meta.commit, fallback: true, ageMs, fetchedAt: meta.time, files: meta.files, cause: cause.message });
  await writeTerminationLog(options.terminationLog, `config-init: exit 0 FALLBACK: ${message.replace(/^FALLBACK: /, '')}; cause: ${cause.message}`);
  return { exitCode: EXIT.OK, message, commit: meta.commit, files: { ...meta.files }, fallback: { commit: meta.commit, time: meta.time, ageMs } };
}

/**
 * One fetch-and-publish: read the client credentials, fetch every format (and the raw
 * files with `--files`) at one commit, check everything, then publish atomically. On
 * failure nothing is published, the cause is logged and written to the termination log
 * (when that file exists). With `--fallback-dir`, a successful publication is also kept
 * there, and an unreachable service (exit 69) publishes that copy when it is usable.
 *
 * @param options - validated options (see `parseCommandLine`).
 * @param deps - clock, randomness, sleep and output sinks (tests inject them).
 * @returns the exit code and a one-line message; never throws.
 */
export async function run(options: Options, deps: RunDeps = {}): Promise<RunResult> {
  const ctx = contextOf(options, deps);
  const { log, fetchDeps } = ctx;
  let fetched: FetchResult;
  try {
    const tls = await loadTlsMaterial(options);
    // Before any request: a missing volume is a deployment error, not a reason to create /config.
    if (!options.dryRun) await checkOutputDir(options.outputDir, options.createOutputDir);
    fetched = await fetchConfig(fetchOptionsOf(options, tls, false), fetchDeps);
  } catch (thrown) {
    const err = toConfigInitError(thrown);
    if (err.code === 'CFG_INIT_ERR_UNAVAILABLE' && options.fallbackDir !== undefined) {
      try {
        const fb = await tryFallback(options, ctx, err);
        if (typeof fb !== 'string') return fb;
        log.warn(`fallback not used: ${fb}`, { app: options.app });
        return await fail(options, log, err, `; fallback not used: ${fb}`);
      } catch (fbErr) {
        return await fail(options, log, fbErr, ` (while publishing the fallback set after: ${err.message})`);
      }
    }
    return await fail(options, log, err);
  }
  try {
    const { files, directories, meta } = buildFileSet(options, fetched, fetchDeps.now());
    if (options.dryRun) {
      listFiles(ctx.out, options.outputDir, files);
      const message = `dry run: ${files.length} file(s) at commit ${fetched.commit} not written`;
      log.info(message, { app: options.app, commit: fetched.commit, files: meta.files });
      return { exitCode: EXIT.OK, message, commit: fetched.commit, files: meta.files };
    }
    const published = await publishFiles({ dir: options.outputDir, files, directories, mode: options.fileMode, now: fetchDeps.now });
    logPublishWarnings(options, log, published);
    const message = `published ${files.length} file(s) at commit ${fetched.commit} into ${options.outputDir}`;
    log.info(message, {
      app: options.app,
      commit: fetched.commit,
      files: { ...published.files },
      requests: fetched.requests,
      retries: fetched.retries,
      version: published.version,
    });
    if (options.fallbackDir !== undefined) {
      // The publication succeeded; a failed copy only weakens the next outage.
      try {
        await saveFallback(options.fallbackDir, files, directories, fetchDeps.now);
        log.info('kept a copy of the set for the fallback', { app: options.app, commit: fetched.commit, path: options.fallbackDir });
      } catch (thrown) {
        log.warn(`could not keep a copy of the set for the fallback: ${toConfigInitError(thrown).message}`, { app: options.app, commit: fetched.commit });
      }
    }
    return { exitCode: EXIT.OK, message, commit: fetched.commit, files: { ...published.files } };
  } catch (thrown) {
    return await fail(options, log, thrown);
  }
}

/**
 * `config-init exec`: fetch the configuration as environment variables (one commit),
 * refuse code-loading variables not allowed by name, publish the raw files when
 * `--files`, then start `command` with the configuration merged over `deps.baseEnv`
 * (the configuration wins), forward signals, and return the command's exit code (128+n
 * when it died from signal n). Before the command starts, failures are reported like
 * `run` (exit 64-77, termination log); a command that cannot be started is 127 (not
 * found) or 126 (not executable).
 *
 * @param options - validated options.
 * @param command - program and arguments (after `--`).
 * @param deps - sinks, clock, base environment, signal source.
 * @param watch - `exec --watch`: keep the command in step with the configuration
 *   (`exec-watch.ts`); the exit code rules stay.
 */
export async function runExec(options: Options, command: readonly string[], deps: ExecDeps = {}, watch?: WatchOptions): Promise<RunResult> {
  const ctx = contextOf(options, deps);
  const { log, fetchDeps } = ctx;
  let commit: string;
  let config: Readonly<Record<string, string>>;
  let first: FetchResult;
  try {
    const tls = await loadTlsMaterial(options);
    const fetched = await fetchConfig(fetchOptionsOf(options, tls, true), fetchDeps);
    commit = fetched.commit;
    config = fetched.env ?? {};
    first = fetched;
    const refused = refusedEnvNames(config, options.allowEnv);
    if (refused.length > 0) {
      throw new ConfigInitError(
        'CFG_INIT_ERR_REFUSED_ENV',
        `refusing to start the command: the configuration sets ${refused.join(', ')}, which change${refused.length === 1 ? 's' : ''} how a process loads code; allow by name with --allow-env (env CONFIG_INIT_ALLOW_ENV) if intended`,
      );
    }
    const names = Object.keys(config).sort();
    const set = options.files || options.templates ? buildFileSet(options, fetched, fetchDeps.now()) : undefined;
    if (options.dryRun) {
      for (const name of names) {
        const value = config[name] ?? '';
        ctx.out.write(`env ${name}\t${Buffer.byteLength(value)} bytes\tsha256:${sha256Hex(value)}\n`);
      }
      if (set) listFiles(ctx.out, options.outputDir, set.files);
      ctx.out.write(`exec ${command[0] ?? ''}\t${command.length - 1} argument(s)\n`);
      const message = `dry run: ${names.length} variable(s) at commit ${commit}; command not started`;
      log.info(message, { app: options.app, commit, variables: names, envSha256: fetched.envSha256 });
      return { exitCode: EXIT.OK, message, commit, ...(set ? { files: set.meta.files } : {}) };
    }
    if (set) {
      const published = await publishFiles({ dir: options.outputDir, files: set.files, directories: set.directories, mode: options.fileMode, now: fetchDeps.now });
      logPublishWarnings(options, log, published);
      log.info(`published ${set.files.length} file(s) at commit ${commit} into ${options.outputDir}`, { app: options.app, commit, files: { ...published.files }, version: published.version });
    }
    log.info(`starting '${command[0] ?? ''}' with ${names.length} configuration variable(s)`, { app: options.app, commit, variables: names, envSha256: fetched.envSha256, requests: fetched.requests, retries: fetched.retries });
  } catch (thrown) {
    return await fail(options, log, thrown);
  }
  try {
    if (watch !== undefined) {
      return { ...(await superviseWithWatch(options, watch, command, first, { log, fetchDeps }, { baseEnv: deps.baseEnv ?? {}, signals: deps.signals, onSpawn: deps.onSpawn })), commit };
    }
    const outcome = await startCommand(command, childEnv(deps.baseEnv ?? {}, config), deps.signals, deps.onSpawn);
    const how = outcome.signal ? `was killed by ${outcome.signal}` : `exited with code ${outcome.code ?? ''}`;
    const message = `command '${command[0] ?? ''}' ${how}`;
    log.info(message, { app: options.app, commit, exitCode: outcome.exitCode, ...(outcome.forwarded.length > 0 ? { forwarded: outcome.forwarded } : {}) });
    return { exitCode: outcome.exitCode, message, commit };
  } catch (thrown) {
    return await fail(options, log, thrown);
  }
}

/** Injected effects of {@link runWatch}. */
export interface WatchDeps extends RunDeps {
  /** SIGTERM and SIGINT stop the watch (the CLI passes `process`). Default: none. */
  signals?: SignalSource;
  /** Stops the watch (tests). */
  stop?: AbortSignal;
}

/**
 * `config-init watch`: the sidecar loop of `watch.ts` (publish, long-poll, republish on a
 * change, notify). Ends with 0 on SIGTERM or SIGINT; 64 when `--health-port` cannot be bound.
 */
export async function runWatch(options: Options, watch: WatchOptions, deps: WatchDeps = {}): Promise<RunResult> {
  const ctx = contextOf(options, deps);
  const stop = new AbortController();
  if (deps.stop !== undefined) deps.stop.addEventListener('abort', () => stop.abort());
  const onSignal = (): void => {
    ctx.log.info('stopping on a signal', { app: options.app });
    stop.abort();
  };
  deps.signals?.on('SIGTERM', onSignal);
  deps.signals?.on('SIGINT', onSignal);
  try {
    const { exitCode, message } = await watchLoop(options, watch, { log: ctx.log, fetchDeps: ctx.fetchDeps, stop: stop.signal });
    return { exitCode, message };
  } finally {
    deps.signals?.off('SIGTERM', onSignal);
    deps.signals?.off('SIGINT', onSignal);
  }
}

/** Output streams and process hooks of {@link main}. */
export interface MainIo {
  /** Help, version and `--dry-run` listing. */
  stdout: LogSink;
  /** Logs and errors. */
  stderr: LogSink;
  /** `exec`: signals to forward (the bin passes `process`). */
  signals?: SignalSource;
  /** Effective user id of the process (the bin passes `process.geteuid()`); 0 logs a warning. */
  uid?: number | undefined;
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
 * The CLI: parses `argv` and `env`, prints help or version, or runs a fetch or an exec.
 *
 * @param argv - arguments after the program name.
 * @param env - environment (for `CONFIG_INIT_*` fallbacks; `exec` merges the
 *   configuration over it for the command).
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
  if (command.kind === 'exec') {
    const result = await runExec(
      command.options,
      command.command,
      {
        stderr: io.stderr,
        stdout: io.stdout,
        baseEnv: env,
        uid: io.uid,
        ...(io.signals ? { signals: io.signals } : {}),
      },
      command.watch,
    );
    return result.exitCode;
  }
  if (command.kind === 'watch') {
    const result = await runWatch(command.options, command.watch, { stderr: io.stderr, stdout: io.stdout, uid: io.uid, ...(io.signals ? { signals: io.signals } : {}) });
    return result.exitCode;
  }
  const result = await run(command.options, { stderr: io.stderr, stdout: io.stdout, uid: io.uid });
  return result.exitCode;
}
