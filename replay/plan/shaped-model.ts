// The model as a shape says it would be: a ModelReader over the recorded one with distributions
// multiplied, offset or replaced, rosters regrouped and arrivals moved or thinned. The plan draws
// from it exactly as from the recorded model, so both modes and every window see the same what-if.
// Pure and seeded: the same model, shape and seed give the same shaped model.

import { DateTime } from 'luxon';
import { UsageError } from '../../core/errors.js';
import { forkRandom } from '../../stats/random.js';
import { normalCdf } from '../../stats/empirical.js';
import { summarize } from '../../stats/quantile.js';
import type { ArrivalMinute, Distribution, DistributionName, ModelOverview, ModelReader, RecordedClass, SessionRecord } from '../../db/model-types.js';
import { cloneJitterMs } from './clone.js';
import { clockOn } from './window.js';
import { learnerStartSpreadMs } from './sample.js';
import { isCountDistribution, type DistributionEdit, type Replacement, type Shape, type ShapeTerm } from './shape.js';

const minuteMs = 60_000;
/** Points drawn for a replaced distribution: its quantiles at (i + 0.5) / n, so no randomness is needed. */
export const replacementPoints = 10_000;

/** The recorded model when the shape is empty; otherwise a lazy, memoised shaped view of it. */
export function shapeModel(model: ModelReader, shape: Shape, seed: number): ModelReader {
  if (shape.terms.length === 0) return model;
  const recordedOverview = model.overview();
  const zone = recordedOverview.timezone || 'UTC';
  const day = DateTime.fromMillis(recordedOverview.span.startMs, { zone }).startOf('day');
  // A minute of the local clock (600 is 10:00), right on a 23- or 25-hour day.
  const clock = (minute: number): number => clockOn(day, Math.floor(minute / 60), minute % 60);
  checkAgainstDay(shape, recordedOverview, clock, zone);

  const distributions = new Map<DistributionName, Distribution | null>();
  let arrivals: ArrivalMinute[] | null = null;
  let classes: RecordedClass[] | null = null;
  const rosterShaped = shape.terms.some((t) => t.kind === 'distribution' && t.name === 'rosterSize');
  const arrivalTerms = shape.terms.filter((t): t is Extract<ShapeTerm, { kind: 'surge' | 'arrivals' }> => t.kind === 'surge' || t.kind === 'arrivals');

  let overview: ModelOverview | null = null;
  const reader: ModelReader = {
    overview() {
      // A surge late in the day moves sessions past its recorded end: the span grows to hold them.
      overview ??= extendedOverview(recordedOverview, arrivalTerms, clock, reader);
      return overview;
    },
    distribution(name) {
      if (!distributions.has(name)) distributions.set(name, shapeDistribution(model.distribution(name), name, shape));
      return distributions.get(name)!;
    },
    arrivals() {
      arrivals ??= shapeArrivals(extendCurve(model.arrivals(), reader.overview().span.endMs), arrivalTerms, clock);
      return arrivals;
    },
    classes() {
      if (!rosterShaped && arrivalTerms.length === 0) return model.classes();
      classes ??= shapeClasses(model, reader, arrivalTerms, clock, seed, rosterShaped);
      return classes;
    },
    timeline: (id) => model.timeline(id),
  };
  return reader;
}

function extendedOverview(recorded: ModelOverview, terms: ArrivalTerm[], clock: (minute: number) => number, shaped: ModelReader): ModelOverview {
  let endMs = recorded.span.endMs;
  const longest = Math.max(shaped.distribution('sessionDuration')?.summary.max ?? 0, shaped.distribution('proctorSessionDuration')?.summary.max ?? 0);
  for (const t of terms) if (t.kind === 'surge') endMs = Math.max(endMs, clock(t.atMinute) + t.lengthMs + longest);
  return endMs === recorded.span.endMs ? recorded : { ...recorded, span: { startMs: recorded.span.startMs, endMs } };
}

/** The curve with zero minutes up to `endMs`. */
function extendCurve(curve: ArrivalMinute[], endMs: number): ArrivalMinute[] {
  const out = [...curve];
  let last = out.length > 0 ? out[out.length - 1]!.minuteMs : Math.floor(endMs / minuteMs) * minuteMs;
  while (last + minuteMs < endMs) {
    last += minuteMs;
    out.push({ minuteMs: last, learners: 0 });
  }
  return out;
}

/** Terms that only make sense against the recorded day are checked here, once, with the day's hours. */
function checkAgainstDay(shape: Shape, overview: ModelOverview, clock: (minute: number) => number, zone: string): void {
  const problems: string[] = [];
  const hhmm = (ms: number): string => DateTime.fromMillis(ms, { zone }).toFormat('HH:mm');
  const { startMs, endMs } = overview.span;
  for (const t of shape.terms) {
    if (t.kind === 'surge' && !(clock(t.atMinute) >= startMs && clock(t.atMinute) < endMs)) {
      problems.push(`'${t.text}': the surge starts outside the recorded day (${hhmm(startMs)}-${hhmm(endMs)}); pick a time inside it`);
    }
    if (t.kind === 'arrivals' && !(clock(t.toMinute) > startMs && clock(t.fromMinute) < endMs)) {
      problems.push(`'${t.text}': the range is outside the recorded day (${hhmm(startMs)}-${hhmm(endMs)})`);
    }
  }
  if (problems.length > 0) throw new UsageError(problems.length === 1 ? problems[0]! : problems.join('\n  '), '--shape');
}

