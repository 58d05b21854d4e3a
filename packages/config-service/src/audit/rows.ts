/**
 * The row model both audit stores share: the indexed columns beside the canonical event
 * JSON, the queue entry of a group commit, the exact-match filters, and the check that a
 * row's columns agree with its hashed event (so filters never give wrong results).
 */
import { eventBodyJson } from './chain.js';
import { toStoredEvent } from './event.js';
import type { AuditEvent, AuditEventInput, AuditLogger, AuditQuery, ChainBreakReason } from './types.js';

/** One stored row; `seq` is a number in SQLite and a decimal string from PostgreSQL's BIGINT. */
export interface EventRow<Seq extends number | string = number> {
  seq: Seq;
  time: string;
  request_id: string;
  actor_kind: string;
  actor_subject: string | null;
  action: string;
  app: string | null;
  commit_id: string | null;
  outcome: string;
  status: number;
  prev_hash: string;
  hash: string;
  /** The exact canonical JSON that was hashed. */
  event: string;
}

/** An event waiting for the next group commit, with the settlers of its `append` promise. */
export interface Pending {
  input: AuditEventInput;
  resolve: (event: AuditEvent) => void;
  reject: (err: Error) => void;
}

/** The logger used when none is given. */
export const SILENT: AuditLogger = { info() {}, warn() {}, error() {} };

/** Exact-match filters: query field → column. */
export const EXACT_FILTERS = [
  ['app', 'app'],
  ['actor', 'actor_subject'],
  ['action', 'action'],
  ['outcome', 'outcome'],
  ['commit', 'commit_id'],
] as const satisfies readonly (readonly [keyof AuditQuery, keyof EventRow])[];

/** The stored event of a row. */
export function rowToEvent(row: EventRow<number | string>): AuditEvent {
  return toStoredEvent(JSON.parse(row.event) as AuditEventInput, Number(row.seq), row.prev_hash, row.hash);
}

/**
 * A row's own consistency: the stored text is what was hashed, and the columns match the
 * event. `column` maps a text value to how the store keeps it (PostgreSQL cannot store NUL).
 */
export function checkRow(row: EventRow<number | string>, e: AuditEvent, column: (s: string) => string = (s) => s): ChainBreakReason | undefined {
  if (row.event !== eventBodyJson(e)) return 'hash mismatch';
  const nullable = (s: string | undefined) => (s === undefined ? null : column(s));
  const same =
    row.time === column(e.time) &&
    row.request_id === column(e.requestId) &&
    row.actor_kind === e.actor.kind &&
    row.actor_subject === nullable(e.actor.subject) &&
    row.action === column(e.action) &&
    row.app === nullable(e.app) &&
    row.commit_id === nullable(e.commit) &&
    row.outcome === e.outcome &&
    row.status === e.status;
  return same ? undefined : 'column mismatch';
}
