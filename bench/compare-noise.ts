// Does `rehearse compare --fail-on "p95+10%"` tell a real slowdown from run-to-run noise?
// Makes pairs of runs against the embedded bus (in-process, port 0) and counts how many pairs
// the rule flags:
//   idle:   10 pairs of identical runs against the same idle bus (the reported false regression;
//           goal: 0 flagged)
//   slow:   10 pairs where run A meets a bus that holds each delivery for latency=L+J and run B a
//           bus that holds it 20% longer (1.2 L + 1.2 J): a real 20% slowdown (goal: 10 flagged).
//           L+J defaults to 100ms+100ms, so the slowdown (20-40 ms) is not drowned by the tens of
//           milliseconds a busy shared machine adds to a tail percentile.
//   jitter: the slow pairs' A runs compared with each other (identical runs on a bus with
//           realistic latency; goal: 0 flagged)
// Runs are stored in --results under release labels (idle-A3, slow-B7, ...), so the compare half
// can be re-run on them with --reuse after a change to the method.
//
//   npx tsx bench/compare-noise.ts [--pairs 10] [--duration 20s] [--vus 250] [--latency 100ms+100ms]
//     [--rule "p95+10%"] [--results bench/out/compare-noise.db] [--reuse]

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseFault, startBus, type RunningBus } from '../bus/index.js';
import { openDatabase, type Db } from '../db/open.js';
import { resolveRun } from '../db/run-queries.js';
import { compareRunsByName } from '../report/compare.js';
import { evaluateFailOn, parseFailOn } from '../report/fail-on.js';
import { loadRunData } from '../report/run-figures.js';
import { runReplay } from '../replay/runner.js';
import { benchFlags } from './args.js';
import { benchPlan } from './bench-plan.js';

const f = benchFlags({
  pairs: { type: 'string', default: '10' },
  duration: { type: 'string', default: '20s' },
  vus: { type: 'string', default: '250' },
  latency: { type: 'string', default: '100ms+100ms' },
  rule: { type: 'string', default: 'p95+10%' },
  results: { type: 'string', default: 'bench/out/compare-noise.db' },
  reuse: { type: 'boolean', default: false },
});
const pairs = f.number('pairs');
const durationMs = f.ms('duration');
const vus = f.number('vus');
const rule = f.text('rule');
const resultsFile = f.text('results');
const [fixedText, jitterText] = f.text('latency').split('+');
const slower = (text: string | undefined): string => {
  const ms = text === undefined ? 0 : Number.parseFloat(text);
  return `${Math.round(ms * 1.2 * 1000) / 1000}ms`;
};
const baseFault = `latency=${f.text('latency')}`;
const slowFault = `latency=${slower(fixedText)}${jitterText === undefined ? '' : `+${slower(jitterText)}`}`;

const run = { scale: 1, mode: 'bench', window: 'bench', speed: 1, seed: 1, modelFingerprint: 'bench-compare-noise' };
// One message per learner every 2 s, a control message per class every 5 s: ~130 deliveries/s,
// light enough that the generator is never the bottleneck on a shared 2-core machine.
const shape = { rampMs: 2000, steadyMs: durationMs - 2000, publishEveryMs: 2000, controlEveryMs: 5000 };

async function makeRun(db: Db, bus: RunningBus, release: string): Promise<void> {
  const started = performance.now();
  const s = await runReplay({
    target: bus.url,
    events: benchPlan(vus, shape),
    durationMs,
    run,
    release,
    db,
    pollTimeoutS: 10,
  });
  const wall = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `  ${release.padEnd(9)} run ${s.run}: ${s.delivered}/${s.expected} delivered, lost ${s.lost}, p50 ${s.latencyMs.p50.toFixed(2)} ms, ` +
      `p95 ${s.latencyMs.p95.toFixed(2)} ms, lag p99 ${s.scheduleLagMs.p99.toFixed(1)} ms, ${wall} s, load ${os.loadavg()[0]!.toFixed(2)}`,
  );
}

function hasRelease(db: Db, release: string): boolean {
  return db.prepare('SELECT 1 FROM runs WHERE release = ?').get(release) !== undefined;
}

async function makeRuns(db: Db): Promise<void> {
  const idle = await startBus({ port: 0, seed: 1 });
  const base = await startBus({ port: 0, seed: 2, faults: parseFault(baseFault) });
  const slow = await startBus({ port: 0, seed: 3, faults: parseFault(slowFault) });
  try {
    for (let i = 1; i <= pairs; i++) {
      // Interleaved, so a change in the machine's load hits both halves of a pair alike.
      for (const [release, bus] of [
        [`idle-A${i}`, idle],
        [`idle-B${i}`, idle],
        [`slow-A${i}`, base],
        [`slow-B${i}`, slow],
      ] as const) {
        if (f.flag('reuse') && hasRelease(db, release)) continue;
        await makeRun(db, bus, release);
      }
    }
  } finally {
    await Promise.all([idle.close(), base.close(), slow.close()]);
  }
}

/** Whether the noise-aware rule flags the pair, and whether the plain comparison (before noise) would have. */
function judge(db: Db, kind: string, a: string, b: string): { flagged: boolean; plain: boolean } {
  const c = compareRunsByName(db, `release:${a}`, `release:${b}`, { failOn: rule });
  const clause = c.failOn!.clauses[0]!;
  const flagged = !c.failOn!.pass;
  const figures = (name: string) => loadRunData(db, resolveRun(db, `release:${name}`)).figures;
  const plain = !evaluateFailOn(parseFailOn(rule), figures(a), figures(b)).every((r) => r.pass);
  const bound = c.warnings.filter((w) => w.includes('bottleneck')).length;
  console.log(`  ${kind.padEnd(6)} ${a} vs ${b}: ${flagged ? 'FLAGGED' : 'passed '} ${clause.reason}${bound ? ` [${bound} run(s) generator-bound]` : ''}`);
  return { flagged, plain };
}

async function main(): Promise<void> {
  fs.mkdirSync(path.dirname(path.resolve(resultsFile)), { recursive: true });
  const db = openDatabase(resultsFile);
  try {
    console.log(`compare-noise: ${pairs} pairs, ${durationMs / 1000} s runs, ${vus} virtual users, rule "${rule}"`);
    console.log(`  slow pairs: A against --fault ${baseFault}, B against --fault ${slowFault}; load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    await makeRuns(db);
    const count = { idle: [0, 0], slow: [0, 0], jitter: [0, 0] };
    const tally = (kind: keyof typeof count, a: string, b: string) => {
      const j = judge(db, kind, a, b);
      count[kind][0]! += j.flagged ? 1 : 0;
      count[kind][1]! += j.plain ? 1 : 0;
    };
    for (let i = 1; i <= pairs; i++) tally('idle', `idle-A${i}`, `idle-B${i}`);
    for (let i = 1; i <= pairs; i++) tally('slow', `slow-A${i}`, `slow-B${i}`);
    for (let i = 1; i < pairs; i++) tally('jitter', `slow-A${i}`, `slow-A${i + 1}`);
    const line = (k: keyof typeof count, of: number, goal: number) => `${k} ${count[k][0]} of ${of} (goal ${goal}; plain compare: ${count[k][1]})`;
    console.log(`flagged: ${line('idle', pairs, 0)}, ${line('slow', pairs, pairs)}, ${line('jitter', pairs - 1, 0)}; load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  } finally {
    db.close();
  }
}

await main();
