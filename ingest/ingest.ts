// `rehearse ingest` as a typed API: each file is cut into chunks at record boundaries, parsed
// in worker threads (one per core; a .gz by one thread that also decompresses) and written, in
// file order, into `requests` by this thread (one transaction per file, so a failed file leaves
// nothing); then the derived model is rebuilt over everything ingested so far. Also the dry run.

import fs from 'node:fs';
import os from 'node:os';
import type { Worker } from 'node:worker_threads';
import { parse as parseCsv } from 'csv-parse/sync';
import { InputError, RehearseError } from '../core/errors.js';
import { loadPseudonymKey } from '../core/pseudonym-key.js';
import type { Db } from '../db/open.js';
import { busyError, isBusy, openDatabase } from '../db/open.js';
import { modelStaleKey as staleKey } from '../db/model-store.js';
import { rebuildModel } from './build.js';
import { IdKind, IdStore } from './ids.js';
import { resolveMapping, readMappingFile, type Format, type ResolvedMapping } from './mapping.js';
import { csvRecordMapper, jsonRecordMapper, nginxRecordMapper, type ParsedRequest } from './parse.js';
import { detectFormat, isGzipFile, openSource, readHead } from './read.js';
import { recordChunks } from './chunks.js';
import { MappingChecks } from './mapping-checks.js';
import { makeChunkParser, parseChunkToBatch, type ChunkSetup, type RequestBatch } from './parse-chunk.js';
import type { ParseWorkerData, ParseWorkerMessage } from './parse-worker.js';
import { startWorker } from './threads.js';
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
  /**
   * The pseudonym key file (created with mode 0600 when missing). Default: REHEARSE_PSEUDONYM_KEY
   * if set, else ~/.config/rehearse/pseudonym.key (core/pseudonym-key.ts). Never stored in the database.
   */
  keyFile?: string;
  /** Rejected lines allowed per file: a count, or a percentage of the file's lines ("1%", the default). */
  maxErrors?: number | string;
  /** `proctor=<regex>` / `learner=<regex>`, matched against raw actor ids. */
  roleOverrides?: Array<{ role: 'proctor' | 'learner'; pattern: RegExp }>;
  onProgress?: (p: IngestProgress) => void;
  /** How often onProgress is called, at most. */
  progressIntervalMs?: number;
  /** Parse threads (default: one per core, at most 2); 0 parses in the calling thread. */
  parseThreads?: number;
  /** Bytes per parse chunk (default 2 MiB); a plain file of two chunks or more is parsed in threads. */
  chunkBytes?: number;
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
  /** Very likely mapping mistakes (ingest/mapping-checks.ts), each naming the mapping field and the fix. */
  warnings?: string[];
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

/** A file checked before anything is written, with what its chunks are parsed with. */
interface PreparedFile {
  path: string;
  format: Format;
  zone: string | undefined;
  header?: string[];
  firstJson?: Record<string, unknown>;
}

function chunkSetup(p: PreparedFile, mapping: ResolvedMapping, keepIds: boolean): ChunkSetup {
  return {
    path: p.path,
    format: p.format,
    mapping,
    keepIds,
    ...(p.header ? { header: p.header } : {}),
    ...(p.firstJson ? { firstJson: p.firstJson } : {}),
  };
}

