// The contract between the plan (pure, seeded, lazy) and the virtual users that execute it.
// Times are milliseconds from the start of the replay, already divided by --speed.

import type { Shape } from './plan/shape.js';

export type PlanMode = 'clone' | 'sample';

export interface PlanOptions {
  mode: PlanMode;
  /** Multiplier of the modelled load; fractional values work (7.5). */
  scale: number;
  /** 'peak', 'all', 'HH:MM-HH:MM' (in the model's zone) or an ISO 8601 interval. */
  window: string;
  /** Bounds the replay (after speed is applied); undefined: the whole window. */
  durationMs?: number;
  /** Divides every recorded gap and duration; 1 is real timing. */
  speed: number;
  seed: number;
  /** Linear ramp of arrivals from 0 to the modelled level over this time; 0: warm start. */
  rampMs: number;
  /** This process's share of classes: index in [0, count). */
  shard: { index: number; count: number };
  /** What-if terms applied to the model before the plan draws from it (docs/shape.md); absent: the recorded model. */
  shape?: Shape;
}

/** Ids are unique within a plan and stable for a seed: 'c17' (class), 'c17.p' (proctor), 'c17.l4' (learner). */
export type PlanEvent =
  | { kind: 'learnerJoin'; atMs: number; learner: string; classId: string }
  | { kind: 'proctorJoin'; atMs: number; proctor: string; classId: string; roster: string[] }
  | { kind: 'publish'; atMs: number; learner: string; messages: number }
  | { kind: 'control'; atMs: number; proctor: string; targets: string[] }
  | { kind: 'learnerLeave'; atMs: number; learner: string }
  | { kind: 'proctorLeave'; atMs: number; proctor: string };

export type PlanEventKind = PlanEvent['kind'];

export interface PlanWindow {
  /** Model time (epoch ms of the recorded day) that replay time 0 corresponds to. */
  startMs: number;
  endMs: number;
  label: string;
}

export interface PlanMinute {
  minute: number;
  learners: number;
  proctors: number;
  publishesPerS: number;
  pollsPerS: number;
  deliveriesPerS: number;
  openPolls: number;
}

/** What the dry run prints and `--json` emits. */
export interface PlanSummary {
  mode: PlanMode;
  scale: number;
  speed: number;
  seed: number;
  window: PlanWindow;
  durationMs: number;
  classes: number;
  learners: number;
  proctors: number;
  publishes: number;
  messages: number;
  controls: number;
  /** Message-subscriber pairs the runtime will expect to be delivered. */
  expectedDeliveries: number;
  peakConcurrentLearners: number;
  peakConcurrentProctors: number;
  /** Each virtual user keeps one long-poll open: the connections the generator needs. */
  peakOpenPolls: number;
  peakRequestsPerS: number;
  perMinute: PlanMinute[];
  estimate: { generatorCpuCores: number; connections: number; memoryMb: number };
  /** This plan's share of classes (absent: the whole plan). */
  shard?: { index: number; count: number };
  /** The constants behind `estimate`, so a reader can redo it with measured numbers. */
  assumptions?: PlanEstimateAssumptions;
}

export interface PlanEstimateAssumptions {
  cpuMicrosPerRequest: number;
  shortRequestMs: number;
  kbPerVirtualUser: number;
  baseMemoryMb: number;
  /** Mean long-poll duration used for polls/s. */
  pollDurationMs: number;
}
