/**
 * Messages between the primary and the workers of `server.workers` (Node `cluster` IPC
 * with `serialization: 'advanced'`, so `Map` and `Set` travel as they are).
 */
import type { RefSnapshot } from '../git/repository.js';
import type { SyncResult } from '../git/mirror.js';
import type { Settings } from '../settings/schema.js';

/** An error as it crosses the IPC channel: what the problem handler needs to answer it. */
export interface WireError {
  message: string;
  code?: string;
  statusCode?: number;
  retryAfterSeconds?: number;
  data?: Record<string, unknown>;
}

/** Primary → worker. */
export type ToWorker =
  | { type: 'cfg:start'; settings: Settings }
  | { type: 'cfg:snapshot'; name: string; snapshot: RefSnapshot | null }
  | { type: 'cfg:reply'; id: number; value?: unknown; error?: WireError }
  | { type: 'cfg:shutdown' };

/** Worker → primary. */
export type ToPrimary =
  | { type: 'cfg:hello' }
  | { type: 'cfg:listening'; url: string }
  | { type: 'cfg:get-snapshot'; id: number; name: string }
  | { type: 'cfg:sync'; id: number; name: string }
  | { type: 'cfg:publish'; repo: string };

/** The reply value of `cfg:sync`. */
export type SyncReply = SyncResult;

/** An error made fit for the IPC channel (no stack, no cause). */
export function toWire(err: unknown): WireError {
  const e = err as Error & { code?: unknown; statusCode?: unknown; retryAfterSeconds?: unknown; data?: unknown };
  return {
    message: typeof e?.message === 'string' ? e.message : String(err),
    ...(typeof e?.code === 'string' && { code: e.code }),
    ...(typeof e?.statusCode === 'number' && { statusCode: e.statusCode }),
    ...(typeof e?.retryAfterSeconds === 'number' && { retryAfterSeconds: e.retryAfterSeconds }),
    ...(typeof e?.data === 'object' && e.data !== null && { data: e.data as Record<string, unknown> }),
  };
}

/** The error a worker throws for a {@link WireError}: same message, code, status and `Retry-After`. */
export function fromWire(wire: WireError): Error {
  const err = new Error(wire.message);
  if (wire.code !== undefined) err.name = wire.code;
  return Object.assign(err, {
    ...(wire.code !== undefined && { code: wire.code }),
    ...(wire.statusCode !== undefined && { statusCode: wire.statusCode }),
    ...(wire.retryAfterSeconds !== undefined && { retryAfterSeconds: wire.retryAfterSeconds }),
    ...(wire.data !== undefined && { data: wire.data }),
  });
}

/**
 * Prometheus series that only the workers produce (requests, their audit commits, their
 * TLS reloads): the primary's `/metrics` shows them summed over the workers, and leaves
 * out its own (empty) ones.
 */
export const WORKER_SERIES: readonly string[] = [
  'config_service_requests_total',
  'config_service_request_duration_seconds',
  'config_service_audit_events_total',
  'config_service_audit_transactions_total',
  'config_service_audit_failed_transactions_total',
  'config_service_audit_commit_timeouts_total',
  'config_service_audit_in_doubt_events_total',
  'config_service_audit_deferred_events',
  'config_service_audit_deferred_dropped_total',
  'config_service_tls_reloads_total',
  'config_service_tls_reload_failures_total',
];
