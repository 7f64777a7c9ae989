// The SLO a rehearsal is judged by: a small expression language (docs/slo.md), parsed once
// and evaluated against the final delivery counts. Pure: no clock, no I/O.

import { parseDuration } from '../core/duration.js';
import { UsageError } from '../core/errors.js';
import { quantileOverExpected } from '../stats/over-expected.js';

export const defaultSlo = 'p95<=2s, lost>15s, duplicates=0';

export type SloStream = 'all' | 'learner' | 'control';

export type SloClause =
  /** `pNN<=D`: at least NN% of expected pairs delivered within D (lost pairs count as never delivered). */
  | { kind: 'percentile'; text: string; stream: SloStream; percentile: number; withinMs: number }
  /** `lost>D[<=N|N%]`: D is the loss limit; at most N pairs (or N% of expected) may exceed it. */
  | { kind: 'lost'; text: string; stream: SloStream; limitMs: number; allowed: Allowance }
  /** `duplicates=0`, `duplicates<=N`, `duplicates<=N%`. */
  | { kind: 'duplicates'; text: string; stream: SloStream; allowed: Allowance }
  /** `errors<=N%` or `errors<=N`: failed requests (after which we backed off). */
  | { kind: 'errors'; text: string; allowed: Allowance };

export interface Allowance {
  value: number;
  /** true: a fraction of the denominator (given as N%); false: an absolute count. */
  fraction: boolean;
}

export interface Slo {
  text: string;
  clauses: SloClause[];
  /** The loss limit: a pair not delivered within it is lost. From the `lost>` clause; 15 s otherwise. */
  lossLimitMs: number;
  /** The headline delivery target (the first percentile clause's duration; 2 s otherwise). */
  targetMs: number;
  /** Every latency bound the evaluation needs a "delivered within" count for, ascending. */
  thresholdsMs: number[];
}

const defaultLossLimitMs = 15_000;
const defaultTargetMs = 2_000;

/** Parses an SLO expression; errors name the clause by position and text. */
export function parseSlo(text: string, flag = '--slo'): Slo {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length === 0 || parts.every((p) => p === '')) {
    throw new UsageError(`empty SLO expression; write clauses like "${defaultSlo}" (see docs/slo.md)`, flag);
  }
  const clauses: SloClause[] = [];
  parts.forEach((part, i) => {
    const where = `clause ${i + 1} "${part}"`;
    if (part === '') throw new UsageError(`${where}: empty clause (a stray comma?)`, flag);
    clauses.push(parseClause(part.replace(/\s+/g, ''), where, flag));
  });
  const lossLimits = [...new Set(clauses.flatMap((c) => (c.kind === 'lost' ? [c.limitMs] : [])))];
  if (lossLimits.length > 1) {
    throw new UsageError(`the lost> clauses disagree on the loss limit (${lossLimits.map(formatMs).join(' vs ')}); use one limit`, flag);
  }
  const lossLimitMs = lossLimits[0] ?? defaultLossLimitMs;
  for (const c of clauses) {
    if (c.kind === 'percentile' && c.withinMs > lossLimitMs) {
      throw new UsageError(`clause "${c.text}": ${formatMs(c.withinMs)} is beyond the loss limit ${formatMs(lossLimitMs)}; raise it with lost>D`, flag);
    }
  }
  const firstPercentile = clauses.find((c) => c.kind === 'percentile');
  const targetMs = firstPercentile?.kind === 'percentile' ? firstPercentile.withinMs : defaultTargetMs;
  const thresholds = new Set<number>([targetMs]);
  for (const c of clauses) if (c.kind === 'percentile') thresholds.add(c.withinMs);
  return { text: clauses.map((c) => c.text).join(', '), clauses, lossLimitMs, targetMs, thresholdsMs: [...thresholds].sort((a, b) => a - b) };
}

