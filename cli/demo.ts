import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { parseDuration } from '../core/duration.js';
import { ExitCode, UsageError } from '../core/errors.js';
import { startBus, parseFault, mergeFaults, type RunningBus } from '../bus/index.js';
import { openDatabase } from '../db/open.js';
import { hasModel, isModelStale, openModelReader } from '../db/model-store.js';
import { writeSchoolDay } from '../fixtures/write-day.js';
import { ingestFiles, rebuildModelIn } from '../ingest/ingest.js';
import { createPlan, resolvePlanOptions, summarizePlan } from '../replay/plan.js';
import { replayModel } from '../replay/rehearse.js';
import { parseShape } from '../replay/plan/shape.js';
import { followRun } from './replay.js';
import { demoCapacitySearch } from './demo-capacity.js';
import type { CommandContext } from './program.js';
import { addTargetOptions, collect, parseTargetOptions } from './target-flags.js';
import { configOptionHelp, withRunConfig } from './run-config.js';

// `rehearse demo`: the whole pipeline on one machine in a minute or two. Generates the synthetic
// school day (once), ingests it, starts the embedded bus in-process and replays the peak at 5x,
// at a speed chosen so one minute shows a busy period without the generator becoming the bottleneck.

/** Requests per second the demo aims at: the bus and the generator share two cores. */
const demoRequestBudgetPerS = 1500;
const maxDemoSpeed = 60;

type Flags = Record<string, string | string[] | boolean | undefined>;

