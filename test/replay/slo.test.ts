import { describe, expect, it } from 'vitest';
import { UsageError } from '../../core/errors.js';
import { defaultSlo, evaluateSlo, parseSlo, type StreamOutcome } from '../../replay/slo.js';

function outcome(o: Partial<StreamOutcome> & { within?: Array<[number, number]> }): StreamOutcome {
  return {
    expected: o.expected ?? 100,
    delivered: o.delivered ?? 100,
    duplicates: o.duplicates ?? 0,
    lost: o.lost ?? 0,
    withinMs: new Map(o.within ?? [[2000, o.delivered ?? 100]]),
    latencyAt: o.latencyAt ?? ((q) => q * 1000),
  };
}

describe('SLO expressions', () => {
  it('parses the default: 95% within 2 s, loss limit 15 s, no duplicates', () => {
    const slo = parseSlo(defaultSlo);
    expect(slo.lossLimitMs).toBe(15_000);
    expect(slo.targetMs).toBe(2000);
    expect(slo.clauses).toEqual([
      { kind: 'percentile', text: 'p95<=2s', stream: 'all', percentile: 95, withinMs: 2000 },
      { kind: 'lost', text: 'lost>15s', stream: 'all', limitMs: 15_000, allowed: { value: 0, fraction: false } },
      { kind: 'duplicates', text: 'duplicates=0', stream: 'all', allowed: { value: 0, fraction: false } },
    ]);
  });

  it('parses streams, percentages, units and error budgets', () => {
    const slo = parseSlo('control.p99 <= 500ms, p95<=1.5s, lost>10s<=0.1%, learner.duplicates<=3, errors<=1%');
    expect(slo.lossLimitMs).toBe(10_000);
    expect(slo.targetMs).toBe(500);
    expect(slo.thresholdsMs).toEqual([500, 1500]);
    expect(slo.clauses[2]).toMatchObject({ kind: 'lost', allowed: { value: 0.001, fraction: true } });
    expect(slo.clauses[3]).toMatchObject({ kind: 'duplicates', stream: 'learner', allowed: { value: 3, fraction: false } });
    expect(slo.clauses[4]).toMatchObject({ kind: 'errors', allowed: { value: 0.01, fraction: true } });
  });

  it.each([
    ['p95<=2x', /clause 1 "p95<=2x".*not a duration/],
    ['p95<=2s, lost', /clause 2 "lost": not understood/],
    ['p95<=2s,,lost>15s', /clause 2 "": empty clause/],
    ['p150<=2s', /clause 1.*percentile must be in/],
    ['lost>5s, lost>10s', /disagree on the loss limit/],
    ['p95<=20s', /beyond the loss limit 15s/],
    ['duplicates<=lots', /clause 1.*not a count or a percentage/],
  ])('names the clause in errors: %s', (text, message) => {
    expect(() => parseSlo(text)).toThrow(UsageError);
    expect(() => parseSlo(text)).toThrow(message);
  });

  it('counts lost pairs as never delivered in percentiles over expected pairs', () => {
    const slo = parseSlo(defaultSlo);
    const all = outcome({ expected: 100, delivered: 94, lost: 6, within: [[2000, 94]] });
    const results = evaluateSlo(slo, { all, learner: all, control: all, requests: 10, errors: 0 });
    // 94 of 100 within 2 s: p95 falls among the lost pairs, reported as the loss limit.
    expect(results[0]).toEqual({ expression: 'p95<=2s', observed: 15_000, pass: false });
    expect(results[1]).toEqual({ expression: 'lost>15s', observed: 6, pass: false });
    expect(results[2]).toEqual({ expression: 'duplicates=0', observed: 0, pass: true });
  });

  it('passes at exactly the percentile and fails one pair below', () => {
    const slo = parseSlo('p95<=2s');
    const at = outcome({ expected: 100, delivered: 100, within: [[2000, 95]] });
    const below = outcome({ expected: 100, delivered: 100, within: [[2000, 94]] });
    expect(evaluateSlo(slo, { all: at, learner: at, control: at, requests: 1, errors: 0 })[0]!.pass).toBe(true);
    expect(evaluateSlo(slo, { all: below, learner: below, control: below, requests: 1, errors: 0 })[0]!.pass).toBe(false);
  });

  it('fails a percentile clause when nothing was expected (never vacuously true)', () => {
    const slo = parseSlo('p95<=2s');
    const none = outcome({ expected: 0, delivered: 0, within: [[2000, 0]] });
    expect(evaluateSlo(slo, { all: none, learner: none, control: none, requests: 0, errors: 0 })[0]!.pass).toBe(false);
  });
});
