/**
 * Exports of audit events for `GET /v1/audit?format=ndjson|csv` and `config-service audit
 * query` (SPEC §5.2). The `json` format (`{ events, nextCursor }`) is built by the route.
 */
import type { AuditEvent } from './types.js';

/** The export formats {@link formatAuditEvents} writes. */
export type AuditExportFormat = 'ndjson' | 'csv';

/** The `Content-Type` to send with each export format. */
export const AUDIT_EXPORT_CONTENT_TYPES: Readonly<Record<AuditExportFormat, string>> = Object.freeze({
  ndjson: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8; header=present',
});

/**
 * The CSV columns, in order; also the header row. Nested actor fields are flattened
 * (`actor.subject` → `actorSubject`, `actor.claimed.subject` → `actorClaimedSubject`).
 */
export const AUDIT_CSV_COLUMNS = [
  'seq',
  'time',
  'requestId',
  'actorKind',
  'actorSubject',
  'actorFingerprint256',
  'actorIssuer',
  'actorClaimedSubject',
  'actorClaimedFingerprint256',
  'actorClaimedIssuer',
  'clientAddress',
  'action',
  'app',
  'profiles',
  'ref',
  'commit',
  'format',
  'outcome',
  'status',
  'reason',
  'secretKeys',
  'secretKeyIds',
  'bodySha256',
  'durationMs',
  'prevHash',
  'hash',
] as const;

/**
 * Writes events as text.
 *
 * - `ndjson`: one `JSON.stringify(event)` per line, each line ending in `\n`; no events →
 *   the empty string.
 * - `csv` (RFC 4180): the {@link AUDIT_CSV_COLUMNS} header row, then one record per event,
 *   every line ending in CRLF. A field is quoted when it holds `,`, `"`, CR or LF, with `"`
 *   doubled inside. Absent fields are empty; numbers as `String(n)`; `profiles`,
 *   `secretKeys` and `secretKeyIds` are joined with `;` (profile names cannot contain `;`; a secret key name
 *   that does makes that field ambiguous — use ndjson for exact key lists). Values are
 *   written as stored, not guarded against spreadsheet formula evaluation.
 *
 * @param events the events, in the order to write them.
 */
export function formatAuditEvents(events: readonly AuditEvent[], format: AuditExportFormat): string {
  if (format === 'ndjson') return events.map((e) => `${JSON.stringify(e)}\n`).join('');
  const lines = [AUDIT_CSV_COLUMNS.join(',')];
  for (const e of events) lines.push(csvRecord(e).map(csvField).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

function csvRecord(e: AuditEvent): (string | number | undefined)[] {
  const byColumn: Record<(typeof AUDIT_CSV_COLUMNS)[number], string | number | undefined> = {
    seq: e.seq,
    time: e.time,
    requestId: e.requestId,
    actorKind: e.actor.kind,
    actorSubject: e.actor.subject,
    actorFingerprint256: e.actor.fingerprint256,
    actorIssuer: e.actor.issuer,
    actorClaimedSubject: e.actor.claimed?.subject,
    actorClaimedFingerprint256: e.actor.claimed?.fingerprint256,
    actorClaimedIssuer: e.actor.claimed?.issuer,
    clientAddress: e.clientAddress,
    action: e.action,
    app: e.app,
    profiles: e.profiles.join(';'),
    ref: e.ref,
    commit: e.commit,
    format: e.format,
    outcome: e.outcome,
    status: e.status,
    reason: e.reason,
    secretKeys: e.secretKeys.join(';'),
    secretKeyIds: e.secretKeyIds?.join(';'),
    bodySha256: e.bodySha256,
    durationMs: e.durationMs,
    prevHash: e.prevHash,
    hash: e.hash,
  };
  return AUDIT_CSV_COLUMNS.map((c) => byColumn[c]);
}

/** One RFC 4180 field. */
export function csvField(value: string | number | undefined): string {
  if (value === undefined) return '';
  const s = String(value);
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}
