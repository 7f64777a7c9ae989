// Clone mode: the recorded classes, each copied floor(scale) times plus one more with
// probability frac(scale), every copy but the first shifted by a seeded jitter so copies are
// not in lockstep. A class keeps its proctor, roster and timelines.

import { forkRandom } from '../../stats/random.js';
import type { ModelReader, RecordedClass, SessionRecord, TimelineEvent } from '../../db/model-types.js';
import type { ClassSource, PlannedClass, PlannedSession, SessionAction } from './source.js';

/** Copies after the first start up to this much earlier or later than the recorded class (model time). */
export const cloneJitterMs = 5 * 60_000;

interface Copy {
  cls: PlannedClass;
  earliestMs: number;
}

export function cloneSource(model: ModelReader, scale: number, seed: number): ClassSource {
  const recorded = model.classes()[Symbol.iterator]();
  let lookahead: { cls: RecordedClass; earliestMs: number } | null = null;
  let recordedIndex = 0;
  let ordinal = 0;
  const pending: Copy[] = [];

  const fill = (): void => {
    if (lookahead) return;
    const r = recorded.next();
    if (!r.done) lookahead = { cls: r.value, earliestMs: earliestStart(r.value) };
  };

  const expand = (): void => {
    fill();
    const item = lookahead;
    if (!item) return;
    lookahead = null;
    recordedIndex++;
    const baseId = `c${recordedIndex}`;
    const rng = forkRandom(seed, `clone/${baseId}`);
    const copies = Math.floor(scale) + (rng.next() < scale - Math.floor(scale) ? 1 : 0);
    const timelines = new Map<number, TimelineEvent[]>();
    const timeline = (id: number): TimelineEvent[] => {
      let t = timelines.get(id);
      if (!t) {
        t = model.timeline(id);
        timelines.set(id, t);
      }
      return t;
    };
    const made: Copy[] = [];
    for (let k = 0; k < copies; k++) {
      const shiftMs = k === 0 ? 0 : Math.round((rng.next() * 2 - 1) * cloneJitterMs);
      const id = k === 0 ? baseId : `${baseId}-${k}`;
      made.push({ cls: copyClass(item.cls, id, 0, shiftMs, timeline), earliestMs: item.earliestMs + shiftMs });
    }
    made.sort((a, b) => a.earliestMs - b.earliestMs);
    for (const c of made) c.cls.ordinal = ordinal++;
    pending.push(...made);
    pending.sort((a, b) => a.earliestMs - b.earliestMs);
  };

  return {
    lowerBoundMs(): number {
      fill();
      const next = lookahead ? lookahead.earliestMs - cloneJitterMs : Number.POSITIVE_INFINITY;
      return Math.min(pending[0]?.earliestMs ?? Number.POSITIVE_INFINITY, next);
    },
    next(): PlannedClass | null {
      // Expand recorded classes until the earliest pending copy cannot be preceded by a later class's copy.
      for (;;) {
        fill();
        if (!lookahead || (pending.length > 0 && lookahead.earliestMs - cloneJitterMs >= pending[0]!.earliestMs)) break;
        expand();
      }
      return pending.shift()?.cls ?? null;
    },
  };
}

function earliestStart(cls: RecordedClass): number {
  let t = cls.proctor?.startMs ?? Number.POSITIVE_INFINITY;
  for (const l of cls.learners) if (l.startMs < t) t = l.startMs;
  return t;
}

function copyClass(
  cls: RecordedClass,
  id: string,
  ordinal: number,
  shiftMs: number,
  timeline: (sessionId: number) => TimelineEvent[],
): PlannedClass {
  const learnerIds = new Map<number, string>();
  cls.learners.forEach((s, k) => learnerIds.set(s.id, `${id}.l${k + 1}`));
  const session = (s: SessionRecord, sid: string): PlannedSession => ({
    id: sid,
    role: s.role,
    startMs: s.startMs + shiftMs,
    endMs: s.endMs + shiftMs,
    actions: () => recordedActions(timeline(s.id), s.startMs + shiftMs, learnerIds),
  });
  return {
    id,
    ordinal,
    proctor: cls.proctor ? session(cls.proctor, `${id}.p`) : null,
    learners: cls.learners.map((s, k) => session(s, `${id}.l${k + 1}`)),
  };
}

/** Successful publishes, and controls grouped by instant (the timeline has one row per target). */
function* recordedActions(events: TimelineEvent[], startMs: number, learnerIds: Map<number, string>): Generator<SessionAction> {
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    if (e.status >= 400) continue;
    if (e.kind === 'publish') {
      yield { atMs: startMs + e.atMs, kind: 'publish', messages: Math.max(1, e.messages) };
    } else if (e.kind === 'control') {
      const targets: string[] = [];
      let j = i;
      for (; j < events.length; j++) {
        const c = events[j]!;
        if (c.kind !== 'control' || c.atMs !== e.atMs) break;
        const target = c.targetSessionId === null ? undefined : learnerIds.get(c.targetSessionId);
        if (c.status < 400 && target !== undefined && !targets.includes(target)) targets.push(target);
      }
      i = j - 1;
      if (targets.length > 0) yield { atMs: startMs + e.atMs, kind: 'control', targets };
    }
  }
}
