// Protocol v1 over undici: publish, subscribe (long-poll) and the pre-flight check. Each call
// resolves to a typed outcome (never throws for HTTP or network failures), so the virtual users
// decide about retries in one place; undici's own retry interceptor is deliberately not used.

import { Pool, type Dispatcher } from 'undici';
import { RehearseError } from '../core/errors.js';

/** Poll pools; each holds about (virtual users / pollShards) connections. */
const pollShards = 64;

export interface BusMessage {
  topic: string;
  seq: number;
  id: string;
  data: unknown;
}

export type CallOutcome<T> =
  | { ok: true; value: T }
  | {
      ok: false;
      /** 'http' (status set), 'network' (connection error or timeout), 'aborted' (we stopped). */
      kind: 'http' | 'network' | 'aborted';
      status?: number;
      retryAfter?: string;
      /** Whether the policy retries it: 5xx, 429, timeouts and connection errors. */
      retryable: boolean;
      detail: string;
    };

export interface ClientOptions {
  target: string;
  /** Sent on every request; values never leave this object. */
  headers: Record<string, string>;
  /** Sockets for publishes (short requests), shared by every virtual user. */
  publishConnections: number;
  pollTimeoutS: number;
  requestTimeoutMs: number;
  /** One dispatcher for everything (tests); otherwise a publish pool and one connection per subscriber. */
  dispatcher?: Dispatcher;
}

export interface SubscribeResult {
  messages: BusMessage[];
  cursors: Record<string, number>;
}

/**
 * Long-polls go through `pollShards` pools, subscribers assigned round robin: an undici Pool looks
 * for a free connection by scanning all of its connections on every request, so one pool holding
 * 20k long-polls would cost O(virtual users) per request. Publishes have a pool of their own.
 */
export class BusClient {
  private readonly publishDispatcher: Dispatcher;
  private readonly ownsDispatchers: boolean;
  private readonly origin: string;
  private readonly basePath: string;
  private readonly headers: Record<string, string>;
  private readonly pollLimitMs: number;
  private readonly pollPools: Pool[] = [];
  private nextPollShard = 0;

  constructor(private readonly options: ClientOptions) {
    const url = new URL(options.target.replace(/\/+$/, ''));
    this.origin = url.origin;
    this.basePath = url.pathname === '/' ? '' : url.pathname;
    this.headers = { ...options.headers, 'content-type': 'application/json' };
    // headersTimeout/bodyTimeout above the poll timeout on purpose (25 s polls -> 40 s): a long-poll
    // that stays silent for timeout_s is healthy, and the bus may answer a little after it.
    this.pollLimitMs = pollLimitMs(options.pollTimeoutS);
    this.ownsDispatchers = options.dispatcher === undefined;
    this.publishDispatcher =
      options.dispatcher ??
      new Pool(this.origin, {
        connections: options.publishConnections,
        pipelining: 1,
        // Below the usual 5 s server keep-alive, so we never send on a socket the server is closing.
        keepAliveTimeout: 4_000,
        headersTimeout: options.requestTimeoutMs,
        bodyTimeout: options.requestTimeoutMs,
        connect: { timeout: 10_000 },
      });
  }

  /** The dispatcher for one subscriber's long-polls (closed with the client). */
  pollDispatcher(): Dispatcher {
    if (this.options.dispatcher) return this.options.dispatcher;
    // Round robin over the shards keeps each pool's free-connection scan short.
    const shard = this.nextPollShard++ % pollShards;
    let pool = this.pollPools[shard];
    if (!pool) {
      pool = new Pool(this.origin, {
        pipelining: 1,
        keepAliveTimeout: 4_000,
        headersTimeout: this.pollLimitMs,
        bodyTimeout: this.pollLimitMs,
        connect: { timeout: 10_000 },
      });
      this.pollPools[shard] = pool;
    }
    return pool;
  }

