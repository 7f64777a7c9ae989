// Typed access to the runs tables (migration 002): the replay runtime writes a run row at start,
// one run_seconds row per second (each its own transaction, so a SIGKILLed run keeps every
// second it flushed), and the final histograms, counts, samples and verdict at the end.
// The write side only: db/run-queries.ts is the one reader.

import os from 'node:os';
import type { Db } from './open.js';
import type { RunSecond, RunSettings, RunStatus, RunSummary, ScrapeSample, Verdict } from './run-types.js';

export type { ScrapeSample } from './run-types.js';

/** A runs row as the runtime starts it. */
export interface NewRun extends RunSettings {
  plannedDurationMs: number | null;
  modelFingerprint: string;
  rehearseVersion: string;
  /** Every option; header values must already be removed. */
  options: Record<string, unknown>;
  startedAt: string;
  /** The process writing the run and its host (default: this process), so readers can spot a killed one. */
  pid?: number;
  host?: string;
  /** The rehearsal this run is a shard of, or the merge of (migration 009). */
  groupId?: string | null;
  /** i of --shard i/N; null for a merged run or a whole-plan run. */
  shardIndex?: number | null;
  /** N; 1 for a whole-plan run. */
  shardCount?: number;
}

export interface FinishedRun {
  status: RunStatus;
  endedAt: string;
  pass: boolean | null;
  verdict: Verdict | null;
  summary: RunSummary | null;
  /** Base64 of hdr-histogram-js encodeIntoCompressedBase64 (values in microseconds). */
  histograms: Record<string, string>;
  counts: Record<string, number>;
  samples: Record<string, { count: number; sorted: Float64Array }>;
}

export class RunWriter {
  private readonly insertSecond;
  private readonly insertScrape;
  private readonly secondAndScrapes;

  constructor(
    private readonly db: Db,
    readonly runId: number,
  ) {
    this.insertSecond = db.prepare(
      `INSERT OR REPLACE INTO run_seconds (run_id, second, virtual_users, open_polls, publishes, subscribes, deliveries,
        duplicates, lost, errors, retries, p50_ms, p95_ms, p99_ms, max_ms, schedule_lag_p99_ms, loop_delay_p99_ms, delivery_histogram)
       VALUES (@runId, @second, @virtualUsers, @openPolls, @publishes, @subscribes, @deliveries, @duplicates, @lost,
        @errors, @retries, @p50Ms, @p95Ms, @p99Ms, @maxMs, @scheduleLagP99Ms, @loopDelayP99Ms, @deliveryHistogram)`,
    );
    this.insertScrape = db.prepare('INSERT INTO run_scrapes (run_id, at_ms, metric, labels, value) VALUES (?, ?, ?, ?, ?)');
    this.secondAndScrapes = db.transaction((second: RunSecond | null, scrapes: readonly ScrapeSample[]) => {
      if (second) {
        const { scheduleLagHistogram: _notStored, ...row } = second as RunSecond & { scheduleLagHistogram?: unknown };
        this.insertSecond.run({ runId: this.runId, ...row, deliveryHistogram: row.deliveryHistogram ?? null });
      }
      for (const s of scrapes) this.insertScrape.run(this.runId, Math.round(s.atMs), s.metric, s.labels, s.value);
    });
  }

  /** One committed transaction per call: the unit that survives a SIGKILL. */
  writeSecond(second: RunSecond | null, scrapes: readonly ScrapeSample[] = []): void {
    this.secondAndScrapes(second, scrapes);
  }

  finish(f: FinishedRun): void {
    const db = this.db;
    db.transaction(() => {
      db.prepare('UPDATE runs SET ended_at = ?, status = ?, pass = ?, verdict = ?, summary = ? WHERE id = ?').run(
        f.endedAt,
        f.status,
        f.pass === null ? null : f.pass ? 1 : 0,
        f.verdict ? JSON.stringify(f.verdict) : null,
        f.summary ? JSON.stringify(f.summary) : null,
        this.runId,
      );
      const h = db.prepare('INSERT OR REPLACE INTO run_histograms (run_id, name, encoded) VALUES (?, ?, ?)');
      for (const [name, encoded] of Object.entries(f.histograms)) h.run(this.runId, name, encoded);
      const c = db.prepare('INSERT OR REPLACE INTO run_counts (run_id, name, value) VALUES (?, ?, ?)');
      for (const [name, value] of Object.entries(f.counts)) c.run(this.runId, name, value);
      const s = db.prepare('INSERT OR REPLACE INTO run_samples (run_id, name, count, samples) VALUES (?, ?, ?, ?)');
      for (const [name, { count, sorted }] of Object.entries(f.samples)) s.run(this.runId, name, count, float64ToBlob(sorted));
    })();
  }
}

export function beginRun(db: Db, run: NewRun): RunWriter {
  const info = db
    .prepare(
      `INSERT INTO runs (release, target, scale, mode, window, speed, seed, planned_duration_ms, model_fingerprint,
        rehearse_version, options, started_at, status, pid, host, group_id, shard_index, shard_count)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)`,
    )
    .run(
      run.release,
      run.target,
      run.scale,
      run.mode,
      run.window,
      run.speed,
      run.seed,
      run.plannedDurationMs,
      run.modelFingerprint,
      run.rehearseVersion,
      JSON.stringify(run.options),
      run.startedAt,
      run.pid ?? process.pid,
      run.host ?? os.hostname(),
      run.groupId ?? null,
      run.shardIndex ?? null,
      run.shardCount ?? 1,
    );
  return new RunWriter(db, Number(info.lastInsertRowid));
}

/** Little-endian bytes, whatever the host's order, as 002-runs documents. */
export function float64ToBlob(values: Float64Array): Buffer {
  const buf = Buffer.alloc(values.length * 8);
  for (let i = 0; i < values.length; i++) buf.writeDoubleLE(values[i]!, i * 8);
  return buf;
}
