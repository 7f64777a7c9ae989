// `rehearse compare`: two stored runs side by side, each metric's change and whether it got
// better or worse, how far run-to-run noise alone could move it (report/noise.ts), the reasons
// the two are not comparable, and the --fail-on verdict.

import type { Db } from '../db/open.js';
import { resolveRun, runCounts, runSeconds, type StoredRun } from '../db/run-queries.js';
import type { ChangeNoise, Interval } from '../stats/bootstrap.js';
import { evaluateFailOn, parseFailOn, type FailOnNoise, type FailOnResult } from './fail-on.js';
import { formatCount, formatMs, formatPercent, formatTable, terminalSafe } from './format.js';
import { metrics, type MetricUnit } from './metrics.js';
import { redactStoredRun } from './redact-run.js';
import { runShape, shapeDifference } from './run-shape.js';
import { defaultLatencyFloorMs, defaultNoiseSettings, latencyNoise, latencySeconds, noiseMetrics, type NoiseSettings } from './noise.js';
import { loadRunData, lossLimitOf, type RunData } from './run-figures.js';
import { capacityHeadline } from './capacity-compare.js';

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
  /** 95% interval of `change` from run-to-run noise; null when not estimated (counts are exact; see Comparison.noise). */
  changeInterval?: Interval | null;
  /** 95% interval of `relative`; null when not estimated or A is 0. */
  relativeInterval?: Interval | null;
  /** true: the interval holds no change, so the difference may be noise; null: noise not estimated. */
  withinNoise?: boolean | null;
}

/** How the noise was estimated, or why it was not. */
export interface ComparisonNoise {
  method: 'moving-block bootstrap over seconds';
  /** Both runs' seconds resampled together (runs of one plan, lengths within 20%); else independently. */
  paired: boolean;
  /** Metrics that have intervals. */
  metrics: string[];
  replicates: number;
  blockLengthS: number;
  level: number;
  seed: string;
  /** Latency changes smaller than this (ms) never fail --fail-on. */
  latencyFloorMs: number;
  /** Rise of the generator's schedule lag p99 from A to B (ms, 0 when none): latency rises up to it never fail --fail-on. */
  generatorAllowanceMs: number;
  /** Why the noise is unknown (then metrics is empty and --fail-on compares the plain figures). */
  unknown: string | null;
  /** false when a run has no per-second histograms (stored before migration 006): then compare warns on stderr. */
  histograms: boolean;
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
  /** The noise estimate behind the intervals (absent when compared without the stored seconds, as in the report). */
  noise?: ComparisonNoise;
  /** Present when --fail-on was given. */
  failOn: { expression: string; pass: boolean; clauses: FailOnResult[] } | null;
}

export interface CompareOptions {
  failOn?: string;
  dbLabel?: string;
  /** Latency changes smaller than this (ms) never fail --fail-on; default defaultLatencyFloorMs. */
  latencyFloorMs?: number;
  /** Bootstrap settings (tests and the benchmark); defaults in report/noise.ts. */
  noise?: Partial<NoiseSettings>;
}

/** Resolves both names, then compares. Parses --fail-on first so a typo fails before any work. */
export function compareRunsByName(db: Db, nameA: string, nameB: string, options: CompareOptions = {}): Comparison {
  const clauses = options.failOn === undefined ? null : parseFailOn(options.failOn);
  const a = loadRunData(db, redactStoredRun(resolveRun(db, nameA, options.dbLabel)));
  const b = loadRunData(db, redactStoredRun(resolveRun(db, nameB, options.dbLabel)));
  const noise = estimateNoise(db, a, b, options);
  const comparison = compareRuns(a, b, noise);
  if (clauses) {
    const results = evaluateFailOn(clauses, a.figures, b.figures, {
      changes: noise.changes,
      latencyFloorMs: noise.summary.latencyFloorMs,
      generatorAllowanceMs: noise.summary.generatorAllowanceMs,
      unknown: noise.summary.unknown,
    } satisfies FailOnNoise);
    comparison.failOn = { expression: options.failOn!, pass: results.every((r) => r.pass), clauses: results };
  }
  return comparison;
}

