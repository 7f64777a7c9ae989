// A capacity search as it runs: one continuous rehearsal (replay/runner.ts) on a staged plan,
// each stage judged by the SLO on its own window once every pair in it has a verdict, stopped at
// the first failing stage (or, with --refine, bisecting between the last pass and the first
// fail), and stored as one run with its stages. The pure parts are plan.ts and verdict.ts.

import { EventEmitter } from 'node:events';
import { UsageError } from '../../core/errors.js';
import { writeCapacity, type CapacitySearchSettings } from '../../db/capacity-store.js';
import type { ModelReader } from '../../db/model-types.js';
import { runScrapes } from '../../db/run-queries.js';
import type { RunSummary } from '../../db/run-types.js';
import { startReplay, type ReplayInput, type ReplayRun, type ReplayTick } from '../runner.js';
import { shapeClient, shapeTexts, type Shape } from '../plan/shape.js';
import { shapeModel } from '../plan/shaped-model.js';
import { defaultSlo, parseSlo, type Slo } from '../slo.js';
import { createSearchPlan, StagedPlan, stageMultipliers, stageSeed } from './plan.js';
import { capacityAnswer, judgeStage, nextRefine, stageSettled, type CapacityAnswer, type StageResult, type StageSpec } from './verdict.js';

export type { CapacitySearchSettings };

export interface CapacityInput extends Omit<ReplayInput, 'events' | 'run' | 'windowOf' | 'durationMs'> {
  model: ModelReader;
  search: CapacitySearchSettings;
  /** Where in the model's day the search replays ('peak' by default). */
  window?: string;
  speed?: number;
  /** Seeds every stage's plan (each stage draws with a seed of its own derived from it). */
  planSeed?: number;
  /** A what-if applied to the model before any stage is drawn (docs/shape.md). */
  shape?: Shape;
}

export interface CapacityResult {
  run: number;
  answer: CapacityAnswer;
  summary: RunSummary;
  /** Why the search ended: 'first failing stage', 'every stage passed', an interruption. */
  endedBecause: string;
}

export interface CapacityEvents {
  /** A stage was added to the load (main or refine). */
  stageStart: [StageSpec];
  /** A stage was judged (as the search saw it when deciding). */
  stage: [StageResult];
}

/** Two refine stages at most (resolution a quarter of the step). */
const maxRefineStages = 2;
/** A stage change takes effect this far ahead of now (the runner pulls the plan a second ahead). */
const changeLeadMs = 1500;
/** A stage whose pairs never all get a verdict is judged this long after its loss deadline. */
const judgeGraceMs = 1000;

export function validateSearch(s: CapacitySearchSettings, slo: Slo): string[] {
  const problems: string[] = [];
  if (!(Number.isFinite(s.from) && s.from > 0)) problems.push(`--from: must be a positive multiplier, got ${s.from}`);
  if (!(Number.isFinite(s.to) && s.to >= s.from)) problems.push(`--to: must be at least --from (${s.from}), got ${s.to}`);
  if (!(Number.isFinite(s.step) && s.step > 0)) problems.push(`--step: must be positive, got ${s.step}`);
  else if (Number.isFinite(s.to) && Number.isFinite(s.from) && (s.to - s.from) / s.step > 200) problems.push(`--step: ${s.step} makes more than 200 stages between --from and --to; take a larger step`);
  if (s.to > 1000) problems.push(`--to: ${s.to} is more than 1000 times the recorded load`);
  if (!(s.stageMs > 0)) problems.push('--stage: must be longer than 0');
  if (!(s.settleMs >= 0 && s.settleMs < s.stageMs)) problems.push(`--settle: must be shorter than the stage (${s.stageMs} ms), got ${s.settleMs} ms`);
  return problems;
}

/** How long the search's plan runs at most: its stages, plus room for the refine stages. */
export function searchHorizonMs(s: CapacitySearchSettings, stages: number, lossLimitMs: number): number {
  // Refine steps come after the first failure is known (at most its stage's loss deadline past the main stages).
  const refineMs = s.refine ? lossLimitMs + changeLeadMs + judgeGraceMs + maxRefineStages * (s.stageMs + lossLimitMs + changeLeadMs + judgeGraceMs + 1000) : 0;
  return stages * s.stageMs + refineMs;
}

