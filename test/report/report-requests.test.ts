import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../db/open.js';
import { resolveRun } from '../../db/run-queries.js';
import { formatCount, formatMs, formatPercent } from '../../report/format.js';
import { loadRunData } from '../../report/run-figures.js';
import { writeReport } from '../../report/write-report.js';
import { launchChromium, openReport, type TestBrowser } from './browser.js';
import { insertRun, openTemp, tempDir } from './fixture-runs.js';

// The report's Requests section (request times by kind, failures by kind) and chart legends that
// carry values without hovering, with --vs runs told apart; in headless Chromium.

const outputDir = path.resolve(__dirname, '../../test-output');
const hostileExample = '<script>window.__pwned=9</script> 503 Service Unavailable';
const hostileRelease = '2.4<b>bold</b>';

let dir: string;
let file: string;
let browser: TestBrowser;

beforeAll(async () => {
  dir = tempDir('rehearse-report-requests-');
  const opened = openTemp(dir);
  file = opened.file;
  insertRun(opened.db, { release: '2.3', medianMs: 40, errorsByKind: {}, requestTimes: { publish: 8, poll: 20_000 } });
  insertRun(opened.db, {
    release: hostileRelease,
    medianMs: 70,
    errors: 30,
    errorsByKind: {
      'publish HTTP 503': { count: 25, example: hostileExample },
      'poll network ECONNRESET': { count: 5, example: 'ECONNRESET socket hang up' },
    },
    requestTimes: { publish: 12, poll: 24_000, open: 3 },
  });
  insertRun(opened.db, { release: 'old', medianMs: 40, errors: 4 }); // stored before errors were grouped
  opened.db.close();
  fs.mkdirSync(outputDir, { recursive: true });
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function report(run: string, vs?: string): string {
  const out = path.join(dir, `${run}${vs ? `-vs-${vs}` : ''}.html`.replace(/[^A-Za-z0-9.-]/g, '_'));
  writeReport({ results: file, run, ...(vs ? { vs } : {}), out, now: new Date('2026-09-01T10:00:00Z') });
  return out;
}

describe('report: requests, failures and legends', () => {
  it('shows request times by kind and failures by kind, legends with values, runs told apart in --vs', async () => {
    const out = report('#2', '2.3');
    const { page, problems } = await openReport(browser.context, out);
    expect(problems).toEqual([]);

    const db = openDatabase(file, { mustExist: true });
    const data = loadRunData(db, resolveRun(db, '#2'));
    db.close();

    // Request times: one row per stored kind, the figures decoded from its histogram.
    const times = page.locator('#requests [data-run="2"] table.request-times');
    for (const kind of ['publish', 'poll', 'open'] as const) {
      const h = data.histograms.get(`request.${kind}`)!;
      const cells = await times.locator(`tr[data-kind="${kind}"] td`).allInnerTexts();
      expect(cells.slice(1)).toEqual([formatCount(h.count), formatMs(h.atPercentile(50)), formatMs(h.atPercentile(95)), formatMs(h.atPercentile(99)), formatMs(h.maxMs)]);
    }
    expect(await times.locator('tr[data-kind="poll"] td').first().innerText()).toBe('poll (includes the hold)');
    expect(await page.locator('#requests').innerText()).toContain('its time includes the hold');
    // The baseline stored no open times: no row for them.
    expect(await page.locator('#requests [data-run="1"] tr[data-kind="open"]').count()).toBe(0);

    // Failures: most frequent first, share of that kind's requests, the example as text.
    const publishes = data.run.summary!.requests.publish;
    const polls = data.run.summary!.requests.subscribe;
    const rows = await page.locator('#requests [data-run="2"] table.failures tbody tr').evaluateAll((trs) =>
      trs.map((tr) => Array.from(tr.querySelectorAll('td')).map((td) => (td as { textContent: string | null }).textContent ?? '')),
    );
    expect(rows).toEqual([
      ['publish HTTP 503', '25', `${formatPercent(25 / publishes)} of publishes`, hostileExample],
      ['poll network ECONNRESET', '5', `${formatPercent(5 / polls)} of polls`, 'ECONNRESET socket hang up'],
    ]);
    expect(await page.locator('#requests [data-run="1"] .failures-none').innerText()).toBe('No request failed.');
    expect(await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned)).toBeUndefined();

    // Legends: every series shows a value at rest (no hover), and with --vs names its run.
    const legends = await page.evaluate(() => {
      type U = { series: { label: string }[]; data: (number | null)[][]; root: { querySelectorAll(s: string): ArrayLike<{ textContent: string | null; style?: { borderStyle: string } }> } };
      const list = (globalThis as unknown as { rehearseCharts: { name: string; chart: U }[] }).rehearseCharts;
      return list.map(({ name, chart }) => ({
        name,
        labels: Array.from(chart.root.querySelectorAll('.u-legend .u-series .u-label')).map((x) => x.textContent ?? ''),
        values: Array.from(chart.root.querySelectorAll('.u-legend .u-series .u-value')).map((x) => x.textContent ?? ''),
        markers: Array.from(chart.root.querySelectorAll('.u-legend .u-series .u-marker')).map((x) => x.style?.borderStyle ?? ''),
      }));
    });
    for (const l of legends) {
      expect(l.values.length, l.name).toBe(l.labels.length);
      for (const v of l.values.slice(1)) expect(v, `${l.name}: ${l.values.join(' | ')}`).toMatch(/\d/);
    }
    const latency = legends.find((l) => l.name === 'latency')!;
    expect(latency.values[0]).toBe('last value');
    const p95Run = latency.labels.indexOf(`p95 #2 ${hostileRelease}`);
    const p95Base = latency.labels.indexOf('p95 #1 2.3 (baseline)');
    expect(p95Run).toBeGreaterThan(0);
    expect(p95Base).toBeGreaterThan(0);
    expect(latency.markers[p95Run]).toBe('solid');
    expect(latency.markers[p95Base]).toBe('dashed');
    // At rest the value is the last second's: the same number the run stored for it.
    const lastP95 = await page.evaluate(() => {
      const d = JSON.parse((globalThis as unknown as { document: { getElementById(id: string): { textContent: string } } }).document.getElementById('report-data').textContent) as { runs: { seconds: { p95: (number | null)[] } }[] };
      const p95 = d.runs[0]!.seconds.p95.filter((v) => v !== null);
      return p95[p95.length - 1]!;
    });
    const shown = latency.values[p95Run]!;
    const ms = shown.endsWith(' s') ? parseFloat(shown) * 1000 : parseFloat(shown);
    expect(Math.abs(ms - lastP95) / lastP95).toBeLessThan(0.01);
    const distribution = legends.find((l) => l.name === 'distribution')!;
    expect(distribution.values[0]).toBe('99%');

    await page.screenshot({ path: path.join(outputDir, 'report-requests-vs.png'), fullPage: true });
    expect(fs.statSync(path.join(outputDir, 'report-requests-vs.png')).size).toBeGreaterThan(50_000);
    await page.close();
  }, 60_000);

  it('a run stored before errors were grouped says so instead of an empty failures table', async () => {
    const out = report('old');
    const { page, problems } = await openReport(browser.context, out);
    expect(problems).toEqual([]);
    expect(await page.locator('#requests').innerText()).toContain('Errors by kind were not stored for this run (4 errors in all).');
    expect(await page.locator('#requests').innerText()).toContain('This run stored no request times by kind');
    // A single run: series are not tagged with a run.
    const labels = await page.locator('#chart-latency .u-legend .u-label').allInnerTexts();
    expect(labels).toContain('p95');
    await page.close();
  }, 60_000);
});
