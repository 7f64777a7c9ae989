// Declarative target profiles against real servers: examples/profiles/v1.json behaves as the
// built-in v1 target on the embedded bus, the in-house example speaks to a small node:http bus
// written here, and examples/profiles/nchan.json matches the built-in nchan on real nginx + Nchan.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseFault, startBus, type RunningBus } from '../../bus/index.js';
import { createTarget, type PollOutcome, type ReceivedMessage, type Target, type TargetSession } from '../../replay/target/index.js';
import type { OutgoingMessage } from '../../replay/target/types.js';
import { nchanAvailable, startNchan } from '../servers/nginx-nchan.js';
import type { TargetServer } from '../servers/types.js';

const v1Profile = 'examples/profiles/v1.json';
const nchanProfile = 'examples/profiles/nchan.json';
const inHouseProfile = 'examples/profiles/in-house.json';

const targets: Target[] = [];
afterEach(async () => {
  await Promise.all(targets.splice(0).map((t) => t.close()));
});

async function target(protocol: string, url: string, pollTimeoutS = 1, options: Record<string, string> = {}): Promise<Target> {
  const t = await createTarget({ protocol, url, headers: {}, pollTimeoutS, requestTimeoutMs: 5_000, publishConnections: 4, options });
  targets.push(t);
  return t;
}

const signal = (): AbortSignal => AbortSignal.timeout(20_000);
const msg = (id: number, topic: string, from = 'learner-1'): OutgoingMessage => ({ id, topic, sentMs: 1_000 + id, from });

/** Polls until `want` messages arrived (bounded in polls), returning what each poll gave. */
async function pollUntil(session: TargetSession, want: number, maxPolls = 40): Promise<{ got: ReceivedMessage[]; outcomes: PollOutcome[] }> {
  const got: ReceivedMessage[] = [];
  const outcomes: PollOutcome[] = [];
  for (let i = 0; i < maxPolls && got.length < want; i++) {
    const o = await session.poll(signal());
    outcomes.push(o);
    if (o.kind === 'messages') got.push(...o.messages);
    else if (o.kind !== 'empty') throw new Error(`poll failed: ${JSON.stringify(o)}`);
  }
  return { got, outcomes };
}

/** Ten publishes of five messages over three topics, each followed by one poll: what every poll delivered. */
async function cursorScenario(t: Target, topics: readonly string[]): Promise<ReceivedMessage[][]> {
  const session = t.subscribe('proctor-1', topics);
  expect(await session.open(signal())).toEqual({ kind: 'ok' });
  const perPoll: ReceivedMessage[][] = [];
  let id = 1;
  for (let round = 0; round < 10; round++) {
    const batch = Array.from({ length: 5 }, (_, i) => msg(id++, topics[(round + i) % topics.length]!));
    expect(await t.publish('learner-1', batch, signal())).toEqual({ kind: 'ok' });
    const { got } = await pollUntil(session, 5, 5);
    perPoll.push(got);
  }
  // Nothing is left: the next poll times out empty (pollTimeoutS 1).
  expect(await session.poll(signal())).toEqual({ kind: 'empty' });
  await session.close();
  return perPoll;
}

