/**
 * Command line and environment → validated {@link Options}.
 *
 * One table ({@link OPTION_TABLE}) drives `node:util` `parseArgs`, the `CONFIG_INIT_*`
 * environment fallbacks, the validation messages and `--help`, so the four never drift.
 * Precedence: flag, then environment variable, then default.
 */
import { resolve } from 'node:path';
import { parseArgs as parseNodeArgs } from 'node:util';
import { UsageError } from './errors.js';
import { parseWatchOptions, type WatchOptions } from './watch-args.js';

export type { WatchOptions } from './watch-args.js';

/** Output formats config-service renders (SPEC §8). */
export const FORMATS = ['json', 'yaml', 'properties', 'env', 'dotenv'] as const;

/** One output format. */
export type Format = (typeof FORMATS)[number];

/** Log output style. */
export type LogFormat = 'text' | 'json';

/** Environment-name style asked of the service (SPEC §8): `standard`, or Spring Boot's relaxed binding. */
export type EnvNaming = 'standard' | 'spring';

/** Every environment name config-init accepts from the service or in `--allow-env` (SPEC §8). */
export const ENV_NAME_RE = /^[A-Z_][A-Z0-9_]*$/;

/** Largest `--fallback-max-age`: one year. */
const MAX_FALLBACK_AGE_MS = 365 * 24 * 3600_000;

/** Validated settings of one `fetch` or `exec` run. Frozen by {@link parseCommandLine}. */
export interface Options {
  /** Base URL of config-service's TLS API (`https:` only; a path prefix is kept). */
  readonly server: URL;
  /** Application name (SPEC §5 name rule). */
  readonly app: string;
  /** Profiles in the caller's order (later wins); may be empty. */
  readonly profiles: readonly string[];
  /** Branch, tag or commit to read; `undefined` means the repository's default branch. */
  readonly ref: string | undefined;
  /** Path of the PEM client certificate (chain). */
  readonly certFile: string;
  /** Path of the PEM private key of the client certificate. */
  readonly keyFile: string;
  /** Path of the PEM CA bundle that signs the server; `undefined` uses Node's built-in roots. */
  readonly caFile: string | undefined;
  /** Directory to publish into. */
  readonly outputDir: string;
  /** Create `outputDir` even when it would be a new folder directly under `/` (see `checkOutputDir`). */
  readonly createOutputDir: boolean;
  /** Formats to fetch, in order, without duplicates; the first one pins the commit. */
  readonly formats: readonly Format[];
  /** Permission bits of every published file (e.g. `0o640`). */
  readonly fileMode: number;
  /** Timeout of one HTTP attempt in ms (connect, TLS, response). */
  readonly timeoutMs: number;
  /** Overall deadline of all attempts in ms. */
  readonly deadlineMs: number;
  /** Publish an empty configuration instead of failing with 65. */
  readonly allowEmpty: boolean;
  /** Log style on stderr. */
  readonly logFormat: LogFormat;
  /** Where the failure cause is written when that file exists; `''` disables it. */
  readonly terminationLog: string;
  /** Fetch and check, print what would be written (names, sizes, hashes), write nothing. */
  readonly dryRun: boolean;
  /** Environment-name style asked of the service for `env`, `dotenv` and `exec`. */
  readonly envNaming: EnvNaming;
  /** `exec`: configuration variables allowed although they are on the refused list (exact names). */
  readonly allowEnv: readonly string[];
  /** Also deliver the application's raw files under `files/` (SPEC §2, §7). */
  readonly files: boolean;
  /** `fetch`: where a copy of the last published set is kept; `undefined` = no fallback. */
  readonly fallbackDir: string | undefined;
  /** `fetch`: the fallback set is published only when it is younger than this (ms). */
  readonly fallbackMaxAgeMs: number;
  /** Also deliver the application's rendered templates under `templates/` (SPEC §5.1). */
  readonly templates: boolean;
}

