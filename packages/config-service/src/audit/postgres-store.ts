/**
 * The shared audit store: one PostgreSQL table that several replicas append to (SPEC §6,
 * §10), through node-postgres (`pg`).
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
 * Several replicas: each write transaction first takes a transaction-level advisory lock
 * (`pg_advisory_xact_lock`) on a key derived from the table name, then reads the counter
 * (`<table>_head`: the `seq` and `hash` of the last event ever written; the last stored
 * event when that is further, which only a replica of an older version can have written),
 * inserts after it and moves the counter on. A number is never given twice: deleting rows
 * does not roll the counter back (a PostgreSQL sequence is not used because a rolled-back
 * transaction would consume numbers and leave gaps that are not deletions). The lock serialises the writers of one
 * table across every connection to the database, so the chain has no gaps and no forks
 * however many replicas write; it is released by `COMMIT`/`ROLLBACK` (or when a connection
 * dies), never held between batches. The primary key on `seq` is a second guard.
 *
 * Hangs fail closed too: opening a connection is bounded (`connectTimeoutMs`), every
 * statement is bounded on the server (`statement_timeout`) AND on the client
 * (`query_timeout`, {@link QUERY_TIMEOUT_GRACE_MS} later, for a database or network that
 * stops answering without an error), and a connection that timed out or broke is
 * destroyed, never returned to the pool. TCP keepalive is on for idle connections.
 *
 * Abandoned: when a caller stops waiting (`AppendOptions.timeoutMs`) while its event's
 * transaction runs, the transaction is rolled back before `COMMIT` (the other events of
 * the batch go again), so a request answered 503 does not get its event committed.
 *
 * In doubt: a transaction whose `COMMIT` was sent but not acknowledged (timeout, reset)
 * may have committed. It held the chain's advisory lock from before its `COMMIT` was
 * sent, so every later transaction (of any replica) waits for it to commit or roll back
 * and chains after it: the chain stays gap-free either way, and an event written later
 * about the same request (the 503 refusal record) always comes after it.
 *
 * The connection string carries a password: it is never logged nor put in an error
 * message; errors from `pg` that would contain it are replaced by scrubbed copies.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import pg from 'pg';
import { CFG_ERR_AUDIT_UNAVAILABLE } from '../errors.js';
import { ChainVerifier, GENESIS_HASH, hashEventBody, type ChainAnchor } from './chain.js';
import { checkpointJson, signCheckpoint, storedCheckpoint, type Checkpoint } from './checkpoint.js';
import { CheckpointSchedule, type StoreCheckpointOptions } from './checkpoint-schedule.js';
import { closedError, CommitQueue, emptyStats, StoreHealth, withDeadline, type Pending } from './commit-queue.js';
import { withChainFields } from './event.js';
import { eventJsonParts, joinEventJson, rememberEventJson } from './event-json.js';
import { connectionSecrets, describePgError, isConnectionError, QUERY_TIMEOUT_GRACE_MS, scrubError } from './postgres-errors.js';
import { advisoryLockKey, anchorTableName, checkpointTableName, columnText, headTableName, nullableColumn, prepareSchema } from './postgres-schema.js';
import { parseAfter, parseInstant, parseLimit } from './query.js';
import { checkRow, pageQuery, rowToEvent, SILENT, toPage, type EventRow } from './rows.js';
import type {
  AppendOptions,
  AuditEvent,
  AuditEventInput,
  AuditLogger,
  AuditPage,
  AuditQuery,
  AuditStore,
  AuditStoreHealth,
  AuditStoreStats,
  ChainExamination,
  CheckpointQuery,
  ExamineOptions,
  VerifyResult,
} from './types.js';

export { advisoryLockKey, anchorTableName, auditTableNames, checkpointTableName, headTableName } from './postgres-schema.js';
export { connectionSecrets, scrubError } from './postgres-errors.js';

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

export { QUERY_TIMEOUT_GRACE_MS } from './postgres-errors.js';

/** Default table of the events. */
export const DEFAULT_POSTGRES_AUDIT_TABLE = 'audit_events';

const TABLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
/** Page size of a verification read. */
const VERIFY_PAGE = 1000;



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
export class PostgresAuditStore implements AuditStore {
  readonly #pool: pg.Pool;
  readonly #logger: AuditLogger;
  readonly #maxBatch: number;
  readonly #table: string;
  /** The table name, double-quoted for SQL. */
  readonly #t: string;
  /** The retention anchor table's name, double-quoted for SQL. */
  readonly #a: string;
  /** The counter table's name, double-quoted for SQL. */
  readonly #h: string;
  /** The checkpoint table's name, double-quoted for SQL. */
  readonly #c: string;
  readonly #schedule: CheckpointSchedule | undefined;
  readonly #signingKey: KeyObject | undefined;
  #storeId = '';
  /** Advisory lock key of the table (a signed 64-bit integer, as text). */
  readonly #lockKey: string;
  readonly #secrets: string[];
  readonly #stats: AuditStoreStats = emptyStats();
  readonly #health: StoreHealth;
  readonly #queue: CommitQueue;
  readonly #insertSql: string;
  readonly #connectTimeoutMs: number;
  readonly #queryTimeoutMs: number;
  /** The flush loop in progress, if any. */
  #flushing: Promise<void> | undefined;
  #immediate: NodeJS.Immediate | undefined;
  /** False when the anchor table is missing and could not be created (pruning then fails). */
  #hasAnchorTable = true;
  /** False when the anchor table has no `checkpoint` column and it could not be added (anchors are then unsigned). */
  #anchorSigned = true;
  #closing = false;
  #closed = false;
  #closePromise: Promise<void> | undefined;

