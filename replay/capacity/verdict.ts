// The verdicts of a capacity search: each stage judged by the SLO on its own window (the pairs
// scheduled after its settle time), the knee where delivery p95 starts rising, and the answer
// (the highest multiplier that passes, what failed first and on which stream, or that the
// generator was the bottleneck). Pure: counts and per-second rows in, results out.

import type { LatencyMs } from '../../db/run-types.js';
import type { WindowCounts, WindowStreamCounts } from '../delivery.js';
import { evaluateSlo, formatMs, type ClauseResult, type Slo, type SloClause, type SloStream, type StreamOutcome } from '../slo.js';
import { latencyOverExpected } from '../verdict.js';

/** Where a stage sits in the search and which part of it is judged (replay ms). */
export interface StageSpec {
  /** Order in which stages were run: 0, 1, ...; refine stages continue the numbering. */
  index: number;
  multiplier: number;
  /** A --refine stage, between the last pass and the first fail. */
  refine: boolean;
  startMs: number;
  endMs: number;
  /** startMs + settle: pairs scheduled from here to endMs are the stage's window. */
  judgedFromMs: number;
}

/** The per-second numbers a stage reads from the run's ticks (RunSecond fields). */
export interface StageSecond {
  publishes: number;
  subscribes: number;
  deliveries: number;
  errors: number;
  scheduleLagP99Ms: number | null;
  loopDelayP99Ms: number | null;
}

export interface StageInput {
  spec: StageSpec;
  /** The window's verdicts from the runtime (run.windowCounts); undefined when nothing was scheduled in it. */
  counts: WindowCounts | undefined;
  /** The seconds inside the judged window. */
  seconds: readonly StageSecond[];
  /** Errors during the judged window, by kind ('publish HTTP 503'), with an example each. */
  errorsByKind: Record<string, { count: number; example: string }>;
  /** Mean of each scraped target metric over the judged window (--scrape), by 'metric{labels}'. */
  targetHealth?: Record<string, number>;
}

export type FailureKind = 'latency' | 'lost' | 'duplicates' | 'errors' | 'nothing measured';

export interface StageFailure {
  /** The SLO clause as written ('p95<=2s'), or what the stage lacked. */
  clause: string;
  /** The clause's stream: 'all', 'learner' or 'control'. */
  stream: SloStream;
  kind: FailureKind;
  observed: number;
}

export interface StageResult extends StageSpec {
  pass: boolean;
  /** The generator, not the target, was the bottleneck in this stage: its verdict proves nothing. */
  generatorBound: boolean;
  expected: number;
  delivered: number;
  lost: number;
  duplicates: number;
  /** Failed requests in the judged window. */
  errors: number;
  requests: number;
  latencyMs: LatencyMs;
  throughput: { publishesPerS: number; deliveriesPerS: number; requestsPerS: number };
  /** The highest per-second schedule lag (or event-loop delay) p99 in the window, ms. */
  generatorLagMs: number;
  clauses: ClauseResult[];
  /** The first failing clause in SLO order; null when the stage passed. */
  failure: StageFailure | null;
  errorsByKind: Record<string, { count: number; example: string }>;
  targetHealth?: Record<string, number>;
}

/** A stage is generator-bound when more than this share of its judged seconds had lag above the limit. */
export const generatorBoundShare = 0.25;

/** The window's counts as the SLO reads them: expected excludes pairs that got no verdict. */
export function windowOutcome(w: WindowStreamCounts | undefined, thresholdsMs: readonly number[]): StreamOutcome {
  const within = new Map<number, number>();
  thresholdsMs.forEach((t, i) => within.set(t, w?.within[i] ?? 0));
  const h = w?.histogram;
  return {
    expected: w ? w.expected - w.unresolved : 0,
    delivered: w?.delivered ?? 0,
    duplicates: w?.duplicates ?? 0,
    lost: w?.lost ?? 0,
    withinMs: within,
    latencyAt: (q) => (!h || h.totalCount === 0 ? 0 : h.getValueAtPercentile(Math.min(100, q * 100)) / 1000),
  };
}

const kindOf: Record<SloClause['kind'], FailureKind> = { percentile: 'latency', lost: 'lost', duplicates: 'duplicates', errors: 'errors' };

