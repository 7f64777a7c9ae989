// The replay runtime: executes any Iterable<PlanEvent> against a target (any protocol behind
// replay/target/) as virtual learners and proctors, checks every expected delivery, and reports
// per second and at the end. An awaitable event emitter ('start', 'tick', 'stopping', 'done'):
// the CLI display and tests are listeners.
//
// This file is the run's lifecycle: pre-flight, the plan pump, the per-second tick, the drain and
// the stored result. The work is done by sessions.ts (who is in session), publishers.ts,
// subscribers.ts, delivery.ts (the checks), metrics.ts (the counts) and verdict.ts (pure).
//
// Open model: publishes leave on the plan's schedule (one scheduler, one timer), never after the
// previous response, and latency is charged from the *scheduled* send time.

import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import * as hdr from 'hdr-histogram-js';
import { systemClock, type Clock } from '../core/clock.js';
import { rehearseVersion } from '../core/version.js';
import { busyError, isBusy, type Db } from '../db/open.js';
import { beginRun, type RunWriter, type ScrapeSample } from '../db/run-store.js';
import os from 'node:os';
import type { RunSecond, RunSettings, RunStatus, RunSummary } from '../db/run-types.js';
import { seededRandom } from '../stats/random.js';
import type { PlanEvent } from './plan-types.js';
import { DeliveryTracker, type WindowCounts } from './delivery.js';
import { deliveryTotals, RunMetrics } from './metrics.js';
import { describeOptions, resolveReplayOptions, resultSettingsOf, targetSpecOf, type ReplayOptions, type ReplayOptionsInput } from './options.js';
import { replayPreflight } from './probe.js';
import { redactUrl } from '../core/redact.js';
import { Publishers } from './publishers.js';
import { SentSamples } from './samples.js';
import { Scheduler, systemTimers, type ScheduledTask, type Timers } from './scheduler.js';
import { VirtualUsers } from './sessions.js';
import { formatMs } from './slo.js';
import { Subscribers } from './subscribers.js';
import { createTarget, type TargetSpec } from './target/index.js';
import type { Target } from './target/types.js';
import { startTargetScrape, type TargetScrape } from './target-scrape.js';
import { runResultFormat, runResultVersion, settingsFingerprint, type ResultSecond, type RunResult } from './result.js';
import { summarizeResult, summarizeRun } from './verdict.js';
import { storedResultParts } from './result-store.js';
import { Waits } from './waits.js';

export type ScrapeStarter = typeof startTargetScrape;

/** Checks the target before any virtual user starts; throws a RehearseError (exit 2) when it is not fit to rehearse against. */
export type Preflight = (spec: TargetSpec, topicPrefix: string) => Promise<void>;

export interface ReplayInput extends ReplayOptionsInput {
  /** The plan, ascending by atMs (small disorder within the look-ahead is tolerated). */
  events: Iterable<PlanEvent>;
  /** Results go here (migrated rehearse database); without it nothing is stored and `run` is 0. */
  db?: Db;
  clock?: Clock;
  timers?: Timers;
  /** A ready target (tests pass a fake one); otherwise built from target/protocol/targetOptions. The run closes it. */
  targetImpl?: Target;
  /** The pre-flight round trip (replay/probe.ts); `false` skips it (tests of the runtime itself). */
  preflight?: Preflight | false;
  /** --scrape's sampler; replay/target-scrape.ts unless a test passes another. */
  startScrape?: ScrapeStarter;
  /**
   * Splits the run into windows by a pair's scheduled time (ms from the start, after --speed):
   * the tracker then keeps verdicts per window (capacity stages). Negative: in no window.
   */
  windowOf?: (planMs: number) => number;
  /** Which share of the plan's classes this process runs (the plan was built with the same shard). */
  shard?: { index: number; count: number };
  /**
   * The common start of every shard (epoch ms, --start-at): the load waits for it after the
   * pre-flight; a shard past it starts at once and records how late it was.
   */
  startAtMs?: number;
  /** The rehearsal this shard belongs to, stored with the run (runs.group_id). */
  groupId?: string;
}

export interface ReplayStart {
  run: number;
  /** 'i/N' when this process runs one shard of the plan. */
  shard?: string;
  target: string;
  protocol: string;
  nonce: string;
  startedAt: string;
  slo: string;
}

