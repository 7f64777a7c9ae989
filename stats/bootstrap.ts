// How much a run's latency figures would move if the same run were made again: a moving-block
// bootstrap over the run's seconds. `compare` uses it to tell a change from run-to-run noise
// (docs/report.md, "Noise"). Pure: per-second latency counts in, intervals out, every draw from a
// seeded Random so the same two runs always get the same verdict.
//
// Why seconds and blocks: a run's deliveries are not independent draws (a GC pause or a busy
// neighbour slows every delivery of a few seconds together), so resampling single deliveries
// would understate the noise. Seconds are the unit the runtime stores, and drawing them in
// blocks of consecutive seconds keeps the correlation between neighbouring seconds.
//
// Why paired: two runs of one plan put the same load on the same second (a ramp, a class that
// joins at 0:40), so "which seconds were drawn" is not noise; only how the two runs differ on the
// same seconds is. Paired resampling draws the same seconds from both runs (the classic paired
// bootstrap, with blocks), so the load profile they share cancels out of the change.

import { rankOverExpected } from './over-expected.js';
import type { Random } from './random.js';

/** One second of a run: its first deliveries' latencies (distinct values with counts) and the pairs it declared lost. */
export interface LatencySecond {
  /** Latencies in ms, ascending, distinct. */
  valuesMs: readonly number[];
  /** How many deliveries had each value. */
  counts: readonly number[];
  /** Pairs declared lost in that second: they rank after every delivery. */
  lost: number;
}

/**
 * Consecutive seconds merged k at a time (the last unit may be shorter): a long run resampled in
 * units of k seconds costs what a short one does, and units of consecutive seconds keep what
 * blocks keep (the correlation between neighbours).
 */
export function mergeSeconds(seconds: readonly LatencySecond[], k: number): LatencySecond[] {
  if (k <= 1) return [...seconds];
  const units: LatencySecond[] = [];
  for (let start = 0; start < seconds.length; start += k) {
    const counts = new Map<number, number>();
    let lost = 0;
    for (const s of seconds.slice(start, start + k)) {
      s.valuesMs.forEach((v, i) => counts.set(v, (counts.get(v) ?? 0) + s.counts[i]!));
      lost += s.lost;
    }
    const valuesMs = [...counts.keys()].sort((a, b) => a - b);
    units.push({ valuesMs, counts: valuesMs.map((v) => counts.get(v)!), lost });
  }
  return units;
}

/** A run's seconds on one shared value grid, so a resample is summed into one dense array. */
export interface PooledRun {
  grid: Float64Array;
  seconds: { index: Int32Array; counts: Float64Array; delivered: number; lost: number }[];
}

/** Puts several runs' seconds on one grid (their distinct latencies), so their quantiles are read alike. */
export function poolRuns(runs: readonly (readonly LatencySecond[])[]): PooledRun[] {
  const distinct = new Set<number>();
  for (const seconds of runs) for (const s of seconds) for (const v of s.valuesMs) distinct.add(v);
  const grid = Float64Array.from(distinct).sort();
  const position = new Map<number, number>();
  grid.forEach((v, i) => position.set(v, i));
  return runs.map((seconds) => ({
    grid,
    seconds: seconds.map((s) => ({
      index: Int32Array.from(s.valuesMs, (v) => position.get(v)!),
      counts: Float64Array.from(s.counts),
      delivered: s.counts.reduce((a, c) => a + c, 0),
      lost: s.lost,
    })),
  }));
}

/** The latency figures of a set of seconds, over expected pairs (delivered + lost), as docs/slo.md defines them. */
export interface LatencyFigures {
  /** One per requested quantile, ms; the loss limit when the quantile falls among lost pairs. */
  quantiles: number[];
  /** Slowest delivery, ms (0 when none). */
  max: number;
  delivered: number;
  lost: number;
}

/**
 * The figures of the seconds at `picks` (indices into run.seconds; repeats allowed), read in one
 * pass over the grid. `scratch` (grid-sized) is reused across calls.
 */
