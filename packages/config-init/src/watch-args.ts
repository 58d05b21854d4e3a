/**
 * The options of `config-init watch` and `config-init exec --watch` (SPEC §7): the
 * long-poll, how the application is told of a change, and the health port. The flags are
 * rows of `OPTION_TABLE` (args.ts); this module validates them.
 */
import { constants } from 'node:os';
import { UsageError } from './errors.js';

/** A parsed flag value (as `node:util` `parseArgs` gives it). */
export type RawValue = string | boolean | string[] | undefined;

/** What args.ts lends this module (its options table stays the one source of flags). */
export interface WatchArgHelpers {
  /** Flag value, else environment value, else default. */
  pick(values: Record<string, RawValue>, env: Readonly<Record<string, string | undefined>>, flag: string): string | undefined;
  /** `--flag (env VAR)`. */
  label(flag: string): string;
  /** A positive duration in ms, at most `maxMs`. */
  parseDuration(raw: string, flag: string, maxMs?: number): number;
}

/** What `watch` and `exec --watch` do besides fetching. Frozen. */
export interface WatchOptions {
  /** How long one long-poll request waits (ms); the service cuts it to its `longPoll.maxWaitMs`. */
  readonly waitMs: number;
  /** Signal sent on a change (`SIGHUP`...): to `pidFile`/`processName` (watch), or to the command (exec). */
  readonly signal: NodeJS.Signals | undefined;
  /** watch: file holding the pid to signal. */
  readonly pidFile: string | undefined;
  /** watch: name of the process to signal (`/proc/<pid>/comm`, or the program name of its command line). */
  readonly processName: string | undefined;
  /** watch: command run on a change (program and arguments; no shell). */
  readonly exec: readonly string[] | undefined;
  /** watch: local `http:` URL POSTed to on a change. */
  readonly http: URL | undefined;
  /** Longest a notification command or POST may take (ms). */
  readonly notifyTimeoutMs: number;
  /** exec --watch: restart the command on a change (`true`), or send it `signal`. */
  readonly restart: boolean;
  /** exec --watch: time between SIGTERM and SIGKILL when restarting (ms). */
  readonly gracePeriodMs: number;
  /** Port of `/health/live` and `/health/ready`, or `undefined` for none. */
  readonly healthPort: number | undefined;
}

/** Longest `--wait`: one hour (the service cuts it to `longPoll.maxWaitMs`, 5 min by default). */
const MAX_WAIT_MS = 3600_000;

/** Signals that cannot be caught: never a notification. */
const UNCATCHABLE = new Set(['SIGKILL', 'SIGSTOP']);

/** `HUP` or `SIGHUP` → `SIGHUP`; refuses unknown names and SIGKILL/SIGSTOP. */
function parseSignal(raw: string, label: WatchArgHelpers['label']): NodeJS.Signals {
  const name = (raw.trim().toUpperCase().startsWith('SIG') ? raw.trim().toUpperCase() : `SIG${raw.trim().toUpperCase()}`) as NodeJS.Signals;
  if (!(name in constants.signals) || UNCATCHABLE.has(name)) throw new UsageError(`${label('on-change-signal')}: '${raw}' is not a signal a process can handle (HUP, USR1, USR2, TERM, ...)`);
  return name;
}

