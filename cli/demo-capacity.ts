// The end of `rehearse demo`: a short capacity search against a second embedded bus that serves
// messages at a known rate (the `service` fault), so the demo shows the headline answer, "how much
// can it take and what breaks first", in about twenty seconds.

import { startBus } from '../bus/index.js';
import type { Db } from '../db/open.js';
import type { ModelReader } from '../db/model-types.js';
import { startCapacity } from '../replay/capacity/run.js';
import { createPlan, resolvePlanOptions, summarizePlan } from '../replay/plan.js';
import { followCapacity } from './capacity.js';
import type { CommandContext } from './program.js';

/** The demo bus holds this many times the model's peak message rate: the search should break just above. */
export const demoServiceMultiple = 3.5;
const search = { from: 1, to: 6, step: 1, stageMs: 4000, settleMs: 1000, refine: false };
const slo = 'p95<=1s, lost>5s, duplicates=0';

export async function demoCapacitySearch(ctx: CommandContext, o: { model: ModelReader; db: Db; modelPath: string; speed: number }): Promise<void> {
  const horizonMs = 6 * search.stageMs;
  // Messages the bus must store per second at 1x: every expected delivery is one stored message.
  const atOne = summarizePlan(createPlan(o.model, resolvePlanOptions({ mode: 'sample', scale: 1, window: 'peak', duration: horizonMs, speed: o.speed, seed: 1 })));
  const perSecond = atOne.expectedDeliveries / Math.max(1, atOne.durationMs / 1000);
  const servicePerS = Math.max(1, Math.round(demoServiceMultiple * perSecond));
  const bus = await startBus({ port: 0, faults: { servicePerS }, seed: 1 });
  try {
    ctx.io.stderr.write(
      `rehearse demo: capacity search against a second embedded bus that serves ${servicePerS} messages/s (about ${demoServiceMultiple}x the peak's ${Math.round(perSecond)}/s): ` +
        `${search.from}x to ${search.to}x, ${search.stageMs / 1000} s stages\n`,
    );
    const capacity = startCapacity({ target: bus.url, model: o.model, db: o.db, release: 'demo', search, speed: o.speed, slo });
    const result = await followCapacity(capacity, ctx, { json: false, resultsPath: o.modelPath });
    if (result.run) ctx.io.stdout.write(`  next: rehearse capacity --db ${o.modelPath} --target <your bus> --from 1 --to 10 --step 0.5 --stage 3m\n`);
  } finally {
    await bus.close();
  }
}
