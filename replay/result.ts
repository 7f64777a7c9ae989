// The portable run result: everything a verdict needs, as one JSON value, so a run split over
// worker processes or Kubernetes pods is judged exactly as one process would judge it. Latencies
// travel as HDR histograms (added when merged) and everything else as counts (summed), never as
// percentiles, which cannot be merged. Format documented in docs/scale-out.md; versioned.

import { createHash } from 'node:crypto';
import { RehearseError } from '../core/errors.js';
import { seededRandom } from '../stats/random.js';
import type { RunSecond, RunStatus } from '../db/run-types.js';
import type { StreamCounts } from './delivery.js';
import type { ErrorKind, RequestCounts } from './metrics.js';
import type { RunDescription } from './options.js';

export const runResultFormat = 'rehearse.run-result';
export const runResultVersion = 1;

/**
 * What every shard of one rehearsal must share: a merge refuses results whose settings differ,
 * naming the field. Header values are never here (only their names).
 */
export interface ResultSettings {
  rehearseVersion: string;
  release: string | null;
  /** Credentials redacted. */
  target: string;
  protocol: string;
  targetOptions: Record<string, string>;
  headerNames: string[];
  slo: string;
  lossLimitMs: number;
  thresholdsMs: number[];
  durationMs: number | null;
  pollTimeoutS: number;
  backoff: { baseMs: number; capMs: number };
  generatorLagLimitMs: number;
  /** The plan: model fingerprint, scale, mode, window, speed, seed, ramp, shape. */
  plan: RunDescription;
}

/** One second as a shard measured it; the latency histograms make seconds of shards mergeable. */
export interface ResultSecond extends RunSecond {
  /** That second's schedule lag (compressed base64 HDR, microseconds); null when nothing was sent. */
  scheduleLagHistogram?: string | null;
}

/** How the generator itself fared: a bound generator invalidates the load it claims to have sent. */
export interface GeneratorHealth {
  /** Event-loop delay p99 over the run (ms): not mergeable, so a merge keeps the worst shard's. */
  loopDelayP99Ms: number;
  peakVirtualUsers: number;
  /** Peak resident memory (bytes) and CPU time (s) of the process that ran the shard. */
  peakRssBytes: number;
  cpuSeconds: number;
}

export interface ShardInfo {
  index: number;
  count: number;
  /** ms after the agreed --start-at this shard started its load (0 when on time or without one). */
  startLateMs: number;
  host: string;
  pid: number;
}

export interface RunResult {
  format: typeof runResultFormat;
  version: typeof runResultVersion;
  /** sha256 of `settings`: equal for every shard of one rehearsal. */
  fingerprint: string;
  settings: ResultSettings;
  /** The shards this result covers: one for a shard's own result, all of them once merged. */
  shards: ShardInfo[];
  /** The agreed start (--start-at), when there was one. */
  startAt: string | null;
  startedAt: string;
  endedAt: string;
  status: Exclude<RunStatus, 'running'>;
  /** Why the load stopped; a merge joins the distinct reasons. */
  stopReason: string;
  /** Load time actually run (ms); a merge keeps the longest. */
  loadMs: number;
  learners: number;
  proctors: number;
  requests: RequestCounts;
  errorsByKind: Record<string, ErrorKind>;
  firstViolation: string | null;
  streams: { learner: StreamCounts; control: StreamCounts };
  /** Messages received that no subscriber expected. */
  ignored: number;
  scrapeErrors: number;
  /** Compressed base64 HDR histograms in microseconds: delivery.learner, delivery.control, scheduleLag, request.publish, request.poll, request.open. */
  histograms: Record<HistogramName, string>;
  generator: GeneratorHealth;
  seconds: ResultSecond[];
  /** The fidelity samples (reservoirs): how many values were seen and a uniform sample of them. */
  samples: Record<string, { count: number; values: number[] }>;
}

export const histogramNames = ['delivery.learner', 'delivery.control', 'scheduleLag', 'request.publish', 'request.poll', 'request.open'] as const;
export type HistogramName = (typeof histogramNames)[number];

/** Stable JSON (sorted keys) so equal settings hash equally whatever order they were built in. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function settingsFingerprint(s: ResultSettings): string {
  return createHash('sha256').update(canonicalJson(s)).digest('hex').slice(0, 16);
}

export class RunResultError extends RehearseError {
  constructor(message: string) {
    super('REHEARSE_RESULT', message);
  }
}

/** A line that holds a result, wherever it appears in a log (kubectl logs mixes stderr in). */
const resultLineStart = `{"format":"${runResultFormat}"`;

/**
 * Reads one shard result from a file's text: the whole text as JSON, or exactly one line of a log
 * that starts like a result. `source` names the file in every error.
 */
