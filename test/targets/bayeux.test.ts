// The bayeux target against a real Faye 1.4 server (test/servers/faye.ts), at the Target API
// level: naming, round trips, many messages without loss or duplicates, empty connects, a server
// restart (re-handshake of subscribers and publishers), and the status policy. The advice rules
// Faye never sends (reconnect none, a non-zero interval) are checked against a small scripted
// Bayeux server on 127.0.0.1.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bayeuxChannel, bayeuxTopic } from '../../replay/target/bayeux.js';
import { createTarget } from '../../replay/target/index.js';
import type { OutgoingMessage, PollOutcome, ReceivedMessage, Target, TargetSession, TraceStep } from '../../replay/target/types.js';
import { startFaye } from '../servers/faye.js';
import type { TargetServer } from '../servers/types.js';

// Faye's own channel grammar is the oracle for "valid".
const fayeGrammar = createRequire(import.meta.url)('faye/src/protocol/grammar.js') as { CHANNEL_NAME: RegExp };

const targets: Target[] = [];
const servers: TargetServer[] = [];

async function bayeuxTarget(url: string, pollTimeoutS = 25, trace?: (s: TraceStep) => void): Promise<Target> {
  const t = await createTarget({ protocol: 'bayeux', url, headers: {}, pollTimeoutS, requestTimeoutMs: 5000, publishConnections: 8, ...(trace ? { trace } : {}) });
  targets.push(t);
  return t;
}

async function faye(opts: { timeoutS?: number; strictPublish?: boolean } = {}): Promise<TargetServer> {
  const s = await startFaye(opts);
  servers.push(s);
  return s;
}

