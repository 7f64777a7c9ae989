// Exact merge of shard results (replay/result.ts): histograms added, counts summed, per-second
// rows joined second by second. Pure. Refuses shards that do not make one whole rehearsal:
// different settings (naming the field), a shard missing, or a shard given twice.

import * as hdr from 'hdr-histogram-js';
import { newLatencyHistogram } from './delivery.js';
import type { StreamCounts } from './delivery.js';
import { emptyRequestCounts, type ErrorKind, type RequestCounts } from './metrics.js';
import { canonicalJson, histogramNames, RunResultError, type ResultSecond, type RunResult, type ShardInfo } from './result.js';
import { seededRandom } from '../stats/random.js';
import { maxSamples } from './samples.js';

/** Where a result came from (a file name), for the messages that name it. */
export interface LabeledResult {
  source: string;
  result: RunResult;
}

export function decodeLatencyHistogram(encoded: string | null | undefined): hdr.Histogram {
  const h = newLatencyHistogram();
  if (encoded) h.add(hdr.decodeFromCompressedBase64(encoded, 32, false));
  return h;
}

export function encodeHistogram(h: hdr.Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

function shardName(s: ShardInfo): string {
  return `${s.index}/${s.count}`;
}

function describeValue(v: unknown): string {
  const text = canonicalJson(v);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** The settings fields (dotted paths) on which two results disagree. */
function differingFields(a: unknown, b: unknown, prefix: string): string[] {
  if (canonicalJson(a) === canonicalJson(b)) return [];
  const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (!isObject(a) || !isObject(b)) return [prefix];
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.flatMap((k) => differingFields(a[k], b[k], `${prefix}.${k}`));
}

/**
 * Every reason the results are not the N shards of one rehearsal, each naming files and fields.
 * Empty when they can be merged.
 */
export function mergeProblems(inputs: readonly LabeledResult[], o: { partial?: boolean } = {}): string[] {
  if (inputs.length === 0) return ['no shard results given'];
  const problems: string[] = [];
  const first = inputs[0]!;
  for (const other of inputs.slice(1)) {
    if (other.result.fingerprint === first.result.fingerprint && canonicalJson(other.result.settings) === canonicalJson(first.result.settings)) continue;
    for (const field of differingFields(first.result.settings, other.result.settings, 'settings')) {
      const pick = (r: RunResult): unknown => field.split('.').slice(1).reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], r.settings);
      problems.push(
        `${other.source} is from a different rehearsal than ${first.source}: ${field} is ${describeValue(pick(other.result))} there and ${describeValue(pick(first.result))} here`,
      );
    }
  }
  const counts = new Set(inputs.flatMap((i) => i.result.shards.map((s) => s.count)));
  if (counts.size > 1) {
    problems.push(`the shards were split different ways (${[...counts].sort((a, b) => a - b).map((n) => `/${n}`).join(', ')}): ${inputs.map((i) => `${i.source} has ${i.result.shards.map(shardName).join('+')}`).join('; ')}`);
    return problems;
  }
  const n = [...counts][0]!;
  const seen = new Map<number, string[]>();
  for (const i of inputs) for (const s of i.result.shards) seen.set(s.index, [...(seen.get(s.index) ?? []), i.source]);
  for (const [index, sources] of [...seen].sort((a, b) => a[0] - b[0])) {
    if (index < 0 || index >= n || !Number.isInteger(index)) problems.push(`${sources.join(', ')}: shard index ${index} is outside 0..${n - 1}`);
    else if (sources.length > 1) problems.push(`shard ${index}/${n} is given ${sources.length} times (${sources.join(', ')}): each shard must be merged once`);
  }
  const missing: string[] = [];
  for (let i = 0; i < n; i++) if (!seen.has(i)) missing.push(`${i}/${n}`);
  if (missing.length > 0 && !o.partial) {
    problems.push(`shard${missing.length === 1 ? '' : 's'} ${missing.length > 12 ? `${missing.slice(0, 12).join(', ')} and ${missing.length - 12} more` : missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing: the merged run would silently miss ${missing.length} of ${n} shares of the load`);
  }
  return problems;
}

