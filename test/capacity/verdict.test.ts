import { describe, expect, it } from 'vitest';
import { newLatencyHistogram, recordMs, type WindowCounts, type WindowStreamCounts } from '../../replay/delivery.js';
import { parseSlo } from '../../replay/slo.js';
import { capacityAnswer, findKnee, judgeStage, nextRefine, stageSettled, type StageResult, type StageSecond } from '../../replay/capacity/verdict.js';

const slo = parseSlo('p95<=2s, lost>15s, duplicates=0, errors<=1%');

/** One stream's share of a window: n pairs delivered at latencyMs each, `lost` of them lost. */
function counts(n: number, latencyMs: number, lost = 0, duplicates = 0, thresholdsMs = slo.thresholdsMs): WindowStreamCounts {
  const h = newLatencyHistogram();
  for (let i = 0; i < n - lost; i++) recordMs(h, latencyMs);
  return { expected: n, delivered: n - lost, duplicates, lost, late: 0, unresolved: 0, withdrawn: 0, within: thresholdsMs.map((t) => (latencyMs <= t ? n - lost : 0)), histogram: h };
}

/** A window whose pairs are all learner pairs. */
function window(n: number, latencyMs: number, lost = 0, duplicates = 0): WindowCounts {
  return { ...counts(n, latencyMs, lost, duplicates), learner: counts(n, latencyMs, lost, duplicates), control: counts(0, 0) };
}

const second = (over: Partial<StageSecond> = {}): StageSecond => ({ publishes: 10, subscribes: 10, deliveries: 10, errors: 0, scheduleLagP99Ms: 2, loopDelayP99Ms: 5, ...over });

function stage(index: number, multiplier: number, counts: WindowCounts | undefined, seconds = [second(), second(), second(), second()], refine = false): StageResult {
  return judgeStage({ spec: { index, multiplier, refine, startMs: index * 10_000, endMs: (index + 1) * 10_000, judgedFromMs: index * 10_000 + 2000 }, counts, seconds, errorsByKind: {} }, slo, 200);
}

describe('judgeStage', () => {
  it('judges learner. and control. clauses on their own stream, and names it', () => {
    const perStream = parseSlo('p95<=2s, control.p95<=500ms, lost>15s');
    // 190 fast learner pairs hide 10 slow control pairs from the overall p95, not from control.p95.
    const t = perStream.thresholdsMs;
    const all = counts(200, 20, 0, 0, t);
    const w: WindowCounts = { ...all, learner: counts(190, 20, 0, 0, t), control: counts(10, 900, 0, 0, t) };
    const s = judgeStage({ spec: { index: 0, multiplier: 1, refine: false, startMs: 0, endMs: 10_000, judgedFromMs: 2000 }, counts: w, seconds: [second()], errorsByKind: {} }, perStream, 200);
    expect(s.pass).toBe(false);
    expect(s.failure).toMatchObject({ clause: 'control.p95<=500ms', stream: 'control', kind: 'latency' });
  });

  it('passes a healthy window and fails one whose p95 is over the target, naming the clause and stream', () => {
    const ok = stage(0, 1, window(200, 20));
    expect(ok.pass).toBe(true);
    expect(ok.latencyMs.p95).toBeCloseTo(20, 0);
    const slow = stage(1, 2, window(200, 2500));
    expect(slow.pass).toBe(false);
    expect(slow.failure).toMatchObject({ clause: 'p95<=2s', stream: 'all', kind: 'latency' });
    const lossy = stage(2, 3, window(200, 20, 3));
    expect(lossy.failure).toMatchObject({ clause: 'lost>15s', kind: 'lost', observed: 3 });
  });

  it('fails a window where nothing was expected, and counts errors from its seconds', () => {
    expect(stage(0, 1, undefined).failure?.kind).toBe('nothing measured');
    const errs = stage(0, 1, window(200, 20), [second({ errors: 5 }), second()]);
    expect(errs.errors).toBe(5);
    expect(errs.failure).toMatchObject({ clause: 'errors<=1%', kind: 'errors' });
  });

  it('is generator-bound when more than a quarter of its seconds lag beyond the limit', () => {
    expect(stage(0, 1, window(200, 20), [second({ scheduleLagP99Ms: 900 }), second(), second(), second()]).generatorBound).toBe(false);
    expect(stage(0, 1, window(200, 20), [second({ scheduleLagP99Ms: 900 }), second({ loopDelayP99Ms: 300 }), second(), second()]).generatorBound).toBe(true);
  });

  it('waits for every pair of a window to have a verdict', () => {
    expect(stageSettled({ ...window(10, 5), delivered: 8 })).toBe(false);
    expect(stageSettled(window(10, 5, 2))).toBe(true);
  });
});

