// `rehearse ingest` as a typed API: streams each file through its format's parser into
// `requests` (one transaction per file, so a failed file leaves nothing), then rebuilds the
// derived model over everything ingested so far. Also the dry run.

import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { InputError, RehearseError } from '../core/errors.js';
import type { Db } from '../db/open.js';
import { openDatabase } from '../db/open.js';
import { rebuildModel } from './build.js';
import { CsvRecordReader } from './csv.js';
import { IdKind, IdStore, clientFamily } from './ids.js';
import { resolveMapping, readMappingFile, type Format, type ResolvedMapping } from './mapping.js';
import { csvRecordMapper, jsonRecordMapper, nginxRecordMapper, opCode, type LineResult, type ParsedRequest } from './parse.js';
import { detectFormat, forEachLine, openSource, readHead } from './read.js';
import { compileLogFormat } from './nginx.js';

export interface IngestProgress {
  file: string;
  /** Bytes read from disk (compressed for .gz) and the file's size on disk. */
  bytes: number;
  totalBytes: number;
  lines: number;
  elapsedMs: number;
}

export interface IngestOptions {
  files: string[];
  /** A database path, or an open handle (left open). */
  db: string | Db;
  /** A mapping file path, or a mapping object (validated the same way). */
  mapping?: string | unknown;
  /** Re-ingest files whose content was ingested before (replacing their requests). */
  force?: boolean;
  /** Store ids as they are instead of keyed pseudonyms. */
  keepIds?: boolean;
  /** Rejected lines allowed per file: a count, or a percentage of the file's lines ("1%", the default). */
  maxErrors?: number | string;
  /** `proctor=<regex>` / `learner=<regex>`, matched against raw actor ids. */
  roleOverrides?: Array<{ role: 'proctor' | 'learner'; pattern: RegExp }>;
  onProgress?: (p: IngestProgress) => void;
  /** How often onProgress is called, at most. */
  progressIntervalMs?: number;
}

export interface FileSummary {
  path: string;
  format: Format;
  gzip: boolean;
  sha256: string;
  /** 'ingested', or 'skipped' when the same content was ingested before. */
  status: 'ingested' | 'skipped';
  bytes: number;
  lines: number;
  accepted: number;
  rejected: number;
  /** Rejected lines by reason. */
  reasons: Record<string, number>;
  /** The first rejected lines, as `file:line: reason`. */
  examples: string[];
  elapsedMs: number;
}

export interface IngestSummary {
  files: FileSummary[];
  /** Requests stored over all files ever ingested into this database. */
  requests: number;
  rebuildMs: number;
  elapsedMs: number;
}

const maxExamples = 5;
const staleKey = 'model.stale';
const timezoneKey = 'model.timezone';

/** Parses `--max-errors`: `N` lines or `P%` of a file's lines. */
export function parseMaxErrors(value: number | string | undefined): { count?: number; percent?: number } {
  if (value === undefined) return { percent: 1 };
  const text = String(value).trim();
  const m = /^(\d+(?:\.\d+)?)(%?)$/.exec(text);
  if (!m) throw new RehearseError('REHEARSE_USAGE', `--max-errors: "${text}" is not a number of lines or a percentage (e.g. 100 or 1%)`);
  return m[2] ? { percent: Number(m[1]) } : { count: Number(m[1]) };
}

function toMapping(mapping: unknown): ResolvedMapping {
  if (typeof mapping === 'string') return readMappingFile(mapping);
  return resolveMapping(mapping ?? {}, 'mapping');
}

/** Everything that can be checked before a row is written: files exist, formats, headers/keys against the mapping. */
/**
 * The recorded day's zone when the mapping names none: a whole-hour offset on the first record's
 * time (`+02:00`, CLF `+0200`) becomes the IANA fixed zone `Etc/GMT-2`, so clock-time windows in
 * the plan mean local time. Anything else stays unknown.
 */
export function zoneFromTimeText(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  if (/\d(?:\.\d+)?Z$/i.test(value)) return 'UTC';
  const m = /\d ?([+-])(\d{2}):?(\d{2})\]?$/.exec(value);
  if (!m || m[3] !== '00') return undefined;
  const hours = Number(m[2]);
  if (hours === 0) return 'UTC';
  return `Etc/GMT${m[1] === '+' ? '-' : '+'}${hours}`;
}

