/**
 * The long-poll hub (issue 12): waiters grouped by answer, woken only when their group's
 * ETag changes, one timer whatever the number of waiters, caps per replica and per caller,
 * shutdown and client aborts. The repository is a stand-in (its commit is set by the test);
 * the HTTP behaviour is proven end to end in test/long-poll.e2e.test.ts.
 */
import { describe, expect, it, vi } from 'vitest';
import { etagMatches, LongPollHub, parseWait, TimerWheel, type WaitGroupSpec, type WaitOutcome } from '../../src/http/long-poll.js';
import type { GitStore } from '../../src/http/plugins/git-store.js';

/** A repository whose commit the test moves, with a mirror whose repository announces published snapshots. */
function fakeStore(): { store: GitStore; move(commit: string): void; republish(): void; listeners: number } {
  let commit = 'c0';
  const listeners = new Set<(snapshot: null, refsChanged: boolean) => void>();
  const store = {
    name: 'config',
    mirror: {},
    repository: {
      onSnapshot: (fn: (snapshot: null, refsChanged: boolean) => void) => {
        listeners.add(fn);
        return () => listeners.delete(fn);
      },
    },
    resolve: async () => ({ commit, ref: 'refs/heads/main' }),
  } as unknown as GitStore;
  return {
    store,
    move: (c) => {
      commit = c;
      for (const l of [...listeners]) l(null, true);
    },
    republish: () => {
      for (const l of [...listeners]) l(null, false);
    },
    get listeners() {
      return listeners.size;
    },
  };
}

const opts = { maxWaitMs: 300_000, maxWaiters: 100, maxWaitersPerIdentity: 10, localPollMs: 1000 };
const noAbort = (): (() => void) => () => undefined;
const flush = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

