// `rehearse capacity` and compare's capacity rows through the CLI, in process (main() with
// in-memory output): exit codes 0/1/2, the --json fields, and --fail-on "capacity-10%".

import fs from 'node:fs';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBus, type RunningBus } from '../../bus/index.js';
import { main } from '../../cli/program.js';
import { MemoryOutput } from '../../cli/io.js';
import { writeCapacity } from '../../db/capacity-store.js';
import { openDatabase } from '../../db/open.js';
import { writeSchoolDay } from '../../fixtures/write-day.js';
import { ingestFiles } from '../../ingest/ingest.js';
import { insertRun, tempDir } from '../report/fixture-runs.js';

let dir: string;
let modelFile: string;

beforeAll(async () => {
  dir = tempDir('rehearse-capacity-cli-');
  const day = await writeSchoolDay(path.join(dir, 'day'), 'small');
  modelFile = path.join(dir, 'model.db');
  await ingestFiles({ files: [day.files.csv], db: modelFile });
}, 90_000);

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new MemoryOutput();
  const stderr = new MemoryOutput();
  const code = await main(['node', 'rehearse', ...args], { stdout, stderr, env: { NO_COLOR: '1' }, signals: new EventEmitter() });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

const short = ['--from', '1', '--to', '3', '--step', '1', '--stage', '3s', '--settle', '1s', '--speed', '10', '--poll-timeout', '5', '--max-lag', '1s'];

describe('rehearse capacity', () => {
  it('exits 2 on bad input, naming every flag at once (and as JSON with --json)', async () => {
    const r = await cli(['capacity', '--db', modelFile, '--target', 'http://127.0.0.1:9', '--step', '0', '--stage', '10s', '--settle', '20s', '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--step: must be positive/);
    expect(r.stderr).toMatch(/--settle: must be shorter than the stage/);
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'REHEARSE_USAGE' }, exitCode: 2 });
  });

  it('takes --shape as replay does: a bad term is named with the known ones, exit 2', async () => {
    const r = await cli(['capacity', '--db', modelFile, '--target', 'http://127.0.0.1:9', '--shape', 'learnerPublishIntervall*0.5']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/learnerPublishIntervall/);
    expect(r.stderr).toMatch(/learnerPublishInterval\b/);
  });

  describe('against the embedded bus', () => {
    let bus: RunningBus;
    afterAll(async () => bus?.close());

    it('prints the answer as JSON with the fields the issue lists and exits 0 when a capacity is found; runs lists it', async () => {
      bus = await startBus({ port: 0 });
      const results = path.join(dir, 'results.db');
      const r = await cli(['capacity', '--db', modelFile, '--results', results, '--target', bus.url, ...short, '--slo', 'p95<=3s, lost>3s, duplicates=0', '--release', '2.4', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(out.capacity).toBe(3);
      expect(out.passesUpTo).toBe(3);
      expect(out.generatorBound).toBe(false);
      expect(out.firstFailure).toBeNull();
      expect('knee' in out).toBe(true);
      expect(out.stages).toHaveLength(3);
      for (const s of out.stages) {
        expect(Object.keys(s)).toEqual(expect.arrayContaining(['multiplier', 'pass', 'latencyMs', 'lost', 'duplicates', 'errors']));
        expect(Object.keys(s.latencyMs)).toEqual(expect.arrayContaining(['p50', 'p95', 'p99']));
      }
      expect(r.stderr).toMatch(/stage 3 at 3x: PASS/);
      const runs = await cli(['runs', '--results', results]);
      expect(runs.stdout).toMatch(/capacity/);
      expect(runs.stdout).toMatch(/ 3x/);
    }, 60_000);

    it('exits 1 when even the first stage fails, saying which clause', async () => {
      await bus?.close();
      bus = await startBus({ port: 0, faults: { servicePerS: 2 } });
      const r = await cli(['capacity', '--db', modelFile, '--results', path.join(dir, 'results.db'), '--target', bus.url, ...short, '--slo', 'p95<=300ms, lost>3s']);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stdout).toMatch(/^no capacity: even 1x fails; at 1x (p95<=300ms|lost>3s) failed first/);
    }, 60_000);
  });
});

describe('compare of capacity runs', () => {
  it('says how capacity moved between releases, and --fail-on "capacity-10%" fails a fall of more than 10%', async () => {
    const file = path.join(dir, 'compare.db');
    const db = openDatabase(file);
    const search = { from: 1, to: 10, step: 0.5, stageMs: 180_000, settleMs: 30_000, refine: false };
    for (const [release, capacity] of [['2.3', 8], ['2.4', 6.5]] as const) {
      const runId = insertRun(db, { release });
      writeCapacity(db, { runId, capacity, generatorBound: false, knee: capacity - 1, search, answer: { text: `capacity ${capacity}x` }, stages: [] });
    }
    insertRun(db, { release: 'replay-only' });
    db.close();
    const r = await cli(['compare', '2.3', '2.4', '--results', file, '--fail-on', 'capacity-10%']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/Capacity: #2 2.4: 6.5x; #1 2.3: 8x: capacity fell 19%/);
    expect(r.stdout).toMatch(/FAIL capacity-10%: fell by 18.75%, more than 10%/);
    expect((await cli(['compare', '2.3', '2.4', '--results', file, '--fail-on', 'capacity-20%'])).code).toBe(0);
    const json = JSON.parse((await cli(['compare', '2.3', '2.4', '--results', file, '--json'])).stdout);
    expect(json.metrics.find((m: { key: string }) => m.key === 'capacity')).toMatchObject({ a: 8, b: 6.5, direction: 'worse' });
    // Two replays: no capacity row at all.
    const plain = JSON.parse((await cli(['compare', '2.3', 'replay-only', '--results', file, '--json'])).stdout);
    expect(plain.metrics.find((m: { key: string }) => m.key === 'capacity')).toMatchObject({ a: 8, b: null });
  });
});
