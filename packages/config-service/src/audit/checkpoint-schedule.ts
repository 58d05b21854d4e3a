/**
 * When a store signs a checkpoint (issue 13): after every `everyEvents` events this writer
 * committed (in the same transaction as the batch that reaches the count), every
 * `intervalMs` when it committed any event since its last checkpoint, and at close. Both
 * stores use it on the main thread; the signing itself happens where the store writes.
 */
import { hostname } from 'node:os';
import type { Checkpoint, CheckpointSigner } from './checkpoint.js';
import type { AuditLogger } from './types.js';

/** Checkpoint options of a store (absent: the store signs no checkpoint). */
export interface StoreCheckpointOptions {
  /** The signing key (`audit.checkpoints`). */
  signer: CheckpointSigner;
  /** Which process signs: default `<hostname>/<pid>`. */
  writerId?: string;
  /** Sign after this many events committed by this writer since its last checkpoint (≥ 1). Default 1000. */
  everyEvents?: number;
  /** Sign this often (ms, > 0) when this writer committed events since its last checkpoint. Default 60000. */
  intervalMs?: number;
  /**
   * Called with every checkpoint the store signed and stored (periodic, at close, and the
   * retention checkpoint of a prune), and its stored text. The service writes it to the log
   * stream. Exceptions are caught and logged.
   */
  onCheckpoint?: (checkpoint: Checkpoint, json: string) => void;
}

/** The default writer id of this process. */
export function defaultWriterId(): string {
  return `${hostname()}/${process.pid}`;
}

/** Counts events since the last checkpoint and runs the interval timer. */
export class CheckpointSchedule {
  readonly signer: CheckpointSigner;
  readonly writerId: string;
  readonly #every: number;
  readonly #listener: ((cp: Checkpoint, json: string) => void) | undefined;
  readonly #logger: AuditLogger;
  #since = 0;
  #timer: NodeJS.Timeout | undefined;

  /**
   * @param tick called every `intervalMs` while events are waiting for a checkpoint (the
   *   store then signs one).
   * @throws TypeError for a bad `everyEvents` or `intervalMs`.
   */
  constructor(opts: StoreCheckpointOptions, logger: AuditLogger, tick: () => void) {
    this.signer = opts.signer;
    this.writerId = opts.writerId ?? defaultWriterId();
    this.#every = opts.everyEvents ?? 1000;
    const intervalMs = opts.intervalMs ?? 60_000;
    if (!Number.isInteger(this.#every) || this.#every < 1) throw new TypeError('checkpoints.everyEvents must be an integer >= 1');
    if (!(intervalMs > 0)) throw new TypeError('checkpoints.intervalMs must be > 0');
    this.#listener = opts.onCheckpoint;
    this.#logger = logger;
    this.#timer = setInterval(() => {
      if (this.#since > 0) tick();
    }, intervalMs);
    this.#timer.unref();
  }

  /** Events committed by this writer since its last checkpoint. */
  get pending(): number {
    return this.#since;
  }

  /** True when a batch of `n` more events reaches `everyEvents`: sign in its transaction. */
  dueWith(n: number): boolean {
    return this.#since + n >= this.#every;
  }

  /** Counts committed events. */
  committed(n: number): void {
    this.#since += n;
  }

  /** Records a checkpoint the store signed (resets the count when it is a head checkpoint) and tells the listener. */
  signed(cp: Checkpoint, json: string): void {
    if (cp.kind === 'checkpoint') this.#since = 0;
    try {
      this.#listener?.(cp, json);
    } catch (err) {
      this.#logger.error({ err }, 'audit checkpoint listener failed');
    }
  }

  /** Stops the timer. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
