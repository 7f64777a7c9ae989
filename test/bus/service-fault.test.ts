// The `service` fault: a saturating server that makes messages visible at R per second, in
// arrival order, so a capacity search against it has a breaking point that follows from R.

import { afterEach, describe, expect, it } from 'vitest';
import { parseFault, startBus, type RunningBus } from '../../bus/index.js';
import { drain, get, parseMetrics, publish, waitFor } from './client.js';

const running: RunningBus[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((b) => b.close()));
});

describe('service=<rate>/s', () => {
  it('parses with or without /s and refuses a rate that is not positive', () => {
    expect(parseFault('service=200/s')).toEqual({ servicePerS: 200 });
    expect(parseFault('service=12.5')).toEqual({ servicePerS: 12.5 });
    expect(() => parseFault('service=0')).toThrow(/positive rate/);
    expect(() => parseFault('service=fast')).toThrow(/positive rate/);
  });

  it('serves a burst one message after another at the rate, in order, and answers the publish at once', async () => {
    const rate = 100;
    const b = await startBus({ port: 0, faults: { servicePerS: rate } });
    running.push(b);
    const n = 50;
    const t0 = performance.now();
    const answer = await publish(b.url, Array.from({ length: n }, (_, i) => ({ topic: 't', id: `m${i}`, data: i })));
    expect(answer.status).toBe(200);
    // Accepted long before the queue is served (n / rate = 500 ms).
    expect(performance.now() - t0).toBeLessThan(400);
    expect(b.stats().serviceQueued).toBeGreaterThan(0);
    const queued = parseMetrics((await get(b.url, '/metrics')).text).get('rehearse_bus_service_queue')!;
    expect(queued).toBeGreaterThan(0);
    await waitFor(() => b.stats().serviceQueued === 0, 'the service queue to empty', 5000);
    const elapsed = performance.now() - t0;
    // n messages at 1/rate s each: at least (n - 1) / rate, and not far beyond it.
    expect(elapsed).toBeGreaterThanOrEqual(((n - 1) / rate) * 1000 - 5);
    expect(elapsed).toBeLessThan((n / rate) * 1000 + 1500);
    const { messages } = await drain(b.url, 't');
    expect(messages.map((m) => m.id)).toEqual(Array.from({ length: n }, (_, i) => `m${i}`));
    // Every message but the first waited behind another.
    expect(b.stats().faults.service).toBe(n - 1);
  });
});
