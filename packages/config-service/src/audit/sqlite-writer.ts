/**
 * The writer thread of the SQLite audit store (issue 9): it owns the write connection
 * (WAL, `synchronous = FULL`), so a commit's fsync never blocks the service's event loop.
 * The store (`sqlite-store.ts`) sends it one batch at a time; requests are handled in the
 * order they arrive, each synchronously (better-sqlite3).
 *
 * A write transaction (`BEGIN IMMEDIATE`): read the counter (`audit_head`), give each event
 * the next `seq`, join its canonical text around it, hash it after the previous hash,
 * insert it, move the counter on, sign a checkpoint of the new head when asked, and —
 * last, just before `COMMIT` — claim the batch in the shared state word: a batch whose
 * caller stopped waiting meanwhile (`BATCH_ABANDONED`) is rolled back instead.
 *
 * Reading the counter inside each write transaction keeps one chain whatever number of
 * threads or processes append to the same file.
 */
import { createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { checkpointJson, signCheckpoint } from './checkpoint.js';
import { BATCH_COMMITTING, BATCH_WRITING, type WireEvent, type WriteResult, type WriterData, type WriterReply, type WriterRequest, type WriterResult } from './sqlite-protocol.js';
import { SELECT_HEAD, type HeadRow } from './sqlite-schema.js';

const data = workerData as WriterData;
const flag = new Int32Array(data.flag);
const signingKey: KeyObject | undefined = data.signer ? createPrivateKey(data.signer.privateKeyPem) : undefined;

const db = new Database(data.path, { timeout: data.busyTimeoutMs });
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');

const selectHead = db.prepare<[], HeadRow>(SELECT_HEAD);
const updateHead = db.prepare<[number, string]>('UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1');
const insertEvent = db.prepare(
  `INSERT INTO audit_events (seq, time, request_id, actor_kind, actor_subject, action, app, commit_id,
     outcome, status, prev_hash, hash, event) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
);
const insertCheckpoint = db.prepare<[number, string, string]>('INSERT INTO audit_checkpoints (seq, kind, checkpoint) VALUES (?, ?, ?)');

class Abandoned extends Error {}

function head(): HeadRow {
  const h = selectHead.get();
  if (!h) throw new Error('the audit_head row is missing (the store was tampered with); run audit verify');
  return h;
}

/** Signs and stores a checkpoint of `seq`/`hash`; returns its text. Inside a transaction. */
function checkpoint(kind: 'checkpoint' | 'retention', storeId: string, seq: number, hash: string): string | undefined {
  if (!signingKey || !data.signer || seq < 1) return undefined;
  const cp = signCheckpoint({ kind, storeId, writerId: data.writerId, seq, hash, time: new Date().toISOString(), keyId: data.signer.keyId }, signingKey);
  const json = checkpointJson(cp);
  insertCheckpoint.run(seq, kind, json);
  return json;
}

const write = db.transaction((events: WireEvent[], withCheckpoint: boolean): WriteResult => {
  const h = head();
  let seq = h.seq;
  let prev = h.hash;
  const firstPrev = prev;
  const hashes: string[] = [];
  for (const e of events) {
    seq++;
    const text = `${e[0]},"seq":${seq}${e[1]}`;
    const hash = createHash('sha256').update(prev, 'utf8').update('\n', 'utf8').update(text, 'utf8').digest('hex');
    insertEvent.run(seq, e[2], e[3], e[4], e[5], e[6], e[7], e[8], e[9], e[10], prev, hash, text);
    hashes.push(hash);
    prev = hash;
  }
  updateHead.run(seq, prev);
  const cp = withCheckpoint ? checkpoint('checkpoint', h.store_id, seq, prev) : undefined;
  // Last step before COMMIT: a batch whose caller gave up is rolled back, never committed.
  if (Atomics.compareExchange(flag, 0, BATCH_WRITING, BATCH_COMMITTING) !== BATCH_WRITING) throw new Abandoned();
  return { firstSeq: h.seq + 1, prevHash: firstPrev, hashes, ...(cp !== undefined && { checkpoint: cp }) };
});

const checkpointNow = db.transaction((): string | undefined => {
  const h = head();
  return checkpoint('checkpoint', h.store_id, h.seq, h.hash);
});

const prune = db.transaction((cutoff: string): { deleted: number; checkpoint?: string } => {
  const firstKept = db.prepare<[string], { seq: number }>('SELECT seq FROM audit_events WHERE time >= ? ORDER BY seq LIMIT 1').get(cutoff);
  const lastDeleted = firstKept
    ? db.prepare<[number], { seq: number; hash: string }>('SELECT seq, hash FROM audit_events WHERE seq < ? ORDER BY seq DESC LIMIT 1').get(firstKept.seq)
    : db.prepare<[], { seq: number; hash: string }>('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1').get();
  if (!lastDeleted) return { deleted: 0 };
  const { changes } = db.prepare('DELETE FROM audit_events WHERE seq <= ?').run(lastDeleted.seq);
  const cp = checkpoint('retention', head().store_id, lastDeleted.seq, lastDeleted.hash);
  db.prepare(
    'INSERT INTO audit_anchor (id, seq, prev_hash, checkpoint) VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, prev_hash = excluded.prev_hash, checkpoint = excluded.checkpoint',
  ).run(lastDeleted.seq + 1, lastDeleted.hash, cp ?? null);
  // Checkpoints of deleted events can no longer be checked; the retention one stays.
  db.prepare('DELETE FROM audit_checkpoints WHERE seq < ?').run(lastDeleted.seq);
  return { deleted: changes, ...(cp !== undefined && { checkpoint: cp }) };
});

function handle(req: WriterRequest): WriterResult {
  switch (req.op) {
    case 'write':
      try {
        return { op: 'write', result: write.immediate(req.events, req.checkpoint) };
      } catch (err) {
        if (err instanceof Abandoned) return { op: 'write', result: { abandoned: true } };
        throw err;
      }
    case 'checkpoint': {
      const cp = checkpointNow.immediate();
      return { op: 'checkpoint', ...(cp !== undefined && { checkpoint: cp }) };
    }
    case 'probe':
      db.transaction(() => head()).immediate();
      return { op: 'probe' };
    case 'prune':
      return { op: 'prune', ...prune.immediate(req.cutoff) };
    case 'close':
      db.close();
      return { op: 'close' };
  }
}

parentPort?.on('message', (req: WriterRequest) => {
  let reply: WriterReply;
  try {
    reply = { id: req.id, ok: true, value: handle(req) };
  } catch (err) {
    const e = err as Error & { code?: unknown };
    reply = { id: req.id, ok: false, error: { name: e.name, message: e.message, ...(typeof e.code === 'string' && { code: e.code }) } };
  }
  parentPort?.postMessage(reply);
  if (req.op === 'close') parentPort?.close();
});
