import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PlanSummary } from '../../replay/plan-types.js';
import { writeSchoolDay } from '../../fixtures/write-day.js';
import { writeSyntheticModel } from './synthetic-db.js';

const run = promisify(execFile);
const bin = path.resolve(__dirname, '../../dist/cli/bin.js');
let dir = '';
let dbFile = '';

/** Stores the synthetic day through the model store, as ingest would. */
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rehearse-plan-'));
  dbFile = path.join(dir, 'model.db');
  writeSyntheticModel(dbFile, { classes: 20, seed: 2 });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('rehearse plan', () => {
  it('prints the dry run as a readable table', async () => {
    const { stdout } = await run(process.execPath, [bin, 'plan', '--db', dbFile, '--scale', '5', '--window', 'all']);
    expect(stdout).toMatch(/^Plan: sample mode, scale 5x/);
    expect(stdout).toMatch(/peaks\s+[\d,]+ learners/);
    expect(stdout).toMatch(/minute\s+learners\s+proctors\s+publish\/s/);
  });

  it('emits a PlanSummary with --json; the same flags give the same numbers', async () => {
    const args = [bin, 'plan', '--db', dbFile, '--scale', '2.5', '--mode', 'clone', '--window', '08:00-10:00', '--duration', '30m', '--speed', '2', '--json'];
    const first = JSON.parse((await run(process.execPath, args)).stdout) as PlanSummary;
    expect(first).toMatchObject({ mode: 'clone', scale: 2.5, speed: 2, durationMs: 30 * 60_000 });
    expect(first.perMinute).toHaveLength(30);
    expect(first.learners).toBeGreaterThan(100);
    expect(first.expectedDeliveries).toBeGreaterThan(first.messages * 0.5);
    expect(first.estimate.connections).toBeGreaterThanOrEqual(first.peakOpenPolls);
    const again = JSON.parse((await run(process.execPath, args)).stdout) as PlanSummary;
    expect(again).toEqual(first);
  });

  it('exits 2 listing every bad flag before opening the database', async () => {
    const err = await run(process.execPath, [bin, 'plan', '--db', path.join(dir, 'absent.db'), '--scale', 'x', '--speed', '0', '--shard', '3/2']).catch((e) => e);
    expect(err.code).toBe(2);
    expect(err.stderr).toMatch(/3 options are invalid/);
    for (const flag of ['--scale', '--speed', '--shard']) expect(err.stderr).toContain(flag);
  });

  it('exits 2 naming a missing model file', async () => {
    const err = await run(process.execPath, [bin, 'plan', '--db', path.join(dir, 'absent.db')]).catch((e) => e);
    expect(err.code).toBe(2);
    expect(err.stderr).toMatch(/absent\.db: no such database file/);
  });
});

describe('rehearse plan on the generated fixture day', () => {
  it('generate the small day, `rehearse ingest`, `rehearse plan --json`', async () => {
    const day = await writeSchoolDay(path.join(dir, 'day'), 'small');
    const db = path.join(dir, 'day.db');
    await run(process.execPath, [bin, 'ingest', day.files.csv, '--db', db]);
    const { stdout } = await run(process.execPath, [bin, 'plan', '--db', db, '--scale', '5', '--window', 'all', '--json']);
    const s = JSON.parse(stdout) as PlanSummary;
    const model = JSON.parse((await run(process.execPath, [bin, 'plan', '--db', db, '--scale', '1', '--mode', 'clone', '--window', 'all', '--json'])).stdout) as PlanSummary;
    // Clone at 1x over the whole day replays the recorded sessions; sample at 5x has about 5 times the traffic.
    expect(model.learners).toBeGreaterThan(10);
    expect(s.publishes / model.publishes).toBeGreaterThan(3.5);
    expect(s.publishes / model.publishes).toBeLessThan(6.5);
    expect(s.peakOpenPolls).toBeGreaterThan(model.peakOpenPolls);
    expect(s.perMinute.length).toBe(Math.ceil(s.durationMs / 60_000));
  });
});
