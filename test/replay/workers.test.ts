import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli, until, type Spawned } from '../servers/cli-process.js';
import { FaultInjector, parseFault, startBus, type FaultConfig, type RunningBus } from '../../bus/index.js';
import { openDatabase } from '../../db/open.js';
import { getRun, listRuns, runSeconds, type StoredRun } from '../../db/run-queries.js';
import type { RunSecond, RunSummary } from '../../db/run-types.js';
import { writeSyntheticModel } from '../plan/synthetic-db.js';

// `replay --workers` through the built CLI (dist/, `npm run build` first) against the embedded bus
// in this process (so its fault counters are at hand): the same plan split over two worker
// processes sends and expects exactly what one process does, a killed worker fails the run naming
// its shard, Ctrl-C drains every worker, and the flag is refused when it makes no sense.

let dir: string;
let model: string;
const buses: RunningBus[] = [];
const children: ChildProcess[] = [];

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rehearse-workers-'));
  model = path.join(dir, 'model.db');
  // The synthetic day has one proctor per class and disjoint rosters: a learner's message is
  // expected by at most one subscriber (its proctor), a control by at most one (its target).
  writeSyntheticModel(model, { classes: 20, seed: 2 });
});
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const b of buses.splice(0)) await b.close();
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const busSeed = 11;

async function bus(faults?: FaultConfig): Promise<RunningBus> {
  const b = await startBus({ port: 0, seed: busSeed, ...(faults ? { faults } : {}) });
  buses.push(b);
  return b;
}

function rehearse(args: string[]): Spawned {
  return spawnCli(args, children);
}


/** The CLI's exit, or 'hung' if it has not exited within `ms`. */
async function exitWithin(r: Spawned, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), ms)));
  try {
    return await Promise.race([r.exit, hung]);
  } finally {
    clearTimeout(timer);
  }
}

/** A process that exists and is not a zombie (an exited child its parent has not reaped yet). */
function running(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}

/** The live worker processes the CLI `parent` forked (their parent pid, from /proc). */
function workersOf(parent: number): number[] {
  const pids: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      // Fields after the command (which may hold spaces): state, ppid, ...
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(ppid) !== parent || state === 'Z') continue;
      if (fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('worker-main')) pids.push(Number(name));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids.sort((a, b) => a - b);
}

function storedRun(results: string, id: number): { run: StoredRun; seconds: RunSecond[] } {
  const db = openDatabase(results, { mustExist: true });
  try {
    return { run: getRun(db, id)!, seconds: runSeconds(db, id) };
  } finally {
    db.close();
  }
}

/** Ten recorded seconds a wall second, for six seconds: about 730 messages from 6 classes. */
const planFlags = ['--scale', '1', '--speed', '10', '--seed', '1', '--window', 'peak', '--mode', 'sample'];
const plan = [...planFlags, '--duration', '6s'];
/**
 * Only the subject decides the verdict: the machine is shared, so generator lag and latency are
 * loose, and the loss limit stays 15 s, far above any delivery a busy machine delays (7 s seen at a
 * load average of 10 on two cores), so every lost pair is a dropped message.
 */
const loose = ['--max-lag', '2s', '--slo', 'p95<=5s, lost>15s, duplicates=0'];

