// Protocol v1 conformance over real HTTP (undici, port 0): docs/protocol.md is what is checked.

import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startBus, type BusOptions, type RunningBus } from '../../bus/index.js';
import type { Clock } from '../../core/clock.js';
import { seededRandom } from '../../stats/random.js';
import { drain, get, parseMetrics, post, publish, subscribe, waitFor } from './client.js';

const running: RunningBus[] = [];
async function bus(options: BusOptions = {}): Promise<RunningBus> {
  const b = await startBus({ port: 0, ...options });
  running.push(b);
  return b;
}
afterEach(async () => {
  await Promise.all(running.splice(0).map((b) => b.close()));
});

describe('publish and subscribe', () => {
  it('numbers each topic 1, 2, 3 and returns messages after the cursor in seq order', async () => {
    const b = await bus();
    const p = await publish(b.url, [
      { topic: 'a', id: 'x1', data: { n: 1 } },
      { topic: 'b', id: 'y1', data: 'hello' },
      { topic: 'a', id: 'x2', data: [1, 2] },
      { topic: 'a', id: 'x3', data: null },
    ]);
    expect(p).toMatchObject({ status: 200, body: { accepted: 4 } });
    const all = await subscribe(b.url, { a: 0 }, 0.2);
    expect(all.status).toBe(200);
    expect(all.body).toEqual({
      messages: [
        { topic: 'a', seq: 1, id: 'x1', data: { n: 1 } },
        { topic: 'a', seq: 2, id: 'x2', data: [1, 2] },
        { topic: 'a', seq: 3, id: 'x3', data: null },
      ],
      cursors: { a: 3 },
    });
    const rest = await subscribe(b.url, { a: 1, b: 0 }, 0.2);
    expect(rest.body.messages.map((m) => `${m.topic}${m.seq}`)).toEqual(['a2', 'a3', 'b1']);
    expect(rest.body.cursors).toEqual({ a: 3, b: 1 });
  });

  it('does not deduplicate message ids', async () => {
    const b = await bus();
    await publish(b.url, [{ topic: 't', id: 'same' }, { topic: 't', id: 'same' }]);
    const a = await subscribe(b.url, { t: 0 }, 0);
    expect(a.body.messages.map((m) => [m.seq, m.id])).toEqual([
      [1, 'same'],
      [2, 'same'],
    ]);
  });

  it('resolves a null cursor to the topic end ("from now on")', async () => {
    const b = await bus();
    await publish(b.url, [{ topic: 't', id: 'old1' }, { topic: 't', id: 'old2' }]);
    const first = await subscribe(b.url, { t: null, fresh: null }, 0.2);
    expect(first.body).toEqual({ messages: [], cursors: { t: 2, fresh: 0 } });
    await publish(b.url, [{ topic: 't', id: 'new' }]);
    const next = await subscribe(b.url, first.body.cursors, 0.2);
    expect(next.body.messages.map((m) => [m.seq, m.id])).toEqual([[3, 'new']]);
  });

  it('treats a cursor past the topic end (a restarted bus) as null', async () => {
    const b = await bus();
    await publish(b.url, [{ topic: 't', id: 'm1' }]);
    const a = await subscribe(b.url, { t: 40 }, 0.1);
    expect(a.body).toEqual({ messages: [], cursors: { t: 1 } });
  });

  it('answers a waiting poll as soon as a message is published to its topic', async () => {
    const b = await bus();
    const started = Date.now();
    const pending = subscribe(b.url, { t: null }, 20);
    await waitFor(() => b.stats().openPolls === 1, 'the poll to wait');
    await publish(b.url, [{ topic: 't', id: 'wake' }]);
    const a = await pending;
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(a.body).toEqual({ messages: [{ topic: 't', seq: 1, id: 'wake', data: null }], cursors: { t: 1 } });
    expect(b.stats().openPolls).toBe(0);
  });

  it('answers after timeout_s with no messages when nothing arrives, and a publish elsewhere does not wake it', async () => {
    const b = await bus();
    const started = Date.now();
    const pending = subscribe(b.url, { quiet: null }, 0.3);
    await waitFor(() => b.stats().openPolls === 1, 'the poll to wait');
    await publish(b.url, [{ topic: 'other', id: 'x' }]);
    expect(b.stats().openPolls).toBe(1);
    const a = await pending;
    const elapsed = Date.now() - started;
    expect(a.body).toEqual({ messages: [], cursors: { quiet: 0 } });
    expect(elapsed).toBeGreaterThanOrEqual(280);
    expect(elapsed).toBeLessThan(5000);
    expect(b.stats().deliveredMessages).toBe(0);
  });

  it('uses the bus poll timeout when timeout_s is absent', async () => {
    const b = await bus({ pollTimeoutS: 0.2 });
    const a = await post(b.url, '/v1/events/subscribe', { actor: 's', topics: { t: null } });
    expect(a.body).toEqual({ messages: [], cursors: { t: 0 } });
  });

  it('a multi-topic poll is woken by any of its topics and unregisters from all', async () => {
    const b = await bus();
    const pending = subscribe(b.url, { a: null, b: null, c: null }, 20);
    await waitFor(() => b.stats().openPolls === 1, 'the poll to wait');
    await publish(b.url, [{ topic: 'b', id: 'on-b' }]);
    const a = await pending;
    expect(a.body).toEqual({ messages: [{ topic: 'b', seq: 1, id: 'on-b', data: null }], cursors: { a: 0, b: 1, c: 0 } });
    expect(b.stats().openPolls).toBe(0);
    // Had it stayed registered on a or c, this publish would deliver to it a second time.
    await publish(b.url, [{ topic: 'a', id: 'on-a' }, { topic: 'c', id: 'on-c' }]);
    expect(b.stats().deliveredMessages).toBe(1);
  });

  it('wakes every poll waiting on a topic (fan-out) and only those', async () => {
    const b = await bus();
    const onT = Array.from({ length: 20 }, () => subscribe(b.url, { t: null }, 20));
    const onU = subscribe(b.url, { u: null }, 0.5);
    await waitFor(() => b.stats().openPolls === 21, '21 polls to wait');
    await publish(b.url, [{ topic: 't', id: 'fan' }]);
    const answers = await Promise.all(onT);
    for (const a of answers) expect(a.body.messages.map((m) => m.id)).toEqual(['fan']);
    expect((await onU).body.messages).toEqual([]);
    expect(b.stats().deliveredMessages).toBe(20);
  });

  it('a subscriber that sends back its cursors misses nothing and gets nothing twice', async () => {
    const b = await bus({ maxMessagesPerAnswer: 7 });
    const batches = 40;
    // Each batch: 10 messages on s and 5 on r, interleaved; the reader follows both concurrently.
    const expectedS = batches * 10;
    const expectedR = batches * 5;
    const received: Record<string, number[]> = { s: [], r: [] };
    const reader = (async () => {
      let cursors: Record<string, number | null> = { s: 0, r: 0 };
      for (let i = 0; i < 5000 && received.s!.length + received.r!.length < expectedS + expectedR; i++) {
        const a = await subscribe(b.url, cursors, 5);
        for (const m of a.body.messages) received[m.topic]!.push(m.seq);
        cursors = a.body.cursors;
      }
    })();
    for (let batch = 0; batch < batches; batch++) {
      await publish(b.url, Array.from({ length: 15 }, (_, i) => ({ topic: i % 3 === 0 ? 'r' : 's', id: `b${batch}-${i}` })));
    }
    await reader;
    expect(received.s).toEqual(Array.from({ length: expectedS }, (_, i) => i + 1));
    expect(received.r).toEqual(Array.from({ length: expectedR }, (_, i) => i + 1));
  });

  it('caps an answer at maxMessagesPerAnswer and the cursors say where it stopped', async () => {
    const b = await bus({ maxMessagesPerAnswer: 3 });
    await publish(b.url, Array.from({ length: 7 }, (_, i) => ({ topic: 't', id: `m${i + 1}` })));
    const first = await subscribe(b.url, { t: 0 }, 0);
    expect(first.body.messages.map((m) => m.seq)).toEqual([1, 2, 3]);
    expect(first.body.cursors).toEqual({ t: 3 });
    const all = await drain(b.url, 't', 3);
    expect(all.messages.map((m) => m.seq)).toEqual([4, 5, 6, 7]);
  });
});

