import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { parseDuration } from '../core/duration.js';
import { ExitCode, RehearseError, UsageError } from '../core/errors.js';
import { openDatabase, type Db } from '../db/open.js';
import { openModelReader } from '../db/model-store.js';
import type { RunSummary } from '../db/run-types.js';
import { formatSummary, formatTickLine } from '../replay/display.js';
import { describeOptions, replayDefaults, resolveReplayOptions, type ReplayOptionsInput } from '../replay/options.js';
import { createPlan, defaultPlanOptions, PlanOptionsError, resolvePlanOptions, summarizePlan, type Plan } from '../replay/plan.js';
import { shapeTexts } from '../replay/plan/shape.js';
import { chooseWorkerCount } from '../replay/workers/count.js';
import { startWorkers } from '../replay/workers/pool.js';
import { checkOutPath, parseStartAt, parseWorkersFlag, resolveShardFlag, writeResult, type WorkersFlag } from './shard-flags.js';
import type { PlanOptions } from '../replay/plan-types.js';
import { replayModel } from '../replay/rehearse.js';
import type { ReplayInput, ReplayRunEvents } from '../replay/runner.js';
import type { RunResult } from '../replay/result.js';
import { addPlanOptions, modelDayFlag, rawPlanOptionsFromFlags } from './plan.js';
import { applyRunConfig, configOptionHelp, missingRequired } from './run-config.js';
import type { CommandContext } from './program.js';
import { addTargetOptions, collect, parseTargetOptions } from './target-flags.js';

// `rehearse replay`: parses flags, builds the plan from the model and hands both to the
// runtime (replay/runner.ts); this file only wires signals, the terminal and the exit code.

type Flags = Record<string, string | string[] | boolean | undefined>;

export function addReplayCommand(program: Command, ctx: CommandContext): Command {
  const command = program
    .command('replay')
    .description('Replay the model against a target bus with end-to-end delivery checks; exit 1 when the SLO fails.')
    // Required, but they may come from --config: checked in the action (missingRequired).
    .option('--db <file>', 'model database written by `rehearse ingest` (required)')
    .option('--target <url>', 'base URL of the bus, e.g. http://127.0.0.1:8080 (Bayeux: the mount URL, http://host:8000/faye) (required)')
    .option('--config <file>', configOptionHelp);
  addTargetOptions(command);
  // --seed also seeds the backoff jitter and the topic nonce (parseReplayFlags).
  return addPlanOptions(command)
    .option('--release <label>', 'label of the release under test (runs, compare and report group by it)')
    .option('--results <file>', 'write results to this database instead of the model database')
    .option('--slo <expr>', 'pass/fail rule, see docs/slo.md', 'p95<=2s, lost>15s, duplicates=0')
    .option('--scrape <url>', "sample the target's Prometheus metrics during the run, e.g. http://host:8080/metrics")
    .option('--scrape-interval <duration>', 'time between two --scrape samples', '5s')
    .option('--header <line>', "'Name: value' sent with every request (repeatable; 'Name: env:VAR' reads $VAR); values are never stored", collect, [])
    .option('--poll-timeout <s>', 'timeout_s of each long-poll (the platform\'s clients use 25)', String(replayDefaults.pollTimeoutS))
    .option('--backoff-base <duration>', 'first retry waits up to this (full jitter, doubling)', '1s')
    .option('--backoff-cap <duration>', 'longest computed retry wait', '30s')
    .option('--publish-connections <n>', 'sockets shared by publishes (each virtual user also holds one for its long-poll)', '256')
    .option('--max-lag <duration>', 'schedule lag or event-loop delay p99 above this marks the run generator-bound', '200ms')
    .option('--json', 'print the RunSummary as one JSON object on stdout')
    .option('--workers <n|auto>', 'split the plan over N worker processes on this machine (whole classes each), one run and one verdict; auto: from the peak users and the cores')
    .option('--start-at <time>', 'ISO time (with Z or offset) at which every shard starts its load; needs synchronised clocks (docs/scale-out.md)')
    .option('--out <file>', "write this shard's portable result to FILE ('-': one JSON line on stdout) for `rehearse merge`; --db is then only read")
    .action(async (cliFlags: Flags) => {
      const config = applyRunConfig(command, cliFlags, 'replay');
      const flags = (config?.flags ?? cliFlags) as Flags;
      const missing = missingRequired(flags, [{ attribute: 'db', spec: '--db <file>', key: 'db' }, { attribute: 'target', spec: '--target <url>', key: 'target' }], config);
      if (missing.length > 0) throw new UsageError(missing.join('\n'));
      const str = (v: Flags[string]): string | undefined => (typeof v === 'string' ? v : undefined);
      // Every flag is validated before any database is opened or any byte is sent, and every
      // problem is reported at once (plan flags and replay flags alike).
      const problems: string[] = [];
      const scaleOut = parseScaleOutFlags(flags, ctx, problems);
      let planOptions: PlanOptions | undefined;
      try {
        planOptions = resolvePlanOptions(rawPlanOptionsFromFlags({ ...flags, shard: scaleOut.shard }));
      } catch (err) {
        if (!(err instanceof PlanOptionsError)) throw err;
        problems.push(...err.problems.map((p) => `${p.flag}: ${p.message}`));
      }
      let replayFlags: Omit<ReplayOptionsInput, 'run'> | undefined;
      try {
        replayFlags = parseReplayFlags(flags, ctx);
        if (config) replayFlags.config = config.record;
        const p = planOptions ?? defaultPlanOptions;
        resolveReplayOptions({ ...replayFlags, run: { scale: p.scale, mode: p.mode, window: p.window, speed: p.speed, seed: p.seed, modelFingerprint: '' } });
      } catch (err) {
        if (!(err instanceof UsageError)) throw err;
        problems.push(...err.message.replace(/^invalid options:\n/, '').split('\n').map((l) => l.trim()));
      }
      if (problems.length > 0 || !planOptions || !replayFlags) {
        if (config) problems.splice(0, problems.length, ...problems.map((p) => config.attribute(p)));
        throw new UsageError(problems.length === 1 ? problems[0]! : `${problems.length} options are invalid:\n  ${problems.join('\n  ')}`);
      }
      if (planOptions.shard.count > 1 && scaleOut.workers !== undefined) {
        throw new UsageError('--workers splits the plan into shards itself; with --shard i/N run one process per shard (or leave --shard out)', '--workers');
      }
      await replayCommand(flags, ctx, { planOptions, replayFlags, ...scaleOut });
    });
}

