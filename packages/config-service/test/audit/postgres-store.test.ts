/**
 * The PostgreSQL audit store on a real PostgreSQL server: the shared store contract, then
 * what only PostgreSQL has (several replicas on one table, credentials in the connection
 * string). Each test gets a fresh, randomly named table, dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  auditStoreSettings,
  createAuditStore,
  openPostgresAuditStore,
  type PostgresAuditStore,
  type PostgresAuditStoreOptions,
} from '../../src/audit/index.js';
import { advisoryLockKey, anchorTableName, auditTableNames, connectionSecrets, scrubError } from '../../src/audit/postgres-store.js';
import type { AuditEvent, AuditLogger } from '../../src/audit/types.js';
import { makeEvent } from './helpers.js';
import { testDatabaseUrl } from './pg-test-db.js';
import { describeAuditStoreContract, type AuditStoreHarness, type RawColumn } from './store-contract.js';

const COLUMNS: Record<RawColumn, string> = { event: 'event', hash: 'hash', prevHash: 'prev_hash', app: 'app' };

let url = '';
let admin: pg.Pool | undefined;
const db = (): pg.Pool => {
  if (!admin) throw new Error('the PostgreSQL test database is not prepared (see the beforeAll error)');
  return admin;
};

beforeAll(() => {
  url = testDatabaseUrl();
  admin = new pg.Pool({ connectionString: url, max: 2 });
}, 120_000);
afterAll(async () => {
  await admin?.end();
});

const randomTable = (): string => `audit_t_${randomBytes(6).toString('hex')}`;

/** A fresh table name, and an independent connection (the admin pool) to the same database. */
function postgresHarness(): AuditStoreHarness & { table: string } {
  const table = randomTable();
  const t = `"${table}"`;
  return {
    table,
    async open(opts = {}) {
      return openPostgresAuditStore({ connectionString: url, table, ...opts });
    },
    async setCounter(seq, hash) {
      await db().query(`UPDATE "${table}_head" SET seq = $1, hash = $2 WHERE id = 1`, [seq, hash]);
    },
    async setAnchor(seq, prevHash, checkpoint) {
      await db().query(
        `INSERT INTO "${table}_anchor" (id, seq, prev_hash, checkpoint) VALUES (1, $1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, prev_hash = excluded.prev_hash, checkpoint = excluded.checkpoint`,
        [seq, prevHash, checkpoint],
      );
    },
    async readRow(seq) {
      const { rows } = await db().query<{ prev_hash: string; hash: string; event: string }>(
        `SELECT prev_hash, hash, event FROM ${t} WHERE seq = $1`,
        [seq],
      );
      const row = rows[0];
      return row && { prevHash: row.prev_hash, hash: row.hash, event: row.event };
    },
    async countRows() {
      const { rows } = await db().query<{ n: number }>(`SELECT count(*)::int AS n FROM ${t}`);
      return rows[0]?.n ?? -1;
    },
    async update(seq, column, value) {
      await db().query(`UPDATE ${t} SET ${COLUMNS[column]} = $1 WHERE seq = $2`, [value, seq]);
    },
    async remove(seq) {
      await db().query(`DELETE FROM ${t} WHERE seq = $1`, [seq]);
    },
    async breakWrites() {
      // Checked for every new row; existing rows are not (NOT VALID).
      await db().query(`ALTER TABLE ${t} ADD CONSTRAINT test_fail_writes CHECK (false) NOT VALID`);
    },
    async restoreWrites() {
      await db().query(`ALTER TABLE ${t} DROP CONSTRAINT test_fail_writes`);
    },
    async dispose() {
      await db().query(`DROP TABLE IF EXISTS ${auditTableNames(table).map((n) => `"${n}"`).join(", ")}`);
    },
  };
}

describeAuditStoreContract('PostgreSQL', async () => postgresHarness());

