import * as hdr from 'hdr-histogram-js';
import { beforeAll, describe, expect, it } from 'vitest';
import type { PlanEvent } from '../../replay/plan-types.js';
import { newLatencyHistogram, recordMs } from '../../replay/delivery.js';
import { decodeLatencyHistogram, encodeHistogram, mergeProblems, mergeResults, mergeSecondRows, type LabeledResult } from '../../replay/merge-results.js';
import { forTransport, histogramNames, parseRunResult, settingsFingerprint, type ResultSecond, type RunResult } from '../../replay/result.js';
import { startReplay } from '../../replay/runner.js';
import { summarizeResult } from '../../replay/verdict.js';
import { seededRandom } from '../../stats/random.js';
import { FakeBus, fakeTime, type FakeBusOptions } from './fake-target.js';
import { syntheticPlan, type SyntheticPlan } from './synthetic-plan.js';

// Issue 11's promise, pure: the merged result of N shards equals the one-process run of the same
// plan (counts exact, quantiles within HDR precision), and a merge refuses shards that are not
// one rehearsal's, naming them. The runs are on the in-memory bus and hand-driven time; its
// faults are keyed by topic and a message's order on its topic, so they hit the same messages
// however the plan is split.

const plan: SyntheticPlan = { classes: 9, learnersPerClass: 4, durationMs: 3000, publishEveryMs: 250, controlEveryMs: 200 };
const runDescription = { scale: 1, mode: 'clone', window: 'test', speed: 1, seed: 1, modelFingerprint: 'test' };
const nonce = 'rmerge';

/** About 4% of messages lost and 4% delivered twice, the same ones in every split. */
const faults: FakeBusOptions['fate'] = (topic, nth) => {
  const x = seededRandom(`${topic}#${nth}`).next();
  return x < 0.04 ? 'drop' : x < 0.08 ? 'dup' : 'ok';
};

/** The class an event belongs to: 'c7.l2' and 'c7.p' are class 7 (synthetic-plan.ts's ids). */
function classIndex(e: PlanEvent): number {
  const actor = e.kind === 'proctorJoin' || e.kind === 'learnerJoin' ? e.classId : e.kind === 'publish' || e.kind === 'learnerLeave' ? e.learner : e.proctor;
  const m = /^c(\d+)/.exec(actor);
  if (!m) throw new Error(`no class in ${actor}`);
  return Number(m[1]);
}

/** One run to its end on its own bus and clock; its portable result. */
async function portableRun(events: PlanEvent[], shard: { index: number; count: number } | undefined, bus: FakeBusOptions = {}): Promise<RunResult> {
  const time = fakeTime();
  const run = startReplay({
    target: 'http://fake.invalid',
    targetImpl: new FakeBus(bus),
    preflight: false,
    clock: time.clock,
    timers: time.timers,
    events,
    run: runDescription,
    runNonce: nonce,
    pollTimeoutS: 5,
    backoff: { baseMs: 50, capMs: 400 },
    // The event loop is real; only the generator's schedule is on fake time.
    generatorLagLimitMs: 1e9,
    // As every real run (replay/rehearse.ts): sessions last to the plan's end, not to the end of
    // this process's share of it. Without it a shard whose last event comes early ends its
    // sessions early, and a long-poll the whole plan would still have open is not sent.
    durationMs: plan.durationMs,
    ...(shard ? { shard } : {}),
  });
  let settled = false;
  run.finished.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let step = 0; step < 600 && !settled; step++) await time.run(100);
  expect(settled).toBe(true);
  await run.finished;
  const result = run.portableResult;
  if (!result) throw new Error('the run finished without a portable result');
  return result;
}

async function shardRuns(bus: FakeBusOptions): Promise<LabeledResult[]> {
  const events = syntheticPlan(plan);
  const out: LabeledResult[] = [];
  for (let index = 0; index < 3; index++) {
    const mine = events.filter((e) => classIndex(e) % 3 === index);
    out.push({ source: `shard-${index}.json`, result: await portableRun(mine, { index, count: 3 }, bus) });
  }
  return out;
}

function percentiles(encoded: string): { p50: number; p95: number; p99: number; max: number; count: number } {
  const h = decodeLatencyHistogram(encoded);
  return { p50: h.getValueAtPercentile(50), p95: h.getValueAtPercentile(95), p99: h.getValueAtPercentile(99), max: h.maxValue, count: h.totalCount };
}

