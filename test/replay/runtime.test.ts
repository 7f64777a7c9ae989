import { describe, expect, it } from 'vitest';
import type { RunSummary } from '../../db/run-types.js';
import type { PlanEvent } from '../../replay/plan-types.js';
import { startReplay, type ReplayInput, type ReplayRun } from '../../replay/runner.js';
import { FakeBus, fakeTime } from './fake-target.js';
import { expectedPairs, syntheticPlan, type SyntheticPlan } from './synthetic-plan.js';

// The runtime's parts (sessions, publishers, subscribers, metrics, verdict) against an in-memory
// bus behind the Target interface, on hand-driven time: no socket, no clock, exact counts.

const runDescription = { scale: 1, mode: 'clone', window: 'test', speed: 1, seed: 1, modelFingerprint: 'test' };
const small: SyntheticPlan = { classes: 2, learnersPerClass: 4, durationMs: 2000, publishEveryMs: 250, controlEveryMs: 200 };

async function replay(bus: FakeBus, events: Iterable<PlanEvent>, extra: Partial<ReplayInput> = {}, during?: (run: ReplayRun) => void): Promise<RunSummary> {
  const time = fakeTime();
  const run = startReplay({
    target: 'http://fake.invalid',
    targetImpl: bus,
    preflight: false,
    clock: time.clock,
    timers: time.timers,
    events,
    run: runDescription,
    pollTimeoutS: 5,
    backoff: { baseMs: 50, capMs: 400 },
    // The event loop is real; only the generator's schedule is on fake time.
    generatorLagLimitMs: 1e9,
    ...extra,
  });
  let settled = false;
  run.finished.then(
    () => (settled = true),
    () => (settled = true),
  );
  during?.(run);
  for (let step = 0; step < 600 && !settled; step++) await time.run(100);
  expect(settled).toBe(true);
  return run.finished;
}

describe('replay runtime on a fake target', () => {
  it('delivers every expected pair exactly once, with counts that match the plan', async () => {
    const bus = new FakeBus();
    const s = await replay(bus, syntheticPlan(small));
    expect(s.expected).toBe(expectedPairs(small));
    expect(s.delivered).toBe(s.expected);
    expect(s.published).toBe(bus.published.length);
    expect(s.lost).toBe(0);
    expect(s.duplicates).toBe(0);
    expect(s.requests.errors).toBe(0);
    expect(s.protocol).toBe('fake');
    expect(s.verdict.reasons).toEqual([]);
    expect(s.pass).toBe(true);
  });

  it('retries only the rest of a batch the target stored half-way, with the same ids', async () => {
    const bus = new FakeBus({ publishScript: [{ kind: 'retry', stored: 1, detail: 'ECONNRESET (socket hang up)' }] });
    // No controls, so the first call is a learner's batch of three.
    const plan = { ...small, messagesPerPublish: 3, controlEveryMs: 60_000 };
    const s = await replay(bus, syntheticPlan(plan));
    const first = bus.publishCalls[0]!;
    expect(first.length).toBe(3);
    const retried = bus.publishCalls.filter((c) => c.some((m) => first.some((f) => f.id === m.id)));
    expect(retried.map((c) => c.map((m) => m.id))).toEqual([first.map((m) => m.id), first.slice(1).map((m) => m.id)]);
    expect(s.requests.errors).toBe(1);
    expect(s.requests.retries).toBe(1);
    expect(s.requests.errorsByKind).toEqual({ 'publish network ECONNRESET': { count: 1, example: 'ECONNRESET (socket hang up)' } });
    expect(s.expected).toBe(expectedPairs(plan));
    expect(s.delivered).toBe(s.expected);
    expect(s.duplicates).toBe(0);
  });

  it('never retries a refused publish: its pairs end lost and the error is counted by status', async () => {
    const bus = new FakeBus({ publishScript: [{ kind: 'fatal', status: 403, stored: 0, detail: 'publish: HTTP 403: forbidden' }] });
    const s = await replay(bus, syntheticPlan(small));
    const refused = bus.publishCalls[0]!;
    expect(bus.publishCalls.filter((c) => c[0]!.id === refused[0]!.id)).toHaveLength(1);
    expect(s.lost).toBe(refused.length); // one subscriber per message in this plan
    expect(s.delivered).toBe(s.expected - refused.length);
    expect(s.requests.errorsByKind?.['publish HTTP 403']?.count).toBe(1);
    expect(s.pass).toBe(false);
  });

  it('splits a roster larger than maxTopicsPerPoll over several polls, all delivered', async () => {
    const bus = new FakeBus({ maxTopicsPerPoll: 3 });
    const plan = { ...small, classes: 1, learnersPerClass: 7 };
    const s = await replay(bus, syntheticPlan(plan));
    const proctorSessions = bus.sessions.filter((topics) => topics.every((t) => t.endsWith('.events')));
    expect(proctorSessions.map((t) => t.length)).toEqual([3, 3, 1]);
    expect(s.delivered).toBe(expectedPairs(plan));
    expect(s.lost).toBe(0);
  });

  it('a proctor with nobody to watch polls nothing (no bad request, no error)', async () => {
    const bus = new FakeBus();
    const events: PlanEvent[] = [
      { kind: 'proctorJoin', atMs: 0, proctor: 'p0', classId: 'c0', roster: [] },
      ...syntheticPlan({ ...small, classes: 1 }).map((e) => ({ ...e, atMs: e.atMs + 1 })),
    ];
    const s = await replay(bus, events);
    expect(bus.sessions.some((topics) => topics.length === 0)).toBe(false);
    expect(s.proctors).toBe(2);
    expect(s.requests.errors).toBe(0);
    expect(s.pass).toBe(true);
  });

  it('fails a target that delivers on the wrong topic, even when every id arrives', async () => {
    const bus = new FakeBus({ deliver: (m) => ({ ...m, deliveredOn: `${m.topic}.elsewhere` }) });
    const s = await replay(bus, syntheticPlan(small));
    expect(s.delivered).toBe(0);
    expect(s.pass).toBe(false);
    expect(s.verdict.reasons.join('\n')).toMatch(/messages arrived on a topic they were not published to/);
  });

  it('flags a target that answers every poll at once with nothing, and backs off instead of spinning', async () => {
    const bus = new FakeBus({ neverHolds: true });
    const s = await replay(bus, syntheticPlan(small));
    const subscribers = small.classes * (small.learnersPerClass + 1);
    // Three instant answers, then a backoff of up to 50 ms (25 ms on average): at most ~120 polls a
    // second per subscriber over the 2 s load and the 15 s drain, where a spinning loop would never end.
    expect(bus.polls).toBeGreaterThan(subscribers * 17 * 20);
    expect(bus.polls).toBeLessThan(subscribers * 17 * 150);
    expect(s.pass).toBe(false);
    expect(s.verdict.reasons.join('\n')).toMatch(/it does not hold polls/);
  });

  it('a run stopped before its end never passes', async () => {
    const bus = new FakeBus();
    const s = await replay(bus, syntheticPlan({ ...small, durationMs: 20_000 }), { durationMs: 20_000 }, (run) => {
      run.on('tick', (t) => {
        if (t.second === 3) run.stop({ reason: 'interrupted (SIGINT)' });
      });
    });
    expect(s.status).toBe('interrupted');
    expect(s.lost).toBe(0);
    expect(s.pass).toBe(false);
    expect(s.verdict.reasons.join('\n')).toMatch(/stopped before its end \(interrupted \(SIGINT\) after 3 s of the planned 20 s\)/);
  });
});