interface ScaleOut {
  shard: string | undefined;
  startAtMs: number | undefined;
  out: string | undefined;
  workers: WorkersFlag;
}

/** --shard auto/N, --start-at, --out and --workers, each problem named by its flag. */
function parseScaleOutFlags(flags: Flags, ctx: CommandContext, problems: string[]): ScaleOut {
  const str = (v: Flags[string]): string | undefined => (typeof v === 'string' ? v : undefined);
  const result: ScaleOut = { shard: str(flags.shard), startAtMs: undefined, out: str(flags.out), workers: undefined };
  const attempt = (f: () => void): void => {
    try {
      f();
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      problems.push(err.message);
    }
  };
  attempt(() => void (result.shard = resolveShardFlag(str(flags.shard), ctx.io.env)));
  attempt(() => void (result.startAtMs = parseStartAt(str(flags.startAt))));
  attempt(() => void (result.workers = parseWorkersFlag(str(flags.workers))));
  attempt(() => checkOutPath(result.out));
  return result;
}

/** Runs the replay the flags describe: one process, or --workers; stores it, or writes --out. */
async function replayCommand(flags: Flags, ctx: CommandContext, o: ScaleOut & { planOptions: PlanOptions; replayFlags: Omit<ReplayOptionsInput, 'run'> }): Promise<void> {
  const str = (v: Flags[string]): string | undefined => (typeof v === 'string' ? v : undefined);
  const modelPath = String(flags.db);
  // With --out the result leaves as a file or a line: the model database is only read (a
  // read-only mount in a pod), unless --results names where to store the run as well.
  const resultsFlag = str(flags.results);
  const storeRun = o.out === undefined || resultsFlag !== undefined;
  const open = async (use: (dbs: { modelDb: Db; resultsDb: Db | undefined; resultsPath: string }) => Promise<void>): Promise<void> => {
    if (storeRun) return withRunDatabases(modelPath, resultsFlag, use);
    const modelDb = openDatabase(modelPath, { mustExist: true, readonly: true });
    try {
      await use({ modelDb, resultsDb: undefined, resultsPath: '' });
    } finally {
      modelDb.close();
    }
  };
  await open(async ({ modelDb, resultsDb, resultsPath }) => {
    const model = openModelReader(modelDb, modelDayFlag(flags));
    let run: FollowableRun;
    if (o.workers !== undefined) {
      const plan = createPlan(model, o.planOptions);
      let workers: number;
      if (o.workers === 'auto') {
        const s = summarizePlan(plan);
        const choice = chooseWorkerCount(s.peakConcurrentLearners + s.peakConcurrentProctors, os.availableParallelism());
        workers = choice.workers;
        ctx.io.stderr.write(`rehearse: --workers auto: ${workers} (${choice.why})\n`);
        if (choice.warning) ctx.io.stderr.write(`rehearse: warning: ${choice.warning}\n`);
      } else workers = o.workers;
      const options = resolveReplayOptions({ ...o.replayFlags, ...runDescription(plan, o.planOptions) });
      const { env: _env, ...replay } = o.replayFlags;
      run = startWorkers({
        workers,
        modelPath: path.resolve(modelPath),
        day: typeof flags.day === 'string' ? flags.day : undefined,
        planOptions: o.planOptions,
        replay,
        options,
        storedOptions: { ...describeOptions(options), workers },
        ...(resultsDb ? { db: resultsDb } : {}),
        ...(o.startAtMs !== undefined ? { startAtMs: o.startAtMs } : {}),
      });
    } else {
      run = replayModel({
        ...o.replayFlags,
        model,
        planOptions: o.planOptions,
        ...(resultsDb ? { db: resultsDb } : {}),
        shard: o.planOptions.shard,
        ...(o.startAtMs !== undefined ? { startAtMs: o.startAtMs } : {}),
      }).run;
    }
    // With --out -, stdout carries the result line only: the summary goes to stderr.
    const summary = await followRun(run, ctx, { json: flags.json === true, resultsPath, summaryToStderr: o.out === '-' });
    if (o.out !== undefined) {
      const result = run.portableResult;
      if (!result) throw new RehearseError('REHEARSE_INTERNAL', 'the run ended without a result to write');
      const where = writeResult(o.out, result, ctx.io.stdout);
      if (where !== 'stdout') ctx.io.stderr.write(`rehearse: shard ${o.planOptions.shard.index}/${o.planOptions.shard.count} result written to ${where}; merge every shard with \`rehearse merge\`\n`);
      // A shard's own numbers are not the rehearsal's verdict (the merge's is): a pod that wrote
      // its result succeeded, so a Job does not stop the other shards over one shard's latency.
      return;
    }
    if (!summary.pass) ctx.setExitCode(ExitCode.failed);
  });
}

