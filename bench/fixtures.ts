// Generation speed of the synthetic school day: the pure generator alone, and writing every
// format (+ gzip) as `rehearse fixtures` does. Prints the command and a table of medians.
// Run: npx tsx bench/fixtures.ts [--runs 3] [--big]   (--big adds a single 10M-line CSV-only run)

import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSchoolDay, schoolDayPresets, type SchoolDayOptions } from '../fixtures/school-day.js';
import { writeSchoolDay, type WriteDayOptions } from '../fixtures/write-day.js';
import { benchFlags } from './args.js';
import { median } from '../stats/quantile.js';

const flags = benchFlags({ runs: { type: 'string', default: '3' }, big: { type: 'boolean', default: false } });
const runs = flags.number('runs');
const big = flags.flag('big');

interface Row {
  case: string;
  lines: number;
  seconds: number;
}
const rows: Row[] = [];
const report = (r: Row) => {
  rows.push(r);
  console.log(`  ${r.case}: ${r.lines} lines in ${r.seconds.toFixed(2)} s`);
};

function timeGenerate(name: string, opts: Partial<SchoolDayOptions>, n = runs): void {
  const times: number[] = [];
  let lines = 0;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    lines = 0;
    for (const _ of generateSchoolDay(opts)) lines++;
    times.push((performance.now() - t0) / 1000);
  }
  report({ case: name, lines, seconds: median(times) });
}

async function timeWrite(name: string, opts: Partial<SchoolDayOptions>, w: WriteDayOptions, n = runs): Promise<void> {
  const times: number[] = [];
  let lines = 0;
  for (let i = 0; i < n; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'rehearse-bench-fixtures-'));
    try {
      const t0 = performance.now();
      lines = (await writeSchoolDay(dir, opts, w)).lines;
      times.push((performance.now() - t0) / 1000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  report({ case: name, lines, seconds: median(times) });
}

console.log(`$ npx tsx bench/fixtures.ts ${process.argv.slice(2).join(' ')}`.trimEnd());
console.log(`node ${process.version}, ${cpus().length} cores, load average at start ${loadavg().map((x) => x.toFixed(1)).join(' ')}, ${runs} runs (median)`);
timeGenerate('generate small', schoolDayPresets.small);
timeGenerate('generate day', schoolDayPresets.day);
await timeWrite('write small (3 formats + gz)', schoolDayPresets.small, {});
await timeWrite('write day (3 formats + gz)', schoolDayPresets.day, {}, Math.min(runs, 2));
await timeWrite('write 1M lines (csv only, no gz)', { ...schoolDayPresets.day, maxLines: 1_000_000 }, { formats: ['csv'], gzip: false }, Math.min(runs, 2));
if (big) await timeWrite('write 10M lines (csv only, no gz)', { ...schoolDayPresets.day, maxLines: 10_000_000 }, { formats: ['csv'], gzip: false }, 1);

console.log('\n| case | lines | seconds | lines/s |\n|---|---:|---:|---:|');
for (const r of rows)
  console.log(`| ${r.case} | ${r.lines.toLocaleString('en-US')} | ${r.seconds.toFixed(2)} | ${Math.round(r.lines / r.seconds).toLocaleString('en-US')} |`);
console.log(`load average at end ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