describe('retention', () => {
  it('keeps the last N messages per topic; an older cursor gets what is retained', async () => {
    const b = await bus({ retention: { messages: 5 } });
    await publish(b.url, Array.from({ length: 12 }, (_, i) => ({ topic: 't', id: `m${i + 1}` })));
    await publish(b.url, [{ topic: 'other', id: 'o1' }]);
    const a = await subscribe(b.url, { t: 2 }, 0);
    expect(a.body.messages.map((m) => m.seq)).toEqual([8, 9, 10, 11, 12]);
    expect(a.body.cursors).toEqual({ t: 12 });
    expect(b.stats()).toMatchObject({ retainedMessages: 6, trimmedMessages: 7 });
  });

  it('drops messages older than the retention age (fake clock)', async () => {
    let now = 1_000_000;
    const clock: Clock = { nowMs: () => now, monoMs: () => now };
    const b = await bus({ retention: { ms: 60_000 }, clock });
    await publish(b.url, [{ topic: 't', id: 'old' }]);
    now += 45_000;
    await publish(b.url, [{ topic: 't', id: 'newer' }]);
    now += 20_000; // 'old' is now 65 s old, 'newer' 20 s
    const a = await subscribe(b.url, { t: 0 }, 0);
    expect(a.body.messages.map((m) => [m.seq, m.id])).toEqual([[2, 'newer']]);
    now += 60_000;
    const empty = await subscribe(b.url, { t: 0 }, 0);
    expect(empty.body).toEqual({ messages: [], cursors: { t: 2 } });
    expect(b.stats().retainedMessages).toBe(0);
  });
});

