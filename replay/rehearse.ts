// Model to run in one call: builds the plan from a model and starts the runtime on it, recording
// which plan the run replayed. The one sequence `replay`, `demo` and programmatic callers share.

import type { ModelReader } from '../db/model-types.js';
import type { PlanOptions } from './plan-types.js';
import { createPlan, type Plan } from './plan.js';
import { shapeClient, shapeTexts } from './plan/shape.js';
import { startReplay, type ReplayInput, type ReplayRun } from './runner.js';

export interface ReplayModelInput extends Omit<ReplayInput, 'events' | 'durationMs' | 'run'> {
  model: ModelReader;
  /** Resolved plan options (resolvePlanOptions validates raw ones). */
  planOptions: PlanOptions;
}

export interface ModelReplay {
  plan: Plan;
  /** Listen for 'start', 'tick', 'done' or await `run.finished`. */
  run: ReplayRun;
}

/** Plans `model` with `planOptions` and starts replaying it against `input.target`. */
export function replayModel(input: ReplayModelInput): ModelReplay {
  const { model, planOptions, ...replay } = input;
  const plan = createPlan(model, planOptions);
  // A shape's client terms (pollTimeout, backoff) are what the virtual users do: they win over the flags.
  const client = planOptions.shape ? shapeClient(planOptions.shape) : {};
  if (client.pollTimeoutS !== undefined) replay.pollTimeoutS = client.pollTimeoutS;
  if (client.backoff) replay.backoff = { ...replay.backoff, ...client.backoff };
  const run = startReplay({
    ...replay,
    durationMs: plan.durationMs,
    events: plan.events(),
    run: {
      scale: planOptions.scale,
      mode: planOptions.mode,
      window: plan.window.label,
      speed: planOptions.speed,
      seed: planOptions.seed,
      modelFingerprint: plan.modelFingerprint,
      plannedDurationMs: plan.durationMs,
      rampMs: planOptions.rampMs,
      ...(planOptions.shape ? { shape: shapeTexts(planOptions.shape) } : {}),
    },
  });
  return { plan, run };
}
