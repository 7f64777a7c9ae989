// Benchmark: how fast a 10x plan of a full synthetic school day is enumerated, and how much
// memory the lazy plan takes on top of the model.
// Run: npx tsx bench/plan.ts [--classes 400] [--scale 10] [--runs 3] [--dry-runs 1]
// (add NODE_OPTIONS=--expose-gc for a clean heap baseline).

import { createPlan, resolvePlanOptions, summarizePlan } from '../replay/plan.js';
import type { PlanMode } from '../replay/plan-types.js';
import { syntheticModel } from '../fixtures/synthetic-model.js';
import { benchFlags } from './args.js';
import { median } from '../stats/quantile.js';

const flags = benchFlags({
  classes: { type: 'string', default: '400' },
  scale: { type: 'string', default: '10' },
  runs: { type: 'string', default: '3' },
  // The dry run enumerates the same events plus bookkeeping; fewer runs keep the bench short.
  'dry-runs': { type: 'string', default: '1' },
});
const classes = flags.number('classes');
const scale = flags.number('scale');
const runs = flags.number('runs');
const dryRuns = flags.number('dry-runs');
const gc = (globalThis as { gc?: () => void }).gc;
const mb = (bytes: number): string => (bytes / 1024 / 1024).toFixed(0);

console.log(`command: npx tsx bench/plan.ts --classes ${classes} --scale ${scale} --runs ${runs} --dry-runs ${dryRuns}  (node ${process.version}, gc ${gc ? 'exposed' : 'not exposed'})`);
const model = syntheticModel({ classes, seed: 1 });
const o = model.overview();
console.log(`model: ${o.sessions} learner sessions, ${o.proctorSessions} proctor sessions, peak ${o.peakConcurrentLearners} concurrent learners, day ${((o.span.endMs - o.span.startMs) / 3_600_000).toFixed(1)} h`);
gc?.();
const base = process.memoryUsage();
console.log(`baseline with the in-memory model: heap ${mb(base.heapUsed)} MB, rss ${mb(base.rss)} MB\n`);

const rows: string[][] = [['mode', 'what', 'events', 'median s', 'events/s', 'peak heap over baseline MB', 'peak RSS MB']];
for (const mode of ['sample', 'clone'] as PlanMode[]) {
  for (const what of ['enumerate', 'dry run'] as const) {
    const times: number[] = [];
    let events = 0;
    let peakHeap = 0;
    let peakRss = 0;
    for (let r = 0; r < (what === 'enumerate' ? runs : dryRuns); r++) {
      gc?.();
      const plan = createPlan(model, resolvePlanOptions({ mode, scale, window: 'all', seed: r + 1 }));
      const t0 = performance.now();
      let n = 0;
      if (what === 'enumerate') {
        for (const _ of plan.events()) {
          if (++n % 250_000 === 0) {
            const m = process.memoryUsage();
            peakHeap = Math.max(peakHeap, m.heapUsed - base.heapUsed);
            peakRss = Math.max(peakRss, m.rss);
          }
        }
      } else {
        const s = summarizePlan(plan);
        n = s.publishes + s.controls + 2 * (s.learners + s.proctors);
        const m = process.memoryUsage();
        peakHeap = Math.max(peakHeap, m.heapUsed - base.heapUsed);
        peakRss = Math.max(peakRss, m.rss);
      }
      times.push((performance.now() - t0) / 1000);
      events = n;
    }
    const s = median(times);
    rows.push([mode, what, events.toLocaleString('en-US'), s.toFixed(2), Math.round(events / s).toLocaleString('en-US'), mb(peakHeap), mb(peakRss)]);
    console.error(`${mode} ${what}: runs ${times.map((t) => t.toFixed(2)).join(', ')} s`);
  }
}
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
for (const r of rows) console.log(`| ${r.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ')} |`);