describe('errors', () => {
  const badPublish: Array<[string, string, RegExp]> = [
    ['invalid JSON', '{"actor": "a", "messages": [', /not valid JSON/],
    ['a non-object body', '[1,2]', /must be a JSON object/],
    ['a missing actor', '{"messages": []}', /missing field "actor"/],
    ['an actor of the wrong type', '{"actor": 5, "messages": []}', /"actor" must be a string/],
    ['messages not an array', '{"actor": "a", "messages": {}}', /"messages" must be an array/],
    ['a message without topic', '{"actor": "a", "messages": [{"id": "1", "data": 1}]}', /messages\[0\]\.topic/],
    ['a numeric id', '{"actor": "a", "messages": [{"topic": "t", "id": 1, "data": 1}]}', /messages\[0\]\.id must be a string/],
    ['a message without data', '{"actor": "a", "messages": [{"topic": "t", "id": "1"}]}', /missing field messages\[0\]\.data/],
  ];
  it.each(badPublish)('publish with %s gets 400 and stores nothing', async (_what, body, error) => {
    const b = await bus();
    const a = await post(b.url, '/v1/events/publish', body);
    expect(a.status).toBe(400);
    expect(a.body.error).toMatch(error);
    expect(b.stats()).toMatchObject({ publishedMessages: 0, retainedMessages: 0, responses4xx: 1 });
    expect((await get(b.url, '/healthz')).status).toBe(200);
  });

  const badSubscribe: Array<[string, string, RegExp]> = [
    ['invalid JSON', 'not json', /not valid JSON/],
    ['a missing topics field', '{"actor": "a"}', /missing field "topics"/],
    ['topics as an array', '{"actor": "a", "topics": ["t"]}', /"topics" must be an object/],
    ['no topics', '{"actor": "a", "topics": {}}', /at least one topic/],
    ['a string cursor', '{"actor": "a", "topics": {"t": "3"}}', /cursor of topic "t"/],
    ['a negative cursor', '{"actor": "a", "topics": {"t": -1}}', /cursor of topic "t"/],
    ['a fractional cursor', '{"actor": "a", "topics": {"t": 1.5}}', /cursor of topic "t"/],
    ['a string timeout', '{"actor": "a", "topics": {"t": null}, "timeout_s": "5"}', /"timeout_s"/],
    ['a timeout over the maximum', '{"actor": "a", "topics": {"t": null}, "timeout_s": 100000}', /"timeout_s"/],
  ];
  it.each(badSubscribe)('subscribe with %s gets 400', async (_what, body, error) => {
    const b = await bus();
    const a = await post(b.url, '/v1/events/subscribe', body);
    expect(a.status).toBe(400);
    expect(a.body.error).toMatch(error);
    expect(b.stats().openPolls).toBe(0);
  });

  it('answers 413 to a body over the limit, whether declared or streamed, and keeps serving', async () => {
    const b = await bus();
    const huge = JSON.stringify({ actor: 'a', messages: [{ topic: 't', id: '1', data: 'x'.repeat(2 * 1024 * 1024) }] });
    const a = await post(b.url, '/v1/events/publish', huge);
    expect(a.status).toBe(413);
    expect(a.body.error).toMatch(/larger than 1048576 bytes/);
    const small = await bus({ maxBodyBytes: 100 });
    const chunked = await post(small.url, '/v1/events/publish', JSON.stringify({ actor: 'a', messages: [{ topic: 't', id: '1', data: 'y'.repeat(300) }] }));
    expect(chunked.status).toBe(413);
    // A body far beyond the limit is refused without being read.
    const far = await post(small.url, '/v1/events/publish', 'z'.repeat(10_000)).catch((err: Error) => err);
    if (!(far instanceof Error)) expect(far.status).toBe(413);
    expect((await publish(b.url, [{ topic: 't', id: 'ok' }])).status).toBe(200);
    expect((await get(small.url, '/healthz')).status).toBe(200);
    expect(b.stats().retainedMessages).toBe(1);
  });

  it('answers 400 to 300 seeded garbage bodies and keeps serving', async () => {
    const b = await bus();
    const rng = seededRandom(99);
    const pieces = ['{', '}', '[', ']', '"actor"', ':', ',', '"topics"', '"messages"', 'null', '1', '-1', '"t"', '{"t":', 'true', '"', '\\', '\u0000'];
    const statuses = new Set<number>();
    for (let i = 0; i < 300; i++) {
      const body = Array.from({ length: 1 + Math.floor(rng.next() * 12) }, () => pieces[Math.floor(rng.next() * pieces.length)]).join('');
      const path = i % 2 === 0 ? '/v1/events/publish' : '/v1/events/subscribe';
      const a = await post(b.url, path, body);
      statuses.add(a.status);
      if (a.status === 400) expect(typeof a.body.error).toBe('string');
    }
    // Garbage is almost never a valid request; whatever happened, nothing crashed or hung.
    expect(statuses.has(400)).toBe(true);
    for (const s of statuses) expect([200, 400]).toContain(s);
    expect((await get(b.url, '/healthz')).status).toBe(200);
  });

  it('answers 404 to an unknown path and 405 to a wrong method', async () => {
    const b = await bus();
    const missing = await post(b.url, '/v2/events/publish', {});
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatch(/no such path: \/v2\/events\/publish/);
    const wrong = await get(b.url, '/v1/events/publish');
    expect(wrong.status).toBe(405);
    expect(JSON.parse(wrong.text).error).toMatch(/use POST/);
    expect(b.stats().responses4xx).toBe(2);
  });

  it('survives malformed HTTP and oversized headers, and keeps serving', async () => {
    const b = await bus();
    const port = Number(new URL(b.url).port);
    const raw = (text: string) =>
      new Promise<string>((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => s.write(text));
        let data = '';
        s.on('data', (d) => (data += d.toString()));
        s.on('end', () => resolve(data));
        s.on('error', reject);
      });
    expect(await raw('THIS IS NOT HTTP\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw(`GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 431/);
    expect(b.stats().responses4xx).toBe(2);
    expect((await get(b.url, '/healthz')).status).toBe(200);
  });

  it('answers 503 with Retry-After beyond --max-polls and serves again when polls close', async () => {
    const b = await bus({ maxPolls: 2 });
    const open = [subscribe(b.url, { t: null }, 20), subscribe(b.url, { u: null }, 20)];
    await waitFor(() => b.stats().openPolls === 2, 'two polls to wait');
    const refused = await subscribe(b.url, { v: null }, 20);
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.body).toMatchObject({ error: expect.stringMatching(/too many open polls/) });
    // A poll that can be answered at once does not count against the cap.
    await publish(b.url, [{ topic: 'w', id: 'ready' }]);
    expect((await subscribe(b.url, { w: 0 }, 20)).status).toBe(200);
    await publish(b.url, [{ topic: 't', id: 'x' }, { topic: 'u', id: 'y' }]);
    await Promise.all(open);
    expect(b.stats()).toMatchObject({ openPolls: 0, responses5xx: 1 });
    expect(b.stats().faults.max_polls).toBe(1);
  });

  it('removes the waiting poll of a client that hangs up', async () => {
    const b = await bus();
    const controller = new AbortController();
    const pending = subscribe(b.url, { t: null, u: null }, 20, controller.signal).catch((err: Error) => err);
    await waitFor(() => b.stats().openPolls === 1, 'the poll to wait');
    controller.abort();
    expect(await pending).toBeInstanceOf(Error);
    await waitFor(() => b.stats().openPolls === 0, 'the aborted poll to be removed');
    await publish(b.url, [{ topic: 't', id: 'nobody' }]);
    expect(b.stats().deliveredMessages).toBe(0);
  });
});

