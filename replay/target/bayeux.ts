// Bayeux 1.0 long-polling over HTTP POST (JSON), as Faye 1.4 and CometD serve it (docs/targets.md,
// "bayeux"). A subscriber session is one Bayeux client: /meta/handshake, one batched /meta/subscribe
// for all its topics, then /meta/connect as the long-poll, following the server's advice. Publishes
// go out as data messages from one lazily handshaken client per publishing actor.

import { setTimeout as delay } from 'node:timers/promises';
import type { Dispatcher } from 'undici';
import { UsageError } from '../../core/errors.js';
import { statusFailure, unreadable, type HttpAnswer, type TargetHttp } from './http.js';
import { decodePayload, payloadValue } from './payload.js';
import type { Failure, OpenOutcome, OutgoingMessage, PollOutcome, PublishOutcome, ReceivedMessage, Target, TargetContext, TargetFactory, TargetSession } from './types.js';

/** No Bayeux limit; one subscribe request of 1000 channels is about 100 KB, like v1's largest poll. */
export const bayeuxMaxTopicsPerPoll = 1000;

const defaultChannelPrefix = '/rehearse';

/** The characters a rehearse topic is made of. */
const topicChars = /^[A-Za-z0-9._-]+$/;

/** Bayeux channel grammar: segments of letters, digits and -_!~()$@ (Faye's Grammar.CHANNEL_NAME). */
const channelName = /^(\/[A-Za-z0-9\-_!~()$@]+)+$/;

/**
 * The Bayeux channel for a rehearse topic: `<prefix>/<topic>` with `.` written `!`. Topics use
 * [A-Za-z0-9._-], where `!` never occurs, so the mapping is one-to-one; any other character (a
 * topic that broke the rule) is written `$` + four hex digits, and `!`/`$` themselves are escaped
 * that way too, so the mapping stays one-to-one on every string.
 */
export function bayeuxChannel(topic: string, prefix = defaultChannelPrefix): string {
  if (topicChars.test(topic)) return `${prefix}/${topic.replaceAll('.', '!')}`;
  let segment = '';
  for (let i = 0; i < topic.length; i++) {
    const c = topic[i]!;
    if (c === '.') segment += '!';
    else if (/[A-Za-z0-9_-]/.test(c)) segment += c;
    else segment += `$${topic.charCodeAt(i).toString(16).padStart(4, '0')}`;
  }
  return `${prefix}/${segment}`;
}

/** The rehearse topic of a channel `bayeuxChannel` made, or undefined for any other channel. */
export function bayeuxTopic(channel: string, prefix = defaultChannelPrefix): string | undefined {
  if (!channel.startsWith(`${prefix}/`)) return undefined;
  const segment = channel.slice(prefix.length + 1);
  if (segment.length === 0 || segment.includes('/')) return undefined;
  let topic = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]!;
    if (c === '!') topic += '.';
    else if (c === '$') {
      const hex = segment.slice(i + 1, i + 5);
      if (!/^[0-9a-f]{4}$/.test(hex)) return undefined;
      topic += String.fromCharCode(parseInt(hex, 16));
      i += 4;
    } else topic += c;
  }
  return topic;
}

/** A Bayeux message as it arrives: validated field by field where it is read. */
interface BayeuxMessage {
  id?: unknown;
  channel?: unknown;
  clientId?: unknown;
  successful?: unknown;
  error?: unknown;
  advice?: unknown;
  subscription?: unknown;
  data?: unknown;
}

/** The server's reconnect advice as this client follows it. */
interface Advice {
  reconnect: 'retry' | 'handshake' | 'none';
  /** Wait this long before the next /meta/connect. */
  intervalMs: number;
  /** How long the server holds a /meta/connect; the client's limit sits 15 s above it. */
  timeoutMs: number | undefined;
}

const jsonHeaders = { 'content-type': 'application/json' } as const;

