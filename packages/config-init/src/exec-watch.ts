/**
 * `config-init exec --watch` (SPEC §7): the command runs with the configuration as its
 * environment (as `exec`), and config-init keeps long-polling. On a change it fetches the
 * environment map (and `--files`, `--templates`, republished atomically), checks it, and
 * then either restarts the command gracefully (SIGTERM, `--grace-period`, SIGKILL, start
 * again with the new environment; the default) or sends it `--on-change-signal`.
 *
 * Exit codes stay those of `exec`: when the command ends on its own (not by a restart),
 * config-init ends with its code (128+n for a death by signal n); a restart that cannot
 * start the command is 127 (not found) or 126 (not executable). SIGTERM, SIGINT, SIGHUP,
 * SIGQUIT, SIGUSR1 and SIGUSR2 are forwarded to the command; SIGTERM, SIGINT and SIGQUIT
 * also stop the watching, and config-init ends when the command does.
 *
 * A failed fetch, a refused variable or a publication that fails leaves the command running
 * with what it has; the watcher backs off with jitter and `/health/ready` says why.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Options } from './args.js';
import { ConfigInitError, toConfigInitError } from './errors.js';
import { childEnv, FORWARDED_SIGNALS, refusedEnvNames, signalExitCode, type ForwardedSignal, type SignalSource } from './exec.js';
import type { FetchResult } from './fetch.js';
import { loadTlsMaterial } from './fetch.js';
import { startHealthServer, WatchState, type HealthServer } from './health.js';
import { publishFiles } from './publish.js';
import { buildFileSet } from './set.js';
import { fetchAll, pollTargets, sameContent, sleepUnless, waitForChange, watchBackoff, type WatchContext } from './watch.js';
import type { WatchOptions } from './watch-args.js';

/** Signals that also stop the watching (the pod is being stopped). */
const STOPPING: ReadonlySet<ForwardedSignal> = new Set(['SIGTERM', 'SIGINT', 'SIGQUIT']);

/** One run of the command. */
interface Run {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `command` with `env` (no shell, stdio inherited) and resolves once it runs.
 * @throws {@link ConfigInitError} 127 / 126 when it cannot be started
 */
function startRun(command: readonly string[], env: Readonly<Record<string, string>>): Promise<Run> {
  const [file = '', ...args] = command;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, stdio: 'inherit', shell: false });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.once('exit', (code, signal) => done({ code, signal })));
    child.once('spawn', () => resolve({ child, exited }));
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (child.pid !== undefined) return; // a failed kill() of a running child
      const code = err.code ?? 'ERROR';
      const notFound = code === 'ENOENT' || code === 'ENOTDIR';
      reject(
        new ConfigInitError(
          notFound ? 'CFG_INIT_ERR_COMMAND_NOT_FOUND' : 'CFG_INIT_ERR_COMMAND_NOT_EXECUTABLE',
          notFound ? `command '${file}' not found (${code}); exec starts it without a shell, so give a path or a program on PATH` : `command '${file}' cannot be executed (${code})`,
          { cause: err },
        ),
      );
    });
  });
}

/** What {@link superviseWithWatch} needs besides the options. */
export interface ExecWatchDeps {
  /** The environment the configuration is merged over. */
  readonly baseEnv: Readonly<Record<string, string | undefined>>;
  /** Signals to forward (the CLI passes `process`). */
  readonly signals?: SignalSource | undefined;
  /** Called with each started command's pid. */
  readonly onSpawn?: ((pid: number) => void) | undefined;
}

/**
 * Runs `command` and keeps it in step with the configuration until it ends.
 *
 * @param first - the fetch that gave the command's first environment (its ETags are polled)
 * @returns the exit code (the command's, as `exec`) and a one-line message
 */
