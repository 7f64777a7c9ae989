import type { Command } from 'commander';
import { parseDuration } from '../core/duration.js';
import { ExitCode, UsageError } from '../core/errors.js';
import { openModelReader } from '../db/model-store.js';
import { formatTickLine } from '../replay/display.js';
import { resolveReplayOptions } from '../replay/options.js';
import { windowSyntaxProblem } from '../replay/plan/options.js';
import { parseShape, type Shape } from '../replay/plan/shape.js';
import { parseSlo, defaultSlo, formatMs } from '../replay/slo.js';
import { startCapacity, validateSearch, type CapacityResult, type CapacityRun } from '../replay/capacity/run.js';
import type { StageResult } from '../replay/capacity/verdict.js';
import type { CapacitySearchSettings } from '../db/capacity-store.js';
import type { CommandContext } from './program.js';
import { modelDayFlag } from './plan.js';
import { parseReplayFlags, withRunDatabases } from './replay.js';
import { addTargetOptions, collect } from './target-flags.js';

// `rehearse capacity`: one continuous rehearsal that raises the multiplier stage by stage and
// says how much the target takes and what breaks first. Parses flags, follows the search on the
// terminal, prints the answer (or --json), and exits 0 (a capacity found), 1 (even the first
// stage failed) or 2 (bad input).

type Flags = Record<string, string | string[] | boolean | undefined>;

export function addCapacityCommand(program: Command, ctx: CommandContext): Command {
  const command = program
    .command('capacity')
    .description('Find the multiplier the target can take: raise the load stage by stage in one rehearsal, judge each stage by the SLO, stop at the first failure.')
    .requiredOption('--db <file>', 'model database written by `rehearse ingest`')
    .requiredOption('--target <url>', 'base URL of the bus, e.g. http://127.0.0.1:8080');
  addTargetOptions(command);
  return command
    .option('--header <line>', "'Name: value' sent with every request (repeatable; 'Name: env:VAR' reads $VAR); values are never stored", collect, [])
    .option('--from <x>', 'first multiplier', '1')
    .option('--to <x>', 'highest multiplier to try', '10')
    .option('--step <x>', 'multiplier added by each stage', '0.5')
    .option('--stage <duration>', 'how long each stage runs', '3m')
    .option('--settle <duration>', 'the start of each stage that is not judged (joins, queues filling)', '30s')
    .option('--slo <expr>', 'pass/fail rule of every stage, see docs/slo.md', defaultSlo)
    .option('--refine', 'after the first failing stage, test between the last pass and the first fail (two more stages)')
    .option('--window <w>', "where in the recorded day: 'peak', 'all', 'HH:MM-HH:MM' or an ISO interval", 'peak')
    .option('--speed <n>', 'divide recorded gaps by n', '1')
    .option('--seed <n>', 'seed of every stage\'s plan, the backoff jitter and the topic nonce', '1')
    .option('--shape <expr>', "what-if applied to the model before every stage is drawn, e.g. 'learnerPublishInterval*0.5' (repeatable; docs/shape.md)", collect, [])
    .option('--day <YYYY-MM-DD|peak|all>', "which recorded day of a multi-day model (default: the busiest, 'peak')")
    .option('--release <label>', 'label of the release under test (runs and compare group by it)')
    .option('--results <file>', 'write results to this database instead of the model database')
    .option('--scrape <url>', "sample the target's Prometheus metrics, e.g. http://host:8080/metrics (health per stage)")
    .option('--scrape-interval <duration>', 'time between two --scrape samples', '5s')
    .option('--poll-timeout <s>', 'timeout_s of each long-poll', '25')
    .option('--publish-connections <n>', 'sockets shared by publishes', '256')
    .option('--max-lag <duration>', 'schedule lag or event-loop delay p99 above this makes a stage generator-bound', '200ms')
    .option('--json', 'print the answer as one JSON object on stdout')
    .action(async (flags: Flags) => {
      const str = (v: Flags[string]): string | undefined => (typeof v === 'string' ? v : undefined);
      const problems: string[] = [];
      const num = (flag: string, v: string | undefined, fallback: number): number => {
        const n = v === undefined || v.trim() === '' ? Number.NaN : Number(v);
        if (!Number.isFinite(n)) {
          problems.push(`${flag}: expected a number, got '${v}'`);
          return fallback;
        }
        return n;
      };
      const dur = (flag: string, v: string | undefined, fallback: number): number => {
        const ms = v === undefined ? null : parseDuration(v);
        if (ms === null) {
          problems.push(`${flag}: expected a duration like 30s or 3m, got '${v}'`);
          return fallback;
        }
        return ms;
      };
      const search: CapacitySearchSettings = {
        from: num('--from', str(flags.from), 1),
        to: num('--to', str(flags.to), 10),
        step: num('--step', str(flags.step), 0.5),
        stageMs: dur('--stage', str(flags.stage), 180_000),
        settleMs: dur('--settle', str(flags.settle), 30_000),
        refine: flags.refine === true,
      };
      const speed = num('--speed', str(flags.speed), 1);
      if (!(speed > 0)) problems.push(`--speed: must be positive, got ${speed}`);
      const seed = num('--seed', str(flags.seed), 1);
      if (!(Number.isSafeInteger(seed) && seed >= 0)) problems.push(`--seed: expected a non-negative integer, got '${str(flags.seed)}'`);
      let shape: Shape | undefined;
      try {
        const parsed = parseShape(Array.isArray(flags.shape) ? flags.shape : []);
        if (parsed.terms.length > 0) shape = parsed;
      } catch (err) {
        if (!(err instanceof UsageError)) throw err;
        problems.push(err.message);
      }
      const window = (str(flags.window) ?? 'peak').trim();
      const windowProblem = windowSyntaxProblem(window);
      if (windowProblem) problems.push(`--window: ${windowProblem}`);
      let replayFlags: ReturnType<typeof parseReplayFlags> | undefined;
      try {
        replayFlags = parseReplayFlags(flags, ctx);
        const slo = parseSlo(str(flags.slo) ?? defaultSlo);
        problems.push(...validateSearch(search, slo));
        resolveReplayOptions({ ...replayFlags, run: { scale: search.to, mode: 'sample', window, speed, seed, modelFingerprint: '' } });
      } catch (err) {
        if (!(err instanceof UsageError)) throw err;
        problems.push(...err.message.replace(/^invalid options:\n/, '').split('\n').map((l) => l.trim()));
      }
      if (problems.length > 0 || !replayFlags) {
        throw new UsageError(problems.length === 1 ? problems[0]! : `${problems.length} options are invalid:\n  ${problems.join('\n  ')}`);
      }
      await withRunDatabases(String(flags.db), str(flags.results), async ({ modelDb, resultsDb, resultsPath }) => {
        const search_ = startCapacity({ ...replayFlags!, model: openModelReader(modelDb, modelDayFlag(flags)), db: resultsDb, search, window, speed, planSeed: seed, ...(shape ? { shape } : {}) });
        const result = await followCapacity(search_, ctx, { json: flags.json === true, resultsPath });
        ctx.setExitCode(result.answer.exitCode === 0 ? ExitCode.ok : ExitCode.failed);
      });
    });
}

