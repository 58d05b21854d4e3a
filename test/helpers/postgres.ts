/**
 * The PostgreSQL database the end-to-end audit tests use: `CONFIG_SERVICE_TEST_DATABASE_URL`
 * when set, else one `scripts/pg-test-db.sh` prepares on a machine with a local Debian-style
 * cluster (run as root). Otherwise the tests fail with a message saying what to provide.
 * Rows are read with `psql`, independently of the service's own code.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/** The environment variable holding the test database's connection string. */
export const TEST_DATABASE_URL_ENV = 'CONFIG_SERVICE_TEST_DATABASE_URL';

const SCRIPT = fileURLToPath(new URL('../../scripts/pg-test-db.sh', import.meta.url));
const run = promisify(execFile);

/** The test database's connection string, preparing the database first when needed. */
export function testDatabaseUrl(): string {
  const fromEnv = process.env[TEST_DATABASE_URL_ENV];
  if (fromEnv) return fromEnv;
  if (spawnSync('sh', ['-c', 'command -v pg_ctlcluster'], { stdio: 'ignore' }).status !== 0 || !existsSync(SCRIPT)) {
    throw new Error(
      `The PostgreSQL end-to-end tests need a database: set ${TEST_DATABASE_URL_ENV}=postgres://user:password@host:port/db, ` +
        'or install PostgreSQL (Debian/Ubuntu, pg_ctlcluster) and run the tests as root so scripts/pg-test-db.sh can prepare one.',
    );
  }
  let out: string;
  try {
    out = execFileSync('bash', [SCRIPT], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
    throw new Error(`scripts/pg-test-db.sh could not prepare the PostgreSQL test database${stderr ? `: ${stderr}` : ''}`);
  }
  const url = out.trim().split('\n').pop() ?? '';
  if (!/^postgres(ql)?:\/\//.test(url)) throw new Error('scripts/pg-test-db.sh printed no connection string');
  process.env[TEST_DATABASE_URL_ENV] = url;
  return url;
}

/**
 * Runs one SQL statement with `psql` and returns its rows, each a list of column texts
 * (unaligned, tab-separated). The connection string goes through the environment, not argv.
 */
export async function psql(url: string, sql: string): Promise<string[][]> {
  const { stdout } = await run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-A', '-t', '-F', '\t', '-c', sql], {
    encoding: 'utf8',
    env: { ...process.env, ...libpqEnv(url) },
  });
  return stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
}

/** `postgres://user:password@host:port/db` as libpq's PG* environment variables. */
function libpqEnv(url: string): Record<string, string> {
  const u = new URL(url);
  return {
    PGHOST: u.hostname.replace(/^\[(.*)\]$/, '$1'),
    PGPORT: u.port || '5432',
    PGUSER: decodeURIComponent(u.username),
    PGPASSWORD: decodeURIComponent(u.password),
    PGDATABASE: decodeURIComponent(u.pathname.slice(1)),
  };
}
