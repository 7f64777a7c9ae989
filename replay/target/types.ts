// The target seam: the one interface every bus protocol implements (protocol v1, Nchan, Bayeux,
// a declarative profile, a user's module). Virtual users, backoff, delivery checks and the SLO see
// only these types: never an HTTP path, a body or undici.
//
// Message identity travels inside the payload rehearse publishes (payload.ts), so delivery checks
// work on buses that assign their own ids, and a bus that rewrites bodies is caught, not trusted.

import type { Dispatcher } from 'undici';
import type { HttpAnswer, TargetHttp } from './http.js';

/** A message as rehearse publishes it. The target maps `topic` to its own channel name. */
export interface OutgoingMessage {
  /** rehearse's id, unique within a run, allocated in scheduled order. */
  id: number;
  /** rehearse topic, e.g. `r3f9a.c17.l4.events`: [A-Za-z0-9._-] only. */
  topic: string;
  /** Scheduled send time, monotonic ms of this host. */
  sentMs: number;
  /** The publishing actor (plan name). */
  from: string;
}

/** One message a subscriber got, identified from its payload. */
export interface ReceivedMessage {
  id: number;
  /** The rehearse topic the payload says it was published to. */
  topic: string;
  /**
   * The rehearse topic the bus says it delivered the message on, when the protocol tells
   * (v1's `topic`, Bayeux's `channel`); undefined where it does not (a multiplexed Nchan poll).
   * The delivery check flags a message delivered on another topic than it was published to.
   */
  deliveredOn?: string;
}

/** Why a call did not succeed. Every call resolves to an outcome; none throws for HTTP or network trouble. */
export type Failure =
  /** 5xx, 408 (where it is not an empty poll), 429, timeouts, connection errors: back off and try again. */
  | { kind: 'retry'; status?: number; retryAfter?: string; detail: string }
  /** Other 4xx (and answers that cannot be understood): never retried, counted by status. */
  | { kind: 'fatal'; status?: number; detail: string }
  /** rehearse stopped the call (the run is stopping or the subscriber left). */
  | { kind: 'aborted' };

/**
 * `stored`: how many leading messages of the batch the bus took before the failure (a protocol
 * that sends one request per message may fail half-way); the runner retries only the rest.
 */
export type PublishOutcome = { kind: 'ok' } | (Failure & { stored: number });

export type PollOutcome =
  | {
      kind: 'messages';
      messages: ReceivedMessage[];
      /** Messages whose payload carried no rehearse identity (a bus that rewrites bodies, or a stranger on the channel). */
      unidentified: number;
      /** What in this answer breaks the protocol's own rules (v1: a seq that does not increase on its topic), in words. */
      violations?: string[];
    }
  /** The poll ended with nothing (timeout, 304, 408 where the protocol says so). */
  | { kind: 'empty' }
  | Failure;

export type OpenOutcome = { kind: 'ok' } | Failure;

/** One subscriber's subscription to a fixed set of topics (at most `maxTopicsPerPoll`). */
export interface TargetSession {
  /**
   * Makes the subscription real (Bayeux: handshake and /meta/subscribe). Messages published after
   * this resolves 'ok' must reach the subscriber; before it, they are not expected.
   */
  open(signal: AbortSignal): Promise<OpenOutcome>;
  /** One long-poll. Cursors, client ids and reconnect advice are the session's own business. */
  poll(signal: AbortSignal): Promise<PollOutcome>;
  /** Leaves (unsubscribe or disconnect where the protocol has it); best effort, never throws. */
  close(): Promise<void>;
}

export interface Target {
  /** 'v1', 'nchan', 'bayeux', 'profile:<name>', 'module:<file>'. */
  readonly protocol: string;
  /** Most topics one long-poll may carry; a larger subscription is split over several sessions. */
  readonly maxTopicsPerPoll: number;
  /**
   * True when a session sees every message published to its topics since `subscribe()` was
   * called, whenever its subscription is made real (the bus keeps channel history: v1 from cursor
   * 0, Nchan from the channel's start): a subscriber is then owed messages from its join. False
   * (Bayeux, and the safe default) when only messages published after `open()` resolves reach it.
   */
  readonly deliversFromSubscribe?: boolean;
  /** The bus's name for a rehearse topic (valid for that bus, one-to-one). */
  channel(topic: string): string;
  publish(actor: string, messages: readonly OutgoingMessage[], signal: AbortSignal): Promise<PublishOutcome>;
  subscribe(actor: string, topics: readonly string[]): TargetSession;
  close(): Promise<void>;
}

/** One HTTP exchange as `rehearse probe` prints it. */
export interface TraceStep {
  /** 'publish', 'poll', 'handshake', 'subscribe', ... */
  step: string;
  method: string;
  url: string;
  /** Request body as sent (truncated for display); undefined for GET. */
  requestBody?: string;
  status?: number;
  ms: number;
  /** Response body or a description of it (truncated). */
  responseBody?: string;
  /** What the target read from the answer, in words: "2 messages: ids 1, 2", "Etag 5:0". */
  extracted?: string;
  error?: string;
}

/** What every target is built with. */
export interface TargetContext {
  /** --target, without a trailing slash. */
  url: string;
  /** Sent with every request; values never stored or printed. */
  headers: Readonly<Record<string, string>>;
  /** The long-poll timeout the virtual users ask for (seconds); client-side limits sit above it. */
  pollTimeoutS: number;
  /** Publish (and other short requests) time out after this long. */
  requestTimeoutMs: number;
  /** Sockets shared by short requests. */
  publishConnections: number;
  /** --target-option key=value pairs, for the protocol to read (and reject unknown keys). */
  options: Readonly<Record<string, string>>;
  /** One dispatcher for everything (tests); otherwise pools owned by the HTTP layer. */
  dispatcher?: Dispatcher;
  /** Called for every exchange when set (probe). */
  trace?: (step: TraceStep) => void;
  /** The shared HTTP layer built from the fields above (modules use it too). */
  http: TargetHttp;
  /** The shared pieces a protocol needs, so a user's module never imports rehearse's files by path. */
  helpers: TargetHelpers;
}

export interface TargetHelpers {
  encodePayload(m: OutgoingMessage): string;
  payloadValue(m: OutgoingMessage): { id: number; topic: string; sentMs: number; from: string };
  decodePayload(value: unknown, deliveredOn?: string): ReceivedMessage | undefined;
  /** The shared status policy: 5xx, 408, 429 retry; other 4xx fatal. */
  statusFailure(a: HttpAnswer, what: string): Failure;
  /** A success status whose body cannot be understood: fatal. */
  unreadable(a: HttpAnswer, what: string): Failure;
  header(a: HttpAnswer, name: string): string | undefined;
}

/** What a protocol module exports (built-ins and user `.mjs` files alike). */
export interface TargetFactory {
  protocol: string;
  /** Known --target-option keys with one line each, for --help and validation. */
  options?: Readonly<Record<string, string>>;
  create(ctx: TargetContext): Target | Promise<Target>;
}
