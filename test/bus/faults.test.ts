// Each injected fault's observed rate matches its setting within binomial bounds (seeded, so
// these outcomes are deterministic), and faults look to a subscriber as documented.

import { afterEach, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { startBus, type BusOptions, type RunningBus } from '../../bus/index.js';
import { drain, get, parseMetrics, publish, subscribe, waitFor } from './client.js';

const running: RunningBus[] = [];
async function bus(options: BusOptions): Promise<RunningBus> {
  const b = await startBus({ port: 0, ...options });
  running.push(b);
  return b;
}
afterEach(async () => {
  await Promise.all(running.splice(0).map((b) => b.close()));
});

/** Observed count within 4 binomial standard deviations of n*p. */
function expectBinomial(observed: number, n: number, p: number): void {
  const sd = Math.sqrt(n * p * (1 - p));
  expect(Math.abs(observed - n * p), `observed ${observed} of ${n} at p=${p} (sd ${sd.toFixed(1)})`).toBeLessThanOrEqual(4 * sd);
}

async function publishMany(url: string, topic: string, n: number, batch = 200): Promise<void> {
  for (let i = 0; i < n; i += batch) {
    const a = await publish(url, Array.from({ length: Math.min(batch, n - i) }, (_, k) => ({ topic, id: `m${i + k}`, data: i + k })));
    expect(a.status).toBe(200);
  }
}

async function faultMetric(url: string, fault: string): Promise<number> {
  return parseMetrics((await get(url, '/metrics')).text).get(`rehearse_bus_faults_total{fault="${fault}"}`)!;
}

describe('fault rates', () => {
  it('drop: the fraction set is accepted and never delivered', async () => {
    const n = 3000;
    const b = await bus({ faults: { drop: 0.05 }, seed: 42 });
    await publishMany(b.url, 't', n);
    const { messages } = await drain(b.url, 't');
    const dropped = n - messages.length;
    expectBinomial(dropped, n, 0.05);
    expect(dropped).toBeGreaterThan(0);
    expect(await faultMetric(b.url, 'drop')).toBe(dropped);
    expect(b.stats().publishedMessages).toBe(n);
    expect(new Set(messages.map((m) => m.id)).size).toBe(messages.length);
  });

  it('drop is deterministic for a seed and differs across seeds', async () => {
    const droppedIds = async (seed: number) => {
      const b = await bus({ faults: { drop: 0.2 }, seed });
      await publishMany(b.url, 't', 500);
      const got = new Set((await drain(b.url, 't')).messages.map((m) => m.id));
      return Array.from({ length: 500 }, (_, i) => `m${i}`).filter((id) => !got.has(id));
    };
    const first = await droppedIds(9);
    expect(await droppedIds(9)).toEqual(first);
    expect(await droppedIds(10)).not.toEqual(first);
  });

  it('dup: a duplicate is a second copy with a new seq and the same id, right after the original', async () => {
    const n = 3000;
    const b = await bus({ faults: { dup: 0.03 }, seed: 7 });
    await publishMany(b.url, 't', n);
    const { messages } = await drain(b.url, 't');
    const extra = messages.length - n;
    expectBinomial(extra, n, 0.03);
    expect(await faultMetric(b.url, 'dup')).toBe(extra);
    expect(messages.map((m) => m.seq)).toEqual(Array.from({ length: messages.length }, (_, i) => i + 1));
    let adjacentCopies = 0;
    for (let i = 1; i < messages.length; i++) if (messages[i]!.id === messages[i - 1]!.id) adjacentCopies++;
    expect(adjacentCopies).toBe(extra);
    expect(new Set(messages.map((m) => m.id)).size).toBe(n);
  });

  it('delay: the fraction set becomes visible only after the delay, with later seqs', async () => {
    const n = 2000;
    const b = await bus({ faults: { delay: { fraction: 0.1, ms: 400 } }, seed: 3 });
    const publishedAt = performance.now();
    await publishMany(b.url, 't', n);
    const early = await drain(b.url, 't');
    const earlyDoneIn = performance.now() - publishedAt;
    const delayed = b.stats().faults.delay;
    expectBinomial(delayed, n, 0.1);
    await waitFor(() => b.stats().delayedPending === 0, 'delayed messages to appear');
    expect(performance.now() - publishedAt).toBeGreaterThanOrEqual(399);
    const late = await drain(b.url, 't', early.cursor);
    // Had the first drain taken longer than the delay, some late messages would be in it.
    if (earlyDoneIn < 390) expect(late.messages.length).toBe(delayed);
    expect(late.messages[0]!.seq).toBe(early.cursor + 1);
    expect(early.messages.length + late.messages.length).toBe(n);
    expect(new Set([...early.messages, ...late.messages].map((m) => m.id)).size).toBe(n);
  });

  it('error: the fraction set of requests gets 503 with Retry-After and is not processed', async () => {
    const n = 2000;
    const b = await bus({ faults: { error: 0.04 }, seed: 5 });
    let failed = 0;
    for (let i = 0; i < n; i++) {
      const a = await publish(b.url, [{ topic: 't', id: `m${i}` }]);
      if (a.status === 503) {
        failed++;
        expect(a.headers['retry-after']).toBe('1');
        expect((a.body as unknown as { error: string }).error).toMatch(/injected fault: error/);
      } else expect(a.status).toBe(200);
    }
    expectBinomial(failed, n, 0.04);
    expect(b.stats().faults.error).toBe(failed);
    expect(b.stats().responses5xx).toBe(failed);
    expect(b.stats().retainedMessages).toBe(n - failed);
  });

  it('latency: answers that carry messages are held for fixed + jitter', async () => {
    const b = await bus({ faults: { latency: { fixedMs: 150, jitterMs: 50 } }, seed: 1 });
    await publish(b.url, [{ topic: 't', id: 'm1' }]);
    const holds: number[] = [];
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      const a = await subscribe(b.url, { t: 0 }, 0);
      holds.push(performance.now() - started);
      expect(a.body.messages).toHaveLength(1);
    }
    for (const h of holds) expect(h).toBeGreaterThanOrEqual(149);
    // Empty answers are not held (counted as held answers otherwise).
    expect((await subscribe(b.url, { t: 1 }, 0)).body.messages).toEqual([]);
    expect(b.stats().faults.latency).toBe(5);
  });

  it('close() sends answers held by latency at once', async () => {
    const b = await startBus({ port: 0, faults: { latency: { fixedMs: 30_000, jitterMs: 0 } } });
    await publish(b.url, [{ topic: 't', id: 'm1' }]);
    const held = subscribe(b.url, { t: 0 }, 0);
    await waitFor(() => b.stats().faults.latency === 1, 'the answer to be held');
    const started = Date.now();
    await b.close();
    expect((await held).body.messages.map((m) => m.id)).toEqual(['m1']);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('stall: requests in the window are read and never answered; after it the bus serves', async () => {
    const b = await bus({ faults: { stalls: [{ startMs: 0, endMs: 1000 }] } });
    const impatient = new Agent({ headersTimeout: 200 });
    const stalled = await request(`${b.url}/v1/events/publish`, {
      method: 'POST',
      body: JSON.stringify({ actor: 'a', messages: [{ topic: 't', id: 'lost', data: 1 }] }),
      dispatcher: impatient,
    }).catch((err: { code?: string }) => err);
    // No answer: the client gives up first, or the bus cuts the connection when the window ends.
    expect(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_SOCKET']).toContain((stalled as { code?: string }).code);
    expect(b.stats().faults.stall).toBe(1);
    // Health and metrics are not stalled, so a watcher can see the stall happen.
    expect((await get(b.url, '/healthz')).status).toBe(200);
    let answered = false;
    for (let i = 0; i < 100 && !answered; i++) {
      const a = await publish(b.url, [{ topic: 't', id: `after${i}` }]).catch(() => undefined);
      answered = a?.status === 200;
    }
    expect(answered).toBe(true);
    const { messages } = await drain(b.url, 't');
    expect(messages.map((m) => m.id)).not.toContain('lost');
    await impatient.close();
  });

  it('all faults together, as in the CLI example, keep each rate', async () => {
    const n = 4000;
    const b = await bus({ faults: { drop: 0.02, dup: 0.01, delay: { fraction: 0.03, ms: 200 } }, seed: 2026 });
    await publishMany(b.url, 't', n);
    await waitFor(() => b.stats().delayedPending === 0, 'delayed messages to appear');
    const { messages } = await drain(b.url, 't');
    const s = b.stats().faults;
    expectBinomial(s.drop, n, 0.02);
    expectBinomial(s.dup, n - s.drop, 0.01);
    expectBinomial(s.delay, n - s.drop, 0.03);
    expect(messages.length).toBe(n - s.drop + s.dup);
  });
});