export class CapacityRun extends EventEmitter<CapacityEvents> {
  readonly run: ReplayRun;
  readonly plan: StagedPlan;
  readonly finished: Promise<CapacityResult>;
  readonly slo: Slo;
  readonly multipliers: number[];
  private readonly specs: StageSpec[] = [];
  private readonly judged: StageResult[] = [];
  private readonly ticks: ReplayTick[] = [];
  /** Cumulative errors by kind at each tick, to count a window's errors by kind. */
  private readonly errorSnapshots: Array<{ atMs: number; byKind: Record<string, { count: number; example: string }> }> = [];
  /** Stage ids in the plan that make up the current level, for ending them on a refine step. */
  private nextToJudge = 0;
  private refineState: { lo: number | null; hi: number; running: number | null; stagesRun: number } | null = null;
  private stopped = false;
  private endedBecause = '';

  constructor(private readonly input: CapacityInput) {
    super();
    const s = input.search;
    this.slo = parseSlo(input.slo ?? defaultSlo);
    const problems = validateSearch(s, this.slo);
    if (problems.length > 0) throw new UsageError(problems.length === 1 ? problems[0]! : `${problems.length} options are invalid:\n  ${problems.join('\n  ')}`);
    this.multipliers = stageMultipliers(s.from, s.to, s.step);
    const n = this.multipliers.length;
    const lossMs = this.slo.lossLimitMs;
    const horizonMs = searchHorizonMs(s, n, lossMs);
    const speed = input.speed ?? 1;
    const seed = input.planSeed ?? 1;
    const model = input.shape ? shapeModel(input.model, input.shape, seed) : input.model;
    this.plan = createSearchPlan(model, this.multipliers, s.stageMs, { window: input.window ?? 'peak', speed, seed, horizonMs });
    this.multipliers.forEach((m, k) => {
      const startMs = k * s.stageMs;
      this.specs.push({ index: k, multiplier: m, refine: false, startMs, endMs: startMs + s.stageMs, judgedFromMs: startMs + s.settleMs });
    });
    const { model: _model, search: _search, window: _window, speed: _speed, planSeed: _planSeed, shape, ...replay } = input;
    this.run = startReplay({
      ...replay,
      // A shape's client terms (pollTimeout, backoff) are what the virtual users do, as in replay.
      ...(shape ? shapeClient(shape) : {}),
      seed: replay.seed ?? seed,
      events: this.plan,
      durationMs: horizonMs,
      windowOf: (planMs) => this.windowOf(planMs),
      run: {
        scale: this.multipliers[n - 1]!,
        mode: 'sample',
        window: this.plan.window.label,
        speed,
        seed,
        modelFingerprint: this.plan.modelFingerprint,
        plannedDurationMs: n * s.stageMs,
        rampMs: 0,
        ...(shape ? { shape: shapeTexts(shape) } : {}),
      },
    });
    this.run.on('start', () => {
      for (const spec of this.specs) this.emit('stageStart', spec);
    });
    this.run.on('tick', (t) => this.onTick(t));
    this.finished = this.run.finished.then((summary) => this.complete(summary));
    this.finished.catch(() => undefined);
  }

  /** SIGINT: stop the search where it is; the stages judged so far still make an answer. */
  stop(options: { immediate?: boolean; reason?: string } = {}): void {
    this.stopped = true;
    this.endedBecause = options.reason ?? 'stopped';
    this.run.stop(options);
  }

  /** The multiplier running at replay time `atMs`. */
  levelAt(atMs: number): number {
    return this.plan.levelAt(atMs);
  }

  private windowOf(planMs: number): number {
    // Judged windows never overlap: main stages are consecutive, refine stages come after them.
    for (let i = this.specs.length - 1; i >= 0; i--) {
      const s = this.specs[i]!;
      if (planMs >= s.judgedFromMs && planMs < s.endMs) return s.index;
    }
    return -1;
  }