/** The noise of the two runs' changes, by metric key, from their stored per-second histograms. */
export interface NoiseEstimate {
  summary: ComparisonNoise;
  changes: Map<string, ChangeNoise>;
}

export function estimateNoise(db: Db, a: RunData, b: RunData, options: CompareOptions = {}): NoiseEstimate {
  const settings = { ...defaultNoiseSettings(a.run.id, b.run.id), ...options.noise };
  const summary: ComparisonNoise = {
    method: 'moving-block bootstrap over seconds',
    paired: false,
    metrics: [],
    replicates: settings.replicates,
    blockLengthS: settings.blockLengthS,
    level: settings.level,
    seed: settings.seed,
    latencyFloorMs: options.latencyFloorMs ?? defaultLatencyFloorMs,
    generatorAllowanceMs: Math.max(0, (b.figures.scheduleLag?.p99 ?? 0) - (a.figures.scheduleLag?.p99 ?? 0)),
    unknown: null,
    histograms: true,
  };
  const changes = new Map<string, ChangeNoise>();
  const sa = latencySeconds(a.run.id, runSeconds(db, a.run.id));
  const sb = latencySeconds(b.run.id, runSeconds(db, b.run.id));
  const all = [a.figures.latency.all, b.figures.latency.all];
  if (!sa.ok || !sb.ok) {
    summary.unknown = [sa, sb].flatMap((s) => (s.ok ? [] : [s.reason])).join('; ');
    summary.histograms = [sa, sb].every((s) => s.ok || s.histograms);
  } else if (!all[0] || !all[1]) {
    summary.unknown = `no delivery latency in run ${all[0] ? b.run.id : a.run.id}: noise unknown`;
  } else {
    // Both runs judged lost pairs by their own loss limit; the resampled figures use A's (they agree when comparable).
    const lossLimitMs = lossLimitOf(runCounts(db, a.run.id));
    const observed = Object.fromEntries(noiseMetrics.map((m) => [m, { a: all[0]![m], b: all[1]![m] }])) as Parameters<typeof latencyNoise>[2];
    const noise = latencyNoise(sa.seconds, sb.seconds, observed, lossLimitMs, settings);
    for (const m of noiseMetrics) changes.set(m, noise[m]);
    summary.metrics = [...noiseMetrics];
    summary.paired = noise.p95.paired;
  }
  return { summary, changes };
}

// Changes smaller than this share of A are noise, not a direction.
const sameWithin = 0.001;
// For fractions (withinTarget) a hundredth of a percentage point.
const sameWithinPoints = 0.0001;

