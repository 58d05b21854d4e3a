/**
 * Query parameters shared by every audit store: the opaque paging cursor, `since`/`until`
 * instants and `limit` (SPEC §5.2). One implementation, so SQLite and PostgreSQL answer
 * the same query the same way.
 */
import { CFG_ERR_INVALID_REQUEST } from '../errors.js';

/** Page size of `AuditStore.query` when `limit` is absent. */
export const DEFAULT_QUERY_LIMIT = 100;
/** Largest page of `AuditStore.query`; a larger `limit` is lowered to this. */
export const MAX_QUERY_LIMIT = 1000;

/** The opaque cursor of a page that ended at `seq`: base64url of its decimal digits. */
export function encodeCursor(seq: number): string {
  return Buffer.from(String(seq), 'utf8').toString('base64url');
}

/**
 * @throws CFG_ERR_INVALID_REQUEST (400) for a cursor this service did not issue
 */
export function decodeCursor(cursor: string): number {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const seq = Number(text);
  if (!/^[1-9][0-9]{0,15}$/.test(text) || !Number.isSafeInteger(seq) || encodeCursor(seq) !== cursor) {
    throw new CFG_ERR_INVALID_REQUEST('cursor is not one this service issued');
  }
  return seq;
}

const ISO_INSTANT =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:Z|[+-](\d{2}):(\d{2})))?$/i;

/**
 * `since`/`until` → the stored spelling (`YYYY-MM-DDTHH:mm:ss.sssZ`), which sorts as text.
 * Accepts an RFC 3339 date-time (`T`/`Z` in either case, optional seconds and fraction) or
 * a date alone (UTC midnight); refuses impossible dates and times instead of rolling them
 * over. Stored times have millisecond precision, so a finer bound is rounded up to the
 * next millisecond, which selects exactly the same events for both `>=` and `<`.
 */
export function parseInstant(value: string, name: string): string {
  const m = ISO_INSTANT.exec(value);
  const bad = (): never => {
    throw new CFG_ERR_INVALID_REQUEST(`${name} must be an ISO 8601 date, or date-time with Z or an offset`);
  };
  if (!m) return bad();
  const [, y, mo, d, h = '0', mi = '0', sec = '0', frac = '', oh = '0', om = '0'] = m;
  const day = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  if (
    day.getUTCFullYear() !== Number(y) || day.getUTCMonth() !== Number(mo) - 1 || day.getUTCDate() !== Number(d) ||
    Number(h) > 23 || Number(mi) > 59 || Number(sec) > 59 || Number(oh) > 23 || Number(om) > 59
  ) {
    return bad();
  }
  let ms = Date.parse(value.toUpperCase());
  if (Number.isNaN(ms)) return bad();
  if (/[1-9]/.test(frac.slice(3))) ms += 1;
  return new Date(ms).toISOString();
}

export function parseLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_QUERY_LIMIT;
  if (!Number.isInteger(limit) || limit < 1) throw new CFG_ERR_INVALID_REQUEST('limit must be an integer >= 1');
  return Math.min(limit, MAX_QUERY_LIMIT);
}

/**
 * `after` of a checkpoint query: an integer >= 0; default 0.
 * @throws CFG_ERR_INVALID_REQUEST (400) otherwise
 */
export function parseAfter(after: number | undefined): number {
  if (after === undefined) return 0;
  if (!Number.isSafeInteger(after) || after < 0) throw new CFG_ERR_INVALID_REQUEST('after must be an integer >= 0');
  return after;
}
