// The model's SQLite side: a ModelReader over the derived tables of 001-model (what the plan
// reads) and a writer that replaces those tables, streaming, inside the caller's transaction.

import type { Db } from './open.js';
import { RehearseError } from '../core/errors.js';
import type { Summary } from '../stats/quantile.js';
import {
  distributionNames,
  type ArrivalMinute,
  type Distribution,
  type DistributionName,
  type ModelOverview,
  type ModelReader,
  type RecordedClass,
  type Role,
  type SessionRecord,
  type TimelineEvent,
  type TimelineKind,
} from './model-types.js';

export type ActorRole = Role | 'other';

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
  /** The session's own pseudonym (its session id, or actor#n when sessions were cut by silence). */
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

/** Everything the derived tables hold, for writeModel; the builder streams through ModelWriter instead. */
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

const overviewKey = 'model.overview';
const timelineRowsPerInsert = 128;

/**
 * Replaces the derived tables row by row. It opens no transaction of its own: the caller
 * wraps it (ingest puts a file's requests and the rebuilt model in one transaction).
 */
export class ModelWriter {
  private readonly insertActor;
  private readonly insertSession;
  private readonly insertRoster;
  private readonly insertTimeline;
  private readonly insertDistribution;
  private readonly insertArrival;
  private readonly setMeta;
  private readonly insertTimelineMany;
  private readonly timelineBatch: unknown[] = [];

