import { describe, expect, it } from 'vitest';
import { DateTime } from 'luxon';
import { parseShape, shapeClient, ShapeError, shapeNames } from '../../replay/plan/shape.js';
import { shapeModel, shapeDistribution, regroupClasses, replacementPoints } from '../../replay/plan/shaped-model.js';
import { createPlan, resolvePlanOptions, PlanOptionsError } from '../../replay/plan.js';
import type { RawPlanOptions } from '../../replay/plan/options.js';
import { ksDistance } from '../../stats/ks.js';
import { quantileSorted } from '../../stats/quantile.js';
import { syntheticModel } from '../../fixtures/synthetic-model.js';
import { collect } from './collect.js';

// The "done when" against the fixture model the plan tests use, and the grammar's units.
const model = syntheticModel({ classes: 60, seed: 3, publishMedianMs: 30_000 });
const plan = (raw: RawPlanOptions) => createPlan(model, resolvePlanOptions(raw));

describe('parseShape', () => {
  it('parses every term the grammar lists', () => {
    const s = parseShape([
      'learnerPublishInterval*0.5',
      'proctorControlInterval=10s',
      'messagesPerPublish+1',
      'sessionDuration=lognormal(median=40m,p90=70m)',
      'rosterSize=60; rosterSize*2',
      'arrivals=surge(09:00,5m)',
      'arrivals*1.5@09:00-10:00',
      'pollTimeout=10s',
      'backoff=base:2s,cap:60s',
    ]);
    expect(s.terms.map((t) => t.kind)).toEqual(['distribution', 'distribution', 'distribution', 'distribution', 'distribution', 'distribution', 'surge', 'arrivals', 'pollTimeout', 'backoff']);
    expect(s.terms[0]).toMatchObject({ name: 'learnerPublishInterval', edit: { kind: 'multiply', factor: 0.5 } });
    expect(s.terms[1]).toMatchObject({ edit: { kind: 'replace', with: { kind: 'constant', value: 10_000 } } });
    expect(s.terms[2]).toMatchObject({ edit: { kind: 'offset', by: 1 } });
    expect(s.terms[3]).toMatchObject({ edit: { kind: 'replace', with: { kind: 'lognormal', median: 2_400_000, p90: 4_200_000 } } });
    expect(s.terms[4]).toMatchObject({ name: 'rosterSize', edit: { kind: 'replace', with: { kind: 'constant', value: 60 } } });
    expect(s.terms[6]).toMatchObject({ atMinute: 540, lengthMs: 300_000 });
    expect(s.terms[7]).toMatchObject({ factor: 1.5, fromMinute: 540, toMinute: 600 });
    expect(shapeClient(s)).toEqual({ pollTimeoutS: 10, backoff: { baseMs: 2000, capMs: 60_000 } });
    expect(s.terms.map((t) => t.text)).toContain('rosterSize*2');
  });

  it('normalises spaces and signs (offsets down, negative lead times)', () => {
    const s = parseShape(['sessionDuration - 5m', 'proctorLeadTime=-2m']);
    expect(s.terms[0]).toMatchObject({ text: 'sessionDuration-5m', edit: { kind: 'offset', by: -300_000 } });
    expect(s.terms[1]).toMatchObject({ edit: { kind: 'replace', with: { kind: 'constant', value: -120_000 } } });
  });

  it('gives one error per bad term, naming it, with the known names for an unknown one', () => {
    let err: unknown;
    try {
      parseShape(['learnerPublishIntervall*0.5', 'rosterSize=10s', 'arrivals=surge(25:00,5m)', 'sessionDuration*-1', 'pollTimeout=10s', 'pollTimeout=20s']);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ShapeError);
    const problems = (err as ShapeError).problems;
    expect(problems).toHaveLength(5);
    expect(problems[0]).toContain("'learnerPublishIntervall*0.5': unknown name 'learnerPublishIntervall' (did you mean learnerPublishInterval?)");
    expect(problems[0]).toContain(`known names: ${shapeNames.join(', ')}`);
    expect(problems[1]).toMatch(/^'rosterSize=10s': expected a number \(it counts\)/);
    expect(problems[2]).toMatch(/^'arrivals=surge\(25:00,5m\)': '25:00' is not a time of day/);
    expect(problems[3]).toMatch(/^'sessionDuration\*-1'/);
    expect(problems[4]).toContain('pollTimeout is given 2 times');
    expect((err as ShapeError).code).toBe('REHEARSE_USAGE');
    expect((err as ShapeError).message).toMatch(/^--shape: 5 shape terms are invalid/);
  });

  it('reaches the plan options: problems under --shape, and clone mode refuses distribution edits', () => {
    expect(resolvePlanOptions({ shape: ['rosterSize=60'] }).shape?.terms).toHaveLength(1);
    expect(resolvePlanOptions({}).shape).toBeUndefined();
    let err: unknown;
    try {
      resolvePlanOptions({ mode: 'clone', shape: ['learnerPublishInterval*0.5', 'foo=1'] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PlanOptionsError);
    expect((err as PlanOptionsError).problems.map((p) => p.flag)).toEqual(['--shape']);
    expect((err as PlanOptionsError).problems[0]!.message).toContain("unknown name 'foo'");
    expect(() => resolvePlanOptions({ mode: 'clone', shape: ['learnerPublishInterval*0.5'] })).toThrow(/does not draw from .* use --mode sample/);
    expect(resolvePlanOptions({ mode: 'clone', shape: ['rosterSize=60', 'arrivals=surge(09:00,5m)'] }).shape?.terms).toHaveLength(2);
  });
});

describe('shapeModel', () => {
  const recorded = model.distribution('learnerPublishInterval')!;
  const shape = (terms: string[]) => parseShape(terms);

  it('multiplies, offsets and replaces distributions; the recorded model is untouched', () => {
    const half = shapeDistribution(recorded, 'learnerPublishInterval', shape(['learnerPublishInterval*0.5']))!;
    expect(half.summary.p50).toBeCloseTo(recorded.summary.p50 / 2, 6);
    expect(recorded.summary.p50).toBe(model.distribution('learnerPublishInterval')!.summary.p50);
    const plusOne = shapeDistribution(model.distribution('messagesPerPublish'), 'messagesPerPublish', shape(['messagesPerPublish+1']))!;
    const recordedMessages = model.distribution('messagesPerPublish')!.samples;
    expect(plusOne.summary.mean).toBeCloseTo(recordedMessages.reduce((a, b) => a + b, 0) / recordedMessages.length + 1, 6);
    const ten = shapeDistribution(model.distribution('proctorControlInterval'), 'proctorControlInterval', shape(['proctorControlInterval=10s']))!;
    expect([...ten.samples]).toEqual([10_000]);
    const logn = shapeDistribution(model.distribution('sessionDuration'), 'sessionDuration', shape(['sessionDuration=lognormal(median=40m,p90=70m)']))!;
    expect(logn.samples).toHaveLength(replacementPoints);
    expect(quantileSorted(logn.samples, 0.5) / 2_400_000).toBeCloseTo(1, 3);
    expect(quantileSorted(logn.samples, 0.9) / 4_200_000).toBeCloseTo(1, 3);
    // Composition in order: doubled, then five minutes more.
    const both = shapeDistribution(model.distribution('sessionDuration'), 'sessionDuration', shape(['sessionDuration*2', 'sessionDuration+5m']))!;
    expect(both.summary.p50).toBeCloseTo(model.distribution('sessionDuration')!.summary.p50 * 2 + 300_000, 3);
    // Counts stay whole and at least one; times at least zero.
    const fewer = shapeDistribution(model.distribution('rosterSize'), 'rosterSize', shape(['rosterSize-100']))!;
    expect(fewer.summary.max).toBe(1);
  });

  it('pollTimeout caps the recorded poll durations', () => {
    const capped = shapeModel(model, shape(['pollTimeout=10s']), 1).distribution('pollDuration')!;
    expect(capped.summary.max).toBe(10_000);
    expect(model.distribution('pollDuration')!.summary.max).toBeGreaterThan(10_000);
  });

  it('is the recorded model itself for an empty shape, and keeps its fingerprint otherwise', () => {
    expect(shapeModel(model, { terms: [] }, 1)).toBe(model);
    expect(shapeModel(model, shape(['rosterSize=60']), 1).overview().fingerprint).toBe(model.overview().fingerprint);
  });

  it('regroups the same watched learners into rosters of the shaped size', () => {
    const classes = [...model.classes()];
    const sixty = regroupClasses(classes, shapeDistribution(model.distribution('rosterSize'), 'rosterSize', shape(['rosterSize=60'])), 1);
    const learners = (cs: typeof classes) => cs.flatMap((c) => c.learners.map((l) => l.id)).sort((a, b) => a - b);
    expect(learners(sixty)).toEqual(learners(classes));
    const watched = sixty.filter((c) => c.proctor);
    expect(watched.slice(0, -1).every((c) => c.learners.length === 60)).toBe(true);
    expect(watched.length).toBeLessThan(classes.filter((c) => c.proctor).length);
    for (const c of watched) expect(c.proctor!.endMs).toBeGreaterThanOrEqual(Math.max(...c.learners.map((l) => l.endMs)));
  });

  it('surge: the arrival curve is the whole day inside the surge; arrivals*k scales only its range', () => {
    const zone = model.overview().timezone;
    const nine = DateTime.fromMillis(model.overview().span.startMs, { zone }).startOf('day').plus({ hours: 9 }).toMillis();
    const total = (a: { learners: number }[]) => a.reduce((s, m) => s + m.learners, 0);
    const surged = shapeModel(model, shape(['arrivals=surge(09:00,5m)']), 1).arrivals();
    expect(total(surged)).toBeCloseTo(total(model.arrivals()), 6);
    expect(total(surged.filter((m) => m.minuteMs >= nine && m.minuteMs < nine + 300_000))).toBeCloseTo(total(model.arrivals()), 6);
    const scaled = shapeModel(model, shape(['arrivals*1.5@09:00-10:00']), 1).arrivals();
    const inHour = (a: typeof scaled) => total(a.filter((m) => m.minuteMs >= nine && m.minuteMs < nine + 3_600_000));
    expect(inHour(scaled)).toBeCloseTo(1.5 * inHour(model.arrivals()), 6);
    expect(total(scaled) - inHour(scaled)).toBeCloseTo(total(model.arrivals()) - inHour(model.arrivals()), 6);
  });

  it('a surge late in the day grows the span so no learner is lost', () => {
    const late = shapeModel(model, shape(['arrivals=surge(16:50,5m)']), 1);
    expect(late.overview().span.endMs).toBeGreaterThan(model.overview().span.endMs);
    const total = (a: { learners: number }[]) => a.reduce((s, m) => s + m.learners, 0);
    expect(total(late.arrivals())).toBeCloseTo(total(model.arrivals()), 6);
    const joins = (m: typeof model) => collect(createPlan(m, resolvePlanOptions({ window: 'all', seed: 2 }))).learnerJoins;
    const shaped = collect(plan({ window: 'all', seed: 2, shape: ['arrivals=surge(16:50,5m)'] }));
    expect(shaped.problems).toEqual([]);
    expect(Math.abs(shaped.learnerJoins / joins(model) - 1)).toBeLessThan(0.03);
  });

  it('refuses a surge outside the recorded day, naming it and the day', () => {
    expect(() => createPlan(model, resolvePlanOptions({ shape: ['arrivals=surge(05:00,5m)'] }))).toThrow(/arrivals=surge\(05:00,5m\)': the surge starts outside the recorded day \(07:00-/);
  });
});

describe('shaped plans against the fixture model (the issue\'s "done when")', () => {
  it('learnerPublishInterval*0.5 doubles the planned publishes (within 5%)', () => {
    const base = collect(plan({ window: 'all', seed: 4 }));
    const shaped = collect(plan({ window: 'all', seed: 4, shape: ['learnerPublishInterval*0.5'] }));
    expect(shaped.problems).toEqual([]);
    expect(shaped.publishes / base.publishes).toBeGreaterThan(2 * 0.95);
    expect(shaped.publishes / base.publishes).toBeLessThan(2 * 1.05);
    expect(shaped.learnerJoins).toBe(base.learnerJoins);
  });

  it('rosterSize=60 gives a mean roster of 60 (within 1) with the learner count unchanged (within 2%), in both modes', () => {
    for (const mode of ['sample', 'clone'] as const) {
      const base = collect(plan({ mode, window: 'all', seed: 2, scale: 3 }));
      const shaped = collect(plan({ mode, window: 'all', seed: 2, scale: 3, shape: ['rosterSize=60'] }));
      expect(shaped.problems).toEqual([]);
      const mean = shaped.rosterSizes.reduce((a, b) => a + b, 0) / shaped.rosterSizes.length;
      // Clone mode: the last roster of the day is the remainder; every other is 60.
      expect(Math.abs(mean - 60)).toBeLessThan(mode === 'sample' ? 1 : 3);
      expect(Math.abs(shaped.learnerJoins / base.learnerJoins - 1)).toBeLessThan(mode === 'clone' ? 0.001 : 0.02);
      expect(shaped.proctorJoins).toBeLessThan(base.proctorJoins / 2);
    }
  });

  it('arrivals=surge(09:00,5m) puts at least 90% of arrivals in that window, in both modes', () => {
    for (const mode of ['sample', 'clone'] as const) {
      const p = plan({ mode, window: 'all', shape: ['arrivals=surge(09:00,5m)'] });
      const nine = DateTime.fromMillis(p.window.startMs, { zone: model.overview().timezone }).startOf('day').plus({ hours: 9 }).toMillis() - p.window.startMs;
      let inside = 0;
      let all = 0;
      for (const e of p.events()) {
        if (e.kind !== 'learnerJoin') continue;
        all++;
        if (e.atMs >= nine && e.atMs < nine + 300_000) inside++;
      }
      expect(all).toBeGreaterThan(1000);
      expect(inside / all).toBeGreaterThanOrEqual(0.9);
    }
  });

  it('arrivals*1.5@09:00-10:00 adds half again the learners who join in that hour and no others', () => {
    for (const mode of ['sample', 'clone'] as const) {
      const count = (shape: string[]) => {
        const p = plan({ mode, window: 'all', seed: 3, scale: 4, shape });
        const nine = DateTime.fromMillis(p.window.startMs, { zone: model.overview().timezone }).startOf('day').plus({ hours: 9 }).toMillis() - p.window.startMs;
        let hour = 0;
        let all = 0;
        for (const e of p.events()) if (e.kind === 'proctorJoin') (e.atMs >= nine + 600_000 && e.atMs < nine + 3_000_000 ? hour++ : all++);
        return { hour, rest: all };
      };
      const base = count([]);
      const more = count(['arrivals*1.5@09:00-10:00']);
      expect(more.hour / base.hour).toBeGreaterThan(1.2);
      expect(more.hour / base.hour).toBeLessThan(1.8);
      expect(Math.abs(more.rest / base.rest - 1)).toBeLessThan(0.15);
    }
  });

  it('a shaped sample plan matches the shaped distributions (KS < 0.05), and is deterministic', () => {
    const raw = { window: 'all', seed: 5, scale: 2, shape: ['learnerPublishInterval*0.5', 'messagesPerPublish+1'] };
    const c = collect(plan(raw));
    const shaped = shapeModel(model, parseShape(raw.shape), 5);
    expect(c.publishGaps.length).toBeGreaterThan(50_000);
    expect(ksDistance(c.publishGaps, shaped.distribution('learnerPublishInterval')!.samples)).toBeLessThan(0.05);
    expect(ksDistance(c.publishGaps, model.distribution('learnerPublishInterval')!.samples)).toBeGreaterThan(0.2);
    expect(collect(plan(raw)).publishes).toBe(c.publishes);
  });
});
