import { describe, expect, it } from 'vitest';
import { ksCriticalDistance, ksDistance, ksPValue } from '../../stats/ks.js';
import { seededRandom, randomNormal } from '../../stats/random.js';

describe('ksDistance', () => {
  it('is 0 for identical samples and 1 for disjoint ones', () => {
    expect(ksDistance([1, 2, 3], [3, 1, 2])).toBe(0);
    expect(ksDistance([1, 2, 3], [4, 5, 6])).toBe(1);
    expect(ksDistance([4, 5, 6], [1, 2, 3])).toBe(1);
  });

  it('matches hand-computed distances', () => {
    // ECDFs at 2: 2/4 vs 0; at 4: 4/4 vs 2/4 -> 0.5
    expect(ksDistance([1, 2, 3, 4], [3, 4, 5, 6])).toBe(0.5);
    // at 5: F_a = 5/5, F_b = 2/5 -> 0.6 (the largest gap; scipy's ks_2samp agrees)
    expect(ksDistance([1, 2, 3, 4, 5], [2, 4, 6, 8, 10])).toBeCloseTo(0.6, 12);
    // unequal sizes: [0.5] vs [0,1]: ECDF jumps 0.5 at 0 for b, 1 at 0.5 for a -> 0.5
    expect(ksDistance([0.5], [0, 1])).toBe(0.5);
  });

  it('does not count ties between the samples as a gap', () => {
    expect(ksDistance([1, 1, 2, 2], [1, 2])).toBe(0);
    expect(ksDistance([1, 1, 1, 2], [1, 2, 2, 2])).toBe(0.5);
  });

  it('does not modify its inputs', () => {
    const a = [3, 1, 2];
    ksDistance(a, [0]);
    expect(a).toEqual([3, 1, 2]);
  });

  it('tells the same distribution from a shifted one with large samples', () => {
    const r = seededRandom(5);
    const a = Array.from({ length: 5000 }, () => randomNormal(r));
    const b = Array.from({ length: 5000 }, () => randomNormal(r));
    const c = Array.from({ length: 5000 }, () => randomNormal(r) + 0.3);
    expect(ksDistance(a, b)).toBeLessThan(ksCriticalDistance(0.01, 5000, 5000));
    // Shift of 0.3 sd: population distance is 2*Phi(0.15)-1 = 0.119.
    expect(ksDistance(a, c)).toBeGreaterThan(0.1);
    expect(ksDistance(a, c)).toBeLessThan(0.14);
  });
});

describe('ksPValue and ksCriticalDistance', () => {
  it('gives the textbook critical coefficients', () => {
    // c(0.05) = 1.358, c(0.01) = 1.628 for n = m -> c * sqrt(2/n)
    expect(ksCriticalDistance(0.05, 1000, 1000)).toBeCloseTo(1.358 * Math.sqrt(2 / 1000), 3);
    expect(ksCriticalDistance(0.01, 1000, 1000)).toBeCloseTo(1.628 * Math.sqrt(2 / 1000), 3);
  });

  it('is about alpha at the critical distance and monotone in the distance', () => {
    const d = ksCriticalDistance(0.05, 100_000, 100_000);
    expect(ksPValue(d, 100_000, 100_000)).toBeCloseTo(0.05, 2);
    expect(ksPValue(0, 50, 50)).toBe(1);
    expect(ksPValue(0.2, 50, 50)).toBeGreaterThan(ksPValue(0.3, 50, 50));
    // Q_KS(1.0) = 0.26999967 (Kolmogorov distribution, large samples)
    const n = 1e8;
    expect(ksPValue(1 / Math.sqrt(n / 2), n, n)).toBeCloseTo(0.27, 2);
  });
});
