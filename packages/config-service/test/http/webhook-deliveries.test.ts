import { describe, expect, it } from 'vitest';
import { deliveryId, DeliveryLog } from '../../src/http/webhook-deliveries.js';

describe('deliveryId', () => {
  it("takes each style's delivery header", () => {
    expect(deliveryId('github', { 'x-github-delivery': '72d3162e-cc78-11e3-81ab-4c9367dc0958' })).toBe('72d3162e-cc78-11e3-81ab-4c9367dc0958');
    expect(deliveryId('gitea', { 'x-gitea-delivery': 'g-1', 'x-github-delivery': 'g-2' })).toBe('g-1');
    expect(deliveryId('gitea', { 'x-github-delivery': 'g-2' })).toBe('g-2');
    expect(deliveryId('gitlab', { 'idempotency-key': 'k-1', 'x-gitlab-event-uuid': 'e-1' })).toBe('k-1');
    expect(deliveryId('gitlab', { 'x-gitlab-event-uuid': 'e-1' })).toBe('e-1');
  });

  it('ignores a missing, repeated, spaced or overlong id (no deduplication)', () => {
    expect(deliveryId('github', {})).toBeUndefined();
    expect(deliveryId('github', { 'x-gitea-delivery': 'g-1' })).toBeUndefined();
    expect(deliveryId('github', { 'x-github-delivery': 'a b' })).toBeUndefined();
    expect(deliveryId('github', { 'x-github-delivery': 'x'.repeat(129) })).toBeUndefined();
    expect(deliveryId('github', { 'x-github-delivery': 'x'.repeat(128) })).toBe('x'.repeat(128));
  });
});

describe('DeliveryLog', () => {
  it('reports a delivery seen within the window, and forgets it after', () => {
    let now = 1_000;
    const log = new DeliveryLog({ windowMs: 600_000, perf: { now: () => now } });
    expect(log.seen('config\0a')).toBe(false);
    expect(log.seen('config\0a')).toBe(true);
    expect(log.seen('other\0a')).toBe(false);
    now += 599_000;
    expect(log.seen('config\0a')).toBe(true);
    // A duplicate does not extend the window.
    now += 2_000;
    expect(log.seen('config\0a')).toBe(false);
    expect(log.seen('config\0a')).toBe(true);
  });

  it('keeps at most `max` ids, forgetting the least recently seen', () => {
    const log = new DeliveryLog({ windowMs: 600_000, max: 2 });
    expect([log.seen('a'), log.seen('b'), log.seen('c')]).toEqual([false, false, false]);
    expect(log.seen('a')).toBe(false);
    expect(log.seen('c')).toBe(true);
  });

  it('remembers nothing with a window of 0', () => {
    const log = new DeliveryLog({ windowMs: 0 });
    expect([log.seen('a'), log.seen('a')]).toEqual([false, false]);
  });
});
