// The fixture day's busiest period at 5x for 60 s against each real bus rehearse speaks (the
// embedded bus for v1, nginx + Nchan, Faye for Bayeux), each in its own process: the verdict,
// lost and duplicated pairs, `published` against what the server itself counted, and the
// generator's CPU per 10,000 requests. Medians over --repeat runs.
//
//   npm run build && npx tsx bench/real-targets.ts [--protocols v1,nchan,bayeux] [--duration 60s] [--scale 5] [--speed 20] [--repeat 3]

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../db/open.js';
import { hasModel, isModelStale, openModelReader } from '../db/model-store.js';
import { writeSchoolDay } from '../fixtures/write-day.js';
import { ingestFiles, rebuildModelIn } from '../ingest/ingest.js';
import { resolvePlanOptions } from '../replay/plan.js';
import { replayModel } from '../replay/rehearse.js';
import type { ReplayTick } from '../replay/runner.js';
import { median } from '../stats/quantile.js';
import { benchFlags } from './args.js';
import { startBenchServer } from './servers.js';

const f = benchFlags({
  protocols: { type: 'string', default: 'v1,nchan,bayeux' },
  duration: { type: 'string', default: '60s' },
  scale: { type: 'string', default: '5' },
  speed: { type: 'string', default: '20' },
  repeat: { type: 'string', default: '3' },
});
const protocols = f.text('protocols').split(',');
const durationMs = f.ms('duration');
const repeat = f.number('repeat');

const dir = path.resolve('bench/out/real-targets');
fs.mkdirSync(dir, { recursive: true });
const modelPath = path.join(dir, 'small.db');
{
  const probe = openDatabase(modelPath);
  const built = hasModel(probe);
  const stale = isModelStale(probe);
  probe.close();
  if (stale) rebuildModelIn(modelPath);
  else if (!built) {
    const day = await writeSchoolDay(path.join(dir, 'small'), 'small');
    await ingestFiles({ files: [day.files.csv], db: modelPath });
  }
}

interface Row {
  protocol: string;
  pass: boolean;
  expected: number;
  lost: number;
  duplicates: number;
  errors: number;
  published: number;
  serverCounted: number;
  requests: number;
  peakUsers: number;
  cpuSPer10k: number;
  lagP99: number;
  p95: number;
}

async function once(protocol: string): Promise<Row> {
  const server = await startBenchServer(protocol);
  const db = openDatabase(modelPath);
  try {
    const model = openModelReader(db);
    const planOptions = resolvePlanOptions({ mode: 'sample', scale: f.text('scale'), window: 'peak', duration: durationMs, speed: f.text('speed'), seed: 1 });
    const before = await server.publishedCount();
    const cpu0 = process.cpuUsage();
    const ticks: ReplayTick[] = [];
    const { run } = replayModel({ target: server.url, protocol: server.protocol, targetOptions: server.targetOptions, model, planOptions, pollTimeoutS: 20 });
    run.on('tick', (t) => {
      ticks.push(t);
      if (t.second % 10 === 0) process.stderr.write(`  ${protocol}: ${t.second}s users ${t.virtualUsers} req/s ${t.requests} lag p99 ${t.scheduleLagP99Ms?.toFixed(1)} ms\n`);
    });
    const s = await run.finished;
    const cpu = process.cpuUsage(cpu0);
    const requests = s.requests.publish + s.requests.subscribe;
    return {
      protocol,
      pass: s.pass,
      expected: s.expected,
      lost: s.lost,
      duplicates: s.duplicates,
      errors: s.requests.errors,
      published: s.published,
      // The pre-flight's probe message(s) are on the server's count too: the run's own are `published`.
      serverCounted: (await server.publishedCount()) - before,
      requests,
      peakUsers: Math.max(...ticks.map((t) => t.virtualUsers)),
      cpuSPer10k: ((cpu.user + cpu.system) / 1e6 / Math.max(1, requests)) * 10_000,
      lagP99: s.scheduleLagMs.p99,
      p95: s.latencyMs.p95,
    };
  } finally {
    db.close();
    await server.stop();
  }
}

console.log(`command: npx tsx bench/real-targets.ts ${process.argv.slice(2).join(' ')}`.trim());
console.log(`node ${process.version}, ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}; fixture 'small' day, window peak, scale ${f.text('scale')}, speed ${f.text('speed')}, ${durationMs / 1000} s`);
const rows: Row[] = [];
for (const protocol of protocols) {
  for (let r = 0; r < repeat; r++) {
    process.stderr.write(`${protocol}: run ${r + 1}/${repeat}\n`);
    rows.push(await once(protocol));
  }
}
console.log('\n| protocol | runs | verdict | expected pairs | lost | duplicates | errors | published | server counted | requests | peak users | CPU s / 10k req (median) | schedule lag p99 ms (median) | delivery p95 ms (median) |');
console.log('|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const protocol of protocols) {
  const rs = rows.filter((r) => r.protocol === protocol);
  const all = (f: (r: Row) => number | boolean): string => rs.map(f).join(' / ');
  console.log(
    `| ${protocol} | ${rs.length} | ${rs.map((r) => (r.pass ? 'PASS' : 'FAIL')).join(' / ')} | ${all((r) => r.expected)} | ${all((r) => r.lost)} | ${all((r) => r.duplicates)} | ${all((r) => r.errors)} | ${all((r) => r.published)} | ${all((r) => r.serverCounted)} | ${all((r) => r.requests)} | ${all((r) => r.peakUsers)} | ${median(rs.map((r) => r.cpuSPer10k)).toFixed(2)} | ${median(rs.map((r) => r.lagP99)).toFixed(1)} | ${median(rs.map((r) => r.p95)).toFixed(1)} |`,
  );
}
