// The `rehearse report` job as a typed API: resolve the run(s), gather, render, write the file.

import fs from 'node:fs';
import path from 'node:path';
import { RehearseError } from '../core/errors.js';
import { rehearseVersion } from '../core/version.js';
import { resolveRun } from '../db/run-queries.js';
import { formatMs, formatPercent, terminalSafe } from './format.js';
import { renderReportHtml } from './html.js';
import { buildReportData, type ReportData } from './report-data.js';
import { openModelForReport, openResults, type ResultsLocation } from './results-db.js';

/** The first 16 bytes of every SQLite database file. */
const sqliteMagic = Buffer.from('SQLite format 3\0', 'latin1');
/** How much of an existing file is read to recognise an earlier report (its head, title included). */
const headBytes = 16 * 1024;

export interface WriteReportOptions extends ResultsLocation {
  run: string;
  vs?: string | undefined;
  /** Default: rehearse-run-<id>.html (or -vs-<id>) in the working directory. */
  out?: string | undefined;
  now: Date;
}

export interface WrittenReport {
  path: string;
  bytes: number;
  data: ReportData;
  /** One line of key numbers for the terminal. */
  summary: string;
}

export function writeReport(options: WriteReportOptions): WrittenReport {
  const results = openResults(options);
  try {
    const run = resolveRun(results.db, options.run, results.label);
    const vs = options.vs === undefined ? null : resolveRun(results.db, options.vs, results.label);
    const model = openModelForReport(options, results);
    let data: ReportData;
    try {
      data = buildReportData(results.db, run, vs, {
        model: model?.model ?? null,
        ...(model ? { modelLabel: model.label } : {}),
        generatedAt: options.now.toISOString(),
        rehearseVersion,
      });
    } finally {
      model?.close();
    }
    const file = options.out ?? `rehearse-run-${run.id}${vs ? `-vs-${vs.id}` : ''}.html`;
    checkReportDestination(file, [results.label, options.db]);
    const html = renderReportHtml(data);
    try {
      fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
      writeAtomically(file, html);
    } catch (err) {
      throw new RehearseError('REHEARSE_USAGE', `-o ${file}: cannot write the report (${(err as Error).message}); nothing was written.`, { cause: err });
    }
    const f = data.runs[0]!.figures;
    const summary =
      `Run ${terminalSafe(data.runs[0]!.title)}: ${f.verdict.toUpperCase()}, p95 ${f.latency.all ? formatMs(f.latency.all.p95) : '-'}, ` +
      `${f.withinTarget === null ? '-' : formatPercent(f.withinTarget)} within 2 s, ${f.lost} lost, ${f.duplicates} duplicates`;
    return { path: file, bytes: Buffer.byteLength(html), data, summary };
  } finally {
    results.close();
  }
}

/**
 * Refuses a report destination that would destroy something: a database the report reads, any
 * SQLite file, or any existing file that is not a report rehearse wrote earlier. A new file, or an
 * earlier report (regenerated), is fine. Throws a usage error (exit 2) naming -o.
 */
export function checkReportDestination(file: string, databases: ReadonlyArray<string | undefined>): void {
  const refuse = (why: string): never => {
    throw new RehearseError(
      'REHEARSE_USAGE',
      `-o ${file}: ${why}; nothing was written. Give -o a new file name (e.g. report.html), or move the existing file away first.`,
    );
  };
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (err) {
    // Nothing there to destroy; whether it can be written is for the write to say.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return;
    throw new RehearseError('REHEARSE_USAGE', `-o ${file}: cannot check the file (${(err as Error).message}).`, { cause: err });
  }
  const real = fs.realpathSync(file);
  for (const database of databases) {
    if (database !== undefined && fs.existsSync(database) && fs.realpathSync(database) === real) {
      refuse('is the database the runs are read from (the report is HTML and would replace it)');
    }
  }
  if (stat.isDirectory()) refuse('is a directory; give the report file name');
  if (!stat.isFile()) refuse('is not a regular file');
  const head = readHead(file);
  if (head.subarray(0, sqliteMagic.length).equals(sqliteMagic)) refuse('is a SQLite database (the report is HTML and would replace it)');
  if (!isEarlierReport(head.toString('utf8'))) refuse('already exists and is not a report rehearse wrote');
}

/** An HTML report rehearse rendered (report/html.ts): a doctype, then its title in the head. */
function isEarlierReport(head: string): boolean {
  return head.startsWith('<!doctype html>') && head.includes('<title>rehearse: run ');
}

function readHead(file: string): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(headBytes);
    const n = fs.readSync(fd, buf, 0, headBytes, 0);
    return buf.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Writes to a temporary file beside `file`, then renames it over `file`: a reader (or a crash)
 * sees the old file or the whole new one, never half a report. The temporary file goes on failure.
 */
function writeAtomically(file: string, text: string): void {
  const temp = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  try {
    fs.writeFileSync(temp, text, { flag: 'wx' });
    fs.renameSync(temp, file);
  } catch (err) {
    fs.rmSync(temp, { force: true });
    throw err;
  }
}
