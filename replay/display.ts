// Text for people: the live line each second, the plain periodic line and the final verdict.
// Pure formatting over ReplayTick and RunSummary; the CLI decides where and how often.

import type { RunSummary } from '../db/run-types.js';
import { failureRows } from '../db/run-failures.js';
import type { ReplayTick } from './runner.js';

function ms(v: number | null): string {
  if (v === null) return '-';
  if (v >= 10_000) return `${(v / 1000).toFixed(1)}s`;
  if (v >= 1000) return `${(v / 1000).toFixed(2)}s`;
  return `${v.toFixed(v < 10 ? 1 : 0)}ms`;
}

function clock(elapsedMs: number): string {
  const s = Math.max(0, Math.floor(elapsedMs / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/**
 * Where the run is: `1:05/5:00, 3:55 left` when the planned duration is known, the elapsed time
 * alone otherwise; past the plan (or once stopping) the run drains open deliveries instead.
 */
function progress(t: ReplayTick, plannedMs: number | null | undefined): string {
  if (t.phase === 'draining') return `${clock(t.elapsedMs)} draining`;
  if (plannedMs === null || plannedMs === undefined || !(plannedMs > 0)) return clock(t.elapsedMs);
  const left = Math.max(0, plannedMs - t.elapsedMs);
  return `${clock(t.elapsedMs)}/${clock(plannedMs)}, ${clock(left)} left`;
}

/**
 * One line per second: progress, then that second's virtual users, open polls, requests/s,
 * deliveries/s and p95, then the run's totals so far (lost, duplicates, errors), labelled as such.
 */
export function formatTickLine(t: ReplayTick, plannedMs?: number | null): string {
  return (
    `${progress(t, plannedMs)}  vus ${t.virtualUsers}  polls ${t.openPolls}  req/s ${t.requests}  deliv/s ${t.deliveries}` +
    `  p95 ${ms(t.p95Ms)}  | total: lost ${t.totals.lost}  dup ${t.totals.duplicates}  err ${t.totals.errors}`
  );
}

function pct(x: number): string {
  return `${(x * 100).toFixed(x >= 0.999 && x < 1 ? 2 : 1)}%`;
}

export function formatSummary(s: RunSummary, where?: string): string {
  const lines: string[] = [];
  lines.push(`${s.pass ? 'PASS' : 'FAIL'}  run ${s.run}${s.release ? ` (${s.release})` : ''} against ${s.target}`);
  lines.push(
    `  ${s.durationS}s at scale ${s.scale}, speed ${s.speed}, ${s.mode}, window ${s.window}: ${s.learners} learners, ${s.proctors} proctors`,
  );
  lines.push(
    `  delivered ${s.delivered}/${s.expected} pairs, ${pct(s.withinTarget)} within target; lost ${s.lost}, duplicates ${s.duplicates}; ` +
      `latency over all expected pairs: p50 ${ms(s.latencyMs.p50)} p95 ${ms(s.latencyMs.p95)} p99 ${ms(s.latencyMs.p99)}, slowest delivered ${ms(s.latencyMs.max)}`,
  );
  for (const [name, st] of Object.entries(s.streams)) {
    lines.push(`    ${name.padEnd(8)} ${st.delivered}/${st.expected}, lost ${st.lost}, dup ${st.duplicates}, p95 ${ms(st.latencyMs.p95)}`);
  }
  lines.push(
    `  requests: ${s.requests.publish} publish, ${s.requests.subscribe} subscribe, ${s.requests.errors} errors, ${s.requests.retries} retries; ` +
      `${s.published} messages accepted; schedule lag p99 ${ms(s.scheduleLagMs.p99)}${s.generatorBound ? ' (GENERATOR-BOUND)' : ''}`,
  );
  lines.push(...formatErrorKinds(s));
  lines.push(`  SLO ${s.verdict.slo}:`);
  for (const c of s.verdict.clauses) {
    const observed = /^(\w+\.)?p\d/.test(c.expression) ? ms(c.observed) : String(c.observed);
    lines.push(`    ${c.pass ? 'ok  ' : 'FAIL'} ${c.expression} (observed ${observed})`);
  }
  for (const r of s.verdict.reasons) lines.push(`  FAIL ${r}`);
  if (where) lines.push(`  results: ${where}`);
  return `${lines.join('\n')}\n`;
}

/** The longest example shown on the terminal; the report and --json keep the stored one. */
const exampleChars = 120;

/** Errors by kind, most frequent first: count, share of that kind's requests, one example. */
function formatErrorKinds(s: RunSummary): string[] {
  const rows = failureRows(s.requests);
  if (rows.length === 0) return [];
  const width = Math.max(...rows.map((r) => r.kind.length));
  const countWidth = Math.max(...rows.map((r) => String(r.count).length));
  const out = ['  errors by kind:'];
  for (const r of rows) {
    const share = r.share === null ? '' : `  ${pct(r.share)} of ${r.of}`;
    const example = r.example.length > exampleChars ? `${r.example.slice(0, exampleChars - 1)}…` : r.example;
    out.push(`    ${r.kind.padEnd(width)}  ${String(r.count).padStart(countWidth)}${share}${example ? `  e.g. ${example}` : ''}`);
  }
  return out;
}
