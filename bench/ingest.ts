// Ingest throughput and peak memory on generated school days (1M and 10M lines), beside the
// time `sqlite3`'s `.import` takes for the same CSV on the same machine.
//
//   npm run build && node dist/bench/ingest.js [--lines 1000000,10000000] [--runs 3] [--dir /tmp/rehearse-bench-ingest] [--gz]
//
// Each ingest runs in its own process (`node dist/cli/bin.js ingest day.csv --db x.db --json`)
// under /usr/bin/time, so peak RSS is the whole process's. Prints a markdown table.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSchoolDay } from '../fixtures/write-day.js';
import { schoolDayPresets } from '../fixtures/school-day.js';
import { benchFlags } from './args.js';
import { median } from '../stats/quantile.js';

interface Args {
  lines: number[];
  runs: number;
  dir: string;
  gz: boolean;
}

function readArgs(): Args {
  const f = benchFlags({
    lines: { type: 'string', default: '1000000,10000000' },
    runs: { type: 'string', default: '3' },
    dir: { type: 'string', default: path.join(os.tmpdir(), 'rehearse-bench-ingest') },
    gz: { type: 'boolean', default: false },
  });
  return { lines: f.numbers('lines'), runs: f.number('runs'), dir: f.text('dir'), gz: f.flag('gz') };
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

async function main(): Promise<void> {
  const args = readArgs();
  if (!fs.existsSync(cliBin)) throw new Error(`${cliBin} is missing: run npm run build first`);
  fs.mkdirSync(args.dir, { recursive: true });
  const rows: string[] = [];
  const command = `node ${path.relative(process.cwd(), process.argv[1]!)} ${process.argv.slice(2).join(' ')}`.trim();
  console.log(`# ${command}`);
  console.log(`# ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), node ${process.version}, load average at start ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  for (const lines of args.lines) {
    const file = await dayFile(args.dir, lines, args.gz);
    const csv = file.replace(/\.gz$/, '');
    const mb = fs.statSync(csv).size / 1e6;
    const runs = lines >= 5_000_000 ? 1 : args.runs;
    const imports: Timed[] = [];
    const ingests: Array<Timed & { parseS: number; rebuildS: number }> = [];
    for (let run = 0; run < runs; run++) {
      const sqliteDb = path.join(args.dir, 'import.db');
      fs.rmSync(sqliteDb, { force: true });
      imports.push(timed('sqlite3', [sqliteDb, '.mode csv', `.import ${csv} requests`]));
      fs.rmSync(sqliteDb, { force: true });
      const db = path.join(args.dir, 'model.db');
      for (const suffix of ['', '-wal', '-shm']) fs.rmSync(db + suffix, { force: true });
      const t = timed(process.execPath, [cliBin, 'ingest', file, '--db', db, '--json']);
      const summary = JSON.parse(t.stdout) as { files: Array<{ elapsedMs: number; accepted: number }>; rebuildMs: number };
      if (summary.files[0]!.accepted !== lines) throw new Error(`expected ${lines} accepted, got ${summary.files[0]!.accepted}`);
      ingests.push({ ...t, parseS: summary.files[0]!.elapsedMs / 1000, rebuildS: summary.rebuildMs / 1000 });
      for (const suffix of ['', '-wal', '-shm']) fs.rmSync(db + suffix, { force: true });
      process.stderr.write(`  ${lines} run ${run + 1}: .import ${imports.at(-1)!.wallS}s, ingest ${t.wallS}s (cpu ${t.cpuS.toFixed(1)}s, rss ${t.rssMB.toFixed(0)} MB)\n`);
    }
    const importS = median(imports.map((i) => i.wallS));
    const importCpu = median(imports.map((i) => i.cpuS));
    const ingestS = median(ingests.map((i) => i.wallS));
    const ingestCpu = median(ingests.map((i) => i.cpuS));
    rows.push(
      `| ${lines.toLocaleString('en-US')} | ${path.basename(file)} ${mb.toFixed(0)} MB | ${runs} | ${importS.toFixed(1)} s (cpu ${importCpu.toFixed(1)}) | ` +
        `${ingestS.toFixed(1)} s (cpu ${ingestCpu.toFixed(1)}; read+store ${median(ingests.map((i) => i.parseS)).toFixed(1)}, model ${median(ingests.map((i) => i.rebuildS)).toFixed(1)}) | ` +
        `${Math.round(lines / ingestS).toLocaleString('en-US')} | ${(ingestS / importS).toFixed(2)}x (cpu ${(ingestCpu / importCpu).toFixed(2)}x) | ${Math.max(...ingests.map((i) => i.rssMB)).toFixed(0)} MB |`,
    );
  }
  console.log('| lines | input | runs | sqlite3 .import (median) | rehearse ingest (median) | lines/s | ingest / .import | peak RSS |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
}

await main();
