// rehearse's generator against Locust in the same run: for each size, the same learner/proctor
// scenario (bench/replay.ts's synthetic plan; bench/locust/locustfile.py for Locust), each tool in
// its own process against a fresh embedded bus in a third process, both measured the same way from
// /proc (CPU over the steady window, RSS), each with its own report of delivery latency and schedule lag.
//
//   npm run build && node dist/bench/generator-vs-locust.js [--users 2000,5000,10000] [--ramp 20s] [--steady 30s] [--repeat 2]
//     [--locust-pool shared|per-user] [--tools locust,rehearse] [--python /usr/bin/python3]
//     [--locust-user fast|http] [--locust-gc-stats] [--locust-gc-freeze]
//   (npx tsx bench/generator-vs-locust.ts works too; the rehearse child then carries tsx's loader)

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchFlags } from './args.js';
import { benchPlan, planShapeFlags, readPlanShape } from './bench-plan.js';
import { startReplay, type ReplayTick } from '../replay/runner.js';
import { median } from '../stats/quantile.js';
import { cpuSeconds, loadAverage, memoryKb, onLines, readLocustStats, sleep, startBusProcess, stopChild } from './processes.js';

interface Args {
  users: number[];
  rampMs: number;
  steadyMs: number;
  publishEveryMs: number;
  controlEveryMs: number;
  repeat: number;
  python: string;
  /** LOCUST_POOL of the locustfile: one shared HTTPClientPool (default) or Locust's pool per user. */
  locustPool: 'shared' | 'per-user';
  tools: Array<'locust' | 'rehearse'>;
  /** LOCUST_USER of the locustfile: FastHttpUser (default) or HttpUser (python-requests). */
  locustUser: 'fast' | 'http';
  /** Diagnostic: have the locustfile time the garbage collector's pauses. */
  gcStats: boolean;
  /** Tuning beyond stock Locust: gc.freeze() once every user is spawned. */
  gcFreeze: boolean;
  /** Set in the child process that runs rehearse's side: its number of users. */
  asRehearse: number | undefined;
  target: string;
}

function readArgs(): Args {
  const f = benchFlags({
    ...planShapeFlags,
    users: { type: 'string', default: '2000,5000' },
    // Debian's python (python3-locust lives in its dist-packages), not a pyenv shim.
    python: { type: 'string', default: '/usr/bin/python3' },
    'locust-pool': { type: 'string', default: 'shared' },
    'locust-user': { type: 'string', default: 'fast' },
    'locust-gc-stats': { type: 'boolean', default: false },
    'locust-gc-freeze': { type: 'boolean', default: false },
    tools: { type: 'string', default: 'locust,rehearse' },
    // Internal: how the bench runs rehearse's side in a child process of its own.
    'as-rehearse': { type: 'string' },
    target: { type: 'string' },
  });
  const a: Args = {
    users: f.numbers('users'),
    ...readPlanShape(f),
    python: f.text('python'),
    locustPool: f.text('locust-pool') === 'per-user' ? 'per-user' : 'shared',
    gcStats: f.flag('locust-gc-stats'),
    gcFreeze: f.flag('locust-gc-freeze'),
    locustUser: f.text('locust-user') === 'http' ? 'http' : 'fast',
    tools: f.text('tools').split(',').filter((t): t is 'locust' | 'rehearse' => t === 'locust' || t === 'rehearse'),
    asRehearse: f.values['as-rehearse'] === undefined ? undefined : f.number('as-rehearse'),
    target: f.text('target'),
  };
  if (a.users.some((n) => !Number.isInteger(n) || n < 25)) throw new Error('--users: integers >= 25, comma-separated');
  if (a.steadyMs < 10_000) throw new Error('--steady: at least 10s (the window drops 3 s after the ramp and 2 s before the end)');
  return a;
}

// ---- the rehearse side (a child process running this file with --as-rehearse) ----------------

interface Resettable {
  reset(): void;
}

/** What the rehearse child reports on its last stdout line. */
interface RehearseResult {
  deliveryP50: number;
  deliveryP95: number;
  deliveryP99: number;
  lagP99: number;
  lagP99PerSecondMedian: number;
  delivered: number;
  expected: number;
  lost: number;
  errors: number;
  steadyHistograms: boolean;
}

