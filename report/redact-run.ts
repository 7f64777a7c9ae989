// A stored run as `runs`, `compare` and `report` may show it: every URL it holds (the target, the
// scrape URL, any URL in its options) passed through redactUrl, so runs stored with credentials by
// an older rehearse never print them.

import { redactUrl } from '../core/redact.js';
import type { StoredRun } from '../db/run-queries.js';

/** Options are a few levels deep; anything deeper is left to the depth guard, not recursed into. */
const maxOptionDepth = 16;

/** A copy of the run with its URLs redacted; the run given is not changed. */
export function redactStoredRun(run: StoredRun): StoredRun {
  return {
    ...run,
    target: redactUrl(run.target),
    options: redactUrlsIn(run.options, 0) as Record<string, unknown>,
    summary: run.summary === null ? null : { ...run.summary, target: redactUrl(run.summary.target) },
  };
}

/** Redacts every string that looks like a URL (it has a scheme's `://`), wherever it sits. */
function redactUrlsIn(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return value.includes('://') ? redactUrl(value) : value;
  if (value === null || typeof value !== 'object') return value;
  if (depth >= maxOptionDepth) return '[nested too deep to show]';
  if (Array.isArray(value)) return value.map((v) => redactUrlsIn(v, depth + 1));
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactUrlsIn(v, depth + 1)]));
}
