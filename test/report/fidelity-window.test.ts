import { describe, expect, it } from 'vitest';
import type { Distribution, DistributionName, ModelReader } from '../../db/model-types.js';
import type { StoredRun } from '../../db/run-queries.js';
import { computeFidelity, windowCutCdf } from '../../report/fidelity.js';
import { ksDistance, ksDistanceToCdf } from '../../stats/ks.js';
import { sortedCopy, summarize } from '../../stats/quantile.js';
import { randomLognormal, seededRandom } from '../../stats/random.js';

// Session durations under a replay window shorter than the day: the runtime samples a session
// only when it leaves inside the window, and a session in progress at the start only for its part
// inside. The fidelity row must compare with what such a window records of the model's sessions.

const fingerprint = 'e'.repeat(64);
const hourMs = 3_600_000;
const dayMs = 24 * hourMs;

function durations(seed: string, n: number): Float64Array {
  const rng = seededRandom(seed);
  return sortedCopy(Array.from({ length: n }, () => randomLognormal(rng, 25 * 60_000, 0.8)));
}

function modelWith(sessionDuration: Float64Array): ModelReader {
  return {
    overview: () => ({
      fingerprint,
      span: { startMs: 0, endMs: dayMs },
      timezone: 'UTC',
      learners: 1,
      proctors: 1,
      sessions: 1,
      proctorSessions: 1,
      peakConcurrentLearners: 1,
      peakConcurrentLearnersAtMs: 0,
    }),
    distribution: (name: DistributionName): Distribution | null =>
      name === 'sessionDuration' ? { name, unit: 'ms', summary: summarize(sessionDuration, true), samples: sessionDuration } : null,
    arrivals: () => [],
    classes: () => [],
    timeline: () => [],
  };
}

/**
 * What the runtime records in a window [0, W) of a day where sessions start evenly (replay/sessions.ts:
 * a sample at leave, now - join; warm sessions join at the window's start; none for those still open).
 */
function recordedInWindow(seed: string, windowMs: number, sessions: number): Float64Array {
  const rng = seededRandom(seed);
  const lengths = durations(`${seed}/lengths`, sessions);
  const out: number[] = [];
  for (const d of lengths) {
    const start = -10 * hourMs + rng.next() * (10 * hourMs + windowMs);
    const end = start + d;
    if (end > 0 && end <= windowMs) out.push(end - Math.max(0, start));
  }
  return sortedCopy(out);
}

function storedRun(plannedDurationMs: number | null, over: Partial<StoredRun> = {}): StoredRun {
  return { id: 3, modelFingerprint: fingerprint, speed: 1, plannedDurationMs, status: 'finished', options: { run: { rampMs: 0 } }, ...over } as StoredRun;
}

describe('ksDistanceToCdf', () => {
  it('is exact at the sample points, on both sides of each', () => {
    expect(ksDistanceToCdf([0.5], (x) => Math.min(1, Math.max(0, x)))).toBeCloseTo(0.5, 12);
    expect(ksDistanceToCdf([0.25, 0.75], (x) => Math.min(1, Math.max(0, x)))).toBeCloseTo(0.25, 12);
    // A CDF with a jump of 0.6 at 1: a sample all at 1 matches it there but sits 0.4 off above.
    const jump = (x: number) => (x < 1 ? 0 : x < 2 ? 0.6 + 0.4 * (x - 1) : 1);
    const jumpBefore = (x: number) => (x <= 1 ? 0 : jump(x));
    expect(ksDistanceToCdf([1, 1, 1], jump, jumpBefore)).toBeCloseTo(0.4, 12);
  });
});

describe('fidelity of window-cut session durations', () => {
  const model = durations('model', 4000);

  it('the window-cut model matches what a simulated window records; the plain comparison would flag it', () => {
    const recorded = recordedInWindow('day', hourMs, 40_000);
    expect(recorded.length).toBeGreaterThan(2000);
    const f = computeFidelity({ run: storedRun(hourMs), samples: new Map([['sessionDuration', recorded]]), seconds: [], model: modelWith(model) });
    const row = f.rows.find((r) => r.name === 'sessionDuration')!;
    expect(row.windowCutMs).toBe(hourMs);
    expect(row.ks!).toBeLessThan(0.04);
    expect(ksDistance(recorded, model)).toBeGreaterThan(0.15);
    expect(row.note).toMatch(/^cut by the 1h window: /);
    expect(row.quantiles.every((q) => q.model! <= hourMs && q.run <= hourMs)).toBe(true);
    expect(Math.abs(row.quantiles.find((q) => q.q === 0.5)!.model! - row.quantiles.find((q) => q.q === 0.5)!.run) / row.quantiles.find((q) => q.q === 0.5)!.run).toBeLessThan(0.08);
  });

  it('a run that sent sessions unlike the model is still flagged under the cut', () => {
    const halfAsLong = recordedInWindow('day', hourMs, 40_000).map((v) => v / 2);
    const f = computeFidelity({ run: storedRun(hourMs), samples: new Map([['sessionDuration', halfAsLong]]), seconds: [], model: modelWith(model) });
    expect(f.rows.find((r) => r.name === 'sessionDuration')!.ks!).toBeGreaterThan(0.2);
  });

  it('a window as long as the day cuts nothing: the plain sample comparison', () => {
    const f = computeFidelity({ run: storedRun(dayMs), samples: new Map([['sessionDuration', model]]), seconds: [], model: modelWith(model) });
    const row = f.rows.find((r) => r.name === 'sessionDuration')!;
    expect(row.windowCutMs).toBeNull();
    expect(row.note).toBeNull();
    expect(row.ks).toBe(0);
  });

  it('the window is in recorded time (planned replay time x speed), and a ramp is mentioned', () => {
    const f = computeFidelity({
      run: storedRun(hourMs / 4, { speed: 4, options: { run: { rampMs: 60_000 } } }),
      samples: new Map([['sessionDuration', recordedInWindow('day', hourMs, 10_000)]]),
      seconds: [],
      model: modelWith(model),
    });
    const row = f.rows.find((r) => r.name === 'sessionDuration')!;
    expect(row.windowCutMs).toBe(hourMs);
    expect(row.note).toContain('the ramp shortens warm sessions further');
  });

  it('windowCutCdf: F(x) = c/n + (1 - c/n) x/W, 1 at the window, quantile its inverse', () => {
    const cut = windowCutCdf(Float64Array.from([10, 20, 1000, 2000]), 100);
    expect(cut.cdf(15)).toBeCloseTo(0.25 + 0.75 * 0.15, 12);
    expect(cut.before(10)).toBeCloseTo(0.1, 12);
    expect(cut.cdf(10)).toBeCloseTo(0.25 + 0.75 * 0.1, 12);
    expect(cut.cdf(100)).toBe(1);
    expect(cut.quantile(cut.cdf(50))).toBeCloseTo(50, 6);
  });
});
