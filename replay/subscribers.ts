// Long-polling for every virtual user: a subscriber opens its subscription through the target
// (split into lanes of at most maxTopicsPerPoll topics, one poll loop each), keeps a poll open at
// all times, hands every delivered message to the delivery checks, and backs off after errors
// (full jitter, Retry-After honoured: no thundering herd). Fatal answers (4xx) are never retried.

import { backoffDelayMs, parseRetryAfter } from './backoff.js';
import type { Stream, SubscriberChecks } from './delivery.js';
import { fastEmptyMs } from './metrics.js';
import type { Failure, ReceivedMessage, TargetSession } from './target/types.js';
import type { RetryingClientDeps, Wait } from './waits.js';

export interface SubscriberDeps extends RetryingClientDeps {
  /** Recorded time per wall-clock ms (--speed), for the poll-duration samples. */
  speed: number;
  /** A subscriber finished (the runner checks whether the drain is over). */
  finished(): void;
}

export type SubscriberState = 'opening' | 'active' | 'draining' | 'done';

interface Lane {
  session: TargetSession;
  opened: boolean;
  poll: AbortController | null;
  wait: Wait | null;
  attempt: number;
  /** Consecutive empty answers that came back at once. */
  fastEmpty: number;
}

export interface Subscriber {
  readonly actor: string;
  readonly stream: Stream;
  readonly topics: ReadonlySet<string>;
  /** Null until every lane's subscription is open: nothing is expected of it before. */
  checks: SubscriberChecks | null;
  state: SubscriberState;
  readonly lanes: Lane[];
}

/** Consecutive instant empty answers after which a lane waits a backoff before polling again. */
const fastEmptyBeforeBackoff = 3;

export class Subscribers {
  readonly live = new Set<Subscriber>();

  constructor(private readonly d: SubscriberDeps) {}

  /** Subscribes `actor` to `topics` (at least one) and starts polling. */
  start(actor: string, stream: Stream, topics: readonly string[]): Subscriber {
    const per = Math.max(1, this.d.target.maxTopicsPerPoll);
    const lanes: Lane[] = [];
    for (let i = 0; i < topics.length; i += per) {
      lanes.push({ session: this.d.target.subscribe(actor, topics.slice(i, i + per)), opened: false, poll: null, wait: null, attempt: 0, fastEmpty: 0 });
    }
    const sub: Subscriber = { actor, stream, topics: new Set(topics), checks: null, state: 'opening', lanes };
    // A bus that keeps channel history delivers what was published from now on, whenever the subscription opens.
    if (this.d.target.deliversFromSubscribe) this.activate(sub);
    this.live.add(sub);
    for (const lane of lanes) void this.runLane(sub, lane);
    return sub;
  }

  /** The user's session ended: it stops being owed new messages and finishes once every pair it owes has a verdict. */
  leave(sub: Subscriber): void {
    if (sub.state === 'opening') return this.finish(sub);
    if (sub.state !== 'active') return;
    this.d.tracker.leave(sub.checks!);
    sub.state = 'draining';
    if (sub.checks!.pending.size === 0) this.finish(sub);
  }

  /** Finishes draining subscribers that owe nothing more (after a sweep marked pairs lost). */
  finishDrained(): void {
    for (const sub of this.live) if (sub.state === 'draining' && sub.checks!.pending.size === 0) this.finish(sub);
  }

  finish(sub: Subscriber): void {
    if (sub.state === 'done') return;
    sub.state = 'done';
    for (const lane of sub.lanes) {
      lane.poll?.abort();
      lane.wait?.cancel();
      void lane.session.close().catch(() => undefined);
    }
    if (sub.checks) this.d.tracker.forget(sub.checks);
    this.live.delete(sub);
    this.d.finished();
  }

  finishAll(): void {
    for (const sub of [...this.live]) this.finish(sub);
  }

  /** From here on every message published to its topics is owed to it. */
  private activate(sub: Subscriber): void {
    sub.checks = this.d.tracker.subscriber(sub.stream);
    sub.state = 'active';
  }

  private async runLane(sub: Subscriber, lane: Lane): Promise<void> {
    if (!(await this.openLane(sub, lane))) return;
    await this.pollLane(sub, lane);
  }

