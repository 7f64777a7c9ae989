// Ingest benchmarks of issue 13 (not timed tests; results go to BENCHMARKS.md).
//
//   npm run build
//   node dist/bench/ingest.js --mode import [--lines 1000000,10000000] [--runs 3] [--big-runs 2] [--gz]
//     One generated CSV per size: `sqlite3 .import` of it and `rehearse ingest` of it, alternately in
//     the same run (so the ratio is measured under the same load), medians of the runs.
//   node dist/bench/ingest.js --mode daily [--files 30] [--classes 10]
//     30 generated daily files (one school day each, consecutive dates) ingested one after another
//     into one database: each file's time (the last against the first), total, database size per
//     1M lines, peak RSS.
//
// Every ingest runs in its own process (`node dist/cli/bin.js ingest FILE --db X --json`) under
// /usr/bin/time, so peak RSS is the whole process's (writer thread, parse threads, SQLite). Prints
// the load average with each run: this machine is shared, compare ratios from the same run.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSchoolDay } from '../fixtures/write-day.js';
import { schoolDayPresets } from '../fixtures/school-day.js';
import { benchFlags } from './args.js';
import { median } from '../stats/quantile.js';
import { DateTime } from 'luxon';

interface Args {
  mode: 'import' | 'daily';
  lines: number[];
  runs: number;
  /** Runs of sizes of 5M lines or more. */
  bigRuns: number;
  dir: string;
  gz: boolean;
  files: number;
  classes: number;
  keep: boolean;
}

function readArgs(): Args {
  const f = benchFlags({
    mode: { type: 'string', default: 'import' },
    lines: { type: 'string', default: '1000000,10000000' },
    runs: { type: 'string', default: '3' },
    'big-runs': { type: 'string', default: '1' },
    dir: { type: 'string', default: path.join(os.tmpdir(), 'rehearse-bench-ingest') },
    gz: { type: 'boolean', default: false },
    files: { type: 'string', default: '30' },
    classes: { type: 'string', default: '10' },
    keep: { type: 'boolean', default: false },
  });
  const mode = f.text('mode');
  if (mode !== 'import' && mode !== 'daily') throw new Error(`--mode: import or daily, not ${mode}`);
  return {
    mode,
    lines: f.numbers('lines'),
    runs: f.number('runs'),
    bigRuns: f.number('big-runs'),
    dir: f.text('dir'),
    gz: f.flag('gz'),
    files: f.number('files'),
    classes: f.number('classes'),
    keep: f.flag('keep'),
  };
}

function loadAverage(): string {
  return os.loadavg().map((l) => l.toFixed(1)).join(' ');
}

const here = path.dirname(fileURLToPath(import.meta.url));
// From dist/bench/ingest.js or bench/ingest.ts, the binary is dist/cli/bin.js.
const repo = here.includes(`${path.sep}dist${path.sep}`) ? path.resolve(here, '../..') : path.resolve(here, '..');
const cliBin = path.join(repo, 'dist/cli/bin.js');

interface Timed {
  wallS: number;
  cpuS: number;
  rssMB: number;
  stdout: string;
}

/** Runs a command under GNU time: wall, user+sys CPU and peak RSS of the process tree's biggest process. */
function timed(cmd: string, args: string[]): Timed {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S %M', cmd, ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  const last = r.stderr.trim().split('\n').pop()!.split(' ').map(Number);
  return { wallS: last[0]!, cpuS: last[1]! + last[2]!, rssMB: last[3]! / 1024, stdout: r.stdout };
}

async function dayFile(dir: string, lines: number, gz: boolean): Promise<string> {
  const target = path.join(dir, `day-${lines}`);
  const csv = path.join(target, 'day.csv');
  const marker = path.join(target, 'lines.txt');
  if (!fs.existsSync(marker) || fs.readFileSync(marker, 'utf8') !== String(lines)) {
    fs.rmSync(target, { recursive: true, force: true });
    process.stderr.write(`generating ${lines} lines into ${target} ...\n`);
    await writeSchoolDay(target, { ...schoolDayPresets.small, maxLines: lines }, { gzipLevel: 1, gzip: gz, formats: ['csv'] });
    fs.writeFileSync(marker, String(lines));
  }
  return gz ? `${csv}.gz` : csv;
}

