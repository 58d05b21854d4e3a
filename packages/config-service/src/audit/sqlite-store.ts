/**
 * The default audit store: one SQLite file (SPEC §6), through better-sqlite3.
 *
 * Durability: `journal_mode = WAL` with `synchronous = FULL`, so a transaction is fsynced
 * to the WAL before `COMMIT` returns, and {@link AuditStore.append} resolves only after that.
 *
 * Group commit: `append` queues the event and schedules one flush after a short window
 * (`commitWindowMs`, default 2 ms); the flush writes every queued event (at most `maxBatchSize`) in ONE `BEGIN IMMEDIATE`
 * transaction, chaining them in call order, then settles all their promises. Requests that
 * arrive while a commit is being fsynced are queued and share the next one, so the cost
 * of an fsync is spread over every concurrent request. better-sqlite3 is synchronous: the
 * event loop waits for each commit's fsync.
 *
 * The chain tail (last `seq` and `hash`) is read inside each write transaction, so the
 * chain continues across restarts and stays correct even if another process appends to
 * the same file.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { CFG_ERR_AUDIT_UNAVAILABLE } from '../errors.js';
import { ChainVerifier, GENESIS_HASH, canonicalJson, hashEventBody, type CanonicalValue, type ChainAnchor } from './chain.js';
import { closedError, CommitQueue, emptyStats, StoreHealth, type Pending } from './commit-queue.js';
import { withChainFields } from './event.js';
import { DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT, parseInstant } from './query.js';
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
  VerifyResult,
} from './types.js';

export { DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT };

/** Options of {@link openSqliteAuditStore}. */
export interface SqliteAuditStoreOptions {
  /** Path of the database file; created (mode 0600, parent directories too) when missing. */
  path: string;
  /** Where operational messages go (write failures, recovery); pino fits. Default: none. */
  logger?: AuditLogger;
  /**
   * How long a write (or a probe) waits for another connection's lock before failing, in
   * milliseconds. better-sqlite3 waits synchronously: the event loop waits too, so keep it
   * within the commit wait of requests (`audit.commitTimeoutMs`, which the service passes).
   * Default 5000.
   */
  busyTimeoutMs?: number;
  /** Most events committed in one transaction; the rest wait for the next flush. Default 1000. */
  maxBatchSize?: number;
  /**
   * Group-commit window in milliseconds: the first queued event waits at most this long for
   * others to share its transaction. better-sqlite3 commits synchronously, so without a
   * window a commit would take only the events queued in the same event-loop turn (one,
   * under load), and every request would pay a full fsync. Default 2; 0 flushes on the
   * next turn (`setImmediate`).
   */
  commitWindowMs?: number;
}

/** Schema version kept in `PRAGMA user_version`: 2 added the retention anchor. */
const SCHEMA_VERSION = 2;


/*
 * One row per event. `event` holds the exact canonical JSON that was hashed (with `seq`),
 * the other columns copy the filterable fields so queries use indexes. Every secondary
 * index implicitly ends with the rowid (`seq`), so `WHERE app = ? AND seq < ? ORDER BY
 * seq DESC` is a range scan of one index.
 */
const SCHEMA_V1 = `
CREATE TABLE audit_events (
  seq           INTEGER PRIMARY KEY CHECK (seq > 0),
  time          TEXT    NOT NULL,
  request_id    TEXT    NOT NULL,
  actor_kind    TEXT    NOT NULL,
  actor_subject TEXT,
  action        TEXT    NOT NULL,
  app           TEXT,
  commit_id     TEXT,
  outcome       TEXT    NOT NULL,
  status        INTEGER NOT NULL,
  prev_hash     TEXT    NOT NULL,
  hash          TEXT    NOT NULL,
  event         TEXT    NOT NULL
) STRICT;
CREATE INDEX audit_events_time    ON audit_events (time);
CREATE INDEX audit_events_app     ON audit_events (app);
CREATE INDEX audit_events_actor   ON audit_events (actor_subject);
CREATE INDEX audit_events_action  ON audit_events (action);
CREATE INDEX audit_events_outcome ON audit_events (outcome);
CREATE INDEX audit_events_commit  ON audit_events (commit_id);
`;

/*
 * The retention anchor (one row at most): where the stored chain starts once `prune` has
 * deleted old events — the `seq` and `prev_hash` the oldest remaining event (or the next
 * event appended, when none remains) must carry. Absent: the chain starts at `seq` 1
 * after the genesis hash.
 */