/** What the command line asks for. */
export type Command =
  | { readonly kind: 'help' }
  | { readonly kind: 'version' }
  | { readonly kind: 'fetch'; readonly options: Options }
  | { readonly kind: 'watch'; readonly options: Options; readonly watch: WatchOptions }
  | {
      readonly kind: 'exec';
      readonly options: Options;
      /** The command and its arguments (everything after `--`); never empty. */
      readonly command: readonly string[];
      /** `exec --watch`: what to do on a change; `undefined` without `--watch`. */
      readonly watch?: WatchOptions | undefined;
    };

/** One row of the options table. */
export interface OptionSpec {
  /** Long flag name without `--`. */
  readonly flag: string;
  /** Optional one-letter alias. */
  readonly short?: string;
  /** `string` takes a value; `boolean` is a switch. */
  readonly type: 'string' | 'boolean';
  /** Whether the flag may be repeated (values are joined as a comma list). */
  readonly multiple?: boolean;
  /** Environment variable read when the flag is absent. */
  readonly env?: string;
  /** Default shown in `--help` and used when neither flag nor env is set. */
  readonly default?: string;
  /** Placeholder of the value in `--help`. */
  readonly value?: string;
  /** Whether a value must come from the flag or the environment. */
  readonly required?: boolean;
  /** One-line description for `--help`. */
  readonly help: string;
}

