import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../db/open.js';
import { runScrapes } from '../../db/run-queries.js';
import { parseFault, startBus, type RunningBus } from '../../bus/index.js';
import { runReplay, type ReplayInput } from '../../replay/runner.js';
import { expectedPairs, syntheticPlan, type SyntheticPlan } from './synthetic-plan.js';

// End-to-end: the runtime against the real embedded bus (in-process, port 0), with and without
// injected faults. In the synthetic plan every message has exactly one expected subscriber, so a
// fault the bus injected into a message shows up as exactly one pair in the runtime's counts.

const buses: RunningBus[] = [];
afterEach(async () => {
  for (const b of buses.splice(0)) await b.close();
});

const run = { scale: 1, mode: 'clone', window: 'test', speed: 1, seed: 1, modelFingerprint: 'test' };
// ~350 requests/s: light enough that a CI machine busy with other suites does not become the bottleneck.
const plan: SyntheticPlan = { classes: 8, learnersPerClass: 10, durationMs: 2500, publishEveryMs: 250, controlEveryMs: 100 };

async function bus(faults?: string): Promise<RunningBus> {
  const b = await startBus({ port: 0, seed: 7, ...(faults ? { faults: parseFault(faults) } : {}) });
  buses.push(b);
  return b;
}

function input(b: RunningBus, extra: Partial<ReplayInput> = {}): ReplayInput {
  // Other test files share the two cores: only the subject of each test decides its verdict.
  // The runtime is the subject here: no pre-flight message may take a fault from the bus's seeded stream.
  return { target: b.url, events: syntheticPlan(plan), run, preflight: false, pollTimeoutS: 5, backoff: { baseMs: 50, capMs: 400 }, generatorLagLimitMs: 1000, ...extra };
}

/** |observed - n p| within 4.5 binomial standard deviations (a false failure about once in 150k runs). */
function expectBinomial(observed: number, n: number, p: number): void {
  const sd = Math.sqrt(n * p * (1 - p));
  expect(Math.abs(observed - n * p)).toBeLessThanOrEqual(4.5 * sd + 1);
}

