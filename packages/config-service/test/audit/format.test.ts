import { describe, expect, it } from 'vitest';
import { AUDIT_CSV_COLUMNS, csvField, formatAuditEvents } from '../../src/audit/format.js';
import type { AuditEvent } from '../../src/audit/types.js';
import { makeEvent } from './helpers.js';

const HEADER =
  'seq,time,requestId,actorKind,actorSubject,actorFingerprint256,actorIssuer,' +
  'actorClaimedSubject,actorClaimedFingerprint256,actorClaimedIssuer,clientAddress,action,app,profiles,ref,' +
  'commit,format,outcome,status,reason,secretKeys,secretKeyIds,bodySha256,durationMs,prevHash,hash';

function stored(overrides: Partial<AuditEvent> = {}): AuditEvent {
  return { seq: 1, ...makeEvent(), prevHash: '0'.repeat(64), hash: 'e'.repeat(64), ...overrides };
}

describe('formatAuditEvents', () => {
  it('csv: header row, one CRLF-terminated record per event, arrays joined with ;', () => {
    const text = formatAuditEvents([stored({ secretKeyIds: ['k1', 'k2'] })], 'csv');
    expect(AUDIT_CSV_COLUMNS.join(',')).toBe(HEADER);
    expect(text).toBe(
      `${HEADER}\r\n` +
        `1,2025-01-02T03:04:05.678Z,req-1,certificate,orders,${'ab'.repeat(32)},"CN=Test CA,O=Example",,,,10.0.0.1,` +
        `config.read,orders,prod;eu,main,${'c0ffee'.padEnd(40, '0')},json,allowed,200,,spring.datasource.password,k1;k2,` +
        `${'cd'.repeat(32)},12.5,${'0'.repeat(64)},${'e'.repeat(64)}\r\n`,
    );
  });

  it('csv: quotes commas, quotes, CR and LF per RFC 4180; leaves absent fields empty', () => {
    const e = stored({
      seq: 2,
      actor: { kind: 'jwt', subject: 'he said "hi", then left' },
      reason: 'line1\nline2',
      ref: 'a\rb',
      profiles: [],
      secretKeys: ['a,b', 'c'],
    });
    delete e.app;
    delete e.clientAddress;
    delete e.bodySha256;
    const text = formatAuditEvents([e], 'csv');
    expect(text).toBe(
      `${HEADER}\r\n` +
        `2,2025-01-02T03:04:05.678Z,req-1,jwt,"he said ""hi"", then left",,,,,,,config.read,,,"a\rb",` +
        `${'c0ffee'.padEnd(40, '0')},json,allowed,200,"line1\nline2","a,b;c",,,12.5,${'0'.repeat(64)},${'e'.repeat(64)}\r\n`,
    );
  });

  it('csv: an unverified certificate fills the actorClaimed* columns and leaves actorSubject empty', () => {
    const e = stored({
      actor: { kind: 'certificate', claimed: { subject: 'billing', fingerprint256: 'ef'.repeat(32), issuer: 'CN=Forged CA' } },
      outcome: 'denied',
      status: 401,
      reason: 'certificate_rejected:UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
      secretKeys: [],
    });
    delete e.bodySha256;
    const [, record] = formatAuditEvents([e], 'csv').split('\r\n');
    expect(record?.split(',').slice(3, 10)).toEqual(['certificate', '', '', '', 'billing', 'ef'.repeat(32), 'CN=Forged CA']);
  });

  it('csv: no events is the header alone', () => {
    expect(formatAuditEvents([], 'csv')).toBe(`${HEADER}\r\n`);
  });

  it.each([
    ['plain', 'plain'],
    ['', ''],
    ['a,b', '"a,b"'],
    ['say "x"', '"say ""x"""'],
    ['"', '""""'],
    ['a\nb', '"a\nb"'],
    ['a\r\nb', '"a\r\nb"'],
    ['semi;colon', 'semi;colon'],
  ])('csvField(%j) = %j', (value, field) => {
    expect(csvField(value)).toBe(field);
  });

  it('ndjson: one JSON object per line, each line ending in LF', () => {
    const a = stored();
    const b = stored({ seq: 2, reason: 'multi\nline' });
    const text = formatAuditEvents([a, b], 'ndjson');
    expect(text).toBe(`${JSON.stringify(a)}\n${JSON.stringify(b)}\n`);
    expect(text.split('\n')).toHaveLength(3);
    expect(text.trimEnd().split('\n').map((l) => JSON.parse(l) as AuditEvent)).toEqual([a, b]);
    expect(formatAuditEvents([], 'ndjson')).toBe('');
  });
});
