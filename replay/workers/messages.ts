// The IPC protocol between `replay --workers` (the parent) and its worker processes. Messages go
// over Node's child-process channel with 'advanced' serialization (structured clone).

import type { PlanOptions } from '../plan-types.js';
import type { ReplayOptionsInput } from '../options.js';
import type { ResultSecond, RunResult } from '../result.js';
import type { Phase } from '../runner.js';

/** What a worker needs to run its shard: the model, the plan options (with its shard) and the replay options. */
export interface WorkerJob {
  modelPath: string;
  /** --day as given ('peak', 'all', or YYYY-MM-DD); undefined: the model's default. */
  day: string | undefined;
  planOptions: PlanOptions;
  replay: Omit<ReplayOptionsInput, 'run' | 'env'>;
  groupId: string;
}

/**
 * 'start' loads the model and builds the shard's plan (the worker answers 'ready'); 'go' starts
 * the load at the common time once every worker is ready, so a slow model load is not a late start.
 */
export type ParentMessage =
  | { type: 'start'; job: WorkerJob }
  | { type: 'go'; startAtMs: number }
  | { type: 'stop'; immediate: boolean; reason: string };

export interface WorkerTotals {
  published: number;
  expected: number;
  delivered: number;
  duplicates: number;
  lost: number;
  errors: number;
  retries: number;
}

export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'started'; runNonce: string; protocol: string; startedAt: string }
  | { type: 'second'; row: ResultSecond; totals: WorkerTotals; elapsedMs: number; phase: Phase }
  | { type: 'warning'; line: string }
  | { type: 'stopping'; reason: string }
  | { type: 'result'; result: RunResult }
  /** The shard could not start or its run failed: no result follows. */
  | { type: 'error'; message: string; exitCode: number };
