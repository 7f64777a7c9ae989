import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBus, type RunningBus } from '../../bus/index.js';
import { MemoryOutput } from '../../cli/io.js';
import { main } from '../../cli/program.js';
import { openDatabase } from '../../db/open.js';
import { openModelReader } from '../../db/model-store.js';
import { resolveRun, runSamples, runSeconds } from '../../db/run-queries.js';
import { parseShape } from '../../replay/plan/shape.js';
import { shapeModel } from '../../replay/plan/shaped-model.js';
import type { ShapeSummary } from '../../replay/plan/shape-summary.js';
import { compareRunsByName } from '../../report/compare.js';
import { computeFidelity } from '../../report/fidelity.js';
import { formatRunsTable, listRunEntries } from '../../report/runs-list.js';
import { ksDistance } from '../../stats/ks.js';
import { writeSyntheticModel } from './synthetic-db.js';

// --shape end to end: plan shows the shaped model beside the recorded one, a shaped replay against
// the embedded bus sends the shaped distributions (KS < 0.05), and the run carries its shape into
// runs, compare and fidelity. Through main(), as the binary runs.

let dir = '';
let modelFile = '';
let resultsFile = '';
let bus: RunningBus;
const shape = ['learnerPublishInterval*0.5', 'messagesPerPublish+1'];

function io() {
  return { stdout: new MemoryOutput(), stderr: new MemoryOutput(), env: {}, signals: new EventEmitter() };
}

async function rehearse(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = io();
  const code = await main(['node', 'rehearse', ...args], out);
  return { code, stdout: out.stdout.text(), stderr: out.stderr.text() };
}

