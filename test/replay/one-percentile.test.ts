import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as hdr from 'hdr-histogram-js';
import type { StreamCounts } from '../../replay/delivery.js';
import { newLatencyHistogram, recordMs } from '../../replay/delivery.js';
import { formatSummary } from '../../replay/display.js';
import { emptyRequestCounts } from '../../replay/metrics.js';
import { parseSlo } from '../../replay/slo.js';
import { summarizeRun } from '../../replay/verdict.js';
import { getRun } from '../../db/run-queries.js';
import { loadRunData } from '../../report/run-figures.js';
import { insertRun, openTemp, tempDir } from '../report/fixture-runs.js';

// One p95: the summary, its text, the SLO line and the stored-run figures of runs/compare/report
// all give the percentile over every expected pair, a lost pair ranking last (docs/slo.md).

function counts(expected: number, delivered: number, lost: number, within: number): StreamCounts {
  return { expected, delivered, duplicates: 0, lost, late: 0, unresolved: 0, withdrawn: 0, within: [within] };
}

describe('the summary shows one p95', () => {
  // 96 learner deliveries at 1..96 ms and 4 lost: p95 over expected is rank 95 of 100 = 95 ms,
  // p99 (rank 99) falls among the lost and shows as the loss limit. 100 control deliveries at 1 ms.
  const learner = newLatencyHistogram();
  const control = newLatencyHistogram();
  const all = newLatencyHistogram();
  for (let i = 1; i <= 96; i++) [learner, all].forEach((h) => recordMs(h, i));
  for (let i = 0; i < 100; i++) [control, all].forEach((h) => recordMs(h, 1));
  const summary = summarizeRun({
    run: 1,
    settings: { release: null, target: 'http://127.0.0.1:1', scale: 1, mode: 'clone', window: 'test', speed: 1, seed: 1 },
    protocol: 'v1',
    slo: parseSlo('p95<=2s, lost>15s'),
    generatorLagLimitMs: 1000,
    status: 'finished',
    stopReason: 'plan finished',
    plannedMs: undefined,
    loadMs: 10_000,
    counts: { learner: counts(100, 96, 4, 96), control: counts(100, 100, 0, 100) },
    histograms: { learner, control, all },
    requests: { ...emptyRequestCounts(), publishRequests: 100, subscribeRequests: 100, publishedMessages: 200 },
    errorsByKind: {},
    scheduleLag: newLatencyHistogram(),
    loopDelayP99Ms: 0,
    learners: 10,
    proctors: 1,
  });

  it('ranks lost pairs last in every percentile; max is the slowest delivery', () => {
    expect(summary.streams.learner.latencyMs.p95).toBeCloseTo(95, 0);
    expect(summary.streams.learner.latencyMs.p99).toBe(15_000);
    expect(summary.streams.learner.latencyMs.max).toBeCloseTo(96, 0);
    expect(summary.streams.control.latencyMs.p99).toBe(1);
    // All: 200 expected, 196 delivered; p99 is rank 198, among the 4 lost.
    expect(summary.latencyMs.p99).toBe(15_000);
    expect(summary.latencyMs.max).toBeCloseTo(96, 0);
  });

  it('is the number the SLO line observes', () => {
    const clause = summary.verdict.clauses.find((c) => c.expression === 'p95<=2s')!;
    expect(clause.observed).toBe(summary.latencyMs.p95);
  });

  it('names the definition in the text', () => {
    expect(formatSummary(summary)).toMatch(/latency over all expected pairs: p50 \S+ p95 \S+ p99 15\.0s, slowest delivered 96ms/);
  });
});

describe('stored runs show the same p95', () => {
  it('recomputes the figures of runs/compare/report over expected pairs from the stored histogram and counts', () => {
    const dir = tempDir('rehearse-one-p95-');
    const { db } = openTemp(dir);
    try {
      // 40 lost pairs of ~3000: p99 falls among them (a run stored before its summary ranked them last).
      const id = insertRun(db, { seconds: 10, lost: 40 });
      const run = getRun(db, id)!;
      const delivery = hdr.decodeFromCompressedBase64(
        (db.prepare("SELECT encoded FROM run_histograms WHERE run_id = ? AND name = 'delivery'").pluck().get(id) as string),
        32,
        false,
      );
      const figures = loadRunData(db, run).figures;
      expect(run.summary!.expected).toBe(delivery.totalCount + 40);
      expect(figures.latency.all!.p99).toBe(15_000);
      // p95 is rank ceil(0.95 expected) among the delivered: a higher share of them than 95%, so never below the delivered-only p95.
      expect(figures.latency.all!.p95).toBeGreaterThan(delivery.getValueAtPercentile(95) / 1000);
      const rank = Math.ceil(0.95 * run.summary!.expected);
      expect(figures.latency.all!.p95).toBeCloseTo(delivery.getValueAtPercentile((rank / delivery.totalCount) * 100) / 1000, 6);
      expect(figures.latency.all!.max).toBeCloseTo(delivery.maxValue / 1000, 6);
    } finally {
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
