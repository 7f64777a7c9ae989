// The metrics compare shows and --fail-on names: one table, so the two can never disagree.

import type { LatencyMs } from '../db/run-types.js';
import type { RunFigures } from './run-figures.js';

export type MetricUnit = 'ms' | 'count' | 'fraction';

export interface MetricDef {
  /** As written in --fail-on and in the JSON output. */
  key: string;
  label: string;
  unit: MetricUnit;
  /** Which way is an improvement; 'none' for volumes that only describe the load. */
  better: 'lower' | 'higher' | 'none';
  get(f: RunFigures): number | null;
  /** Shown only when one of the two runs has it (capacity: capacity searches only). */
  onlyWhenMeasured?: boolean;
}

function latency(
  key: string,
  label: string,
  pick: (f: RunFigures) => LatencyMs | null,
  q: keyof LatencyMs,
): MetricDef {
  return { key, label, unit: 'ms', better: 'lower', get: (f) => pick(f)?.[q] ?? null };
}

const all = (f: RunFigures) => f.latency.all;
const learner = (f: RunFigures) => f.latency.learner;
const control = (f: RunFigures) => f.latency.control;

export const metrics: readonly MetricDef[] = [
  { key: 'requests.publish', label: 'publish requests', unit: 'count', better: 'none', get: (f) => f.publishRequests },
  { key: 'requests.subscribe', label: 'subscribe requests (polls)', unit: 'count', better: 'none', get: (f) => f.subscribeRequests },
  { key: 'published', label: 'messages published', unit: 'count', better: 'none', get: (f) => f.published },
  { key: 'expected', label: 'deliveries expected', unit: 'count', better: 'none', get: (f) => f.expected },
  { key: 'delivered', label: 'deliveries', unit: 'count', better: 'none', get: (f) => f.delivered },
  latency('p50', 'p50 latency, all', all, 'p50'),
  latency('p95', 'p95 latency, all', all, 'p95'),
  latency('p99', 'p99 latency, all', all, 'p99'),
  latency('max', 'max latency, all', all, 'max'),
  latency('learner.p50', 'p50 latency, learner events', learner, 'p50'),
  latency('learner.p95', 'p95 latency, learner events', learner, 'p95'),
  latency('learner.p99', 'p99 latency, learner events', learner, 'p99'),
  latency('control.p50', 'p50 latency, proctor control', control, 'p50'),
  latency('control.p95', 'p95 latency, proctor control', control, 'p95'),
  latency('control.p99', 'p99 latency, proctor control', control, 'p99'),
  { key: 'withinTarget', label: 'delivered within 2 s', unit: 'fraction', better: 'higher', get: (f) => f.withinTarget },
  { key: 'lost', label: 'lost (not within 15 s)', unit: 'count', better: 'lower', get: (f) => f.lost },
  { key: 'duplicates', label: 'duplicates', unit: 'count', better: 'lower', get: (f) => f.duplicates },
  { key: 'errors', label: 'request errors', unit: 'count', better: 'lower', get: (f) => f.errors },
  { key: 'retries', label: 'retries', unit: 'count', better: 'lower', get: (f) => f.retries },
  latency('scheduleLag.p99', 'generator schedule lag p99', (f) => f.scheduleLag, 'p99'),
  latency('scheduleLag.max', 'generator schedule lag max', (f) => f.scheduleLag, 'max'),
  // `rehearse capacity` runs: "capacity-10%" fails a release whose capacity fell more than 10%.
  { key: 'capacity', label: 'capacity (highest passing multiplier)', unit: 'count', better: 'higher', get: (f) => f.capacity ?? null, onlyWhenMeasured: true },
];

export function findMetric(key: string): MetricDef | undefined {
  const k = key.toLowerCase();
  return metrics.find((m) => m.key.toLowerCase() === k);
}