export async function superviseWithWatch(
  options: Options,
  watch: WatchOptions,
  command: readonly string[],
  first: FetchResult,
  ctx: Omit<WatchContext, 'stop'>,
  deps: ExecWatchDeps,
): Promise<{ exitCode: number; message: string }> {
  const { log, fetchDeps } = ctx;
  const name = command[0] ?? '';
  const stop = new AbortController();
  const state = new WatchState(fetchDeps.now);
  state.published(first.commit);
  state.current();
  let health: HealthServer | undefined;
  let run: Run;
  try {
    if (watch.healthPort !== undefined) health = await startHealthServer(state, watch.healthPort);
    run = await startRun(command, childEnv(deps.baseEnv, first.env ?? {}));
  } catch (thrown) {
    await health?.close();
    throw thrown;
  }
  if (run.child.pid !== undefined) deps.onSpawn?.(run.child.pid);
  const forwarded: ForwardedSignal[] = [];
  const listeners = new Map<ForwardedSignal, () => void>();
  for (const sig of FORWARDED_SIGNALS) {
    const fn = (): void => {
      forwarded.push(sig);
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill(sig);
      if (STOPPING.has(sig)) stop.abort();
    };
    listeners.set(sig, fn);
    deps.signals?.on(sig, fn);
  }
  let restarting = false;
  let ended: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const watchExit = (r: Run): void => {
    void r.exited.then((e) => {
      if (r !== run || restarting) return;
      ended = e;
      stop.abort();
    });
  };
  watchExit(run);
  let current = first;
  let failures = 0;
  try {
    while (!stop.signal.aborted) {
      const tls = await loadTlsMaterial(options).catch(() => undefined);
      const changed = tls !== undefined && (await waitForChange(options, watch, pollTargets(options, current, true), tls, { log, fetchDeps, stop: stop.signal }, state));
      if (stop.signal.aborted) break;
      if (!changed) {
        await sleepUnless(watchBackoff(++failures, fetchDeps.random), stop.signal);
        continue;
      }
      let next: FetchResult;
      try {
        ({ fetched: next } = await fetchAll(options, fetchDeps, true));
        const refused = refusedEnvNames(next.env ?? {}, options.allowEnv);
        if (refused.length > 0) throw new ConfigInitError('CFG_INIT_ERR_REFUSED_ENV', `the new configuration sets ${refused.join(', ')}, which change how a process loads code; allow by name with --allow-env (env CONFIG_INIT_ALLOW_ENV) if intended`);
        if (options.files || options.templates) {
          const set = buildFileSet(options, next, fetchDeps.now());
          const before = buildFileSet(options, current, fetchDeps.now());
          if (!sameContent(before.meta.files, set.meta.files)) await publishFiles({ dir: options.outputDir, files: set.files, directories: set.directories, mode: options.fileMode, now: fetchDeps.now });
        }
      } catch (thrown) {
        const err = toConfigInitError(thrown);
        failures += 1;
        const delayMs = watchBackoff(failures, fetchDeps.random);
        state.stale(`${err.code}: ${err.message}; the command keeps its configuration`);
        log.warn(`change not applied: ${err.message}; the command keeps running with commit ${current.commit}; retrying in ${delayMs} ms`, { app: options.app, code: err.code, delayMs });
        await sleepUnless(delayMs, stop.signal);
        continue;
      }
      if (stop.signal.aborted) break;
      failures = 0;
      const envChanged = next.envSha256 !== current.envSha256;
      current = next;
      state.published(next.commit);
      state.current();
      if (!watch.restart) {
        run.child.kill(watch.signal ?? 'SIGHUP');
        log.info(`configuration changed (commit ${next.commit}); sent ${watch.signal ?? 'SIGHUP'} to '${name}'`, { app: options.app, commit: next.commit, envChanged });
        continue;
      }
      log.info(`configuration changed (commit ${next.commit}); restarting '${name}' (SIGTERM, grace period ${watch.gracePeriodMs} ms)`, { app: options.app, commit: next.commit, envChanged });
      restarting = true;
      const old = run;
      old.child.kill('SIGTERM');
      const timer = setTimeout(() => old.child.kill('SIGKILL'), watch.gracePeriodMs);
      const how = await old.exited;
      clearTimeout(timer);
      log.info(`'${name}' ${how.signal ? `was stopped by ${how.signal}` : `exited with code ${how.code ?? ''}`}; starting it with the new configuration`, { app: options.app, commit: next.commit });
      run = await startRun(command, childEnv(deps.baseEnv, next.env ?? {}));
      restarting = false;
      if (run.child.pid !== undefined) deps.onSpawn?.(run.child.pid);
      watchExit(run);
      if (stop.signal.aborted && ended === undefined) run.child.kill('SIGTERM');
    }
    const e = ended ?? (await run.exited);
    const exitCode = e.code ?? (e.signal ? signalExitCode(e.signal) : 128);
    const message = `command '${name}' ${e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code ?? ''}`}`;
    log.info(message, { app: options.app, commit: current.commit, exitCode, ...(forwarded.length > 0 ? { forwarded } : {}) });
    return { exitCode, message };
  } finally {
    for (const [sig, fn] of listeners) deps.signals?.off(sig, fn);
    await health?.close();
  }
}