async function prepareFile(path: string, mapping: ResolvedMapping): Promise<{ format: Format; zone: string | undefined }> {
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
  if (format === 'csv' || format === 'tsv') {
    if (nonEmpty.length === 0) throw new InputError('empty file: expected a header line', { file: path });
    const header = parseHeader(nonEmpty[0]!, format);
    csvRecordMapper(mapping, header, path);
    const column = header.indexOf(mapping.fields.time ?? 'time');
    if (column >= 0 && nonEmpty[1] !== undefined) timeText = parseHeader(nonEmpty[1], format)[column];
  } else if (format === 'jsonl') {
    const first = firstJsonObject(nonEmpty);
    if (first) jsonRecordMapper(mapping, first, path);
    timeText = first?.[mapping.fields.time ?? 'time'];
  } else {
    nginxRecordMapper(mapping, path);
    // $msec carries no zone; $time_local beside it does.
    const compiled = compileLogFormat(mapping.logFormat!);
    const groups = nonEmpty[0] === undefined ? null : compiled.regex.exec(nonEmpty[0]);
    for (const v of ['time_local', 'time_iso8601']) {
      const i = compiled.variables.indexOf(v);
      if (groups && i >= 0) timeText = groups[i + 1];
    }
  }
  return { format, zone: mapping.timezoneGiven ? mapping.timezone : zoneFromTimeText(timeText) };
}