/** The options table: every flag, its environment variable and its default. */
export const OPTION_TABLE: readonly OptionSpec[] = [
  { flag: 'server', type: 'string', env: 'CONFIG_INIT_SERVER', value: 'url', required: true, help: 'config-service API base URL (https only)' },
  { flag: 'app', type: 'string', env: 'CONFIG_INIT_APP', value: 'name', required: true, help: 'application name' },
  { flag: 'profile', type: 'string', multiple: true, env: 'CONFIG_INIT_PROFILES', value: 'p1,p2', help: 'profiles, comma separated or repeated; later wins' },
  { flag: 'ref', type: 'string', env: 'CONFIG_INIT_REF', value: 'ref', help: "branch, tag or commit (default: the repository's branch)" },
  { flag: 'cert', type: 'string', env: 'CONFIG_INIT_CERT', value: 'path', required: true, help: 'client certificate (PEM)' },
  { flag: 'key', type: 'string', env: 'CONFIG_INIT_KEY', value: 'path', required: true, help: 'client private key (PEM)' },
  { flag: 'ca', type: 'string', env: 'CONFIG_INIT_CA', value: 'path', help: "CA bundle for the server certificate (PEM; default: Node's roots)" },
  {
    flag: 'output-dir',
    type: 'string',
    env: 'CONFIG_INIT_OUTPUT_DIR',
    value: 'dir',
    default: '/config',
    help: "directory to publish into: the shared volume's mount path; a missing directory directly under / is not created (see --create-output-dir)",
  },
  { flag: 'create-output-dir', type: 'boolean', env: 'CONFIG_INIT_CREATE_OUTPUT_DIR', default: 'false', help: 'create --output-dir even directly under / (by default only a missing folder below an existing one, such as /tmp/x, is created)' },
  { flag: 'format', type: 'string', multiple: true, env: 'CONFIG_INIT_FORMATS', value: 'list', default: 'properties', help: `output formats, comma separated: ${FORMATS.join('|')}` },
  { flag: 'file-mode', type: 'string', env: 'CONFIG_INIT_FILE_MODE', value: 'octal', default: '0640', help: 'permission bits of published files' },
  { flag: 'timeout', type: 'string', env: 'CONFIG_INIT_TIMEOUT', value: 'ms', default: '5000', help: 'timeout of one attempt (ms, or with s/m/h suffix)' },
  { flag: 'deadline', type: 'string', env: 'CONFIG_INIT_DEADLINE', value: 'ms', default: '60000', help: 'overall deadline including retries (ms, or with s/m/h suffix)' },
  { flag: 'allow-empty', type: 'boolean', env: 'CONFIG_INIT_ALLOW_EMPTY', default: 'false', help: 'publish an empty configuration instead of failing' },
  { flag: 'log-format', type: 'string', env: 'CONFIG_INIT_LOG_FORMAT', value: 'text|json', default: 'text', help: 'log style on stderr' },
  { flag: 'termination-log', type: 'string', env: 'CONFIG_INIT_TERMINATION_LOG', value: 'path', default: '/dev/termination-log', help: "failure cause is written here if the file exists ('' = off)" },
  { flag: 'dry-run', type: 'boolean', env: 'CONFIG_INIT_DRY_RUN', default: 'false', help: 'fetch and check, print names, sizes and hashes; write or start nothing' },
  { flag: 'env-naming', type: 'string', env: 'CONFIG_INIT_ENV_NAMING', value: 'standard|spring', default: 'standard', help: 'environment names for env, dotenv and exec (spring = relaxed binding)' },
  { flag: 'allow-env', type: 'string', multiple: true, env: 'CONFIG_INIT_ALLOW_ENV', value: 'NAME,NAME', help: 'exec: allow these refused (code-loading) variables by name' },
  { flag: 'files', type: 'boolean', env: 'CONFIG_INIT_FILES', default: 'false', help: "also deliver the app's raw files under files/" },
  { flag: 'fallback-dir', type: 'string', env: 'CONFIG_INIT_FALLBACK_DIR', value: 'dir', help: 'fetch: keep the last good set here; publish it when the service stays unreachable' },
  { flag: 'fallback-max-age', type: 'string', env: 'CONFIG_INIT_FALLBACK_MAX_AGE', value: 'ms', default: '24h', help: 'fetch: oldest fallback set that may be published (ms, or s/m/h/d)' },
  { flag: 'templates', type: 'boolean', env: 'CONFIG_INIT_TEMPLATES', default: 'false', help: "also deliver the app's rendered templates under templates/" },
  { flag: 'watch', type: 'boolean', env: 'CONFIG_INIT_WATCH', default: 'false', help: 'exec: keep watching; on a change restart the command (or signal it)' },
  { flag: 'wait', type: 'string', env: 'CONFIG_INIT_WAIT', value: 'duration', default: '4m', help: 'watch: how long one long-poll request waits (the service cuts it to its maximum)' },
  { flag: 'on-change-signal', type: 'string', env: 'CONFIG_INIT_ON_CHANGE_SIGNAL', value: 'SIG', help: 'watch: signal (HUP, USR1, ...) sent to --pid-file or --process-name on a change; exec --watch: sent to the command instead of a restart' },
  { flag: 'pid-file', type: 'string', env: 'CONFIG_INIT_PID_FILE', value: 'path', help: 'watch: file holding the pid to signal' },
  { flag: 'process-name', type: 'string', env: 'CONFIG_INIT_PROCESS_NAME', value: 'name', help: 'watch: signal the process of this name (needs a shared process namespace)' },
  { flag: 'on-change-exec', type: 'string', env: 'CONFIG_INIT_ON_CHANGE_EXEC', value: 'command', help: 'watch: run this command on a change (split on spaces, no shell)' },
  { flag: 'on-change-http', type: 'string', env: 'CONFIG_INIT_ON_CHANGE_HTTP', value: 'url', help: 'watch: POST to this local http:// URL on a change (e.g. /actuator/refresh)' },
  { flag: 'on-change-timeout', type: 'string', env: 'CONFIG_INIT_ON_CHANGE_TIMEOUT', value: 'duration', default: '30s', help: 'watch: time a notification command or POST may take' },
  { flag: 'grace-period', type: 'string', env: 'CONFIG_INIT_GRACE_PERIOD', value: 'duration', default: '30s', help: 'exec --watch: time between SIGTERM and SIGKILL when the command is restarted' },
  { flag: 'health-port', type: 'string', env: 'CONFIG_INIT_HEALTH_PORT', value: 'port', help: 'watch, exec --watch: serve /health/live and /health/ready on this port' },
  { flag: 'help', short: 'h', type: 'boolean', help: 'print this help' },
  { flag: 'version', short: 'v', type: 'boolean', help: 'print the version' },
];

