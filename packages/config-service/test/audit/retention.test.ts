import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openSqliteAuditStore, startAuditRetention, type AuditRetention } from '../../src/audit/index.js';
import type { AuditLogger, AuditStore } from '../../src/audit/types.js';
import { makeEvent } from './helpers.js';

const NOW = Date.parse('2025-01-10T00:00:00.000Z');

describe('startAuditRetention', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const start = (store: AuditStore, opts: Partial<Parameters<typeof startAuditRetention>[1]> = {}): AuditRetention => {
    const r = startAuditRetention(store, { retentionDays: 3, initialDelayMs: 60_000, now: () => NOW, ...opts });
    cleanups.push(() => r.stop());
    return r;
  };

  it('prunes events older than retentionDays and keeps the chain verifiable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'audit-retention-'));
    const store = openSqliteAuditStore({ path: join(dir, 'audit.sqlite') });
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }), () => store.close());
    for (const day of ['01', '05', '06', '07', '08']) await store.append(makeEvent({ requestId: day, time: `2025-01-${day}T12:00:00.000Z` }));
    const lines: string[] = [];
    const logger: AuditLogger = { info: (_o, m) => void lines.push(m), warn: (_o, m) => void lines.push(m), error: (_o, m) => void lines.push(m) };
    const r = start(store, { logger });
    // Cutoff 2025-01-07T00:00Z: the events of the 1st, 5th and 6th go.
    expect(await r.runOnce()).toBe(3);
    expect(await r.runOnce()).toBe(0);
    expect(await store.verify()).toEqual({ ok: true, checked: 2 });
    expect(lines).toEqual(['audit retention: pruned old events']);
  });

  it('runs first after the initial delay, then every interval, and logs failures', async () => {
    const calls: string[] = [];
    const warnings: string[] = [];
    const store = {
      prune: async (before: string) => {
        calls.push(before);
        if (calls.length === 1) throw new Error('boom');
        return { deleted: 0 };
      },
    } as unknown as AuditStore;
    const logger: AuditLogger = { info() {}, warn: (_o, m) => void warnings.push(m), error() {} };
    vi.useFakeTimers();
    try {
      const r = start(store, { initialDelayMs: 1000, intervalMs: 5000, logger });
      await vi.advanceTimersByTimeAsync(999);
      expect(calls).toEqual([]);
      await vi.advanceTimersByTimeAsync(1);
      expect(calls).toEqual(['2025-01-07T00:00:00.000Z']);
      expect(warnings).toEqual(['audit retention: prune failed; retrying at the next interval']);
      await vi.advanceTimersByTimeAsync(5000);
      expect(calls.length).toBe(2);
      await vi.advanceTimersByTimeAsync(5000);
      expect(calls.length).toBe(3);
      await r.stop();
      await vi.advanceTimersByTimeAsync(60_000);
      expect(calls.length).toBe(3);
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses bad options', () => {
    const store = {} as AuditStore;
    expect(() => startAuditRetention(store, { retentionDays: 0 })).toThrow(TypeError);
    expect(() => startAuditRetention(store, { retentionDays: 1.5 })).toThrow(TypeError);
    expect(() => startAuditRetention(store, { retentionDays: 1, intervalMs: 0 })).toThrow(TypeError);
  });
});
