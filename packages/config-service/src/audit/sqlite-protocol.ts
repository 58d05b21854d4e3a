/**
 * The messages between the SQLite store (main thread, `sqlite-store.ts`) and its writer
 * thread (`sqlite-writer.ts`), and the shared state word of the batch in flight.
 */

/** `workerData` of the writer thread. */
export interface WriterData {
  path: string;
  busyTimeoutMs: number;
  /** Int32Array(1) over a SharedArrayBuffer: the state of the batch in flight ({@link BATCH_IDLE} ...). */
  flag: SharedArrayBuffer;
  writerId: string;
  /** The checkpoint signing key; absent: no checkpoint is signed (anchors are unsigned). */
  signer?: { keyId: string; privateKeyPem: string };
}

/** No batch in flight. */
export const BATCH_IDLE = 0;
/** A batch was sent; its callers all still wait. */
export const BATCH_WRITING = 1;
/** A caller of the batch stopped waiting before its COMMIT: the writer rolls it back. */
export const BATCH_ABANDONED = 2;
/** The writer is committing the batch: a caller that stops waiting now is in doubt. */
export const BATCH_COMMITTING = 3;

/**
 * One event to write, in the order of `INSERT`'s columns after `seq`: its canonical text
 * around `seq` (`event-json.ts`), then the indexed columns.
 */
export type WireEvent = [
  head: string,
  tail: string,
  time: string,
  requestId: string,
  actorKind: string,
  actorSubject: string | null,
  action: string,
  app: string | null,
  commit: string | null,
  outcome: string,
  status: number,
];

/** Requests to the writer; each is answered with a {@link WriterReply} of the same `id`. */
export type WriterRequest =
  | { op: 'write'; id: number; events: WireEvent[]; checkpoint: boolean }
  | { op: 'checkpoint'; id: number }
  | { op: 'probe'; id: number }
  | { op: 'prune'; id: number; cutoff: string }
  | { op: 'close'; id: number };

/** What a committed batch got. */
export interface WriteResult {
  /** `seq` of the batch's first event; the others follow. */
  firstSeq: number;
  /** `prevHash` of the first event. */
  prevHash: string;
  /** The hash of each event, in order. */
  hashes: string[];
  /** The checkpoint signed in the same transaction, when one was asked for. */
  checkpoint?: string;
}

/** Results by request. */
export type WriterResult =
  | { op: 'write'; result: WriteResult | { abandoned: true } }
  | { op: 'checkpoint'; checkpoint?: string }
  | { op: 'probe' }
  | { op: 'prune'; deleted: number; checkpoint?: string }
  | { op: 'close' };

/** An error of the writer, rebuilt on the main thread (SQLite's `code` kept). */
export interface WireError {
  name: string;
  message: string;
  code?: string;
}

/** The writer's answer to one request. */
export type WriterReply = { id: number; ok: true; value: WriterResult } | { id: number; ok: false; error: WireError };