/** What a run records about its plan (replay/rehearse.ts does the same for one process). */
function runDescription(plan: Plan, p: PlanOptions): { run: ReplayOptionsInput['run']; durationMs: number } {
  return {
    durationMs: plan.durationMs,
    run: {
      scale: p.scale,
      mode: p.mode,
      window: plan.window.label,
      speed: p.speed,
      seed: p.seed,
      modelFingerprint: plan.modelFingerprint,
      plannedDurationMs: plan.durationMs,
      rampMs: p.rampMs,
      ...(p.shape ? { shape: shapeTexts(p.shape) } : {}),
    },
  };
}

/** A one-process run or a --workers pool: followed the same way. */
export interface FollowableRun {
  on<K extends keyof ReplayRunEvents>(event: K, listener: (...args: ReplayRunEvents[K]) => void): unknown;
  stop(options?: { immediate?: boolean; reason?: string }): void;
  readonly finished: Promise<RunSummary>;
  readonly portableResult: RunResult | undefined;
  readonly options: { durationMs: number | undefined; run: { plannedDurationMs?: number } };
}

function targetOptionsFlag(lines: Flags[string]): Record<string, string> {
  const { options, problems } = parseTargetOptions(Array.isArray(lines) ? lines : []);
  if (problems.length > 0) throw new UsageError(problems.join('\n  '));
  return options;
}

/**
 * Opens the model database and, when --results names another file, the results database; runs
 * `use`; closes both whatever happens. Shared by replay and capacity.
 */
export async function withRunDatabases<T>(
  modelPath: string,
  resultsFlag: string | undefined,
  use: (dbs: { modelDb: Db; resultsDb: Db; resultsPath: string }) => Promise<T>,
): Promise<T> {
  const modelDb = openDatabase(modelPath, { mustExist: true });
  let resultsDb: Db = modelDb;
  try {
    if (resultsFlag !== undefined && path.resolve(resultsFlag) !== path.resolve(modelPath)) resultsDb = openDatabase(resultsFlag);
    return await use({ modelDb, resultsDb, resultsPath: resultsFlag ?? modelPath });
  } finally {
    if (resultsDb !== modelDb) resultsDb.close();
    modelDb.close();
  }
}

