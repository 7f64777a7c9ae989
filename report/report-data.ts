// Gathers everything `rehearse report` draws for one run (and optionally a second to overlay)
// into one plain object: the typed API behind the HTML, and what the page embeds as JSON.

import type { Db } from '../db/open.js';
import type { ModelReader } from '../db/model-types.js';
import { runSamples, runScrapes, runSeconds, type ScrapeSample, type StoredRun } from '../db/run-queries.js';
import { failureRows, type FailureRow } from '../db/run-failures.js';
import type { RunSecond, Verdict } from '../db/run-types.js';
import { compareRuns, type Comparison } from './compare.js';
import { computeFidelity, fidelityCurveQuantiles, type Fidelity } from './fidelity.js';
import { percentileCurve, percentileCurveQuantiles, type DecodedHistogram } from './histograms.js';
import { redactStoredRun } from './redact-run.js';
import { loadRunData, type RunFigures } from './run-figures.js';
import { loadCapacityReport, type CapacityReport } from './capacity-report.js';

export interface ReportSeries {
  second: number[];
  p50: (number | null)[];
  p95: (number | null)[];
  p99: (number | null)[];
  max: (number | null)[];
  publishes: number[];
  deliveries: number[];
  errors: number[];
  retries: number[];
  subscribes: number[];
  virtualUsers: number[];
  openPolls: number[];
  scheduleLagP99: (number | null)[];
}

export interface ScrapeChart {
  metric: string;
  /** Counters are charted as per-second rates. */
  rate: boolean;
  series: { labels: string; atS: number[]; values: (number | null)[] }[];
}

