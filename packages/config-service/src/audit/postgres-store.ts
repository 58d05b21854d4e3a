/**
 * The shared audit store: one PostgreSQL table that several replicas append to (SPEC §6,
 * §10), through node-postgres (`pg`). This file holds the store's public face: options,
 * opening, the group-commit flush loop and closing; the work is done by
 *
 * - `postgres-transaction.ts`: the pool (every wait bounded), transactions, the chain's lock;
 * - `postgres-write.ts`: the write transaction of a batch (how several replicas share one
 *   chain, abandoned and in-doubt commits) and signed checkpoints;
 * - `postgres-retention.ts`: pruning; `postgres-read.ts`: examining the chain, listing checkpoints;
 * - `postgres-schema.ts`: the tables; `postgres-errors.ts`: connection errors, scrubbing;
 * - `group-commit-store.ts`: what both stores share (append, health, probe bookkeeping).
 *
 * Durability: {@link AuditStore.append} resolves only after the `COMMIT` holding the event
 * returned, which with PostgreSQL's default `synchronous_commit = on` means the commit
 * record is flushed to the WAL (and to synchronous standbys, when configured). Do not run
 * the audit database with `synchronous_commit = off`.
 *
 * Group commit: `append` queues the event; one flush at a time takes every queued event (at
 * most `maxBatchSize`) and writes them in ONE transaction, chaining them in call order,
 * then settles their promises. Events that arrive while a commit is in flight share the
 * next one.
 *
 * The connection string carries a password: it is never logged nor put in an error
 * message; errors from `pg` that would contain it are replaced by scrubbed copies.
 */
import { createPrivateKey } from 'node:crypto';
import type pg from 'pg';
import { CFG_ERR_AUDIT_UNAVAILABLE } from '../errors.js';
import { storedCheckpoint, type Checkpoint } from './checkpoint.js';
import { CheckpointSchedule, type StoreCheckpointOptions } from './checkpoint-schedule.js';
import { GroupCommitStore, type ExplainedFailure } from './group-commit-store.js';
import { connectionSecrets, describePgError, QUERY_TIMEOUT_GRACE_MS, scrubError } from './postgres-errors.js';
import { examineChain, readCheckpoints } from './postgres-read.js';
import { pruneChain } from './postgres-retention.js';
import { anchorTableName, columnText, pgAuditTables, prepareSchema, type PgAuditTables } from './postgres-schema.js';
import { createAuditPool, inTransaction, lockChain } from './postgres-transaction.js';
import { AbandonedBatch, writeBatch, writeHeadCheckpoint, type PgCheckpointSigner } from './postgres-write.js';
import { parseAfter, parseInstant, parseLimit } from './query.js';
import { pageQuery, SILENT, toPage, type EventRow } from './rows.js';
import type { AuditEvent, AuditLogger, AuditPage, AuditQuery, AuditStore, ChainExamination, CheckpointQuery, ExamineOptions, VerifyResult } from './types.js';

export { advisoryLockKey, anchorTableName, auditTableNames, checkpointTableName, headTableName } from './postgres-schema.js';
export { connectionSecrets, QUERY_TIMEOUT_GRACE_MS, scrubError } from './postgres-errors.js';

