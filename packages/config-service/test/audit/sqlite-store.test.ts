import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAuditStore, openSqliteAuditStore, type SqliteAuditStore } from '../../src/audit/index.js';
import type { AuditLogger } from '../../src/audit/types.js';
import { ids, makeEvent } from './helpers.js';
import { describeAuditStoreContract, type AuditStoreHarness, type RawColumn } from './store-contract.js';

const COLUMNS: Record<RawColumn, string> = { event: 'event', hash: 'hash', prevHash: 'prev_hash', app: 'app' };

/** A fresh database file in a fresh temp dir, and a second, independent connection to it. */
function sqliteHarness(): AuditStoreHarness & { path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'audit-sqlite-'));
  const path = join(dir, 'nested', 'audit.sqlite');
  let raw: Database.Database | undefined;
  const conn = (): Database.Database => (raw ??= new Database(path));
  return {
    path,
    async open(opts = {}) {
      return openSqliteAuditStore({ path, ...opts });
    },
    async setCounter(seq, hash) {
      conn().prepare('UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1').run(seq, hash);
    },
    async setAnchor(seq, prevHash, checkpoint) {
      conn()
        .prepare('INSERT INTO audit_anchor (id, seq, prev_hash, checkpoint) VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, prev_hash = excluded.prev_hash, checkpoint = excluded.checkpoint')
        .run(seq, prevHash, checkpoint);
    },
    async readRow(seq) {
      const row = conn().prepare<[number], { prev_hash: string; hash: string; event: string }>(
        'SELECT prev_hash, hash, event FROM audit_events WHERE seq = ?',
      ).get(seq);
      return row && { prevHash: row.prev_hash, hash: row.hash, event: row.event };
    },
    async countRows() {
      return conn().prepare<[], { n: number }>('SELECT count(*) AS n FROM audit_events').get()?.n ?? -1;
    },
    async update(seq, column, value) {
      conn().prepare(`UPDATE audit_events SET ${COLUMNS[column]} = ? WHERE seq = ?`).run(value, seq);
    },
    async remove(seq) {
      conn().prepare('DELETE FROM audit_events WHERE seq = ?').run(seq);
    },
    async breakWrites() {
      conn().exec(
        "CREATE TRIGGER test_fail_writes BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'injected write failure'); END",
      );
    },
    async restoreWrites() {
      conn().exec('DROP TRIGGER test_fail_writes');
    },
    async dispose() {
      raw?.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describeAuditStoreContract('SQLite', async () => sqliteHarness());

/** A logger that keeps what it is given. */
function recordingLogger(): AuditLogger & { lines: { level: string; msg: string; obj: object }[] } {
  const lines: { level: string; msg: string; obj: object }[] = [];
  const at = (level: string) => (obj: object, msg: string) => void lines.push({ level, msg, obj });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

describe('SQLite audit store', () => {
  let h: ReturnType<typeof sqliteHarness>;
  const stores: SqliteAuditStore[] = [];
  const open = (opts: Partial<Parameters<typeof openSqliteAuditStore>[0]> = {}): SqliteAuditStore => {
    const s = openSqliteAuditStore({ path: h.path, ...opts });
    stores.push(s);
    return s;
  };
  beforeEach(() => {
    h = sqliteHarness();
  });
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    await h.dispose();
  });

  it('creates an owner-only file in WAL mode with the v3 schema', () => {
    open();
    expect(statSync(h.path).mode & 0o777).toBe(0o600);
    const raw = new Database(h.path, { readonly: true });
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(raw.pragma('user_version', { simple: true })).toBe(3);
      const indexes = raw
        .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_events' ORDER BY name")
        .all()
        .map((r) => r.name);
      expect(indexes).toEqual([
        'audit_events_action',
        'audit_events_actor',
        'audit_events_app',
        'audit_events_commit',
        'audit_events_outcome',
        'audit_events_request',
        'audit_events_time',
      ]);
      const tables = raw.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all().map((r) => r.name);
      expect(tables).toEqual(['audit_anchor', 'audit_checkpoints', 'audit_events', 'audit_head', 'sqlite_sequence']);
      // The counter starts at 0 after the genesis hash, with a random store id.
      expect(raw.prepare('SELECT id, seq, hash FROM audit_head').all()).toEqual([{ id: 1, seq: 0, hash: '0'.repeat(64) }]);
      expect(raw.prepare<[], { store_id: string }>('SELECT store_id FROM audit_head').get()?.store_id).toMatch(/^[0-9a-f-]{36}$/);
    } finally {
      raw.close();
    }
  });

  it('commits 1000 concurrent appends in one transaction', async () => {
    const store = open();
    await Promise.all(Array.from({ length: 1000 }, (_, i) => store.append(makeEvent({ requestId: `r${i}` }))));
    expect(store.stats).toMatchObject({ transactions: 1, failedTransactions: 0, events: 1000, maxBatchSize: 1000 });
  });

  it('splits a queue longer than maxBatchSize over several transactions', async () => {
    const store = open({ maxBatchSize: 300 });
    const events = await Promise.all(Array.from({ length: 1000 }, (_, i) => store.append(makeEvent({ requestId: `r${i}` }))));
    expect(store.stats).toMatchObject({ transactions: 4, failedTransactions: 0, events: 1000, maxBatchSize: 300 });
    expect(events[999]?.seq).toBe(1000);
    expect(await store.verify()).toEqual({ ok: true, checked: 1000 });
  });

  it('appends issued in separate turns share a transaction only when queued together', async () => {
    const store = open();
    await store.append(makeEvent({ requestId: 'a' }));
    await store.append(makeEvent({ requestId: 'b' }));
    await Promise.all([store.append(makeEvent({ requestId: 'c' })), store.append(makeEvent({ requestId: 'd' }))]);
    expect(store.stats).toMatchObject({ transactions: 3, failedTransactions: 0, events: 4, maxBatchSize: 2 });
  });

  it('fails closed while another connection holds the write lock', async () => {
    const logger = recordingLogger();
    const store = open({ busyTimeoutMs: 50, logger });
    await store.append(makeEvent({ requestId: 'before' }));
    const locker = new Database(h.path);
    try {
      locker.exec('BEGIN IMMEDIATE');
      const err = await store.append(makeEvent({ requestId: 'blocked' })).then(
        () => undefined,
        (e: unknown) => e as Error & { code: string; cause: { code: string } },
      );
      expect(err?.code).toBe('CFG_ERR_AUDIT_UNAVAILABLE');
      expect(err?.message).toBe('The audit log cannot record this request: the SQLite audit store could not commit the event');
      expect(err?.cause.code).toBe('SQLITE_BUSY');
      expect(store.healthy).toBe(false);
      locker.exec('COMMIT');
    } finally {
      locker.close();
    }
    const after = await store.append(makeEvent({ requestId: 'after' }));
    expect(after.seq).toBe(2);
    expect(store.healthy).toBe(true);
    expect(logger.lines.map((l) => [l.level, l.msg])).toEqual([
      ['info', 'audit store opened'],
      ['error', 'audit store write failed; failing requests closed'],
      ['info', 'audit store writes recovered'],
    ]);
    expect(logger.lines[0]?.obj).toEqual({ path: h.path, lastSeq: 0 });
  });

  it('a caller that stops waiting before the commit withdraws its event; the next commit makes the store healthy', async () => {
    const store = open({ commitWindowMs: 300 });
    const err = await store.append(makeEvent({ requestId: 'late' }), { timeoutMs: 20 }).then(
      () => undefined,
      (e: unknown) => e as Error & { code: string; data: unknown },
    );
    expect(err).toMatchObject({
      code: 'CFG_ERR_AUDIT_UNAVAILABLE',
      message: 'The audit log cannot record this request: the audit event was not committed within 20 ms (it was withdrawn, never written)',
      data: { timedOut: true, inDoubt: false },
    });
    expect(store.health).toMatchObject({ healthy: false, reason: 'an audit event was not committed within 20 ms' });
    expect(store.stats).toMatchObject({ commitTimeouts: 1, inDoubt: 0 });
    const next = await store.append(makeEvent({ requestId: 'next' }));
    expect(next.seq).toBe(1);
    expect(store.health).toEqual({ healthy: true });
    expect(ids((await store.query({})).events)).toEqual(['next']);
  });

  it('probe fails while another connection holds the write lock, naming it, and passes once it is free', async () => {
    const store = open({ busyTimeoutMs: 50 });
    const locker = new Database(h.path);
    try {
      locker.exec('BEGIN IMMEDIATE');
      await store.probe(5000);
      expect(store.health).toMatchObject({ healthy: false, reason: 'probe failed: database is locked' });
      locker.exec('COMMIT');
    } finally {
      locker.close();
    }
    await store.probe(5000);
    expect(store.health).toEqual({ healthy: true });
    expect(store.stats).toMatchObject({ probes: 2, probeFailures: 1, transactions: 0 });
  });

  it('refuses to open a directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'audit-dir-'));
    try {
      let caught: (Error & { code?: string; cause?: { code?: string } }) | undefined;
      try {
        openSqliteAuditStore({ path: dir });
      } catch (e) {
        caught = e as Error & { code?: string; cause?: { code?: string } };
      }
      expect(caught?.code).toBe('CFG_ERR_AUDIT_UNAVAILABLE');
      expect(caught?.message).toBe(`The audit log cannot record this request: cannot open the SQLite audit store at ${dir}`);
      expect(caught?.cause?.code).toBe('EISDIR');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a database with a newer schema', async () => {
    const first = open();
    await first.close();
    const raw = new Database(h.path);
    raw.pragma('user_version = 4');
    raw.close();
    expect(() => openSqliteAuditStore({ path: h.path })).toThrow(
      expect.objectContaining({ code: 'CFG_ERR_AUDIT_UNAVAILABLE', cause: expect.objectContaining({ message: 'the database has schema version 4; this build knows up to 3' }) }),
    );
  });

  it('createAuditStore opens the SQLite kind and takes a pino logger', async () => {
    const store = await createAuditStore({ kind: 'sqlite', path: h.path }, pino({ enabled: false }));
    try {
      const e = await store.append(makeEvent());
      expect(e.seq).toBe(1);
      expect(await store.verify()).toEqual({ ok: true, checked: 1 });
    } finally {
      await store.close();
    }
    await expect(createAuditStore({ kind: 'sqlite', path: join(h.path, 'under-a-file') })).rejects.toMatchObject({
      code: 'CFG_ERR_AUDIT_UNAVAILABLE',
    });
  });
});