/** One kind of request's times over the whole run, from its stored HDR histogram (request.publish, ...). */
export interface RequestTimeRow {
  kind: RequestKind;
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export type RequestKind = 'publish' | 'poll' | 'open';
export const requestKinds: readonly RequestKind[] = ['publish', 'poll', 'open'];

export interface ReportRun {
  id: number;
  /** "#7 2.4" */
  title: string;
  run: StoredRun;
  figures: RunFigures;
  verdict: Verdict | null;
  seconds: ReportSeries;
  /** Latency (ms) at `percentileQuantiles`, per stream; null when the histogram is absent. */
  percentiles: { all: number[] | null; learner: number[] | null; control: number[] | null };
  fidelity: Fidelity;
  scrapes: ScrapeChart[];
  /** Errors by kind, most frequent first; null when the run stored none by kind (unfinished, or stored before they were). */
  failures: FailureRow[] | null;
  /** Request times by kind (ms); empty when the run stored no request histograms. */
  requestTimes: RequestTimeRow[];
}

export interface ReportData {
  generatedAt: string;
  rehearseVersion: string;
  runs: ReportRun[];
  comparison: Comparison | null;
  percentileQuantiles: readonly number[];
  fidelityQuantiles: readonly number[];
  /** Delivery target and loss limit (ms), drawn as lines on the latency charts. */
  targetMs: number;
  lossLimitMs: number;
  /** The capacity search's stages and answer, for a run stored by `rehearse capacity` (report/capacity-report.ts). */
  capacity?: CapacityReport | null;
}

export interface ReportOptions {
  /** The model the run replayed (for fidelity), or null when unavailable. */
  model: ModelReader | null;
  modelLabel?: string;
  generatedAt: string;
  rehearseVersion: string;
  /** Cap on scraped metrics charted, the most varied first. */
  maxScrapeCharts?: number;
}

export function buildReportData(db: Db, run: StoredRun, vs: StoredRun | null, options: ReportOptions): ReportData {
  // Runs stored with credentials in a URL must not carry them into the page.
  const runs = [run, ...(vs ? [vs] : [])].map(redactStoredRun);
  const loaded = runs.map((r) => loadRunData(db, r));
  const reportRuns: ReportRun[] = loaded.map((d) => {
    const seconds = runSeconds(db, d.run.id);
    const curve = (name: string) => {
      const h = d.histograms.get(name);
      return h && h.count > 0 ? percentileCurve(h) : null;
    };
    return {
      id: d.run.id,
      title: `#${d.run.id}${d.run.release !== null ? ` ${d.run.release}` : ''}`,
      run: d.run,
      figures: d.figures,
      verdict: d.run.verdict ?? d.run.summary?.verdict ?? null,
      seconds: toSeries(seconds),
      percentiles: { all: curve('delivery'), learner: curve('delivery.learner'), control: curve('delivery.control') },
      fidelity: computeFidelity({
        run: d.run,
        samples: runSamples(db, d.run.id),
        seconds,
        model: options.model,
        ...(options.modelLabel === undefined ? {} : { modelLabel: options.modelLabel }),
      }),
      scrapes: scrapeCharts(runScrapes(db, d.run.id), options.maxScrapeCharts ?? 12),
      failures: failuresOf(d.run),
      requestTimes: requestTimeRows(d.histograms),
    };
  });
  return {
    generatedAt: options.generatedAt,
    rehearseVersion: options.rehearseVersion,
    runs: reportRuns,
    // The --vs run is the baseline: changes read as "this run relative to the one it is held against".
    comparison: loaded.length === 2 ? compareRuns(loaded[1]!, loaded[0]!) : null,
    percentileQuantiles: percentileCurveQuantiles,
    fidelityQuantiles: fidelityCurveQuantiles,
    targetMs: 2000,
    lossLimitMs: 15000,
    capacity: loadCapacityReport(db, run.id),
  };
}

function failuresOf(run: StoredRun): FailureRow[] | null {
  const requests = run.summary?.requests;
  // A summary without errorsByKind (stored before errors were grouped) says nothing by kind.
  if (!requests || (requests.errorsByKind === undefined && requests.errors > 0)) return null;
  return failureRows(requests);
}

export function requestTimeRows(histograms: Map<string, DecodedHistogram>): RequestTimeRow[] {
  const rows: RequestTimeRow[] = [];
  for (const kind of requestKinds) {
    const h = histograms.get(`request.${kind}`);
    if (!h || h.count === 0) continue;
    rows.push({ kind, count: h.count, p50: h.atPercentile(50), p95: h.atPercentile(95), p99: h.atPercentile(99), max: h.maxMs });
  }
  return rows;
}

function toSeries(seconds: RunSecond[]): ReportSeries {
  return {
    second: seconds.map((s) => s.second),
    p50: seconds.map((s) => s.p50Ms),
    p95: seconds.map((s) => s.p95Ms),
    p99: seconds.map((s) => s.p99Ms),
    max: seconds.map((s) => s.maxMs),
    publishes: seconds.map((s) => s.publishes),
    deliveries: seconds.map((s) => s.deliveries),
    errors: seconds.map((s) => s.errors),
    retries: seconds.map((s) => s.retries),
    subscribes: seconds.map((s) => s.subscribes),
    virtualUsers: seconds.map((s) => s.virtualUsers),
    openPolls: seconds.map((s) => s.openPolls),
    scheduleLagP99: seconds.map((s) => s.scheduleLagP99Ms),
  };
}

const counterSuffixes = /(_total|_count|_sum|_seconds_total|_bytes_total)$/;

/**
 * Groups scraped samples by metric; counters become per-second rates (a reset gives a gap).
 * Histogram buckets are skipped: their _count and _sum already chart the rate and mean.
 */
export function scrapeCharts(samples: ScrapeSample[], maxCharts: number, maxSeriesPerChart = 8): ScrapeChart[] {
  const byMetric = new Map<string, Map<string, { atMs: number; value: number }[]>>();
  for (const s of samples) {
    if (s.metric.endsWith('_bucket') || s.metric.endsWith('_created')) continue;
    let series = byMetric.get(s.metric);
    if (!series) byMetric.set(s.metric, (series = new Map()));
    let points = series.get(s.labels);
    if (!points) series.set(s.labels, (points = []));
    points.push({ atMs: s.atMs, value: s.value });
  }
  const charts: (ScrapeChart & { variation: number })[] = [];
  for (const [metric, seriesMap] of byMetric) {
    const rate = counterSuffixes.test(metric);
    let variation = 0;
    const series = [...seriesMap.entries()].slice(0, maxSeriesPerChart).map(([labels, points]) => {
      points.sort((a, b) => a.atMs - b.atMs);
      const atS = points.map((p) => p.atMs / 1000);
      let values: (number | null)[];
      if (rate) {
        values = points.map((p, i) => {
          if (i === 0) return null;
          const prev = points[i - 1]!;
          const dt = (p.atMs - prev.atMs) / 1000;
          return dt > 0 && p.value >= prev.value ? (p.value - prev.value) / dt : null;
        });
      } else {
        values = points.map((p) => (Number.isFinite(p.value) ? p.value : null));
      }
      const finite = values.filter((v): v is number => v !== null);
      if (finite.length > 1) variation += Math.max(...finite) - Math.min(...finite) > 0 ? 1 : 0;
      return { labels, atS, values };
    });
    charts.push({ metric, rate, series, variation });
  }
  // Metrics that moved during the run say more about health than flat ones.
  charts.sort((a, b) => b.variation - a.variation || a.metric.localeCompare(b.metric));
  return charts.slice(0, maxCharts).map(({ variation: _v, ...c }) => c);
}
