// The model as the plan sees it. `ingest/` builds it (db/model-store.ts implements a
// ModelReader over SQLite); `replay/` only reads it through this interface, so plan code
// and its tests never need SQLite.

import type { Summary } from '../stats/quantile.js';

export type Role = 'learner' | 'proctor';

/** Names of the fitted distributions. Time-valued ones are in milliseconds. */
export const distributionNames = [
  'learnerPublishInterval', // ms between consecutive publishes of one learner session
  'proctorControlInterval', // ms between consecutive control publishes of one proctor session
  'messagesPerPublish', // messages in one learner publish
  'controlTargets', // learners addressed by one control publish
  'sessionDuration', // ms, learner sessions
  'proctorSessionDuration', // ms, proctor sessions
  'rosterSize', // learners watched by one proctor session
  'pollDuration', // ms a long-poll stayed open
  'retryGap', // ms from a failed request (5xx) to the same client's next request
  'proctorLeadTime', // ms from a proctor session's start to its first learner's start (negative: after)
] as const;
export type DistributionName = (typeof distributionNames)[number];

export interface Distribution {
  name: DistributionName;
  unit: 'ms' | 'count';
  /** Exact over every observed value. */
  summary: Summary;
  /** Ascending, at most 100k values, a uniform deterministic subsample when there were more. */
  samples: Float64Array;
}

export interface ModelOverview {
  /** sha256 over the ingested sources' hashes and the model schema: two runs replayed the same model iff equal. */
  fingerprint: string;
  span: { startMs: number; endMs: number };
  /** IANA zone of the recorded day, for showing clock times (e.g. --window 09:30-10:30); 'UTC' if unknown. */
  timezone: string;
  learners: number;
  proctors: number;
  /** Learner sessions. */
  sessions: number;
  proctorSessions: number;
  peakConcurrentLearners: number;
  peakConcurrentLearnersAtMs: number;
}

export interface SessionRecord {
  id: number;
  role: Role;
  /** Pseudonymous actor id; sessions of one actor share it. */
  actor: string;
  startMs: number;
  endMs: number;
  publishes: number;
  messages: number;
  polls: number;
  controls: number;
  errors: number;
}

export type TimelineKind = 'publish' | 'control' | 'poll' | 'error';

export interface TimelineEvent {
  /** Milliseconds from the session's start. */
  atMs: number;
  kind: TimelineKind;
  /** publish/control: messages sent. */
  messages: number;
  /** poll: how long it stayed open. */
  durationMs: number;
  status: number;
  /** control: the learner session addressed (one event per target). */
  targetSessionId: number | null;
}

/** A proctor session with the learner sessions on its roster; learners nobody watched form classes with proctor null. */
export interface RecordedClass {
  proctor: SessionRecord | null;
  learners: SessionRecord[];
}

export interface ArrivalMinute {
  minuteMs: number;
  learners: number;
}

/** One recorded day of the model (in its zone): sessions starting that day, their span and peaks. */
export interface ModelDay {
  /** YYYY-MM-DD in the model's zone. */
  day: string;
  startMs: number;
  endMs: number;
  learnerSessions: number;
  proctorSessions: number;
  peakConcurrentLearners: number;
  peakConcurrentLearnersAtMs: number;
  /** Most learner sessions starting in one minute, and that minute. */
  peakArrivals: number;
  peakArrivalsAtMs: number;
}

export interface ModelReader {
  overview(): ModelOverview;
  distribution(name: DistributionName): Distribution | null;
  /** Every minute of the span, zeros included, ascending. */
  arrivals(): ArrivalMinute[];
  /** Classes ordered by their earliest session start. Each learner session appears in exactly one class. */
  classes(): Iterable<RecordedClass>;
  timeline(sessionId: number): TimelineEvent[];
  /** The recorded days, ascending (a model written by ingest; absent or empty for hand-made ones). */
  days?(): ModelDay[];
}
