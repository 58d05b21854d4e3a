/**
 * Retention by age (SPEC §6): a timer that prunes audit events older than
 * `audit.retentionDays`, through {@link AuditStore.prune}, which keeps the chain verifiable.
 */
import type { AuditLogger, AuditStore } from './types.js';

/** One day in milliseconds. */
const DAY_MS = 86_400_000;

/** Options of {@link startAuditRetention}. */
export interface AuditRetentionOptions {
  /** Events older than this many days are deleted: an integer ≥ 1. */
  retentionDays: number;
  /** Time between two prunes, in milliseconds. Default one hour. */
  intervalMs?: number;
  /** Delay before the first prune, in milliseconds. Default 10 seconds. */
  initialDelayMs?: number;
  /** Where the outcome of each prune goes; pino fits. Default: none. */
  logger?: AuditLogger;
  /** The clock (tests). Default `Date.now`. */
  now?: () => number;
}

/** A running retention timer. */
export interface AuditRetention {
  /** Runs one prune now (the timer calls this); resolves with the events deleted, 0 on failure. */
  runOnce(): Promise<number>;
  /** Stops the timer and waits for a prune in progress. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts pruning `store` periodically: the first prune after `initialDelayMs`, then every
 * `intervalMs`. Timers are unref'd, so they never keep the process alive. A failed prune
 * is logged and retried at the next tick; prunes never overlap.
 *
 * @throws TypeError when `retentionDays`, `intervalMs` or `initialDelayMs` is invalid.
 */
export function startAuditRetention(store: AuditStore, opts: AuditRetentionOptions): AuditRetention {
  const { retentionDays } = opts;
  const intervalMs = opts.intervalMs ?? 3_600_000;
  const initialDelayMs = opts.initialDelayMs ?? 10_000;
  if (!Number.isInteger(retentionDays) || retentionDays < 1) throw new TypeError('startAuditRetention: retentionDays must be an integer >= 1');
  if (!(intervalMs > 0) || !(initialDelayMs >= 0)) throw new TypeError('startAuditRetention: intervalMs must be > 0 and initialDelayMs >= 0');
  const now = opts.now ?? Date.now;
  const logger = opts.logger;
  let running: Promise<number> | undefined;
  let stopped = false;

  const runOnce = (): Promise<number> => {
    running ??= (async () => {
      const before = new Date(now() - retentionDays * DAY_MS).toISOString();
      try {
        const { deleted } = await store.prune(before);
        if (deleted > 0) logger?.info({ deleted, before, retentionDays }, 'audit retention: pruned old events');
        return deleted;
      } catch (err) {
        logger?.warn({ err, before }, 'audit retention: prune failed; retrying at the next interval');
        return 0;
      } finally {
        running = undefined;
      }
    })();
    return running;
  };

  let timer: NodeJS.Timeout | undefined = setTimeout(function tick() {
    void runOnce().finally(() => {
      if (stopped) return;
      timer = setTimeout(tick, intervalMs);
      timer.unref();
    });
  }, initialDelayMs);
  timer.unref();

  return {
    runOnce,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await running;
    },
  };
}
