import { describe, expect, it } from 'vitest';
import { DeliveryTracker } from '../../replay/delivery.js';

describe('DeliveryTracker', () => {
  it('records first deliveries, duplicates, loss after the limit and late arrivals', () => {
    const t = new DeliveryTracker(15_000, [2000]);
    const sub = t.subscriber('learner');
    const first = t.allocateIds(4);
    for (let i = 0; i < 4; i++) t.expect(sub, first + i, 1000 * i);
    expect(t.deliver(sub, first, 500)).toBe('first'); // 500 ms
    expect(t.deliver(sub, first, 600)).toBe('duplicate');
    expect(t.deliver(sub, first + 1, 4000)).toBe('first'); // 3 s: delivered, not within 2 s
    expect(t.sweep(16_999)).toBe(0); // id 2 is due at 17 000
    expect(t.sweep(17_001)).toBe(1);
    expect(t.deliver(sub, first + 2, 17_500)).toBe('late');
    expect(t.deliver(sub, first + 3, 18_001 + 1)).toBe('late'); // 15.002 s after its send: over the limit
    const c = t.counts.learner;
    expect(c).toMatchObject({ expected: 4, delivered: 2, duplicates: 1, lost: 2, late: 2 });
    expect(c.within).toEqual([1]);
    expect(t.histograms.learner.totalCount).toBe(2);
    expect(t.pendingPairs()).toBe(0);
  });

  it('ignores messages published before the subscriber joined or after it left', () => {
    const t = new DeliveryTracker(15_000, [2000]);
    const before = t.allocateIds(1);
    const sub = t.subscriber('control');
    const during = t.allocateIds(1);
    t.expect(sub, during, 0);
    t.leave(sub);
    const after = t.allocateIds(1);
    expect(t.deliver(sub, before, 10)).toBe('ignored');
    expect(t.deliver(sub, after, 10)).toBe('ignored');
    expect(t.deliver(sub, Number.NaN, 10)).toBe('ignored');
    expect(t.deliver(sub, during, 10)).toBe('first');
    expect(t.ignored).toBe(3);
    expect(t.counts.control.duplicates).toBe(0);
  });

  it('withdraws pairs of abandoned publishes from the denominator and abandons the rest on a hard stop', () => {
    const t = new DeliveryTracker(15_000, [2000]);
    const a = t.subscriber('learner');
    const b = t.subscriber('learner');
    const first = t.allocateIds(3);
    for (const s of [a, b]) for (let i = 0; i < 3; i++) t.expect(s, first + i, 0);
    t.withdraw(a, first, 2);
    expect(t.counts.learner.expected).toBe(4);
    expect(t.counts.learner.withdrawn).toBe(2);
    expect(t.abandon()).toBe(4);
    expect(t.counts.learner.unresolved).toBe(4);
    expect(t.pendingPairs()).toBe(0);
  });

  it('sweeps in scheduled order and stops at the first pair still in time', () => {
    const t = new DeliveryTracker(1000, [100]);
    const subs = Array.from({ length: 100 }, () => t.subscriber('learner'));
    for (let k = 0; k < 50; k++) {
      const id = t.allocateIds(1);
      for (const s of subs) t.expect(s, id, k * 10);
    }
    expect(t.sweep(1000 + 245)).toBe(25 * 100); // sends at 0..240 are past 1 s
    expect(t.pendingPairs()).toBe(25 * 100);
  });
});
