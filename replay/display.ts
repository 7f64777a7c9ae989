// Text for people: the live line each second, the plain periodic line and the final verdict.
// Pure formatting over ReplayTick and RunSummary; the CLI decides where and how often.

import type { RunSummary } from '../db/run-types.js';
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

/** One line per second: elapsed, virtual users, requests/s, deliveries/s, p95, lost, duplicates, errors. */
export function formatTickLine(t: ReplayTick): string {
  const phase = t.phase === 'draining' ? ' draining' : '';
  return (
    `${clock(t.elapsedMs)}${phase}  vus ${t.virtualUsers}  polls ${t.openPolls}  req/s ${t.requests}  deliv/s ${t.deliveries}` +
    `  p95 ${ms(t.p95Ms)}  lost ${t.totals.lost}  dup ${t.totals.duplicates}  err ${t.totals.errors}`
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
      `latency p50 ${ms(s.latencyMs.p50)} p95 ${ms(s.latencyMs.p95)} p99 ${ms(s.latencyMs.p99)} max ${ms(s.latencyMs.max)}`,
  );
  for (const [name, st] of Object.entries(s.streams)) {
    lines.push(`    ${name.padEnd(8)} ${st.delivered}/${st.expected}, lost ${st.lost}, dup ${st.duplicates}, p95 ${ms(st.latencyMs.p95)}`);
  }
  lines.push(
    `  requests: ${s.requests.publish} publish, ${s.requests.subscribe} subscribe, ${s.requests.errors} errors, ${s.requests.retries} retries; ` +
      `${s.published} messages accepted; schedule lag p99 ${ms(s.scheduleLagMs.p99)}${s.generatorBound ? ' (GENERATOR-BOUND)' : ''}`,
  );
  lines.push(`  SLO ${s.verdict.slo}:`);
  for (const c of s.verdict.clauses) {
    const observed = /^(\w+\.)?p\d/.test(c.expression) ? ms(c.observed) : String(c.observed);
    lines.push(`    ${c.pass ? 'ok  ' : 'FAIL'} ${c.expression} (observed ${observed})`);
  }
  for (const r of s.verdict.reasons) lines.push(`  FAIL ${r}`);
  if (where) lines.push(`  results: ${where}`);
  return `${lines.join('\n')}\n`;
}
