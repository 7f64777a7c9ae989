import type { Command } from 'commander';
import { openDatabase } from '../db/open.js';
import { openModelReader } from '../db/model-store.js';
import { UsageError } from '../core/errors.js';
import { createPlan, formatPlanSummary, PlanOptionsError, resolvePlanOptions, summarizePlan, type RawPlanOptions } from '../replay/plan.js';
import { collect } from './target-flags.js';
import { formatShapeSummary, summarizeShape } from '../replay/plan/shape-summary.js';
import type { CommandContext } from './program.js';
import { applyRunConfig, configOptionHelp, missingRequired } from './run-config.js';

// `rehearse plan`: the dry run. Parses flags, builds the plan from the model and prints what
// the rehearsal will ask of the target and of the generator machines, without sending a byte.

/** The plan's flags, shared by every command that builds a plan (plan, replay). */
export function addPlanOptions(command: Command): Command {
  return command
    .option('--scale <n>', 'multiple of the recorded load (fractional works: 7.5)', '1')
    .option('--mode <mode>', "'sample' (new classes drawn from the model) or 'clone' (recorded classes, copied)", 'sample')
    .option('--window <window>', "'peak' (busiest hour, or --duration), 'all', 'HH:MM-HH:MM' in the model's zone, or an ISO interval", 'peak')
    .option('--duration <duration>', 'bound the replay, e.g. 10m, 90s, 1h (after --speed)')
    .option('--speed <n>', 'divide every recorded gap and duration by n', '1')
    .option('--seed <n>', 'seed: the same seed gives the same plan', '1')
    .option('--ramp <duration>', 'stagger the sessions already in progress over this time instead of starting them all at once', '0')
    .option('--shard <i/N>', "this generator's share of classes, e.g. 0/4", '0/1')
    .option('--day <YYYY-MM-DD|peak|all>', "which recorded day of a multi-day model (default: the busiest, 'peak')")
    .option('--shape <expr>', "what-if applied to the model, e.g. 'learnerPublishInterval*0.5', 'rosterSize=60', 'arrivals=surge(09:00,5m)' (repeatable; docs/shape.md)", collect, []);
}

/** --day as openModelReader takes it (absent: the busiest day). */
export function modelDayFlag(flags: Record<string, unknown>): { day?: string } {
  return typeof flags.day === 'string' ? { day: flags.day } : {};
}

/** Commander's parsed flags as resolvePlanOptions input (which validates them all at once). */
export function rawPlanOptionsFromFlags(flags: Record<string, unknown>): RawPlanOptions {
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  return {
    mode: str(flags.mode),
    scale: str(flags.scale),
    window: str(flags.window),
    duration: str(flags.duration),
    speed: str(flags.speed),
    seed: str(flags.seed),
    ramp: str(flags.ramp),
    shard: str(flags.shard),
    shape: Array.isArray(flags.shape) ? flags.shape.filter((v): v is string => typeof v === 'string') : undefined,
  };
}

export function addPlanCommand(program: Command, ctx: CommandContext): Command {
  const command = program
    .command('plan')
    .description('Dry run: what a rehearsal at --scale will ask of the target and of the generator machines.')
    // Required, but it may come from --config: checked in the action (missingRequired).
    .option('--db <file>', 'model database written by `rehearse ingest` (required)')
    .option('--config <file>', `${configOptionHelp}; plan reads its db and plan keys`);
  return addPlanOptions(command)
    .option('--json', 'print the PlanSummary as JSON')
    .action((cliFlags: Record<string, unknown>) => {
      const config = applyRunConfig(command, cliFlags, 'plan');
      const flags = config?.flags ?? cliFlags;
      const missing = missingRequired(flags, [{ attribute: 'db', spec: '--db <file>', key: 'db' }], config);
      if (missing.length > 0) throw new UsageError(missing.join('\n'));
      // Validate every flag before touching the database, so a typo is reported at once.
      let options;
      try {
        options = resolvePlanOptions(rawPlanOptionsFromFlags(flags));
      } catch (err) {
        if (!(err instanceof PlanOptionsError) || !config) throw err;
        const lines = err.problems.map((p) => config.attribute(`${p.flag}: ${p.message}`));
        throw new UsageError(lines.length === 1 ? lines[0]! : `${lines.length} options are invalid:\n  ${lines.join('\n  ')}`);
      }
      const db = openDatabase(String(flags.db), { mustExist: true, readonly: true });
      try {
        const model = openModelReader(db, modelDayFlag(flags));
        const summary = summarizePlan(createPlan(model, options));
        // A what-if is shown beside the recorded plan (replay/plan/shape-summary.ts).
        const shape = options.shape ? summarizeShape(model, options, summary) : null;
        if (flags.json) ctx.io.stdout.write(`${JSON.stringify(shape ? { ...summary, shape } : summary, null, 2)}\n`);
        else ctx.io.stdout.write((shape ? formatShapeSummary(shape, summary.window.label) : '') + formatPlanSummary(summary));
      } finally {
        db.close();
      }
    });
}
