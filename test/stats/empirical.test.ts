import { describe, expect, it } from 'vitest';
import { empiricalDistribution, normalCdf } from '../../stats/empirical.js';
import { seededRandom } from '../../stats/random.js';
import { ksDistance } from '../../stats/ks.js';

describe('empiricalDistribution', () => {
  it('draws only observed values when discrete, in their proportions', () => {
    const d = empiricalDistribution([1, 1, 2, 5], true);
    const r = seededRandom(3);
    const counts = new Map<number, number>();
    for (let i = 0; i < 40_000; i++) {
      const v = d.sample(r);
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual([1, 2, 5]);
    expect(counts.get(1)! / 40_000).toBeCloseTo(0.5, 1);
    expect(counts.get(5)! / 40_000).toBeCloseTo(0.25, 1);
    expect(d.mean()).toBe(2.25);
  });

  it('interpolates continuous values and reproduces the sample distribution', () => {
    const sorted = Float64Array.from({ length: 1000 }, (_, i) => (i * i) / 1000);
    const d = empiricalDistribution(sorted, false);
    expect(d.quantile(0)).toBe(0);
    expect(d.quantile(0.5)).toBeCloseTo((499.5 * 499.5) / 1000, 0);
    const r = seededRandom(9);
    const drawn = Array.from({ length: 20_000 }, () => d.sample(r));
    expect(ksDistance(drawn, sorted)).toBeLessThan(0.02);
  });

  it('refuses an empty sample', () => {
    expect(() => empiricalDistribution([], false)).toThrow(RangeError);
  });
});

describe('normalCdf', () => {
  it('matches tabulated values', () => {
    expect(normalCdf(0)).toBeCloseTo(0.5, 7);
    expect(normalCdf(1.959964)).toBeCloseTo(0.975, 6);
    expect(normalCdf(-1)).toBeCloseTo(0.158655, 6);
    expect(normalCdf(3)).toBeCloseTo(0.99865, 5);
  });
});
