// The replay runtime: executes any Iterable<PlanEvent> against a protocol v1 target as virtual
// learners and proctors, checks every expected delivery, and reports per second and at the end.
// An awaitable event emitter ('start', 'tick', 'stopping', 'done'): the CLI display and tests are listeners.
//
// Open model: publishes leave on the plan's schedule (one scheduler, one timer), never after the
// previous response, and latency is charged from the *scheduled* send time.

import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import type { Dispatcher } from 'undici';
import { systemClock, type Clock } from '../core/clock.js';
import { rehearseVersion } from '../core/version.js';
import type { Db } from '../db/open.js';
import { beginRun, type RunWriter, type ScrapeSample } from '../db/run-store.js';
import type { LatencyMs, RunSecond, RunSettings, RunStatus, RunSummary, StreamSummary, Verdict } from '../db/run-types.js';
import { seededRandom, type Random } from '../stats/random.js';
import type { PlanEvent } from './plan-types.js';
import { backoffDelayMs, parseRetryAfter } from './backoff.js';
import { BusClient, type BusMessage } from './client.js';
import { DeliveryTracker, newLatencyHistogram, percentileMs, recordMs, type Stream, type StreamCounts, type SubscriberChecks } from './delivery.js';
import { describeOptions, resolveReplayOptions, type ReplayOptions, type ReplayOptionsInput } from './options.js';
import { SentSamples } from './samples.js';
import { startTargetScrape, type TargetScrape } from './target-scrape.js';
import { Scheduler, systemTimers, type ScheduledTask, type Timers } from './scheduler.js';
import { evaluateSlo, formatMs, type StreamOutcome } from './slo.js';

export type ScrapeStarter = typeof startTargetScrape;

export interface ReplayInput extends ReplayOptionsInput {
  /** The plan, ascending by atMs (small disorder within the look-ahead is tolerated). */
  events: Iterable<PlanEvent>;
  /** Results go here (migrated rehearse database); without it nothing is stored and `run` is 0. */
  db?: Db;
  clock?: Clock;
  timers?: Timers;
  dispatcher?: Dispatcher;
  /** --scrape's sampler; replay/target-scrape.ts unless a test passes another. */
  startScrape?: ScrapeStarter;
}

export interface ReplayStart {
  run: number;
  target: string;
  nonce: string;
  startedAt: string;
  slo: string;
}

/** A per-second snapshot: the stored RunSecond plus running totals for displays. */
export interface ReplayTick extends RunSecond {
  elapsedMs: number;
  requests: number;
  totals: { published: number; expected: number; delivered: number; duplicates: number; lost: number; errors: number; retries: number };
  phase: Phase;
}

export type Phase = 'starting' | 'running' | 'draining' | 'done';

export interface ReplayRunEvents {
  start: [ReplayStart];
  tick: [ReplayTick];
  stopping: [{ reason: string; immediate: boolean }];
  done: [RunSummary];
}

/** How far ahead of time plan events are pulled from the iterator into the scheduler. */
const lookaheadMs = 1000;
const sweepEveryMs = 250;

interface Subscriber {
  actor: string;
  checks: SubscriberChecks;
  cursors: Record<string, number>;
  state: 'active' | 'draining' | 'done';
  poll: AbortController | null;
  retry: ScheduledTask | undefined;
  wake: (() => void) | null;
  attempt: number;
}

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
  sub: Subscriber;
  joinedAtMs: number;
  lastControlMs: number | undefined;
  joined: boolean;
}

interface Counters {
  publishRequests: number;
  subscribeRequests: number;
  errors: number;
  retries: number;
  accepted: number;
  publishedMessages: number;
  failedMessages: number;
  withdrawnMessages: number;
  planSkipped: number;
}

export class ReplayRun extends EventEmitter<ReplayRunEvents> {
  /** Resolves with the summary once results are written; rejects on setup errors (unreachable target). */
  readonly finished: Promise<RunSummary>;
  readonly options: ReplayOptions;
  phase: Phase = 'starting';

