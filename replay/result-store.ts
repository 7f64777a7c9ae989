// A portable run result (replay/result.ts) into the runs tables, so `runs`, `compare` and
// `report` read a merged run exactly like a one-process one. The one-process runtime stores its
// seconds as they happen and its final parts from here; `merge` and `--workers` store a whole
// merged result through storeRunResult.

import * as hdr from 'hdr-histogram-js';
import type { Db } from '../db/open.js';
import { beginRun, type FinishedRun, type RunWriter } from '../db/run-store.js';
import type { RunSummary } from '../db/run-types.js';
import { decodeLatencyHistogram } from './merge-results.js';
import type { RunResult } from './result.js';

/** The histograms, counts and samples a finished run stores, from its result and its summary. */
export function storedResultParts(r: RunResult, s: RunSummary): Pick<FinishedRun, 'histograms' | 'counts' | 'samples'> {
  const all = decodeLatencyHistogram(r.histograms['delivery.learner']);
  all.add(decodeLatencyHistogram(r.histograms['delivery.control']));
  const { learner, control } = r.streams;
  const c = r.requests;
  const counts: Record<string, number> = {
    published: s.published,
    failedMessages: c.failedMessages,
    withdrawnMessages: c.withdrawnMessages,
    withdrawn: learner.withdrawn + control.withdrawn,
    expected: s.expected,
    delivered: s.delivered,
    duplicates: s.duplicates,
    lost: s.lost,
    late: learner.late + control.late,
    unresolved: learner.unresolved + control.unresolved,
    ignored: r.ignored,
    misrouted: c.misrouted,
    protocolViolations: c.protocolViolations,
    unidentified: c.unidentified,
    emptyPolls: c.emptyPolls,
    fastEmptyPolls: c.fastEmptyPolls,
    'learner.expected': s.streams.learner.expected,
    'learner.delivered': s.streams.learner.delivered,
    'learner.duplicates': s.streams.learner.duplicates,
    'learner.lost': s.streams.learner.lost,
    'control.expected': s.streams.control.expected,
    'control.delivered': s.streams.control.delivered,
    'control.duplicates': s.streams.control.duplicates,
    'control.lost': s.streams.control.lost,
    withinTarget: s.withinTarget,
    'requests.publish': s.requests.publish,
    'requests.subscribe': s.requests.subscribe,
    'requests.open': c.openRequests,
    errors: s.requests.errors,
    retries: s.requests.retries,
    learners: s.learners,
    proctors: s.proctors,
    planSkipped: c.planSkipped,
    durationS: s.durationS,
    lossLimitMs: r.settings.lossLimitMs,
    scrapeErrors: r.scrapeErrors,
    shards: r.shards.length,
    peakVirtualUsers: r.generator.peakVirtualUsers,
    peakRssBytes: r.generator.peakRssBytes,
    cpuSeconds: r.generator.cpuSeconds,
  };
  return {
    histograms: { delivery: hdr.encodeIntoCompressedBase64(all), ...r.histograms },
    counts,
    samples: Object.fromEntries(
      Object.entries(r.samples).map(([name, x]) => {
        const sorted = Float64Array.from(x.values);
        sorted.sort();
        return [name, { count: x.count, sorted }];
      }),
    ),
  };
}

export interface StoreGroup {
  /** Shared by every shard of one rehearsal (the runs table's group_id). */
  groupId: string;
  /** Every option as stored with the run (header values already removed). */
  options: Record<string, unknown>;
}

/** Begins the run row for a result that will be stored second by second (--workers). */
export function beginResultRun(db: Db, r: Pick<RunResult, 'settings' | 'startedAt'>, g: StoreGroup, shards: { index: number | null; count: number }): RunWriter {
  const s = r.settings;
  return beginRun(db, {
    release: s.release,
    target: s.target,
    scale: s.plan.scale,
    mode: s.plan.mode,
    window: s.plan.window,
    speed: s.plan.speed,
    seed: s.plan.seed,
    plannedDurationMs: s.durationMs ?? s.plan.plannedDurationMs ?? null,
    modelFingerprint: s.plan.modelFingerprint,
    rehearseVersion: s.rehearseVersion,
    options: g.options,
    startedAt: r.startedAt,
    groupId: g.groupId,
    shardIndex: shards.index,
    shardCount: shards.count,
  });
}

/** Stores a whole (merged) result as one run; returns the summary with the run's id. */
export function storeRunResult(db: Db, r: RunResult, summarize: (runId: number) => RunSummary, g: StoreGroup): RunSummary {
  let summary: RunSummary | undefined;
  db.transaction(() => {
    const writer = beginResultRun(db, r, g, { index: r.shards.length === 1 ? r.shards[0]!.index : null, count: r.shards[0]!.count });
    for (const second of r.seconds) writer.writeSecond(second);
    summary = summarize(writer.runId);
    writer.finish({ status: r.status, endedAt: r.endedAt, pass: summary.pass, verdict: summary.verdict, summary, ...storedResultParts(r, summary) });
  })();
  return summary!;
}
