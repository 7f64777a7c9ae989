// Backoff waits on the one scheduler: each resolves true when its delay has passed, false when
// it was cut short (the subscriber left, the run stopped), so a retry loop never outlives its reason.

import type { Clock } from '../core/clock.js';
import type { Random } from '../stats/random.js';
import type { BackoffPolicy } from './backoff.js';
import type { DeliveryTracker } from './delivery.js';
import type { RunMetrics } from './metrics.js';
import type { SentSamples } from './samples.js';
import type { Scheduler, ScheduledTask } from './scheduler.js';
import type { Target } from './target/types.js';

/** What publishers and subscribers both work with: the target, time, their backoff and where they count. */
export interface RetryingClientDeps {
  target: Target;
  clock: Clock;
  waits: Waits;
  rng: Random;
  backoff: BackoffPolicy;
  metrics: RunMetrics;
  tracker: DeliveryTracker;
  samples: SentSamples;
}

export interface Wait {
  readonly done: Promise<boolean>;
  /** Ends the wait now; `done` resolves false. */
  cancel(): void;
}

export class Waits {
  private readonly pending = new Set<{ task: ScheduledTask; wake: () => void }>();

  constructor(private readonly scheduler: Scheduler) {}

  after(delayMs: number): Wait {
    let entry!: { task: ScheduledTask; wake: () => void };
    const done = new Promise<boolean>((resolve) => {
      entry = {
        task: this.scheduler.after(delayMs, () => {
          this.pending.delete(entry);
          resolve(true);
        }),
        wake: () => {
          this.pending.delete(entry);
          this.scheduler.cancel(entry.task);
          resolve(false);
        },
      };
    });
    this.pending.add(entry);
    return { done, cancel: () => entry.wake() };
  }

  cancelAll(): void {
    for (const w of [...this.pending]) w.wake();
  }
}
