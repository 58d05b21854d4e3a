/**
 * `config-init watch` (SPEC §7): a sidecar that publishes like `fetch`, then long-polls and,
 * on a change, fetches every format (and `--files`, `--templates`) at one commit, checks all
 * of it, publishes it atomically (a new version folder and one `..data` swap, so a file
 * watcher sees one swap) and notifies the application (`notify.ts`).
 *
 * - Resume: a set already in the output folder for the same app, profiles and ref (every
 *   SHA-256 of its meta matching) is the starting point: a restarted sidecar republishes and
 *   notifies only when config-service has something different.
 * - Failure: the last good set stays; attempts back off with full jitter (1 s doubling to
 *   60 s, or the server's `Retry-After`); `/health/ready` says why the set may be stale.
 *   Only a bad command line (64) ends the process; SIGTERM/SIGINT end it with 0.
 * - A republication happens only when the content differs from the published set (a
 *   commit that changed nothing for this application changes nothing on the volume).
 */
import type { Options } from './args.js';
import { toConfigInitError } from './errors.js';
import { expectationOf, loadFallback } from './fallback.js';
import { fetchConfig, fetchOptionsOf, loadTlsMaterial, type FetchDeps, type FetchResult } from './fetch.js';
import { startHealthServer, WatchState, type HealthServer } from './health.js';
import type { Logger } from './log.js';
import { notifyChange } from './notify.js';
import { pollOnce, type PollTarget } from './poll.js';
import { publishFiles } from './publish.js';
import { ACCEPT } from './response.js';
import { backoffDelay } from './retry.js';
import { buildFileSet, META_FILE, type FileSet } from './set.js';
import type { TlsMaterial } from './transport.js';
import { configUrl, filesListUrl } from './urls.js';
import type { WatchOptions } from './watch-args.js';

/** First and largest backoff of the watch loops (ms). */
export const WATCH_BACKOFF_MIN_MS = 1000;
export const WATCH_BACKOFF_MAX_MS = 60_000;

/** What the watch loops get from `index.ts`: the logger and the clock. */
export interface WatchContext {
  readonly log: Logger;
  readonly fetchDeps: FetchDeps;
  /** Ends the loop (SIGTERM, SIGINT). */
  readonly stop: AbortSignal;
}