/** A per-second snapshot: the stored RunSecond plus running totals for displays. */
export interface ReplayTick extends ResultSecond {
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
  /** Something the person should know that does not stop the run (an overloaded target at pre-flight). */
  warning: [string];
  done: [RunSummary];
}

/** How long a per-second write may wait for another writer (it blocks the event loop meanwhile). */
const secondWriteBusyMs = 20;
/** How long the final write may wait: the run is over, nothing else waits on the loop. */
const finalWriteBusyMs = 30_000;

/** How far ahead of time plan events are pulled from the iterator into the scheduler. */
const lookaheadMs = 1000;
const sweepEveryMs = 250;

export class ReplayRun extends EventEmitter<ReplayRunEvents> {
  /** Resolves with the summary once results are written; rejects on setup errors (unreachable target). */
  readonly finished: Promise<RunSummary>;
  readonly options: ReplayOptions;
  phase: Phase = 'starting';

  private readonly clock: Clock;
  private readonly scheduler: Scheduler;
  /** Publish retries (given up when the schedule ends) and subscriber backoffs (kept through the drain) wait apart. */
  private readonly publishWaits: Waits;
  private readonly pollWaits: Waits;
  private readonly tracker: DeliveryTracker;
  private readonly metrics = new RunMetrics();
  private readonly samples: SentSamples;
  private readonly iterator: Iterator<PlanEvent>;
  private target: Target | undefined;
  private publishers: Publishers | undefined;
  private subscribers: Subscribers | undefined;
  private users: VirtualUsers | undefined;
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
  /** Seconds not yet written because another process held the results database. */
  private readonly unwritten: Array<{ row: RunSecond | null; scrapes: ScrapeSample[] }> = [];
  private warnedBusy = false;
  private lastSecond = -1;
  /** Every second's row, kept for the portable result (a few hundred bytes each). */
  private readonly seconds: ResultSecond[] = [];
  private startedAt = '';
  private startLateMs = 0;
  private result: RunResult | undefined;
  private resolveFinished!: (s: RunSummary) => void;
  private rejectFinished!: (e: unknown) => void;
  private finishing = false;
  private failure: unknown = undefined;

  constructor(private readonly input: ReplayInput) {
    super();
    this.options = resolveReplayOptions(input);
    this.clock = input.clock ?? systemClock;
    this.scheduler = new Scheduler(this.clock, input.timers ?? systemTimers);
    this.publishWaits = new Waits(this.scheduler);
    this.pollWaits = new Waits(this.scheduler);
    const windowOf = input.windowOf;
    this.tracker = new DeliveryTracker(this.options.slo.lossLimitMs, this.options.slo.thresholdsMs, windowOf ? (scheduledMs) => windowOf(scheduledMs - this.t0) : undefined);
    this.samples = new SentSamples(this.options.seed);
    this.iterator = input.events[Symbol.iterator]();
    this.finished = new Promise<RunSummary>((resolve, reject) => {
      this.resolveFinished = resolve;
      this.rejectFinished = reject;
    });
    // A caller that only listens to 'done' must not get an unhandled rejection warning as well.
    this.finished.catch(() => undefined);
  }

  /**
   * Stop scheduling and drain (at most the loss limit); `immediate` aborts everything now.
   * `asPlanned`: the caller meant to end here (a capacity search past its first failing stage),
   * so the run is finished, not interrupted.
   */
  stop(options: { immediate?: boolean; reason?: string; asPlanned?: boolean } = {}): void {
    if (this.phase === 'done' || this.finishing) return;
    if (this.phase === 'draining' && !options.immediate) return; // already stopping
    if (!options.asPlanned) this.status = 'interrupted';
    this.stopReason = options.reason ?? (options.immediate ? 'stopped at once' : 'stopped');
    if (this.phase === 'starting') return; // begin() sees the status once the target check returns
    if (options.immediate) {
      this.emit('stopping', { reason: this.stopReason, immediate: true });
      void this.finish();
      return;
    }
    this.beginDrain(this.stopReason);
  }