/** Faye: `401:<clientId>:Unknown client`; CometD: `402::unknown_session`, both with advice reconnect=handshake. */
function forgotClient(reply: BayeuxMessage): boolean {
  if (adviceOf(reply)?.reconnect === 'handshake') return true;
  return typeof reply.error === 'string' && /^40[12]:/.test(reply.error) && /unknown[ _]?(client|session)/i.test(reply.error);
}

function adviceOf(m: BayeuxMessage): Partial<Advice> | undefined {
  if (typeof m.advice !== 'object' || m.advice === null) return undefined;
  const a = m.advice as { reconnect?: unknown; interval?: unknown; timeout?: unknown };
  const out: Partial<Advice> = {};
  if (a.reconnect === 'retry' || a.reconnect === 'handshake' || a.reconnect === 'none') out.reconnect = a.reconnect;
  if (typeof a.interval === 'number' && Number.isFinite(a.interval) && a.interval >= 0) out.intervalMs = a.interval;
  if (typeof a.timeout === 'number' && Number.isFinite(a.timeout) && a.timeout >= 0) out.timeoutMs = a.timeout;
  return out;
}

function errorText(reply: BayeuxMessage | undefined): string {
  return typeof reply?.error === 'string' && reply.error ? reply.error : 'successful:false without an error';
}

function isMeta(channel: unknown): boolean {
  return typeof channel === 'string' && channel.startsWith('/meta/');
}

class BayeuxTarget implements Target {
  readonly protocol = 'bayeux';
  readonly maxTopicsPerPoll = bayeuxMaxTopicsPerPoll;
  readonly http: TargetHttp;
  private messageCounter = 0;
  /** One handshaken client per publishing actor: a clientId, or the handshake under way. */
  private readonly publishers = new Map<string, string | Promise<string | Failure>>();

  constructor(
    readonly ctx: TargetContext,
    readonly channelPrefix: string,
  ) {
    this.http = ctx.http;
  }

  channel(topic: string): string {
    return bayeuxChannel(topic, this.channelPrefix);
  }

  topicOf(channel: string): string | undefined {
    return bayeuxTopic(channel, this.channelPrefix);
  }

  /** Bayeux message ids only pair a reply with its request; one counter for the whole target is enough. */
  nextId(): string {
    this.messageCounter = (this.messageCounter + 1) % Number.MAX_SAFE_INTEGER;
    return this.messageCounter.toString(36);
  }

  /**
   * One POST of a message array. Resolves to the replies, or to a Failure: the shared status policy
   * for non-200 answers, fatal for a 200 whose body is not a JSON array of objects.
   */
  async exchange(
    step: string,
    messages: readonly Record<string, unknown>[],
    signal: AbortSignal | undefined,
    poll?: { dispatcher: Dispatcher; timeoutMs: number },
  ): Promise<{ replies: BayeuxMessage[]; answer: HttpAnswer } | Failure> {
    const a = await this.http.request({
      step,
      method: 'POST',
      path: '',
      body: JSON.stringify(messages),
      headers: jsonHeaders,
      ...(signal ? { signal } : {}),
      ...(poll ? { dispatcher: poll.dispatcher, timeoutMs: poll.timeoutMs } : {}),
    });
    if (a.kind !== 'answer') return a;
    if (a.status !== 200) return statusFailure(a, `bayeux ${step}`);
    let v: unknown;
    try {
      v = JSON.parse(a.text);
    } catch {
      return unreadable(a, `bayeux ${step} answer is not JSON (is --target the Bayeux mount URL, e.g. http://host:8000/faye?)`);
    }
    const list = Array.isArray(v) ? v : [v];
    if (list.some((m) => typeof m !== 'object' || m === null)) return unreadable(a, `bayeux ${step} answer is not an array of Bayeux messages`);
    return { replies: list as BayeuxMessage[], answer: a };
  }

