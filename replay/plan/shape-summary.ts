// The dry run of a what-if: the shaped model beside the recorded one (each changed distribution's
// median and p90) and the traffic both plans ask for, so `plan --shape` says what the shape did
// before a byte is sent. Pure: it enumerates the two plans once each.

import { formatDuration } from '../../core/duration.js';
import type { DistributionName, ModelReader } from '../../db/model-types.js';
import { distributionNames } from '../../db/model-types.js';
import { quantileSorted } from '../../stats/quantile.js';
import type { PlanOptions, PlanSummary } from '../plan-types.js';
import { createPlan } from '../plan.js';
import { summarizePlan } from './dry-run.js';
import { shapeModel } from './shaped-model.js';
import { shapeClient, shapedDistributions, shapeTexts } from './shape.js';

export interface ShapeDistributionChange {
  name: DistributionName;
  unit: 'ms' | 'count';
  /** Null when the recorded model has no such distribution (a replacement adds one). */
  before: { median: number; p90: number } | null;
  after: { median: number; p90: number } | null;
}

export interface ShapeTraffic {
  learners: number;
  proctors: number;
  /** Means over the replay. */
  publishesPerS: number;
  pollsPerS: number;
  peakOpenPolls: number;
  peakRequestsPerS: number;
}

/** What `plan --json` adds under `shape` when --shape is given. */
export interface ShapeSummary {
  terms: string[];
  distributions: ShapeDistributionChange[];
  traffic: { before: ShapeTraffic; after: ShapeTraffic };
  /** The recorded plan's window when it differs from the shaped one ('peak' follows the shape). */
  windowBefore: string;
  /** Client behaviour the shape sets for the virtual users (replay's --poll-timeout and --backoff-*). */
  client: ReturnType<typeof shapeClient>;
}

/** `after` is the shaped plan's summary (already computed by the caller); the recorded plan is drawn here. */
export function summarizeShape(model: ModelReader, options: PlanOptions, after: PlanSummary): ShapeSummary {
  const shape = options.shape ?? { terms: [] };
  const { shape: _omitted, ...recordedOptions } = options;
  const before = summarizePlan(createPlan(model, recordedOptions));
  const shaped = shapeModel(model, shape, options.seed);
  const changed = shapedDistributions(shape);
  const distributions: ShapeDistributionChange[] = [];
  for (const name of distributionNames) {
    if (!changed.has(name)) continue;
    const a = model.distribution(name);
    const b = shaped.distribution(name);
    const figures = (d: typeof a) => (d && d.samples.length > 0 ? { median: quantileSorted(d.samples, 0.5), p90: quantileSorted(d.samples, 0.9) } : null);
    distributions.push({ name, unit: (b ?? a)!.unit, before: figures(a), after: figures(b) });
  }
  return {
    terms: shapeTexts(shape),
    distributions,
    traffic: { before: traffic(before), after: traffic(after) },
    windowBefore: before.window.label,
    client: shapeClient(shape),
  };
}

function traffic(s: PlanSummary): ShapeTraffic {
  const seconds = Math.max(1e-3, s.durationMs / 1000);
  let userPolls = 0;
  let weight = 0;
  for (const m of s.perMinute) {
    const lengthS = Math.max(1e-3, Math.min(60, s.durationMs / 1000 - m.minute * 60));
    userPolls += m.pollsPerS * lengthS;
    weight += lengthS;
  }
  return {
    learners: s.learners,
    proctors: s.proctors,
    publishesPerS: round(s.publishes / seconds),
    pollsPerS: round(weight > 0 ? userPolls / weight : 0),
    peakOpenPolls: s.peakOpenPolls,
    peakRequestsPerS: s.peakRequestsPerS,
  };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

const value = (v: number, unit: 'ms' | 'count'): string => (unit === 'ms' ? formatDuration(v) : Number.isInteger(v) ? String(v) : v.toFixed(1));
const rate = (n: number): string => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1));
const change = (a: number, b: number): string => (a > 0 ? `${b >= a ? '+' : ''}${Math.round(((b - a) / a) * 100)}%` : '');

/** The terminal block printed above the plan's own summary. */
export function formatShapeSummary(s: ShapeSummary, windowAfter: string): string {
  const lines: string[] = [`Shape: ${s.terms.join('; ')} (docs/shape.md)`];
  if (s.distributions.length > 0) {
    const rows = [['distribution', 'median before', 'after', 'p90 before', 'after']];
    for (const d of s.distributions) {
      const f = (x: { median: number; p90: number } | null, k: 'median' | 'p90') => (x ? value(x[k], d.unit) : '-');
      rows.push([d.name, f(d.before, 'median'), f(d.after, 'median'), f(d.before, 'p90'), f(d.after, 'p90')]);
    }
    lines.push(...table(rows));
  }
  const b = s.traffic.before;
  const a = s.traffic.after;
  const traffic: string[][] = [['traffic', 'recorded', 'shaped', 'change']];
  const row = (label: string, x: number, y: number, fmt: (n: number) => string) => traffic.push([label, fmt(x), fmt(y), change(x, y)]);
  const int = (n: number) => Math.round(n).toLocaleString('en-US');
  row('learners', b.learners, a.learners, int);
  row('proctors', b.proctors, a.proctors, int);
  row('publishes/s', b.publishesPerS, a.publishesPerS, rate);
  row('polls/s', b.pollsPerS, a.pollsPerS, rate);
  row('open polls (peak)', b.peakOpenPolls, a.peakOpenPolls, int);
  row('requests/s (peak)', b.peakRequestsPerS, a.peakRequestsPerS, rate);
  lines.push(...table(traffic));
  if (s.windowBefore !== windowAfter) lines.push(`  (the recorded plan's window: ${s.windowBefore}; the shaped plan's: ${windowAfter})`);
  const c = s.client;
  if (c.pollTimeoutS !== undefined || c.backoff) {
    const parts: string[] = [];
    if (c.pollTimeoutS !== undefined) parts.push(`long-polls time out after ${c.pollTimeoutS} s`);
    if (c.backoff?.baseMs !== undefined) parts.push(`retries back off from ${formatDuration(c.backoff.baseMs)}`);
    if (c.backoff?.capMs !== undefined) parts.push(`capped at ${formatDuration(c.backoff.capMs)}`);
    lines.push(`  clients: ${parts.join(', ')} (replay uses these over --poll-timeout and --backoff-*)`);
  }
  return `${lines.join('\n')}\n\n`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => `  ${r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ')}`);
}