function addStream(a: StreamCounts, b: StreamCounts): StreamCounts {
  const within = a.within.map((v, i) => v + (b.within[i] ?? 0));
  return {
    expected: a.expected + b.expected,
    delivered: a.delivered + b.delivered,
    duplicates: a.duplicates + b.duplicates,
    lost: a.lost + b.lost,
    late: a.late + b.late,
    unresolved: a.unresolved + b.unresolved,
    withdrawn: a.withdrawn + b.withdrawn,
    within,
  };
}

function addRequests(a: RequestCounts, b: RequestCounts): RequestCounts {
  const out = { ...emptyRequestCounts() };
  for (const k of Object.keys(out) as Array<keyof RequestCounts>) out[k] = (a[k] ?? 0) + (b[k] ?? 0);
  return out;
}

function addErrors(into: Map<string, ErrorKind>, from: Record<string, ErrorKind>): void {
  for (const [kind, e] of Object.entries(from)) {
    const k = into.get(kind);
    if (k) k.count += e.count;
    else into.set(kind, { ...e });
  }
}

/** The worst status wins: one failed shard fails the whole, one interrupted shard makes it partial. */
function mergedStatus(results: readonly RunResult[]): RunResult['status'] {
  if (results.some((r) => r.status === 'failed')) return 'failed';
  if (results.some((r) => r.status === 'interrupted')) return 'interrupted';
  return 'finished';
}

/**
 * Seconds are aligned on the common start: a shard that started late by L ms has its second k
 * counted in the group's second k + round(L / 1000).
 */
function mergeSeconds(results: readonly RunResult[]): ResultSecond[] {
  const bySecond = new Map<number, { rows: ResultSecond[] }>();
  for (const r of results) {
    const shift = Math.round(Math.max(0, ...r.shards.map((s) => s.startLateMs)) / 1000);
    for (const row of r.seconds) {
      const key = row.second + (r.shards.length === 1 ? shift : 0);
      const slot = bySecond.get(key) ?? { rows: [] };
      slot.rows.push(row);
      bySecond.set(key, slot);
    }
  }
  return [...bySecond.entries()].sort((a, b) => a[0] - b[0]).map(([second, { rows }]) => mergeSecondRows(second, rows));
}

/** One second of several shards: counts summed, percentiles read from the added histograms. */
export function mergeSecondRows(second: number, rows: readonly ResultSecond[]): ResultSecond {
  const delivery = newLatencyHistogram();
  const lag = newLatencyHistogram();
  for (const r of rows) {
    if (r.deliveryHistogram) delivery.add(hdr.decodeFromCompressedBase64(r.deliveryHistogram, 32, false));
    if (r.scheduleLagHistogram) lag.add(hdr.decodeFromCompressedBase64(r.scheduleLagHistogram, 32, false));
  }
  const sum = (f: (r: ResultSecond) => number): number => rows.reduce((a, r) => a + f(r), 0);
  const at = (h: hdr.Histogram, p: number): number | null => (h.totalCount === 0 ? null : h.getValueAtPercentile(p) / 1000);
  const loop = rows.map((r) => r.loopDelayP99Ms).filter((v): v is number => v !== null);
  return {
    second,
    virtualUsers: sum((r) => r.virtualUsers),
    openPolls: sum((r) => r.openPolls),
    publishes: sum((r) => r.publishes),
    subscribes: sum((r) => r.subscribes),
    deliveries: sum((r) => r.deliveries),
    duplicates: sum((r) => r.duplicates),
    lost: sum((r) => r.lost),
    errors: sum((r) => r.errors),
    retries: sum((r) => r.retries),
    p50Ms: at(delivery, 50),
    p95Ms: at(delivery, 95),
    p99Ms: at(delivery, 99),
    maxMs: delivery.totalCount === 0 ? null : delivery.maxValue / 1000,
    scheduleLagP99Ms: at(lag, 99),
    // Event-loop delay is each process's own: the worst process is what the verdict must see.
    loopDelayP99Ms: loop.length === 0 ? null : Math.max(...loop),
    deliveryHistogram: delivery.totalCount > 0 ? encodeHistogram(delivery) : null,
    scheduleLagHistogram: lag.totalCount > 0 ? encodeHistogram(lag) : null,
  };
}

/**
 * Fidelity samples: a uniform sample of the union, drawing from each shard's sample in proportion
 * to how many values that shard saw (seeded, so a merge is repeatable).
 */
