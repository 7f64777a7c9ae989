// A capacity search end to end, in process: the staged plan of a synthetic model against the
// embedded bus (port 0). With the bus's `service` fault (a server taking R messages/s) the
// breaking multiplier follows from R and the plan's own message rate per stage; without it the
// search passes up to --to; with the generator kept busy it says so instead of a number.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBus, type RunningBus } from '../../bus/index.js';
import { readCapacity } from '../../db/capacity-store.js';
import { openDatabase, type Db } from '../../db/open.js';
import { syntheticModel } from '../../fixtures/synthetic-model.js';
import { createSearchPlan, stageMultipliers } from '../../replay/capacity/plan.js';
import { startCapacity, type CapacityInput } from '../../replay/capacity/run.js';
import type { CapacitySearchSettings } from '../../db/capacity-store.js';

const model = syntheticModel({ classes: 3, seed: 3, publishMedianMs: 30_000, surgeShare: 0.9 });
const speed = 10;
const slo = 'p95<=500ms, lost>3s, duplicates=0';

let dir: string;
let db: Db;
const buses: RunningBus[] = [];
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rehearse-capacity-'));
  db = openDatabase(path.join(dir, 'results.db'));
});
afterAll(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  for (const b of buses.splice(0)) await b.close();
});

async function bus(servicePerS?: number): Promise<RunningBus> {
  const b = await startBus({ port: 0, ...(servicePerS ? { faults: { servicePerS } } : {}) });
  buses.push(b);
  return b;
}

function input(url: string, search: CapacitySearchSettings, extra: Partial<CapacityInput> = {}): CapacityInput {
  return { target: url, model, search, speed, planSeed: 1, slo, db, preflight: false, pollTimeoutS: 5, backoff: { baseMs: 50, capMs: 400 }, generatorLagLimitMs: 1000, ...extra };
}

/** Messages the bus must store per second in each stage's judged window, from the plan itself. */
function judgedRates(search: CapacitySearchSettings): number[] {
  const ms = stageMultipliers(search.from, search.to, search.step);
  const plan = createSearchPlan(model, ms, search.stageMs, { window: 'peak', speed, seed: 1, horizonMs: ms.length * search.stageMs });
  const messages = new Array<number>(ms.length).fill(0);
  for (const e of plan) {
    const k = Math.floor(e.atMs / search.stageMs);
    if (e.atMs - k * search.stageMs < search.settleMs) continue;
    if (e.kind === 'publish') messages[k]! += e.messages;
    if (e.kind === 'control') messages[k]! += e.targets.length;
  }
  return messages.map((n) => n / ((search.stageMs - search.settleMs) / 1000));
}