afterEach(async () => {
  await Promise.all(targets.splice(0).map((t) => t.close()));
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

const signal = () => AbortSignal.timeout(60_000);

function message(id: number, topic: string, from = 'r1.c1.l1'): OutgoingMessage {
  return { id, topic, sentMs: performance.now(), from };
}

/** Polls until `done` says so, bounded in count and time; returns every message and outcome kind. */
async function pollUntil(session: TargetSession, done: (got: ReceivedMessage[]) => boolean, limits = { polls: 50, ms: 30_000 }) {
  const got: ReceivedMessage[] = [];
  const kinds: PollOutcome['kind'][] = [];
  let unidentified = 0;
  const deadline = Date.now() + limits.ms;
  for (let i = 0; i < limits.polls && Date.now() < deadline && !done(got); i++) {
    const o = await session.poll(signal());
    kinds.push(o.kind);
    if (o.kind === 'messages') {
      got.push(...o.messages);
      unidentified += o.unidentified;
    }
  }
  return { got, kinds, unidentified };
}

describe('bayeux channel naming', () => {
  it('maps every topic to a valid Bayeux channel, one-to-one and reversibly', async () => {
    const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-';
    const topics = new Set<string>(['r3f9a.c17.l4.events', 'r3f9a.c17.p2.control', '.', '..', 'a.', '.a', '-', '_', 'a-b_c.d']);
    // A seeded walk over the topic alphabet, so the same topics come out every run.
    let seed = 42;
    const next = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) >>> 8;
    for (let attempt = 0; attempt < 5000 && topics.size < 3000; attempt++) {
      let t = '';
      const len = 1 + (next() % 12);
      for (let i = 0; i < len; i++) t += alphabet[next() % alphabet.length];
      topics.add(t);
    }
    const channels = new Set<string>();
    for (const topic of topics) {
      const channel = bayeuxChannel(topic);
      expect(channel, topic).toMatch(fayeGrammar.CHANNEL_NAME);
      expect(channel.startsWith('/rehearse/')).toBe(true);
      expect(bayeuxTopic(channel)).toBe(topic);
      channels.add(channel);
    }
    expect(topics.size).toBe(3000);
    expect(channels.size).toBe(topics.size);

    // Characters outside the topic alphabet (and the escape characters themselves) stay one-to-one.
    const odd = ['a.b', 'a!b', 'a$b', 'a$0021b', 'a/b', 'a b', 'é'];
    const oddChannels = odd.map((t) => bayeuxChannel(t));
    expect(new Set(oddChannels).size).toBe(odd.length);
    for (let i = 0; i < odd.length; i++) {
      expect(oddChannels[i]).toMatch(fayeGrammar.CHANNEL_NAME);
      expect(bayeuxTopic(oddChannels[i]!)).toBe(odd[i]);
    }
    expect(bayeuxTopic('/other/a')).toBeUndefined();

    const target = await bayeuxTarget('http://127.0.0.1:9/faye');
    expect(target.channel('r3f9a.c17.l4.events')).toBe('/rehearse/r3f9a!c17!l4!events');
    await expect(createTarget({ protocol: 'bayeux', url: 'http://127.0.0.1:9/faye', headers: {}, pollTimeoutS: 25, requestTimeoutMs: 5000, publishConnections: 8, options: { 'channel-prefix': '/meta/x' } })).rejects.toThrow(/channel-prefix/);
    const prefixed = await createTarget({ protocol: 'bayeux', url: 'http://127.0.0.1:9/faye', headers: {}, pollTimeoutS: 25, requestTimeoutMs: 5000, publishConnections: 8, options: { 'channel-prefix': '/load/test' } });
    targets.push(prefixed);
    expect(prefixed.channel('a.b')).toBe('/load/test/a!b');
  });
});

describe('bayeux against Faye 1.4', () => {
  it('round-trips one message with its identity and the topic it was delivered on', async () => {
    const server = await faye();
    const steps: TraceStep[] = [];
    const target = await bayeuxTarget(server.url, 25, (s) => steps.push(s));
    const topic = 'r1.c1.l1.events';
    const session = target.subscribe('r1.c1.p1', [topic]);
    expect(await session.open(signal())).toEqual({ kind: 'ok' });
    expect(await target.publish('r1.c1.l1', [message(7, topic)], signal())).toEqual({ kind: 'ok' });
    const o = await session.poll(signal());
    expect(o).toEqual({ kind: 'messages', messages: [{ id: 7, topic, deliveredOn: topic }], unidentified: 0 });
    expect(await server.publishedCount()).toBe(1);

    // The probe's trace says what each exchange was and what rehearse read from it.
    expect(steps.map((s) => s.step)).toEqual(['handshake', 'subscribe', 'handshake', 'publish', 'poll']);
    expect(steps[0]!.extracted).toMatch(/^clientId \w+; advice reconnect retry, interval 0 ms, timeout 25000 ms$/);
    expect(steps[1]!.extracted).toMatch(/^1 subscription\(s\) acknowledged/);
    expect(steps[3]!.extracted).toBe('accepted 1 message(s)');
    expect(steps[4]!.extracted).toMatch(/^connected; 1 message\(s\): ids 7/);
    expect(steps[4]!.url).toBe(server.url);
    await session.close();
  });

  it("gives a session over several topics each topic's messages, on the right topic", async () => {
    const server = await faye();
    const target = await bayeuxTarget(server.url);
    const topics = ['r1.c1.l1.events', 'r1.c1.l2.events', 'r1.c1.l3.events'];
    const session = target.subscribe('r1.c1.p1', topics);
    expect(await session.open(signal())).toEqual({ kind: 'ok' });
    // One batch across all three topics, plus one on a topic nobody subscribed to.
    const batch = [message(1, topics[0]!), message(2, topics[1]!), message(3, topics[2]!), message(4, 'r1.c1.l9.events'), message(5, topics[1]!)];
    expect(await target.publish('r1.c1.l1', batch, signal())).toEqual({ kind: 'ok' });
    const { got, unidentified } = await pollUntil(session, (g) => g.length >= 4);
    expect(unidentified).toBe(0);
    expect([...got].sort((a, b) => a.id - b.id)).toEqual([
      { id: 1, topic: topics[0], deliveredOn: topics[0] },
      { id: 2, topic: topics[1], deliveredOn: topics[1] },
      { id: 3, topic: topics[2], deliveredOn: topics[2] },
      { id: 5, topic: topics[1], deliveredOn: topics[1] },
    ]);
    expect(await server.publishedCount()).toBe(5);
  });

  it('delivers many messages over many polls with no loss and no duplicate', async () => {
    const server = await faye();
    const target = await bayeuxTarget(server.url);
    const topics = ['r2.c1.l1.events', 'r2.c1.l2.events', 'r2.c1.l3.events'];
    const session = target.subscribe('r2.c1.p1', topics);
    expect(await session.open(signal())).toEqual({ kind: 'ok' });

    const total = 600;
    const publishing = (async () => {
      for (let first = 1; first <= total; first += 20) {
        const batch = Array.from({ length: 20 }, (_, i) => message(first + i, topics[(first + i) % topics.length]!, `r2.c1.l${((first + i) % 3) + 1}`));
        const o = await target.publish(batch[0]!.from, batch, signal());
        expect(o).toEqual({ kind: 'ok' });
      }
    })();
    const polled = pollUntil(session, (g) => g.length >= total, { polls: 1000, ms: 45_000 });
    await publishing;
    const { got, kinds, unidentified } = await polled;

    expect(unidentified).toBe(0);
    const ids = got.map((m) => m.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    for (const m of got) expect(m.deliveredOn).toBe(m.topic);
    expect(kinds.filter((k) => k === 'messages').length).toBeGreaterThan(1);
    expect(kinds.every((k) => k === 'messages' || k === 'empty')).toBe(true);
    expect(await server.publishedCount()).toBe(total);
  });

  it("answers 'empty' when a connect is held for the server's timeout and brings nothing", async () => {
    const server = await faye({ timeoutS: 2 });
    const target = await bayeuxTarget(server.url, 2);
    const session = target.subscribe('r1.c1.p1', ['r1.c1.l1.events']);
    expect(await session.open(signal())).toEqual({ kind: 'ok' });
    const started = performance.now();
    expect(await session.poll(signal())).toEqual({ kind: 'empty' });
    // Held by the server (about 2 s), not answered at once.
    expect(performance.now() - started).toBeGreaterThan(1500);
  });

  it('handshakes and subscribes again by itself after a server restart, then delivers again', async () => {
    const server = await faye({ timeoutS: 2 });
    const target = await bayeuxTarget(server.url, 2);
    const topic = 'r1.c1.l1.events';
    const session = target.subscribe('r1.c1.p1', [topic]);
    expect(await session.open(signal())).toEqual({ kind: 'ok' });
    expect(await target.publish('r1.c1.l1', [message(1, topic)], signal())).toEqual({ kind: 'ok' });
    expect((await pollUntil(session, (g) => g.length >= 1)).got.map((m) => m.id)).toEqual([1]);

    await server.restart();
    // The restarted Faye does not know the client: one poll says so ('retry'), a later one has
    // handshaken and subscribed again and is held empty for the server's 2 s.
    const after: PollOutcome[] = [];
    for (let i = 0; i < 10 && after.at(-1)?.kind !== 'empty'; i++) after.push(await session.poll(signal()));
    expect(after.at(-1)).toEqual({ kind: 'empty' });
    const forgot = after.find((o) => o.kind === 'retry');
    expect(forgot).toMatchObject({ kind: 'retry', detail: expect.stringMatching(/forgot client .*401:.*Unknown client/) });

    expect(await target.publish('r1.c1.l1', [message(2, topic)], signal())).toEqual({ kind: 'ok' });
    const { got } = await pollUntil(session, (g) => g.length >= 1);
    expect(got).toEqual([{ id: 2, topic, deliveredOn: topic }]);
    expect(await server.publishedCount()).toBe(1);
  });

  it('hands a publisher the server forgot a new client and sends the batch again (publish needs a client, as on CometD)', async () => {
    const server = await faye({ timeoutS: 2, strictPublish: true });
    const steps: TraceStep[] = [];
    const target = await bayeuxTarget(server.url, 2, (s) => steps.push(s));
    const topic = 'r1.c1.l1.events';
    expect(await target.publish('r1.c1.l1', [message(1, topic)], signal())).toEqual({ kind: 'ok' });
    await server.restart();
    const session = target.subscribe('r1.c1.p1', [topic]);
    expect(await session.open(signal())).toEqual({ kind: 'ok' });
    steps.length = 0;
    expect(await target.publish('r1.c1.l1', [message(2, topic), message(3, topic)], signal())).toEqual({ kind: 'ok' });
    expect(steps.map((s) => s.step)).toEqual(['publish', 'handshake', 'publish']);
    expect(steps[0]!.extracted).toMatch(/^0 accepted, then refused: 401:\w+:Unknown client$/);
    const { got } = await pollUntil(session, (g) => g.length >= 2);
    expect(got.map((m) => m.id).sort()).toEqual([2, 3]);
    expect(await server.publishedCount()).toBe(2);
  });

  it("does not let one publish's abort end another publish sharing the actor's handshake", async () => {
    const server = await faye();
    const target = await bayeuxTarget(server.url);
    const stopped = new AbortController();
    const first = target.publish('r1.c1.l1', [message(1, 'r1.c1.l1.events')], stopped.signal);
    const second = target.publish('r1.c1.l1', [message(2, 'r1.c1.l1.events')], signal());
    stopped.abort();
    expect(await first).toMatchObject({ kind: 'aborted', stored: 0 });
    expect(await second).toEqual({ kind: 'ok' });
    expect(await server.publishedCount()).toBe(1);
  });

  it("is 'fatal' for a 4xx (a wrong mount path) and 'retry' for a refused connection", async () => {
    const server = await faye();
    const wrongPath = await bayeuxTarget(server.url.replace(/\/faye$/, '/not-faye'));
    const open = await wrongPath.subscribe('r1.c1.p1', ['r1.c1.l1.events']).open(signal());
    expect(open).toMatchObject({ kind: 'fatal', status: 404, detail: expect.stringContaining('bayeux handshake: HTTP 404') });
    expect(await wrongPath.publish('r1.c1.l1', [message(1, 'r1.c1.l1.events')], signal())).toMatchObject({ kind: 'fatal', status: 404, stored: 0 });

    await server.stop();
    servers.splice(servers.indexOf(server), 1);
    const refused = await bayeuxTarget(server.url);
    expect(await refused.subscribe('r1.c1.p1', ['r1.c1.l1.events']).open(signal())).toMatchObject({ kind: 'retry', detail: expect.stringContaining('ECONNREFUSED') });
    expect(await refused.publish('r1.c1.l1', [message(1, 'r1.c1.l1.events')], signal())).toMatchObject({ kind: 'retry', stored: 0 });
  });
});

/**
 * Advice Faye never gives, from a scripted Bayeux server: the handshake advises a 300 ms interval,
 * the first connect is answered at once, the second advises reconnect none.
 */
describe('bayeux advice', () => {
  const seen: { channel: string; clientId?: string; at: number }[] = [];
  let origin = '';
  let connects = 0;
  const scripted = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const messages = JSON.parse(body) as { channel: string; clientId?: string; id: string; subscription?: string }[];
      const replies = messages.map((m) => {
        seen.push({ channel: m.channel, ...(m.clientId ? { clientId: m.clientId } : {}), at: performance.now() });
        if (m.channel === '/meta/handshake') return { id: m.id, channel: m.channel, successful: true, clientId: 'c1', version: '1.0', supportedConnectionTypes: ['long-polling'], advice: { reconnect: 'retry', interval: 300, timeout: 1000 } };
        if (m.channel === '/meta/subscribe') return { id: m.id, channel: m.channel, successful: true, clientId: 'c1', subscription: m.subscription };
        if (m.channel === '/meta/connect') {
          connects++;
          return connects < 2 ? { id: m.id, channel: m.channel, successful: true, clientId: 'c1' } : { id: m.id, channel: m.channel, successful: true, clientId: 'c1', advice: { reconnect: 'none' } };
        }
        return { id: m.id, channel: m.channel, successful: true };
      });
      // A stranger's message on our channel: counted, never mistaken for a rehearse message.
      if (messages[0]?.channel === '/meta/connect' && connects === 1) replies.push({ channel: bayeuxChannel('r1.c1.l1.events'), data: 'hello' } as never);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(replies));
    });
  });
  beforeAll(async () => {
    await new Promise<void>((resolve) => scripted.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(scripted.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => scripted.close(() => resolve()));
  });

  it("waits the advised interval between connects, ends the session on reconnect 'none', and disconnects on close", async () => {
    const target = await bayeuxTarget(`${origin}/cometd`, 2);
    const session = target.subscribe('r1.c1.p1', ['r1.c1.l1.events']);
    expect(await session.open(signal())).toEqual({ kind: 'ok' });
    expect(await session.poll(signal())).toEqual({ kind: 'messages', messages: [], unidentified: 1 });
    expect(await session.poll(signal())).toMatchObject({ kind: 'fatal', detail: expect.stringContaining('advice reconnect: none') });
    const connectTimes = seen.filter((s) => s.channel === '/meta/connect').map((s) => s.at);
    expect(connectTimes).toHaveLength(2);
    expect(connectTimes[1]! - connectTimes[0]!).toBeGreaterThanOrEqual(290);
    // Over is over: no further request.
    expect(await session.poll(signal())).toMatchObject({ kind: 'fatal' });
    expect(seen.filter((s) => s.channel === '/meta/connect')).toHaveLength(2);
    await session.close();
    expect(seen.at(-1)).toMatchObject({ channel: '/meta/disconnect', clientId: 'c1' });
  });
});
