// Decodes the runs' stored HDR histograms (compressed base64, hdr-histogram-js) into the
// latency figures compare and report show. Pure apart from the decoder's own allocation.

import * as hdr from 'hdr-histogram-js';
import type { LatencyMs } from '../db/run-types.js';

/**
 * Unit of the recorded values: the runtime (replay/delivery.ts) records microseconds (integers)
 * so that sub-millisecond latencies on a local bus keep their precision.
 */
export const histogramValueMs = 0.001;

export interface DecodedHistogram {
  count: number;
  /** Milliseconds at a percentile in [0, 100]. */
  atPercentile(percentile: number): number;
  maxMs: number;
  meanMs: number;
}

export function decodeHistogram(encoded: string, valueMs = histogramValueMs): DecodedHistogram {
  const h = hdr.decodeFromCompressedBase64(encoded, 32, false);
  const count = h.totalCount;
  return {
    count,
    atPercentile: (p) => (count === 0 ? 0 : h.getValueAtPercentile(p) * valueMs),
    maxMs: count === 0 ? 0 : h.maxValue * valueMs,
    meanMs: count === 0 ? 0 : h.mean * valueMs,
  };
}

export function latencyFromHistogram(h: DecodedHistogram): LatencyMs {
  return { p50: h.atPercentile(50), p95: h.atPercentile(95), p99: h.atPercentile(99), max: h.maxMs };
}

/**
 * Percentile points for an HDR "latency by percentile" curve: x is -log10(1 - q), so 90%, 99%
 * and 99.9% are equally spaced and the tail is readable. Two runs share the same x values.
 */
export const percentileCurveQuantiles: readonly number[] = (() => {
  const qs: number[] = [];
  for (let i = 0; i <= 40; i++) qs.push(i / 40 * 0.9); // 0 .. 90%
  for (let k = 1; k < 4; k++) {
    const lo = 1 - 10 ** -k;
    const hi = 1 - 10 ** -(k + 1);
    for (let i = 1; i <= 20; i++) qs.push(lo + ((hi - lo) * i) / 20);
  }
  return qs;
})();

export function percentileCurve(h: DecodedHistogram): number[] {
  return percentileCurveQuantiles.map((q) => h.atPercentile(q * 100));
}
