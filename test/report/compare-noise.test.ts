import fs from 'node:fs';
import { EventEmitter } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../cli/program.js';
import { MemoryOutput } from '../../cli/io.js';
import type { Db } from '../../db/open.js';
import { compareRunsByName, type Comparison } from '../../report/compare.js';
import { evaluateFailOn, parseFailOn } from '../../report/fail-on.js';
import { loadRunData } from '../../report/run-figures.js';
import { getRun } from '../../db/run-queries.js';
import { insertRun, openTemp, tempDir } from './fixture-runs.js';

// compare's noise model on stored runs made from seeded per-second histograms: runs drawn from the
// same latency distribution (other seeds) are not a regression even when their p95 differs by more
// than the rule; a run whose every latency is 20% slower is.

const io = () => ({ stdout: new MemoryOutput(), stderr: new MemoryOutput(), env: {}, signals: new EventEmitter() });

let dir: string;
let db: Db;
let file: string;
// Few deliveries per second (about 20): a noisy run, so p95 moves by chance. The seeds are fixed, so
// every number below is the same on every run of the test; the first test checks its precondition.
const shape = { seconds: 40, medianMs: 40, deliveriesPerUser: 0.05 };
// About 240 deliveries a second for a minute: a 20% slowdown stands out of this run's noise.
const busy = { seconds: 60, medianMs: 40 };
beforeAll(() => {
  dir = tempDir('rehearse-noise-');
  ({ db, file } = openTemp(dir));
  insertRun(db, { ...shape, release: 'base', latencySeed: 'draw-4' });
  insertRun(db, { ...shape, release: 'again', latencySeed: 'draw-1' });
  insertRun(db, { ...busy, release: 'busy', latencySeed: 'busy-1' });
  insertRun(db, { ...busy, release: 'busy-again', latencySeed: 'busy-2' });
  insertRun(db, { ...busy, release: 'slower', latencySeed: 'busy-2', latencyScale: 1.2 });
  insertRun(db, { ...shape, release: 'old', latencySeed: 'draw-5', secondHistograms: false });
  insertRun(db, { ...shape, release: 'fast', medianMs: 0.3, latencySeed: 'draw-5' });
  insertRun(db, { ...shape, release: 'fast-doubled', medianMs: 0.3, latencySeed: 'draw-6', latencyScale: 2 });
});
afterAll(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const p95 = (c: Comparison) => c.metrics.find((m) => m.key === 'p95')!;

describe('compare knows the run-to-run noise', () => {
  it('does not flag a second draw of the same run, though its p95 rose by more than the rule', () => {
    const c = compareRunsByName(db, 'base', 'again', { failOn: 'p95+10%' });
    const m = p95(c);
    // The precondition that makes this test worth having: the plain rule would have failed.
    expect(m.relative!).toBeGreaterThan(0.1);
    expect(evaluateFailOn(parseFailOn('p95+10%'), loadFigures('base'), loadFigures('again'))[0]!.pass).toBe(false);
    expect(m.withinNoise).toBe(true);
    expect(m.relativeInterval!.low).toBeLessThan(0);
    expect(m.relativeInterval!.high).toBeGreaterThan(m.relative!);
    expect(c.failOn!.pass).toBe(true);
    expect(c.failOn!.clauses[0]).toMatchObject({ withinNoise: true, belowFloor: false, pass: true });
    expect(c.failOn!.clauses[0]!.reason).toMatch(/^rose by \d+(\.\d+)?% \(95% interval -\d+(\.\d+)?%\.\.\+\d+(\.\d+)?%\): within noise, not surely more than 10%$/);
    expect(c.noise).toMatchObject({ method: 'moving-block bootstrap over seconds', paired: true, replicates: 1000, blockLengthS: 5, level: 0.95, latencyFloorMs: 5, unknown: null, histograms: true });
    expect(typeof c.noise!.generatorAllowanceMs).toBe('number');
  });

  it('flags a run whose every latency is 20% slower, beyond the noise, and not the same run unslowed', () => {
    const same = compareRunsByName(db, 'busy', 'busy-again', { failOn: 'p95+10%, p50+10%' });
    expect(same.failOn!.pass).toBe(true);
    expect(p95(same).relativeInterval!.high).toBeLessThan(0.2);
    const c = compareRunsByName(db, 'busy', 'slower', { failOn: 'p95+10%, p50+10%' });
    expect(p95(c).withinNoise).toBe(false);
    expect(p95(c).relativeInterval!.low).toBeGreaterThan(0.1);
    expect(c.failOn!.pass).toBe(false);
    expect(c.failOn!.clauses.map((r) => r.pass)).toEqual([false, false]);
    expect(c.failOn!.clauses[0]!.reason).toMatch(/^rose by \d+(\.\d+)?% \(95% interval \+\d+(\.\d+)?%\.\.\+\d+(\.\d+)?%\), more than 10%, beyond the noise$/);
  });

  it('gives the same answer every time (seeded)', () => {
    const one = compareRunsByName(db, 'busy', 'slower', { failOn: 'p95+10%' });
    const two = compareRunsByName(db, 'busy', 'slower', { failOn: 'p95+10%' });
    expect(two).toEqual(one);
  });

  it('never fails a latency change under the floor, and the floor can be lowered', () => {
    const c = compareRunsByName(db, 'fast', 'fast-doubled', { failOn: 'p95+10%' });
    expect(p95(c).relative!).toBeGreaterThan(0.5);
    expect(p95(c).change!).toBeLessThan(1);
    expect(c.failOn!.clauses[0]).toMatchObject({ pass: true, belowFloor: true });
    expect(c.failOn!.clauses[0]!.reason).toMatch(/but by less than the 5 ms latency floor: not a regression$/);
    const strict = compareRunsByName(db, 'fast', 'fast-doubled', { failOn: 'p95+10%', latencyFloorMs: 0 });
    expect(strict.failOn!.pass).toBe(false);
  });

  it("does not charge the target with a latency rise no larger than the generator's own extra lateness", () => {
    const base = loadFigures('busy');
    const lat = (p95: number) => ({ ...base, latency: { ...base.latency, all: { ...base.latency.all!, p95 } } });
    const lag = (p99: number) => ({ ...base, scheduleLag: { p50: 1, p95: 2, p99, max: p99 } });
    const noise = { changes: new Map(), latencyFloorMs: 1, generatorAllowanceMs: 30, unknown: null };
    const [excused] = evaluateFailOn(parseFailOn('p95+10%'), lat(100), lat(125), noise);
    expect(excused).toMatchObject({ pass: true, belowFloor: true });
    expect(excused!.reason).toBe("rose by 25%, but by no more than run B's generator ran late beyond run A's (schedule lag p99 +30ms): the generator's lateness, not the target's");
    expect(evaluateFailOn(parseFailOn('p95+10%'), lat(100), lat(131), noise)[0]!.pass).toBe(false);
    // The generator's own lag is never excused by itself.
    expect(evaluateFailOn(parseFailOn('scheduleLag.p99+10%'), lag(10), lag(40), noise)[0]!.pass).toBe(false);
    expect(compareRunsByName(db, 'busy', 'slower').noise!.generatorAllowanceMs).toBeGreaterThanOrEqual(0);
  });

  it('falls back to the plain comparison, loudly, for runs stored without per-second histograms', async () => {
    const c = compareRunsByName(db, 'old', 'slower', { failOn: 'p95+10%' });
    expect(c.noise!.unknown).toMatch(/^run 6 has no per-second histograms \(stored before migration 006\): noise unknown$/);
    expect(p95(c).withinNoise).toBeNull();
    expect(c.noise!.histograms).toBe(false);
    const plain = evaluateFailOn(parseFailOn('p95+10%'), loadFigures('old'), loadFigures('slower'))[0]!;
    expect(c.failOn!.clauses[0]!.pass).toBe(plain.pass);
    const out = io();
    await main(['node', 'rehearse', 'compare', 'old', 'slower', '--results', file], out);
    expect(out.stderr.text()).toContain('WARNING: run 6 has no per-second histograms (stored before migration 006): noise unknown.');
    expect(out.stdout.text()).toContain('Noise unknown: run 6 has no per-second histograms');
  });

  it('prints each latency change with its interval and names the percentile it shows', async () => {
    const out = io();
    expect(await main(['node', 'rehearse', 'compare', 'base', 'again', '--results', file, '--fail-on', 'p95+10%'], out)).toBe(0);
    const text = out.stdout.text();
    expect(text).toMatch(/p95 latency, all\s+\S+ms\s+\S+ms\s+\+\S+ms \(\+\d+\.\d%\)\s+-\d+(\.\d)?%\.\.\+\d+(\.\d)?%: within noise\s+≈ noise/);
    expect(text).toContain('Latency percentiles are over all expected pairs (a lost pair ranks last, docs/slo.md).');
    expect(text).toContain('--fail-on p95+10%: no regression');
    const json = io();
    await main(['node', 'rehearse', 'compare', 'base', 'slower', '--results', file, '--json', '--fail-on', 'p95+10%'], json);
    const c = JSON.parse(json.stdout.text()) as Comparison;
    expect(Object.keys(p95(c)).sort()).toEqual(['a', 'b', 'change', 'changeInterval', 'direction', 'key', 'label', 'relative', 'relativeInterval', 'unit', 'withinNoise']);
    expect(c.metrics.find((m) => m.key === 'lost')).toMatchObject({ changeInterval: null, withinNoise: null });
    expect(json.stdout.text()).toMatch(/"movedInterval": \{/);
  });

  it('refuses a --latency-floor that is not a number', async () => {
    const out = io();
    expect(await main(['node', 'rehearse', 'compare', 'base', 'again', '--results', file, '--latency-floor', 'fast'], out)).toBe(2);
    expect(out.stderr.text()).toContain('--latency-floor: "fast" is not a number of milliseconds');
  });
});

function loadFigures(release: string) {
  const id = db.prepare('SELECT max(id) FROM runs WHERE release = ?').pluck().get(release) as number;
  return loadRunData(db, getRun(db, id)!).figures;
}
