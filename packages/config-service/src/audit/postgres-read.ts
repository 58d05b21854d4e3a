/**
 * Reading the PostgreSQL audit store's chain back: examining it (one consistent snapshot
 * of the counter, the anchor and every event, checked a page at a time) and listing its
 * stored checkpoints. Queries of events are built by `rows.ts` (`pageQuery`).
 */
import type pg from 'pg';
import { ChainVerifier, GENESIS_HASH, type ChainAnchor } from './chain.js';
import { columnText, type PgAuditTables } from './postgres-schema.js';
import { finishExamination, pushRow, type EventRow } from './rows.js';
import type { ChainExamination, ExamineOptions } from './types.js';

/** Page size of a verification read. */
const VERIFY_PAGE = 1000;

/** What {@link examineChain} needs besides the tables. */
export interface ExamineContext {
  /** False when the anchor table is missing (the chain then starts at `seq` 1). */
  hasAnchorTable: boolean;
  /** The store id read at open, reported when the counter row is missing. */
  storeId: string;
}

/**
 * Body of an examination, run in a transaction of its own: makes it one REPEATABLE READ,
 * READ ONLY snapshot (the counter, the anchor and every page agree even while another
 * replica appends or prunes), then checks every event in `seq` order, {@link VERIFY_PAGE}
 * rows at a time (memory stays bounded), against the chain, the counter and `opts.expect`.
 *
 * @returns the verdict with what it was based on (see {@link AuditStore.examine}).
 * @throws (rejects) pg's error when a statement fails.
 */
export async function examineChain(c: pg.PoolClient, tables: PgAuditTables, ctx: ExamineContext, opts: ExamineOptions): Promise<ChainExamination> {
  const sql = `SELECT * FROM ${tables.events} WHERE seq > $1 ORDER BY seq LIMIT ${VERIFY_PAGE}`;
  await c.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
  const head = (await c.query<{ store_id: string; seq: string; hash: string }>(`SELECT store_id, seq, hash FROM ${tables.head} WHERE id = 1`)).rows[0];
  const anchor = ctx.hasAnchorTable
    ? (await c.query<{ seq: string; prev_hash: string; checkpoint?: string | null }>(`SELECT * FROM ${tables.anchor} WHERE id = 1`)).rows[0]
    : undefined;
  const start: ChainAnchor = anchor ? { seq: Number(anchor.seq), prevHash: anchor.prev_hash } : { seq: 1, prevHash: GENESIS_HASH };
  const v = new ChainVerifier(start, opts.expect);
  let after = '0';
  for (;;) {
    const { rows } = await c.query<EventRow<string>>(sql, [after]);
    for (const row of rows) if (!pushRow(v, row, columnText)) break;
    const last = rows[rows.length - 1];
    if (v.broken || rows.length < VERIFY_PAGE || !last) break;
    after = last.seq;
  }
  return finishExamination(v, {
    storeId: head?.store_id ?? ctx.storeId,
    start,
    head: head && { seq: Number(head.seq), hash: head.hash },
    anchor: anchor && { seq: Number(anchor.seq), prevHash: anchor.prev_hash, checkpoint: anchor.checkpoint ?? null },
  });
}

/**
 * The stored checkpoints with a `seq` above `after`, in `seq` order (then as stored), at
 * most `limit` (both already checked).
 * @returns their stored texts.
 * @throws (rejects) pg's error when the query fails.
 */
export async function readCheckpoints(pool: pg.Pool, tables: PgAuditTables, after: number, limit: number): Promise<string[]> {
  const { rows } = await pool.query<{ checkpoint: string }>(`SELECT checkpoint FROM ${tables.checkpoints} WHERE seq > $1 ORDER BY seq, id LIMIT $2`, [after, limit]);
  return rows.map((r) => r.checkpoint);
}
