// Two-sample Kolmogorov-Smirnov statistics: how far apart two samples' distributions are.
// The plan's tests use it to show that a generated day has the model's distributions.

/** Sup-distance between the empirical CDFs of two samples (need not be sorted; not modified). */
export function ksDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const x = Float64Array.from(a as ArrayLike<number>).sort();
  const y = Float64Array.from(b as ArrayLike<number>).sort();
  const n = x.length;
  const m = y.length;
  if (n === 0 || m === 0) return n === m ? 0 : 1;
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < n && j < m) {
    // Step past every copy of the smaller value in both samples, so ties do not count as a gap.
    const v = Math.min(x[i]!, y[j]!);
    while (i < n && x[i] === v) i++;
    while (j < m && y[j] === v) j++;
    const gap = Math.abs(i / n - j / m);
    if (gap > d) d = gap;
  }
  return d;
}

/**
 * Asymptotic p-value of a two-sample KS distance (Kolmogorov distribution with Stephens'
 * small-sample correction): the chance of a distance at least this large if both samples
 * came from one distribution.
 */
export function ksPValue(distance: number, n: number, m: number): number {
  if (n === 0 || m === 0) return 1;
  const en = Math.sqrt((n * m) / (n + m));
  const lambda = (en + 0.12 + 0.11 / en) * distance;
  if (lambda < 1e-3) return 1;
  let sum = 0;
  for (let k = 1; k <= 100; k++) {
    const term = 2 * (k % 2 === 1 ? 1 : -1) * Math.exp(-2 * k * k * lambda * lambda);
    sum += term;
    if (Math.abs(term) < 1e-12) break;
  }
  return Math.min(1, Math.max(0, sum));
}

/** The distance above which two samples of sizes n and m differ at significance alpha (c(alpha) * sqrt((n+m)/(n*m))). */
export function ksCriticalDistance(alpha: number, n: number, m: number): number {
  const c = Math.sqrt(-0.5 * Math.log(alpha / 2));
  return c * Math.sqrt((n + m) / (n * m));
}

/**
 * One-sample KS distance: sup |Fn - F| between a sample's empirical CDF and a distribution
 * given by its CDF, which may jump (`cdfBefore(x)` is F just below x, equal to `cdf(x)` where F
 * is continuous). Fn is flat between sample points and F only rises, so the extremes lie at
 * the sample points, on either side of each: checking F(v-) and F(v) at every v is exact.
 */
export function ksDistanceToCdf(sample: ArrayLike<number>, cdf: (x: number) => number, cdfBefore: (x: number) => number = cdf): number {
  const x = Float64Array.from(sample as ArrayLike<number>).sort();
  const n = x.length;
  if (n === 0) return 0;
  let d = 0;
  let i = 0;
  while (i < n) {
    const v = x[i]!;
    const below = i / n;
    while (i < n && x[i] === v) i++;
    d = Math.max(d, Math.abs(below - cdfBefore(v)), Math.abs(i / n - cdf(v)));
  }
  return d;
}
