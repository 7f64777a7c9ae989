// Stored runs for the report tests, written row by row exactly as migrations/002-runs.ts says
// (histograms built with hdr-histogram-js in microseconds, samples as little-endian Float64 BLOBs),
// so runs/compare/report are tested without a runtime.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as hdr from 'hdr-histogram-js';
import { openDatabase, type Db } from '../../db/open.js';
import type { LatencyMs, RunSummary, Verdict } from '../../db/run-types.js';
import { randomLognormal, seededRandom } from '../../stats/random.js';

export interface FixtureRun {
  release?: string | null;
  target?: string;
  scale?: number;
  mode?: string;
  window?: string;
  speed?: number;
  seed?: number;
  plannedDurationMs?: number | null;
  fingerprint?: string;
  status?: 'running' | 'finished' | 'interrupted' | 'failed';
  startedAt?: string;
  seconds?: number;
  /** Median delivery latency (ms); the tail follows a lognormal with sigma 0.6. */
  medianMs?: number;
  /** Seed of the latencies drawn (default from release, median and seconds): two runs with one seed have the same deliveries. */
  latencySeed?: string;
  /** Every latency multiplied by this (a slowdown of exactly this factor); default 1. */
  latencyScale?: number;
  /** Deliveries per second per virtual user (default: 3 per publish); fewer make a noisier run. */
  deliveriesPerUser?: number;
  /** Store each second's delivery histogram (migration 006); false: as a run stored before it. Default true. */
  secondHistograms?: boolean;
  lost?: number;
  duplicates?: number;
  errors?: number;
  retries?: number;
  generatorBound?: boolean;
  options?: Record<string, unknown>;
  reasons?: string[];
  samples?: Record<string, number[]>;
  scrapes?: { atMs: number; metric: string; labels: string; value: number }[];
  /** Stored in the summary's requests.errorsByKind (absent: not stored, as before errors were grouped). */
  errorsByKind?: Record<string, { count: number; example: string }>;
  /** Median request time (ms) by kind: stores request.<kind> histograms of 1000 lognormal values each. */
  requestTimes?: Partial<Record<'publish' | 'poll' | 'open', number>>;
}

export const fingerprintA = 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90';

export function tempDir(prefix = 'rehearse-report-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function newHistogram(): hdr.Histogram {
  return hdr.build({ bitBucketSize: 32, numberOfSignificantValueDigits: 3, lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, autoResize: true });
}

function latencyOf(h: hdr.Histogram): LatencyMs {
  const at = (p: number) => h.getValueAtPercentile(p) / 1000;
  return { p50: at(50), p95: at(95), p99: at(99), max: h.maxValue / 1000 };
}

function blob(values: number[]): Buffer {
  const sorted = Float64Array.from(values).sort();
  const b = Buffer.alloc(sorted.length * 8);
  sorted.forEach((v, i) => b.writeDoubleLE(v, i * 8));
  return b;
}