  private onTick(t: ReplayTick): void {
    this.ticks.push(t);
    this.errorSnapshots.push({ atMs: t.elapsedMs, byKind: structuredClone(this.run.summarize().requests.errorsByKind ?? {}) });
    if (this.stopped) return;
    this.judgeDue(t.elapsedMs, false);
  }

  /**
   * Judges, in order, the stages whose window is over and whose pairs all have a verdict (or
   * whose loss deadline passed); `final`: the run is over, so every stage it reached is judged.
   */
  private judgeDue(nowMs: number, final: boolean): void {
    // Stages are judged in order: a later stage's verdict means nothing before an earlier one's.
    for (;;) {
      const spec = this.specs[this.nextToJudge];
      if (!spec) break;
      const w = this.run.windowCounts.get(spec.index);
      const due = nowMs >= spec.endMs - 1 && (final || stageSettled(w) || nowMs >= spec.endMs + this.slo.lossLimitMs + judgeGraceMs);
      if (!due) break;
      this.nextToJudge++;
      const result = this.judge(spec, undefined);
      this.judged.push(result);
      this.emit('stage', result);
      if (final) {
        if (!result.pass || result.generatorBound) break;
        continue;
      }
      this.decide(result, nowMs);
      if (this.stopped) break;
    }
  }

  private judge(spec: StageSpec, targetHealth: Record<string, number> | undefined): StageResult {
    // Row `second` covers ((second - 1) * tick, second * tick]: only the seconds wholly inside the window.
    const tick = this.run.options.tickMs;
    const seconds = this.ticks.filter((r) => (r.second - 1) * tick >= spec.judgedFromMs - 1 && r.second * tick <= spec.endMs + 1);
    const before = this.snapshotAt(spec.judgedFromMs);
    const after = this.snapshotAt(spec.endMs);
    const errorsByKind: Record<string, { count: number; example: string }> = {};
    for (const [kind, v] of Object.entries(after)) {
      const n = v.count - (before[kind]?.count ?? 0);
      if (n > 0) errorsByKind[kind] = { count: n, example: v.example };
    }
    return judgeStage(
      { spec, counts: this.run.windowCounts.get(spec.index), seconds, errorsByKind, ...(targetHealth ? { targetHealth } : {}) },
      this.slo,
      this.run.options.generatorLagLimitMs,
    );
  }

  /** The cumulative errors by kind at the last tick at or before `atMs`. */
  private snapshotAt(atMs: number): Record<string, { count: number; example: string }> {
    let found: Record<string, { count: number; example: string }> = {};
    for (const s of this.errorSnapshots) {
      if (s.atMs <= atMs + 500) found = s.byKind;
      else break;
    }
    return found;
  }

  private finish(reason: string): void {
    this.stopped = true;
    this.endedBecause = reason;
    this.run.stop({ reason, asPlanned: true });
  }

  private decide(r: StageResult, nowMs: number): void {
    const s = this.input.search;
    if (!r.refine) {
      if (r.generatorBound) return this.finish(`the generator was the bottleneck at ${r.multiplier}x`);
      if (r.pass) {
        if (r.index === this.multipliers.length - 1) this.finish(`every stage up to ${r.multiplier}x passed`);
        return;
      }
      const lo = r.index === 0 ? null : this.multipliers[r.index - 1]!;
      const next = s.refine ? nextRefine(lo, r.multiplier, s.step) : null;
      if (next === null) return this.finish(`the stage at ${r.multiplier}x failed`);
      // Back off: the failing stage and every one after it end; the level returns to the last pass.
      const at = nowMs + changeLeadMs;
      for (let k = r.index; k < this.multipliers.length; k++) this.endStage(k, at);
      this.refineState = { lo, hi: r.multiplier, running: null, stagesRun: 0 };
      this.startRefine(next, at);
      return;
    }
    const st = this.refineState!;
    if (r.generatorBound) return this.finish(`the generator was the bottleneck at ${r.multiplier}x`);
    if (r.pass) {
      st.lo = r.multiplier;
    } else {
      st.hi = r.multiplier;
      this.endStage(r.index, nowMs + changeLeadMs);
    }
    const next = st.stagesRun < maxRefineStages ? nextRefine(st.lo, st.hi, s.step) : null;
    if (next === null) return this.finish(`refined between ${st.lo}x and ${st.hi}x`);
    this.startRefine(next, nowMs + changeLeadMs);
  }

