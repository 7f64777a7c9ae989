// The run's verdict and summary from what was counted: pure (counts and histograms in, a
// RunSummary out), so every reason a run fails can be tested without a clock or a socket.
// A run passes only when every SLO clause holds AND the run proved something: a partial,
// misrouted, rewritten or generator-bound run fails with the reason, never a quiet PASS.

import type * as hdr from 'hdr-histogram-js';
import { decodeLatencyHistogram } from './merge-results.js';
import type { RunResult } from './result.js';
import type { LatencyMs, RunSettings, RunStatus, RunSummary, StreamSummary, Verdict } from '../db/run-types.js';
import type { StreamCounts } from './delivery.js';
import { percentileMs } from './delivery.js';
import type { ErrorKind, RequestCounts } from './metrics.js';
import { evaluateSlo, parseSlo, percentileOverExpected, type Slo, type StreamOutcome } from './slo.js';

export interface VerdictInput {
  run: number;
  settings: RunSettings;
  protocol: string;
  slo: Slo;
  generatorLagLimitMs: number;
  status: RunStatus;
  /** Why the load stopped: 'duration reached', 'plan finished', 'interrupted (SIGINT)', ... */
  stopReason: string;
  /** Planned load time (ms), when the run had one. */
  plannedMs: number | undefined;
  /** Load time actually run (ms). */
  loadMs: number;
  counts: { learner: StreamCounts; control: StreamCounts };
  histograms: { learner: hdr.Histogram; control: hdr.Histogram; all: hdr.Histogram };
  requests: RequestCounts;
  errorsByKind: Record<string, ErrorKind>;
  /** The first protocol violation seen, in words. */
  firstViolation?: string | undefined;
  scheduleLag: hdr.Histogram;
  loopDelayP99Ms: number;
  learners: number;
  proctors: number;
  /** Shards that started their load after the agreed --start-at, beyond the allowed lateness. */
  lateShards?: Array<{ shard: string; lateMs: number }>;
  startLateLimitMs?: number;
  /** Which shards the run was (`0/1`: the whole plan in one process). */
  shards?: { count: number; indexes: number[] };
}

/** A bus that answers this share of polls at once with nothing is not holding long-polls. */
const fastEmptyShare = 0.2;
const fastEmptyMinimum = 50;

export function latency(h: hdr.Histogram): LatencyMs {
  if (h.totalCount === 0) return { p50: 0, p95: 0, p99: 0, max: 0 };
  return {
    p50: h.getValueAtPercentile(50) / 1000,
    p95: h.getValueAtPercentile(95) / 1000,
    p99: h.getValueAtPercentile(99) / 1000,
    max: h.maxValue / 1000,
  };
}

function outcome(counts: StreamCounts[], h: hdr.Histogram, thresholdsMs: readonly number[]): StreamOutcome {
  const sum = (f: (c: StreamCounts) => number): number => counts.reduce((a, c) => a + f(c), 0);
  const within = new Map<number, number>();
  thresholdsMs.forEach((t, i) => within.set(t, sum((c) => c.within[i]!)));
  return {
    expected: sum((c) => c.expected - c.unresolved),
    delivered: sum((c) => c.delivered),
    duplicates: sum((c) => c.duplicates),
    lost: sum((c) => c.lost),
    withinMs: within,
    latencyAt: (q) => (h.totalCount === 0 ? 0 : h.getValueAtPercentile(Math.min(100, q * 100)) / 1000),
  };
}

/**
 * Delivery latency as every run shows it: p50/p95/p99 over all expected pairs, a pair never
 * delivered ranking last and shown as the loss limit (the SLO's definition, docs/slo.md); max is
 * the slowest delivered pair.
 */
export function latencyOverExpected(o: StreamOutcome, h: hdr.Histogram, lossLimitMs: number): LatencyMs {
  const at = (q: number) => percentileOverExpected(o, q, lossLimitMs);
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), max: h.totalCount === 0 ? 0 : h.maxValue / 1000 };
}