function mergeSamples(results: readonly RunResult[], seed: number): RunResult['samples'] {
  const names = [...new Set(results.flatMap((r) => Object.keys(r.samples)))].sort();
  const out: RunResult['samples'] = {};
  for (const name of names) {
    const parts = results.map((r) => r.samples[name]).filter((p): p is { count: number; values: number[] } => p !== undefined);
    const count = parts.reduce((a, p) => a + p.count, 0);
    const total = parts.reduce((a, p) => a + p.values.length, 0);
    if (total <= maxSamples) {
      out[name] = { count, values: parts.flatMap((p) => p.values) };
      continue;
    }
    const rng = seededRandom(`${seed}/merge-samples/${name}`);
    const values: number[] = [];
    for (const p of parts) {
      const take = Math.min(p.values.length, Math.round((maxSamples * p.count) / count));
      const pool = [...p.values];
      for (let i = 0; i < take; i++) {
        const j = i + Math.floor(rng.next() * (pool.length - i));
        [pool[i], pool[j]] = [pool[j]!, pool[i]!];
        values.push(pool[i]!);
      }
    }
    out[name] = { count, values };
  }
  return out;
}

/**
 * The N shard results as one: exact for every count and histogram. Throws a RunResultError with
 * every problem (mergeProblems) when they are not one rehearsal's shards. `partial`: missing
 * shards are accepted (a failed --workers run stores what the live workers measured).
 */
export function mergeResults(inputs: readonly LabeledResult[], o: { partial?: boolean } = {}): RunResult {
  const problems = mergeProblems(inputs, o);
  if (problems.length > 0) {
    throw new RunResultError(problems.length === 1 ? `cannot merge: ${problems[0]}` : `cannot merge, ${problems.length} problems:\n  ${problems.join('\n  ')}`);
  }
  const results = [...inputs].map((i) => i.result).sort((a, b) => a.shards[0]!.index - b.shards[0]!.index);
  const first = results[0]!;
  const histograms = {} as RunResult['histograms'];
  for (const name of histogramNames) {
    const h = newLatencyHistogram();
    for (const r of results) h.add(hdr.decodeFromCompressedBase64(r.histograms[name], 32, false));
    histograms[name] = encodeHistogram(h);
  }
  const errors = new Map<string, ErrorKind>();
  for (const r of results) addErrors(errors, r.errorsByKind);
  const reasons = [...new Set(results.map((r) => r.stopReason))];
  const shards = results.flatMap((r) => r.shards).sort((a, b) => a.index - b.index);
  const seconds = mergeSeconds(results);
  return {
    format: first.format,
    version: first.version,
    fingerprint: first.fingerprint,
    settings: first.settings,
    shards,
    startAt: first.startAt,
    startedAt: results.map((r) => r.startedAt).sort()[0]!,
    endedAt: results.map((r) => r.endedAt).sort().at(-1)!,
    status: mergedStatus(results),
    stopReason: reasons.length === 1 ? reasons[0]! : reasons.map((reason) => `${reason} (shard ${results.filter((r) => r.stopReason === reason).flatMap((r) => r.shards.map(shardName)).join(', ')})`).join('; '),
    loadMs: Math.max(...results.map((r) => r.loadMs)),
    learners: results.reduce((a, r) => a + r.learners, 0),
    proctors: results.reduce((a, r) => a + r.proctors, 0),
    requests: results.map((r) => r.requests).reduce(addRequests, emptyRequestCounts()),
    errorsByKind: Object.fromEntries([...errors].sort((a, b) => b[1].count - a[1].count)),
    firstViolation: results.find((r) => r.firstViolation !== null)?.firstViolation ?? null,
    streams: {
      learner: results.map((r) => r.streams.learner).reduce(addStream),
      control: results.map((r) => r.streams.control).reduce(addStream),
    },
    ignored: results.reduce((a, r) => a + r.ignored, 0),
    scrapeErrors: results.reduce((a, r) => a + r.scrapeErrors, 0),
    histograms,
    generator: {
      loopDelayP99Ms: Math.max(...results.map((r) => r.generator.loopDelayP99Ms)),
      // Shards peak at different moments: the merged peak is read from the merged seconds.
      peakVirtualUsers: Math.max(0, ...seconds.map((x) => x.virtualUsers)),
      peakRssBytes: results.reduce((a, r) => a + r.generator.peakRssBytes, 0),
      cpuSeconds: results.reduce((a, r) => a + r.generator.cpuSeconds, 0),
    },
    seconds,
    samples: mergeSamples(results, first.settings.plan.seed),
  };
}
