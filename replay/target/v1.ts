// Protocol v1 (docs/protocol.md), the embedded bus's own: one POST per publish batch, one POST
// per long-poll carrying topic -> cursor, cursors handed back by the bus.

import { statusFailure, unreadable, type TargetHttp } from './http.js';
import { decodePayload, payloadValue } from './payload.js';
import type { OpenOutcome, OutgoingMessage, PollOutcome, PublishOutcome, ReceivedMessage, Target, TargetContext, TargetFactory, TargetSession } from './types.js';

/** The embedded bus refuses larger subscribes; a bigger roster is split over several polls. */
export const v1MaxTopicsPerPoll = 1000;
/** Restarts of the bus a session tolerates per topic before a seq that steps back is a violation. */
const renumberingsAllowed = 3;

class V1Target implements Target {
  readonly protocol = 'v1';
  readonly maxTopicsPerPoll = v1MaxTopicsPerPoll;
  readonly deliversFromSubscribe = true;
  private readonly http: TargetHttp;

  constructor(private readonly ctx: TargetContext) {
    this.http = ctx.http;
  }

  channel(topic: string): string {
    return topic;
  }

  async publish(actor: string, messages: readonly OutgoingMessage[], signal: AbortSignal): Promise<PublishOutcome> {
    const body = JSON.stringify({ actor, messages: messages.map((m) => ({ topic: m.topic, id: String(m.id), data: payloadValue(m) })) });
    const a = await this.http.request({ step: 'publish', method: 'POST', path: '/v1/events/publish', body, headers: jsonHeaders, signal });
    if (a.kind !== 'answer') return { ...a, stored: 0 };
    if (a.status !== 200) return { ...statusFailure(a, 'publish'), stored: 0 };
    if (a.trace) a.trace.extracted = `accepted ${messages.length} message(s)`;
    return { kind: 'ok' };
  }

  subscribe(actor: string, topics: readonly string[]): TargetSession {
    return new V1Session(this.http, actor, topics, this.ctx.pollTimeoutS);
  }

  async close(): Promise<void> {
    await this.http.close();
  }
}

const jsonHeaders = { 'content-type': 'application/json' } as const;

class V1Session implements TargetSession {
  private readonly cursors: Record<string, number> = {};
  /** Steps back in seq per topic, taken as the bus renumbering after a restart. */
  private readonly renumberings = new Map<string, number>();
  private readonly dispatcher;

  constructor(
    private readonly http: TargetHttp,
    private readonly actor: string,
    topics: readonly string[],
    private readonly timeoutS: number,
  ) {
    // Topics are fresh per run, so cursor 0 ("from the start") misses nothing published before the first poll.
    for (const t of topics) this.cursors[t] = 0;
    this.dispatcher = http.pollDispatcher();
  }

  async open(): Promise<OpenOutcome> {
    return { kind: 'ok' };
  }

  async poll(signal: AbortSignal): Promise<PollOutcome> {
    const body = `{"actor":${JSON.stringify(this.actor)},"topics":${JSON.stringify(this.cursors)},"timeout_s":${this.timeoutS}}`;
    const a = await this.http.request({ step: 'poll', method: 'POST', path: '/v1/events/subscribe', body, headers: jsonHeaders, signal, dispatcher: this.dispatcher });
    if (a.kind !== 'answer') return a;
    if (a.status !== 200) return statusFailure(a, 'subscribe');
    let v: { messages?: unknown; cursors?: unknown };
    try {
      v = JSON.parse(a.text) as typeof v;
    } catch {
      return unreadable(a, 'subscribe answer is not JSON');
    }
    if (typeof v !== 'object' || v === null || !Array.isArray(v.messages) || typeof v.cursors !== 'object' || v.cursors === null) {
      return unreadable(a, 'subscribe answer lacks "messages" or "cursors"');
    }
    const cursors = v.cursors as Record<string, unknown>;
    // The lowest seq each topic may deliver now: above the cursor sent. A bus that restarted numbers
    // afresh, so a seq at or below the cursor is taken as a renumbering, a few times per topic; a
    // topic that keeps going back (a bus that rewrites seq) breaks cursors, and that is a violation.
    const floor: Record<string, number> = {};
    for (const topic of Object.keys(this.cursors)) {
      floor[topic] = this.cursors[topic]!;
      const c = cursors[topic];
      if (typeof c === 'number' && Number.isSafeInteger(c) && c >= 0) this.cursors[topic] = c;
    }
    const messages: ReceivedMessage[] = [];
    const violations: string[] = [];
    const renumbered = new Set<string>();
    let unidentified = 0;
    for (const m of v.messages as unknown[]) {
      const msg = typeof m === 'object' && m !== null ? (m as { topic?: unknown; seq?: unknown; data?: unknown }) : undefined;
      const on = typeof msg?.topic === 'string' ? msg.topic : undefined;
      const got = msg ? decodePayload(msg.data, on ?? '') : undefined;
      if (got) messages.push(got);
      else unidentified++;
      if (on === undefined || !(on in floor)) continue;
      const seq = msg!.seq;
      const last = floor[on]!;
      if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) {
        violations.push(`seq ${JSON.stringify(seq)} on topic ${on} is not a positive integer`);
        continue;
      }
      if (seq <= last) {
        // Within one answer seq must increase; across answers, a step back is a renumbering, allowed a few times.
        const renumbering = !renumbered.has(on) && (this.renumberings.get(on) ?? 0) < renumberingsAllowed;
        if (renumbering) {
          renumbered.add(on);
          this.renumberings.set(on, (this.renumberings.get(on) ?? 0) + 1);
        } else violations.push(`seq ${seq} on topic ${on} after seq ${last}`);
      }
      floor[on] = seq;
    }
    if (a.trace) a.trace.extracted = `${messages.length} message(s)${messages.length ? `: ids ${messages.map((m) => m.id).join(', ')}` : ''}${unidentified ? `, ${unidentified} without rehearse's payload` : ''}; cursors ${JSON.stringify(this.cursors)}`;
    if (messages.length === 0 && unidentified === 0) return { kind: 'empty' };
    return violations.length > 0 ? { kind: 'messages', messages, unidentified, violations } : { kind: 'messages', messages, unidentified };
  }

  async close(): Promise<void> {
    // v1 has no unsubscribe: a subscriber simply stops polling.
  }
}

export const v1Protocol: TargetFactory = {
  protocol: 'v1',
  create: (ctx) => new V1Target(ctx),
};
