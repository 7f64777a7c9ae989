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
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  if (q <= 0) return sorted[0]!;
  if (q >= 1) return sorted[n - 1]!;
  const pos = (n - 1) * q;
  const lo = Math.floor(pos);
  const frac = pos - lo;
  const a = sorted[lo]!;
  return frac === 0 ? a : a + (sorted[lo + 1]! - a) * frac;
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
