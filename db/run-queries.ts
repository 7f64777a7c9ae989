// The read side of stored runs (written by `rehearse replay`, schema in migrations/002-runs.ts):
// typed rows for `runs`, `compare`, `report` and the runtime's tests, and the one resolver that turns
// a run name into a run. db/run-store.ts is the write side; this is the only reader.

import os from 'node:os';
import { RehearseError } from '../core/errors.js';
import type { Db } from './open.js';
import type { NewRun } from './run-store.js';
import type { RunSecond, RunSettings, RunStatus, RunSummary, ScrapeSample, Verdict } from './run-types.js';

/**
 * A run's status as readers show it: the stored one, except that a 'running' run whose process
 * is gone reads as 'abandoned' (never as passing). The stored row is not changed.
 */
export type ShownRunStatus = RunStatus | 'abandoned';

export interface StoredRun extends NewRun {
  id: number;
  endedAt: string | null;
  status: ShownRunStatus;
  /** null while running or when the run did not finish. */
  pass: boolean | null;
  verdict: Verdict | null;
  /** What `replay --json` printed; null when the run never finished (read counts and seconds instead). */
  summary: RunSummary | null;
}

export type { ScrapeSample } from './run-types.js';

/** A runs row as SQLite returns it: the settings keep their names, the rest is snake_case. */
interface RunRow extends RunSettings {
  id: number;
  planned_duration_ms: number | null;
  model_fingerprint: string;
  rehearse_version: string;
  options: string;
  started_at: string;
  ended_at: string | null;
  status: RunStatus;
  pass: number | null;
  verdict: string | null;
  summary: string | null;
  pid: number | null;
  host: string | null;
  group_id: string | null;
  shard_index: number | null;
  shard_count: number | null;
  /** Joined by the queries below: the highest run_seconds.second written, NULL for none. */
  last_second: number | null;
}

/** A 'running' run with no per-second row for this long is abandoned, whatever its host. */
export const abandonedAfterMs = 60_000;

/** What liveness is judged against; tests pass their own. */
export interface LivenessProbe {
  nowMs: number;
  host: string;
  isAlive(pid: number): boolean;
}

export function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function localProbe(): LivenessProbe {
  return { nowMs: Date.now(), host: os.hostname(), isAlive: processIsAlive };
}

/**
 * Pure: whether a stored 'running' run has lost its process: on this host with its pid gone, or
 * silent (no per-second row, the unit a live run commits every second) for over a minute.
 */
export function isAbandoned(
  run: { status: RunStatus; pid: number | null; host: string | null; startedAt: string; lastSecond: number | null },
  probe: LivenessProbe,
): boolean {
  if (run.status !== 'running') return false;
  if (run.pid !== null && run.host === probe.host && !probe.isAlive(run.pid)) return true;
  const started = Date.parse(run.startedAt);
  if (!Number.isFinite(started)) return false;
  const lastWrite = started + (run.lastSecond === null ? 0 : (run.lastSecond + 1) * 1000);
  return probe.nowMs - lastWrite > abandonedAfterMs;
}

const selectRuns = 'SELECT runs.*, (SELECT max(second) FROM run_seconds WHERE run_id = runs.id) AS last_second FROM runs';

function parseJson<T>(text: string | null, what: string, runId: number): T | null {
  if (text === null || text === '') return null;
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new RehearseError('REHEARSE_DB', `run ${runId}: its ${what} column is not valid JSON (${(err as Error).message}).`, {
      cause: err,
    });
  }
}

function toRun(row: RunRow, probe: LivenessProbe = localProbe()): StoredRun {
  const options = parseJson<Record<string, unknown>>(row.options, 'options', row.id);
  return {
    id: row.id,
    release: row.release,
    target: row.target,
    scale: row.scale,
    mode: row.mode,
    window: row.window,
    speed: row.speed,
    seed: row.seed,
    plannedDurationMs: row.planned_duration_ms,
    modelFingerprint: row.model_fingerprint,
    rehearseVersion: row.rehearse_version,
    options: options && typeof options === 'object' && !Array.isArray(options) ? options : {},
    startedAt: row.started_at,
    endedAt: row.ended_at,
    status: isAbandoned({ status: row.status, pid: row.pid, host: row.host, startedAt: row.started_at, lastSecond: row.last_second }, probe)
      ? 'abandoned'
      : row.status,
    ...(row.pid !== null ? { pid: row.pid } : {}),
    ...(row.host !== null ? { host: row.host } : {}),
    groupId: row.group_id,
    shardIndex: row.shard_index,
    shardCount: row.shard_count ?? 1,
    pass: row.pass === null ? null : row.pass !== 0,
    verdict: parseJson<Verdict>(row.verdict, 'verdict', row.id),
    summary: parseJson<RunSummary>(row.summary, 'summary', row.id),
  };
}

/** Every run, oldest first. */
export function listRuns(db: Db): StoredRun[] {
  const probe = localProbe();
  return (db.prepare(`${selectRuns} ORDER BY id`).all() as RunRow[]).map((row) => toRun(row, probe));
}