  /**
   * /meta/handshake asking for long-polling. Resolves to the clientId and the server's advice; a
   * refusal is 'retry' when the server advises trying again, 'fatal' when it advises none or nothing.
   */
  async handshake(signal: AbortSignal | undefined): Promise<{ clientId: string; advice: Partial<Advice> } | (Failure & { advisedNone?: true })> {
    const id = this.nextId();
    const r = await this.exchange('handshake', [{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], id }], signal);
    if ('kind' in r) return r;
    const reply = r.replies.find((m) => m.channel === '/meta/handshake');
    if (!reply) return unreadable(r.answer, 'bayeux handshake answer has no /meta/handshake reply');
    const advice = adviceOf(reply) ?? {};
    if (reply.successful === true && typeof reply.clientId === 'string' && reply.clientId) {
      if (r.answer.trace) r.answer.trace.extracted = `clientId ${reply.clientId}${describeAdvice(advice)}`;
      return { clientId: reply.clientId, advice };
    }
    const detail = `bayeux handshake refused at ${this.http.url('')}: ${errorText(reply)}`;
    if (r.answer.trace) r.answer.trace.extracted = `refused: ${errorText(reply)}${describeAdvice(advice)}`;
    if (advice.reconnect === 'retry' || advice.reconnect === 'handshake') return { kind: 'retry', status: r.answer.status, detail };
    if (advice.reconnect === 'none') return { kind: 'fatal', status: r.answer.status, detail: `${detail} (the server advises reconnect: none)`, advisedNone: true };
    return { kind: 'fatal', status: r.answer.status, detail };
  }

  /** The actor's publishing client, handshaken on first use; concurrent publishes share one handshake. */
  private async publisher(actor: string, signal: AbortSignal): Promise<string | Failure> {
    const known = this.publishers.get(actor);
    if (known !== undefined) return known;
    const pending = this.handshake(signal).then((r) => {
      if ('kind' in r) {
        this.publishers.delete(actor);
        return r;
      }
      this.publishers.set(actor, r.clientId);
      return r.clientId;
    });
    this.publishers.set(actor, pending);
    return pending;
  }

  /**
   * Every publish carries the actor's handshaken clientId: CometD refuses data messages without a
   * live session (`402::unknown_session`), Faye accepts them either way. One handshake per actor
   * keeps that cheap; a server that forgot the client (restart, session expiry) gets one new
   * handshake and the rest of the batch again, within this call.
   */
  async publish(actor: string, messages: readonly OutgoingMessage[], signal: AbortSignal): Promise<PublishOutcome> {
    let stored = 0;
    let handshakenAgain = false;
    let sharedAborts = 0;
    while (stored < messages.length) {
      const clientId = await this.publisher(actor, signal);
      // A handshake is shared by the actor's concurrent publishes; another caller's abort must not end this one.
      if (typeof clientId !== 'string' && clientId.kind === 'aborted' && !signal.aborted && sharedAborts++ < 3) continue;
      if (typeof clientId !== 'string') {
        const { advisedNone: _, ...failure } = clientId as Failure & { advisedNone?: true };
        return { ...failure, stored };
      }
      const batch = messages.slice(stored);
      const ids = batch.map(() => this.nextId());
      const r = await this.exchange(
        'publish',
        batch.map((m, i) => ({ channel: this.channel(m.topic), data: payloadValue(m), clientId, id: ids[i] })),
        signal,
      );
      if ('kind' in r) return { ...r, stored };
      const byId = new Map<unknown, BayeuxMessage>();
      for (const reply of r.replies) if (!isMeta(reply.channel)) byId.set(reply.id, reply);
      let refused: { reply: BayeuxMessage; message: OutgoingMessage } | undefined;
      for (let i = 0; i < batch.length; i++) {
        const reply = byId.get(ids[i]);
        if (!reply) return { ...unreadable(r.answer, `bayeux publish answer has no reply for message id ${ids[i]}`), stored };
        if (reply.successful !== true) {
          refused = { reply, message: batch[i]! };
          break;
        }
        stored++;
      }
      if (!refused) {
        if (r.answer.trace) r.answer.trace.extracted = `accepted ${batch.length} message(s)`;
        return { kind: 'ok' };
      }
      if (r.answer.trace) r.answer.trace.extracted = `${stored} accepted, then refused: ${errorText(refused.reply)}`;
      if (forgotClient(refused.reply)) {
        if (this.publishers.get(actor) === clientId) this.publishers.delete(actor);
        if (handshakenAgain) {
          return { kind: 'retry', status: r.answer.status, detail: `bayeux publish: the server forgot ${actor}'s new client ${clientId} at once (${errorText(refused.reply)})`, stored };
        }
        handshakenAgain = true;
        continue;
      }
      return {
        kind: 'fatal',
        status: r.answer.status,
        detail: `bayeux publish to ${this.channel(refused.message.topic)} (topic ${refused.message.topic}) refused: ${errorText(refused.reply)}`,
        stored,
      };
    }
    return { kind: 'ok' };
  }

  subscribe(actor: string, topics: readonly string[]): TargetSession {
    return new BayeuxSession(this, actor, topics);
  }

  /** Disconnects the publishing clients (bounded in time: the server drops them anyway), then the sockets. */
  async close(): Promise<void> {
    const clientIds = [...this.publishers.values()].filter((c): c is string => typeof c === 'string');
    this.publishers.clear();
    // One deadline for them all, as a signal per request: one signal shared by every lane would
    // collect more abort listeners than Node likes and warn at the terminal.
    const deadlineMs = performance.now() + this.ctx.requestTimeoutMs;
    const lanes = Math.max(1, Math.min(this.ctx.publishConnections, clientIds.length));
    let next = 0;
    await Promise.all(
      Array.from({ length: lanes }, async () => {
        for (let left = deadlineMs - performance.now(); next < clientIds.length && left > 0; left = deadlineMs - performance.now()) {
          const clientId = clientIds[next++]!;
          await this.exchange('disconnect', [{ channel: '/meta/disconnect', clientId, id: this.nextId() }], AbortSignal.timeout(Math.ceil(left)));
        }
      }),
    );
    await this.http.close();
  }
}

