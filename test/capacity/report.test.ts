// A capacity run as runs, report and compare show it: a real search (in process, against the
// embedded bus with a service rate, so it has a knee and a first failure) stored in a results
// database; the report's capacity curves checked in headless Chromium for drawn data.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBus } from '../../bus/index.js';
import { openDatabase } from '../../db/open.js';
import { syntheticModel } from '../../fixtures/synthetic-model.js';
import { startCapacity, type CapacityResult } from '../../replay/capacity/run.js';
import { listRunEntries, formatRunsTable } from '../../report/runs-list.js';
import { writeReport } from '../../report/write-report.js';
import { launchChromium, openReport } from '../report/browser.js';
import { tempDir } from '../report/fixture-runs.js';

const outputDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test-output');
const model = syntheticModel({ classes: 3, seed: 3, publishMedianMs: 30_000, surgeShare: 0.9 });

let dir: string;
let resultsFile: string;
let result: CapacityResult;

beforeAll(async () => {
  dir = tempDir('rehearse-capacity-report-');
  resultsFile = path.join(dir, 'results.db');
  const db = openDatabase(resultsFile);
  // About 18 messages/s at 1x: a server taking 45/s holds 1x-2x and breaks around 3x.
  const bus = await startBus({ port: 0, faults: { servicePerS: 45 } });
  try {
    result = await startCapacity({
      target: bus.url,
      model,
      db,
      release: '2.4',
      search: { from: 1, to: 6, step: 1, stageMs: 3000, settleMs: 1000, refine: false },
      speed: 10,
      slo: 'p95<=500ms, lost>3s, duplicates=0',
      preflight: false,
      pollTimeoutS: 5,
      backoff: { baseMs: 50, capMs: 400 },
      generatorLagLimitMs: 1000,
      scrape: { url: `${bus.url}/metrics`, intervalMs: 300 },
    }).finished;
  } finally {
    await bus.close();
    db.close();
  }
}, 90_000);

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('a stored capacity run', () => {
  it('is listed by runs with its capacity', () => {
    const db = openDatabase(resultsFile);
    try {
      const entries = listRunEntries(db);
      expect(entries).toHaveLength(1);
      expect(entries[0]!.capacity).toEqual({ multiplier: result.answer.capacity, generatorBound: false });
      expect(formatRunsTable(entries)).toMatch(new RegExp(`capacity[\\s\\S]*${result.answer.capacity}x`));
    } finally {
      db.close();
    }
  });

  it('keeps the target health per stage from --scrape', () => {
    const withHealth = result.answer.stages.filter((s) => s.targetHealth && Object.keys(s.targetHealth).length > 0);
    expect(withHealth.length).toBe(result.answer.stages.length);
    expect(Object.keys(withHealth[0]!.targetHealth!)).toContain('rehearse_bus_service_queue');
  });

  it('report draws the curves against the multiplier with the SLO line and the knee, in headless Chromium', async () => {
    expect(result.answer.firstFailure).not.toBeNull();
    const out = path.join(dir, 'capacity.html');
    const written = writeReport({ results: resultsFile, run: 'latest', out, now: new Date('2026-12-01T12:00:00Z') });
    expect(written.data.capacity?.stages.length).toBe(result.answer.stages.length);
    const html = fs.readFileSync(out, 'utf8');
    expect(html).toContain('<h2>Capacity</h2>');
    const browser = await launchChromium();
    try {
      const { page, problems } = await openReport(browser.context, out);
      expect(problems).toEqual([]);
      const charts = await page.evaluate(() => {
        type Canvas = { width: number; height: number; getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null };
        type U = { data: (number | null)[][]; series: { label: string }[]; root: { querySelector(selector: string): Canvas | null } };
        const list = (globalThis as unknown as { rehearseCharts: { name: string; chart: U }[] }).rehearseCharts;
        return list
          .filter(({ name }) => name.startsWith('capacity:'))
          .map(({ name, chart }) => {
            const canvas = chart.root.querySelector('canvas')!;
            const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
            let drawn = 0;
            let red = 0;
            for (let i = 0; i < data.length; i += 4) {
              const [r, g, b, a] = [data[i]!, data[i + 1]!, data[i + 2]!, data[i + 3]!];
              if (a > 0 && !(r > 240 && g > 240 && b > 240)) drawn++;
              // The SLO line and the first-failure marker are drawn in #dc2626.
              if (a > 0 && r > 180 && g < 80 && b < 80) red++;
            }
            return { name, xs: chart.data[0]!, labels: chart.series.map((s) => s.label), drawn, red };
          });
      });
      expect(charts.map((c) => c.name)).toEqual(['capacity:latency', 'capacity:failures', 'capacity:throughput']);
      const multipliers = result.answer.stages.map((s) => s.multiplier).sort((a, b) => a - b);
      for (const c of charts) {
        expect(c.xs, c.name).toEqual(multipliers);
        expect(c.drawn, c.name).toBeGreaterThan(1000);
      }
      const latency = charts[0]!;
      expect(latency.labels.some((l) => l.startsWith('SLO target 500 ms'))).toBe(true);
      expect(latency.red).toBeGreaterThan(100);
      expect(await page.textContent('[data-key="capacity"]')).toBe(`${result.answer.capacity}x`);
      expect(await page.textContent('[data-key="knee"]')).toBe(result.answer.knee ? `${result.answer.knee.multiplier}x` : '-');
      fs.mkdirSync(outputDir, { recursive: true });
      await page.locator('#capacity').screenshot({ path: path.join(outputDir, 'report-capacity.png') });
    } finally {
      await browser.close();
    }
  }, 60_000);
});
