// The virtual learners and proctors: who is in session, who watches whom, and what each plan
// event means for them (join, publish, control, leave). Turns plan events into publishes and
// subscriptions and declares which (message, subscriber) pairs are owed.

import type { PlanEvent } from './plan-types.js';
import type { DeliveryTracker, SubscriberChecks } from './delivery.js';
import type { RunMetrics } from './metrics.js';
import type { Publishers } from './publishers.js';
import type { SentSamples } from './samples.js';
import type { Subscriber, Subscribers } from './subscribers.js';
import type { OutgoingMessage } from './target/types.js';

interface Learner {
  name: string;
  eventsTopic: string;
  controlTopic: string;
  sub: Subscriber;
  joinedAtMs: number;
  lastPublishMs: number | undefined;
  joined: boolean;
}

interface Proctor {
  name: string;
  roster: string[];
  /** Undefined for a proctor with nobody to watch: it has nothing to poll. */
  sub: Subscriber | undefined;
  joinedAtMs: number;
  lastControlMs: number | undefined;
  joined: boolean;
}

export interface SessionDeps {
  /** Topic prefix unique to the run. */
  nonce: string;
  tracker: DeliveryTracker;
  publishers: Publishers;
  subscribers: Subscribers;
  metrics: RunMetrics;
  samples: SentSamples;
  /** --speed: samples are kept in recorded time. */
  speed: number;
}