export function getRun(db: Db, id: number): StoredRun | null {
  const row = db.prepare(`${selectRuns} WHERE id = ?`).get(id) as RunRow | undefined;
  return row ? toRun(row) : null;
}

/**
 * Resolves how a person names a run: an id (`7` or `#7`), `latest`, `previous` (the one before
 * latest), a release label (its latest run) or `release:<label>` when a label looks like an id.
 */
export function resolveRun(db: Db, name: string, dbLabel = 'the results database'): StoredRun {
  const trimmed = name.trim();
  const ids = db.prepare('SELECT id FROM runs ORDER BY id DESC').pluck().all() as number[];
  if (ids.length === 0) {
    throw new RehearseError(
      'REHEARSE_RUN_NOT_FOUND',
      `no runs in ${dbLabel} yet: store one with \`rehearse replay ... --results <db>\` first.`,
    );
  }
  let id: number | undefined;
  const idMatch = /^#?(\d+)$/.exec(trimmed);
  if (idMatch) {
    id = Number(idMatch[1]);
    if (!ids.includes(id)) throw notFound(db, trimmed, dbLabel, `there is no run with id ${id}`);
  } else if (trimmed === 'latest') {
    id = ids[0];
  } else if (trimmed === 'previous') {
    id = ids[1];
    if (id === undefined) throw notFound(db, trimmed, dbLabel, 'there is only one run, so no previous one');
  } else {
    const label = trimmed.startsWith('release:') ? trimmed.slice('release:'.length) : trimmed;
    const found = db.prepare('SELECT max(id) FROM runs WHERE release = ?').pluck().get(label) as number | null;
    if (found === null) throw notFound(db, trimmed, dbLabel, `no run has the release label "${label}"`);
    id = found;
  }
  return getRun(db, id!)!;
}

function notFound(db: Db, name: string, dbLabel: string, why: string): RehearseError {
  const ids = db.prepare('SELECT id FROM runs ORDER BY id').pluck().all() as number[];
  const releases = db
    .prepare('SELECT release, max(id) AS id FROM runs WHERE release IS NOT NULL GROUP BY release ORDER BY max(id)')
    .all() as { release: string; id: number }[];
  const idList = ids.length > 12 ? `${ids.slice(0, 5).join(', ')}, ..., ${ids.slice(-5).join(', ')}` : ids.join(', ');
  const relList = releases.length
    ? releases
        .slice(-12)
        .map((r) => `${r.release} (#${r.id})`)
        .join(', ')
    : 'none';
  return new RehearseError(
    'REHEARSE_RUN_NOT_FOUND',
    `run "${name}" not found in ${dbLabel}: ${why}. Runs: ${idList}. Releases: ${relList}. ` +
      'Name a run by id, release label, `latest` or `previous`.',
  );
}

export function runSeconds(db: Db, runId: number): RunSecond[] {
  // Aliased in SQL to RunSecond's names, so no row type or field-by-field copy is needed.
  return db
    .prepare(
      `SELECT second, virtual_users AS virtualUsers, open_polls AS openPolls, publishes, subscribes, deliveries, duplicates,
        lost, errors, retries, p50_ms AS p50Ms, p95_ms AS p95Ms, p99_ms AS p99Ms, max_ms AS maxMs,
        schedule_lag_p99_ms AS scheduleLagP99Ms, loop_delay_p99_ms AS loopDelayP99Ms, delivery_histogram AS deliveryHistogram
       FROM run_seconds WHERE run_id = ? ORDER BY second`,
    )
    .all(runId) as RunSecond[];
}

/** The stored HDR histograms by name ('delivery', 'delivery.learner', ...): compressed base64. */
export function runHistograms(db: Db, runId: number): Map<string, string> {
  const rows = db.prepare('SELECT name, encoded FROM run_histograms WHERE run_id = ?').all(runId) as {
    name: string;
    encoded: string;
  }[];
  return new Map(rows.map((r) => [r.name, r.encoded]));
}

export function runCounts(db: Db, runId: number): Map<string, number> {
  const rows = db.prepare('SELECT name, value FROM run_counts WHERE run_id = ?').all(runId) as { name: string; value: number }[];
  return new Map(rows.map((r) => [r.name, r.value]));
}

/** What the run sent, by distribution name: ascending samples. */
export function runSamples(db: Db, runId: number): Map<string, Float64Array> {
  const rows = db.prepare('SELECT name, count, samples FROM run_samples WHERE run_id = ? ORDER BY name').all(runId) as {
    name: string;
    count: number;
    samples: Buffer;
  }[];
  return new Map(rows.map((r) => [r.name, float64FromBlob(r.samples)]));
}

/** Little-endian Float64 values from a BLOB (copied: the Buffer may not be 8-byte aligned). */
export function float64FromBlob(blob: Buffer): Float64Array {
  const n = Math.floor(blob.byteLength / 8);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = blob.readDoubleLE(i * 8);
  return out;
}

export function runScrapes(db: Db, runId: number): ScrapeSample[] {
  return db
    .prepare('SELECT at_ms AS atMs, metric, labels, value FROM run_scrapes WHERE run_id = ? ORDER BY metric, labels, at_ms')
    .all(runId) as ScrapeSample[];
}
