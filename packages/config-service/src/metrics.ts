/**
 * Prometheus metrics (prom-client), one registry per running service so several
 * instances in one process (tests) never share counters. Served on the management
 * listener at `/metrics` (SPEC §5.4).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { FastifyInstance } from 'fastify';
import type { AuditStore } from './audit/types.js';
import { registerGitMetrics } from './git-health.js';
import type { RepositoryRegistry } from './http/plugins/repositories.js';
import type { GitSettings } from './settings/schema.js';
import type { TlsReloadStats } from './http/tls.js';

/** The registry and the instruments the API app updates. */
export interface ServiceMetrics {
  registry: Registry;
  requests: Counter<'action' | 'outcome' | 'status'>;
  duration: Histogram<'action'>;
}

/**
 * Creates the registry: request counters and latency (updated by {@link instrumentApi}),
 * Git sync state per repository (`git-health.ts`) and audit store state (read at scrape time), and the
 * default process metrics.
 */
export function createMetrics(deps: { repositories: RepositoryRegistry; git?: GitSettings; auditStore: AuditStore; tls?: () => Readonly<TlsReloadStats> }): ServiceMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'config_service_requests_total',
    help: 'API requests by action, outcome (allowed, denied, error) and HTTP status',
    labelNames: ['action', 'outcome', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'config_service_request_duration_seconds',
    help: 'API request duration in seconds, audit commit included',
    labelNames: ['action'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const { auditStore } = deps;
  // Read at scrape time from the stores' own counts; a `_total` series is a counter (OpenMetrics).
  const series = (name: string, help: string, read: () => number | undefined): void => {
    if (name.endsWith('_total')) {
      new Counter({
        name,
        help,
        registers: [registry],
        collect() {
          const v = read();
          this.reset();
          if (v !== undefined) this.inc(v);
        },
      });
      return;
    }
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        const v = read();
        if (v !== undefined) this.set(v);
      },
    });
  };
  registerGitMetrics(registry, deps.repositories);
  series('config_service_audit_healthy', '1 while the audit store commits events', () => (auditStore.healthy ? 1 : 0));
  series('config_service_audit_events_total', 'Audit events committed by this process', () => auditStore.stats.events);
  series('config_service_audit_transactions_total', 'Audit store transactions (group commits)', () => auditStore.stats.transactions);
  series('config_service_audit_failed_transactions_total', 'Audit store write transactions that failed (their requests were answered 503)', () => auditStore.stats.failedTransactions);
  series('config_service_audit_commit_timeouts_total', 'Requests answered 503 because their audit event was not committed within audit.commitTimeoutMs', () => auditStore.stats.commitTimeouts);
  series('config_service_audit_in_doubt_events_total', 'Of those, events whose transaction was in flight: they may still have been committed (followed by their refusal record)', () => auditStore.stats.inDoubt);
  series('config_service_audit_probe_failures_total', 'Audit store health probes that failed or timed out', () => auditStore.stats.probeFailures);
  series('config_service_audit_deferred_events', 'Refusal records (appendEventually) waiting to be committed', () => auditStore.stats.deferredPending);
  series('config_service_audit_deferred_dropped_total', 'Refusal records dropped (too many waiting, or still failing at shutdown)', () => auditStore.stats.deferredDropped);
  if (deps.tls) {
    const tls = deps.tls;
    series('config_service_tls_reloads_total', 'Times new server certificate, client CA or CRL files were installed without a restart', () => tls().reloads);
    series('config_service_tls_reload_failures_total', 'Reloads refused because the new TLS files did not validate (the old ones stay in use)', () => tls().failures);
  }
  return { registry, requests, duration };
}

/** Counts every API request when its response has been sent. */
export function instrumentApi(app: FastifyInstance, metrics: ServiceMetrics): void {
  app.addHook('onResponse', async (request, reply) => {
    const action = request.audit?.action ?? 'unknown';
    const status = reply.statusCode;
    const outcome = status < 400 ? 'allowed' : status === 401 || status === 403 ? 'denied' : 'error';
    metrics.requests.inc({ action, outcome, status: String(status) });
    metrics.duration.observe({ action }, reply.elapsedTime / 1000);
  });
}