const x = (m: number): string => `${Math.round(m * 1000) / 1000}x`;

/** One line per judged stage. */
export function formatStageLine(s: StageResult): string {
  const verdict = s.generatorBound ? 'GENERATOR-BOUND' : s.pass ? 'PASS' : `FAIL ${s.failure?.clause ?? ''}`.trim();
  return (
    `stage ${s.index + 1}${s.refine ? ' (refine)' : ''} at ${x(s.multiplier)}: ${verdict}; p95 ${formatMs(Math.round(s.latencyMs.p95))}, ` +
    `lost ${s.lost}, duplicates ${s.duplicates}, errors ${s.errors} (${s.expected} pairs, ${Math.round(s.throughput.deliveriesPerS)} deliveries/s)`
  );
}

/** The JSON `capacity --json` prints: the answer with its stages and the run it was stored as. */
export function capacityJson(r: CapacityResult): Record<string, unknown> {
  const a = r.answer;
  return {
    run: r.run,
    capacity: a.capacity,
    generatorBound: a.generatorBound,
    passesUpTo: a.passesUpTo,
    firstFailure: a.firstFailure,
    knee: a.knee,
    answer: a.text,
    endedBecause: r.endedBecause,
    slo: r.summary.verdict.slo,
    stages: a.stages,
  };
}

/** Follows a search on the terminal (stage lines, a live line on a TTY), SIGINT to stop it, then the answer. */
export async function followCapacity(search: CapacityRun, ctx: CommandContext, o: { json: boolean; resultsPath: string }): Promise<CapacityResult> {
  const err = ctx.io.stderr;
  const tty = err.isTTY === true;
  const clear = tty ? '\r\x1b[K' : '';
  let signals = 0;
  const onSignal = (name: string): void => {
    signals++;
    err.write(`${clear}rehearse: ${name}: ${signals === 1 ? 'stopping the search; the stages judged so far make the answer' : 'stopping at once'}\n`);
    search.stop({ immediate: signals > 1, reason: `interrupted (${name})` });
  };
  const onInt = (): void => onSignal('SIGINT');
  const onTerm = (): void => onSignal('SIGTERM');
  ctx.io.signals.on('SIGINT', onInt);
  ctx.io.signals.on('SIGTERM', onTerm);
  const run = search.run;
  run.on('start', (s) => {
    err.write(`rehearse: capacity run ${s.run} against ${s.target} (${s.protocol}, topics ${s.nonce}.*), ${search.multipliers.length} stages ${x(search.multipliers[0]!)}-${x(search.multipliers.at(-1)!)}, SLO ${s.slo}\n`);
  });
  run.on('warning', (line) => err.write(`${clear}rehearse: ${line}\n`));
  search.on('stage', (s) => err.write(`${clear}${formatStageLine(s)}\n`));
  run.on('tick', (t) => {
    if (tty) err.write(`\r\x1b[K${x(search.levelAt(t.elapsedMs))} ${formatTickLine(t, null)}`);
  });
  run.on('stopping', (s) => {
    if (!s.immediate) err.write(`${clear}rehearse: ${s.reason}; draining\n`);
  });
  try {
    const result = await search.finished;
    if (tty) err.write('\r\x1b[K');
    if (o.json) ctx.io.stdout.write(`${JSON.stringify(capacityJson(result))}\n`);
    else {
      ctx.io.stdout.write(`${result.answer.text}\n`);
      if (result.run) ctx.io.stdout.write(`  stored as run ${result.run} in ${o.resultsPath}: rehearse report ${result.run} --db ${o.resultsPath} -o capacity.html\n`);
    }
    return result;
  } finally {
    ctx.io.signals.off('SIGINT', onInt);
    ctx.io.signals.off('SIGTERM', onTerm);
  }
}
