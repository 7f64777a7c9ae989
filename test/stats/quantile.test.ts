import { describe, expect, it } from 'vitest';
import { median, quantileSorted, summarize } from '../../stats/quantile.js';

describe('quantiles', () => {
  it('interpolates between order statistics', () => {
    const sorted = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    expect(quantileSorted(sorted, 0.5)).toBeCloseTo(5.5);
    expect(quantileSorted(sorted, 0.9)).toBeCloseTo(9.1);
    expect(quantileSorted(sorted, 0)).toBe(1);
    expect(quantileSorted(sorted, 1)).toBe(10);
    expect(quantileSorted([], 0.5)).toBeNaN();
  });

  it('summarizes unsorted input without modifying it', () => {
    const values = [5, 1, 4, 2, 3];
    const s = summarize(values);
    expect(values).toEqual([5, 1, 4, 2, 3]);
    expect(s).toMatchObject({ count: 5, mean: 3, p50: 3, max: 5 });
  });
});

describe('median', () => {
  it('takes the middle value, the mean of the two middle ones for an even count, and ignores NaN', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([5, Number.NaN, 1, 3])).toBe(3);
    expect(median([Number.NaN])).toBeNaN();
    expect(median([])).toBeNaN();
  });
});