/** Equal within what a 3-significant-digit HDR histogram can tell apart. */
function expectWithinHdr(actual: number, expected: number, what: string): void {
  expect(Math.abs(actual - expected), `${what}: ${actual} vs ${expected}`).toBeLessThanOrEqual(Math.max(1, expected * 1e-3));
}

/** A copy of a result, changed, with its fingerprint recomputed as a real run's would be. */
function variant(r: RunResult, change: (copy: RunResult) => void): RunResult {
  const copy = structuredClone(r);
  change(copy);
  copy.fingerprint = settingsFingerprint(copy.settings);
  return copy;
}

let whole: RunResult;
let shards: LabeledResult[];
let cleanShards: LabeledResult[];

beforeAll(async () => {
  whole = await portableRun(syntheticPlan(plan), undefined, { fate: faults });
  shards = await shardRuns({ fate: faults });
  cleanShards = await shardRuns({});
}, 60_000);

describe('mergeResults is exact: N shards equal one process', () => {
  it('the faults did something, and every class ran in exactly one shard', () => {
    expect(whole.streams.learner.lost + whole.streams.control.lost).toBeGreaterThan(0);
    expect(whole.streams.learner.duplicates + whole.streams.control.duplicates).toBeGreaterThan(0);
    expect(shards.map((s) => s.result.proctors)).toEqual([3, 3, 3]);
    expect(shards.every((s) => s.result.requests.publishedMessages > 0)).toBe(true);
  });

  it('every count is equal: streams, requests, sessions, errors', () => {
    const merged = mergeResults(shards);
    expect(merged.shards.map((s) => `${s.index}/${s.count}`)).toEqual(['0/3', '1/3', '2/3']);
    expect(merged.streams).toEqual(whole.streams);
    expect(merged.requests).toEqual(whole.requests);
    expect({ learners: merged.learners, proctors: merged.proctors, ignored: merged.ignored, errors: merged.errorsByKind }).toEqual({
      learners: whole.learners,
      proctors: whole.proctors,
      ignored: whole.ignored,
      errors: whole.errorsByKind,
    });
    expect(merged.status).toBe(whole.status);
    expect(merged.stopReason).toBe(whole.stopReason);
    // Per-second deliveries add up to the same total, second by second.
    const perSecond = (r: RunResult) => r.seconds.map((s) => [s.second, s.deliveries, s.duplicates, s.lost, s.publishes]);
    expect(perSecond(merged)).toEqual(perSecond(whole));
  });

  it('delivery and schedule-lag percentiles are equal within HDR precision', () => {
    const merged = mergeResults(shards);
    for (const name of histogramNames.filter((n) => n !== 'request.poll' && n !== 'request.open' && n !== 'request.publish')) {
      const m = percentiles(merged.histograms[name]);
      const w = percentiles(whole.histograms[name]);
      expect(m.count, `${name} count`).toBe(w.count);
      expect(w.count, `${name} is not empty`).toBeGreaterThan(0);
      for (const k of ['p50', 'p95', 'p99', 'max'] as const) expectWithinHdr(m[k], w[k], `${name} ${k}`);
    }
  });

  it('summarizeResult gives the merged run the one-process verdict', () => {
    const merged = summarizeResult(mergeResults(shards), { run: 1 });
    const one = summarizeResult(whole, { run: 1 });
    expect(one.pass).toBe(false); // losses and duplicates: the verdict has something to agree on
    expect(merged.verdict).toEqual(one.verdict);
    const { shards: mergedShards, ...mergedRest } = merged;
    expect(mergedShards).toEqual({ count: 3, indexes: [0, 1, 2] });
    expect(mergedRest).toEqual(one);
  });
});

describe('mergeProblems names what is not one rehearsal', () => {
  it('accepts the three shards, in any order', () => {
    expect(mergeProblems(shards)).toEqual([]);
    expect(mergeProblems([shards[2]!, shards[0]!, shards[1]!])).toEqual([]);
  });

  it('different settings: the field and both files', () => {
    const other = { source: 'scale-2.json', result: variant(shards[1]!.result, (r) => (r.settings.plan = { ...r.settings.plan, scale: 2 })) };
    const problems = mergeProblems([shards[0]!, other, shards[2]!]);
    expect(problems).toEqual(['scale-2.json is from a different rehearsal than shard-0.json: settings.plan.scale is 2 there and 1 here']);
    expect(() => mergeResults([shards[0]!, other, shards[2]!])).toThrow(/cannot merge: .*settings\.plan\.scale/);
  });

  it('a missing shard', () => {
    expect(mergeProblems([shards[0]!, shards[2]!])).toEqual([
      'shard 1/3 is missing: the merged run would silently miss 1 of 3 shares of the load',
    ]);
    expect(mergeProblems([shards[0]!, shards[2]!], { partial: true })).toEqual([]);
  });

  it('a duplicated shard, given under two names', () => {
    const again = { source: 'copy-of-shard-1.json', result: shards[1]!.result };
    expect(mergeProblems([...shards, again])).toEqual([
      'shard 1/3 is given 2 times (shard-1.json, copy-of-shard-1.json): each shard must be merged once',
    ]);
  });

  it('shards split different ways (/2 and /3)', () => {
    const halves = { source: 'half-0.json', result: variant(shards[0]!.result, (r) => (r.shards = [{ ...r.shards[0]!, count: 2 }])) };
    const problems = mergeProblems([halves, shards[1]!, shards[2]!]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^the shards were split different ways \(\/2, \/3\): half-0\.json has 0\/2; shard-1\.json has 1\/3; shard-2\.json has 2\/3$/);
  });
});