function describeAdvice(a: Partial<Advice>): string {
  const parts: string[] = [];
  if (a.reconnect) parts.push(`reconnect ${a.reconnect}`);
  if (a.intervalMs !== undefined) parts.push(`interval ${a.intervalMs} ms`);
  if (a.timeoutMs !== undefined) parts.push(`timeout ${a.timeoutMs} ms`);
  return parts.length ? `; advice ${parts.join(', ')}` : '';
}

/**
 * One Bayeux client subscribed to a fixed set of channels. After the server forgets the client
 * (restart, or no /meta/connect within its drop time), the next poll handshakes and subscribes
 * again; what was published in between is not delivered, and the runner counts it lost.
 */
class BayeuxSession implements TargetSession {
  private clientId: string | undefined;
  private subscribed = false;
  private advice: Advice = { reconnect: 'retry', intervalMs: 0, timeoutMs: undefined };
  /** Set once the server advised reconnect: none; every later poll answers it. */
  private over: Failure | undefined;
  /** Whether a /meta/connect went out since the last handshake (interval applies between connects). */
  private connected = false;
  private readonly topicByChannel = new Map<string, string>();
  private readonly dispatcher: Dispatcher;

  constructor(
    private readonly target: BayeuxTarget,
    private readonly actor: string,
    topics: readonly string[],
  ) {
    for (const t of topics) this.topicByChannel.set(target.channel(t), t);
    this.dispatcher = target.http.pollDispatcher();
  }

  open(signal: AbortSignal): Promise<OpenOutcome> {
    return this.establish(signal);
  }

