// The HTTP layer every protocol shares: undici pools sized for thousands of long-polls, one
// request call that resolves to an answer or a typed Failure (never throws), the status policy
// (5xx, 408, 429 and network errors are retried; other 4xx are not), and the probe's trace.
// undici's own retry interceptor is deliberately not used: the virtual users own backoff.

import { Pool, type Dispatcher } from 'undici';
import type { Failure, TraceStep } from './types.js';

/** Poll pools; each holds about (virtual users / pollShards) connections. */
const pollShards = 64;
const traceLimit = 600;

export interface TargetHttpOptions {
  url: string;
  headers: Readonly<Record<string, string>>;
  pollTimeoutS: number;
  requestTimeoutMs: number;
  publishConnections: number;
  dispatcher?: Dispatcher;
  trace?: (step: TraceStep) => void;
}

export interface HttpRequest {
  /** For the trace: 'publish', 'poll', 'handshake', ... */
  step: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
  /** Appended to the target URL's path; may carry a query string. */
  path: string;
  headers?: Readonly<Record<string, string>>;
  body?: string;
  signal?: AbortSignal;
  /** Defaults: requestTimeoutMs for short requests, pollLimitMs for polls (`dispatcher` from pollDispatcher()). */
  timeoutMs?: number;
  dispatcher?: Dispatcher;
}

export interface HttpAnswer {
  kind: 'answer';
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The trace entry of this exchange when tracing; a protocol sets `extracted` once it has read the answer. */
  trace?: TraceStep;
}

/** How long a long-poll of `timeoutS` may stay silent before the client gives up on it: 15 s of slack. */
export function pollLimitMs(timeoutS: number): number {
  return (timeoutS + 15) * 1000;
}

/**
 * Long-polls go through `pollShards` pools, subscribers assigned round robin: an undici Pool looks
 * for a free connection by scanning all of its connections on every request, so one pool holding
 * 20k long-polls would cost O(virtual users) per request. Short requests have a pool of their own.
 */
export class TargetHttp {
  readonly origin: string;
  readonly basePath: string;
  readonly pollLimitMs: number;
  private readonly shortDispatcher: Dispatcher;
  private readonly ownsDispatchers: boolean;
  private readonly pollPools: Pool[] = [];
  private nextPollShard = 0;

  constructor(private readonly options: TargetHttpOptions) {
    const url = new URL(options.url.replace(/\/+$/, ''));
    this.origin = url.origin;
    this.basePath = url.pathname === '/' ? '' : url.pathname;
    // headersTimeout/bodyTimeout above the poll timeout on purpose (25 s polls -> 40 s): a long-poll
    // that stays silent for its timeout is healthy, and the bus may answer a little after it.
    this.pollLimitMs = pollLimitMs(options.pollTimeoutS);
    this.ownsDispatchers = options.dispatcher === undefined;
    this.shortDispatcher =
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

  /** The full URL of a path, as printed by the probe. */
  url(path: string): string {
    return this.origin + this.basePath + path;
  }

  /** The dispatcher for one subscriber's long-polls (closed with this layer). */
  pollDispatcher(): Dispatcher {
    if (this.options.dispatcher) return this.options.dispatcher;
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

  /** One exchange. Resolves to the answer whatever its status, or to a Failure for network trouble and aborts. */
  async request(r: HttpRequest): Promise<HttpAnswer | Failure> {
    const dispatcher = r.dispatcher ?? this.shortDispatcher;
    const timeoutMs = r.timeoutMs ?? (r.dispatcher && r.dispatcher !== this.shortDispatcher ? this.pollLimitMs : this.options.requestTimeoutMs);
    const trace = this.options.trace;
    const started = trace ? performance.now() : 0;
    let res: Dispatcher.ResponseData;
    let text: string;
    try {
      res = await dispatcher.request({
        origin: this.origin,
        path: this.basePath + r.path,
        method: r.method,
        body: r.body ?? null,
        headers: r.headers ? { ...this.options.headers, ...r.headers } : this.options.headers,
        signal: r.signal ?? null,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      text = await res.body.text();
    } catch (err) {
      const failure = networkFailure(err, r.signal);
      if (trace) trace({ ...this.traceBase(r, started), error: failure.kind === 'aborted' ? 'aborted' : failure.detail });
      return failure;
    }
    const answer: HttpAnswer = { kind: 'answer', status: res.statusCode, headers: res.headers, text };
    if (trace) {
      answer.trace = { ...this.traceBase(r, started), status: res.statusCode, responseBody: clip(text) };
      trace(answer.trace);
    }
    return answer;
  }

  async close(): Promise<void> {
    if (!this.ownsDispatchers) return;
    const all = [this.shortDispatcher, ...this.pollPools];
    this.pollPools.length = 0;
    await Promise.all(all.map((d) => d.destroy().catch(() => undefined)));
  }

  private traceBase(r: HttpRequest, started: number): TraceStep {
    const step: TraceStep = { step: r.step, method: r.method, url: this.url(r.path), ms: performance.now() - started };
    if (r.body !== undefined) step.requestBody = clip(r.body);
    return step;
  }
}

/** The status policy shared by every protocol: which non-success statuses are retried. */
export function statusFailure(a: HttpAnswer, what: string): Failure {
  const status = a.status;
  const detail = `${what}: HTTP ${status}${a.text ? `: ${errorText(a.text)}` : ''}`;
  if (status >= 500 || status === 429 || status === 408) {
    const retryAfter = a.headers['retry-after'];
    const failure: Failure = { kind: 'retry', status, detail };
    const ra = Array.isArray(retryAfter) ? retryAfter[0] : retryAfter;
    if (ra !== undefined) failure.retryAfter = ra;
    return failure;
  }
  return { kind: 'fatal', status, detail };
}

/** An answer with a success status that cannot be understood: the bus does not speak the protocol as configured. */
export function unreadable(a: HttpAnswer, what: string): Failure {
  return { kind: 'fatal', status: a.status, detail: `${what}: ${clip(a.text, 200) || 'empty body'}` };
}

export function header(a: HttpAnswer, name: string): string | undefined {
  const v = a.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

function networkFailure(err: unknown, signal: AbortSignal | undefined): Failure {
  if (signal?.aborted) return { kind: 'aborted' };
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e.cause?.code ?? e.code;
  const message = e.cause?.message ?? e.message ?? String(err);
  return { kind: 'retry', detail: code ? `${code} (${message})` : message };
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

function clip(text: string, limit = traceLimit): string {
  return text.length > limit ? `${text.slice(0, limit)}... (${text.length} bytes)` : text;
}
