/**
 * Retention of the PostgreSQL audit store: deleting the events older than a cutoff and
 * recording where the kept chain now starts (the anchor, with its signed retention
 * checkpoint when a key is configured), in one transaction that holds the chain's lock.
 */
import type pg from 'pg';
import type { PgAuditTables } from './postgres-schema.js';
import { lockChain } from './postgres-transaction.js';
import { insertCheckpoint, type PgCheckpointSigner } from './postgres-write.js';

/** What {@link pruneChain} needs besides the tables. */
export interface PruneContext {
  /** False when the anchor table has no `checkpoint` column (the anchor is then unsigned, and no checkpoint is signed). */
  anchorSigned: boolean;
  /** The store id read at open, used when the counter row is missing. */
  storeId: string;
  /** Signs the retention checkpoint; absent: the anchor is unsigned. */
  signer: PgCheckpointSigner | undefined;
}

/**
 * Body of the prune transaction: takes the chain's lock first, as appends do (so no
 * replica appends or prunes between reading the chain and recording the anchor), deletes
 * every event before the first one at or after `cutoff` (every event when none is), moves
 * the anchor after the last deleted one, signs its retention checkpoint, and deletes the
 * checkpoints of deleted events (they can no longer be checked; the retention one stays).
 *
 * @param cutoff an ISO 8601 instant as stored in `time` (already parsed).
 * @returns how many events were deleted, and the retention checkpoint's text when one was signed.
 * @throws (rejects) pg's error when a statement fails (the transaction is rolled back).
 */
export async function pruneChain(
  c: pg.PoolClient,
  tables: PgAuditTables,
  cutoff: string,
  ctx: PruneContext,
): Promise<{ deleted: number; checkpoint?: string | undefined }> {
  await lockChain(c, tables.lockKey);
  const firstKept = (await c.query<{ seq: string }>(`SELECT seq FROM ${tables.events} WHERE time >= $1 ORDER BY seq LIMIT 1`, [cutoff])).rows[0];
  const lastDeleted = firstKept
    ? (await c.query<{ seq: string; hash: string }>(`SELECT seq, hash FROM ${tables.events} WHERE seq < $1 ORDER BY seq DESC LIMIT 1`, [firstKept.seq])).rows[0]
    : (await c.query<{ seq: string; hash: string }>(`SELECT seq, hash FROM ${tables.events} ORDER BY seq DESC LIMIT 1`)).rows[0];
  if (!lastDeleted) return { deleted: 0 };
  const { rowCount } = await c.query(`DELETE FROM ${tables.events} WHERE seq <= $1`, [lastDeleted.seq]);
  const storeId = (await c.query<{ store_id: string }>(`SELECT store_id FROM ${tables.head} WHERE id = 1`)).rows[0]?.store_id ?? ctx.storeId;
  const checkpoint = ctx.anchorSigned ? await insertCheckpoint(c, tables, ctx.signer, 'retention', storeId, Number(lastDeleted.seq), lastDeleted.hash) : undefined;
  if (ctx.anchorSigned) {
    await c.query(
      `INSERT INTO ${tables.anchor} (id, seq, prev_hash, checkpoint) VALUES (1, $1::bigint + 1, $2, $3)
       ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, prev_hash = excluded.prev_hash, checkpoint = excluded.checkpoint`,
      [lastDeleted.seq, lastDeleted.hash, checkpoint ?? null],
    );
  } else {
    await c.query(
      `INSERT INTO ${tables.anchor} (id, seq, prev_hash) VALUES (1, $1::bigint + 1, $2)
       ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, prev_hash = excluded.prev_hash`,
      [lastDeleted.seq, lastDeleted.hash],
    );
  }
  // Checkpoints of deleted events can no longer be checked; the retention one stays.
  await c.query(`DELETE FROM ${tables.checkpoints} WHERE seq < $1`, [lastDeleted.seq]);
  return { deleted: rowCount ?? 0, checkpoint };
}
