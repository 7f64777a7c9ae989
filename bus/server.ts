// The embedded Event bus: protocol v1 over node:http (docs/protocol.md). Topics hold their
// retained messages; a publish wakes only the long-polls waiting on its topics.

import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RehearseError } from '../core/errors.js';
import { systemClock, type Clock } from '../core/clock.js';
import { FaultInjector } from './faults.js';
import { emptyStats, renderMetrics, type BusStats } from './metrics.js';
import { parsePublish, parseSubscribe, type PublishRequest } from './protocol.js';
import { resolveBusOptions, type BusOptions, type ResolvedBusOptions } from './options.js';
import { TopicLog } from './topic-log.js';

export interface RunningBus {
  /** http://HOST:PORT, without a trailing slash. */
  url: string;
  /** Answers open polls with what they have, stops listening and resolves when every socket is closed. */
  close(): Promise<void>;
  /** The counters behind /metrics. */
  stats(): BusStats;
}

interface TopicState {
  log: TopicLog;
  /** Polls waiting on this topic: the only ones a publish to it wakes. */
  waiters: Set<Poll>;
}

interface Poll {
  topics: Array<{ topic: TopicState; cursor: number }>;
  res: ServerResponse;
  timer: NodeJS.Timeout | undefined;
  waiting: boolean;
  done: boolean;
}

/** Retention by age is also enforced on idle topics, this often. */
const sweepIntervalMs = 1000;
/** A body declared this many times over the limit is refused without reading it. */
const drainFactor = 8;

export async function startBus(options: BusOptions = {}): Promise<RunningBus> {
  const bus = new Bus(resolveBusOptions(options), options.clock ?? systemClock);
  return bus.listen();
}

