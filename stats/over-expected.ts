// The one latency percentile rehearse shows: over every expected (message, subscriber) pair, a
// pair never delivered ranking last. The SLO, the run summary, `runs`, `compare` and the report
// all read it from here, so "p95" means the same number everywhere (docs/slo.md).

export interface ExpectedPairs {
  /** Pairs that should have been delivered (the denominator). */
  expected: number;
  /** Pairs delivered (within the loss limit). */
  delivered: number;
}

/**
 * The rank (1-based, among expected pairs) of the q-quantile. The tiny tolerance keeps float
 * products such as 0.95 * 100 = 95.00000000000001 from pushing the rank one pair too far.
 */
export function rankOverExpected(expected: number, q: number): number {
  return Math.max(1, Math.ceil(q * expected - 1e-9));
}

/**
 * The q-quantile (q in [0, 1]) of latency over every expected pair, undelivered pairs ranking
 * last. When it falls among undelivered pairs it is the loss limit (the pair was not delivered
 * within it), never a misleadingly small number. `latencyAt(p)` is the p-quantile over the
 * delivered pairs alone (ms); 0 when nothing was expected.
 */
export function quantileOverExpected(pairs: ExpectedPairs, q: number, lossLimitMs: number, latencyAt: (p: number) => number): number {
  if (pairs.expected <= 0) return 0;
  const rank = rankOverExpected(pairs.expected, q);
  if (rank > pairs.delivered) return lossLimitMs;
  return latencyAt(rank / pairs.delivered);
}