const SCHEMA_V2 = `
CREATE TABLE audit_anchor (
  id        INTEGER PRIMARY KEY CHECK (id = 1),
  seq       INTEGER NOT NULL CHECK (seq > 0),
  prev_hash TEXT    NOT NULL
) STRICT;
`;



/**
 * Opens (creating or migrating when needed) the SQLite audit store at `opts.path`.
 *
 * Query order is newest first (descending `seq`); `nextCursor` is the base64url of the
 * last `seq` returned, and the next page holds the events with a lower `seq`. `since` is
 * inclusive and `until` exclusive (`since <= time < until`); both accept an ISO 8601 date
 * (`2025-01-31`, meaning UTC midnight) or date-time with `Z` or an offset.
 *
 * @throws CFG_ERR_AUDIT_UNAVAILABLE (503) when the file cannot be created, opened, put in
 *   WAL mode or migrated (`cause` set), or holds a newer schema than this version knows.
 */
export function openSqliteAuditStore(opts: SqliteAuditStoreOptions): SqliteAuditStore {
  return new SqliteAuditStore(opts);
}

/**
 * The SQLite {@link AuditStore}. Create it with {@link openSqliteAuditStore}.
 */
export class SqliteAuditStore implements AuditStore {
  readonly #db: Database.Database;
  readonly #logger: AuditLogger;
  readonly #maxBatch: number;
  readonly #stats: AuditStoreStats = emptyStats();
  readonly #health: StoreHealth;
  readonly #queue: CommitQueue;
  readonly #queryStatements = new Map<string, Database.Statement<unknown[], EventRow>>();
  readonly #tail: Database.Statement<[], { seq: number; hash: string }>;
  readonly #anchor: Database.Statement<[], { seq: number; prev_hash: string }>;
  readonly #insert: Database.Statement<unknown[]>;
  readonly #writeBatch: Database.Transaction<(batch: readonly Pending[]) => AuditEvent[]>;
  #timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  readonly #windowMs: number;
  #closed = false;
  /** True while close() commits what is queued (a failed deferred batch is then dropped). */
  #closing = false;