class Bus {
  private readonly server: http.Server;
  private readonly topics = new Map<string, TopicState>();
  /**
   * Above every seq a forgotten topic ever had. A topic created later starts numbering here, so a
   * cursor kept from before it was forgotten is never ahead of its new messages (docs/protocol.md,
   * Retention): one number instead of remembering every topic's last seq.
   */
  private forgottenSeqFloor = 0;
  private readonly counters = emptyStats();
  private readonly faults: FaultInjector;
  private readonly startMs: number;
  private retained = 0;
  private closing = false;
  private closed: Promise<void> | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly heldAnswers = new Map<NodeJS.Timeout, () => void>();
  private readonly stalled = new Set<ServerResponse>();
  private readonly polls = new Set<Poll>();
  /** The `service` fault's queue (FIFO from serviceHead) and when its server is next free. */
  private readonly serviceQueue: Array<{ servedAt: number; m: { topic: string; id: string; dataJson: string }; fate: { dup: boolean; delayMs: number } }> = [];
  private serviceHead = 0;
  private serviceFreeAtMs = 0;
  private serviceTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly opts: ResolvedBusOptions,
    private readonly clock: Clock,
  ) {
    this.faults = new FaultInjector(opts.faults, opts.seed);
    this.startMs = clock.monoMs();
    this.server = http.createServer({ keepAlive: true, noDelay: true }, (req, res) => this.guarded(res, () => this.onRequest(req, res)));
    // Long-polls keep a request open for up to maxPollTimeoutS while the socket is silent, so no
    // socket inactivity timeout; the request itself (headers and body) must still arrive promptly.
    this.server.timeout = 0;
    this.server.headersTimeout = 15_000;
    this.server.requestTimeout = 30_000;
    this.server.keepAliveTimeout = 30_000;
    this.server.maxHeadersCount = 64;
    this.server.maxRequestsPerSocket = 0;
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      // Also emitted for plain resets (a client hanging up): those get no answer and no count.
      if (err.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy();
        return;
      }
      const status =
        err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
      this.counters.responses4xx++;
      socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    });
  }

  async listen(): Promise<RunningBus> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        const at = `${this.opts.host}:${this.opts.port}`;
        const message =
          err.code === 'EADDRINUSE'
            ? `--port: ${at} is already in use; pick another port or 0 for any free one`
            : err.code === 'EACCES'
              ? `--port: ${at} needs privileges; pick a port above 1023 or 0 for any free one`
              : `--host: cannot listen on ${at} (${err.code ?? err.message}); give an address of this machine, e.g. 127.0.0.1`;
        reject(new RehearseError('REHEARSE_USAGE', message, { cause: err }));
      };
      this.server.once('error', onError);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    const sweep = setInterval(() => this.sweep(), sweepIntervalMs);
    sweep.unref();
    this.timers.add(sweep);
    const port = (this.server.address() as AddressInfo).port;
    const host = this.opts.host.includes(':') ? `[${this.opts.host}]` : this.opts.host;
    return { url: `http://${host}:${port}`, close: () => this.close(), stats: () => this.stats() };
  }

  stats(): BusStats {
    return {
      ...this.counters,
      openPolls: this.polls.size,
      retainedMessages: this.retained,
      topics: this.topics.size,
      faults: { ...this.counters.faults },
    };
  }

  // ---- HTTP ----

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (this.closing) {
      req.resume();
      this.sendError(res, 503, 'the bus is shutting down');
      return;
    }
    const isPublish = path === '/v1/events/publish';
    if (isPublish || path === '/v1/events/subscribe') {
      if (req.method !== 'POST') return this.methodNotAllowed(req, res, 'POST');
      const stallMs = this.faults.stallRemainingMs(this.clock.monoMs() - this.startMs);
      if (stallMs > 0) {
        this.counters.faults.stall++;
        req.resume();
        this.stalled.add(res);
        // Each stalled request is cut off when its window ends (the client sees a dropped
        // connection). A timer per request, not one per window: a request that arrives just as a
        // window's timer fires must not be left hanging forever.
        const cut = setTimeout(() => res.socket?.destroy(), Math.ceil(stallMs) + 1);
        cut.unref();
        res.on('close', () => {
          clearTimeout(cut);
          this.stalled.delete(res);
        });
        return;
      }
      this.readBody(req, res, (text) => (isPublish ? this.publish(res, text) : this.subscribe(res, text)));
      return;
    }
    if (path === '/healthz') {
      if (req.method !== 'GET' && req.method !== 'HEAD') return this.methodNotAllowed(req, res, 'GET');
      req.resume();
      this.send(res, 200, '{"status":"ok","protocol":1}');
      return;
    }
    if (path === '/metrics') {
      if (req.method !== 'GET' && req.method !== 'HEAD') return this.methodNotAllowed(req, res, 'GET');
      req.resume();
      this.send(res, 200, renderMetrics(this.stats(), process.memoryUsage.rss()), 'text/plain; version=0.0.4; charset=utf-8');
      return;
    }
    req.resume();
    this.sendError(res, 404, `no such path: ${path} (protocol v1 serves POST /v1/events/publish, POST /v1/events/subscribe, GET /healthz, GET /metrics)`);
  }

  private methodNotAllowed(req: IncomingMessage, res: ServerResponse, allow: string): void {
    req.resume();
    this.sendError(res, 405, `${req.method ?? '?'} is not allowed here; use ${allow}`, { allow });
  }

  private readBody(req: IncomingMessage, res: ServerResponse, onBody: (text: string) => void): void {
    const limit = this.opts.maxBodyBytes;
    const tooLarge = (): void =>
      this.sendError(res, 413, `request body is larger than ${limit} bytes`, { connection: 'close' });
    const declared = Number(req.headers['content-length'] ?? Number.NaN);
    if (declared > limit * drainFactor) {
      // Not worth reading; the client sees the 413 or, if still sending, a closed connection.
      tooLarge();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (over) {
        if (size > limit * drainFactor) req.destroy();
        return;
      }
      if (size > limit) {
        over = true;
        chunks.length = 0;
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (over) return tooLarge();
      if (this.closing) return this.sendError(res, 503, 'the bus is shutting down');
      const text = chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8');
      // The request object lives as long as its long-poll: do not keep the raw body with it.
      chunks.length = 0;
      this.guarded(res, () => onBody(text));
    });
    req.on('error', () => {
      // The client went away mid-body: nothing to answer.
    });
  }

  /**
   * Runs one request's handling so that a bug or an input nobody foresaw costs that request a 500,
   * never the bus process and every message it retains.
   */
  private guarded(res: ServerResponse, handle: () => void): void {
    try {
      handle();
    } catch (err) {
      if (!res.headersSent && !res.destroyed) {
        this.sendError(res, 500, `internal error in the bus while handling this request (${(err as Error)?.message ?? String(err)}); the bus keeps serving`);
      } else {
        res.destroy();
      }
    }
  }

  private send(res: ServerResponse, status: number, body: string, contentType = 'application/json', headers: Record<string, string> = {}): void {
    if (res.headersSent || res.destroyed) return;
    if (status >= 500) this.counters.responses5xx++;
    else if (status >= 400) this.counters.responses4xx++;
    const h: Record<string, string | number> = {
      'content-type': contentType,
      'content-length': Buffer.byteLength(body),
      ...headers,
    };
    if (this.closing) h.connection = 'close';
    res.writeHead(status, h);
    res.end(body);
  }

  private sendError(res: ServerResponse, status: number, error: string, headers: Record<string, string> = {}): void {
    this.send(res, status, JSON.stringify({ error }), 'application/json', headers);
  }

  private overloaded(res: ServerResponse, error: string): void {
    this.sendError(res, 503, error, { 'retry-after': '1' });
  }

  // ---- publish ----

  private publish(res: ServerResponse, text: string): void {
    const parsed = parsePublish(text);
    if (!parsed.ok) return this.sendError(res, 400, parsed.error);
    if (this.faults.requestFails()) {
      this.counters.faults.error++;
      return this.overloaded(res, 'injected fault: error (nothing was published)');
    }
    const req: PublishRequest = parsed.value;
    this.counters.publishRequests++;
    this.counters.publishedMessages += req.messages.length;
    const touched = new Set<TopicState>();
    for (const m of req.messages) {
      const fate = this.faults.messageFate();
      if (fate.drop) {
        this.counters.faults.drop++;
        continue;
      }
      if (this.opts.faults.servicePerS !== undefined) {
        this.enqueueService(m, fate);
        continue;
      }
      const topic = this.accept(m, fate);
      if (topic) touched.add(topic);
    }
    // Wake after the whole batch is stored, so one answer carries it rather than its first message.
    for (const topic of touched) this.wake(topic);
    this.send(res, 200, `{"accepted":${req.messages.length}}`);
  }

  /** Stores a message that survived `drop` (or holds it aside for `delay`); returns the topic to wake, if stored now. */
  private accept(m: { topic: string; id: string; dataJson: string }, fate: { dup: boolean; delayMs: number }): TopicState | undefined {
    if (fate.delayMs > 0) {
      this.counters.faults.delay++;
      this.counters.delayedPending++;
      const t = setTimeout(() => {
        this.timers.delete(t);
        this.counters.delayedPending--;
        // Looked up now, not at publish: the topic may have been forgotten while this waited.
        const topic = this.topic(m.topic);
        this.store(topic, m.id, m.dataJson, fate.dup);
        this.wake(topic);
      }, fate.delayMs);
      t.unref();
      this.timers.add(t);
      return undefined;
    }
    const topic = this.topic(m.topic);
    this.store(topic, m.id, m.dataJson, fate.dup);
    return topic;
  }

  /**
   * The `service` fault: one server taking messages one after another, each 1/R s, in arrival
   * order. A message becomes visible when its turn is served; the publish is answered at once.
   */
  private enqueueService(m: { topic: string; id: string; dataJson: string }, fate: { dup: boolean; delayMs: number }): void {
    const now = this.clock.monoMs();
    const servedAt = Math.max(now, this.serviceFreeAtMs) + 1000 / this.opts.faults.servicePerS!;
    if (this.serviceFreeAtMs > now) this.counters.faults.service++;
    this.serviceFreeAtMs = servedAt;
    this.serviceQueue.push({ servedAt, m, fate });
    this.counters.serviceQueued = this.serviceQueue.length - this.serviceHead;
    if (this.serviceTimer === undefined) this.armService();
  }

  private armService(): void {
    const next = this.serviceQueue[this.serviceHead];
    if (!next) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.serviceTimer = undefined;
      const now = this.clock.monoMs();
      const touched = new Set<TopicState>();
      while (this.serviceHead < this.serviceQueue.length && this.serviceQueue[this.serviceHead]!.servedAt <= now) {
        const { m, fate } = this.serviceQueue[this.serviceHead++]!;
        const topic = this.accept(m, fate);
        if (topic) touched.add(topic);
      }
      // Compact now and then, so the array does not keep every served message.
      if (this.serviceHead > 4096 && this.serviceHead * 2 > this.serviceQueue.length) {
        this.serviceQueue.splice(0, this.serviceHead);
        this.serviceHead = 0;
      }
      this.counters.serviceQueued = this.serviceQueue.length - this.serviceHead;
      for (const topic of touched) this.wake(topic);
      this.armService();
    }, Math.max(0, next.servedAt - this.clock.monoMs()));
    t.unref();
    this.timers.add(t);
    this.serviceTimer = t;
  }

  private store(topic: TopicState, id: string, dataJson: string, dup: boolean): void {
    const now = this.clock.monoMs();
    topic.log.append(id, dataJson, now);
    this.retained++;
    if (dup) {
      this.counters.faults.dup++;
      topic.log.append(id, dataJson, now);
      this.retained++;
    }
    this.trim(topic, now);
  }

  private trim(topic: TopicState, now: number): void {
    const n = topic.log.trim(this.opts.retention.messages, this.opts.retention.ms, now);
    this.retained -= n;
    this.counters.trimmedMessages += n;
  }

  private sweep(): void {
    const now = this.clock.monoMs();
    for (const [name, topic] of this.topics) {
      this.trim(topic, now);
      // Nothing retained and nobody waiting: all the topic still holds is its last seq, which
      // the floor keeps for every forgotten topic at once.
      if (topic.log.size === 0 && topic.waiters.size === 0) {
        if (topic.log.lastSeq > this.forgottenSeqFloor) this.forgottenSeqFloor = topic.log.lastSeq;
        this.topics.delete(name);
      }
    }
  }

  private topic(name: string): TopicState {
    let t = this.topics.get(name);
    if (!t) {
      t = { log: new TopicLog(name, this.forgottenSeqFloor), waiters: new Set() };
      this.topics.set(name, t);
    }
    return t;
  }

  private wake(topic: TopicState): void {
    if (topic.waiters.size === 0) return;
    for (const poll of [...topic.waiters]) this.answer(poll);
  }

  // ---- subscribe ----

  private subscribe(res: ServerResponse, text: string): void {
    const parsed = parseSubscribe(text, this.opts.maxPollTimeoutS);
    if (!parsed.ok) return this.sendError(res, 400, parsed.error);
    if (this.faults.requestFails()) {
      this.counters.faults.error++;
      return this.overloaded(res, 'injected fault: error');
    }
    this.counters.subscribeRequests++;
    const now = this.clock.monoMs();
    const poll: Poll = { topics: [], res, timer: undefined, waiting: false, done: false };
    let ready = false;
    for (const [name, cursor] of parsed.value.topics) {
      const topic = this.topic(name);
      // Age trimming happens here too, so a cursor never reaches a message past retention.
      this.trim(topic, now);
      const c = topic.log.normalizeCursor(cursor);
      poll.topics.push({ topic, cursor: c });
      if (topic.log.lastSeq > c) ready = true;
    }
    const timeoutS = parsed.value.timeoutS ?? this.opts.pollTimeoutS;
    if (ready || timeoutS === 0) return this.answer(poll);
    if (this.polls.size >= this.opts.maxPolls) {
      this.counters.faults.max_polls++;
      return this.overloaded(res, `too many open polls (the bus holds at most ${this.opts.maxPolls}, --max-polls)`);
    }
    poll.waiting = true;
    this.polls.add(poll);
    for (const { topic } of poll.topics) topic.waiters.add(poll);
    poll.timer = setTimeout(() => this.guarded(res, () => this.answer(poll)), timeoutS * 1000);
    // A client that hangs up stops being a waiter at once, not at its timeout.
    res.on('close', () => {
      if (!poll.done) this.unregister(poll);
    });
  }

  private unregister(poll: Poll): void {
    poll.done = true;
    if (!poll.waiting) return;
    poll.waiting = false;
    if (poll.timer) clearTimeout(poll.timer);
    this.polls.delete(poll);
    for (const { topic } of poll.topics) topic.waiters.delete(poll);
  }

  private answer(poll: Poll): void {
    if (poll.done) return;
    this.unregister(poll);
    const parts: string[] = [];
    const cursors: string[] = [];
    let room = this.opts.maxMessagesPerAnswer;
    for (const { topic, cursor } of poll.topics) {
      const msgs = topic.log.after(cursor, room);
      room -= msgs.length;
      for (const m of msgs) parts.push(m.json);
      const next = msgs.length > 0 ? msgs[msgs.length - 1]!.seq : cursor;
      cursors.push(`${JSON.stringify(topic.log.name)}:${next}`);
    }
    const body = `{"messages":[${parts.join(',')}],"cursors":{${cursors.join(',')}}}`;
    this.counters.deliveredMessages += parts.length;
    const latency = parts.length > 0 && !this.closing ? this.faults.answerLatencyMs() : 0;
    if (latency <= 0) return this.send(poll.res, 200, body);
    this.counters.faults.latency++;
    const send = (): void => {
      clearTimeout(t);
      this.heldAnswers.delete(t);
      this.send(poll.res, 200, body);
    };
    const t = setTimeout(send, latency);
    this.heldAnswers.set(t, send);
  }

  // ---- shutdown ----

  private releaseStalled(): void {
    for (const res of this.stalled) res.socket?.destroy();
    this.stalled.clear();
  }

  private close(): Promise<void> {
    if (this.closed) return this.closed;
    this.closing = true;
    this.closed = new Promise<void>((resolve) => {
      for (const t of this.timers) clearTimeout(t);
      this.timers.clear();
      const serverClosed = new Promise<void>((r) => this.server.close(() => r()));
      // Open polls get what they have (nothing new, with their cursors) and connection: close.
      for (const poll of [...this.polls]) this.answer(poll);
      for (const send of [...this.heldAnswers.values()]) send();
      this.releaseStalled();
      this.server.closeIdleConnections();
      // A client still sending a body gets a little time, then its socket is cut.
      const cutoff = setTimeout(() => this.server.closeAllConnections(), 1000);
      cutoff.unref();
      void serverClosed.then(() => {
        clearTimeout(cutoff);
        resolve();
      });
    });
    return this.closed;
  }
}
