// Run-to-run noise of the latency figures `compare` shows: reads each run's per-second delivery
// histograms (run_seconds.delivery_histogram, migration 006) and asks stats/bootstrap.ts how far
// the change between two runs could move by chance. The method is in docs/report.md ("Noise").

import * as hdr from 'hdr-histogram-js';
import type { RunSecond } from '../db/run-types.js';
import { bootstrapChanges, bootstrapDefaults, mergeSeconds, poolRuns, type ChangeNoise, type LatencySecond } from '../stats/bootstrap.js';
import { seededRandom } from '../stats/random.js';
import { histogramValueMs } from './histograms.js';

/**
 * A latency change smaller than this (ms) is never a regression, whatever its share: on a local
 * bus a p95 of 2.6 ms doubling to 5.1 ms is scheduler noise, not a release's fault. 5 ms because
 * identical runs against an idle local bus moved p95 by up to 1 ms on a quiet machine, in a way
 * that lasted the whole run (so no resampling of the run can see it), and by 2.5 ms in the
 * reported case (BENCHMARKS.md, "compare: noise"). Override with `compare --latency-floor`.
 */
export const defaultLatencyFloorMs = 5;

/** At most this many units are resampled: a 10-minute run second by second, a 1-hour run in 6 s units. */
export const maxUnits = 600;

/** The metrics the noise is estimated for: the overall delivery latency (the per-second histograms are overall). */
export const noiseMetrics = ['p50', 'p95', 'p99', 'max'] as const;
export type NoiseMetric = (typeof noiseMetrics)[number];

export interface NoiseSettings {
  replicates: number;
  /** Resample both runs' seconds together (runs of one plan); runs of different lengths are never paired. */
  paired: boolean;
  blockLengthS: number;
  level: number;
  seed: string;
}

/** A run's seconds as the bootstrap reads them, or why they cannot be read. */
export type RunSecondsNoise =
  | { ok: true; seconds: LatencySecond[] }
  /** `histograms` false: the run has no per-second histograms at all (stored before migration 006). */
  | { ok: false; reason: string; histograms: boolean };

/**
 * The run's seconds with their delivery latencies. Seconds of runs stored before migration 006
 * (or written by an older rehearse) have deliveries but no histogram: the noise is then unknown.
 */
export function latencySeconds(runId: number, rows: readonly RunSecond[]): RunSecondsNoise {
  const seconds: LatencySecond[] = [];
  for (const row of rows) {
    if (row.deliveries > 0 && (row.deliveryHistogram === null || row.deliveryHistogram === undefined)) {
      return { ok: false, reason: `run ${runId} has no per-second histograms (stored before migration 006): noise unknown`, histograms: false };
    }
    if (!row.deliveryHistogram) {
      seconds.push({ valuesMs: [], counts: [], lost: row.lost });
      continue;
    }
    try {
      seconds.push({ ...sparse(row.deliveryHistogram), lost: row.lost });
    } catch (err) {
      return { ok: false, reason: `run ${runId}: second ${row.second}'s histogram cannot be read (${(err as Error).message}): noise unknown`, histograms: false };
    }
  }
  if (seconds.length < 4) return { ok: false, reason: `run ${runId} has ${seconds.length} seconds stored, too few to estimate noise`, histograms: true };
  return { ok: true, seconds };
}

/**
 * The resampled latencies keep 1% steps: the intervals need no finer grain (they are read
 * against rules of several percent), and coarser values make an hour-long run's resampling fast.
 */
const noiseStep = Math.log(1.01);

/** Values (ms, on the 1% steps) and counts of a compressed HDR histogram, read over its recorded range only. */
function sparse(encoded: string): { valuesMs: number[]; counts: number[] } {
  const h = hdr.decodeFromCompressedBase64(encoded, 32, false) as unknown as hdr.JsHistogram;
  const byStep = new Map<number, number>();
  if (h.totalCount > 0) {
    const first = h.countsArrayIndex(h.minNonZeroValue);
    const last = Math.min(h.countsArrayLength - 1, h.countsArrayIndex(h.maxValue));
    for (let i = first; i <= last; i++) {
      const c = h.getCountAtIndex(i);
      if (c === 0) continue;
      const ms = h.highestEquivalentValue(h.valueFromIndex(i)) * histogramValueMs;
      const step = Math.round(Math.log(Math.max(ms, 1e-3)) / noiseStep);
      byStep.set(step, (byStep.get(step) ?? 0) + c);
    }
  }
  const steps = [...byStep.keys()].sort((a, b) => a - b);
  return { valuesMs: steps.map((k) => Math.exp(k * noiseStep)), counts: steps.map((k) => byStep.get(k)!) };
}

/**
 * Intervals for the change of p50, p95, p99 and max from run A to run B, centred on the shown
 * figures (`observed`, by metric). Quantiles are over expected pairs (a lost pair ranks last).
 */
export function latencyNoise(
  a: LatencySecond[],
  b: LatencySecond[],
  observed: Record<NoiseMetric, { a: number; b: number }>,
  lossLimitMs: number,
  settings: NoiseSettings,
): Record<NoiseMetric, ChangeNoise> {
  // Runs longer than maxUnits seconds are resampled in units of k consecutive seconds.
  const k = Math.max(1, Math.ceil(Math.max(a.length, b.length) / maxUnits));
  const [pa, pb] = poolRuns([mergeSeconds(a, k), mergeSeconds(b, k)]);
  const noise = bootstrapChanges(
    pa!,
    pb!,
    [0.5, 0.95, 0.99],
    lossLimitMs,
    (f) => [...f.quantiles, f.max],
    noiseMetrics.map((m) => observed[m]),
    { replicates: settings.replicates, paired: settings.paired, blockLength: Math.ceil(settings.blockLengthS / k), level: settings.level, random: seededRandom(settings.seed) },
  );
  return Object.fromEntries(noiseMetrics.map((m, i) => [m, noise[i]!])) as Record<NoiseMetric, ChangeNoise>;
}

export function defaultNoiseSettings(runA: number, runB: number): NoiseSettings {
  return { replicates: bootstrapDefaults.replicates, paired: true, blockLengthS: bootstrapDefaults.blockLength, level: bootstrapDefaults.level, seed: `compare/${runA}/${runB}` };
}
