/**
 * Long-poll (SPEC §5.1): `wait=<duration>` with `If-None-Match` holds a read until the
 * answer's ETag differs from the caller's, or the wait ends with 304.
 *
 * Cost of a held request: no timer of its own (one {@link TimerWheel} with 1 s slots for
 * every waiter), no Git read while no commit moves, one entry in its group. Waiters are
 * grouped by everything that shapes the answer (route, repository, application, profiles,
 * ref, format, options, secrets mode): when a repository's commit moves, each group is
 * checked once, from trees only (`etagAt`), and only the waiters of a group whose ETag
 * changed are woken; each of them then answers through its route, whose rendered-response
 * cache renders a group's answer once.
 *
 * What moves a commit: a remote mirror's sync that published new refs (polling, a push
 * webhook, an admin sync, or another replica's signal through `PgSyncBus`, which starts a
 * sync here); a local repository's refs, read every `longPoll.localPollMs` while it has
 * waiters (never otherwise).
 *
 * Bounds: at most `longPoll.maxWaiters` held requests, `longPoll.maxWaitersPerIdentity` per
 * caller (429 `too_many_waiters` with `Retry-After` beyond). Shutdown answers every waiter
 * at once (304, audit reason `wait_shutdown`). A held request's socket timeout is raised to
 * the wait plus a margin and put back afterwards; Node's `requestTimeout` does not apply
 * once a GET's headers are read.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CFG_ERR_TOO_MANY_WAITERS, withRetryAfter } from '../errors.js';
import type { GitStore } from './plugins/git-store.js';
import type { ReadTarget } from './target.js';

/** How a wait ended: the ETag changed, the time ran out, the service is closing, the client went away. */
export type WaitOutcome = 'changed' | 'timeout' | 'shutdown' | 'closed';

/** A group of waiters that get the same answer. */
export interface WaitGroupSpec {
  /** Everything that shapes the answer: route, repository, app, profiles, ref, format, options, secrets mode. */
  readonly key: string;
  readonly store: GitStore;
  /** The ref asked for (`undefined`: the default branch). */
  readonly ref: string | undefined;
  /** The ETag of the answer at `commit`, from trees only (no blob read, no rendering). */
  etagAt(commit: string): Promise<string>;
}

/** Settings of {@link LongPollHub} (`longPoll:` in service.yml). */
export interface LongPollOptions {
  /** Longest wait, ms; longer `wait=` values are cut to it. */
  readonly maxWaitMs: number;
  /** Most requests held at once. */
  readonly maxWaiters: number;
  /** Most requests held at once for one caller (certificate identity or token subject). */
  readonly maxWaitersPerIdentity: number;
  /** How often a local repository's refs are read while it has waiters, ms. */
  readonly localPollMs: number;
  /** Where failed checks are reported (pino fits). */
  readonly logger?: { warn(obj: object, msg: string): void; debug(obj: object, msg: string): void } | undefined;
}

interface Waiter {
  readonly group: Group;
  readonly identity: string;
  readonly etag: string;
  slot: number;
  readonly settle: (outcome: WaitOutcome) => void;
}

interface Group {
  readonly spec: WaitGroupSpec;
  /** The newest commit and ETag known for the group. */
  commit: string;
  etag: string;
  readonly waiters: Set<Waiter>;
  checking: boolean;
  recheck: boolean;
}

/**
 * One timer for many deadlines: items are kept in 1 s slots and expired by one interval
 * that runs only while the wheel holds an item. An item expires at most one slot late.
 */
export class TimerWheel<T> {
  readonly #slots = new Map<number, Set<T>>();
  readonly #slotMs: number;
  readonly #expire: (item: T) => void;
  #timer: NodeJS.Timeout | null = null;
  #size = 0;

  /** @param expire - called once per item whose deadline passed. @param slotMs - slot width, ms. */
  constructor(expire: (item: T) => void, slotMs = 1000) {
    this.#expire = expire;
    this.#slotMs = slotMs;
  }

  /** Items held. */
  get size(): number {
    return this.#size;
  }