export function parseRunResult(text: string, source: string): RunResult {
  const trimmed = text.trim();
  // Lines that start like a result come first: a log may begin with the result line and go on
  // with stderr, which read as one JSON text would look cut short.
  const resultLines: Array<{ line: number | null; text: string }> = [];
  text.split('\n').forEach((l, i) => {
    if (l.trimStart().startsWith(resultLineStart)) resultLines.push({ line: i + 1, text: l.trim() });
  });
  let candidates: Array<{ line: number | null; text: string }>;
  if (resultLines.length === 1 && resultLines[0]!.text === trimmed) candidates = [{ line: null, text: trimmed }];
  else if (resultLines.length > 0) candidates = resultLines;
  else if (trimmed.startsWith('{')) candidates = [{ line: null, text: trimmed }];
  else candidates = [];
  if (candidates.length === 0) throw new RunResultError(`${source}: no rehearse run result in it (expected a JSON object with "format": "${runResultFormat}", written by replay --out)`);
  if (candidates.length > 1) {
    throw new RunResultError(`${source}: ${candidates.length} run results in one file (lines ${candidates.map((c) => c.line).join(', ')}); give each shard's result its own file`);
  }
  const c = candidates[0]!;
  const where = c.line === null ? source : `${source}:${c.line}`;
  let value: unknown;
  try {
    value = JSON.parse(c.text);
  } catch (err) {
    throw new RunResultError(`${where}: not valid JSON (${(err as Error).message}); was the file cut short?`);
  }
  return checkRunResult(value, where);
}

/** Structural check of a parsed result: names the first field that is missing or of the wrong type. */
export function checkRunResult(value: unknown, where: string): RunResult {
  const bad = (field: string, want: string): never => {
    throw new RunResultError(`${where}: field ${field} ${want}`);
  };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) bad('(top level)', 'must be a JSON object');
  const r = value as Record<string, unknown>;
  if (r.format !== runResultFormat) bad('format', `must be "${runResultFormat}", got ${JSON.stringify(r.format)}`);
  if (r.version !== runResultVersion) {
    bad('version', `is ${JSON.stringify(r.version)}; this rehearse reads version ${runResultVersion} (merge with the rehearse version that wrote the shards)`);
  }
  const object = (v: unknown, field: string): Record<string, unknown> => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) bad(field, 'must be an object');
    return v as Record<string, unknown>;
  };
  const num = (v: unknown, field: string): void => {
    if (typeof v !== 'number' || !Number.isFinite(v)) bad(field, `must be a number, got ${JSON.stringify(v)}`);
  };
  const str = (v: unknown, field: string): void => {
    if (typeof v !== 'string') bad(field, `must be a string, got ${JSON.stringify(v)}`);
  };
  str(r.fingerprint, 'fingerprint');
  object(r.settings, 'settings');
  if (!Array.isArray(r.shards) || r.shards.length === 0) bad('shards', 'must be a non-empty array');
  (r.shards as unknown[]).forEach((s, i) => {
    const o = object(s, `shards[${i}]`);
    for (const k of ['index', 'count', 'startLateMs']) num(o[k], `shards[${i}].${k}`);
  });
  for (const k of ['startedAt', 'endedAt', 'status', 'stopReason']) str(r[k], k);
  if (!['finished', 'interrupted', 'failed'].includes(r.status as string)) bad('status', `must be finished, interrupted or failed, got ${JSON.stringify(r.status)}`);
  for (const k of ['loadMs', 'learners', 'proctors', 'ignored', 'scrapeErrors']) num(r[k], k);
  const requests = object(r.requests, 'requests');
  for (const [k, v] of Object.entries(requests)) num(v, `requests.${k}`);
  object(r.errorsByKind, 'errorsByKind');
  const streams = object(r.streams, 'streams');
  for (const s of ['learner', 'control']) {
    const c = object(streams[s], `streams.${s}`);
    for (const k of ['expected', 'delivered', 'duplicates', 'lost', 'late', 'unresolved', 'withdrawn']) num(c[k], `streams.${s}.${k}`);
    if (!Array.isArray(c.within)) bad(`streams.${s}.within`, 'must be an array');
  }
  const h = object(r.histograms, 'histograms');
  for (const name of histogramNames) str(h[name], `histograms.${name}`);
  const g = object(r.generator, 'generator');
  for (const k of ['loopDelayP99Ms', 'peakVirtualUsers', 'peakRssBytes', 'cpuSeconds']) num(g[k], `generator.${k}`);
  if (!Array.isArray(r.seconds)) bad('seconds', 'must be an array');
  (r.seconds as unknown[]).forEach((s, i) => num(object(s, `seconds[${i}]`).second, `seconds[${i}].second`));
  object(r.samples, 'samples');
  return value as RunResult;
}

/** Fidelity sample values a result file keeps per distribution (a merge then holds N times this). */
export const transportSamples = 10_000;

/**
 * The result as a shard writes it for a merge: fidelity samples cut to a uniform subset (seeded),
 * so a long run's result stays a line `kubectl logs` returns whole. Counts and histograms, which
 * the verdict reads, are never cut.
 */
export function forTransport(r: RunResult, max = transportSamples): RunResult {
  const samples: RunResult['samples'] = {};
  for (const [name, x] of Object.entries(r.samples)) {
    if (x.values.length <= max) {
      samples[name] = x;
      continue;
    }
    const rng = seededRandom(`${r.settings.plan.seed}/transport/${name}/${r.shards[0]?.index ?? 0}`);
    const pool = [...x.values];
    for (let i = 0; i < max; i++) {
      const j = i + Math.floor(rng.next() * (pool.length - i));
      [pool[i], pool[j]] = [pool[j]!, pool[i]!];
    }
    samples[name] = { count: x.count, values: pool.slice(0, max).sort((a, b) => a - b) };
  }
  return { ...r, samples };
}
