// Fidelity: did the rehearsal look like the recorded day? Compares what a run actually sent
// (run_samples, run_seconds) with the model's fitted distributions: quantiles side by side and
// the two-sample KS distance. Pure: the model arrives as a ModelReader (or null).

import type { RunSecond } from '../db/run-types.js';
import type { StoredRun } from '../db/run-queries.js';
import { distributionNames, type DistributionName, type ModelReader } from '../db/model-types.js';
import { ksDistance, ksDistanceToCdf } from '../stats/ks.js';
import { formatDuration } from '../core/duration.js';
import { quantileSorted, sortedCopy } from '../stats/quantile.js';
import { parseShape, shapedDistributions } from '../replay/plan/shape.js';
import { shapeModel } from '../replay/plan/shaped-model.js';
import { runShape } from './run-shape.js';

export interface FidelityQuantile {
  q: number;
  model: number | null;
  run: number;
}

export interface FidelityRow {
  /** The model's distribution name, or 'pollsPerSecond'. */
  name: string;
  label: string;
  unit: 'ms' | 'count' | 'per s';
  runCount: number;
  modelCount: number | null;
  quantiles: FidelityQuantile[];
  /** Two-sample KS distance (0 identical .. 1 disjoint); null without a model side. */
  ks: number | null;
  /** How to read this row when it is not a plain sample-vs-sample comparison. */
  note: string | null;
  /**
   * Session durations when the replay window is shorter than the recorded day: the model side is
   * then what such a window would record of the model's sessions (docs/report.md), and this is
   * the window's length in recorded ms. Null for every other row.
   */
  windowCutMs: number | null;
  /** Values at `fidelityCurveQuantiles`, for the report's quantile chart. */
  curve: { run: number[]; model: number[] | null };
  /** A shaped run: the recorded model's values at `fidelityQuantiles` where the shape changed this distribution (for reference; `model` is the shaped one). */
  recorded?: number[] | null;
}

export interface Fidelity {
  /** 'available': compared with the model; 'unavailable': the run's side only, `reason` says why. */
  status: 'available' | 'unavailable';
  reason: string | null;
  rows: FidelityRow[];
  /** The run's --shape terms: the model side is the shaped model, the traffic the run intended ([] for the recorded model). */
  shape?: string[];
}

export const fidelityQuantiles: readonly number[] = [0.1, 0.5, 0.9, 0.99];
export const fidelityCurveQuantiles: readonly number[] = Array.from({ length: 51 }, (_, i) => Math.min(0.995, 0.005 + i * 0.02));

const labels: Record<DistributionName, string> = {
  learnerPublishInterval: 'gap between a learner’s publishes',
  proctorControlInterval: 'gap between a proctor’s control messages',
  messagesPerPublish: 'messages per publish',
  controlTargets: 'learners addressed per control message',
  sessionDuration: 'learner session duration',
  proctorSessionDuration: 'proctor session duration',
  rosterSize: 'roster size (learners per proctor)',
  pollDuration: 'long-poll duration',
  retryGap: 'gap before a retry',
  proctorLeadTime: 'proctor lead time',
};

function isDistributionName(name: string): name is DistributionName {
  return (distributionNames as readonly string[]).includes(name);
}

export interface FidelityInput {
  run: StoredRun;
  samples: Map<string, Float64Array>;
  seconds: RunSecond[];
  /** The model the run replayed, if it is at hand; `modelLabel` names it in messages. */
  model: ModelReader | null;
  modelLabel?: string;
}

