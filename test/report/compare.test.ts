import fs from 'node:fs';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../cli/program.js';
import { MemoryOutput } from '../../cli/io.js';
import { UsageError } from '../../core/errors.js';
import type { Db } from '../../db/open.js';
import { compareRunsByName, type Comparison } from '../../report/compare.js';
import { evaluateFailOn, parseFailOn } from '../../report/fail-on.js';
import type { RunFigures } from '../../report/run-figures.js';
import { insertRun, openTemp, runCli, tempDir } from './fixture-runs.js';

const io = () => ({ stdout: new MemoryOutput(), stderr: new MemoryOutput(), env: {}, signals: new EventEmitter() });

let dir: string;
let db: Db;
let file: string;
let base: number;
let same: number;
let worse: number;
beforeAll(() => {
  dir = tempDir();
  ({ db, file } = openTemp(dir));
  base = insertRun(db, { release: '2.3', medianMs: 40 });
  same = insertRun(db, { release: '2.4-rc', medianMs: 40 });
  worse = insertRun(db, { release: '2.4', medianMs: 80, lost: 4, duplicates: 3, errors: 12, retries: 9 });
});
afterAll(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function metric(c: Comparison, key: string) {
  const m = c.metrics.find((x) => x.key === key);
  if (!m) throw new Error(`no metric ${key}`);
  return m;
}

describe('compareRuns', () => {
  it('puts every metric side by side with its change and direction', () => {
    const c = compareRunsByName(db, '2.3', '2.4');
    expect(c.a.id).toBe(base);
    expect(c.b.id).toBe(worse);
    expect(c.comparable).toBe(true);
    expect(c.warnings).toEqual([]);
    const keys = c.metrics.map((m) => m.key);
    for (const k of ['requests.publish', 'delivered', 'p50', 'p95', 'p99', 'learner.p95', 'control.p99', 'withinTarget', 'lost', 'duplicates', 'errors', 'retries', 'scheduleLag.p99']) {
      expect(keys).toContain(k);
    }
    const p95 = metric(c, 'p95');
    expect(p95.b!).toBeGreaterThan(p95.a! * 1.6);
    expect(p95.direction).toBe('worse');
    expect(p95.change).toBeCloseTo(p95.b! - p95.a!, 9);
    expect(p95.relative).toBeCloseTo((p95.b! - p95.a!) / p95.a!, 9);
    expect(metric(c, 'lost')).toMatchObject({ a: 0, b: 4, change: 4, relative: null, direction: 'worse' });
    expect(metric(c, 'control.p95').direction).toBe('worse');
    expect(metric(c, 'requests.publish').direction).toBe('same');
    // The other way round, the same changes are improvements.
    const back = compareRunsByName(db, '2.4', '2.3');
    expect(metric(back, 'p95').direction).toBe('better');
    expect(metric(back, 'errors').direction).toBe('better');
  });

  it('reads latencies from the stored HDR histograms, per stream', () => {
    const c = compareRunsByName(db, String(base), String(same));
    const p50 = metric(c, 'p50');
    // lognormal(median 40) recorded in microseconds: the histogram's median is near 40 ms
    expect(p50.a!).toBeGreaterThan(30);
    expect(p50.a!).toBeLessThan(55);
    expect(metric(c, 'learner.p99').a!).toBeGreaterThan(metric(c, 'learner.p50').a!);
    expect(metric(c, 'control.p50').a).not.toBeNull();
  });

  it('warns when runs are not comparable: model, scale, window, mode, speed, generator-bound', () => {
    const d = tempDir();
    const { db: other } = openTemp(d);
    try {
      insertRun(other, { release: 'a' });
      insertRun(other, { release: 'b', fingerprint: 'ffff0000'.repeat(8), scale: 10, window: '09:30-10:30', mode: 'clone', speed: 2, generatorBound: true });
      insertRun(other, { release: 'c', status: 'interrupted' });
      const c = compareRunsByName(other, 'a', 'b');
      expect(c.comparable).toBe(false);
      const text = c.warnings.join('\n');
      expect(text).toMatch(/different models: run 1 replayed model a1b2c3d4e5f6, run 2 replayed ffff0000ffff/);
      expect(text).toContain('different scale: 5x in run 1, 10x in run 2');
      expect(text).toContain('different window: "peak" in run 1, "09:30-10:30" in run 2');
      expect(text).toContain('different mode: sample in run 1, clone in run 2');
      expect(text).toContain('different speed: 1x in run 1, 2x in run 2');
      expect(text).toMatch(/run 2: the load generator was itself the bottleneck/);
      expect(compareRunsByName(other, 'a', 'c').warnings.join('\n')).toMatch(/run 3 did not finish \(status interrupted\)/);
    } finally {
      other.close();
      fs.rmSync(d, { recursive: true, force: true });
    }
  });
});

const figures = (over: Partial<RunFigures>): RunFigures => ({
  durationS: 60,
  published: 100,
  expected: 1000,
  delivered: 1000,
  duplicates: 0,
  lost: 0,
  withinTarget: 0.99,
  publishRequests: 100,
  subscribeRequests: 500,
  errors: 0,
  retries: 0,
  latency: { all: { p50: 20, p95: 100, p99: 200, max: 400 }, learner: null, control: null },
  scheduleLag: null,
  generatorBound: false,
  verdict: 'pass',
  ...over,
});

describe('--fail-on', () => {
  it('parses metric, sign, amount and unit', () => {
    expect(parseFailOn('p95+10%, lost+0, withinTarget-1pt, control.p99+0.25s, errors+5')).toEqual([
      { text: 'p95+10%', metric: 'p95', sign: '+', amount: 10, unit: '%' },
      { text: 'lost+0', metric: 'lost', sign: '+', amount: 0, unit: 'abs' },
      { text: 'withinTarget-1pt', metric: 'withinTarget', sign: '-', amount: 1, unit: 'pt' },
      { text: 'control.p99+0.25s', metric: 'control.p99', sign: '+', amount: 250, unit: 'abs' },
      { text: 'errors+5', metric: 'errors', sign: '+', amount: 5, unit: 'abs' },
    ]);
    expect(parseFailOn('P95 + 200ms')[0]).toMatchObject({ metric: 'p95', amount: 200, unit: 'abs' });
  });

  it('names the clause in every parse error', () => {
    const cases: [string, RegExp][] = [
      ['p95+10%, lost', /clause 2 "lost": expected <metric><\+\|->/],
      ['p95+10%,,lost+0', /clause 2 "" is empty/],
      ['p96+10%', /clause 1 "p96\+10%": unknown metric "p96"\. Metrics: requests\.publish/],
      ['lost+1pt', /clause 1 "lost\+1pt": "pt" \(percentage points\) applies to fractions/],
      ['withinTarget-1', /clause 1 "withinTarget-1": withinTarget is a fraction; say "pt"/],
      ['lost+5ms', /clause 1 "lost\+5ms": "ms" applies to latencies/],
      ['p95+ten%', /clause 1 "p95\+ten%"/],
    ];
    for (const [expr, pattern] of cases) {
      try {
        parseFailOn(expr);
        expect.unreachable(expr);
      } catch (err) {
        expect(err).toBeInstanceOf(UsageError);
        expect((err as Error).message).toMatch(/^--fail-on: /);
        expect((err as Error).message).toMatch(pattern);
      }
    }
  });

  it('fails a clause only beyond its allowance, in the stated direction', () => {
    const a = figures({});
    const check = (expr: string, b: RunFigures) => evaluateFailOn(parseFailOn(expr), a, b).map((r) => r.pass);
    const lat = (p95: number) => ({ all: { p50: 20, p95, p99: 200, max: 400 }, learner: null, control: null });
    expect(check('p95+10%', figures({ latency: lat(110) }))).toEqual([true]); // exactly at the limit
    expect(check('p95+10%', figures({ latency: lat(110.5) }))).toEqual([false]);
    expect(check('p95+10%', figures({ latency: lat(50) }))).toEqual([true]); // improvements never fail
    expect(check('p95+5ms', figures({ latency: lat(106) }))).toEqual([false]);
    expect(check('lost+0', figures({ lost: 1 }))).toEqual([false]);
    expect(check('lost+0', figures({ lost: 0 }))).toEqual([true]);
    expect(check('withinTarget-1pt', figures({ withinTarget: 0.98 }))).toEqual([true]);
    expect(check('withinTarget-1pt', figures({ withinTarget: 0.9799 }))).toEqual([false]);
    expect(check('errors+10%', figures({ errors: 1 }))).toEqual([false]); // from 0 any rise is unbounded
    expect(check('delivered-1%', figures({ delivered: 990 }))).toEqual([true]);
    expect(check('delivered-1%', figures({ delivered: 989 }))).toEqual([false]);
    const [missing] = evaluateFailOn(parseFailOn('learner.p95+10%'), figures({ latency: { all: null, learner: { p50: 1, p95: 2, p99: 3, max: 4 }, control: null } }), a);
    expect(missing).toMatchObject({ pass: false, reason: 'not measured in run B, so it cannot be checked' });
    const [neither] = evaluateFailOn(parseFailOn('control.p95+10%'), a, a);
    expect(neither).toMatchObject({ pass: true, reason: 'measured in neither run' });
  });
});

describe('rehearse compare (the built binary)', () => {
  it('exits 0 and prints the table when nothing regressed', async () => {
    const r = await runCli(['compare', '2.3', '2.4-rc', '--results', file, '--fail-on', 'p95+10%, lost+0, withinTarget-1pt']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Comparing run A #1 2\.3 .* with run B #2 2\.4-rc/);
    expect(r.stdout).toMatch(/p95 latency, all\s+\S+ms\s+\S+ms/);
    expect(r.stdout).toContain('--fail-on p95+10%, lost+0, withinTarget-1pt: no regression');
    expect(r.stdout).not.toContain('\u001b['); // no colour when not on a TTY
  });

  it('exits 1 on a regression and says which clause failed and by how much', async () => {
    const r = await runCli(['compare', 'release:2.3', 'latest', '--db', file, '--fail-on', 'p95+10%, lost+0, duplicates+5']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('REGRESSION');
    // Far beyond the noise: the whole 95% interval of the change is above +10%.
    expect(r.stdout).toMatch(/FAIL p95\+10%: rose by \d+(\.\d+)?% \(95% interval \+\d+(\.\d+)?%\.\.\+\d+(\.\d+)?%\), more than 10%, beyond the noise/);
    expect(r.stdout).toMatch(/FAIL lost\+0: rose by 4, more than 0/);
    expect(r.stdout).toMatch(/ok {3}duplicates\+5: rose by 3, within 5/);
    expect(r.stdout).toMatch(/p95 latency, all .*▼ worse/);
  });

  it('exits 2 naming the clause when --fail-on does not parse, before reading runs', async () => {
    const r = await runCli(['compare', 'nope', 'latest', '--results', file, '--fail-on', 'p95+10%, lost']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--fail-on: clause 2 "lost"');
  });

  it('exits 2 listing what exists when a run name is unknown (in-process)', async () => {
    const out = io();
    expect(await main(['node', 'rehearse', 'compare', '2.2', 'latest', '--results', file], out)).toBe(2);
    expect(out.stderr.text()).toMatch(/run "2\.2" not found .*Releases: 2\.3 \(#1\), 2\.4-rc \(#2\), 2\.4 \(#3\)/);
  });

  it('--json prints the documented shape; warnings go to stderr loudly', async () => {
    const d = tempDir();
    const { db: other, file: otherFile } = openTemp(d);
    insertRun(other, { release: 'x' });
    insertRun(other, { release: 'y', scale: 10 });
    other.close();
    try {
      const r = await runCli(['compare', 'x', 'y', '--results', otherFile, '--json', '--fail-on', 'p95+50%']);
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/^WARNING: runs 1 and 2 are not comparable:\n {2}- different scale: 5x in run 1, 10x in run 2\n$/);
      const c = JSON.parse(r.stdout) as Comparison;
      expect(Object.keys(c).sort()).toEqual(['a', 'b', 'comparable', 'failOn', 'metrics', 'noise', 'warnings']);
      expect(c.a).toMatchObject({ id: 1, release: 'x', status: 'finished', verdict: 'pass' });
      expect(c.comparable).toBe(false);
      // The old fields stay; the noise adds the change's interval (null for exact counts such as this one).
      expect(Object.keys(c.metrics[0]!).sort()).toEqual(['a', 'b', 'change', 'changeInterval', 'direction', 'key', 'label', 'relative', 'relativeInterval', 'unit', 'withinNoise']);
      expect(c.metrics[0]).toMatchObject({ changeInterval: null, relativeInterval: null, withinNoise: null });
      expect(c.failOn).toMatchObject({ expression: 'p95+50%', pass: true });
      expect(Object.keys(c.failOn!.clauses[0]!).sort()).toEqual(
        ['a', 'amount', 'b', 'belowFloor', 'metric', 'moved', 'movedInterval', 'pass', 'reason', 'sign', 'text', 'unit', 'withinNoise'].sort(),
      );
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });

  it('documents the --fail-on syntax in --help (in-process)', async () => {
    const out = io();
    expect(await main(['node', 'rehearse', 'compare', '--help'], out)).toBe(0);
    expect(out.stdout.text()).toContain('p95+10%, lost+0, withinTarget-1pt');
    expect(out.stdout.text()).toMatch(/Npt\s+percentage points/);
  });
});
