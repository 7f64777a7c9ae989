// Plan options: validated once, here, for the CLI and the typed API alike. Every problem is
// collected before throwing, so a user fixes a command line in one go (like k6's Validate()).

import { UsageError } from '../../core/errors.js';
import { parseDuration } from '../../core/duration.js';
import type { PlanMode, PlanOptions } from '../plan-types.js';
import { parseShape, ShapeError, type Shape } from './shape.js';

/** What a user typed (strings from the CLI) or a program passed (numbers, durations in ms). */
export interface RawPlanOptions {
  mode?: string;
  scale?: string | number;
  window?: string;
  /** '10m' or milliseconds. */
  duration?: string | number;
  speed?: string | number;
  seed?: string | number;
  /** '2m' or milliseconds. */
  ramp?: string | number;
  /** 'i/N' or { index, count }. */
  shard?: string | { index: number; count: number };
  /** --shape terms as typed (repeatable; each may hold several separated by ';'), docs/shape.md. */
  shape?: readonly string[];
}

export interface OptionProblem {
  flag: string;
  message: string;
}

/** One UsageError for all bad options; `problems` lists each flag and what is wrong with it. */
export class PlanOptionsError extends UsageError {
  readonly problems: OptionProblem[];
  constructor(problems: OptionProblem[]) {
    const lines = problems.map((p) => `  ${p.flag}: ${p.message}`);
    super(`${problems.length === 1 ? 'an option is' : `${problems.length} options are`} invalid:\n${lines.join('\n')}`);
    this.problems = problems;
  }
}

export const defaultPlanOptions: PlanOptions = {
  mode: 'sample',
  scale: 1,
  window: 'peak',
  speed: 1,
  seed: 1,
  rampMs: 0,
  shard: { index: 0, count: 1 },
};

const clockWindow = /^([01]?\d|2[0-3]):([0-5]\d)-([01]?\d|2[0-4]):([0-5]\d)$/;

/** Syntax of --window only; whether it falls inside the model's day is checked by createPlan. */
export function windowSyntaxProblem(window: string): string | null {
  if (window === 'peak' || window === 'all') return null;
  const clock = clockWindow.exec(window);
  if (clock) {
    const from = Number(clock[1]) * 60 + Number(clock[2]);
    const to = Number(clock[3]) * 60 + Number(clock[4]);
    if (to > 24 * 60) return `${window}: the end is after 24:00`;
    return to > from ? null : `${window}: the end must be after the start`;
  }
  if (window.includes('/')) return null; // ISO 8601 interval, parsed against the model's zone later
  return `expected 'peak', 'all', 'HH:MM-HH:MM' or an ISO 8601 interval (start/end), got '${window}'`;
}

export function resolvePlanOptions(raw: RawPlanOptions = {}): PlanOptions {
  const problems: OptionProblem[] = [];
  const bad = (flag: string, message: string): void => void problems.push({ flag, message });

  let mode: PlanMode = defaultPlanOptions.mode;
  if (raw.mode !== undefined) {
    if (raw.mode === 'sample' || raw.mode === 'clone') mode = raw.mode;
    else bad('--mode', `expected 'sample' or 'clone', got '${raw.mode}'`);
  }

  const positive = (flag: string, value: string | number | undefined, fallback: number): number => {
    if (value === undefined) return fallback;
    const n = typeof value === 'number' ? value : value.trim() === '' ? Number.NaN : Number(value);
    if (!Number.isFinite(n) || n <= 0) {
      bad(flag, `expected a positive number, got '${value}'`);
      return fallback;
    }
    return n;
  };
  const scale = positive('--scale', raw.scale, defaultPlanOptions.scale);
  if (scale > 1000) bad('--scale', `${scale} is more than 1000 times the recorded load; split it with --shard or lower it`);
  const speed = positive('--speed', raw.speed, defaultPlanOptions.speed);

  const duration = (flag: string, value: string | number | undefined): number | undefined => {
    if (value === undefined) return undefined;
    const ms = typeof value === 'number' ? value : parseDuration(value);
    if (ms === null || !Number.isFinite(ms) || ms < 0) {
      bad(flag, `expected a duration like 90s, 10m or 1h30m, got '${value}'`);
      return undefined;
    }
    return ms;
  };
  const durationMs = duration('--duration', raw.duration);
  if (durationMs === 0) bad('--duration', 'must be longer than 0');
  const rampMs = duration('--ramp', raw.ramp) ?? defaultPlanOptions.rampMs;
  if (durationMs !== undefined && durationMs > 0 && rampMs > durationMs) {
    bad('--ramp', `the ramp (${rampMs} ms) is longer than --duration (${durationMs} ms)`);
  }

  let seed = defaultPlanOptions.seed;
  if (raw.seed !== undefined) {
    const n = typeof raw.seed === 'number' ? raw.seed : /^\s*\d+\s*$/.test(raw.seed) ? Number(raw.seed) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < 0) bad('--seed', `expected a non-negative integer, got '${raw.seed}'`);
    else seed = n;
  }

  let window = defaultPlanOptions.window;
  if (raw.window !== undefined) {
    const problem = windowSyntaxProblem(raw.window.trim());
    if (problem) bad('--window', problem);
    else window = raw.window.trim();
  }

  let shard = defaultPlanOptions.shard;
  if (raw.shard !== undefined) {
    let index = Number.NaN;
    let count = Number.NaN;
    if (typeof raw.shard === 'string') {
      const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(raw.shard);
      if (m) {
        index = Number(m[1]);
        count = Number(m[2]);
      }
    } else {
      index = raw.shard.index;
      count = raw.shard.count;
    }
    const text = typeof raw.shard === 'string' ? raw.shard : `${raw.shard.index}/${raw.shard.count}`;
    if (!Number.isSafeInteger(index) || !Number.isSafeInteger(count) || count < 1 || index < 0 || index >= count) {
      bad('--shard', `expected i/N with 0 <= i < N (e.g. 0/4), got '${text}'`);
    } else shard = { index, count };
  }

  let shape: Shape | undefined;
  try {
    shape = parseShape(raw.shape);
  } catch (err) {
    if (!(err instanceof ShapeError)) throw err;
    for (const p of err.problems) bad('--shape', p);
  }
  if (shape && mode === 'clone') {
    // Clone replays the recorded timelines: only what changes classes and clients applies to it.
    for (const t of shape.terms) {
      if (t.kind === 'distribution' && t.name !== 'rosterSize' && t.name !== 'pollDuration') {
        bad('--shape', `'${t.text}' changes a fitted distribution, which --mode clone does not draw from (it replays the recorded timelines); use --mode sample`);
      }
    }
  }

  if (problems.length > 0) throw new PlanOptionsError(problems);
  const options: PlanOptions = { mode, scale, window, speed, seed, rampMs, shard };
  if (durationMs !== undefined) options.durationMs = durationMs;
  if (shape && shape.terms.length > 0) options.shape = shape;
  return options;
}
