// One flat set of figures per stored run, the common ground of `runs`, `compare` and `report`:
// from the run's summary when it finished, else from its counters and per-second rows, with
// latencies from the stored HDR histograms (exact over the whole run) when present. Latency
// percentiles are over every expected pair, a lost pair ranking last (docs/slo.md), also for runs
// stored before that was the summary's definition, so old and new runs compare like for like.

import type { Db } from '../db/open.js';
import type { LatencyMs } from '../db/run-types.js';
import { runCounts, runHistograms, runSeconds, type StoredRun } from '../db/run-queries.js';
import { quantileOverExpected, type ExpectedPairs } from '../stats/over-expected.js';
import { decodeHistogram, latencyFromHistogram, type DecodedHistogram } from './histograms.js';
import { capacityOf } from '../db/capacity-store.js';

export interface RunFigures {
  durationS: number;
  /** Messages the target accepted. */
  published: number;
  expected: number;
  delivered: number;
  duplicates: number;
  lost: number;
  /** Fraction (0..1) of expected pairs delivered within 2 s; null when unknown (unfinished run). */
  withinTarget: number | null;
  publishRequests: number;
  subscribeRequests: number;
  errors: number;
  retries: number;
  latency: { all: LatencyMs | null; learner: LatencyMs | null; control: LatencyMs | null };
  scheduleLag: LatencyMs | null;
  generatorBound: boolean | null;
  verdict: 'pass' | 'fail' | RunStatusLabel;
  /** A capacity search's answer: the highest multiplier that passed (null: none); absent for a replay. */
  capacity?: number | null;
}

type RunStatusLabel = 'running' | 'interrupted' | 'failed' | 'abandoned';

export interface RunData {
  run: StoredRun;
  figures: RunFigures;
  histograms: Map<string, DecodedHistogram>;
}

export function loadRunData(db: Db, run: StoredRun): RunData {
  const histograms = new Map<string, DecodedHistogram>();
  for (const [name, encoded] of runHistograms(db, run.id)) {
    try {
      histograms.set(name, decodeHistogram(encoded));
    } catch {
      // A corrupt histogram must not hide the rest of the run: the summary's figures stand in.
    }
  }
  const figures = runFigures(db, run, histograms);
  const capacity = capacityOf(db, run.id);
  if (capacity !== undefined) figures.capacity = capacity;
  return { run, figures, histograms };
}

/** The loss limit the run judged by (ms): stored in its counts; 15 s, the default, for runs that did not store it. */
export function lossLimitOf(counts: Map<string, number>): number {
  return counts.get('lossLimitMs') ?? 15_000;
}

/** p50/p95/p99 over every expected pair (lost pairs last, shown as the loss limit); max over delivered pairs. */
export function latencyOverExpected(h: DecodedHistogram, pairs: ExpectedPairs, lossLimitMs: number): LatencyMs {
  const at = (q: number) => quantileOverExpected(pairs, q, lossLimitMs, (p) => h.atPercentile(p * 100));
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), max: h.maxMs };
}

export function runFigures(db: Db, run: StoredRun, histograms: Map<string, DecodedHistogram>): RunFigures {
  const s = run.summary;
  const counts = runCounts(db, run.id);
  const lossLimitMs = lossLimitOf(counts);
  /** Delivery latency from the histogram; over expected pairs when their counts are known, else over deliveries. */
  const fromHistogram = (name: string, pairs?: ExpectedPairs): LatencyMs | null => {
    const h = histograms.get(name);
    if (!h || h.count === 0) return null;
    return pairs && pairs.expected > 0 ? latencyOverExpected(h, pairs, lossLimitMs) : latencyFromHistogram(h);
  };
  const verdict: RunFigures['verdict'] =
    run.status === 'finished' ? (run.pass === false ? 'fail' : run.pass === true ? 'pass' : 'fail') : run.status;
  if (s) {
    return {
      durationS: s.durationS,
      published: s.published,
      expected: s.expected,
      delivered: s.delivered,
      duplicates: s.duplicates,
      lost: s.lost,
      withinTarget: s.withinTarget,
      publishRequests: s.requests.publish,
      subscribeRequests: s.requests.subscribe,
      errors: s.requests.errors,
      retries: s.requests.retries,
      latency: {
        all: fromHistogram('delivery', s) ?? s.latencyMs,
        learner: fromHistogram('delivery.learner', s.streams.learner) ?? s.streams.learner.latencyMs,
        control: fromHistogram('delivery.control', s.streams.control) ?? s.streams.control.latencyMs,
      },
      scheduleLag: fromHistogram('scheduleLag') ?? s.scheduleLagMs,
      generatorBound: s.generatorBound,
      verdict,
    };
  }
  // Unfinished run: counters if the runtime wrote them, else the per-second rows it flushed.
  const seconds = runSeconds(db, run.id);
  const sum = (f: (x: (typeof seconds)[number]) => number) => seconds.reduce((acc, x) => acc + f(x), 0);
  const count = (name: string, fallback: number) => counts.get(name) ?? fallback;
  const expected = count('expected', 0);
  const within = counts.get('withinTarget');
  return {
    durationS: seconds.length,
    published: count('published', sum((x) => x.publishes)),
    expected,
    delivered: count('delivered', sum((x) => x.deliveries)),
    duplicates: count('duplicates', sum((x) => x.duplicates)),
    lost: count('lost', sum((x) => x.lost)),
    withinTarget: within ?? null,
    publishRequests: count('requests.publish', sum((x) => x.publishes)),
    subscribeRequests: count('requests.subscribe', sum((x) => x.subscribes)),
    errors: count('errors', sum((x) => x.errors)),
    retries: count('retries', sum((x) => x.retries)),
    latency: {
      all: fromHistogram('delivery', { expected, delivered: count('delivered', 0) }),
      learner: fromHistogram('delivery.learner', { expected: count('learner.expected', 0), delivered: count('learner.delivered', 0) }),
      control: fromHistogram('delivery.control', { expected: count('control.expected', 0), delivered: count('control.delivered', 0) }),
    },
    scheduleLag: fromHistogram('scheduleLag'),
    generatorBound: null,
    verdict,
  };
}
