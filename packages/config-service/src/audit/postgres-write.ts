/**
 * The write side of the PostgreSQL audit store, each part run inside a transaction that
 * holds the chain's lock: committing a batch of events after the counter (group commit),
 * and signing and storing a checkpoint of the head.
 *
 * Several replicas: each write transaction first takes a transaction-level advisory lock
 * (`pg_advisory_xact_lock`) on a key derived from the table name, then reads the counter
 * (`<table>_head`: the `seq` and `hash` of the last event ever written; the last stored
 * event when that is further, which only a replica of an older version can have written),
 * inserts after it and moves the counter on. A number is never given twice: deleting rows
 * does not roll the counter back (a PostgreSQL sequence is not used because a rolled-back
 * transaction would consume numbers and leave gaps that are not deletions). The lock
 * serialises the writers of one table across every connection to the database, so the
 * chain has no gaps and no forks however many replicas write; it is released by
 * `COMMIT`/`ROLLBACK` (or when a connection dies), never held between batches. The primary
 * key on `seq` is a second guard.
 *
 * Abandoned: when a caller stops waiting (`AppendOptions.timeoutMs`) while its event's
 * transaction runs, the transaction is rolled back before `COMMIT` ({@link AbandonedBatch};
 * the other events of the batch go again), so a request answered 503 does not get its
 * event committed.
 *
 * In doubt: a transaction whose `COMMIT` was sent but not acknowledged (timeout, reset)
 * may have committed. It held the chain's advisory lock from before its `COMMIT` was
 * sent, so every later transaction (of any replica) waits for it to commit or roll back
 * and chains after it: the chain stays gap-free either way, and an event written later
 * about the same request (the 503 refusal record) always comes after it.
 */
import type { KeyObject } from 'node:crypto';
import type pg from 'pg';
import { hashEventBody } from './chain.js';
import { checkpointJson, signCheckpoint, type Checkpoint } from './checkpoint.js';
import type { CheckpointSchedule } from './checkpoint-schedule.js';
import type { Pending } from './commit-queue.js';
import { withChainFields } from './event.js';
import { eventJsonParts, joinEventJson, rememberEventJson } from './event-json.js';
import { columnText, headTableName, nullableColumn, type PgAuditTables } from './postgres-schema.js';
import { lockChain } from './postgres-transaction.js';
import type { AuditEvent } from './types.js';

/** How a store signs checkpoints; absent when no signing key is configured. */
export interface PgCheckpointSigner {
  /** When checkpoints are due, and who signs them (`writerId`, `signer.keyId`). */
  schedule: CheckpointSchedule;
  /** The private key of `schedule.signer`. */
  key: KeyObject;
}

/** Thrown inside a write transaction to roll it back because a caller stopped waiting. */
export class AbandonedBatch extends Error {
  constructor() {
    super('a caller stopped waiting; the batch is rolled back');
  }
}

/** The one INSERT of a batch: every column as an array, unnested into rows. */
function batchInsertSql(events: string): string {
  return `INSERT INTO ${events} (seq, time, request_id, actor_kind, actor_subject, action, app, commit_id,
        outcome, status, prev_hash, hash, event)
      SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
        $8::text[], $9::text[], $10::integer[], $11::text[], $12::text[], $13::text[])`;
}

/**
 * Body of the write transaction of a batch: locks the table's chain, reads the counter,
 * inserts the batch after it in call order (one INSERT), moves the counter on and, when
 * due, signs a checkpoint of the new head in the same transaction.
 *
 * @param batch the events taken from the queue; their inputs were checked by `append`.
 * @param abandoned asked last, just before returning (no timer can run between it and the
 *   caller's `COMMIT`): true when a caller of the batch stopped waiting.
 * @returns the stored events (`events[i]` is `batch[i]` with its `seq` and hashes) and the
 *   text of the checkpoint signed, if any.
 * @throws (rejects) {@link AbandonedBatch} when `abandoned()` is true; Error when the
 *   counter row is missing (tampering); pg's error when a statement fails.
 */
