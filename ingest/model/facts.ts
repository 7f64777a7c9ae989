// What one session contributes to the model, from its own requests and its actor's role alone
// (docs/model.md): its row's fields and its values of the per-session distributions. Pure, so a
// session re-derived later (its actor's role changed, a later file continued it) takes back
// exactly what it gave.

import type { DerivedSessionFields } from '../../db/model-store.js';
import type { DistributionName } from '../../db/model-types.js';
import type { SessionRecordRow } from '../../db/session-pack.js';
import type { ActorRole } from './roles.js';

export const OP_PUBLISH = 1;
export const OP_SUBSCRIBE = 2;

/** The stored row's derived fields (without the role, which is the actor's) and the session's span. */
export interface SessionFacts extends Omit<DerivedSessionFields, 'role'> {
  startMs: number;
  endMs: number;
  /** Distribution values this session gives (rosterSize and proctorLeadTime come from rosters.ts). */
  values: Array<[DistributionName, number]>;
}

function mostFrequent(counts: Map<number, number>): number | null {
  let best: number | null = null;
  let bestCount = 0;
  for (const [k, c] of counts) {
    if (c > bestCount || (c === bestCount && best !== null && k < best)) {
      best = k;
      bestCount = c;
    }
  }
  return best;
}

function bump(map: Map<number, number>, key: number): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

/** The facts of a session of `records` (sorted by start) for an actor of `role`. */
export function sessionFacts(records: readonly SessionRecordRow[], role: ActorRole): SessionFacts {
  const values: Array<[DistributionName, number]> = [];
  let endMs = -Infinity;
  let publishes = 0;
  let messages = 0;
  let polls = 0;
  let errors = 0;
  const pubCounts = new Map<number, number>();
  const subCounts = new Map<number, number>();
  // retryGap: from a failed request's end to the first request of the session starting at or after it.
  let failedEnds: number[] = [];
  let lastPublish = -1;
  for (const r of records) {
    const end = r.startMs + r.durationMs;
    endMs = Math.max(endMs, end);
    // Topics count every attempt (a failed publish still names its topic).
    if (r.op === OP_PUBLISH) for (const t of r.topics) bump(pubCounts, t);
    else if (r.op === OP_SUBSCRIBE) for (const t of r.topics) bump(subCounts, t);
    if (role === 'other') continue;
    if (failedEnds.length > 0) {
      const waiting: number[] = [];
      for (const fe of failedEnds) {
        if (r.startMs >= fe) values.push(['retryGap', r.startMs - fe]);
        else waiting.push(fe);
      }
      failedEnds = waiting;
    }
    if (r.status >= 500) {
      errors++;
      failedEnds.push(end);
      continue;
    }
    if (r.status >= 400) continue;
    if (r.op === OP_PUBLISH) {
      publishes++;
      messages += r.messages;
      if (lastPublish >= 0) values.push([role === 'learner' ? 'learnerPublishInterval' : 'proctorControlInterval', r.startMs - lastPublish]);
      lastPublish = r.startMs;
      if (role === 'learner') values.push(['messagesPerPublish', r.messages]);
      else values.push(['controlTargets', r.topics.length]);
    } else if (r.op === OP_SUBSCRIBE) {
      polls++;
      values.push(['pollDuration', r.durationMs]);
    }
  }
  const startMs = records[0]!.startMs;
  if (role === 'learner') values.push(['sessionDuration', endMs - startMs]);
  else if (role === 'proctor') values.push(['proctorSessionDuration', endMs - startMs]);
  return {
    startMs,
    endMs,
    publishTopic: mostFrequent(pubCounts),
    controlTopic: mostFrequent(subCounts),
    publishes: role === 'learner' ? publishes : 0,
    messages,
    polls,
    controls: role === 'proctor' ? publishes : 0,
    errors,
    values,
  };
}
