/**
 * The periodic probe of the audit store (`audit.healthCheckIntervalMs`): readiness must
 * recover by itself when the database answers again, and a pod that is not ready gets no
 * traffic whose commits could show it. Also finds a store that stopped answering while
 * idle, before a request has to wait for it.
 */
import type { AuditLogger, AuditStore } from './types.js';

/** Options of {@link startAuditHealthProbe}. */
export interface AuditHealthProbeOptions {
  /** Time between two checks, in milliseconds (> 0). */
  intervalMs: number;
  /** Most milliseconds one probe may take before the store counts as unhealthy (`audit.commitTimeoutMs`). */
  timeoutMs: number;
  /** Debug lines about skipped probes go here; the store logs health changes itself. Default: none. */
  logger?: AuditLogger;
}

/** A running probe timer. */
export interface AuditHealthProbe {
  /** Runs one check now (the timer calls this): probes unless a commit proved the store healthy since the last check. */
  runOnce(): Promise<void>;
  /** Stops the timer and waits for a probe in progress. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Checks `store` every `intervalMs` (first check one interval after start): when it is
 * unhealthy, or when no transaction was committed since the previous check, it runs
 * {@link AuditStore.probe} (bounded by `timeoutMs`); a store that commits events steadily
 * is not probed. Probes never overlap; the timer is unref'd.
 *
 * @throws TypeError when `intervalMs` or `timeoutMs` is not a positive number.
 */
export function startAuditHealthProbe(store: AuditStore, opts: AuditHealthProbeOptions): AuditHealthProbe {
  const { intervalMs, timeoutMs } = opts;
  if (!(intervalMs > 0) || !(timeoutMs > 0)) throw new TypeError('startAuditHealthProbe: intervalMs and timeoutMs must be > 0');
  let lastTransactions = store.stats.transactions;
  let running: Promise<void> | undefined;
  let stopped = false;

  const check = async (): Promise<void> => {
    const transactions = store.stats.transactions;
    const committedSince = transactions !== lastTransactions;
    lastTransactions = transactions;
    if (store.healthy && committedSince) return;
    try {
      await store.probe(timeoutMs);
    } catch (err) {
      // probe() never rejects; this guards against a store that does.
      opts.logger?.warn({ err }, 'audit health probe failed unexpectedly');
    }
    lastTransactions = store.stats.transactions;
  };
  const runOnce = (): Promise<void> => {
    if (!running) {
      const current = check().finally(() => {
        if (running === current) running = undefined;
      });
      running = current;
    }
    return running;
  };

  let timer: NodeJS.Timeout | undefined;
  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(() => void runOnce().finally(schedule), intervalMs);
    timer.unref();
  };
  schedule();

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
