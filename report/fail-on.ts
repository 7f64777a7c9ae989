// The --fail-on regression rules of `rehearse compare`: parsing (errors name the clause) and
// evaluation against two runs' figures. Pure.
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
  pass: boolean;
  reason: string;
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

export function evaluateFailOn(clauses: FailOnClause[], a: RunFigures, b: RunFigures): FailOnResult[] {
  return clauses.map((clause) => {
    const metric = findMetric(clause.metric) as MetricDef;
    const va = metric.get(a);
    const vb = metric.get(b);
    if (va === null && vb === null) {
      return { ...clause, a: va, b: vb, moved: null, pass: true, reason: 'measured in neither run' };
    }
    if (va === null || vb === null) {
      const which = va === null ? 'A' : 'B';
      return { ...clause, a: va, b: vb, moved: null, pass: false, reason: `not measured in run ${which}, so it cannot be checked` };
    }
    const delta = clause.sign === '+' ? vb - va : va - vb;
    let moved: number;
    let limitText: string;
    if (clause.unit === '%') {
      moved = va === 0 ? (delta === 0 ? 0 : delta > 0 ? Infinity : -Infinity) : (delta / Math.abs(va)) * 100;
      limitText = `${clause.amount}%`;
    } else if (clause.unit === 'pt') {
      moved = delta * 100;
      limitText = `${clause.amount}pt`;
    } else {
      moved = delta;
      limitText = metric.unit === 'ms' ? `${clause.amount}ms` : String(clause.amount);
    }
    const pass = moved <= clause.amount + epsilon * Math.max(1, Math.abs(clause.amount));
    const word = clause.sign === '+' ? 'rose' : 'fell';
    const movedText = formatMoved(moved, clause.unit, metric.unit);
    const reason = pass
      ? moved > 0
        ? `${word} by ${movedText}, within ${limitText}`
        : `did not ${clause.sign === '+' ? 'rise' : 'fall'}`
      : `${word} by ${movedText}, more than ${limitText}`;
    return { ...clause, a: va, b: vb, moved, pass, reason };
  });
}

function formatMoved(moved: number, unit: AllowanceUnit, metricUnit: MetricDef['unit']): string {
  if (!Number.isFinite(moved)) return 'an unbounded share (run A was 0)';
  const n = Number(moved.toFixed(moved >= 100 ? 0 : 2));
  if (unit === '%') return `${n}%`;
  if (unit === 'pt') return `${n}pt`;
  return metricUnit === 'ms' ? `${n}ms` : String(n);
}
