// runs, compare and report over REAL runs: a synthetic day ingested into a model, replayed twice
// by the runtime against the embedded bus (with --scrape of its /metrics), stored by run-store.

import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBus } from '../../bus/index.js';
import { openModelReader } from '../../db/model-store.js';
import { openDatabase } from '../../db/open.js';
import type { RunSummary } from '../../db/run-types.js';
import { writeSchoolDay } from '../../fixtures/write-day.js';
import { ingestFiles } from '../../ingest/ingest.js';
import { resolvePlanOptions } from '../../replay/plan.js';
import { replayModel } from '../../replay/rehearse.js';
import type { Comparison } from '../../report/compare.js';
import type { RunListEntry } from '../../report/runs-list.js';
import { launchChromium, openReport } from './browser.js';
import { runCli, tempDir } from './fixture-runs.js';


let dir: string;
let modelFile: string;
let resultsFile: string;
const summaries: RunSummary[] = [];

beforeAll(async () => {
  dir = tempDir('rehearse-real-run-');
  const day = await writeSchoolDay(path.join(dir, 'day'), 'small');
  modelFile = path.join(dir, 'model.db');
  resultsFile = path.join(dir, 'results.db');
  const modelDb = openDatabase(modelFile);
  const results = openDatabase(resultsFile);
  const bus = await startBus({ port: 0 });
  try {
    await ingestFiles({ files: [day.files.csv], db: modelDb });
    const model = openModelReader(modelDb);
    for (const release of ['2.3', '2.4']) {
      const planOptions = resolvePlanOptions({ mode: 'sample', scale: '1', window: 'peak', duration: 2000, seed: 1, speed: '10' });
      const { run } = replayModel({
        target: bus.url,
        model,
        planOptions,
        db: results,
        release,
        scrape: { url: `${bus.url}/metrics`, intervalMs: 300 },
      });
      summaries.push(await run.finished);
    }
  } finally {
    await bus.close();
    results.close();
    modelDb.close();
  }
}, 90_000);

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('runs, compare and report over runs stored by the runtime', () => {
  it('lists both runs with the figures the runtime stored', async () => {
    const r = await runCli(['runs', '--results', resultsFile, '--json']);
    expect(r.code).toBe(0);
    const { runs } = JSON.parse(r.stdout) as { runs: RunListEntry[] };
    expect(runs.map((x) => x.release)).toEqual(['2.3', '2.4']);
    runs.forEach((entry, i) => {
      const s = summaries[i]!;
      expect(entry).toMatchObject({ id: s.run, lost: s.lost, duplicates: s.duplicates, withinTarget: s.withinTarget, status: 'finished', verdict: s.pass ? 'pass' : 'fail' });
      // p95 from the stored HDR histogram agrees with the runtime's own summary (same histogram).
      expect(entry.p95Ms!).toBeCloseTo(s.latencyMs.p95, 1);
    });
  });

  it('compares them: same model and options, so comparable unless the generator was the bottleneck', async () => {
    const r = await runCli(['compare', '2.3', '2.4', '--results', resultsFile, '--json', '--fail-on', 'lost+0, duplicates+0']);
    expect(r.code).toBe(0);
    const c = JSON.parse(r.stdout) as Comparison;
    const bound = summaries.some((s) => s.generatorBound);
    expect(c.comparable).toBe(!bound);
    if (!bound) expect(r.stderr).toBe('');
    const published = c.metrics.find((m) => m.key === 'published')!;
    expect(published.a).toBe(summaries[0]!.published);
    expect(published.b).toBe(summaries[1]!.published);
    expect(c.failOn!.pass).toBe(true);
  });

  it('reports them in headless Chromium with target health from the scraped /metrics and fidelity against the model', async () => {
    const out = path.join(dir, 'real.html');
    const r = await runCli(['report', 'latest', '--vs', '2.3', '--db', modelFile, '--results', resultsFile, '-o', out]);
    expect(r.code).toBe(0);
    const browser = await launchChromium();
    try {
      const { page, problems } = await openReport(browser.context, out);
      expect(problems).toEqual([]);
      const charts = await page.evaluate(() =>
        (globalThis as unknown as { rehearseCharts: { name: string; chart: { data: (number | null)[][] } }[] }).rehearseCharts.map((c) => ({
          name: c.name,
          points: c.chart.data.slice(1).reduce((n, s) => n + s.filter((v) => v !== null && v !== undefined).length, 0),
        })),
      );
      const names = charts.map((c) => c.name);
      expect(names).toEqual(expect.arrayContaining(['latency', 'throughput', 'users', 'distribution', 'client-view', 'fidelity:learnerPublishInterval']));
      const scrapeCharts = charts.filter((c) => c.name.startsWith('scrape:'));
      expect(scrapeCharts.length).toBeGreaterThan(0);
      expect(scrapeCharts.some((c) => c.points > 1)).toBe(true);
      for (const c of charts.filter((x) => !x.name.startsWith('scrape:'))) expect(c.points, c.name).toBeGreaterThan(0);
      // The model in --db is the one replayed: fidelity has KS distances, not "unavailable".
      expect(await page.locator('[data-ks="learnerPublishInterval"]').innerText()).toMatch(/^0\.\d{3}$|^1\.000$/);
      expect(await page.locator('.keys[data-run="2"] [data-key="lost"]').innerText()).toBe(String(summaries[1]!.lost));
      await page.screenshot({ path: path.resolve(__dirname, '../../test-output/report-real-run.png'), fullPage: true });
    } finally {
      await browser.close();
    }
  });
});