  /** Handshake, then one request subscribing every channel; 'ok' only when each subscription is acknowledged. */
  private async establish(signal: AbortSignal): Promise<OpenOutcome> {
    if (this.over) return this.over;
    if (!this.clientId) {
      const h = await this.target.handshake(signal);
      if ('kind' in h) {
        if ('advisedNone' in h) {
          const { advisedNone: _, ...failure } = h;
          this.over = failure;
          return failure;
        }
        return h;
      }
      this.clientId = h.clientId;
      this.subscribed = false;
      this.connected = false;
      this.follow(h.advice);
    }
    if (this.subscribed) return { kind: 'ok' };
    const clientId = this.clientId;
    const channels = [...this.topicByChannel.keys()];
    const ids = channels.map(() => this.target.nextId());
    const r = await this.target.exchange(
      'subscribe',
      channels.map((subscription, i) => ({ channel: '/meta/subscribe', clientId, subscription, id: ids[i] })),
      signal,
    );
    if ('kind' in r) return r;
    const byId = new Map<unknown, BayeuxMessage>();
    for (const reply of r.replies) {
      if (reply.channel !== '/meta/subscribe') continue;
      byId.set(reply.id, reply);
      const advice = adviceOf(reply);
      if (advice) this.follow(advice);
    }
    for (let i = 0; i < channels.length; i++) {
      const reply = byId.get(ids[i]);
      if (!reply) return unreadable(r.answer, `bayeux subscribe answer has no reply for ${channels[i]}`);
      if (reply.successful === true) continue;
      if (r.answer.trace) r.answer.trace.extracted = `subscription to ${channels[i]} refused: ${errorText(reply)}`;
      if (forgotClient(reply)) {
        this.forget();
        return { kind: 'retry', status: r.answer.status, detail: `bayeux subscribe: the server forgot client ${clientId} (${errorText(reply)}); the next attempt handshakes again` };
      }
      return { kind: 'fatal', status: r.answer.status, detail: `bayeux subscribe to ${channels[i]} refused for ${this.actor}: ${errorText(reply)}` };
    }
    if (r.answer.trace) r.answer.trace.extracted = `${channels.length} subscription(s) acknowledged for clientId ${clientId}`;
    this.subscribed = true;
    return { kind: 'ok' };
  }

