// What the two modes hand the scheduler: classes in model time (epoch ms of the recorded day),
// each with its sessions and a lazy stream of their publishes and controls. The scheduler turns
// them into replay time, cuts them to the window and merges them in time order.

import type { Role } from '../../db/model-types.js';

export type SessionAction =
  | { atMs: number; kind: 'publish'; messages: number }
  | { atMs: number; kind: 'control'; targets: string[] };

export interface PlannedSession {
  /** 'c3.p' or 'c3.l7' (with the class's copy suffix). */
  id: string;
  role: Role;
  /** Model time. */
  startMs: number;
  endMs: number;
  /** Publishes and controls in ascending model time, within [startMs, endMs]. Called at most once, when the session is scheduled. */
  actions(): Iterator<SessionAction>;
}

export interface PlannedClass {
  id: string;
  /** Position in the source's sequence; the same for every shard, so shards split by it. */
  ordinal: number;
  proctor: PlannedSession | null;
  learners: PlannedSession[];
}

export interface ClassSource {
  /** A model time no session of any class not yet returned by next() starts before; Infinity when exhausted. */
  lowerBoundMs(): number;
  next(): PlannedClass | null;
}
