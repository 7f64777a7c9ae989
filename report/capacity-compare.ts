// compare's headline for two capacity searches: "2.4: 6.5x; 2.3: 8x: capacity fell 19%". Pure.

import type { MetricChange } from './compare.js';

/** The line, or null when neither run is a capacity search ("none": no multiplier passed, or not a capacity search). */
export function capacityHeadline(metrics: readonly MetricChange[], titleA: string, titleB: string): string | null {
  const row = metrics.find((m) => m.key === 'capacity');
  if (!row) return null;
  const shown = (v: number | null): string => (v === null ? 'none' : `${Math.round(v * 1000) / 1000}x`);
  const head = `${titleB}: ${shown(row.b)}; ${titleA}: ${shown(row.a)}`;
  if (row.a === null || row.b === null) return `Capacity: ${head}`;
  if (row.b === row.a) return `Capacity: ${head}: capacity unchanged`;
  const pct = row.a === 0 ? null : Math.round((Math.abs(row.b - row.a) / row.a) * 100);
  return `Capacity: ${head}: capacity ${row.b < row.a ? 'fell' : 'rose'}${pct === null ? '' : ` ${pct}%`}`;
}