  private readonly clock: Clock;
  private readonly scheduler: Scheduler;
  private readonly client: BusClient;
  private readonly tracker: DeliveryTracker;
  private readonly rng: Random;
  private readonly samples: SentSamples;
  private readonly iterator: Iterator<PlanEvent>;
  private readonly learners = new Map<string, Learner>();
  private readonly proctors = new Map<string, Proctor>();
  /** learner name -> proctors watching it now. */
  private readonly watchers = new Map<string, Proctor[]>();
  private readonly live = new Set<Subscriber>();
  private readonly c: Counters = { publishRequests: 0, subscribeRequests: 0, errors: 0, retries: 0, accepted: 0, publishedMessages: 0, failedMessages: 0, withdrawnMessages: 0, planSkipped: 0 };
  private last: Counters & { delivered: number; duplicates: number; lost: number } = { ...this.c, delivered: 0, duplicates: 0, lost: 0 };
  /**
   * One controller per publish request in flight, so stop() can abort them all. A single shared
   * signal would collect an abort listener per request (MaxListenersExceededWarning with
   * thousands in flight); each of these has one listener, gone with the request.
   */
  private readonly publishControllers = new Set<AbortController>();
  private publishesStopped = false;
  private readonly publishWaits = new Set<{ task: ScheduledTask; wake: () => void }>();
  private publishesInFlight = 0;
  private openPolls = 0;
  private virtualUsers = 0;
  private learnerSessions = 0;
  private proctorSessions = 0;
  private peek: PlanEvent | undefined;
  private planExhausted = false;
  private queued = 0;
  private fired = 0;
  private t0 = 0;
  private drainStartMs = 0;
  private drainDeadline: ScheduledTask | undefined;
  private status: RunStatus = 'finished';
  private stopReason = '';
  private nonce = '';
  private writer: RunWriter | undefined;
  private scrape: TargetScrape | undefined;
  private scrapeErrors = 0;
  private pendingScrapes: ScrapeSample[] = [];
  private readonly lagAll = newLatencyHistogram();
  private readonly lagSecond = newLatencyHistogram();
  private loopSecond: IntervalHistogram | undefined;
  private loopAll: IntervalHistogram | undefined;
  private lastSecond = -1;
  private resolveFinished!: (s: RunSummary) => void;
  private rejectFinished!: (e: unknown) => void;
  private finishing = false;
  private failure: unknown = undefined;

  constructor(private readonly input: ReplayInput) {
    super();
    this.options = resolveReplayOptions(input);
    this.clock = input.clock ?? systemClock;
    this.scheduler = new Scheduler(this.clock, input.timers ?? systemTimers);
    this.client = new BusClient({
      target: this.options.target,
      headers: this.options.headers,
      publishConnections: this.options.connections,
      pollTimeoutS: this.options.pollTimeoutS,
      requestTimeoutMs: this.options.requestTimeoutMs,
      dispatcher: input.dispatcher,
    });
    this.tracker = new DeliveryTracker(this.options.slo.lossLimitMs, this.options.slo.thresholdsMs);
    this.rng = seededRandom(`${this.options.seed}/backoff`);
    this.samples = new SentSamples(this.options.seed);
    this.iterator = input.events[Symbol.iterator]();
    this.finished = new Promise<RunSummary>((resolve, reject) => {
      this.resolveFinished = resolve;
      this.rejectFinished = reject;
    });
    // A caller that only listens to 'done' must not get an unhandled rejection warning as well.
    this.finished.catch(() => undefined);
  }

  /** Stop scheduling and drain (at most the loss limit); `immediate` aborts everything now. */
  stop(options: { immediate?: boolean; reason?: string } = {}): void {
    if (this.phase === 'done' || this.finishing) return;
    if (this.phase === 'draining' && !options.immediate) return; // already stopping
    this.status = 'interrupted';
    if (this.phase === 'starting') return; // begin() sees the status once the target check returns
    if (options.immediate) {
      this.emit('stopping', { reason: options.reason ?? 'stopped at once', immediate: true });
      void this.finish();
      return;
    }
    this.beginDrain(options.reason ?? 'stopped');
  }

  /** Called by startReplay. */
  async begin(): Promise<void> {
    try {
      this.nonce = this.options.runNonce ?? `r${randomBytes(5).toString('hex')}`;
      await this.client.check(`${this.nonce}.preflight`);
      const startedAt = new Date(this.clock.nowMs()).toISOString();
      if (this.input.db) {
        const o = this.options;
        this.writer = beginRun(this.input.db, {
          ...this.settings(),
          plannedDurationMs: o.durationMs ?? o.run.plannedDurationMs ?? null,
          modelFingerprint: o.run.modelFingerprint,
          rehearseVersion,
          options: describeOptions(o),
          startedAt,
        });
      }
      this.loopSecond = monitorEventLoopDelay({ resolution: 10 });
      this.loopAll = monitorEventLoopDelay({ resolution: 10 });
      this.loopSecond.enable();
      this.loopAll.enable();
      this.t0 = this.clock.monoMs();
      this.phase = 'running';
      if (this.status === 'interrupted') {
        // stop() arrived while we were checking the target: record an empty, interrupted run.
        void this.finish();
        return;
      }
      this.startScrape();
      this.emit('start', { run: this.writer?.runId ?? 0, target: this.options.target, nonce: this.nonce, startedAt, slo: this.options.slo.text });
      this.pump();
      this.scheduleTick(1);
      this.scheduleSweep();
      if (this.options.durationMs !== undefined) {
        this.scheduler.at(this.t0 + this.options.durationMs, () => this.beginDrain('duration reached'));
      }
    } catch (err) {
      await this.client.close();
      this.phase = 'done';
      this.rejectFinished(err);
    }
  }

