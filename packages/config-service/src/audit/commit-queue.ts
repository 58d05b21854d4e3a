/**
 * What both audit stores share around their write transactions: the group-commit queue
 * (with bounded waits and deferred events) and the health state readiness shows.
 *
 * An event waits in the queue until a flush takes it into a transaction (`writing`), then
 * is settled by that transaction's outcome. A caller that stops waiting (`timeoutMs`)
 * withdraws a queued event — it is never written. Once its transaction is in flight, a
 * store that has not sent `COMMIT` yet rolls the transaction back instead ({@link
 * CommitQueue.abandoned}, {@link CommitQueue.requeue}); only a timeout during the `COMMIT`
 * round trip itself leaves the event in doubt: the database may have committed it (the
 * acknowledgement was lost), and nothing here can take it back. Deferred events (`appendEventually`) have no caller:
 * they are written in transactions of their own and put back after a failure.
 */
import { CFG_ERR_AUDIT_UNAVAILABLE, withData } from '../errors.js';
import { toEventInput } from './event.js';
import type { AuditEvent, AuditEventInput, AuditLogger, AuditStoreHealth, AuditStoreStats } from './types.js';

/** Most deferred events kept in memory; more are dropped and counted. */
export const MAX_DEFERRED_EVENTS = 10_000;

/** One queued event. */
export interface Pending {
  input: AuditEventInput;
  /** `queued` until a flush takes it, `writing` while its transaction runs, `settled` once its caller has an answer. */
  state: 'queued' | 'writing' | 'settled';
  /** Settlers of the caller's promise; absent for deferred events. */
  resolve?: (event: AuditEvent) => void;
  reject?: (err: Error) => void;
  timer?: NodeJS.Timeout;
}

/** A fresh set of counters. */
export function emptyStats(): AuditStoreStats {
  return {
    transactions: 0,
    failedTransactions: 0,
    events: 0,
    maxBatchSize: 0,
    commitTimeouts: 0,
    inDoubt: 0,
    probes: 0,
    probeFailures: 0,
    deferredPending: 0,
    deferredDropped: 0,
  };
}

/**
 * The events waiting for a commit, in call order: events whose caller waits (requests),
 * and deferred events, kept apart so that a deferred event can never hold a request back.
 */
export class CommitQueue {
  readonly #requests: Pending[] = [];
  readonly #deferred: Pending[] = [];
  readonly #stats: AuditStoreStats;
  readonly #logger: AuditLogger;
  readonly #onTimeout: (timeoutMs: number, inDoubt: boolean) => void;
  /** False after a deferred batch failed, until a commit or probe succeeds (no busy retry). */
  #deferredReady = true;

  /**
   * @param stats the store's counters (updated in place)
   * @param onTimeout called when a caller stops waiting: the store turns unhealthy
   */
  constructor(stats: AuditStoreStats, logger: AuditLogger, onTimeout: (timeoutMs: number, inDoubt: boolean) => void) {
    this.#stats = stats;
    this.#logger = logger;
    this.#onTimeout = onTimeout;
  }

  /** True when a flush has something to take now. */
  get ready(): boolean {
    return this.#requests.length > 0 || (this.#deferredReady && this.#deferred.length > 0);
  }

  /** Events queued, of both kinds. */
  get size(): number {
    return this.#requests.length + this.#deferred.length;
  }

  /** Lets deferred events be tried again (after a successful commit or probe). */
  retryDeferred(): void {
    this.#deferredReady = true;
  }