  /**
   * Resolves when the target answers a zero-timeout subscribe like a protocol v1 bus. A 5xx or
   * 429 counts as reachable: an overloaded target is what the run is there to measure.
   */
  async check(probeTopic: string): Promise<void> {
    const target = this.options.target;
    const sub = await this.subscribe('rehearse-preflight', JSON.stringify({ [probeTopic]: null }), 0, undefined, this.publishDispatcher);
    if (sub.ok || (sub.kind === 'http' && sub.retryable && sub.status !== 200)) return;
    if (sub.kind === 'network') {
      throw new RehearseError(
        'REHEARSE_TARGET',
        `cannot reach the target ${target}: ${sub.detail}. Is the bus running there? (\`rehearse bus\` starts the embedded one)`,
      );
    }
    throw new RehearseError(
      'REHEARSE_TARGET',
      `the target ${target} does not answer protocol v1: POST /v1/events/subscribe gave ${sub.status ?? '?'} (${sub.detail}). Check --target and any --header it needs.`,
    );
  }

  async publish(bodyJson: string, signal: AbortSignal): Promise<CallOutcome<number>> {
    const r = await this.post(this.publishDispatcher, '/v1/events/publish', bodyJson, this.options.requestTimeoutMs, signal);
    if (!r.ok) return r;
    const accepted = (r.value as { accepted?: unknown }).accepted;
    return { ok: true, value: typeof accepted === 'number' ? accepted : 0 };
  }

  /** `topicsJson` is the serialised topic -> cursor object, built by the caller to avoid re-serialising. */
  async subscribe(
    actor: string,
    topicsJson: string,
    timeoutS: number,
    signal: AbortSignal | undefined,
    dispatcher: Dispatcher,
  ): Promise<CallOutcome<SubscribeResult>> {
    const body = `{"actor":${JSON.stringify(actor)},"topics":${topicsJson},"timeout_s":${timeoutS}}`;
    const r = await this.post(dispatcher, '/v1/events/subscribe', body, pollLimitMs(timeoutS), signal);
    if (!r.ok) return r;
    const v = r.value as { messages?: unknown; cursors?: unknown };
    if (!Array.isArray(v.messages) || typeof v.cursors !== 'object' || v.cursors === null) {
      return { ok: false, kind: 'http', status: 200, retryable: true, detail: 'subscribe answer lacks "messages" or "cursors"' };
    }
    return { ok: true, value: { messages: v.messages as BusMessage[], cursors: v.cursors as Record<string, number> } };
  }

  async close(): Promise<void> {
    if (!this.ownsDispatchers) return;
    const all = [this.publishDispatcher, ...this.pollPools];
    this.pollPools.length = 0;
    await Promise.all(all.map((d) => d.destroy().catch(() => undefined)));
  }

  private async post(dispatcher: Dispatcher, path: string, body: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<CallOutcome<unknown>> {
    let res: Dispatcher.ResponseData;
    try {
      res = await dispatcher.request({
        origin: this.origin,
        path: this.basePath + path,
        method: 'POST',
        body,
        headers: this.headers,
        signal: signal ?? null,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
    } catch (err) {
      return failure(err, signal);
    }
    try {
      if (res.statusCode === 200) {
        return { ok: true, value: await res.body.json() };
      }
      const text = await res.body.text().catch(() => '');
      const status = res.statusCode;
      const retryAfter = res.headers['retry-after'];
      return {
        ok: false,
        kind: 'http',
        status,
        retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
        retryable: status >= 500 || status === 429 || status === 408,
        detail: `HTTP ${status}${text ? `: ${errorText(text)}` : ''}`,
      };
    } catch (err) {
      return failure(err, signal);
    }
  }
}

/** How long a long-poll of `timeoutS` may stay silent before undici gives up on it: 15 s of slack. */
export function pollLimitMs(timeoutS: number): number {
  return (timeoutS + 15) * 1000;
}

function failure(err: unknown, signal: AbortSignal | undefined): CallOutcome<never> {
  if (signal?.aborted) return { ok: false, kind: 'aborted', retryable: false, detail: 'aborted' };
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e.cause?.code ?? e.code;
  const message = e.cause?.message ?? e.message ?? String(err);
  return { ok: false, kind: 'network', retryable: true, detail: code ? `${code} (${message})` : message };
}

function errorText(text: string): string {
  try {
    const v = JSON.parse(text) as { error?: unknown };
    if (typeof v.error === 'string') return v.error.slice(0, 200);
  } catch {
    // not JSON: show the start of it
  }
  return text.slice(0, 200);
}