/** Applies every term on `name` in order (and pollTimeout to pollDuration). Null stays null: nothing to shape. */
export function shapeDistribution(recorded: Distribution | null, name: DistributionName, shape: Shape): Distribution | null {
  const edits: (DistributionEdit | { kind: 'cap'; max: number })[] = [];
  for (const t of shape.terms) {
    if (t.kind === 'distribution' && t.name === name) edits.push(t.edit);
    // A poll that waited longer than the new timeout would have ended at it.
    if (t.kind === 'pollTimeout' && name === 'pollDuration') edits.push({ kind: 'cap', max: t.ms });
  }
  if (edits.length === 0) return recorded;
  const count = isCountDistribution(name);
  const unit = recorded?.unit ?? (count ? 'count' : 'ms');
  let values: Float64Array | null = recorded && recorded.samples.length > 0 ? Float64Array.from(recorded.samples) : null;
  for (const e of edits) {
    if (e.kind === 'cap') values = values ? values.map((v) => Math.min(v, e.max)) : Float64Array.of(e.max);
    else if (e.kind === 'replace') values = drawReplacement(e.with);
    else if (!values) continue; // nothing recorded to multiply or offset
    else if (e.kind === 'multiply') values = values.map((v) => v * e.factor);
    else values = values.map((v) => v + e.by);
  }
  if (!values) return recorded;
  const floor = count ? 1 : name === 'proctorLeadTime' ? Number.NEGATIVE_INFINITY : 0;
  values = values.map((v) => Math.max(floor, count ? Math.round(v) : v)).sort();
  return { name, unit, summary: summarize(values, true), samples: values };
}

function drawReplacement(r: Replacement): Float64Array {
  if (r.kind === 'constant') return Float64Array.of(r.value);
  const out = new Float64Array(replacementPoints);
  for (let i = 0; i < replacementPoints; i++) {
    const u = (i + 0.5) / replacementPoints;
    out[i] =
      r.kind === 'uniform'
        ? r.min + (r.max - r.min) * u
        : r.kind === 'exponential'
          ? -r.mean * Math.log(1 - u)
          : r.median * Math.exp((Math.log(r.p90 / r.median) / probit(0.9)) * probit(u));
  }
  return out;
}

