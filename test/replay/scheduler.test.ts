import { describe, expect, it } from 'vitest';
import type { Clock } from '../../core/clock.js';
import { Scheduler, type Timers } from '../../replay/scheduler.js';

/** A hand-driven clock and timer: advance() runs whatever became due, in order. */
function fakeTime(): { clock: Clock; timers: Timers; advance(ms: number): void; armed(): number } {
  let now = 0;
  let pending: { at: number; fn: () => void; id: number } | undefined;
  const immediates: Array<() => void> = [];
  let ids = 0;
  let armedCount = 0;
  const timers: Timers = {
    setTimeout: (fn, ms) => {
      armedCount++;
      pending = { at: now + ms, fn, id: ++ids };
      return ids;
    },
    clearTimeout: (h) => {
      if (pending?.id === h) pending = undefined;
    },
    setImmediate: (fn) => immediates.push(fn),
  };
  return {
    clock: { nowMs: () => now, monoMs: () => now },
    timers,
    advance(ms) {
      const end = now + ms;
      for (let guard = 0; guard < 100_000; guard++) {
        const next = immediates.shift();
        if (next) {
          next();
          continue;
        }
        if (!pending || pending.at > end) break;
        now = Math.max(now, pending.at);
        const fn = pending.fn;
        pending = undefined;
        fn();
      }
      now = end;
    },
    armed: () => armedCount,
  };
}

describe('Scheduler', () => {
  it('runs tasks in due order with one timer, passing how late each ran', () => {
    const t = fakeTime();
    const s = new Scheduler(t.clock, t.timers);
    const ran: Array<[string, number]> = [];
    s.at(30, (late) => ran.push(['c', late]));
    s.at(10, (late) => ran.push(['a', late]));
    s.at(20, (late) => ran.push(['b', late]));
    s.at(20, (late) => ran.push(['b2', late])); // same time: insertion order
    t.advance(25);
    expect(ran).toEqual([
      ['a', 0],
      ['b', 0],
      ['b2', 0],
    ]);
    t.advance(10);
    expect(ran.map((r) => r[0])).toEqual(['a', 'b', 'b2', 'c']);
    expect(s.pending()).toBe(0);
  });

  it('skips cancelled tasks and runs nothing after stop()', () => {
    const t = fakeTime();
    const s = new Scheduler(t.clock, t.timers);
    const ran: string[] = [];
    const x = s.at(5, () => ran.push('x'));
    s.at(6, () => ran.push('y'));
    s.at(50, () => ran.push('late'));
    s.cancel(x);
    t.advance(10);
    expect(ran).toEqual(['y']);
    s.stop();
    s.at(60, () => ran.push('after stop'));
    t.advance(100);
    expect(ran).toEqual(['y']);
  });

  it('handles 20,000 entries as one heap and yields between large batches', () => {
    const t = fakeTime();
    const s = new Scheduler(t.clock, t.timers);
    let count = 0;
    let last = -1;
    let ordered = true;
    for (let i = 0; i < 20_000; i++) {
      const at = (i * 7919) % 1000;
      s.at(at, () => {
        count++;
        if (at < last) ordered = false;
        last = at;
      });
    }
    const timersBefore = t.armed();
    expect(timersBefore).toBeLessThan(20); // re-armed only when an earlier entry arrives
    t.advance(1000);
    expect(count).toBe(20_000);
    expect(ordered).toBe(true);
  });

  it('tasks scheduled from a task for "now" run in the same pass', () => {
    const t = fakeTime();
    const s = new Scheduler(t.clock, t.timers);
    const ran: string[] = [];
    s.at(10, () => {
      ran.push('first');
      s.at(10, () => ran.push('chained'));
    });
    t.advance(10);
    expect(ran).toEqual(['first', 'chained']);
  });
});
