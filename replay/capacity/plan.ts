// The plan of a capacity search: one continuous rehearsal whose load is raised stage by stage.
// Each stage adds classes (whole proctor/learner groups drawn as `replay --mode sample` draws
// them, with a seed of its own) on top of those already in session, so users stay connected and
// the traffic keeps the model's structure and timing at every multiplier. Pure and lazy: each
// stage is its own seeded plan, and the stages are merged in time order as the runner pulls.
//
// Every stage replays the same model clock: at replay time t all stages follow model time
// window.start + t * speed, so the load at any instant is (sum of the stages' scales) times what
// the model recorded at that instant. A stage may be ended early (a --refine step backs off): its
// users then leave together at that time.

import { UsageError } from '../../core/errors.js';
import { formatDuration } from '../../core/duration.js';
import type { ModelReader } from '../../db/model-types.js';
import type { PlanEvent, PlanWindow } from '../plan-types.js';
import { defaultPlanOptions } from '../plan/options.js';
import { sampleSource } from '../plan/sample.js';
import { schedule } from '../plan/schedule.js';
import { resolveWindow } from '../plan/window.js';

/** The multipliers a search visits: from, from+step, ... up to `to` (within float noise). */
export function stageMultipliers(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let k = 0; ; k++) {
    // Rounded to 1e-9 so 0.1 steps read 1.3, not 1.3000000000000003.
    const m = Math.round((from + k * step) * 1e9) / 1e9;
    if (m > to + 1e-9 || k > 10_000) break;
    out.push(m);
  }
  return out;
}

/** A stage's own seed: a fixed function of the search's seed and the stage's number. */
export function stageSeed(seed: number, stage: number): number {
  return (seed * 1_000_003 + 7_919 * (stage + 1)) % 2_147_483_647;
}

/** Ids in a stage's plan carry its prefix ('s3.c17.l4'), so stages never share a user or a topic. */
export function stagePrefix(stage: number): string {
  return `s${stage + 1}.`;
}

export interface StagedPlanOptions {
  /** 'peak', 'all', 'HH:MM-HH:MM' or an ISO interval: where in the model's day the search replays. */
  window: string;
  speed: number;
  seed: number;
  /** Replay time (ms) the search may last at most: every stage's users leave by then. */
  horizonMs: number;
}

interface StageState {
  id: number;
  scale: number;
  startMs: number;
  /** Users of this stage leave at this time; Infinity until the stage is ended. */
  endMs: number;
  events: Iterator<PlanEvent>;
  head: PlanEvent | null;
  learners: Set<string>;
  proctors: Set<string>;
  /** Leaves queued once the stage ended. */
  leaving: PlanEvent[] | null;
  done: boolean;
}

export class StagedPlan implements Iterable<PlanEvent> {
  readonly window: PlanWindow;
  readonly modelFingerprint: string;
  private readonly stages: StageState[] = [];
  private pulledMs = 0;
  private iterated = false;

  constructor(
    private readonly model: ModelReader,
    readonly options: StagedPlanOptions,
  ) {
    const planOptions = { ...defaultPlanOptions, window: options.window, speed: options.speed, seed: options.seed, durationMs: options.horizonMs };
    this.window = resolveWindow(model, planOptions);
    const needMs = options.horizonMs * options.speed;
    const hasMs = this.window.endMs - this.window.startMs;
    if (hasMs + 1 < needMs) {
      throw new UsageError(
        `the search needs ${formatDuration(needMs)} of recorded time (${formatDuration(options.horizonMs)} at --speed ${options.speed}) but the window ${this.window.label} has ${formatDuration(hasMs)}: ` +
          'raise --speed, shorten --stage, or narrow --from/--to/--step',
        '--window',
      );
    }
    this.modelFingerprint = model.overview().fingerprint;
    // Fails now (a model without the distributions sample mode needs) rather than mid-run.
    sampleSource(model, 1, options.seed, this.window.startMs, this.window.endMs);
  }

  /** The latest plan time handed to the runner: a stage added or ended now takes effect after it. */
  get pulledUpToMs(): number {
    return this.pulledMs;
  }

  /**
   * Adds `scale` times the model's load from `startMs` (replay time) until the horizon or until
   * endStage. Returns the time it really starts: never before what the runner has already pulled.
   */
  addStage(id: number, scale: number, startMs: number, seed: number): number {
    if (this.stages.some((s) => s.id === id)) throw new Error(`stage ${id} added twice`);
    const start = Math.max(startMs, this.pulledMs);
    const { speed, horizonMs } = this.options;
    const modelStart = this.window.startMs + start * speed;
    const durationMs = Math.max(0, horizonMs - start);
    const source = sampleSource(this.model, scale, seed, modelStart, modelStart + durationMs * speed);
    const events = schedule(source, { windowStartMs: modelStart, speed, durationMs, rampMs: 0, seed, shard: { index: 0, count: 1 } });
    const prefix = stagePrefix(id);
    const stage: StageState = {
      id,
      scale,
      startMs: start,
      endMs: Number.POSITIVE_INFINITY,
      events: shiftAndPrefix(events, start, prefix),
      head: null,
      learners: new Set(),
      proctors: new Set(),
      leaving: null,
      done: false,
    };
    this.stages.push(stage);
    return start;
  }

