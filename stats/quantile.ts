// Quantiles and the five-number summaries every stage reports. Pure; input arrays are not modified.

export interface Summary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** The q-quantile (0..1) of ascending-sorted values, by linear interpolation between order statistics (type 7). */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  return quantileOf(sorted.length, (i) => sorted[i]!, q);
}

/**
 * The one quantile definition (type 7) over n ascending values read through `at(i)`: a sorted
 * array, or values held as counts per value (summarizeCounts) without expanding them.
 */
export function quantileOf(n: number, at: (i: number) => number, q: number): number {
  if (n === 0) return Number.NaN;
  if (q <= 0) return at(0);
  if (q >= 1) return at(n - 1);
  const pos = (n - 1) * q;
  const lo = Math.floor(pos);
  const frac = pos - lo;
  const a = at(lo);
  return frac === 0 ? a : a + (at(lo + 1) - a) * frac;
}

/**
 * Values held as counts per value (mergeable exactly by adding counts): the summary summarize()
 * gives for the expanded values, and at most `maxSamples` of them, ascending, evenly spaced
 * by rank (all of them when there are fewer).
 */
export function summarizeCounts(counts: ReadonlyMap<number, number>, maxSamples: number): { summary: Summary; samples: Float64Array } {
  const values = [...counts.keys()].filter((v) => counts.get(v)! > 0).sort((a, b) => a - b);
  const cumulative = new Float64Array(values.length);
  let n = 0;
  let sum = 0;
  values.forEach((v, i) => {
    const c = counts.get(v)!;
    n += c;
    sum += v * c;
    cumulative[i] = n;
  });
  if (n === 0) return { summary: { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, max: 0 }, samples: new Float64Array(0) };
  const at = (rank: number): number => {
    let lo = 0;
    let hi = values.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! > rank) hi = mid;
      else lo = mid + 1;
    }
    return values[lo]!;
  };
  const k = Math.min(n, maxSamples);
  const samples = new Float64Array(k);
  for (let i = 0; i < k; i++) samples[i] = at(k === n ? i : Math.round((i * (n - 1)) / (k - 1)));
  return {
    summary: { count: n, mean: sum / n, p50: quantileOf(n, at, 0.5), p90: quantileOf(n, at, 0.9), p99: quantileOf(n, at, 0.99), max: values[values.length - 1]! },
    samples,
  };
}

export function sortedCopy(values: ArrayLike<number>): Float64Array {
  const out = Float64Array.from(values as ArrayLike<number>);
  out.sort();
  return out;
}

/** Median of the finite values (NaN when there are none); the mean of the two middle ones for an even count. */
export function median(values: readonly number[]): number {
  return quantileSorted(sortedCopy(values.filter((x) => Number.isFinite(x))), 0.5);
}

export function summarize(values: ArrayLike<number>, alreadySorted = false): Summary {
  const sorted = alreadySorted ? values : sortedCopy(values);
  const n = sorted.length;
  if (n === 0) return { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, max: 0 };
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i]!;
  return {
    count: n,
    mean: sum / n,
    p50: quantileSorted(sorted, 0.5),
    p90: quantileSorted(sorted, 0.9),
    p99: quantileSorted(sorted, 0.99),
    max: sorted[n - 1]!,
  };
}

/** Scales every field but `count` (e.g. milliseconds to seconds). */
export function scaleSummary(s: Summary, factor: number): Summary {
  return {
    count: s.count,
    mean: s.mean * factor,
    p50: s.p50 * factor,
    p90: s.p90 * factor,
    p99: s.p99 * factor,
    max: s.max * factor,
  };
}