describe('examples/profiles/v1.json on the embedded bus, beside the built-in v1', () => {
  let bus: RunningBus;
  beforeAll(async () => {
    bus = await startBus({ port: 0 });
  });
  afterAll(async () => {
    await bus.close();
  });

  it('delivers the same ids, in the same polls, with cursors resumed across polls', async () => {
    const results: Record<string, ReceivedMessage[][]> = {};
    for (const protocol of ['v1', v1Profile]) {
      const t = await target(protocol, bus.url);
      const run = protocol === 'v1' ? 'ra' : 'rb';
      const topics = [`${run}.c1.l1.events`, `${run}.c1.l2.events`, `${run}.c1.p1.control`];
      const perPoll = await cursorScenario(t, topics);
      // Same shape for both runs: compare with the run prefix taken out.
      results[protocol] = perPoll.map((poll) => poll.map((m) => ({ ...m, topic: m.topic.slice(3), ...(m.deliveredOn !== undefined ? { deliveredOn: m.deliveredOn.slice(3) } : {}) })));
      const ids = perPoll.flat().map((m) => m.id);
      // v1 answers topic by topic, so ids interleave; all 50 arrive, each once.
      expect([...ids].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      for (const m of perPoll.flat()) expect(m.deliveredOn).toBe(m.topic);
    }
    expect(results[v1Profile]).toEqual(results.v1);
    expect((await target(v1Profile, bus.url)).protocol).toBe('profile:v1');
  });

  it('a message published before the subscriber polls is still delivered (cursor 0), once', async () => {
    for (const protocol of ['v1', v1Profile]) {
      const t = await target(protocol, bus.url);
      const topic = `early-${protocol === 'v1' ? 'a' : 'b'}.events`;
      const session = t.subscribe('p', [topic]);
      expect(await t.publish('l', [msg(7, topic), msg(8, topic)], signal())).toEqual({ kind: 'ok' });
      expect(await session.poll(signal())).toEqual({ kind: 'messages', messages: [{ id: 7, topic, deliveredOn: topic }, { id: 8, topic, deliveredOn: topic }], unidentified: 0 });
      expect(await session.poll(signal())).toEqual({ kind: 'empty' });
    }
  });

  it('4xx is fatal for both, with the same status', async () => {
    const tooLong = 'x'.repeat(1_100);
    for (const protocol of ['v1', v1Profile]) {
      const t = await target(protocol, bus.url);
      const pub = await t.publish('l', [msg(1, tooLong)], signal());
      expect(pub).toMatchObject({ kind: 'fatal', status: 400, stored: 0 });
      const poll = await t.subscribe('p', [tooLong]).poll(signal());
      expect(poll).toMatchObject({ kind: 'fatal', status: 400 });
    }
  });
});

describe('examples/profiles/v1.json on a failing bus', () => {
  let bus: RunningBus;
  beforeAll(async () => {
    bus = await startBus({ port: 0, faults: parseFault('error=1') });
  });
  afterAll(async () => {
    await bus.close();
  });

  it('5xx is retried for both, with Retry-After', async () => {
    for (const protocol of ['v1', v1Profile]) {
      const t = await target(protocol, bus.url);
      expect(await t.publish('l', [msg(1, 'a.events')], signal())).toMatchObject({ kind: 'retry', status: 503, retryAfter: '1', stored: 0 });
      expect(await t.subscribe('p', ['a.events']).poll(signal())).toMatchObject({ kind: 'retry', status: 503, retryAfter: '1' });
    }
  });
});

/**
 * The made-up in-house bus of examples/profiles/in-house.json: POST /events/publish?topics=CH with
 * {"events": [{"key", "body"}]} -> 202; GET /events/subscribe?topics=A,B&wait=S&token=T -> 200
 * {"events": [{"topic", "body"}], "next": token}, or 204 after `wait` seconds with nothing.
 */
function startInHouseBus(): Promise<{ url: string; conflictOn: Set<number>; inject(topic: string, body: string): void; close(): Promise<void> }> {
  const log: Array<{ seq: number; topic: string; body: string }> = [];
  const waiters = new Set<() => void>();
  const conflictOn = new Set<number>();
  let publishes = 0;
  const append = (topic: string, body: string): void => {
    log.push({ seq: log.length + 1, topic, body });
    for (const wake of [...waiters]) wake();
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const send = (status: number, body?: unknown): void => {
      res.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' });
      res.end(body === undefined ? undefined : JSON.stringify(body));
    };
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      if (req.method === 'POST' && url.pathname === '/events/publish') {
        publishes++;
        const topic = url.searchParams.get('topics');
        if (!topic || !req.headers['x-publisher']) return send(400, { error: 'topics and x-publisher required' });
        if (conflictOn.has(publishes)) return send(409, { error: 'try again' });
        const events = (JSON.parse(text) as { events: Array<{ key: string; body: string }> }).events;
        for (const e of events) append(topic, e.body);
        return send(202, { stored: events.length });
      }
      if (req.method === 'GET' && url.pathname === '/events/subscribe') {
        const topics = new Set((url.searchParams.get('topics') ?? '').split(','));
        const token = url.searchParams.get('token');
        const after = token === null ? 0 : Number(token.replace(/^tok-/, ''));
        const waitS = Number(url.searchParams.get('wait') ?? '5');
        if (!Number.isInteger(after) || topics.has('')) return send(400, { error: 'bad topics or token' });
        const answer = (): boolean => {
          const events = log.filter((e) => e.seq > after && topics.has(e.topic));
          if (events.length === 0) return false;
          send(200, { events: events.map((e) => ({ topic: e.topic, body: e.body })), next: `tok-${log.length}` });
          return true;
        };
        if (answer()) return;
        const timer = setTimeout(() => {
          waiters.delete(wake);
          send(204);
        }, waitS * 1000);
        const wake = (): void => {
          if (answer()) {
            clearTimeout(timer);
            waiters.delete(wake);
          }
        };
        waiters.add(wake);
        return;
      }
      send(404, { error: 'no such path' });
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        conflictOn,
        inject: append,
        close: () => new Promise<void>((done) => { server.closeAllConnections(); server.close(() => done()); }),
      });
    });
  });
}

