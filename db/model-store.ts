// The model's SQLite side (db/migrations/007-compact-model.ts): a ModelReader over the model
// tables (what plan, replay and fidelity read) and ModelStore, every statement ingest writes the
// model with. Sessions keep their requests packed (db/session-pack.ts); nothing here decides what
// the model means: that is ingest/model/.

import { DateTime } from 'luxon';
import type { Db } from './open.js';
import { RehearseError } from '../core/errors.js';
import { summarizeCounts, type Summary } from '../stats/quantile.js';
import {
  distributionNames,
  type ArrivalMinute,
  type Distribution,
  type DistributionName,
  type ModelDay,
  type ModelOverview,
  type ModelReader,
  type RecordedClass,
  type Role,
  type SessionRecord,
  type TimelineEvent,
} from './model-types.js';
import { packRecords, packTargets, timelineOf, unpackRecords, unpackTargets, type SessionRecordRow } from './session-pack.js';

export type ActorRole = Role | 'other';
/** 'new': stored during the running ingest, not derived yet. */
export type StoredRole = ActorRole | 'new';

const overviewKey = 'model.overview';
/**
 * Set in the transaction that adds a file and cleared once the model describes it: still set
 * means the model tables do not describe what was ingested (an old database's requests wait for
 * `ingest --rebuild`).
 */
export const modelStaleKey = 'model.stale';
/** At most this many samples are kept with each distribution's summary. */
export const maxDistributionSamples = 100_000;

/** A stored session as the model update reads it back. */
export interface StoredSession {
  id: number;
  actor: number;
  key: number | null;
  role: StoredRole;
  startMs: number;
  endMs: number;
  publishTopic: number | null;
  controlTopic: number | null;
  rosterSize: number | null;
  leadTimeMs: number | null;
  records: Buffer;
}

export interface DerivedSessionFields {
  role: StoredRole;
  publishTopic: number | null;
  controlTopic: number | null;
  publishes: number;
  messages: number;
  polls: number;
  controls: number;
  errors: number;
}

export interface DayRow {
  day: string;
  startMs: number;
  endMs: number;
  learnerSessions: number;
  proctorSessions: number;
  peakConcurrent: number;
  peakAtMs: number;
  peakArrivals: number;
  peakArrivalsAtMs: number;
}

interface SessionDbRow {
  id: number;
  actor_id: number;
  session_key: number | null;
  role: StoredRole;
  start_ms: number;
  end_ms: number;
  publish_topic: number | null;
  control_topic: number | null;
  roster_size: number | null;
  lead_time_ms: number | null;
  records: Buffer;
}

const storedColumns = 'id, actor_id, session_key, role, start_ms, end_ms, publish_topic, control_topic, roster_size, lead_time_ms, records';

function toStored(r: SessionDbRow): StoredSession {
  return {
    id: r.id,
    actor: r.actor_id,
    key: r.session_key,
    role: r.role,
    startMs: r.start_ms,
    endMs: r.end_ms,
    publishTopic: r.publish_topic,
    controlTopic: r.control_topic,
    rosterSize: r.roster_size,
    leadTimeMs: r.lead_time_ms,
    records: r.records,
  };
}

/** Every statement the model update writes with; it opens no transaction (ingest holds one per file). */
export class ModelStore {
  private readonly getMeta;
  private readonly putMeta;
  private readonly insertSession;
  private readonly deleteSession;
  private readonly nearStmt;
  private readonly keyedStmt;
  private readonly byIdStmt;

  constructor(readonly db: Db) {
    this.getMeta = db.prepare('SELECT value FROM meta WHERE key = ?').pluck();
    this.putMeta = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
    this.insertSession = db.prepare('INSERT INTO sessions (actor_id, session_key, role, start_ms, end_ms, records) VALUES (?, ?, ?, ?, ?, ?)');
    this.deleteSession = db.prepare('DELETE FROM sessions WHERE id = ?');
    this.nearStmt = db.prepare(`SELECT ${storedColumns} FROM sessions WHERE actor_id = ? AND session_key IS NULL AND end_ms >= ? AND start_ms <= ?`);
    this.keyedStmt = db.prepare(`SELECT ${storedColumns} FROM sessions WHERE session_key = ? AND actor_id = ?`);
    this.byIdStmt = db.prepare(`SELECT ${storedColumns} FROM sessions WHERE id = ?`);
  }

  meta(key: string): string | undefined {
    return this.getMeta.get(key) as string | undefined;
  }

  setMeta(key: string, value: string): void {
    this.putMeta.run(key, value);
  }