  /** Use {@link openPostgresAuditStore}; the store is usable only after `init()`. */
  constructor(opts: PostgresAuditStoreOptions) {
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
    this.#logger = opts.logger ?? SILENT;
    this.#connectTimeoutMs = positiveMs(opts.connectTimeoutMs ?? 5000, 'connectTimeoutMs');
    this.#queryTimeoutMs = positiveMs(opts.queryTimeoutMs ?? 5000, 'queryTimeoutMs');
    this.#health = new StoreHealth(this.#logger, 'postgres');
    this.#queue = new CommitQueue(this.#stats, this.#logger, (ms, inDoubt) =>
      this.#health.fail(`an audit event was not committed within ${ms} ms${inDoubt ? ' (its transaction was in flight)' : ''}`, 'audit store commit timed out; failing requests closed', { timeoutMs: ms }),
    );
    this.#secrets = connectionSecrets(opts.connectionString);
    this.#t = `"${this.#table}"`;
    this.#a = `"${anchorTableName(this.#table)}"`;
    this.#h = `"${headTableName(this.#table)}"`;
    this.#c = `"${checkpointTableName(this.#table)}"`;
    this.#schedule = opts.checkpoints ? new CheckpointSchedule(opts.checkpoints, this.#logger, () => void this.checkpoint()) : undefined;
    this.#signingKey = opts.checkpoints ? createPrivateKey(opts.checkpoints.signer.privateKeyPem) : undefined;
    this.#lockKey = advisoryLockKey(this.#table);
    this.#insertSql = `INSERT INTO ${this.#t} (seq, time, request_id, actor_kind, actor_subject, action, app, commit_id,
        outcome, status, prev_hash, hash, event)
      SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
        $8::text[], $9::text[], $10::integer[], $11::text[], $12::text[], $13::text[])`;
    this.#pool = new pg.Pool({
      connectionString: opts.connectionString,
      max: poolSize,
      connectionTimeoutMillis: this.#connectTimeoutMs,
      statement_timeout: this.#queryTimeoutMs,
      // Client side: a database (or network) that does not answer at all.
      query_timeout: this.#queryTimeoutMs + QUERY_TIMEOUT_GRACE_MS,
      // A replica that stops mid-transaction (or whose network vanished) must not hold
      // the write lock for long: its session is ended and its transaction rolled back.
      idle_in_transaction_session_timeout: Math.max(this.#queryTimeoutMs, 1000) * 2,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      application_name: 'config-service-audit',
    });
    // An idle connection that breaks emits 'error' on the pool; without a listener the
    // process would crash. The next operation reconnects (and fails closed if it cannot).
    this.#pool.on('error', (err) => {
      this.#logger.warn({ err: this.#scrub(err) }, 'audit store: an idle PostgreSQL connection failed');
    });
  }

  /**
   * Connects and creates the schema when missing. Called once by {@link openPostgresAuditStore}.
   * @throws (rejects) CFG_ERR_AUDIT_UNAVAILABLE as described there; the pool is ended.
   */
  async init(): Promise<void> {
    let lastSeq: number;
    try {
      const prepared = await this.#transaction((c) =>
        prepareSchema(c, this.#table, this.#lockKey, (err, what) => this.#logger.warn({ err: this.#scrub(err), table: this.#table }, `audit store: cannot create ${what}`), (err) => this.#scrub(err).message),
      );
      this.#hasAnchorTable = prepared.hasAnchorTable;
      this.#anchorSigned = prepared.anchorSigned;
      this.#storeId = prepared.storeId;
      lastSeq = prepared.lastSeq;
    } catch (err) {
      this.#closed = true;
      await this.#pool.end().catch(() => {});
      const cause = this.#scrub(err);
      // The cause's text (scrubbed) says why, for the operator reading a failed start.
      throw new CFG_ERR_AUDIT_UNAVAILABLE(`cannot open the PostgreSQL audit store (table ${this.#table}): ${cause.message}`, { cause });
    }
    this.#logger.info({ store: 'postgres', table: this.#table, lastSeq }, 'audit store opened');
  }

  /** {@inheritDoc AuditStore.healthy} */
  get healthy(): boolean {
    return this.#health.healthy && !this.#closed && !this.#closing;
  }

  /** {@inheritDoc AuditStore.health} */
  get health(): Readonly<AuditStoreHealth> {
    if (this.#closed || this.#closing) return { healthy: false, reason: 'the audit store is closed' };
    return this.#health.snapshot;
  }

  /** {@inheritDoc AuditStore.stats} */
  get stats(): Readonly<AuditStoreStats> {
    return { ...this.#stats };
  }

  /** {@inheritDoc AuditStore.storeId} */
  async storeId(): Promise<string> {
    return this.#storeId;
  }

  /**
   * {@inheritDoc AuditStore.append}
   * @throws (rejects) TypeError for a malformed event; CFG_ERR_AUDIT_UNAVAILABLE when the
   *   store is closed or the transaction holding the event fails (`cause` set).
   */
  append(event: AuditEventInput, options: AppendOptions = {}): Promise<AuditEvent> {
    if (this.#closed || this.#closing) return Promise.reject(closedError());
    return this.#queue.add(event, options.timeoutMs, () => this.#scheduleFlush());
  }

  /** {@inheritDoc AuditStore.appendEventually} */
  appendEventually(event: AuditEventInput): void {
    if (this.#closed || this.#closing) return;
    this.#queue.addDeferred(event, () => this.#scheduleFlush());
  }

  /**
   * {@inheritDoc AuditStore.probe}
   *
   * Each statement is bounded by `queryTimeoutMs` (and the connection by
   * `connectTimeoutMs`); the probe as a whole by `timeoutMs`. A passing probe also lets
   * deferred events be tried again.
   */
  async probe(timeoutMs: number): Promise<void> {
    if (this.#closed || this.#closing) return;
    this.#stats.probes++;
    try {
      await withDeadline(
        this.#transaction(async (c) => {
          await c.query('SELECT pg_advisory_xact_lock($1::bigint)', [this.#lockKey]);
          const ro = await c.query<{ ro: string }>("SELECT current_setting('transaction_read_only') AS ro");
          if (ro.rows[0]?.ro === 'on') throw new Error('the database is read-only (a standby?)');
          await c.query(`SELECT seq FROM ${this.#t} ORDER BY seq DESC LIMIT 1`);
        }),
        timeoutMs,
        `the probe did not finish within ${timeoutMs} ms`,
      );
    } catch (err) {
      this.#stats.probeFailures++;
      const cause = this.#scrub(err);
      this.#health.fail(`probe failed: ${this.#describe(cause)}`, 'audit store probe failed; failing requests closed', { err: cause });
      return;
    }
    this.#health.recover('probe');
    this.#queue.retryDeferred();
    if (this.#queue.ready) this.#scheduleFlush();
  }

  /**
   * {@inheritDoc AuditStore.query}
   * @throws (rejects) CFG_ERR_INVALID_REQUEST for a bad `cursor`, `since`, `until` or
   *   `limit`; CFG_ERR_AUDIT_UNAVAILABLE when the database cannot be read or holds a
   *   malformed row.
   */
  async query(q: AuditQuery): Promise<AuditPage> {
    this.#assertOpen();
    const { sql, params, limit } = pageQuery(q, this.#t, (n) => `$${n}`, columnText);
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
   * another replica appends or prunes.
   */
  async examine(opts: ExamineOptions = {}): Promise<ChainExamination> {
    this.#assertOpen();
    const sql = `SELECT * FROM ${this.#t} WHERE seq > $1 ORDER BY seq LIMIT ${VERIFY_PAGE}`;
    try {
      return await this.#transaction(async (c) => {
        await c.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
        const head = (await c.query<{ store_id: string; seq: string; hash: string }>(`SELECT store_id, seq, hash FROM ${this.#h} WHERE id = 1`)).rows[0];
        const anchor = this.#hasAnchorTable
          ? (await c.query<{ seq: string; prev_hash: string; checkpoint?: string | null }>(`SELECT * FROM ${this.#a} WHERE id = 1`)).rows[0]
          : undefined;
        const start: ChainAnchor = anchor ? { seq: Number(anchor.seq), prevHash: anchor.prev_hash } : { seq: 1, prevHash: GENESIS_HASH };
        const v = new ChainVerifier(start, opts.expect);
        let after = '0';
        for (;;) {
          const { rows } = await c.query<EventRow<string>>(sql, [after]);
          for (const row of rows) {
            let event: AuditEvent;
            try {
              event = rowToEvent(row);
            } catch {
              v.fail(Number(row.seq), 'malformed event');
              break;
            }
            if (!v.push(event, (e) => checkRow(row, e, columnText))) break;
          }
          const last = rows[rows.length - 1];
          if (v.broken || rows.length < VERIFY_PAGE || !last) break;
          after = last.seq;
        }
        v.finish(head ? { seq: Number(head.seq), hash: head.hash } : undefined);
        return {
          ...v.result(),
          storeId: head?.store_id ?? this.#storeId,
          ...(head && { head: { seq: Number(head.seq), hash: head.hash } }),
          start,
          ...(anchor && { anchor: { seq: Number(anchor.seq), prevHash: anchor.prev_hash, checkpoint: anchor.checkpoint ?? null } }),
          beforeStart: v.beforeStart,
          matched: v.matched,
        };
      });
    } catch (err) {
      throw this.#unavailable('the PostgreSQL audit store cannot be read', err);
    }
  }

  /** {@inheritDoc AuditStore.checkpoints} */
  async checkpoints(q: CheckpointQuery = {}): Promise<Checkpoint[]> {
    this.#assertOpen();
    const after = parseAfter(q.after);
    const limit = parseLimit(q.limit);
    let rows: { checkpoint: string }[];
    try {
      rows = (await this.#pool.query<{ checkpoint: string }>(`SELECT checkpoint FROM ${this.#c} WHERE seq > $1 ORDER BY seq, id LIMIT $2`, [after, limit])).rows;
    } catch (err) {
      throw this.#unavailable('the PostgreSQL audit store cannot be read', err);
    }
    return rows.map((r) => storedCheckpoint(r.checkpoint));
  }

  /** {@inheritDoc AuditStore.checkpoint} */
  async checkpoint(force = false): Promise<Checkpoint | undefined> {
    const schedule = this.#schedule;
    if (!schedule || this.#closed || (!force && schedule.pending === 0)) return undefined;
    let json: string | undefined;
    try {
      json = await this.#transaction(async (c) => {
        await c.query('SELECT pg_advisory_xact_lock($1::bigint)', [this.#lockKey]);
        const head = (await c.query<{ store_id: string; seq: string; hash: string }>(`SELECT store_id, seq, hash FROM ${this.#h} WHERE id = 1`)).rows[0];
        return head ? this.#signAndStore(c, 'checkpoint', head.store_id, Number(head.seq), head.hash) : undefined;
      });
    } catch (err) {
      this.#logger.warn({ err: this.#scrub(err) }, 'audit checkpoint could not be written; retrying at the next interval');
      return undefined;
    }
    return json === undefined ? undefined : this.#signed(json);
  }

  /** Signs a checkpoint and inserts it (inside a transaction); its text, or undefined without a key. */
  async #signAndStore(c: pg.PoolClient, kind: Checkpoint['kind'], storeId: string, seq: number, hash: string): Promise<string | undefined> {
    const schedule = this.#schedule;
    if (!schedule || !this.#signingKey || seq < 1) return undefined;
    const cp = signCheckpoint({ kind, storeId, writerId: schedule.writerId, seq, hash, time: new Date().toISOString(), keyId: schedule.signer.keyId }, this.#signingKey);
    const json = checkpointJson(cp);
    await c.query(`INSERT INTO ${this.#c} (seq, kind, checkpoint) VALUES ($1, $2, $3)`, [seq, kind, json]);
    return json;
  }

  /** Records a checkpoint that was committed and tells the listener; returns it. */
  #signed(json: string): Checkpoint {
    const cp = storedCheckpoint(json);
    this.#schedule?.signed(cp, json);
    return cp;
  }

  /**
   * {@inheritDoc AuditStore.prune}
   *
   * Takes the table's advisory lock first, as appends do, so no replica appends or prunes
   * between reading the chain and recording the anchor.
   */
  async prune(before: string): Promise<{ deleted: number }> {
    this.#assertOpen();
    const cutoff = parseInstant(before, 'before');
    if (!this.#hasAnchorTable) {
      throw new CFG_ERR_AUDIT_UNAVAILABLE(`the PostgreSQL audit store cannot prune: the table ${anchorTableName(this.#table)} is missing`);
    }
    let result: { deleted: number; checkpoint?: string | undefined };
    try {
      result = await this.#transaction(async (c) => {
        await c.query('SELECT pg_advisory_xact_lock($1::bigint)', [this.#lockKey]);
        const firstKept = (await c.query<{ seq: string }>(`SELECT seq FROM ${this.#t} WHERE time >= $1 ORDER BY seq LIMIT 1`, [cutoff])).rows[0];
        const lastDeleted = firstKept
          ? (await c.query<{ seq: string; hash: string }>(`SELECT seq, hash FROM ${this.#t} WHERE seq < $1 ORDER BY seq DESC LIMIT 1`, [firstKept.seq])).rows[0]
          : (await c.query<{ seq: string; hash: string }>(`SELECT seq, hash FROM ${this.#t} ORDER BY seq DESC LIMIT 1`)).rows[0];
        if (!lastDeleted) return { deleted: 0 };
        const { rowCount } = await c.query(`DELETE FROM ${this.#t} WHERE seq <= $1`, [lastDeleted.seq]);
        const storeId = (await c.query<{ store_id: string }>(`SELECT store_id FROM ${this.#h} WHERE id = 1`)).rows[0]?.store_id ?? this.#storeId;
        const checkpoint = this.#anchorSigned ? await this.#signAndStore(c, 'retention', storeId, Number(lastDeleted.seq), lastDeleted.hash) : undefined;
        if (this.#anchorSigned) {
          await c.query(
            `INSERT INTO ${this.#a} (id, seq, prev_hash, checkpoint) VALUES (1, $1::bigint + 1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, prev_hash = excluded.prev_hash, checkpoint = excluded.checkpoint`,
            [lastDeleted.seq, lastDeleted.hash, checkpoint ?? null],
          );
        } else {
          await c.query(
            `INSERT INTO ${this.#a} (id, seq, prev_hash) VALUES (1, $1::bigint + 1, $2)
             ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, prev_hash = excluded.prev_hash`,
            [lastDeleted.seq, lastDeleted.hash],
          );
        }
        // Checkpoints of deleted events can no longer be checked; the retention one stays.
        await c.query(`DELETE FROM ${this.#c} WHERE seq < $1`, [lastDeleted.seq]);
        return { deleted: rowCount ?? 0, checkpoint };
      });
    } catch (err) {
      throw this.#unavailable('the PostgreSQL audit store could not prune old events', err);
    }
    if (result.checkpoint !== undefined) this.#signed(result.checkpoint);
    return { deleted: result.deleted };
  }

  /** {@inheritDoc AuditStore.close} */
  close(): Promise<void> {
    this.#closePromise ??= this.#close();
    return this.#closePromise;
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    this.#closing = true;
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#immediate = undefined;
    // Commit what is queued (including what a running flush has not taken yet); deferred
    // events get one more try, then are dropped.
    this.#queue.retryDeferred();
    while (this.#flushing || this.#queue.ready) {
      if (!this.#flushing) this.#startFlush();
      await this.#flushing;
    }
    if (this.#schedule) {
      this.#schedule.stop();
      // The shutdown checkpoint: the head this replica leaves behind.
      if (this.#schedule.pending > 0) await this.checkpoint();
    }
    try {
      await this.#pool.end();
    } catch (err) {
      this.#logger.error({ err: this.#scrub(err) }, 'audit store close failed');
    }
    this.#closed = true;
  }

  #assertOpen(): void {
    if (this.#closed || this.#closing) throw closedError();
  }

  #scheduleFlush(): void {
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
        while (this.#queue.ready) await this.#flushOnce();
      } catch (err) {
        // #flushOnce settles every event itself; this is a bug guard, not a path.
        this.#logger.error({ err: this.#scrub(err) }, 'audit store flush failed unexpectedly');
      } finally {
        this.#flushing = undefined;
      }
    })();
  }

  /** Commits up to maxBatchSize queued events in one transaction and settles them. */
  async #flushOnce(): Promise<void> {
    const batch = this.#queue.take(this.#maxBatch);
    if (batch.length === 0) return;
    let events: AuditEvent[];
    let checkpoint: string | undefined;
    try {
      ({ events, checkpoint } = await this.#transaction((c) => this.#write(c, batch)));
    } catch (err) {
      if (err instanceof AbandonedBatch) {
        // Rolled back: the events of callers still waiting go again, in order.
        this.#queue.requeue(batch);
        return;
      }
      this.#stats.failedTransactions++;
      const cause = this.#scrub(err);
      this.#health.fail(`write failed: ${this.#describe(cause)}`, 'audit store write failed; failing requests closed', { err: cause, events: batch.length });
      this.#queue.failed(batch, () => new CFG_ERR_AUDIT_UNAVAILABLE('the PostgreSQL audit store could not commit the event', { cause }), this.#closing);
      return;
    }
    this.#stats.transactions++;
    this.#stats.events += events.length;
    this.#stats.maxBatchSize = Math.max(this.#stats.maxBatchSize, events.length);
    this.#health.recover('commit', { events: events.length });
    this.#schedule?.committed(events.length);
    this.#queue.committed(batch, events);
    if (checkpoint !== undefined) this.#signed(checkpoint);
  }

  /** Why an operation failed, for readiness: the timeout that expired, or the error's own text. */
  #describe(err: Error): string {
    return describePgError(err, this.#connectTimeoutMs, this.#queryTimeoutMs);
  }

  /**
   * Body of the write transaction: locks the table's chain, reads the counter, inserts the
   * batch after it, moves the counter on and, when due, signs a checkpoint of the new head.
   */
  async #write(c: pg.PoolClient, batch: readonly Pending[]): Promise<{ events: AuditEvent[]; checkpoint?: string | undefined }> {
    await c.query('SELECT pg_advisory_xact_lock($1::bigint)', [this.#lockKey]);
    // Read committed: this statement's snapshot is taken after the lock was granted, so it
    // sees every batch committed by whoever held the lock before. The last stored event
    // counts too when it is further than the counter: a replica of an older version (during
    // a rolling upgrade) appends without moving the counter.
    const head = (
      await c.query<{ store_id: string; seq: string; hash: string; tail_seq: string | null; tail_hash: string | null }>(
        `SELECT h.store_id, h.seq, h.hash, t.seq AS tail_seq, t.hash AS tail_hash FROM ${this.#h} h
         LEFT JOIN LATERAL (SELECT seq, hash FROM ${this.#t} ORDER BY seq DESC LIMIT 1) t ON true WHERE h.id = 1`,
      )
    ).rows[0];
    if (!head) throw new Error(`the counter row of ${headTableName(this.#table)} is missing (the store was tampered with); run audit verify`);
    const tailAhead = head.tail_seq !== null && Number(head.tail_seq) > Number(head.seq);
    let seq = tailAhead ? Number(head.tail_seq) : Number(head.seq);
    let prevHash = tailAhead ? (head.tail_hash as string) : head.hash;
    const cols: unknown[][] = Array.from({ length: 13 }, () => []);
    const out: AuditEvent[] = [];
    for (const { input } of batch) {
      seq++;
      // `input` was checked by toEventInput in append: serialised once, here.
      const body = joinEventJson(eventJsonParts(input), seq);
      const hash = hashEventBody(prevHash, body);
      const values = [
        seq,
        columnText(input.time),
        columnText(input.requestId),
        input.actor.kind,
        nullableColumn(input.actor.subject),
        columnText(input.action),
        nullableColumn(input.app),
        nullableColumn(input.commit),
        input.outcome,
        input.status,
        prevHash,
        hash,
        body,
      ];
      values.forEach((v, i) => cols[i]?.push(v));
      const event = withChainFields(input, seq, prevHash, hash);
      rememberEventJson(event, body);
      out.push(event);
      prevHash = hash;
    }
    await c.query(this.#insertSql, cols);
    await c.query(`UPDATE ${this.#h} SET seq = $1, hash = $2 WHERE id = 1`, [seq, prevHash]);
    const checkpoint = this.#schedule?.dueWith(batch.length) ? await this.#signAndStore(c, 'checkpoint', head.store_id, seq, prevHash) : undefined;
    // Last check before COMMIT (no timer can run between it and the COMMIT being sent): an
    // event whose request was already answered 503 must not be committed.
    if (this.#queue.abandoned(batch)) throw new AbandonedBatch();
    return { events: out, checkpoint };
  }

  /**
   * Runs `fn` in one transaction on one pooled connection; rolls back on failure. A
   * connection that broke or timed out is not rolled back (that would wait again) but
   * destroyed: the server rolls back when it sees the connection end.
   */
  async #transaction<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.#pool.connect();
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

  /** A CFG_ERR_AUDIT_UNAVAILABLE whose cause cannot reveal the connection string. */
  #unavailable(message: string, err: unknown): Error {
    return new CFG_ERR_AUDIT_UNAVAILABLE(message, { cause: this.#scrub(err) });
  }

  /** `err` itself when none of its text holds a credential, else a scrubbed copy. */
  #scrub(err: unknown): Error {
    return scrubError(err, this.#secrets);
  }
}

/** Thrown inside a write transaction to roll it back because a caller stopped waiting. */
class AbandonedBatch extends Error {
  constructor() {
    super('a caller stopped waiting; the batch is rolled back');
  }
}

function positiveMs(v: number, name: string): number {
  if (!Number.isInteger(v) || v < 1) throw new TypeError(`openPostgresAuditStore: ${name} must be an integer >= 1 (milliseconds)`);
  return v;
}