/** A local `http:` URL: loopback host only (the application's own container or pod). */
function parseLocalUrl(raw: string, label: WatchArgHelpers['label']): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`${label('on-change-http')}: not a URL`);
  }
  if (url.protocol !== 'http:') throw new UsageError(`${label('on-change-http')}: must be an http:// URL of the pod itself (localhost)`);
  if (!['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)) throw new UsageError(`${label('on-change-http')}: the host must be localhost, 127.0.0.1 or [::1] (the application in this pod)`);
  if (url.username || url.password) throw new UsageError(`${label('on-change-http')}: must not contain credentials`);
  return url;
}

/** Names of the watch-only flags, for the "not with this command" checks. */
const NOTIFY_FLAGS = ['pid-file', 'process-name', 'on-change-exec', 'on-change-http'] as const;

/**
 * Validates the watch flags for `command`.
 *
 * @param command - `watch`, `exec` or `fetch`
 * @param watching - `watch`, or `exec --watch`
 * @param helpers - flag lookup and messages of args.ts
 * @returns the options, or `undefined` when not watching
 * @throws {@link UsageError} for a flag the command does not take, or a bad value
 */
export function parseWatchOptions(
  values: Record<string, RawValue>,
  env: Readonly<Record<string, string | undefined>>,
  command: 'watch' | 'exec' | 'fetch',
  watching: boolean,
  helpers: WatchArgHelpers,
): WatchOptions | undefined {
  const { pick, label, parseDuration } = helpers;
  const given = (flag: string): boolean => {
    const v = pick(values, env, flag);
    return v !== undefined && v !== '' && (typeof values[flag] === 'string' || values[flag] === true || (env[`CONFIG_INIT_${flag.toUpperCase().replace(/-/g, '_')}`] ?? '') !== '');
  };
  if (!watching) {
    for (const flag of [...NOTIFY_FLAGS, 'on-change-signal', 'on-change-timeout', 'grace-period', 'health-port', 'wait']) {
      if (given(flag)) throw new UsageError(`${label(flag)} needs ${command === 'exec' ? `${label('watch')}` : "the 'watch' command (or exec --watch)"}`);
    }
    return undefined;
  }
  if (command === 'exec') {
    for (const flag of NOTIFY_FLAGS) if (given(flag)) throw new UsageError(`${label(flag)}: not available with 'exec --watch' (it restarts or signals its own command)`);
  } else if (given('grace-period')) {
    throw new UsageError(`${label('grace-period')}: only with 'exec --watch'`);
  }
  const signalRaw = pick(values, env, 'on-change-signal');
  const signal = signalRaw === undefined || signalRaw === '' ? undefined : parseSignal(signalRaw, label);
  const pidFile = pick(values, env, 'pid-file') || undefined;
  const processName = pick(values, env, 'process-name') || undefined;
  if (command === 'watch') {
    if (signal !== undefined && pidFile === undefined && processName === undefined) throw new UsageError(`${label('on-change-signal')} needs ${label('pid-file')} or ${label('process-name')}`);
    if (pidFile !== undefined && processName !== undefined) throw new UsageError(`${label('pid-file')} and ${label('process-name')}: give one`);
    if ((pidFile !== undefined || processName !== undefined) && signal === undefined) throw new UsageError(`${label(pidFile !== undefined ? 'pid-file' : 'process-name')} needs ${label('on-change-signal')}`);
  }
  const execRaw = pick(values, env, 'on-change-exec');
  const exec = execRaw === undefined || execRaw.trim() === '' ? undefined : Object.freeze(execRaw.trim().split(/\s+/));
  const httpRaw = pick(values, env, 'on-change-http');
  const http = httpRaw === undefined || httpRaw === '' ? undefined : parseLocalUrl(httpRaw, label);
  const portRaw = pick(values, env, 'health-port');
  let healthPort: number | undefined;
  if (portRaw !== undefined && portRaw !== '') {
    if (!/^\d{1,5}$/.test(portRaw.trim()) || Number(portRaw) < 1 || Number(portRaw) > 65535) throw new UsageError(`${label('health-port')}: expected a port number 1-65535`);
    healthPort = Number(portRaw);
  }
  return Object.freeze({
    waitMs: parseDuration(pick(values, env, 'wait') ?? '4m', 'wait', MAX_WAIT_MS),
    signal,
    pidFile,
    processName,
    exec,
    http,
    notifyTimeoutMs: parseDuration(pick(values, env, 'on-change-timeout') ?? '30s', 'on-change-timeout'),
    restart: command === 'exec' && signal === undefined,
    gracePeriodMs: parseDuration(pick(values, env, 'grace-period') ?? '30s', 'grace-period'),
    healthPort,
  });
}
