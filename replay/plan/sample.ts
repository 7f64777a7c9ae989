// Sample mode: new classes drawn from the model's fitted distributions. Classes arrive along
// the recorded arrival curve times the scale; each has a proctor, a roster, learners starting
// together after the proctor's lead time and finishing around the same time, and publish and
// control streams drawn gap by gap, lazily.

import { RehearseError } from '../../core/errors.js';
import { empiricalDistribution, normalCdf, type EmpiricalDistribution } from '../../stats/empirical.js';
import { forkRandom, randomExponential, randomNormal, type Random } from '../../stats/random.js';
import type { DistributionName, ModelReader } from '../../db/model-types.js';
import type { ClassSource, PlannedClass, PlannedSession, SessionAction } from './source.js';

/**
 * Assumptions where the model has no distribution (documented in the dry run's notes):
 * learners after the first join within an exponential spread of this mean (capped at 5x), and
 * learner durations in a class are correlated (Gaussian copula) with this coefficient, so a
 * class finishes around the same time while each duration still follows sessionDuration.
 */
export const learnerStartSpreadMs = 30_000;
export const classDurationCorrelation = 0.8;

const minuteMs = 60_000;

interface Fitted {
  publishInterval: EmpiricalDistribution;
  sessionDuration: EmpiricalDistribution;
  messagesPerPublish: EmpiricalDistribution | null;
  controlInterval: EmpiricalDistribution | null;
  controlTargets: EmpiricalDistribution | null;
  proctorDuration: EmpiricalDistribution | null;
  rosterSize: EmpiricalDistribution | null;
  leadTime: EmpiricalDistribution | null;
}

function fit(model: ModelReader): Fitted {
  const get = (name: DistributionName, discrete: boolean): EmpiricalDistribution | null => {
    const d = model.distribution(name);
    return d && d.samples.length > 0 ? empiricalDistribution(d.samples, discrete) : null;
  };
  const publishInterval = get('learnerPublishInterval', false);
  const sessionDuration = get('sessionDuration', false);
  if (!publishInterval || !sessionDuration) {
    throw new RehearseError(
      'REHEARSE_MODEL',
      `the model has no ${publishInterval ? 'sessionDuration' : 'learnerPublishInterval'} distribution, so --mode sample cannot draw sessions; re-ingest logs with learner publishes, or use --mode clone`,
    );
  }
  const proctorDuration = get('proctorSessionDuration', false);
  const rosterSize = get('rosterSize', true);
  return {
    publishInterval,
    sessionDuration,
    messagesPerPublish: get('messagesPerPublish', true),
    controlInterval: get('proctorControlInterval', false),
    controlTargets: get('controlTargets', true),
    // Without proctors in the model, classes are single unwatched learners.
    proctorDuration: rosterSize ? proctorDuration : null,
    rosterSize: proctorDuration ? rosterSize : null,
    leadTime: get('proctorLeadTime', false),
  };
}

export function sampleSource(model: ModelReader, scale: number, seed: number, fromMs: number, toMs: number): ClassSource {
  const f = fit(model);
  const meanClassLearners = f.rosterSize ? Math.max(1, f.rosterSize.mean()) : 1;
  // The arrival curve counts learner starts, so a class's first learner joins at its anchor and
  // its proctor the lead time earlier (later when the lead is negative).
  const earliestOffset = Math.min(0, -(f.leadTime?.max() ?? 0));
  const longest = Math.max(f.sessionDuration.max(), f.proctorDuration?.max() ?? 0) + Math.abs(f.leadTime?.max() ?? 0) + Math.abs(f.leadTime?.min() ?? 0) + 5 * learnerStartSpreadMs;
  const arrivals = model.arrivals();
  const base = arrivals[0]?.minuteMs ?? fromMs;
  // Classes that started before the window and are still in session at its start are needed for the warm start.
  let minute = Math.max(0, Math.floor((fromMs - longest - base) / minuteMs));
  let cumulative = 0; // classes expected before `minute`
  const arrivalRng = forkRandom(seed, 'sample/arrivals');
  let ordinal = 0;
  let nextAnchor = Number.NaN;

  // Stratified arrivals: class i arrives where the expected count crosses i + U_i, so the number
  // of classes follows the curve exactly (to one) while their instants stay random.
  const advance = (): void => {
    const target = ordinal + arrivalRng.next();
    for (; minute < arrivals.length; minute++) {
      const rate = (arrivals[minute]!.learners * scale) / meanClassLearners;
      if (cumulative + rate > target) {
        nextAnchor = arrivals[minute]!.minuteMs + ((target - cumulative) / rate) * minuteMs;
        return;
      }
      cumulative += rate;
    }
    nextAnchor = Number.POSITIVE_INFINITY;
  };
  advance();

  return {
    lowerBoundMs(): number {
      return nextAnchor + earliestOffset > toMs ? Number.POSITIVE_INFINITY : nextAnchor + earliestOffset;
    },
    next(): PlannedClass | null {
      if (!(nextAnchor + earliestOffset <= toMs)) return null;
      const cls = drawClass(f, seed, ordinal, nextAnchor);
      ordinal++;
      advance();
      return cls;
    },
  };
}

