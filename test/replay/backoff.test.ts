import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startBus, parseFault, type RunningBus } from '../../bus/index.js';
import { openDatabase } from '../../db/open.js';
import { runSamples } from '../../db/run-queries.js';
import { backoffCeilingMs, backoffDelayMs, expectedRequestsWithin, parseRetryAfter } from '../../replay/backoff.js';
import { runReplay, startReplay } from '../../replay/runner.js';
import type { PlanEvent } from '../../replay/plan-types.js';
import { seededRandom } from '../../stats/random.js';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});
const run = { scale: 1, mode: 'clone', window: 'test', speed: 1, seed: 3, modelFingerprint: 'test' };

/** Learners that only join and stay: each keeps one long-poll loop going and publishes nothing. */
function idleLearners(n: number, durationMs: number): PlanEvent[] {
  const events: PlanEvent[] = [];
  for (let i = 0; i < n; i++) events.push({ kind: 'learnerJoin', atMs: 0, learner: `l${i}`, classId: 'c' });
  for (let i = 0; i < n; i++) events.push({ kind: 'learnerLeave', atMs: durationMs, learner: `l${i}` });
  return events;
}

describe('backoff policy (pure)', () => {
  it('draws full jitter below a doubling ceiling that stops at the cap', () => {
    const policy = { baseMs: 1000, capMs: 30_000 };
    expect([0, 1, 2, 3, 4, 5, 6].map((a) => backoffCeilingMs(policy, a))).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
    expect(backoffCeilingMs(policy, 5000)).toBe(30_000);
    const rng = seededRandom(1);
    const draws = Array.from({ length: 4000 }, () => backoffDelayMs(policy, 2, rng));
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...draws)).toBeLessThan(4000);
    const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
    expect(mean).toBeGreaterThan(1900);
    expect(mean).toBeLessThan(2100);
  });

  it("treats Retry-After as a floor and reads both of its forms", () => {
    const rng = seededRandom(2);
    expect(backoffDelayMs({ baseMs: 10, capMs: 20 }, 0, rng, 5000)).toBe(5000);
    expect(parseRetryAfter('3', 0)).toBe(3000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4000)).toBe(6000);
    expect(parseRetryAfter('soon', 0)).toBeUndefined();
    expect(parseRetryAfter(undefined, 0)).toBeUndefined();
  });

  it('expects few requests from a client that only fails', () => {
    // base 100, cap 800: waits average 50, 100, 200, 400, 400, ...: requests at 0, 50, 150, 350, 750, 1150, 1550, 1950.
    expect(expectedRequestsWithin({ baseMs: 100, capMs: 800 }, 2000)).toBe(8);
  });
});

describe('backoff against a target that only answers 503', () => {
  it('lets the request rate decay as the policy says instead of spiralling', async () => {
    const target = await only503();
    const policy = { baseMs: 40, capMs: 320 };
    const users = 50;
    const durationMs = 3000;
    const perSecond: number[] = [];
    const replay = startReplay({ target: target.url, events: idleLearners(users, durationMs), run, backoff: policy, pollTimeoutS: 5, preflight: false });
    replay.on('tick', (t) => perSecond.push(t.subscribes));
    const summary = await replay.finished;
    const expectedPerUser = expectedRequestsWithin(policy, durationMs);
    const perUser = summary.requests.subscribe / users;
    expect(perUser).toBeGreaterThan(expectedPerUser * 0.75);
    expect(perUser).toBeLessThan(expectedPerUser * 1.25);
    // At the cap, each user sends one request per cap/2 on average: 50 users -> ~312/s, never more.
    const steady = (users * 1000) / (policy.capMs / 2);
    const last = perSecond[perSecond.length - 2]!;
    expect(last).toBeGreaterThan(steady * 0.7);
    expect(last).toBeLessThan(steady * 1.3);
    // At the stop, a user's request in flight is aborted: neither an error nor necessarily seen by the server.
    expect(summary.requests.errors).toBeLessThanOrEqual(summary.requests.subscribe);
    expect(summary.requests.errors).toBeGreaterThanOrEqual(summary.requests.subscribe - users);
    expect(target.requests()).toBeLessThanOrEqual(summary.requests.subscribe);
    expect(target.requests()).toBeGreaterThanOrEqual(summary.requests.subscribe - users);
  });

  it("honours the bus's Retry-After (error=1 answers 503 with Retry-After: 1)", async () => {
    const bus: RunningBus = await startBus({ port: 0, faults: parseFault('error=1') });
    closers.push(() => bus.close());
    const db = openDatabase(':memory:');
    closers.push(async () => {
      db.close();
    });
    const summary = await runReplay({ target: bus.url, events: idleLearners(10, 2500), run, backoff: { baseMs: 5, capMs: 20 }, pollTimeoutS: 5, db, preflight: false });
    // The stored retry gaps are the waits Retry-After asked for (1 s, wall clock), not the 5-20 ms backoff.
    const gaps = runSamples(db, summary.run).get('retryGap')!;
    expect(gaps.length).toBe(summary.requests.retries);
    expect(gaps.length).toBeGreaterThanOrEqual(10);
    expect(gaps[0]!).toBeGreaterThanOrEqual(900);
    expect(gaps[gaps.length - 1]!).toBeLessThan(1500);
    // Without Retry-After a 5-20 ms backoff would send ~200 requests per user in 2.5 s; with it, 3 (at 0, 1 s, 2 s).
    expect(summary.requests.subscribe).toBeGreaterThanOrEqual(20);
    expect(summary.requests.subscribe).toBeLessThanOrEqual(40);
    const seen = bus.stats().faults.error;
    expect(seen).toBeLessThanOrEqual(summary.requests.subscribe);
    expect(seen).toBeGreaterThanOrEqual(summary.requests.subscribe - 10);
    expect(summary.pass).toBe(false);
  });
});

/** A target that answers every request 503 without Retry-After, counting them. */
async function only503(): Promise<{ url: string; requests(): number }> {
  let requests = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    requests++;
    res.writeHead(503, { 'content-type': 'application/json' });
    res.end('{"error":"busy"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => requests };
}
