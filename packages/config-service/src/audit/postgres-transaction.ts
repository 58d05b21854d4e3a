/**
 * Connections and transactions of the PostgreSQL audit store: the pool, one transaction
 * on one pooled connection, and the chain's advisory lock that every writer takes first.
 *
 * Hangs fail closed: opening a connection is bounded (`connectTimeoutMs`), every
 * statement is bounded on the server (`statement_timeout`) AND on the client
 * (`query_timeout`, {@link QUERY_TIMEOUT_GRACE_MS} later, for a database or network that
 * stops answering without an error), and a connection that timed out or broke is
 * destroyed, never returned to the pool. TCP keepalive is on for idle connections.
 */
import pg from 'pg';
import { isConnectionError, QUERY_TIMEOUT_GRACE_MS } from './postgres-errors.js';

/** How {@link createAuditPool} connects; the limits are checked by the store. */
export interface AuditPoolOptions {
  /** `postgres://...`; holds a credential (never logged). */
  connectionString: string;
  /** Most connections open at once. */
  poolSize: number;
  /** Longest wait to open a connection or get a free pooled one, in milliseconds. */
  connectTimeoutMs: number;
  /** Longest one statement may run on the server, in milliseconds (`statement_timeout`). */
  queryTimeoutMs: number;
}

/**
 * A pool whose every wait is bounded (see the module comment); PostgreSQL also ends a
 * session left idle in a transaction after twice `queryTimeoutMs` (at least 2 s).
 *
 * @param onIdleError told (with pg's error, which may quote the connection string) when an
 *   idle connection breaks; the next operation reconnects, or fails closed if it cannot.
 */
export function createAuditPool(opts: AuditPoolOptions, onIdleError: (err: Error) => void): pg.Pool {
  const pool = new pg.Pool({
    connectionString: opts.connectionString,
    max: opts.poolSize,
    connectionTimeoutMillis: opts.connectTimeoutMs,
    statement_timeout: opts.queryTimeoutMs,
    // Client side: a database (or network) that does not answer at all.
    query_timeout: opts.queryTimeoutMs + QUERY_TIMEOUT_GRACE_MS,
    // A replica that stops mid-transaction (or whose network vanished) must not hold
    // the write lock for long: its session is ended and its transaction rolled back.
    idle_in_transaction_session_timeout: Math.max(opts.queryTimeoutMs, 1000) * 2,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    application_name: 'config-service-audit',
  });
  // An idle connection that breaks emits 'error' on the pool; without a listener the
  // process would crash.
  pool.on('error', onIdleError);
  return pool;
}

/**
 * Runs `fn` in one transaction on one pooled connection: `BEGIN`, `fn`, `COMMIT`; rolls
 * back when `fn` throws. A connection that broke or timed out is not rolled back (that
 * would wait again) but destroyed: the server rolls back when it sees the connection end.
 *
 * @returns (resolves) what `fn` returned, once `COMMIT` was acknowledged.
 * @throws (rejects) what `fn` threw, or pg's error when connecting, `BEGIN` or `COMMIT`
 *   failed (unscrubbed: it may quote the connection string).
 */
export async function inTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  let broken: Error | undefined;
  // A connection that breaks between two queries emits 'error' on the client; the next
  // query fails anyway, so record it rather than let it crash the process.
  const onError = (err: Error): void => {
    broken = err;
  };
  c.on('error', onError);
  try {
    await c.query('BEGIN');
    try {
      const result = await fn(c);
      await c.query('COMMIT');
      return result;
    } catch (err) {
      if (broken === undefined && !isConnectionError(err)) {
        try {
          await c.query('ROLLBACK');
        } catch (rollbackErr) {
          // The connection is unusable: drop it instead of returning it to the pool.
          broken = rollbackErr as Error;
        }
      }
      throw err;
    }
  } catch (err) {
    broken ??= isConnectionError(err) ? (err as Error) : undefined;
    throw err;
  } finally {
    c.off('error', onError);
    c.release(broken);
  }
}

/**
 * Takes the chain's transaction-level advisory lock (`pg_advisory_xact_lock`), waiting
 * for whoever holds it (bounded by `statement_timeout`). It serialises every writer of one
 * table across every connection to the database, and is released by `COMMIT`/`ROLLBACK`
 * (or when the connection dies), never held between transactions.
 *
 * @param lockKey the table's key (`advisoryLockKey` in `postgres-schema.ts`).
 * @throws (rejects) pg's error, e.g. `57014` when the wait passed `statement_timeout`.
 */
export async function lockChain(c: pg.ClientBase, lockKey: string): Promise<void> {
  await c.query('SELECT pg_advisory_xact_lock($1::bigint)', [lockKey]);
}