  // ---- plan ---------------------------------------------------------------------------

  private pump(): void {
    if (this.phase !== 'running') return;
    try {
      this.pullPlan();
    } catch (err) {
      // A broken plan iterator ends the run; what was measured so far is still written.
      this.failure = err;
      this.status = 'failed';
      void this.finish();
    }
  }

  private pullPlan(): void {
    const horizon = this.clock.monoMs() - this.t0 + lookaheadMs;
    const limit = this.options.durationMs ?? Number.POSITIVE_INFINITY;
    for (;;) {
      if (this.peek === undefined) {
        const next = this.iterator.next();
        if (next.done) {
          this.planExhausted = true;
          break;
        }
        this.peek = next.value;
      }
      if (this.peek.atMs >= limit) {
        this.planExhausted = true;
        break;
      }
      if (this.peek.atMs > horizon) break;
      const ev = this.peek;
      this.peek = undefined;
      this.queued++;
      this.scheduler.at(this.t0 + ev.atMs, (lateMs) => {
        this.fired++;
        if (this.phase === 'running') this.fire(ev, lateMs);
        this.maybePlanDone();
      });
    }
    if (!this.planExhausted) this.scheduler.after(lookaheadMs / 2, () => this.pump());
    else this.maybePlanDone();
  }

  private maybePlanDone(): void {
    // With a duration, sessions still open keep their long-polls until it ends; without one the plan's end is the end.
    if (this.options.durationMs !== undefined) return;
    if (this.planExhausted && this.fired === this.queued && this.phase === 'running') this.beginDrain('plan finished');
  }

