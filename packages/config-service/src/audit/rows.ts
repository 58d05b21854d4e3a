/**
 * The row model both audit stores share: the indexed columns beside the canonical event
 * JSON, the exact-match filters, the check that a row's columns agree with its hashed
 * event (so filters never give wrong results), and the examination of stored rows against
 * the chain. The group-commit queue is in `commit-queue.ts`.
 */
import { eventBodyJson, type ChainAnchor, type ChainHead, type ChainVerifier } from './chain.js';
import { toStoredEvent } from './event.js';
import { decodeCursor, encodeCursor, parseInstant, parseLimit } from './query.js';
import type { AuditEvent, AuditEventInput, AuditLogger, AuditPage, AuditQuery, ChainBreakReason, ChainExamination } from './types.js';

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

/** The logger used when none is given. */
export const SILENT: AuditLogger = { info() {}, warn() {}, error() {} };

/** Exact-match filters: query field → column. */
export const EXACT_FILTERS = [
  ['app', 'app'],
  ['actor', 'actor_subject'],
  ['action', 'action'],
  ['outcome', 'outcome'],
  ['commit', 'commit_id'],
  ['requestId', 'request_id'],
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

/**
 * Checks one stored row against the chain: `malformed event` when its text does not parse
 * as an event, then the chain rules and {@link checkRow}.
 * @param column how the store keeps a text value (see {@link checkRow})
 * @returns false once the chain is broken (the caller stops reading).
 */
export function pushRow(v: ChainVerifier, row: EventRow<number | string>, column?: (s: string) => string): boolean {
  let event: AuditEvent;
  try {
    event = rowToEvent(row);
  } catch {
    v.fail(Number(row.seq), 'malformed event');
    return false;
  }
  return v.push(event, (e) => checkRow(row, e, column));
}

/** What {@link finishExamination} reports besides the verdict. */
export interface ExaminedStore {
  /** The store id in the counter row; the one read at open when the row is missing. */
  storeId: string;
  /** Where the chain was checked from (the anchor, or `seq` 1 after the genesis hash). */
  start: ChainAnchor;
  /** The counter; undefined when its row is missing (then `counter mismatch`). */
  head: ChainHead | undefined;
  /** The retention anchor row, when a prune left one. */
  anchor: ChainExamination['anchor'];
}

/**
 * Ends an examination once every row was pushed: checks the end of the chain against the
 * counter ({@link ChainVerifier.finish}) and returns the verdict with what it was based on.
 */
export function finishExamination(v: ChainVerifier, { storeId, start, head, anchor }: ExaminedStore): ChainExamination {
  v.finish(head);
  return {
    ...v.result(),
    storeId,
    ...(head && { head }),
    start,
    ...(anchor && { anchor }),
    beforeStart: v.beforeStart,
    matched: v.matched,
  };
}

/** The SQL of one page of an audit query, for a store's placeholder syntax. */
export interface PageQuery {
  /** `SELECT * FROM <table> [WHERE ...] ORDER BY seq DESC LIMIT <n+1>` (one extra row tells whether a next page exists). */
  sql: string;
  params: unknown[];
  /** The page size asked for. */
  limit: number;
}

/**
 * Builds the newest-first page query of `q` (exact filters, `since` inclusive, `until`
 * exclusive, keyset cursor) for `table`.
 * @param placeholder the store's bind syntax for the n-th parameter (`?` or `$n`)
 * @param column how the store keeps a text value (PostgreSQL cannot store NUL)
 * @throws CFG_ERR_INVALID_REQUEST (400) for a bad cursor, instant or limit
 */
export function pageQuery(q: AuditQuery, table: string, placeholder: (n: number) => string, column: (s: string) => string = (s) => s): PageQuery {
  const where: string[] = [];
  const params: unknown[] = [];
  const param = (v: unknown): string => {
    params.push(v);
    return placeholder(params.length);
  };
  for (const [field, col] of EXACT_FILTERS) {
    const v = q[field];
    if (v !== undefined) where.push(`${col} = ${param(column(v))}`);
  }
  if (q.since !== undefined) where.push(`time >= ${param(parseInstant(q.since, 'since'))}`);
  if (q.until !== undefined) where.push(`time < ${param(parseInstant(q.until, 'until'))}`);
  if (q.cursor !== undefined) where.push(`seq < ${param(decodeCursor(q.cursor))}`);
  const limit = parseLimit(q.limit);
  const sql = `SELECT * FROM ${table}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ${param(limit + 1)}`;
  return { sql, params, limit };
}

/** The page of `rows` (fetched with {@link pageQuery}: one row more than `limit`). */
export function toPage(rows: readonly EventRow<number | string>[], limit: number): AuditPage {
  const events = rows.slice(0, limit).map(rowToEvent);
  const last = events[events.length - 1];
  return rows.length > limit && last ? { events, nextCursor: encodeCursor(last.seq) } : { events };
}