/** The database's files on disk (main, WAL, shared memory), in bytes. */
function dbBytes(db: string): number {
  return ['', '-wal', '-shm'].reduce((n, suffix) => n + (fs.existsSync(db + suffix) ? fs.statSync(db + suffix).size : 0), 0);
}

function removeDb(db: string): void {
  for (const suffix of ['', '-wal', '-shm']) fs.rmSync(db + suffix, { force: true });
}

interface IngestJson {
  files: Array<{ elapsedMs: number; accepted: number; lines: number }>;
  rebuildMs: number;
}

/** `.import` against `rehearse ingest` of one generated CSV per size, alternately, same run. */
async function importMode(args: Args): Promise<void> {
  const rows: string[] = [];
  for (const lines of args.lines) {
    const file = await dayFile(args.dir, lines, args.gz);
    const csv = file.replace(/\.gz$/, '');
    const mb = fs.statSync(csv).size / 1e6;
    const runs = lines >= 5_000_000 ? args.bigRuns : args.runs;
    const imports: Timed[] = [];
    const ingests: Array<Timed & { parseS: number; rebuildS: number }> = [];
    for (let run = 0; run < runs; run++) {
      const load = loadAverage();
      const sqliteDb = path.join(args.dir, 'import.db');
      fs.rmSync(sqliteDb, { force: true });
      imports.push(timed('sqlite3', [sqliteDb, '.mode csv', `.import ${csv} requests`]));
      fs.rmSync(sqliteDb, { force: true });
      const db = path.join(args.dir, 'model.db');
      removeDb(db);
      const t = timed(process.execPath, [cliBin, 'ingest', file, '--db', db, '--json']);
      const summary = JSON.parse(t.stdout) as IngestJson;
      if (summary.files[0]!.accepted !== lines) throw new Error(`expected ${lines} accepted, got ${summary.files[0]!.accepted}`);
      ingests.push({ ...t, parseS: summary.files[0]!.elapsedMs / 1000 - summary.rebuildMs / 1000, rebuildS: summary.rebuildMs / 1000 });
      removeDb(db);
      const i = imports.at(-1)!;
      console.log(
        `  ${lines} run ${run + 1} (load ${load}): .import ${i.wallS.toFixed(2)} s (cpu ${i.cpuS.toFixed(1)}, rss ${i.rssMB.toFixed(0)} MB), ` +
          `ingest ${t.wallS.toFixed(2)} s (cpu ${t.cpuS.toFixed(1)}, rss ${t.rssMB.toFixed(0)} MB): ${(t.wallS / i.wallS).toFixed(2)}x`,
      );
    }
    const importS = median(imports.map((i) => i.wallS));
    const importCpu = median(imports.map((i) => i.cpuS));
    const ingestS = median(ingests.map((i) => i.wallS));
    const ingestCpu = median(ingests.map((i) => i.cpuS));
    const ratios = ingests.map((t, k) => t.wallS / imports[k]!.wallS);
    rows.push(
      `| ${lines.toLocaleString('en-US')} | ${path.basename(file)} ${mb.toFixed(0)} MB | ${runs} | ${importS.toFixed(1)} s (cpu ${importCpu.toFixed(1)}) | ` +
        `${ingestS.toFixed(1)} s (cpu ${ingestCpu.toFixed(1)}; read+store ${median(ingests.map((i) => i.parseS)).toFixed(1)}, model ${median(ingests.map((i) => i.rebuildS)).toFixed(1)}) | ` +
        `${Math.round(lines / ingestS).toLocaleString('en-US')} | ${median(ratios).toFixed(2)}x (runs ${ratios.map((r) => r.toFixed(2)).join(', ')}; cpu ${(ingestCpu / importCpu).toFixed(2)}x) | ${Math.max(...ingests.map((i) => i.rssMB)).toFixed(0)} MB |`,
    );
  }
  console.log('| lines | input | runs | sqlite3 .import (median) | rehearse ingest (median) | lines/s | ingest / .import (median of same-run ratios) | peak RSS |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
  if (!args.keep) for (const lines of args.lines) fs.rmSync(path.join(args.dir, `day-${lines}`), { recursive: true, force: true });
}

/** One generated school day per file on consecutive dates (`classes` classes each), cached under dir. */
async function dailyFiles(dir: string, files: number, classes: number): Promise<string[]> {
  const out: string[] = [];
  const first = DateTime.fromISO(schoolDayPresets.day.date, { zone: 'UTC' });
  for (let i = 0; i < files; i++) {
    const date = first.plus({ days: i }).toISODate()!;
    const target = path.join(dir, `daily-${classes}`, date);
    const csv = path.join(target, 'day.csv');
    if (!fs.existsSync(path.join(target, 'done.txt'))) {
      fs.rmSync(target, { recursive: true, force: true });
      process.stderr.write(`generating ${date} (${classes} classes) into ${target} ...\n`);
      await writeSchoolDay(target, { ...schoolDayPresets.day, classes, date, seed: i + 1 }, { gzip: false, formats: ['csv'] });
      fs.writeFileSync(path.join(target, 'done.txt'), date);
    }
    out.push(csv);
  }
  return out;
}

/** Daily files ingested one after another into one database: is each file's cost its own? */
async function dailyMode(args: Args): Promise<void> {
  const files = await dailyFiles(args.dir, args.files, args.classes);
  const db = path.join(args.dir, 'season.db');
  removeDb(db);
  const rows: Array<{ lines: number; wallS: number; cpuS: number; rssMB: number; modelS: number; dbMB: number; load: string }> = [];
  let lines = 0;
  for (const [i, file] of files.entries()) {
    const load = loadAverage();
    const t = timed(process.execPath, [cliBin, 'ingest', file, '--db', db, '--json']);
    const summary = JSON.parse(t.stdout) as IngestJson;
    const f = summary.files[0]!;
    lines += f.lines;
    const row = { lines: f.lines, wallS: t.wallS, cpuS: t.cpuS, rssMB: t.rssMB, modelS: summary.rebuildMs / 1000, dbMB: dbBytes(db) / 1e6, load };
    rows.push(row);
    console.log(
      `  file ${i + 1} ${path.basename(path.dirname(file))}: ${f.lines} lines, ${t.wallS.toFixed(2)} s (cpu ${t.cpuS.toFixed(1)}, model ${row.modelS.toFixed(2)} s, rss ${t.rssMB.toFixed(0)} MB), ` +
        `${((t.wallS * 1e6) / f.lines).toFixed(1)} s per 1M lines, db ${row.dbMB.toFixed(1)} MB (load ${load})`,
    );
  }
  const perM = rows.map((r) => (r.wallS * 1e6) / r.lines);
  const firstFive = median(perM.slice(0, 5));
  const lastFive = median(perM.slice(-5));
  const dbMB = dbBytes(db) / 1e6;
  console.log('| files | lines | total ingest | first file | last file | last / first | median of last 5 / first 5 (s per 1M lines) | model, first / last file | db size | db per 1M lines | peak RSS |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  console.log(
    `| ${rows.length} | ${lines.toLocaleString('en-US')} | ${rows.reduce((n, r) => n + r.wallS, 0).toFixed(1)} s (cpu ${rows.reduce((n, r) => n + r.cpuS, 0).toFixed(1)}) | ` +
      `${rows[0]!.wallS.toFixed(2)} s | ${rows.at(-1)!.wallS.toFixed(2)} s | ${(rows.at(-1)!.wallS / rows[0]!.wallS).toFixed(2)}x (per line ${(perM.at(-1)! / perM[0]!).toFixed(2)}x) | ` +
      `${lastFive.toFixed(1)} / ${firstFive.toFixed(1)} = ${(lastFive / firstFive).toFixed(2)}x | ${rows[0]!.modelS.toFixed(2)} / ${rows.at(-1)!.modelS.toFixed(2)} s | ` +
      `${dbMB.toFixed(1)} MB | ${((dbMB * 1e6) / lines).toFixed(1)} MB | ${Math.max(...rows.map((r) => r.rssMB)).toFixed(0)} MB |`,
  );
  removeDb(db);
  if (!args.keep) fs.rmSync(path.join(args.dir, `daily-${args.classes}`), { recursive: true, force: true });
}

async function main(): Promise<void> {
  const args = readArgs();
  if (!fs.existsSync(cliBin)) throw new Error(`${cliBin} is missing: run npm run build first`);
  fs.mkdirSync(args.dir, { recursive: true });
  const command = `node ${path.relative(process.cwd(), process.argv[1]!)} ${process.argv.slice(2).join(' ')}`.trim();
  console.log(`# ${command}`);
  console.log(`# ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), node ${process.version}, load average at start ${loadAverage()}`);
  if (args.mode === 'daily') await dailyMode(args);
  else await importMode(args);
}

await main();