function streamSummary(o: StreamOutcome, h: hdr.Histogram, slo: Slo): StreamSummary {
  const within = o.withinMs.get(slo.targetMs) ?? 0;
  return {
    expected: o.expected,
    delivered: o.delivered,
    duplicates: o.duplicates,
    lost: o.lost,
    withinTarget: o.expected === 0 ? 0 : within / o.expected,
    latencyMs: latencyOverExpected(o, h, slo.lossLimitMs),
  };
}

/** Every reason beyond the SLO clauses that this run proves nothing (or proves the target wrong). */
export function runReasons(i: VerdictInput, expected: number, generatorBound: boolean, lagP99: number): string[] {
  const r = i.requests;
  const reasons: string[] = [];
  const requests = r.publishRequests + r.subscribeRequests + r.openRequests;
  if (i.status === 'interrupted') {
    const planned = i.plannedMs !== undefined ? ` of the planned ${Math.round(i.plannedMs / 1000)} s` : '';
    reasons.push(`the run was stopped before its end (${i.stopReason} after ${Math.round(i.loadMs / 1000)} s${planned}): a partial run proves nothing about the planned load`);
  }
  if (i.status === 'failed') reasons.push(`the run failed (${i.stopReason}): what was measured is incomplete`);
  if (r.publishedMessages === 0) {
    reasons.push(`the target accepted no message (${r.publishRequests} publish requests, ${r.errors} errors): nothing was measured`);
  }
  if (requests > 0 && r.errors > requests / 2) {
    reasons.push(`most requests failed (${r.errors} errors in ${requests} requests): the run measured the failures, not delivery`);
  }
  if (expected === 0) {
    reasons.push('no delivery was expected (no proctor watched a publishing learner, no control reached a joined learner): nothing was measured');
  }
  if (r.misrouted > 0) {
    reasons.push(`${r.misrouted} messages arrived on a topic they were not published to: the target mixes up topics`);
  }
  if (r.protocolViolations > 0) {
    reasons.push(`${r.protocolViolations} delivered messages broke the protocol (first: ${i.firstViolation ?? 'unknown'}): the target's answers cannot be trusted`);
  }
  if (r.unidentified > 0) {
    reasons.push(`${r.unidentified} messages arrived without rehearse's id in the payload: does the bus pass message bodies through unchanged?`);
  }
  if (r.fastEmptyPolls >= fastEmptyMinimum && r.fastEmptyPolls > fastEmptyShare * r.subscribeRequests) {
    reasons.push(
      `the target answered ${r.fastEmptyPolls} of ${r.subscribeRequests} long-polls at once with nothing: it does not hold polls, so delivery is not measured as users see it`,
    );
  }
  if (generatorBound) {
    reasons.push(
      `the generator, not the target, was the bottleneck: schedule lag p99 ${lagP99.toFixed(1)} ms, event-loop delay p99 ${i.loopDelayP99Ms.toFixed(1)} ms ` +
        `(limit ${i.generatorLagLimitMs} ms); the target did not get the planned load. Run fewer virtual users per process (--scale, --shard).`,
    );
  }
  if (i.lateShards && i.lateShards.length > 0) {
    const list = i.lateShards.map((l) => `${l.shard} by ${(l.lateMs / 1000).toFixed(1)} s`).join(', ');
    reasons.push(
      `${i.lateShards.length === 1 ? 'a shard' : `${i.lateShards.length} shards`} started after the common start (${list}; limit ${((i.startLateLimitMs ?? 0) / 1000).toFixed(1)} s): ` +
        'the target did not get the planned load at the planned time (check the machines\' clocks, NTP, and how fast pods were scheduled)',
    );
  }
  const unresolved = i.counts.learner.unresolved + i.counts.control.unresolved;
  if (unresolved > 0) reasons.push(`${unresolved} pairs got no verdict: the run was stopped before its drain ended`);
  return reasons;
}

