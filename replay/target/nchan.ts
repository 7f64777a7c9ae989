// Nginx with the Nchan module (1.3.x, docs/targets.md "## nchan"): one POST per message to the
// publisher location, long-polls multiplexing up to 255 channels over the subscriber location,
// cursors kept the HTTP-cache way (Last-Modified / Etag echoed as If-Modified-Since / If-None-Match).
//
// What Nchan 1.3.6 does, read in its source (src/util/nchan_msg.c, src/store/memory/memstore.c)
// and confirmed against the real nginx (test/targets/nchan.test.ts):
// - A long-poll answer carries exactly one message, the oldest one after the cursor across all
//   channels of the poll. Its Etag is compound, one tag per channel in URL order, the channel
//   that delivered it in brackets: `0,[1],-` ('-' is -1: nothing seen yet in that second).
// - A 408 (nchan_subscriber_timeout) carries the request's Etag and no Last-Modified.
// - If-Modified-Since at the epoch itself means "no cursor" (nchan_subscriber_first_message
//   decides). The first poll names "the oldest message" explicitly instead, so a session gets
//   everything still buffered whatever first_message says: see startCursor().

import { RehearseError, UsageError } from '../../core/errors.js';
import type { HttpAnswer, TargetHttp } from './http.js';
import type { OpenOutcome, OutgoingMessage, PollOutcome, PublishOutcome, ReceivedMessage, Target, TargetContext, TargetFactory, TargetHelpers, TargetSession } from './types.js';

/** Nchan's NCHAN_MULTITAG_MAX: a multiplexed subscriber with more channels gets 403. */
export const nchanMaxTopicsPerPoll = 255;

const topicPattern = /^[A-Za-z0-9._-]+$/;

/** If-Modified-Since of the first multiplexed poll: one second after the epoch (the epoch itself means "no cursor"). */
export const nchanStartModifiedSince = 'Thu, 01 Jan 1970 00:00:01 GMT';

/**
 * The first poll's cursor: "before the oldest message" on every channel, said explicitly.
 * - One channel: If-None-Match `0:0` alone, Nchan's compound form with time 0, which is its own
 *   "oldest" id (the If-Modified-Since form refuses time 0).
 * - Several: If-Modified-Since one second after the epoch and a tag of -1 (`-`) per channel,
 *   which Nchan reads as "second 0, nothing seen": time 0 again, per channel. (The compound form
 *   gets 400 on a multiplexed poll.)
 * Not tag 0 at second 1: on an empty channel that id takes Nchan 1.3.6 down a "not found" path
 * where a subscriber that goes away (rehearse ends idle polls itself) trips an assertion and the
 * nginx worker dies (spool.c:479 `spool->msg_status == MSG_INVALID`), seen under load.
 */
export function startCursor(channels: number): { modifiedSince?: string; etag: string } {
  if (channels <= 1) return { etag: '0:0' };
  return { modifiedSince: nchanStartModifiedSince, etag: `[-]${',-'.repeat(channels - 1)}` };
}

/**
 * Which channel (index in URL order) delivered the message an Etag describes: the bracketed
 * tag of a compound Etag, 0 for a single tag. Undefined when the Etag is not Nchan's.
 * Accepts the `time:tags` form of nchan_subscriber_compound_etag_message_id too.
 */
export function activeChannel(etag: string, channels: number): number | undefined {
  const tags = (etag.includes(':') ? etag.slice(etag.indexOf(':') + 1) : etag).split(',');
  if (tags.length !== channels || !tags.every((t) => /^\[?(-|-?\d+)\]?$/.test(t))) return undefined;
  if (tags.length === 1) return 0;
  const active = tags.findIndex((t) => t.startsWith('['));
  return active >= 0 ? active : undefined;
}

class NchanTarget implements Target {
  readonly protocol = 'nchan';
  readonly maxTopicsPerPoll = nchanMaxTopicsPerPoll;
  /** The first poll asks for each channel from its start, so a subscriber is owed everything published since its join. */
  readonly deliversFromSubscribe = true;
  private readonly http: TargetHttp;
  private readonly helpers: TargetHelpers;
  private readonly pollTimeoutS: number;

