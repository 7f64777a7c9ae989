// Run-to-run noise of the latency figures `compare` shows: reads each run's per-second delivery
// histograms (run_seconds.delivery_histogram, migration 006) and asks stats/bootstrap.ts how far
// the change between two runs could move by chance. The method is in docs/report.md ("Noise").

import * as hdr from 'hdr-histogram-js';
import type { RunSecond } from '../db/run-types.js';
import { bootstrapChanges, bootstrapDefaults, poolRuns, type ChangeNoise, type LatencySecond } from '../stats/bootstrap.js';
import { seededRandom } from '../stats/random.js';
import { histogramValueMs } from './histograms.js';

/**
 * A latency change smaller than this (ms) is never a regression, whatever its share: on a local
 * bus a p95 of 2.6 ms doubling to 5.1 ms is scheduler noise, not a release's fault. Override with
 * `compare --latency-floor`.
 */
export const defaultLatencyFloorMs = 1;

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
export type RunSecondsNoise = { ok: true; seconds: LatencySecond[] } | { ok: false; reason: string };

/**
 * The run's seconds with their delivery latencies. Seconds of runs stored before migration 006
 * (or written by an older rehearse) have deliveries but no histogram: the noise is then unknown.
 */
export function latencySeconds(runId: number, rows: readonly RunSecond[]): RunSecondsNoise {
  const seconds: LatencySecond[] = [];
  for (const row of rows) {
    if (row.deliveries > 0 && (row.deliveryHistogram === null || row.deliveryHistogram === undefined)) {
      return { ok: false, reason: `run ${runId} has no per-second histograms (stored before migration 006): noise unknown` };
    }
    if (!row.deliveryHistogram) {
      seconds.push({ valuesMs: [], counts: [], lost: row.lost });
      continue;
    }
    try {
      seconds.push({ ...sparse(row.deliveryHistogram), lost: row.lost });
    } catch (err) {
      return { ok: false, reason: `run ${runId}: second ${row.second}'s histogram cannot be read (${(err as Error).message}): noise unknown` };
    }
  }
  if (seconds.length < 4) return { ok: false, reason: `run ${runId} has ${seconds.length} seconds stored, too few to estimate noise` };
  return { ok: true, seconds };
}

/** Distinct values (ms) and counts of a compressed HDR histogram, as hdr's own percentiles read them (highest equivalent value). */
function sparse(encoded: string): { valuesMs: number[]; counts: number[] } {
  const h = hdr.decodeFromCompressedBase64(encoded, 32, false) as unknown as hdr.JsHistogram;
  const valuesMs: number[] = [];
  const counts: number[] = [];
  for (let i = 0; i < h.countsArrayLength; i++) {
    const c = h.getCountAtIndex(i);
    if (c > 0) {
      valuesMs.push(h.highestEquivalentValue(h.valueFromIndex(i)) * histogramValueMs);
      counts.push(c);
    }
  }
  return { valuesMs, counts };
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
  const [pa, pb] = poolRuns([a, b]);
  const noise = bootstrapChanges(
    pa!,
    pb!,
    [0.5, 0.95, 0.99],
    lossLimitMs,
    (f) => [...f.quantiles, f.max],
    noiseMetrics.map((m) => observed[m]),
    { replicates: settings.replicates, paired: settings.paired, blockLength: settings.blockLengthS, level: settings.level, random: seededRandom(settings.seed) },
  );
  return Object.fromEntries(noiseMetrics.map((m, i) => [m, noise[i]!])) as Record<NoiseMetric, ChangeNoise>;
}

export function defaultNoiseSettings(runA: number, runB: number): NoiseSettings {
  return { replicates: bootstrapDefaults.replicates, paired: true, blockLengthS: bootstrapDefaults.blockLength, level: bootstrapDefaults.level, seed: `compare/${runA}/${runB}` };
}
