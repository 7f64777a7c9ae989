import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBus, type RunningBus } from '../../bus/index.js';
import { MemoryOutput } from '../../cli/io.js';
import { main } from '../../cli/program.js';
import { openDatabase } from '../../db/open.js';
import { listRuns } from '../../db/run-queries.js';
import type { RunSummary } from '../../db/run-types.js';
import { writeSchoolDay } from '../../fixtures/write-day.js';
import { ingestFiles } from '../../ingest/ingest.js';
import { parseRunResult } from '../../replay/result.js';

// Many machines, on one: `replay --shard i/2 --start-at --out` twice against the embedded bus,
// then `rehearse merge` through the built CLI (dist/, `npm run build` first). A merge stores one
// run with one verdict, and refuses (exit 2, nothing written) shards that are not one rehearsal's.

const bin = path.resolve('dist/cli/bin.js');
let dir: string;
let model: string;
let bus: RunningBus;
const children: ChildProcess[] = [];

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

function rehearse(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Finished> {
  const child = spawn(process.execPath, [bin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

// --max-lag 5s: on this shared 2-core machine three generators and the bus share the cores, and
// the merge takes the worst shard's event-loop delay; the test is about merging, not headroom.
const fast = ['--speed', '30', '--window', 'peak', '--mode', 'sample', '--duration', '3s', '--seed', '7', '--max-lag', '5s'];

/** The stored runs of a results database. */
function storedRuns(file: string): ReturnType<typeof listRuns> {
  const db = openDatabase(file, { mustExist: true });
  try {
    return listRuns(db);
  } finally {
    db.close();
  }
}

let a: string;
let b: string;
let otherScale: string;
let shardStderr: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rehearse-merge-cli-'));
  const day = await writeSchoolDay(path.join(dir, 'day'), 'small');
  model = path.join(dir, 'model.db');
  await ingestFiles({ files: [day.files.csv], db: model });
  bus = await startBus({ port: 0, seed: 5 });
  // Three shards at once with a common start a few seconds ahead (process start-up on a loaded
  // machine fits in it): 0/2 and 1/2 of one rehearsal, and a 1/2 of another --scale.
  const startAt = new Date(Date.now() + 5000).toISOString();
  a = path.join(dir, 'a.json');
  b = path.join(dir, 'b.json');
  otherScale = path.join(dir, 'other-scale.json');
  const shard = (spec: string, out: string, scale: string) =>
    rehearse(['replay', '--db', model, '--target', bus.url, ...fast, '--scale', scale, '--shard', spec, '--start-at', startAt, '--out', out]);
  const runs = await Promise.all([shard('0/2', a, '1'), shard('1/2', b, '1'), shard('1/2', otherScale, '0.5')]);
  for (const r of runs) expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
  shardStderr = runs[0]!.stderr;
}, 60_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await bus?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('replay --shard i/N --start-at --out', () => {
  it('each shard wrote its own result, started at the common start, and said where it went', () => {
    const ra = parseRunResult(fs.readFileSync(a, 'utf8'), a);
    const rb = parseRunResult(fs.readFileSync(b, 'utf8'), b);
    expect(ra.shards.map((s) => [s.index, s.count])).toEqual([[0, 2]]);
    expect(rb.shards.map((s) => [s.index, s.count])).toEqual([[1, 2]]);
    expect(ra.fingerprint).toBe(rb.fingerprint);
    expect(ra.startAt).toBe(rb.startAt);
    // Both waited for the common start: neither began its load before it.
    for (const r of [ra, rb]) expect(Date.parse(r.startedAt)).toBeGreaterThanOrEqual(Date.parse(r.startAt!));
    expect(ra.requests.publishedMessages).toBeGreaterThan(0);
    expect(rb.requests.publishedMessages).toBeGreaterThan(0);
    expect(shardStderr).toContain(`shard 0/2 result written to ${a}`);
    // --out without --results stores nothing in the model database.
    expect(storedRuns(model)).toEqual([]);
  });
});

describe('rehearse merge', () => {
  it('stores one run of 2 shards and prints the --json summary; exit 0 on a clean bus', async () => {
    const runsDb = path.join(dir, 'runs.db');
    const r = await rehearse(['merge', a, b, '--db', runsDb, '--json']);
    expect(r.stderr).toMatch(/merging 2 shards of one rehearsal/);
    const summary = JSON.parse(r.stdout) as RunSummary;
    expect({ code: r.code, reasons: summary.verdict.reasons }).toEqual({ code: 0, reasons: [] });
    expect(summary.shards).toEqual({ count: 2, indexes: [0, 1] });
    expect(summary.pass).toBe(true);
    const ra = parseRunResult(fs.readFileSync(a, 'utf8'), a);
    const rb = parseRunResult(fs.readFileSync(b, 'utf8'), b);
    expect(summary.published).toBe(ra.requests.publishedMessages + rb.requests.publishedMessages);
    expect(summary.delivered).toBe(summary.expected);
    expect(summary.lost).toBe(0);
    const runs = storedRuns(runsDb);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ id: summary.run, shardCount: 2, status: 'finished', pass: true });
    expect(runs[0]!.groupId).toMatch(/^m[0-9a-f]{16}@/);
    // runs, compare and report read the merged run like any other, and say it is one.
    const list = await rehearse(['runs', '--db', runsDb, '--json']);
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as { runs: Array<{ shards?: unknown }> }).runs[0]!.shards).toEqual({ groupId: runs[0]!.groupId, index: null, count: 2 });
    const table = await rehearse(['runs', '--db', runsDb]);
    expect(table.stdout).toMatch(/shards[\s\S]*2 merged/);
    const html = path.join(dir, 'merged.html');
    const report = await rehearse(['report', 'latest', '--db', runsDb, '-o', html]);
    expect(report.code).toBe(0);
    expect(fs.readFileSync(html, 'utf8')).toContain('<th>shards</th><td>2 merged (group ');
  });

  it('reads a log as kubectl logs prints it (stderr lines, then the result line)', async () => {
    const log = path.join(dir, 'shard-0.log');
    fs.writeFileSync(log, `${shardStderr}${fs.readFileSync(a, 'utf8')}rehearse: exiting\n`);
    const runsDb = path.join(dir, 'from-log.db');
    const r = await rehearse(['merge', log, b, '--db', runsDb, '--json']);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as RunSummary).shards).toEqual({ count: 2, indexes: [0, 1] });
    expect(storedRuns(runsDb).map((x) => x.shardCount)).toEqual([2]);
  });

  describe('refuses with exit 2, naming files and fields, and writes nothing', () => {
    const refused = async (files: string[], db: string): Promise<string> => {
      const runsDb = path.join(dir, db);
      const r = await rehearse(['merge', ...files, '--db', runsDb]);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(fs.existsSync(runsDb)).toBe(false);
      return r.stderr;
    };

    it('a missing shard', async () => {
      expect(await refused([a], 'missing.db')).toMatch(/shard 1\/2 is missing/);
    });

    it('the same shard twice', async () => {
      expect(await refused([a, a], 'twice.db')).toContain(`shard 0/2 is given 2 times (${a}, ${a})`);
    });

    it('a shard of a rehearsal with another --scale', async () => {
      expect(await refused([a, otherScale], 'scale.db')).toContain(`${otherScale} is from a different rehearsal than ${a}: settings.plan.scale is 0.5 there and 1 here`);
    });
  });
});

describe('scale-out flags are refused before anything runs (exit 2, naming the flag)', () => {
  const run = async (args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stderr: string }> => {
    const stdout = new MemoryOutput();
    const stderr = new MemoryOutput();
    const code = await main(['node', 'rehearse', ...args], { stdout, stderr, env, signals: new EventEmitter() });
    return { code, stderr: stderr.text() };
  };

  it('--start-at without a zone', async () => {
    const out = path.join(dir, 'never-zone.json');
    const r = await run(['replay', '--db', model, '--target', bus.url, '--shard', '0/2', '--start-at', '2026-09-01T08:00:00', '--out', out], {});
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--start-at: '2026-09-01T08:00:00' has no zone/);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('--shard auto/2 without JOB_COMPLETION_INDEX', async () => {
    const out = path.join(dir, 'never-index.json');
    const r = await run(['replay', '--db', model, '--target', bus.url, '--shard', 'auto/2', '--start-at', new Date().toISOString(), '--out', out], {});
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--shard: auto\/2 takes the shard index from JOB_COMPLETION_INDEX, which is not set/);
    expect(fs.existsSync(out)).toBe(false);
  });
});