async function runRehearseChild(users: number, target: string, a: Args): Promise<void> {
  const say = (line: string): void => void process.stdout.write(`${line}\n`);
  say('READY');
  const spawnedSecond = Math.ceil(a.rampMs / 1000);
  const ticks: ReplayTick[] = [];
  const run = startReplay({
    target,
    events: benchPlan(users, a),
    durationMs: a.rampMs + a.steadyMs,
    pollTimeoutS: 20,
    run: { scale: 1, mode: 'bench', window: 'bench', speed: 1, seed: 1, modelFingerprint: 'bench' },
  });
  // Locust's --reset-stats counterpart: the run's learner-delivery and schedule-lag histograms start
  // again when every user has joined. They are private fields; without them the whole run is reported.
  const internals = run as unknown as { tracker?: { histograms?: { learner?: Resettable } }; lagAll?: Resettable };
  let steadyHistograms = false;
  run.on('start', () => say('T0'));
  run.on('tick', (t) => {
    ticks.push(t);
    if (t.second === spawnedSecond) {
      const learnerHist = internals.tracker?.histograms?.learner;
      if (learnerHist && internals.lagAll) {
        learnerHist.reset();
        internals.lagAll.reset();
        steadyHistograms = true;
      }
      say('SPAWNED');
    }
  });
  const s = await run.finished;
  const windowTicks = ticks.filter((t) => t.second > spawnedSecond + 3 && t.second <= Math.floor((a.rampMs + a.steadyMs) / 1000) - 2);
  const result: RehearseResult = {
    deliveryP50: s.streams.learner.latencyMs.p50,
    deliveryP95: s.streams.learner.latencyMs.p95,
    deliveryP99: s.streams.learner.latencyMs.p99,
    lagP99: s.scheduleLagMs.p99,
    lagP99PerSecondMedian: median(windowTicks.map((t) => t.scheduleLagP99Ms ?? 0)),
    delivered: s.streams.learner.delivered,
    expected: s.streams.learner.expected,
    lost: s.streams.learner.lost,
    errors: s.requests.errors,
    steadyHistograms,
  };
  say(`RESULT ${JSON.stringify(result)}`);
}

// ---- measuring a process from /proc ---------------------------------------------------------

/** CPU and memory of one tool's process over the steady window, the same way for both tools. */
function processFigures(w: Awaited<ReturnType<typeof measureWindow>>, users: number) {
  return {
    rampS: w.rampS,
    cpuCores: w.cpuCores,
    busCpuCores: w.busCpuCores,
    rssMb: w.rssKb / 1024,
    peakRssMb: w.hwmKb / 1024,
    baselineRssMb: w.baselineKb / 1024,
    kbPerUser: w.rssKb / users,
    marginalKbPerUser: (w.rssKb - w.baselineKb) / users,
  };
}

interface Measured {
  tool: 'locust' | 'rehearse';
  users: number;
  load: string;
  /** Seconds from the first spawn to the last (the planned ramp is --ramp). */
  rampS: number;
  cpuCores: number;
  busCpuCores: number;
  rssMb: number;
  peakRssMb: number;
  baselineRssMb: number;
  kbPerUser: number;
  marginalKbPerUser: number;
  deliveryP50: number;
  deliveryP95: number;
  deliveryP99: number;
  lagP99: number;
  delivered: string;
  errors: number;
  notes: string;
}

interface Child {
  child: ChildProcess;
  /** Resolve when the tool says: ready (modules loaded, no user yet), t0 (first spawn), spawned (all users). */
  ready: Promise<void>;
  t0: Promise<void>;
  spawned: Promise<void>;
}

function markers(child: ChildProcess, patterns: { ready: RegExp; t0: RegExp; spawned: RegExp }, lines: string[]): Child {
  const waiters: Record<'ready' | 't0' | 'spawned', () => void> = { ready: () => {}, t0: () => {}, spawned: () => {} };
  const made = (k: 'ready' | 't0' | 'spawned'): Promise<void> => new Promise((resolve) => (waiters[k] = resolve));
  const c: Child = { child, ready: made('ready'), t0: made('t0'), spawned: made('spawned') };
  const each = (line: string): void => {
    lines.push(line);
    for (const k of ['ready', 't0', 'spawned'] as const) if (patterns[k].test(line)) waiters[k]();
  };
  onLines(child.stdout!, each);
  onLines(child.stderr!, each);
  return c;
}