  constructor(
    ctx: TargetContext,
    private readonly pubPath: string,
    private readonly subPath: string,
  ) {
    this.http = ctx.http;
    this.helpers = ctx.helpers;
    this.pollTimeoutS = ctx.pollTimeoutS;
  }

  /**
   * Topics are already valid channel ids ([A-Za-z0-9._-] holds neither the ',' delimiter nor
   * '/'), so the map is the identity, which keeps Nchan's own logs readable. Only an all-dots
   * name would be unsafe (nginx resolves `/pub/..`); rehearse never makes one.
   */
  channel(topic: string): string {
    if (!topicPattern.test(topic) || /^\.+$/.test(topic)) {
      throw new RehearseError('REHEARSE_INTERNAL', `topic '${topic}' cannot be an Nchan channel id: topics are [A-Za-z0-9._-] and not only dots`);
    }
    return topic;
  }

  /** Nchan takes one message per request: a batch goes out one POST at a time, in order. */
  async publish(_actor: string, messages: readonly OutgoingMessage[], signal: AbortSignal): Promise<PublishOutcome> {
    for (let stored = 0; stored < messages.length; stored++) {
      const m = messages[stored]!;
      const a = await this.http.request({
        step: 'publish',
        method: 'POST',
        path: `${this.pubPath}/${this.channel(m.topic)}`,
        // Nchan hands the content type on to subscribers with the message.
        headers: jsonHeaders,
        body: this.helpers.encodePayload(m),
        signal,
      });
      if (a.kind !== 'answer') return { ...a, stored };
      // 201: stored, subscribers were waiting; 202: stored, none were.
      if (a.status !== 201 && a.status !== 202) return { ...this.helpers.statusFailure(a, `publish to ${m.topic}`), stored };
      if (a.trace) a.trace.extracted = `stored message ${m.id} on channel ${m.topic} (${a.status === 201 ? '201: subscribers present' : '202: no subscriber yet'})`;
    }
    return { kind: 'ok' };
  }

  subscribe(_actor: string, topics: readonly string[]): TargetSession {
    return new NchanSession(this.http, this.helpers, this.subPath, topics, topics.map((t) => this.channel(t)), this.pollTimeoutS);
  }

  async close(): Promise<void> {
    await this.http.close();
  }
}

const jsonHeaders = { 'content-type': 'application/json' } as const;

/**
 * One multiplexed long-poll subscriber. Nchan keeps no state for it between polls: the cursor
 * (Last-Modified + compound Etag) is the whole subscription, so open() and close() have nothing
 * to tell the bus, and a poll after a bus restart simply goes on from the same cursor.
 *
 * An idle poll is ended by the client after --poll-timeout, not left to Nchan's 408: in 1.3.6,
 * once a multiplexed poll has timed out at the server (408), polls with that cursor get nothing
 * more, whatever is published (seen against the real nginx; single-channel polls are not
 * affected). Closing the request ourselves leaves no such state, so the conf rehearse asks for
 * sets nchan_subscriber_timeout above --poll-timeout (docs/targets.md, "## nchan").
 */
class NchanSession implements TargetSession {
  private modifiedSince: string | undefined;
  private etag: string;
  private readonly dispatcher;
  private readonly path: string;
  private readonly refusal: string | undefined;

  constructor(
    private readonly http: TargetHttp,
    private readonly helpers: TargetHelpers,
    subPath: string,
    private readonly topics: readonly string[],
    channels: readonly string[],
    private readonly timeoutS: number,
  ) {
    const start = startCursor(channels.length);
    this.modifiedSince = start.modifiedSince;
    this.etag = start.etag;
    this.path = `${subPath}/${channels.join(',')}`;
    this.dispatcher = http.pollDispatcher();
    if (topics.length === 0) this.refusal = 'an Nchan subscription needs at least one topic';
    else if (topics.length > nchanMaxTopicsPerPoll) {
      this.refusal = `Nchan multiplexes at most ${nchanMaxTopicsPerPoll} channels over one long-poll and this session has ${topics.length}: split the roster by maxTopicsPerPoll`;
    }
  }

  async open(): Promise<OpenOutcome> {
    return this.refusal ? { kind: 'fatal', detail: this.refusal } : { kind: 'ok' };
  }