function parseHeader(line: string, format: 'csv' | 'tsv'): string[] {
  let header: string[] = line.split(format === 'tsv' ? '\t' : ',');
  const reader = new CsvRecordReader(format === 'tsv' ? '\t' : ',', format !== 'tsv', (record) => {
    if (Array.isArray(record)) header = record;
  });
  reader.line(line.charCodeAt(0) === 0xfeff ? line.slice(1) : line, 1);
  return header;
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

/**
 * Feeds every line/record of a file to onRecord (accepted, blank or rejected), numbered from 1.
 * Returns the number of lines read.
 */
async function readRecords(
  stream: Readable,
  path: string,
  format: Format,
  mapping: ResolvedMapping,
  onResult: (result: LineResult, lineNo: number) => void,
): Promise<number> {
  if (format === 'jsonl' || format === 'nginx') {
    let mapLine: ((line: string) => LineResult) | undefined = format === 'nginx' ? nginxRecordMapper(mapping, path) : undefined;
    return forEachLine(stream, (line, lineNo) => {
      if (!mapLine) {
        // JSON lines: the first object read names the keys.
        let first: unknown;
        try {
          first = JSON.parse(line);
        } catch {
          first = undefined;
        }
        if (typeof first !== 'object' || first === null || Array.isArray(first)) {
          onResult(line.trim() === '' ? null : { reject: 'not valid JSON' }, lineNo);
          return;
        }
        mapLine = jsonRecordMapper(mapping, first as Record<string, unknown>, path);
      }
      onResult(mapLine(line), lineNo);
    });
  }
  let mapFields: ((fields: string[]) => LineResult) | undefined;
  const reader = new CsvRecordReader(format === 'tsv' ? '\t' : ',', format !== 'tsv', (record, lineNo) => {
    if (record === null) return;
    if (!Array.isArray(record)) {
      onResult(record, lineNo);
      return;
    }
    if (!mapFields) {
      if (lineNo === 1 && record[0]?.charCodeAt(0) === 0xfeff) record[0] = record[0].slice(1); // BOM
      mapFields = csvRecordMapper(mapping, record, path);
      return;
    }
    onResult(mapFields(record), lineNo);
  });
  const lines = await forEachLine(stream, (line, lineNo) => reader.line(line, lineNo));
  reader.end();
  return lines;
}

const requestColumns = 11;
const rowsPerInsert = 128;

/** The request inserter: interns ids and writes compact rows, many per statement. */
function makeRequestWriter(db: Db, ids: IdStore) {
  const sql = (rows: number): string =>
    'INSERT INTO requests (source_id, actor, start_ms, duration_ms, op, status, messages, topics, session, bytes, client) VALUES ' +
    Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ');
  const many = db.prepare(sql(rowsPerInsert));
  const one = db.prepare(sql(1));
  const batch: unknown[] = [];
  let lastTopics: string[] | undefined;
  let lastTopicsText = '';
  const write = (sourceId: number, r: ParsedRequest): void => {
    let topicsText: string;
    if (lastTopics && r.topics.length === lastTopics.length && r.topics.every((t, i) => t === lastTopics![i])) topicsText = lastTopicsText;
    else {
      topicsText = r.topics.map((t) => ids.id(IdKind.topic, t)).join(',');
      lastTopics = r.topics;
      lastTopicsText = topicsText;
    }
    const client = r.userAgent === undefined ? null : ids.id(IdKind.client, ids.keepIds ? r.userAgent : clientFamily(r.userAgent));
    batch.push(
      sourceId,
      ids.id(IdKind.actor, r.actor),
      r.startMs,
      r.durationMs,
      opCode[r.op],
      r.status,
      r.messages,
      topicsText,
      r.session === undefined ? null : ids.id(IdKind.session, r.session),
      r.bytes ?? null,
      client,
    );
    if (batch.length === rowsPerInsert * requestColumns) {
      many.run(batch);
      batch.length = 0;
    }
  };
  const flush = (): void => {
    for (let i = 0; i < batch.length; i += requestColumns) one.run(batch.slice(i, i + requestColumns));
    batch.length = 0;
  };
  return { write, flush };
}

async function ingestOne(
  db: Db,
  path: string,
  format: Format,
  zone: string | undefined,
  mapping: ResolvedMapping,
  ids: IdStore,
  options: IngestOptions,
  limit: { count?: number; percent?: number },
): Promise<FileSummary> {
  const started = Date.now();
  const source = openSource(path);
  const reasons: Record<string, number> = {};
  const examples: string[] = [];
  let accepted = 0;
  let rejected = 0;
  let lastLine = 0;
  const requestWriter = makeRequestWriter(db, ids);
  let lastProgress = 0;
  const progressEvery = options.progressIntervalMs ?? 250;

  db.exec('BEGIN IMMEDIATE');
  let committed = false;
  try {
    const pending = `pending:${process.pid}:${Date.now()}:${Math.random()}`;
    const sourceId = Number(
      db
        .prepare(`INSERT INTO sources (path, sha256, format, bytes, lines, accepted, rejected, ingested_at) VALUES (?, ?, ?, 0, 0, 0, 0, ?)`)
        .run(path, pending, format, new Date().toISOString()).lastInsertRowid,
    );
    const lines = await readRecords(source.stream, path, format, mapping, (result, lineNo) => {
      lastLine = lineNo;
      if (result === null) return;
      if ('reject' in result) {
        rejected++;
        reasons[result.reject] = (reasons[result.reject] ?? 0) + 1;
        if (examples.length < maxExamples) examples.push(`${path}:${lineNo}: ${result.reject}`);
        if (limit.count !== undefined && rejected > limit.count) {
          throw tooManyErrors(path, rejected, lineNo, reasons, examples, `--max-errors ${limit.count}`);
        }
        return;
      }
      accepted++;
      requestWriter.write(sourceId, result);
      if (options.onProgress && (accepted & 1023) === 0) {
        const now = Date.now();
        if (now - lastProgress >= progressEvery) {
          lastProgress = now;
          options.onProgress({ file: path, bytes: source.diskBytes(), totalBytes: source.diskSize, lines: lineNo, elapsedMs: now - started });
        }
      }
    });
    requestWriter.flush();
    const totalLines = Math.max(lines, lastLine);
    if (limit.percent !== undefined && rejected > 0 && rejected > (limit.percent / 100) * totalLines) {
      throw tooManyErrors(path, rejected, totalLines, reasons, examples, `--max-errors ${limit.percent}%`);
    }
    if (accepted === 0) {
      throw new InputError(`no usable records (${totalLines} lines, ${rejected} rejected); nothing was ingested`, { file: path });
    }
    const sha256 = source.sha256();
    const existing = db.prepare('SELECT id FROM sources WHERE sha256 = ?').pluck().get(sha256) as number | undefined;
    const summary: FileSummary = {
      path,
      format,
      gzip: source.gzip,
      sha256,
      status: 'ingested',
      bytes: source.contentBytes(),
      lines: totalLines,
      accepted,
      rejected,
      reasons,
      examples,
      elapsedMs: 0,
    };
    if (existing !== undefined && !options.force) {
      db.exec('ROLLBACK');
      committed = true; // nothing to undo
      ids.reload();
      return { ...summary, status: 'skipped', elapsedMs: Date.now() - started };
    }
    if (existing !== undefined) {
      db.prepare('DELETE FROM requests WHERE source_id = ?').run(existing);
      db.prepare('DELETE FROM sources WHERE id = ?').run(existing);
    }
    db.prepare('UPDATE sources SET sha256 = ?, bytes = ?, lines = ?, accepted = ?, rejected = ?, rejected_reasons = ? WHERE id = ?').run(
      sha256,
      source.contentBytes(),
      totalLines,
      accepted,
      rejected,
      JSON.stringify(reasons),
      sourceId,
    );
    db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(staleKey, '1');
    if (zone !== undefined) db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(timezoneKey, zone);
    db.exec('COMMIT');
    committed = true;
    return { ...summary, elapsedMs: Date.now() - started };
  } finally {
    if (!committed) {
      source.stream.destroy();
      if (db.inTransaction) db.exec('ROLLBACK');
      ids.reload();
    }
  }
}

function tooManyErrors(
  path: string,
  rejected: number,
  lines: number,
  reasons: Record<string, number>,
  examples: string[],
  limitText: string,
): RehearseError {
  const byReason = Object.entries(reasons)
    .sort((a, b) => b[1] - a[1])
    .map(([r, n]) => `${r}: ${n}`)
    .join(', ');
  return new RehearseError(
    'REHEARSE_TOO_MANY_ERRORS',
    `${path}: ${rejected} of ${lines} lines rejected, more than ${limitText}; nothing from this file was ingested.\n` +
      `  reasons: ${byReason}\n  first: ${examples.join('\n         ')}\n` +
      '  Check the mapping (rehearse ingest --dry-run shows how lines parse) or raise --max-errors.',
  );
}

/** Rebuilds the derived model when an ingest left it stale (one transaction). */
export function rebuildIfStale(db: Db): { rebuilt: boolean; requests: number; ms: number } {
  const started = Date.now();
  const stale = db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(staleKey) === '1';
  const hasOverview = db.prepare("SELECT 1 FROM meta WHERE key = 'model.overview'").get() !== undefined;
  if (!stale && hasOverview) return { rebuilt: false, requests: 0, ms: 0 };
  const timezone = (db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(timezoneKey) as string | undefined) ?? 'UTC';
  let requests = 0;
  // Every derived row is written by the rebuild itself, consistent by construction: checking
  // each timeline row's foreign keys would cost a third of the rebuild.
  const foreignKeys = db.pragma('foreign_keys', { simple: true }) as number;
  db.pragma('foreign_keys = OFF');
  try {
    db.transaction(() => {
      requests = rebuildModel(db, { timezone }).requests;
      db.prepare('DELETE FROM meta WHERE key = ?').run(staleKey);
    })();
  } finally {
    if (foreignKeys) db.pragma('foreign_keys = ON');
  }
  return { rebuilt: true, requests, ms: Date.now() - started };
}

/** Ingests files into a model database and rebuilds the model over everything it holds. */
export async function ingestFiles(options: IngestOptions): Promise<IngestSummary> {
  const started = Date.now();
  if (options.files.length === 0) throw new RehearseError('REHEARSE_USAGE', 'no files to ingest: name one or more log files');
  const mapping = toMapping(options.mapping);
  const limit = parseMaxErrors(options.maxErrors);
  // Check every file before writing anything: a bad mapping or an unknown format changes nothing.
  const prepared: Array<{ path: string; format: Format; zone: string | undefined }> = [];
  for (const path of options.files) prepared.push({ path, ...(await prepareFile(path, mapping)) });

  const ownDb = typeof options.db === 'string';
  const db = typeof options.db === 'string' ? openDatabase(options.db) : options.db;
  const files: FileSummary[] = [];
  let rebuild = { requests: 0, ms: 0 };
  try {
    let ids: IdStore;
    db.exec('BEGIN IMMEDIATE');
    try {
      ids = new IdStore(db, { keepIds: options.keepIds ?? false, create: true });
      db.exec('COMMIT');
    } catch (err) {
      db.exec('ROLLBACK');
      throw err;
    }
    ids.setRoleOverrides(options.roleOverrides ?? []);
    try {
      for (const { path, format, zone } of prepared) {
        files.push(await ingestOne(db, path, format, zone, mapping, ids, options, limit));
      }
    } finally {
      // Files committed before a failure still get their model.
      const r = rebuildIfStale(db);
      rebuild = { requests: r.requests || (db.prepare('SELECT count(*) FROM requests').pluck().get() as number), ms: r.ms };
    }
  } finally {
    if (ownDb) db.close();
  }
  return { files, requests: rebuild.requests, rebuildMs: rebuild.ms, elapsedMs: Date.now() - started };
}

export interface DryRunLine {
  line: number;
  record?: ParsedRequest;
  reject?: string;
}

export interface DryRunResult {
  path: string;
  format: Format;
  timezone: string;
  lines: DryRunLine[];
}

/** Parses the first `lines` records of each file with the mapping and writes nothing. */
export async function dryRun(options: { files: string[]; mapping?: string | unknown; lines?: number }): Promise<DryRunResult[]> {
  const mapping = toMapping(options.mapping);
  const want = options.lines ?? 20;
  const out: DryRunResult[] = [];
  for (const path of options.files) {
    const { format } = await prepareFile(path, mapping);
    const source = openSource(path);
    const lines: DryRunLine[] = [];
    const done = new Error('dry run has enough lines');
    try {
      await readRecords(source.stream, path, format, mapping, (result, lineNo) => {
        if (result === null) return;
        lines.push('reject' in result ? { line: lineNo, reject: result.reject } : { line: lineNo, record: result });
        if (lines.length >= want) throw done;
      });
    } catch (err) {
      if (err !== done) throw err;
    } finally {
      source.stream.destroy();
    }
    out.push({ path, format, timezone: mapping.timezone, lines });
  }
  return out;
}

/** Heap of the ingest worker: live data is a few tens of MB even at 10M lines. */
export const workerHeapMb = 160;

/**
 * ingestFiles in a worker thread with a bounded heap (what the CLI uses). Same options and
 * result; `db` must be a path. Errors come back as RehearseError with their code and message.
 */
export async function ingestFilesInWorker(options: IngestOptions): Promise<IngestSummary> {
  if (typeof options.db !== 'string') throw new RehearseError('REHEARSE_INTERNAL', 'ingestFilesInWorker needs a database path');
  const { Worker } = await import('node:worker_threads');
  // Under vitest/tsx the sources are .ts and the worker needs tsx's loader; from dist it is plain JS.
  const fromSource = import.meta.url.endsWith('.ts');
  const url = new URL(fromSource ? './worker.ts' : './worker.js', import.meta.url);
  const { onProgress, ...rest } = options;
  const settings = { workerData: { ...rest, progress: onProgress !== undefined }, resourceLimits: { maxOldGenerationSizeMb: workerHeapMb } };
  const worker = fromSource
    ? // `execArgv: ['--import', 'tsx']` does not reach a worker's entry module here: register tsx first.
      new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); })`, { ...settings, eval: true })
    : new Worker(url, settings);
  return new Promise<IngestSummary>((resolve, reject) => {
    let settled = false;
    worker.on('message', (m: { type: string; progress?: IngestProgress; summary?: IngestSummary; error?: { code: string; message: string; exitCode: number } }) => {
      if (m.type === 'progress' && m.progress) onProgress?.(m.progress);
      else if (m.type === 'done') {
        settled = true;
        resolve(m.summary!);
      } else if (m.type === 'error') {
        settled = true;
        const e = m.error!;
        reject(new RehearseError(e.code as RehearseError['code'], e.message, { exitCode: e.exitCode }));
      }
    });
    worker.on('error', (err) => {
      if (settled) return;
      settled = true;
      const oom = (err as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY';
      reject(
        new RehearseError(
          'REHEARSE_INTERNAL',
          oom ? `ingest ran out of memory (worker heap ${workerHeapMb} MB); nothing of the file being read was stored. Please report it.` : `ingest worker failed: ${err.message}`,
          { cause: err },
        ),
      );
    });
    worker.on('exit', (code) => {
      if (!settled) reject(new RehearseError('REHEARSE_INTERNAL', `ingest worker exited with code ${code} before finishing`));
    });
  });
}
