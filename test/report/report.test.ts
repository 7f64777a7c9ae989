import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../db/open.js';
import { resolveRun } from '../../db/run-queries.js';
import { formatCount, formatMs, formatPercent } from '../../report/format.js';
import { escapeHtml, jsonForScript } from '../../report/html.js';
import { loadRunData } from '../../report/run-figures.js';
import { randomLognormal, seededRandom } from '../../stats/random.js';
import { launchChromium, openReport, type TestBrowser } from './browser.js';
import { fingerprintA, insertModelDistributions, insertRun, openTemp, tempDir } from './fixture-runs.js';

const execFileP = promisify(execFile);
const bin = path.resolve(__dirname, '../../dist/cli/bin.js');
const outputDir = path.resolve(__dirname, '../../test-output');

// Each payload would leave a mark if it ever ran: a global, and an error on the console.
const payload = (n: number) => `<script>window.__pwned=${n};console.error("pwned ${n}")</script>`;
const hostileRelease = `2.4${payload(1)}`;
const hostileTarget = `http://127.0.0.1:8080/"><img src=x onerror="window.__pwned=2">`;

let dir: string;
let file: string;
let browser: TestBrowser;

beforeAll(async () => {
  dir = tempDir();
  const opened = openTemp(dir);
  file = opened.file;
  const rng = seededRandom('report-model');
  // The model lives in the same file: fidelity compares with it (same fingerprint).
  insertModelDistributions(opened.db, fingerprintA, {
    learnerPublishInterval: { unit: 'ms', values: Array.from({ length: 4000 }, () => randomLognormal(rng, 4000, 0.7)) },
    proctorControlInterval: { unit: 'ms', values: Array.from({ length: 1000 }, () => randomLognormal(rng, 30000, 0.8)) },
    messagesPerPublish: { unit: 'count', values: Array.from({ length: 4000 }, () => 1 + Math.floor(rng.next() * 3)) },
    rosterSize: { unit: 'count', values: Array.from({ length: 60 }, () => 18 + Math.floor(rng.next() * 12)) },
    pollDuration: { unit: 'ms', values: Array.from({ length: 4000 }, () => 2000 + rng.next() * 200) },
  });
  insertRun(opened.db, { release: '2.3', medianMs: 40 });
  insertRun(opened.db, {
    release: hostileRelease,
    target: hostileTarget,
    medianMs: 70,
    lost: 2,
    duplicates: 1,
    errors: 5,
    retries: 4,
    reasons: [`user agent ${payload(3)} misbehaved`],
    options: { topic: `class/${payload(4)}`, userAgent: `Mozilla/5.0 ${payload(5)}`, note: '</script><script>window.__pwned=6</script>' },
    scrapes: [0, 5000, 10000, 15000].flatMap((t) => [
      { atMs: t, metric: 'bus_requests_total', labels: `ua="${payload(7).replace(/"/g, '\\"')}"`, value: 100 + t / 10 },
      { atMs: t, metric: 'bus_open_polls', labels: '', value: 300 + t / 100 },
    ]),
  });
  opened.db.close();
  fs.mkdirSync(outputDir, { recursive: true });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('report HTML escaping (static)', () => {
  it('escapes markup and keeps embedded JSON from closing its script element', () => {
    expect(escapeHtml(`<a href="x" onclick='y'>&</a>`)).toBe('&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
    const json = jsonForScript({ s: '</script><!-- \u2028 &' });
    expect(json).not.toMatch(/[<>&\u2028]/);
    expect(JSON.parse(json)).toEqual({ s: '</script><!-- \u2028 &' });
  });
});

describe('rehearse report in headless Chromium', () => {
  it('renders a run with --vs: charts drawn with data, key numbers shown, no console errors, hostile text inert', async () => {
    const out = path.join(dir, 'nested', 'report.html');
    const { stdout } = await execFileP(process.execPath, [bin, 'report', 'latest', '--vs', '2.3', '--results', file, '-o', out], { timeout: 30_000 });
    expect(stdout).toContain(`Wrote ${out}`);
    const html = fs.readFileSync(out, 'utf8');
    // Self-contained: no external script, style or font.
    expect(/<script[^>]*\ssrc=|<link\s|<img\s|@import|url\(\s*['"]?https?:/i.test(html)).toBe(false);
    expect(html.match(/<script/g)).toHaveLength(3); // data, uPlot, ours: no injected one
    expect(html.includes('window.__pwned')).toBe(true);

    const db = openDatabase(file, { mustExist: true });
    const figures = loadRunData(db, resolveRun(db, 'latest')).figures;
    const baseline = loadRunData(db, resolveRun(db, '2.3')).figures;
    db.close();

    const page = await browser.context.newPage();
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(`file://${out}`);
    await page.waitForFunction(() => (globalThis as unknown as { rehearseReady?: boolean }).rehearseReady === true, null, { timeout: 15_000 });

    expect(problems).toEqual([]);
    expect(requests.filter((u) => !u.startsWith('file:') && !u.startsWith('data:'))).toEqual([]);
    expect(await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned)).toBeUndefined();

    // Every chart: a uPlot instance holding data, and a canvas with drawn (non-background) pixels.
    const charts = await page.evaluate(() => {
      type Canvas = { width: number; height: number; getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null };
      type U = { data: (number | null)[][]; root: { querySelector(selector: string): Canvas | null } };
      const list = (globalThis as unknown as { rehearseCharts: { name: string; chart: U }[] }).rehearseCharts;
      return list.map(({ name, chart }) => {
        const canvas = chart.root.querySelector('canvas')!;
        const ctx = canvas.getContext('2d')!;
        const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
        let drawn = 0;
        for (let i = 0; i < data.length; i += 4) {
          const [r, g, b, a] = [data[i]!, data[i + 1]!, data[i + 2]!, data[i + 3]!];
          if (a > 0 && !(r > 240 && g > 240 && b > 240)) drawn++;
        }
        const points = chart.data.slice(1).reduce((n, s) => n + s.filter((v) => v !== null && v !== undefined).length, 0);
        return { name, xs: chart.data[0]!.length, points, drawn, width: canvas.width };
      });
    });
    const names = charts.map((c) => c.name);
    for (const expected of ['latency', 'throughput', 'users', 'distribution', 'client-view', 'scrape:bus_open_polls', 'scrape:bus_requests_total']) {
      expect(names).toContain(expected);
    }
    expect(names.filter((n) => n.startsWith('fidelity:'))).toEqual(
      expect.arrayContaining(['fidelity:learnerPublishInterval', 'fidelity:messagesPerPublish', 'fidelity:pollsPerSecond']),
    );
    for (const c of charts) {
      expect(c.xs, c.name).toBeGreaterThan(2);
      expect(c.points, c.name).toBeGreaterThan(2);
      expect(c.width, c.name).toBeGreaterThan(300);
      expect(c.drawn, c.name).toBeGreaterThan(1000);
    }
    expect(charts.find((c) => c.name === 'latency')!.xs).toBe(60);

    // Key numbers at the top, for the run and the baseline.
    const key = (run: number, k: string) => page.locator(`.keys[data-run="${run}"] [data-key="${k}"]`).innerText();
    expect(await key(2, 'verdict')).toBe('FAIL');
    expect(await key(2, 'p95')).toBe(formatMs(figures.latency.all!.p95));
    expect(await key(2, 'withinTarget')).toBe(formatPercent(figures.withinTarget!));
    expect(await key(2, 'lost')).toBe('2');
    expect(await key(2, 'duplicates')).toBe('1');
    expect(await key(1, 'verdict')).toBe('PASS');
    expect(await key(1, 'p95')).toBe(formatMs(baseline.latency.all!.p95));
    expect(await key(1, 'delivered')).toBe(formatCount(baseline.delivered));

    // Fidelity against the model in the same file: KS shown for the distributions it has.
    expect(await page.locator('[data-ks="learnerPublishInterval"]').innerText()).toMatch(/^0\.\d{3}$/);

    // The hostile strings are visible as text.
    const text = await page.locator('body').innerText();
    expect(await page.locator('h1').innerText()).toBe(`rehearse: run #2 ${hostileRelease} vs #1 2.3`);
    expect(text).toContain(hostileTarget);
    expect(text).toContain(`user agent ${payload(3)} misbehaved`);
    expect(text).toContain(`class/${payload(4)}`.replace(/"/g, '\\"')); // inside the options JSON
    expect(text).toContain('</script><script>window.__pwned=6</script>');
    const legend = await page.locator('#chart-scrape-0, #chart-scrape-1').allInnerTexts();
    expect(legend.join('\n')).toContain('<script>window.__pwned=7');
    expect(await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned)).toBeUndefined();

    await page.screenshot({ path: path.join(outputDir, 'report-vs.png'), fullPage: true });
    await page.close();
  });

  it('renders a single run without a model: fidelity says why it is unavailable', async () => {
    const resultsOnly = path.join(dir, 'runs-only.db');
    const db = openDatabase(resultsOnly);
    insertRun(db, { release: '2.5', medianMs: 30, seconds: 20 });
    db.close();
    const out = path.join(dir, 'single.html');
    await execFileP(process.execPath, [bin, 'report', '2.5', '--results', resultsOnly, '-o', out], { timeout: 30_000 });
    const { page, problems } = await openReport(browser.context, out);
    expect(problems).toEqual([]);
    expect(await page.locator('.keys [data-key="verdict"]').innerText()).toBe('PASS');
    expect(await page.locator('body').innerText()).toMatch(/Model comparison unavailable: the model is not available/);
    const counts = await page.evaluate(() =>
      (globalThis as unknown as { rehearseCharts: { name: string; chart: { data: unknown[][] } }[] }).rehearseCharts.map((c) => c.chart.data[0]!.length),
    );
    expect(counts.length).toBeGreaterThan(5);
    expect(counts.every((n) => n > 0)).toBe(true);
    await page.screenshot({ path: path.join(outputDir, 'report-single.png'), fullPage: true });
    await page.close();
  });
});
