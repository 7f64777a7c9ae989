// Requests that once took the embedded bus down or made it hoard memory: a body nested deep enough
// to overflow the stack, topics kept forever after retention emptied them, and subscribes naming
// any number of topics. Real HTTP on port 0; the fake clock moves retention age by hand.

import { afterEach, describe, expect, it } from 'vitest';
import { startBus, type BusOptions, type RunningBus } from '../../bus/index.js';
import { maxJsonDepth, maxTopicsPerSubscribe, nestingExceeds } from '../../bus/protocol.js';
import type { Clock } from '../../core/clock.js';
import { get, parseMetrics, post, publish, subscribe, waitFor } from './client.js';

const running: RunningBus[] = [];
async function bus(options: BusOptions = {}): Promise<RunningBus> {
  const b = await startBus({ port: 0, ...options });
  running.push(b);
  return b;
}
afterEach(async () => {
  await Promise.all(running.splice(0).map((b) => b.close()));
});

function nested(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}

describe('nesting limit', () => {
  it('counts the depth of arrays and objects, ignoring brackets inside strings', () => {
    expect(nestingExceeds('{"a":[1,{"b":[]}]}', 4)).toBe(false);
    expect(nestingExceeds('{"a":[1,{"b":[]}]}', 3)).toBe(true);
    expect(nestingExceeds(JSON.stringify({ s: '[[[[[[{{{{' }), 1)).toBe(false);
    expect(nestingExceeds(JSON.stringify({ s: 'quote \\" then [[[[' }), 1)).toBe(false);
    expect(nestingExceeds(nested(64), 64)).toBe(false);
    expect(nestingExceeds(nested(65), 64)).toBe(true);
    // A long flat body is not deep, however many brackets it has in sequence.
    expect(nestingExceeds(`[${Array(10_000).fill('[]').join(',')}]`, 2)).toBe(false);
  });

  it('answers 400 naming the limit to a publish nested 5,000 deep, and keeps serving', async () => {
    const b = await bus();
    const body = `{"actor":"a","messages":[{"topic":"t","id":"1","data":${nested(5000)}}]}`;
    expect(body.length).toBeGreaterThan(10_000);
    const bad = await post(b.url, '/v1/events/publish', body);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toContain(`${maxJsonDepth} levels`);
    expect(b.stats()).toMatchObject({ publishedMessages: 0, retainedMessages: 0, responses4xx: 1 });
    // The same bus still does a full round trip.
    expect((await publish(b.url, [{ topic: 't', id: 'ok', data: { n: 1 } }])).status).toBe(200);
    const a = await subscribe(b.url, { t: 0 }, 0);
    expect(a.body).toEqual({ messages: [{ topic: 't', seq: 1, id: 'ok', data: { n: 1 } }], cursors: { t: 1 } });
  });

  it('answers 400 to a subscribe nested too deep, and accepts data just under the limit', async () => {
    const b = await bus();
    const deepSubscribe = await post(b.url, '/v1/events/subscribe', `{"actor":"a","topics":{"t":null},"extra":${nested(5000)}}`);
    expect(deepSubscribe.status).toBe(400);
    expect(deepSubscribe.body.error).toContain(`${maxJsonDepth} levels`);
    // body {, messages [, message { are three levels: data may use the rest.
    const fits = maxJsonDepth - 3;
    const ok = await post(b.url, '/v1/events/publish', `{"actor":"a","messages":[{"topic":"t","id":"1","data":${nested(fits)}}]}`);
    expect(ok.status).toBe(200);
    const over = await post(b.url, '/v1/events/publish', `{"actor":"a","messages":[{"topic":"t","id":"2","data":${nested(fits + 1)}}]}`);
    expect(over.status).toBe(400);
    const a = await subscribe(b.url, { t: 0 }, 0);
    expect(a.body.messages.map((m) => m.id)).toEqual(['1']);
  });
});

describe('topics per subscribe', () => {
  it(`accepts ${maxTopicsPerSubscribe} topics and answers 400 naming the limit beyond`, async () => {
    // A body limit large enough that 100,000 topics reach the topic check, not the 413.
    const b = await bus({ maxBodyBytes: 16 * 1024 * 1024 });
    const topics = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`roster/${i}/events`, null]));
    const atLimit = await subscribe(b.url, topics(maxTopicsPerSubscribe), 0);
    expect(atLimit.status).toBe(200);
    expect(Object.keys(atLimit.body.cursors)).toHaveLength(maxTopicsPerSubscribe);
    const over = await subscribe(b.url, topics(maxTopicsPerSubscribe + 1), 0);
    expect(over.status).toBe(400);
    expect((over.body as unknown as { error: string }).error).toContain(String(maxTopicsPerSubscribe));
    const huge = await subscribe(b.url, topics(100_000), 25);
    expect(huge.status).toBe(400);
    expect(b.stats().openPolls).toBe(0);
  });
});