  async poll(signal: AbortSignal): Promise<PollOutcome> {
    if (this.refusal) return { kind: 'fatal', detail: this.refusal };
    // The client ends an idle poll itself, before nchan_subscriber_timeout: see NchanSession.
    const deadline = AbortSignal.timeout(this.timeoutS * 1000);
    const a = await this.http.request({
      step: 'poll',
      method: 'GET',
      path: this.path,
      headers: this.modifiedSince === undefined ? { 'if-none-match': this.etag } : { 'if-modified-since': this.modifiedSince, 'if-none-match': this.etag },
      signal: AbortSignal.any([signal, deadline]),
      dispatcher: this.dispatcher,
    });
    if (a.kind === 'aborted' && deadline.aborted && !signal.aborted) return { kind: 'empty' };
    if (a.kind !== 'answer') return a;
    // 408: nchan_subscriber_timeout passed with nothing; 304: nothing new. Both keep the cursor
    // (a 408 carries the request's Etag and no Last-Modified).
    if (a.status === 408 || a.status === 304) {
      const warning = a.status === 408 && this.topics.length > 1 ? ' (set nchan_subscriber_timeout above --poll-timeout: after a 408 Nchan 1.3.6 stops answering this multiplexed cursor)' : '';
      if (a.trace) a.trace.extracted = `no message (${a.status}); cursor kept: ${this.cursorText()}${warning}`;
      return { kind: 'empty' };
    }
    if (a.status !== 200) return this.helpers.statusFailure(a, `poll ${this.topics.length} channel(s)`);
    const lastModified = this.helpers.header(a, 'last-modified');
    const etag = this.helpers.header(a, 'etag');
    if (etag === undefined) return this.helpers.unreadable(a, 'Nchan poll answer without an Etag (is this location an nchan_subscriber? is nchan_subscriber_message_id_custom_etag_header set?)');
    const active = activeChannel(etag, this.topics.length);
    if (lastModified !== undefined) this.modifiedSince = lastModified;
    this.etag = etag;
    const got = this.readMessage(a, active);
    if (a.trace) {
      const on = active !== undefined ? ` on ${this.topics[active]}` : '';
      a.trace.extracted = `${got ? `message ${got.id}${on}` : `a message without rehearse's payload${on}`}; cursor ${this.cursorText()}`;
    }
    return got ? { kind: 'messages', messages: [got], unidentified: 0 } : { kind: 'messages', messages: [], unidentified: 1 };
  }

  async close(): Promise<void> {
    // Long-poll subscribers have no unsubscribe: the subscriber simply stops polling.
  }

  private readMessage(a: HttpAnswer, active: number | undefined): ReceivedMessage | undefined {
    const deliveredOn = active !== undefined ? this.topics[active] : undefined;
    return this.helpers.decodePayload(a.text, deliveredOn);
  }

  private cursorText(): string {
    return `${this.modifiedSince === undefined ? '' : `Last-Modified ${this.modifiedSince}, `}Etag ${this.etag}`;
  }
}

/** `--target-option pubPath=/pub`: a path on the target, without a trailing slash. */
function locationOption(options: Readonly<Record<string, string>>, key: 'pubPath' | 'subPath', fallback: string): string {
  const raw = options[key];
  if (raw === undefined) return fallback;
  const value = raw.replace(/\/+$/, '');
  // '/' alone (value '') puts channels at the root: /{channel}.
  if (!raw.startsWith('/') || /[?#,\s]/.test(value)) {
    throw new UsageError(`${key}=${raw} must be a path on the target starting with '/' (e.g. ${key}=${fallback}), without a query, ',' or spaces`, '--target-option');
  }
  return value;
}

export const nchanProtocol: TargetFactory = {
  protocol: 'nchan',
  options: {
    pubPath: 'publisher location; messages are POSTed to {pubPath}/{channel} (default /pub)',
    subPath: 'subscriber location; long-polls GET {subPath}/{ch1},{ch2},... (default /sub)',
  },
  create: (ctx) => new NchanTarget(ctx, locationOption(ctx.options, 'pubPath', '/pub'), locationOption(ctx.options, 'subPath', '/sub')),
};
