// Rebuilds the derived model (docs/model.md) from every stored request: roles from behaviour,
// sessions, rosters, replayable timelines, fitted distributions, the arrivals curve.
// Two passes over `requests` (a grouping for roles, then one scan in actor/time order); memory
// grows with actors, sessions and distinct distribution values, not with the raw log.

import crypto from 'node:crypto';
import Database from 'better-sqlite3';
import type { Db } from '../db/open.js';
import { ModelWriter, type ActorRole, type SessionRow } from '../db/model-store.js';
import { distributionNames, type DistributionName, type ModelOverview, type TimelineKind } from '../db/model-types.js';
import { schemaVersion } from '../db/open.js';
import type { Summary } from '../stats/quantile.js';

/** A stored request as the rebuild reads it (ids are `ids` rows). */
export interface StoredRequest {
  actor: number;
  startMs: number;
  durationMs: number;
  op: number; // 0 other, 1 publish, 2 subscribe
  status: number;
  messages: number;
  topics: number[];
  session: number | null;
  client: number | null;
}

/** Silence longer than this cuts an actor's records into sessions (when they carry no session id). */
export const sessionGapMs = 5 * 60_000;
const maxSamples = 100_000;
const OP_PUBLISH = 1;
const OP_SUBSCRIBE = 2;

const distributionUnits: Record<DistributionName, 'ms' | 'count'> = {
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

/**
 * Whole numbers as counts per value: the exact summary stats/quantile's summarize would give
 * and sorted samples, in memory that grows with distinct values, not with lines.
 */
class CountCollector {
  private readonly counts = new Map<number, number>();
  private n = 0;
  push(v: number): void {
    if (!Number.isInteger(v)) throw new Error(`CountCollector takes whole numbers, got ${v}`);
    this.counts.set(v, (this.counts.get(v) ?? 0) + 1);
    this.n++;
  }
  get count(): number {
    return this.n;
  }
  finish(): { summary: Summary; samples: Float64Array } {
    const values = [...this.counts.keys()].sort((a, b) => a - b);
    const cumulative: number[] = [];
    let total = 0;
    let sum = 0;
    for (const v of values) {
      total += this.counts.get(v)!;
      sum += v * this.counts.get(v)!;
      cumulative.push(total);
    }
    const at = (i: number): number => {
      let lo = 0;
      let hi = values.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cumulative[mid]! > i) hi = mid;
        else lo = mid + 1;
      }
      return values[lo]!;
    };
    const quantile = (q: number): number => {
      const pos = (this.n - 1) * q;
      const lo = Math.floor(pos);
      const a = at(lo);
      return pos === lo ? a : a + (at(lo + 1) - a) * (pos - lo);
    };
    const k = Math.min(this.n, maxSamples);
    const samples = new Float64Array(k);
    for (let i = 0; i < k; i++) samples[i] = at(k === this.n ? i : Math.round((i * (this.n - 1)) / (k - 1)));
    return {
      summary: { count: this.n, mean: sum / this.n, p50: quantile(0.5), p90: quantile(0.9), p99: quantile(0.99), max: values[values.length - 1]! },
      samples,
    };
  }
}

export function parseTopicList(text: string): number[] {
  if (text === '') return [];
  if (!text.includes(',')) return [Number(text)];
  return text.split(',').map(Number);
}

interface ActorStats {
  subTopics: Set<number>;
  publishes: number;
  requests: number;
  clients: Map<number, number>;
}

/**
 * Roles from behaviour (docs/model.md). An actor that watches topics mostly published by others
 * is a proctor candidate; since a learner also watches its control topic, published by its
 * proctor, the candidates that watch each other are told apart by how many publishers they
 * watch (a proctor watches its roster, a learner its proctor or two), then by who publishes less.
 */
