// `rehearse compare`: two stored runs side by side, each metric's change and whether it got
// better or worse, the reasons the two are not comparable, and the --fail-on verdict.

import type { Db } from '../db/open.js';
import { resolveRun, type StoredRun } from '../db/run-queries.js';
import { evaluateFailOn, parseFailOn, type FailOnResult } from './fail-on.js';
import { formatCount, formatMs, formatPercent, formatTable, terminalSafe } from './format.js';
import { metrics, type MetricUnit } from './metrics.js';
import { redactStoredRun } from './redact-run.js';
import { loadRunData, type RunData } from './run-figures.js';

export type Direction = 'better' | 'worse' | 'same' | 'changed' | 'n/a';

export interface MetricChange {
  key: string;
  label: string;
  unit: MetricUnit;
  a: number | null;
  b: number | null;
  /** b - a in the metric's unit (fractions as fractions). */
  change: number | null;
  /** (b - a) / |a|; null when a is 0 or either is missing. */
  relative: number | null;
  direction: Direction;
}

export interface RunRef {
  id: number;
  release: string | null;
  startedAt: string;
  status: string;
  verdict: string;
}

export interface Comparison {
  a: RunRef;
  b: RunRef;
  comparable: boolean;
  /** Why the two runs do not measure the same thing; empty when comparable. */
  warnings: string[];
  metrics: MetricChange[];
  /** Present when --fail-on was given. */
  failOn: { expression: string; pass: boolean; clauses: FailOnResult[] } | null;
}

export interface CompareOptions {
  failOn?: string;
  dbLabel?: string;
}

/** Resolves both names, then compares. Parses --fail-on first so a typo fails before any work. */
export function compareRunsByName(db: Db, nameA: string, nameB: string, options: CompareOptions = {}): Comparison {
  const clauses = options.failOn === undefined ? null : parseFailOn(options.failOn);
  const a = loadRunData(db, redactStoredRun(resolveRun(db, nameA, options.dbLabel)));
  const b = loadRunData(db, redactStoredRun(resolveRun(db, nameB, options.dbLabel)));
  const comparison = compareRuns(a, b);
  if (clauses) {
    const results = evaluateFailOn(clauses, a.figures, b.figures);
    comparison.failOn = { expression: options.failOn!, pass: results.every((r) => r.pass), clauses: results };
  }
  return comparison;
}

// Changes smaller than this share of A are noise, not a direction.
const sameWithin = 0.001;
// For fractions (withinTarget) a hundredth of a percentage point.
const sameWithinPoints = 0.0001;

export function compareRuns(a: RunData, b: RunData): Comparison {
  const changes: MetricChange[] = metrics.map((m) => {
    const va = m.get(a.figures);
    const vb = m.get(b.figures);
    if (va === null || vb === null) {
      return { key: m.key, label: m.label, unit: m.unit, a: va, b: vb, change: null, relative: null, direction: 'n/a' };
    }
    const change = vb - va;
    const relative = va === 0 ? null : change / Math.abs(va);
    let direction: Direction;
    const negligible =
      change === 0 || (m.unit === 'fraction' ? Math.abs(change) < sameWithinPoints : relative !== null && Math.abs(relative) < sameWithin);
    if (negligible) direction = 'same';
    else if (m.better === 'none') direction = 'changed';
    else direction = (change < 0) === (m.better === 'lower') ? 'better' : 'worse';
    return { key: m.key, label: m.label, unit: m.unit, a: va, b: vb, change, relative, direction };
  });
  const warnings = comparabilityWarnings(a, b);
  return { a: ref(a), b: ref(b), comparable: warnings.length === 0, warnings, metrics: changes, failOn: null };
}

function ref(d: RunData): RunRef {
  return { id: d.run.id, release: d.run.release, startedAt: d.run.startedAt, status: d.run.status, verdict: d.figures.verdict };
}

