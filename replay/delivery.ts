// Delivery checks: which (message, subscriber) pairs are expected, their first delivery's latency,
// every duplicate, and loss past the limit. Pure (times are passed in), compact enough for 20k
// subscribers: each keeps only its pending ids, and ids are allocated in scheduled-time order, so
// a subscriber's pending Map (insertion-ordered) doubles as its timing wheel for the loss deadline.

import * as hdr from 'hdr-histogram-js';

export type Stream = 'learner' | 'control';

/** Histograms hold microseconds (integers), so sub-millisecond latencies on localhost keep their precision. */
export const histogramUnitPerMs = 1000;

export function newLatencyHistogram(): hdr.Histogram {
  return hdr.build({ bitBucketSize: 32, numberOfSignificantValueDigits: 3, lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, autoResize: true });
}

export function recordMs(h: hdr.Histogram, ms: number): void {
  h.recordValue(Math.max(1, Math.round(ms * histogramUnitPerMs)));
}

/** Percentile (0..100) of a microsecond histogram, in ms; null when empty. */
export function percentileMs(h: hdr.Histogram, percentile: number): number | null {
  if (h.totalCount === 0) return null;
  return h.getValueAtPercentile(percentile) / histogramUnitPerMs;
}

export interface SubscriberChecks {
  readonly stream: Stream;
  /** Expected message id -> scheduled send time (ms). Insertion order is scheduled order. */
  readonly pending: Map<number, number>;
  /** Ids that went past the loss limit, so a late arrival is told apart from a duplicate. */
  lostIds: Set<number> | null;
  /** Ids in [firstId, lastId) were published while this subscriber was joined. */
  readonly firstId: number;
  lastId: number;
}

export interface StreamCounts {
  expected: number;
  delivered: number;
  duplicates: number;
  lost: number;
  /** Delivered after the loss limit (already counted as lost). */
  late: number;
  /** Pairs with no verdict when the run was cut short (second SIGINT). */
  unresolved: number;
  /** Pairs taken back because the run stopped while their publish waited to be retried (not in expected). */
  withdrawn: number;
  /** Index-aligned with the tracker's thresholdsMs. */
  within: number[];
}

export type DeliveryOutcome = 'first' | 'duplicate' | 'late' | 'ignored';

/**
 * Verdicts of the pairs scheduled within one window of the run (a capacity stage): the same
 * counts as a stream's, plus the window's own latency histogram. Duplicates, which have no
 * scheduled time left to look up, count in the window they arrived in.
 */
export interface WindowStreamCounts extends StreamCounts {
  histogram: hdr.Histogram;
}

/** A window's verdicts over both streams, and per stream (for learner./control. SLO clauses). */
export interface WindowCounts extends WindowStreamCounts {
  learner: WindowStreamCounts;
  control: WindowStreamCounts;
}

/** Which window a pair belongs to, from its scheduled time (monotonic ms); negative: none. */
export type WindowOf = (scheduledMs: number) => number;

function emptyCounts(thresholds: number): StreamCounts {
  return { expected: 0, delivered: 0, duplicates: 0, lost: 0, late: 0, unresolved: 0, withdrawn: 0, within: new Array<number>(thresholds).fill(0) };
}

export class DeliveryTracker {
  readonly counts: Record<Stream, StreamCounts>;
  readonly histograms: Record<Stream | 'all', hdr.Histogram>;
  /** Deliveries of the current second, all streams; the runner reads and resets it each tick. */
  readonly secondHistogram = newLatencyHistogram();
  /** Messages received that no subscriber expected (published before it joined or after it left). */
  ignored = 0;
  /** Per-window verdicts, when the run was given windows (capacity stages). */
  readonly windows = new Map<number, WindowCounts>();
  private nextMessageId = 0;
  private readonly withPending = new Set<SubscriberChecks>();

  constructor(
    readonly lossLimitMs: number,
    readonly thresholdsMs: readonly number[],
    private readonly windowOf?: WindowOf,
  ) {
    this.counts = { learner: emptyCounts(thresholdsMs.length), control: emptyCounts(thresholdsMs.length) };
    this.histograms = { learner: newLatencyHistogram(), control: newLatencyHistogram(), all: newLatencyHistogram() };
  }

  /** The window of a scheduled time, as [both streams, this stream]; undefined outside every window. */
  private window(scheduledMs: number, stream: Stream): [WindowStreamCounts, WindowStreamCounts] | undefined {
    if (!this.windowOf) return undefined;
    const i = this.windowOf(scheduledMs);
    if (i < 0) return undefined;
    let w = this.windows.get(i);
    if (!w) {
      const counts = (): WindowStreamCounts => ({ ...emptyCounts(this.thresholdsMs.length), histogram: newLatencyHistogram() });
      w = { ...counts(), learner: counts(), control: counts() };
      this.windows.set(i, w);
    }
    return [w, w[stream]];
  }

