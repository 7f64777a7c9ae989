// Sampling from an observed distribution (the model's ascending sample arrays): the plan draws
// new sessions from these so that its distributions match the recorded ones.

import { quantileSorted } from './quantile.js';
import type { Random } from './random.js';

export interface EmpiricalDistribution {
  readonly size: number;
  /** Continuous values (ms): interpolated quantile of u in [0, 1). Counts: one observed value. */
  quantile(u: number): number;
  sample(rng: Random): number;
  mean(): number;
  min(): number;
  max(): number;
}

/**
 * `sorted` must be ascending and non-empty. `discrete` (counts) resamples observed values as
 * they are, so a roster of 25 stays 25; continuous values interpolate between neighbours so
 * that resampled times do not pile up on the few observed ones.
 */
export function empiricalDistribution(sorted: ArrayLike<number>, discrete: boolean): EmpiricalDistribution {
  const n = sorted.length;
  if (n === 0) throw new RangeError('empiricalDistribution: no samples');
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i]!;
  const mean = sum / n;
  const quantile = discrete
    ? (u: number): number => sorted[Math.min(n - 1, Math.max(0, Math.floor(u * n)))]!
    : (u: number): number => quantileSorted(sorted, u);
  return {
    size: n,
    quantile,
    sample: (rng) => quantile(rng.next()),
    mean: () => mean,
    min: () => sorted[0]!,
    max: () => sorted[n - 1]!,
  };
}

/** Standard normal CDF (Abramowitz-Stegun 7.1.26 via erf; |error| < 1.5e-7), for Gaussian copulas. */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + y) : 0.5 * (1 - y);
}
