import { describe, expect, it } from 'vitest';
import type { Distribution, DistributionName, ModelReader } from '../../db/model-types.js';
import type { StoredRun } from '../../db/run-queries.js';
import type { RunSecond } from '../../db/run-types.js';
import { computeFidelity } from '../../report/fidelity.js';
import { randomLognormal, seededRandom } from '../../stats/random.js';
import { sortedCopy, summarize } from '../../stats/quantile.js';

const fingerprint = 'f'.repeat(64);

function lognormal(seed: string, n: number, median: number): Float64Array {
  const rng = seededRandom(seed);
  return sortedCopy(Array.from({ length: n }, () => randomLognormal(rng, median, 0.7)));
}

function modelWith(dists: Partial<Record<DistributionName, Float64Array>>, fp = fingerprint): ModelReader {
  return {
    overview: () => ({
      fingerprint: fp,
      span: { startMs: 0, endMs: 1 },
      timezone: 'UTC',
      learners: 1,
      proctors: 1,
      sessions: 1,
      proctorSessions: 1,
      peakConcurrentLearners: 1,
      peakConcurrentLearnersAtMs: 0,
    }),
    distribution: (name): Distribution | null => {
      const samples = dists[name];
      if (!samples) return null;
      return { name, unit: name === 'messagesPerPublish' ? 'count' : 'ms', summary: summarize(samples, true), samples };
    },
    arrivals: () => [],
    classes: () => [],
    timeline: () => [],
  };
}

const run = { id: 4, modelFingerprint: fingerprint, speed: 2 } as StoredRun;

function seconds(openPolls: number, subscribes: number, n: number): RunSecond[] {
  return Array.from({ length: n }, (_, i) => ({
    second: i,
    virtualUsers: openPolls,
    openPolls,
    publishes: 0,
    subscribes: subscribes + (i % 3) - 1,
    deliveries: 0,
    duplicates: 0,
    lost: 0,
    errors: 0,
    retries: 0,
    p50Ms: null,
    p95Ms: null,
    p99Ms: null,
    maxMs: null,
    scheduleLagP99Ms: null,
    loopDelayP99Ms: null,
  }));
}

describe('computeFidelity', () => {
  it('shows model and run quantiles with a small KS distance when the run sent what the model says', () => {
    const model = modelWith({ learnerPublishInterval: lognormal('model', 5000, 4000), pollDuration: Float64Array.from([20000, 20000]) });
    const f = computeFidelity({
      run,
      samples: new Map([['learnerPublishInterval', lognormal('run', 3000, 4000)]]),
      // 400 open polls, each re-polled every 20 s of recorded time = 10 s at speed 2: 40 polls/s
      seconds: seconds(400, 40, 30),
      model,
    });
    expect(f.status).toBe('available');
    const row = f.rows.find((r) => r.name === 'learnerPublishInterval')!;
    expect(row.unit).toBe('ms');
    expect(row.runCount).toBe(3000);
    expect(row.modelCount).toBe(5000);
    expect(row.ks!).toBeLessThan(0.05);
    const p50 = row.quantiles.find((q) => q.q === 0.5)!;
    expect(p50.model! / 4000).toBeGreaterThan(0.9);
    expect(p50.run / 4000).toBeGreaterThan(0.9);
    expect(p50.run / 4000).toBeLessThan(1.1);
    expect(row.curve.run).toHaveLength(row.curve.model!.length);
    const polls = f.rows.find((r) => r.name === 'pollsPerSecond')!;
    expect(polls.unit).toBe('per s');
    expect(polls.quantiles.find((q) => q.q === 0.5)!.model).toBeCloseTo(40, 9);
    expect(polls.note).toMatch(/Little/);
  });

  it('measures a run that sent twice as often as the model with a large KS distance', () => {
    const f = computeFidelity({
      run,
      samples: new Map([['learnerPublishInterval', lognormal('run', 3000, 2000)]]),
      seconds: [],
      model: modelWith({ learnerPublishInterval: lognormal('model', 5000, 4000) }),
    });
    expect(f.rows[0]!.ks!).toBeGreaterThan(0.3);
  });

  it('says the model is unavailable when it is absent or is not the model the run replayed', () => {
    const samples = new Map([['messagesPerPublish', Float64Array.from([1, 1, 2, 3])]]);
    const none = computeFidelity({ run, samples, seconds: [], model: null });
    expect(none.status).toBe('unavailable');
    expect(none.reason).toMatch(/not available/);
    expect(none.rows[0]).toMatchObject({ name: 'messagesPerPublish', ks: null, modelCount: null, unit: 'count' });
    const other = computeFidelity({
      run,
      samples,
      seconds: [],
      model: modelWith({ messagesPerPublish: Float64Array.from([1, 2]) }, '0'.repeat(64)),
      modelLabel: 'model.db',
    });
    expect(other.status).toBe('unavailable');
    expect(other.reason).toBe(`the model in model.db (000000000000) is not the one run 4 replayed (ffffffffffff)`);
    expect(other.rows[0]!.ks).toBeNull();
  });
});