/** Samples CPU and memory of the tool and the bus over the same steady window, for either tool. */
async function measureWindow(c: Child, busPid: number, a: Args, timeoutMs: number): Promise<{ cpuCores: number; busCpuCores: number; rssKb: number; hwmKb: number; baselineKb: number; rampS: number; exited: Promise<void> }> {
  const pid = c.child.pid!;
  const exited = new Promise<void>((resolve) => c.child.once('exit', () => resolve()));
  const deadline = sleep(timeoutMs).then(() => {
    throw new Error(`no progress within ${timeoutMs / 1000} s`);
  });
  const guard = <T>(p: Promise<T>): Promise<T> => Promise.race([p, deadline, exited.then(() => Promise.reject(new Error('exited early')))]);
  await guard(c.ready);
  let baselineKb = memoryKb(pid).rss;
  await guard(c.t0);
  const t0 = performance.now();
  baselineKb = Math.min(baselineKb, memoryKb(pid).rss);
  await guard(c.spawned);
  const spawnedAt = performance.now();
  const from = spawnedAt + 3_000;
  const to = t0 + a.rampMs + a.steadyMs - 2_000;
  if (to - from < 4_000) throw new Error(`steady window too short (${((to - from) / 1000).toFixed(1)} s): spawning took ${((spawnedAt - t0) / 1000).toFixed(1)} s`);
  await guard(sleep(from - performance.now()));
  const cpu0 = cpuSeconds(pid);
  const bus0 = cpuSeconds(busPid);
  const w0 = performance.now();
  await guard(sleep(to - performance.now()));
  const cpu1 = cpuSeconds(pid);
  const bus1 = cpuSeconds(busPid);
  const wall = (performance.now() - w0) / 1000;
  const mem = memoryKb(pid);
  return { cpuCores: (cpu1 - cpu0) / wall, busCpuCores: (bus1 - bus0) / wall, rssKb: mem.rss, hwmKb: mem.hwm, baselineKb, rampS: (spawnedAt - t0) / 1000, exited };
}

async function measureLocust(users: number, a: Args, dir: string): Promise<Measured> {
  const bus = await startBusProcess();
  const load = loadAverage();
  const lines: string[] = [];
  try {
    const csv = path.join(dir, `locust-${users}-${Date.now()}`);
    const rate = users / (a.rampMs / 1000);
    const runTimeS = Math.round((a.rampMs + a.steadyMs) / 1000);
    const locustfile = path.resolve('bench/locust/locustfile.py');
    const argv = ['-m', 'locust', '-f', locustfile, '--headless', '-u', String(users), '-r', rate.toFixed(2), '--run-time', `${runTimeS}s`, '--host', bus.url, '--only-summary', '--reset-stats', '--csv', csv, '--loglevel', 'INFO'];
    process.stderr.write(`  ${a.python} ${argv.join(' ')}\n`);
    const child = spawn(a.python, argv, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LOCUST_GC_STATS: a.gcStats ? '1' : '0', LOCUST_GC_FREEZE: a.gcFreeze ? '1' : '0', REHEARSE_NONCE: `l${Date.now().toString(36)}`, PUBLISH_EVERY_S: String(a.publishEveryMs / 1000), CONTROL_EVERY_S: String(a.controlEveryMs / 1000), LOCUST_POOL_SIZE: String(users + 1000), LOCUST_POOL: a.locustPool, LOCUST_USER: a.locustUser },
    });
    const c = markers(child, { ready: /Run time limit set/, t0: /Ramping to \d+ users/, spawned: /All users spawned/ }, lines);
    try {
      const w = await measureWindow(c, bus.child.pid!, a, a.rampMs + a.steadyMs + 60_000);
      await Promise.race([w.exited, sleep(60_000).then(() => stopChild(child, 'SIGKILL'))]);
      const stats = readLocustStats(`${csv}_stats.csv`);
      const delivery = stats.get('DELIVERY learner event');
      const lag = stats.get('LAG learner publish');
      const publishes = stats.get('POST publish event');
      const failures = [...stats.values()].reduce((n, r) => n + r.failures, 0);
      const countsLine = lines.find((l) => l.startsWith('LOCUST-COUNTS '));
      const counts = countsLine ? (JSON.parse(countsLine.slice('LOCUST-COUNTS '.length)) as Record<string, number> & { gc?: unknown }) : {};
      const cpuWarnings = lines.filter((l) => /CPU usage above/.test(l)).length;
      return {
        tool: 'locust',
        users,
        load,
        ...processFigures(w, users),
        deliveryP50: delivery?.p50 ?? Number.NaN,
        deliveryP95: delivery?.p95 ?? Number.NaN,
        deliveryP99: delivery?.p99 ?? Number.NaN,
        lagP99: lag?.p99 ?? Number.NaN,
        delivered: `steady ${delivery?.count ?? 0}/${publishes?.count ?? 0}; whole run ${counts['delivered'] ?? '?'}/${counts['published'] ?? '?'}`,
        errors: failures,
        notes: `${a.locustUser === 'http' ? 'HttpUser' : `FastHttpUser, ${a.locustPool} pool`}${a.gcFreeze ? ', gc.freeze() after spawn' : ''}; ${counts['learners'] ?? '?'} learners + ${counts['proctors'] ?? '?'} proctors${cpuWarnings > 0 ? `; Locust warned "CPU usage above 90%" ${cpuWarnings}x` : ''}${gcNote(counts['gc'])}`,
      };
    } finally {
      await stopChild(child, 'SIGKILL');
    }
  } catch (err) {
    process.stderr.write(lines.slice(-15).map((l) => `    locust: ${l}\n`).join(''));
    throw err;
  } finally {
    await stopChild(bus.child);
  }
}

