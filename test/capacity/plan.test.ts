import { describe, expect, it } from 'vitest';
import { syntheticModel } from '../../fixtures/synthetic-model.js';
import type { PlanEvent } from '../../replay/plan-types.js';
import { StagedPlan, stageMultipliers, stagePrefix, stageSeed } from '../../replay/capacity/plan.js';

const model = syntheticModel({ classes: 60, seed: 3, publishMedianMs: 30_000 });

function staged(stages: number, stageMs: number, step = 1): StagedPlan {
  const plan = new StagedPlan(model, { window: 'peak', speed: 10, seed: 5, horizonMs: stages * stageMs });
  for (let k = 0; k < stages; k++) plan.addStage(k, step, k * stageMs, stageSeed(5, k));
  return plan;
}

describe('stageMultipliers', () => {
  it('visits from, from+step, ... up to to, without float noise', () => {
    expect(stageMultipliers(1, 3, 0.5)).toEqual([1, 1.5, 2, 2.5, 3]);
    expect(stageMultipliers(1, 1.3, 0.1)).toEqual([1, 1.1, 1.2, 1.3]);
    expect(stageMultipliers(2, 2, 1)).toEqual([2]);
    expect(stageMultipliers(1, 2.9, 1)).toEqual([1, 2]);
  });
});

describe('StagedPlan', () => {
  it('merges the stages in time order; each stage adds its own users, prefixed, from its start on', () => {
    const stageMs = 60_000;
    const events = [...staged(3, stageMs)];
    expect(events.length).toBeGreaterThan(100);
    for (let i = 1; i < events.length; i++) expect(events[i]!.atMs).toBeGreaterThanOrEqual(events[i - 1]!.atMs);
    const joins = events.filter((e): e is Extract<PlanEvent, { kind: 'learnerJoin' }> => e.kind === 'learnerJoin');
    expect(new Set(joins.map((j) => j.learner)).size).toBe(joins.length);
    for (let k = 0; k < 3; k++) {
      const mine = joins.filter((j) => j.learner.startsWith(stagePrefix(k)));
      expect(mine.length).toBeGreaterThan(0);
      // A stage's users join from its start on (its warm classes all at once at the start).
      expect(Math.min(...mine.map((j) => j.atMs))).toBeGreaterThanOrEqual(k * stageMs);
      expect(mine.some((j) => j.atMs === k * stageMs)).toBe(true);
    }
    // Users already connected stay connected: stage 1's learners are still there in stage 3.
    const left = new Set(events.filter((e) => e.kind === 'learnerLeave' && e.atMs < 2 * stageMs).map((e) => (e as { learner: string }).learner));
    const stage1Joined = joins.filter((j) => j.learner.startsWith('s1.') && j.atMs < stageMs);
    expect(stage1Joined.filter((j) => !left.has(j.learner)).length).toBeGreaterThan(0);
    // Every control addresses learners of its own stage; every roster too.
    for (const e of events) {
      if (e.kind === 'control') for (const t of e.targets) expect(t.slice(0, 3)).toBe(e.proctor.slice(0, 3));
      if (e.kind === 'proctorJoin') for (const l of e.roster) expect(l.slice(0, 3)).toBe(e.proctor.slice(0, 3));
    }
    // Publishes per stage-time grow with the level (1x, 2x, 3x), roughly.
    const publishesIn = (k: number): number => events.filter((e) => e.kind === 'publish' && e.atMs >= k * stageMs && e.atMs < (k + 1) * stageMs).length;
    expect(publishesIn(2)).toBeGreaterThan(publishesIn(0));
  });

  it('is the same for the same seed', () => {
    expect([...staged(2, 30_000)]).toEqual([...staged(2, 30_000)]);
  });

  it('ends a stage: its users in session leave together at the end, and nothing of it follows', () => {
    const plan = new StagedPlan(model, { window: 'peak', speed: 10, seed: 5, horizonMs: 120_000 });
    plan.addStage(0, 1, 0, stageSeed(5, 0));
    plan.addStage(1, 1, 30_000, stageSeed(5, 1));
    expect(plan.levelAt(40_000)).toBe(2);
    plan.endStage(1, 60_000);
    expect(plan.levelAt(40_000)).toBe(2);
    expect(plan.levelAt(70_000)).toBe(1);
    const events = [...plan];
    const ofStage1 = events.filter((e) => JSON.stringify(e).includes('"s2.'));
    expect(ofStage1.length).toBeGreaterThan(0);
    expect(Math.max(...ofStage1.map((e) => e.atMs))).toBe(60_000);
    const joined = new Set<string>();
    for (const e of ofStage1) {
      if (e.kind === 'learnerJoin') joined.add(e.learner);
      if (e.kind === 'learnerLeave') joined.delete(e.learner);
    }
    expect(joined.size).toBe(0);
  });

  it('refuses a search longer than the window replays', () => {
    expect(() => new StagedPlan(model, { window: '08:00-08:10', speed: 1, seed: 1, horizonMs: 20 * 60_000 })).toThrow(/raise --speed/);
  });
});