/** SPEC §5 application and profile name rule (plus: no `..`). */
const NAME_RE = /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/;

function spec(flag: string): OptionSpec {
  const row = OPTION_TABLE.find((o) => o.flag === flag);
  /* c8 ignore next */
  if (!row) throw new Error(`no option ${flag}`);
  return row;
}

/** `--flag (env VAR)`: how messages name a setting. */
export function label(flag: string): string {
  const row = spec(flag);
  return row.env ? `--${flag} (env ${row.env})` : `--${flag}`;
}

/** The help text: usage, then every flag with its environment variable and default. */
export function helpText(): string {
  const rows = OPTION_TABLE.map((o) => {
    const left = `${o.short ? `-${o.short}, ` : '    '}--${o.flag}${o.value ? ` <${o.value}>` : ''}`;
    const extra = [
      o.env ? `env ${o.env}` : '',
      o.required ? 'required' : o.default !== undefined ? `default ${o.default === '' ? "''" : o.default}` : '',
    ].filter(Boolean).join(', ');
    return `  ${left.padEnd(34)} ${o.help}${extra ? ` [${extra}]` : ''}`;
  });
  return [
    'Usage: config-init [fetch] [options]',
    '       config-init watch [options]',
    '       config-init exec [--watch] [options] -- <command> [args...]',
    '',
    "fetch: fetches one application's configuration from config-service over mutual TLS",
    'and publishes it atomically (kubelet style: versioned folder + ..data symlink swap).',
    'exec: starts <command> (no shell) with the configuration as environment variables,',
    'merged over the current environment (the configuration wins); forwards signals and',
    "exits with the command's code (128+n when it died from signal n; 127 not found).",
    'watch: publishes like fetch, then long-polls and republishes on every change, and',
    'tells the application (signal, command or local HTTP POST); for a sidecar.',
    'exec --watch: on a change restarts the command with the new environment (or signals it).',
    'Every option may also come from its CONFIG_INIT_* environment variable; a flag wins.',
    '',
    'Options:',
    ...rows,
    '',
    'Exit codes: 0 ok, 64 usage, 65 bad response or empty/unrenderable config, 66 app or ref',
    'not found, 69 unavailable after retries, 73 cannot write output, 77 not authorized;',
    'exec: 126 command not executable, 127 command not found, else the command\'s own code.',
    '',
  ].join('\n');
}

type RawValue = string | boolean | string[] | undefined;

/** Flag value, else env value (empty env = unset), else default. */
function pick(values: Record<string, RawValue>, env: Readonly<Record<string, string | undefined>>, flag: string): string | undefined {
  const row = spec(flag);
  const v = values[flag];
  if (Array.isArray(v)) return v.join(',');
  if (typeof v === 'string') return v;
  if (row.env !== undefined) {
    const e = env[row.env];
    if (e !== undefined && e !== '') return e;
  }
  return row.default;
}

function pickBoolean(values: Record<string, RawValue>, env: Readonly<Record<string, string | undefined>>, flag: string): boolean {
  if (values[flag] === true) return true;
  const row = spec(flag);
  const e = row.env !== undefined ? env[row.env] : undefined;
  if (e === undefined || e === '') return row.default === 'true';
  const lower = e.toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(lower)) return true;
  if (['0', 'false', 'no', 'off'].includes(lower)) return false;
  throw new UsageError(`${label(flag)}: expected true or false`);
}

function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new UsageError(`${label(flag)} is required`);
  return value;
}

/** Validates an application or profile name against the SPEC §5 rule. */
export function isValidName(name: string): boolean {
  return NAME_RE.test(name) && !name.includes('..');
}