export function assignRoles(
  actors: Map<number, ActorStats>,
  publishersOf: Map<number, number[]>,
  overrides: Map<number, 'learner' | 'proctor'>,
): Map<number, ActorRole> {
  const watched = new Map<number, Set<number>>();
  const candidate = new Set<number>();
  for (const [actor, stats] of actors) {
    const publishers = new Set<number>();
    let byOthers = 0;
    for (const t of stats.subTopics) {
      const pubs = publishersOf.get(t);
      if (!pubs) continue;
      let other = false;
      for (const p of pubs) {
        if (p !== actor) {
          other = true;
          publishers.add(p);
        }
      }
      if (other) byOthers++;
    }
    watched.set(actor, publishers);
    if (stats.subTopics.size > 0 && byOthers * 2 > stats.subTopics.size) candidate.add(actor);
  }
  const roles = new Map<number, ActorRole>();
  for (const [actor, stats] of actors) {
    const forced = overrides.get(actor);
    if (forced) {
      roles.set(actor, forced);
      continue;
    }
    let proctor = candidate.has(actor);
    if (proctor) {
      const mine = watched.get(actor)!;
      for (const other of mine) {
        const theirs = watched.get(other)?.size ?? 0;
        const otherStats = actors.get(other);
        if (mine.size < theirs || (mine.size === theirs && (otherStats?.publishes ?? 0) <= stats.publishes)) {
          proctor = false;
          break;
        }
      }
    }
    roles.set(actor, proctor ? 'proctor' : stats.requests > 0 ? 'learner' : 'other');
  }
  return roles;
}

interface LearnerSessionRef {
  id: number;
  startMs: number;
  endMs: number;
}

