// Which stretch of the recorded day a plan replays: the busiest period ('peak'), the whole span
// ('all'), a clock-time range in the model's zone, or an ISO 8601 interval.

import { DateTime, Interval } from 'luxon';
import { UsageError } from '../../core/errors.js';
import { formatDuration } from '../../core/duration.js';
import { zoneLabel } from '../../core/zone.js';
import type { ModelReader } from '../../db/model-types.js';
import type { PlanOptions, PlanWindow } from '../plan-types.js';

const minuteMs = 60_000;
/** Length of the 'peak' window when --duration does not say. */
export const defaultPeakMs = 3_600_000;

export function resolveWindow(model: ModelReader, options: PlanOptions): PlanWindow {
  const overview = model.overview();
  const { startMs: spanStart, endMs: spanEnd } = overview.span;
  const zone = overview.timezone || 'UTC';
  // Labels are stored with the run and printed: the zone as people read it over the window
  // (`Europe/Paris (CEST, UTC+02:00)`, `UTC+02:00`, never `Etc/GMT-2`).
  const shown = (from: number, to: number): string => zoneLabel(zone, from, to);
  const spec = options.window;
  if (!(spanEnd > spanStart)) {
    throw new UsageError('the model covers no time (empty span); ingest some logs first', '--window');
  }
  if (spec === 'all') return { startMs: spanStart, endMs: spanEnd, label: `all ${clock(spanStart, zone)}-${clock(spanEnd, zone)} ${shown(spanStart, spanEnd)}` };
  if (spec === 'peak') {
    const lengthMs = Math.min(spanEnd - spanStart, (options.durationMs ?? defaultPeakMs) * options.speed);
    const startMs = busiestStart(model, spanStart, spanEnd, lengthMs);
    return {
      startMs,
      endMs: startMs + lengthMs,
      label: `peak ${formatDuration(lengthMs)} ${clock(startMs, zone)}-${clock(startMs + lengthMs, zone)} ${shown(startMs, startMs + lengthMs)}`,
    };
  }
  let from: number;
  let to: number;
  const hhmm = /^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$/.exec(spec);
  if (hhmm) {
    const day = DateTime.fromMillis(spanStart, { zone }).startOf('day');
    from = clockOn(day, Number(hhmm[1]), Number(hhmm[2]));
    to = clockOn(day, Number(hhmm[3]), Number(hhmm[4]));
  } else {
    const interval = Interval.fromISO(spec, { zone });
    if (!interval.isValid || !interval.start || !interval.end) {
      throw new UsageError(`'${spec}' is not an ISO 8601 interval (${interval.invalidExplanation ?? interval.invalidReason ?? 'invalid'})`, '--window');
    }
    from = interval.start.toMillis();
    to = interval.end.toMillis();
  }
  const startMs = Math.max(from, spanStart);
  const endMs = Math.min(to, spanEnd);
  if (!(endMs > startMs)) {
    throw new UsageError(
      `${spec} does not overlap the recorded day, ${clock(spanStart, zone)}-${clock(spanEnd, zone)} ${shown(spanStart, spanEnd)} (${DateTime.fromMillis(spanStart, { zone }).toISODate()})`,
      '--window',
    );
  }
  return { startMs, endMs, label: `${clock(startMs, zone)}-${clock(endMs, zone)} ${shown(startMs, endMs)}` };
}

/**
 * The instant the clocks of `day`'s zone read hh:mm (24:00 is the next midnight). Clock time, not
 * hours since midnight: on a 23-hour day 03:30 is 2.5 hours after midnight. A time the clocks skip
 * (02:30 on a spring-forward day) is the instant after the skip.
 */
export function clockOn(day: DateTime, hour: number, minute: number): number {
  return day
    .plus({ days: Math.floor(hour / 24) })
    .set({ hour: hour % 24, minute })
    .toMillis();
}

function clock(ms: number, zone: string): string {
  return DateTime.fromMillis(ms, { zone }).toFormat('HH:mm');
}

/**
 * Start (on a minute) of the period of `lengthMs` with the most learner-minutes, from the
 * recorded sessions: the earliest one on ties. One pass over the sessions into a per-minute
 * difference array, then a sliding sum.
 */
function busiestStart(model: ModelReader, spanStart: number, spanEnd: number, lengthMs: number): number {
  const base = Math.floor(spanStart / minuteMs) * minuteMs;
  const minutes = Math.ceil((spanEnd - base) / minuteMs) + 1;
  const delta = new Float64Array(minutes + 1);
  for (const cls of model.classes()) {
    for (const s of cls.learners) {
      // Learner-milliseconds, spread over the minutes the session touches.
      let t = Math.max(s.startMs, base);
      const end = Math.min(s.endMs, spanEnd);
      while (t < end) {
        const m = Math.floor((t - base) / minuteMs);
        const next = Math.min(end, base + (m + 1) * minuteMs);
        delta[m]! += next - t;
        t = next;
      }
    }
  }
  const width = Math.max(1, Math.round(lengthMs / minuteMs));
  const lastStart = Math.max(0, Math.floor((spanEnd - lengthMs - base) / minuteMs));
  let sum = 0;
  for (let m = 0; m < Math.min(width, minutes); m++) sum += delta[m]!;
  let best = sum;
  let bestM = 0;
  for (let m = 1; m <= lastStart; m++) {
    sum += (delta[m + width - 1] ?? 0) - delta[m - 1]!;
    if (sum > best + 1e-6) {
      best = sum;
      bestM = m;
    }
  }
  return Math.max(spanStart, base + bestM * minuteMs);
}
