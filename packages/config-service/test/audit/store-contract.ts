/**
 * The contract every AuditStore implementation must pass, on a real database. A store's
 * test file calls {@link describeAuditStoreContract} with a harness that reaches the same
 * storage through an independent connection (to see commits and to tamper with rows).
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GENESIS_HASH, computeEventHash } from '../../src/audit/chain.js';
import { checkCheckpointSignature, checkpointJson, type Checkpoint, type CheckpointPublicKey } from '../../src/audit/checkpoint.js';
import type { AuditEvent, AuditQuery, AuditStore } from '../../src/audit/types.js';
import type { StoreCheckpointOptions } from '../../src/audit/checkpoint-schedule.js';
import { ids, makeEvent } from './helpers.js';

/** Logical names of the stored fields a test may overwrite. */
export type RawColumn = 'event' | 'hash' | 'prevHash' | 'app';

/** Access to one store's storage for the contract tests. */
export interface AuditStoreHarness {
  /** Opens a store on this harness's storage; every call reaches the same storage. */
  open(opts?: { checkpoints?: StoreCheckpointOptions }): Promise<AuditStore>;
  /** Sets the store's counter (the last event written) behind the store's back. */
  setCounter(seq: number, hash: string): Promise<void>;
  /** Writes a retention anchor behind the store's back (a forged one, in tests). */
  setAnchor(seq: number, prevHash: string, checkpoint: string | null): Promise<void>;
  /** One stored event read through an independent connection; undefined when absent. */
  readRow(seq: number): Promise<{ prevHash: string; hash: string; event: string } | undefined>;
  /** Number of stored events, through an independent connection. */
  countRows(): Promise<number>;
  /** Overwrites one stored field of one event behind the store's back. */
  update(seq: number, column: RawColumn, value: string): Promise<void>;
  /** Deletes one stored event behind the store's back. */
  remove(seq: number): Promise<void>;
  /** Makes every later write transaction of the store fail, until {@link restoreWrites}. */
  breakWrites(): Promise<void>;
  restoreWrites(): Promise<void>;
  /** Closes independent connections and removes the storage. */
  dispose(): Promise<void>;
}

/** The canonical JSON of makeEvent() with seq 1, written out by hand. */
const EVENT1_JSON =
  '{"action":"config.read",' +
  `"actor":{"fingerprint256":"${'ab'.repeat(32)}","issuer":"CN=Test CA,O=Example","kind":"certificate","subject":"orders"},` +
  `"app":"orders","bodySha256":"${'cd'.repeat(32)}","clientAddress":"10.0.0.1",` +
  `"commit":"${'c0ffee'.padEnd(40, '0')}","durationMs":12.5,"format":"json","outcome":"allowed",` +
  '"profiles":["prod","eu"],"ref":"main","requestId":"req-1","secretKeys":["spring.datasource.password"],' +
  '"seq":1,"status":200,"time":"2025-01-02T03:04:05.678Z"}';

const sha256 = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');

