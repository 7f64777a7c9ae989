// A proctor session's roster, lead time and control targets (docs/model.md), from its own
// requests and the learner sessions near it in time. Pure: the update re-derives every proctor
// session near a changed learner session, so a roster spanning files comes out as from one file.

import type { SessionRecordRow } from '../../db/session-pack.js';
import { OP_PUBLISH, OP_SUBSCRIBE } from './facts.js';

/** How far before and after a proctor session a learner session may be to receive its controls. */
export const controlReachMs = 5 * 60_000;

export interface LearnerRef {
  id: number;
  startMs: number;
  endMs: number;
  publishTopic: number | null;
  controlTopic: number | null;
}

export interface ProctorLinks {
  roster: number[];
  rosterSize: number;
  /** First roster learner's start minus the proctor session's start; null for an empty roster. */
  leadTimeMs: number | null;
  /** For each successful control publish in order, the learner sessions it addressed. */
  targets: number[][];
}

/**
 * `learners` must hold every learner session overlapping [startMs - controlReachMs,
 * endMs + controlReachMs], sorted by start then id.
 */
export function linkProctor(p: { startMs: number; endMs: number; records: readonly SessionRecordRow[] }, learners: readonly LearnerRef[]): ProctorLinks {
  const watched = new Set<number>();
  for (const r of p.records) if (r.op === OP_SUBSCRIBE) for (const t of r.topics) watched.add(t);
  const roster: number[] = [];
  let firstLearnerStart = Infinity;
  const byControlTopic = new Map<number, LearnerRef[]>();
  for (const s of learners) {
    if (s.publishTopic !== null && watched.has(s.publishTopic) && s.startMs <= p.endMs && s.endMs >= p.startMs) {
      roster.push(s.id);
      firstLearnerStart = Math.min(firstLearnerStart, s.startMs);
    }
    if (s.controlTopic !== null) {
      const list = byControlTopic.get(s.controlTopic);
      if (list) list.push(s);
      else byControlTopic.set(s.controlTopic, [s]);
    }
  }
  const targets: number[][] = [];
  for (const r of p.records) {
    if (r.op !== OP_PUBLISH || r.status >= 400) continue;
    const addressed = new Set<number>();
    for (const t of r.topics) {
      const target = covering(byControlTopic.get(t) ?? [], r.startMs);
      if (target) addressed.add(target.id);
    }
    targets.push([...addressed]);
  }
  return { roster, rosterSize: roster.length, leadTimeMs: roster.length > 0 ? firstLearnerStart - p.startMs : null, targets };
}

/** The session that covers `atMs`, else the one nearest to it (the earlier on ties). */
function covering(list: readonly LearnerRef[], atMs: number): LearnerRef | undefined {
  let best: LearnerRef | undefined;
  let bestDistance = Infinity;
  for (const s of list) {
    const distance = atMs < s.startMs ? s.startMs - atMs : atMs > s.endMs ? atMs - s.endMs : 0;
    if (distance < bestDistance) {
      best = s;
      bestDistance = distance;
    }
  }
  return best;
}
