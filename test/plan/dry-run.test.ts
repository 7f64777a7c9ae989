import { describe, expect, it } from 'vitest';
import { createPlan, formatPlanSummary, resolvePlanOptions, summarizePlan } from '../../replay/plan.js';
import { estimateAssumptions } from '../../replay/plan/dry-run.js';
import type { ModelReader, SessionRecord, TimelineEvent } from '../../db/model-types.js';
import { summarize } from '../../stats/quantile.js';
import { syntheticModel } from '../../fixtures/synthetic-model.js';

const t0 = Date.parse('2026-09-01T08:00:00Z');
const min = 60_000;

/** One class: a proctor 08:00-08:10 and two learners 08:01-08:05, every publish known. */
function tinyModel(): ModelReader {
  const rec = (id: number, role: 'learner' | 'proctor', start: number, end: number): SessionRecord => ({
    id,
    role,
    actor: `a${id}`,
    startMs: t0 + start,
    endMs: t0 + end,
    publishes: 0,
    messages: 0,
    polls: 0,
    controls: 0,
    errors: 0,
  });
  const proctor = rec(1, 'proctor', 0, 10 * min);
  const l1 = rec(2, 'learner', 1 * min, 5 * min);
  const l2 = rec(3, 'learner', 1 * min, 5 * min);
  const pub = (atMs: number, messages: number, status = 200): TimelineEvent => ({ atMs, kind: 'publish', messages, durationMs: 10, status, targetSessionId: null });
  const timelines = new Map<number, TimelineEvent[]>([
    [1, [2, 3].map((target) => ({ atMs: 2 * min, kind: 'control' as const, messages: 1, durationMs: 10, status: 200, targetSessionId: target }))],
    [2, [pub(10_000, 2), pub(70_000, 1), pub(80_000, 1, 503)]],
    [3, [pub(10_000, 1)]],
  ]);
  const poll = Float64Array.of(20_000);
  return {
    overview: () => ({
      fingerprint: 'tiny',
      span: { startMs: t0, endMs: t0 + 10 * min },
      timezone: 'UTC',
      learners: 2,
      proctors: 1,
      sessions: 2,
      proctorSessions: 1,
      peakConcurrentLearners: 2,
      peakConcurrentLearnersAtMs: t0 + min,
    }),
    distribution: (name) => (name === 'pollDuration' ? { name, unit: 'ms', summary: summarize(poll), samples: poll } : null),
    arrivals: () => Array.from({ length: 10 }, (_, i) => ({ minuteMs: t0 + i * min, learners: i === 1 ? 2 : 0 })),
    classes: () => [{ proctor, learners: [l1, l2] }],
    timeline: (id) => timelines.get(id) ?? [],
  };
}

describe('summarizePlan', () => {
  it('counts a known plan exactly', () => {
    const plan = createPlan(tinyModel(), resolvePlanOptions({ mode: 'clone', window: 'all', scale: 2 }));
    const s = summarizePlan(plan);
    expect(s).toMatchObject({ mode: 'clone', scale: 2, classes: 2, learners: 4, proctors: 2, durationMs: 10 * min });
    // per copy: 3 successful publishes (the 503 is not replayed), 4 messages, one control to 2 learners
    expect(s.publishes).toBe(6);
    expect(s.messages).toBe(8);
    expect(s.controls).toBe(2);
    // every message reaches the class's proctor, every control its 2 targets
    expect(s.expectedDeliveries).toBe(8 + 4);
    expect(s.peakConcurrentLearners).toBe(4);
    expect(s.peakConcurrentProctors).toBe(2);
    expect(s.peakOpenPolls).toBe(6);
    expect(s.perMinute).toHaveLength(10);
    expect(s.estimate.connections).toBeGreaterThanOrEqual(s.peakOpenPolls);
    expect(s.assumptions?.pollDurationMs).toBe(20_000);
    expect(s.estimate.generatorCpuCores).toBeCloseTo((s.peakRequestsPerS * estimateAssumptions.cpuMicrosPerRequest) / 1e6, 2);
  });

  it('counts per minute what the events say', () => {
    const plan = createPlan(tinyModel(), resolvePlanOptions({ mode: 'clone', window: 'all' }));
    const s = summarizePlan(plan);
    const m1 = s.perMinute[1]!; // both learners join at 08:01 and publish 3 messages at 08:01:10
    expect(m1.learners).toBe(2);
    expect(m1.proctors).toBe(1);
    expect(m1.publishesPerS).toBeCloseTo(2 / 60, 6);
    expect(m1.deliveriesPerS).toBeCloseTo(3 / 60, 6);
    expect(s.perMinute[3]!.learners).toBe(2); // no event in minute 3: still in session
    expect(s.perMinute[6]!.learners).toBe(0);
    expect(s.perMinute[6]!.proctors).toBe(1);
    // Polls: 3 users through all of minute 2, each re-polling every 20 s.
    expect(s.perMinute[2]!.pollsPerS).toBeCloseTo(3 / 20, 6);
  });

  it('prints a compact table that groups long minute lists', () => {
    const plan = createPlan(syntheticModel({ classes: 20 }), resolvePlanOptions({ mode: 'sample', scale: 5, window: 'all' }));
    const text = formatPlanSummary(summarizePlan(plan));
    expect(text).toMatch(/^Plan: sample mode, scale 5x, speed 1x, seed 1/);
    expect(text).toMatch(/virtual users [\d,]+ learners, [\d,]+ proctors in [\d,]+ classes/);
    expect(text).toMatch(/generator\s+~[\d.]+ CPU cores, [\d,]+ connections/);
    expect(text).toContain('µs CPU per request');
    expect(text).toMatch(/minutes in groups of \d+/);
    const rows = text.split('\n').filter((l) => /^\s*\d+-\d+\s/.test(l));
    expect(rows.length).toBeGreaterThan(10);
    expect(rows.length).toBeLessThanOrEqual(24);
  });
});
