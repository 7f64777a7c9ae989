import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { IJob } from 'kubernetes-models/batch/v1';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBus, type RunningBus } from '../../bus/index.js';
import { openDatabase } from '../../db/open.js';
import { listRuns } from '../../db/run-queries.js';
import type { RunSummary } from '../../db/run-types.js';
import { writeSchoolDay } from '../../fixtures/write-day.js';
import { ingestFiles } from '../../ingest/ingest.js';
import { parseRunResult } from '../../replay/result.js';
import { flagValue, isJob, jobProblems, loadManifests, podCommandLine, shardArgs } from './manifests.js';

// The pod's entrypoint exactly as the Indexed Job runs it (issue 11: no cluster here), on one
// machine: deploy/kubernetes/job.yaml's arguments with $(VAR) expanded as the kubelet does, one
// process per index with JOB_COMPLETION_INDEX set, all at once; each process's stdout and
// stderr collected together as `kubectl logs` prints them; then `rehearse merge` of the logs,
// as docs/scale-out.md says. Uses the built CLI (dist/, `npm run build` first).
//
// What differs from a pod, and why:
// - N is 3, not 50 (completions, parallelism and --shard auto/N changed together, and the Job
//   still keeps every promise jobProblems checks);
// - the binary is `node dist/cli/bin.js` (the image's ENTRYPOINT is the same bin);
// - --db names the local fixture model instead of /model/model.db (the read-only volume);
// - START_AT is a few seconds ahead and TARGET_URL is the embedded bus on 127.0.0.1;
// - two flags are appended after the manifest's own (the last value of a flag wins):
//   --duration 4s instead of 30m, and --max-lag 5s, because three generators and the bus share
//   this machine's two loaded cores and the test is about the entrypoint, not generator headroom.

const bin = path.resolve('dist/cli/bin.js');
const shards = 3;
const appended = ['--duration', '4s', '--max-lag', '5s'];

let dir: string;
let model: string;
let bus: RunningBus;

/** job.yaml's Job with N shrunk to `n` everywhere N appears. */
function jobWith(n: number): IJob {
  const found = loadManifests().find((m) => m.file === 'job.yaml' && isJob(m.object));
  if (!found) throw new Error('deploy/kubernetes/job.yaml has no Job');
  const job = structuredClone(found.object) as unknown as IJob;
  const spec = job.spec!;
  const before = spec.completions;
  spec.completions = n;
  spec.parallelism = n;
  const args = shardArgs(job);
  const at = args.indexOf('--shard');
  expect(args[at + 1]).toBe(`auto/${before}`);
  args[at + 1] = `auto/${n}`;
  return job;
}

/** Runs one pod's command line; resolves with its exit code and its interleaved output (the log). */
function runPod(args: string[], env: Record<string, string>): Promise<{ code: number | null; log: string; stdout: string }> {
  // The pod's own environment, not this test's: only PATH and HOME are inherited.
  const child = spawn(process.execPath, [bin, ...args], { env: { PATH: process.env.PATH ?? '', HOME: dir, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => {
    log += d.toString();
    stdout += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, log, stdout })));
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rehearse-entrypoint-'));
  const day = await writeSchoolDay(path.join(dir, 'day'), 'small');
  model = path.join(dir, 'model.db');
  await ingestFiles({ files: [day.files.csv], db: model });
  bus = await startBus({ port: 0, seed: 11 });
}, 60_000);

afterAll(async () => {
  await bus?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("the Indexed Job's pods, run locally", () => {
  it('N processes with JOB_COMPLETION_INDEX 0..N-1 print one result each; merging their logs stores one run of N shards', async () => {
    const job = jobWith(shards);
    expect(jobProblems(job)).toEqual([]);
    const startAt = new Date(Date.now() + 6000).toISOString();
    const pods = Array.from({ length: shards }, (_, index) => {
      const { args, env } = podCommandLine(job, index, { START_AT: startAt, TARGET_URL: bus.url, RELEASE: 'entrypoint-test' });
      // The manifest's --db is the read-only model volume; here the fixture model stands in for it.
      expect(flagValue(args, '--db')).toBe('/model/model.db');
      const local = [...args];
      local[local.indexOf('--db') + 1] = model;
      // The pod's arguments are the same in every pod: the index comes from the environment.
      expect(flagValue(local, '--shard')).toBe(`auto/${shards}`);
      expect(env.JOB_COMPLETION_INDEX).toBe(String(index));
      expect(flagValue(local, '--start-at')).toBe(startAt);
      expect(flagValue(local, '--target')).toBe(bus.url);
      return runPod([...local, ...appended], env);
    });
    const finished = await Promise.all(pods);
    const logs = finished.map((p, index) => {
      // A pod that wrote its result exits 0: the merge's verdict is the rehearsal's.
      expect(p.code, `pod ${index}'s log:\n${p.log}`).toBe(0);
      // stdout carries the result line only (the summary went to stderr).
      expect(p.stdout.trim().split('\n')).toHaveLength(1);
      const file = path.join(dir, `shard-${index}.log`);
      fs.writeFileSync(file, p.log);
      // The log holds the human summary and the one result line, of the shard the index names.
      expect(p.log).toMatch(/^ {2}delivered \d+\/\d+ pairs/m);
      expect(parseRunResult(p.log, file).shards.map((s) => `${s.index}/${s.count}`)).toEqual([`${index}/${shards}`]);
      return file;
    });
    // Every shard's load reached the bus.
    expect(bus.stats().publishRequests).toBeGreaterThan(0);

    const runsDb = path.join(dir, 'runs.db');
    const merge = await runPod(['merge', ...logs, '--db', runsDb, '--json'], {});
    expect(merge.code).toBe(0);
    const summary = JSON.parse(merge.stdout) as RunSummary;
    expect(summary.shards).toEqual({ count: shards, indexes: [0, 1, 2] });
    expect(summary.release).toBe('entrypoint-test');
    expect(summary.scale).toBe(5);
    expect(summary.verdict.reasons).toEqual([]);
    expect(summary.pass).toBe(true);
    expect(summary.lost).toBe(0);
    expect(summary.delivered).toBe(summary.expected);
    const db = openDatabase(runsDb, { mustExist: true });
    try {
      const runs = listRuns(db);
      expect(runs).toHaveLength(1);
      expect(runs[0]).toMatchObject({ id: summary.run, shardCount: shards, status: 'finished', release: 'entrypoint-test' });
    } finally {
      db.close();
    }
  }, 60_000);
});
