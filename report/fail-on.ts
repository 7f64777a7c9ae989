// The --fail-on regression rules of `rehearse compare`: parsing (errors name the clause) and
// evaluation against two runs' figures. Pure. A latency clause fails only when the change breaks
// the rule beyond the run-to-run noise (the whole 95% interval of the change breaks it) and is at
// least the latency floor; counts (lost, duplicates, errors) are exact and judged as they are.
//
//   rules   := clause ("," clause)*
//   clause  := metric sign amount unit?
//   sign    := "+"  (limits how much the metric may grow from A to B)
//            | "-"  (limits how much it may shrink)
//   unit    := "%"  relative to run A's value
//            | "pt" percentage points (fraction metrics such as withinTarget only)
//            | "ms" | "s" (latency metrics; a bare number is milliseconds for them)
//            | none: absolute, in the metric's own unit (counts)
// e.g. "p95+10%, lost+0, withinTarget-1pt, control.p99+250ms"

import { UsageError } from '../core/errors.js';
import type { ChangeNoise, Interval } from '../stats/bootstrap.js';
import { findMetric, metrics, type MetricDef } from './metrics.js';
import type { RunFigures } from './run-figures.js';

export type AllowanceUnit = 'abs' | '%' | 'pt';

export interface FailOnClause {
  /** The clause as written, trimmed. */
  text: string;
  metric: string;
  sign: '+' | '-';
  /** In the metric's unit for 'abs' (ms for latencies), percent for '%', points for 'pt'. */
  amount: number;
  unit: AllowanceUnit;
}

export interface FailOnResult extends FailOnClause {
  a: number | null;
  b: number | null;
  /** Change in the clause's direction (positive: moved the limited way), in the allowance's unit. */
  moved: number | null;
  /** The 95% interval of `moved` (same unit); null when the metric's noise is unknown or it is an exact count. */
  movedInterval: Interval | null;
  /** The change breaks the rule but its interval reaches back within it: noise, not a regression. */
  withinNoise: boolean;
  /** A latency change smaller than the floor (ms): never a regression. */
  belowFloor: boolean;
  pass: boolean;
  reason: string;
}

/** What evaluateFailOn knows about noise: intervals by metric key, and the latency floor. */
export interface FailOnNoise {
  changes: ReadonlyMap<string, ChangeNoise>;
  /** Latency changes (ms) smaller than this never fail a clause. */
  latencyFloorMs: number;
  /**
   * How much later B's generator ran its schedule than A's (rise of schedule lag p99, ms; 0 when
   * it did not rise). Latency is measured from the scheduled time, so a latency rise no larger
   * than this may be the generator's own lateness, not the target's: it never fails a clause.
   */
  generatorAllowanceMs?: number;
  /** Why the noise is unknown (e.g. runs stored before per-second histograms), when it is. */
  unknown: string | null;
}

const clausePattern = /^([A-Za-z][A-Za-z0-9_.]*)\s*([+-])\s*(\d+(?:\.\d+)?)\s*(%|pt|ms|s)?$/;

export function parseFailOn(expression: string): FailOnClause[] {
  const parts = expression.split(',');
  const clauses: FailOnClause[] = [];
  parts.forEach((raw, index) => {
    const text = raw.trim();
    const where = `clause ${index + 1} "${text}"`;
    if (text === '') {
      throw new UsageError(`${where} is empty; write clauses like "p95+10%, lost+0, withinTarget-1pt".`, '--fail-on');
    }
    const m = clausePattern.exec(text);
    if (!m) {
      throw new UsageError(
        `${where}: expected <metric><+|-><amount>[%|pt|ms|s], e.g. "p95+10%", "lost+0" or "withinTarget-1pt".`,
        '--fail-on',
      );
    }
    const [, name, sign, amountText, unitText] = m;
    const metric = findMetric(name!);
    if (!metric) {
      throw new UsageError(`${where}: unknown metric "${name}". Metrics: ${metrics.map((x) => x.key).join(', ')}.`, '--fail-on');
    }
    let amount = Number(amountText);
    let unit: AllowanceUnit;
    if (unitText === '%') unit = '%';
    else if (unitText === 'pt') {
      if (metric.unit !== 'fraction') {
        throw new UsageError(`${where}: "pt" (percentage points) applies to fractions such as withinTarget, not ${metric.key}; use % or an absolute amount.`, '--fail-on');
      }
      unit = 'pt';
    } else if (unitText === 'ms' || unitText === 's') {
      if (metric.unit !== 'ms') {
        throw new UsageError(`${where}: "${unitText}" applies to latencies, not ${metric.key}.`, '--fail-on');
      }
      if (unitText === 's') amount *= 1000;
      unit = 'abs';
    } else {
      if (metric.unit === 'fraction') {
        throw new UsageError(`${where}: ${metric.key} is a fraction; say "pt" (percentage points) or "%" (relative), e.g. "${metric.key}-1pt".`, '--fail-on');
      }
      unit = 'abs';
    }
    clauses.push({ text, metric: metric.key, sign: sign as '+' | '-', amount, unit });
  });
  return clauses;
}

// Float noise (e.g. 0.1 + 0.2) must not turn an exactly-at-the-limit change into a failure.
const epsilon = 1e-9;