  deleteMeta(key: string): void {
    this.db.prepare('DELETE FROM meta WHERE key = ?').run(key);
  }

  // Sessions

  addSession(actor: number, key: number | null, records: readonly SessionRecordRow[]): number {
    const startMs = records[0]!.startMs;
    let endMs = -Infinity;
    for (const r of records) endMs = Math.max(endMs, r.startMs + r.durationMs);
    return Number(this.insertSession.run(actor, key, 'new', startMs, endMs, packRecords(records, startMs)).lastInsertRowid);
  }

  /** Stored sessions of an actor without a session id overlapping [fromMs, toMs]. */
  sessionsNear(actor: number, fromMs: number, toMs: number): StoredSession[] {
    return (this.nearStmt.all(actor, fromMs, toMs) as SessionDbRow[]).map(toStored);
  }

  sessionsKeyed(actor: number, key: number): StoredSession[] {
    return (this.keyedStmt.all(key, actor) as SessionDbRow[]).map(toStored);
  }

  session(id: number): StoredSession | undefined {
    const r = this.byIdStmt.get(id) as SessionDbRow | undefined;
    return r && toStored(r);
  }

  removeSession(id: number): void {
    this.deleteSession.run(id);
    this.db.prepare('DELETE FROM rosters WHERE proctor_session_id = ? OR learner_session_id = ?').run(id, id);
  }

  sessionsOfActor(actor: number): StoredSession[] {
    return (this.db.prepare(`SELECT ${storedColumns} FROM sessions WHERE actor_id = ?`).all(actor) as SessionDbRow[]).map(toStored);
  }

  /** Every stored session's id (for --rebuild). */
  allSessionIds(): number[] {
    return this.db.prepare('SELECT id FROM sessions ORDER BY id').pluck().all() as number[];
  }

  setDerived(id: number, f: DerivedSessionFields): void {
    this.db
      .prepare('UPDATE sessions SET role = ?, publish_topic = ?, control_topic = ?, publishes = ?, messages = ?, polls = ?, controls = ?, errors = ? WHERE id = ?')
      .run(f.role, f.publishTopic, f.controlTopic, f.publishes, f.messages, f.polls, f.controls, f.errors, id);
  }

  /** Sessions of a role overlapping [fromMs, toMs], sorted by start then id. */
  sessionsOverlapping(role: Role, fromMs: number, toMs: number): StoredSession[] {
    return (
      this.db
        .prepare(`SELECT ${storedColumns} FROM sessions WHERE role = ? AND start_ms <= ? AND end_ms >= ? ORDER BY start_ms, id`)
        .all(role, toMs, fromMs) as SessionDbRow[]
    ).map(toStored);
  }

  /** Learner sessions overlapping [fromMs, toMs] without their records, sorted by start then id. */
  learnerRefs(fromMs: number, toMs: number): Array<{ id: number; startMs: number; endMs: number; publishTopic: number | null; controlTopic: number | null }> {
    return (
      this.db
        .prepare("SELECT id, start_ms, end_ms, publish_topic, control_topic FROM sessions WHERE role = 'learner' AND start_ms <= ? AND end_ms >= ? ORDER BY start_ms, id")
        .raw()
        .all(toMs, fromMs) as Array<[number, number, number, number | null, number | null]>
    ).map(([id, startMs, endMs, publishTopic, controlTopic]) => ({ id, startMs, endMs, publishTopic, controlTopic }));
  }

  clearLinks(proctorId: number): void {
    this.db.prepare('DELETE FROM rosters WHERE proctor_session_id = ?').run(proctorId);
    this.db.prepare('UPDATE sessions SET roster_size = NULL, lead_time_ms = NULL, targets = NULL WHERE id = ?').run(proctorId);
  }

  /** Forgets everything derived from sessions (their records and the actors' counts stay): --rebuild re-derives it. */
  resetDerived(): void {
    for (const t of ['rosters', 'distribution_counts', 'distributions', 'arrivals', 'days']) this.db.exec(`DELETE FROM ${t}`);
    this.db.exec("UPDATE sessions SET role = 'new', roster_size = NULL, lead_time_ms = NULL, targets = NULL");
  }

  /** Learner or proctor sessions' [start, end] overlapping [fromMs, toMs). */
  intervals(role: Role, fromMs: number, toMs: number): Array<[number, number]> {
    return this.db.prepare('SELECT start_ms, end_ms FROM sessions WHERE role = ? AND start_ms < ? AND end_ms >= ?').raw().all(role, toMs, fromMs) as Array<[number, number]>;
  }

