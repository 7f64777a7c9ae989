// Checks a file before anything is written (it exists, its format, its header or first record
// against the mapping) and reads its first record's time, so files are taken in time order. The
// model's zone is inferred from every record's offset as the file is read (zone.ts).

import fs from 'node:fs';
import { parse as parseCsv } from 'csv-parse/sync';
import { InputError } from '../core/errors.js';
import type { Format, ResolvedMapping } from './mapping.js';
import { csvRecordMapper, jsonRecordMapper, nginxRecordMapper } from './parse.js';
import { detectFormat, readHead } from './read.js';
import type { ChunkSetup } from './parse-chunk.js';
import { compileLogFormat } from './nginx.js';
import { makeTimeParser } from './time.js';


/** A file checked before anything is written, with what its chunks are parsed with. */
export interface PreparedFile {
  path: string;
  format: Format;
  /** The first record's time (epoch ms) when it could be read from the head: files are taken in this order. */
  firstMs: number | undefined;
  header?: string[];
  firstJson?: Record<string, unknown>;
}


export function chunkSetup(p: PreparedFile, mapping: ResolvedMapping, keepIds: boolean): ChunkSetup {
  return {
    path: p.path,
    format: p.format,
    mapping,
    keepIds,
    ...(p.header ? { header: p.header } : {}),
    ...(p.firstJson ? { firstJson: p.firstJson } : {}),
  };
}


export async function prepareFile(path: string, mapping: ResolvedMapping): Promise<PreparedFile> {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(path);
  } catch (err) {
    throw new InputError(`cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { file: path });
  }
  if (!stat.isFile()) throw new InputError('not a regular file', { file: path });
  const head = await readHead(path);
  const format = detectFormat(path, head, mapping);
  // Build the record mapper on the head alone: a mapping naming a missing column fails here.
  const text = head.toString('utf8');
  const lines = text.split('\n');
  if (head.length === 64 * 1024) lines.pop(); // last line may be cut
  const nonEmpty = lines.map((l) => l.replace(/\r$/, '')).filter((l) => l.trim() !== '');
  let timeText: unknown;
  let header: string[] | undefined;
  let firstJson: Record<string, unknown> | undefined;
  if (format === 'csv' || format === 'tsv') {
    if (nonEmpty.length === 0) throw new InputError('empty file: expected a header line', { file: path });
    header = parseHeader(nonEmpty[0]!, format);
    csvRecordMapper(mapping, header, path);
    const column = header.indexOf(mapping.fields.time ?? 'time');
    if (column >= 0 && nonEmpty[1] !== undefined) timeText = parseHeader(nonEmpty[1], format)[column];
  } else if (format === 'jsonl') {
    firstJson = firstJsonObject(nonEmpty);
    if (firstJson) jsonRecordMapper(mapping, firstJson, path);
    timeText = firstJson?.[mapping.fields.time ?? 'time'];
  } else {
    nginxRecordMapper(mapping, path);
    // The time variable the records are read with (as nginxRecordMapper picks it), for the file order.
    const compiled = compileLogFormat(mapping.logFormat!);
    const groups = nonEmpty[0] === undefined ? null : compiled.regex.exec(nonEmpty[0]);
    const timeVar = (mapping.fields.time ?? ['msec', 'time_iso8601', 'time_local'].find((v) => compiled.variables.includes(v)))?.replace(/^\$/, '');
    const i = timeVar === undefined ? -1 : compiled.variables.indexOf(timeVar);
    if (groups && i >= 0) timeText = groups[i + 1];
  }
  return {
    path,
    format,
    firstMs: firstTime(timeText, mapping),
    ...(header ? { header } : {}),
    ...(firstJson ? { firstJson } : {}),
  };
}

/** One line's fields by csv-parse (a header, or the first record for the zone). */
function parseHeader(line: string, format: 'csv' | 'tsv'): string[] {
  try {
    const rows = parseCsv(line, {
      delimiter: format === 'tsv' ? '\t' : ',',
      quote: format === 'tsv' ? false : '"',
      bom: true,
      relax_column_count: true,
    }) as string[][];
    return rows[0] ?? [];
  } catch {
    return line.replace(/^\uFEFF/, '').split(format === 'tsv' ? '\t' : ',');
  }
}

function firstJsonObject(lines: string[]): Record<string, unknown> | undefined {
  for (const l of lines.slice(0, 50)) {
    try {
      const v = JSON.parse(l) as unknown;
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      // the full read counts it as rejected
    }
  }
  return undefined;
}


function firstTime(timeText: unknown, mapping: ResolvedMapping): number | undefined {
  if (timeText === undefined) return undefined;
  const ms = makeTimeParser(mapping.timeFormat, mapping.timezone)(timeText);
  return Number.isFinite(ms) ? ms : undefined;
}