describe('parseRunResult', () => {
  const line = (): string => JSON.stringify(shards[0]!.result);

  it('reads a whole JSON file, compact or pretty-printed', () => {
    expect(parseRunResult(`${line()}\n`, 'a.json')).toEqual(shards[0]!.result);
    expect(parseRunResult(JSON.stringify(shards[0]!.result, null, 2), 'a.json')).toEqual(shards[0]!.result);
  });

  it('finds the one result line in a log (kubectl logs mixes stderr in)', () => {
    const log = ['rehearse: run 0 against http://bus:8080 (v1, topics r1.*), SLO p95<=2s', line(), 'rehearse: duration reached; draining', ''].join('\n');
    expect(parseRunResult(log, 'pod-0.log')).toEqual(shards[0]!.result);
  });

  it('finds the result line when it is the first line of a log', () => {
    expect(parseRunResult(`${line()}\nrehearse: done\n`, 'pod-0.log')).toEqual(shards[0]!.result);
  });

  it('refuses a log with two result lines, naming them', () => {
    const log = ['rehearse: start', line(), 'rehearse: again', JSON.stringify(shards[1]!.result)].join('\n');
    expect(() => parseRunResult(log, 'both.log')).toThrow("both.log: 2 run results in one file (lines 2, 4); give each shard's result its own file");
  });

  it('refuses a result line cut short, naming file:line', () => {
    const log = ['rehearse: start', line().slice(0, 300)].join('\n');
    expect(() => parseRunResult(log, 'cut.log')).toThrow(/^cut\.log:2: not valid JSON \(.*\); was the file cut short\?$/);
  });

  it('refuses another version of the format, naming the field', () => {
    const v2 = { ...shards[0]!.result, version: 2 };
    expect(() => parseRunResult(JSON.stringify(v2), 'v2.json')).toThrow(/^v2\.json: field version is 2; this rehearse reads version 1/);
  });

  it('refuses a file with no result in it', () => {
    expect(() => parseRunResult('rehearse: error: no route to host\n', 'failed.log')).toThrow(/^failed\.log: no rehearse run result in it/);
  });
});

