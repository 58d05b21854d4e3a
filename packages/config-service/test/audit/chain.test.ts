import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  GENESIS_HASH,
  canonicalJson,
  computeEventHash,
  eventBodyJson,
  verifyChain,
  verifyChainAsync,
  type CanonicalValue,
} from '../../src/audit/chain.js';
import type { AuditEvent } from '../../src/audit/types.js';
import { makeEvent } from './helpers.js';

/** Builds a valid chain of n events. */
function chain(n: number): AuditEvent[] {
  const out: AuditEvent[] = [];
  let prevHash = GENESIS_HASH;
  for (let seq = 1; seq <= n; seq++) {
    const e = { ...makeEvent({ requestId: `r${seq}` }), seq, prevHash, hash: '' };
    e.hash = computeEventHash(e);
    out.push(e);
    prevHash = e.hash;
  }
  return out;
}

describe('canonicalJson', () => {
  it.each<[string, CanonicalValue, string]>([
    ['sorts keys at every depth', { b: 1, a: { d: [3, { z: 1, y: 2 }], c: 'x' } }, '{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}'],
    ['omits undefined members', { a: undefined, b: null }, '{"b":null}'],
    ['writes no whitespace', { 'a b': ['x', ' '] }, '{"a b":["x"," "]}'],
    ['escapes strings as JSON.stringify', { s: 'q"\\\n\u2028é\ud800' }, '{"s":"q\\"\\\\\\n\u2028é\\ud800"}'],
    ['writes numbers in shortest form', [1.5, 1e21, -0, 0.1, 100], '[1.5,1e+21,0,0.1,100]'],
    ['sorts by UTF-16 code units', { b: 1, B: 2, é: 3, _: 4 }, '{"B":2,"_":4,"b":1,"é":3}'],
    ['empty containers', { a: {}, b: [] }, '{"a":{},"b":[]}'],
  ])('%s', (_name, value, text) => {
    expect(canonicalJson(value)).toBe(text);
  });

  it('refuses values that are not JSON', () => {
    expect(() => canonicalJson(Number.POSITIVE_INFINITY)).toThrow(TypeError);
    expect(() => canonicalJson([undefined as unknown as CanonicalValue])).toThrow('canonicalJson: undefined array item');
    expect(() => canonicalJson(10n as unknown as CanonicalValue)).toThrow('canonicalJson: unsupported bigint');
  });
});

describe('event hash', () => {
  it('is sha256(prevHash + "\\n" + canonical body with seq)', () => {
    const e = { ...makeEvent({ actor: { kind: 'jwt', subject: 'alice' }, profiles: [], secretKeys: [] }), seq: 7, prevHash: 'a'.repeat(64) };
    const body =
      '{"action":"config.read","actor":{"kind":"jwt","subject":"alice"},"app":"orders",' +
      `"bodySha256":"${'cd'.repeat(32)}","clientAddress":"10.0.0.1","commit":"${'c0ffee'.padEnd(40, '0')}",` +
      '"durationMs":12.5,"format":"json","outcome":"allowed","profiles":[],"ref":"main","requestId":"req-1",' +
      '"secretKeys":[],"seq":7,"status":200,"time":"2025-01-02T03:04:05.678Z"}';
    expect(eventBodyJson(e)).toBe(body);
    expect(computeEventHash(e)).toBe(createHash('sha256').update(`${'a'.repeat(64)}\n${body}`).digest('hex'));
  });

  it('ignores fields outside the event and the stored hash itself', () => {
    const [e] = chain(1) as [AuditEvent];
    expect(computeEventHash({ ...e, hash: 'x', extra: 1 } as AuditEvent)).toBe(e.hash);
  });
});

describe('verifyChain', () => {
  it('accepts a valid chain and an empty one', () => {
    expect(verifyChain(chain(5))).toEqual({ ok: true, checked: 5 });
    expect(verifyChain([])).toEqual({ ok: true, checked: 0 });
  });

  it('names a changed field as a hash mismatch', () => {
    const c = chain(5);
    c[2] = { ...(c[2] as AuditEvent), status: 500 };
    expect(verifyChain(c)).toEqual({ ok: false, checked: 3, firstBreak: { seq: 3, reason: 'hash mismatch' } });
  });

  it('names a re-hashed forgery at the next event as a prev-hash mismatch', () => {
    const c = chain(5);
    const forged = { ...(c[1] as AuditEvent), app: 'billing' };
    forged.hash = computeEventHash(forged);
    c[1] = forged;
    expect(verifyChain(c)).toEqual({ ok: false, checked: 3, firstBreak: { seq: 3, reason: 'prev-hash mismatch' } });
  });

  it('names a removed, duplicated or reordered event as a sequence gap', () => {
    const c = chain(5);
    expect(verifyChain([c[0], c[2], c[3]] as AuditEvent[])).toEqual({ ok: false, checked: 2, firstBreak: { seq: 3, reason: 'sequence gap' } });
    expect(verifyChain([c[0], c[1], c[1]] as AuditEvent[])).toEqual({ ok: false, checked: 3, firstBreak: { seq: 2, reason: 'sequence gap' } });
    expect(verifyChain(c.slice(1))).toEqual({ ok: false, checked: 1, firstBreak: { seq: 2, reason: 'sequence gap' } });
  });

  it('names a first event without the genesis prev-hash', () => {
    const c = chain(2);
    const first = { ...(c[0] as AuditEvent), prevHash: 'b'.repeat(64) };
    first.hash = computeEventHash(first);
    expect(verifyChain([first])).toEqual({ ok: false, checked: 1, firstBreak: { seq: 1, reason: 'prev-hash mismatch' } });
  });

  it('names a malformed event as a hash mismatch', () => {
    const c = chain(2);
    c[1] = { ...(c[1] as AuditEvent), time: 'yesterday' };
    expect(verifyChain(c)).toEqual({ ok: false, checked: 2, firstBreak: { seq: 2, reason: 'hash mismatch' } });
  });

  it('verifies from an anchor (a chain whose older part was retired)', () => {
    const c = chain(5);
    expect(verifyChain(c.slice(3), { seq: 4, prevHash: (c[2] as AuditEvent).hash })).toEqual({ ok: true, checked: 2 });
  });

  it('reads async iterables the same way', async () => {
    const c = chain(4);
    c[3] = { ...(c[3] as AuditEvent), hash: '0'.repeat(64) };
    async function* gen(): AsyncGenerator<AuditEvent> {
      yield* c;
    }
    expect(await verifyChainAsync(gen())).toEqual({ ok: false, checked: 4, firstBreak: { seq: 4, reason: 'hash mismatch' } });
  });
});