  /** Called by startReplay. */
  async begin(): Promise<void> {
    try {
      this.nonce = this.options.runNonce ?? `r${randomBytes(5).toString('hex')}`;
      const spec = targetSpecOf(this.options);
      if (this.input.preflight !== false) {
        // The pre-flight round trip: a target that fails it is refused before thousands of virtual users start.
        const preflight = this.input.preflight ?? ((sp, prefix) => replayPreflight(sp, prefix, { onWarning: (line) => this.emit('warning', line) }));
        await preflight(spec, `${this.nonce}.preflight`);
      }
      this.target = this.input.targetImpl ?? (await createTarget(spec));
      this.wire(this.target);
      await this.waitForStartAt();
      const startedAt = new Date(this.clock.nowMs()).toISOString();
      this.startedAt = startedAt;
      if (this.input.db) {
        const o = this.options;
        this.writer = beginRun(this.input.db, {
          ...this.settings(),
          plannedDurationMs: o.durationMs ?? o.run.plannedDurationMs ?? null,
          modelFingerprint: o.run.modelFingerprint,
          rehearseVersion,
          options: describeOptions(o),
          startedAt,
          ...(this.input.shard && this.input.shard.count > 1 ? { shardIndex: this.input.shard.index, shardCount: this.input.shard.count, groupId: this.input.groupId ?? null } : {}),
        });
      }
      // Per-second writes must not stall the generator on a lock another process holds.
      this.input.db?.pragma(`busy_timeout = ${secondWriteBusyMs}`);
      this.metrics.startLoopMonitor();
      this.t0 = this.clock.monoMs();
      this.phase = 'running';
      if (this.status === 'interrupted') {
        // stop() arrived while we were checking the target: record an empty, interrupted run.
        void this.finish();
        return;
      }
      this.startScrape();
      const shard = this.input.shard && this.input.shard.count > 1 ? { shard: `${this.input.shard.index}/${this.input.shard.count}` } : {};
      this.emit('start', { run: this.writer?.runId ?? 0, ...shard, target: redactUrl(this.options.target), protocol: this.target.protocol, nonce: this.nonce, startedAt, slo: this.options.slo.text });
      this.pump();
      this.scheduleTick(1);
      this.scheduleSweep();
      if (this.options.durationMs !== undefined) {
        this.scheduler.at(this.t0 + this.options.durationMs, () => this.beginDrain('duration reached'));
      }
    } catch (err) {
      await this.target?.close().catch(() => undefined);
      this.phase = 'done';
      this.rejectFinished(err);
    }
  }

  /** Shards of one rehearsal start together: wait for --start-at, or record how late this one is. */
  private async waitForStartAt(): Promise<void> {
    const at = this.input.startAtMs;
    if (at === undefined) return;
    const waitMs = at - this.clock.nowMs();
    if (waitMs > 0) {
      const timers = this.input.timers ?? systemTimers;
      await new Promise<void>((resolve) => timers.setTimeout(resolve, waitMs));
    }
    this.startLateMs = Math.max(0, this.clock.nowMs() - at);
    if (this.startLateMs >= 1000) {
      const shard = this.input.shard ? `shard ${this.input.shard.index}/${this.input.shard.count}` : 'this run';
      this.emit('warning', `${shard} started ${(this.startLateMs / 1000).toFixed(1)} s after --start-at ${new Date(at).toISOString()}: its load is that late (the merge reports it)`);
    }
  }