/** Inserts a run with realistic per-second rows and histograms; returns its id. */
export function insertRun(db: Db, spec: FixtureRun = {}): number {
  const seconds = spec.seconds ?? 60;
  const medianMs = spec.medianMs ?? 40;
  const rng = seededRandom(spec.latencySeed ?? `fixture/${spec.release ?? 'none'}/${medianMs}/${seconds}`);
  const latencyScale = spec.latencyScale ?? 1;
  const all = newHistogram();
  const learner = newHistogram();
  const control = newHistogram();
  const lag = newHistogram();
  const status = spec.status ?? 'finished';
  const rows: unknown[][] = [];
  let published = 0;
  let expected = 0;
  let delivered = 0;
  let within = 0;
  let publishRequests = 0;
  let subscribes = 0;
  const lost = spec.lost ?? 0;
  const duplicates = spec.duplicates ?? 0;
  const errors = spec.errors ?? 0;
  const retries = spec.retries ?? 0;
  for (let s = 0; s < seconds; s++) {
    const ramp = Math.min(1, (s + 1) / 10);
    const vus = Math.round(400 * ramp + 20 * Math.sin(s / 5));
    const pubs = Math.round(vus * 0.2);
    const perSecond = newHistogram();
    let deliveries = 0;
    const perSecondDeliveries = spec.deliveriesPerUser === undefined ? pubs * 3 : Math.round(vus * spec.deliveriesPerUser);
    for (let i = 0; i < perSecondDeliveries; i++) {
      const ms = latencyScale * randomLognormal(rng, medianMs * (1 + 0.3 * Math.sin(s / 7)), 0.6);
      const us = Math.max(1, Math.round(ms * 1000));
      all.recordValue(us);
      perSecond.recordValue(us);
      (i % 6 === 0 ? control : learner).recordValue(us);
      if (ms <= 2000) within++;
      deliveries++;
    }
    for (let i = 0; i < pubs; i++) lag.recordValue(Math.round(randomLognormal(rng, 0.8, 0.5) * 1000) + 1);
    published += pubs;
    publishRequests += pubs;
    expected += deliveries;
    delivered += deliveries;
    subscribes += vus;
    const at = (p: number) => perSecond.getValueAtPercentile(p) / 1000;
    rows.push([
      s,
      vus,
      Math.round(vus * 0.97),
      pubs,
      vus,
      deliveries,
      s === seconds - 1 ? duplicates : 0,
      s === seconds - 1 ? lost : 0,
      s === seconds - 1 ? errors : 0,
      s === seconds - 1 ? retries : 0,
      at(50),
      at(95),
      at(99),
      perSecond.maxValue / 1000,
      1.5,
      3.2,
      spec.secondHistograms === false || perSecond.totalCount === 0 ? null : hdr.encodeIntoCompressedBase64(perSecond),
    ]);
  }
  expected += lost;
  const withinTarget = within / expected;
  const allLatency = latencyOf(all);
  const pass = spec.generatorBound ? false : lost === 0 && allLatency.p95 <= 2000;
  const verdict: Verdict = {
    pass,
    slo: 'p95<=2s,lost<=0',
    clauses: [
      { expression: 'p95<=2s', observed: allLatency.p95 / 1000, pass: allLatency.p95 <= 2000 },
      { expression: 'lost<=0', observed: lost, pass: lost === 0 },
    ],
    reasons: spec.reasons ?? (spec.generatorBound ? ['the generator was the bottleneck'] : []),
  };
  const scale = spec.scale ?? 5;
  const stream = (h: hdr.Histogram, share: number) => ({
    expected: Math.round(expected * share),
    delivered: Math.round(delivered * share),
    duplicates: 0,
    lost: Math.round(lost * share),
    withinTarget,
    latencyMs: latencyOf(h),
  });
  const finished = status === 'finished';
  const id = Number(
    db
      .prepare(
        `INSERT INTO runs (release, target, scale, mode, window, speed, seed, planned_duration_ms, model_fingerprint,
          rehearse_version, options, started_at, ended_at, status, pass, verdict, summary)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        spec.release === undefined ? null : spec.release,
        spec.target ?? 'http://127.0.0.1:8080',
        scale,
        spec.mode ?? 'sample',
        spec.window ?? 'peak',
        spec.speed ?? 1,
        spec.seed ?? 1,
        spec.plannedDurationMs === undefined ? seconds * 1000 : spec.plannedDurationMs,
        spec.fingerprint ?? fingerprintA,
        '0.1.0',
        JSON.stringify(spec.options ?? { scale, mode: spec.mode ?? 'sample', slo: 'p95<=2s,lost<=0' }),
        spec.startedAt ?? '2026-08-20T09:00:00.000Z',
        finished ? '2026-08-20T09:01:00.000Z' : null,
        status,
        finished ? (pass ? 1 : 0) : null,
        finished ? JSON.stringify(verdict) : null,
        null,
      ).lastInsertRowid,
  );
  if (finished) {
    const summary: RunSummary = {
      run: id,
      release: spec.release ?? null,
      target: spec.target ?? 'http://127.0.0.1:8080',
      scale,
      mode: spec.mode ?? 'sample',
      window: spec.window ?? 'peak',
      speed: spec.speed ?? 1,
      seed: spec.seed ?? 1,
      durationS: seconds,
      learners: 400,
      proctors: 20,
      published,
      expected,
      delivered,
      duplicates,
      lost,
      withinTarget,
      latencyMs: allLatency,
      streams: { learner: stream(learner, 5 / 6), control: stream(control, 1 / 6) },
      requests: { publish: publishRequests, subscribe: subscribes, errors, retries, ...(spec.errorsByKind ? { errorsByKind: spec.errorsByKind } : {}) },
      scheduleLagMs: latencyOf(lag),
      generatorBound: spec.generatorBound ?? false,
      pass,
      verdict,
    };
    db.prepare('UPDATE runs SET summary = ? WHERE id = ?').run(JSON.stringify(summary), id);
    const h = db.prepare('INSERT INTO run_histograms (run_id, name, encoded) VALUES (?, ?, ?)');
    h.run(id, 'delivery', hdr.encodeIntoCompressedBase64(all));
    h.run(id, 'delivery.learner', hdr.encodeIntoCompressedBase64(learner));
    h.run(id, 'delivery.control', hdr.encodeIntoCompressedBase64(control));
    h.run(id, 'scheduleLag', hdr.encodeIntoCompressedBase64(lag));
    for (const [kind, median] of Object.entries(spec.requestTimes ?? {})) {
      const times = newHistogram();
      for (let i = 0; i < 1000; i++) times.recordValue(Math.max(1, Math.round(randomLognormal(rng, median, 0.4) * 1000)));
      h.run(id, `request.${kind}`, hdr.encodeIntoCompressedBase64(times));
    }
    const c = db.prepare('INSERT INTO run_counts (run_id, name, value) VALUES (?, ?, ?)');
    for (const [name, value] of Object.entries({ published, expected, delivered, duplicates, lost, errors, retries })) c.run(id, name, value);
  }
  // Columns named: a later migration's columns stay NULL here.
  const sec = db.prepare(
    `INSERT INTO run_seconds (run_id, second, virtual_users, open_polls, publishes, subscribes, deliveries, duplicates, lost, errors, retries,
      p50_ms, p95_ms, p99_ms, max_ms, schedule_lag_p99_ms, loop_delay_p99_ms, delivery_histogram) VALUES (${Array(18).fill('?').join(', ')})`,
  );
  for (const r of rows) sec.run(id, ...r);
  const samples = spec.samples ?? defaultSamples(rng);
  const ins = db.prepare('INSERT INTO run_samples (run_id, name, count, samples) VALUES (?, ?, ?, ?)');
  for (const [name, values] of Object.entries(samples)) ins.run(id, name, values.length, blob(values));
  const sc = db.prepare('INSERT INTO run_scrapes (run_id, at_ms, metric, labels, value) VALUES (?, ?, ?, ?, ?)');
  for (const s of spec.scrapes ?? defaultScrapes(seconds)) sc.run(id, s.atMs, s.metric, s.labels, s.value);
  return id;
}

function defaultSamples(rng: ReturnType<typeof seededRandom>): Record<string, number[]> {
  const n = 2000;
  return {
    learnerPublishInterval: Array.from({ length: n }, () => randomLognormal(rng, 4000, 0.7)),
    proctorControlInterval: Array.from({ length: n / 4 }, () => randomLognormal(rng, 30000, 0.8)),
    messagesPerPublish: Array.from({ length: n }, () => 1 + Math.floor(rng.next() * 3)),
    rosterSize: Array.from({ length: 40 }, () => 18 + Math.floor(rng.next() * 12)),
  };
}

function defaultScrapes(seconds: number): { atMs: number; metric: string; labels: string; value: number }[] {
  const out: { atMs: number; metric: string; labels: string; value: number }[] = [];
  let total = 0;
  for (let t = 0; t <= seconds * 1000; t += 5000) {
    total += 300 + (t / 1000) * 4;
    out.push({ atMs: t, metric: 'bus_open_polls', labels: '', value: 200 + Math.round(t / 300) });
    out.push({ atMs: t, metric: 'bus_messages_published_total', labels: 'topic_kind="learner"', value: total });
    out.push({ atMs: t, metric: 'process_resident_memory_bytes', labels: '', value: 50e6 + t * 100 });
  }
  return out;
}

/** Writes a model distributions table (and the overview meta row) the report can compare with. */
export function insertModelDistributions(db: Db, fingerprint: string, dists: Record<string, { unit: 'ms' | 'count'; values: number[] }>): void {
  const overview = {
    fingerprint,
    span: { startMs: 0, endMs: 3_600_000 },
    timezone: 'UTC',
    learners: 400,
    proctors: 20,
    sessions: 400,
    proctorSessions: 20,
    peakConcurrentLearners: 380,
    peakConcurrentLearnersAtMs: 1_800_000,
  };
  db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('model.overview', ?)").run(JSON.stringify(overview));
  const ins = db.prepare('INSERT OR REPLACE INTO distributions (name, unit, count, mean, p50, p90, p99, max, samples) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
  for (const [name, d] of Object.entries(dists)) {
    const sorted = [...d.values].sort((a, b) => a - b);
    const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
    const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
    ins.run(name, d.unit, sorted.length, mean, q(0.5), q(0.9), q(0.99), sorted[sorted.length - 1]!, blob(sorted));
  }
}

export function openTemp(dir: string, name = 'results.db'): { db: Db; file: string } {
  const file = path.join(dir, name);
  return { db: openDatabase(file), file };
}

const execFileP = promisify(execFile);
export const bin = path.resolve(__dirname, '../../dist/cli/bin.js');

/** Runs the built CLI (`npm test` builds first) and returns its exit code and output, whatever the code. */
export async function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [bin, ...args], { timeout: 30_000, env: { ...process.env, NO_COLOR: '1' } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