/** The replay-specific flags as the runtime's options (the plan's are resolved by resolvePlanOptions). */
export function parseReplayFlags(flags: Flags, ctx: CommandContext): Omit<ReplayOptionsInput, 'run'> {
  const str = (v: Flags[string]): string | undefined => (typeof v === 'string' ? v : undefined);
  const durationFlag = (flag: string, value: string | undefined): number | undefined => {
    if (value === undefined) return undefined;
    const ms = parseDuration(value);
    if (ms === null) throw new UsageError(`expected a duration like 500ms, 1s or 2m, got '${value}'`, flag);
    return ms;
  };
  const numberFlag = (flag: string, value: string | undefined): number | undefined => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n)) throw new UsageError(`expected a number, got '${value}'`, flag);
    return n;
  };
  const scrape = str(flags.scrape);
  const out: Omit<ReplayOptionsInput, 'run'> = {
    target: String(flags.target),
    protocol: str(flags.protocol) ?? 'v1',
    targetOptions: targetOptionsFlag(flags.targetOption),
    headers: Array.isArray(flags.header) ? flags.header : [],
    env: ctx.io.env,
    slo: str(flags.slo),
    release: str(flags.release) ?? null,
    pollTimeoutS: numberFlag('--poll-timeout', str(flags.pollTimeout)),
    backoff: { baseMs: durationFlag('--backoff-base', str(flags.backoffBase)), capMs: durationFlag('--backoff-cap', str(flags.backoffCap)) } as ReplayOptionsInput['backoff'],
    connections: numberFlag('--publish-connections', str(flags.publishConnections)),
    generatorLagLimitMs: durationFlag('--max-lag', str(flags.maxLag)),
    seed: numberFlag('--seed', str(flags.seed)),
  };
  if (scrape !== undefined) out.scrape = { url: scrape, intervalMs: durationFlag('--scrape-interval', str(flags.scrapeInterval)) ?? 5000 };
  // Undefined entries would override defaults in the spread inside resolveReplayOptions.
  for (const key of Object.keys(out) as Array<keyof typeof out>) if (out[key] === undefined) delete out[key];
  if (out.backoff) for (const k of ['baseMs', 'capMs'] as const) if (out.backoff[k] === undefined) delete out.backoff[k];
  return out;
}

/**
 * Follows a run on the terminal: a live line each second on a TTY (plain lines every 10 s
 * otherwise) on stderr, SIGINT/SIGTERM to drain and stop (a second one stops at once), and the
 * summary (or --json) at the end.
 */
export async function followRun(run: FollowableRun, ctx: CommandContext, o: { json: boolean; resultsPath: string; plainEveryS?: number; summaryToStderr?: boolean }): Promise<RunSummary> {
  const err = ctx.io.stderr;
  const tty = err.isTTY === true;
  const plainEvery = o.plainEveryS ?? 10;
  let signals = 0;
  const onSignal = (name: string): void => {
    signals++;
    if (signals === 1) {
      err.write(`${tty ? '\r\x1b[K' : ''}rehearse: ${name}: stopping; draining open deliveries (at most the loss limit). ${name} again stops at once.\n`);
      run.stop({ reason: `interrupted (${name})` });
    } else {
      run.stop({ immediate: true, reason: `interrupted twice (${name})` });
    }
  };
  const onInt = (): void => onSignal('SIGINT');
  const onTerm = (): void => onSignal('SIGTERM');
  ctx.io.signals.on('SIGINT', onInt);
  ctx.io.signals.on('SIGTERM', onTerm);
  run.on('start', (s) => {
    // A pod's log must say which shard it is: the result line is the only other place.
    const who = s.shard ? `shard ${s.shard}${s.run ? ` (run ${s.run})` : ''}` : `run ${s.run}`;
    err.write(`rehearse: ${who} against ${s.target} (${s.protocol}, topics ${s.nonce}.*), SLO ${s.slo}\n`);
  });
  run.on('warning', (line) => err.write(`${tty ? '\r\x1b[K' : ''}rehearse: ${line}\n`));
  // --duration bounds the run; otherwise the plan's own length: what the progress line counts down.
  const plannedMs = run.options.durationMs ?? run.options.run.plannedDurationMs ?? null;
  run.on('tick', (t) => {
    if (tty) err.write(`\r\x1b[K${formatTickLine(t, plannedMs)}`);
    else if (t.second % plainEvery === 0) err.write(`${formatTickLine(t, plannedMs)}\n`);
  });
  run.on('stopping', (s) => {
    if (!s.immediate) err.write(`${tty ? '\r\x1b[K' : ''}rehearse: ${s.reason}; draining\n`);
  });
  try {
    const summary = await run.finished;
    if (tty) err.write('\r\x1b[K');
    const to = o.summaryToStderr ? err : ctx.io.stdout;
    if (o.json) to.write(`${JSON.stringify(summary)}\n`);
    else to.write(formatSummary(summary, summary.run ? `run ${summary.run} in ${o.resultsPath}` : undefined));
    return summary;
  } finally {
    ctx.io.signals.off('SIGINT', onInt);
    ctx.io.signals.off('SIGTERM', onTerm);
  }
}

export type { ReplayInput };
