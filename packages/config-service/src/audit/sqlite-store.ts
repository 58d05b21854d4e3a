/**
 * The default audit store: one SQLite file (SPEC §6), through better-sqlite3.
 *
 * Durability: `journal_mode = WAL` with `synchronous = FULL`, so a transaction is fsynced
 * to the WAL before `COMMIT` returns, and {@link AuditStore.append} resolves only after that.
 *
 * Off the event loop (issue 9): a writer thread (`sqlite-writer.ts`) owns the write
 * connection. `append` checks and serialises the event here, once (`event-json.ts`), and
 * queues it; one batch at a time goes to the writer, which commits it in ONE `BEGIN
 * IMMEDIATE` transaction and answers with the hashes. Events that arrive while a batch is
 * being committed wait and share the next one (group commit), so the cost of an fsync is
 * spread over every concurrent request, and the event loop never waits for it. When idle,
 * the first event waits at most `commitWindowMs` for others to join it.
 *
 * Reads (queries, `examine`/`verify`, checkpoints) use connections of their own on this
 * thread (WAL lets them read while the writer writes): a query reads one page;
 * verification reads one snapshot a page at a time and yields between pages.
 *
 * The counter (`audit_head`) is read and moved inside each write transaction, so the
 * chain continues across restarts, numbers are never given twice (deleting rows does not
 * roll the counter back), and the chain stays one chain when several threads or processes
 * append to the same file.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { CFG_ERR_AUDIT_UNAVAILABLE } from '../errors.js';
import { ChainVerifier, GENESIS_HASH, type ChainAnchor } from './chain.js';
import { storedCheckpoint, type Checkpoint } from './checkpoint.js';
import { CheckpointSchedule, type StoreCheckpointOptions } from './checkpoint-schedule.js';
import type { Pending } from './commit-queue.js';
import { withChainFields } from './event.js';
import { eventJsonParts, joinEventJson, rememberEventJson } from './event-json.js';
import { GroupCommitStore } from './group-commit-store.js';
import { DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT, parseAfter, parseInstant, parseLimit } from './query.js';
import { finishExamination, pageQuery, pushRow, SILENT, toPage, type EventRow } from './rows.js';
import { migrate, SELECT_ANCHOR, SELECT_HEAD, type AnchorRow, type HeadRow } from './sqlite-schema.js';
import {
  BATCH_ABANDONED,
  BATCH_IDLE,
  BATCH_WRITING,
  type WireEvent,
  type WriterRequest,
  type WriterResult,
} from './sqlite-protocol.js';
import { WriterClient } from './sqlite-writer-client.js';
import type {
  AuditLogger,
  AuditPage,
  AuditQuery,
  AuditStore,
  ChainExamination,
  CheckpointQuery,
  ExamineOptions,
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
   * milliseconds (the writer thread waits, not the event loop). Keep it within the commit
   * wait of requests (`audit.commitTimeoutMs`, which the service passes). Default 5000.
   */
  busyTimeoutMs?: number;
  /** Most events committed in one transaction; the rest wait for the next batch. Default 1000. */
  maxBatchSize?: number;
  /**
   * Group-commit window in milliseconds: when no batch is being committed, the first
   * queued event waits at most this long for others to share its transaction (while a
   * batch is being committed, new events wait for it anyway). Default 0: the next turn of
   * the event loop (`setImmediate`), so events queued in the same turn share a batch.
   */
  commitWindowMs?: number;
  /** Signed checkpoints (issue 13); absent: none are signed and retention anchors are unsigned. */
  checkpoints?: StoreCheckpointOptions;
}

/**
 * Opens (creating or migrating when needed) the SQLite audit store at `opts.path`. The
 * writer thread starts with the first write.
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

/** Page size of a verification read. */
const VERIFY_PAGE = 1000;

/**
 * The SQLite {@link AuditStore}. Create it with {@link openSqliteAuditStore}.
 */