  private fire(ev: PlanEvent, _lateMs: number): void {
    const scheduledMs = this.t0 + ev.atMs;
    const speed = this.options.run.speed;
    const now = this.clock.monoMs();
    switch (ev.kind) {
      case 'learnerJoin': {
        if (this.learners.has(ev.learner)) return void this.c.planSkipped++;
        const learner: Learner = {
          name: ev.learner,
          eventsTopic: `${this.nonce}.${ev.learner}.events`,
          controlTopic: `${this.nonce}.${ev.learner}.control`,
          sub: this.newSubscriber(ev.learner, 'control', []),
          joinedAtMs: now,
          lastPublishMs: undefined,
          joined: true,
        };
        learner.sub.cursors[learner.controlTopic] = 0;
        this.learners.set(ev.learner, learner);
        this.learnerSessions++;
        this.virtualUsers++;
        void this.pollLoop(learner.sub);
        return;
      }
      case 'proctorJoin': {
        if (this.proctors.has(ev.proctor)) return void this.c.planSkipped++;
        const proctor: Proctor = {
          name: ev.proctor,
          roster: ev.roster,
          sub: this.newSubscriber(ev.proctor, 'learner', ev.roster.map((l) => `${this.nonce}.${l}.events`)),
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
        this.samples.add('rosterSize', ev.roster.length);
        this.proctorSessions++;
        this.virtualUsers++;
        void this.pollLoop(proctor.sub);
        return;
      }
      case 'publish': {
        const learner = this.learners.get(ev.learner);
        if (!learner?.joined || ev.messages <= 0) return void this.c.planSkipped++;
        const first = this.tracker.allocateIds(ev.messages);
        const expecting: SubscriberChecks[] = [];
        for (const proctor of this.watchers.get(ev.learner) ?? []) {
          if (!proctor.joined) continue;
          expecting.push(proctor.sub.checks);
          for (let i = 0; i < ev.messages; i++) this.tracker.expect(proctor.sub.checks, first + i, scheduledMs);
        }
        const parts: string[] = [];
        const topic = JSON.stringify(learner.eventsTopic);
        for (let i = 0; i < ev.messages; i++) parts.push(`{"topic":${topic},"id":"${first + i}","data":{"id":${first + i},"sentMs":${scheduledMs},"from":${JSON.stringify(learner.name)}}}`);
        if (learner.lastPublishMs !== undefined) this.samples.add('learnerPublishInterval', (now - learner.lastPublishMs) * speed);
        learner.lastPublishMs = now;
        this.samples.add('messagesPerPublish', ev.messages);
        void this.publish(`{"actor":${JSON.stringify(learner.name)},"messages":[${parts.join(',')}]}`, ev.messages, scheduledMs, first, expecting);
        return;
      }
      case 'control': {
        const proctor = this.proctors.get(ev.proctor);
        if (!proctor?.joined || ev.targets.length === 0) return void this.c.planSkipped++;
        const first = this.tracker.allocateIds(ev.targets.length);
        const parts: string[] = [];
        const expecting: SubscriberChecks[] = [];
        ev.targets.forEach((name, i) => {
          const target = this.learners.get(name);
          if (target?.joined) {
            this.tracker.expect(target.sub.checks, first + i, scheduledMs);
            expecting.push(target.sub.checks);
          }
          const topic = JSON.stringify(`${this.nonce}.${name}.control`);
          parts.push(`{"topic":${topic},"id":"${first + i}","data":{"id":${first + i},"sentMs":${scheduledMs},"from":${JSON.stringify(proctor.name)}}}`);
        });
        if (proctor.lastControlMs !== undefined) this.samples.add('proctorControlInterval', (now - proctor.lastControlMs) * speed);
        proctor.lastControlMs = now;
        this.samples.add('controlTargets', ev.targets.length);
        void this.publish(`{"actor":${JSON.stringify(proctor.name)},"messages":[${parts.join(',')}]}`, ev.targets.length, scheduledMs, first, expecting);
        return;
      }
      case 'learnerLeave': {
        const learner = this.learners.get(ev.learner);
        if (!learner?.joined) return void this.c.planSkipped++;
        this.endSession(learner, 'sessionDuration', (now - learner.joinedAtMs) * speed);
        this.learners.delete(ev.learner);
        this.leave(learner.sub);
        return;
      }
      case 'proctorLeave': {
        const proctor = this.proctors.get(ev.proctor);
        if (!proctor?.joined) return void this.c.planSkipped++;
        this.endSession(proctor, 'proctorSessionDuration', (now - proctor.joinedAtMs) * speed);
        this.proctors.delete(ev.proctor);
        for (const l of proctor.roster) {
          const list = this.watchers.get(l);
          if (!list) continue;
          const rest = list.filter((p) => p !== proctor);
          if (rest.length > 0) this.watchers.set(l, rest);
          else this.watchers.delete(l);
        }
        this.leave(proctor.sub);
        return;
      }
    }
  }

  /** What the runs row and the summary both say about how this run was asked for. */
  private settings(): RunSettings {
    const o = this.options;
    return { release: o.release, target: o.target, scale: o.run.scale, mode: o.run.mode, window: o.run.window, speed: o.run.speed, seed: o.run.seed };
  }

  /** A virtual user's session ends: it stops counting and its length (recorded time) is sampled. */
  private endSession(user: { joined: boolean }, sample: 'sessionDuration' | 'proctorSessionDuration', recordedMs: number): void {
    user.joined = false;
    this.virtualUsers--;
    this.samples.add(sample, recordedMs);
  }

  // ---- publish --------------------------------------------------------------------------

  /** `firstId`..+messages are the batch's ids; `expecting` the subscribers owed them (to withdraw on stop). */
  private async publish(body: string, messages: number, scheduledMs: number, firstId: number, expecting: SubscriberChecks[]): Promise<void> {
    const lag = Math.max(0, this.clock.monoMs() - scheduledMs);
    recordMs(this.lagAll, lag);
    recordMs(this.lagSecond, lag);
    this.publishesInFlight++;
    try {
      for (let attempt = 0; ; attempt++) {
        if (this.publishesStopped) return;
        this.c.publishRequests++;
        const request = new AbortController();
        this.publishControllers.add(request);
        let r: Awaited<ReturnType<BusClient['publish']>>;
        try {
          r = await this.client.publish(body, request.signal);
        } finally {
          this.publishControllers.delete(request);
        }
        if (r.ok) {
          this.c.accepted += r.value;
          this.c.publishedMessages += messages;
          return;
        }
        if (r.kind === 'aborted') return;
        this.c.errors++;
        if (!r.retryable) {
          // Refused for good (4xx): its pairs stay expected and will be lost, which is the target's doing.
          this.c.failedMessages += messages;
          return;
        }
        // Stop means stop: a publish that failed after the schedule ended is not retried.
        if (this.phase !== 'running') {
          this.c.withdrawnMessages += messages;
          for (const sub of expecting) this.tracker.withdraw(sub, firstId, messages);
          return;
        }
        const failedAtMs = this.clock.monoMs();
        const delay = backoffDelayMs(this.options.backoff, attempt, this.rng, parseRetryAfter(r.retryAfter, this.clock.nowMs()));
        const resumed = await this.waitPublishRetry(delay);
        if (!resumed || this.phase !== 'running') {
          this.c.withdrawnMessages += messages;
          for (const sub of expecting) this.tracker.withdraw(sub, firstId, messages);
          return;
        }
        this.recordRetryGap(failedAtMs);
        this.c.retries++;
      }
    } finally {
      this.publishesInFlight--;
      this.checkDrained();
    }
  }

  /**
   * Failure to the retry that follows it, in wall-clock ms, not scaled by --speed: the backoff
   * runs in real time, as the recorded clients' did, so the model's retryGap compares directly.
   */
  private recordRetryGap(failedAtMs: number): void {
    this.samples.add('retryGap', this.clock.monoMs() - failedAtMs);
  }

  private waitPublishRetry(delayMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const entry = {
        task: this.scheduler.after(delayMs, () => {
          this.publishWaits.delete(entry);
          resolve(true);
        }),
        wake: () => resolve(false),
      };
      this.publishWaits.add(entry);
    });
  }

  private cancelPublishRetries(): void {
    for (const w of this.publishWaits) {
      this.scheduler.cancel(w.task);
      w.wake();
    }
    this.publishWaits.clear();
  }

  // ---- subscribe ------------------------------------------------------------------------

  private newSubscriber(actor: string, stream: Stream, topics: string[]): Subscriber {
    const cursors: Record<string, number> = {};
    // Topics are fresh per run, so cursor 0 ("from the start") cannot miss anything published before the first poll.
    for (const t of topics) cursors[t] = 0;
    const sub: Subscriber = { actor, checks: this.tracker.subscriber(stream), cursors, state: 'active', poll: null, retry: undefined, wake: null, attempt: 0 };
    this.live.add(sub);
    return sub;
  }

  private async pollLoop(sub: Subscriber): Promise<void> {
    await this.pollUntilDone(sub, this.client.pollDispatcher());
  }

  private async pollUntilDone(sub: Subscriber, dispatcher: Dispatcher): Promise<void> {
    while (sub.state !== 'done') {
      const ac = new AbortController();
      sub.poll = ac;
      this.openPolls++;
      this.c.subscribeRequests++;
      const polledAtMs = this.clock.monoMs();
      const r = await this.client.subscribe(sub.actor, JSON.stringify(sub.cursors), this.options.pollTimeoutS, ac.signal, dispatcher);
      this.openPolls--;
      sub.poll = null;
      if (isDone(sub)) return;
      if (r.ok) {
        sub.attempt = 0;
        const now = this.clock.monoMs();
        // In recorded time like the other samples (a poll ends at the next delivery, which --speed brings sooner).
        this.samples.add('pollDuration', (now - polledAtMs) * this.options.run.speed);
        for (const m of r.value.messages) this.received(sub, m, now);
        for (const [topic, cursor] of Object.entries(r.value.cursors)) {
          if (topic in sub.cursors && typeof cursor === 'number') sub.cursors[topic] = cursor;
        }
        if (sub.state === 'draining' && sub.checks.pending.size === 0) this.finishSubscriber(sub);
        continue;
      }
      if (r.kind === 'aborted') return;
      this.c.errors++;
      const failedAtMs = this.clock.monoMs();
      const delay = backoffDelayMs(this.options.backoff, sub.attempt++, this.rng, parseRetryAfter(r.retryAfter, this.clock.nowMs()));
      const resumed = await new Promise<boolean>((resolve) => {
        sub.wake = () => resolve(false);
        sub.retry = this.scheduler.after(delay, () => resolve(true));
      });
      sub.wake = null;
      sub.retry = undefined;
      if (!resumed || isDone(sub)) return;
      this.recordRetryGap(failedAtMs);
      this.c.retries++;
    }
  }

  private received(sub: Subscriber, m: BusMessage, now: number): void {
    const id = typeof m.id === 'string' ? Number(m.id) : Number.NaN;
    this.tracker.deliver(sub.checks, id, now);
  }

  private leave(sub: Subscriber): void {
    this.tracker.leave(sub.checks);
    if (sub.state !== 'active') return;
    sub.state = 'draining';
    if (sub.checks.pending.size === 0) this.finishSubscriber(sub);
  }

  private finishSubscriber(sub: Subscriber): void {
    if (sub.state === 'done') return;
    sub.state = 'done';
    sub.poll?.abort();
    if (sub.retry) this.scheduler.cancel(sub.retry);
    sub.wake?.();
    this.tracker.forget(sub.checks);
    this.live.delete(sub);
    this.checkDrained();
  }

  // ---- time-driven work -----------------------------------------------------------------

  private scheduleSweep(): void {
    this.scheduler.after(sweepEveryMs, () => {
      this.sweep();
      if (this.phase === 'running' || this.phase === 'draining') this.scheduleSweep();
    });
  }

  private sweep(): void {
    this.tracker.sweep(this.clock.monoMs());
    // Subscribers whose session ended stop once every pair they owe has a verdict.
    for (const sub of this.live) if (sub.state === 'draining' && sub.checks.pending.size === 0) this.finishSubscriber(sub);
  }

  private scheduleTick(second: number): void {
    this.scheduler.at(this.t0 + second * this.options.tickMs, () => {
      this.tick(second);
      if (this.phase === 'running' || this.phase === 'draining') this.scheduleTick(second + 1);
    });
  }

  private tick(second: number): void {
    if (second <= this.lastSecond) return;
    this.lastSecond = second;
    const now = this.clock.monoMs();
    this.tracker.sweep(now);
    const totals = this.totals();
    const h = this.tracker.secondHistogram;
    const loopP99 = this.loopSecond && this.loopSecond.count > 0 ? this.loopSecond.percentile(99) / 1e6 : null;
    this.loopSecond?.reset();
    const row: RunSecond = {
      second,
      virtualUsers: this.virtualUsers,
      openPolls: this.openPolls,
      publishes: this.c.publishRequests - this.last.publishRequests,
      subscribes: this.c.subscribeRequests - this.last.subscribeRequests,
      deliveries: totals.delivered - this.last.delivered,
      duplicates: totals.duplicates - this.last.duplicates,
      lost: totals.lost - this.last.lost,
      errors: this.c.errors - this.last.errors,
      retries: this.c.retries - this.last.retries,
      p50Ms: percentileMs(h, 50),
      p95Ms: percentileMs(h, 95),
      p99Ms: percentileMs(h, 99),
      maxMs: h.totalCount > 0 ? h.maxValue / 1000 : null,
      scheduleLagP99Ms: percentileMs(this.lagSecond, 99),
      loopDelayP99Ms: loopP99,
    };
    h.reset();
    this.lagSecond.reset();
    this.last = { ...this.c, delivered: totals.delivered, duplicates: totals.duplicates, lost: totals.lost };
    const scrapes = this.pendingScrapes;
    this.pendingScrapes = [];
    this.writer?.writeSecond(row, scrapes);
    this.emit('tick', {
      ...row,
      elapsedMs: now - this.t0,
      requests: row.publishes + row.subscribes,
      totals: { published: this.c.publishedMessages, ...totals, errors: this.c.errors, retries: this.c.retries },
      phase: this.phase,
    });
  }

  private totals(): { expected: number; delivered: number; duplicates: number; lost: number } {
    const l = this.tracker.counts.learner;
    const k = this.tracker.counts.control;
    return { expected: l.expected + k.expected, delivered: l.delivered + k.delivered, duplicates: l.duplicates + k.duplicates, lost: l.lost + k.lost };
  }

  // ---- stop -----------------------------------------------------------------------------

  private beginDrain(reason: string): void {
    if (this.phase !== 'running') return;
    this.phase = 'draining';
    this.stopReason = reason;
    this.drainStartMs = this.clock.monoMs();
    this.emit('stopping', { reason, immediate: false });
    this.cancelPublishRetries();
    for (const l of this.learners.values()) {
      if (l.joined) {
        l.joined = false;
        this.virtualUsers--;
      }
    }
    for (const p of this.proctors.values()) {
      if (p.joined) {
        p.joined = false;
        this.virtualUsers--;
      }
    }
    for (const sub of [...this.live]) this.leave(sub);
    // Every pending pair's deadline is at most the loss limit from now; a little slack lets the sweep see it.
    this.drainDeadline = this.scheduler.after(this.options.slo.lossLimitMs + sweepEveryMs, () => {
      this.sweep();
      void this.finish();
    });
    this.checkDrained();
  }

  private checkDrained(): void {
    if (this.phase === 'draining' && this.live.size === 0 && this.publishesInFlight === 0) void this.finish();
  }

  private async finish(): Promise<void> {
    if (this.finishing || this.phase === 'starting') return;
    this.finishing = true;
    const wasDraining = this.phase === 'draining';
    this.scheduler.cancel(this.drainDeadline);
    const endMs = this.clock.monoMs();
    if (!wasDraining) this.drainStartMs = endMs;
    this.tracker.sweep(endMs);
    // Ticks stop with the scheduler; record the partial last second first.
    this.tick(Math.max(this.lastSecond + 1, Math.ceil((endMs - this.t0) / this.options.tickMs)));
    this.phase = 'done';
    this.scheduler.stop();
    this.cancelPublishRetries();
    this.publishesStopped = true;
    for (const request of this.publishControllers) request.abort();
    this.publishControllers.clear();
    for (const sub of [...this.live]) this.finishSubscriber(sub);
    this.tracker.abandon();
    await this.scrape?.stop().catch(() => undefined);
    if (this.pendingScrapes.length > 0) this.writer?.writeSecond(null, this.pendingScrapes);
    this.pendingScrapes = [];
    await this.client.close();
    this.loopSecond?.disable();
    this.loopAll?.disable();
    try {
      const summary = this.summarize();
      this.writer?.finish({
        status: this.status,
        endedAt: new Date(this.clock.nowMs()).toISOString(),
        pass: summary.pass,
        verdict: summary.verdict,
        summary,
        histograms: {
          delivery: hdr.encodeIntoCompressedBase64(this.tracker.histograms.all),
          'delivery.learner': hdr.encodeIntoCompressedBase64(this.tracker.histograms.learner),
          'delivery.control': hdr.encodeIntoCompressedBase64(this.tracker.histograms.control),
          scheduleLag: hdr.encodeIntoCompressedBase64(this.lagAll),
        },
        counts: this.countsRecord(summary),
        samples: Object.fromEntries([...this.samples.reservoirs].map(([name, r]) => [name, { count: r.count, sorted: r.sorted() }])),
      });
      if (this.failure !== undefined) {
        this.rejectFinished(this.failure);
        return;
      }
      this.emit('done', summary);
      this.resolveFinished(summary);
    } catch (err) {
      this.rejectFinished(err);
    }
  }

  private startScrape(): void {
    const s = this.options.scrape;
    if (!s) return;
    this.scrape = (this.input.startScrape ?? startTargetScrape)({
      url: s.url,
      intervalMs: s.intervalMs,
      clock: this.clock,
      originMonoMs: this.t0,
      // Histogram buckets multiply rows without adding a chartable series.
      filter: (metric) => !metric.endsWith('_bucket'),
      onSamples: (samples) => {
        for (const x of samples) this.pendingScrapes.push(x);
      },
      onError: () => void this.scrapeErrors++,
    });
  }

  // ---- summary --------------------------------------------------------------------------

  private outcome(counts: StreamCounts[], h: hdr.Histogram): StreamOutcome {
    const sum = (f: (c: StreamCounts) => number): number => counts.reduce((a, c) => a + f(c), 0);
    const within = new Map<number, number>();
    this.options.slo.thresholdsMs.forEach((t, i) => within.set(t, sum((c) => c.within[i]!)));
    return {
      expected: sum((c) => c.expected - c.unresolved),
      delivered: sum((c) => c.delivered),
      duplicates: sum((c) => c.duplicates),
      lost: sum((c) => c.lost),
      withinMs: within,
      latencyAt: (q) => (h.totalCount === 0 ? 0 : h.getValueAtPercentile(Math.min(100, q * 100)) / 1000),
    };
  }

  private streamSummary(o: StreamOutcome, h: hdr.Histogram): StreamSummary {
    const within = o.withinMs.get(this.options.slo.targetMs) ?? 0;
    return {
      expected: o.expected,
      delivered: o.delivered,
      duplicates: o.duplicates,
      lost: o.lost,
      withinTarget: o.expected === 0 ? 0 : within / o.expected,
      latencyMs: latency(h),
    };
  }

  summarize(): RunSummary {
    const o = this.options;
    const { learner, control } = this.tracker.counts;
    const all = this.outcome([learner, control], this.tracker.histograms.all);
    const learnerO = this.outcome([learner], this.tracker.histograms.learner);
    const controlO = this.outcome([control], this.tracker.histograms.control);
    const requests = this.c.publishRequests + this.c.subscribeRequests;
    const clauses = evaluateSlo(o.slo, { all, learner: learnerO, control: controlO, requests, errors: this.c.errors });
    const reasons: string[] = [];
    const lagP99 = percentileMs(this.lagAll, 99) ?? 0;
    const loopP99 = this.loopAll && this.loopAll.count > 0 ? this.loopAll.percentile(99) / 1e6 : 0;
    const generatorBound = lagP99 > o.generatorLagLimitMs || loopP99 > o.generatorLagLimitMs;
    if (this.c.accepted === 0 && this.c.publishedMessages === 0) {
      reasons.push(
        `the target accepted no message (${this.c.publishRequests} publish requests, ${this.c.errors} errors): nothing was measured`,
      );
    }
    if (requests > 0 && this.c.errors > requests / 2) {
      reasons.push(`most requests failed (${this.c.errors} errors in ${requests} requests): the run measured the failures, not delivery`);
    }
    if (all.expected === 0) {
      reasons.push('no delivery was expected (no proctor watched a publishing learner, no control reached a joined learner): nothing was measured');
    }
    if (generatorBound) {
      reasons.push(
        `the generator, not the target, was the bottleneck: schedule lag p99 ${lagP99.toFixed(1)} ms, event-loop delay p99 ${loopP99.toFixed(1)} ms ` +
          `(limit ${o.generatorLagLimitMs} ms); the target did not get the planned load. Run fewer virtual users per process (--scale, --shard).`,
      );
    }
    const unresolved = learner.unresolved + control.unresolved;
    if (unresolved > 0) reasons.push(`${unresolved} pairs got no verdict: the run was stopped before its drain ended`);
    const pass = reasons.length === 0 && clauses.every((c) => c.pass);
    const verdict: Verdict = { pass, slo: o.slo.text, clauses, reasons };
    const loadEnd = this.drainStartMs || this.clock.monoMs();
    return {
      run: this.writer?.runId ?? 0,
      ...this.settings(),
      durationS: Math.round((loadEnd - this.t0) / 100) / 10,
      learners: this.learnerSessions,
      proctors: this.proctorSessions,
      published: this.c.publishedMessages,
      expected: all.expected,
      delivered: all.delivered,
      duplicates: all.duplicates,
      lost: all.lost,
      withinTarget: this.streamSummary(all, this.tracker.histograms.all).withinTarget,
      latencyMs: latency(this.tracker.histograms.all),
      streams: {
        learner: this.streamSummary(learnerO, this.tracker.histograms.learner),
        control: this.streamSummary(controlO, this.tracker.histograms.control),
      },
      requests: { publish: this.c.publishRequests, subscribe: this.c.subscribeRequests, errors: this.c.errors, retries: this.c.retries },
      scheduleLagMs: latency(this.lagAll),
      generatorBound,
      pass,
      verdict,
    };
  }

  private countsRecord(s: RunSummary): Record<string, number> {
    const { learner, control } = this.tracker.counts;
    return {
      published: s.published,
      accepted: this.c.accepted,
      failedMessages: this.c.failedMessages,
      withdrawnMessages: this.c.withdrawnMessages,
      withdrawn: learner.withdrawn + control.withdrawn,
      expected: s.expected,
      delivered: s.delivered,
      duplicates: s.duplicates,
      lost: s.lost,
      late: learner.late + control.late,
      unresolved: learner.unresolved + control.unresolved,
      ignored: this.tracker.ignored,
      'learner.expected': s.streams.learner.expected,
      'learner.delivered': s.streams.learner.delivered,
      'learner.duplicates': s.streams.learner.duplicates,
      'learner.lost': s.streams.learner.lost,
      'control.expected': s.streams.control.expected,
      'control.delivered': s.streams.control.delivered,
      'control.duplicates': s.streams.control.duplicates,
      'control.lost': s.streams.control.lost,
      withinTarget: s.withinTarget,
      'requests.publish': s.requests.publish,
      'requests.subscribe': s.requests.subscribe,
      errors: s.requests.errors,
      retries: s.requests.retries,
      learners: s.learners,
      proctors: s.proctors,
      planSkipped: this.c.planSkipped,
      durationS: s.durationS,
      lossLimitMs: this.options.slo.lossLimitMs,
      scrapeErrors: this.scrapeErrors,
    };
  }

  /** For displays: "stopped: duration reached". */
  get stoppedBecause(): string {
    return this.stopReason;
  }
}

/** Re-reads the state after an await (TypeScript would keep the narrowing from before it). */
function isDone(sub: Subscriber): boolean {
  return sub.state === 'done';
}

function latency(h: hdr.Histogram): LatencyMs {
  if (h.totalCount === 0) return { p50: 0, p95: 0, p99: 0, max: 0 };
  return {
    p50: h.getValueAtPercentile(50) / 1000,
    p95: h.getValueAtPercentile(95) / 1000,
    p99: h.getValueAtPercentile(99) / 1000,
    max: h.maxValue / 1000,
  };
}

/** Starts a run; listen for 'start', 'tick', 'done' and await `.finished`. Options are validated synchronously. */
export function startReplay(input: ReplayInput): ReplayRun {
  const run = new ReplayRun(input);
  // Listeners attach after this returns; the first await inside begin() comes first anyway.
  queueMicrotask(() => void run.begin());
  return run;
}

/** Runs to the end and resolves with the summary. */
export function runReplay(input: ReplayInput): Promise<RunSummary> {
  return startReplay(input).finished;
}

export { formatMs };