/** Plan names are [A-Za-z0-9._-]; anything else is escaped so topics stay in that alphabet (and one-to-one). */
export function topicPart(name: string): string {
  return /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(name) ? name : name.replace(/[^A-Za-z0-9-]/g, (c) => `_${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export class VirtualUsers {
  private readonly learners = new Map<string, Learner>();
  private readonly proctors = new Map<string, Proctor>();
  /** learner name -> proctors watching it now. */
  private readonly watchers = new Map<string, Proctor[]>();

  constructor(private readonly d: SessionDeps) {}

  eventsTopic(learner: string): string {
    return `${this.d.nonce}.${topicPart(learner)}.events`;
  }

  controlTopic(learner: string): string {
    return `${this.d.nonce}.${topicPart(learner)}.control`;
  }

  /** Applies one plan event that fell due now (`scheduledMs` is its monotonic due time). */
  apply(ev: PlanEvent, scheduledMs: number, now: number): void {
    const { tracker, metrics, samples, speed } = this.d;
    switch (ev.kind) {
      case 'learnerJoin': {
        if (this.learners.has(ev.learner)) return void metrics.c.planSkipped++;
        const controlTopic = this.controlTopic(ev.learner);
        this.learners.set(ev.learner, {
          name: ev.learner,
          eventsTopic: this.eventsTopic(ev.learner),
          controlTopic,
          sub: this.d.subscribers.start(ev.learner, 'control', [controlTopic]),
          joinedAtMs: now,
          lastPublishMs: undefined,
          joined: true,
        });
        metrics.learnerSessions++;
        metrics.virtualUsers++;
        return;
      }
      case 'proctorJoin': {
        if (this.proctors.has(ev.proctor)) return void metrics.c.planSkipped++;
        const topics = ev.roster.map((l) => this.eventsTopic(l));
        const proctor: Proctor = {
          name: ev.proctor,
          roster: ev.roster,
          // A proctor with an empty roster polls nothing: asking a bus to long-poll no topic is a bad request.
          sub: topics.length > 0 ? this.d.subscribers.start(ev.proctor, 'learner', topics) : undefined,
          joinedAtMs: now,
          lastControlMs: undefined,
          joined: true,
        };
        this.proctors.set(ev.proctor, proctor);
        for (const l of ev.roster) {
          const list = this.watchers.get(l);
          if (list) list.push(proctor);
          else this.watchers.set(l, [proctor]);
        }
        samples.add('rosterSize', ev.roster.length);
        metrics.proctorSessions++;
        metrics.virtualUsers++;
        return;
      }
      case 'publish': {
        const learner = this.learners.get(ev.learner);
        if (!learner?.joined || ev.messages <= 0) return void metrics.c.planSkipped++;
        const first = tracker.allocateIds(ev.messages);
        const expecting: SubscriberChecks[] = [];
        for (const proctor of this.watchers.get(ev.learner) ?? []) {
          const checks = owed(proctor);
          if (!checks) continue;
          expecting.push(checks);
          for (let i = 0; i < ev.messages; i++) tracker.expect(checks, first + i, scheduledMs);
        }
        const messages: OutgoingMessage[] = [];
        for (let i = 0; i < ev.messages; i++) messages.push({ id: first + i, topic: learner.eventsTopic, sentMs: scheduledMs, from: learner.name });
        if (learner.lastPublishMs !== undefined) samples.add('learnerPublishInterval', (now - learner.lastPublishMs) * speed);
        learner.lastPublishMs = now;
        samples.add('messagesPerPublish', ev.messages);
        this.d.publishers.send(learner.name, messages, scheduledMs, expecting);
        return;
      }
      case 'control': {
        const proctor = this.proctors.get(ev.proctor);
        if (!proctor?.joined || ev.targets.length === 0) return void metrics.c.planSkipped++;
        const first = tracker.allocateIds(ev.targets.length);
        const messages: OutgoingMessage[] = [];
        const expecting: SubscriberChecks[] = [];
        ev.targets.forEach((name, i) => {
          const target = this.learners.get(name);
          const checks = target?.joined ? activeChecks(target.sub) : undefined;
          if (checks) {
            tracker.expect(checks, first + i, scheduledMs);
            expecting.push(checks);
          }
          messages.push({ id: first + i, topic: this.controlTopic(name), sentMs: scheduledMs, from: proctor.name });
        });
        if (proctor.lastControlMs !== undefined) samples.add('proctorControlInterval', (now - proctor.lastControlMs) * speed);
        proctor.lastControlMs = now;
        samples.add('controlTargets', ev.targets.length);
        this.d.publishers.send(proctor.name, messages, scheduledMs, expecting);
        return;
      }
      case 'learnerLeave': {
        const learner = this.learners.get(ev.learner);
        if (!learner?.joined) return void metrics.c.planSkipped++;
        this.endSession(learner, 'sessionDuration', (now - learner.joinedAtMs) * speed);
        this.learners.delete(ev.learner);
        this.d.subscribers.leave(learner.sub);
        return;
      }
      case 'proctorLeave': {
        const proctor = this.proctors.get(ev.proctor);
        if (!proctor?.joined) return void metrics.c.planSkipped++;
        this.endSession(proctor, 'proctorSessionDuration', (now - proctor.joinedAtMs) * speed);
        this.proctors.delete(ev.proctor);
        for (const l of proctor.roster) {
          const list = this.watchers.get(l);
          if (!list) continue;
          const rest = list.filter((p) => p !== proctor);
          if (rest.length > 0) this.watchers.set(l, rest);
          else this.watchers.delete(l);
        }
        if (proctor.sub) this.d.subscribers.leave(proctor.sub);
        return;
      }
    }
  }

  /** The schedule ended: everyone leaves (no session-duration sample: the window cut them short). */
  leaveAll(): void {
    for (const u of [...this.learners.values(), ...this.proctors.values()]) {
      if (!u.joined) continue;
      u.joined = false;
      this.d.metrics.virtualUsers--;
    }
    for (const sub of [...this.d.subscribers.live]) this.d.subscribers.leave(sub);
  }

  /** A virtual user's session ends: it stops counting and its length (recorded time) is sampled. */
  private endSession(user: { joined: boolean }, sample: 'sessionDuration' | 'proctorSessionDuration', recordedMs: number): void {
    user.joined = false;
    this.d.metrics.virtualUsers--;
    this.d.samples.add(sample, recordedMs);
  }
}

/** Checks of a subscriber that is owed messages now (its subscription is open and it has not left). */
function activeChecks(sub: Subscriber | undefined): SubscriberChecks | undefined {
  return sub?.state === 'active' ? (sub.checks ?? undefined) : undefined;
}

function owed(proctor: Proctor): SubscriberChecks | undefined {
  return proctor.joined ? activeChecks(proctor.sub) : undefined;
}
