import { describe, expect, it } from 'vitest';
import {
  blockLengthFor,
  bootstrapChanges,
  empiricalQuantile,
  figuresOf,
  mergeSeconds,
  movingBlockResample,
  poolRuns,
  type LatencySecond,
} from '../../stats/bootstrap.js';
import { quantileOverExpected, rankOverExpected } from '../../stats/over-expected.js';
import { randomLognormal, seededRandom } from '../../stats/random.js';

/** n seconds of `perSecond` lognormal latencies (ms, rounded to 0.01) around a median that drifts slowly, as a bus under changing load. */
function seconds(seed: string, n: number, perSecond: number, scale = 1, lostAt: Record<number, number> = {}): LatencySecond[] {
  const rng = seededRandom(seed);
  const out: LatencySecond[] = [];
  for (let s = 0; s < n; s++) {
    const counts = new Map<number, number>();
    for (let i = 0; i < perSecond; i++) {
      const v = Math.round(scale * randomLognormal(rng, 20 * (1 + 0.3 * Math.sin(s / 7)), 0.5) * 100) / 100;
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    const valuesMs = [...counts.keys()].sort((a, b) => a - b);
    out.push({ valuesMs, counts: valuesMs.map((v) => counts.get(v)!), lost: lostAt[s] ?? 0 });
  }
  return out;
}

/** Every delivery of the seconds, ascending, then the lost ones as Infinity. */
function flatten(secs: LatencySecond[]): number[] {
  const all: number[] = [];
  let lost = 0;
  for (const s of secs) {
    s.valuesMs.forEach((v, i) => {
      for (let k = 0; k < s.counts[i]!; k++) all.push(v);
    });
    lost += s.lost;
  }
  all.sort((a, b) => a - b);
  for (let i = 0; i < lost; i++) all.push(Infinity);
  return all;
}

describe('the one percentile: over every expected pair', () => {
  it('ranks lost pairs last and shows them as the loss limit', () => {
    const latencyAt = (p: number) => p * 100; // delivered latencies 1..100 ms
    expect(quantileOverExpected({ expected: 100, delivered: 100 }, 0.95, 15_000, latencyAt)).toBe(95);
    // 10 of 110 lost: p95 is rank 105, beyond the 100 delivered
    expect(quantileOverExpected({ expected: 110, delivered: 100 }, 0.95, 15_000, latencyAt)).toBe(15_000);
    // 2 of 102 lost: p50 is rank 51 of the delivered
    expect(quantileOverExpected({ expected: 102, delivered: 100 }, 0.5, 15_000, latencyAt)).toBeCloseTo(51, 9);
    expect(quantileOverExpected({ expected: 0, delivered: 0 }, 0.95, 15_000, latencyAt)).toBe(0);
  });

  it('does not let float error push the rank one pair too far (0.07 * 100 is 7, not 8)', () => {
    expect(0.07 * 100).toBeGreaterThan(7);
    expect(rankOverExpected(100, 0.07)).toBe(7);
    expect(rankOverExpected(100, 0.95)).toBe(95);
    expect(rankOverExpected(1000, 0.99)).toBe(990);
    expect(rankOverExpected(3, 0.5)).toBe(2);
    expect(rankOverExpected(1, 0.01)).toBe(1);
  });
});

describe('figuresOf', () => {
  it('reads the quantiles over expected pairs and the max exactly as a sort of every delivery would', () => {
    const secs = seconds('figures', 12, 37, 1, { 3: 1, 9: 2 });
    const [run] = poolRuns([secs]);
    const picks = [0, 1, 2, 3, 3, 3, 7, 8, 9, 11, 11];
    const picked = picks.map((i) => secs[i]!);
    const flat = flatten(picked);
    const f = figuresOf(run!, picks, [0.5, 0.95, 0.99, 1], 15_000);
    const expected = flat.length;
    const at = (q: number) => {
      const v = flat[rankOverExpected(expected, q) - 1]!;
      return v === Infinity ? 15_000 : v;
    };
    expect(f.quantiles).toEqual([at(0.5), at(0.95), at(0.99), at(1)]);
    expect(f.quantiles[3]).toBe(15_000); // the last rank is a lost pair
    expect(f.lost).toBe(5);
    expect(f.delivered).toBe(picks.length * 37);
    expect(f.max).toBe(Math.max(...flat.filter(Number.isFinite)));
  });

  it('gives zeros for seconds with nothing expected', () => {
    const [run] = poolRuns([[{ valuesMs: [], counts: [], lost: 0 }]]);
    expect(figuresOf(run!, [0, 0], [0.5, 0.95], 15_000)).toEqual({ quantiles: [0, 0], max: 0, delivered: 0, lost: 0 });
  });
});

describe('movingBlockResample', () => {
  it('draws n indices in runs of consecutive seconds, the same for the same seed', () => {
    const a = movingBlockResample(23, 5, seededRandom('blocks'));
    expect(a).toHaveLength(23);
    for (let start = 0; start < 20; start += 5) {
      for (let j = 1; j < 5; j++) expect(a[start + j]).toBe(a[start]! + j);
    }
    for (const i of a) {
      expect(i).toBeGreaterThanOrEqual(0);
      expect(i).toBeLessThan(23);
    }
    expect(movingBlockResample(23, 5, seededRandom('blocks'))).toEqual(a);
    expect(movingBlockResample(23, 5, seededRandom('other'))).not.toEqual(a);
  });

  it('keeps blocks shorter than the run', () => {
    expect(blockLengthFor(20, 5)).toBe(5);
    expect(blockLengthFor(12, 5)).toBe(3);
    expect(blockLengthFor(3, 5)).toBe(1);
    expect(movingBlockResample(0, 5, seededRandom(1))).toHaveLength(0);
  });
});

describe('bootstrapChanges', () => {
  const options = (seed: string, paired = false) => ({ replicates: 400, paired, blockLength: 5, level: 0.95, random: seededRandom(seed) });
  const stats = (f: { quantiles: number[] }) => f.quantiles;
  const exact = (secs: LatencySecond[], q: number) => {
    const [r] = poolRuns([secs]);
    return figuresOf(r!, secs.map((_, i) => i), [q], 15_000).quantiles[0]!;
  };

  it('holds no change for two runs drawn from the same distribution, and is deterministic', () => {
    const a = seconds('run-a', 40, 60);
    const b = seconds('run-b', 40, 60);
    const [pa, pb] = poolRuns([a, b]);
    const observed = [{ a: exact(a, 0.95), b: exact(b, 0.95) }];
    const [n] = bootstrapChanges(pa!, pb!, [0.95], 15_000, stats, observed, options('same'));
    expect(n!.absolute.low).toBeLessThan(0);
    expect(n!.absolute.high).toBeGreaterThan(0);
    expect(n!.relative!.low).toBeLessThan(0);
    expect(n!.relative!.high).toBeGreaterThan(0);
    // The interval is about the shown change: it contains it.
    const change = observed[0]!.b - observed[0]!.a;
    expect(n!.absolute.low).toBeLessThanOrEqual(change);
    expect(n!.absolute.high).toBeGreaterThanOrEqual(change);
    expect(bootstrapChanges(pa!, pb!, [0.95], 15_000, stats, observed, options('same'))).toEqual([n]);
  });

  it('excludes no change when every latency is 50% slower, and contains the true +50%', () => {
    const a = seconds('run-a', 40, 60);
    const b = seconds('run-b', 40, 60, 1.5);
    const [pa, pb] = poolRuns([a, b]);
    const [n] = bootstrapChanges(pa!, pb!, [0.95], 15_000, stats, [{ a: exact(a, 0.95), b: exact(b, 0.95) }], options('slower'));
    expect(n!.relative!.low).toBeGreaterThan(0.1);
    expect(n!.relative!.low).toBeLessThan(0.5);
    expect(n!.relative!.high).toBeGreaterThan(0.5);
    expect(n!.absolute.low).toBeGreaterThan(0);
  });

  it('pairs the seconds of two runs of one plan, so their shared load profile is not counted as noise', () => {
    const a = seconds('pa', 60, 80);
    const b = seconds('pb', 60, 80);
    const [pa, pb] = poolRuns([a, b]);
    const observed = [{ a: exact(a, 0.95), b: exact(b, 0.95) }];
    const [paired] = bootstrapChanges(pa!, pb!, [0.95], 15_000, stats, observed, options('p', true));
    const [independent] = bootstrapChanges(pa!, pb!, [0.95], 15_000, stats, observed, options('p', false));
    expect(paired!.paired).toBe(true);
    expect(independent!.paired).toBe(false);
    expect(paired!.absolute.low).toBeLessThan(0);
    expect(paired!.absolute.high).toBeGreaterThan(0);
    expect(paired!.absolute.high - paired!.absolute.low).toBeLessThan(0.7 * (independent!.absolute.high - independent!.absolute.low));
    // Runs of very different lengths are not paired.
    const short = seconds('short', 30, 80);
    const [ps, pl] = poolRuns([short, a]);
    expect(bootstrapChanges(ps!, pl!, [0.95], 15_000, stats, [{ a: exact(short, 0.95), b: observed[0]!.a }], options('s', true))[0]!.paired).toBe(false);
  });

  it('widens with fewer deliveries per second', () => {
    const width = (perSecond: number) => {
      const a = seconds('wa', 40, perSecond);
      const b = seconds('wb', 40, perSecond);
      const [pa, pb] = poolRuns([a, b]);
      const [n] = bootstrapChanges(pa!, pb!, [0.95], 15_000, stats, [{ a: exact(a, 0.95), b: exact(b, 0.95) }], options('w'));
      return n!.relative!.high - n!.relative!.low;
    };
    expect(width(5)).toBeGreaterThan(1.5 * width(200));
  });
});

describe('mergeSeconds', () => {
  it('merges consecutive seconds k at a time without changing the whole run', () => {
    const secs = seconds('merge', 10, 25, 1, { 2: 1, 9: 3 });
    const units = mergeSeconds(secs, 4);
    expect(units).toHaveLength(3);
    expect(units.map((u) => u.lost)).toEqual([1, 0, 3]);
    expect(flatten(units)).toEqual(flatten(secs));
    expect(flatten(mergeSeconds(secs.slice(4, 8), 4))).toEqual(flatten([units[1]!]));
    expect(mergeSeconds(secs, 1)).toEqual(secs);
  });
});

describe('empiricalQuantile', () => {
  it('interpolates between order statistics', () => {
    expect(empiricalQuantile([3, 1, 2, 4], 0)).toBe(1);
    expect(empiricalQuantile([3, 1, 2, 4], 1)).toBe(4);
    expect(empiricalQuantile([3, 1, 2, 4], 0.5)).toBe(2.5);
    expect(empiricalQuantile([], 0.5)).toBeNaN();
  });
});