export function addDemoCommand(program: Command, ctx: CommandContext): Command {
  const command = program
    .command('demo')
    .description('Generate a synthetic school day, ingest it, and rehearse its peak at 5x against the embedded bus (1-2 minutes).')
    .option('--dir <dir>', 'where the day, the model and the results live', path.join('.rehearse', 'demo'))
    .option('--preset <name>', "synthetic day: 'small' (3 classes, generated in seconds) or 'day' (40 classes, several minutes and ~1 GB to generate)", 'small')
    .option('--scale <n>', 'multiple of the recorded load', '5')
    .option('--duration <duration>', 'how long to load the bus (the capacity search after it takes about 25 s more)', '40s')
    .option('--speed <n>', 'divide recorded gaps by n (default: as fast as keeps the demo around 1500 requests/s, at most 60)')
    .option('--shape <expr>', "what-if applied to the model before the plan is drawn, e.g. 'rosterSize=60' (repeatable; docs/shape.md)", collect, [])
    .option('--fault <spec>', "inject a bus fault, e.g. drop=0.02 (repeatable; see `rehearse bus --help`)", (v: string, p: string[] = []) => [...p, v], [])
    .option('--target <url>', 'rehearse a bus of your own at this URL instead of starting the embedded one (with --protocol)')
    .option('--json', 'print the RunSummary as one JSON object on stdout')
    .option('--no-capacity', 'skip the short capacity search the demo ends with (it runs only on the embedded bus, without --json)')
    .option('--config <file>', `${configOptionHelp}; demo reads target, protocol, targetOptions and plan.scale, plan.duration, plan.speed`);
  return addTargetOptions(command)
    .action(withRunConfig<Flags>(command, 'demo', async (flags, config) => {
      const err = ctx.io.stderr;
      const str = (v: Flags[string]): string | undefined => (typeof v === 'string' ? v : undefined);
      const preset = str(flags.preset) ?? 'small';
      if (preset !== 'day' && preset !== 'small') throw new UsageError(`expected 'day' or 'small', got '${preset}'`, '--preset');
      const durationMs = parseDuration(str(flags.duration) ?? '40s');
      if (durationMs === null || durationMs <= 0) throw new UsageError(`expected a duration like 60s or 2m, got '${str(flags.duration)}'`, '--duration');
      parseShape(Array.isArray(flags.shape) ? flags.shape : []); // a bad term is reported before the day is generated
      const faults = mergeFaults((Array.isArray(flags.fault) ? flags.fault : []).map(parseFault));
      const external = str(flags.target);
      const protocol = str(flags.protocol) ?? 'v1';
      const { options: targetOptions, problems } = parseTargetOptions(Array.isArray(flags.targetOption) ? flags.targetOption : []);
      if (problems.length > 0) throw new UsageError(problems.join('\n  '));
      if (external === undefined && protocol !== 'v1') {
        throw new UsageError(`the embedded bus speaks protocol v1 only; give --target with the URL of your ${protocol} bus`, '--protocol');
      }
      if (external !== undefined && Array.isArray(flags.fault) && flags.fault.length > 0) {
        throw new UsageError('faults are injected by the embedded bus; they cannot be used with --target', '--fault');
      }
      const dir = path.resolve(str(flags.dir) ?? path.join('.rehearse', 'demo'));
      const modelPath = path.join(dir, `${preset}.db`);

      fs.mkdirSync(dir, { recursive: true });
      const probe = openDatabase(modelPath);
      const built = hasModel(probe);
      const stale = isModelStale(probe);
      probe.close();
      if (stale) {
        // A model an older rehearse wrote (or an interrupted ingest): rebuilt from what it stored.
        err.write(`rehearse demo: rebuilding the model in ${modelPath} ...\n`);
        rebuildModelIn(modelPath);
      } else if (!built) {
        const t0 = Date.now();
        err.write(`rehearse demo: generating the synthetic '${preset}' day in ${dir} ...\n`);
        const day = await writeSchoolDay(path.join(dir, preset), preset);
        err.write(`rehearse demo: ${day.lines} log lines written in ${((Date.now() - t0) / 1000).toFixed(1)} s; ingesting ...\n`);
        const t1 = Date.now();
        // By path: ingest manages its own connections and transactions.
        await ingestFiles({ files: [day.files.csv], db: modelPath });
        err.write(`rehearse demo: model built in ${((Date.now() - t1) / 1000).toFixed(1)} s (${modelPath})\n`);
      } else {
        err.write(`rehearse demo: reusing the model in ${modelPath}\n`);
      }
      const db = openDatabase(modelPath);
      let bus: RunningBus | undefined;
      try {
        const model = openModelReader(db);
        const shape = Array.isArray(flags.shape) ? flags.shape : [];
        const base = { mode: 'sample', scale: str(flags.scale) ?? '5', window: 'peak', duration: durationMs, seed: 1, shape } as const;
        let speed = str(flags.speed);
        if (speed === undefined) {
          // The plan's own dry run says how busy real time is; speed it up until the budget is used.
          const atRealTime = summarizePlan(createPlan(model, resolvePlanOptions({ ...base, speed: 1 })));
          const chosen = Math.max(1, Math.min(maxDemoSpeed, demoRequestBudgetPerS / Math.max(1, atRealTime.peakRequestsPerS)));
          speed = String(Math.round(chosen * 10) / 10);
        }
        const planOptions = resolvePlanOptions({ ...base, speed });
        if (external === undefined) bus = await startBus({ port: 0, faults, seed: 1 });
        const url = external ?? bus!.url;
        const { plan, run } = replayModel({ target: url, protocol, targetOptions, model, planOptions, db, release: 'demo', config: config?.record });
        err.write(
          `rehearse demo: ${bus ? 'embedded bus' : `${protocol} target`} at ${url}; replaying ${plan.window.label} at scale ${planOptions.scale}, speed ${planOptions.speed} for ${Math.round(plan.durationMs / 1000)} s\n`,
        );
        const summary = await followRun(run, ctx, { json: flags.json === true, resultsPath: modelPath });
        if (!flags.json) {
          ctx.io.stdout.write(`  next: rehearse runs --db ${modelPath}   |   rehearse report ${summary.run} --db ${modelPath} -o report.html\n`);
        }
        if (!summary.pass) ctx.setExitCode(ExitCode.failed);
        // The headline question after one rehearsal: how much more can it take, and what breaks first?
        if (!flags.json && external === undefined && flags.capacity !== false) {
          await demoCapacitySearch(ctx, { model, db, modelPath, speed: planOptions.speed });
        }
      } finally {
        await bus?.close();
        db.close();
      }
    }));
}