/**
 * The first git-check-ref-format rule `ref` breaks, or `null` (same rules as the
 * service, so a bad ref fails here with 64 before any request).
 */
export function refViolation(ref: string): string | null {
  if (Buffer.byteLength(ref, 'utf8') > 255) return 'is longer than 255 bytes';
  if (/^[0-9a-fA-F]{4,40}$/.test(ref)) return null;
  if (ref === '@') return "is '@' alone";
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f~^:?*[\\]/.test(ref)) return 'contains a space, control character or one of ~ ^ : ? * [ \\';
  if (ref.includes('..')) return "contains '..'";
  if (ref.includes('@{')) return "contains '@{'";
  if (ref.startsWith('/') || ref.endsWith('/') || ref.includes('//')) return "has an empty component ('/' at an end or '//')";
  if (ref.endsWith('.')) return "ends with '.'";
  for (const c of ref.split('/')) {
    if (c.startsWith('.')) return "has a component beginning with '.'";
    if (c.endsWith('.lock')) return "has a component ending with '.lock'";
  }
  return null;
}

function parseServer(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`${label('server')}: not a URL`);
  }
  if (url.protocol !== 'https:') throw new UsageError(`${label('server')}: must be an https:// URL (mutual TLS)`);
  if (url.username || url.password) throw new UsageError(`${label('server')}: must not contain credentials`);
  if (url.search || url.hash) throw new UsageError(`${label('server')}: must not contain a query or fragment`);
  return url;
}

function parseList(raw: string | undefined): string[] {
  if (raw === undefined) return [];
  return raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 };

function parseDuration(raw: string, flag: string, maxMs = 24 * 3600_000): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(raw.trim());
  if (!m) throw new UsageError(`${label(flag)}: expected a positive number of milliseconds (or with s/m/h/d suffix)`);
  const n = Number(m[1]) * (DURATION_UNITS[m[2] ?? 'ms'] ?? 1);
  if (!Number.isSafeInteger(n) || n <= 0 || n > maxMs) {
    throw new UsageError(`${label(flag)}: must be between 1 ms and ${maxMs / 3600_000} h`);
  }
  return n;
}

function parseMode(raw: string): number {
  const m = /^(?:0o?)?([0-7]{3})$/.exec(raw.trim());
  if (!m?.[1]) throw new UsageError(`${label('file-mode')}: expected octal permission bits such as 0640`);
  const mode = parseInt(m[1], 8);
  if ((mode & 0o400) === 0) throw new UsageError(`${label('file-mode')}: the owner must be able to read the files`);
  return mode;
}

/**
 * Parses the command line and environment.
 *
 * @param argv - arguments after the program name (`process.argv.slice(2)`).
 * @param env - the environment to read `CONFIG_INIT_*` fallbacks from.
 * @returns what to do: help, version, a fetch, or an exec (with the command after `--`),
 *   with frozen, validated options.
 * @throws {@link UsageError} naming the flag and its environment variable.
 */