  /** One /meta/connect, after (re)establishing the client if the server forgot it. */
  async poll(signal: AbortSignal): Promise<PollOutcome> {
    if (this.over) return this.over;
    if (!this.clientId || !this.subscribed) {
      const o = await this.establish(signal);
      if (o.kind !== 'ok') return o;
    }
    if (this.connected && this.advice.intervalMs > 0) {
      // The server's advised pause between connects is protocol behaviour, not synchronisation.
      try {
        await delay(this.advice.intervalMs, undefined, { signal });
      } catch {
        return { kind: 'aborted' };
      }
    }
    const clientId = this.clientId!;
    this.connected = true;
    // The server holds a connect for its advised timeout; the client waits 15 s longer than that.
    const timeoutMs = Math.max(this.target.http.pollLimitMs, (this.advice.timeoutMs ?? 0) + 15_000);
    const r = await this.target.exchange('poll', [{ channel: '/meta/connect', clientId, connectionType: 'long-polling', id: this.target.nextId() }], signal, {
      dispatcher: this.dispatcher,
      timeoutMs,
    });
    if ('kind' in r) return r;

    let connectReply: BayeuxMessage | undefined;
    const messages: ReceivedMessage[] = [];
    let unidentified = 0;
    for (const m of r.replies) {
      if (isMeta(m.channel)) {
        if (m.channel === '/meta/connect' && !connectReply) connectReply = m;
        const advice = adviceOf(m);
        if (advice) this.follow(advice);
        continue;
      }
      if (!('data' in m)) continue;
      const channel = typeof m.channel === 'string' ? m.channel : '';
      const deliveredOn = this.topicByChannel.get(channel) ?? this.target.topicOf(channel) ?? channel;
      const got = decodePayload(m.data, deliveredOn);
      if (got) messages.push(got);
      else unidentified++;
    }
    if (r.answer.trace) {
      r.answer.trace.extracted = `${connectReply?.successful === true ? 'connected' : `connect refused: ${errorText(connectReply)}`}; ${messages.length} message(s)${messages.length ? `: ids ${messages.map((m) => m.id).join(', ')}` : ''}${unidentified ? `, ${unidentified} without rehearse's payload` : ''}${describeAdvice(this.advice)}`;
    }
    if (!connectReply) return unreadable(r.answer, 'bayeux connect answer has no /meta/connect reply');

    let refusal: Failure | undefined;
    if (this.advice.reconnect === 'none') {
      this.over = { kind: 'fatal', status: r.answer.status, detail: `bayeux: the server ended client ${clientId} of ${this.actor} (advice reconnect: none${connectReply.successful === true ? '' : `; ${errorText(connectReply)}`})` };
      refusal = this.over;
    } else if (connectReply.successful !== true) {
      if (forgotClient(connectReply)) {
        this.forget();
        refusal = { kind: 'retry', status: r.answer.status, detail: `bayeux connect: the server forgot client ${clientId} (${errorText(connectReply)}); the next poll handshakes and subscribes again` };
      } else {
        refusal = { kind: 'fatal', status: r.answer.status, detail: `bayeux connect refused for ${this.actor}: ${errorText(connectReply)}` };
      }
    } else if (this.advice.reconnect === 'handshake') {
      // Successful, but the server wants a new handshake before the next connect.
      this.forget();
    }
    // Messages that came with a refusal are still delivered; the refusal shows on the next poll.
    if (messages.length > 0 || unidentified > 0) return { kind: 'messages', messages, unidentified };
    return refusal ?? { kind: 'empty' };
  }

  /** /meta/disconnect, best effort and bounded by the short-request timeout. */
  async close(): Promise<void> {
    const clientId = this.clientId;
    this.clientId = undefined;
    this.subscribed = false;
    if (!clientId) return;
    await this.target.exchange('disconnect', [{ channel: '/meta/disconnect', clientId, id: this.target.nextId() }], AbortSignal.timeout(this.target.ctx.requestTimeoutMs));
  }

  private follow(a: Partial<Advice>): void {
    if (a.reconnect !== undefined) this.advice.reconnect = a.reconnect;
    if (a.intervalMs !== undefined) this.advice.intervalMs = a.intervalMs;
    if (a.timeoutMs !== undefined) this.advice.timeoutMs = a.timeoutMs;
  }

  private forget(): void {
    this.clientId = undefined;
    this.subscribed = false;
    this.connected = false;
    // 'handshake' advice is satisfied by the handshake that follows; keep interval and timeout.
    if (this.advice.reconnect === 'handshake') this.advice.reconnect = 'retry';
  }
}

export const bayeuxProtocol: TargetFactory = {
  protocol: 'bayeux',
  options: {
    'channel-prefix': `Bayeux channel under which rehearse topics live (default ${defaultChannelPrefix}); letters, digits and -_!~()$@ per segment`,
  },
  create(ctx) {
    const prefix = (ctx.options['channel-prefix'] ?? defaultChannelPrefix).replace(/\/+$/, '');
    if (!channelName.test(prefix) || prefix.startsWith('/meta/') || prefix === '/meta' || prefix.startsWith('/service')) {
      throw new UsageError(
        `channel-prefix '${ctx.options['channel-prefix']}' is not a usable Bayeux channel: write /seg[/seg...], segments of letters, digits and -_!~()$@, outside /meta and /service`,
        '--target-option',
      );
    }
    return new BayeuxTarget(ctx, prefix);
  },
};
