// Backoff waits on the one scheduler: each resolves true when its delay has passed, false when
// it was cut short (the subscriber left, the run stopped), so a retry loop never outlives its reason.

import type { Scheduler, ScheduledTask } from './scheduler.js';

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