  private endStage(index: number, atMs: number): void {
    const spec = this.specs.find((x) => x.index === index);
    if (!spec) return;
    const at = this.plan.endStage(index, atMs);
    spec.endMs = Math.min(spec.endMs, at);
    if (spec.judgedFromMs > spec.endMs) spec.judgedFromMs = spec.endMs;
  }

  private startRefine(multiplier: number, atMs: number): void {
    const st = this.refineState!;
    const s = this.input.search;
    const index = this.specs.length;
    const level = st.lo ?? 0;
    const start = this.plan.addStage(index, multiplier - level, atMs, stageSeed(this.input.planSeed ?? 1, index));
    const spec: StageSpec = { index, multiplier, refine: true, startMs: start, endMs: start + s.stageMs, judgedFromMs: start + s.settleMs };
    this.specs.push(spec);
    this.nextToJudge = this.specs.length - 1;
    st.running = index;
    st.stagesRun++;
    this.emit('stageStart', spec);
  }

  private complete(summary: RunSummary): CapacityResult {
    // The last stage ends with the plan's horizon, so its verdict comes with the drain.
    if (!this.stopped) this.judgeDue(summary.durationS * 1000, true);
    const db = this.input.db;
    const runId = summary.run;
    // The stored verdicts: recomputed with the final counts (late duplicates) and the target's health.
    const scrapes = db && runId ? runScrapes(db, runId) : [];
    const judgedIndexes = new Set(this.judged.map((j) => j.index));
    const finalStages = this.specs
      .filter((spec) => judgedIndexes.has(spec.index))
      .map((spec) => {
        const health = healthIn(scrapes, spec.judgedFromMs, spec.endMs);
        return this.judge(spec, Object.keys(health).length > 0 ? health : undefined);
      });
    const answer = capacityAnswer(finalStages, this.slo, this.multipliers.at(-1)!);
    if (!this.endedBecause) this.endedBecause = summary.status === 'finished' ? 'the search reached its horizon' : `the run ended (${summary.status})`;
    if (db && runId) {
      const { stages, ...rest } = answer;
      writeCapacity(db, {
        runId,
        capacity: answer.capacity,
        generatorBound: answer.generatorBound,
        knee: answer.knee?.multiplier ?? null,
        search: this.input.search,
        answer: { ...rest, endedBecause: this.endedBecause, slo: this.slo.text, lossLimitMs: this.slo.lossLimitMs, targetMs: this.slo.targetMs },
        stages: stages.map((st) => ({
          stage: st.index,
          multiplier: st.multiplier,
          refine: st.refine,
          startMs: st.startMs,
          endMs: st.endMs,
          judgedFromMs: st.judgedFromMs,
          pass: st.pass,
          generatorBound: st.generatorBound,
          result: st as unknown as Record<string, unknown>,
        })),
      });
    }
    return { run: runId, answer, summary, endedBecause: this.endedBecause };
  }
}

/** Mean of each scraped series over [fromMs, toMs) (the bus's queue, open polls, RSS ...), at most 40 series. */
export function healthIn(samples: readonly { atMs: number; metric: string; labels: string; value: number }[], fromMs: number, toMs: number): Record<string, number> {
  const acc = new Map<string, { sum: number; n: number }>();
  for (const s of samples) {
    if (s.atMs < fromMs || s.atMs >= toMs) continue;
    const key = s.labels ? `${s.metric}{${s.labels}}` : s.metric;
    const a = acc.get(key) ?? { sum: 0, n: 0 };
    a.sum += s.value;
    a.n++;
    acc.set(key, a);
  }
  return Object.fromEntries([...acc].sort((a, b) => (a[0] < b[0] ? -1 : 1)).slice(0, 40).map(([k, a]) => [k, a.sum / a.n]));
}

/** Starts a capacity search; listen for 'stage' and the run's 'tick', and await `.finished`. */
export function startCapacity(input: CapacityInput): CapacityRun {
  return new CapacityRun(input);
}
