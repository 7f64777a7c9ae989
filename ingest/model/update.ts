// Updates the model with one file's sessions (issue 13): what a file costs is proportional to the
// file, not to what the database already holds. Each stored session's contributions (its row,
// distribution values, arrival minute, roster) are a function of its own requests, its actor's
// role and the sessions near it in time, so a session that changes (continued by this file, or
// its actor's role changed) first takes back exactly what it gave, then gives again; counts per
// value make the distributions merge exactly. The result equals the model of all files at once.

import { DateTime } from 'luxon';
import crypto from 'node:crypto';
import type { DistributionName, ModelOverview } from '../../db/model-types.js';
import { schemaVersion } from '../../db/open.js';
import type { ModelStore, StoredSession } from '../../db/model-store.js';
import { unpackRecords, type SessionRecordRow } from '../../db/session-pack.js';
import { OP_PUBLISH, OP_SUBSCRIBE, sessionFacts } from './facts.js';
import { assignRoles, type ActorRole, type ActorStats } from './roles.js';
import { controlReachMs, linkProctor } from './rosters.js';
import type { SessionStore } from './sessions.js';
import { peakConcurrency } from './peak.js';

const spanKey = 'model.span';

interface ActorTally {
  requests: number;
  publishes: number;
  /** Requests per (topic, op), keyed topic * 4 + op. */
  topics: Map<number, number>;
  /** Requests per client family. */
  clients: Map<number, number>;
}
const daysZoneKey = 'model.days_zone';

export class ModelUpdate implements SessionStore {
  /** Sessions stored by this update and not derived yet. */
  private readonly fresh = new Set<number>();
  private readonly dist = new Map<DistributionName, Map<number, number>>();
  private readonly arrivals = new Map<number, number>();
  private touchedFrom = Infinity;
  private touchedTo = -Infinity;
  /** Per actor, this file's counts; nested maps keyed by numbers (no string key per request: issue 13 step 5). */
  private readonly actorCounts = new Map<number, ActorTally>();
  private spanStart = Infinity;
  private spanEnd = -Infinity;
  private roles: Map<number, ActorRole>;

  constructor(private readonly store: ModelStore) {
    this.roles = store.actorRoles();
  }

  // What roles are decided from, counted as the file is read

  count(actor: number, op: number, topics: readonly number[], client: number | null, startMs: number, durationMs: number): void {
    let a = this.actorCounts.get(actor);
    if (!a) this.actorCounts.set(actor, (a = { requests: 0, publishes: 0, topics: new Map(), clients: new Map() }));
    if (op !== 0) {
      a.requests++;
      if (op === OP_PUBLISH) a.publishes++;
      for (const t of topics) {
        const key = t * 4 + op;
        a.topics.set(key, (a.topics.get(key) ?? 0) + 1);
      }
    }
    if (client !== null) a.clients.set(client, (a.clients.get(client) ?? 0) + 1);
    if (startMs < this.spanStart) this.spanStart = startMs;
    if (startMs + durationMs > this.spanEnd) this.spanEnd = startMs + durationMs;
  }

  // SessionStore: the assembler's closed sessions go to the database, continued ones come back

  takeNear(actor: number, fromMs: number, toMs: number): SessionRecordRow[][] {
    return this.store.sessionsNear(actor, fromMs, toMs).map((s) => this.retire(s));
  }

  takeKeyed(actor: number, key: number): SessionRecordRow[][] {
    return this.store.sessionsKeyed(actor, key).map((s) => this.retire(s));
  }

  put(actor: number, key: number | null, records: SessionRecordRow[]): void {
    this.fresh.add(this.store.addSession(actor, key, records));
  }

  private touch(fromMs: number, toMs: number): void {
    if (fromMs < this.touchedFrom) this.touchedFrom = fromMs;
    if (toMs > this.touchedTo) this.touchedTo = toMs;
  }

  private add(name: DistributionName, value: number, sign: number): void {
    let m = this.dist.get(name);
    if (!m) this.dist.set(name, (m = new Map()));
    m.set(value, (m.get(value) ?? 0) + sign);
  }

  /** Takes back what a derived session gave the model (it stays stored, to be derived again). */
  private unapply(s: StoredSession, records: readonly SessionRecordRow[]): void {
    this.touch(s.startMs, s.endMs);
    if (s.role === 'new' || this.fresh.has(s.id)) return;
    for (const [name, v] of sessionFacts(records, s.role).values) this.add(name, v, -1);
    if (s.role === 'learner') this.bumpArrival(s.startMs, -1);
    if (s.rosterSize !== null) {
      this.add('rosterSize', s.rosterSize, -1);
      if (s.leadTimeMs !== null) this.add('proctorLeadTime', s.leadTimeMs, -1);
      this.store.clearLinks(s.id);
    }
  }

