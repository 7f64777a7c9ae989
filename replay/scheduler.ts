// One scheduler for the whole runtime: a binary min-heap of due times driven by a single timer,
// so 20k virtual users cost heap entries, not 20k setTimeouts. Plan events, backoff retries and
// the per-second tick all go through it, and stop() cancels everything in one place.

import type { Clock } from '../core/clock.js';
import { MinHeap } from '../core/min-heap.js';

/** The timer primitive, injectable so tests can drive time by hand. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** Yields to I/O between large batches. */
  setImmediate(fn: () => void): unknown;
}

export const systemTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  setImmediate: (fn) => setImmediate(fn),
};

/** Called with how late (ms) it ran compared with its due time. */
export type Task = (lateMs: number) => void;

export interface ScheduledTask {
  readonly atMs: number;
  cancelled: boolean;
}

interface Entry extends ScheduledTask {
  atMs: number;
  seq: number;
  task: Task;
}

/** Runs at most this many due tasks before yielding, so responses are not starved by a burst. */
const batchLimit = 2000;

export class Scheduler {
  private readonly heap = new MinHeap<Entry>(less);
  private seq = 0;
  private timer: unknown = undefined;
  private timerAtMs = Infinity;
  private yielding = false;
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly timers: Timers = systemTimers,
  ) {}

  /** Schedules `task` at monotonic time `atMs`. */
  at(atMs: number, task: Task): ScheduledTask {
    const entry: Entry = { atMs, seq: this.seq++, task, cancelled: false };
    if (this.stopped) {
      entry.cancelled = true;
      return entry;
    }
    this.heap.push(entry);
    if (!this.yielding && (atMs < this.timerAtMs || this.timer === undefined)) this.arm();
    return entry;
  }

  after(delayMs: number, task: Task): ScheduledTask {
    return this.at(this.clock.monoMs() + delayMs, task);
  }

  cancel(handle: ScheduledTask | undefined): void {
    if (handle) handle.cancelled = true;
  }

  /** Live (uncancelled) entries; O(n), for tests and diagnostics. */
  pending(): number {
    let n = 0;
    for (const e of this.heap.values()) if (!e.cancelled) n++;
    return n;
  }

  /** Cancels every task and the timer; nothing scheduled runs afterwards. */
  stop(): void {
    this.stopped = true;
    for (const e of this.heap.values()) e.cancelled = true;
    this.heap.clear();
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAtMs = Infinity;
  }

  private arm(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAtMs = Infinity;
    while (this.heap.size > 0 && this.heap.peek()!.cancelled) this.heap.pop();
    const first = this.heap.peek();
    if (!first || this.stopped) return;
    this.timerAtMs = first.atMs;
    const delay = Math.max(0, first.atMs - this.clock.monoMs());
    this.timer = this.timers.setTimeout(() => this.run(), delay);
  }

  private run(): void {
    // Entered from the timer or from a yield; either way no other wake-up may stay behind.
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAtMs = Infinity;
    this.yielding = false;
    let ran = 0;
    while (!this.stopped && this.heap.size > 0) {
      const first = this.heap.peek()!;
      if (first.cancelled) {
        this.heap.pop();
        continue;
      }
      // setTimeout has millisecond granularity; running tasks due within the next half
      // millisecond avoids a wasted wake-up that would only add lag.
      const now = this.clock.monoMs();
      if (first.atMs > now + 0.5) break;
      if (ran >= batchLimit) {
        this.yielding = true;
        this.timers.setImmediate(() => this.run());
        return;
      }
      this.heap.pop();
      ran++;
      first.task(Math.max(0, now - first.atMs));
    }
    if (!this.stopped) this.arm();
  }
}

function less(a: Entry, b: Entry): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
}
