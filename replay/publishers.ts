// Publishing for every virtual user: one call per planned publish or control, sent through the
// target, retried with full-jitter backoff (same message ids, so a retry can show up as a
// duplicate, which is the truth about at-least-once buses). Open model: each publish leaves on
// its schedule whatever the previous one is doing, and its lag against the schedule is recorded.

import { backoffDelayMs, parseRetryAfter } from './backoff.js';
import type { SubscriberChecks } from './delivery.js';
import type { OutgoingMessage, PublishOutcome } from './target/types.js';
import type { RetryingClientDeps } from './waits.js';

export interface PublisherDeps extends RetryingClientDeps {
  /** False once the schedule has ended: failed publishes are then given up, not retried. */
  running(): boolean;
  /** A publish finished one way or another (the runner checks whether the drain is over). */
  settled(): void;
}

export class Publishers {
  /**
   * One controller per request in flight, so stop() can abort them all. A single shared signal
   * would collect an abort listener per request (MaxListenersExceededWarning with thousands in
   * flight); each of these has one listener, gone with the request.
   */
  private readonly controllers = new Set<AbortController>();
  private stopped = false;
  inFlight = 0;

  constructor(private readonly d: PublisherDeps) {}

  /**
   * Sends `messages` (ids consecutive from messages[0].id) for `actor`; `expecting` are the
   * subscribers owed them, so their pairs can be withdrawn if the run stops during a backoff.
   */
  send(actor: string, messages: OutgoingMessage[], scheduledMs: number, expecting: SubscriberChecks[]): void {
    this.d.metrics.recordLag(Math.max(0, this.d.clock.monoMs() - scheduledMs));
    void this.run(actor, messages, expecting);
  }

  /** Aborts every request in flight and every backoff; nothing more is sent. */
  stop(): void {
    this.stopped = true;
    for (const c of this.controllers) c.abort();
    this.controllers.clear();
  }

  private async run(actor: string, all: OutgoingMessage[], expecting: SubscriberChecks[]): Promise<void> {
    const { metrics, clock } = this.d;
    const c = metrics.c;
    let rest = all;
    this.inFlight++;
    try {
      for (let attempt = 0; ; attempt++) {
        if (this.stopped) return;
        c.publishRequests++;
        const request = new AbortController();
        this.controllers.add(request);
        let r: PublishOutcome;
        const sentAt = clock.monoMs();
        try {
          r = await this.d.target.publish(actor, rest, request.signal);
        } finally {
          this.controllers.delete(request);
        }
        if (r.kind !== 'aborted') metrics.recordRequestTime('publish', clock.monoMs() - sentAt);
        if (r.kind === 'ok') {
          c.publishedMessages += rest.length;
          return;
        }
        if (r.kind === 'aborted') return;
        // A protocol that sends one request per message may have stored a prefix before failing.
        const stored = Math.max(0, Math.min(r.stored, rest.length));
        c.publishedMessages += stored;
        rest = rest.slice(stored);
        metrics.recordError('publish', r);
        if (r.kind === 'fatal') {
          // Refused for good (4xx): its pairs stay expected and will be lost, which is the target's doing.
          c.failedMessages += rest.length;
          return;
        }
        // Stop means stop: a publish that failed after the schedule ended is not retried.
        if (!this.d.running()) return this.withdraw(rest, expecting);
        const failedAtMs = clock.monoMs();
        const delay = backoffDelayMs(this.d.backoff, attempt, this.d.rng, parseRetryAfter(r.retryAfter, clock.nowMs()));
        const resumed = await this.d.waits.after(delay).done;
        if (!resumed || !this.d.running() || this.stopped) return this.withdraw(rest, expecting);
        // Wall-clock, not scaled by --speed: the backoff runs in real time, as the recorded clients' did.
        this.d.samples.add('retryGap', clock.monoMs() - failedAtMs);
        c.retries++;
      }
    } finally {
      this.inFlight--;
      this.d.settled();
    }
  }

  /** The run gave up on these: their pairs leave the denominator instead of counting as lost. */
  private withdraw(rest: OutgoingMessage[], expecting: SubscriberChecks[]): void {
    if (rest.length === 0) return;
    this.d.metrics.c.withdrawnMessages += rest.length;
    for (const sub of expecting) this.d.tracker.withdraw(sub, rest[0]!.id, rest.length);
  }
}
