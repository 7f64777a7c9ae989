// An in-memory ModelReader for the plan's tests and bench: a school day of classes (a proctor
// and ~25 learners starting together, a morning surge), with lognormal publish gaps, controls,
// and distributions computed from the generated sessions exactly as docs/model.md defines them.

import { DateTime } from 'luxon';
import { summarize } from '../../stats/quantile.js';
import { forkRandom, randomExponential, randomLognormal, randomNormal, type Random } from '../../stats/random.js';
import type {
  ArrivalMinute,
  Distribution,
  DistributionName,
  ModelOverview,
  ModelReader,
  RecordedClass,
  SessionRecord,
  TimelineEvent,
} from '../../db/model-types.js';

export interface SyntheticDayOptions {
  seed?: number;
  classes?: number;
  /** Median gap between a learner's publishes. */
  publishMedianMs?: number;
  sessionMedianMs?: number;
  timezone?: string;
  /** Classes without a proctor (single learners nobody watched), as a share of classes. */
  unwatchedShare?: number;
  /** Share of classes in the 08:15 surge (default 0.6); the rest arrive uniformly 08:30-14:00. */
  surgeShare?: number;
}

export interface SyntheticModel extends ModelReader {
  /** Counts of calls, so tests can prove laziness. */
  calls: { timeline: number; classes: number };
}

const minuteMs = 60_000;

