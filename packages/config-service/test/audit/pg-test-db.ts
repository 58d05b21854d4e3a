/**
 * The PostgreSQL database the audit-store tests use.
 *
 * `CONFIG_SERVICE_TEST_DATABASE_URL` names it when set (CI sets it from
 * `scripts/pg-test-db.sh`). When it is unset and the machine has a Debian-style local
 * cluster (`pg_ctlcluster`), the same script is run here to start the cluster and create
 * the role and database, so the README's test command works on a fresh machine. Otherwise
 * the tests FAIL (never skip) with a message saying how to provide a database.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The environment variable holding the test database's connection string. */
export const TEST_DATABASE_URL_ENV = 'CONFIG_SERVICE_TEST_DATABASE_URL';

const SCRIPT = fileURLToPath(new URL('../../../../scripts/pg-test-db.sh', import.meta.url));

/**
 * The test database's connection string, preparing the database first when needed.
 * @throws Error explaining how to provide a database when none is configured and none can be prepared.
 */
export function testDatabaseUrl(): string {
  const fromEnv = process.env[TEST_DATABASE_URL_ENV];
  if (fromEnv) return fromEnv;
  const hasCluster = spawnSync('sh', ['-c', 'command -v pg_ctlcluster'], { stdio: 'ignore' }).status === 0;
  if (!hasCluster || !existsSync(SCRIPT)) {
    throw new Error(
      `The PostgreSQL audit-store tests need a database: set ${TEST_DATABASE_URL_ENV}=postgres://user:password@host:port/db ` +
        '(a role that may create tables there), or install PostgreSQL (Debian/Ubuntu, pg_ctlcluster) and run the tests as ' +
        'root so scripts/pg-test-db.sh can prepare a local one.',
    );
  }
  let out: string;
  try {
    out = execFileSync('bash', [SCRIPT], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
    throw new Error(
      `scripts/pg-test-db.sh could not prepare the PostgreSQL test database${stderr ? `: ${stderr}` : ''}. ` +
        `Run it as root, or set ${TEST_DATABASE_URL_ENV} to a database you prepared.`,
    );
  }
  const url = out.trim().split('\n').pop() ?? '';
  if (!/^postgres(ql)?:\/\//.test(url)) throw new Error('scripts/pg-test-db.sh printed no connection string');
  process.env[TEST_DATABASE_URL_ENV] = url;
  return url;
}
