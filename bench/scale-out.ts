// Issue #11's benchmark: how many virtual users does `rehearse replay --workers N` hold on this
// machine, with 1 worker and with 2, against the embedded bus in a process of its own, with
// schedule lag p99 <= 10 ms and nothing lost; and, in the same invocation, Locust 2.12 in its
// distributed mode (one master, two workers) on the same scenario and user count. Each tool is the
// real thing as a user runs it (the built CLI with --json; `locust --master` and two `--worker`
// processes), measured from outside through /proc: the CPU of the whole process tree over the
// steady window, the peak memory of every process summed, and each tool's own report of delivery
// latency and schedule lag over the same steady window (Locust: --reset-stats once every user is
// spawned; rehearse: its portable result's per-second histograms of the window, added exactly;
// the summary's whole-run figures, ramp included, are shown beside them).
//
//   npm run build && npx tsx bench/scale-out.ts [--users 5000,10000,15000,19000] [--tools w1,w2,locust]
//     [--ramp 20s] [--steady 60s] [--repeat 1] [--python /usr/bin/python3]
//
// The scenario is bench/bench-plan.ts's (the one bench/locust/locustfile.py implements): classes of
// 24 learners and a proctor, every learner publishing once every 10 s and long-polling its control
// topic (timeout_s 20), every proctor long-polling its roster and sending a control every 30 s. For
// the CLI it is written as a model per size (users/25 such classes, in session from a minute before
// the 09:00 window to a minute after it) and replayed in clone mode at --scale 1 over the window
// (ramp + steady), the classes joining over the ramp: the plan is the CLI's own, so `--workers`
// splits it as it would any model. (Clone mode's copies at --scale > 1 start up to 5 min apart, so
// every size gets its own model instead; short sessions keep each learner's recorded timeline, which
// the plan holds while the learner is in session, at the ~20 publishes of the window.)

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { DateTime } from 'luxon';
import { openDatabase } from '../db/open.js';
import { writeModel, type ModelData, type TimelineRow } from '../db/model-store.js';
import { runCounts } from '../db/run-queries.js';
import type { RunSummary } from '../db/run-types.js';
import { decodeLatencyHistogram } from '../replay/merge-results.js';
import { parseRunResult } from '../replay/result.js';
import { median } from '../stats/quantile.js';
import { benchFlags } from './args.js';
import { cpuSeconds, loadAverage, memoryKb, onLines, openFds, processTree, readLocustStats, sleep, startBusProcess, stopChild } from './processes.js';

type Tool = 'w1' | 'w2' | 'locust';

const f = benchFlags({
  users: { type: 'string', default: '5000,10000,15000,19000' },
  tools: { type: 'string', default: 'w1,w2,locust' },
  ramp: { type: 'string', default: '20s' },
  steady: { type: 'string', default: '60s' },
  repeat: { type: 'string', default: '1' },
  // Debian's python (python3-locust lives in its dist-packages), not a pyenv shim.
  python: { type: 'string', default: '/usr/bin/python3' },
});
const args = {
  users: f.numbers('users'),
  tools: f.text('tools').split(',') as Tool[],
  rampMs: f.ms('ramp'),
  steadyMs: f.ms('steady'),
  repeat: f.number('repeat'),
  python: f.text('python'),
};
if (args.tools.some((t) => !['w1', 'w2', 'locust'].includes(t))) throw new Error('--tools: a comma-separated list of w1, w2, locust');
if (args.users.some((n) => !Number.isInteger(n) || n < 250)) throw new Error('--users: integers >= 250, comma-separated');
if (args.steadyMs < 15_000) throw new Error('--steady: at least 15s (the window drops 3 s after the ramp and 2 s before the end)');

// ---- the scenario as a model the CLI replays ---------------------------------------------------

const classSize = 24;
const publishEveryMs = 10_000;
const controlEveryMs = 30_000;
const pollTimeoutS = 20;
const zone = 'UTC';
const windowStart = DateTime.fromISO('2026-09-01T09:00:00', { zone });
const windowEnd = windowStart.plus({ milliseconds: args.rampMs + args.steadyMs });
const sessionStart = windowStart.toMillis() - 60_000;
const sessionEnd = windowEnd.toMillis() + 60_000;

/**
 * `users`/25 classes of 24 learners and a proctor, all in session when the window opens (so --ramp
 * spreads their joins). Learner publish phases are spread as in bench/bench-plan.ts.
 */
