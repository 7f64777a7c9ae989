import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { startBus, type RunningBus } from '../../bus/index.js';
import { openDatabase } from '../../db/open.js';
import { getRun, runSeconds } from '../../db/run-queries.js';
import { startReplay } from '../../replay/runner.js';
import { syntheticPlan } from './synthetic-plan.js';

// An ingest into the results database during a replay used to kill the replay with SQLITE_BUSY.
// Another connection holds the write lock for two seconds mid-run: the run goes on, and every
// second it measured is in the database at the end.

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

describe('a results database another process is writing to', () => {
  it('keeps the run going and writes every second once the lock is free', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rehearse-busy-'));
    closers.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'runs.db');
    const db = openDatabase(file);
    closers.push(() => void db.close());
    const bus: RunningBus = await startBus({ port: 0 });
    closers.push(() => bus.close());
    const other = new Database(file);
    closers.push(() => void other.close());

    const run = startReplay({
      target: bus.url,
      db,
      events: syntheticPlan({ classes: 2, learnersPerClass: 3, durationMs: 5000, publishEveryMs: 250, controlEveryMs: 500 }),
      run: { scale: 1, mode: 'clone', window: 'test', speed: 1, seed: 1, modelFingerprint: 'test' },
      preflight: false,
      pollTimeoutS: 2,
      generatorLagLimitMs: 2000,
    });
    const warnings: string[] = [];
    run.on('warning', (w) => warnings.push(w));
    let locked = false;
    run.on('tick', (t) => {
      if (t.second !== 1) return;
      // What an ingest does: take the write lock and hold it.
      other.exec('BEGIN IMMEDIATE');
      locked = true;
      const release = setTimeout(() => other.exec('COMMIT'), 2000);
      closers.push(() => clearTimeout(release));
    });
    const summary = await run.finished;
    expect(locked).toBe(true);
    expect(warnings.join('\n')).toMatch(/the results database is busy/);
    expect(summary.lost).toBe(0);
    const seconds = runSeconds(db, summary.run).map((s) => s.second);
    expect(seconds[0]).toBe(1);
    expect(seconds).toEqual(seconds.map((_, i) => i + 1));
    expect(seconds.length).toBeGreaterThanOrEqual(5);
    expect(getRun(db, summary.run)?.status).toBe('finished');
  });
});
