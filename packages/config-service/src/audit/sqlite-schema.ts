/**
 * The SQLite audit file's schema and its migrations, shared by the store's read
 * connection (which migrates at open) and its writer thread (`sqlite-writer.ts`).
 */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import { GENESIS_HASH } from './chain.js';

/** Schema version kept in `PRAGMA user_version`: 2 added the retention anchor, 3 the counter, checkpoints and the request id index. */
export const SCHEMA_VERSION = 3;

/*
 * One row per event. `event` holds the exact canonical JSON that was hashed (with `seq`),
 * the other columns copy the filterable fields so queries use indexes. Every secondary
 * index implicitly ends with the rowid (`seq`), so `WHERE app = ? AND seq < ? ORDER BY
 * seq DESC` is a range scan of one index.
 */
const SCHEMA_V1 = `
CREATE TABLE audit_events (
  seq           INTEGER PRIMARY KEY CHECK (seq > 0),
  time          TEXT    NOT NULL,
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
) STRICT;
CREATE INDEX audit_events_time    ON audit_events (time);
CREATE INDEX audit_events_app     ON audit_events (app);
CREATE INDEX audit_events_actor   ON audit_events (actor_subject);
CREATE INDEX audit_events_action  ON audit_events (action);
CREATE INDEX audit_events_outcome ON audit_events (outcome);
CREATE INDEX audit_events_commit  ON audit_events (commit_id);
`;

/*
 * The retention anchor (one row at most): where the stored chain starts once `prune` has
 * deleted old events — the `seq` and `prev_hash` the oldest remaining event (or the next
 * event appended, when none remains) must carry. Absent: the chain starts at `seq` 1
 * after the genesis hash.
 */
const SCHEMA_V2 = `
CREATE TABLE audit_anchor (
  id        INTEGER PRIMARY KEY CHECK (id = 1),
  seq       INTEGER NOT NULL CHECK (seq > 0),
  prev_hash TEXT    NOT NULL
) STRICT;
`;

/*
 * Version 3 (issue 13):
 * - `audit_head`: the counter, one row: the store's id and the `seq` and `hash` of the last
 *   event ever written. Every write transaction reads it and moves it on, so a number is
 *   never given twice (deleting rows does not roll it back) and every writer — threads or
 *   processes on the same file — continues one chain.
 * - `audit_checkpoints`: the signed checkpoints, as their canonical text.
 * - `audit_anchor.checkpoint`: the signed retention checkpoint of the anchor (NULL when
 *   written without a key).
 * - an index on `request_id` (`GET /v1/audit?requestId=`).
 */
const SCHEMA_V3 = `
CREATE TABLE audit_head (
  id       INTEGER PRIMARY KEY CHECK (id = 1),
  store_id TEXT    NOT NULL,
  seq      INTEGER NOT NULL CHECK (seq >= 0),
  hash     TEXT    NOT NULL
) STRICT;
CREATE TABLE audit_checkpoints (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  seq        INTEGER NOT NULL,
  kind       TEXT    NOT NULL,
  checkpoint TEXT    NOT NULL
) STRICT;
CREATE INDEX audit_checkpoints_seq ON audit_checkpoints (seq);
CREATE INDEX audit_events_request ON audit_events (request_id);
ALTER TABLE audit_anchor ADD COLUMN checkpoint TEXT;
`;

/**
 * Creates or migrates the schema in one `BEGIN IMMEDIATE` transaction. The counter of a
 * file written by an older version starts at its last event (or at its anchor when every
 * event was pruned).
 * @throws Error when the file holds a newer schema than this build knows.
 */
export function migrate(db: Database.Database): void {
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true });
    if (typeof version !== 'number' || version > SCHEMA_VERSION) {
      throw new Error(`the database has schema version ${String(version)}; this build knows up to ${SCHEMA_VERSION}`);
    }
    if (version < 1) db.exec(SCHEMA_V1);
    if (version < 2) db.exec(SCHEMA_V2);
    if (version < 3) {
      db.exec(SCHEMA_V3);
      const last = db.prepare<[], { seq: number; hash: string }>('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1').get();
      const anchor = db.prepare<[], { seq: number; prev_hash: string }>('SELECT seq, prev_hash FROM audit_anchor WHERE id = 1').get();
      const head = last ?? (anchor ? { seq: anchor.seq - 1, hash: anchor.prev_hash } : { seq: 0, hash: GENESIS_HASH });
      db.prepare('INSERT INTO audit_head (id, store_id, seq, hash) VALUES (1, ?, ?, ?)').run(randomUUID(), head.seq, head.hash);
    }
    if (version < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

/** The counter row. */
export interface HeadRow {
  store_id: string;
  seq: number;
  hash: string;
}

/** The anchor row. */
export interface AnchorRow {
  seq: number;
  prev_hash: string;
  checkpoint: string | null;
}

export const SELECT_HEAD = 'SELECT store_id, seq, hash FROM audit_head WHERE id = 1';
export const SELECT_ANCHOR = 'SELECT seq, prev_hash, checkpoint FROM audit_anchor WHERE id = 1';