export function syntheticModel(opts: SyntheticDayOptions = {}): SyntheticModel {
  const seed = opts.seed ?? 1;
  const zone = opts.timezone ?? 'Europe/Paris';
  const nClasses = opts.classes ?? 60;
  const publishMedian = opts.publishMedianMs ?? 15_000;
  const sessionMedian = opts.sessionMedianMs ?? 40 * minuteMs;
  const day = DateTime.fromISO('2026-09-01T00:00', { zone });
  const at = (h: number, m = 0): number => day.plus({ hours: h, minutes: m }).toMillis();
  const rng = forkRandom(seed, 'synthetic');

  const sessions: SessionRecord[] = [];
  const timelines = new Map<number, TimelineEvent[]>();
  const classes: RecordedClass[] = [];
  let nextId = 1;
  const session = (role: 'learner' | 'proctor', actor: string, startMs: number, endMs: number): SessionRecord => {
    const s: SessionRecord = { id: nextId++, role, actor, startMs, endMs, publishes: 0, messages: 0, polls: 0, controls: 0, errors: 0 };
    sessions.push(s);
    return s;
  };

  for (let c = 0; c < nClasses; c++) {
    // Morning surge: most classes start around 08:15, the rest through the day until 14:00.
    const surge = rng.next() < (opts.surgeShare ?? 0.6);
    const startMs = Math.round(surge ? at(8, 15) + randomNormal(rng) * 8 * minuteMs : at(8, 30) + rng.next() * (at(14) - at(8, 30)));
    const unwatched = rng.next() < (opts.unwatchedShare ?? 0.05);
    if (unwatched) {
      const l = session('learner', `u${c}`, startMs, startMs + Math.round(randomLognormal(rng, sessionMedian, 0.3)));
      timelines.set(l.id, learnerTimeline(rng, l, publishMedian));
      classes.push({ proctor: null, learners: [l] });
      continue;
    }
    const roster = Math.max(5, Math.min(40, Math.round(randomLognormal(rng, 25, 0.2))));
    const proctorEnd = startMs + Math.round(randomLognormal(rng, sessionMedian * 1.25, 0.2));
    const proctor = session('proctor', `p${c}`, startMs, proctorEnd);
    const lead = Math.round(60_000 + randomNormal(rng) * 30_000);
    const learners: SessionRecord[] = [];
    for (let k = 0; k < roster; k++) {
      const ls = startMs + lead + (k === 0 ? 0 : Math.round(Math.min(150_000, randomExponential(rng, 30_000))));
      const l = session('learner', `s${c}-${k}`, ls, ls + Math.round(randomLognormal(rng, sessionMedian, 0.3)));
      timelines.set(l.id, learnerTimeline(rng, l, publishMedian));
      learners.push(l);
    }
    timelines.set(proctor.id, proctorTimeline(rng, proctor, learners));
    classes.push({ proctor, learners });
  }
  const earliest = (c: RecordedClass): number => Math.min(c.proctor?.startMs ?? Infinity, ...c.learners.map((l) => l.startMs));
  classes.sort((a, b) => earliest(a) - earliest(b));

  // Distributions, as docs/model.md defines them.
  const values: Record<DistributionName, number[]> = {
    learnerPublishInterval: [],
    proctorControlInterval: [],
    messagesPerPublish: [],
    controlTargets: [],
    sessionDuration: [],
    proctorSessionDuration: [],
    rosterSize: [],
    pollDuration: [],
    retryGap: [],
    proctorLeadTime: [],
  };
  for (const s of sessions) {
    const t = timelines.get(s.id) ?? [];
    if (s.role === 'learner') {
      values.sessionDuration.push(s.endMs - s.startMs);
      const pubs = t.filter((e) => e.kind === 'publish');
      pubs.forEach((e, i) => {
        values.messagesPerPublish.push(e.messages);
        if (i > 0) values.learnerPublishInterval.push(e.atMs - pubs[i - 1]!.atMs);
      });
    } else {
      values.proctorSessionDuration.push(s.endMs - s.startMs);
      const instants = [...new Set(t.filter((e) => e.kind === 'control').map((e) => e.atMs))];
      instants.forEach((a, i) => {
        values.controlTargets.push(t.filter((e) => e.kind === 'control' && e.atMs === a).length);
        if (i > 0) values.proctorControlInterval.push(a - instants[i - 1]!);
      });
    }
  }
  for (const c of classes) {
    if (!c.proctor) continue;
    values.rosterSize.push(c.learners.length);
    values.proctorLeadTime.push(Math.min(...c.learners.map((l) => l.startMs)) - c.proctor.startMs);
  }
  const pollRng = forkRandom(seed, 'polls');
  for (let i = 0; i < 2000; i++) values.pollDuration.push(Math.min(30_000, randomLognormal(pollRng, 20_000, 0.4)));

  const distributions = new Map<DistributionName, Distribution>();
  for (const [name, v] of Object.entries(values) as [DistributionName, number[]][]) {
    if (v.length === 0) continue;
    const sorted = Float64Array.from(v).sort();
    const unit = ['messagesPerPublish', 'controlTargets', 'rosterSize'].includes(name) ? 'count' : 'ms';
    distributions.set(name, { name, unit, summary: summarize(sorted, true), samples: subsample(sorted, 100_000) });
  }

  const spanStart = at(7);
  const spanEnd = Math.max(at(17), ...sessions.map((s) => s.endMs));
  const arrivals: ArrivalMinute[] = [];
  const base = Math.floor(spanStart / minuteMs) * minuteMs;
  for (let m = base; m < spanEnd; m += minuteMs) arrivals.push({ minuteMs: m, learners: 0 });
  for (const s of sessions) if (s.role === 'learner') arrivals[Math.floor((s.startMs - base) / minuteMs)]!.learners++;

  const learnerSessions = sessions.filter((s) => s.role === 'learner');
  const edges = learnerSessions.flatMap((s) => [[s.startMs, 1] as const, [s.endMs, -1] as const]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let live = 0;
  let peak = 0;
  let peakAt = spanStart;
  for (const [t, d] of edges) {
    live += d;
    if (live > peak) {
      peak = live;
      peakAt = t;
    }
  }
  const overview: ModelOverview = {
    fingerprint: `synthetic-${seed}-${nClasses}`,
    span: { startMs: spanStart, endMs: spanEnd },
    timezone: zone,
    learners: new Set(learnerSessions.map((s) => s.actor)).size,
    proctors: classes.filter((c) => c.proctor).length,
    sessions: learnerSessions.length,
    proctorSessions: classes.filter((c) => c.proctor).length,
    peakConcurrentLearners: peak,
    peakConcurrentLearnersAtMs: peakAt,
  };
  const calls = { timeline: 0, classes: 0 };
  return {
    calls,
    overview: () => overview,
    distribution: (name) => distributions.get(name) ?? null,
    arrivals: () => arrivals,
    classes: () => {
      calls.classes++;
      return classes;
    },
    timeline: (id) => {
      calls.timeline++;
      return timelines.get(id) ?? [];
    },
  };
}

function learnerTimeline(rng: Random, s: SessionRecord, publishMedian: number): TimelineEvent[] {
  const events: TimelineEvent[] = [];
  const duration = s.endMs - s.startMs;
  let t = Math.round(rng.next() * publishMedian);
  while (t <= duration) {
    const messages = 1 + Math.floor(rng.next() * rng.next() * 4);
    events.push({ atMs: t, kind: 'publish', messages, durationMs: 20, status: 200, targetSessionId: null });
    s.publishes++;
    s.messages += messages;
    t += Math.max(1, Math.round(randomLognormal(rng, publishMedian, 0.6)));
  }
  return events;
}

function proctorTimeline(rng: Random, p: SessionRecord, roster: SessionRecord[]): TimelineEvent[] {
  const events: TimelineEvent[] = [];
  let t = Math.round(randomLognormal(rng, 120_000, 0.5));
  while (p.startMs + t <= p.endMs) {
    const now = p.startMs + t;
    const present = roster.filter((l) => l.startMs <= now && now < l.endMs);
    if (present.length > 0) {
      const n = Math.min(present.length, 1 + Math.floor(rng.next() * 3));
      const chosen = new Set<SessionRecord>();
      while (chosen.size < n) chosen.add(present[Math.floor(rng.next() * present.length)]!);
      for (const l of chosen) events.push({ atMs: t, kind: 'control', messages: 1, durationMs: 15, status: 200, targetSessionId: l.id });
      p.controls++;
    }
    t += Math.max(1, Math.round(randomLognormal(rng, 120_000, 0.5)));
  }
  return events;
}

function subsample(sorted: Float64Array, max: number): Float64Array {
  if (sorted.length <= max) return sorted;
  const out = new Float64Array(max);
  for (let i = 0; i < max; i++) out[i] = sorted[Math.floor((i * sorted.length) / max)]!;
  return out;
}