export class SqliteAuditStore extends GroupCommitStore implements AuditStore {
  readonly #path: string;
  readonly #busyTimeoutMs: number;
  /** The read connection (queries, checkpoints); the writer thread has its own. */
  readonly #db: Database.Database;
  readonly #storeId: string;
  readonly #maxBatch: number;
  readonly #queryStatements = new Map<string, Database.Statement<unknown[], EventRow>>();
  readonly #windowMs: number;
  /** The state word of the batch in flight, shared with the writer. */
  readonly #flagBuffer = new SharedArrayBuffer(4);
  readonly #flag = new Int32Array(this.#flagBuffer);
  readonly #writerClient: WriterClient;
  #timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  /** The batch being committed, if any (one at a time). */
  #writing: Promise<void> | undefined;
  #closePromise: Promise<void> | undefined;

  /** Use {@link openSqliteAuditStore}. */
  constructor(opts: SqliteAuditStoreOptions) {
    super(opts.logger ?? SILENT, 'sqlite', 'SQLite');
    this.#path = opts.path;
    this.#busyTimeoutMs = opts.busyTimeoutMs ?? 5000;
    this.#maxBatch = opts.maxBatchSize ?? 1000;
    this.#windowMs = opts.commitWindowMs ?? 0;
    if (!Number.isInteger(this.#maxBatch) || this.#maxBatch < 1) {
      throw new TypeError('openSqliteAuditStore: maxBatchSize must be an integer >= 1');
    }
    let db: Database.Database | undefined;
    let head: HeadRow | undefined;
    try {
      mkdirSync(dirname(opts.path), { recursive: true });
      // Create the file owner-only before SQLite does; its -wal and -shm files copy the mode.
      closeSync(openSync(opts.path, 'a', 0o600));
      db = new Database(opts.path, { timeout: this.#busyTimeoutMs });
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new Error(`journal_mode is '${String(mode)}', WAL is required`);
      migrate(db);
      head = db.prepare<[], HeadRow>(SELECT_HEAD).get();
      if (!head) throw new Error('the audit_head row is missing (the store was tampered with); run audit verify');
    } catch (err) {
      db?.close();
      throw new CFG_ERR_AUDIT_UNAVAILABLE(`cannot open the SQLite audit store at ${opts.path}`, { cause: err });
    }
    this.#db = db;
    this.#storeId = head.store_id;
    this.schedule = opts.checkpoints ? new CheckpointSchedule(opts.checkpoints, this.logger, () => void this.checkpoint()) : undefined;
    this.#writerClient = new WriterClient(
      {
        path: this.#path,
        busyTimeoutMs: this.#busyTimeoutMs,
        flag: this.#flagBuffer,
        writerId: this.schedule?.writerId ?? '',
        ...(this.schedule && { signer: this.schedule.signer }),
      },
      this.logger,
    );
    this.logger.info({ path: opts.path, lastSeq: head.seq }, 'audit store opened');
  }

  /** {@inheritDoc AuditStore.storeId} */
  async storeId(): Promise<string> {
    return this.#storeId;
  }

  /**
   * What {@link GroupCommitStore.probe} checks: the writer thread takes the write lock
   * (waiting at most `busyTimeoutMs` for it) and releases it.
   */
  protected async probeWrite(): Promise<void> {
    await this.#send({ op: 'probe', id: 0 });
  }

  /** A caller of the batch in flight gave up: the writer rolls it back unless it is already committing. */
  protected override commitTimedOut(timeoutMs: number, inDoubt: boolean): void {
    if (inDoubt) Atomics.compareExchange(this.#flag, 0, BATCH_WRITING, BATCH_ABANDONED);
    super.commitTimedOut(timeoutMs, inDoubt);
  }

  /**
   * {@inheritDoc AuditStore.query}
   * @throws (rejects) CFG_ERR_INVALID_REQUEST for a bad `cursor`, `since`, `until` or
   *   `limit`; CFG_ERR_AUDIT_UNAVAILABLE when the database cannot be read or holds a
   *   malformed row.
   */
  async query(q: AuditQuery): Promise<AuditPage> {
    this.assertOpen();
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
   * (`malformed event`), that the indexed columns agree with it (`column mismatch`), and
   * that the counter is the last stored event (`missing events`, `counter mismatch`).
   * @throws (rejects) CFG_ERR_AUDIT_UNAVAILABLE when the database cannot be read.
   */
  async verify(): Promise<VerifyResult> {
    const { ok, checked, firstBreak } = await this.examine();
    return firstBreak ? { ok, checked, firstBreak } : { ok, checked };
  }

  /**
   * {@inheritDoc AuditStore.examine}
   *
   * Reads one snapshot (a read transaction on a connection of its own) a page of
   * {@link VERIFY_PAGE} rows at a time, yielding to the event loop between pages.
   */
  async examine(opts: ExamineOptions = {}): Promise<ChainExamination> {
    this.assertOpen();
    let db: Database.Database | undefined;
    try {
      db = new Database(this.#path, { readonly: true, timeout: this.#busyTimeoutMs });
      db.exec('BEGIN');
      const head = db.prepare<[], HeadRow>(SELECT_HEAD).get();
      const anchor = db.prepare<[], AnchorRow>(SELECT_ANCHOR).get();
      const start: ChainAnchor = anchor ? { seq: anchor.seq, prevHash: anchor.prev_hash } : { seq: 1, prevHash: GENESIS_HASH };
      const v = new ChainVerifier(start, opts.expect);
      const page = db.prepare<[number], EventRow>(`SELECT * FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ${VERIFY_PAGE}`);
      let after = 0;
      for (;;) {
        const rows = page.all(after);
        for (const row of rows) if (!pushRow(v, row)) break;
        const last = rows[rows.length - 1];
        if (v.broken || rows.length < VERIFY_PAGE || !last) break;
        after = last.seq;
        await yieldToLoop();
      }
      const examination = finishExamination(v, {
        storeId: head?.store_id ?? this.#storeId,
        start,
        head: head && { seq: head.seq, hash: head.hash },
        anchor: anchor && { seq: anchor.seq, prevHash: anchor.prev_hash, checkpoint: anchor.checkpoint },
      });
      db.exec('COMMIT');
      return examination;
    } catch (err) {
      throw new CFG_ERR_AUDIT_UNAVAILABLE('the SQLite audit store cannot be read', { cause: err });
    } finally {
      db?.close();
    }
  }

  /** {@inheritDoc AuditStore.checkpoints} */
  async checkpoints(q: CheckpointQuery = {}): Promise<Checkpoint[]> {
    this.assertOpen();
    const after = parseAfter(q.after);
    const limit = parseLimit(q.limit);
    let rows: { checkpoint: string }[];
    try {
      rows = this.#db.prepare<[number, number], { checkpoint: string }>('SELECT checkpoint FROM audit_checkpoints WHERE seq > ? ORDER BY seq, id LIMIT ?').all(after, limit);
    } catch (err) {
      throw new CFG_ERR_AUDIT_UNAVAILABLE('the SQLite audit store cannot be read', { cause: err });
    }
    return rows.map((r) => storedCheckpoint(r.checkpoint));
  }

  /** {@inheritDoc AuditStore.checkpoint} */
  async checkpoint(force = false): Promise<Checkpoint | undefined> {
    const schedule = this.schedule;
    if (!schedule || this.closed || (!force && schedule.pending === 0)) return undefined;
    try {
      const r = await this.#send({ op: 'checkpoint', id: 0 });
      if (r.op !== 'checkpoint' || r.checkpoint === undefined) return undefined;
      return this.signed(r.checkpoint);
    } catch (err) {
      this.logger.warn({ err }, 'audit checkpoint could not be written; retrying at the next interval');
      return undefined;
    }
  }

  /**
   * {@inheritDoc AuditStore.prune}
   *
   * Runs in the writer thread, in one `BEGIN IMMEDIATE` transaction (the deletion, the
   * signed retention checkpoint and the anchor commit together); appends wait for it.
   */
  async prune(before: string): Promise<{ deleted: number }> {
    this.assertOpen();
    const cutoff = parseInstant(before, 'before');
    let r: WriterResult;
    try {
      r = await this.#send({ op: 'prune', id: 0, cutoff });
    } catch (err) {
      throw new CFG_ERR_AUDIT_UNAVAILABLE('the SQLite audit store could not prune old events', { cause: err });
    }
    if (r.op !== 'prune') return { deleted: 0 };
    if (r.checkpoint !== undefined) this.signed(r.checkpoint);
    return { deleted: r.deleted };
  }

  /** {@inheritDoc AuditStore.close} */
  close(): Promise<void> {
    this.#closePromise ??= this.#close();
    return this.#closePromise;
  }

  async #close(): Promise<void> {
    this.closing = true;
    this.#cancelTimer();
    this.queue.retryDeferred();
    while (this.#writing || this.queue.ready) {
      if (!this.#writing) this.#startBatch();
      await this.#writing;
    }
    if (this.schedule) {
      this.schedule.stop();
      if (this.schedule.pending > 0) {
        try {
          const r = await this.#send({ op: 'checkpoint', id: 0 });
          if (r.op === 'checkpoint' && r.checkpoint !== undefined) this.signed(r.checkpoint);
        } catch (err) {
          this.logger.warn({ err }, 'audit checkpoint at close could not be written');
        }
      }
    }
    await this.#writerClient.close();
    this.closed = true;
    try {
      this.#db.close();
    } catch (err) {
      this.logger.error({ err }, 'audit store close failed');
    }
  }

  /** Sends one request to the writer thread (starting it when needed); resolves with its answer. */
  #send(req: WriterRequest): Promise<WriterResult> {
    return this.#writerClient.send(req);
  }

  /** Commits the queue at the next turn of the event loop, or after `commitWindowMs` when set. */
  protected scheduleFlush(): void {
    if (this.#timer || this.#writing) return;
    const run = (): void => {
      this.#timer = undefined;
      if (!this.#writing) this.#startBatch();
    };
    // A full batch is not held back by the window.
    this.#timer = this.#windowMs > 0 && this.queue.size < this.#maxBatch ? setTimeout(run, this.#windowMs) : setImmediate(run);
  }

  #cancelTimer(): void {
    if (this.#timer) {
      clearTimeout(this.#timer as NodeJS.Timeout);
      clearImmediate(this.#timer as NodeJS.Immediate);
    }
    this.#timer = undefined;
  }

  /** Sends the next batch to the writer; when it is answered, the following one (events that queued meanwhile). */
  #startBatch(): void {
    const batch = this.queue.take(this.#maxBatch);
    if (batch.length === 0) return;
    this.#writing = this.#commit(batch).finally(() => {
      this.#writing = undefined;
      if (this.queue.ready && !this.closing) this.#startBatch();
    });
  }

  /** Commits one batch in the writer and settles its events. Never rejects. */
  async #commit(batch: readonly Pending[]): Promise<void> {
    const parts = batch.map((p) => eventJsonParts(p.input));
    const events: WireEvent[] = batch.map(({ input }, i) => {
      const part = parts[i]!;
      return [
        part.head,
        part.tail,
        input.time,
        input.requestId,
        input.actor.kind,
        input.actor.subject ?? null,
        input.action,
        input.app ?? null,
        input.commit ?? null,
        input.outcome,
        input.status,
      ];
    });
    const checkpoint = this.schedule?.dueWith(batch.length) ?? false;
    Atomics.store(this.#flag, 0, BATCH_WRITING);
    let reply: WriterResult;
    try {
      reply = await this.#send({ op: 'write', id: 0, events, checkpoint });
    } catch (err) {
      this.settleFailed(batch, err);
      return;
    } finally {
      Atomics.store(this.#flag, 0, BATCH_IDLE);
    }
    if (reply.op !== 'write') return;
    const result = reply.result;
    if ('abandoned' in result) {
      // Rolled back: the events of callers still waiting go again, in order.
      this.queue.requeue(batch);
      return;
    }
    let prev = result.prevHash;
    const stored = batch.map(({ input }, i) => {
      const seq = result.firstSeq + i;
      const hash = result.hashes[i]!;
      const event = withChainFields(input, seq, prev, hash);
      rememberEventJson(event, joinEventJson(parts[i]!, seq));
      prev = hash;
      return event;
    });
    this.settleCommitted(batch, stored, result.checkpoint);
  }
}