export function summarizeRun(i: VerdictInput): RunSummary {
  const { learner, control } = i.counts;
  const t = i.slo.thresholdsMs;
  const all = outcome([learner, control], i.histograms.all, t);
  const learnerO = outcome([learner], i.histograms.learner, t);
  const controlO = outcome([control], i.histograms.control, t);
  const r = i.requests;
  const requests = r.publishRequests + r.subscribeRequests + r.openRequests;
  const clauses = evaluateSlo(i.slo, { all, learner: learnerO, control: controlO, requests, errors: r.errors });
  const lagP99 = percentileMs(i.scheduleLag, 99) ?? 0;
  const generatorBound = lagP99 > i.generatorLagLimitMs || i.loopDelayP99Ms > i.generatorLagLimitMs;
  const reasons = runReasons(i, all.expected, generatorBound, lagP99);
  const pass = reasons.length === 0 && clauses.every((c) => c.pass);
  const verdict: Verdict = { pass, slo: i.slo.text, clauses, reasons };
  const overall = streamSummary(all, i.histograms.all, i.slo);
  return {
    run: i.run,
    ...i.settings,
    protocol: i.protocol,
    status: i.status,
    durationS: Math.round(i.loadMs / 100) / 10,
    learners: i.learners,
    proctors: i.proctors,
    published: r.publishedMessages,
    expected: all.expected,
    delivered: all.delivered,
    duplicates: all.duplicates,
    lost: all.lost,
    withinTarget: overall.withinTarget,
    latencyMs: overall.latencyMs,
    streams: {
      learner: streamSummary(learnerO, i.histograms.learner, i.slo),
      control: streamSummary(controlO, i.histograms.control, i.slo),
    },
    requests: {
      publish: r.publishRequests,
      subscribe: r.subscribeRequests,
      errors: r.errors,
      retries: r.retries,
      emptyPolls: r.emptyPolls,
      errorsByKind: i.errorsByKind,
    },
    scheduleLagMs: latency(i.scheduleLag),
    generatorBound,
    ...(i.shards && i.shards.count > 1 ? { shards: i.shards } : {}),
    pass,
    verdict,
  };
}

/** A lateness under this is clock skew and scheduling noise, not a late shard. */
export const defaultStartLateLimitMs = 2000;

/**
 * The verdict and summary of a portable result (one process's, or shards merged): the one path
 * every run is judged by, so a merged run and a one-process run of the same plan cannot differ
 * in how they are judged.
 */
export function summarizeResult(r: RunResult, o: { run: number; slo?: Slo; startLateLimitMs?: number }): RunSummary {
  const s = r.settings;
  const learner = decodeLatencyHistogram(r.histograms['delivery.learner']);
  const control = decodeLatencyHistogram(r.histograms['delivery.control']);
  const all = decodeLatencyHistogram(null);
  all.add(learner);
  all.add(control);
  const limit = o.startLateLimitMs ?? defaultStartLateLimitMs;
  const late = r.shards.filter((x) => x.startLateMs > limit).map((x) => ({ shard: `${x.index}/${x.count}`, lateMs: x.startLateMs }));
  return summarizeRun({
    run: o.run,
    settings: { release: s.release, target: s.target, scale: s.plan.scale, mode: s.plan.mode, window: s.plan.window, speed: s.plan.speed, seed: s.plan.seed },
    protocol: s.protocol,
    slo: o.slo ?? parseSlo(s.slo),
    generatorLagLimitMs: s.generatorLagLimitMs,
    status: r.status,
    stopReason: r.stopReason,
    plannedMs: s.durationMs ?? s.plan.plannedDurationMs,
    loadMs: r.loadMs,
    counts: r.streams,
    histograms: { learner, control, all },
    requests: r.requests,
    errorsByKind: r.errorsByKind,
    firstViolation: r.firstViolation ?? undefined,
    scheduleLag: decodeLatencyHistogram(r.histograms.scheduleLag),
    loopDelayP99Ms: r.generator.loopDelayP99Ms,
    learners: r.learners,
    proctors: r.proctors,
    lateShards: late,
    startLateLimitMs: limit,
    shards: { count: r.shards[0]?.count ?? 1, indexes: r.shards.map((x) => x.index) },
  });
}