export function parseCommandLine(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Command {
  const tableOptions: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const o of OPTION_TABLE) {
    tableOptions[o.flag] = { type: o.type, ...(o.multiple ? { multiple: true } : {}), ...(o.short ? { short: o.short } : {}) };
  }
  let values: Record<string, RawValue>;
  let positionals: string[];
  let terminator: number | undefined;
  try {
    const parsed = parseNodeArgs({ args: [...argv], options: tableOptions, strict: true, allowPositionals: true, tokens: true });
    values = parsed.values as Record<string, RawValue>;
    positionals = parsed.positionals;
    terminator = parsed.tokens.find((t) => t.kind === 'option-terminator')?.index;
  } catch (err) {
    // parseArgs messages name the flag; keep the first sentence and add the env variable.
    const msg = (err instanceof Error ? err.message : String(err)).split(/\.\s|\n/)[0] ?? '';
    const flag = /'--?([a-z-]+)/.exec(msg)?.[1];
    const row = OPTION_TABLE.find((o) => o.flag === flag || o.short === flag);
    throw new UsageError(`${msg}${row?.env ? ` (env ${row.env})` : ''}; see --help`, { cause: err });
  }

  if (values.help === true) return { kind: 'help' };
  if (values.version === true) return { kind: 'version' };

  // Everything after `--` is the command of `exec`, taken verbatim (never parsed as flags).
  const afterTerminator = terminator === undefined ? [] : argv.slice(terminator + 1);
  const before = terminator === undefined ? positionals : positionals.slice(0, positionals.length - afterTerminator.length);
  const [commandName, ...rest] = before;
  if (commandName !== undefined && commandName !== 'fetch' && commandName !== 'exec' && commandName !== 'watch') throw new UsageError(`unknown command '${commandName}'; see --help`);
  if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0] ?? ''}'; see --help`);
  const isExec = commandName === 'exec';
  if (isExec && afterTerminator.length === 0) throw new UsageError("'exec' needs the command after '--': config-init exec [options] -- <command> [args...]");
  if (isExec && (afterTerminator[0] ?? '') === '') throw new UsageError("'exec': the command name after '--' is empty");
  if (!isExec && afterTerminator.length > 0) throw new UsageError(`unexpected argument '${afterTerminator[0] ?? ''}'; a command after '--' needs 'exec'; see --help`);

  // Every missing required setting at once, not one per run.
  const missing = OPTION_TABLE.filter((o) => o.required === true && (pick(values, env, o.flag) ?? '') === '').map((o) => label(o.flag));
  if (missing.length === 1) throw new UsageError(`${missing[0]} is required`);
  if (missing.length > 1) throw new UsageError(`${missing.slice(0, -1).join(', ')} and ${missing[missing.length - 1]} are required`);

  const server = parseServer(required(pick(values, env, 'server'), 'server'));

  const app = required(pick(values, env, 'app'), 'app');
  if (!isValidName(app)) throw new UsageError(`${label('app')}: '${app}' is not a valid application name (lower-case letters, digits, '.', '_', '-'; at most 63; no '..')`);

  const profiles = parseList(pick(values, env, 'profile'));
  for (const p of profiles) {
    if (!isValidName(p)) throw new UsageError(`${label('profile')}: '${p}' is not a valid profile name`);
  }

  const refRaw = pick(values, env, 'ref');
  const ref = refRaw === undefined || refRaw === '' ? undefined : refRaw;
  if (ref !== undefined) {
    const why = refViolation(ref);
    if (why) throw new UsageError(`${label('ref')}: the ref ${why}`);
  }

  const certFile = required(pick(values, env, 'cert'), 'cert');
  const keyFile = required(pick(values, env, 'key'), 'key');
  const caRaw = pick(values, env, 'ca');
  const caFile = caRaw === undefined || caRaw === '' ? undefined : caRaw;

  const outputDir = required(pick(values, env, 'output-dir'), 'output-dir');

  const formatList = parseList(pick(values, env, 'format'));
  if (formatList.length === 0) throw new UsageError(`${label('format')}: at least one format is required`);
  const formats: Format[] = [];
  for (const f of formatList) {
    if (!(FORMATS as readonly string[]).includes(f)) {
      throw new UsageError(`${label('format')}: unknown format '${f}' (expected ${FORMATS.join(', ')})`);
    }
    if (!formats.includes(f as Format)) formats.push(f as Format);
  }

  const fileMode = parseMode(required(pick(values, env, 'file-mode'), 'file-mode'));
  const timeoutMs = parseDuration(required(pick(values, env, 'timeout'), 'timeout'), 'timeout');
  const deadlineMs = parseDuration(required(pick(values, env, 'deadline'), 'deadline'), 'deadline');

  const logFormat = pick(values, env, 'log-format');
  if (logFormat !== 'text' && logFormat !== 'json') throw new UsageError(`${label('log-format')}: expected text or json`);

  // The termination log may be switched off with an explicit empty flag value.
  const tl = values['termination-log'];
  const terminationLog = typeof tl === 'string' ? tl : (pick(values, env, 'termination-log') ?? '');

  const envNamingRaw = pick(values, env, 'env-naming');
  if (envNamingRaw !== 'standard' && envNamingRaw !== 'spring') throw new UsageError(`${label('env-naming')}: expected standard or spring`);

  const allowEnv = parseList(pick(values, env, 'allow-env'));
  for (const name of allowEnv) {
    if (!ENV_NAME_RE.test(name)) throw new UsageError(`${label('allow-env')}: '${name}' is not an environment variable name (${ENV_NAME_RE.source})`);
  }

  const fallbackRaw = pick(values, env, 'fallback-dir');
  const fallbackDir = fallbackRaw === undefined || fallbackRaw === '' ? undefined : fallbackRaw;
  const maxAgeExplicit = typeof values['fallback-max-age'] === 'string' || (env.CONFIG_INIT_FALLBACK_MAX_AGE ?? '') !== '';
  const fallbackMaxAgeMs = parseDuration(required(pick(values, env, 'fallback-max-age'), 'fallback-max-age'), 'fallback-max-age', MAX_FALLBACK_AGE_MS);
  if (fallbackDir !== undefined) {
    // exec keeps no copy of the environment on disk: secrets it hands over stay in memory.
    if (isExec) throw new UsageError(`${label('fallback-dir')}: not available with 'exec' (it would keep the environment, secrets included, on disk)`);
    if (resolve(fallbackDir) === resolve(outputDir)) throw new UsageError(`${label('fallback-dir')}: must differ from ${label('output-dir')}`);
  } else if (maxAgeExplicit) {
    throw new UsageError(`${label('fallback-max-age')} needs ${label('fallback-dir')}`);
  }

  const isWatch = commandName === 'watch';
  const templates = pickBoolean(values, env, 'templates');
  const watching = isWatch || (isExec && pickBoolean(values, env, 'watch'));
  if (!isExec && values.watch === true) throw new UsageError(`${label('watch')} is an option of 'exec'; for a sidecar use the 'watch' command`);
  const watch = parseWatchOptions(values, env, isWatch ? 'watch' : isExec ? 'exec' : 'fetch', watching, { pick, label, parseDuration });
  if (watching && pickBoolean(values, env, 'dry-run')) throw new UsageError(`${label('dry-run')}: not available with ${isWatch ? "'watch'" : "'exec --watch'"}`);
  if (isWatch && fallbackDir !== undefined) throw new UsageError(`${label('fallback-dir')}: not available with 'watch' (it keeps the last good set in the output folder itself)`);

  const options: Options = {
    server,
    app,
    profiles: Object.freeze(profiles),
    ref,
    certFile,
    keyFile,
    caFile,
    outputDir,
    createOutputDir: pickBoolean(values, env, 'create-output-dir'),
    formats: Object.freeze(formats),
    fileMode,
    timeoutMs,
    deadlineMs,
    allowEmpty: pickBoolean(values, env, 'allow-empty'),
    logFormat,
    terminationLog,
    dryRun: pickBoolean(values, env, 'dry-run'),
    envNaming: envNamingRaw,
    allowEnv: Object.freeze(allowEnv),
    files: pickBoolean(values, env, 'files'),
    fallbackDir,
    fallbackMaxAgeMs,
    templates,
  };
  const frozen = Object.freeze(options);
  if (isWatch) return { kind: 'watch', options: frozen, watch: watch as WatchOptions };
  if (isExec) return { kind: 'exec', options: frozen, command: Object.freeze([...afterTerminator]), ...(watching && { watch }) };
  return { kind: 'fetch', options: frozen };
}