function parseClause(raw: string, where: string, flag: string): SloClause {
  const lower = raw.toLowerCase();
  let stream: SloStream = 'all';
  let body = lower;
  const dot = /^(learner|control)\.(.*)$/.exec(lower);
  if (dot) {
    stream = dot[1] as SloStream;
    body = dot[2]!;
  }
  let m = /^p(\d+(?:\.\d+)?)(<=|<)(.+)$/.exec(body);
  if (m) {
    const percentile = Number(m[1]);
    if (!(percentile > 0 && percentile <= 100)) throw new UsageError(`${where}: percentile must be in (0, 100]`, flag);
    const withinMs = clauseDurationMs(m[3]!, where, flag);
    return { kind: 'percentile', text: raw, stream, percentile, withinMs };
  }
  m = /^lost>([^<=]+)(?:(<=|=)(.+))?$/.exec(body);
  if (m) {
    const limitMs = clauseDurationMs(m[1]!, where, flag);
    const allowed = m[3] === undefined ? { value: 0, fraction: false } : parseAllowance(m[3], where, flag);
    return { kind: 'lost', text: raw, stream, limitMs, allowed };
  }
  m = /^(duplicates|dups)(<=|=)(.+)$/.exec(body);
  if (m) return { kind: 'duplicates', text: raw, stream, allowed: parseAllowance(m[3]!, where, flag) };
  m = /^errors(<=|=)(.+)$/.exec(body);
  if (m) {
    if (stream !== 'all') throw new UsageError(`${where}: errors are counted over all requests, not per stream`, flag);
    return { kind: 'errors', text: raw, allowed: parseAllowance(m[2]!, where, flag) };
  }
  throw new UsageError(
    `${where}: not understood; clauses are pNN<=D, lost>D, duplicates=N, errors<=N% (optionally prefixed learner. or control.), e.g. "${defaultSlo}"`,
    flag,
  );
}

function parseAllowance(text: string, where: string, flag: string): Allowance {
  const m = /^(\d+(?:\.\d+)?)(%?)$/.exec(text);
  if (!m) throw new UsageError(`${where}: "${text}" is not a count or a percentage (e.g. 0, 10, 0.1%)`, flag);
  const value = Number(m[1]);
  if (m[2] === '%') {
    if (value > 100) throw new UsageError(`${where}: a percentage above 100`, flag);
    return { value: value / 100, fraction: true };
  }
  return { value, fraction: false };
}

/** A clause's duration ('2s', '1.5s', '500ms', '1m', '250us') in milliseconds, via the one shared parser. */
function clauseDurationMs(text: string, where: string, flag: string): number {
  const ms = parseDuration(text);
  if (ms === null) throw new UsageError(`${where}: "${text}" is not a duration; write it with a unit: 500ms, 2s, 1.5s, 1m`, flag);
  if (!(ms > 0)) throw new UsageError(`${where}: the duration must be positive`, flag);
  return ms;
}

export function formatMs(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1000 && ms % 1000 === 0) return `${ms / 1000}s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(1)}s`;
  return `${ms}ms`;
}

/** What the evaluation needs per stream: all counts are over expected (message, subscriber) pairs. */
export interface StreamOutcome {
  expected: number;
  delivered: number;
  duplicates: number;
  lost: number;
  /** Pairs first delivered within each of Slo.thresholdsMs. */
  withinMs: Map<number, number>;
  /** Latency quantile over delivered pairs, ms (q in [0, 1]); percentileOverExpected turns it into the one shown. */
  latencyAt(q: number): number;
}

export interface SloInput {
  all: StreamOutcome;
  learner: StreamOutcome;
  control: StreamOutcome;
  requests: number;
  errors: number;
}

export interface ClauseResult {
  expression: string;
  observed: number;
  pass: boolean;
}

export function evaluateSlo(slo: Slo, input: SloInput): ClauseResult[] {
  return slo.clauses.map((c) => {
    switch (c.kind) {
      case 'percentile': {
        const s = input[c.stream];
        const within = s.withinMs.get(c.withinMs) ?? 0;
        const pass = s.expected > 0 && within >= (c.percentile / 100) * s.expected - 1e-9;
        return { expression: c.text, observed: percentileOverExpected(s, c.percentile / 100, slo.lossLimitMs), pass };
      }
      case 'lost': {
        const s = input[c.stream];
        return { expression: c.text, observed: s.lost, pass: allows(c.allowed, s.lost, s.expected) };
      }
      case 'duplicates': {
        const s = input[c.stream];
        return { expression: c.text, observed: s.duplicates, pass: allows(c.allowed, s.duplicates, s.expected) };
      }
      case 'errors':
        return { expression: c.text, observed: input.errors, pass: allows(c.allowed, input.errors, input.requests) };
    }
  });
}

function allows(a: Allowance, observed: number, denominator: number): boolean {
  return a.fraction ? observed <= a.value * denominator + 1e-9 : observed <= a.value;
}

/**
 * The q-quantile of latency over every expected pair, undelivered pairs ranking last. When the
 * quantile falls among undelivered pairs it is reported as the loss limit (the pair was not
 * delivered within it), never as a misleadingly small number.
 */
export function percentileOverExpected(s: StreamOutcome, q: number, lossLimitMs: number): number {
  return quantileOverExpected(s, q, lossLimitMs, (p) => s.latencyAt(p));
}