export async function writeBatch(
  c: pg.PoolClient,
  tables: PgAuditTables,
  batch: readonly Pending[],
  signer: PgCheckpointSigner | undefined,
  abandoned: () => boolean,
): Promise<{ events: AuditEvent[]; checkpoint?: string | undefined }> {
  await lockChain(c, tables.lockKey);
  // Read committed: this statement's snapshot is taken after the lock was granted, so it
  // sees every batch committed by whoever held the lock before. The last stored event
  // counts too when it is further than the counter: a replica of an older version (during
  // a rolling upgrade) appends without moving the counter.
  const head = (
    await c.query<{ store_id: string; seq: string; hash: string; tail_seq: string | null; tail_hash: string | null }>(
      `SELECT h.store_id, h.seq, h.hash, t.seq AS tail_seq, t.hash AS tail_hash FROM ${tables.head} h
       LEFT JOIN LATERAL (SELECT seq, hash FROM ${tables.events} ORDER BY seq DESC LIMIT 1) t ON true WHERE h.id = 1`,
    )
  ).rows[0];
  if (!head) throw new Error(`the counter row of ${headTableName(tables.name)} is missing (the store was tampered with); run audit verify`);
  const tailAhead = head.tail_seq !== null && Number(head.tail_seq) > Number(head.seq);
  let seq = tailAhead ? Number(head.tail_seq) : Number(head.seq);
  let prevHash = tailAhead ? (head.tail_hash as string) : head.hash;
  const cols: unknown[][] = Array.from({ length: 13 }, () => []);
  const out: AuditEvent[] = [];
  for (const { input } of batch) {
    seq++;
    // `input` was checked by toEventInput in append: serialised once, here.
    const body = joinEventJson(eventJsonParts(input), seq);
    const hash = hashEventBody(prevHash, body);
    const values = [
      seq,
      columnText(input.time),
      columnText(input.requestId),
      input.actor.kind,
      nullableColumn(input.actor.subject),
      columnText(input.action),
      nullableColumn(input.app),
      nullableColumn(input.commit),
      input.outcome,
      input.status,
      prevHash,
      hash,
      body,
    ];
    values.forEach((v, i) => cols[i]?.push(v));
    const event = withChainFields(input, seq, prevHash, hash);
    rememberEventJson(event, body);
    out.push(event);
    prevHash = hash;
  }
  await c.query(batchInsertSql(tables.events), cols);
  await c.query(`UPDATE ${tables.head} SET seq = $1, hash = $2 WHERE id = 1`, [seq, prevHash]);
  const checkpoint = signer?.schedule.dueWith(batch.length) ? await insertCheckpoint(c, tables, signer, 'checkpoint', head.store_id, seq, prevHash) : undefined;
  // Last check before COMMIT (no timer can run between it and the COMMIT being sent): an
  // event whose request was already answered 503 must not be committed.
  if (abandoned()) throw new AbandonedBatch();
  return { events: out, checkpoint };
}

/**
 * Body of the transaction of a periodic (or shutdown) checkpoint: locks the chain, reads
 * the counter and signs a checkpoint of it.
 * @returns its text; undefined when the counter row is missing or nothing was written yet.
 * @throws (rejects) pg's error when a statement fails.
 */
export async function writeHeadCheckpoint(c: pg.PoolClient, tables: PgAuditTables, signer: PgCheckpointSigner): Promise<string | undefined> {
  await lockChain(c, tables.lockKey);
  const head = (await c.query<{ store_id: string; seq: string; hash: string }>(`SELECT store_id, seq, hash FROM ${tables.head} WHERE id = 1`)).rows[0];
  return head ? insertCheckpoint(c, tables, signer, 'checkpoint', head.store_id, Number(head.seq), head.hash) : undefined;
}

/**
 * Signs a checkpoint of `seq`/`hash` and inserts it into the checkpoint table (inside the
 * caller's transaction, which holds the chain's lock).
 * @returns its stored text; undefined without a signer or when `seq` < 1 (nothing to sign).
 * @throws (rejects) pg's error when the insert fails.
 */
export async function insertCheckpoint(
  c: pg.PoolClient,
  tables: PgAuditTables,
  signer: PgCheckpointSigner | undefined,
  kind: Checkpoint['kind'],
  storeId: string,
  seq: number,
  hash: string,
): Promise<string | undefined> {
  if (!signer || seq < 1) return undefined;
  const { schedule, key } = signer;
  const cp = signCheckpoint({ kind, storeId, writerId: schedule.writerId, seq, hash, time: new Date().toISOString(), keyId: schedule.signer.keyId }, key);
  const json = checkpointJson(cp);
  await c.query(`INSERT INTO ${tables.checkpoints} (seq, kind, checkpoint) VALUES ($1, $2, $3)`, [seq, kind, json]);
  return json;
}