  /** Use {@link openSqliteAuditStore}. */
  constructor(opts: SqliteAuditStoreOptions) {
    this.#logger = opts.logger ?? SILENT;
    this.#health = new StoreHealth(this.#logger, 'sqlite');
    this.#queue = new CommitQueue(this.#stats, this.#logger, (ms) =>
      this.#health.fail(`an audit event was not committed within ${ms} ms`, 'audit store commit timed out; failing requests closed', { timeoutMs: ms }),
    );
    this.#maxBatch = opts.maxBatchSize ?? 1000;
    this.#windowMs = opts.commitWindowMs ?? 2;
    if (!Number.isInteger(this.#maxBatch) || this.#maxBatch < 1) {
      throw new TypeError('openSqliteAuditStore: maxBatchSize must be an integer >= 1');
    }
    let db: Database.Database | undefined;
    try {
      mkdirSync(dirname(opts.path), { recursive: true });
      // Create the file owner-only before SQLite does; its -wal and -shm files copy the mode.
      closeSync(openSync(opts.path, 'a', 0o600));
      db = new Database(opts.path, { timeout: opts.busyTimeoutMs ?? 5000 });
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new Error(`journal_mode is '${String(mode)}', WAL is required`);
      db.pragma('synchronous = FULL');
      migrate(db);
      this.#tail = db.prepare('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1');
      this.#anchor = db.prepare('SELECT seq, prev_hash FROM audit_anchor WHERE id = 1');
      this.#insert = db.prepare(
        `INSERT INTO audit_events (seq, time, request_id, actor_kind, actor_subject, action, app, commit_id,
           outcome, status, prev_hash, hash, event) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      this.#writeBatch = db.transaction((batch: readonly Pending[]) => this.#write(batch));
      const tail = this.#tail.get();
      this.#logger.info({ path: opts.path, lastSeq: tail?.seq ?? 0 }, 'audit store opened');
    } catch (err) {
      db?.close();
      throw new CFG_ERR_AUDIT_UNAVAILABLE(`cannot open the SQLite audit store at ${opts.path}`, { cause: err });
    }
    this.#db = db;
  }

  /** {@inheritDoc AuditStore.healthy} */
  get healthy(): boolean {
    return this.#health.healthy && !this.#closed;
  }

  /** {@inheritDoc AuditStore.health} */
  get health(): Readonly<AuditStoreHealth> {
    return this.#closed ? { healthy: false, reason: 'the audit store is closed' } : this.#health.snapshot;
  }

  /** {@inheritDoc AuditStore.stats} */
  get stats(): Readonly<AuditStoreStats> {
    return { ...this.#stats };
  }

  /**
   * {@inheritDoc AuditStore.append}
   * @throws (rejects) TypeError for a malformed event; CFG_ERR_AUDIT_UNAVAILABLE when the
   *   store is closed or the transaction holding the event fails (`cause` set).
   */
  append(event: AuditEventInput, options: AppendOptions = {}): Promise<AuditEvent> {
    if (this.#closed) return Promise.reject(closedError());
    return this.#queue.add(event, options.timeoutMs, () => this.#schedule());
  }

  /** {@inheritDoc AuditStore.appendEventually} */
  appendEventually(event: AuditEventInput): void {
    if (this.#closed) return;
    this.#queue.addDeferred(event, () => this.#schedule());
  }

  /**
   * {@inheritDoc AuditStore.probe}
   *
   * Synchronous underneath: it waits at most `busyTimeoutMs` for the write lock, so
   * `timeoutMs` is not enforced separately. A passing probe also lets deferred events be
   * tried again.
   */
  async probe(_timeoutMs: number): Promise<void> {
    if (this.#closed) return;
    this.#stats.probes++;
    try {
      this.#db.transaction(() => this.#tail.get()).immediate();
    } catch (err) {
      this.#stats.probeFailures++;
      this.#health.fail(`probe failed: ${(err as Error).message}`, 'audit store probe failed; failing requests closed', { err });
      return;
    }
    this.#health.recover('probe');
    this.#queue.retryDeferred();
    if (this.#queue.ready) this.#schedule();
  }

  /**
   * {@inheritDoc AuditStore.query}
   * @throws (rejects) CFG_ERR_INVALID_REQUEST for a bad `cursor`, `since`, `until` or
   *   `limit`; CFG_ERR_AUDIT_UNAVAILABLE when the database cannot be read or holds a
   *   malformed row.
   */
  async query(q: AuditQuery): Promise<AuditPage> {
    this.#assertOpen();
    const { sql, params, limit } = pageQuery(q, 'audit_events', () => '?');

    try {
      let stmt = this.#queryStatements.get(sql);
      if (!stmt) {
        stmt = this.#db.prepare<unknown[], EventRow>(sql);
        this.#queryStatements.set(sql, stmt);
      }
      return toPage(stmt.all(...params), limit);
    } catch (err) {
      throw new CFG_ERR_AUDIT_UNAVAILABLE('the SQLite audit store cannot be read', { cause: err });
    }
  }

  /**
   * {@inheritDoc AuditStore.verify}
   *
   * Besides the chain rules, checks that each row's `event` text is exactly the canonical
   * JSON that was hashed (`hash mismatch` otherwise), that it parses as an event
   * (`malformed event`) and that the indexed columns agree with it (`column mismatch`).
   * Reads the table in one pass; the event loop waits for it.
   * @throws (rejects) CFG_ERR_AUDIT_UNAVAILABLE when the database cannot be read.
   */
  async verify(): Promise<VerifyResult> {
    this.#assertOpen();
    try {
      // One read transaction: the anchor and the rows come from the same snapshot, even if
      // another process prunes meanwhile.
      return this.#db.transaction(() => {
        const v = new ChainVerifier(this.#chainStart());
        const stmt = this.#db.prepare<[], EventRow>('SELECT * FROM audit_events ORDER BY seq');
        for (const row of stmt.iterate()) {
          let event: AuditEvent;
          try {
            event = rowToEvent(row);
          } catch {
            v.fail(row.seq, 'malformed event');
            break;
          }
          if (!v.push(event, (e) => checkRow(row, e))) break;
        }
        return v.result();
      })();
    } catch (err) {
      throw new CFG_ERR_AUDIT_UNAVAILABLE('the SQLite audit store cannot be read', { cause: err });
    }
  }

  /**
   * {@inheritDoc AuditStore.prune}
   *
   * Runs in one `BEGIN IMMEDIATE` transaction (the deletion and the anchor commit
   * together); in-process appends wait for it, as they wait for any commit.
   */
  async prune(before: string): Promise<{ deleted: number }> {
    this.#assertOpen();
    const cutoff = parseInstant(before, 'before');
    try {
      return this.#db
        .transaction(() => {
          const firstKept = this.#db
            .prepare<[string], { seq: number }>('SELECT seq FROM audit_events WHERE time >= ? ORDER BY seq LIMIT 1')
            .get(cutoff);
          const lastDeleted = firstKept
            ? this.#db
                .prepare<[number], { seq: number; hash: string }>('SELECT seq, hash FROM audit_events WHERE seq < ? ORDER BY seq DESC LIMIT 1')
                .get(firstKept.seq)
            : this.#tail.get();
          if (!lastDeleted) return { deleted: 0 };
          const { changes } = this.#db.prepare('DELETE FROM audit_events WHERE seq <= ?').run(lastDeleted.seq);
          this.#db
            .prepare('INSERT INTO audit_anchor (id, seq, prev_hash) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, prev_hash = excluded.prev_hash')
            .run(lastDeleted.seq + 1, lastDeleted.hash);
          return { deleted: changes };
        })
        .immediate();
    } catch (err) {
      throw new CFG_ERR_AUDIT_UNAVAILABLE('the SQLite audit store could not prune old events', { cause: err });
    }
  }

  /** Where the stored chain starts: the retention anchor, else `seq` 1 after the genesis hash. */
  #chainStart(): ChainAnchor {
    const anchor = this.#anchor.get();
    return anchor ? { seq: anchor.seq, prevHash: anchor.prev_hash } : { seq: 1, prevHash: GENESIS_HASH };
  }

  /** {@inheritDoc AuditStore.close} */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#cancelTimer();
    this.#closing = true;
    this.#queue.retryDeferred();
    while (this.#queue.ready) this.#flushOnce();
    this.#closed = true;
    try {
      this.#db.close();
    } catch (err) {
      this.#logger.error({ err }, 'audit store close failed');
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw closedError();
  }

  #schedule(): void {
    if (this.#timer) return;
    const run = () => {
      this.#timer = undefined;
      this.#flushOnce();
      // Whatever exceeded maxBatchSize (or arrived meanwhile) goes in a later turn, so
      // other I/O runs in between.
      if (this.#queue.ready) this.#schedule();
    };
    // A full batch is not held back by the window.
    this.#timer = this.#windowMs > 0 && this.#queue.size < this.#maxBatch ? setTimeout(run, this.#windowMs) : setImmediate(run);
  }

  #cancelTimer(): void {
    if (this.#timer) {
      clearTimeout(this.#timer as NodeJS.Timeout);
      clearImmediate(this.#timer as NodeJS.Immediate);
    }
    this.#timer = undefined;
  }

  /** Commits up to maxBatchSize queued events in one transaction and settles them. */
  #flushOnce(): void {
    const batch = this.#queue.take(this.#maxBatch);
    if (batch.length === 0) return;
    let events: AuditEvent[];
    try {
      events = this.#writeBatch.immediate(batch);
    } catch (err) {
      this.#stats.failedTransactions++;
      this.#health.fail(`write failed: ${(err as Error).message}`, 'audit store write failed; failing requests closed', { err, events: batch.length });
      this.#queue.failed(batch, () => new CFG_ERR_AUDIT_UNAVAILABLE('the SQLite audit store could not commit the event', { cause: err }), this.#closing);
      return;
    }
    this.#stats.transactions++;
    this.#stats.events += events.length;
    this.#stats.maxBatchSize = Math.max(this.#stats.maxBatchSize, events.length);
    this.#health.recover('commit', { events: events.length });
    this.#queue.committed(batch, events);
  }

  /** Body of the write transaction: chains and inserts the batch after the stored tail. */
  #write(batch: readonly Pending[]): AuditEvent[] {
    const tail = this.#tail.get();
    // No event stored: continue after the last pruned event (the anchor), or from genesis.
    const start = tail ? undefined : this.#chainStart();
    let seq = tail ? tail.seq : (start?.seq ?? 1) - 1;
    let prevHash = tail ? tail.hash : (start?.prevHash ?? GENESIS_HASH);
    const out: AuditEvent[] = [];
    for (const { input } of batch) {
      seq++;
      // `input` was checked by toEventInput in append, so it is hashed as is.
      const body = canonicalJson({ ...(input as unknown as Record<string, CanonicalValue>), seq });
      const hash = hashEventBody(prevHash, body);
      this.#insert.run(
        seq,
        input.time,
        input.requestId,
        input.actor.kind,
        input.actor.subject ?? null,
        input.action,
        input.app ?? null,
        input.commit ?? null,
        input.outcome,
        input.status,
        prevHash,
        hash,
        body,
      );
      out.push(withChainFields(input, seq, prevHash, hash));
      prevHash = hash;
    }
    return out;
  }
}

function migrate(db: Database.Database): void {
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true });
    if (typeof version !== 'number' || version > SCHEMA_VERSION) {
      throw new Error(`the database has schema version ${String(version)}; this build knows up to ${SCHEMA_VERSION}`);
    }
    if (version < 1) db.exec(SCHEMA_V1);
    if (version < 2) db.exec(SCHEMA_V2);
    if (version < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

