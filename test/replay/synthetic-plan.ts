// A small hand-built plan for runtime tests: classes of one proctor and k learners, regular
// publishes and controls. The runtime accepts any Iterable<PlanEvent>, so no model is needed.

import type { PlanEvent } from '../../replay/plan-types.js';

export interface SyntheticPlan {
  classes: number;
  learnersPerClass: number;
  durationMs: number;
  publishEveryMs: number;
  messagesPerPublish?: number;
  controlEveryMs: number;
  /** Learners leave this long before the end (0: they stay to the end of the plan). */
  leaveBeforeEndMs?: number;
}

export function syntheticPlan(p: SyntheticPlan): PlanEvent[] {
  const events: PlanEvent[] = [];
  for (let c = 0; c < p.classes; c++) {
    const classId = `c${c}`;
    const proctor = `${classId}.p`;
    const roster = Array.from({ length: p.learnersPerClass }, (_, i) => `${classId}.l${i}`);
    // Stagger classes so events do not all share a millisecond.
    const offset = (c * 37) % Math.max(1, Math.min(p.publishEveryMs, 500));
    events.push({ kind: 'proctorJoin', atMs: offset, proctor, classId, roster });
    roster.forEach((learner, i) => {
      const join = offset + 1 + i;
      events.push({ kind: 'learnerJoin', atMs: join, learner, classId });
      for (let t = join + p.publishEveryMs; t < p.durationMs - 1; t += p.publishEveryMs) {
        events.push({ kind: 'publish', atMs: t, learner, messages: p.messagesPerPublish ?? 1 });
      }
      const leave = p.durationMs - (p.leaveBeforeEndMs ?? 0);
      if (p.leaveBeforeEndMs) events.push({ kind: 'learnerLeave', atMs: leave, learner });
    });
    let k = 0;
    for (let t = offset + p.controlEveryMs; t < p.durationMs - 1; t += p.controlEveryMs) {
      events.push({ kind: 'control', atMs: t, proctor, targets: [roster[k++ % roster.length]!] });
    }
  }
  return events.sort((a, b) => a.atMs - b.atMs);
}

/** Pairs the plan expects, computed independently of the runtime (everyone joined the whole time). */
export function expectedPairs(p: SyntheticPlan): number {
  return syntheticPlan(p).reduce((n, e) => {
    if (e.kind === 'publish') return n + e.messages; // one proctor per learner
    if (e.kind === 'control') return n + e.targets.length;
    return n;
  }, 0);
}