describe('rehearse replay --workers (CLI, embedded bus)', () => {
  it('two workers send and expect exactly what one process does; losses and duplicates match each bus', async () => {
    // 2% dropped: p95 stays a delivered pair's latency (lost pairs count as the loss limit in it).
    const faults: FaultConfig = { ...parseFault('drop=0.02'), ...parseFault('dup=0.05') };
    const results = path.join(dir, 'equal.db');
    // Side by side, so both runs see the same machine (the counts do not depend on it; the
    // latencies compared below do).
    const outcomes = await Promise.all(
      [['--workers', '2'], []].map(async (workers) => {
        const b = await bus(faults);
        const r = rehearse(['replay', '--db', model, '--target', b.url, ...plan, ...loose, '--results', results, '--json', ...workers]);
        const { code } = await r.exit;
        expect(r.stderr()).not.toMatch(/internal error/);
        expect(r.stdout(), r.stderr()).toMatch(/^\{/);
        return { summary: JSON.parse(r.stdout()) as RunSummary, b, code };
      }),
    );
    const [split, single] = outcomes as [(typeof outcomes)[number], (typeof outcomes)[number]];

    // The plan decides what is sent and expected, however it is split.
    expect(split.summary.published).toBeGreaterThan(500);
    for (const key of ['published', 'expected', 'learners', 'proctors'] as const) expect([key, split.summary[key]]).toEqual([key, single.summary[key]]);
    for (const stream of ['learner', 'control'] as const) expect([stream, split.summary.streams[stream].expected]).toEqual([stream, single.summary.streams[stream].expected]);

    for (const { summary, b, code } of outcomes) {
      const stats = b.stats();
      // Every message has exactly one expected subscriber (at most one by the model, and as many
      // pairs as messages), so each injected fault on a run message is exactly one pair.
      expect(summary.expected).toBe(summary.published);
      // The pre-flight's messages came first (the bus decides fates in arrival order): take theirs out.
      const preflightMessages = stats.publishedMessages - summary.published;
      expect(preflightMessages).toBeGreaterThanOrEqual(1);
      const preflight = new FaultInjector(faults, busSeed);
      const preflightFates = Array.from({ length: preflightMessages }, () => preflight.messageFate());
      const runDrops = stats.faults.drop - preflightFates.filter((f) => f.drop).length;
      const runDups = stats.faults.dup - preflightFates.filter((f) => f.dup).length;
      expect(runDrops).toBeGreaterThan(0);
      expect(runDups).toBeGreaterThan(0);
      expect(summary.lost).toBe(runDrops);
      expect(summary.duplicates).toBe(runDups);
      expect(summary.delivered + summary.lost).toBe(summary.expected);
      expect(summary.requests.errors).toBe(0);
      expect(summary.pass).toBe(false);
      expect(code).toBe(1);
    }

    // One run stored for the split, as a group of two shards with the seconds joined.
    expect(split.summary.shards).toEqual({ count: 2, indexes: [0, 1] });
    expect(single.summary.shards).toBeUndefined();
    const { run, seconds } = storedRun(results, split.summary.run);
    expect(run).toMatchObject({ status: 'finished', pass: false, shardCount: 2, shardIndex: null });
    expect(run.groupId).toMatch(/\S/);
    expect(run.summary).toEqual(split.summary);
    expect(seconds.length).toBeGreaterThanOrEqual(6);
    expect(seconds.reduce((a, s) => a + s.deliveries, 0)).toBe(split.summary.delivered);
    expect(storedRun(results, single.summary.run).run).toMatchObject({ shardCount: 1, groupId: null });

    // Latency is measured, not planned: close, within what a shared machine lets two runs differ by.
    // Latency is charged from the scheduled time, so a generator running late adds its lag to it.
    const p95 = [split.summary.latencyMs.p95, single.summary.latencyMs.p95];
    const lag = Math.max(split.summary.scheduleLagMs.p99, single.summary.scheduleLagMs.p99);
    expect(Math.abs(p95[0]! - p95[1]!)).toBeLessThanOrEqual(1000 + lag);
  }, 90_000);

  /** Starts a 20 s two-worker run and resolves once both workers send load (the run line is printed then). */
  async function loadRunning(results: string): Promise<{ r: Spawned; workers: number[] }> {
    const b = await bus();
    const r = rehearse(['replay', '--db', model, '--target', b.url, ...planFlags, '--duration', '20s', ...loose, '--results', results, '--json', '--workers', '2']);
    await until(() => /rehearse: run \d+ against/.test(r.stderr()) || r.child.exitCode !== null, 30_000, 'both workers to start their load');
    expect(r.child.exitCode, r.stderr()).toBeNull();
    const workers = workersOf(r.child.pid!);
    expect(workers).toHaveLength(2);
    return { r, workers };
  }

  it('a killed worker fails the run naming its shard, and takes no other worker with it unstopped', async () => {
    const results = path.join(dir, 'killed.db');
    const { r, workers } = await loadRunning(results);
    const [victim, survivor] = workers as [number, number];
    process.kill(victim, 'SIGKILL');
    const { code } = await r.exit;
    expect(code, r.stderr()).toBe(1);
    const summary = JSON.parse(r.stdout()) as RunSummary;
    expect(summary.pass).toBe(false);
    const reasons = summary.verdict.reasons.join('\n');
    const named = /worker (\d) of 2 \(shard (\d)\/2\) was killed by SIGKILL after [\d.]+ s of load/.exec(reasons);
    expect(named, reasons).not.toBeNull();
    expect(Number(named![1]) - 1).toBe(Number(named![2]));
    // One shard named, the one that died: the survivor was stopped, not failed.
    expect(reasons.match(/\(shard [01]\/2\)/g)).toHaveLength(1);
    expect(storedRun(results, summary.run).run).toMatchObject({ status: 'failed', pass: false, shardCount: 2 });
    await until(() => !running(survivor), 5_000, `the other worker (pid ${survivor}) to exit`);
    expect(running(victim)).toBe(false);
  });

  it('workers whose CLI was killed (SIGKILL, nothing to tell them) stop on their own', async () => {
    const { r, workers } = await loadRunning(path.join(dir, 'orphans.db'));
    process.kill(r.child.pid!, 'SIGKILL');
    await r.exit;
    for (const pid of workers) await until(() => !running(pid), 10_000, `orphaned worker pid ${pid} to exit`);
  });

  it('Ctrl-C drains both workers, stores one interrupted run and leaves no worker behind', async () => {
    const results = path.join(dir, 'interrupted.db');
    const { r, workers } = await loadRunning(results);
    // Only the CLI gets it here; in a terminal every worker gets it too, and ignores it.
    r.child.kill('SIGINT');
    const { code } = await r.exit;
    expect(code, r.stderr()).toBe(1);
    expect(r.stderr()).toMatch(/SIGINT: stopping; draining/);
    const summary = JSON.parse(r.stdout()) as RunSummary;
    expect(summary.shards).toEqual({ count: 2, indexes: [0, 1] });
    // Nothing was dropped, and the workers drained: every pair was delivered.
    expect(summary.lost).toBe(0);
    expect(summary.delivered).toBe(summary.expected);
    expect(summary.durationS).toBeLessThan(20);
    const db = openDatabase(results, { mustExist: true });
    try {
      expect(listRuns(db).map((run) => run.id)).toEqual([summary.run]);
    } finally {
      db.close();
    }
    expect(storedRun(results, summary.run).run).toMatchObject({ status: 'interrupted', pass: false, shardCount: 2 });
    for (const pid of workers) await until(() => !running(pid), 5_000, `worker pid ${pid} to exit`);
  });

  it('Ctrl-C before the load starts (a slow pre-flight) ends the run at once as interrupted, not failed', async () => {
    // The bus holds every answer carrying a message for 1.5 s: the pre-flight's long-poll waits that long.
    const b = await bus(parseFault('latency=1500ms'));
    const results = path.join(dir, 'early.db');
    const r = rehearse(['replay', '--db', model, '--target', b.url, ...planFlags, '--duration', '20s', ...loose, '--results', results, '--json', '--workers', '2']);
    // The pre-flight's answer is being held: the CLI listens for signals before it sends anything.
    await until(() => b.stats().faults.latency > 0 || r.child.exitCode !== null, 20_000, 'the pre-flight to reach the bus');
    r.child.kill('SIGINT');
    const exited = await exitWithin(r, 20_000);
    expect(exited, r.stderr()).not.toBe('hung');
    expect(exited).toMatchObject({ code: 1 });
    expect(r.stderr()).not.toMatch(/failed|killed/);
    const summary = JSON.parse(r.stdout()) as RunSummary;
    expect(summary).toMatchObject({ status: 'interrupted', pass: false, published: 0, expected: 0 });
    expect(storedRun(results, summary.run).run).toMatchObject({ status: 'interrupted', pass: false, shardCount: 2 });
    // Nothing but the pre-flight reached the bus.
    expect(b.stats().publishedMessages).toBe(1);
  });

  it('--workers auto says how many and why; bad values and --shard with it are refused naming the flag', async () => {
    const b = await bus();
    const results = path.join(dir, 'auto.db');
    // The choice is the subject: a busy machine's latency or lag must not fail this run.
    const lenient = ['--max-lag', '10s', '--slo', 'p95<=15s, lost>15s, duplicates=0'];
    const auto = rehearse(['replay', '--db', model, '--target', b.url, ...planFlags, '--duration', '2s', ...lenient, '--results', results, '--json', '--workers', 'auto']);
    const { code } = await auto.exit;
    const chosen = /rehearse: --workers auto: (\d+) \((\d+) virtual users at peak, up to \d+ per worker\)/.exec(auto.stderr());
    expect(chosen, auto.stderr()).not.toBeNull();
    expect(code, auto.stderr()).toBe(0);
    const summary = JSON.parse(auto.stdout()) as RunSummary;
    // The synthetic day peaks far below one worker's share: one worker, which is one whole shard.
    expect(chosen![1]).toBe('1');
    expect(summary.shards).toBeUndefined();
    expect(storedRun(results, summary.run).run).toMatchObject({ status: 'finished', shardCount: 1, options: expect.objectContaining({ workers: 1 }) });
    const sent = (): number => b.stats().publishRequests + b.stats().subscribeRequests;
    const sentByAuto = sent();

    for (const [args, message] of [
      [['--workers', '0'], /--workers.*expected a number of processes from 1 to 64, or auto, got '0'/],
      [['--workers', 'x'], /--workers.*got 'x'/],
      [['--workers', '2', '--shard', '0/2'], /--workers.*--shard/],
    ] as const) {
      const refused = rehearse(['replay', '--db', model, '--target', b.url, '--duration', '2s', '--results', path.join(dir, 'refused.db'), ...args]);
      const { code: refusedCode } = await refused.exit;
      expect([args.join(' '), refusedCode]).toEqual([args.join(' '), 2]);
      expect(refused.stderr()).toMatch(message);
    }
    // Refused before anything was opened or sent.
    expect(fs.existsSync(path.join(dir, 'refused.db'))).toBe(false);
    expect(sent()).toBe(sentByAuto);
  });
});