  private retire(s: StoredSession): SessionRecordRow[] {
    const records = unpackRecords(s.records, s.startMs);
    this.unapply(s, records);
    this.fresh.delete(s.id);
    this.store.removeSession(s.id);
    return records;
  }

  private bumpArrival(startMs: number, sign: number): void {
    const minute = Math.floor(startMs / 60_000) * 60_000;
    this.arrivals.set(minute, (this.arrivals.get(minute) ?? 0) + sign);
  }

  /** Every stored session is derived again (--rebuild). */
  rederiveAll(): void {
    this.store.resetDerived();
    for (const id of this.store.allSessionIds()) this.fresh.add(id);
    this.store.db.exec("UPDATE actors SET role = 'other'");
    this.roles = new Map();
    this.store.deleteMeta(daysZoneKey);
  }

  /** Derives what changed and writes the overview; call once the file's sessions are all stored. */
  finish(zone: string): ModelOverview {
    const topicRows: Array<[number, number, number, number]> = [];
    const clientRows: Array<[number, number, number]> = [];
    for (const [actor, a] of this.actorCounts) {
      for (const [key, n] of a.topics) topicRows.push([actor, key % 4, Math.floor(key / 4), n]);
      for (const [client, n] of a.clients) clientRows.push([actor, client, n]);
    }
    this.store.addActorCounts(this.actorCounts, topicRows, clientRows);
    this.actorCounts.clear();

    // Roles over every actor's merged counts; an actor whose role changed is derived again.
    const roles = this.decideRoles();
    for (const [actor, role] of roles) {
      const before = this.roles.get(actor);
      if (before === role) continue;
      this.store.setActorRole(actor, role);
      if (before === undefined) continue;
      for (const s of this.store.sessionsOfActor(actor)) {
        if (this.fresh.has(s.id)) continue;
        this.unapply(s, unpackRecords(s.records, s.startMs));
        this.fresh.add(s.id);
      }
    }
    this.roles = roles;

    for (const id of this.fresh) {
      const s = this.store.session(id)!;
      const role = roles.get(s.actor) ?? 'other';
      const facts = sessionFacts(unpackRecords(s.records, s.startMs), role);
      for (const [name, v] of facts.values) this.add(name, v, 1);
      if (role === 'learner') this.bumpArrival(s.startMs, 1);
      this.store.setDerived(id, { role, ...facts });
      this.touch(s.startMs, s.endMs);
    }
    this.fresh.clear();

    // Rosters and control targets of every proctor session near what changed.
    if (this.touchedTo >= this.touchedFrom) {
      const proctors = this.store.sessionsOverlapping('proctor', this.touchedFrom - controlReachMs, this.touchedTo + controlReachMs);
      if (proctors.length > 0) {
        const from = Math.min(...proctors.map((p) => p.startMs)) - controlReachMs;
        const to = Math.max(...proctors.map((p) => p.endMs)) + controlReachMs;
        const learners = this.store.learnerRefs(from, to);
        for (const p of proctors) {
          if (p.rosterSize !== null) {
            this.add('rosterSize', p.rosterSize, -1);
            if (p.leadTimeMs !== null) this.add('proctorLeadTime', p.leadTimeMs, -1);
          }
          const near = learners.filter((l) => l.startMs <= p.endMs + controlReachMs && l.endMs >= p.startMs - controlReachMs);
          const links = linkProctor({ startMs: p.startMs, endMs: p.endMs, records: unpackRecords(p.records, p.startMs) }, near);
          this.add('rosterSize', links.rosterSize, 1);
          if (links.leadTimeMs !== null) this.add('proctorLeadTime', links.leadTimeMs, 1);
          this.store.setLinks(p.id, links.roster, links.rosterSize, links.leadTimeMs, links.targets);
        }
      }
    }
    this.store.addDistributionCounts(this.dist);
    this.dist.clear();
    this.store.addArrivals(this.arrivals);
    this.arrivals.clear();

    // Span over every request (all actors), merged with what earlier files recorded.
    const stored = this.store.meta(spanKey);
    const span = stored ? (JSON.parse(stored) as { startMs: number; endMs: number }) : { startMs: Infinity, endMs: -Infinity };
    span.startMs = Math.min(span.startMs, this.spanStart);
    span.endMs = Math.max(span.endMs, this.spanEnd);
    if (Number.isFinite(span.startMs)) this.store.setMeta(spanKey, JSON.stringify(span));

    this.updateDays(zone, span);
    const overview = this.overview(zone, span);
    this.store.setOverview(overview);
    return overview;
  }

