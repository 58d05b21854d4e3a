/**
 * The PostgreSQL audit store's tables: names, DDL, and the advisory lock key of a chain.
 *
 * For a table `<t>` (`audit.postgres.table`): `<t>` (the events), `<t>_anchor` (the
 * retention anchor), `<t>_head` (the counter: store id, `seq` and hash of the last event
 * ever written) and `<t>_checkpoints` (signed checkpoints). Names longer than PostgreSQL's
 * 63 bytes are shortened with a hash of the table name.
 */
import { createHash } from 'node:crypto';

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
