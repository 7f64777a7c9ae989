// Capacity searches as stored (migration 008): the answer of a search and each stage's verdict,
// written once when the search ends and read by runs, report and compare. Both sides here, as
// the tables belong to capacity alone; the run row itself is written by db/run-store.ts.

import { RehearseError } from '../core/errors.js';
import type { Db } from './open.js';

export interface CapacitySearchSettings {
  from: number;
  to: number;
  step: number;
  stageMs: number;
  settleMs: number;
  refine: boolean;
}

/** A stage as stored: its place in the search and its verdict (replay/capacity/verdict.ts StageResult). */
export interface StoredStage {
  stage: number;
  multiplier: number;
  refine: boolean;
  startMs: number;
  endMs: number;
  judgedFromMs: number;
  pass: boolean;
  generatorBound: boolean;
  /** The StageResult as JSON (latencyMs, lost, duplicates, errors, throughput, clauses, failure, targetHealth). */
  result: Record<string, unknown>;
}

export interface StoredCapacity {
  runId: number;
  capacity: number | null;
  generatorBound: boolean;
  knee: number | null;
  search: CapacitySearchSettings;
  /** The answer without its stages: text, firstFailure, knee, passesUpTo. */
  answer: Record<string, unknown>;
  stages: StoredStage[];
}

export function writeCapacity(db: Db, c: StoredCapacity): void {
  db.transaction(() => {
    db.prepare('INSERT OR REPLACE INTO run_capacity (run_id, capacity, generator_bound, knee, search, answer) VALUES (?, ?, ?, ?, ?, ?)').run(
      c.runId,
      c.capacity,
      c.generatorBound ? 1 : 0,
      c.knee,
      JSON.stringify(c.search),
      JSON.stringify(c.answer),
    );
    const stage = db.prepare(
      `INSERT OR REPLACE INTO run_stages (run_id, stage, multiplier, refine, start_ms, end_ms, judged_from_ms, pass, generator_bound, result)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const s of c.stages) {
      stage.run(c.runId, s.stage, s.multiplier, s.refine ? 1 : 0, Math.round(s.startMs), Math.round(s.endMs), Math.round(s.judgedFromMs), s.pass ? 1 : 0, s.generatorBound ? 1 : 0, JSON.stringify(s.result));
    }
  })();
}

interface CapacityRow {
  run_id: number;
  capacity: number | null;
  generator_bound: number;
  knee: number | null;
  search: string;
  answer: string;
}

interface StageRow {
  stage: number;
  multiplier: number;
  refine: number;
  start_ms: number;
  end_ms: number;
  judged_from_ms: number;
  pass: number;
  generator_bound: number;
  result: string;
}

function json<T>(text: string, what: string, runId: number): T {
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new RehearseError('REHEARSE_DB', `run ${runId}: its capacity ${what} is not valid JSON (${(err as Error).message}).`, { cause: err });
  }
}

/** The capacity search stored with a run; null for a plain replay. */
export function readCapacity(db: Db, runId: number): StoredCapacity | null {
  const row = db.prepare('SELECT * FROM run_capacity WHERE run_id = ?').get(runId) as CapacityRow | undefined;
  if (!row) return null;
  const stages = (db.prepare('SELECT * FROM run_stages WHERE run_id = ? ORDER BY stage').all(runId) as StageRow[]).map(
    (s): StoredStage => ({
      stage: s.stage,
      multiplier: s.multiplier,
      refine: s.refine !== 0,
      startMs: s.start_ms,
      endMs: s.end_ms,
      judgedFromMs: s.judged_from_ms,
      pass: s.pass !== 0,
      generatorBound: s.generator_bound !== 0,
      result: json<Record<string, unknown>>(s.result, `stage ${s.stage}`, runId),
    }),
  );
  return {
    runId,
    capacity: row.capacity,
    generatorBound: row.generator_bound !== 0,
    knee: row.knee,
    search: json<CapacitySearchSettings>(row.search, 'search', runId),
    answer: json<Record<string, unknown>>(row.answer, 'answer', runId),
    stages,
  };
}

/** Every stored capacity answer by run id (for the runs list), without stages. */
export function capacityByRun(db: Db): Map<number, { capacity: number | null; generatorBound: boolean }> {
  const rows = db.prepare('SELECT run_id, capacity, generator_bound FROM run_capacity').all() as Pick<CapacityRow, 'run_id' | 'capacity' | 'generator_bound'>[];
  return new Map(rows.map((r) => [r.run_id, { capacity: r.capacity, generatorBound: r.generator_bound !== 0 }]));
}

/** A run's capacity (null: no multiplier passed); undefined when the run is not a capacity search. */
export function capacityOf(db: Db, runId: number): number | null | undefined {
  const row = db.prepare('SELECT capacity FROM run_capacity WHERE run_id = ?').get(runId) as { capacity: number | null } | undefined;
  return row ? row.capacity : undefined;
}
