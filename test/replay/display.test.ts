import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { MemoryOutput } from '../../cli/io.js';
import { followRun } from '../../cli/replay.js';
import { failureRows } from '../../db/run-failures.js';
import type { RunSummary } from '../../db/run-types.js';
import { formatSummary, formatTickLine } from '../../replay/display.js';
import type { ReplayRun, ReplayTick } from '../../replay/runner.js';

function tick(over: Partial<ReplayTick> = {}): ReplayTick {
  return {
    second: 64,
    virtualUsers: 420,
    openPolls: 410,
    publishes: 80,
    subscribes: 30,
    deliveries: 240,
    duplicates: 0,
    lost: 0,
    errors: 0,
    retries: 0,
    p50Ms: 12,
    p95Ms: 40,
    p99Ms: 80,
    maxMs: 120,
    scheduleLagP99Ms: 1,
    loopDelayP99Ms: 2,
    elapsedMs: 65_000,
    requests: 110,
    totals: { published: 5000, expected: 15000, delivered: 14990, duplicates: 1, lost: 3, errors: 7, retries: 4 },
    phase: 'running',
    ...over,
  };
}

function summary(over: Partial<RunSummary> = {}): RunSummary {
  const latency = { p50: 12, p95: 40, p99: 80, max: 300 };
  const stream = { expected: 100, delivered: 100, duplicates: 0, lost: 0, withinTarget: 1, latencyMs: latency };
  return {
    run: 7,
    release: '2.4',
    target: 'http://127.0.0.1:8080',
    scale: 1,
    mode: 'sample',
    window: 'peak',
    speed: 1,
    seed: 1,
    durationS: 60,
    learners: 40,
    proctors: 2,
    published: 2000,
    expected: 200,
    delivered: 200,
    duplicates: 0,
    lost: 0,
    withinTarget: 1,
    latencyMs: latency,
    streams: { learner: stream, control: stream },
    requests: {
      publish: 2000,
      subscribe: 500,
      errors: 27,
      retries: 20,
      errorsByKind: {
        'poll network ECONNRESET': { count: 2, example: 'ECONNRESET socket hang up\nat poll' },
        'publish HTTP 503': { count: 25, example: '503 Service Unavailable: overloaded' },
      },
    },
    scheduleLagMs: latency,
    generatorBound: false,
    pass: false,
    verdict: { pass: false, slo: 'errors=0', clauses: [], reasons: [] },
    ...over,
  };
}

describe('formatTickLine', () => {
  it('shows elapsed of planned and the time left when the planned duration is known', () => {
    const line = formatTickLine(tick(), 300_000);
    expect(line.startsWith('1:05/5:00, 3:55 left  vus 420')).toBe(true);
  });

  it('says which numbers are totals', () => {
    expect(formatTickLine(tick(), 300_000)).toMatch(/\| total: lost 3 {2}dup 1 {2}err 7$/);
  });

  it('shows the elapsed time alone without a planned duration, and draining past it', () => {
    expect(formatTickLine(tick()).startsWith('1:05  vus')).toBe(true);
    expect(formatTickLine(tick(), null).startsWith('1:05  vus')).toBe(true);
    expect(formatTickLine(tick({ phase: 'draining', elapsedMs: 302_000 }), 300_000).startsWith('5:02 draining  vus')).toBe(true);
  });

  it('never counts below 0:00 left', () => {
    expect(formatTickLine(tick({ elapsedMs: 300_400 }), 300_000).startsWith('5:00/5:00, 0:00 left')).toBe(true);
  });
});

describe('errors by kind', () => {
  it('failureRows: most frequent first, share of that kind of request, example on one line', () => {
    expect(failureRows(summary().requests)).toEqual([
      { kind: 'publish HTTP 503', count: 25, share: 25 / 2000, of: 'publishes', example: '503 Service Unavailable: overloaded' },
      { kind: 'poll network ECONNRESET', count: 2, share: 2 / 500, of: 'polls', example: 'ECONNRESET socket hang up at poll' },
    ]);
    expect(failureRows({ publish: 0, subscribe: 10, errors: 1, retries: 0, errorsByKind: { 'open HTTP 500': { count: 1, example: 'x' } } })).toEqual([
      { kind: 'open HTTP 500', count: 1, share: 0.1, of: 'requests', example: 'x' },
    ]);
    expect(failureRows({ publish: 0, subscribe: 0, errors: 0, retries: 0 })).toEqual([]);
  });

  it('formatSummary lists every kind with count, share and example under the requests line', () => {
    const text = formatSummary(summary());
    const lines = text.split('\n');
    const at = lines.indexOf('  errors by kind:');
    expect(at).toBeGreaterThan(0);
    expect(lines[at - 1]).toMatch(/^ {2}requests: 2000 publish, 500 subscribe, 27 errors/);
    expect(lines[at + 1]).toBe('    publish HTTP 503         25  1.3% of publishes  e.g. 503 Service Unavailable: overloaded');
    expect(lines[at + 2]).toBe('    poll network ECONNRESET   2  0.4% of polls  e.g. ECONNRESET socket hang up at poll');
  });

  it('formatSummary has no errors block for a run without errors or stored before errorsByKind', () => {
    const clean = summary({ requests: { publish: 10, subscribe: 10, errors: 0, retries: 0, errorsByKind: {} } });
    expect(formatSummary(clean)).not.toContain('errors by kind');
    const old = summary({ requests: { publish: 10, subscribe: 10, errors: 3, retries: 0 } });
    expect(formatSummary(old)).not.toContain('errors by kind');
  });
});

describe('followRun progress', () => {
  it('counts down the planned duration on the plain (non-TTY) lines and prints the summary with errors by kind', async () => {
    const stderr = new MemoryOutput();
    const stdout = new MemoryOutput();
    let finish: (s: RunSummary) => void = () => undefined;
    const finished = new Promise<RunSummary>((resolve) => (finish = resolve));
    const fake = Object.assign(new EventEmitter(), {
      options: { durationMs: 120_000, run: { plannedDurationMs: 600_000 } },
      finished,
      stop: () => undefined,
    });
    const following = followRun(fake as unknown as ReplayRun, { io: { stdout, stderr, env: {}, signals: new EventEmitter() }, setExitCode: () => undefined }, {
      json: false,
      resultsPath: 'results.db',
      plainEveryS: 1,
    });
    fake.emit('tick', tick({ second: 29, elapsedMs: 30_000 }));
    finish(summary());
    await following;
    // --duration (120 s) bounds the run, not the plan's 10 minutes.
    expect(stderr.text()).toContain('0:30/2:00, 1:30 left  vus 420');
    expect(stdout.text()).toContain('publish HTTP 503');
  });
});
