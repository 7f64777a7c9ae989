import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { startBus, type RunningBus } from '../../bus/index.js';
import { runReplay } from '../../replay/runner.js';
import { syntheticPlan } from './synthetic-plan.js';

// A target that lies in its answers must never pass: a proxy in front of the real embedded bus
// rewrites every subscribe answer, as a broken bus would, while every id still arrives.

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

type Answer = { messages: Array<{ topic: string; seq: number; id: string; data: unknown }>; cursors: Record<string, number> };

async function lyingProxy(rewrite: (a: Answer) => Answer): Promise<string> {
  const bus: RunningBus = await startBus({ port: 0 });
  closers.push(() => bus.close());
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      void request(bus.url + (req.url ?? '/'), { method: 'POST', body: Buffer.concat(chunks), headers: { 'content-type': 'application/json' } })
        .then(async (r) => {
          const text = await r.body.text();
          const body = r.statusCode === 200 && req.url === '/v1/events/subscribe' ? JSON.stringify(rewrite(JSON.parse(text) as Answer)) : text;
          res.writeHead(r.statusCode, { 'content-type': 'application/json' });
          res.end(body);
        })
        .catch(() => res.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const run = { scale: 1, mode: 'clone', window: 'test', speed: 1, seed: 1, modelFingerprint: 'test' };
const plan = { classes: 2, learnersPerClass: 4, durationMs: 2000, publishEveryMs: 200, controlEveryMs: 200 };

describe('a target that lies in its answers', () => {
  it('fails when every seq is rewritten to 1, though every message arrives once', async () => {
    const url = await lyingProxy((a) => ({ ...a, messages: a.messages.map((m) => ({ ...m, seq: 1 })) }));
    const s = await runReplay({ target: url, events: syntheticPlan(plan), run, preflight: false, pollTimeoutS: 2, generatorLagLimitMs: 2000 });
    expect(s.delivered).toBe(s.expected);
    expect(s.pass).toBe(false);
    expect(s.verdict.reasons.join('\n')).toMatch(/delivered messages broke the protocol \(first: seq 1 on topic \S+ after seq \d+\)/);
  });

  it('fails when every message is delivered under another topic', async () => {
    const url = await lyingProxy((a) => ({ ...a, messages: a.messages.map((m) => ({ ...m, topic: 'somewhere.else' })) }));
    const s = await runReplay({ target: url, events: syntheticPlan({ ...plan, durationMs: 1000 }), run, preflight: false, pollTimeoutS: 2, generatorLagLimitMs: 2000, slo: 'p95<=1s, lost>1s' });
    expect(s.delivered).toBe(0);
    expect(s.pass).toBe(false);
    expect(s.verdict.reasons.join('\n')).toMatch(/messages arrived on a topic they were not published to/);
  });

  it('a subscribe answer with null among its messages is counted, not a crash', async () => {
    const url = await lyingProxy((a) => ({ ...a, messages: [null as unknown as Answer['messages'][number], ...a.messages] }));
    const s = await runReplay({ target: url, events: syntheticPlan({ ...plan, durationMs: 1000 }), run, preflight: false, pollTimeoutS: 2, generatorLagLimitMs: 2000 });
    expect(s.delivered).toBe(s.expected);
    expect(s.pass).toBe(false);
    expect(s.verdict.reasons.join('\n')).toMatch(/messages arrived without rehearse's id in the payload/);
  });
});