describe('rehearse capacity against the embedded bus', () => {
  it('finds the breaking multiplier of a server serving R messages/s within one step, and the clause that failed', async () => {
    const search: CapacitySearchSettings = { from: 1, to: 10, step: 1, stageMs: 3000, settleMs: 1000, refine: false };
    const rates = judgedRates(search);
    // R halfway between the 4x and 5x stages' rates: the value computed from R is 4x (the highest stage at or below R).
    const R = (rates[3]! + rates[4]!) / 2;
    const expected = stageMultipliers(1, 10, 1).filter((m, k) => rates.slice(0, k + 1).every((r) => r <= R)).at(-1)!;
    expect(expected).toBe(4);
    const b = await bus(R);
    const search_ = startCapacity(input(b.url, search));
    const judged: number[] = [];
    search_.on('stage', (s) => judged.push(s.multiplier));
    const { answer, run } = await search_.finished;
    expect(answer.capacity).not.toBeNull();
    expect(Math.abs(answer.capacity! - expected)).toBeLessThanOrEqual(search.step);
    expect(answer.firstFailure).toMatchObject({ clause: 'p95<=500ms', stream: 'all', kind: 'latency' });
    expect(answer.firstFailure!.multiplier).toBe(answer.capacity! + 1);
    expect(answer.generatorBound).toBe(false);
    expect(answer.exitCode).toBe(0);
    // It stopped at the first failure instead of running on to 10x.
    expect(Math.max(...judged)).toBe(answer.firstFailure!.multiplier);
    expect(b.stats().faults.service).toBeGreaterThan(0);
    // The knee is at or before the failure.
    expect(answer.knee).not.toBeNull();
    expect(answer.knee!.multiplier).toBeLessThanOrEqual(answer.firstFailure!.multiplier);
    // Stored as one run with its stages.
    const stored = readCapacity(db, run)!;
    expect(stored.capacity).toBe(answer.capacity);
    expect(stored.stages.map((s) => s.multiplier)).toEqual(answer.stages.map((s) => s.multiplier));
    expect(stored.stages.at(-1)!.pass).toBe(false);
  }, 90_000);

  it('with --refine, backs off after the first failure and tries between the last pass and the first fail', async () => {
    const search: CapacitySearchSettings = { from: 1, to: 9, step: 2, stageMs: 3000, settleMs: 1500, refine: true };
    const rates = judgedRates(search);
    const multipliers = stageMultipliers(1, 9, 2);
    // R above the 3x stage's rate and below the 5x stage's: the breaking multiplier from R is about 4x.
    const R = rates[1]! + 0.6 * (rates[2]! - rates[1]!);
    const perX = rates.reduce((a, r, k) => a + r / multipliers[k]!, 0) / rates.length;
    const b = await bus(R);
    const search_ = startCapacity(input(b.url, search));
    const started: { multiplier: number; refine: boolean }[] = [];
    search_.on('stageStart', (s) => started.push({ multiplier: s.multiplier, refine: s.refine }));
    const { answer } = await search_.finished;
    const main = answer.stages.filter((s) => !s.refine);
    const refine = answer.stages.filter((s) => s.refine);
    const lastPass = main.filter((s) => s.pass).at(-1)!.multiplier;
    const firstFail = answer.firstFailure!.multiplier;
    expect(refine.length).toBeGreaterThanOrEqual(1);
    expect(refine.length).toBeLessThanOrEqual(2);
    expect(refine[0]!.multiplier).toBe((lastPass + firstFail) / 2);
    for (const r of refine) {
      expect(r.multiplier).toBeGreaterThan(lastPass);
      expect(r.multiplier).toBeLessThan(firstFail);
    }
    expect(started.filter((s) => s.refine).map((s) => s.multiplier)).toEqual(refine.map((s) => s.multiplier));
    expect(answer.capacity).toBeGreaterThanOrEqual(lastPass);
    expect(answer.capacity).toBeLessThan(firstFail);
    expect(Math.abs(answer.capacity! - R / perX)).toBeLessThanOrEqual(search.step);
  }, 120_000);

  it('says "passes up to 10x" when no stage fails', async () => {
    const search: CapacitySearchSettings = { from: 1, to: 10, step: 1, stageMs: 2500, settleMs: 500, refine: false };
    const b = await bus();
    // The subject is the search's end, not the latency of a shared two-core machine at 10x: a loose bound.
    const { answer } = await startCapacity(input(b.url, search, { slo: 'p95<=3s, lost>3s, duplicates=0' })).finished;
    expect(answer.stages.map((s) => s.multiplier), `${answer.text} ${JSON.stringify(answer.stages.at(-1))}`).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(answer.stages.every((s) => s.pass && s.expected > 0)).toBe(true);
    expect(answer).toMatchObject({ capacity: 10, passesUpTo: 10, firstFailure: null, generatorBound: false, exitCode: 0 });
    expect(answer.text).toMatch(/^passes up to 10x/);
  }, 90_000);

  it('reports a generator kept busy as generator-bound: capacity at least the last stage before it', async () => {
    const search: CapacitySearchSettings = { from: 1, to: 4, step: 1, stageMs: 3000, settleMs: 500, refine: false };
    const b = await bus();
    const search_ = startCapacity(input(b.url, search, { generatorLagLimitMs: 150 }));
    // From the second stage on, the generator's event loop is blocked 300 ms out of every 400.
    let busy: NodeJS.Timeout | undefined;
    const t0 = performance.now();
    search_.run.on('tick', () => {
      if (busy === undefined && performance.now() - t0 >= search.stageMs) {
        busy = setInterval(() => {
          const end = performance.now() + 300;
          while (performance.now() < end) {
            /* the generator is kept busy */
          }
        }, 100);
      }
    });
    try {
      const { answer } = await search_.finished;
      expect(answer.stages[0]).toMatchObject({ multiplier: 1, pass: true, generatorBound: false });
      expect(answer.generatorBound).toBe(true);
      expect(answer.capacity).toBe(1);
      expect(answer.firstFailure).toBeNull();
      expect(answer.text).toMatch(/^capacity at least 1x \(generator-bound\)/);
    } finally {
      clearInterval(busy);
    }
  }, 90_000);
});
