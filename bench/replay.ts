// How many concurrent virtual users one generator process sustains against a real bus running in
// another process (the embedded bus, nginx + Nchan, or Faye), with schedule lag p99 <= 10 ms, and
// the CPU it spends per 10,000 requests. Each virtual user keeps one long-poll open (as in the real runtime).
//
//   npm run build && npx tsx bench/replay.ts [--protocol v1|nchan|bayeux] [--vus 2000,5000,10000,15000,18000] [--ramp 20s] [--steady 30s] [--publish-every 10s] [--repeat 1]

import { benchFlags } from './args.js';
import { startBenchServer } from './servers.js';
import { benchPlan, planShapeFlags, readPlanShape } from './bench-plan.js';
import { startReplay, type ReplayTick } from '../replay/runner.js';
import { median } from '../stats/quantile.js';

interface Args {
  vus: number[];
  protocol: string;
  rampMs: number;
  steadyMs: number;
  publishEveryMs: number;
  controlEveryMs: number;
  repeat: number;
}

function readArgs(): Args {
  const f = benchFlags({ ...planShapeFlags, vus: { type: 'string', default: '2000,5000,10000,15000,18000' }, protocol: { type: 'string', default: 'v1' } });
  return { vus: f.numbers('vus'), protocol: f.text('protocol'), ...readPlanShape(f) };
}

interface Row {
  vus: number;
  openPolls: number;
  requestsPerS: number;
  lagP99Median: number;
  lagP99Max: number;
  loopP99Max: number;
  cpuSPer10k: number;
  cpuCores: number;
  deliveryP95: number;
  lost: number;
  errors: number;
  delivered: string;
  rssMb: number;
}

async function measure(vus: number, a: Args): Promise<Row> {
  const bus = await startBenchServer(a.protocol);
  try {
    const ticks: ReplayTick[] = [];
    const benchStart = performance.now();
    const steadyFrom = Math.ceil(a.rampMs / 1000) + 3;
    const steadyTo = Math.floor((a.rampMs + a.steadyMs) / 1000) - 1;
    let cpuAt: NodeJS.CpuUsage | undefined;
    let cpuUsed: NodeJS.CpuUsage | undefined;
    let wallAt = 0;
    let wallUsed = 0;
    let rss = 0;
    const run = startReplay({
      target: bus.url,
      protocol: bus.protocol,
      targetOptions: bus.targetOptions,
      events: benchPlan(vus, a),
      durationMs: a.rampMs + a.steadyMs,
      pollTimeoutS: 20,
      run: { scale: 1, mode: 'bench', window: 'bench', speed: 1, seed: 1, modelFingerprint: 'bench' },
    });
    run.on('tick', (t) => {
      ticks.push(t);
      if (t.second === steadyFrom) {
        cpuAt = process.cpuUsage();
        wallAt = performance.now();
      }
      if (t.second === steadyTo && cpuAt) {
        cpuUsed = process.cpuUsage(cpuAt);
        wallUsed = performance.now() - wallAt;
        try {
          rss = process.memoryUsage.rss();
        } catch {
          rss = Number.NaN; // EMFILE at the file-descriptor limit: reading /proc needs one more fd
        }
      }
      if (t.second % 2 === 0) {
        process.stderr.write(`  ${vus} vus: ${t.second}s (wall ${((performance.now() - benchStart) / 1000).toFixed(1)}s) open polls ${t.openPolls} req/s ${t.requests} lag p99 ${t.scheduleLagP99Ms?.toFixed(1)} ms loop p99 ${t.loopDelayP99Ms?.toFixed(1)} ms\n`);
      }
    });
    const summary = await run.finished;
    const steady = ticks.filter((t) => t.second > steadyFrom && t.second <= steadyTo);
    const requests = steady.reduce((n, t) => n + t.requests, 0);
    const cpuS = cpuUsed ? (cpuUsed.user + cpuUsed.system) / 1e6 : Number.NaN;
    return {
      vus,
      openPolls: Math.round(median(steady.map((t) => t.openPolls))),
      requestsPerS: Math.round(requests / Math.max(1, steady.length)),
      lagP99Median: median(steady.map((t) => t.scheduleLagP99Ms ?? 0)),
      lagP99Max: Math.max(...steady.map((t) => t.scheduleLagP99Ms ?? 0)),
      loopP99Max: Math.max(...steady.map((t) => t.loopDelayP99Ms ?? 0)),
      cpuSPer10k: (cpuS / Math.max(1, requests)) * 10_000,
      cpuCores: cpuS / (wallUsed / 1000),
      deliveryP95: summary.latencyMs.p95,
      lost: summary.lost,
      errors: summary.requests.errors,
      delivered: `${summary.delivered}/${summary.expected}`,
      rssMb: Math.round(rss / 1e6),
    };
  } finally {
    await bus.stop();
  }
}

const args = readArgs();
console.log(`command: npx tsx bench/replay.ts ${process.argv.slice(2).join(' ')}`.trim());
console.log(`protocol ${args.protocol}, node ${process.version}, ${(await import('node:os')).cpus().length} cores, ramp ${args.rampMs} ms, steady ${args.steadyMs} ms, publish every ${args.publishEveryMs} ms per learner, control every ${args.controlEveryMs} ms per proctor`);
const rows: Row[] = [];
for (const vus of args.vus) {
  for (let r = 0; r < args.repeat; r++) {
    process.stderr.write(`measuring ${vus} virtual users (run ${r + 1}/${args.repeat})\n`);
    try {
      rows.push(await measure(vus, args));
    } catch (err) {
      process.stderr.write(`  ${vus}: failed: ${(err as Error).message}\n`);
    }
  }
}
console.log('\n| VUs | open polls | req/s | lag p99 (median s) ms | lag p99 (worst s) ms | loop p99 (worst s) ms | CPU s / 10k req | CPU cores | delivery p95 ms | delivered | lost | errors | RSS MB |');
console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  console.log(
    `| ${r.vus} | ${r.openPolls} | ${r.requestsPerS} | ${r.lagP99Median.toFixed(1)} | ${r.lagP99Max.toFixed(1)} | ${r.loopP99Max.toFixed(1)} | ${r.cpuSPer10k.toFixed(2)} | ${r.cpuCores.toFixed(2)} | ${r.deliveryP95.toFixed(1)} | ${r.delivered} | ${r.lost} | ${r.errors} | ${r.rssMb} |`,
  );
}
