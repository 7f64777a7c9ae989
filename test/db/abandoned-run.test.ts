// Defect: a SIGKILLed replay leaves its runs row 'running' forever, and readers showed it so.
// Now beginRun records the writing process and host (migration 004), and readers show a
// 'running' run whose process is gone, or that wrote no per-second row for over a minute, as
// 'abandoned', never passing, without changing the stored row.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../cli/program.js';
import { MemoryOutput } from '../../cli/io.js';
import { openDatabase, type Db } from '../../db/open.js';
import { beginRun, type NewRun } from '../../db/run-store.js';
import { getRun, isAbandoned, listRuns, resolveRun } from '../../db/run-queries.js';

const dirs: string[] = [];
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function newRun(over: Partial<NewRun> = {}): NewRun {
  return {
    release: 'r1',
    target: 'http://127.0.0.1:1',
    scale: 1,
    mode: 'sample',
    window: 'peak',
    speed: 1,
    seed: 1,
    plannedDurationMs: 60_000,
    modelFingerprint: 'f',
    rehearseVersion: 'test',
    options: {},
    startedAt: new Date().toISOString(),
    ...over,
  };
}

function tempDb(): { db: Db; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rehearse-abandoned-'));
  dirs.push(dir);
  const file = path.join(dir, 'results.db');
  return { db: openDatabase(file), file };
}

function storedStatus(file: string, id: number): string {
  const h = new Database(file, { readonly: true });
  try {
    return h.prepare('SELECT status FROM runs WHERE id = ?').pluck().get(id) as string;
  } finally {
    h.close();
  }
}

async function runsJson(file: string): Promise<Array<{ id: number; status: string; verdict: string }>> {
  const stdout = new MemoryOutput();
  const stderr = new MemoryOutput();
  const code = await main(['node', 'rehearse', 'runs', '--results', file, '--json'], { stdout, stderr, env: process.env, signals: new EventEmitter() });
  expect(stderr.text()).toBe('');
  expect(code).toBe(0);
  return (JSON.parse(stdout.text()) as { runs: Array<{ id: number; status: string; verdict: string }> }).runs;
}

describe('a run whose process was SIGKILLed', () => {
  it('reads as abandoned once its process is gone; the stored row still says running', async () => {
    const { db, file } = tempDb();
    // A real process stands in for the replay: the run is written with its pid and this host.
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    children.push(child);
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    const id = beginRun(db, newRun({ pid: child.pid! })).runId;
    const stored = getRun(db, id)!;
    expect(stored).toMatchObject({ status: 'running', pid: child.pid, host: os.hostname() });
    expect((await runsJson(file)).map((r) => [r.id, r.status, r.verdict])).toEqual([[id, 'running', 'running']]);

    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;

    expect(getRun(db, id)!.status).toBe('abandoned');
    expect(listRuns(db).map((r) => r.status)).toEqual(['abandoned']);
    expect(resolveRun(db, String(id)).status).toBe('abandoned');
    expect((await runsJson(file)).map((r) => [r.id, r.status, r.verdict])).toEqual([[id, 'abandoned', 'abandoned']]);
    expect(storedStatus(file, id)).toBe('running');
    db.close();
  });

  it('this process writing a run reads as running', () => {
    const { db } = tempDb();
    const id = beginRun(db, newRun()).runId;
    expect(getRun(db, id)).toMatchObject({ status: 'running', pid: process.pid, host: os.hostname() });
    db.close();
  });

  it('a run from before migration 004 (no pid) reads as abandoned after a minute without a per-second row', () => {
    const { db } = tempDb();
    const old = beginRun(db, newRun({ startedAt: new Date(Date.now() - 5 * 60_000).toISOString() })).runId;
    const fresh = beginRun(db, newRun()).runId;
    db.prepare('UPDATE runs SET pid = NULL, host = NULL').run();
    expect(listRuns(db).map((r) => [r.id, r.status])).toEqual([
      [old, 'abandoned'],
      [fresh, 'running'],
    ]);
    db.close();
  });
});

describe('isAbandoned (pure)', () => {
  const startedAt = '2026-09-01T08:00:00.000Z';
  const t0 = Date.parse(startedAt);
  const alive = { host: 'h1', isAlive: () => true };
  const dead = { host: 'h1', isAlive: () => false };
  const run = { status: 'running' as const, pid: 42, host: 'h1', startedAt, lastSecond: 100 };

  it('same host: a dead pid is abandoned at once, a live one is not while it writes', () => {
    expect(isAbandoned(run, { ...dead, nowMs: t0 + 102_000 })).toBe(true);
    expect(isAbandoned(run, { ...alive, nowMs: t0 + 102_000 })).toBe(false);
  });

  it('another host: judged by the last per-second row alone (60 s)', () => {
    const other = { ...run, host: 'h2' };
    expect(isAbandoned(other, { ...dead, nowMs: t0 + 101_000 + 60_000 })).toBe(false);
    expect(isAbandoned(other, { ...dead, nowMs: t0 + 101_000 + 60_001 })).toBe(true);
  });

  it('finished, interrupted and failed runs are never abandoned', () => {
    for (const status of ['finished', 'interrupted', 'failed'] as const) {
      expect(isAbandoned({ ...run, status }, { ...dead, nowMs: t0 + 10 * 86_400_000 })).toBe(false);
    }
  });
});
