/**
 * Shared test data for the audit tests.
 */
import type { AuditEventInput } from '../../src/audit/types.js';

/** A complete allowed `config.read` event; `overrides` replace top-level fields. */
export function makeEvent(overrides: Partial<AuditEventInput> = {}): AuditEventInput {
  return {
    time: '2025-01-02T03:04:05.678Z',
    requestId: 'req-1',
    actor: { kind: 'certificate', subject: 'orders', fingerprint256: 'ab'.repeat(32), issuer: 'CN=Test CA,O=Example' },
    clientAddress: '10.0.0.1',
    action: 'config.read',
    app: 'orders',
    profiles: ['prod', 'eu'],
    ref: 'main',
    commit: 'c0ffee'.padEnd(40, '0'),
    format: 'json',
    outcome: 'allowed',
    status: 200,
    secretKeys: ['spring.datasource.password'],
    bodySha256: 'cd'.repeat(32),
    durationMs: 12.5,
    ...overrides,
  };
}

/** The request ids of events, in the order given. */
export function ids(events: readonly { requestId: string }[]): string[] {
  return events.map((e) => e.requestId);
}