/** A logger that keeps what it is given. */
function recordingLogger(): AuditLogger & { lines: { level: string; msg: string; obj: object }[] } {
  const lines: { level: string; msg: string; obj: object }[] = [];
  const at = (level: string) => (obj: object, msg: string) => void lines.push({ level, msg, obj });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

/** A real pino logger whose serialised lines are kept (what a log shipper would see). */
function pinoCapture(): { logger: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(line);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

/** Every text an error could show: message, stack, own properties and causes, as JSON too. */
function errorText(err: unknown, depth = 0): string {
  if (!(err instanceof Error) || depth > 5) return String(err);
  const own: Record<string, unknown> = {};
  for (const k of Object.getOwnPropertyNames(err)) own[k] = (err as unknown as Record<string, unknown>)[k];
  let json = '';
  try {
    json = JSON.stringify(own);
  } catch {
    json = '';
  }
  return [err.message, err.stack ?? '', json, String(err), errorText(err.cause, depth + 1)].join('\n');
}

async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; statusCode?: number }> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e as Error & { code?: string; statusCode?: number },
  );
}

describe('PostgreSQL audit store', () => {
  const tables: string[] = [];
  const stores: PostgresAuditStore[] = [];
  const open = async (opts: Partial<PostgresAuditStoreOptions> = {}): Promise<PostgresAuditStore> => {
    const s = await openPostgresAuditStore({ connectionString: url, table: tables[0] ?? 'unused', ...opts });
    stores.push(s);
    return s;
  };
  const freshTable = (): string => {
    const t = randomTable();
    tables.push(t);
    return t;
  };
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    for (const t of tables.splice(0)) await db().query(`DROP TABLE IF EXISTS ${auditTableNames(t).map((n) => `"${n}"`).join(", ")}`);
  });

  it('creates the table with seq BIGINT primary key, the filter indexes and a bytewise time column', async () => {
    const table = freshTable();
    await open({ table });
    const cols = await db().query<{ column_name: string; data_type: string; collation_name: string | null }>(
      'SELECT column_name, data_type, collation_name FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position',
      [table],
    );
    expect(cols.rows.map((c) => c.column_name)).toEqual([
      'seq', 'time', 'request_id', 'actor_kind', 'actor_subject', 'action', 'app', 'commit_id', 'outcome', 'status',
      'prev_hash', 'hash', 'event',
    ]);
    expect(cols.rows[0]?.data_type).toBe('bigint');
    expect(cols.rows[1]?.collation_name).toBe('C');
    const idx = await db().query<{ indexname: string }>('SELECT indexname FROM pg_indexes WHERE tablename = $1 ORDER BY indexname', [table]);
    expect(idx.rows.map((r) => r.indexname)).toEqual(
      ['action', 'actor', 'app', 'commit', 'outcome', 'request', 'time'].map((s) => `${table}_${s}`).concat(`${table}_pkey`).sort(),
    );
    // The counter and the checkpoint table, beside the anchor table.
    const companions = await db().query<{ tablename: string }>('SELECT tablename FROM pg_tables WHERE tablename LIKE $1 ORDER BY tablename', [`${table}%`]);
    expect(companions.rows.map((r) => r.tablename)).toEqual([table, `${table}_anchor`, `${table}_checkpoints`, `${table}_head`]);
    const head = await db().query(`SELECT id, seq, hash FROM "${table}_head"`);
    expect(head.rows).toEqual([{ id: 1, seq: '0', hash: '0'.repeat(64) }]);
  });

  it('keeps index names distinct for the longest table name', async () => {
    const table = `a${'b'.repeat(50)}_${randomBytes(5).toString('hex')}`;
    expect(table.length).toBe(62);
    tables.push(table);
    await open({ table });
    const idx = await db().query<{ indexname: string }>('SELECT indexname FROM pg_indexes WHERE tablename = $1', [table]);
    expect(new Set(idx.rows.map((r) => r.indexname)).size).toBe(8);
    for (const name of auditTableNames(table)) expect(name.length).toBeLessThanOrEqual(63);
  });

  it('two replicas appending 500 events each at once build one valid chain of 1000 without gaps', async () => {
    const table = freshTable();
    // Opened together on a fresh table: the schema is created once, under the lock.
    const [a, b] = await Promise.all([open({ table, maxBatchSize: 37 }), open({ table, maxBatchSize: 37 })]);
    if (!a || !b) throw new Error('stores not opened');
    const run = async (store: PostgresAuditStore, name: string): Promise<AuditEvent[]> => {
      const out: Promise<AuditEvent>[] = [];
      for (let i = 0; i < 500; i++) {
        out.push(store.append(makeEvent({ requestId: `${name}${i}` })));
        // Arrive over several turns of the event loop, as requests do.
        if (i % 50 === 49) await new Promise((r) => setImmediate(r));
      }
      return Promise.all(out);
    };
    const [ea, eb] = await Promise.all([run(a, 'a'), run(b, 'b')]);

    // Each replica's events got increasing seq in its own call order.
    for (const events of [ea, eb]) {
      for (let i = 1; i < events.length; i++) expect(events[i]!.seq).toBeGreaterThan(events[i - 1]!.seq);
    }
    // Together: every seq from 1 to 1000 exactly once, each linked to the one before.
    const all = [...ea, ...eb].sort((x, y) => x.seq - y.seq);
    expect(all.map((e) => e.seq)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    for (let i = 1; i < all.length; i++) expect(all[i]!.prevHash).toBe(all[i - 1]!.hash);
    // The replicas' batches really interleaved in the one chain.
    const switches = all.filter((e, i) => i > 0 && e.requestId[0] !== all[i - 1]!.requestId[0]).length;
    expect(switches).toBeGreaterThan(2);

    const { rows } = await db().query<{ n: number; max: string }>(`SELECT count(*)::int AS n, max(seq)::text AS max FROM "${table}"`);
    expect(rows[0]).toEqual({ n: 1000, max: '1000' });
    expect(await a.verify()).toEqual({ ok: true, checked: 1000 });
    expect(await b.verify()).toEqual({ ok: true, checked: 1000 });
    expect(a.stats.events + b.stats.events).toBe(1000);
    expect(a.stats.failedTransactions + b.stats.failedTransactions).toBe(0);
    expect(a.stats.transactions).toBeGreaterThanOrEqual(14);
    expect(a.stats.maxBatchSize).toBeLessThanOrEqual(37);
  });

  it('a replica sees the events another replica committed (query and chain)', async () => {
    const table = freshTable();
    const a = await open({ table });
    const b = await open({ table });
    const e1 = await a.append(makeEvent({ requestId: 'from-a' }));
    const e2 = await b.append(makeEvent({ requestId: 'from-b' }));
    expect(e2.seq).toBe(2);
    expect(e2.prevHash).toBe(e1.hash);
    expect((await a.query({})).events.map((e) => e.requestId)).toEqual(['from-b', 'from-a']);
  });

  it('waits for the write lock another transaction holds, and commits after it', async () => {
    const table = freshTable();
    const store = await open({ table });
    await store.append(makeEvent({ requestId: 'first' }));
    const locker = await db().connect();
    try {
      await locker.query('BEGIN');
      await locker.query('SELECT pg_advisory_xact_lock($1::bigint)', [advisoryLockKey(table)]);
      let settled = false;
      const p = store.append(makeEvent({ requestId: 'waited' })).finally(() => {
        settled = true;
      });
      await new Promise((r) => setTimeout(r, 300));
      expect(settled).toBe(false);
      await locker.query('COMMIT');
      expect((await p).seq).toBe(2);
    } finally {
      locker.release();
    }
  });

  it('prune takes the same write lock as appends', async () => {
    const table = freshTable();
    const store = await open({ table });
    await store.append(makeEvent({ requestId: 'old', time: '2025-01-01T00:00:00.000Z' }));
    const locker = await db().connect();
    try {
      await locker.query('BEGIN');
      await locker.query('SELECT pg_advisory_xact_lock($1::bigint)', [advisoryLockKey(table)]);
      let settled = false;
      const p = store.prune('2030-01-01').finally(() => {
        settled = true;
      });
      await new Promise((r) => setTimeout(r, 300));
      expect(settled).toBe(false);
      await locker.query('COMMIT');
      expect(await p).toEqual({ deleted: 1 });
    } finally {
      locker.release();
    }
    expect(await store.verify()).toEqual({ ok: true, checked: 0 });
  });

  it('adds the anchor table to a table created before retention existed', async () => {
    const table = freshTable();
    const first = await open({ table });
    await first.append(makeEvent({ requestId: 'a', time: '2025-01-01T00:00:00.000Z' }));
    await first.append(makeEvent({ requestId: 'b', time: '2025-01-02T00:00:00.000Z' }));
    await first.close();
    await db().query(`DROP TABLE "${anchorTableName(table)}"`);
    const second = await open({ table });
    expect(await second.prune('2025-01-02')).toEqual({ deleted: 1 });
    expect(await second.verify()).toEqual({ ok: true, checked: 1 });
    expect(anchorTableName('t'.repeat(63)).length).toBeLessThanOrEqual(63);
  });

  it('adds the counter to a table created before it existed, starting after the last stored event', async () => {
    const table = freshTable();
    const first = await open({ table });
    await first.append(makeEvent({ requestId: 'a' }));
    const b = await first.append(makeEvent({ requestId: 'b' }));
    await first.close();
    await db().query(`DROP TABLE "${table}_head", "${table}_checkpoints"`);
    await db().query(`ALTER TABLE "${table}_anchor" DROP COLUMN checkpoint`);
    const second = await open({ table });
    const c = await second.append(makeEvent({ requestId: 'c' }));
    expect(c.seq).toBe(3);
    expect(c.prevHash).toBe(b.hash);
    expect(await second.verify()).toEqual({ ok: true, checked: 3 });
    const column = await db().query(`SELECT 1 FROM information_schema.columns WHERE table_name = $1 AND column_name = 'checkpoint'`, [`${table}_anchor`]);
    expect(column.rowCount).toBe(1);
  });

  it('continues after rows an older version appended without moving the counter (rolling upgrade)', async () => {
    const table = freshTable();
    const store = await open({ table });
    const a = await store.append(makeEvent({ requestId: 'a' }));
    // What a replica of the previous version does: insert after the last row, leave the counter alone.
    await db().query(`UPDATE "${table}_head" SET seq = 0, hash = $1`, ['0'.repeat(64)]);
    const b = await store.append(makeEvent({ requestId: 'b' }));
    expect([b.seq, b.prevHash]).toEqual([2, a.hash]);
    expect(await store.verify()).toEqual({ ok: true, checked: 2 });
  });

  it('fails closed when the lock is held past the statement timeout, then recovers', async () => {
    const table = freshTable();
    const logger = recordingLogger();
    const store = await open({ table, queryTimeoutMs: 200, logger });
    const locker = await db().connect();
    try {
      await locker.query('BEGIN');
      await locker.query('SELECT pg_advisory_xact_lock($1::bigint)', [advisoryLockKey(table)]);
      const err = await rejection(store.append(makeEvent({ requestId: 'blocked' })));
      expect(err.code).toBe('CFG_ERR_AUDIT_UNAVAILABLE');
      expect(err.statusCode).toBe(503);
      expect(err.message).toBe('The audit log cannot record this request: the PostgreSQL audit store could not commit the event');
      expect((err.cause as { code?: string }).code).toBe('57014'); // query_canceled (statement timeout)
      expect(store.healthy).toBe(false);
      await locker.query('COMMIT');
    } finally {
      locker.release();
    }
    expect((await store.append(makeEvent({ requestId: 'after' }))).seq).toBe(1);
    expect(store.healthy).toBe(true);
    expect(logger.lines.map((l) => [l.level, l.msg])).toEqual([
      ['info', 'audit store opened'],
      ['error', 'audit store write failed; failing requests closed'],
      ['info', 'audit store writes recovered'],
    ]);
    expect(logger.lines[0]?.obj).toEqual({ store: 'postgres', table, lastSeq: 0 });
  });

  it('a caller that stops waiting: a queued event is withdrawn, an in-flight one is rolled back before COMMIT', async () => {
    const table = freshTable();
    const store = await open({ table });
    const locker = await db().connect();
    let released = false;
    try {
      // Another session holds the chain's lock: the first batch waits in its transaction.
      await locker.query('BEGIN');
      await locker.query('SELECT pg_advisory_xact_lock($1::bigint)', [advisoryLockKey(table)]);
      const inFlight = rejection(store.append(makeEvent({ requestId: 'in-doubt' }), { timeoutMs: 300 }));
      await new Promise((r) => setTimeout(r, 50)); // the flush has taken it
      const queued = rejection(store.append(makeEvent({ requestId: 'withdrawn' }), { timeoutMs: 300 }));
      const [a, b] = await Promise.all([inFlight, queued]);
      expect(a).toMatchObject({
        code: 'CFG_ERR_AUDIT_UNAVAILABLE',
        statusCode: 503,
        message: 'The audit log cannot record this request: the audit event was not committed within 300 ms (its transaction was in flight and may still commit)',
        data: { timedOut: true, inDoubt: true },
      });
      expect(b).toMatchObject({
        message: 'The audit log cannot record this request: the audit event was not committed within 300 ms (it was withdrawn, never written)',
        data: { timedOut: true, inDoubt: false },
      });
      expect(store.health).toMatchObject({ healthy: false, reason: 'an audit event was not committed within 300 ms' });
      expect(store.stats).toMatchObject({ commitTimeouts: 2, inDoubt: 1 });
      store.appendEventually(makeEvent({ requestId: 'in-doubt', status: 503, outcome: 'error', reason: 'audit_unavailable:commit_timeout' }));
      // A caller that still waits, queued behind: written once the lock is free.
      const waiting = store.append(makeEvent({ requestId: 'patient' }));
      await locker.query('COMMIT');
      released = true;
      expect((await waiting).requestId).toBe('patient');
    } finally {
      if (!released) await locker.query('ROLLBACK');
      locker.release();
    }
    // The transaction of the abandoned event got the lock after its caller gave up: it was
    // rolled back before COMMIT. The withdrawn event was never written either; the refusal
    // record (deferred) follows the event of the caller that waited.
    await until(async () => Number((await db().query<{ n: string }>(`SELECT count(*) AS n FROM "${table}"`)).rows[0]?.n) === 2);
    const events = (await store.query({})).events;
    expect(events.map((e) => [e.seq, e.requestId, e.status])).toEqual([
      [2, 'in-doubt', 503],
      [1, 'patient', 200],
    ]);
    expect(await store.verify()).toEqual({ ok: true, checked: 2 });
    expect(store.health).toEqual({ healthy: true });
  });

  it('a caller that stops waiting during COMMIT: the event may be committed, and then precedes its refusal record', async () => {
    const table = freshTable();
    const store = await open({ table });
    await store.append(makeEvent({ requestId: 'first' }));
    // COMMIT itself takes a while: a deferred constraint trigger sleeps when it fires at COMMIT.
    await db().query(`CREATE FUNCTION "${table}_slow"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(1); RETURN NULL; END $$`);
    await db().query(
      `CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON "${table}" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "${table}_slow"()`,
    );
    try {
      const err = await rejection(store.append(makeEvent({ requestId: 'in-doubt' }), { timeoutMs: 300 }));
      expect(err).toMatchObject({ data: { timedOut: true, inDoubt: true } });
      store.appendEventually(makeEvent({ requestId: 'in-doubt', status: 503, outcome: 'error', reason: 'audit_unavailable:commit_timeout' }));
      await until(async () => Number((await db().query<{ n: string }>(`SELECT count(*) AS n FROM "${table}"`)).rows[0]?.n) === 3);
    } finally {
      await db().query(`DROP TRIGGER slow_commit ON "${table}"`);
      await db().query(`DROP FUNCTION "${table}_slow"()`);
    }
    // The database committed it although its caller had given up; the refusal record, written
    // later under the chain's lock, comes after it: the request was not served.
    const events = (await store.query({})).events;
    expect(events.map((e) => [e.seq, e.requestId, e.status])).toEqual([
      [3, 'in-doubt', 503],
      [2, 'in-doubt', 200],
      [1, 'first', 200],
    ]);
    expect(store.stats).toMatchObject({ commitTimeouts: 1, inDoubt: 1 });
    expect(await store.verify()).toEqual({ ok: true, checked: 3 });
  });

  it('probe: names the failure and recovers when the lock is free again', async () => {
    const table = freshTable();
    const store = await open({ table, queryTimeoutMs: 200 });
    const locker = await db().connect();
    try {
      await locker.query('BEGIN');
      await locker.query('SELECT pg_advisory_xact_lock($1::bigint)', [advisoryLockKey(table)]);
      await store.probe(5000);
      expect(store.health).toMatchObject({
        healthy: false,
        reason: "probe failed: a statement ran longer than 200 ms (statement_timeout; another replica holding the chain's lock?)",
      });
      // A probe that does not finish in its own time fails too.
      await store.probe(50);
      expect(store.health.reason).toBe('probe failed: the probe did not finish within 50 ms');
      expect(store.stats).toMatchObject({ probes: 2, probeFailures: 2 });
      await locker.query('COMMIT');
    } finally {
      locker.release();
    }
    await until(async () => {
      await store.probe(5000);
      return store.healthy;
    });
    expect(store.health).toEqual({ healthy: true });
  });

  it('reconnects after the server drops its connections', async () => {
    const table = freshTable();
    const { logger, lines } = pinoCapture();
    const store = await open({ table, logger });
    await store.append(makeEvent({ requestId: 'before' }));
    await db().query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'config-service-audit' AND datname = current_database()",
    );
    // The idle connection is gone; the next write may fail once, never silently.
    const results = await Promise.allSettled([store.append(makeEvent({ requestId: 'x' }))]);
    if (results[0]?.status === 'rejected') {
      expect((results[0].reason as { code?: string }).code).toBe('CFG_ERR_AUDIT_UNAVAILABLE');
    }
    const after = await store.append(makeEvent({ requestId: 'after' }));
    expect(store.healthy).toBe(true);
    expect(await store.verify()).toEqual({ ok: true, checked: after.seq });
    for (const line of lines) expect(line).not.toContain(url);
  });

  it('never puts the password in an error or a log line', async () => {
    const password = `Pw-${randomBytes(9).toString('hex')}`;
    const parsed = new URL(url);
    const cases = [
      // Wrong password: the server refuses the login.
      `postgres://${parsed.username}:${password}@${parsed.host}${parsed.pathname}`,
      // Nothing listens there.
      `postgres://someone:${password}@127.0.0.1:1/db`,
      // Not a URL pg can read.
      `postgres://someone:${password}@[::1/db`,
      // The password as a parameter, percent-encoded.
      `postgres://${parsed.username}@${parsed.host}${parsed.pathname}?password=${encodeURIComponent(`${password}/#`)}`,
    ];
    for (const connectionString of cases) {
      const { logger, lines } = pinoCapture();
      const err = await rejection(
        createAuditStore({ kind: 'postgres', connectionString, table: randomTable(), poolSize: 1 }, logger),
      );
      expect(err.code).toBe('CFG_ERR_AUDIT_UNAVAILABLE');
      expect(err.statusCode).toBe(503);
      const text = errorText(err);
      expect(text).not.toContain(password);
      expect(text).not.toContain(connectionString);
      // A log shipper sees the error as pino serialises it.
      logger.error({ err }, 'audit store failed to open');
      for (const line of lines) expect(line).not.toContain(password);
      expect(lines.length).toBeGreaterThan(0);
    }
  });

  it('keeps the password out of write failures and their log lines', async () => {
    const table = freshTable();
    const { logger, lines } = pinoCapture();
    const store = await open({ table, logger });
    const password = decodeURIComponent(new URL(url).password);
    await db().query(`ALTER TABLE "${table}" ADD CONSTRAINT test_fail_writes CHECK (false) NOT VALID`);
    const err = await rejection(store.append(makeEvent()));
    expect(err.code).toBe('CFG_ERR_AUDIT_UNAVAILABLE');
    logger.error({ err }, 'request failed');
    const text = [errorText(err), ...lines].join('\n');
    expect(text).toContain('test_fail_writes');
    expect(text).not.toContain(url);
    if (password) expect(text).not.toContain(`:${password}@`);
  });

  it('scrubs a pg error that quotes the connection string', () => {
    const cs = 'postgres://u:s%40cret@h/db';
    const secrets = connectionSecrets(cs);
    expect(secrets).toEqual(expect.arrayContaining([cs, 's%40cret', 's@cret']));
    const err = Object.assign(new Error(`cannot connect with ${cs}`), { code: 'EFAKE', input: cs });
    const scrubbed = scrubError(err, secrets);
    expect(scrubbed).not.toBe(err);
    expect(errorText(scrubbed)).not.toContain('cret');
    expect((scrubbed as { code?: string }).code).toBe('EFAKE');
    expect(scrubbed.message).toBe('cannot connect with [REDACTED]');
    const clean = new Error('password authentication failed for user "u"');
    expect(scrubError(clean, secrets)).toBe(clean);
  });

  it('refuses a table name that is not a plain identifier', async () => {
    await expect(openPostgresAuditStore({ connectionString: url, table: 'x"; DROP TABLE y; --' })).rejects.toThrow(TypeError);
  });

  it('createAuditStore opens the kind auditStoreSettings builds from the settings and the environment', async () => {
    const table = freshTable();
    const settings = {
      audit: { store: 'postgres' as const, postgres: { connectionStringEnv: 'MY_AUDIT_DB', table, poolSize: 2 } },
    };
    const built = auditStoreSettings(settings, { MY_AUDIT_DB: url });
    expect(built).toEqual({ kind: 'postgres', connectionString: url, table, poolSize: 2, connectTimeoutMs: 5000, queryTimeoutMs: 5000 });
    const store = await createAuditStore(built, pino({ enabled: false }));
    try {
      expect((await store.append(makeEvent())).seq).toBe(1);
      expect(await store.verify()).toEqual({ ok: true, checked: 1 });
    } finally {
      await store.close();
    }
    // Defaults, and the variable missing: the error names the variable, not a value.
    expect(auditStoreSettings({ audit: { store: 'postgres' } }, { CONFIG_SERVICE_AUDIT_DATABASE_URL: url })).toEqual({
      kind: 'postgres',
      connectionString: url,
      table: 'audit_events',
      poolSize: 10,
      connectTimeoutMs: 5000,
      queryTimeoutMs: 5000,
    });
    expect(() => auditStoreSettings(settings, {})).toThrow(
      expect.objectContaining({ code: 'CFG_ERR_SETTINGS_INVALID', message: expect.stringContaining('MY_AUDIT_DB') }),
    );
    expect(auditStoreSettings({ audit: { store: 'sqlite', sqlitePath: '/x/audit.sqlite' } }, {})).toEqual({
      kind: 'sqlite',
      path: '/x/audit.sqlite',
    });
    // audit.commitTimeoutMs bounds how long a SQLite write waits for the file's lock.
    expect(auditStoreSettings({ audit: { store: 'sqlite', sqlitePath: '/x/audit.sqlite', commitTimeoutMs: 1500 } }, {})).toEqual({
      kind: 'sqlite',
      path: '/x/audit.sqlite',
      busyTimeoutMs: 1500,
    });
  });
});

/** Polls `check` every 20 ms until it holds (10 s at most). */
async function until(check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met within 10 s');
    await new Promise((r) => setTimeout(r, 20));
  }
}