describe('replay against the embedded bus', () => {
  it('passes with no faults: every expected pair delivered exactly once', async () => {
    const b = await bus();
    // The subject here is delivery (all delivered, once). Other suites share the two cores of CI and
    // starve this process for a second at times, so the latency bound is loose; the fault tests
    // below check that latency is charged correctly.
    // Each request has its own abort signal: none collects a listener per request in flight.
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    let summary;
    try {
      summary = await runReplay(input(b, { slo: 'p95<=5s, lost>15s, duplicates=0' }));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning'))).toEqual([]);
    expect(summary.expected).toBe(expectedPairs(plan));
    expect(summary.published).toBe(summary.expected);
    expect(summary.delivered).toBe(summary.expected);
    expect(summary.lost).toBe(0);
    expect(summary.duplicates).toBe(0);
    expect(summary.requests.errors).toBe(0);
    expect(summary.streams.learner.expected).toBeGreaterThan(0);
    expect(summary.streams.control.expected).toBeGreaterThan(0);
    expect(summary.verdict.clauses.map((c) => c.pass)).toEqual([true, true, true]);
    expect(summary.pass).toBe(true);
  });

  it('counts dropped messages as lost, matching the injected rate, and fails', async () => {
    const b = await bus('drop=0.05');
    const summary = await runReplay(input(b, { slo: 'p95<=2s, lost>3s, duplicates=0', generatorLagLimitMs: 1000 }));
    const dropped = b.stats().faults.drop;
    expect(dropped).toBeGreaterThan(0);
    expect(summary.lost).toBe(dropped);
    expect(summary.delivered + summary.lost).toBe(summary.expected);
    expectBinomial(summary.lost, summary.expected, 0.05);
    expect(summary.duplicates).toBe(0);
    expect(summary.pass).toBe(false);
    expect(summary.verdict.clauses.find((c) => c.expression === 'lost>3s')).toMatchObject({ pass: false, observed: dropped });
  });

  it('counts duplicated messages as duplicates, matching the injected rate, and fails', async () => {
    const b = await bus('dup=0.03');
    const summary = await runReplay(input(b));
    const duplicated = b.stats().faults.dup;
    expect(duplicated).toBeGreaterThan(0);
    expect(summary.duplicates).toBe(duplicated);
    expectBinomial(summary.duplicates, summary.expected, 0.03);
    expect(summary.delivered).toBe(summary.expected);
    expect(summary.lost).toBe(0);
    expect(summary.pass).toBe(false);
    expect(summary.verdict.clauses.find((c) => c.expression === 'duplicates=0')?.pass).toBe(false);
  });

  it('charges delayed messages to latency: withinTarget drops by the injected rate and p95 fails', async () => {
    const b = await bus('delay=0.1:2500ms');
    const summary = await runReplay(input(b));
    const delayed = b.stats().faults.delay;
    expect(delayed).toBeGreaterThan(0);
    expectBinomial(delayed, summary.expected, 0.1);
    expect(summary.lost).toBe(0);
    expect(summary.delivered).toBe(summary.expected);
    // Every delayed pair is late (> 2 s); (almost) every other pair is on time.
    const late = summary.expected - Math.round(summary.withinTarget * summary.expected);
    expect(late).toBeGreaterThanOrEqual(delayed);
    expect(late).toBeLessThanOrEqual(delayed + Math.ceil(0.02 * summary.expected));
    expect(summary.latencyMs.max).toBeGreaterThanOrEqual(2500);
    expect(summary.verdict.clauses.find((c) => c.expression === 'p95<=2s')).toMatchObject({ pass: false });
    expect(summary.pass).toBe(false);
  });

  it('retries 503s with the same message id: no loss, no duplicates, errors match the injected count', async () => {
    const b = await bus('error=0.1');
    const summary = await runReplay(input(b, { slo: 'p95<=2s, lost>15s, duplicates=0, errors<=1%' }));
    const injected = b.stats().faults.error;
    expect(injected).toBeGreaterThan(0);
    expect(summary.requests.errors).toBe(injected);
    expectBinomial(summary.requests.errors, summary.requests.publish + summary.requests.subscribe, 0.1);
    expect(summary.requests.retries).toBeGreaterThan(0);
    expect(summary.requests.retries).toBeLessThanOrEqual(summary.requests.errors);
    expect(summary.lost).toBe(0);
    expect(summary.duplicates).toBe(0);
    expect(summary.delivered).toBe(summary.expected);
    expect(summary.verdict.clauses.find((c) => c.expression === 'errors<=1%')?.pass).toBe(false);
    expect(summary.pass).toBe(false);
  });

  it('says plainly when the generator, not the target, was the bottleneck', async () => {
    const b = await bus();
    const events = syntheticPlan({ ...plan, classes: 2, durationMs: 1500 });
    // A plan source that hogs the event loop (as an overloaded generator would) for 400 ms, twice.
    function* hogging(): Generator<(typeof events)[number]> {
      for (const [i, e] of events.entries()) {
        if (i === Math.floor(events.length / 3) || i === Math.floor((2 * events.length) / 3)) {
          const until = performance.now() + 400;
          while (performance.now() < until) {
            // busy: nothing else in this process runs
          }
        }
        yield e;
      }
    }
    const summary = await runReplay(input(b, { events: hogging(), generatorLagLimitMs: 100 }));
    expect(summary.generatorBound).toBe(true);
    expect(summary.scheduleLagMs.max).toBeGreaterThan(100);
    expect(summary.pass).toBe(false);
    expect(summary.verdict.reasons.join('\n')).toMatch(/the generator, not the target, was the bottleneck/);
  });

  it("stores the target's Prometheus samples when asked to scrape (--scrape)", async () => {
    const b = await bus();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rehearse-scrape-'));
    try {
      const db = openDatabase(path.join(dir, 'runs.db'));
      const summary = await runReplay(
        input(b, { events: syntheticPlan({ ...plan, classes: 2, durationMs: 1200 }), db, scrape: { url: `${b.url}/metrics`, intervalMs: 200 } }),
      );
      const rows = db.prepare('SELECT at_ms AS atMs, metric, value FROM run_scrapes WHERE run_id = ? ORDER BY at_ms').all(summary.run) as Array<{ atMs: number; metric: string; value: number }>;
      expect(runScrapes(db, summary.run)).toHaveLength(rows.length);
      const metrics = new Set(rows.map((r) => r.metric));
      expect(metrics.size).toBeGreaterThan(3);
      const atMs = [...new Set(rows.map((r) => r.atMs))];
      expect(atMs.length).toBeGreaterThanOrEqual(3);
      expect(atMs[0]).toBeLessThan(200);
      db.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('never passes vacuously: a target that accepts nothing fails the run with the reason', async () => {
    const b = await bus('error=1');
    const summary = await runReplay(input(b, { events: syntheticPlan({ ...plan, classes: 2, durationMs: 800 }) }));
    expect(summary.published).toBe(0);
    expect(summary.pass).toBe(false);
    expect(summary.verdict.reasons.join('\n')).toMatch(/accepted no message/);
    expect(summary.verdict.reasons.join('\n')).toMatch(/most requests failed/);
  });
});