  /** Adds `item` to expire at `at` (ms since the epoch); @returns its slot (for {@link delete}). */
  add(item: T, at: number): number {
    const slot = Math.ceil(at / this.#slotMs);
    let set = this.#slots.get(slot);
    if (set === undefined) this.#slots.set(slot, (set = new Set()));
    set.add(item);
    this.#size++;
    if (this.#timer === null) {
      this.#timer = setInterval(() => this.#tick(), this.#slotMs);
      this.#timer.unref();
    }
    return slot;
  }

  /** Removes `item` from `slot`; nothing when it is not there. */
  delete(item: T, slot: number): void {
    const set = this.#slots.get(slot);
    if (set?.delete(item) !== true) return;
    this.#size--;
    if (set.size === 0) this.#slots.delete(slot);
    this.#stopWhenEmpty();
  }

  #tick(now = Date.now()): void {
    const due = Math.floor(now / this.#slotMs);
    for (const [slot, set] of [...this.#slots]) {
      if (slot > due) continue;
      this.#slots.delete(slot);
      this.#size -= set.size;
      for (const item of set) this.#expire(item);
    }
    this.#stopWhenEmpty();
  }

  #stopWhenEmpty(): void {
    if (this.#size === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }
}

/**
 * Holds long-poll requests and wakes them when their answer changes. One per API app
 * (`app.longPoll`); see the module comment.
 */
export class LongPollHub {
  readonly options: LongPollOptions;
  readonly #groups = new Map<string, Group>();
  /** Groups per repository, with the unsubscribe function of its mirror (remote) or `null` (local, polled). */
  readonly #stores = new Map<GitStore, { groups: Set<Group>; unsubscribe: (() => void) | null }>();
  readonly #perIdentity = new Map<string, number>();
  readonly #wheel: TimerWheel<Waiter>;
  #waiters = 0;
  #localTimer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(options: LongPollOptions) {
    this.options = options;
    this.#wheel = new TimerWheel<Waiter>((w) => this.#settle(w, 'timeout', false));
  }

  /** Requests held now. */
  get waiters(): number {
    return this.#waiters;
  }

  /** Distinct groups with waiters now. */
  get groups(): number {
    return this.#groups.size;
  }

  /** Timers the hub runs now (the wheel's and the local-repository poll's): 0, 1 or 2 whatever the number of waiters. */
  get timers(): number {
    return (this.#wheel.size > 0 ? 1 : 0) + (this.#localTimer !== null ? 1 : 0);
  }

  /**
   * Holds one request until its group's ETag differs from `current.etag`, `until` passes,
   * the hub closes or `onAbort` fires.
   *
   * @param current - the commit and ETag the caller was just answered with (equal to its `If-None-Match`)
   * @param caller.identity - who holds it (for `maxWaitersPerIdentity`)
   * @param caller.until - end of the wait, ms since the epoch
   * @param caller.onAbort - registers a callback for a client that goes away; returns its remover
   * @returns how the wait ended; rejects with CFG_ERR_TOO_MANY_WAITERS (429, `Retry-After`) over a cap
   */
  wait(
    spec: WaitGroupSpec,
    current: { readonly commit: string; readonly etag: string },
    caller: { readonly identity: string; readonly until: number; readonly onAbort: (abort: () => void) => () => void },
  ): Promise<WaitOutcome> {
    if (this.#closed) return Promise.resolve('shutdown');
    const held = this.#perIdentity.get(caller.identity) ?? 0;
    if (this.#waiters >= this.options.maxWaiters) {
      return Promise.reject(withRetryAfter(new CFG_ERR_TOO_MANY_WAITERS(`this replica holds longPoll.maxWaiters = ${this.options.maxWaiters} requests`), 5));
    }
    if (held >= this.options.maxWaitersPerIdentity) {
      return Promise.reject(withRetryAfter(new CFG_ERR_TOO_MANY_WAITERS(`this caller holds longPoll.maxWaitersPerIdentity = ${this.options.maxWaitersPerIdentity} requests`), 5));
    }
    const group = this.#groupOf(spec, current);
    return new Promise<WaitOutcome>((resolve) => {
      let removeAbort: () => void = () => undefined;
      const waiter: Waiter = {
        group,
        identity: caller.identity,
        etag: current.etag,
        slot: 0,
        settle: (outcome) => {
          removeAbort();
          resolve(outcome);
        },
      };
      group.waiters.add(waiter);
      this.#waiters++;
      this.#perIdentity.set(caller.identity, held + 1);
      waiter.slot = this.#wheel.add(waiter, caller.until);
      removeAbort = caller.onAbort(() => this.#settle(waiter, 'closed', true));
      // The group may already know a newer answer than this caller's.
      if (group.etag !== current.etag) this.#settle(waiter, 'changed', true);
    });
  }

  /**
   * Checks every group of `store` now (a mirror's sync moved refs). Groups whose commit did
   * not move cost nothing; the others cost their `etagAt`.
   */
  check(store: GitStore): void {
    const entry = this.#stores.get(store);
    if (entry === undefined) return;
    for (const group of entry.groups) void this.#checkGroup(group);
  }

  /** Answers every waiter with `shutdown` and refuses new ones (they get `shutdown` at once). */
  close(): void {
    this.#closed = true;
    for (const group of [...this.#groups.values()]) for (const w of [...group.waiters]) this.#settle(w, 'shutdown', true);
    this.#stopLocalPoll();
  }

  #groupOf(spec: WaitGroupSpec, current: { commit: string; etag: string }): Group {
    let group = this.#groups.get(spec.key);
    if (group === undefined) {
      group = { spec, commit: current.commit, etag: current.etag, waiters: new Set(), checking: false, recheck: false };
      this.#groups.set(spec.key, group);
      this.#attach(group);
    } else if (group.commit !== current.commit || group.etag === '') {
      // The caller resolved the ref just now (or the last check failed): its commit and ETag
      // are the newest known.
      group.commit = current.commit;
      this.#changed(group, current.etag);
    }
    return group;
  }

  #attach(group: Group): void {
    const store = group.spec.store;
    let entry = this.#stores.get(store);
    if (entry === undefined) {
      const mirror = store.mirror;
      // A mirror wakes its waiters when it publishes new refs: after its own sync, or (in a
      // worker of server.workers) when the primary publishes one.
      entry = {
        groups: new Set(),
        unsubscribe: mirror === undefined ? null : store.repository.onSnapshot((_s, refsChanged) => refsChanged && this.check(store)),
      };
      this.#stores.set(store, entry);
      if (mirror === undefined) this.#startLocalPoll();
    }
    entry.groups.add(group);
  }

  #detach(group: Group): void {
    this.#groups.delete(group.spec.key);
    const store = group.spec.store;
    const entry = this.#stores.get(store);
    if (entry === undefined) return;
    entry.groups.delete(group);
    if (entry.groups.size > 0) return;
    entry.unsubscribe?.();
    this.#stores.delete(store);
    if (![...this.#stores.values()].some((e) => e.unsubscribe === null)) this.#stopLocalPoll();
  }

  async #checkGroup(group: Group): Promise<void> {
    if (group.checking) {
      group.recheck = true;
      return;
    }
    group.checking = true;
    try {
      do {
        group.recheck = false;
        const { commit } = await group.spec.store.resolve(group.spec.ref);
        if (commit === group.commit) continue;
        group.commit = commit;
        this.#changed(group, await group.spec.etagAt(commit));
      } while (group.recheck && group.waiters.size > 0);
    } catch (err) {
      // The ref or the documents broke (ref deleted, bad document...): the waiters ask again
      // and get the error as their answer.
      this.options.logger?.debug({ group: group.spec.key.split('\0').slice(0, 4).join(' '), code: (err as { code?: string }).code }, 'long-poll check failed; waking the waiters');
      group.etag = '';
      for (const w of [...group.waiters]) this.#settle(w, 'changed', true);
    } finally {
      group.checking = false;
    }
  }

  /** The group's answer is now `etag`: every waiter holding another ETag is woken. */
  #changed(group: Group, etag: string): void {
    group.etag = etag;
    for (const w of [...group.waiters]) if (w.etag !== etag) this.#settle(w, 'changed', true);
  }

  #settle(w: Waiter, outcome: WaitOutcome, fromWheel: boolean): void {
    const group = w.group;
    if (!group.waiters.delete(w)) return;
    if (fromWheel) this.#wheel.delete(w, w.slot);
    this.#waiters--;
    const n = (this.#perIdentity.get(w.identity) ?? 1) - 1;
    if (n > 0) this.#perIdentity.set(w.identity, n);
    else this.#perIdentity.delete(w.identity);
    if (group.waiters.size === 0) this.#detach(group);
    w.settle(outcome);
  }

  #startLocalPoll(): void {
    if (this.#localTimer !== null || this.#closed) return;
    this.#localTimer = setInterval(() => {
      for (const [store, entry] of this.#stores) if (entry.unsubscribe === null) this.check(store);
    }, this.options.localPollMs);
    this.#localTimer.unref();
  }

  #stopLocalPoll(): void {
    if (this.#localTimer !== null) clearInterval(this.#localTimer);
    this.#localTimer = null;
  }
}

/** Query parameter `wait`: a number with `ms`, `s` or `m` (no unit: seconds), as Consul's blocking queries take it. */
export const WAIT_PATTERN = '^[0-9]{1,7}(ms|s|m)?$';

/**
 * Milliseconds of a `wait=` value, cut to `maxMs`; `undefined` when absent or 0.
 * @param raw - matches {@link WAIT_PATTERN} (the route schema checks it)
 */
export function parseWait(raw: string | undefined, maxMs: number): number | undefined {
  if (raw === undefined) return undefined;
  const m = /^([0-9]+)(ms|s|m)?$/.exec(raw);
  if (m === null) return undefined;
  const ms = Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000);
  return ms > 0 ? Math.min(ms, maxMs) : undefined;
}

/**
 * Whether `If-None-Match` matches `etag` (RFC 9110 §13.1.2: weak comparison; a list of
 * tags; `*` matches any answer).
 */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const bare = (t: string): string => t.trim().replace(/^W\//, '');
  const want = bare(etag);
  return header.split(',').some((t) => t.trim() === '*' || bare(t) === want);
}

/** What {@link answerOrWait} needs from a route. */
export interface WaitableRead<T extends { readonly etag: string }> {
  /** `wait=` in ms (already cut to the maximum), or `undefined`. */
  readonly waitMs: number | undefined;
  /** The group key without the commit (see {@link WaitGroupSpec.key}). */
  readonly group: string;
  /** The answer at `commit` (through the route's cache). */
  produce(commit: string): Promise<T>;
  /** The ETag at `commit`, from trees only. */
  etagAt(commit: string): Promise<string>;
}

/** Extra time a held request's socket may stay silent beyond its wait, ms. */
const SOCKET_MARGIN_MS = 30_000;

/**
 * Answers a read now, or holds it when it asks to wait and its `If-None-Match` matches.
 * Sets `request.auditReason` for an answer that waited: `wait_changed` (woken by a change),
 * `wait_timeout`, `wait_shutdown`, `wait_closed` (the client went away).
 *
 * @returns the answer, the commit it was read at, and whether it is a 304
 * @throws what `produce` throws (also after a wake: the error is the answer), and
 *   CFG_ERR_TOO_MANY_WAITERS (429)
 */
export async function answerOrWait<T extends { readonly etag: string }>(
  request: FastifyRequest,
  reply: FastifyReply,
  target: ReadTarget,
  read: WaitableRead<T>,
): Promise<{ result: T; commit: string; notModified: boolean }> {
  let commit = target.commit;
  let result = await read.produce(commit);
  const inm = request.headers['if-none-match'];
  if (read.waitMs === undefined || !etagMatches(inm, result.etag)) return { result, commit, notModified: etagMatches(inm, result.etag) };
  const hub = request.server.longPoll;
  const until = Date.now() + read.waitMs;
  const socket = request.raw.socket;
  const restoreMs = request.server.server.timeout;
  socket.setTimeout(read.waitMs + SOCKET_MARGIN_MS);
  const principal = request.principal;
  const identity = principal === undefined ? `ip:${request.ip}` : `${principal.kind}:${principal.subject}`;
  const spec: WaitGroupSpec = { key: `${read.group}\0${target.ref ?? ''}`, store: target.store, ref: target.ref, etagAt: read.etagAt };
  const onAbort = (abort: () => void): (() => void) => {
    const onClose = (): void => {
      if (!reply.raw.writableEnded) abort();
    };
    reply.raw.once('close', onClose);
    return () => reply.raw.removeListener('close', onClose);
  };
  try {
    for (;;) {
      const outcome = await hub.wait(spec, { commit, etag: result.etag }, { identity, until, onAbort });
      if (outcome !== 'changed') {
        request.auditReason = `wait_${outcome}`;
        if (outcome === 'shutdown') reply.header('connection', 'close');
        return { result, commit, notModified: true };
      }
      ({ commit } = await target.store.resolve(target.ref));
      request.audit.commit = commit;
      result = await read.produce(commit);
      if (!etagMatches(inm, result.etag)) {
        request.auditReason = 'wait_changed';
        return { result, commit, notModified: false };
      }
      if (Date.now() >= until) {
        request.auditReason = 'wait_timeout';
        return { result, commit, notModified: true };
      }
    }
  } finally {
    if (!socket.destroyed) socket.setTimeout(restoreMs);
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Held long-poll requests (SPEC §5.1). */
    longPoll: LongPollHub;
  }
}