describe('the answer', () => {
  it('is the highest passing multiplier before the first failure, with its clause and the knee', () => {
    const stages = [stage(0, 1, window(200, 10)), stage(1, 1.5, window(200, 12)), stage(2, 2, window(200, 600)), stage(3, 2.5, window(200, 3000))];
    const a = capacityAnswer(stages, slo, 10);
    expect(a.capacity).toBe(2);
    expect(a.exitCode).toBe(0);
    expect(a.firstFailure).toMatchObject({ multiplier: 2.5, clause: 'p95<=2s', stream: 'all' });
    expect(a.knee).toMatchObject({ multiplier: 2 });
    expect(a.generatorBound).toBe(false);
    expect(a.passesUpTo).toBeNull();
    expect(a.text).toMatch(/^capacity 2x; at 2.5x p95<=2s failed first on all streams/);
  });

  it('says "passes up to" when every stage to --to passed, and no capacity when the first fails', () => {
    const all = capacityAnswer([stage(0, 1, window(100, 5)), stage(1, 2, window(100, 5))], slo, 2);
    expect(all.passesUpTo).toBe(2);
    expect(all.text).toMatch(/^passes up to 2x/);
    const none = capacityAnswer([stage(0, 1, window(100, 5000))], slo, 2);
    expect(none.capacity).toBeNull();
    expect(none.exitCode).toBe(1);
  });

  it('is "at least" when the generator became the bottleneck first', () => {
    const lag = [1, 2, 3, 4].map(() => second({ scheduleLagP99Ms: 500 }));
    const a = capacityAnswer([stage(0, 1, window(100, 5)), stage(1, 2, window(100, 5), lag)], slo, 5);
    expect(a).toMatchObject({ capacity: 1, generatorBound: true, firstFailure: null, passesUpTo: null, exitCode: 0 });
    expect(a.text).toMatch(/^capacity at least 1x \(generator-bound\)/);
  });

  it('takes a refine stage that passed between the last pass and the first fail', () => {
    const stages = [stage(0, 1, window(100, 5)), stage(1, 2, window(100, 5000)), stage(2, 1.5, window(100, 5), undefined, true), stage(3, 1.75, window(100, 5000), undefined, true)];
    expect(capacityAnswer(stages, slo, 5).capacity).toBe(1.5);
  });
});

describe('knee and refine', () => {
  it('ignores small wobbles at the bottom of the curve', () => {
    expect(findKnee([stage(0, 1, window(100, 1)), stage(1, 2, window(100, 3)), stage(2, 3, window(100, 2))], slo)).toBeNull();
  });
  it('bisects down to a quarter step', () => {
    expect(nextRefine(2, 2.5, 0.5)).toBe(2.25);
    expect(nextRefine(2.25, 2.5, 0.5)).toBe(2.375);
    expect(nextRefine(2, 2.25, 0.5)).toBe(2.125);
    expect(nextRefine(2.375, 2.5, 0.5)).toBeNull();
    expect(nextRefine(null, 1, 0.5)).toBeNull();
  });
});