function scenarioModel(users: number): ModelData {
  const modelClasses = Math.round(users / (classSize + 1));
  const sessions: ModelData['sessions'] = [];
  const actors: ModelData['actors'] = [];
  const rosters: ModelData['rosters'] = [];
  const timeline: TimelineRow[] = [];
  const durationMs = sessionEnd - sessionStart;
  let id = 0;
  const session = (role: 'learner' | 'proctor', name: string, publishes: number, controls: number): number => {
    id++;
    actors.push({ id, pseudonym: name, role, clientFamily: null });
    sessions.push({ id, actorId: id, role, pseudonym: `${name}#1`, startMs: sessionStart, endMs: sessionEnd, publishTopic: null, controlTopic: null, publishes, messages: publishes + controls, polls: 0, controls, errors: 0 });
    return id;
  };
  for (let c = 0; c < modelClasses; c++) {
    const controls = Math.floor(durationMs / controlEveryMs);
    const proctor = session('proctor', `c${c}.p`, 0, controls);
    const learners: number[] = [];
    for (let i = 0; i < classSize; i++) {
      const phase = (i * 7919 + c * 104729) % publishEveryMs;
      const publishes = Math.floor((durationMs - phase) / publishEveryMs);
      const learner = session('learner', `c${c}.l${i}`, publishes, 0);
      learners.push(learner);
      rosters.push({ proctorSessionId: proctor, learnerSessionId: learner });
      for (let k = 0; k < publishes; k++) timeline.push({ sessionId: learner, atMs: phase + k * publishEveryMs, kind: 'publish', messages: 1, durationMs: 5, status: 200, targetSessionId: null });
    }
    const controlPhase = (c * 1009) % controlEveryMs;
    for (let k = 1; k <= controls; k++) {
      const atMs = controlPhase + k * controlEveryMs;
      if (atMs < durationMs) timeline.push({ sessionId: proctor, atMs, kind: 'control', messages: 1, durationMs: 5, status: 200, targetSessionId: learners[k % classSize]! });
    }
  }
  const learnerCount = modelClasses * classSize;
  return {
    overview: {
      fingerprint: `bench-scale-out-${modelClasses}x${classSize + 1}`,
      span: { startMs: sessionStart - 15 * 60_000, endMs: sessionEnd + 15 * 60_000 },
      timezone: zone,
      learners: learnerCount,
      proctors: modelClasses,
      sessions: learnerCount,
      proctorSessions: modelClasses,
      peakConcurrentLearners: learnerCount,
      peakConcurrentLearnersAtMs: sessionStart,
    },
    actors,
    sessions,
    rosters,
    timeline,
    distributions: [],
    arrivals: [{ minuteMs: sessionStart, learners: learnerCount }],
  };
}

// ---- measuring one tool ------------------------------------------------------------------------

interface Measured {
  tool: Tool;
  users: number;
  load: string;
  /** Virtual users at the busiest second (rehearse: its own count; Locust: users spawned). */
  peakUsers: number;
  /** user+system CPU of every process of the tool over the steady window, in cores. */
  cpuCores: number;
  busCpuCores: number;
  /** Peak resident memory (VmHWM) of every process of the tool, summed. */
  peakRssMb: number;
  kbPerUser: number;
  busFds: number;
  /** Over the steady window: rehearse from its per-second histograms, Locust after --reset-stats. */
  deliveryP95: number;
  lagP99: number;
  /** rehearse's summary (the whole run, ramp included): what its verdict reads. */
  wholeRunDeliveryP95: number;
  wholeRunLagP99: number;
  lost: number | null;
  errors: number;
  held: boolean;
  notes: string;
}

interface Window {
  cpuCores: number;
  busCpuCores: number;
  peakRssKb: number;
  busFds: number;
}

/**
 * CPU of the tool's process tree and of the bus over [from, to] (performance.now() times), and
 * every tool process's peak memory at the end of it. Waits on the clock only; `alive` rejects
 * when the tool exits early.
 */
async function measureWindow(root: number, busPid: number, from: number, to: number, alive: Promise<never>): Promise<Window> {
  const guard = <T>(p: Promise<T>): Promise<T> => Promise.race([p, alive]);
  await guard(sleep(from - performance.now()));
  const pids = processTree(root);
  const cpu0 = new Map(pids.map((p) => [p, cpuSeconds(p)]));
  const bus0 = cpuSeconds(busPid);
  const w0 = performance.now();
  await guard(sleep(to - performance.now()));
  let cpu = 0;
  let peakRssKb = 0;
  for (const p of processTree(root)) {
    try {
      const c = cpuSeconds(p);
      cpu += c - (cpu0.get(p) ?? c);
      peakRssKb += memoryKb(p).hwm;
    } catch {
      // A process that has already exited is not part of the window.
    }
  }
  const wall = (performance.now() - w0) / 1000;
  return { cpuCores: cpu / wall, busCpuCores: (cpuSeconds(busPid) - bus0) / wall, peakRssKb, busFds: openFds(busPid) };
}

