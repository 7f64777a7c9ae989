// A run's errors by kind as readers show them (the replay summary, the report's failures table):
// each kind with its count, its share of the requests of that kind, and one example on one line.
// Pure over RunSummary['requests']; the runtime groups errors (replay/metrics.ts errorKind).

import type { RunSummary } from './run-types.js';

export interface FailureRow {
  /** 'publish HTTP 503', 'poll network ECONNREFUSED'. */
  kind: string;
  count: number;
  /** count / `of` requests (0..1); null when the run made none of them. */
  share: number | null;
  /** What the share is of: 'publishes', 'polls', or 'requests' (all) for kinds without their own count. */
  of: 'publishes' | 'polls' | 'requests';
  /** The target's own words, control characters and line breaks flattened to spaces. */
  example: string;
}

/**
 * Most frequent first. A publish error's share is of publishes and a poll error's of polls (what
 * an operator compares with the target's own error rate); subscription opens have no stored
 * count, so their share is of all requests.
 */
export function failureRows(requests: RunSummary['requests']): FailureRow[] {
  const byKind = requests.errorsByKind ?? {};
  return Object.entries(byKind)
    .map(([kind, k]): FailureRow => {
      const request = kind.split(' ', 1)[0];
      const of = request === 'publish' ? 'publishes' : request === 'poll' ? 'polls' : 'requests';
      const denominator = of === 'publishes' ? requests.publish : of === 'polls' ? requests.subscribe : requests.publish + requests.subscribe;
      return { kind, count: k.count, share: denominator > 0 ? k.count / denominator : null, of, example: oneLine(k.example) };
    })
    .sort((a, b) => b.count - a.count || a.kind.localeCompare(b.kind));
}

function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').trim();
}