  private decideRoles(): Map<number, ActorRole> {
    const actors = new Map<number, ActorStats>();
    for (const [id, requests, publishes] of this.store.actorCounts()) actors.set(id, { subTopics: new Set(), requests, publishes });
    const publishersOf = new Map<number, number[]>();
    for (const [actor, op, topic] of this.store.actorTopics()) {
      if (op === OP_SUBSCRIBE) actors.get(actor)?.subTopics.add(topic);
      else if (op === OP_PUBLISH) {
        const pubs = publishersOf.get(topic);
        if (!pubs) publishersOf.set(topic, [actor]);
        else pubs.push(actor);
      }
    }
    return assignRoles(actors, publishersOf, this.store.roleOverrides());
  }

  /** Recomputes the days (in the model's zone) that what changed falls in; all of them when the zone changed. */
  private updateDays(zone: string, span: { startMs: number; endMs: number }): void {
    let from = this.touchedFrom;
    let to = this.touchedTo;
    if (this.store.meta(daysZoneKey) !== zone) {
      this.store.clearDays();
      this.store.setMeta(daysZoneKey, zone);
      from = span.startMs;
      to = span.endMs;
    }
    if (!(to >= from) || !Number.isFinite(from)) return;
    let day = DateTime.fromMillis(from, { zone }).startOf('day');
    const last = DateTime.fromMillis(to, { zone }).startOf('day');
    for (let n = 0; day <= last && n < 100_000; n++, day = day.plus({ days: 1 })) {
      const startMs = day.toMillis();
      const endMs = day.plus({ days: 1 }).toMillis();
      const name = day.toISODate()!;
      const learners = this.store.sessionCount('learner', startMs, endMs);
      const proctors = this.store.sessionCount('proctor', startMs, endMs);
      if (learners + proctors === 0) {
        this.store.deleteDay(name);
        continue;
      }
      const spanOfDay = this.store.db
        .prepare("SELECT min(start_ms), max(end_ms) FROM sessions WHERE role IN ('learner', 'proctor') AND start_ms >= ? AND start_ms < ?")
        .raw()
        .get(startMs, endMs) as [number, number];
      // Concurrency within the day: sessions crossing midnight count from it.
      const intervals = this.store.intervals('learner', startMs, endMs).map(([s, e]) => [Math.max(s, startMs), Math.min(e, endMs - 1)] as [number, number]);
      const peak = peakConcurrency(intervals);
      let peakArrivals = 0;
      let peakArrivalsAtMs = startMs;
      for (const [minute, n] of this.store.arrivalsBetween(startMs, endMs)) {
        if (n > peakArrivals) (peakArrivals = n), (peakArrivalsAtMs = minute);
      }
      this.store.setDay({
        day: name,
        startMs: spanOfDay[0],
        endMs: spanOfDay[1],
        learnerSessions: learners,
        proctorSessions: proctors,
        peakConcurrent: peak.count,
        peakAtMs: intervals.length > 0 ? peak.atMs : startMs,
        peakArrivals,
        peakArrivalsAtMs,
      });
    }
  }

  private overview(zone: string, span: { startMs: number; endMs: number }): ModelOverview {
    const c = this.store.counts();
    let peak = { count: 0, atMs: Number.isFinite(span.startMs) ? span.startMs : 0 };
    for (const d of this.store.days()) if (d.peakConcurrent > peak.count) peak = { count: d.peakConcurrent, atMs: d.peakAtMs };
    const fingerprint = crypto.createHash('sha256').update(`schema:${schemaVersion}\n${this.store.sourceHashes().join('\n')}`).digest('hex');
    return {
      fingerprint,
      span: Number.isFinite(span.startMs) ? { startMs: span.startMs, endMs: span.endMs } : { startMs: 0, endMs: 0 },
      timezone: zone,
      learners: c.learners,
      proctors: c.proctors,
      sessions: c.sessions,
      proctorSessions: c.proctorSessions,
      peakConcurrentLearners: peak.count,
      peakConcurrentLearnersAtMs: peak.atMs,
    };
  }
}