async function prepareFile(path: string, mapping: ResolvedMapping): Promise<PreparedFile> {
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
    // $msec carries no zone; $time_local beside it does.
    const compiled = compileLogFormat(mapping.logFormat!);
    const groups = nonEmpty[0] === undefined ? null : compiled.regex.exec(nonEmpty[0]);
    for (const v of ['time_local', 'time_iso8601']) {
      const i = compiled.variables.indexOf(v);
      if (groups && i >= 0) timeText = groups[i + 1];
    }
  }
  return {
    path,
    format,
    zone: mapping.timezoneGiven ? mapping.timezone : zoneFromTimeText(timeText),
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

/** Chunk size for parsing: big enough to amortise a message, small enough to keep memory flat. */
export const defaultChunkBytes = 2 * 1024 * 1024;
/** A .gz smaller than this is parsed in the writing thread: a worker costs more than it saves. */
const streamWorkerMinBytes = 1024 * 1024;
/** Old-generation heap of each parse thread: it holds a few chunks and their batches. */
const parseWorkerHeapMb = 32;
const parseWorkerLimits = { maxOldGenerationSizeMb: parseWorkerHeapMb, maxYoungGenerationSizeMb: 8 };

function defaultParseThreads(): number {
  return Math.max(1, Math.min(2, os.availableParallelism()));
}

/** Batches of one file in line order, and the file's hash once they are all read. */
interface BatchSource {
  batches: AsyncIterable<RequestBatch>;
  diskBytes(): number;
  diskSize: number;
  gzip: boolean;
  /** Valid once every batch was read. */
  content(): { sha256: string; bytes: number };
  close(): Promise<void>;
}

/** Parses in the writing thread (small files, dry runs, parseThreads 0). */
function inThreadBatches(setup: ChunkSetup, chunkBytes: number): BatchSource {
  const source = openSource(setup.path);
  const parseChunk = makeChunkParser(setup);
  async function* batches(): AsyncGenerator<RequestBatch> {
    let index = 0;
    for await (const bytes of recordChunks(source.stream, setup.format === 'csv', chunkBytes)) {
      yield parseChunkToBatch(parseChunk, setup, bytes, index++);
    }
  }
  return {
    batches: batches(),
    diskBytes: source.diskBytes,
    diskSize: source.diskSize,
    gzip: source.gzip,
    content: () => ({ sha256: source.sha256(), bytes: source.contentBytes() }),
    close: async () => void source.stream.destroy(),
  };
}

/** Lets an async generator wait for worker messages. */
class Signal {
  private wake: (() => void) | undefined;
  failure: Error | undefined;
  notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
  fail(err: Error): void {
    this.failure ??= err;
    this.notify();
  }
  async wait(): Promise<void> {
    if (this.failure) throw this.failure;
    await new Promise<void>((resolve) => (this.wake = resolve));
    if (this.failure) throw this.failure;
  }
}

function workerFailure(m: { code: string; message: string }): Error {
  return new RehearseError(m.code as RehearseError['code'], m.message);
}

function watchWorker(worker: Worker, signal: Signal, onMessage: (m: ParseWorkerMessage) => void): void {
  worker.on('message', (m: ParseWorkerMessage) => {
    if (m.type === 'error') signal.fail(workerFailure(m));
    else onMessage(m);
    signal.notify();
  });
  worker.on('error', (err) => signal.fail(new RehearseError('REHEARSE_INTERNAL', `ingest parse thread failed: ${err.message}`, { cause: err })));
  worker.on('exit', (code) => {
    if (code !== 0) signal.fail(new RehearseError('REHEARSE_INTERNAL', `ingest parse thread exited with code ${code}`));
  });
}

/**
 * A plain file: this thread reads it, cuts it at record boundaries and hashes it; the parse
 * threads take chunks round robin; batches come back in any order and are yielded in file order.
 */
function chunkWorkerBatches(setup: ChunkSetup, chunkBytes: number, threads: number): BatchSource {
  const source = openSource(setup.path);
  const data: ParseWorkerData = { setup, mode: 'chunks', chunkBytes, window: 0 };
  const workers = Array.from({ length: threads }, () => startWorker('parse-worker', data, parseWorkerLimits));
  const signal = new Signal();
  const done = new Map<number, RequestBatch>();
  for (const w of workers) watchWorker(w, signal, (m) => m.type === 'batch' && done.set(m.batch.index, m.batch));
  // Two chunks per thread in flight: one parsing, one queued, so no thread waits on this one.
  const ahead = threads * 2;
  async function* batches(): AsyncGenerator<RequestBatch> {
    let sent = 0;
    let next = 0;
    const take = async (): Promise<RequestBatch> => {
      while (!done.has(next)) await signal.wait();
      const b = done.get(next)!;
      done.delete(next++);
      return b;
    };
    for await (const bytes of recordChunks(source.stream, setup.format === 'csv', chunkBytes)) {
      if (signal.failure) throw signal.failure;
      while (sent - next >= ahead) yield await take();
      workers[sent % threads]!.postMessage({ index: sent++, bytes }, [bytes.buffer as ArrayBuffer]);
    }
    while (next < sent) yield await take();
  }
  return {
    batches: batches(),
    diskBytes: source.diskBytes,
    diskSize: source.diskSize,
    gzip: false,
    content: () => ({ sha256: source.sha256(), bytes: source.contentBytes() }),
    close: async () => {
      source.stream.destroy();
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

/** A .gz: one parse thread decompresses, hashes, cuts and parses while this one writes. */
function streamWorkerBatches(setup: ChunkSetup, chunkBytes: number, diskSize: number): BatchSource {
  const window = 3;
  const worker = startWorker('parse-worker', { setup, mode: 'stream', chunkBytes, window } satisfies ParseWorkerData, parseWorkerLimits);
  const signal = new Signal();
  const queue: RequestBatch[] = [];
  let end: { sha256: string; contentBytes: number } | undefined;
  let diskBytes = 0;
  watchWorker(worker, signal, (m) => {
    if (m.type === 'batch') {
      queue.push(m.batch);
      diskBytes = m.diskBytes;
    } else if (m.type === 'end') {
      end = m;
      diskBytes = m.diskBytes;
    }
  });
  async function* batches(): AsyncGenerator<RequestBatch> {
    for (;;) {
      while (queue.length === 0 && !end) await signal.wait();
      if (signal.failure) throw signal.failure;
      const b = queue.shift();
      if (!b) return;
      yield b;
      worker.postMessage('ack');
    }
  }
  return {
    batches: batches(),
    diskBytes: () => diskBytes,
    diskSize,
    gzip: true,
    content: () => ({ sha256: end!.sha256, bytes: end!.contentBytes }),
    close: async () => void (await worker.terminate()),
  };
}

function openBatches(setup: ChunkSetup, options: IngestOptions): BatchSource {
  const chunkBytes = options.chunkBytes ?? defaultChunkBytes;
  const threads = options.parseThreads ?? defaultParseThreads();
  const diskSize = fs.statSync(setup.path).size;
  if (threads > 0 && isGzipFile(setup.path)) {
    return diskSize >= Math.min(streamWorkerMinBytes, chunkBytes) ? streamWorkerBatches(setup, chunkBytes, diskSize) : inThreadBatches(setup, chunkBytes);
  }
  return threads > 0 && diskSize >= 2 * chunkBytes ? chunkWorkerBatches(setup, chunkBytes, threads) : inThreadBatches(setup, chunkBytes);
}

const requestColumns = 11;
const rowsPerInsert = 128;

/** The request inserter: maps a batch's strings to ids rows and writes its rows, many per statement. */
function makeRequestWriter(db: Db, ids: IdStore) {
  const sql = (rows: number): string =>
    'INSERT INTO requests (source_id, actor, start_ms, duration_ms, op, status, messages, topics, session, bytes, client) VALUES ' +
    Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ');
  const many = db.prepare(sql(rowsPerInsert));
  const one = db.prepare(sql(1));
  const row: unknown[] = [];
  const write = (sourceId: number, b: RequestBatch): void => {
    const actors = b.actors.map((a) => ids.id(IdKind.actor, a));
    const topics = b.topicLists.map((t) => (t === '' ? '' : t.split('\u0000').map((x) => ids.id(IdKind.topic, x)).join(',')));
    const sessions = b.sessions.map((x) => ids.id(IdKind.session, x));
    const clients = b.clients.map((x) => ids.id(IdKind.client, x));
    for (let i = 0; i < b.count; i++) {
      const session = b.session[i]!;
      const client = b.client[i]!;
      const bytes = b.bytes[i]!;
      row.push(
        sourceId,
        actors[b.actor[i]!],
        b.startMs[i],
        b.durationMs[i],
        b.op[i],
        b.status[i],
        b.messages[i],
        topics[b.topics[i]!],
        session < 0 ? null : sessions[session],
        Number.isNaN(bytes) ? null : bytes,
        client < 0 ? null : clients[client],
      );
      if (row.length === rowsPerInsert * requestColumns) {
        many.run(row);
        row.length = 0;
      }
    }
  };
  const flush = (): void => {
    for (let i = 0; i < row.length; i += requestColumns) one.run(row.slice(i, i + requestColumns));
    row.length = 0;
  };
  return { write, flush };
}

async function ingestOne(
  db: Db,
  prepared: PreparedFile,
  mapping: ResolvedMapping,
  ids: IdStore,
  options: IngestOptions,
  limit: { count?: number; percent?: number },
): Promise<FileSummary> {
  const { path, format, zone } = prepared;
  const started = Date.now();
  const reasons: Record<string, number> = {};
  const examples: string[] = [];
  let accepted = 0;
  let rejected = 0;
  const requestWriter = makeRequestWriter(db, ids);
  const checks = new MappingChecks(mapping);
  let lastProgress = 0;
  const progressEvery = options.progressIntervalMs ?? 250;
  const source = openBatches(chunkSetup(prepared, mapping, ids.keepIds), options);

  db.exec('BEGIN IMMEDIATE');
  let committed = false;
  try {
    const pending = `pending:${process.pid}:${Date.now()}:${Math.random()}`;
    const sourceId = Number(
      db
        .prepare(`INSERT INTO sources (path, sha256, format, bytes, lines, accepted, rejected, ingested_at) VALUES (?, ?, ?, 0, 0, 0, 0, ?)`)
        .run(path, pending, format, new Date().toISOString()).lastInsertRowid,
    );
    // Chunks number their own lines; the lines of the chunks before make them the file's.
    let lines = 0;
    for await (const batch of source.batches) {
      for (let i = 0; i < batch.rejectLines.length; i++) {
        const lineNo = lines + batch.rejectLines[i]!;
        const reason = batch.rejectReasons[i]!;
        rejected++;
        reasons[reason] = (reasons[reason] ?? 0) + 1;
        if (examples.length < maxExamples) examples.push(`${path}:${lineNo}: ${reason}`);
        if (limit.count !== undefined && rejected > limit.count) {
          throw tooManyErrors(path, rejected, lineNo, reasons, examples, `--max-errors ${limit.count}`);
        }
      }
      requestWriter.write(sourceId, batch);
      checks.add(batch);
      accepted += batch.count;
      lines += batch.lines;
      if (options.onProgress) {
        const now = Date.now();
        if (now - lastProgress >= progressEvery) {
          lastProgress = now;
          options.onProgress({ file: path, bytes: source.diskBytes(), totalBytes: source.diskSize, lines, elapsedMs: now - started });
        }
      }
    }
    requestWriter.flush();
    const totalLines = lines;
    if (limit.percent !== undefined && rejected > 0 && rejected > (limit.percent / 100) * totalLines) {
      throw tooManyErrors(path, rejected, totalLines, reasons, examples, `--max-errors ${limit.percent}%`);
    }
    if (accepted === 0) {
      throw new InputError(`no usable records (${totalLines} lines, ${rejected} rejected); nothing was ingested`, { file: path });
    }
    const content = source.content();
    const sha256 = content.sha256;
    const existing = db.prepare('SELECT id FROM sources WHERE sha256 = ?').pluck().get(sha256) as number | undefined;
    const summary: FileSummary = {
      path,
      format,
      gzip: source.gzip,
      sha256,
      status: 'ingested',
      bytes: content.bytes,
      lines: totalLines,
      accepted,
      rejected,
      reasons,
      examples,
      warnings: checks.warnings(path),
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
    db.prepare('UPDATE sources SET sha256 = ?, bytes = ?, lines = ?, accepted = ?, rejected = ?, rejected_reasons = ?, warnings = ? WHERE id = ?').run(
      sha256,
      content.bytes,
      totalLines,
      accepted,
      rejected,
      JSON.stringify(reasons),
      summary.warnings?.length ? JSON.stringify(summary.warnings) : null,
      sourceId,
    );
    db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(staleKey, '1');
    if (zone !== undefined) db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(timezoneKey, zone);
    db.exec('COMMIT');
    committed = true;
    return { ...summary, elapsedMs: Date.now() - started };
  } finally {
    await source.close();
    if (!committed) {
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
    }).immediate(); // take the write lock first (waiting busy_timeout), never upgrade a read
  } finally {
    if (foreignKeys) db.pragma('foreign_keys = ON');
  }
  return { rebuilt: true, requests, ms: Date.now() - started };
}

/**
 * `rehearse ingest --rebuild`: rebuilds the derived model over every request a database holds,
 * e.g. after an ingest was killed during its rebuild (which leaves `model.stale` set).
 */
export function rebuildModelIn(dbPath: string): { requests: number; ms: number } {
  const db = openDatabase(dbPath, { mustExist: true });
  try {
    const requests = db.prepare('SELECT count(*) FROM requests').pluck().get() as number;
    if (requests === 0) throw new RehearseError('REHEARSE_MODEL', `${dbPath}: holds no ingested requests to rebuild from. Run \`rehearse ingest <logs> --db ${dbPath}\` first.`);
    db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(staleKey, '1');
    const r = rebuildIfStale(db);
    return { requests: r.requests, ms: r.ms };
  } finally {
    db.close();
  }
}

/** Ingests files into a model database and rebuilds the model over everything it holds. */
export async function ingestFiles(options: IngestOptions): Promise<IngestSummary> {
  try {
    return await ingestFilesLocked(options);
  } catch (err) {
    // Every file's rows and the rebuild are one transaction each: a writer that waited past
    // busy_timeout changed nothing, and the person needs one sentence, not SQLITE_BUSY.
    if (isBusy(err)) throw busyError(typeof options.db === 'string' ? options.db : options.db.name, err);
    throw err;
  }
}

async function ingestFilesLocked(options: IngestOptions): Promise<IngestSummary> {
  const started = Date.now();
  if (options.files.length === 0) throw new RehearseError('REHEARSE_USAGE', 'no files to ingest: name one or more log files');
  const mapping = toMapping(options.mapping);
  const limit = parseMaxErrors(options.maxErrors);
  // Check every file before writing anything: a bad mapping or an unknown format changes nothing.
  const prepared: PreparedFile[] = [];
  for (const path of options.files) prepared.push(await prepareFile(path, mapping));

  const keepIds = options.keepIds ?? false;
  const key = keepIds ? undefined : loadPseudonymKey({ keyFile: options.keyFile });
  const ownDb = typeof options.db === 'string';
  const db = typeof options.db === 'string' ? openDatabase(options.db, options.keyFile === undefined ? {} : { keyFile: options.keyFile }) : options.db;
  const files: FileSummary[] = [];
  let rebuild = { requests: 0, ms: 0 };
  try {
    let ids: IdStore;
    db.exec('BEGIN IMMEDIATE');
    try {
      ids = new IdStore(db, { keepIds, create: true, ...(key ? { key } : {}) });
      db.exec('COMMIT');
    } catch (err) {
      db.exec('ROLLBACK');
      throw err;
    }
    ids.setRoleOverrides(options.roleOverrides ?? []);
    try {
      for (const p of prepared) {
        files.push(await ingestOne(db, p, mapping, ids, options, limit));
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
    const prepared = await prepareFile(path, mapping);
    const setup = chunkSetup(prepared, mapping, true);
    const parseChunk = makeChunkParser(setup);
    const source = openSource(path);
    const lines: DryRunLine[] = [];
    try {
      let lineBase = 0;
      let index = 0;
      for await (const bytes of recordChunks(source.stream, prepared.format === 'csv', 64 * 1024)) {
        lineBase += parseChunk(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), index++ === 0, (result, line) => {
          if (result === null || lines.length >= want) return;
          lines.push('reject' in result ? { line: lineBase + line, reject: result.reject } : { line: lineBase + line, record: result });
        });
        if (lines.length >= want) break;
      }
    } finally {
      source.stream.destroy();
    }
    const format = prepared.format;
    out.push({ path, format, timezone: mapping.timezone, lines });
  }
  return out;
}

/** Heap of the ingest worker: live data is a few tens of MB even at 10M lines. */
export const workerHeapMb = 112;

/**
 * ingestFiles in a worker thread with a bounded heap (what the CLI uses). Same options and
 * result; `db` must be a path. Errors come back as RehearseError with their code and message.
 */
export async function ingestFilesInWorker(options: IngestOptions): Promise<IngestSummary> {
  if (typeof options.db !== 'string') throw new RehearseError('REHEARSE_INTERNAL', 'ingestFilesInWorker needs a database path');
  const { onProgress, ...rest } = options;
  const worker = startWorker('worker', { ...rest, progress: onProgress !== undefined }, { maxOldGenerationSizeMb: workerHeapMb });
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