/** LOCUST_GC_STATS=1 (diagnostic): the collector's pauses, which stop every greenlet at once. */
function gcNote(gc: unknown): string {
  const g = gc as { collections?: number[]; max_pause_ms?: number[]; total_pause_ms?: number[] } | undefined;
  if (!g?.collections || !g.max_pause_ms || !g.total_pause_ms) return '';
  return `; gc gen0/1/2: ${g.collections.join('/')} collections, max pause ${g.max_pause_ms.map((x) => x.toFixed(0)).join('/')} ms, total ${g.total_pause_ms.map((x) => (x / 1000).toFixed(1)).join('/')} s`;
}

async function measureRehearse(users: number, a: Args): Promise<Measured> {
  const bus = await startBusProcess();
  const load = loadAverage();
  const lines: string[] = [];
  try {
    const self = fileURLToPath(import.meta.url);
    const argv = [...process.execArgv, self, '--as-rehearse', String(users), '--target', bus.url, '--ramp', `${a.rampMs}ms`, '--steady', `${a.steadyMs}ms`, '--publish-every', `${a.publishEveryMs}ms`, '--control-every', `${a.controlEveryMs}ms`];
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const c = markers(child, { ready: /^READY$/, t0: /^T0$/, spawned: /^SPAWNED$/ }, lines);
    try {
      const w = await measureWindow(c, bus.child.pid!, a, a.rampMs + a.steadyMs + 60_000);
      await Promise.race([w.exited, sleep(90_000).then(() => stopChild(child, 'SIGKILL'))]);
      const resultLine = lines.find((l) => l.startsWith('RESULT '));
      if (!resultLine) throw new Error('the rehearse child printed no RESULT line');
      const r = JSON.parse(resultLine.slice('RESULT '.length)) as RehearseResult;
      return {
        tool: 'rehearse',
        users,
        load,
        ...processFigures(w, users),
        deliveryP50: r.deliveryP50,
        deliveryP95: r.deliveryP95,
        deliveryP99: r.deliveryP99,
        lagP99: r.lagP99,
        delivered: `whole run ${r.delivered}/${r.expected}, lost ${r.lost}`,
        errors: r.errors,
        notes: `${r.steadyHistograms ? 'steady-window histograms' : 'WHOLE-RUN histograms (private fields not found)'}; lag p99 median second ${r.lagP99PerSecondMedian.toFixed(1)} ms`,
      };
    } finally {
      await stopChild(child, 'SIGKILL');
    }
  } catch (err) {
    process.stderr.write(lines.slice(-15).map((l) => `    rehearse: ${l}\n`).join(''));
    throw err;
  } finally {
    await stopChild(bus.child);
  }
}

// ---- main -----------------------------------------------------------------------------------

const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');
const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
const ratio = (l: number, r: number): string => (Number.isFinite(l) && Number.isFinite(r) && r > 0 ? `${(l / r).toFixed(1)}x` : 'n/a');

