// An in-memory bus behind the Target interface plus hand-driven time, so the runtime (sessions,
// publishers, subscribers, metrics, verdict) is tested without a socket or a real clock.

import type { Clock } from '../../core/clock.js';
import type { Timers } from '../../replay/scheduler.js';
import type { OpenOutcome, OutgoingMessage, PollOutcome, PublishOutcome, ReceivedMessage, Target, TargetSession } from '../../replay/target/types.js';

export interface FakeBusOptions {
  maxTopicsPerPoll?: number;
  deliversFromSubscribe?: boolean;
  /** Outcomes the next publish calls get, in order (then 'ok'); a failure with `stored` keeps that prefix. */
  publishScript?: PublishOutcome[];
  /** Every poll answers at once with nothing (a bus that does not hold polls). */
  neverHolds?: boolean;
  /** Rewrites what a subscriber receives (a bus that mixes up topics). */
  deliver?: (m: ReceivedMessage) => ReceivedMessage;
  /**
   * What the bus does with a stored message, keyed by its topic and its order on that topic
   * (from 0): 'drop' loses it (accepted, never delivered), 'dup' delivers it twice. Keyed so, a
   * fault lands on the same message however the plan is split over processes.
   */
  fate?: (topic: string, nth: number) => 'ok' | 'drop' | 'dup';
}

export class FakeBus implements Target {
  readonly protocol = 'fake';
  readonly maxTopicsPerPoll: number;
  readonly deliversFromSubscribe: boolean;
  readonly published: OutgoingMessage[] = [];
  readonly publishCalls: OutgoingMessage[][] = [];
  /** Topics of every session opened, in order. */
  readonly sessions: string[][] = [];
  polls = 0;
  private readonly log = new Map<string, OutgoingMessage[]>();
  /** Messages stored per topic (dropped ones included): the `nth` that `fate` is asked about. */
  private readonly storedOn = new Map<string, number>();
  private readonly waiters = new Set<() => void>();

  constructor(private readonly o: FakeBusOptions = {}) {
    this.maxTopicsPerPoll = o.maxTopicsPerPoll ?? 1000;
    this.deliversFromSubscribe = o.deliversFromSubscribe ?? true;
  }

  channel(topic: string): string {
    return topic;
  }

  async publish(_actor: string, messages: readonly OutgoingMessage[]): Promise<PublishOutcome> {
    this.publishCalls.push([...messages]);
    const scripted = this.o.publishScript?.shift();
    const stored = scripted && scripted.kind !== 'ok' ? scripted.stored : messages.length;
    for (const m of messages.slice(0, stored)) {
      this.published.push(m);
      const nth = this.storedOn.get(m.topic) ?? 0;
      this.storedOn.set(m.topic, nth + 1);
      const fate = this.o.fate?.(m.topic, nth) ?? 'ok';
      if (fate === 'drop') continue;
      const list = this.log.get(m.topic) ?? [];
      list.push(m);
      if (fate === 'dup') list.push(m);
      this.log.set(m.topic, list);
    }
    for (const w of [...this.waiters]) w();
    return scripted ?? { kind: 'ok' };
  }

  subscribe(_actor: string, topics: readonly string[]): TargetSession {
    this.sessions.push([...topics]);
    const cursors = new Map(topics.map((t) => [t, 0]));
    const bus = this;
    return {
      async open(): Promise<OpenOutcome> {
        return { kind: 'ok' };
      },
      poll(signal: AbortSignal): Promise<PollOutcome> {
        bus.polls++;
        if (bus.o.neverHolds) return Promise.resolve({ kind: 'empty' });
        return new Promise((resolve) => {
          const attempt = (): boolean => {
            const out: ReceivedMessage[] = [];
            for (const [t, c] of cursors) {
              const list = bus.log.get(t) ?? [];
              for (const m of list.slice(c)) out.push((bus.o.deliver ?? ((x) => x))({ id: m.id, topic: m.topic, deliveredOn: t }));
              cursors.set(t, list.length);
            }
            if (out.length === 0) return false;
            resolve({ kind: 'messages', messages: out, unidentified: 0 });
            return true;
          };
          if (attempt()) return;
          const wake = (): void => {
            if (attempt()) bus.waiters.delete(wake);
          };
          bus.waiters.add(wake);
          signal.addEventListener('abort', () => {
            bus.waiters.delete(wake);
            resolve({ kind: 'aborted' });
          });
        });
      },
      async close(): Promise<void> {},
    };
  }

  async close(): Promise<void> {}
}

/** A hand-driven clock and timer; `run(ms)` advances in small steps and lets promises settle between them. */
export function fakeTime(): { clock: Clock; timers: Timers; run(ms: number, stepMs?: number): Promise<void> } {
  let now = 1_000;
  let seq = 0;
  const pending = new Map<number, { at: number; fn: () => void }>();
  const timers: Timers = {
    setTimeout: (fn, ms) => {
      pending.set(++seq, { at: now + ms, fn });
      return seq;
    },
    clearTimeout: (h) => void pending.delete(h as number),
    setImmediate: (fn) => {
      pending.set(++seq, { at: now, fn });
      return seq;
    },
  };
  const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  return {
    clock: { nowMs: () => now, monoMs: () => now },
    timers,
    async run(ms, stepMs = 5) {
      const end = now + ms;
      while (now < end) {
        now = Math.min(end, now + stepMs);
        for (let guard = 0; guard < 10_000; guard++) {
          const due = [...pending].filter(([, t]) => t.at <= now).sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0];
          if (!due) break;
          pending.delete(due[0]);
          due[1].fn();
          await settle();
        }
        await settle();
      }
    },
  };
}