/** Stores the synthetic day through the model store, as ingest would (as test/plan/cli-plan.test.ts does). */
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rehearse-shape-'));
  modelFile = path.join(dir, 'model.db');
  resultsFile = path.join(dir, 'results.db');
  writeSyntheticModel(modelFile, { classes: 60, seed: 3, publishMedianMs: 30_000 });
  bus = await startBus({ port: 0, seed: 1 });
});
afterAll(async () => {
  await bus?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('rehearse plan --shape', () => {
  it('shows each changed distribution and the traffic before and after; --json carries the same figures', async () => {
    const text = await rehearse(['plan', '--db', modelFile, '--window', '08:00-09:00', '--shape', shape[0]!, '--shape', `${shape[1]}; pollTimeout=10s`]);
    expect(text.stderr).toBe('');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^Shape: learnerPublishInterval\*0\.5; messagesPerPublish\+1; pollTimeout=10s/);
    expect(text.stdout).toMatch(/learnerPublishInterval\s+\S+\s+\S+\s+\S+\s+\S+/);
    expect(text.stdout).toMatch(/pollDuration/);
    expect(text.stdout).toMatch(/publishes\/s\s+[\d.,]+\s+[\d.,]+\s+\+(9\d|10\d)%/);
    expect(text.stdout).toMatch(/clients: long-polls time out after 10 s/);
    expect(text.stdout).toMatch(/\nPlan: sample mode/);

    const json = await rehearse(['plan', '--db', modelFile, '--window', '08:00-09:00', '--json', '--shape', shape[0]!]);
    expect(json.code).toBe(0);
    const summary = JSON.parse(json.stdout) as { publishes: number; shape: ShapeSummary };
    expect(summary.shape.terms).toEqual([shape[0]]);
    const publishGap = summary.shape.distributions.find((d) => d.name === 'learnerPublishInterval')!;
    expect(publishGap.after!.median / publishGap.before!.median).toBeCloseTo(0.5, 6);
    expect(publishGap.after!.p90 / publishGap.before!.p90).toBeCloseTo(0.5, 6);
    const { before, after } = summary.shape.traffic;
    expect(after.publishesPerS / before.publishesPerS).toBeGreaterThan(1.9);
    expect(after.publishesPerS / before.publishesPerS).toBeLessThan(2.1);
    expect(after.learners).toBe(before.learners);
    expect(after.peakRequestsPerS).toBeGreaterThan(before.peakRequestsPerS);
    // Without --shape the summary is as before: no shape key.
    const plain = JSON.parse((await rehearse(['plan', '--db', modelFile, '--window', '08:00-09:00', '--json'])).stdout) as Record<string, unknown>;
    expect(plain.shape).toBeUndefined();
  });

  it('a bad term is one usage error naming it and the known names, before the model is read', async () => {
    const r = await rehearse(['plan', '--db', path.join(dir, 'missing.db'), '--shape', 'rosterSise=60', '--shape', 'arrivals*2@10:00-09:00']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--shape: 'rosterSise=60': unknown name 'rosterSise' (did you mean rosterSize?); known names: learnerPublishInterval,");
    expect(r.stderr).toContain("--shape: 'arrivals*2@10:00-09:00': the range 10:00-09:00 must end after it starts");
  });
});

describe('rehearse replay --shape against the embedded bus', () => {
  it('sends the shaped distributions (KS < 0.05) and the run records its shape for runs, compare and fidelity', async () => {
    const common = ['--db', modelFile, '--results', resultsFile, '--target', bus.url, '--window', 'peak', '--scale', '0.5', '--speed', '4', '--slo', 'p95<=10s, lost>15s, duplicates=0', '--json'];
    const shaped = await rehearse(['replay', ...common, '--duration', '30s', '--shape', shape[0]!, '--shape', shape[1]!, '--release', 'shaped']);
    expect(shaped.stderr).not.toMatch(/error/i);
    // The run's pass is the bus's and this shared machine's business; what it sent is the test's.
    expect(JSON.parse(shaped.stdout)).toMatchObject({ status: 'finished', lost: 0 });
    const plain = await rehearse(['replay', ...common, '--duration', '3s', '--release', 'plain']);
    expect(JSON.parse(plain.stdout)).toMatchObject({ status: 'finished' });

    const results = openDatabase(resultsFile, { mustExist: true });
    const modelDb = openDatabase(modelFile, { mustExist: true, readonly: true });
    try {
      const recorded = openModelReader(modelDb);
      const shapedModel = shapeModel(recorded, parseShape(shape), 1);
      const run = resolveRun(results, 'shaped', resultsFile);
      expect((run.options.run as { shape?: string[] }).shape).toEqual(shape);
      const samples = runSamples(results, run.id);
      const gaps = samples.get('learnerPublishInterval')!;
      expect(gaps.length).toBeGreaterThan(1500);
      expect(ksDistance(gaps, shapedModel.distribution('learnerPublishInterval')!.samples)).toBeLessThan(0.05);
      expect(ksDistance(gaps, recorded.distribution('learnerPublishInterval')!.samples)).toBeGreaterThan(0.2);
      const messages = samples.get('messagesPerPublish')!;
      expect(ksDistance(messages, shapedModel.distribution('messagesPerPublish')!.samples)).toBeLessThan(0.05);

      // Fidelity holds the run against the shaped model, the recorded one beside it.
      const fidelity = computeFidelity({ run, samples, seconds: runSeconds(results, run.id), model: recorded });
      expect(fidelity.status).toBe('available');
      expect(fidelity.shape).toEqual(shape);
      const row = fidelity.rows.find((r) => r.name === 'learnerPublishInterval')!;
      expect(row.ks).toBeLessThan(0.05);
      expect(row.recorded).toHaveLength(row.quantiles.length);
      expect(row.recorded![1]! / row.quantiles[1]!.model!).toBeCloseTo(2, 1);
      expect(fidelity.rows.find((r) => r.name === 'sessionDuration')?.recorded).toBeUndefined();

      // runs shows it; compare warns that the two rehearsed different traffic.
      const entries = listRunEntries(results);
      expect(entries).toHaveLength(2);
      for (const e of entries) expect(e.shape).toEqual(e.release === 'shaped' ? shape : []);
      expect(formatRunsTable(entries)).toMatch(/shape\n[\s\S]*learnerPublishInterval\*0\.5; messagesPerPublish\+1/);
      expect(formatRunsTable(entries)).toMatch(/recorded/);
      const comparison = compareRunsByName(results, 'plain', 'shaped', { dbLabel: resultsFile });
      expect(comparison.comparable).toBe(false);
      expect(comparison.warnings.join('\n')).toContain(`different shapes (docs/shape.md): recorded in run ${comparison.a.id}, ${shape.join('; ')} in run ${comparison.b.id}`);
    } finally {
      modelDb.close();
      results.close();
    }
  }, 120_000);
});