describe('forgetting expired topics', () => {
  it('forgets topics whose messages all expired, and an old cursor still misses nothing', async () => {
    let now = 5_000_000;
    const clock: Clock = { nowMs: () => now, monoMs: () => now };
    const b = await bus({ retention: { ms: 2000 }, clock });
    const topicCount = 3000;
    for (let start = 0; start < topicCount; start += 500) {
      const batch = Array.from({ length: 500 }, (_, i) => ({ topic: `learner/${start + i}/events`, id: `m${start + i}` }));
      expect((await publish(b.url, batch)).status).toBe(200);
    }
    // Topic "kept" gets three messages; a subscriber has read them all (cursor 3).
    await publish(b.url, [{ topic: 'kept', id: 'k1' }, { topic: 'kept', id: 'k2' }, { topic: 'kept', id: 'k3' }]);
    // Someone is waiting on "watched": a topic with an open poll is never forgotten.
    await publish(b.url, [{ topic: 'watched', id: 'w1' }]);
    const waiting = subscribe(b.url, { watched: 1 }, 30);
    await waitFor(() => b.stats().openPolls === 1, 'the poll on "watched" to wait');
    expect(b.stats()).toMatchObject({ topics: topicCount + 2, retainedMessages: topicCount + 4 });

    now += 2500;
    await waitFor(() => b.stats().topics === 1, 'the sweep to forget expired topics', 5000);
    expect(b.stats()).toMatchObject({ topics: 1, retainedMessages: 0, openPolls: 1 });
    const metrics = parseMetrics((await get(b.url, '/metrics')).text);
    expect(metrics.get('rehearse_bus_topics')).toBe(1);
    expect(metrics.get('rehearse_bus_retained_messages')).toBe(0);

    // The subscriber comes back with its old cursor: nothing yet, and its cursor never moves back.
    const back = await subscribe(b.url, { kept: 3 }, 0);
    expect(back.body.messages).toEqual([]);
    expect(back.body.cursors.kept).toBeGreaterThanOrEqual(3);
    // A new message on the forgotten topic is numbered above every seq it had before, so both the
    // old cursor and the returned one get it: nothing missed, nothing twice.
    await publish(b.url, [{ topic: 'kept', id: 'k4' }]);
    const withOld = await subscribe(b.url, { kept: 3 }, 0);
    expect(withOld.body.messages.map((m) => m.id)).toEqual(['k4']);
    const k4 = withOld.body.messages[0]!.seq;
    expect(k4).toBeGreaterThan(3);
    const withReturned = await subscribe(b.url, { kept: back.body.cursors.kept! }, 0);
    expect(withReturned.body.messages.map((m) => [m.id, m.seq])).toEqual([['k4', k4]]);
    expect((await subscribe(b.url, { kept: k4 }, 0)).body.messages).toEqual([]);

    // The waiting poll's topic kept its numbering: the next message there is seq 2.
    await publish(b.url, [{ topic: 'watched', id: 'w2' }]);
    const woke = await waiting;
    expect(woke.body.messages.map((m) => [m.id, m.seq])).toEqual([['w2', 2]]);
  });

  it('stores a delayed message on the live topic even if the topic was forgotten meanwhile', async () => {
    let now = 9_000_000;
    const clock: Clock = { nowMs: () => now, monoMs: () => now };
    const b = await bus({ retention: { ms: 1000 }, clock, faults: { delay: { fraction: 1, ms: 1500 } } });
    // A subscribe makes the topic known; the publish's only message is then held by the delay.
    expect((await subscribe(b.url, { t: null }, 0)).body.cursors).toEqual({ t: 0 });
    await publish(b.url, [{ topic: 't', id: 'late' }]);
    expect(b.stats()).toMatchObject({ topics: 1, delayedPending: 1, retainedMessages: 0 });
    // The empty topic is swept while its message is still held by the delay fault.
    await waitFor(() => b.stats().topics === 0, 'the sweep to forget the empty topic', 5000);
    await waitFor(() => b.stats().delayedPending === 0, 'the delayed message to be stored', 5000);
    const a = await subscribe(b.url, { t: 0 }, 0);
    expect(a.body.messages.map((m) => m.id)).toEqual(['late']);
  });
});