export function evaluateFailOn(clauses: FailOnClause[], a: RunFigures, b: RunFigures, noise?: FailOnNoise): FailOnResult[] {
  return clauses.map((clause) => {
    const metric = findMetric(clause.metric) as MetricDef;
    const va = metric.get(a);
    const vb = metric.get(b);
    const none = { movedInterval: null, withinNoise: false, belowFloor: false };
    if (va === null && vb === null) {
      return { ...clause, a: va, b: vb, moved: null, ...none, pass: true, reason: 'measured in neither run' };
    }
    if (va === null || vb === null) {
      const which = va === null ? 'A' : 'B';
      return { ...clause, a: va, b: vb, moved: null, ...none, pass: false, reason: `not measured in run ${which}, so it cannot be checked` };
    }
    const toMoved = (bMinusA: number): number => {
      const delta = clause.sign === '+' ? bMinusA : -bMinusA;
      if (clause.unit === '%') return va === 0 ? (delta === 0 ? 0 : delta > 0 ? Infinity : -Infinity) : (delta / Math.abs(va)) * 100;
      if (clause.unit === 'pt') return delta * 100;
      return delta;
    };
    const moved = toMoved(vb - va);
    const limitText = clause.unit === '%' ? `${clause.amount}%` : clause.unit === 'pt' ? `${clause.amount}pt` : metric.unit === 'ms' ? `${clause.amount}ms` : String(clause.amount);
    const breaks = (x: number) => x > clause.amount + epsilon * Math.max(1, Math.abs(clause.amount));
    const word = clause.sign === '+' ? 'rose' : 'fell';
    const movedText = formatMoved(moved, clause.unit, metric.unit);
    const change = noise?.changes.get(metric.key);
    const movedInterval = change ? intervalOfMoved(change, clause, va, toMoved) : null;
    const intervalText = movedInterval ? ` (95% interval ${formatMoved(movedInterval.low, clause.unit, metric.unit, true)}..${formatMoved(movedInterval.high, clause.unit, metric.unit, true)})` : '';
    if (!breaks(moved)) {
      const reason = moved > 0 ? `${word} by ${movedText}${intervalText}, within ${limitText}` : `did not ${clause.sign === '+' ? 'rise' : 'fall'}`;
      return { ...clause, a: va, b: vb, moved, movedInterval, withinNoise: false, belowFloor: false, pass: true, reason };
    }
    if (metric.unit === 'ms' && noise && Math.abs(vb - va) < noise.latencyFloorMs) {
      const reason = `${word} by ${movedText}${intervalText}, but by less than the ${noise.latencyFloorMs} ms latency floor: not a regression`;
      return { ...clause, a: va, b: vb, moved, movedInterval, withinNoise: false, belowFloor: true, pass: true, reason };
    }
    const allowance = noise?.generatorAllowanceMs ?? 0;
    if (metric.unit === 'ms' && !metric.key.startsWith('scheduleLag') && allowance > 0 && vb - va <= allowance) {
      const reason =
        `${word} by ${movedText}${intervalText}, but by no more than run B's generator ran late beyond run A's ` +
        `(schedule lag p99 +${Number(allowance.toFixed(2))}ms): the generator's lateness, not the target's`;
      return { ...clause, a: va, b: vb, moved, movedInterval, withinNoise: false, belowFloor: true, pass: true, reason };
    }
    if (movedInterval && !breaks(movedInterval.low)) {
      const reason = `${word} by ${movedText}${intervalText}: within noise, not surely more than ${limitText}`;
      return { ...clause, a: va, b: vb, moved, movedInterval, withinNoise: true, belowFloor: false, pass: true, reason };
    }
    const unknown = metric.unit === 'ms' && !movedInterval ? ` (noise unknown${noise?.unknown ? `: ${noise.unknown}` : ' for this metric'})` : '';
    const beyond = movedInterval ? ', beyond the noise' : '';
    const reason = `${word} by ${movedText}${intervalText}, more than ${limitText}${beyond}${unknown}`;
    return { ...clause, a: va, b: vb, moved, movedInterval, withinNoise: false, belowFloor: false, pass: false, reason };
  });
}

/** The interval of the clause's `moved` from the change's interval: relative for %, absolute otherwise; low is the bound nearest "no change". */
function intervalOfMoved(change: ChangeNoise, clause: FailOnClause, va: number, toMoved: (bMinusA: number) => number): Interval | null {
  let low: number;
  let high: number;
  if (clause.unit === '%' && change.relative) {
    // The relative interval is exact on a log scale; read it as a change of A's value.
    low = toMoved(change.relative.low * Math.abs(va));
    high = toMoved(change.relative.high * Math.abs(va));
  } else {
    low = toMoved(change.absolute.low);
    high = toMoved(change.absolute.high);
  }
  if (!Number.isFinite(low) || !Number.isFinite(high)) return null;
  return { low: Math.min(low, high), high: Math.max(low, high) };
}

function formatMoved(moved: number, unit: AllowanceUnit, metricUnit: MetricDef['unit'], signed = false): string {
  if (!Number.isFinite(moved)) return 'an unbounded share (run A was 0)';
  const n = Number(moved.toFixed(Math.abs(moved) >= 100 ? 0 : 2));
  const text = signed && n > 0 ? `+${n}` : String(n);
  if (unit === '%') return `${text}%`;
  if (unit === 'pt') return `${text}pt`;
  return metricUnit === 'ms' ? `${text}ms` : text;
}
