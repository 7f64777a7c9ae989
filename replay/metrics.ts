// What a run counts while it runs: requests, errors by kind, retries, schedule lag, event-loop
// delay, open polls and virtual users, and the per-second row. Publishers, subscribers and
// sessions write here; the verdict and the run store read it.

import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import type { DeliveryTracker } from './delivery.js';
import { newLatencyHistogram, percentileMs, recordMs } from './delivery.js';
import type { ResultSecond } from './result.js';
import type { Failure } from './target/types.js';

export interface RequestCounts {
  publishRequests: number;
  subscribeRequests: number;
  /** Subscription set-ups (Bayeux handshake and subscribe; a no-op for v1 and Nchan). */
  openRequests: number;
  errors: number;
  retries: number;
  /** Messages the target took. */
  publishedMessages: number;
  /** Messages the target refused for good (4xx): their pairs stay expected and end lost. */
  failedMessages: number;
  /** Messages whose retry the run gave up on when it stopped: their pairs leave the denominator. */
  withdrawnMessages: number;
  planSkipped: number;
  /** Polls that ended with nothing. */
  emptyPolls: number;
  /** Empty polls answered within `fastEmptyMs`: a bus that does not hold long-polls. */
  fastEmptyPolls: number;
  /** Delivered messages without rehearse's payload (a bus that rewrites bodies). */
  unidentified: number;
  /** Delivered messages whose payload names a topic the subscriber never asked for, or that came on another topic. */
  misrouted: number;
  /** Answers that broke the protocol's own rules (v1: seq not increasing on a topic). */
  protocolViolations: number;
}

/** An empty answer sooner than this is not a held long-poll. */
export const fastEmptyMs = 50;

export interface ErrorKind {
  count: number;
  /** One detail as the target said it, for the summary and the report. */
  example: string;
}

export function emptyRequestCounts(): RequestCounts {
  return {
    publishRequests: 0,
    subscribeRequests: 0,
    openRequests: 0,
    errors: 0,
    retries: 0,
    publishedMessages: 0,
    failedMessages: 0,
    withdrawnMessages: 0,
    planSkipped: 0,
    emptyPolls: 0,
    fastEmptyPolls: 0,
    unidentified: 0,
    misrouted: 0,
    protocolViolations: 0,
  };
}

/** `publish HTTP 503`, `poll network ECONNREFUSED`: the key errors are grouped by. */
export function errorKind(request: 'publish' | 'poll' | 'open', f: Exclude<Failure, { kind: 'aborted' }>): string {
  if (f.status !== undefined) return `${request} HTTP ${f.status}`;
  const code = /^([A-Z][A-Z0-9_]+)\b/.exec(f.detail)?.[1];
  return `${request} ${f.kind === 'fatal' ? 'refused' : 'network'}${code ? ` ${code}` : ''}`;
}

export class RunMetrics {
  readonly c: RequestCounts = emptyRequestCounts();
  readonly errorsByKind = new Map<string, ErrorKind>();
  /** The first protocol violation, in the target's words, for the verdict. */
  firstViolation: string | undefined;
  readonly lagAll = newLatencyHistogram();
  /** How long each request took, by kind: a publish to its answer, a long-poll held to its answer, a subscription open. */
  readonly requestTimes = { publish: newLatencyHistogram(), poll: newLatencyHistogram(), open: newLatencyHistogram() };
  private readonly lagSecond = newLatencyHistogram();
  private loopSecond: IntervalHistogram | undefined;
  private loopAll: IntervalHistogram | undefined;
  openPolls = 0;
  virtualUsers = 0;
  peakVirtualUsers = 0;
  learnerSessions = 0;
  proctorSessions = 0;
  private last = { ...emptyRequestCounts(), delivered: 0, duplicates: 0, lost: 0 };

  startLoopMonitor(): void {
    this.loopSecond = monitorEventLoopDelay({ resolution: 10 });
    this.loopAll = monitorEventLoopDelay({ resolution: 10 });
    this.loopSecond.enable();
    this.loopAll.enable();
  }

  stopLoopMonitor(): void {
    this.loopSecond?.disable();
    this.loopAll?.disable();
  }

  /** Event-loop delay p99 over the whole run (ms). */
  loopP99Ms(): number {
    return this.loopAll && this.loopAll.count > 0 ? this.loopAll.percentile(99) / 1e6 : 0;
  }

  /** How late a publish left against its schedule. */
  recordLag(ms: number): void {
    recordMs(this.lagAll, ms);
    recordMs(this.lagSecond, ms);
  }

  recordViolations(violations: readonly string[]): void {
    this.c.protocolViolations += violations.length;
    this.firstViolation ??= violations[0];
  }

  recordRequestTime(kind: 'publish' | 'poll' | 'open', ms: number): void {
    recordMs(this.requestTimes[kind], ms);
  }

  recordError(request: 'publish' | 'poll' | 'open', f: Exclude<Failure, { kind: 'aborted' }>): void {
    this.c.errors++;
    const key = errorKind(request, f);
    const k = this.errorsByKind.get(key);
    if (k) k.count++;
    else this.errorsByKind.set(key, { count: 1, example: f.detail.slice(0, 300) });
  }

  errorsRecord(): Record<string, ErrorKind> {
    return Object.fromEntries([...this.errorsByKind].sort((a, b) => b[1].count - a[1].count));
  }

  /** The per-second row; resets what is per second. */
  secondRow(second: number, tracker: DeliveryTracker): ResultSecond {
    const totals = deliveryTotals(tracker);
    const h = tracker.secondHistogram;
    const loopP99 = this.loopSecond && this.loopSecond.count > 0 ? this.loopSecond.percentile(99) / 1e6 : null;
    this.loopSecond?.reset();
    const c = this.c;
    const row: ResultSecond = {
      second,
      virtualUsers: this.virtualUsers,
      openPolls: this.openPolls,
      publishes: c.publishRequests - this.last.publishRequests,
      subscribes: c.subscribeRequests - this.last.subscribeRequests,
      deliveries: totals.delivered - this.last.delivered,
      duplicates: totals.duplicates - this.last.duplicates,
      lost: totals.lost - this.last.lost,
      errors: c.errors - this.last.errors,
      retries: c.retries - this.last.retries,
      p50Ms: percentileMs(h, 50),
      p95Ms: percentileMs(h, 95),
      p99Ms: percentileMs(h, 99),
      maxMs: h.totalCount > 0 ? h.maxValue / 1000 : null,
      scheduleLagP99Ms: percentileMs(this.lagSecond, 99),
      loopDelayP99Ms: loopP99,
      deliveryHistogram: h.totalCount > 0 ? hdr.encodeIntoCompressedBase64(h) : null,
      scheduleLagHistogram: this.lagSecond.totalCount > 0 ? hdr.encodeIntoCompressedBase64(this.lagSecond) : null,
    };
    this.peakVirtualUsers = Math.max(this.peakVirtualUsers, this.virtualUsers);
    h.reset();
    this.lagSecond.reset();
    this.last = { ...c, delivered: totals.delivered, duplicates: totals.duplicates, lost: totals.lost };
    return row;
  }
}

export function deliveryTotals(tracker: DeliveryTracker): { expected: number; delivered: number; duplicates: number; lost: number } {
  const l = tracker.counts.learner;
  const k = tracker.counts.control;
  return { expected: l.expected + k.expected, delivered: l.delivered + k.delivered, duplicates: l.duplicates + k.duplicates, lost: l.lost + k.lost };
}