/** Cuts one actor's records (sorted by start) into sessions: by session id when present, else by silence. */
export function splitSessions(records: StoredRequest[]): StoredRequest[][] {
  const bySession = new Map<number, StoredRequest[]>();
  const out: StoredRequest[][] = [];
  let current: StoredRequest[] | undefined;
  let lastEnd = -Infinity;
  for (const r of records) {
    if (r.session !== null) {
      let list = bySession.get(r.session);
      if (!list) {
        bySession.set(r.session, (list = []));
        out.push(list);
      }
      list.push(r);
      continue;
    }
    if (!current || r.startMs - lastEnd > sessionGapMs) {
      current = [];
      out.push(current);
      lastEnd = -Infinity;
    }
    current.push(r);
    lastEnd = Math.max(lastEnd, r.startMs + r.durationMs);
  }
  return out;
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

/** Sorted by start; the session that covers `atMs`, else the one starting nearest to it. */
function findCovering(list: LearnerSessionRef[], atMs: number): LearnerSessionRef | undefined {
  let best: LearnerSessionRef | undefined;
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

export interface RebuildOptions {
  /** IANA zone of the recorded day (mapping timezone). */
  timezone?: string;
}

export interface RebuildResult {
  overview: ModelOverview;
  requests: number;
}

/** Replaces the derived tables from `requests`. Call inside a transaction. */
export function rebuildModel(db: Db, options: RebuildOptions = {}): RebuildResult {
  const names = new Map<number, string>();
  const overrides = new Map<number, 'learner' | 'proctor'>();
  for (const [id, value, role] of db.prepare('SELECT id, value, role FROM ids').raw().iterate() as Iterable<[number, string, string | null]>) {
    names.set(id, value);
    if (role === 'learner' || role === 'proctor') overrides.set(id, role);
  }

  // Pass 1, as aggregates SQLite computes in C: who publishes and watches what, clients, span.
  const actors = new Map<number, ActorStats>();
  const publishersOf = new Map<number, number[]>();
  const statsOf = (actor: number): ActorStats => {
    let stats = actors.get(actor);
    if (!stats) actors.set(actor, (stats = { subTopics: new Set(), publishes: 0, requests: 0, clients: new Map() }));
    return stats;
  };
  // One grouping pass (a single sort in C) gives topics per operation and clients per actor.
  for (const [actor, op, topicsText, client, n] of db
    .prepare('SELECT actor, op, topics, client, count(*) FROM requests GROUP BY actor, op, topics, client')
    .raw()
    .iterate() as Iterable<[number, number, string, number | null, number]>) {
    const stats = statsOf(actor);
    if (client !== null) stats.clients.set(client, (stats.clients.get(client) ?? 0) + n);
    if (op === 0) continue;
    stats.requests += n;
    const topics = parseTopicList(topicsText);
    if (op === OP_PUBLISH) {
      stats.publishes += n;
      for (const t of topics) {
        const pubs = publishersOf.get(t);
        if (!pubs) publishersOf.set(t, [actor]);
        else if (!pubs.includes(actor)) pubs.push(actor);
      }
    } else if (op === OP_SUBSCRIBE) {
      for (const t of topics) stats.subTopics.add(t);
    }
  }
  const [requestCount, spanStart, spanEnd] = db
    .prepare('SELECT count(*), min(start_ms), max(start_ms + duration_ms) FROM requests')
    .raw()
    .get() as [number, number | null, number | null];
  const roles = assignRoles(actors, publishersOf, overrides);

  const writer = new ModelWriter(db);
  writer.clear();
  let learners = 0;
  let proctors = 0;
  for (const [actor, role] of roles) {
    if (role === 'learner') learners++;
    if (role === 'proctor') proctors++;
    const clients = actors.get(actor)!.clients;
    const top = mostFrequent(clients);
    writer.actor({ id: actor, pseudonym: names.get(actor) ?? String(actor), role, clientFamily: top === null ? null : (names.get(top) ?? null) });
  }

  // Every value is a whole number (ms are rounded at ingest), so counts per value hold each
  // distribution exactly in memory bounded by distinct values, not by lines.
  const dist = new Map<DistributionName, CountCollector>(
    distributionNames.map((n) => [n, new CountCollector()]),
  );
  const collect = (name: DistributionName, v: number): void => dist.get(name)!.push(v);
  const arrivals = new Map<number, number>();
  const learnerByPublishTopic = new Map<number, LearnerSessionRef[]>();
  const learnerByControlTopic = new Map<number, LearnerSessionRef[]>();
  const learnerIntervals: Array<[number, number]> = [];
  let nextSessionId = 1;
  let proctorSessions = 0;

  const emitTimeline = (sessionId: number, startMs: number, r: StoredRequest, kind: TimelineKind, target: number | null): void => {
    writer.event({
      sessionId,
      atMs: r.startMs - startMs,
      kind,
      messages: r.messages,
      durationMs: r.durationMs,
      status: r.status,
      targetSessionId: target,
    });
  };

  /** Shared by both roles: bounds, per-op counts, retry gaps and poll durations. */
  const baseSession = (actor: number, role: 'learner' | 'proctor', records: StoredRequest[], ordinal: number): SessionRow => {
    let endMs = -Infinity;
    let publishes = 0;
    let messages = 0;
    let polls = 0;
    let errors = 0;
    // retryGap: from a failed request's end to the first request of the session starting at or after it.
    let failedEnds: number[] = [];
    for (const r of records) {
      const end = r.startMs + r.durationMs;
      endMs = Math.max(endMs, end);
      if (failedEnds.length > 0) {
        const waiting: number[] = [];
        for (const fe of failedEnds) {
          if (r.startMs >= fe) collect('retryGap', r.startMs - fe);
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
      } else if (r.op === OP_SUBSCRIBE) {
        polls++;
        collect('pollDuration', r.durationMs);
      }
    }
    const first = records[0]!;
    const sessionName = first.session !== null ? (names.get(first.session) ?? String(first.session)) : `${names.get(actor) ?? actor}#${ordinal}`;
    return {
      id: nextSessionId++,
      actorId: actor,
      role,
      pseudonym: sessionName,
      startMs: first.startMs,
      endMs,
      publishTopic: null,
      controlTopic: null,
      publishes: role === 'learner' ? publishes : 0,
      messages,
      polls,
      controls: role === 'proctor' ? publishes : 0,
      errors,
    };
  };

  const learnerActor = (actor: number, records: StoredRequest[]): void => {
    const sessions = splitSessions(records);
    sessions.forEach((list, ordinal) => {
      const row = baseSession(actor, 'learner', list, ordinal + 1);
      const pubCounts = new Map<number, number>();
      const subCounts = new Map<number, number>();
      let lastPublish = -1;
      for (const r of list) {
        // Publish/control topics count every attempt (a failed publish still names its topic).
        if (r.op === OP_PUBLISH) for (const t of r.topics) bump(pubCounts, t);
        else if (r.op === OP_SUBSCRIBE) for (const t of r.topics) bump(subCounts, t);
        if (r.status >= 400) continue;
        if (r.op === OP_PUBLISH) {
          if (lastPublish >= 0) collect('learnerPublishInterval', r.startMs - lastPublish);
          lastPublish = r.startMs;
          collect('messagesPerPublish', r.messages);
        }
      }
      const publishTopic = mostFrequent(pubCounts);
      const controlTopic = mostFrequent(subCounts);
      row.publishTopic = publishTopic === null ? null : (names.get(publishTopic) ?? null);
      row.controlTopic = controlTopic === null ? null : (names.get(controlTopic) ?? null);
      writer.session(row);
      for (const r of list) {
        if (r.status >= 500) emitTimeline(row.id, row.startMs, r, 'error', null);
        else if (r.status < 400 && r.op === OP_PUBLISH) emitTimeline(row.id, row.startMs, r, 'publish', null);
        else if (r.status < 400 && r.op === OP_SUBSCRIBE) emitTimeline(row.id, row.startMs, r, 'poll', null);
      }
      collect('sessionDuration', row.endMs - row.startMs);
      const minute = Math.floor(row.startMs / 60_000) * 60_000;
      arrivals.set(minute, (arrivals.get(minute) ?? 0) + 1);
      learnerIntervals.push([row.startMs, row.endMs]);
      const ref = { id: row.id, startMs: row.startMs, endMs: row.endMs };
      if (publishTopic !== null) push(learnerByPublishTopic, publishTopic, ref);
      if (controlTopic !== null) push(learnerByControlTopic, controlTopic, ref);
    });
  };

  /**
   * Proctor sessions are written as they are read, but their rosters and control targets refer
   * to learner sessions that may come later in the scan: those (few) parts wait in `pending`.
   */
  const pendingProctors: Array<{ row: SessionRow; watched: Set<number>; controls: StoredRequest[] }> = [];
  const proctorActor = (actor: number, records: StoredRequest[]): void => {
    const sessions = splitSessions(records);
    sessions.forEach((list, ordinal) => {
      const row = baseSession(actor, 'proctor', list, ordinal + 1);
      proctorSessions++;
      const watched = new Set<number>();
      const pubCounts = new Map<number, number>();
      const subCounts = new Map<number, number>();
      // Watched topics count every long-poll attempt, failed ones included.
      for (const r of list) {
        if (r.op === OP_SUBSCRIBE) for (const t of r.topics) (watched.add(t), bump(subCounts, t));
        if (r.op === OP_PUBLISH) for (const t of r.topics) bump(pubCounts, t);
      }
      const pt = mostFrequent(pubCounts);
      const ct = mostFrequent(subCounts);
      row.publishTopic = pt === null ? null : (names.get(pt) ?? null);
      row.controlTopic = ct === null ? null : (names.get(ct) ?? null);
      writer.session(row);
      collect('proctorSessionDuration', row.endMs - row.startMs);
      const controls: StoredRequest[] = [];
      let lastControl = -1;
      for (const r of list) {
        if (r.status >= 500) {
          emitTimeline(row.id, row.startMs, r, 'error', null);
        } else if (r.status < 400 && r.op === OP_SUBSCRIBE) {
          emitTimeline(row.id, row.startMs, r, 'poll', null);
        } else if (r.status < 400 && r.op === OP_PUBLISH) {
          if (lastControl >= 0) collect('proctorControlInterval', r.startMs - lastControl);
          lastControl = r.startMs;
          collect('controlTargets', r.topics.length);
          controls.push(r);
        }
      }
      pendingProctors.push({ row, watched, controls });
    });
  };

  const resolveProctor = ({ row, watched, controls }: (typeof pendingProctors)[number]): void => {
    // Roster: learner sessions whose publish topic it watched and that overlap it in time.
    const roster = new Set<number>();
    let firstLearnerStart = Infinity;
    for (const t of watched) {
      for (const s of learnerByPublishTopic.get(t) ?? []) {
        if (s.startMs <= row.endMs && s.endMs >= row.startMs && !roster.has(s.id)) {
          roster.add(s.id);
          writer.roster(row.id, s.id);
          firstLearnerStart = Math.min(firstLearnerStart, s.startMs);
        }
      }
    }
    collect('rosterSize', roster.size);
    if (roster.size > 0) collect('proctorLeadTime', firstLearnerStart - row.startMs);
    for (const r of controls) {
      const targets = new Set<number>();
      for (const t of r.topics) {
        const target = findCovering(learnerByControlTopic.get(t) ?? [], r.startMs);
        if (target) targets.add(target.id);
      }
      if (targets.size === 0) emitTimeline(row.id, row.startMs, r, 'control', null);
      for (const target of targets) emitTimeline(row.id, row.startMs, r, 'control', target);
    }
  };

  // Pass 2: one scan of every request in actor/start order, streamed from a second, read-only
  // connection (better-sqlite3 cannot write on a connection while it iterates; that one sees
  // the committed requests). An in-memory database has no second connection; it is small.
  const sortedSql = 'SELECT actor, start_ms, duration_ms, op, status, messages, topics, session, client FROM requests ORDER BY actor, start_ms';
  type Row = [number, number, number, number, number, number, string, number | null, number | null];
  const fileBacked = db.name !== ':memory:' && db.name !== '' && !db.memory;
  const reader = fileBacked ? new Database(db.name, { readonly: true, fileMustExist: true }) : undefined;
  const rows: Iterable<Row> = reader ? (reader.prepare(sortedSql).raw().iterate() as Iterable<Row>) : (db.prepare(sortedSql).raw().all() as Row[]);
  let currentActor = -1;
  let buffer: StoredRequest[] = [];
  const flush = (): void => {
    if (buffer.length === 0) return;
    const role = roles.get(currentActor);
    if (role === 'learner') learnerActor(currentActor, buffer);
    else if (role === 'proctor') proctorActor(currentActor, buffer);
    buffer = [];
  };
  // Clients repeat the same topic lists: parse each distinct one once.
  const topicLists = new Map<string, number[]>();
  try {
    for (const [actor, startMs, durationMs, op, status, messages, topicsText, session, client] of rows) {
      if (actor !== currentActor) {
        flush();
        currentActor = actor;
        if (topicLists.size > 50_000) topicLists.clear();
      }
      if (roles.get(actor) === 'other') continue;
      let topics = topicLists.get(topicsText);
      if (!topics) topicLists.set(topicsText, (topics = parseTopicList(topicsText)));
      buffer.push({ actor, startMs, durationMs, op, status, messages, topics, session, client });
    }
    flush();
  } finally {
    reader?.close();
  }
  for (const p of pendingProctors) resolveProctor(p);

  for (const name of distributionNames) {
    const c = dist.get(name)!;
    if (c.count === 0) continue;
    const { summary, samples } = c.finish();
    writer.distribution({ name, unit: distributionUnits[name], summary, samples });
  }
  for (const [minuteMs, count] of [...arrivals].sort((a, b) => a[0] - b[0])) writer.arrival({ minuteMs, learners: count });

  const peak = peakConcurrency(learnerIntervals);
  const hashes = db.prepare('SELECT sha256 FROM sources ORDER BY sha256').pluck().all() as string[];
  const fingerprint = crypto.createHash('sha256').update(`schema:${schemaVersion}\n${hashes.join('\n')}`).digest('hex');
  const overview: ModelOverview = {
    fingerprint,
    span: requestCount === 0 ? { startMs: 0, endMs: 0 } : { startMs: spanStart ?? 0, endMs: spanEnd ?? 0 },
    timezone: options.timezone ?? 'UTC',
    learners,
    proctors,
    sessions: learnerIntervals.length,
    proctorSessions,
    peakConcurrentLearners: peak.count,
    peakConcurrentLearnersAtMs: peak.atMs,
  };
  writer.overview(overview);
  writer.finish();
  return { overview, requests: requestCount };
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** Most [start, end] intervals overlapping at one instant (closed intervals: touching ends overlap). */
export function peakConcurrency(intervals: Array<[number, number]>): { count: number; atMs: number } {
  const events: Array<[number, number]> = [];
  for (const [s, e] of intervals) events.push([s, 1], [e, -1]);
  events.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  let current = 0;
  let best = 0;
  let atMs = intervals.length > 0 ? intervals[0]![0] : 0;
  for (const [t, d] of events) {
    current += d;
    if (current > best) {
      best = current;
      atMs = t;
    }
  }
  return { count: best, atMs };
}
