// The what-if a stored run replayed: its --shape terms, kept with the plan's settings under
// `options.run.shape` (replay/options.ts RunDescription). Runs stored before shapes have none.

import type { StoredRun } from '../db/run-queries.js';

/** The run's shape terms as given (normalised); [] for the recorded model. */
export function runShape(run: Pick<StoredRun, 'options'>): string[] {
  const planned = (run.options as Record<string, unknown> | undefined)?.run as { shape?: unknown } | undefined;
  const shape = planned?.shape;
  return Array.isArray(shape) ? shape.filter((t): t is string => typeof t === 'string') : [];
}

/** One line for tables and headings: the terms joined, or 'recorded' when there are none. */
export function formatRunShape(terms: readonly string[]): string {
  return terms.length === 0 ? 'recorded' : terms.join('; ');
}

/** Compare's warning when two runs replayed different what-ifs (their figures measure different traffic), else null. */
export function shapeDifference(a: { id: number; shape: readonly string[] }, b: { id: number; shape: readonly string[] }): string | null {
  if (a.shape.length === b.shape.length && a.shape.every((t, i) => t === b.shape[i])) return null;
  return `different shapes (docs/shape.md): ${formatRunShape(a.shape)} in run ${a.id}, ${formatRunShape(b.shape)} in run ${b.id}; they rehearsed different traffic, so a change is not the target's`;
}
