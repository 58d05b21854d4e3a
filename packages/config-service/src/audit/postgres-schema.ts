/**
 * The PostgreSQL audit store's tables: names, DDL, and the advisory lock key of a chain.
 *
 * For a table `<t>` (`audit.postgres.table`): `<t>` (the events), `<t>_anchor` (the
 * retention anchor), `<t>_head` (the counter: store id, `seq` and hash of the last event
 * ever written) and `<t>_checkpoints` (signed checkpoints). Names longer than PostgreSQL's
 * 63 bytes are shortened with a hash of the table name.
 */
import { createHash, randomUUID } from 'node:crypto';
import type pg from 'pg';
import { GENESIS_HASH } from './chain.js';
import { lockChain } from './postgres-transaction.js';

function sha256Hex(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

/** `<table>_<suffix>`, shortened (with a hash of the table name) past 63 bytes. */
function companion(table: string, suffix: string): string {
  const name = `${table}_${suffix}`;
  return name.length <= 63 ? name : `${table.slice(0, 62 - suffix.length - 9)}_${sha256Hex(table).slice(0, 8)}_${suffix}`;
}

/**
 * The name of a table's retention anchor table: `<table>_anchor`, shortened (with a hash of
 * the table name) when that would exceed PostgreSQL's 63 bytes.
 */
export function anchorTableName(table: string): string {
  return table.length <= 56 ? `${table}_anchor` : `${table.slice(0, 47)}_${sha256Hex(table).slice(0, 8)}_anchor`;
}

/** The name of a table's counter table: `<table>_head` (shortened past 63 bytes). */
export function headTableName(table: string): string {
  return companion(table, 'head');
}

/** The name of a table's checkpoint table: `<table>_checkpoints` (shortened past 63 bytes). */
export function checkpointTableName(table: string): string {
  return companion(table, 'checkpoints');
}

/** One store's tables, double-quoted for SQL, and its chain's advisory lock key. */
export interface PgAuditTables {
  /** The events table's name as configured, unquoted (for messages and the schema). */
  name: string;
  /** The events table. */
  events: string;
  /** The retention anchor table ({@link anchorTableName}). */
  anchor: string;
  /** The counter table ({@link headTableName}). */
  head: string;
  /** The checkpoint table ({@link checkpointTableName}). */
  checkpoints: string;
  /** {@link advisoryLockKey} of the table. */
  lockKey: string;
}

/** The {@link PgAuditTables} of `table` (a name already checked against `^[a-z_][a-z0-9_]{0,62}$`). */
export function pgAuditTables(table: string): PgAuditTables {
  return {
    name: table,
    events: `"${table}"`,
    anchor: `"${anchorTableName(table)}"`,
    head: `"${headTableName(table)}"`,
    checkpoints: `"${checkpointTableName(table)}"`,
    lockKey: advisoryLockKey(table),
  };
}

/** Every table the store keeps for `table` (to drop them all, e.g. in tests). */
export function auditTableNames(table: string): string[] {
  return [table, anchorTableName(table), headTableName(table), checkpointTableName(table)];
}

function indexPrefix(table: string): string {
  return table.length <= 48 ? table : `${table.slice(0, 39)}_${sha256Hex(table).slice(0, 8)}`;
}

/** The DDL of the events table and its indexes. Index names stay within PostgreSQL's 63 bytes. */
export function schemaSql(table: string): string[] {
  const t = `"${table}"`;
  const prefix = indexPrefix(table);
  const index = (suffix: string, columns: string): string =>
    `CREATE INDEX IF NOT EXISTS "${prefix}_${suffix}" ON ${t} (${columns})`;
  // `event` holds the exact canonical JSON that was hashed (with `seq`); the other columns
  // copy the filterable fields. `time` compares bytewise (it sorts as text). Each filter
  // index ends with `seq`, so `WHERE app = $1 AND seq < $2 ORDER BY seq DESC` is one range scan.
  return [
    `CREATE TABLE IF NOT EXISTS ${t} (
      seq           BIGINT  PRIMARY KEY CHECK (seq > 0),
      time          TEXT    COLLATE "C" NOT NULL,
      request_id    TEXT    NOT NULL,
      actor_kind    TEXT    NOT NULL,
      actor_subject TEXT,
      action        TEXT    NOT NULL,
      app           TEXT,
      commit_id     TEXT,
      outcome       TEXT    NOT NULL,
      status        INTEGER NOT NULL,
      prev_hash     TEXT    NOT NULL,
      hash          TEXT    NOT NULL,
      event         TEXT    NOT NULL
    )`,
    `COMMENT ON TABLE ${t} IS 'config-service audit log, schema v1 (hash-chained; do not edit)'`,
    index('time', 'time'),
    index('app', 'app, seq'),
    index('actor', 'actor_subject, seq'),
    index('action', 'action, seq'),
    index('outcome', 'outcome, seq'),
    index('commit', 'commit_id, seq'),
  ];
}

/** The request id index (`GET /v1/audit?requestId=`), added to tables created before it existed. */
export function requestIdIndexSql(table: string): string {
  return `CREATE INDEX IF NOT EXISTS "${indexPrefix(table)}_request" ON "${table}" (request_id, seq)`;
}

/**
 * The DDL of a table's retention anchor (one row at most): the `seq` and `prev_hash` the
 * oldest remaining event (or the next event appended, when none remains) must carry once
 * `prune` deleted old events, and the signed retention checkpoint of the last event
 * deleted (NULL when written without a key). Absent: the chain starts at `seq` 1 after the
 * genesis hash.
 */
export function anchorSchemaSql(table: string): string[] {
  const a = `"${anchorTableName(table)}"`;
  return [
    `CREATE TABLE IF NOT EXISTS ${a} (
      id        SMALLINT PRIMARY KEY CHECK (id = 1),
      seq       BIGINT   NOT NULL CHECK (seq > 0),
      prev_hash TEXT     NOT NULL
    )`,
    `ALTER TABLE ${a} ADD COLUMN IF NOT EXISTS checkpoint TEXT`,
  ];
}

/**
 * The DDL of the counter (one row: the store id and the last event ever written; every
 * write transaction moves it on under the chain's lock, so deleting rows never makes a
 * number be given again) and of the checkpoint table.
 */
export function headSchemaSql(table: string): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS "${headTableName(table)}" (
      id       SMALLINT PRIMARY KEY CHECK (id = 1),
      store_id TEXT     NOT NULL,
      seq      BIGINT   NOT NULL CHECK (seq >= 0),
      hash     TEXT     NOT NULL
    )`,
    `CREATE TABLE IF NOT EXISTS "${checkpointTableName(table)}" (
      id         BIGSERIAL PRIMARY KEY,
      seq        BIGINT    NOT NULL,
      kind       TEXT      NOT NULL,
      checkpoint TEXT      NOT NULL
    )`,
    `CREATE INDEX IF NOT EXISTS "${indexPrefix(table)}_cp_seq" ON "${checkpointTableName(table)}" (seq, id)`,
  ];
}

/**
 * The advisory lock key of a table: the first 8 bytes of SHA-256 of a fixed prefix and
 * the table name, as a signed 64-bit decimal (PostgreSQL's `bigint`).
 */
export function advisoryLockKey(table: string): string {
  return createHash('sha256').update(`config-service audit chain\n${table}`, 'utf8').digest().readBigInt64BE(0).toString();
}

/**
 * Text as a column holds it. PostgreSQL text cannot hold U+0000 and `pg` sends lone
 * surrogates as U+FFFD, so both become U+FFFD, consistently when writing, filtering and
 * verifying (the event JSON, which is what is hashed, keeps them escaped and exact).
 */
export function columnText(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}

export function nullableColumn(s: string | undefined): string | null {
  return s === undefined ? null : columnText(s);
}

/** What {@link prepareSchema} found and created. */
export interface PreparedSchema {
  /** False when the anchor table is missing and could not be created (pruning then fails). */
  hasAnchorTable: boolean;
  /** False when the anchor table has no `checkpoint` column and it could not be added (anchors are then unsigned). */
  anchorSigned: boolean;
  storeId: string;
  /** The last `seq` written. */
  lastSeq: number;
}

/**
 * Creates what is missing, inside a transaction that holds the chain's lock (so replicas
 * starting together do not race): the events table (required), then the parts later
 * versions added — the request id index and the anchor's checkpoint column (optional: a
 * role that may not create them keeps what it can, `warn` says so), the anchor table
 * (optional: pruning is then unavailable), the counter and checkpoint tables (required).
 * The counter starts at the last stored event, or at the anchor when every event was pruned.
 *
 * @param warn told what could not be created (`err`, and what).
 * @param describe a scrubbed message of an error (it may quote the connection string).
 * @throws Error naming what could not be created when a required part fails.
 */
export async function prepareSchema(
  c: pg.PoolClient,
  table: string,
  lockKey: string,
  warn: (err: unknown, what: string) => void,
  describe: (err: unknown) => string,
): Promise<PreparedSchema> {
  const t = `"${table}"`;
  const a = `"${anchorTableName(table)}"`;
  const h = `"${headTableName(table)}"`;
  let hasAnchorTable = true;
  let anchorSigned = true;
  await lockChain(c, lockKey);
  const exists = async (name: string): Promise<boolean> => (await c.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`"${name}"`])).rows[0]?.t !== null;
  /** Runs DDL in a savepoint; a failure is thrown when `required`, else reported and returned as false. */
  const ddl = async (sqls: readonly string[], required: boolean, what: string): Promise<boolean> => {
    await c.query('SAVEPOINT audit_ddl');
    try {
      for (const sql of sqls) await c.query(sql);
      await c.query('RELEASE SAVEPOINT audit_ddl');
      return true;
    } catch (err) {
      await c.query('ROLLBACK TO SAVEPOINT audit_ddl');
      if (required) throw new Error(`cannot create ${what}: ${describe(err)}`);
      warn(err, what);
      return false;
    }
  };
  if (!(await exists(table))) await ddl(schemaSql(table), true, `the table ${table}`);
  const requestIndex = (
    await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_indexes WHERE tablename = $1 AND indexdef LIKE '%(request_id, seq)%'`, [table])
  ).rows[0]?.n;
  if (requestIndex === 0) await ddl([requestIdIndexSql(table)], false, 'the request id index (requestId= queries scan the table)');
  if (!(await exists(anchorTableName(table)))) {
    hasAnchorTable = await ddl(anchorSchemaSql(table), false, `the retention anchor table ${anchorTableName(table)}; pruning is unavailable`);
    anchorSigned = hasAnchorTable;
  } else {
    const column = await c.query('SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2', [
      anchorTableName(table),
      'checkpoint',
    ]);
    if (column.rowCount === 0) anchorSigned = await ddl(anchorSchemaSql(table).slice(1), false, `the checkpoint column of ${anchorTableName(table)}; retention anchors are unsigned`);
  }
  if (!(await exists(headTableName(table))) || !(await exists(checkpointTableName(table)))) {
    await ddl(headSchemaSql(table), true, `the counter and checkpoint tables ${headTableName(table)}, ${checkpointTableName(table)}`);
  }
  const tail = (await c.query<{ seq: string; hash: string }>(`SELECT seq, hash FROM ${t} ORDER BY seq DESC LIMIT 1`)).rows[0];
  const anchor = hasAnchorTable ? (await c.query<{ seq: string; prev_hash: string }>(`SELECT seq, prev_hash FROM ${a} WHERE id = 1`)).rows[0] : undefined;
  const start = tail ? { seq: tail.seq, hash: tail.hash } : anchor ? { seq: String(Number(anchor.seq) - 1), hash: anchor.prev_hash } : { seq: '0', hash: GENESIS_HASH };
  await c.query(`INSERT INTO ${h} (id, store_id, seq, hash) VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING`, [randomUUID(), start.seq, start.hash]);
  const head = (await c.query<{ store_id: string; seq: string }>(`SELECT store_id, seq FROM ${h} WHERE id = 1`)).rows[0];
  return { hasAnchorTable, anchorSigned, storeId: head?.store_id ?? '', lastSeq: Math.max(Number(head?.seq ?? 0), Number(tail?.seq ?? 0)) };
}