/** Registers the contract tests for one store implementation. */
export function describeAuditStoreContract(name: string, createHarness: () => Promise<AuditStoreHarness>): void {
  describe(`AuditStore contract: ${name}`, () => {
    let h: AuditStoreHarness;
    const opened: AuditStore[] = [];
    const open = async (opts?: { checkpoints?: StoreCheckpointOptions }): Promise<AuditStore> => {
      const s = await h.open(opts);
      opened.push(s);
      return s;
    };

    beforeEach(async () => {
      h = await createHarness();
    });
    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close();
      await h.dispose();
    });

    it('append resolves with the chained event once it is committed', async () => {
      const store = await open();
      const e = await store.append(makeEvent());
      const expectedHash = sha256(`${GENESIS_HASH}\n${EVENT1_JSON}`);
      expect(e).toEqual({ ...makeEvent(), seq: 1, prevHash: GENESIS_HASH, hash: expectedHash });
      // Visible to an independent connection the moment the promise resolves.
      expect(await h.readRow(1)).toEqual({ prevHash: GENESIS_HASH, hash: expectedHash, event: EVENT1_JSON });

      const e2 = await store.append(makeEvent({ requestId: 'req-2' }));
      expect(e2.seq).toBe(2);
      expect(e2.prevHash).toBe(expectedHash);
      expect(e2.hash).toBe(computeEventHash(e2));
      expect(await h.countRows()).toBe(2);
      expect(store.healthy).toBe(true);
    });

    it('stores exactly the known fields and copies them', async () => {
      const store = await open();
      const input = { ...makeEvent(), extra: 'dropped' } as ReturnType<typeof makeEvent>;
      const p = store.append(input);
      input.profiles.push('late');
      const e = await p;
      expect(e.profiles).toEqual(['prod', 'eu']);
      expect(Object.keys(e)).not.toContain('extra');
      expect((await h.readRow(1))?.event).toBe(EVENT1_JSON);
    });

    it('omits absent optional fields', async () => {
      const store = await open();
      const minimal = {
        time: '2025-01-02T03:04:05.000Z',
        requestId: 'r',
        actor: { kind: 'anonymous' as const },
        action: 'config.read',
        profiles: [],
        outcome: 'denied' as const,
        status: 401,
        secretKeys: [],
        durationMs: 0,
      };
      const e = await store.append(minimal);
      expect(e).toEqual({ seq: 1, ...minimal, prevHash: GENESIS_HASH, hash: e.hash });
      expect((await h.readRow(1))?.event).toBe(
        '{"action":"config.read","actor":{"kind":"anonymous"},"durationMs":0,"outcome":"denied","profiles":[],' +
          '"requestId":"r","secretKeys":[],"seq":1,"status":401,"time":"2025-01-02T03:04:05.000Z"}',
      );
      expect((await store.query({})).events).toEqual([e]);
    });

    it('rejects a malformed event with a TypeError without disturbing the others', async () => {
      const store = await open();
      const results = await Promise.allSettled([
        store.append(makeEvent({ requestId: 'a' })),
        store.append(makeEvent({ time: '2025-01-02 03:04:05' })),
        store.append(makeEvent({ status: 99 })),
        store.append(makeEvent({ durationMs: Number.NaN })),
        store.append(makeEvent({ requestId: 'b' })),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'rejected', 'fulfilled']);
      const reasons = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
      expect(reasons.map((r) => r.message)).toEqual([
        'Invalid audit event: time must be an ISO 8601 UTC time with milliseconds',
        'Invalid audit event: status must be an HTTP status code (100-599)',
        'Invalid audit event: durationMs must be a finite number >= 0',
      ]);
      for (const r of reasons) expect(r).toBeInstanceOf(TypeError);
      expect(ids((await store.query({})).events)).toEqual(['b', 'a']);
      expect(await store.verify()).toEqual({ ok: true, checked: 2 });
    });

    it('group-commits 1000 concurrent appends in call order with a valid chain', async () => {
      const store = await open();
      const before = store.stats.transactions;
      const events = await Promise.all(
        Array.from({ length: 1000 }, (_, i) => store.append(makeEvent({ requestId: `r${i}` }))),
      );
      expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
      expect(events.map((e) => e.requestId)).toEqual(Array.from({ length: 1000 }, (_, i) => `r${i}`));
      for (let i = 1; i < events.length; i++) expect(events[i]?.prevHash).toBe(events[i - 1]?.hash);
      expect(await h.countRows()).toBe(1000);
      expect(store.stats.transactions - before).toBeLessThanOrEqual(10);
      expect(store.stats.events).toBe(1000);
      expect(await store.verify()).toEqual({ ok: true, checked: 1000 });
    });

    it('continues the chain after a reopen', async () => {
      const first = await open();
      const a = await Promise.all([1, 2, 3].map((i) => first.append(makeEvent({ requestId: `a${i}` }))));
      await first.close();
      const second = await open();
      const b = await second.append(makeEvent({ requestId: 'b1' }));
      expect(b.seq).toBe(4);
      expect(b.prevHash).toBe(a[2]?.hash);
      expect(await second.verify()).toEqual({ ok: true, checked: 4 });
      expect(ids((await second.query({})).events)).toEqual(['b1', 'a3', 'a2', 'a1']);
    });

    it('close commits pending appends, then refuses new ones', async () => {
      const store = await open();
      const pending = [store.append(makeEvent({ requestId: 'x' })), store.append(makeEvent({ requestId: 'y' }))];
      await store.close();
      expect((await Promise.all(pending)).map((e) => e.seq)).toEqual([1, 2]);
      expect(await h.countRows()).toBe(2);
      expect(store.healthy).toBe(false);
      await expect(store.append(makeEvent())).rejects.toMatchObject({ code: 'CFG_ERR_AUDIT_UNAVAILABLE', statusCode: 503 });
      await expect(store.query({})).rejects.toMatchObject({ code: 'CFG_ERR_AUDIT_UNAVAILABLE' });
      await expect(store.verify()).rejects.toMatchObject({ code: 'CFG_ERR_AUDIT_UNAVAILABLE' });
      await store.close(); // idempotent
    });

    describe('tamper evidence', () => {
      let store: AuditStore;
      let events: AuditEvent[];
      beforeEach(async () => {
        store = await open();
        events = await Promise.all([1, 2, 3, 4, 5].map((i) => store.append(makeEvent({ requestId: `t${i}` }))));
        expect(await store.verify()).toEqual({ ok: true, checked: 5 });
      });

      it('detects an edited event body', async () => {
        const row = await h.readRow(3);
        await h.update(3, 'event', (row?.event ?? '').replace('"app":"orders"', '"app":"billing"'));
        expect(await store.verify()).toEqual({ ok: false, checked: 3, firstBreak: { seq: 3, reason: 'hash mismatch' } });
      });

      it('detects an edited hash', async () => {
        await h.update(2, 'hash', 'f'.repeat(64));
        expect(await store.verify()).toEqual({ ok: false, checked: 2, firstBreak: { seq: 2, reason: 'hash mismatch' } });
      });

      it('detects an edited event whose own hash was recomputed, at the next event', async () => {
        const e2 = events[1] as AuditEvent;
        const forged = { ...e2, secretKeys: [] };
        const body = ((await h.readRow(2))?.event ?? '').replace('"secretKeys":["spring.datasource.password"]', '"secretKeys":[]');
        await h.update(2, 'event', body);
        await h.update(2, 'hash', computeEventHash(forged));
        expect(await store.verify()).toEqual({ ok: false, checked: 3, firstBreak: { seq: 3, reason: 'prev-hash mismatch' } });
      });

      it('detects an edited prev-hash', async () => {
        await h.update(4, 'prevHash', '0'.repeat(64));
        expect(await store.verify()).toEqual({ ok: false, checked: 4, firstBreak: { seq: 4, reason: 'prev-hash mismatch' } });
      });

      it('detects a deleted event', async () => {
        await h.remove(2);
        expect(await store.verify()).toEqual({ ok: false, checked: 2, firstBreak: { seq: 3, reason: 'sequence gap' } });
      });

      it('detects a deleted first event', async () => {
        await h.remove(1);
        expect(await store.verify()).toEqual({ ok: false, checked: 1, firstBreak: { seq: 2, reason: 'sequence gap' } });
      });

      it('detects an indexed column that disagrees with the event', async () => {
        await h.update(5, 'app', 'billing');
        expect(await store.verify()).toEqual({ ok: false, checked: 5, firstBreak: { seq: 5, reason: 'column mismatch' } });
      });

      it('detects a body that is not an event', async () => {
        await h.update(4, 'event', 'not json');
        expect(await store.verify()).toEqual({ ok: false, checked: 4, firstBreak: { seq: 4, reason: 'malformed event' } });
      });
    });

    describe('numbers are never reused (the counter)', () => {
      it('names the deleted newest events, and keeps counting after them across a restart', async () => {
        const store = await open();
        const events = await Promise.all([1, 2, 3, 4, 5].map((i) => store.append(makeEvent({ requestId: `t${i}` }))));
        await h.remove(5);
        await h.remove(4);
        expect(await store.verify()).toEqual({
          ok: false,
          checked: 3,
          firstBreak: {
            seq: 4,
            reason: 'missing events',
            detail: "the store's counter says events up to seq 5 were written; the last stored event is seq 3: events 4 to 5 are missing",
          },
        });
        await store.close();
        const again = await open();
        const next = await again.append(makeEvent({ requestId: 't6' }));
        // Not 4: the deleted numbers stay a gap, chained to the real last event.
        expect(next.seq).toBe(6);
        expect(next.prevHash).toBe(events[4]?.hash);
        expect(await again.verify()).toEqual({ ok: false, checked: 4, firstBreak: { seq: 6, reason: 'sequence gap' } });
      });

      it('names a counter moved back to hide deleted events only when it disagrees with the chain', async () => {
        const store = await open();
        const events = await Promise.all([1, 2, 3].map((i) => store.append(makeEvent({ requestId: `t${i}` }))));
        await h.setCounter(2, events[2]?.hash ?? '');
        expect(await store.verify()).toEqual({
          ok: false,
          checked: 3,
          firstBreak: {
            seq: 3,
            reason: 'counter mismatch',
            detail: `the store's counter (seq 2, hash ${events[2]?.hash}) is not the last stored event (seq 3, hash ${events[2]?.hash}): it was edited`,
          },
        });
        // Deleting the tail AND moving the counter back is consistent inside the database: only
        // outside evidence (a checkpoint of seq 3) can show it.
        await h.remove(3);
        await h.setCounter(2, events[1]?.hash ?? '');
        expect(await store.verify()).toEqual({ ok: true, checked: 2 });
        const examined = await store.examine({ expect: [{ seq: 3, hash: events[2]?.hash ?? '', source: 'witness.ndjson:1' }] });
        expect(examined).toMatchObject({
          ok: false,
          checked: 2,
          firstBreak: {
            seq: 3,
            reason: 'missing events',
            detail: 'witness.ndjson:1 shows the chain reached seq 3; the store ends at seq 2: events 3 to 3 are missing',
          },
          head: { seq: 2, hash: events[1]?.hash },
          start: { seq: 1, prevHash: GENESIS_HASH },
          matched: 0,
        });
      });

      it('names the first event whose hash differs from an expected (checkpointed) one', async () => {
        const store = await open();
        const events = await Promise.all([1, 2, 3, 4].map((i) => store.append(makeEvent({ requestId: `t${i}` }))));
        const ok = await store.examine({ expect: [{ seq: 2, hash: events[1]?.hash ?? '', source: 'a:1' }, { seq: 4, hash: events[3]?.hash ?? '', source: 'a:2' }] });
        expect(ok).toMatchObject({ ok: true, checked: 4, matched: 2, head: { seq: 4, hash: events[3]?.hash } });
        expect(ok.storeId).toMatch(/^[0-9a-f-]{36}$/);
        expect(await store.storeId()).toBe(ok.storeId);
        const bad = await store.examine({ expect: [{ seq: 3, hash: 'f'.repeat(64), source: 'cp.ndjson:7' }] });
        expect(bad).toMatchObject({
          ok: false,
          checked: 3,
          firstBreak: {
            seq: 3,
            reason: 'checkpoint mismatch',
            detail: `event 3 has hash ${events[2]?.hash}; cp.ndjson:7 signed hash ${'f'.repeat(64)} for it: the chain was rewritten at or before seq 3`,
          },
        });
      });
    });

    describe('signed checkpoints', () => {
      const pair = generateKeyPairSync('ed25519');
      const keys: CheckpointPublicKey[] = [{ id: 'cp1', key: pair.publicKey, source: 'test' }];
      const signer = { keyId: 'cp1', privateKeyPem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };

      it('signs one every N events in the batch that reaches N, on demand, and at close, and lists them', async () => {
        const seen: string[] = [];
        const store = await open({ checkpoints: { signer, writerId: 'writer-a', everyEvents: 3, intervalMs: 3_600_000, onCheckpoint: (_cp, json) => seen.push(json) } });
        const events: AuditEvent[] = [];
        for (let i = 1; i <= 4; i++) events.push(await store.append(makeEvent({ requestId: `c${i}` })));
        // After event 3 (the count), none yet for event 4.
        let list = await store.checkpoints();
        expect(list.map((c) => [c.kind, c.seq, c.hash, c.writerId, c.keyId])).toEqual([['checkpoint', 3, events[2]?.hash, 'writer-a', 'cp1']]);
        expect(list[0]?.storeId).toBe(await store.storeId());
        expect(checkCheckpointSignature(list[0]!, keys)).toBe('valid');
        expect(seen).toEqual([checkpointJson(list[0]!)]);
        // Nothing new since: nothing to sign unless forced.
        expect(await store.checkpoint()).toMatchObject({ seq: 4 });
        expect(await store.checkpoint()).toBeUndefined();
        events.push(await store.append(makeEvent({ requestId: 'c5' })));
        await store.close();
        const reopened = await open();
        list = await reopened.checkpoints();
        expect(list.map((c) => c.seq)).toEqual([3, 4, 5]);
        expect(list.map((c) => checkCheckpointSignature(c, keys))).toEqual(['valid', 'valid', 'valid']);
        expect(seen.length).toBe(3);
        expect((await reopened.checkpoints({ after: 3, limit: 1 })).map((c) => c.seq)).toEqual([4]);
        await expect(reopened.checkpoints({ after: -1 })).rejects.toMatchObject({ code: 'CFG_ERR_INVALID_REQUEST' });
        expect(await reopened.checkpoint(true)).toBeUndefined();
      });

      it('prune anchors the chain on a signed retention checkpoint and drops older checkpoints', async () => {
        const seen: Checkpoint[] = [];
        const store = await open({ checkpoints: { signer, writerId: 'w', everyEvents: 1, intervalMs: 3_600_000, onCheckpoint: (cp) => seen.push(cp) } });
        const events: AuditEvent[] = [];
        for (let i = 1; i <= 4; i++) events.push(await store.append(makeEvent({ requestId: `e${i}`, time: `2025-01-0${i}T00:00:00.000Z` })));
        expect(await store.prune('2025-01-03')).toEqual({ deleted: 2 });
        const retention = seen[seen.length - 1];
        expect(retention).toMatchObject({ kind: 'retention', seq: 2, hash: events[1]?.hash });
        expect(checkCheckpointSignature(retention!, keys)).toBe('valid');
        // In seq order, then stored order; the checkpoint of seq 1 went with its event.
        expect((await store.checkpoints()).map((c) => [c.kind, c.seq])).toEqual([
          ['checkpoint', 2],
          ['retention', 2],
          ['checkpoint', 3],
          ['checkpoint', 4],
        ]);
        const examined = await store.examine();
        expect(examined).toMatchObject({ ok: true, checked: 2, start: { seq: 3, prevHash: events[1]?.hash }, anchor: { seq: 3, prevHash: events[1]?.hash } });
        expect(examined.anchor?.checkpoint).toBe(checkpointJson(retention!));
        // A forged anchor (events 1-3 deleted, the anchor moved on, unsigned) is consistent to the chain alone.
        await h.remove(3);
        await h.setAnchor(4, events[2]?.hash ?? '', null);
        expect(await store.examine()).toMatchObject({ ok: true, checked: 1, anchor: { seq: 4, prevHash: events[2]?.hash, checkpoint: null } });
      });
    });

    describe('retention (prune)', () => {
      let store: AuditStore;
      let events: AuditEvent[];
      /** e1..e5, one a day from 2025-01-01. */
      beforeEach(async () => {
        store = await open();
        events = [];
        for (let i = 1; i <= 5; i++) {
          events.push(await store.append(makeEvent({ requestId: `e${i}`, time: `2025-01-0${i}T00:00:00.000Z` })));
        }
      });

      it('deletes exactly the older events and verifies the rest from the anchor', async () => {
        expect(await store.prune('2025-01-03T00:00:00.000Z')).toEqual({ deleted: 2 });
        expect(await h.countRows()).toBe(3);
        expect(await h.readRow(1)).toBeUndefined();
        expect(await h.readRow(2)).toBeUndefined();
        expect((await h.readRow(3))?.prevHash).toBe(events[1]?.hash);
        expect(ids((await store.query({})).events)).toEqual(['e5', 'e4', 'e3']);
        expect(await store.verify()).toEqual({ ok: true, checked: 3 });
        // Nothing more is old enough: a no-op that keeps the anchor.
        expect(await store.prune('2025-01-03T00:00:00.000Z')).toEqual({ deleted: 0 });
        expect(await store.prune('2025-01-02')).toEqual({ deleted: 0 });
        expect(await store.verify()).toEqual({ ok: true, checked: 3 });
        // A later prune moves the anchor on.
        expect(await store.prune('2025-01-04T12:00:00+00:00')).toEqual({ deleted: 2 });
        expect(await h.countRows()).toBe(1);
        expect(await store.verify()).toEqual({ ok: true, checked: 1 });
      });

      it('keeps appending after the last event, also after a reopen', async () => {
        await store.prune('2025-01-04T00:00:00.000Z');
        const e6 = await store.append(makeEvent({ requestId: 'e6' }));
        expect(e6.seq).toBe(6);
        expect(e6.prevHash).toBe(events[4]?.hash);
        expect(await store.verify()).toEqual({ ok: true, checked: 3 });
        await store.close();
        const again = await open();
        expect(await again.verify()).toEqual({ ok: true, checked: 3 });
        const e7 = await again.append(makeEvent({ requestId: 'e7' }));
        expect(e7.seq).toBe(7);
        expect(e7.prevHash).toBe(e6.hash);
        expect(await again.verify()).toEqual({ ok: true, checked: 4 });
      });

      it('prunes everything, then chains the next append to the last pruned event', async () => {
        expect(await store.prune('2030-01-01')).toEqual({ deleted: 5 });
        expect(await h.countRows()).toBe(0);
        expect(await store.verify()).toEqual({ ok: true, checked: 0 });
        expect((await store.query({})).events).toEqual([]);
        const e6 = await store.append(makeEvent({ requestId: 'e6' }));
        expect(e6.seq).toBe(6);
        expect(e6.prevHash).toBe(events[4]?.hash);
        expect(await store.verify()).toEqual({ ok: true, checked: 1 });
        // Everything again, then a reopened store continues after e6.
        expect(await store.prune('2999-01-01')).toEqual({ deleted: 1 });
        await store.close();
        const again = await open();
        expect(await again.verify()).toEqual({ ok: true, checked: 0 });
        const e7 = await again.append(makeEvent({ requestId: 'e7' }));
        expect(e7.seq).toBe(7);
        expect(e7.prevHash).toBe(e6.hash);
        expect(await again.verify()).toEqual({ ok: true, checked: 1 });
      });

      it('deletes only a prefix of the chain when times are out of order', async () => {
        // e6 is newer in seq but older in time than e5; e7 is old again.
        await store.append(makeEvent({ requestId: 'e6', time: '2025-01-04T12:00:00.000Z' }));
        await store.append(makeEvent({ requestId: 'e7', time: '2025-01-01T12:00:00.000Z' }));
        // e1..e4 are before the cutoff, e5 is not: e6 and e7 wait for a later prune.
        expect(await store.prune('2025-01-05T00:00:00.000Z')).toEqual({ deleted: 4 });
        expect(ids((await store.query({})).events)).toEqual(['e7', 'e6', 'e5']);
        expect(await store.verify()).toEqual({ ok: true, checked: 3 });
      });

      it('still detects tampering after a prune', async () => {
        await store.prune('2025-01-03T00:00:00.000Z');
        const row4 = await h.readRow(4);
        await h.update(4, 'event', (row4?.event ?? '').replace('"app":"orders"', '"app":"billing"'));
        expect(await store.verify()).toEqual({ ok: false, checked: 2, firstBreak: { seq: 4, reason: 'hash mismatch' } });
        await h.update(4, 'event', row4?.event ?? '');
        expect(await store.verify()).toEqual({ ok: true, checked: 3 });

        await h.update(3, 'prevHash', GENESIS_HASH);
        expect(await store.verify()).toEqual({ ok: false, checked: 1, firstBreak: { seq: 3, reason: 'prev-hash mismatch' } });
      });

      it('still detects an event deleted in the middle, or the oldest one, not by a prune', async () => {
        await store.prune('2025-01-02T00:00:00.000Z');
        await h.remove(3);
        expect(await store.verify()).toEqual({ ok: false, checked: 2, firstBreak: { seq: 4, reason: 'sequence gap' } });
        await h.remove(2);
        expect(await store.verify()).toEqual({ ok: false, checked: 1, firstBreak: { seq: 4, reason: 'sequence gap' } });
      });

      it('refuses a bad cutoff, and prunes nothing from an empty store', async () => {
        await expect(store.prune('yesterday')).rejects.toMatchObject({ code: 'CFG_ERR_INVALID_REQUEST' });
        expect(await h.countRows()).toBe(5);
        await store.close();
        await expect(store.prune('2030-01-01')).rejects.toMatchObject({ code: 'CFG_ERR_AUDIT_UNAVAILABLE' });
        await h.dispose();
        h = await createHarness();
        const empty = await open();
        expect(await empty.prune('2030-01-01')).toEqual({ deleted: 0 });
        expect(await empty.verify()).toEqual({ ok: true, checked: 0 });
        expect((await empty.append(makeEvent())).seq).toBe(1);
      });
    });

    describe('query', () => {
      let store: AuditStore;
      beforeEach(async () => {
        store = await open();
        const c1 = '1'.repeat(40);
        const c2 = '2'.repeat(40);
        const rows = [
          makeEvent({ requestId: 'e1', time: '2025-03-01T00:00:00.000Z', app: 'orders', commit: c1 }),
          makeEvent({ requestId: 'e2', time: '2025-03-01T12:00:00.000Z', app: 'billing', commit: c2, actor: { kind: 'certificate', subject: 'billing' } }),
          makeEvent({ requestId: 'e3', time: '2025-03-02T00:00:00.000Z', app: 'orders', outcome: 'denied', status: 403, commit: c1, actor: { kind: 'certificate', subject: 'billing' } }),
          makeEvent({ requestId: 'e4', time: '2025-03-02T00:00:00.001Z', action: 'audit.read', outcome: 'allowed', actor: { kind: 'jwt', subject: 'alice', issuer: 'https://idp' } }),
          makeEvent({ requestId: 'e5', time: '2025-03-03T00:00:00.000Z', app: 'orders', outcome: 'error', status: 503, commit: c2 }),
          makeEvent({ requestId: 'e6', time: '2025-03-04T00:00:00.000Z', app: 'Orders', commit: c1 }),
        ];
        const { app: _app, commit: _commit, ...noAppNoCommit } = rows[3] as ReturnType<typeof makeEvent>;
        rows[3] = noAppNoCommit;
        for (const r of rows) await store.append(r);
      });

      const cases: [string, AuditQuery, string[]][] = [
        ['no filter, newest first', {}, ['e6', 'e5', 'e4', 'e3', 'e2', 'e1']],
        ['app (exact, case-sensitive)', { app: 'orders' }, ['e5', 'e3', 'e1']],
        ['actor = subject', { actor: 'billing' }, ['e3', 'e2']],
        ['action', { action: 'audit.read' }, ['e4']],
        ['outcome', { outcome: 'allowed' }, ['e6', 'e4', 'e2', 'e1']],
        ['commit', { commit: '1'.repeat(40) }, ['e6', 'e3', 'e1']],
        ['requestId (exact)', { requestId: 'e3' }, ['e3']],
        ['requestId of no event', { requestId: 'e' }, []],
        ['since inclusive', { since: '2025-03-02T00:00:00.000Z' }, ['e6', 'e5', 'e4', 'e3']],
        ['until exclusive', { until: '2025-03-02T00:00:00.000Z' }, ['e2', 'e1']],
        ['since and until', { since: '2025-03-01T12:00:00.000Z', until: '2025-03-03T00:00:00.000Z' }, ['e4', 'e3', 'e2']],
        ['since as a date', { since: '2025-03-03' }, ['e6', 'e5']],
        ['since with an offset', { since: '2025-03-02T01:00:00.001+01:00' }, ['e6', 'e5', 'e4']],
        ['until below a millisecond rounds up', { until: '2025-03-02T00:00:00.000001Z' }, ['e3', 'e2', 'e1']],
        ['filters combine with AND', { app: 'orders', commit: '1'.repeat(40), outcome: 'allowed' }, ['e1']],
        ['nothing matches', { app: 'nope' }, []],
      ];
      it.each(cases)('%s', async (_name, q, expected) => {
        const page = await store.query(q);
        expect(ids(page.events)).toEqual(expected);
        expect(page.nextCursor).toBeUndefined();
      });

      it('returns whole stored events', async () => {
        const [e4] = (await store.query({ action: 'audit.read' })).events;
        expect(e4).toEqual({
          seq: 4,
          ...makeEvent({ requestId: 'e4', time: '2025-03-02T00:00:00.001Z', action: 'audit.read', actor: { kind: 'jwt', subject: 'alice', issuer: 'https://idp' } }),
          app: undefined,
          commit: undefined,
          prevHash: e4?.prevHash,
          hash: e4?.hash,
        });
        expect(Object.keys(e4 ?? {})).not.toContain('app');
      });

      it('pages with a cursor, also under a filter', async () => {
        const p1 = await store.query({ limit: 4 });
        expect(ids(p1.events)).toEqual(['e6', 'e5', 'e4', 'e3']);
        expect(p1.nextCursor).toBe(Buffer.from('3').toString('base64url'));
        const p2 = await store.query({ limit: 4, cursor: p1.nextCursor });
        expect(ids(p2.events)).toEqual(['e2', 'e1']);
        expect(p2.nextCursor).toBeUndefined();

        const f1 = await store.query({ app: 'orders', limit: 1 });
        expect(ids(f1.events)).toEqual(['e5']);
        const f2 = await store.query({ app: 'orders', limit: 1, cursor: f1.nextCursor });
        expect(ids(f2.events)).toEqual(['e3']);
        const f3 = await store.query({ app: 'orders', limit: 1, cursor: f2.nextCursor });
        expect(ids(f3.events)).toEqual(['e1']);
        expect(f3.nextCursor).toBeUndefined();

        // A page that ends exactly at the last event has no next cursor.
        expect((await store.query({ limit: 6 })).nextCursor).toBeUndefined();
      });

      it('keeps pages stable while new events arrive', async () => {
        const p1 = await store.query({ limit: 3 });
        await store.append(makeEvent({ requestId: 'e7' }));
        const p2 = await store.query({ limit: 3, cursor: p1.nextCursor });
        expect(ids(p2.events)).toEqual(['e3', 'e2', 'e1']);
      });

      const invalid: [string, AuditQuery][] = [
        ['cursor not base64url of a seq', { cursor: 'bm9wZQ' }],
        ['cursor of seq 0', { cursor: Buffer.from('0').toString('base64url') }],
        ['cursor with junk', { cursor: '!!' }],
        ['since not a time', { since: 'yesterday' }],
        ['since without a zone', { since: '2025-03-01T00:00:00' }],
        ['until an impossible date', { until: '2025-02-30T00:00:00Z' }],
        ['limit 0', { limit: 0 }],
        ['limit fractional', { limit: 1.5 }],
      ];
      it.each(invalid)('refuses %s with CFG_ERR_INVALID_REQUEST', async (_name, q) => {
        await expect(store.query(q)).rejects.toMatchObject({ code: 'CFG_ERR_INVALID_REQUEST', statusCode: 400 });
      });
    });

    it('defaults to 100 events a page and caps a page at 1000', async () => {
      const store = await open();
      await Promise.all(Array.from({ length: 1001 }, (_, i) => store.append(makeEvent({ requestId: `r${i}` }))));
      const def = await store.query({});
      expect(def.events.length).toBe(100);
      expect(def.events[0]?.seq).toBe(1001);
      const big = await store.query({ limit: 5000 });
      expect(big.events.length).toBe(1000);
      expect(big.events[999]?.seq).toBe(2);
      const rest = await store.query({ limit: 5000, cursor: big.nextCursor });
      expect(rest.events.map((e) => e.seq)).toEqual([1]);
      expect(rest.nextCursor).toBeUndefined();
    });

    it('fails closed while writes fail, and recovers without a gap', async () => {
      const store = await open();
      const ok1 = await store.append(makeEvent({ requestId: 'ok1' }));
      await h.breakWrites();
      const failed = await Promise.allSettled([1, 2, 3].map((i) => store.append(makeEvent({ requestId: `f${i}` }))));
      for (const r of failed) {
        expect(r.status).toBe('rejected');
        const err = (r as PromiseRejectedResult).reason as Error & { code: string; statusCode: number };
        expect(err.code).toBe('CFG_ERR_AUDIT_UNAVAILABLE');
        expect(err.statusCode).toBe(503);
        expect(err.cause).toBeInstanceOf(Error);
      }
      expect(store.healthy).toBe(false);
      expect(store.stats.failedTransactions).toBeGreaterThanOrEqual(1);
      expect(await h.countRows()).toBe(1);
      // Still failing: still unhealthy.
      await expect(store.append(makeEvent({ requestId: 'f4' }))).rejects.toMatchObject({ code: 'CFG_ERR_AUDIT_UNAVAILABLE' });
      expect(store.healthy).toBe(false);

      await h.restoreWrites();
      const ok2 = await store.append(makeEvent({ requestId: 'ok2' }));
      expect(store.healthy).toBe(true);
      expect(ok2.seq).toBe(2);
      expect(ok2.prevHash).toBe(ok1.hash);
      expect(ids((await store.query({})).events)).toEqual(['ok2', 'ok1']);
      expect(await store.verify()).toEqual({ ok: true, checked: 2 });
    });

    it('health names why it failed and since when; a probe restores it without an append', async () => {
      const store = await open();
      expect(store.health).toEqual({ healthy: true });
      await store.probe(5000);
      expect(store.health).toEqual({ healthy: true });
      expect(store.stats).toMatchObject({ probes: 1, probeFailures: 0 });
      await h.breakWrites();
      const before = Date.now();
      await expect(store.append(makeEvent({ requestId: 'f1' }))).rejects.toMatchObject({ code: 'CFG_ERR_AUDIT_UNAVAILABLE' });
      const health = store.health;
      expect(health.healthy).toBe(false);
      expect(health.reason).toMatch(/^write failed: .*injected write failure|^write failed: .*test_fail_writes/);
      expect(Date.parse(health.since ?? '')).toBeGreaterThanOrEqual(before - 1000);
      await h.restoreWrites();
      // No append: the probe alone makes the store healthy again, and writes nothing.
      await store.probe(5000);
      expect(store.health).toEqual({ healthy: true });
      expect(await h.countRows()).toBe(0);
    });

    it('appendEventually commits without a caller, and retries after a failure once a probe passes', async () => {
      const store = await open();
      store.appendEventually(makeEvent({ requestId: 'later-1', status: 503, outcome: 'error', reason: 'audit_unavailable:commit_timeout' }));
      await until(async () => (await h.countRows()) === 1);
      expect(store.stats.deferredPending).toBe(0);

      await h.breakWrites();
      await expect(store.append(makeEvent({ requestId: 'f1' }))).rejects.toMatchObject({ code: 'CFG_ERR_AUDIT_UNAVAILABLE' });
      store.appendEventually(makeEvent({ requestId: 'later-2' }));
      // Its own transaction fails: it waits in memory for the next success.
      await until(async () => store.stats.failedTransactions >= 2);
      expect(store.stats.deferredPending).toBe(1);
      expect(await h.countRows()).toBe(1);
      // A malformed event is refused at once (a bug in the caller), nothing is queued.
      expect(() => store.appendEventually({ ...makeEvent(), status: 42 })).toThrow(TypeError);

      await h.restoreWrites();
      await store.probe(5000);
      await until(async () => (await h.countRows()) === 2);
      expect(store.stats.deferredPending).toBe(0);
      expect(ids((await store.query({})).events)).toEqual(['later-2', 'later-1']);
      expect(await store.verify()).toEqual({ ok: true, checked: 2 });
      expect(store.healthy).toBe(true);
    });

    it('close tries deferred events once more, then drops (and counts) those that still fail', async () => {
      const store = await open();
      await h.breakWrites();
      store.appendEventually(makeEvent({ requestId: 'doomed' }));
      await until(async () => store.stats.failedTransactions >= 1);
      await store.close();
      expect(store.stats).toMatchObject({ deferredPending: 0, deferredDropped: 1 });
      await h.restoreWrites();
      expect(await h.countRows()).toBe(0);
      expect(store.health).toEqual({ healthy: false, reason: 'the audit store is closed' });
    });
  });
}

/** Polls `check` every 20 ms until it holds (10 s at most). */
async function until(check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met within 10 s');
    await new Promise((r) => setTimeout(r, 20));
  }
}