export function comparabilityWarnings(a: RunData, b: RunData): string[] {
  const warnings: string[] = [];
  const ra = a.run;
  const rb = b.run;
  if (ra.modelFingerprint !== rb.modelFingerprint) {
    warnings.push(
      `different models: run ${ra.id} replayed model ${short(ra.modelFingerprint)}, run ${rb.id} replayed ${short(rb.modelFingerprint)}`,
    );
  }
  const same = (what: string, x: unknown, y: unknown, show = (v: unknown) => String(v)) => {
    if (x !== y) warnings.push(`different ${what}: ${show(x)} in run ${ra.id}, ${show(y)} in run ${rb.id}`);
  };
  same('scale', ra.scale, rb.scale, (v) => `${v}x`);
  same('window', ra.window, rb.window, (v) => `"${v}"`);
  same('mode', ra.mode, rb.mode);
  same('speed', ra.speed, rb.speed, (v) => `${v}x`);
  const da = ra.plannedDurationMs;
  const dbb = rb.plannedDurationMs;
  if (da !== null && dbb !== null && Math.abs(da - dbb) > 0.1 * Math.max(da, dbb)) {
    warnings.push(`different durations: ${Math.round(da / 1000)} s planned in run ${ra.id}, ${Math.round(dbb / 1000)} s in run ${rb.id}`);
  }
  for (const d of [a, b]) {
    if (d.figures.generatorBound) {
      warnings.push(`run ${d.run.id}: the load generator was itself the bottleneck (schedule lag or event-loop delay too high), so its latencies measure rehearse, not the target`);
    }
    if (d.run.status !== 'finished') {
      warnings.push(`run ${d.run.id} did not finish (status ${d.run.status}): its figures cover only part of the plan`);
    }
  }
  return warnings;
}

function short(fingerprint: string): string {
  return fingerprint.slice(0, 12);
}

export interface FormatOptions {
  /** Colour (green better, red worse) only when a person watches a terminal. */
  color: boolean;
}

export function formatValue(unit: MetricUnit, v: number | null): string {
  if (v === null) return '-';
  if (unit === 'ms') return formatMs(v);
  if (unit === 'fraction') return formatPercent(v);
  return formatCount(v);
}

export function formatChange(c: MetricChange): string {
  if (c.change === null) return '';
  if (c.change === 0) return '0';
  const sign = c.change > 0 ? '+' : '-';
  const abs = Math.abs(c.change);
  let text: string;
  if (c.unit === 'fraction') text = `${sign}${(abs * 100).toFixed(2)}pt`;
  else if (c.unit === 'ms') text = `${sign}${formatMs(abs)}`;
  else text = `${sign}${formatCount(abs)}`;
  if (c.relative !== null && c.unit !== 'fraction') text += ` (${sign}${(Math.abs(c.relative) * 100).toFixed(1)}%)`;
  return text;
}

export const arrows: Record<Direction, string> = { better: '▲ better', worse: '▼ worse', same: '= same', changed: '~ changed', 'n/a': '' };

function paint(text: string, direction: Direction, color: boolean): string {
  if (!color) return text;
  if (direction === 'better') return `\u001b[32m${text}\u001b[0m`;
  if (direction === 'worse') return `\u001b[31m${text}\u001b[0m`;
  return text;
}

function runTitle(r: RunRef): string {
  return `#${r.id}${r.release !== null ? ` ${terminalSafe(r.release)}` : ''}`;
}

export function formatComparison(c: Comparison, options: FormatOptions): string {
  const lines: string[] = [];
  lines.push(`Comparing run A ${runTitle(c.a)} (${c.a.startedAt}, ${c.a.verdict}) with run B ${runTitle(c.b)} (${c.b.startedAt}, ${c.b.verdict})`);
  lines.push('');
  const rows = c.metrics.map((m) => [
    m.label,
    formatValue(m.unit, m.a),
    formatValue(m.unit, m.b),
    formatChange(m),
    paint(arrows[m.direction], m.direction, options.color),
  ]);
  lines.push(formatTable(['metric', `A ${runTitle(c.a)}`, `B ${runTitle(c.b)}`, 'change', ''], rows, new Set([1, 2, 3])).trimEnd());
  if (c.failOn) {
    lines.push('');
    lines.push(`--fail-on ${terminalSafe(c.failOn.expression)}: ${c.failOn.pass ? 'no regression' : 'REGRESSION'}`);
    for (const r of c.failOn.clauses) {
      const mark = r.pass ? 'ok  ' : 'FAIL';
      lines.push(`  ${options.color ? paint(mark, r.pass ? 'better' : 'worse', true) : mark} ${r.text}: ${r.reason}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** The loud part: printed on stderr so it shows even when stdout is piped or is --json. */
export function formatWarnings(c: Comparison, options: FormatOptions): string {
  if (c.comparable) return '';
  const head = `WARNING: runs ${c.a.id} and ${c.b.id} are not comparable:`;
  const body = c.warnings.map((w) => `  - ${terminalSafe(w)}`).join('\n');
  const text = `${head}\n${body}\n`;
  return options.color ? `\u001b[1;33m${text}\u001b[0m` : text;
}
