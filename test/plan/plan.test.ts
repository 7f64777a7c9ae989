import { describe, expect, it } from 'vitest';
import { createPlan, resolvePlanOptions, type Plan } from '../../replay/plan.js';
import type { RawPlanOptions } from '../../replay/plan/options.js';
import { ksDistance } from '../../stats/ks.js';
import { syntheticModel } from '../../fixtures/synthetic-model.js';
import { collect, eventLines } from './collect.js';

// Publish gaps of ~30 s keep each plan small enough for CI; the bench enumerates the big day.
const model = syntheticModel({ classes: 60, seed: 3, publishMedianMs: 30_000 });
const plan = (raw: RawPlanOptions): Plan => createPlan(model, resolvePlanOptions(raw));
const samples = (name: Parameters<typeof model.distribution>[0]): Float64Array => model.distribution(name)!.samples;

describe.each(['clone', 'sample'] as const)('createPlan, %s mode', (mode) => {
  it('is deterministic: the same seed gives the same events, another seed others', () => {
    const opts = { mode, scale: 2, window: '09:00-10:00', seed: 7 };
    const a = eventLines(plan(opts));
    expect(a.length).toBeGreaterThan(1000);
    expect(eventLines(plan(opts))).toEqual(a);
    expect(eventLines(plan({ ...opts, seed: 8 }))).not.toEqual(a);
  });

  it('emits a well-formed stream: time order, sessions joined before traffic, every session leaves', () => {
    const c = collect(plan({ mode, scale: 2, window: 'all' }));
    expect(c.problems).toEqual([]);
    expect(c.learnerJoins).toBeGreaterThan(1000);
    expect(c.controls).toBeGreaterThan(100);
    for (const id of c.classes) expect(id).toMatch(/^c\d+(-\d+)?$/);
  });

  it('publishes/s at 5x is 5 times 1x within 5%', () => {
    const one = collect(plan({ mode, scale: 1, window: 'all' }));
    const five = collect(plan({ mode, scale: 5, window: 'all' }));
    expect(five.publishes / one.publishes).toBeGreaterThan(5 * 0.95);
    expect(five.publishes / one.publishes).toBeLessThan(5 * 1.05);
    expect(five.learnerJoins / one.learnerJoins).toBeCloseTo(5, 0);
  });

  it("matches the model's publish intervals, session durations and roster sizes (KS < 0.05)", () => {
    const c = collect(plan({ mode, scale: 2, window: 'all' }));
    expect(c.publishGaps.length).toBeGreaterThan(50_000);
    expect(ksDistance(c.publishGaps, samples('learnerPublishInterval'))).toBeLessThan(0.05);
    // Sessions and rosters need many classes: a day with rare publishes keeps that plan small.
    const quiet = syntheticModel({ classes: 60, seed: 3, publishMedianMs: 600_000 });
    const q = collect(createPlan(quiet, resolvePlanOptions({ mode, scale: 20, window: 'all' })));
    expect(q.problems).toEqual([]);
    expect(q.sessionDurations.length).toBeGreaterThan(20_000);
    expect(q.rosterSizes.length).toBeGreaterThan(1000);
    expect(ksDistance(q.sessionDurations, quiet.distribution('sessionDuration')!.samples)).toBeLessThan(0.05);
    expect(ksDistance(q.rosterSizes, quiet.distribution('rosterSize')!.samples)).toBeLessThan(0.05);
  });

  it('a warm-started window is at steady load in its first minute; --ramp staggers it instead', () => {
    // Classes arrive at a constant rate from 08:30, so by 11:00 the modelled load is flat.
    const flat = syntheticModel({ classes: 240, surgeShare: 0, seed: 5, publishMedianMs: 30_000 });
    const flatPlan = (raw: RawPlanOptions) => createPlan(flat, resolvePlanOptions({ mode, scale: 2, window: '11:00-11:30', ...raw }));
    const warm = collect(flatPlan({}), { probeMs: 30_000 });
    expect(warm.problems).toEqual([]);
    const perMinute = warm.publishesPerMinute;
    const steady = perMinute.slice(1, 30).reduce((a, b) => a + b, 0) / 29;
    expect(steady).toBeGreaterThan(1000);
    expect(perMinute[0]! / steady).toBeGreaterThan(0.85);
    expect(perMinute[0]! / steady).toBeLessThan(1.15);
    const expectedLive = flat.overview().peakConcurrentLearners * 2;
    expect(warm.liveAtProbe).toBeGreaterThan(0.6 * expectedLive);
    const ramped = collect(flatPlan({ ramp: '10m' }));
    expect(ramped.problems).toEqual([]);
    expect(ramped.publishesPerMinute[0]! / steady).toBeLessThan(0.3);
    expect(ramped.publishesPerMinute[4]! / steady).toBeGreaterThan(0.3);
    expect(ramped.publishesPerMinute[15]! / steady).toBeGreaterThan(0.85);
  });

  it('shards are disjoint whole classes and their union is the full plan', () => {
    const opts = { mode, scale: 1.5, window: '08:00-09:00', seed: 11 };
    const full = eventLines(plan(opts));
    const shards = [0, 1, 2].map((i) => eventLines(plan({ ...opts, shard: `${i}/3` })));
    const classesOf = (lines: string[]) => new Set(lines.map((l) => /"(c\d+(?:-\d+)?)\./.exec(l)?.[1] ?? JSON.parse(l).classId));
    const sets = shards.map(classesOf);
    for (let i = 0; i < 3; i++) {
      expect(shards[i]!.length).toBeGreaterThan(full.length / 6);
      for (let j = i + 1; j < 3; j++) for (const id of sets[i]!) expect(sets[j]!.has(id)).toBe(false);
    }
    expect(shards.flat().sort()).toEqual(full);
  });

  it('--duration bounds the replay and everyone still in session leaves at its end', () => {
    const p = plan({ mode, scale: 2, window: '08:00-12:00', duration: '10m' });
    expect(p.durationMs).toBe(600_000);
    const c = collect(p);
    expect(c.problems).toEqual([]);
    expect(c.lastAtMs).toBe(600_000);
    expect(c.leftAtEnd).toBeGreaterThan(100);
  });
});

describe('createPlan specifics', () => {
  it('a clone window continues the sessions in progress exactly where the whole-day replay has them', () => {
    const day = collect(plan({ mode: 'clone', scale: 3, window: 'all' }));
    const mid = collect(plan({ mode: 'clone', scale: 3, window: '10:30-11:30' }));
    const offset = (3 * 60 + 30); // 10:30 is minute 210 of a span starting at 07:00
    expect(mid.publishesPerMinute).toEqual(day.publishesPerMinute.slice(offset, offset + 60));
  });

  it('--speed divides every recorded gap and duration (clone mode, exactly)', () => {
    const one = plan({ mode: 'clone', window: 'all' });
    const four = plan({ mode: 'clone', window: 'all', speed: 4 });
    expect(four.durationMs).toBeCloseTo(one.durationMs / 4, 6);
    const a = Array.from(one.events());
    const b = Array.from(four.events());
    expect(b.length).toBe(a.length);
    for (let i = 0; i < a.length; i += 97) {
      expect(b[i]!.kind).toBe(a[i]!.kind);
      expect(b[i]!.atMs).toBeCloseTo(a[i]!.atMs / 4, 6);
    }
    // In sample mode the drawn gaps shrink by the same factor.
    const gapsAt = (speed: number) => collect(plan({ mode: 'sample', window: '09:00-11:00', speed, scale: 2 })).publishGaps;
    const median = (v: number[]) => [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)]!;
    expect(median(gapsAt(1)) / median(gapsAt(4))).toBeCloseTo(4, 0);
  });

  it('clone mode at scale 1 over the whole day replays every recorded session once, with its timeline', () => {
    const c = collect(plan({ mode: 'clone', window: 'all' }));
    expect(c.learnerJoins).toBe(model.overview().sessions);
    expect(c.proctorJoins).toBe(model.overview().proctorSessions);
    let recorded = 0;
    for (const cls of model.classes()) for (const l of cls.learners) recorded += model.timeline(l.id).filter((e) => e.kind === 'publish').length;
    expect(c.publishes).toBe(recorded);
  });

  it('fractional scales copy each class floor(s) times plus one with probability frac(s)', () => {
    const recordedClasses = [...model.classes()].length;
    const c = collect(plan({ mode: 'clone', window: 'all', scale: 2.5 }));
    expect(c.classes.size).toBeGreaterThanOrEqual(2 * recordedClasses);
    expect(c.classes.size).toBeLessThanOrEqual(3 * recordedClasses);
    expect(c.classes.size / recordedClasses).toBeGreaterThan(2.3);
    expect(c.classes.size / recordedClasses).toBeLessThan(2.7);
  });

  it('clone copies keep their class together but are not in lockstep', () => {
    const joins = new Map<string, number>();
    const classOf = new Map<string, string>();
    for (const e of plan({ mode: 'clone', window: 'all', scale: 3 }).events()) {
      if (e.kind === 'proctorJoin') joins.set(e.classId, e.atMs);
      if (e.kind === 'learnerJoin') classOf.set(e.learner, e.classId);
    }
    const base = [...joins.keys()].filter((id) => !id.includes('-'));
    expect(base.length).toBeGreaterThan(40);
    let shifted = 0;
    for (const id of base) {
      const copies = [id, `${id}-1`, `${id}-2`].map((c) => joins.get(c));
      expect(copies.every((t) => t !== undefined)).toBe(true);
      if (new Set(copies).size === 3) shifted++;
      for (const t of copies) expect(Math.abs(t! - joins.get(id)!)).toBeLessThanOrEqual(5 * 60_000);
    }
    expect(shifted).toBe(base.length);
    // Each copy's learners carry its own ids.
    for (const [learner, cls] of classOf) expect(learner.startsWith(`${cls}.l`)).toBe(true);
  });

  it('is lazy: the first events come without reading every timeline', () => {
    const m = syntheticModel({ classes: 60, seed: 3, publishMedianMs: 30_000 });
    const p = createPlan(m, resolvePlanOptions({ mode: 'clone', window: 'all', scale: 10 }));
    expect(m.calls.timeline).toBe(0);
    const it = p.events();
    for (let i = 0; i < 100; i++) it.next();
    expect(m.calls.timeline).toBeGreaterThan(0);
    expect(m.calls.timeline).toBeLessThan(200);
  });

  it("'peak' picks the hour with the most learner-minutes", () => {
    const p = plan({ window: 'peak' });
    expect(p.window.endMs - p.window.startMs).toBe(3_600_000);
    const learnerMs = (from: number) => {
      let sum = 0;
      for (const cls of model.classes()) for (const l of cls.learners) sum += Math.max(0, Math.min(l.endMs, from + 3_600_000) - Math.max(l.startMs, from));
      return sum;
    };
    const best = learnerMs(p.window.startMs);
    const { startMs, endMs } = model.overview().span;
    for (let t = startMs; t + 3_600_000 <= endMs; t += 5 * 60_000) expect(learnerMs(t)).toBeLessThanOrEqual(best * 1.001);
    // --duration sets the peak window's length (in model time: duration x speed).
    const short = plan({ window: 'peak', duration: '10m', speed: 2 });
    expect(short.window.endMs - short.window.startMs).toBe(20 * 60_000);
    expect(short.durationMs).toBe(600_000);
  });

  it('reads clock windows in the model zone and ISO intervals, and refuses windows outside the day', () => {
    // Europe/Paris is UTC+2 on 2026-09-01.
    expect(plan({ window: '09:30-10:30' }).window.startMs).toBe(Date.parse('2026-09-01T07:30:00Z'));
    const iso = plan({ window: '2026-09-01T09:30/2026-09-01T10:00' });
    expect(iso.window.startMs).toBe(Date.parse('2026-09-01T07:30:00Z'));
    expect(iso.durationMs).toBe(30 * 60_000);
    expect(plan({ window: '2026-09-01T07:30:00Z/PT1H' }).window.startMs).toBe(Date.parse('2026-09-01T07:30:00Z'));
    expect(() => plan({ window: '02:00-03:00' })).toThrowError(/--window: 02:00-03:00 does not overlap the recorded day/);
    expect(() => plan({ window: 'yesterday/today' })).toThrowError(/--window: 'yesterday\/today' is not an ISO 8601 interval/);
  });

  it('sample mode refuses a model without the distributions it draws from', () => {
    const empty = { ...model, distribution: () => null };
    expect(() => createPlan(empty, resolvePlanOptions({ mode: 'sample' }))).toThrowError(/--mode clone/);
    expect(() => createPlan(empty, resolvePlanOptions({ mode: 'clone' }))).not.toThrow();
  });
});