export function figuresOf(
  run: PooledRun,
  picks: ArrayLike<number>,
  quantiles: readonly number[],
  lossLimitMs: number,
  scratch: Float64Array = new Float64Array(run.grid.length),
): LatencyFigures {
  scratch.fill(0);
  let delivered = 0;
  let lost = 0;
  for (let k = 0; k < picks.length; k++) {
    const s = run.seconds[picks[k]!]!;
    for (let j = 0; j < s.index.length; j++) scratch[s.index[j]!]! += s.counts[j]!;
    delivered += s.delivered;
    lost += s.lost;
  }
  let max = 0;
  for (let g = scratch.length - 1; g >= 0; g--) {
    if (scratch[g]! > 0) {
      max = run.grid[g]!;
      break;
    }
  }
  // Delivered pairs rank first, so a quantile's rank among expected pairs is its rank among the
  // delivered ones, unless it falls among the lost (docs/slo.md). One ascending walk reads them all.
  const expected = delivered + lost;
  const out = new Array<number>(quantiles.length).fill(0);
  const wanted: { i: number; rank: number }[] = [];
  quantiles.forEach((q, i) => {
    if (expected === 0) return;
    const rank = rankOverExpected(expected, q);
    if (rank > delivered) out[i] = lossLimitMs;
    else wanted.push({ i, rank });
  });
  wanted.sort((x, y) => x.rank - y.rank);
  let cumulative = 0;
  let w = 0;
  for (let g = 0; g < scratch.length && w < wanted.length; g++) {
    cumulative += scratch[g]!;
    while (w < wanted.length && cumulative >= wanted[w]!.rank) out[wanted[w++]!.i] = run.grid[g]!;
  }
  return { quantiles: out, max, delivered, lost };
}

/**
 * Indices of a moving-block resample of n units: blocks of `blockLength` consecutive units, each
 * starting anywhere in [0, n - blockLength], joined and cut to n (Kuensch 1989).
 */
export function movingBlockResample(n: number, blockLength: number, random: Random): Int32Array {
  const out = new Int32Array(n);
  if (n === 0) return out;
  const b = Math.max(1, Math.min(blockLength, n));
  const starts = n - b + 1;
  let k = 0;
  while (k < n) {
    const start = Math.floor(random.next() * starts);
    for (let j = 0; j < b && k < n; j++) out[k++] = start + j;
  }
  return out;
}

/** The p-quantile (p in [0, 1]) of values, by linear interpolation between order statistics; NaN when empty. */
export function empiricalQuantile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const x = p * (sorted.length - 1);
  const lo = Math.floor(x);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (x - lo);
}

export interface Interval {
  low: number;
  high: number;
}

export interface ChangeNoise {
  /** Interval of B - A (the metric's unit). */
  absolute: Interval;
  /** Interval of B / A - 1; null when A's figure is 0 in the data or in too many resamples. */
  relative: Interval | null;
  /** Resamples used. */
  replicates: number;
  /** Whether the two runs were resampled second by second together. */
  paired: boolean;
}

export interface BootstrapOptions {
  /** Resamples per run. */
  replicates: number;
  /** Draw the same seconds (by position in the run) from both runs; for two runs of one plan. */
  paired: boolean;
  /** Seconds per block. */
  blockLength: number;
  /** Coverage of the interval, e.g. 0.95. */
  level: number;
  random: Random;
}

export const bootstrapDefaults = { replicates: 1000, blockLength: 5, level: 0.95 } as const;

/** Runs whose lengths differ by more than this share are resampled independently, not paired. */
export const pairedLengthTolerance = 0.2;

/** Whether two runs of these lengths (seconds) can be paired second by second. */
export function canPair(nA: number, nB: number): boolean {
  return nA > 0 && nB > 0 && Math.abs(nA - nB) <= pairedLengthTolerance * Math.max(nA, nB);
}