export function compareRuns(a: RunData, b: RunData, noise?: NoiseEstimate): Comparison {
  const shown = metrics.filter((m) => !m.onlyWhenMeasured || m.get(a.figures) !== null || m.get(b.figures) !== null);
  const changes: MetricChange[] = shown.map((m) => {
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
    const n = noise?.changes.get(m.key);
    if (!noise) return { key: m.key, label: m.label, unit: m.unit, a: va, b: vb, change, relative, direction };
    const changeInterval = n ? n.absolute : null;
    const relativeInterval = n ? n.relative : null;
    const withinNoise = n ? n.absolute.low <= 0 && n.absolute.high >= 0 : null;
    return { key: m.key, label: m.label, unit: m.unit, a: va, b: vb, change, relative, direction, changeInterval, relativeInterval, withinNoise };
  });
  const warnings = comparabilityWarnings(a, b);
  return {
    a: ref(a),
    b: ref(b),
    comparable: warnings.length === 0,
    warnings,
    metrics: changes,
    ...(noise ? { noise: noise.summary } : {}),
    failOn: null,
  };
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
  const shaped = shapeDifference({ id: ra.id, shape: runShape(ra) }, { id: rb.id, shape: runShape(rb) });
  if (shaped) warnings.push(shaped);
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

/** "-20%..+180%: within noise" (relative when A is not 0), "+1.2ms..+3.4ms", or '' when the noise is not estimated. */
export function formatInterval(c: MetricChange): string {
  if (c.withinNoise === null || c.withinNoise === undefined) return '';
  const signed = (x: number, text: string) => (x > 0 ? `+${text}` : x < 0 ? `-${text}` : text);
  let text: string;
  if (c.relativeInterval) {
    const pct = (x: number) => signed(x, `${Math.abs(x * 100).toFixed(Math.abs(x) >= 1 ? 0 : 1)}%`);
    text = `${pct(c.relativeInterval.low)}..${pct(c.relativeInterval.high)}`;
  } else if (c.changeInterval) {
    const ms = (x: number) => signed(x, formatMs(Math.abs(x)));
    text = `${ms(c.changeInterval.low)}..${ms(c.changeInterval.high)}`;
  } else return '';
  return c.withinNoise ? `${text}: within noise` : text;
}

/** The arrow, except that a better or worse whose interval holds no change reads as noise. */
function arrowOf(m: MetricChange): string {
  if (m.withinNoise === true && (m.direction === 'better' || m.direction === 'worse')) return '≈ noise';
  return arrows[m.direction];
}

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
  const withNoise = c.noise !== undefined && c.noise.unknown === null;
  const rows = c.metrics.map((m) => [
    m.label,
    formatValue(m.unit, m.a),
    formatValue(m.unit, m.b),
    formatChange(m),
    ...(withNoise ? [formatInterval(m)] : []),
    paint(arrowOf(m), m.withinNoise === true ? 'same' : m.direction, options.color),
  ]);
  const header = ['metric', `A ${runTitle(c.a)}`, `B ${runTitle(c.b)}`, 'change', ...(withNoise ? ['95% interval of the change'] : []), ''];
  lines.push(formatTable(header, rows, new Set([1, 2, 3])).trimEnd());
  const capacity = capacityHeadline(c.metrics, runTitle(c.a), runTitle(c.b));
  if (capacity) lines.push(capacity);
  if (c.noise) lines.push(noiseLine(c.noise));
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

/** Says what "p95" and the interval mean, so the table is read right. */
function noiseLine(n: ComparisonNoise): string {
  const what = 'Latency percentiles are over all expected pairs (a lost pair ranks last, docs/slo.md).';
  if (n.unknown !== null) return `${what} Noise unknown: ${terminalSafe(n.unknown)}; --fail-on compares the plain figures.`;
  return (
    `${what} Intervals: ${Math.round(n.level * 100)}% ${n.method} (${n.paired ? 'paired, ' : ''}${n.replicates} resamples, ${n.blockLengthS} s blocks); ` +
    `latency changes under ${n.latencyFloorMs} ms` +
    (n.generatorAllowanceMs > 0 ? `, or under the rise of the generator's schedule lag p99 (+${formatMs(n.generatorAllowanceMs)}),` : '') +
    ` never fail --fail-on.`
  );
}

/** The loud part: printed on stderr so it shows even when stdout is piped or is --json. */
export function formatWarnings(c: Comparison, options: FormatOptions): string {
  const parts: string[] = [];
  if (!c.comparable) {
    const head = `WARNING: runs ${c.a.id} and ${c.b.id} are not comparable:`;
    const body = c.warnings.map((w) => `  - ${terminalSafe(w)}`).join('\n');
    parts.push(`${head}\n${body}\n`);
  }
  // Loud only for runs without the histograms (a known gap, worth an upgrade); a run too short to resample is said under the table.
  if (c.noise?.unknown && !c.noise.histograms) {
    parts.push(`WARNING: ${terminalSafe(c.noise.unknown)}. Changes are shown without their noise, and --fail-on judges the plain figures.\n`);
  }
  const text = parts.join('');
  if (text === '') return '';
  return options.color ? `\u001b[1;33m${text}\u001b[0m` : text;
}