export function judgeStage(input: StageInput, slo: Slo, generatorLagLimitMs: number): StageResult {
  const all = windowOutcome(input.counts, slo.thresholdsMs);
  const secs = input.seconds;
  const sum = (f: (s: StageSecond) => number): number => secs.reduce((a, s) => a + f(s), 0);
  const requests = sum((s) => s.publishes + s.subscribes);
  const errors = sum((s) => s.errors);
  const learner = windowOutcome(input.counts?.learner, slo.thresholdsMs);
  const control = windowOutcome(input.counts?.control, slo.thresholdsMs);
  const clauses = evaluateSlo(slo, { all, learner, control, requests, errors });
  const lagOf = (s: StageSecond): number => Math.max(s.scheduleLagP99Ms ?? 0, s.loopDelayP99Ms ?? 0);
  const laggingSeconds = secs.filter((s) => lagOf(s) > generatorLagLimitMs).length;
  const generatorBound = secs.length > 0 && laggingSeconds > generatorBoundShare * secs.length;
  let failure: StageFailure | null = null;
  if (all.expected === 0) {
    failure = { clause: 'no delivery was expected in the stage window', stream: 'all', kind: 'nothing measured', observed: 0 };
  } else {
    const i = clauses.findIndex((c) => !c.pass);
    if (i >= 0) {
      const c = slo.clauses[i]!;
      failure = { clause: c.text, stream: c.kind === 'errors' ? 'all' : c.stream, kind: kindOf[c.kind], observed: clauses[i]!.observed };
    }
  }
  const n = Math.max(1, secs.length);
  const h = input.counts?.histogram;
  const result: StageResult = {
    ...input.spec,
    pass: failure === null,
    generatorBound,
    expected: all.expected,
    delivered: all.delivered,
    lost: all.lost,
    duplicates: all.duplicates,
    errors,
    requests,
    latencyMs: h ? latencyOverExpected(all, h, slo.lossLimitMs) : { p50: 0, p95: 0, p99: 0, max: 0 },
    throughput: { publishesPerS: sum((s) => s.publishes) / n, deliveriesPerS: sum((s) => s.deliveries) / n, requestsPerS: requests / n },
    generatorLagMs: secs.reduce((a, s) => Math.max(a, lagOf(s)), 0),
    clauses,
    failure,
    errorsByKind: input.errorsByKind,
  };
  if (input.targetHealth) result.targetHealth = input.targetHealth;
  return result;
}

/** A stage can be judged once its window has ended and every pair in it has a verdict. */
export function stageSettled(w: WindowStreamCounts | undefined): boolean {
  return !w || w.expected - w.delivered - w.lost - w.unresolved <= 0;
}

export interface Knee {
  multiplier: number;
  p95Ms: number;
  /** The lowest p95 of the stages before it. */
  baselineP95Ms: number;
}

/**
 * The knee: the first multiplier whose delivery p95 has clearly left the flat part of the curve,
 * i.e. is over twice the lowest p95 below it AND higher by a tenth of the SLO's target (so that
 * a 1 ms to 3 ms wobble on localhost is not a knee). Generator-bound and refine stages are left out.
 */
export function findKnee(stages: readonly StageResult[], slo: Slo): Knee | null {
  const curve = stages.filter((s) => !s.refine && !s.generatorBound && s.expected > 0).sort((a, b) => a.multiplier - b.multiplier);
  let baseline = Number.POSITIVE_INFINITY;
  for (const s of curve) {
    const p95 = s.latencyMs.p95;
    if (Number.isFinite(baseline) && p95 > 2 * baseline && p95 - baseline > 0.1 * slo.targetMs) {
      return { multiplier: s.multiplier, p95Ms: p95, baselineP95Ms: baseline };
    }
    baseline = Math.min(baseline, p95);
  }
  return null;
}

export interface FirstFailure extends StageFailure {
  multiplier: number;
  /** The three most frequent errors of that stage, when errors failed it. */
  errorsByKind?: Record<string, { count: number; example: string }>;
}

export interface CapacityAnswer {
  /** The highest multiplier that passed (below the first failure); null when none did. */
  capacity: number | null;
  /** The search stopped because the generator became the bottleneck before the target failed. */
  generatorBound: boolean;
  /** Every stage up to --to passed. */
  passesUpTo: number | null;
  firstFailure: FirstFailure | null;
  knee: Knee | null;
  stages: StageResult[];
  /** The answer in one or two sentences. */
  text: string;
  /** 0: a capacity was found; 1: even the first stage failed (or none could be judged). */
  exitCode: 0 | 1;
}

