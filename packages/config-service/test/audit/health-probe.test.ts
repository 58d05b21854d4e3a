/**
 * The periodic audit store probe (src/audit/health-probe.ts) on a real SQLite store: it
 * probes an idle or unhealthy store, skips one that committed since the last check, and
 * makes readiness recover without any request.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteAuditStore, startAuditHealthProbe, type AuditHealthProbe, type SqliteAuditStore } from '../../src/audit/index.js';
import { makeEvent } from './helpers.js';

describe('startAuditHealthProbe', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const openStore = (): { store: SqliteAuditStore; path: string } => {
    const dir = mkdtempSync(join(tmpdir(), 'audit-probe-'));
    const path = join(dir, 'audit.sqlite');
    const store = openSqliteAuditStore({ path, busyTimeoutMs: 50 });
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }), () => store.close());
    return { store, path };
  };
  const start = (store: SqliteAuditStore, intervalMs = 60_000): AuditHealthProbe => {
    const p = startAuditHealthProbe(store, { intervalMs, timeoutMs: 1000 });
    cleanups.push(() => p.stop());
    return p;
  };

  it('probes an idle store, skips one that committed since the last check', async () => {
    const { store } = openStore();
    const p = start(store);
    await p.runOnce();
    expect(store.stats.probes).toBe(1);
    await store.append(makeEvent());
    await p.runOnce(); // a commit since the last check proves the store healthy
    expect(store.stats.probes).toBe(1);
    await p.runOnce(); // idle again
    expect(store.stats.probes).toBe(2);
  });

  it('makes an unhealthy store healthy again by itself once it can commit', async () => {
    const { store, path } = openStore();
    const locker = new Database(path);
    cleanups.push(() => void locker.close());
    locker.exec('BEGIN IMMEDIATE');
    start(store, 100);
    await until(() => !store.healthy);
    expect(store.health.reason).toBe('probe failed: database is locked');
    locker.exec('COMMIT');
    await until(() => store.healthy);
    expect(store.stats.transactions).toBe(0);
    expect(store.stats.probeFailures).toBeGreaterThanOrEqual(1);
  });

  it('refuses a non-positive interval or timeout', () => {
    const { store } = openStore();
    expect(() => startAuditHealthProbe(store, { intervalMs: 0, timeoutMs: 1000 })).toThrow(TypeError);
    expect(() => startAuditHealthProbe(store, { intervalMs: 1000, timeoutMs: -1 })).toThrow(TypeError);
  });
});

async function until(check: () => boolean): Promise<void> {
  const end = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met within 10 s');
    await new Promise((r) => setTimeout(r, 20));
  }
}