  /** Ends a stage: its events from `atMs` on are dropped and its users in session leave then. Returns the time used. */
  endStage(id: number, atMs: number): number {
    const s = this.stages.find((x) => x.id === id);
    if (!s) throw new Error(`no stage ${id}`);
    const at = Math.max(atMs, this.pulledMs, s.startMs);
    if (at < s.endMs) s.endMs = at;
    return s.endMs;
  }

  /** The sum of the scales of the stages running at replay time `atMs`. */
  levelAt(atMs: number): number {
    return this.stages.filter((s) => s.startMs <= atMs && atMs < s.endMs).reduce((a, s) => a + s.scale, 0);
  }

  [Symbol.iterator](): Iterator<PlanEvent> {
    if (this.iterated) throw new Error('a staged plan is iterated once, by the run');
    this.iterated = true;
    return this.merge();
  }

  private *merge(): Generator<PlanEvent> {
    for (;;) {
      let best: StageState | undefined;
      let bestEvent: PlanEvent | undefined;
      for (const s of this.stages) {
        const ev = this.peek(s);
        if (ev && (!bestEvent || ev.atMs < bestEvent.atMs)) {
          best = s;
          bestEvent = ev;
        }
      }
      // Every stage runs to the horizon (the run's duration), so this ends the plan only there or
      // when the model's window has no more traffic.
      if (!best || !bestEvent) return;
      this.take(best);
      this.pulledMs = Math.max(this.pulledMs, bestEvent.atMs);
      yield bestEvent;
    }
  }

  /** The stage's next event, with its end applied; null when the stage has nothing more. */
  private peek(s: StageState): PlanEvent | null {
    if (s.done) return null;
    if (s.leaving) {
      if (s.leaving.length > 0) return s.leaving[0]!;
      s.done = true;
      return null;
    }
    if (s.head === null) {
      const r = s.events.next();
      if (r.done) {
        s.done = true;
        return null;
      }
      s.head = r.value;
    }
    if (s.head.atMs >= s.endMs) {
      // Ended: everyone still in session leaves at the end time, learners before proctors.
      const at = s.endMs;
      s.leaving = [
        ...[...s.learners].map((learner): PlanEvent => ({ kind: 'learnerLeave', atMs: at, learner })),
        ...[...s.proctors].map((proctor): PlanEvent => ({ kind: 'proctorLeave', atMs: at, proctor })),
      ];
      s.head = null;
      return this.peek(s);
    }
    return s.head;
  }

  private take(s: StageState): void {
    if (s.leaving) {
      s.leaving.shift();
      return;
    }
    const ev = s.head!;
    s.head = null;
    if (ev.kind === 'learnerJoin') s.learners.add(ev.learner);
    else if (ev.kind === 'learnerLeave') s.learners.delete(ev.learner);
    else if (ev.kind === 'proctorJoin') s.proctors.add(ev.proctor);
    else if (ev.kind === 'proctorLeave') s.proctors.delete(ev.proctor);
  }
}

function* shiftAndPrefix(events: Iterator<PlanEvent>, offsetMs: number, prefix: string): Generator<PlanEvent> {
  const p = (id: string): string => prefix + id;
  for (let r = events.next(); !r.done; r = events.next()) {
    const ev = r.value;
    const atMs = ev.atMs + offsetMs;
    switch (ev.kind) {
      case 'learnerJoin':
        yield { ...ev, atMs, learner: p(ev.learner), classId: p(ev.classId) };
        break;
      case 'proctorJoin':
        yield { ...ev, atMs, proctor: p(ev.proctor), classId: p(ev.classId), roster: ev.roster.map(p) };
        break;
      case 'publish':
        yield { ...ev, atMs, learner: p(ev.learner) };
        break;
      case 'control':
        yield { ...ev, atMs, proctor: p(ev.proctor), targets: ev.targets.map(p) };
        break;
      case 'learnerLeave':
        yield { ...ev, atMs, learner: p(ev.learner) };
        break;
      case 'proctorLeave':
        yield { ...ev, atMs, proctor: p(ev.proctor) };
        break;
    }
  }
}

/**
 * The plan of a search as `rehearse capacity` runs it: stage k starts at k * stageMs and adds
 * multipliers[k] - multipliers[k-1] (the first adds multipliers[0]), each with its own seed.
 */
export function createSearchPlan(model: ModelReader, multipliers: readonly number[], stageMs: number, options: StagedPlanOptions): StagedPlan {
  const plan = new StagedPlan(model, options);
  multipliers.forEach((m, k) => plan.addStage(k, k === 0 ? m : m - multipliers[k - 1]!, k * stageMs, stageSeed(options.seed, k)));
  return plan;
}
