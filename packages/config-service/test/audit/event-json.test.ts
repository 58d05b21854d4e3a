/**
 * The one serialisation of an audit event (issue 9): the fixed-order writer gives exactly
 * the canonical JSON the chain hashes, and an event can hold no secret by construction
 * (only the declared fields are written, whatever the object carries).
 */
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { canonicalJson, type CanonicalValue } from '../../src/audit/chain.js';
import { toEventInput } from '../../src/audit/event.js';
import { AUDIT_EVENT_FIELDS, eventJsonParts, eventLogJson, joinEventJson } from '../../src/audit/event-json.js';
import { logAuditCheckpoint, logAuditEvent, rawJsonLogger } from '../../src/audit/log-line.js';
import type { AuditEventInput } from '../../src/audit/types.js';
import { loggerOptions } from '../../src/logger.js';
import { makeEvent } from './helpers.js';

const text = fc.string({ unit: 'binary', maxLength: 12 });
const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

/** Any valid event, optional fields present or not, strings with any UTF-16 content. */
const eventArb: fc.Arbitrary<AuditEventInput> = fc
  .record({
    time: fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }).map((d) => d.toISOString()),
    requestId: text.filter((s) => s.length > 0),
    actor: fc.record({
      kind: fc.constantFrom('certificate' as const, 'jwt' as const, 'anonymous' as const),
      subject: optional(text),
      fingerprint256: optional(text),
      issuer: optional(text),
      claimed: optional(fc.record({ subject: optional(text), fingerprint256: optional(text), issuer: optional(text) })),
    }),
    clientAddress: optional(text),
    action: text.filter((s) => s.length > 0),
    app: optional(text),
    repository: optional(text),
    profiles: fc.array(text, { maxLength: 3 }),
    ref: optional(text),
    commit: optional(text),
    format: optional(text),
    outcome: fc.constantFrom('allowed' as const, 'denied' as const, 'error' as const),
    status: fc.integer({ min: 100, max: 599 }),
    reason: optional(text),
    secretKeys: fc.array(text, { maxLength: 3 }),
    secretKeyIds: optional(fc.array(text, { maxLength: 2 })),
    bodySha256: optional(text),
    durationMs: fc.oneof(fc.nat(), fc.double({ min: 0, max: 1e6, noNaN: true })),
  })
  .map((e) => toEventInput(e as AuditEventInput));

describe('event serialisation', () => {
  it('writes exactly canonicalJson of the event plus seq, for any event', () => {
    fc.assert(
      fc.property(eventArb, fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), (input, seq) => {
        const expected = canonicalJson({ ...(input as unknown as Record<string, CanonicalValue>), seq });
        expect(joinEventJson(eventJsonParts(input), seq)).toBe(expected);
      }),
      { numRuns: 500 },
    );
  });

  it('lists every field of the event type, in the order the text writes them', () => {
    const all = makeEvent({ repository: 'config', reason: 'r', secretKeyIds: ['k1'], actor: { kind: 'certificate', subject: 's', fingerprint256: 'f', issuer: 'i', claimed: { subject: 'c' } } });
    const keys = Object.keys(JSON.parse(joinEventJson(eventJsonParts(toEventInput(all)), 7)) as object);
    expect(keys).toEqual(AUDIT_EVENT_FIELDS.map(([name]) => name));
    expect([...keys].sort()).toEqual(keys);
  });

  it('holds no secret by construction: properties outside the declared fields never reach the text', () => {
    const secret = 'Sup3r-S3cret-Value';
    fc.assert(
      fc.property(
        eventArb,
        fc.dictionary(fc.constantFrom('value', 'password', 'token', 'plaintext', 'config', 'body', 'headers', 'secret'), fc.constant(secret)),
        (input, extra) => {
          // Extra members at the top and inside the actor, as a careless caller might add them.
          const dirty = { ...input, ...extra, actor: { ...input.actor, ...extra } } as AuditEventInput;
          const written = joinEventJson(eventJsonParts(toEventInput(dirty)), 1);
          expect(written).not.toContain(secret);
          // Even without the check and copy of toEventInput, the writer reads declared fields only.
          expect(joinEventJson(eventJsonParts(dirty), 1)).not.toContain(secret);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('audit log lines', () => {
  function capture(): { root: pino.Logger; lines: string[] } {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        cb();
      },
    });
    return { root: pino(loggerOptions('info'), sink), lines };
  }

  it('carry the stored text byte for byte, with the hashes, without re-serialising or redacting it', () => {
    const { root, lines } = capture();
    const log = rawJsonLogger(root);
    const stored = joinEventJson(eventJsonParts(toEventInput(makeEvent({ requestId: 'req-9', reason: 'value' }))), 3);
    logAuditEvent(log, 'req-9', eventLogJson(stored, 'a'.repeat(64), 'b'.repeat(64)));
    logAuditCheckpoint(log, '{"hash":"x","seq":3}');
    // Other lines of the same logger keep their redaction.
    root.info({ password: 'hunter2' }, 'other');
    expect(lines.length).toBe(3);
    const event = lines[0]!;
    expect(event).toContain(`"reqId":"req-9","audit":${stored.slice(0, -1)},"hash":"${'b'.repeat(64)}","prevHash":"${'a'.repeat(64)}"},"msg":"audit event"`);
    expect(JSON.parse(event)).toMatchObject({ level: 'info', msg: 'audit event', audit: { seq: 3, requestId: 'req-9', reason: 'value' } });
    expect(lines[1]).toContain('"checkpoint":{"hash":"x","seq":3},"msg":"audit checkpoint"');
    expect(JSON.parse(lines[2]!)).toMatchObject({ password: '[Redacted]', msg: 'other' });
  });
});