  constructor(private readonly db: Db) {
    this.insertActor = db.prepare('INSERT INTO actors (id, pseudonym, role, client_family) VALUES (?, ?, ?, ?)');
    this.insertSession = db.prepare(
      `INSERT INTO sessions (id, actor_id, role, pseudonym, start_ms, end_ms, publish_topic, control_topic,
         publishes, messages, polls, controls, errors) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.insertRoster = db.prepare('INSERT OR IGNORE INTO rosters (proctor_session_id, learner_session_id) VALUES (?, ?)');
    this.insertTimeline = db.prepare(
      'INSERT INTO timeline (session_id, at_ms, kind, messages, duration_ms, status, target_session_id) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.insertTimelineMany = db.prepare(
      'INSERT INTO timeline (session_id, at_ms, kind, messages, duration_ms, status, target_session_id) VALUES ' +
        Array.from({ length: timelineRowsPerInsert }, () => '(?, ?, ?, ?, ?, ?, ?)').join(', '),
    );
    this.insertDistribution = db.prepare(
      'INSERT INTO distributions (name, unit, count, mean, p50, p90, p99, max, samples) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.insertArrival = db.prepare('INSERT INTO arrivals (minute_ms, learners) VALUES (?, ?)');
    this.setMeta = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
  }

  /** Empties every derived table (children first, so foreign keys never cascade row by row). */
  clear(): void {
    for (const table of ['timeline', 'rosters', 'sessions', 'actors', 'distributions', 'arrivals']) {
      this.db.exec(`DELETE FROM ${table}`);
    }
    this.db.prepare('DELETE FROM meta WHERE key = ?').run(overviewKey);
  }

  actor(a: ActorRow): void {
    this.insertActor.run(a.id, a.pseudonym, a.role, a.clientFamily);
  }

  session(s: SessionRow): void {
    this.insertSession.run(
      s.id, s.actorId, s.role, s.pseudonym, s.startMs, s.endMs, s.publishTopic, s.controlTopic,
      s.publishes, s.messages, s.polls, s.controls, s.errors,
    );
  }

  roster(proctorSessionId: number, learnerSessionId: number): void {
    this.insertRoster.run(proctorSessionId, learnerSessionId);
  }

  /** Timeline rows are the bulk of the model: buffered and written many per statement. */
  event(e: TimelineRow): void {
    this.timelineBatch.push(e.sessionId, Math.round(e.atMs), e.kind, e.messages, Math.round(e.durationMs), e.status, e.targetSessionId);
    if (this.timelineBatch.length === timelineRowsPerInsert * 7) {
      this.insertTimelineMany.run(this.timelineBatch);
      this.timelineBatch.length = 0;
    }
  }

  /** Writes what is buffered; call before the transaction commits. */
  finish(): void {
    for (let i = 0; i < this.timelineBatch.length; i += 7) this.insertTimeline.run(this.timelineBatch.slice(i, i + 7));
    this.timelineBatch.length = 0;
  }

  distribution(d: Distribution): void {
    const s = d.summary;
    const blob = Buffer.from(d.samples.buffer, d.samples.byteOffset, d.samples.byteLength);
    this.insertDistribution.run(d.name, d.unit, s.count, s.mean, s.p50, s.p90, s.p99, s.max, littleEndian(blob));
  }

  arrival(a: ArrivalMinute): void {
    this.insertArrival.run(a.minuteMs, a.learners);
  }

  overview(o: ModelOverview): void {
    this.setMeta.run(overviewKey, JSON.stringify(o));
  }
}

/** Replaces the whole derived model in one transaction (joins the caller's if one is open). */
export function writeModel(db: Db, model: ModelData): void {
  db.transaction(() => {
    const w = new ModelWriter(db);
    w.clear();
    for (const a of model.actors) w.actor(a);
    for (const s of model.sessions) w.session(s);
    for (const r of model.rosters) w.roster(r.proctorSessionId, r.learnerSessionId);
    for (const e of model.timeline) w.event(e);
    for (const d of model.distributions) w.distribution(d);
    for (const a of model.arrivals) w.arrival(a);
    w.overview(model.overview);
    w.finish();
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

interface SessionDbRow {
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

function toSessionRecord(r: SessionDbRow): SessionRecord {
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

/** True when the database holds a model (at least one ingest rebuilt it). */
/**
 * Set in the transaction that adds a file's requests, cleared in the one that rebuilds the
 * derived tables: still set means those tables do not describe what was ingested.
 */
export const modelStaleKey = 'model.stale';

export function isModelStale(db: Db): boolean {
  return db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(modelStaleKey) === '1';
}

export function staleModelError(db: Db): RehearseError {
  return new RehearseError(
    'REHEARSE_MODEL',
    `the model in ${db.name} was not finished (an ingest was interrupted, or is still running): ` +
      `run \`rehearse ingest --rebuild --db ${db.name}\` (or wait for the running ingest to finish).`,
  );
}

export function hasModel(db: Db): boolean {
  return db.prepare('SELECT 1 FROM meta WHERE key = ?').get(overviewKey) !== undefined;
}

/**
 * A ModelReader over the derived tables. Throws REHEARSE_MODEL when nothing was ingested.
 * The database handle stays the caller's to close.
 */
export function openModelReader(db: Db): ModelReader {
  const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(overviewKey) as { value: string } | undefined;
  if (!row) {
    throw new RehearseError('REHEARSE_MODEL', `${db.name}: holds no model yet. Run \`rehearse ingest <logs> --db ${db.name}\` first.`);
  }
  // A stale model is never used without a word: the plan would rehearse the wrong day.
  if (isModelStale(db)) throw staleModelError(db);
  const overview = JSON.parse(row.value) as ModelOverview;
  const distributionStmt = db.prepare('SELECT name, unit, count, mean, p50, p90, p99, max, samples FROM distributions WHERE name = ?');
  const timelineStmt = db.prepare(
    'SELECT at_ms, kind, messages, duration_ms, status, target_session_id FROM timeline WHERE session_id = ? ORDER BY at_ms, rowid',
  );
  const sessionColumns = `s.id, s.role, a.pseudonym AS actor, s.start_ms, s.end_ms, s.publishes, s.messages, s.polls, s.controls, s.errors`;
  const cache = new Map<DistributionName, Distribution | null>();

  return {
    overview: () => ({ ...overview, span: { ...overview.span } }),

    distribution(name: DistributionName): Distribution | null {
      if (!distributionNames.includes(name)) throw new RehearseError('REHEARSE_INTERNAL', `unknown distribution ${String(name)}`);
      if (!cache.has(name)) {
        const r = distributionStmt.get(name) as
          | ({ name: DistributionName; unit: 'ms' | 'count'; samples: Buffer } & Summary)
          | undefined;
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
        stored.set(r[0], r[1]);
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
      for (const r of db.prepare(`SELECT ${sessionColumns} FROM sessions s JOIN actors a ON a.id = s.actor_id`).all() as SessionDbRow[]) {
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
      const earliest = (c: RecordedClass): number =>
        Math.min(c.proctor?.startMs ?? Infinity, ...c.learners.map((l) => l.startMs));
      for (const c of classes) c.learners.sort((a, b) => a.startMs - b.startMs || a.id - b.id);
      classes.sort((a, b) => earliest(a) - earliest(b) || (a.proctor?.id ?? a.learners[0]!.id) - (b.proctor?.id ?? b.learners[0]!.id));
      yield* classes;
    },

    timeline(sessionId: number): TimelineEvent[] {
      return (timelineStmt.all(sessionId) as Array<{
        at_ms: number;
        kind: TimelineKind;
        messages: number;
        duration_ms: number;
        status: number;
        target_session_id: number | null;
      }>).map((r) => ({
        atMs: r.at_ms,
        kind: r.kind,
        messages: r.messages,
        durationMs: r.duration_ms,
        status: r.status,
        targetSessionId: r.target_session_id,
      }));
    },
  };
}
