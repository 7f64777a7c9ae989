// The merge: classes from a source (model time) become PlanEvents in replay time, in time
// order, lazily. A heap holds one cursor per live session keyed by its next event; classes are
// pulled from the source only when its lower bound says they could come next, so memory is
// bounded by the sessions in flight, not by the day.

import { forkRandom } from '../../stats/random.js';
import type { PlanEvent } from '../plan-types.js';
import { MinHeap } from '../../core/min-heap.js';
import type { ClassSource, PlannedClass, PlannedSession, SessionAction } from './source.js';

export interface ScheduleParams {
  /** Model time of replay time 0. */
  windowStartMs: number;
  speed: number;
  /** Replay time after which nothing starts; sessions still in flight leave at it. */
  durationMs: number;
  rampMs: number;
  seed: number;
  shard: { index: number; count: number };
}

// At one instant: joins first (proctors before their learners), then traffic, then leaves.
const rank = { proctorJoin: 0, learnerJoin: 1, publish: 2, control: 2, learnerLeave: 3, proctorLeave: 4 } as const;

interface Cursor {
  atMs: number;
  rank: number;
  seq: number;
  state: 'join' | 'act' | 'leave';
  session: PlannedSession;
  classId: string;
  roster: string[] | null;
  joinModelMs: number;
  leaveAtMs: number;
  actions: Iterator<SessionAction> | null;
  next: SessionAction | null;
  /** Learner id -> replay [join, leave), to address controls only to learners in session. */
  present: Map<string, [number, number]>;
}

const before = (a: Cursor, b: Cursor): boolean => a.atMs < b.atMs || (a.atMs === b.atMs && (a.rank < b.rank || (a.rank === b.rank && a.seq < b.seq)));

export function* schedule(source: ClassSource, p: ScheduleParams): Generator<PlanEvent, void, undefined> {
  const heap = new MinHeap<Cursor>(before);
  let seq = 0;
  const toReplay = (modelMs: number): number => (modelMs - p.windowStartMs) / p.speed;

  const admit = (cls: PlannedClass): void => {
    const sessions = cls.proctor ? [cls.proctor, ...cls.learners] : cls.learners;
    const warm = sessions.some((s) => s.startMs < p.windowStartMs);
    // A warm class (in session when the window opens) joins at once, or at a seeded point of the ramp.
    const delayMs = warm && p.rampMs > 0 ? forkRandom(p.seed, `ramp/${cls.id}`).next() * p.rampMs : 0;
    const cutModelMs = p.windowStartMs + delayMs * p.speed;
    const planned: { s: PlannedSession; joinModelMs: number; join: number; leave: number }[] = [];
    for (const s of sessions) {
      const joinModelMs = warm ? Math.max(s.startMs, cutModelMs) : s.startMs;
      const join = toReplay(joinModelMs);
      if (joinModelMs >= s.endMs || join >= p.durationMs) continue;
      planned.push({ s, joinModelMs, join, leave: Math.min(toReplay(s.endMs), p.durationMs) });
    }
    const present = new Map<string, [number, number]>();
    for (const x of planned) if (x.s.role === 'learner') present.set(x.s.id, [x.join, x.leave]);
    for (const x of planned) {
      const isProctor = x.s.role === 'proctor';
      heap.push({
        atMs: x.join,
        rank: isProctor ? rank.proctorJoin : rank.learnerJoin,
        seq: seq++,
        state: 'join',
        session: x.s,
        classId: cls.id,
        roster: isProctor ? [...present.keys()] : null,
        joinModelMs: x.joinModelMs,
        leaveAtMs: x.leave,
        actions: null,
        next: null,
        present,
      });
    }
  };

  // Moves a cursor to its next publish/control in the window, or to its leave.
  const advance = (c: Cursor): void => {
    c.actions ??= c.session.actions();
    for (;;) {
      const r = c.actions.next();
      if (r.done) break;
      const a = r.value;
      if (a.atMs < c.joinModelMs) continue;
      const at = toReplay(a.atMs);
      if (at >= p.durationMs || at > c.leaveAtMs) break;
      c.next = a;
      c.atMs = at;
      c.rank = rank[a.kind];
      c.state = 'act';
      return;
    }
    c.next = null;
    c.state = 'leave';
    c.atMs = c.leaveAtMs;
    c.rank = c.session.role === 'proctor' ? rank.proctorLeave : rank.learnerLeave;
  };

  let sourceDone = false;
  for (;;) {
    const top = heap.peek();
    const bound = sourceDone ? Number.POSITIVE_INFINITY : source.lowerBoundMs();
    const boundAt = Math.max(0, toReplay(bound));
    if (bound !== Number.POSITIVE_INFINITY && boundAt < p.durationMs && (!top || boundAt <= top.atMs)) {
      const cls = source.next();
      if (!cls) sourceDone = true;
      else if ( cls.ordinal % p.shard.count === p.shard.index) admit(cls);
      continue;
    }
    if (!top) return;
    const c = top;
    if (c.state === 'join') {
      yield c.session.role === 'proctor'
        ? { kind: 'proctorJoin', atMs: c.atMs, proctor: c.session.id, classId: c.classId, roster: c.roster ?? [] }
        : { kind: 'learnerJoin', atMs: c.atMs, learner: c.session.id, classId: c.classId };
      advance(c);
      heap.replaceTop(c);
    } else if (c.state === 'act') {
      const a = c.next!;
      if (a.kind === 'publish') {
        yield { kind: 'publish', atMs: c.atMs, learner: c.session.id, messages: a.messages };
      } else {
        const at = c.atMs;
        const targets = a.targets.filter((id) => {
          const span = c.present.get(id);
          return span !== undefined && span[0] <= at && at < span[1];
        });
        if (targets.length > 0) yield { kind: 'control', atMs: at, proctor: c.session.id, targets };
      }
      advance(c);
      heap.replaceTop(c);
    } else {
      yield c.session.role === 'proctor'
        ? { kind: 'proctorLeave', atMs: c.atMs, proctor: c.session.id }
        : { kind: 'learnerLeave', atMs: c.atMs, learner: c.session.id };
      heap.pop();
    }
  }
}