  setLinks(proctorId: number, roster: readonly number[], rosterSize: number, leadTimeMs: number | null, targets: number[][]): void {
    this.db.prepare('DELETE FROM rosters WHERE proctor_session_id = ?').run(proctorId);
    const add = this.db.prepare('INSERT OR IGNORE INTO rosters (proctor_session_id, learner_session_id) VALUES (?, ?)');
    for (const l of roster) add.run(proctorId, l);
    this.db.prepare('UPDATE sessions SET roster_size = ?, lead_time_ms = ?, targets = ? WHERE id = ?').run(rosterSize, leadTimeMs, packTargets(targets), proctorId);
  }

  counts(): { learners: number; proctors: number; sessions: number; proctorSessions: number } {
    const actors = Object.fromEntries(this.db.prepare("SELECT role, count(*) FROM actors GROUP BY role").raw().all() as Array<[string, number]>);
    const sessions = Object.fromEntries(this.db.prepare("SELECT role, count(*) FROM sessions GROUP BY role").raw().all() as Array<[string, number]>);
    return { learners: actors.learner ?? 0, proctors: actors.proctor ?? 0, sessions: sessions.learner ?? 0, proctorSessions: sessions.proctor ?? 0 };
  }

  // Actors: what roles are decided from

  actorRoles(): Map<number, ActorRole> {
    return new Map(this.db.prepare('SELECT id, role FROM actors').raw().all() as Array<[number, ActorRole]>);
  }

  /** Adds a file's counts: per actor requests and publishes, per (actor, op, topic) and per (actor, client). */
  addActorCounts(
    actors: Iterable<[number, { requests: number; publishes: number }]>,
    topics: Iterable<[number, number, number, number]>,
    clients: Iterable<[number, number, number]>,
  ): void {
    const a = this.db.prepare(
      "INSERT INTO actors (id, role, requests, publishes) VALUES (?, 'other', ?, ?) ON CONFLICT(id) DO UPDATE SET requests = requests + excluded.requests, publishes = publishes + excluded.publishes",
    );
    for (const [id, c] of actors) a.run(id, c.requests, c.publishes);
    const t = this.db.prepare('INSERT INTO actor_topics (actor, op, topic, count) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET count = count + excluded.count');
    for (const row of topics) t.run(row);
    const c = this.db.prepare('INSERT INTO actor_clients (actor, client, count) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET count = count + excluded.count');
    for (const row of clients) c.run(row);
  }

  actorCounts(): Array<[number, number, number]> {
    return this.db.prepare('SELECT id, requests, publishes FROM actors').raw().all() as Array<[number, number, number]>;
  }

  actorTopics(): Iterable<[number, number, number]> {
    return this.db.prepare('SELECT actor, op, topic FROM actor_topics').raw().iterate() as Iterable<[number, number, number]>;
  }

  setActorRole(id: number, role: ActorRole): void {
    this.db.prepare('UPDATE actors SET role = ? WHERE id = ?').run(role, id);
  }

  /** --role-override and mapping roles, as stored on ids rows. */
  roleOverrides(): Map<number, 'learner' | 'proctor'> {
    return new Map(this.db.prepare("SELECT id, role FROM ids WHERE kind = 1 AND role IS NOT NULL").raw().all() as Array<[number, 'learner' | 'proctor']>);
  }

  // Distributions, arrivals, days, overview

  addDistributionCounts(deltas: Map<DistributionName, Map<number, number>>): void {
    const add = this.db.prepare('INSERT INTO distribution_counts (name, value, count) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET count = count + excluded.count');
    const names: DistributionName[] = [];
    for (const [name, counts] of deltas) {
      let changed = false;
      for (const [value, delta] of counts) {
        if (delta === 0) continue;
        add.run(name, value, delta);
        changed = true;
      }
      if (changed) names.push(name);
    }
    this.db.prepare('DELETE FROM distribution_counts WHERE count = 0').run();
    const units: Record<DistributionName, 'ms' | 'count'> = distributionUnits;
    for (const name of names) {
      const counts = new Map(this.db.prepare('SELECT value, count FROM distribution_counts WHERE name = ?').raw().all(name) as Array<[number, number]>);
      this.db.prepare('DELETE FROM distributions WHERE name = ?').run(name);
      if (counts.size === 0) continue;
      const { summary, samples } = summarizeCounts(counts, maxDistributionSamples);
      writeDistribution(this.db, { name, unit: units[name], summary, samples });
    }
  }

  addArrivals(deltas: Map<number, number>): void {
    const add = this.db.prepare('INSERT INTO arrivals (minute_ms, learners) VALUES (?, ?) ON CONFLICT DO UPDATE SET learners = learners + excluded.learners');
    for (const [minute, d] of deltas) if (d !== 0) add.run(minute, d);
    this.db.prepare('DELETE FROM arrivals WHERE learners = 0').run();
  }