/** Waits `ms`, or less when `signal` aborts. */
export function sleepUnless(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

/** The backoff before attempt `failures` (1-based): full jitter in [min, window], or `Retry-After` when longer. */
export function watchBackoff(failures: number, random: () => number, retryAfterMs?: number): number {
  const jitter = WATCH_BACKOFF_MIN_MS + backoffDelay(Math.max(0, failures - 1), random, WATCH_BACKOFF_MIN_MS, WATCH_BACKOFF_MAX_MS);
  return Math.max(jitter, retryAfterMs ?? 0);
}

/** Fetches everything `options` asks for at one commit (`envMap` for `exec --watch`). */
export async function fetchAll(options: Options, deps: FetchDeps, envMap: boolean): Promise<{ fetched: FetchResult; tls: TlsMaterial }> {
  const tls = await loadTlsMaterial(options);
  const fetched = await fetchConfig(fetchOptionsOf(options, tls, envMap), deps);
  return { fetched, tls };
}

/**
 * What to long-poll after a fetch: the configuration (the environment map or the first
 * format: one ETag covers every format), the file list, the template list; `undefined`
 * when the service sent no ETag for one of them (then the caller polls by fetching).
 */
export function pollTargets(options: Options, fetched: FetchResult, envMap: boolean): PollTarget[] | undefined {
  const etags = fetched.etags ?? {};
  const format = envMap ? 'env' : (options.formats[0] ?? 'properties');
  const targets: PollTarget[] = [];
  if (etags.config === undefined) return undefined;
  targets.push({ what: 'configuration', url: configUrl(options.server, options.app, options.profiles, format, options.ref, options.envNaming), accept: envMap ? 'application/json' : ACCEPT[format], etag: etags.config });
  for (const kind of ['files', 'templates'] as const) {
    if (!options[kind]) continue;
    const etag = etags[kind];
    if (etag === undefined) return undefined;
    targets.push({ what: kind === 'files' ? 'file list' : 'template list', url: filesListUrl(options.server, options.app, options.profiles, options.ref, kind), accept: 'application/json', etag });
  }
  return targets;
}

/** Whether two sets hold the same files with the same bytes (the meta file aside). */
export function sameContent(a: Readonly<Record<string, string>> | undefined, b: Readonly<Record<string, string>>): boolean {
  if (a === undefined) return false;
  const keys = Object.keys(b).filter((k) => k !== META_FILE);
  return keys.length === Object.keys(a).filter((k) => k !== META_FILE).length && keys.every((k) => a[k] === b[k]);
}

/**
 * Waits for the next change: long-polls `targets` until one changed (`true`), or the loop
 * stops (`false`). Failures are reported through `state` and backed off, never thrown.
 */
export async function waitForChange(options: Options, watch: WatchOptions, targets: readonly PollTarget[] | undefined, tls: TlsMaterial, ctx: WatchContext, state: WatchState): Promise<boolean> {
  const { log, fetchDeps, stop } = ctx;
  if (targets === undefined) {
    // No ETag to wait on (an older service): check again after one wait.
    await sleepUnless(watch.waitMs, stop);
    return !stop.aborted;
  }
  let failures = 0;
  while (!stop.aborted) {
    const outcome = await pollOnce(targets, {
      tls,
      tlsFiles: { certFile: options.certFile, keyFile: options.keyFile, caFile: options.caFile },
      waitMs: watch.waitMs,
      timeoutMs: options.timeoutMs,
      now: fetchDeps.now,
      signal: stop,
    });
    if (outcome.kind === 'stopped') return false;
    if (outcome.kind === 'changed') {
      log.info(`config-service reports a change (${outcome.what}); fetching`, { app: options.app });
      return true;
    }
    if (outcome.kind === 'unchanged') {
      failures = 0;
      state.current();
      continue;
    }
    failures += 1;
    const delayMs = watchBackoff(failures, fetchDeps.random, outcome.retryAfterMs);
    state.stale(`cannot ask config-service for changes (${outcome.what}): ${outcome.cause}; keeping the published set`);
    log.warn(`long-poll failed (${outcome.what}): ${outcome.cause}; keeping the published set, retrying in ${delayMs} ms`, { app: options.app, attempt: failures, final: outcome.final, delayMs });
    await sleepUnless(delayMs, stop);
  }
  return false;
}

/**
 * The sidecar loop; returns when `ctx.stop` aborts (exit 0) or a fatal local problem ends it.
 * @returns the exit code and a message
 */
export async function watchLoop(options: Options, watch: WatchOptions, ctx: WatchContext): Promise<{ exitCode: number; message: string }> {
  const { log, fetchDeps, stop } = ctx;
  const state = new WatchState(fetchDeps.now);
  let health: HealthServer | undefined;
  if (watch.healthPort !== undefined) {
    try {
      health = await startHealthServer(state, watch.healthPort);
      log.info(`health on port ${health.port}: /health/live, /health/ready`, { app: options.app });
    } catch (err) {
      const message = `cannot serve --health-port ${watch.healthPort}: ${(err as { code?: string }).code ?? String(err)}`;
      log.error(message, { app: options.app });
      return { exitCode: 64, message };
    }
  }
  try {
    let current: Readonly<Record<string, string>> | undefined;
    const resumed = await loadFallback(options.outputDir, expectationOf(options, Number.MAX_SAFE_INTEGER, fetchDeps.now()));
    if (typeof resumed !== 'string') {
      current = resumed.meta.files;
      state.published(resumed.meta.commit);
      state.stale('resumed from the set on the volume; not yet checked with config-service');
      log.info(`resuming from the set on the volume at commit ${resumed.meta.commit} (${resumed.meta.time})`, { app: options.app, commit: resumed.meta.commit });
    }
    let failures = 0;
    while (!stop.aborted) {
      let fetched: FetchResult;
      let tls: TlsMaterial;
      let set: FileSet;
      try {
        ({ fetched, tls } = await fetchAll(options, fetchDeps, false));
        set = buildFileSet(options, fetched, fetchDeps.now());
      } catch (thrown) {
        const err = toConfigInitError(thrown);
        failures += 1;
        const delayMs = watchBackoff(failures, fetchDeps.random);
        const keeping = current === undefined ? 'nothing published yet' : 'keeping the published set';
        state.stale(`${err.code}: ${err.message}; ${keeping}`);
        log.warn(`fetch failed: ${err.message}; ${keeping}, retrying in ${delayMs} ms`, { app: options.app, code: err.code, attempt: failures, delayMs });
        await sleepUnless(delayMs, stop);
        continue;
      }
      if (sameContent(current, set.meta.files)) {
        log.info(`the published set is current (commit ${fetched.commit} has the same content); nothing to publish`, { app: options.app, commit: fetched.commit });
      } else {
        try {
          const published = await publishFiles({ dir: options.outputDir, files: set.files, directories: set.directories, mode: options.fileMode, now: fetchDeps.now });
          for (const w of published.warnings) log.warn(w, { app: options.app, path: options.outputDir });
          const first = current === undefined;
          current = set.meta.files;
          state.published(fetched.commit);
          log.info(`published ${set.files.length} file(s) at commit ${fetched.commit} into ${options.outputDir}`, { app: options.app, commit: fetched.commit, files: published.files, version: published.version });
          if (!first) {
            const report = await notifyChange({ signal: watch.signal, pidFile: watch.pidFile, processName: watch.processName, exec: watch.exec, http: watch.http, timeoutMs: watch.notifyTimeoutMs }, fetched.commit);
            for (const d of report.done) log.info(`notified: ${d}`, { app: options.app, commit: fetched.commit });
            for (const f of report.failed) log.warn(`notification failed: ${f}`, { app: options.app, commit: fetched.commit });
          }
        } catch (thrown) {
          const err = toConfigInitError(thrown);
          failures += 1;
          const delayMs = watchBackoff(failures, fetchDeps.random);
          state.stale(`cannot publish: ${err.message}; keeping the published set`);
          log.error(`cannot publish: ${err.message}; retrying in ${delayMs} ms`, { app: options.app, code: err.code, delayMs });
          await sleepUnless(delayMs, stop);
          continue;
        }
      }
      failures = 0;
      state.current();
      if (!(await waitForChange(options, watch, pollTargets(options, fetched, false), tls, ctx, state))) break;
    }
    return { exitCode: 0, message: 'watch stopped' };
  } finally {
    await health?.close();
  }
}