/** The runtime records sent samples in the model's units (ms of recorded time, not divided by --speed). */
export function computeFidelity(input: FidelityInput): Fidelity {
  const { run, samples, seconds } = input;
  let model = input.model;
  let reason: string | null = null;
  if (!model) {
    reason = `the model is not available (pass the model database with --db to compare with it)`;
  } else {
    const fingerprint = model.overview().fingerprint;
    if (fingerprint !== run.modelFingerprint) {
      reason = `the model in ${input.modelLabel ?? 'the model database'} (${fingerprint.slice(0, 12)}) is not the one run ${run.id} replayed (${run.modelFingerprint.slice(0, 12)})`;
      model = null;
    }
  }
  // A shaped run is held against the traffic it intended: the model as its shape made it.
  const shape = runShape(run);
  const recorded = model;
  if (model && shape.length > 0) {
    try {
      model = shapeModel(model, parseShape(shape), run.seed);
    } catch (err) {
      reason = `the run's shape (${shape.join('; ')}) cannot be applied: ${(err as Error).message}`;
      model = null;
    }
  }
  const rows: FidelityRow[] = [];
  const cutMs = model ? windowCutMs(run, seconds, model) : null;
  for (const [name, raw] of samples) {
    if (raw.length === 0) continue;
    const dist = model && isDistributionName(name) ? model.distribution(name) : null;
    const timeValued = dist ? dist.unit === 'ms' : !/Per|Size|Targets/.test(name);
    const sorted = isSorted(raw) ? raw : sortedCopy(raw);
    const label = isDistributionName(name) ? labels[name] : name;
    if (cutMs !== null && dist && dist.samples.length > 0 && sessionDurations.has(name)) {
      rows.push(windowCutRow(name, label, sorted, dist.samples, cutMs, run.options));
    } else {
      rows.push(sampleRow(name, label, timeValued ? 'ms' : 'count', sorted, dist?.samples ?? null));
    }
  }
  const polls = pollsRow(seconds, model, run.speed);
  if (polls) rows.push(polls);
  if (recorded && model && model !== recorded) {
    const changed = shapedDistributions(parseShape(shape));
    for (const row of rows) {
      const before = isDistributionName(row.name) && changed.has(row.name) ? recorded.distribution(row.name) : null;
      if (before && before.samples.length > 0) {
        row.recorded = fidelityQuantiles.map((q) => quantileSorted(before.samples, q));
      }
    }
  }
  return { status: model ? 'available' : 'unavailable', reason, rows, ...(shape.length > 0 ? { shape } : {}) };
}

function sampleRow(name: string, label: string, unit: 'ms' | 'count', run: Float64Array, model: Float64Array | null): FidelityRow {
  const modelSorted = model && model.length > 0 ? (isSorted(model) ? model : sortedCopy(model)) : null;
  return {
    name,
    label,
    unit,
    runCount: run.length,
    modelCount: modelSorted ? modelSorted.length : null,
    quantiles: fidelityQuantiles.map((q) => ({ q, run: quantileSorted(run, q), model: modelSorted ? quantileSorted(modelSorted, q) : null })),
    ks: modelSorted ? ksDistance(run, modelSorted) : null,
    note: null,
    windowCutMs: null,
    curve: {
      run: fidelityCurveQuantiles.map((q) => quantileSorted(run, q)),
      model: modelSorted ? fidelityCurveQuantiles.map((q) => quantileSorted(modelSorted, q)) : null,
    },
  };
}

/**
 * Polls per second: the model has no per-second series, but by Little's law a client that keeps
 * one long-poll open re-polls once per poll duration, so second by second the recorded day
 * implies open polls / mean poll duration (in replay time). Compared over seconds with open polls.
 */
function pollsRow(seconds: RunSecond[], model: ModelReader | null, speed: number): FidelityRow | null {
  const active = seconds.filter((s) => s.openPolls > 0);
  if (active.length === 0) return null;
  const observed = sortedCopy(active.map((s) => s.subscribes));
  const pollDuration = model?.distribution('pollDuration') ?? null;
  let expected: Float64Array | null = null;
  if (pollDuration && pollDuration.summary.mean > 0) {
    const meanS = pollDuration.summary.mean / 1000 / speed;
    expected = sortedCopy(active.map((s) => s.openPolls / meanS));
  }
  const row = sampleRow('pollsPerSecond', 'polls per second', 'count', observed, expected);
  return {
    ...row,
    unit: 'per s',
    note: expected ? 'model side: open polls ÷ mean recorded poll duration, each second (Little’s law)' : null,
  };
}