  /** Message ids are allocated when a publish is scheduled, in scheduled order. */
  allocateIds(n: number): number {
    const first = this.nextMessageId;
    this.nextMessageId += n;
    return first;
  }

  get allocated(): number {
    return this.nextMessageId;
  }

  subscriber(stream: Stream): SubscriberChecks {
    return { stream, pending: new Map(), lostIds: null, firstId: this.nextMessageId, lastId: Number.POSITIVE_INFINITY };
  }

  /** The subscriber left: messages published from now on are not for it. */
  leave(sub: SubscriberChecks): void {
    if (sub.lastId === Number.POSITIVE_INFINITY) sub.lastId = this.nextMessageId;
  }

  expect(sub: SubscriberChecks, id: number, scheduledMs: number): void {
    sub.pending.set(id, scheduledMs);
    this.counts[sub.stream].expected++;
    for (const w of this.window(scheduledMs, sub.stream) ?? []) w.expected++;
    this.withPending.add(sub);
  }

  /**
   * The generator gave up on a publish (the run stopped during its backoff): its pairs leave the
   * denominator instead of counting as lost, since the target never got the retry. Its failed
   * attempts stay in the error counts.
   */
  withdraw(sub: SubscriberChecks, firstId: number, n: number): void {
    for (let id = firstId; id < firstId + n; id++) {
      const scheduled = sub.pending.get(id);
      if (scheduled === undefined) continue;
      sub.pending.delete(id);
      const c = this.counts[sub.stream];
      c.expected--;
      c.withdrawn++;
      for (const w of this.window(scheduled, sub.stream) ?? []) {
        w.expected--;
        w.withdrawn++;
      }
    }
    if (sub.pending.size === 0) this.withPending.delete(sub);
  }

  deliver(sub: SubscriberChecks, id: number, nowMs: number): DeliveryOutcome {
    const scheduled = sub.pending.get(id);
    const c = this.counts[sub.stream];
    if (scheduled !== undefined) {
      sub.pending.delete(id);
      if (sub.pending.size === 0) this.withPending.delete(sub);
      const latency = nowMs - scheduled;
      const windows = this.window(scheduled, sub.stream) ?? [];
      if (latency > this.lossLimitMs) {
        c.lost++;
        c.late++;
        for (const w of windows) {
          w.lost++;
          w.late++;
        }
        return 'late';
      }
      c.delivered++;
      for (let i = 0; i < this.thresholdsMs.length; i++) if (latency <= this.thresholdsMs[i]!) c.within[i]!++;
      for (const w of windows) {
        w.delivered++;
        for (let i = 0; i < this.thresholdsMs.length; i++) if (latency <= this.thresholdsMs[i]!) w.within[i]!++;
        recordMs(w.histogram, latency);
      }
      recordMs(this.histograms[sub.stream], latency);
      recordMs(this.histograms.all, latency);
      recordMs(this.secondHistogram, latency);
      return 'first';
    }
    if (sub.lostIds?.has(id)) {
      c.late++;
      return 'late';
    }
    if (id >= sub.firstId && id < sub.lastId && Number.isInteger(id)) {
      c.duplicates++;
      for (const w of this.window(nowMs, sub.stream) ?? []) w.duplicates++;
      return 'duplicate';
    }
    this.ignored++;
    return 'ignored';
  }

  /** Marks every pair whose deadline has passed as lost; returns how many. */
  sweep(nowMs: number): number {
    let lost = 0;
    const deadline = nowMs - this.lossLimitMs;
    for (const sub of this.withPending) {
      for (const [id, scheduled] of sub.pending) {
        if (scheduled >= deadline) break; // insertion order is scheduled order
        sub.pending.delete(id);
        (sub.lostIds ??= new Set()).add(id);
        this.counts[sub.stream].lost++;
        for (const w of this.window(scheduled, sub.stream) ?? []) w.lost++;
        lost++;
      }
      if (sub.pending.size === 0) this.withPending.delete(sub);
    }
    return lost;
  }

  /** Pairs still waiting for a verdict. */
  pendingPairs(): number {
    let n = 0;
    for (const sub of this.withPending) n += sub.pending.size;
    return n;
  }

  /** Run cut short: whatever still waits has no verdict. Returns how many. */
  abandon(): number {
    let n = 0;
    for (const sub of this.withPending) {
      this.counts[sub.stream].unresolved += sub.pending.size;
      for (const scheduled of sub.pending.values()) for (const w of this.window(scheduled, sub.stream) ?? []) w.unresolved++;
      n += sub.pending.size;
      sub.pending.clear();
    }
    this.withPending.clear();
    return n;
  }

  /** A finished subscriber's memory goes; its verdicts are in the counts. */
  forget(sub: SubscriberChecks): void {
    sub.lostIds = null;
  }
}