describe('examples/profiles/in-house.json on a small in-house bus', () => {
  it('publishes runs of one topic, polls with an opaque token kept over empty answers, maps channels back to topics', async () => {
    const bus = await startInHouseBus();
    try {
      const t = await target(inHouseProfile, bus.url, 1);
      expect(t.protocol).toBe('profile:in-house');
      expect(t.maxTopicsPerPoll).toBe(50);
      const topics = ['r1.c1.l1.events', 'r1.c1.l2.events'];
      const session = t.subscribe('proctor-1', topics);
      expect(await session.open(signal())).toEqual({ kind: 'ok' });
      expect(await t.publish('l1', [msg(1, topics[0]!), msg(2, topics[0]!), msg(3, topics[1]!)], signal())).toEqual({ kind: 'ok' });
      expect(await session.poll(signal())).toEqual({
        kind: 'messages',
        messages: [
          { id: 1, topic: topics[0], deliveredOn: topics[0] },
          { id: 2, topic: topics[0], deliveredOn: topics[0] },
          { id: 3, topic: topics[1], deliveredOn: topics[1] },
        ],
        unidentified: 0,
      });
      // Nothing new within wait=1: 204, an empty poll; the token stays.
      expect(await session.poll(signal())).toEqual({ kind: 'empty' });
      // A stranger's message on a watched channel is counted, not trusted.
      bus.inject('school/r1/c1/l2/events', 'hello');
      expect(await t.publish('l2', [msg(4, topics[1]!)], signal())).toEqual({ kind: 'ok' });
      expect(await session.poll(signal())).toEqual({ kind: 'messages', messages: [{ id: 4, topic: topics[1], deliveredOn: topics[1] }], unidentified: 1 });

      // 409 is listed as retry: the first run of the batch was stored, the rest is to be retried.
      bus.conflictOn.add(5);
      const out = await t.publish('l1', [msg(5, topics[0]!), msg(6, topics[1]!), msg(7, topics[0]!)], signal());
      expect(out).toMatchObject({ kind: 'retry', status: 409, stored: 1 });
      expect(await t.publish('l1', [msg(6, topics[1]!), msg(7, topics[0]!)], signal())).toEqual({ kind: 'ok' });
      const { got } = await pollUntil(session, 3, 5);
      expect(got.map((m) => m.id)).toEqual([5, 6, 7]);
      expect(await session.poll(signal())).toEqual({ kind: 'empty' });
    } finally {
      await bus.close();
    }
  });
});

describe.skipIf(!nchanAvailable)('examples/profiles/nchan.json on nginx + Nchan, beside the built-in nchan', () => {
  let server: TargetServer;
  beforeAll(async () => {
    server = await startNchan({ timeoutS: 2 });
  });
  afterAll(async () => {
    await server.stop();
  });

  it('delivers the same ids in the same order, an empty poll on timeout, and the same after it', async () => {
    const results: Record<string, Array<{ id: number; topic: string }>> = {};
    const afterEmpty: Record<string, number[]> = {};
    for (const protocol of ['nchan', nchanProfile]) {
      const t = await target(protocol, server.url, 2, protocol === 'nchan' ? server.targetOptions : {});
      const run = protocol === 'nchan' ? 'na' : 'nb';
      const topics = [`${run}.c1.l1.events`, `${run}.c1.l2.events`, `${run}.c1.p1.control`];
      const session = t.subscribe('proctor-1', topics);
      expect(await session.open(signal())).toEqual({ kind: 'ok' });
      const batch = Array.from({ length: 12 }, (_, i) => msg(i + 1, topics[i % 3]!));
      expect(await t.publish('l1', batch, signal())).toEqual({ kind: 'ok' });
      const { got } = await pollUntil(session, 12, 30);
      results[protocol] = got.map((m) => ({ id: m.id, topic: m.topic.slice(3) }));
      expect(got.map((m) => m.id).sort((a, b) => a - b)).toEqual(batch.map((m) => m.id));
      // 408 after nchan_subscriber_timeout (2 s): an empty poll.
      expect(await session.poll(signal())).toEqual({ kind: 'empty' });
      // One more message after the empty poll. Measured on Nchan 1.3.6: neither target gets it
      // within three polls (reported; see the final report). What is checked here is that the
      // profile and the built-in agree.
      expect(await t.publish('l1', [msg(13, topics[1]!)], signal())).toEqual({ kind: 'ok' });
      afterEmpty[protocol] = (await pollUntil(session, 1, 3)).got.map((m) => m.id);
    }
    expect(results[nchanProfile]).toEqual(results.nchan);
    expect(afterEmpty[nchanProfile]).toEqual(afterEmpty.nchan);
  });
});