  private async openLane(sub: Subscriber, lane: Lane): Promise<boolean> {
    const { metrics } = this.d;
    while (!isDone(sub)) {
      const ac = new AbortController();
      lane.poll = ac;
      metrics.c.openRequests++;
      const openedAt = this.d.clock.monoMs();
      const r = await lane.session.open(ac.signal);
      lane.poll = null;
      if (isDone(sub) || r.kind === 'aborted') return false;
      metrics.recordRequestTime('open', this.d.clock.monoMs() - openedAt);
      if (r.kind === 'ok') {
        lane.opened = true;
        lane.attempt = 0;
        if (sub.state === 'opening' && sub.lanes.every((l) => l.opened)) this.activate(sub);
        return true;
      }
      metrics.recordError('open', r);
      if (r.kind === 'fatal') return false;
      if (!(await this.backoff(sub, lane, r))) return false;
      metrics.c.retries++;
    }
    return false;
  }

  private async pollLane(sub: Subscriber, lane: Lane): Promise<void> {
    const { metrics, clock } = this.d;
    while (!isDone(sub)) {
      const ac = new AbortController();
      lane.poll = ac;
      metrics.openPolls++;
      metrics.c.subscribeRequests++;
      const polledAtMs = clock.monoMs();
      const r = await lane.session.poll(ac.signal);
      metrics.openPolls--;
      lane.poll = null;
      if (isDone(sub) || r.kind === 'aborted') return;
      const now = clock.monoMs();
      metrics.recordRequestTime('poll', now - polledAtMs);
      if (r.kind === 'messages' || r.kind === 'empty') {
        lane.attempt = 0;
        // In recorded time like the other samples (a poll ends at the next delivery, which --speed brings sooner).
        this.d.samples.add('pollDuration', (now - polledAtMs) * this.d.speed);
        if (r.kind === 'messages') {
          lane.fastEmpty = 0;
          metrics.c.unidentified += r.unidentified;
          if (r.violations?.length) metrics.recordViolations(r.violations);
          for (const m of r.messages) this.received(sub, m, now);
        } else {
          metrics.c.emptyPolls++;
          if (now - polledAtMs < fastEmptyMs) {
            metrics.c.fastEmptyPolls++;
            lane.fastEmpty++;
          } else lane.fastEmpty = 0;
        }
        if (sub.state === 'draining' && sub.checks!.pending.size === 0) return this.finish(sub);
        // A bus that answers every poll at once with nothing would spin this loop flat out; the
        // platform's clients would not hammer it either, and the verdict says what happened.
        if (lane.fastEmpty >= fastEmptyBeforeBackoff && !(await this.backoff(sub, lane, undefined))) return;
        continue;
      }
      metrics.recordError('poll', r);
      if (r.kind === 'fatal') return; // this lane is deaf from now on; what it owed ends lost
      if (!(await this.backoff(sub, lane, r))) return;
      this.d.metrics.c.retries++;
    }
  }

  /** Waits the backoff for this lane's next attempt; false when the subscriber finished meanwhile. */
  private async backoff(sub: Subscriber, lane: Lane, failure: Failure | undefined): Promise<boolean> {
    const { clock } = this.d;
    const retryAfter = failure?.kind === 'retry' ? parseRetryAfter(failure.retryAfter, clock.nowMs()) : undefined;
    const delay = backoffDelayMs(this.d.backoff, lane.attempt++, this.d.rng, retryAfter);
    const failedAtMs = clock.monoMs();
    lane.wait = this.d.waits.after(delay);
    const resumed = await lane.wait.done;
    lane.wait = null;
    if (!resumed || isDone(sub)) return false;
    if (failure) this.d.samples.add('retryGap', clock.monoMs() - failedAtMs);
    return true;
  }

  private received(sub: Subscriber, m: ReceivedMessage, now: number): void {
    if (!sub.checks) return; // a lane answered before the others were open: nothing is owed yet
    // Identity is matched by id AND topic: a bus that delivers on the wrong topic is wrong, not late.
    if (!sub.topics.has(m.topic) || (m.deliveredOn !== undefined && m.deliveredOn !== m.topic)) {
      this.d.metrics.c.misrouted++;
      return;
    }
    this.d.tracker.deliver(sub.checks, m.id, now);
  }
}

/** Re-reads the state after an await (TypeScript would keep the narrowing from before it). */
function isDone(sub: Subscriber): boolean {
  return sub.state === 'done';
}
