import fs from 'node:fs';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../../cli/program.js';
import { MemoryOutput } from '../../cli/io.js';
import { scrapeCharts } from '../../report/report-data.js';
import { insertRun, openTemp, tempDir } from './fixture-runs.js';

const io = () => ({ stdout: new MemoryOutput(), stderr: new MemoryOutput(), env: {}, signals: new EventEmitter() });

describe('scrapeCharts', () => {
  it('charts counters as per-second rates (a reset leaves a gap), gauges as values, and skips buckets', () => {
    const charts = scrapeCharts(
      [
        { atMs: 0, metric: 'req_total', labels: 'code="200"', value: 100 },
        { atMs: 2000, metric: 'req_total', labels: 'code="200"', value: 300 },
        { atMs: 4000, metric: 'req_total', labels: 'code="200"', value: 10 }, // restarted
        { atMs: 6000, metric: 'req_total', labels: 'code="200"', value: 50 },
        { atMs: 0, metric: 'open_polls', labels: '', value: 5 },
        { atMs: 2000, metric: 'open_polls', labels: '', value: Infinity },
        { atMs: 0, metric: 'lat_bucket', labels: 'le="0.5"', value: 1 },
      ],
      10,
    );
    expect(charts.map((c) => c.metric)).toEqual(['req_total', 'open_polls']);
    expect(charts[0]).toEqual({ metric: 'req_total', rate: true, series: [{ labels: 'code="200"', atS: [0, 2, 4, 6], values: [null, 100, null, 20] }] });
    expect(charts[1]!.series[0]!.values).toEqual([5, null]);
  });
});

describe('rehearse report (in-process)', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  it('writes rehearse-run-<id>-vs-<id>.html by default, warns when runs are not comparable, and names unknown runs', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const { db, file } = openTemp(dir);
    insertRun(db, { release: 'a', seconds: 10 });
    insertRun(db, { release: 'b', seconds: 10, mode: 'clone' });
    db.close();
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const out = io();
      expect(await main(['node', 'rehearse', 'report', 'b', '--vs', 'a', '--results', file], out)).toBe(0);
      expect(out.stdout.text()).toMatch(/^Run #2 b: PASS, p95 \S+, 100\.00% within 2 s, 0 lost, 0 duplicates\nWrote rehearse-run-2-vs-1\.html\n$/);
      expect(out.stderr.text()).toContain('WARNING: runs 1 and 2 are not comparable:\n  - different mode: sample in run 1, clone in run 2');
      expect(fs.statSync(path.join(dir, 'rehearse-run-2-vs-1.html')).size).toBeGreaterThan(50_000);
      const bad = io();
      expect(await main(['node', 'rehearse', 'report', 'c', '--results', file], bad)).toBe(2);
      expect(bad.stderr.text()).toMatch(/run "c" not found .*Releases: a \(#1\), b \(#2\)/);
    } finally {
      process.chdir(cwd);
    }
  });
});