  /**
   * Validates `event` and queues it; the promise settles when its transaction commits or
   * fails, or rejects when `timeoutMs` passes first (see `AppendOptions`).
   * @throws (rejects) TypeError for a malformed event (nothing is queued)
   */
  add(event: AuditEventInput, timeoutMs: number | undefined, schedule: () => void): Promise<AuditEvent> {
    let input: AuditEventInput;
    try {
      input = toEventInput(event);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return new Promise<AuditEvent>((resolve, reject) => {
      const p: Pending = { input, state: 'queued', resolve, reject };
      if (timeoutMs !== undefined) {
        p.timer = setTimeout(() => this.#timeout(p, timeoutMs), timeoutMs);
      }
      this.#requests.push(p);
      schedule();
    });
  }

  /**
   * Validates `event` and queues it as a deferred event.
   * @throws TypeError for a malformed event
   */
  addDeferred(event: AuditEventInput, schedule: () => void): void {
    const input = toEventInput(event);
    if (this.#deferred.length >= MAX_DEFERRED_EVENTS) {
      this.#stats.deferredDropped++;
      this.#logger.error({ requestId: input.requestId, limit: MAX_DEFERRED_EVENTS }, 'audit store: too many deferred events waiting; this one is dropped');
      return;
    }
    this.#deferred.push({ input, state: 'queued' });
    this.#stats.deferredPending = this.#deferred.length;
    schedule();
  }

  /**
   * Takes the next batch (at most `max` events) and marks it `writing`: the waiting
   * requests first; deferred events only when no request waits, in a batch of their own.
   */
  take(max: number): Pending[] {
    const source = this.#requests.length > 0 ? this.#requests : this.#deferredReady ? this.#deferred : [];
    const batch = source.splice(0, max);
    for (const p of batch) p.state = 'writing';
    this.#stats.deferredPending = this.#deferred.length;
    return batch;
  }

  /** Settles a committed batch: `events[i]` is the stored `batch[i]`. */
  committed(batch: readonly Pending[], events: readonly AuditEvent[]): void {
    this.#deferredReady = true;
    batch.forEach((p, i) => {
      clearTimeout(p.timer);
      if (p.state === 'writing') p.resolve?.(events[i] as AuditEvent);
      p.state = 'settled';
    });
  }

  /**
   * Settles a failed batch: callers get `error()`; deferred events go back to the head of
   * their queue (in order) unless `dropDeferred`, and wait for the next success.
   */
  failed(batch: readonly Pending[], error: () => Error, dropDeferred = false): void {
    const back: Pending[] = [];
    for (const p of batch) {
      clearTimeout(p.timer);
      if (!p.reject) {
        p.state = 'queued';
        back.push(p);
        continue;
      }
      if (p.state === 'writing') p.reject(error());
      p.state = 'settled';
    }
    if (back.length === 0) return;
    if (dropDeferred) {
      this.#stats.deferredDropped += back.length;
      this.#logger.error({ events: back.length }, 'audit store: deferred events could not be committed before closing; dropped');
      return;
    }
    this.#deferredReady = false;
    this.#deferred.unshift(...back);
    this.#stats.deferredPending = this.#deferred.length;
  }

  /**
   * True when a caller of `batch` stopped waiting while it was being written: its event
   * must not be committed (the store rolls the transaction back and calls {@link requeue}).
   */
  abandoned(batch: readonly Pending[]): boolean {
    return batch.some((p) => p.state === 'settled');
  }

  /**
   * Puts the events of a rolled-back batch whose callers still wait back at the head of
   * the queue, in order; the abandoned ones are dropped (never written).
   */
  requeue(batch: readonly Pending[]): void {
    const back = batch.filter((p) => p.state === 'writing');
    for (const p of back) p.state = 'queued';
    const requests = back.filter((p) => p.reject);
    const deferred = back.filter((p) => !p.reject);
    this.#requests.unshift(...requests);
    this.#deferred.unshift(...deferred);
    this.#stats.deferredPending = this.#deferred.length;
  }

  /** Deferred events still queued (used when closing), removed from the queue. */
  drainDeferred(): Pending[] {
    const all = this.#deferred.splice(0);
    this.#stats.deferredPending = 0;
    return all;
  }

  #timeout(p: Pending, timeoutMs: number): void {
    if (p.state === 'settled') return;
    const inDoubt = p.state === 'writing';
    if (!inDoubt) {
      const i = this.#requests.indexOf(p);
      if (i >= 0) this.#requests.splice(i, 1);
    }
    p.state = 'settled';
    this.#stats.commitTimeouts++;
    if (inDoubt) this.#stats.inDoubt++;
    const message = inDoubt
      ? `the audit event was not committed within ${timeoutMs} ms (its transaction was in flight and may still commit)`
      : `the audit event was not committed within ${timeoutMs} ms (it was withdrawn, never written)`;
    p.reject?.(withData(new CFG_ERR_AUDIT_UNAVAILABLE(message), { timedOut: true, inDoubt }));
    this.#onTimeout(timeoutMs, inDoubt);
  }
}

/**
 * Healthy or not, why, and since when; logs each change once (error when it turns
 * unhealthy, info when it recovers).
 */
export class StoreHealth {
  readonly #logger: AuditLogger;
  readonly #store: string;
  #reason: string | undefined;
  #since: Date | undefined;

  /** @param store how log lines name the store (`sqlite`, `postgres`) */
  constructor(logger: AuditLogger, store: string) {
    this.#logger = logger;
    this.#store = store;
  }

  get healthy(): boolean {
    return this.#reason === undefined;
  }

  /** The snapshot readiness shows. */
  get snapshot(): AuditStoreHealth {
    return this.#reason === undefined ? { healthy: true } : { healthy: false, reason: this.#reason, since: this.#since?.toISOString() ?? '' };
  }

  /**
   * Marks the store unhealthy for `reason` (the latest reason is kept, `since` the first).
   * Only the change is logged, at error level, with `msg` and `fields`.
   */
  fail(reason: string, msg: string, fields: Record<string, unknown> = {}): void {
    if (this.#reason === undefined) {
      this.#since = new Date();
      this.#logger.error({ store: this.#store, reason, ...fields }, msg);
    }
    this.#reason = reason;
  }

  /** Marks the store healthy again after `how` (`commit`, `probe`); logs the change at info level. */
  recover(how: string, fields: Record<string, unknown> = {}): void {
    if (this.#reason === undefined) return;
    const since = this.#since;
    this.#reason = undefined;
    this.#since = undefined;
    this.#logger.info({ store: this.#store, via: how, unhealthyMs: since ? Date.now() - since.getTime() : undefined, ...fields }, 'audit store writes recovered');
  }
}

/** The CFG_ERR_AUDIT_UNAVAILABLE a closed store answers with. */
export function closedError(): Error {
  return new CFG_ERR_AUDIT_UNAVAILABLE('the audit store is closed');
}

/**
 * Runs `work` with a deadline: resolves with its result, or rejects with
 * `Error(message)` when `timeoutMs` passes first (`work` keeps running).
 */
export async function withDeadline<T>(work: Promise<T>, timeoutMs: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), timeoutMs);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