function printRuns(rows: Measured[]): void {
  console.log('\n| tool | users | load avg (1/5/15) | ramp s | CPU cores | bus CPU cores | RSS MB (baseline) | peak RSS MB | KB/user (marginal) | delivery p50 / p95 / p99 ms | lag p99 ms | delivered/published | errors | notes |');
  console.log('|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|');
  for (const r of rows) {
    console.log(
      `| ${r.tool} | ${r.users} | ${r.load} | ${f1(r.rampS)} | ${f2(r.cpuCores)} | ${f2(r.busCpuCores)} | ${r.rssMb.toFixed(0)} (${r.baselineRssMb.toFixed(0)}) | ${r.peakRssMb.toFixed(0)} | ${r.kbPerUser.toFixed(1)} (${r.marginalKbPerUser.toFixed(1)}) | ${f1(r.deliveryP50)} / ${f1(r.deliveryP95)} / ${f1(r.deliveryP99)} | ${f1(r.lagP99)} | ${r.delivered} | ${r.errors} | ${r.notes} |`,
    );
  }
}

function printMedians(rows: Measured[], sizes: number[]): void {
  console.log('\nMedians per size; ratio = Locust / rehearse (above 1: rehearse uses less, or delivers sooner).\n');
  console.log('| users | runs | CPU cores L / r (ratio) | KB per user L / r (ratio) | marginal KB per user L / r (ratio) | delivery p95 ms L / r (ratio) | lag p99 ms L / r (ratio) |');
  console.log('|---:|---:|---|---|---|---|---|');
  for (const n of sizes) {
    const of = (tool: Measured['tool'], f: (m: Measured) => number): number => median(rows.filter((r) => r.users === n && r.tool === tool).map(f));
    const cell = (f: (m: Measured) => number, digits: (x: number) => string): string => {
      const l = of('locust', f);
      const r = of('rehearse', f);
      return `${digits(l)} / ${digits(r)} (${ratio(l, r)})`;
    };
    const runs = Math.min(rows.filter((r) => r.users === n && r.tool === 'locust').length, rows.filter((r) => r.users === n && r.tool === 'rehearse').length);
    console.log(
      `| ${n} | ${runs} | ${cell((m) => m.cpuCores, f2)} | ${cell((m) => m.kbPerUser, f1)} | ${cell((m) => m.marginalKbPerUser, f1)} | ${cell((m) => m.deliveryP95, f1)} | ${cell((m) => m.lagP99, f1)} |`,
    );
  }
}

const args = readArgs();
if (args.asRehearse !== undefined) {
  if (!args.target) throw new Error('--as-rehearse needs --target');
  await runRehearseChild(args.asRehearse, args.target, args);
} else {
  console.log(`command: node dist/bench/generator-vs-locust.js ${process.argv.slice(2).join(' ')}`.trim());
  const version = (() => {
    try {
      return execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'python3-locust']).toString();
    } catch {
      return 'unknown';
    }
  })();
  console.log(
    `Locust ${version} (Debian python3-locust, ${args.python}), node ${process.version}, ${os.cpus().length} cores, ramp ${args.rampMs} ms, steady ${args.steadyMs} ms, ` +
      `learner publish every ${args.publishEveryMs} ms, proctor control every ${args.controlEveryMs} ms, long-poll timeout_s 20; window: 3 s after the last spawn to 2 s before the end`,
  );
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rehearse-vs-locust-'));
  const rows: Measured[] = [];
  try {
    for (const users of args.users) {
      for (let r = 0; r < args.repeat; r++) {
        // Alternate which tool goes first, so a drift in the machine's load does not favour one.
        const order = r % 2 === 0 ? args.tools : [...args.tools].reverse();
        for (const tool of order) {
          process.stderr.write(`measuring ${tool} with ${users} users (run ${r + 1}/${args.repeat}), load ${loadAverage()}\n`);
          try {
            const m = tool === 'locust' ? await measureLocust(users, args, dir) : await measureRehearse(users, args);
            process.stderr.write(`  cpu ${f2(m.cpuCores)} cores, rss ${m.rssMb.toFixed(0)} MB, delivery p95 ${f1(m.deliveryP95)} ms, lag p99 ${f1(m.lagP99)} ms, ${m.delivered}\n`);
            rows.push(m);
          } catch (err) {
            process.stderr.write(`  ${tool} ${users}: failed: ${(err as Error).message}\n`);
          }
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  printRuns(rows);
  printMedians(rows, args.users);
}