const x = (m: number): string => `${Math.round(m * 1000) / 1000}x`;

function describeFailure(f: FirstFailure, s: StageResult | undefined, slo: Slo): string {
  if (f.kind === 'nothing measured') return `at ${x(f.multiplier)} ${f.clause}`;
  const stream = f.stream === 'all' ? 'all streams' : `${f.stream} messages`;
  const observed =
    f.kind === 'latency' ? `observed ${f.observed >= slo.lossLimitMs ? `over ${formatMs(slo.lossLimitMs)} (lost)` : formatMs(Math.round(f.observed))}` : `observed ${f.observed}`;
  let text = `at ${x(f.multiplier)} ${f.clause} failed first on ${stream} (${observed})`;
  if (f.kind === 'errors' && s) {
    const top = Object.entries(s.errorsByKind).sort((a, b) => b[1].count - a[1].count).slice(0, 3);
    if (top.length > 0) text += `: ${top.map(([k, v]) => `${v.count} ${k}`).join(', ')}`;
  }
  return text;
}

/** The answer of a search from its stages, in the order they ran. */
export function capacityAnswer(stages: readonly StageResult[], slo: Slo, to: number): CapacityAnswer {
  let capacity: number | null = null;
  let failed: StageResult | undefined;
  let bound: StageResult | undefined;
  for (const s of stages.filter((st) => !st.refine)) {
    if (s.generatorBound) {
      bound = s;
      break;
    }
    if (!s.pass) {
      failed = s;
      break;
    }
    capacity = s.multiplier;
  }
  for (const r of stages.filter((st) => st.refine)) {
    if (r.generatorBound) bound ??= r;
    else if (r.pass && r.multiplier > (capacity ?? Number.NEGATIVE_INFINITY) && (!failed || r.multiplier < failed.multiplier)) capacity = r.multiplier;
  }
  const firstFailure: FirstFailure | null = failed ? { ...failed.failure!, multiplier: failed.multiplier } : null;
  if (firstFailure && failed && firstFailure.kind === 'errors') firstFailure.errorsByKind = failed.errorsByKind;
  const last = stages.filter((st) => !st.refine).at(-1);
  const passesUpTo = !failed && !bound && capacity !== null && last !== undefined && Math.abs(last.multiplier - to) < 1e-9 ? to : null;
  const knee = findKnee(stages, slo);
  const kneeText = knee ? `; delivery p95 starts rising at ${x(knee.multiplier)} (${formatMs(Math.round(knee.baselineP95Ms))} -> ${formatMs(Math.round(knee.p95Ms))})` : '';
  let text: string;
  if (bound && !failed) {
    const why = `at ${x(bound.multiplier)} the generator, not the target, was the bottleneck (schedule lag p99 up to ${Math.round(bound.generatorLagMs)} ms)`;
    text =
      capacity === null
        ? `no capacity measured (generator-bound): ${why}; run fewer virtual users per process (a lower --from, or --shard)`
        : `capacity at least ${x(capacity)} (generator-bound): ${why}, so the target's limit was not reached`;
  } else if (passesUpTo !== null) {
    text = `passes up to ${x(passesUpTo)}: no stage failed the SLO (${slo.text})`;
  } else if (firstFailure) {
    const head = capacity === null ? `no capacity: even ${x(firstFailure.multiplier)} fails` : `capacity ${x(capacity)}`;
    text = `${head}; ${describeFailure(firstFailure, failed, slo)}`;
  } else {
    text = capacity === null ? 'no capacity: no stage could be judged' : `capacity ${x(capacity)}`;
  }
  return { capacity, generatorBound: bound !== undefined, passesUpTo, firstFailure, knee, stages: [...stages], text: text + kneeText, exitCode: capacity === null ? 1 : 0 };
}

/**
 * --refine: the next multiplier to try between the highest pass and the lowest fail, halving the
 * gap until it is a quarter of the step (two refine stages). null when there is nothing to refine.
 */
export function nextRefine(highestPass: number | null, lowestFail: number, step: number): number | null {
  if (highestPass === null) return null;
  if (lowestFail - highestPass <= step / 4 + 1e-9) return null;
  return Math.round(((highestPass + lowestFail) / 2) * 1e9) / 1e9;
}