/** B's seconds matching A's picks by relative position (the same index when the runs are as long). */
function matchPicks(picks: Int32Array, nA: number, nB: number): Int32Array {
  if (nA === nB) return picks;
  const scale = nA > 1 ? (nB - 1) / (nA - 1) : 0;
  return Int32Array.from(picks, (i) => Math.round(i * scale));
}

/**
 * The block length for a run of n seconds: the asked one, but at most a quarter of the run, so
 * a short run still has blocks to shuffle (a block as long as the run would resample nothing).
 */
export function blockLengthFor(n: number, asked: number): number {
  return Math.max(1, Math.min(asked, Math.floor(n / 4)));
}

/**
 * Intervals for the change of several statistics from run A to run B. Each replicate resamples
 * both runs independently; `statistics(figuresA, figuresB)` gives each statistic's value for A
 * and B. The intervals are the bootstrap's spread of the change, centred on the change of the
 * exact figures (`observed`), so they always speak about the number compare prints even when
 * that number comes from a finer source (the whole-run histogram) than the seconds.
 */
export function bootstrapChanges(
  a: PooledRun,
  b: PooledRun,
  quantiles: readonly number[],
  lossLimitMs: number,
  statistics: (f: LatencyFigures) => number[],
  observed: readonly { a: number; b: number }[],
  options: BootstrapOptions,
): ChangeNoise[] {
  const scratch = new Float64Array(a.grid.length);
  const all = (r: PooledRun) => Int32Array.from(r.seconds, (_, i) => i);
  const centreA = statistics(figuresOf(a, all(a), quantiles, lossLimitMs, scratch));
  const centreB = statistics(figuresOf(b, all(b), quantiles, lossLimitMs, scratch));
  const k = observed.length;
  const absolute: number[][] = Array.from({ length: k }, () => []);
  const logRatio: number[][] = Array.from({ length: k }, () => []);
  const blockA = blockLengthFor(a.seconds.length, options.blockLength);
  const blockB = blockLengthFor(b.seconds.length, options.blockLength);
  const paired = options.paired && canPair(a.seconds.length, b.seconds.length);
  for (let r = 0; r < options.replicates; r++) {
    const picksA = movingBlockResample(a.seconds.length, blockA, options.random);
    const picksB = paired ? matchPicks(picksA, a.seconds.length, b.seconds.length) : movingBlockResample(b.seconds.length, blockB, options.random);
    const sa = statistics(figuresOf(a, picksA, quantiles, lossLimitMs, scratch));
    const sb = statistics(figuresOf(b, picksB, quantiles, lossLimitMs, scratch));
    for (let m = 0; m < k; m++) {
      absolute[m]!.push(sb[m]! - sa[m]! - (centreB[m]! - centreA[m]!));
      if (sa[m]! > 0 && sb[m]! > 0 && centreA[m]! > 0 && centreB[m]! > 0) {
        logRatio[m]!.push(Math.log(sb[m]! / sa[m]!) - Math.log(centreB[m]! / centreA[m]!));
      }
    }
  }
  const tail = (1 - options.level) / 2;
  return observed.map((o, m) => {
    const change = o.b - o.a;
    const abs = { low: change + empiricalQuantile(absolute[m]!, tail), high: change + empiricalQuantile(absolute[m]!, 1 - tail) };
    let relative: Interval | null = null;
    // A ratio needs A above 0 in the data and in (nearly) every resample.
    if (o.a > 0 && o.b > 0 && logRatio[m]!.length >= 0.9 * options.replicates) {
      const centre = Math.log(o.b / o.a);
      relative = {
        low: Math.exp(centre + empiricalQuantile(logRatio[m]!, tail)) - 1,
        high: Math.exp(centre + empiricalQuantile(logRatio[m]!, 1 - tail)) - 1,
      };
    }
    return { absolute: abs, relative, replicates: options.replicates, paired };
  });
}
