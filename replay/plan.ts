// The replay plan: pure, seeded and lazy. It turns the model (through ModelReader) and the
// options into the time-ordered PlanEvents the virtual users execute; the dry run summarises it.

import type { ModelReader } from '../db/model-types.js';
import type { PlanEvent, PlanOptions, PlanWindow } from './plan-types.js';
import { cloneSource } from './plan/clone.js';
import { sampleSource } from './plan/sample.js';
import { schedule } from './plan/schedule.js';
import { resolveWindow } from './plan/window.js';
import { shapeModel } from './plan/shaped-model.js';

export { resolvePlanOptions, defaultPlanOptions, PlanOptionsError } from './plan/options.js';
export type { RawPlanOptions, OptionProblem } from './plan/options.js';
export { summarizePlan, formatPlanSummary, estimateAssumptions } from './plan/dry-run.js';

/** Mean long-poll duration assumed when the model has no pollDuration distribution. */
export const defaultPollDurationMs = 25_000;

export interface Plan {
  options: PlanOptions;
  window: PlanWindow;
  /** Replay length: the window divided by speed, bounded by options.durationMs. */
  durationMs: number;
  /** A fresh, lazy, time-ordered enumeration each call; the same sequence every call. */
  events(): IterableIterator<PlanEvent>;
  /** Model fingerprint, so a run records which model it replayed. */
  modelFingerprint: string;
  /** Mean modelled long-poll duration (ms): how often a virtual user re-polls. */
  pollDurationMs: number;
}

export function createPlan(recorded: ModelReader, options: PlanOptions): Plan {
  // The what-if is applied before anything is drawn; the fingerprint stays the recorded model's.
  const model = options.shape ? shapeModel(recorded, options.shape, options.seed) : recorded;
  const window = resolveWindow(model, options);
  const durationMs = Math.min(options.durationMs ?? Number.POSITIVE_INFINITY, (window.endMs - window.startMs) / options.speed);
  const poll = model.distribution('pollDuration');
  const pollDurationMs = poll && poll.summary.count > 0 && poll.summary.mean > 0 ? poll.summary.mean : defaultPollDurationMs;
  if (options.mode === 'sample') {
    // Fails early (a model without the needed distributions) rather than on the first events() call.
    sampleSource(model, options.scale, options.seed, window.startMs, window.endMs);
  }
  return {
    options,
    window,
    durationMs,
    modelFingerprint: model.overview().fingerprint,
    pollDurationMs,
    events(): IterableIterator<PlanEvent> {
      const windowEndMs = window.startMs + durationMs * options.speed;
      const source =
        options.mode === 'clone'
          ? cloneSource(model, options.scale, options.seed)
          : sampleSource(model, options.scale, options.seed, window.startMs, windowEndMs);
      return schedule(source, {
        windowStartMs: window.startMs,
        speed: options.speed,
        durationMs,
        rampMs: options.rampMs,
        seed: options.seed,
        shard: options.shard,
      });
    },
  };
}