/** Options of {@link openPostgresAuditStore}. */
export interface PostgresAuditStoreOptions {
  /**
   * `postgres://user:password@host:port/database?...` (anything `pg` accepts). Holds a
   * credential: it is never logged nor included in an error.
   */
  connectionString: string;
  /** Table of the events (`^[a-z_][a-z0-9_]{0,62}$`), created with its indexes when missing. Default `audit_events`. */
  table?: string;
  /** Most connections the store opens. Default 10; writes use one at a time. */
  poolSize?: number;
  /** Where operational messages go (write failures, recovery); pino fits. Default: none. */
  logger?: AuditLogger;
  /** Most events committed in one transaction; the rest wait for the next flush. Default 1000. */
  maxBatchSize?: number;
  /**
   * How long opening a connection (TCP, TLS, authentication) or waiting for a free pooled
   * one may take, in milliseconds; then the operation fails. Default 5000.
   */
  connectTimeoutMs?: number;
  /**
   * Longest one statement may run, in milliseconds, including the wait for another
   * replica's write lock: PostgreSQL cancels it then (`statement_timeout`), and the store
   * stops waiting for an answer {@link QUERY_TIMEOUT_GRACE_MS} later (`query_timeout`, for
   * a database or network that does not answer at all) and destroys the connection.
   * Default 5000.
   */
  queryTimeoutMs?: number;
  /** Signed checkpoints (issue 13); absent: none are signed and retention anchors are unsigned. */
  checkpoints?: StoreCheckpointOptions;
}

/** Default table of the events. */
export const DEFAULT_POSTGRES_AUDIT_TABLE = 'audit_events';

const TABLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Opens the PostgreSQL audit store: connects, and creates the table and its indexes when
 * missing (under the table's advisory lock, so replicas starting together do not race).
 * A role that may only `SELECT`/`INSERT` works once the table exists.
 *
 * Queries behave as the SQLite store's: newest first (descending `seq`), `nextCursor` the
 * base64url of the last `seq` returned, `since` inclusive and `until` exclusive, both an
 * ISO 8601 date or date-time with `Z` or an offset.
 *
 * @throws (rejects) TypeError for a bad `table`, `poolSize` or `maxBatchSize`;
 *   CFG_ERR_AUDIT_UNAVAILABLE (503) when the database cannot be reached or the table cannot
 *   be created (`cause` set, scrubbed of the connection string's credentials).
 */
export async function openPostgresAuditStore(opts: PostgresAuditStoreOptions): Promise<PostgresAuditStore> {
  const store = new PostgresAuditStore(opts);
  await store.init();
  return store;
}

/**
 * The PostgreSQL {@link AuditStore}. Create it with {@link openPostgresAuditStore}.
 */
export class PostgresAuditStore extends GroupCommitStore implements AuditStore {
  readonly #pool: pg.Pool;
  readonly #maxBatch: number;
  readonly #table: string;
  /** The tables, double-quoted for SQL, and the chain's advisory lock key. */
  readonly #tables: PgAuditTables;
  /** Signs checkpoints; absent when `checkpoints` is not configured. */
  readonly #signer: PgCheckpointSigner | undefined;
  #storeId = '';
  readonly #secrets: string[];
  readonly #connectTimeoutMs: number;
  readonly #queryTimeoutMs: number;
  /** The flush loop in progress, if any. */
  #flushing: Promise<void> | undefined;
  #immediate: NodeJS.Immediate | undefined;
  /** False when the anchor table is missing and could not be created (pruning then fails). */
  #hasAnchorTable = true;
  /** False when the anchor table has no `checkpoint` column and it could not be added (anchors are then unsigned). */
  #anchorSigned = true;
  #closePromise: Promise<void> | undefined;

  /** Use {@link openPostgresAuditStore}; the store is usable only after `init()`. */
  constructor(opts: PostgresAuditStoreOptions) {
    super(opts.logger ?? SILENT, 'postgres', 'PostgreSQL');
    this.#table = opts.table ?? DEFAULT_POSTGRES_AUDIT_TABLE;
    if (!TABLE_NAME.test(this.#table)) {
      throw new TypeError('openPostgresAuditStore: table must match ^[a-z_][a-z0-9_]{0,62}$');
    }
    const poolSize = opts.poolSize ?? 10;
    if (!Number.isInteger(poolSize) || poolSize < 1) throw new TypeError('openPostgresAuditStore: poolSize must be an integer >= 1');
    this.#maxBatch = opts.maxBatchSize ?? 1000;
    if (!Number.isInteger(this.#maxBatch) || this.#maxBatch < 1) {
      throw new TypeError('openPostgresAuditStore: maxBatchSize must be an integer >= 1');
    }
    if (typeof opts.connectionString !== 'string' || opts.connectionString.length === 0) {
      throw new CFG_ERR_AUDIT_UNAVAILABLE('no PostgreSQL connection string is set');
    }
    this.#connectTimeoutMs = positiveMs(opts.connectTimeoutMs ?? 5000, 'connectTimeoutMs');
    this.#queryTimeoutMs = positiveMs(opts.queryTimeoutMs ?? 5000, 'queryTimeoutMs');
    this.#secrets = connectionSecrets(opts.connectionString);
    this.#tables = pgAuditTables(this.#table);
    this.schedule = opts.checkpoints ? new CheckpointSchedule(opts.checkpoints, this.logger, () => void this.checkpoint()) : undefined;
    this.#signer = this.schedule && opts.checkpoints ? { schedule: this.schedule, key: createPrivateKey(opts.checkpoints.signer.privateKeyPem) } : undefined;
    this.#pool = createAuditPool(
      { connectionString: opts.connectionString, poolSize, connectTimeoutMs: this.#connectTimeoutMs, queryTimeoutMs: this.#queryTimeoutMs },
      // The next operation reconnects (and fails closed if it cannot).
      (err) => this.logger.warn({ err: this.#scrub(err) }, 'audit store: an idle PostgreSQL connection failed'),
    );
  }

  /**
   * Connects and creates the schema when missing. Called once by {@link openPostgresAuditStore}.
   * @throws (rejects) CFG_ERR_AUDIT_UNAVAILABLE as described there; the pool is ended.
   */
  async init(): Promise<void> {
    let lastSeq: number;
    try {
      const prepared = await this.#transaction((c) =>
        prepareSchema(c, this.#table, this.#tables.lockKey, (err, what) => this.logger.warn({ err: this.#scrub(err), table: this.#table }, `audit store: cannot create ${what}`), (err) => this.#scrub(err).message),
      );
      this.#hasAnchorTable = prepared.hasAnchorTable;
      this.#anchorSigned = prepared.anchorSigned;
      this.#storeId = prepared.storeId;
      lastSeq = prepared.lastSeq;
    } catch (err) {
      this.closed = true;
      await this.#pool.end().catch(() => {});
      const cause = this.#scrub(err);
      // The cause's text (scrubbed) says why, for the operator reading a failed start.
      throw new CFG_ERR_AUDIT_UNAVAILABLE(`cannot open the PostgreSQL audit store (table ${this.#table}): ${cause.message}`, { cause });
    }
    this.logger.info({ store: 'postgres', table: this.#table, lastSeq }, 'audit store opened');
  }

  /** {@inheritDoc AuditStore.storeId} */
  async storeId(): Promise<string> {
    return this.#storeId;
  }

  /**
   * What {@link GroupCommitStore.probe} checks: a transaction takes the chain's lock,
   * finds the database writable (not a read-only standby) and reads the last event. Each
   * statement is bounded by `queryTimeoutMs` (and the connection by `connectTimeoutMs`).
   */
  protected probeWrite(): Promise<void> {
    return this.#transaction(async (c) => {
      await lockChain(c, this.#tables.lockKey);
      const ro = await c.query<{ ro: string }>("SELECT current_setting('transaction_read_only') AS ro");
      if (ro.rows[0]?.ro === 'on') throw new Error('the database is read-only (a standby?)');
      await c.query(`SELECT seq FROM ${this.#tables.events} ORDER BY seq DESC LIMIT 1`);
    });
  }

  /**
   * {@inheritDoc AuditStore.query}
   * @throws (rejects) CFG_ERR_INVALID_REQUEST for a bad `cursor`, `since`, `until` or
   *   `limit`; CFG_ERR_AUDIT_UNAVAILABLE when the database cannot be read or holds a
   *   malformed row.
   */
  async query(q: AuditQuery): Promise<AuditPage> {
    this.assertOpen();
    const { sql, params, limit } = pageQuery(q, this.#tables.events, (n) => `$${n}`, columnText);
    try {
      return toPage((await this.#pool.query<EventRow<string>>(sql, params)).rows, limit);
    } catch (err) {
      throw this.#unavailable('the PostgreSQL audit store cannot be read', err);
    }
  }

  /**
   * {@inheritDoc AuditStore.verify}
   *
   * Besides the chain rules, checks that each row's `event` text is exactly the canonical
   * JSON that was hashed (`hash mismatch` otherwise), that it parses as an event
   * (`malformed event`) and that the indexed columns agree with it (`column mismatch`).
   * Reads the table in `seq` order, a page at a time, so memory stays bounded.
   * @throws (rejects) CFG_ERR_AUDIT_UNAVAILABLE when the database cannot be read.
   */
  async verify(): Promise<VerifyResult> {
    const { ok, checked, firstBreak } = await this.examine();
    return firstBreak ? { ok, checked, firstBreak } : { ok, checked };
  }

  /**
   * {@inheritDoc AuditStore.examine}
   *
   * One REPEATABLE READ snapshot: the counter, the anchor and every page agree even while
   * another replica appends or prunes (`examineChain` in `postgres-read.ts`).
   */
  async examine(opts: ExamineOptions = {}): Promise<ChainExamination> {
    this.assertOpen();
    try {
      return await this.#transaction((c) => examineChain(c, this.#tables, { hasAnchorTable: this.#hasAnchorTable, storeId: this.#storeId }, opts));
    } catch (err) {
      throw this.#unavailable('the PostgreSQL audit store cannot be read', err);
    }
  }

  /** {@inheritDoc AuditStore.checkpoints} */
  async checkpoints(q: CheckpointQuery = {}): Promise<Checkpoint[]> {
    this.assertOpen();
    const after = parseAfter(q.after);
    const limit = parseLimit(q.limit);
    let texts: string[];
    try {
      texts = await readCheckpoints(this.#pool, this.#tables, after, limit);
    } catch (err) {
      throw this.#unavailable('the PostgreSQL audit store cannot be read', err);
    }
    return texts.map((json) => storedCheckpoint(json));
  }

  /** {@inheritDoc AuditStore.checkpoint} */
  async checkpoint(force = false): Promise<Checkpoint | undefined> {
    const signer = this.#signer;
    if (!signer || this.closed || (!force && signer.schedule.pending === 0)) return undefined;
    let json: string | undefined;
    try {
      json = await this.#transaction((c) => writeHeadCheckpoint(c, this.#tables, signer));
    } catch (err) {
      this.logger.warn({ err: this.#scrub(err) }, 'audit checkpoint could not be written; retrying at the next interval');
      return undefined;
    }
    return json === undefined ? undefined : this.signed(json);
  }

  /**
   * {@inheritDoc AuditStore.prune}
   *
   * Takes the table's advisory lock first, as appends do, so no replica appends or prunes
   * between reading the chain and recording the anchor (`pruneChain` in `postgres-retention.ts`).
   */
  async prune(before: string): Promise<{ deleted: number }> {
    this.assertOpen();
    const cutoff = parseInstant(before, 'before');
    if (!this.#hasAnchorTable) {
      throw new CFG_ERR_AUDIT_UNAVAILABLE(`the PostgreSQL audit store cannot prune: the table ${anchorTableName(this.#table)} is missing`);
    }
    let result: { deleted: number; checkpoint?: string | undefined };
    try {
      result = await this.#transaction((c) => pruneChain(c, this.#tables, cutoff, { anchorSigned: this.#anchorSigned, storeId: this.#storeId, signer: this.#signer }));
    } catch (err) {
      throw this.#unavailable('the PostgreSQL audit store could not prune old events', err);
    }
    if (result.checkpoint !== undefined) this.signed(result.checkpoint);
    return { deleted: result.deleted };
  }

  /** {@inheritDoc AuditStore.close} */
  close(): Promise<void> {
    this.#closePromise ??= this.#close();
    return this.#closePromise;
  }

  async #close(): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#immediate = undefined;
    // Commit what is queued (including what a running flush has not taken yet); deferred
    // events get one more try, then are dropped.
    this.queue.retryDeferred();
    while (this.#flushing || this.queue.ready) {
      if (!this.#flushing) this.#startFlush();
      await this.#flushing;
    }
    if (this.schedule) {
      this.schedule.stop();
      // The shutdown checkpoint: the head this replica leaves behind.
      if (this.schedule.pending > 0) await this.checkpoint();
    }
    try {
      await this.#pool.end();
    } catch (err) {
      this.logger.error({ err: this.#scrub(err) }, 'audit store close failed');
    }
    this.closed = true;
  }

  /** Commits the queue at the next turn of the event loop (unless a flush is already running). */
  protected scheduleFlush(): void {
    if (this.#immediate || this.#flushing) return;
    // One turn of the event loop lets concurrent appends join the batch.
    this.#immediate = setImmediate(() => {
      this.#immediate = undefined;
      if (!this.#flushing) this.#startFlush();
    });
  }

  /** Starts the flush loop: batch after batch until the queue is empty, one at a time. */
  #startFlush(): void {
    this.#flushing = (async () => {
      try {
        while (this.queue.ready) await this.#flushOnce();
      } catch (err) {
        // #flushOnce settles every event itself; this is a bug guard, not a path.
        this.logger.error({ err: this.#scrub(err) }, 'audit store flush failed unexpectedly');
      } finally {
        this.#flushing = undefined;
      }
    })();
  }

  /** Commits up to maxBatchSize queued events in one transaction and settles them. */
  async #flushOnce(): Promise<void> {
    const batch = this.queue.take(this.#maxBatch);
    if (batch.length === 0) return;
    let events: AuditEvent[];
    let checkpoint: string | undefined;
    try {
      ({ events, checkpoint } = await this.#transaction((c) => writeBatch(c, this.#tables, batch, this.#signer, () => this.queue.abandoned(batch))));
    } catch (err) {
      if (err instanceof AbandonedBatch) {
        // Rolled back: the events of callers still waiting go again, in order.
        this.queue.requeue(batch);
        return;
      }
      this.settleFailed(batch, err);
      return;
    }
    this.settleCommitted(batch, events, checkpoint);
  }

  /** The error scrubbed of credentials, and why it failed: the timeout that expired, or the error's own text. */
  protected override explain(err: unknown): ExplainedFailure {
    const cause = this.#scrub(err);
    return { cause, reason: describePgError(cause, this.#connectTimeoutMs, this.#queryTimeoutMs) };
  }

  /** Unhealthy after a commit wait ran out; `inDoubt`: the event's transaction was in flight. */
  protected override commitTimedOut(timeoutMs: number, inDoubt: boolean): void {
    this.storeHealth.fail(`an audit event was not committed within ${timeoutMs} ms${inDoubt ? ' (its transaction was in flight)' : ''}`, 'audit store commit timed out; failing requests closed', { timeoutMs });
  }

  /** {@link inTransaction} on this store's pool. */
  #transaction<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.#pool, fn);
  }

  /** A CFG_ERR_AUDIT_UNAVAILABLE whose cause cannot reveal the connection string. */
  #unavailable(message: string, err: unknown): Error {
    return new CFG_ERR_AUDIT_UNAVAILABLE(message, { cause: this.#scrub(err) });
  }

  /** `err` itself when none of its text holds a credential, else a scrubbed copy. */
  #scrub(err: unknown): Error {
    return scrubError(err, this.#secrets);
  }
}

function positiveMs(v: number, name: string): number {
  if (!Number.isInteger(v) || v < 1) throw new TypeError(`openPostgresAuditStore: ${name} must be an integer >= 1 (milliseconds)`);
  return v;
}