function drawClass(f: Fitted, seed: number, ordinal: number, anchorMs: number): PlannedClass {
  const id = `c${ordinal + 1}`;
  const rng = forkRandom(seed, `sample/${id}`);
  const size = f.rosterSize ? Math.max(1, Math.round(f.rosterSize.sample(rng))) : 1;
  const zClass = randomNormal(rng);
  const rho = classDurationCorrelation;
  const learnersStart = anchorMs;
  const proctorStart = anchorMs - (f.leadTime ? f.leadTime.sample(rng) : 0);
  const intervals: { id: string; startMs: number; endMs: number }[] = [];
  for (let k = 0; k < size; k++) {
    const spread = k === 0 ? 0 : Math.min(5 * learnerStartSpreadMs, randomExponential(rng, learnerStartSpreadMs));
    const u = normalCdf(rho * zClass + Math.sqrt(1 - rho * rho) * randomNormal(rng));
    const startMs = learnersStart + spread;
    intervals.push({ id: `${id}.l${k + 1}`, startMs, endMs: startMs + Math.max(1, f.sessionDuration.quantile(u)) });
  }
  const learners: PlannedSession[] = intervals.map((s) => ({
    ...s,
    role: 'learner',
    actions: () => learnerActions(f, forkRandom(seed, `sample/${s.id}`), s.startMs, s.endMs),
  }));
  let proctor: PlannedSession | null = null;
  if (f.proctorDuration) {
    const p = { id: `${id}.p`, startMs: proctorStart, endMs: proctorStart + Math.max(1, f.proctorDuration.quantile(normalCdf(zClass))) };
    proctor = { ...p, role: 'proctor', actions: () => proctorActions(f, forkRandom(seed, `sample/${p.id}`), p.startMs, p.endMs, intervals) };
  }
  return { id, ordinal, proctor, learners };
}

function* learnerActions(f: Fitted, rng: Random, startMs: number, endMs: number): Generator<SessionAction> {
  // The first publish falls a uniform fraction of a gap after joining (a stationary renewal process).
  let t = startMs + rng.next() * f.publishInterval.sample(rng);
  while (t <= endMs) {
    yield { atMs: t, kind: 'publish', messages: f.messagesPerPublish ? Math.max(1, Math.round(f.messagesPerPublish.sample(rng))) : 1 };
    t += Math.max(1, f.publishInterval.sample(rng));
  }
}

function* proctorActions(
  f: Fitted,
  rng: Random,
  startMs: number,
  endMs: number,
  roster: { id: string; startMs: number; endMs: number }[],
): Generator<SessionAction> {
  if (!f.controlInterval) return;
  let t = startMs + rng.next() * f.controlInterval.sample(rng);
  while (t <= endMs) {
    const present = roster.filter((l) => l.startMs <= t && t < l.endMs);
    if (present.length > 0) {
      const want = Math.min(present.length, Math.max(1, Math.round(f.controlTargets ? f.controlTargets.sample(rng) : 1)));
      // Partial Fisher-Yates: `want` distinct learners, in roster order for readable events.
      for (let i = 0; i < want; i++) {
        const j = i + Math.floor(rng.next() * (present.length - i));
        [present[i], present[j]] = [present[j]!, present[i]!];
      }
      const chosen = present.slice(0, want).sort((a, b) => a.startMs - b.startMs || (a.id < b.id ? -1 : 1));
      yield { atMs: t, kind: 'control', targets: chosen.map((l) => l.id) };
    }
    t += Math.max(1, f.controlInterval.sample(rng));
  }
}