  arrivalsBetween(fromMs: number, toMs: number): Array<[number, number]> {
    return this.db.prepare('SELECT minute_ms, learners FROM arrivals WHERE minute_ms >= ? AND minute_ms < ? ORDER BY minute_ms').raw().all(fromMs, toMs) as Array<[number, number]>;
  }

  setDay(d: DayRow): void {
    this.db
      .prepare('INSERT OR REPLACE INTO days (day, start_ms, end_ms, learner_sessions, proctor_sessions, peak_concurrent, peak_at_ms, peak_arrivals, peak_arrivals_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(d.day, d.startMs, d.endMs, d.learnerSessions, d.proctorSessions, d.peakConcurrent, d.peakAtMs, d.peakArrivals, d.peakArrivalsAtMs);
  }

  deleteDay(day: string): void {
    this.db.prepare('DELETE FROM days WHERE day = ?').run(day);
  }

  clearDays(): void {
    this.db.exec('DELETE FROM days');
  }

  days(): DayRow[] {
    return readDays(this.db);
  }

  /** Session starts of a role in [fromMs, toMs). */
  sessionCount(role: Role, fromMs: number, toMs: number): number {
    return this.db.prepare('SELECT count(*) FROM sessions WHERE role = ? AND start_ms >= ? AND start_ms < ?').pluck().get(role, fromMs, toMs) as number;
  }

  spanOfSessions(): { startMs: number; endMs: number } | undefined {
    const [s, e] = this.db.prepare("SELECT min(start_ms), max(end_ms) FROM sessions WHERE role IN ('learner', 'proctor')").raw().get() as [number | null, number | null];
    return s === null || e === null ? undefined : { startMs: s, endMs: e };
  }

  sourceHashes(): string[] {
    return this.db.prepare('SELECT sha256 FROM sources ORDER BY sha256').pluck().all() as string[];
  }

  setOverview(o: ModelOverview): void {
    this.putMeta.run(overviewKey, JSON.stringify(o));
  }

  /** Empties the model tables (not ids, sources or requests): --rebuild from stored requests. */
  clearModel(): void {
    for (const t of ['sessions', 'rosters', 'actors', 'actor_topics', 'actor_clients', 'distribution_counts', 'distributions', 'arrivals', 'days']) this.db.exec(`DELETE FROM ${t}`);
    this.deleteMeta(overviewKey);
  }
}

export const distributionUnits: Record<DistributionName, 'ms' | 'count'> = {
  learnerPublishInterval: 'ms',
  proctorControlInterval: 'ms',
  messagesPerPublish: 'count',
  controlTargets: 'count',
  sessionDuration: 'ms',
  proctorSessionDuration: 'ms',
  rosterSize: 'count',
  pollDuration: 'ms',
  retryGap: 'ms',
  proctorLeadTime: 'ms',
};

function writeDistribution(db: Db, d: Distribution): void {
  const s = d.summary;
  const blob = Buffer.from(d.samples.buffer, d.samples.byteOffset, d.samples.byteLength);
  db.prepare('INSERT OR REPLACE INTO distributions (name, unit, count, mean, p50, p90, p99, max, samples) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(
    d.name, d.unit, s.count, s.mean, s.p50, s.p90, s.p99, s.max, littleEndian(blob),
  );
}

function readDays(db: Db): DayRow[] {
  return (db.prepare('SELECT * FROM days ORDER BY day').all() as Array<Record<string, number | string>>).map((r) => ({
    day: r.day as string,
    startMs: r.start_ms as number,
    endMs: r.end_ms as number,
    learnerSessions: r.learner_sessions as number,
    proctorSessions: r.proctor_sessions as number,
    peakConcurrent: r.peak_concurrent as number,
    peakAtMs: r.peak_at_ms as number,
    peakArrivals: r.peak_arrivals as number,
    peakArrivalsAtMs: r.peak_arrivals_at_ms as number,
  }));
}

// Requests, kept only with --keep-requests

const requestColumns = 11;
const rowsPerInsert = 128;

/** The request inserter for `ingest --keep-requests` (rows of 11 values, many per statement). */
export function requestWriter(db: Db): { row(values: unknown[]): void; flush(): void; deleteSource(sourceId: number): void } {
  const sql = (rows: number): string =>
    'INSERT INTO requests (source_id, actor, start_ms, duration_ms, op, status, messages, topics, session, bytes, client) VALUES ' +
    Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ');
  const many = db.prepare(sql(rowsPerInsert));
  const one = db.prepare(sql(1));
  const pending: unknown[] = [];
  return {
    row(values) {
      pending.push(...values);
      if (pending.length === rowsPerInsert * requestColumns) {
        many.run(pending);
        pending.length = 0;
      }
    },
    flush() {
      for (let i = 0; i < pending.length; i += requestColumns) one.run(pending.slice(i, i + requestColumns));
      pending.length = 0;
    },
    deleteSource(sourceId) {
      db.prepare('DELETE FROM requests WHERE source_id = ?').run(sourceId);
    },
  };
}

/** Stored requests in start order, for --rebuild of a database that kept them. */
export function storedRequests(db: Db): Iterable<[number, number, number, number, number, number, string, number | null, number | null]> {
  return db
    .prepare('SELECT actor, start_ms, duration_ms, op, status, messages, topics, session, client FROM requests ORDER BY start_ms')
    .raw()
    .iterate() as Iterable<[number, number, number, number, number, number, string, number | null, number | null]>;
}

export function storedRequestCount(db: Db): number {
  return db.prepare('SELECT count(*) FROM requests').pluck().get() as number;
}

// Sources

export interface SourceFinal {
  sha256: string;
  bytes: number;
  lines: number;
  accepted: number;
  rejected: number;
  reasons: Record<string, number>;
  warnings: string[] | undefined;
}

export const sourceStore = {
  /** A file's row while it is read (its hash is known only at the end). */
  begin(db: Db, path: string, format: string): number {
    const pending = `pending:${process.pid}:${Date.now()}:${Math.random()}`;
    return Number(
      db
        .prepare('INSERT INTO sources (path, sha256, format, bytes, lines, accepted, rejected, ingested_at) VALUES (?, ?, ?, 0, 0, 0, 0, ?)')
        .run(path, pending, format, new Date().toISOString()).lastInsertRowid,
    );
  },
  bySha(db: Db, sha256: string): number | undefined {
    return db.prepare('SELECT id FROM sources WHERE sha256 = ?').pluck().get(sha256) as number | undefined;
  },
  remove(db: Db, id: number): void {
    db.prepare('DELETE FROM requests WHERE source_id = ?').run(id);
    db.prepare('DELETE FROM sources WHERE id = ?').run(id);
  },
  finish(db: Db, id: number, f: SourceFinal): void {
    db.prepare('UPDATE sources SET sha256 = ?, bytes = ?, lines = ?, accepted = ?, rejected = ?, rejected_reasons = ?, warnings = ? WHERE id = ?').run(
      f.sha256, f.bytes, f.lines, f.accepted, f.rejected, JSON.stringify(f.reasons), f.warnings?.length ? JSON.stringify(f.warnings) : null, id,
    );
  },
  list(db: Db): Array<{ path: string; sha256: string; format: string; lines: number; accepted: number; rejected: number; ingested_at: string }> {
    return db.prepare('SELECT path, sha256, format, lines, accepted, rejected, ingested_at FROM sources ORDER BY id').all() as Array<{
      path: string; sha256: string; format: string; lines: number; accepted: number; rejected: number; ingested_at: string;
    }>;
  },
  accepted(db: Db): number {
    return (db.prepare('SELECT coalesce(sum(accepted), 0) FROM sources').pluck().get() as number) ?? 0;
  },
};

// Interned ids (ingest/ids.ts decides what goes in)

export const idsTable = {
  all(db: Db): Iterable<[number, number, string]> {
    return db.prepare('SELECT id, kind, value FROM ids').raw().iterate() as Iterable<[number, number, string]>;
  },
  inserter(db: Db): (kind: number, value: string) => number {
    const insert = db.prepare('INSERT INTO ids (kind, value) VALUES (?, ?)');
    return (kind, value) => Number(insert.run(kind, value).lastInsertRowid);
  },
  roleSetter(db: Db): (id: number, role: 'learner' | 'proctor') => void {
    const set = db.prepare('UPDATE ids SET role = ? WHERE id = ?');
    return (id, role) => void set.run(role, id);
  },
  meta(db: Db, key: string): string | undefined {
    return db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(key) as string | undefined;
  },
  putMeta(db: Db, key: string, value: string): void {
    db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(key, value);
  },
};

// Hand-made models (tests, fixtures): writeModel

export interface ActorRow {
  id: number;
  pseudonym: string;
  role: ActorRole;
  clientFamily: string | null;
}

export interface SessionRow {
  id: number;
  actorId: number;
  role: Role;
  pseudonym: string;
  startMs: number;
  endMs: number;
  publishTopic: string | null;
  controlTopic: string | null;
  publishes: number;
  messages: number;
  polls: number;
  controls: number;
  errors: number;
}

export interface TimelineRow extends TimelineEvent {
  sessionId: number;
}

/** A whole model given as values (tests and hand-made models); ingest builds one with ModelStore. */
export interface ModelData {
  overview: ModelOverview;
  actors: ActorRow[];
  sessions: SessionRow[];
  rosters: Array<{ proctorSessionId: number; learnerSessionId: number }>;
  timeline: Iterable<TimelineRow>;
  distributions: Distribution[];
  /** Minutes with at least one arrival (the reader fills the zeros). */
  arrivals: ArrivalMinute[];
}

/** Replaces the whole model in one transaction (joins the caller's if one is open). */
export function writeModel(db: Db, model: ModelData): void {
  db.transaction(() => {
    new ModelStore(db).clearModel();
    db.exec('DELETE FROM ids WHERE kind = 1');
    const addId = db.prepare('INSERT OR REPLACE INTO ids (id, kind, value) VALUES (?, 1, ?)');
    const addActor = db.prepare('INSERT INTO actors (id, role) VALUES (?, ?)');
    for (const a of model.actors) {
      addId.run(a.id, a.pseudonym);
      addActor.run(a.id, a.role);
    }
    const events = new Map<number, TimelineRow[]>();
    for (const e of model.timeline) {
      const list = events.get(e.sessionId);
      if (list) list.push(e);
      else events.set(e.sessionId, [e]);
    }
    const insert = db.prepare(
      `INSERT INTO sessions (id, actor_id, role, start_ms, end_ms, publishes, messages, polls, controls, errors, records, targets)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const s of model.sessions) {
      // Each event becomes the request it was derived from (a control to several learners, one request).
      const records: SessionRecordRow[] = [];
      const targets: number[][] = [];
      let lastControl: TimelineRow | undefined;
      for (const e of [...(events.get(s.id) ?? [])].sort((a, b) => a.atMs - b.atMs)) {
        if (e.kind === 'control' && lastControl && lastControl.atMs === e.atMs && e.targetSessionId !== null) {
          targets[targets.length - 1]!.push(e.targetSessionId);
          continue;
        }
        const op = e.kind === 'poll' ? 2 : e.kind === 'error' ? 0 : 1;
        records.push({ startMs: s.startMs + e.atMs, durationMs: e.durationMs, op, status: e.status, messages: e.messages, topics: [] });
        if (e.kind === 'control') targets.push(e.targetSessionId === null ? [] : [e.targetSessionId]);
        lastControl = e.kind === 'control' ? e : undefined;
      }
      insert.run(s.id, s.actorId, s.role, s.startMs, s.endMs, s.publishes, s.messages, s.polls, s.controls, s.errors, packRecords(records, s.startMs), packTargets(targets));
    }
    const roster = db.prepare('INSERT OR IGNORE INTO rosters (proctor_session_id, learner_session_id) VALUES (?, ?)');
    for (const r of model.rosters) roster.run(r.proctorSessionId, r.learnerSessionId);
    for (const d of model.distributions) writeDistribution(db, d);
    const arrival = db.prepare('INSERT INTO arrivals (minute_ms, learners) VALUES (?, ?)');
    for (const a of model.arrivals) arrival.run(a.minuteMs, a.learners);
    db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(overviewKey, JSON.stringify(model.overview));
  })();
}

const isLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function littleEndian(buf: Buffer): Buffer {
  if (isLittleEndian) return Buffer.from(buf); // copy: the caller's array may be reused
  const out = Buffer.from(buf);
  out.swap64();
  return out;
}

function samplesFromBlob(blob: Buffer): Float64Array {
  const copy = Buffer.from(blob);
  if (!isLittleEndian) copy.swap64();
  return new Float64Array(copy.buffer, copy.byteOffset, copy.byteLength / 8);
}

export function isModelStale(db: Db): boolean {
  return db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(modelStaleKey) === '1';
}

export function staleModelError(db: Db): RehearseError {
  return new RehearseError(
    'REHEARSE_MODEL',
    `the model in ${db.name} was not finished (an ingest was interrupted or is still running, or an older rehearse wrote it): ` +
      `run \`rehearse ingest --rebuild --db ${db.name}\` (or wait for the running ingest to finish).`,
  );
}

/** True when the database holds a model (at least one ingest built it). */
export function hasModel(db: Db): boolean {
  return db.prepare('SELECT 1 FROM meta WHERE key = ?').get(overviewKey) !== undefined;
}

interface ReaderSessionRow {
  id: number;
  role: Role;
  actor: string;
  start_ms: number;
  end_ms: number;
  publishes: number;
  messages: number;
  polls: number;
  controls: number;
  errors: number;
}

function toSessionRecord(r: ReaderSessionRow): SessionRecord {
  return {
    id: r.id,
    role: r.role,
    actor: r.actor,
    startMs: r.start_ms,
    endMs: r.end_ms,
    publishes: r.publishes,
    messages: r.messages,
    polls: r.polls,
    controls: r.controls,
    errors: r.errors,
  };
}

export interface ReaderOptions {
  /**
   * One recorded day ('YYYY-MM-DD' in the model's zone, or 'peak': the day with the most
   * concurrent learners), or 'all'. The reader then shows that day only: its span, arrivals, and
   * the classes whose sessions start in it; distributions stay the whole model's. Default: the
   * peak day of a model of several days, else all of it.
   */
  day?: string;
}

/** The days a model holds, from the days table (empty for a hand-made model). */
export function modelDays(db: Db): ModelDay[] {
  return readDays(db).map((d) => ({
    day: d.day,
    startMs: d.startMs,
    endMs: d.endMs,
    learnerSessions: d.learnerSessions,
    proctorSessions: d.proctorSessions,
    peakConcurrentLearners: d.peakConcurrent,
    peakConcurrentLearnersAtMs: d.peakAtMs,
    peakArrivals: d.peakArrivals,
    peakArrivalsAtMs: d.peakArrivalsAtMs,
  }));
}

/** The day a --day value names, or an error naming the days there are. */
export function pickDay(days: readonly ModelDay[], spec: string): ModelDay {
  if (days.length === 0) throw new RehearseError('REHEARSE_USAGE', '--day: this model records no days (it was not written by `rehearse ingest`)');
  if (spec === 'peak') {
    return days.reduce((best, d) => (d.peakConcurrentLearners > best.peakConcurrentLearners ? d : best), days[0]!);
  }
  const found = days.find((d) => d.day === spec);
  if (found) return found;
  const list = days.length <= 6 ? days.map((d) => d.day).join(', ') : `${days[0]!.day} .. ${days[days.length - 1]!.day} (${days.length} days)`;
  throw new RehearseError('REHEARSE_USAGE', `--day: ${spec} is not a recorded day; the model has ${list}, or 'peak'`);
}

/**
 * A ModelReader over the model tables. Throws REHEARSE_MODEL when nothing was ingested.
 * The database handle stays the caller's to close.
 */
export function openModelReader(db: Db, options: ReaderOptions = {}): ModelReader {
  // A stale model is never used without a word: the plan would rehearse the wrong day. First, so a
  // database an older rehearse wrote (migration 007 leaves it stale) is told how to rebuild it.
  if (isModelStale(db)) throw staleModelError(db);
  const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(overviewKey) as { value: string } | undefined;
  if (!row) {
    throw new RehearseError('REHEARSE_MODEL', `${db.name}: holds no model yet. Run \`rehearse ingest <logs> --db ${db.name}\` first.`);
  }
  const stored = JSON.parse(row.value) as ModelOverview;
  const days = modelDays(db);
  // A model of several days is read one day at a time: the busiest unless told ('all': every day).
  const spec = options.day ?? (days.length > 1 ? 'peak' : 'all');
  const day = spec === 'all' ? undefined : pickDay(days, spec);
  const overview: ModelOverview = day
    ? { ...stored, span: { startMs: day.startMs, endMs: day.endMs }, peakConcurrentLearners: day.peakConcurrentLearners, peakConcurrentLearnersAtMs: day.peakConcurrentLearnersAtMs }
    : stored;
  // Sessions starting in the chosen day (its local midnight to the next), else every session.
  const bounds = day ? dayBounds(day.day, stored.timezone) : undefined;
  const distributionStmt = db.prepare('SELECT name, unit, count, mean, p50, p90, p99, max, samples FROM distributions WHERE name = ?');
  const sessionStmt = db.prepare('SELECT role, start_ms, records, targets FROM sessions WHERE id = ?');
  const sessionColumns = `s.id, s.role, a.value AS actor, s.start_ms, s.end_ms, s.publishes, s.messages, s.polls, s.controls, s.errors`;
  const cache = new Map<DistributionName, Distribution | null>();

  return {
    overview: () => ({ ...overview, span: { ...overview.span } }),

    distribution(name: DistributionName): Distribution | null {
      if (!distributionNames.includes(name)) throw new RehearseError('REHEARSE_INTERNAL', `unknown distribution ${String(name)}`);
      if (!cache.has(name)) {
        const r = distributionStmt.get(name) as ({ name: DistributionName; unit: 'ms' | 'count'; samples: Buffer } & Summary) | undefined;
        cache.set(
          name,
          r
            ? {
                name: r.name,
                unit: r.unit,
                summary: { count: r.count, mean: r.mean, p50: r.p50, p90: r.p90, p99: r.p99, max: r.max },
                samples: samplesFromBlob(r.samples),
              }
            : null,
        );
      }
      const d = cache.get(name)!;
      return d ? { ...d, summary: { ...d.summary }, samples: d.samples.slice() } : null;
    },

    arrivals(): ArrivalMinute[] {
      const stored = new Map<number, number>();
      for (const r of db.prepare('SELECT minute_ms, learners FROM arrivals').raw().iterate() as Iterable<[number, number]>) {
        if (!bounds || (r[0] >= bounds.startMs && r[0] < bounds.endMs)) stored.set(r[0], r[1]);
      }
      const out: ArrivalMinute[] = [];
      if (overview.span.endMs < overview.span.startMs) return out;
      const first = Math.floor(overview.span.startMs / 60_000) * 60_000;
      const last = Math.floor(overview.span.endMs / 60_000) * 60_000;
      for (let m = first; m <= last; m += 60_000) out.push({ minuteMs: m, learners: stored.get(m) ?? 0 });
      return out;
    },

    *classes(): Iterable<RecordedClass> {
      const sessions = new Map<number, SessionRecord>();
      const where = bounds ? `AND s.start_ms >= ${bounds.startMs} AND s.start_ms < ${bounds.endMs}` : '';
      for (const r of db
        .prepare(`SELECT ${sessionColumns} FROM sessions s JOIN ids a ON a.id = s.actor_id WHERE s.role IN ('learner', 'proctor') ${where}`)
        .all() as ReaderSessionRow[]) {
        sessions.set(r.id, toSessionRecord(r));
      }
      // A learner on several rosters (a shift change) joins the proctor it overlaps longest.
      const best = new Map<number, { proctorId: number; overlap: number }>();
      for (const r of db.prepare('SELECT proctor_session_id, learner_session_id FROM rosters').raw().all() as Array<[number, number]>) {
        const proctor = sessions.get(r[0]);
        const learner = sessions.get(r[1]);
        if (!proctor || !learner) continue;
        const overlap = Math.min(proctor.endMs, learner.endMs) - Math.max(proctor.startMs, learner.startMs);
        const current = best.get(learner.id);
        if (!current || overlap > current.overlap || (overlap === current.overlap && proctor.id < current.proctorId)) {
          best.set(learner.id, { proctorId: proctor.id, overlap });
        }
      }
      const byProctor = new Map<number, SessionRecord[]>();
      const classes: RecordedClass[] = [];
      for (const s of sessions.values()) {
        if (s.role === 'proctor') {
          const learners: SessionRecord[] = [];
          byProctor.set(s.id, learners);
          classes.push({ proctor: s, learners });
        }
      }
      for (const s of sessions.values()) {
        if (s.role !== 'learner') continue;
        const b = best.get(s.id);
        if (b) byProctor.get(b.proctorId)!.push(s);
        else classes.push({ proctor: null, learners: [s] });
      }
      const earliest = (c: RecordedClass): number => Math.min(c.proctor?.startMs ?? Infinity, ...c.learners.map((l) => l.startMs));
      for (const c of classes) c.learners.sort((a, b) => a.startMs - b.startMs || a.id - b.id);
      classes.sort((a, b) => earliest(a) - earliest(b) || (a.proctor?.id ?? a.learners[0]!.id) - (b.proctor?.id ?? b.learners[0]!.id));
      yield* classes;
    },

    timeline(sessionId: number): TimelineEvent[] {
      const r = sessionStmt.get(sessionId) as { role: StoredRole; start_ms: number; records: Buffer; targets: Buffer | null } | undefined;
      if (!r || (r.role !== 'learner' && r.role !== 'proctor')) return [];
      return timelineOf(r.role, r.start_ms, unpackRecords(r.records, r.start_ms), unpackTargets(r.targets));
    },

    days: () => days.map((d) => ({ ...d })),
  };
}

/** A day's local midnight to the next one's, in epoch ms (23 or 25 hours across a DST change). */
export function dayBounds(day: string, zone: string): { startMs: number; endMs: number } {
  const start = DateTime.fromISO(day, { zone }).startOf('day');
  return { startMs: start.toMillis(), endMs: start.plus({ days: 1 }).toMillis() };
}