/** Inverse of the standard normal CDF, by bisection on normalCdf (|error| well below the CDF's own). */
function probit(p: number): number {
  let lo = -10;
  let hi = 10;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (normalCdf(mid) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

type ArrivalTerm = Extract<ShapeTerm, { kind: 'surge' | 'arrivals' }>;

/**
 * Surge: the day's learners arrive evenly through the surge instead (its last half-minute left for
 * the learners who join after their class's first, so they land inside it too). Scaled ranges:
 * those minutes times the factor.
 */
export function shapeArrivals(recorded: ArrivalMinute[], terms: ArrivalTerm[], clock: (minute: number) => number): ArrivalMinute[] {
  let curve = recorded.map((a) => ({ ...a }));
  for (const t of terms) {
    if (t.kind === 'surge') {
      const total = curve.reduce((sum, a) => sum + a.learners, 0);
      const [from, to] = surgeSpan(t, clock);
      const minutes = curve.filter((a) => a.minuteMs + minuteMs > from && a.minuteMs < to);
      curve = curve.map((a) => {
        // Each minute gets the part of the surge it overlaps.
        const overlap = Math.max(0, Math.min(a.minuteMs + minuteMs, to) - Math.max(a.minuteMs, from));
        return { minuteMs: a.minuteMs, learners: minutes.length > 0 ? (total * overlap) / (to - from) : 0 };
      });
    } else {
      const from = clock(t.fromMinute);
      const to = clock(t.toMinute);
      curve = curve.map((a) => (a.minuteMs >= from && a.minuteMs < to ? { minuteMs: a.minuteMs, learners: a.learners * t.factor } : a));
    }
  }
  return curve;
}

/** Where a surge puts class starts: its span, less the learners' usual join spread when it is long enough. */
function surgeSpan(t: Extract<ShapeTerm, { kind: 'surge' }>, clock: (minute: number) => number): [number, number] {
  const from = clock(t.atMinute);
  const room = t.lengthMs >= 4 * learnerStartSpreadMs ? t.lengthMs - learnerStartSpreadMs : t.lengthMs;
  return [from, from + room];
}

/**
 * The recorded classes as the shape has them, in order of their earliest start: regrouped into
 * rosters drawn from the shaped rosterSize, then moved by a surge (every session start warped to
 * the surge in the day's order) or copied and thinned in a scaled range.
 */
function shapeClasses(model: ModelReader, shaped: ModelReader, terms: ArrivalTerm[], clock: (minute: number) => number, seed: number, regroup: boolean): RecordedClass[] {
  let classes = [...model.classes()];
  if (regroup) classes = regroupClasses(classes, shaped.distribution('rosterSize'), seed);
  for (const [k, t] of terms.entries()) {
    if (t.kind === 'surge') classes = surgeClasses(classes, surgeSpan(t, clock));
    else classes = scaleClasses(classes, t.factor, clock(t.fromMinute), clock(t.toMinute), forkRandom(seed, `shape/arrivals/${k}`));
  }
  return classes.sort((a, b) => earliestStart(a) - earliestStart(b));
}

/**
 * The same watched learners, in order of their start, regrouped into rosters of the shaped
 * size; each roster keeps the proctor of its first learner's recorded class (a proctor whose
 * class is split watches each part: the proctor count follows the roster size). Controls still
 * go only to that proctor's recorded learners (clone mode replays the recorded timelines).
 */
export function regroupClasses(classes: RecordedClass[], rosterSize: Distribution | null, seed: number): RecordedClass[] {
  if (!rosterSize || rosterSize.samples.length === 0) return classes;
  const sizes = rosterSize.samples;
  const rng = forkRandom(seed, 'shape/rosters');
  const proctorOf = new Map<number, SessionRecord>();
  const watched: SessionRecord[] = [];
  const out: RecordedClass[] = [];
  for (const c of classes) {
    if (!c.proctor) {
      out.push(c);
      continue;
    }
    for (const l of c.learners) {
      proctorOf.set(l.id, c.proctor);
      watched.push(l);
    }
  }
  watched.sort((a, b) => a.startMs - b.startMs || a.id - b.id);
  for (let i = 0; i < watched.length; ) {
    const size = Math.max(1, Math.round(sizes[Math.min(sizes.length - 1, Math.floor(rng.next() * sizes.length))]!));
    const learners = watched.slice(i, i + size);
    i += size;
    const recorded = proctorOf.get(learners[0]!.id)!;
    // The proctor stays until its last learner leaves.
    const endMs = Math.max(recorded.endMs, ...learners.map((l) => l.endMs));
    out.push({ proctor: { ...recorded, endMs }, learners });
  }
  return out;
}

/**
 * Every session start warped monotonically into the surge by its rank in the day (learner-
 * weighted), each learner on its own, so a class's learners arrive together as the whole day
 * does; a proctor moves with its first learner, keeping its lead time.
 */
function surgeClasses(classes: RecordedClass[], [from, to]: [number, number]): RecordedClass[] {
  const starts = classes.flatMap((c) => c.learners.map((l) => l.startMs)).sort((a, b) => a - b);
  if (starts.length === 0) return classes;
  const rankOf = (t: number): number => {
    let lo = 0;
    let hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (starts[mid]! < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const warp = (t: number): number => from + ((rankOf(t) + 0.5) / starts.length) * (to - from);
  const move = (s: SessionRecord, startMs: number): SessionRecord => ({ ...s, startMs, endMs: startMs + (s.endMs - s.startMs) });
  return classes.map((c) => {
    const learners = c.learners.map((l) => move(l, warp(l.startMs)));
    if (!c.proctor || c.learners.length === 0) return { proctor: c.proctor, learners };
    const first = c.learners.reduce((a, b) => (b.startMs < a.startMs ? b : a));
    return { proctor: move(c.proctor, c.proctor.startMs + warp(first.startMs) - first.startMs), learners };
  });
}

/** Classes starting in [from, to) copied floor(factor) times plus one with probability frac(factor), copies jittered. */
function scaleClasses(classes: RecordedClass[], factor: number, from: number, to: number, rng: ReturnType<typeof forkRandom>): RecordedClass[] {
  const out: RecordedClass[] = [];
  for (const c of classes) {
    const t = earliestStart(c);
    if (!(t >= from && t < to)) {
      out.push(c);
      continue;
    }
    const copies = Math.floor(factor) + (rng.next() < factor - Math.floor(factor) ? 1 : 0);
    for (let k = 0; k < copies; k++) {
      const shift = k === 0 ? 0 : Math.round((rng.next() * 2 - 1) * cloneJitterMs);
      const move = (s: SessionRecord): SessionRecord => ({ ...s, startMs: s.startMs + shift, endMs: s.endMs + shift });
      out.push(k === 0 ? c : { proctor: c.proctor ? move(c.proctor) : null, learners: c.learners.map(move) });
    }
  }
  return out;
}

function earliestStart(c: RecordedClass): number {
  let t = c.proctor?.startMs ?? Number.POSITIVE_INFINITY;
  for (const l of c.learners) if (l.startMs < t) t = l.startMs;
  return t;
}