const sessionDurations = new Set(['sessionDuration', 'proctorSessionDuration']);

/**
 * The replay window's length in recorded time when it is shorter than the recorded day (so it
 * cuts sessions), else null. A run that stopped early covered only the seconds it ran.
 */
function windowCutMs(run: StoredRun, seconds: RunSecond[], model: ModelReader): number | null {
  if (run.plannedDurationMs === null || run.plannedDurationMs === undefined || !(run.plannedDurationMs > 0)) return null;
  const ranMs = run.status === 'finished' || seconds.length === 0 ? run.plannedDurationMs : Math.min(run.plannedDurationMs, (seconds[seconds.length - 1]!.second + 1) * 1000);
  const windowMs = ranMs * run.speed;
  const { startMs, endMs } = model.overview().span;
  return windowMs < endMs - startMs ? windowMs : null;
}

/**
 * What a window of `windowMs` records of sessions whose whole durations are `model`, when
 * sessions start evenly through time: a session records a sample only if it ends inside the
 * window; one that began inside records its whole duration d, one already in progress at the
 * start records only its part inside. Every session overlapping the window is equally likely to
 * end in it, and with c = #{d <= m}, m = min(x, W) of n sessions:
 *   F(x) = c/n + (1 - c/n) * m/W   (1 for x >= W)
 * The recorded day's arrivals are not even (a peak window sits on a rise), so this is the fair
 * expectation to first order, not exactly; a ramp shortens warm sessions further.
 */
export function windowCutCdf(model: Float64Array, windowMs: number): { cdf: (x: number) => number; before: (x: number) => number; quantile: (q: number) => number } {
  const sorted = isSorted(model) ? model : sortedCopy(model);
  const n = sorted.length;
  const countAtMost = (v: number, strict: boolean): number => {
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (strict ? sorted[mid]! < v : sorted[mid]! <= v) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const at = (x: number, strict: boolean): number => {
    if (x <= 0) return 0;
    if (x >= windowMs) return strict ? at(windowMs * (1 - 1e-12), false) : 1;
    const c = countAtMost(x, strict) / n;
    return c + (1 - c) * (x / windowMs);
  };
  const cdf = (x: number) => at(x, false);
  const quantile = (q: number): number => {
    let lo = 0;
    let hi = windowMs;
    for (let i = 0; i < 60; i++) {
      const mid = (lo + hi) / 2;
      if (cdf(mid) >= q) hi = mid;
      else lo = mid;
    }
    return hi;
  };
  return { cdf, before: (x) => at(x, true), quantile };
}

function windowCutRow(name: string, label: string, run: Float64Array, model: Float64Array, windowMs: number, options: Record<string, unknown>): FidelityRow {
  const cut = windowCutCdf(model, windowMs);
  // The stored options keep the plan's settings under `run` (replay/options.ts describeOptions).
  const planned = options.run as { rampMs?: unknown } | undefined;
  const ramp = typeof planned?.rampMs === 'number' && planned.rampMs > 0;
  return {
    name,
    label,
    unit: 'ms',
    runCount: run.length,
    modelCount: model.length,
    quantiles: fidelityQuantiles.map((q) => ({ q, run: quantileSorted(run, q), model: cut.quantile(q) })),
    ks: ksDistanceToCdf(run, cut.cdf, cut.before),
    note:
      `cut by the ${formatDuration(windowMs)} window: the model side is what such a window records (sessions still open at its end give no sample, ` +
      `sessions already in progress at its start give only their part inside; even arrivals assumed)${ramp ? '; the ramp shortens warm sessions further' : ''}`,
    windowCutMs: windowMs,
    curve: { run: fidelityCurveQuantiles.map((q) => quantileSorted(run, q)), model: fidelityCurveQuantiles.map((q) => cut.quantile(q)) },
  };
}

function isSorted(a: Float64Array): boolean {
  for (let i = 1; i < a.length; i++) if (a[i]! < a[i - 1]!) return false;
  return true;
}
