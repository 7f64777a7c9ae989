// Peak concurrency of sessions (docs/model.md, Curve and concurrency). Pure.

/** Most [start, end] intervals overlapping at one instant (closed intervals: touching ends overlap). */
export function peakConcurrency(intervals: Array<[number, number]>): { count: number; atMs: number } {
  const events: Array<[number, number]> = [];
  for (const [s, e] of intervals) events.push([s, 1], [e, -1]);
  events.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  let current = 0;
  let best = 0;
  let atMs = intervals.length > 0 ? intervals[0]![0] : 0;
  for (const [t, d] of events) {
    current += d;
    if (current > best) {
      best = current;
      atMs = t;
    }
  }
  return { count: best, atMs };
}
