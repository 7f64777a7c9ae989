// `rehearse model`: the model as one object (--json) and as a one-screen summary. Reads only
// through openModelReader plus the sources table, so it shows what the plan will see.

import type { Db } from '../db/open.js';
import { dayBounds, modelDays, openModelReader, sourceStore } from '../db/model-store.js';
import type { DistributionName } from '../db/model-types.js';
import { scaleSummary, type Summary } from '../stats/quantile.js';

export interface ModelDescription {
  learners: number;
  proctors: number;
  /** Learner sessions. */
  sessions: number;
  proctorSessions: number;
  span: { start: string; end: string };
  timezone: string;
  fingerprint: string;
  /** Roster size per proctor session. */
  learnersPerProctor: Summary;
  learnerPublishIntervalS: Summary;
  proctorControlIntervalS: Summary;
  sessionDurationS: Summary;
  proctorSessionDurationS: Summary;
  messagesPerPublish: Summary;
  pollDurationS: Summary;
  retryGapS: Summary;
  peakConcurrentLearners: number;
  peakConcurrentLearnersAt: string;
  arrivalsPerMinute: { peak: number; peakAt: string };
  requests: number;
  /** Each recorded day in the model's zone, with its peaks (plan and replay take --day, default the busiest). */
  days: Array<{ day: string; hours: number; learnerSessions: number; proctorSessions: number; peakConcurrentLearners: number; peakConcurrentLearnersAt: string; peakArrivals: number }>;
  sources: Array<{ path: string; sha256: string; format: string; lines: number; accepted: number; rejected: number; ingestedAt: string }>;
}

const empty: Summary = { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, max: 0 };

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function describeModel(db: Db): ModelDescription {
  const reader = openModelReader(db, { day: 'all' });
  const o = reader.overview();
  const summary = (name: DistributionName, factor = 1): Summary => {
    const d = reader.distribution(name);
    return d ? scaleSummary(d.summary, factor) : { ...empty };
  };
  let peak = { peak: 0, peakAt: iso(o.span.startMs) };
  for (const a of reader.arrivals()) if (a.learners > peak.peak) peak = { peak: a.learners, peakAt: iso(a.minuteMs) };
  const sources = sourceStore.list(db).map((s) => ({ path: s.path, sha256: s.sha256, format: s.format, lines: s.lines, accepted: s.accepted, rejected: s.rejected, ingestedAt: s.ingested_at }));
  return {
    learners: o.learners,
    proctors: o.proctors,
    sessions: o.sessions,
    proctorSessions: o.proctorSessions,
    span: { start: iso(o.span.startMs), end: iso(o.span.endMs) },
    timezone: o.timezone,
    fingerprint: o.fingerprint,
    learnersPerProctor: summary('rosterSize'),
    learnerPublishIntervalS: summary('learnerPublishInterval', 1e-3),
    proctorControlIntervalS: summary('proctorControlInterval', 1e-3),
    sessionDurationS: summary('sessionDuration', 1e-3),
    proctorSessionDurationS: summary('proctorSessionDuration', 1e-3),
    messagesPerPublish: summary('messagesPerPublish'),
    pollDurationS: summary('pollDuration', 1e-3),
    retryGapS: summary('retryGap', 1e-3),
    peakConcurrentLearners: o.peakConcurrentLearners,
    peakConcurrentLearnersAt: iso(o.peakConcurrentLearnersAtMs),
    arrivalsPerMinute: peak,
    requests: sourceStore.accepted(db),
    days: modelDays(db).map((d) => ({
      day: d.day,
      // Local hours: 23 or 25 on a day the clocks change.
      hours: hoursOf(d.day, o.timezone),
      learnerSessions: d.learnerSessions,
      proctorSessions: d.proctorSessions,
      peakConcurrentLearners: d.peakConcurrentLearners,
      peakConcurrentLearnersAt: iso(d.peakConcurrentLearnersAtMs),
      peakArrivals: d.peakArrivals,
    })),
    sources,
  };
}

function hoursOf(day: string, zone: string): number {
  const b = dayBounds(day, zone);
  return (b.endMs - b.startMs) / 3_600_000;
}

function fmt(n: number, digits = 1): string {
  if (!Number.isFinite(n)) return '-';
  return Math.abs(n) >= 100 || Number.isInteger(n) ? String(Math.round(n)) : n.toFixed(digits);
}

function row(label: string, s: Summary, unit: string): string {
  if (s.count === 0) return `  ${label.padEnd(26)} (none)`;
  return `  ${label.padEnd(26)} n=${String(s.count).padEnd(8)} mean ${fmt(s.mean)}${unit}  p50 ${fmt(s.p50)}${unit}  p90 ${fmt(s.p90)}${unit}  p99 ${fmt(s.p99)}${unit}  max ${fmt(s.max)}${unit}`;
}

/** The readable summary `rehearse model` prints. */
export function formatModelDescription(d: ModelDescription): string {
  const lines = [
    `Model of ${d.span.start} .. ${d.span.end}, ${d.requests} requests from ${d.sources.length} file${d.sources.length === 1 ? '' : 's'}`,
    `  zone ${d.timezone}`,
    `  learners ${d.learners} in ${d.sessions} sessions, proctors ${d.proctors} in ${d.proctorSessions} sessions`,
    `  peak concurrent learners ${d.peakConcurrentLearners} at ${d.peakConcurrentLearnersAt}; peak arrivals ${d.arrivalsPerMinute.peak}/min at ${d.arrivalsPerMinute.peakAt}`,
    row('learners per proctor', d.learnersPerProctor, ''),
    row('learner publish interval', d.learnerPublishIntervalS, 's'),
    row('proctor control interval', d.proctorControlIntervalS, 's'),
    row('messages per publish', d.messagesPerPublish, ''),
    row('learner session', d.sessionDurationS, 's'),
    row('proctor session', d.proctorSessionDurationS, 's'),
    row('long-poll duration', d.pollDurationS, 's'),
    row('retry gap after 5xx', d.retryGapS, 's'),
    `  fingerprint ${d.fingerprint.slice(0, 16)}`,
  ];
  if (d.days.length > 1) {
    const busiest = d.days.reduce((a, b) => (b.peakConcurrentLearners > a.peakConcurrentLearners ? b : a));
    lines.push(`  ${d.days.length} days (plan and replay use --day, default the busiest: ${busiest.day}):`);
    // A day the clocks change says how long it is: 23 or 25 local hours.
    const dayName = (day: (typeof d.days)[number]): string => (day.hours === 24 ? day.day : `${day.day} (${day.hours} h)`);
    const width = Math.max(...d.days.map((day) => dayName(day).length));
    for (const day of d.days) {
      lines.push(`    ${dayName(day).padEnd(width)}  learner sessions ${String(day.learnerSessions).padEnd(7)} peak concurrent ${String(day.peakConcurrentLearners).padEnd(6)} at ${day.peakConcurrentLearnersAt}  peak arrivals ${day.peakArrivals}/min${day === busiest ? '  <- busiest' : ''}`);
    }
  }
  return lines.join('\n') + '\n';
}
