/**
 * Coalescing of sync requests (webhooks, admin syncs, signals from other replicas), one
 * trigger per repository (SPEC §4: "concurrent syncs of one repo coalesce into one").
 */
import type { SyncResult } from './mirror.js';

/**
 * Coalesces sync requests so that each is served by a sync that STARTS after it arrived:
 * with none running, one starts at once; with one running, one more is queued to start when
 * it ends, and every request arriving until then shares that queued one.
 */
export class SyncTrigger {
  readonly #sync: () => Promise<SyncResult>;
  readonly #external: () => Promise<unknown> | null;
  #running: Promise<SyncResult> | null = null;
  #queued: Promise<SyncResult> | null = null;

  /**
   * @param sync - starts (or joins) a sync; `GitMirror.sync` bound to its mirror.
   * @param external - the sync in progress that was started elsewhere (the mirror's
   *   polling), so a request arriving during it is not answered by a fetch that began earlier.
   */
  constructor(sync: () => Promise<SyncResult>, external: () => Promise<unknown> | null = () => null) {
    this.#sync = sync;
    this.#external = external;
  }

  /** A sync that starts no earlier than this call; rejects as that sync does. */
  request(): Promise<SyncResult> {
    if (this.#queued !== null) return this.#queued;
    const running = this.#running ?? this.#external();
    if (running === null) return this.#start();
    const queued = running
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        this.#queued = null;
        return this.#start();
      });
    this.#queued = queued;
    return queued;
  }

  #start(): Promise<SyncResult> {
    const p = this.#sync();
    this.#running = p;
    const clear = (): void => {
      if (this.#running === p) this.#running = null;
    };
    p.then(clear, clear);
    return p;
  }
}
