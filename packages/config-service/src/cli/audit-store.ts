/**
 * How the `audit` commands (`audit verify`, `audit query`) open the audit store, and how
 * `audit query` pages through it. Three ways to name the store, exactly one per run:
 *
 * - `--sqlite <file>`: a SQLite audit file (it must exist: a typo must not create an empty
 *   log that "verifies");
 * - `--postgres`: PostgreSQL, the connection string read from the environment variable
 *   `CONFIG_SERVICE_AUDIT_DATABASE_URL` (or the one `--database-url-env` names), so no
 *   password is ever on the command line; `--database-url <url>` gives it directly, for a
 *   URL without a password; `--table` names the events table;
 * - `--config <service.yml>` (or nothing: `CONFIG_SERVICE_*` variables): the store the
 *   service settings name, as `serve` opens it.
 */
import { existsSync, statSync } from 'node:fs';
import { Option, type Command } from 'commander';
import type { AuditEvent, AuditPage, AuditQuery, AuditStore, AuditStoreSettings } from '../audit/index.js';
import { CFG_ERR_SETTINGS_INVALID, CFG_ERR_USAGE } from '../errors.js';
import type { Settings } from '../settings/schema.js';

/** Default environment variable of `--postgres` (the service's own default). */
export const DEFAULT_DATABASE_URL_ENV = 'CONFIG_SERVICE_AUDIT_DATABASE_URL';

/** The store options of an `audit` command, as commander gives them. */
export interface AuditStoreOptions {
  readonly config?: string;
  readonly sqlite?: string;
  readonly postgres?: boolean;
  readonly databaseUrl?: string;
  readonly databaseUrlEnv?: string;
  readonly table?: string;
}

/** Adds `--config`, `--sqlite`, `--postgres`, `--database-url`, `--database-url-env`, `--table`. */
export function addAuditStoreOptions(command: Command): Command {
  return command
    .option('-c, --config <file>', 'service settings file: open the audit store it names (CONFIG_SERVICE_* variables too)')
    .option('--sqlite <file>', 'open this SQLite audit file instead (it must exist)')
    .option('--postgres', `open the PostgreSQL store whose connection string is in ${DEFAULT_DATABASE_URL_ENV} (or the variable --database-url-env names)`)
    .option('--database-url-env <name>', 'with --postgres: the environment variable holding the connection string')
    .option('--database-url <url>', 'PostgreSQL connection string given directly (visible in the process list: prefer --postgres and a variable when it holds a password)')
    .addOption(new Option('--table <name>', 'with --postgres or --database-url: the events table').default('audit_events'));
}

/**
 * The store an `audit` command opens.
 *
 * @param loadSettings loads the service settings (only called for `--config` or no store option).
 * @param env where `--postgres` reads the connection string.
 * @throws CFG_ERR_USAGE (exit 64) for two store options at once, a missing `--sqlite` file or
 *   an unset variable; CFG_ERR_SETTINGS_INVALID from the settings.
 */
export async function auditStoreFromOptions(
  opts: AuditStoreOptions,
  loadSettings: () => Readonly<Settings>,
  env: Readonly<Record<string, string | undefined>>,
): Promise<AuditStoreSettings> {
  const chosen = [opts.config !== undefined && '--config', opts.sqlite !== undefined && '--sqlite', (opts.postgres === true || opts.databaseUrlEnv !== undefined) && '--postgres', opts.databaseUrl !== undefined && '--database-url'].filter(
    (x): x is string => typeof x === 'string',
  );
  if (chosen.length > 1) throw new CFG_ERR_USAGE(`${chosen.join(' and ')} both name an audit store; give one`);
  if (opts.sqlite !== undefined) {
    if (!existsSync(opts.sqlite) || !statSync(opts.sqlite).isFile()) throw new CFG_ERR_USAGE(`--sqlite: no audit file at ${opts.sqlite}`);
    return { kind: 'sqlite', path: opts.sqlite };
  }
  const table = opts.table ?? 'audit_events';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(table)) throw new CFG_ERR_USAGE(`--table: '${table}' is not a table name (^[a-z_][a-z0-9_]{0,62}$)`);
  if (opts.databaseUrl !== undefined) return { kind: 'postgres', connectionString: opts.databaseUrl, table, poolSize: 2 };
  if (opts.postgres === true || opts.databaseUrlEnv !== undefined) {
    const name = opts.databaseUrlEnv ?? DEFAULT_DATABASE_URL_ENV;
    const connectionString = env[name];
    if (!connectionString) throw new CFG_ERR_USAGE(`--postgres: the environment variable ${name} must hold the PostgreSQL connection string`);
    return { kind: 'postgres', connectionString, table, poolSize: 2 };
  }
  const { auditStoreSettings } = await import('../audit/index.js');
  try {
    return auditStoreSettings(loadSettings(), env);
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code !== 'CFG_ERR_SETTINGS_INVALID' || opts.config !== undefined) throw err;
    // No store option and no usable settings: say what the choices are.
    throw new CFG_ERR_SETTINGS_INVALID(`${e.message}\n  (or name the audit store directly: --sqlite <file>, or --postgres with ${DEFAULT_DATABASE_URL_ENV} set)`);
  }
}

/** Where {@link writeAuditQuery} writes. */
export interface QueryOutput {
  /** Writes one chunk; resolves when it may write the next (back-pressure). */
  write(text: string): Promise<void>;
  /** One line for the person running the command (stderr). */
  note(text: string): void;
}

/**
 * Runs `audit query`: pages through the store and writes every event as one NDJSON line,
 * newest first, page by page (never more than one page in memory).
 *
 * @param filters the store query without `cursor`/`limit`.
 * @param options.cursor continue after an earlier run (its `nextCursor`).
 * @param options.limit most events in total; `undefined` = every matching event.
 * @returns how many events were written and the cursor of the rest (absent: nothing left).
 */
export async function writeAuditQuery(
  store: Pick<AuditStore, 'query'>,
  filters: Omit<AuditQuery, 'cursor' | 'limit'>,
  options: { readonly cursor?: string; readonly limit?: number },
  out: QueryOutput,
  format: (events: AuditEvent[]) => string,
): Promise<{ written: number; nextCursor?: string }> {
  let cursor = options.cursor;
  let written = 0;
  for (;;) {
    const want = options.limit === undefined ? 1000 : Math.min(1000, options.limit - written);
    const page: AuditPage = await store.query({ ...filters, ...(cursor !== undefined && { cursor }), limit: want });
    if (page.events.length > 0) await out.write(format(page.events));
    written += page.events.length;
    cursor = page.nextCursor;
    if (cursor === undefined) return { written };
    if (options.limit !== undefined && written >= options.limit) return { written, nextCursor: cursor };
  }
}