function exitedEarly(child: ChildProcess, what: string, lines: string[]): Promise<never> {
  const p = new Promise<never>((_, reject) =>
    child.once('exit', (code, signal) => reject(new Error(`${what} exited (${signal ?? code}) before the steady window ended:\n    ${lines.slice(-8).join('\n    ')}`))),
  );
  p.catch(() => {});
  return p;
}

function waitForLine(lines: string[], child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const check = setInterval(() => {
      if (lines.some((l) => pattern.test(l))) {
        clearInterval(check);
        resolve(performance.now());
      } else if (performance.now() - started > timeoutMs || child.exitCode !== null) {
        clearInterval(check);
        reject(new Error(`no line matching ${pattern} within ${timeoutMs / 1000} s:\n    ${lines.slice(-8).join('\n    ')}`));
      }
    }, 50);
  });
}

async function measureRehearse(tool: 'w1' | 'w2', users: number, dir: string): Promise<Measured> {
  const modelPath = path.join(dir, `scenario-${users}.db`);
  if (!fs.existsSync(modelPath)) {
    const db = openDatabase(modelPath);
    writeModel(db, scenarioModel(users));
    db.close();
  }
  const bus = await startBusProcess();
  const load = loadAverage();
  const lines: string[] = [];
  const resultsPath = path.join(dir, `runs-${tool}-${users}-${Date.now()}.db`);
  const resultPath = path.join(dir, `result-${tool}-${users}-${Date.now()}.json`);
  const argv = [
    path.resolve('dist/cli/bin.js'), 'replay', '--db', modelPath, '--results', resultsPath, '--target', bus.url,
    '--mode', 'clone', '--scale', '1', '--window', `${windowStart.toISO()}/${windowEnd.toISO()}`,
    '--ramp', `${args.rampMs / 1000}s`, '--poll-timeout', String(pollTimeoutS), '--workers', tool === 'w1' ? '1' : '2', '--json', '--out', resultPath,
  ];
  process.stderr.write(`  node ${argv.map((a) => (path.isAbsolute(a) && a.startsWith(process.cwd()) ? path.relative(process.cwd(), a) : a)).join(' ')}\n`);
  try {
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    onLines(child.stderr!, (l) => lines.push(l));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      const alive = exitedEarly(child, 'rehearse', lines);
      // 'rehearse: run N against ...' is printed when every worker has started its load.
      const t0 = await waitForLine(lines, child, /^rehearse: run \d+ against/, 120_000);
      const w = await measureWindow(child.pid!, bus.child.pid!, t0 + args.rampMs + 3_000, t0 + args.rampMs + args.steadyMs - 2_000, alive);
      await Promise.race([exited, sleep(120_000).then(() => stopChild(child, 'SIGKILL'))]);
      const jsonLine = stdout.split('\n').find((l) => l.startsWith('{'));
      if (!jsonLine) throw new Error(`rehearse printed no JSON summary:\n    ${lines.slice(-8).join('\n    ')}`);
      const s = JSON.parse(jsonLine) as RunSummary;
      const db = openDatabase(resultsPath, { mustExist: true, readonly: true });
      let counts: Map<string, number>;
      try {
        counts = runCounts(db, s.run);
      } finally {
        db.close();
      }
      // The steady window's latencies, exactly: the portable result keeps every second's delivery
      // and schedule-lag histograms (microseconds), and histograms add.
      const result = parseRunResult(fs.readFileSync(resultPath, 'utf8'), resultPath);
      const delivery = decodeLatencyHistogram(null);
      const lag = decodeLatencyHistogram(null);
      const from = Math.ceil(args.rampMs / 1000) + 3;
      const to = Math.floor((args.rampMs + args.steadyMs) / 1000) - 2;
      process.stderr.write(`  per second (vus / lag p99 ms / loop p99 ms): ${result.seconds.map((x) => `${x.second}:${x.virtualUsers}/${x.scheduleLagP99Ms?.toFixed(0) ?? '-'}/${x.loopDelayP99Ms?.toFixed(0) ?? '-'}`).join(' ')}\n`);
      for (const second of result.seconds) {
        if (second.second <= from || second.second > to) continue;
        delivery.add(decodeLatencyHistogram(second.deliveryHistogram));
        lag.add(decodeLatencyHistogram(second.scheduleLagHistogram));
      }
      const peakUsers = counts.get('peakVirtualUsers') ?? Number.NaN;
      const reasons = s.verdict.reasons.length > 0 ? `; ${s.verdict.reasons.join('; ')}` : '';
      return {
        tool,
        users,
        load,
        peakUsers,
        cpuCores: w.cpuCores,
        busCpuCores: w.busCpuCores,
        peakRssMb: w.peakRssKb / 1024,
        kbPerUser: w.peakRssKb / peakUsers,
        busFds: w.busFds,
        // An empty histogram reads 0: nothing delivered in the window is no latency at all.
        deliveryP95: delivery.totalCount > 0 ? delivery.getValueAtPercentile(95) / 1000 : Number.NaN,
        lagP99: lag.getValueAtPercentile(99) / 1000,
        wholeRunDeliveryP95: s.latencyMs.p95,
        wholeRunLagP99: s.scheduleLagMs.p99,
        lost: s.lost,
        errors: s.requests.errors,
        held: lag.getValueAtPercentile(99) / 1000 <= 10 && s.lost === 0 && s.status !== 'failed',
        notes: `${s.pass ? 'PASS' : 'FAIL'}; pairs ${s.delivered}/${s.expected}; workers' CPU ${(counts.get('cpuSeconds') ?? Number.NaN).toFixed(1)} s and peak RSS ${((counts.get('peakRssBytes') ?? Number.NaN) / 1e6).toFixed(0)} MB (whole run, from run_counts)${reasons}`,
      };
    } finally {
      await stopChild(child, 'SIGKILL');
    }
  } finally {
    await stopChild(bus.child);
  }
}

