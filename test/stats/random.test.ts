import { describe, expect, it } from 'vitest';
import { randomLognormal, seededRandom } from '../../stats/random.js';

describe('seededRandom', () => {
  it('gives the same stream for the same seed and another for another seed', () => {
    const draw = (seed: number | string) => {
      const r = seededRandom(seed);
      return Array.from({ length: 20 }, () => r.next());
    };
    expect(draw(42)).toEqual(draw(42));
    expect(draw('a')).toEqual(draw('a'));
    expect(draw(42)).not.toEqual(draw(43));
  });

  it('is uniform enough for sampling: mean and deciles of 100k draws', () => {
    const r = seededRandom(7);
    const buckets = new Array<number>(10).fill(0);
    let sum = 0;
    for (let i = 0; i < 100_000; i++) {
      const x = r.next();
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
      sum += x;
      buckets[Math.floor(x * 10)]!++;
    }
    expect(sum / 100_000).toBeCloseTo(0.5, 2);
    for (const b of buckets) expect(Math.abs(b - 10_000)).toBeLessThan(500);
  });

  it('draws lognormal values around the requested median', () => {
    const r = seededRandom(1);
    const xs = Array.from({ length: 20_001 }, () => randomLognormal(r, 4000, 0.5)).sort((a, b) => a - b);
    expect(xs[10_000]! / 4000).toBeGreaterThan(0.97);
    expect(xs[10_000]! / 4000).toBeLessThan(1.03);
  });
});