describe('LongPollHub', () => {
  it('wakes a group only when its ETag changes; other groups and unchanged answers sleep on', async () => {
    const hub = new LongPollHub(opts);
    const repo = fakeStore();
    const etags: Record<string, Record<string, string>> = { orders: { c0: 'E1', c1: 'E1', c2: 'E2' }, billing: { c0: 'B1', c1: 'B2', c2: 'B2' } };
    const calls: string[] = [];
    const spec = (app: string): WaitGroupSpec => ({ key: app, store: repo.store, ref: undefined, etagAt: async (c) => (calls.push(`${app}@${c}`), etags[app]![c]!) });
    const until = Date.now() + 60_000;
    const outcomes: Record<string, WaitOutcome | undefined> = {};
    const hold = (name: string, app: string, etag: string): void => {
      void hub.wait(spec(app), { commit: 'c0', etag }, { identity: name, until, onAbort: noAbort }).then((o) => (outcomes[name] = o));
    };
    hold('o1', 'orders', 'E1');
    hold('o2', 'orders', 'E1');
    hold('b1', 'billing', 'B1');
    expect(hub.waiters).toBe(3);
    expect(hub.groups).toBe(2);
    expect(repo.listeners).toBe(1);
    repo.republish(); // a sync that published the same refs: nothing is checked
    await flush();
    expect(calls).toEqual([]);
    repo.move('c1'); // touches billing only
    await flush();
    expect(outcomes).toEqual({ b1: 'changed' });
    expect(calls.sort()).toEqual(['billing@c1', 'orders@c1']); // one check per group, not per waiter
    repo.move('c2');
    await flush();
    expect(outcomes).toEqual({ b1: 'changed', o1: 'changed', o2: 'changed' });
    expect(hub.waiters).toBe(0);
    expect(hub.groups).toBe(0);
    expect(repo.listeners).toBe(0);
    expect(hub.timers).toBe(0);
  });

  it('one timer for any number of waiters; each ends with timeout at its deadline', async () => {
    vi.useFakeTimers();
    vi.setSystemTime(1_700_000_000_000);
    try {
      const hub = new LongPollHub({ ...opts, maxWaitersPerIdentity: 1000, maxWaiters: 1000 });
      const repo = fakeStore();
      const spec: WaitGroupSpec = { key: 'g', store: repo.store, ref: undefined, etagAt: async () => 'E' };
      const done: WaitOutcome[] = [];
      const now = Date.now();
      for (let i = 0; i < 500; i++) void hub.wait(spec, { commit: 'c0', etag: 'E' }, { identity: 'x', until: now + 1000 + (i % 5) * 1000, onAbort: noAbort }).then((o) => done.push(o));
      expect(hub.timers).toBe(1);
      await vi.advanceTimersByTimeAsync(2100);
      expect(done.length).toBe(200);
      await vi.advanceTimersByTimeAsync(4000);
      expect(done.length).toBe(500);
      expect(new Set(done)).toEqual(new Set(['timeout']));
      expect(hub.timers).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('caps per caller and per replica: 429 too_many_waiters with Retry-After; a freed place is usable again', async () => {
    const hub = new LongPollHub({ ...opts, maxWaiters: 3, maxWaitersPerIdentity: 2 });
    const repo = fakeStore();
    const spec: WaitGroupSpec = { key: 'g', store: repo.store, ref: undefined, etagAt: async () => 'E' };
    const until = Date.now() + 60_000;
    let abortA: () => void = () => undefined;
    void hub.wait(spec, { commit: 'c0', etag: 'E' }, { identity: 'a', until, onAbort: (fn) => ((abortA = fn), () => undefined) });
    void hub.wait(spec, { commit: 'c0', etag: 'E' }, { identity: 'a', until, onAbort: noAbort });
    let err: (Error & { code?: string; retryAfterSeconds?: number; statusCode?: number }) | undefined;
    try {
      await hub.wait(spec, { commit: 'c0', etag: 'E' }, { identity: 'a', until, onAbort: noAbort });
    } catch (e) {
      err = e as typeof err;
    }
    expect(err?.code).toBe('CFG_ERR_TOO_MANY_WAITERS');
    expect(err?.statusCode).toBe(429);
    expect(err?.retryAfterSeconds).toBe(5);
    expect(err?.message).toContain('longPoll.maxWaitersPerIdentity = 2');
    void hub.wait(spec, { commit: 'c0', etag: 'E' }, { identity: 'b', until, onAbort: noAbort });
    await expect(hub.wait(spec, { commit: 'c0', etag: 'E' }, { identity: 'c', until, onAbort: noAbort })).rejects.toThrow('longPoll.maxWaiters = 3');
    abortA();
    expect(hub.waiters).toBe(2);
    const p = hub.wait(spec, { commit: 'c0', etag: 'E' }, { identity: 'a', until, onAbort: noAbort });
    hub.close();
    expect(await p).toBe('shutdown');
    expect(hub.waiters).toBe(0);
    expect(await hub.wait(spec, { commit: 'c0', etag: 'E' }, { identity: 'a', until, onAbort: noAbort })).toBe('shutdown');
  });

  it('a client that goes away frees its place at once (closed)', async () => {
    const hub = new LongPollHub(opts);
    const repo = fakeStore();
    let abort: () => void = () => undefined;
    let removed = false;
    const p = hub.wait({ key: 'g', store: repo.store, ref: undefined, etagAt: async () => 'E' }, { commit: 'c0', etag: 'E' }, {
      identity: 'a',
      until: Date.now() + 60_000,
      onAbort: (fn) => ((abort = fn), () => (removed = true)),
    });
    abort();
    expect(await p).toBe('closed');
    expect(removed).toBe(true);
    expect(hub.waiters).toBe(0);
    expect(hub.timers).toBe(0);
  });

  it('a failing check (ref deleted, document broken) wakes the group so each caller gets the error', async () => {
    const hub = new LongPollHub(opts);
    const repo = fakeStore();
    const p = hub.wait({ key: 'g', store: repo.store, ref: undefined, etagAt: async () => { throw new Error('broken'); } }, { commit: 'c0', etag: 'E' }, { identity: 'a', until: Date.now() + 60_000, onAbort: noAbort });
    repo.move('c1');
    expect(await p).toBe('changed');
  });
});

describe('TimerWheel', () => {
  it('expires items by slot and runs no timer when empty', async () => {
    vi.useFakeTimers();
    try {
      const out: number[] = [];
      const wheel = new TimerWheel<number>((n) => out.push(n), 100);
      const s1 = wheel.add(1, Date.now() + 100);
      wheel.add(2, Date.now() + 250);
      wheel.delete(1, s1);
      await vi.advanceTimersByTimeAsync(400);
      expect(out).toEqual([2]);
      expect(wheel.size).toBe(0);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('parseWait and etagMatches', () => {
  it('parses ms, s, m and bare seconds, cut to the maximum; 0 is no wait', () => {
    expect(parseWait('500ms', 300_000)).toBe(500);
    expect(parseWait('30', 300_000)).toBe(30_000);
    expect(parseWait('2m', 300_000)).toBe(120_000);
    expect(parseWait('90m', 300_000)).toBe(300_000);
    expect(parseWait('0', 300_000)).toBeUndefined();
    expect(parseWait(undefined, 300_000)).toBeUndefined();
  });
  it('compares weakly, in lists, and * matches', () => {
    expect(etagMatches('"a"', '"a"')).toBe(true);
    expect(etagMatches('W/"a"', '"a"')).toBe(true);
    expect(etagMatches('"b", W/"a"', 'W/"a"')).toBe(true);
    expect(etagMatches('*', '"a"')).toBe(true);
    expect(etagMatches('"b"', '"a"')).toBe(false);
    expect(etagMatches(undefined, '"a"')).toBe(false);
  });
});