  private wire(target: Target): void {
    const o = this.options;
    const shard = this.input.shard;
    const shared = {
      target,
      clock: this.clock,
      // Shards jitter their backoffs apart: the same seed everywhere would retry in lockstep.
      rng: seededRandom(shard && shard.count > 1 ? `${o.seed}/backoff/${shard.index}` : `${o.seed}/backoff`),
      backoff: o.backoff,
      metrics: this.metrics,
      tracker: this.tracker,
      samples: this.samples,
    };
    this.publishers = new Publishers({ ...shared, waits: this.publishWaits, running: () => this.phase === 'running', settled: () => this.checkDrained() });
    this.subscribers = new Subscribers({ ...shared, waits: this.pollWaits, speed: o.run.speed, finished: () => this.checkDrained() });
    this.users = new VirtualUsers({
      nonce: this.nonce,
      tracker: this.tracker,
      publishers: this.publishers,
      subscribers: this.subscribers,
      metrics: this.metrics,
      samples: this.samples,
      speed: o.run.speed,
    });
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
      this.stopReason = `the plan failed: ${(err as Error).message}`;
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
      this.scheduler.at(this.t0 + ev.atMs, () => {
        this.fired++;
        if (this.phase === 'running') this.users!.apply(ev, this.t0 + ev.atMs, this.clock.monoMs());
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

  /** What the runs row and the summary both say about how this run was asked for. */
  private settings(): RunSettings {
    const o = this.options;
    // Credentials in the URL (user:pw@, ?token=) are never stored or printed.
    return { release: o.release, target: redactUrl(o.target), scale: o.run.scale, mode: o.run.mode, window: o.run.window, speed: o.run.speed, seed: o.run.seed };
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
    this.subscribers?.finishDrained();
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
    const row = this.metrics.secondRow(second, this.tracker);
    const scrapes = this.pendingScrapes;
    this.pendingScrapes = [];
    this.storeSecond(row, scrapes);
    this.seconds.push(row);
    const c = this.metrics.c;
    this.emit('tick', {
      ...row,
      elapsedMs: now - this.t0,
      requests: row.publishes + row.subscribes,
      totals: { published: c.publishedMessages, ...deliveryTotals(this.tracker), errors: c.errors, retries: c.retries },
      phase: this.phase,
    });
  }

  // ---- stop -----------------------------------------------------------------------------

  private beginDrain(reason: string): void {
    if (this.phase !== 'running') return;
    this.phase = 'draining';
    this.stopReason = reason;
    this.drainStartMs = this.clock.monoMs();
    this.emit('stopping', { reason, immediate: false });
    // Publishes waiting for a retry are given up: the schedule is over. Subscribers keep polling to drain.
    this.publishWaits.cancelAll();
    this.users?.leaveAll();
    // Every pending pair's deadline is at most the loss limit from now; a little slack lets the sweep see it.
    this.drainDeadline = this.scheduler.after(this.options.slo.lossLimitMs + sweepEveryMs, () => {
      this.sweep();
      void this.finish();
    });
    this.checkDrained();
  }

  private checkDrained(): void {
    if (this.phase === 'draining' && (this.subscribers?.live.size ?? 0) === 0 && (this.publishers?.inFlight ?? 0) === 0) void this.finish();
  }

  private async finish(): Promise<void> {
    if (this.finishing || this.phase === 'starting') return;
    this.finishing = true;
    const wasDraining = this.phase === 'draining';
    this.scheduler.cancel(this.drainDeadline);
    const endMs = this.clock.monoMs();
    if (!wasDraining) this.drainStartMs = endMs;
    this.tracker.sweep(endMs);
    // Ticks stop with the scheduler: seconds already due get their own rows (the drain can end in
    // the same instant a tick falls due), then the partial last second, so every shard of a split
    // run labels its seconds alike and their merge lines them up.
    const tickMs = this.options.tickMs;
    const done = (): number => Math.max(this.lastSecond, 0);
    while ((done() + 1) * tickMs <= endMs - this.t0) this.tick(done() + 1);
    if (endMs - this.t0 > done() * tickMs || this.lastSecond < 1) this.tick(done() + 1);
    this.phase = 'done';
    this.scheduler.stop();
    this.publishWaits.cancelAll();
    this.pollWaits.cancelAll();
    this.publishers?.stop();
    this.subscribers?.finishAll();
    this.tracker.abandon();
    await this.scrape?.stop().catch(() => undefined);
    if (this.pendingScrapes.length > 0) this.storeSecond(null, this.pendingScrapes);
    this.pendingScrapes = [];
    // The last write may wait for another writer as long as the database allows: nothing is lost.
    this.input.db?.pragma(`busy_timeout = ${finalWriteBusyMs}`);
    this.flushSeconds();
    if (this.unwritten.length > 0) this.failure ??= busyError(this.input.db?.name ?? 'the results database');
    await this.target?.close().catch(() => undefined);
    this.metrics.stopLoopMonitor();
    try {
      this.result = this.buildResult();
      const summary = summarizeResult(this.result, { run: this.writer?.runId ?? 0, slo: this.options.slo });
      this.writer?.finish({
        status: this.status,
        endedAt: new Date(this.clock.nowMs()).toISOString(),
        pass: summary.pass,
        verdict: summary.verdict,
        summary,
        ...storedResultParts(this.result, summary),
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

  /**
   * Writes a second's row without ever stalling the run: while another process holds the results
   * database (an ingest into it), rows wait in memory and go out with the next second that gets
   * the lock. better-sqlite3 waits synchronously, so the per-second writes may wait only briefly.
   */
  private storeSecond(row: RunSecond | null, scrapes: ScrapeSample[]): void {
    if (!this.writer) return;
    this.unwritten.push({ row, scrapes });
    this.flushSeconds();
  }

  private flushSeconds(): void {
    try {
      while (this.unwritten.length > 0) {
        const u = this.unwritten[0]!;
        this.writer!.writeSecond(u.row, u.scrapes);
        this.unwritten.shift();
      }
    } catch (err) {
      if (!isBusy(err)) throw err;
      if (!this.warnedBusy) {
        this.warnedBusy = true;
        this.emit('warning', 'the results database is busy (another rehearse is writing to it): seconds are kept and written once it is free');
      }
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

  summarize(): RunSummary {
    const o = this.options;
    const loadEnd = this.drainStartMs || this.clock.monoMs();
    return summarizeRun({
      run: this.writer?.runId ?? 0,
      settings: this.settings(),
      protocol: this.target?.protocol ?? o.protocol,
      slo: o.slo,
      generatorLagLimitMs: o.generatorLagLimitMs,
      status: this.status,
      stopReason: this.stopReason,
      plannedMs: o.durationMs ?? o.run.plannedDurationMs,
      loadMs: loadEnd - this.t0,
      counts: this.tracker.counts,
      histograms: this.tracker.histograms,
      requests: this.metrics.c,
      errorsByKind: this.metrics.errorsRecord(),
      firstViolation: this.metrics.firstViolation,
      scheduleLag: this.metrics.lagAll,
      loopDelayP99Ms: this.metrics.loopP99Ms(),
      learners: this.metrics.learnerSessions,
      proctors: this.metrics.proctorSessions,
    });
  }

  /** This process's portable result (replay/result.ts): what --out writes and what a merge adds up. */
  private buildResult(): RunResult {
    const o = this.options;
    const settings = resultSettingsOf(o, this.target?.protocol ?? o.protocol);
    const usage = process.resourceUsage();
    const shard = this.input.shard ?? { index: 0, count: 1 };
    const m = this.metrics;
    const encode = (h: hdr.Histogram): string => hdr.encodeIntoCompressedBase64(h);
    return {
      format: runResultFormat,
      version: runResultVersion,
      fingerprint: settingsFingerprint(settings),
      settings,
      shards: [{ index: shard.index, count: shard.count, startLateMs: this.startLateMs, host: os.hostname(), pid: process.pid }],
      startAt: this.input.startAtMs === undefined ? null : new Date(this.input.startAtMs).toISOString(),
      startedAt: this.startedAt || new Date(this.clock.nowMs()).toISOString(),
      endedAt: new Date(this.clock.nowMs()).toISOString(),
      status: this.status === 'running' ? 'finished' : this.status,
      stopReason: this.stopReason,
      loadMs: (this.drainStartMs || this.clock.monoMs()) - this.t0,
      learners: m.learnerSessions,
      proctors: m.proctorSessions,
      requests: { ...m.c },
      errorsByKind: m.errorsRecord(),
      firstViolation: m.firstViolation ?? null,
      streams: { learner: { ...this.tracker.counts.learner, within: [...this.tracker.counts.learner.within] }, control: { ...this.tracker.counts.control, within: [...this.tracker.counts.control.within] } },
      ignored: this.tracker.ignored,
      scrapeErrors: this.scrapeErrors,
      histograms: {
        'delivery.learner': encode(this.tracker.histograms.learner),
        'delivery.control': encode(this.tracker.histograms.control),
        scheduleLag: encode(m.lagAll),
        'request.publish': encode(m.requestTimes.publish),
        'request.poll': encode(m.requestTimes.poll),
        'request.open': encode(m.requestTimes.open),
      },
      generator: {
        loopDelayP99Ms: m.loopP99Ms(),
        peakVirtualUsers: m.peakVirtualUsers,
        peakRssBytes: usage.maxRSS * 1024,
        cpuSeconds: (usage.userCPUTime + usage.systemCPUTime) / 1e6,
      },
      seconds: this.seconds,
      samples: Object.fromEntries([...this.samples.reservoirs].map(([name, r]) => [name, { count: r.count, values: Array.from(r.sorted()) }])),
    };
  }

  /** The portable result, once the run has finished (replay --out, --workers). */
  get portableResult(): RunResult | undefined {
    return this.result;
  }

  /** Verdicts per window (see ReplayInput.windowOf), live: read them in 'tick' or after 'done'. */
  get windowCounts(): ReadonlyMap<number, WindowCounts> {
    return this.tracker.windows;
  }

  /** For displays: "stopped: duration reached". */
  get stoppedBecause(): string {
    return this.stopReason;
  }
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
