/**
 * What the SQLite and PostgreSQL audit stores share around their write transactions, in
 * one place: taking events into the group-commit queue (`append`, `appendEventually`),
 * health and counters, the readiness probe's bookkeeping, settling a committed or failed
 * batch, and handing signed checkpoints to the schedule's listener, over the queue and
 * health state of `commit-queue.ts`. A store adds how it writes a batch (`scheduleFlush`),
 * what its probe does (`probeWrite`), how it reads and how it closes.
 */
import { CFG_ERR_AUDIT_UNAVAILABLE } from '../errors.js';
import { storedCheckpoint, type Checkpoint } from './checkpoint.js';
import type { CheckpointSchedule } from './checkpoint-schedule.js';
import { closedError, CommitQueue, emptyStats, StoreHealth, withDeadline, type Pending } from './commit-queue.js';
import type { AppendOptions, AuditEvent, AuditEventInput, AuditLogger, AuditStoreHealth, AuditStoreStats } from './types.js';

/** A failure as health and errors show it: the error to log and attach, and its reason text. */
export interface ExplainedFailure {
  /** The error to log and to give as `cause` (for PostgreSQL: scrubbed of credentials). */
  cause: unknown;
  /** Why it failed, in words, for readiness (`write failed: <reason>`). */
  reason: string;
}

/**
 * The base of both {@link AuditStore} implementations: the public members that do not
 * depend on the database, and the bookkeeping a store's flush calls.
 */
export abstract class GroupCommitStore {
  protected readonly logger: AuditLogger;
  /** The counters {@link stats} copies, updated in place. */
  protected readonly counters: AuditStoreStats = emptyStats();
  protected readonly storeHealth: StoreHealth;
  protected readonly queue: CommitQueue;
  /** How error messages name the store (`SQLite`, `PostgreSQL`). */
  readonly #label: string;
  /** Signed checkpoints; set by the store's constructor when `checkpoints` are configured. */
  protected schedule: CheckpointSchedule | undefined;
  /** True from the start of `close()`: no new events are taken (a failed deferred batch is then dropped). */
  protected closing = false;
  /** True once the store is closed (or failed to open). */
  protected closed = false;

  /**
   * @param logger where health changes go
   * @param kind how log lines name the store (`sqlite`, `postgres`)
   * @param label how error messages name the store (`SQLite`, `PostgreSQL`)
   */
  protected constructor(logger: AuditLogger, kind: string, label: string) {
    this.logger = logger;
    this.#label = label;
    this.storeHealth = new StoreHealth(logger, kind);
    this.queue = new CommitQueue(this.counters, logger, (ms, inDoubt) => this.commitTimedOut(ms, inDoubt));
  }

  /** {@inheritDoc AuditStore.healthy} */
  get healthy(): boolean {
    return this.storeHealth.healthy && !this.closed && !this.closing;
  }

  /** {@inheritDoc AuditStore.health} */
  get health(): Readonly<AuditStoreHealth> {
    return this.closed || this.closing ? { healthy: false, reason: 'the audit store is closed' } : this.storeHealth.snapshot;
  }

  /** {@inheritDoc AuditStore.stats} */
  get stats(): Readonly<AuditStoreStats> {
    return { ...this.counters };
  }

  /**
   * {@inheritDoc AuditStore.append}
   * @throws (rejects) TypeError for a malformed event; CFG_ERR_AUDIT_UNAVAILABLE when the
   *   store is closed or the transaction holding the event fails (`cause` set).
   */
  append(event: AuditEventInput, options: AppendOptions = {}): Promise<AuditEvent> {
    if (this.closed || this.closing) return Promise.reject(closedError());
    return this.queue.add(event, options.timeoutMs, () => this.scheduleFlush());
  }

  /** {@inheritDoc AuditStore.appendEventually} */
  appendEventually(event: AuditEventInput): void {
    if (this.closed || this.closing) return;
    this.queue.addDeferred(event, () => this.scheduleFlush());
  }

  /**
   * {@inheritDoc AuditStore.probe}
   *
   * Runs the store's {@link probeWrite}, bounded as a whole by `timeoutMs`. A failure
   * marks the store unhealthy (`probe failed: <reason>`); a pass makes it healthy again
   * and lets deferred events be tried again. Never rejects.
   */
  async probe(timeoutMs: number): Promise<void> {
    if (this.closed || this.closing) return;
    this.counters.probes++;
    try {
      await withDeadline(this.probeWrite(), timeoutMs, `the probe did not finish within ${timeoutMs} ms`);
    } catch (err) {
      this.counters.probeFailures++;
      const { cause, reason } = this.explain(err);
      this.storeHealth.fail(`probe failed: ${reason}`, 'audit store probe failed; failing requests closed', { err: cause });
      return;
    }
    this.storeHealth.recover('probe');
    this.queue.retryDeferred();
    if (this.queue.ready) this.scheduleFlush();
  }

  /** Starts committing what is queued, now or soon (the store's group-commit policy). */
  protected abstract scheduleFlush(): void;

  /** What the probe checks: that a write transaction could run now. Rejects when not. */
  protected abstract probeWrite(): Promise<void>;

  /**
   * Called when a caller stopped waiting for its event's commit (`inDoubt`: its
   * transaction was in flight): the store turns unhealthy.
   */
  protected commitTimedOut(timeoutMs: number, _inDoubt: boolean): void {
    this.storeHealth.fail(`an audit event was not committed within ${timeoutMs} ms`, 'audit store commit timed out; failing requests closed', { timeoutMs });
  }

  /** How a failure is logged and shown; by default the error itself and its message. */
  protected explain(err: unknown): ExplainedFailure {
    return { cause: err, reason: (err as Error).message };
  }

  /** @throws CFG_ERR_AUDIT_UNAVAILABLE when the store is closed or closing. */
  protected assertOpen(): void {
    if (this.closed || this.closing) throw closedError();
  }

  /** Records a checkpoint that was committed and tells the listener; returns it. */
  protected signed(json: string): Checkpoint {
    const cp = storedCheckpoint(json);
    this.schedule?.signed(cp, json);
    return cp;
  }

  /**
   * Settles a committed batch: counts it, marks the store healthy, counts its events
   * towards the next checkpoint, resolves the callers (`events[i]` is the stored
   * `batch[i]`) and hands on the checkpoint signed in the same transaction, if any.
   */
  protected settleCommitted(batch: readonly Pending[], events: readonly AuditEvent[], checkpoint: string | undefined): void {
    this.counters.transactions++;
    this.counters.events += events.length;
    this.counters.maxBatchSize = Math.max(this.counters.maxBatchSize, events.length);
    this.storeHealth.recover('commit', { events: events.length });
    this.schedule?.committed(events.length);
    this.queue.committed(batch, events);
    if (checkpoint !== undefined) this.signed(checkpoint);
  }

  /**
   * Settles a batch whose transaction failed: counts it, marks the store unhealthy
   * (`write failed: <reason>`), rejects the callers with CFG_ERR_AUDIT_UNAVAILABLE (`cause`
   * set) and puts deferred events back (dropped when closing).
   */
  protected settleFailed(batch: readonly Pending[], err: unknown): void {
    this.counters.failedTransactions++;
    const { cause, reason } = this.explain(err);
    this.storeHealth.fail(`write failed: ${reason}`, 'audit store write failed; failing requests closed', { err: cause, events: batch.length });
    this.queue.failed(batch, () => new CFG_ERR_AUDIT_UNAVAILABLE(`the ${this.#label} audit store could not commit the event`, { cause }), this.closing);
  }
}