/** A port nobody listens on now: bind port 0, read it, let go (Locust's master needs a number). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function measureLocust(users: number, dir: string): Promise<Measured> {
  const bus = await startBusProcess();
  const load = loadAverage();
  const masterLines: string[] = [];
  const workerLines: string[][] = [[], []];
  const locustfile = path.resolve('bench/locust/locustfile.py');
  const csv = path.join(dir, `locust-${users}-${Date.now()}`);
  const port = await freePort();
  const runTimeS = Math.round((args.rampMs + args.steadyMs) / 1000);
  const nonce = `l${Date.now().toString(36)}`;
  const env = {
    ...process.env,
    LOCUST_GC_STATS: '0',
    LOCUST_GC_FREEZE: '0',
    PUBLISH_EVERY_S: String(publishEveryMs / 1000),
    CONTROL_EVERY_S: String(controlEveryMs / 1000),
    POLL_TIMEOUT_S: String(pollTimeoutS),
    LOCUST_POOL_SIZE: String(users + 1000),
    LOCUST_POOL: 'shared',
    LOCUST_USER: 'fast',
  };
  const masterArgv = ['-m', 'locust', '-f', locustfile, '--headless', '--master', '--master-bind-host', '127.0.0.1', '--master-bind-port', String(port), '--expect-workers', '2', '--expect-workers-max-wait', '60',
    '-u', String(users), '-r', (users / (args.rampMs / 1000)).toFixed(2), '--run-time', `${runTimeS}s`, '--host', bus.url, '--only-summary', '--reset-stats', '--csv', csv, '--loglevel', 'INFO'];
  const workerArgv = ['-m', 'locust', '-f', locustfile, '--worker', '--master-host', '127.0.0.1', '--master-port', String(port), '--loglevel', 'INFO'];
  process.stderr.write(`  ${args.python} ${masterArgv.join(' ')}\n  ${args.python} ${workerArgv.join(' ')}   (x2)\n`);
  const children: ChildProcess[] = [];
  try {
    const master = spawn(args.python, masterArgv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...env, REHEARSE_NONCE: nonce } });
    children.push(master);
    onLines(master.stdout!, (l) => masterLines.push(l));
    onLines(master.stderr!, (l) => masterLines.push(l));
    // Each worker numbers its learners and proctors from 0, so each gets topics of its own: two
    // workers must not share c0.l0's topic.
    for (const i of [0, 1]) {
      const w = spawn(args.python, workerArgv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...env, REHEARSE_NONCE: `${nonce}w${i}` } });
      children.push(w);
      onLines(w.stdout!, (l) => workerLines[i]!.push(l));
      onLines(w.stderr!, (l) => workerLines[i]!.push(l));
    }
    const exited = Promise.all(children.map((c) => new Promise<void>((resolve) => (c.exitCode !== null ? resolve() : c.once('exit', () => resolve())))));
    const alive = exitedEarly(master, 'locust master', masterLines);
    const t0 = await waitForLine(masterLines, master, /Sending spawn jobs of \d+ users|Ramping to \d+ users/, 90_000);
    // The master logs it once every worker reports its spawning done; overloaded workers may not
    // within the run, and then --reset-stats never happens either: the statistics are the whole run's.
    let spawned = t0 + args.rampMs;
    let spawnNote = '';
    try {
      spawned = await waitForLine(masterLines, master, /All users spawned/, args.rampMs + 15_000);
    } catch {
      spawnNote = '; the master never logged "All users spawned" (so no --reset-stats: Locust\'s statistics cover the whole run, ramp included)';
    }
    const from = spawned + 3_000;
    const to = t0 + args.rampMs + args.steadyMs - 2_000;
    if (to - from < 5_000) throw new Error(`Locust's steady window is too short: spawning took ${((spawned - t0) / 1000).toFixed(1)} s`);
    // The master is the root of nothing here: its workers are this script's children, so the tree
    // is measured as three roots.
    const windows = await Promise.all(children.map((c, i) => measureWindow(c.pid!, bus.child.pid!, from, to, i === 0 ? alive : new Promise<never>(() => {}))));
    await Promise.race([exited, sleep(90_000)]);
    const stats = readLocustStats(`${csv}_stats.csv`);
    const delivery = stats.get('DELIVERY learner event');
    const lag = stats.get('LAG learner publish');
    const failures = [...stats.entries()].filter(([k]) => k !== ' Aggregated').reduce((n, [, r]) => n + r.failures, 0);
    const counts = workerLines.map((lines) => {
      const line = lines.find((l) => l.startsWith('LOCUST-COUNTS '));
      return line ? (JSON.parse(line.slice('LOCUST-COUNTS '.length)) as Record<string, number>) : {};
    });
    const sum = (k: string): number => counts.reduce((n, c) => n + (c[k] ?? 0), 0);
    const peakRssKb = windows.reduce((n, w) => n + w.peakRssKb, 0);
    const cpuWarnings = [...masterLines, ...workerLines.flat()].filter((l) => /CPU usage above/.test(l)).length;
    return {
      tool: 'locust',
      users,
      load,
      peakUsers: sum('learners') + sum('proctors'),
      cpuCores: windows.reduce((n, w) => n + w.cpuCores, 0),
      busCpuCores: windows[0]!.busCpuCores,
      peakRssMb: peakRssKb / 1024,
      kbPerUser: peakRssKb / users,
      busFds: windows[0]!.busFds,
      deliveryP95: delivery?.p95 ?? Number.NaN,
      lagP99: lag?.p99 ?? Number.NaN,
      wholeRunDeliveryP95: Number.NaN,
      wholeRunLagP99: Number.NaN,
      lost: null,
      errors: failures,
      held: (lag?.p99 ?? Infinity) <= 10,
      notes: `master + 2 workers, FastHttpUser, shared pool; ${counts.map((c) => `${c['learners'] ?? '?'}+${c['proctors'] ?? '?'}`).join(' and ')} learners+proctors per worker; steady delivered/published ${delivery?.count ?? 0}/${stats.get('POST publish event')?.count ?? 0}; whole run ${sum('delivered')}/${sum('published')}${spawnNote}${cpuWarnings > 0 ? `; "CPU usage above 90%" warned ${cpuWarnings}x` : ''}`,
    };
  } catch (err) {
    process.stderr.write(`    locust master: ${masterLines.slice(-8).join('\n    locust master: ')}\n`);
    throw err;
  } finally {
    for (const c of children) await stopChild(c, 'SIGKILL');
    await stopChild(bus.child);
  }
}

// ---- main --------------------------------------------------------------------------------------

const f1 = (x: number | null): string => (x !== null && Number.isFinite(x) ? x.toFixed(1) : 'n/a');
const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
const toolName: Record<Tool, string> = { w1: 'rehearse --workers 1', w2: 'rehearse --workers 2', locust: 'Locust distributed (master + 2 workers)' };

console.log(`command: npx tsx bench/scale-out.ts ${process.argv.slice(2).join(' ')}`.trim());
console.log(
  `node ${process.version}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, RLIMIT_NOFILE ${fs.readFileSync('/proc/self/limits', 'utf8').match(/Max open files\s+(\d+)\s+(\d+)/)?.slice(1).join('/') ?? '?'} (soft/hard), load ${loadAverage()}; ` +
    `ramp ${args.rampMs / 1000} s, steady ${args.steadyMs / 1000} s, window 3 s after the ramp to 2 s before the end; learners publish every ${publishEveryMs / 1000} s, proctors control every ${controlEveryMs / 1000} s, long-poll timeout_s ${pollTimeoutS}`,
);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rehearse-scale-out-'));
const rows: Measured[] = [];
try {
  for (const users of args.users) {
    for (let r = 0; r < args.repeat; r++) {
      // Rotate the order, so a drift in the machine's load does not favour one tool.
      const order = args.tools.map((_, i) => args.tools[(i + r) % args.tools.length]!);
      for (const tool of order) {
        process.stderr.write(`measuring ${toolName[tool]} with ${users} users (run ${r + 1}/${args.repeat}), load ${loadAverage()}\n`);
        try {
          const m = tool === 'locust' ? await measureLocust(users, dir) : await measureRehearse(tool, users, dir);
          process.stderr.write(`  peak users ${m.peakUsers}, cpu ${f2(m.cpuCores)} cores (bus ${f2(m.busCpuCores)}), ${f1(m.kbPerUser)} KB/user, delivery p95 ${f1(m.deliveryP95)} ms, lag p99 ${f1(m.lagP99)} ms, lost ${m.lost ?? 'n/a'}; ${m.notes}\n`);
          rows.push(m);
        } catch (err) {
          process.stderr.write(`  ${tool} ${users}: failed: ${(err as Error).message}\n`);
        }
      }
    }
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}

console.log('\nAll runs. CPU: user+system of every process of the tool over the steady window; RSS: VmHWM of every process, summed.\n');
console.log('| tool | users | peak users | load avg (1/5/15) | CPU cores | bus CPU cores | bus fds | peak RSS MB | KB/user | delivery p95 ms | lag p99 ms | whole run: delivery p95 / lag p99 ms | lost | errors | held | notes |');
console.log('|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|');
for (const r of rows) {
  console.log(
    `| ${toolName[r.tool]} | ${r.users} | ${r.peakUsers} | ${r.load} | ${f2(r.cpuCores)} | ${f2(r.busCpuCores)} | ${r.busFds} | ${r.peakRssMb.toFixed(0)} | ${f1(r.kbPerUser)} | ${f1(r.deliveryP95)} | ${f1(r.lagP99)} | ${f1(r.wholeRunDeliveryP95)} / ${f1(r.wholeRunLagP99)} | ${r.lost ?? 'n/a'} | ${r.errors} | ${r.held ? 'yes' : 'no'} | ${r.notes} |`,
  );
}
console.log('\nMedians per size and tool.\n');
console.log(`| users | ${args.tools.map((t) => `${toolName[t]}: CPU cores / KB per user / delivery p95 ms / lag p99 ms / lost`).join(' | ')} |`);
console.log(`|---:|${args.tools.map(() => '---').join('|')}|`);
for (const users of args.users) {
  const cells = args.tools.map((t) => {
    const rs = rows.filter((r) => r.users === users && r.tool === t);
    if (rs.length === 0) return 'not measured';
    const m = (g: (r: Measured) => number): number => median(rs.map(g));
    const lost = rs.some((r) => r.lost === null) ? 'n/a' : String(m((r) => r.lost ?? 0));
    return `${f2(m((r) => r.cpuCores))} / ${f1(m((r) => r.kbPerUser))} / ${f1(m((r) => r.deliveryP95))} / ${f1(m((r) => r.lagP99))} / ${lost} (${rs.length} run${rs.length > 1 ? 's' : ''})`;
  });
  console.log(`| ${users} | ${cells.join(' | ')} |`);
}
console.log('\nMost users held (schedule lag p99 <= 10 ms and nothing lost, in every run of that size):');
for (const t of args.tools) {
  const held = args.users.filter((u) => {
    const rs = rows.filter((r) => r.users === u && r.tool === t);
    return rs.length > 0 && rs.every((r) => r.held);
  });
  console.log(`  ${toolName[t]}: ${held.length > 0 ? Math.max(...held) : 'none of the sizes measured'}`);
}
// After round 2 (2026-12-01) the script stayed alive after printing, with no child left; the
// handle was not found. The tables are printed: end here rather than hang a CI job or a shell.
process.exit(0);
