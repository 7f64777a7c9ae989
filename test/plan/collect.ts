// Streams a plan once and keeps what the plan tests assert on, checking the event invariants
// (time order, joins before traffic, leaves last, controls addressed to learners in session) as it goes.

import type { Plan } from '../../replay/plan.js';

export interface Collected {
  events: number;
  publishes: number;
  controls: number;
  classes: Set<string>;
  learnerJoins: number;
  proctorJoins: number;
  /** Gaps between consecutive publishes of one learner (replay ms), up to `maxGaps`. */
  publishGaps: number[];
  /** Replay leave - join of learners that left before the end. */
  sessionDurations: number[];
  rosterSizes: number[];
  /** Learners in session at `probeMs`. */
  liveAtProbe: number;
  publishesPerMinute: number[];
  lastAtMs: number;
  leftAtEnd: number;
  problems: string[];
}

export function collect(plan: Plan, opts: { maxGaps?: number; probeMs?: number } = {}): Collected {
  const maxGaps = opts.maxGaps ?? 200_000;
  const c: Collected = {
    events: 0,
    publishes: 0,
    controls: 0,
    classes: new Set(),
    learnerJoins: 0,
    proctorJoins: 0,
    publishGaps: [],
    sessionDurations: [],
    rosterSizes: [],
    liveAtProbe: 0,
    publishesPerMinute: [],
    lastAtMs: 0,
    leftAtEnd: 0,
    problems: [],
  };
  const joined = new Map<string, number>();
  const lastPublish = new Map<string, number>();
  const left = new Set<string>();
  const problem = (m: string): void => void (c.problems.length < 20 && c.problems.push(m));
  let prev = 0;
  for (const e of plan.events()) {
    c.events++;
    if (e.atMs < prev) problem(`out of order at ${e.atMs} after ${prev}`);
    if (e.atMs < 0 || e.atMs > plan.durationMs) problem(`${e.kind} at ${e.atMs} outside [0, ${plan.durationMs}]`);
    prev = e.atMs;
    c.lastAtMs = e.atMs;
    switch (e.kind) {
      case 'learnerJoin':
      case 'proctorJoin': {
        const id = e.kind === 'learnerJoin' ? e.learner : e.proctor;
        if (joined.has(id) || left.has(id)) problem(`${id} joined twice`);
        if (!id.startsWith(`${e.classId}.`)) problem(`${id} not in ${e.classId}`);
        if (e.atMs >= plan.durationMs) problem(`${id} joins at the end`);
        joined.set(id, e.atMs);
        c.classes.add(e.classId);
        if (e.kind === 'learnerJoin') c.learnerJoins++;
        else {
          c.proctorJoins++;
          c.rosterSizes.push(e.roster.length);
          for (const l of e.roster) if (!l.startsWith(`${e.classId}.l`)) problem(`roster of ${id} holds ${l}`);
        }
        if (opts.probeMs !== undefined && e.kind === 'learnerJoin' && e.atMs <= opts.probeMs) c.liveAtProbe++;
        break;
      }
      case 'publish': {
        c.publishes++;
        if (!joined.has(e.learner)) problem(`${e.learner} publishes outside its session`);
        const m = Math.floor(e.atMs / 60_000);
        while (c.publishesPerMinute.length <= m) c.publishesPerMinute.push(0);
        c.publishesPerMinute[m]!++;
        const last = lastPublish.get(e.learner);
        if (last !== undefined && c.publishGaps.length < maxGaps) c.publishGaps.push(e.atMs - last);
        lastPublish.set(e.learner, e.atMs);
        break;
      }
      case 'control':
        c.controls++;
        if (!joined.has(e.proctor)) problem(`${e.proctor} controls outside its session`);
        for (const t of e.targets) if (!joined.has(t)) problem(`control to ${t}, not in session`);
        break;
      case 'learnerLeave':
      case 'proctorLeave': {
        const id = e.kind === 'learnerLeave' ? e.learner : e.proctor;
        const at = joined.get(id);
        if (at === undefined) problem(`${id} leaves without joining`);
        else {
          joined.delete(id);
          left.add(id);
          if (e.atMs === plan.durationMs) c.leftAtEnd++;
          else if (e.kind === 'learnerLeave') c.sessionDurations.push(e.atMs - at);
          if (opts.probeMs !== undefined && e.kind === 'learnerLeave' && e.atMs <= opts.probeMs) c.liveAtProbe--;
        }
        lastPublish.delete(id);
        break;
      }
    }
  }
  if (joined.size > 0) problem(`${joined.size} sessions never left, e.g. ${[...joined.keys()][0]}`);
  return c;
}

/** Every event as a sorted list of JSON lines: equal iff two plans (or a union of shards) hold the same events. */
export function eventLines(plan: Plan): string[] {
  return Array.from(plan.events(), (e) => JSON.stringify(e)).sort();
}