describe('health and metrics', () => {
  it('serves /healthz', async () => {
    const b = await bus();
    const h = await get(b.url, '/healthz');
    expect(h.status).toBe(200);
    expect(JSON.parse(h.text)).toEqual({ status: 'ok', protocol: 1 });
  });

  it('serves /metrics in Prometheus text format with the counters of what happened', async () => {
    const b = await bus({ maxPolls: 1 });
    const waiting = subscribe(b.url, { t: null }, 20);
    await waitFor(() => b.stats().openPolls === 1, 'the poll to wait');
    await post(b.url, '/v1/events/publish', 'broken');
    await get(b.url, '/nowhere');
    expect((await subscribe(b.url, { x: null }, 20)).status).toBe(503);
    const during = await get(b.url, '/metrics');
    expect(during.status).toBe(200);
    expect(during.text).toMatch(/^# HELP rehearse_bus_open_polls /m);
    expect(during.text).toMatch(/^# TYPE rehearse_bus_published_messages_total counter$/m);
    expect(parseMetrics(during.text).get('rehearse_bus_open_polls')).toBe(1);
    await publish(b.url, [{ topic: 't', id: '1' }, { topic: 't', id: '2' }]);
    await waiting;
    const m = parseMetrics((await get(b.url, '/metrics')).text);
    expect(m.get('rehearse_bus_open_polls')).toBe(0);
    expect(m.get('rehearse_bus_publish_requests_total')).toBe(1);
    expect(m.get('rehearse_bus_published_messages_total')).toBe(2);
    expect(m.get('rehearse_bus_subscribe_requests_total')).toBe(2);
    expect(m.get('rehearse_bus_delivered_messages_total')).toBe(2);
    expect(m.get('rehearse_bus_retained_messages')).toBe(2);
    expect(m.get('rehearse_bus_http_responses_total{class="4xx"}')).toBe(2);
    expect(m.get('rehearse_bus_http_responses_total{class="5xx"}')).toBe(1);
    expect(m.get('rehearse_bus_faults_total{fault="max_polls"}')).toBe(1);
    for (const f of ['drop', 'dup', 'delay', 'error', 'latency', 'stall']) expect(m.get(`rehearse_bus_faults_total{fault="${f}"}`)).toBe(0);
    expect(m.get('process_resident_memory_bytes')).toBeGreaterThan(1e6);
  });
});

describe('graceful close', () => {
  it('answers every open poll with what it has, then resolves quickly', async () => {
    const b = await startBus({ port: 0 });
    await publish(b.url, [{ topic: 't', id: 'm1' }]);
    const polls = [subscribe(b.url, { t: 1 }, 60), subscribe(b.url, { t: null, u: null }, 60), subscribe(b.url, { z: null }, 60)];
    await waitFor(() => b.stats().openPolls === 3, 'three polls to wait');
    const started = Date.now();
    await b.close();
    expect(Date.now() - started).toBeLessThan(2000);
    const answers = await Promise.all(polls);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(answers.map((a) => a.body)).toEqual([
      { messages: [], cursors: { t: 1 } },
      { messages: [], cursors: { t: 1, u: 0 } },
      { messages: [], cursors: { z: 0 } },
    ]);
    await expect(get(b.url, '/healthz')).rejects.toThrow();
  });
});