describe('mergeSecondRows', () => {
  it('reads percentiles from the added histograms: those of one histogram holding both seconds', () => {
    const rng = seededRandom('merge-second-rows');
    const a = newLatencyHistogram();
    const b = newLatencyHistogram();
    const both = newLatencyHistogram();
    const lagA = newLatencyHistogram();
    const lagB = newLatencyHistogram();
    const lagBoth = newLatencyHistogram();
    // Two shards with different shapes: one fast, one with a slow tail.
    for (let i = 0; i < 900; i++) {
      const ms = 5 + rng.next() * 40;
      recordMs(a, ms);
      recordMs(both, ms);
      recordMs(lagA, ms / 10);
      recordMs(lagBoth, ms / 10);
    }
    for (let i = 0; i < 100; i++) {
      const ms = 200 + rng.next() * 3000;
      recordMs(b, ms);
      recordMs(both, ms);
      recordMs(lagB, ms / 10);
      recordMs(lagBoth, ms / 10);
    }
    const row = (h: hdr.Histogram, lag: hdr.Histogram, deliveries: number): ResultSecond => ({
      second: 4,
      virtualUsers: 10,
      openPolls: 5,
      publishes: 7,
      subscribes: 3,
      deliveries,
      duplicates: 1,
      lost: 0,
      errors: 0,
      retries: 0,
      p50Ms: h.getValueAtPercentile(50) / 1000,
      p95Ms: h.getValueAtPercentile(95) / 1000,
      p99Ms: h.getValueAtPercentile(99) / 1000,
      maxMs: h.maxValue / 1000,
      scheduleLagP99Ms: lag.getValueAtPercentile(99) / 1000,
      loopDelayP99Ms: deliveries === 900 ? 3 : 12,
      deliveryHistogram: encodeHistogram(h),
      scheduleLagHistogram: encodeHistogram(lag),
    });
    const merged = mergeSecondRows(4, [row(a, lagA, 900), row(b, lagB, 100)]);
    expect(merged.p50Ms).toBe(both.getValueAtPercentile(50) / 1000);
    expect(merged.p95Ms).toBe(both.getValueAtPercentile(95) / 1000);
    expect(merged.p99Ms).toBe(both.getValueAtPercentile(99) / 1000);
    // A decoded histogram knows the max only to its bucket: equal within HDR precision.
    expectWithinHdr(merged.maxMs! * 1000, both.maxValue, 'max');
    expect(merged.scheduleLagP99Ms).toBe(lagBoth.getValueAtPercentile(99) / 1000);
    // Neither shard's own p95 is the merged one: averaging would have been wrong.
    expect(merged.p95Ms).not.toBe(row(a, lagA, 900).p95Ms);
    expect(merged.p95Ms).not.toBe(row(b, lagB, 100).p95Ms);
    expect({ deliveries: merged.deliveries, duplicates: merged.duplicates, virtualUsers: merged.virtualUsers, loop: merged.loopDelayP99Ms }).toEqual({
      deliveries: 1000,
      duplicates: 2,
      virtualUsers: 20,
      loop: 12,
    });
    expect(decodeLatencyHistogram(merged.deliveryHistogram).totalCount).toBe(1000);
  });
});

describe('late shards', () => {
  const late = (ms: number): LabeledResult[] =>
    cleanShards.map((s, i) => (i === 1 ? { source: s.source, result: { ...s.result, shards: [{ ...s.result.shards[0]!, startLateMs: ms }] } } : s));

  it('on time, the clean shards pass', () => {
    const s = summarizeResult(mergeResults(cleanShards), { run: 1 });
    expect(s.verdict.reasons).toEqual([]);
    expect(s.pass).toBe(true);
  });

  it('a shard 5 s late fails the merged verdict, naming the shard', () => {
    const s = summarizeResult(mergeResults(late(5000)), { run: 1 });
    expect(s.pass).toBe(false);
    expect(s.verdict.reasons).toHaveLength(1);
    expect(s.verdict.reasons[0]).toMatch(/^a shard started after the common start \(1\/3 by 5\.0 s; limit 2\.0 s\)/);
  });

  it('a shard 500 ms late is clock noise: it passes', () => {
    const s = summarizeResult(mergeResults(late(500)), { run: 1 });
    expect(s.verdict.reasons).toEqual([]);
    expect(s.pass).toBe(true);
  });

  it('--max-late moves the limit', () => {
    expect(summarizeResult(mergeResults(late(500)), { run: 1, startLateLimitMs: 400 }).pass).toBe(false);
    expect(summarizeResult(mergeResults(late(5000)), { run: 1, startLateLimitMs: 6000 }).pass).toBe(true);
  });
});

describe('forTransport', () => {
  it('cuts fidelity samples to a seeded uniform subset and leaves what the verdict reads untouched', () => {
    const rng = seededRandom('transport-test');
    const values = Array.from({ length: 50_000 }, () => Math.round(rng.next() * 1e6));
    const big = variant(whole, (c) => {
      c.samples = { learnerPublishInterval: { count: 80_000, values }, rosterSize: { count: 3, values: [1, 2, 3] } };
    });
    const cut = forTransport(big, 10_000);
    const kept = cut.samples.learnerPublishInterval!;
    expect(kept.count).toBe(80_000);
    expect(kept.values).toHaveLength(10_000);
    const original = new Set(values);
    expect(kept.values.every((v) => original.has(v))).toBe(true);
    expect(cut.samples.rosterSize).toEqual({ count: 3, values: [1, 2, 3] });
    expect(forTransport(big, 10_000).samples.learnerPublishInterval!.values).toEqual(kept.values);
    // Uniform: the subset's median lands near the whole's (values are uniform on 0..1e6).
    const median = [...kept.values].sort((a, b) => a - b)[5000]!;
    expect(Math.abs(median - 500_000)).toBeLessThan(30_000);
    expect(cut.histograms).toEqual(big.histograms);
    expect(cut.streams).toEqual(big.streams);
    expect(cut.seconds).toEqual(big.seconds);
  });
});
