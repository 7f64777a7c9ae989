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
    const html = renderReportHtml(data);
    const file = options.out ?? `rehearse-run-${run.id}${vs ? `-vs-${vs.id}` : ''}.html`;
    try {
      fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
      fs.writeFileSync(file, html);
    } catch (err) {
      throw new RehearseError('REHEARSE_USAGE', `-o ${file}: cannot write the report (${(err as Error).message}).`, { cause: err });
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
