// `rehearse ingest` as a typed API. Each file is read as batches in line order (batches.ts),
// its requests interned (ids.ts) and cut into sessions as they stream (model/sessions.ts), and
// the model is updated with that file alone (model/update.ts), all in one transaction per file,
// so a failed file leaves nothing. No row per request is stored unless keepRequests. Also the
// dry run and --rebuild.

import fs from 'node:fs';
import { InputError, RehearseError } from '../core/errors.js';
import { loadPseudonymKey } from '../core/pseudonym-key.js';
import type { Db } from '../db/open.js';
import { busyError, isBusy, openDatabase } from '../db/open.js';
import { ModelStore, modelStaleKey, requestWriter, sourceStore, storedRequestCount, storedRequests } from '../db/model-store.js';
import { IdKind, IdStore } from './ids.js';
import { resolveMapping, readMappingFile, type Format, type ResolvedMapping } from './mapping.js';
import type { ParsedRequest } from './parse.js';
import { openSource } from './read.js';
import { recordChunks } from './chunks.js';
import { MappingChecks } from './mapping-checks.js';
import { makeChunkParser, type RequestBatch } from './parse-chunk.js';
import { startWorker } from './threads.js';
import { chunkSetup, prepareFile, type PreparedFile } from './prepare.js';
import { openBatches } from './batches.js';
import { expandInputs } from './inputs.js';
import { SessionAssembler } from './model/sessions.js';
import { ModelUpdate } from './model/update.js';
import type { SessionRecordRow } from '../db/session-pack.js';
import { zoneLabel } from '../core/zone.js';
import { describeInference, FileOffsets, inferZone, mergeEvidence, OffsetRunTracker, type ZoneEvidence, type ZoneReport } from './zone.js';

export { offsetMinutesOf } from './zone.js';
export { defaultChunkBytes } from './batches.js';

export interface IngestProgress {
  file: string;
  /** Bytes read from disk (compressed for .gz) and the file's size on disk. */
  bytes: number;
  totalBytes: number;
  lines: number;
  elapsedMs: number;
  /** Across every file of this ingest: files finished, of how many, bytes read of all bytes, lines, time. */
  filesDone?: number;
  filesTotal?: number;
  allBytes?: number;
  allTotalBytes?: number;
  allLines?: number;
  allElapsedMs?: number;
}

export interface IngestOptions {
  files: string[];
  /** A database path, or an open handle (left open). */
  db: string | Db;
  /** A mapping file path, or a mapping object (validated the same way). */
  mapping?: string | unknown;
  /**
   * Re-ingest files whose content was ingested before. The compact model cannot take one file's
   * requests back out, so this needs a database ingested with keepRequests (it is rebuilt from them).
   */
  force?: boolean;
  /** Also store one row per request (`requests`), as before the compact model: --rebuild and --force can then start over from them. */
  keepRequests?: boolean;
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
  /** Requests accepted over all files ever ingested into this database. */
  requests: number;
  /** Time spent deriving the model (roles, rosters, distributions, days), over all files. */
  rebuildMs: number;
  elapsedMs: number;
  /** The model's zone, where it came from (the mapping, or inferred from the times' offsets) and how it reads. */
  zone?: ZoneReport;
}

const maxExamples = 5;
const timezoneKey = 'model.timezone';
/** The offsets every file's times carried (ZoneEvidence), so a later file's ingest infers the zone of all of them. */
const zoneEvidenceKey = 'model.zone_evidence';
/** The ZoneReport of the last ingest. */
const zoneReportKey = 'model.zone';

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

/** Interns a batch's strings and hands each request to the model update (and the requests table if kept). */
function makeBatchReader(ids: IdStore, update: ModelUpdate, assembler: SessionAssembler, keep: ReturnType<typeof requestWriter> | undefined) {
  return (sourceId: number, b: RequestBatch): void => {
    const actors = b.actors.map((a) => ids.id(IdKind.actor, a));
    const topicLists = b.topicLists.map((t) => (t === '' ? [] : t.split('\u0000').map((x) => ids.id(IdKind.topic, x))));
    const sessions = b.sessions.map((x) => ids.id(IdKind.session, x));
    const clients = b.clients.map((x) => ids.id(IdKind.client, x));
    for (let i = 0; i < b.count; i++) {
      const actor = actors[b.actor[i]!]!;
      const topics = topicLists[b.topics[i]!]!;
      const session = b.session[i]! < 0 ? null : sessions[b.session[i]!]!;
      const client = b.client[i]! < 0 ? null : clients[b.client[i]!]!;
      const record: SessionRecordRow = { startMs: b.startMs[i]!, durationMs: b.durationMs[i]!, op: b.op[i]!, status: b.status[i]!, messages: b.messages[i]!, topics };
      update.count(actor, record.op, topics, client, record.startMs, record.durationMs);
      assembler.add(actor, session, record);
      if (keep) {
        const bytes = b.bytes[i]!;
        keep.row([sourceId, actor, record.startMs, record.durationMs, record.op, record.status, record.messages, topics.join(','), session, Number.isNaN(bytes) ? null : bytes, client]);
      }
    }
    assembler.closeQuiet();
  };
}

interface RunTotals {
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
  linesDone: number;
  started: number;
  modelMs: number;
}

async function ingestOne(
  db: Db,
  prepared: PreparedFile,
  mapping: ResolvedMapping,
  ids: IdStore,
  options: IngestOptions,
  limit: { count?: number; percent?: number },
  totals: RunTotals,
): Promise<FileSummary> {
  const { path, format } = prepared;
  const started = Date.now();
  const reasons: Record<string, number> = {};
  const examples: string[] = [];
  let accepted = 0;
  let rejected = 0;
  const checks = new MappingChecks(mapping);
  let lastProgress = 0;
  const progressEvery = options.progressIntervalMs ?? 250;
  const source = openBatches(chunkSetup(prepared, mapping, ids.keepIds), options);
  const store = new ModelStore(db);
  const offsets = new FileOffsets(path);

  db.exec('BEGIN IMMEDIATE');
  let committed = false;
  try {
    const keepRequests = options.keepRequests === true || store.meta(keepRequestsKey) === '1';
    if (keepRequests) store.setMeta(keepRequestsKey, '1');
    const keep = keepRequests ? requestWriter(db) : undefined;
    const update = new ModelUpdate(store);
    const assembler = new SessionAssembler(update);
    const readBatch = makeBatchReader(ids, update, assembler, keep);
    const sourceId = sourceStore.begin(db, path, format);
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
      readBatch(sourceId, batch);
      offsets.addChunk(batch.offsets, lines);
      checks.add(batch);
      accepted += batch.count;
      lines += batch.lines;
      if (options.onProgress) {
        const now = Date.now();
        if (now - lastProgress >= progressEvery) {
          lastProgress = now;
          const bytes = source.diskBytes();
          options.onProgress({
            file: path,
            bytes,
            totalBytes: source.diskSize,
            lines,
            elapsedMs: now - started,
            filesDone: totals.filesDone,
            filesTotal: totals.filesTotal,
            allBytes: totals.bytesDone + bytes,
            allTotalBytes: totals.bytesTotal,
            allLines: totals.linesDone + lines,
            allElapsedMs: now - totals.started,
          });
        }
      }
    }
    keep?.flush();
    const totalLines = lines;
    if (limit.percent !== undefined && rejected > 0 && rejected > (limit.percent / 100) * totalLines) {
      throw tooManyErrors(path, rejected, totalLines, reasons, examples, `--max-errors ${limit.percent}%`);
    }
    if (accepted === 0) {
      throw new InputError(`no usable records (${totalLines} lines, ${rejected} rejected); nothing was ingested`, { file: path });
    }
    const content = source.content();
    const sha256 = content.sha256;
    const existing = sourceStore.bySha(db, sha256);
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
    let rebuildFromRequests = false;
    if (existing !== undefined) {
      if (!keepRequests) {
        throw new RehearseError(
          'REHEARSE_USAGE',
          `${path}: this content was ingested before, and ${db.name} keeps no requests to take it back out of the model. ` +
            'Ingest into a new --db instead (or keep requests from the start with --keep-requests so --force can replace a file).',
        );
      }
      sourceStore.remove(db, existing);
      rebuildFromRequests = true;
    }
    sourceStore.finish(db, sourceId, { sha256, bytes: content.bytes, lines: totalLines, accepted, rejected, reasons, warnings: summary.warnings });
    const zone = modelZone(store, mapping, offsets).timezone;
    const modelStarted = Date.now();
    assembler.closeAll();
    if (rebuildFromRequests) rebuildFromStoredRequests(db, store, zone);
    else update.finish(zone);
    store.deleteMeta(modelStaleKey);
    totals.modelMs += Date.now() - modelStarted;
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

const keepRequestsKey = 'model.keep_requests';

/**
 * The model's zone: the mapping's when it names one (and after, until another mapping does), else
 * the IANA zone that gives the offsets of every file's times so far (ingest/zone.ts), so files
 * ingested one by one get the zone of all of them at once.
 */
function modelZone(store: ModelStore, mapping: ResolvedMapping, file: FileOffsets): ZoneReport {
  const stored = store.meta(zoneEvidenceKey);
  const evidence = mergeEvidence(stored ? (JSON.parse(stored) as ZoneEvidence) : { runs: [] }, file.evidence());
  store.setMeta(zoneEvidenceKey, JSON.stringify(evidence));
  const before = store.meta(zoneReportKey);
  const previous = before ? (JSON.parse(before) as ZoneReport) : undefined;
  let report: ZoneReport;
  if (mapping.timezoneGiven) report = { timezone: mapping.timezone, source: 'mapping', note: 'from the mapping' };
  else if (previous?.source === 'mapping') report = { ...previous, note: 'from the mapping of an earlier ingest' };
  else {
    const inferred = inferZone(evidence);
    report = { timezone: inferred.zone, source: inferred.how, ...describeInference(inferred) };
  }
  store.setMeta(timezoneKey, report.timezone);
  store.setMeta(zoneReportKey, JSON.stringify(report));
  return report;
}

/** The zone report of what the database holds now, labelled over the model's span. */
function storedZoneReport(store: ModelStore): ZoneReport | undefined {
  const text = store.meta(zoneReportKey);
  if (!text) return undefined;
  const report = JSON.parse(text) as ZoneReport;
  const span = store.meta('model.span');
  const { startMs, endMs } = span ? (JSON.parse(span) as { startMs: number; endMs: number }) : { startMs: 0, endMs: 0 };
  return { ...report, label: zoneLabel(report.timezone, startMs, endMs) };
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

/** Derives the model again from the stored requests (a database that kept them), in start order. */
function rebuildFromStoredRequests(db: Db, store: ModelStore, zone: string): void {
  store.clearModel();
  store.deleteMeta('model.span');
  const update = new ModelUpdate(store);
  const assembler = new SessionAssembler(update);
  // Read whole first: better-sqlite3 cannot write on a connection while it iterates (a legacy path).
  const lists = new Map<string, number[]>();
  const rows = [...storedRequests(db)];
  let n = 0;
  for (const [actor, startMs, durationMs, op, status, messages, topicsText, session, client] of rows) {
    let topics = lists.get(topicsText);
    if (!topics) lists.set(topicsText, (topics = topicsText === '' ? [] : topicsText.split(',').map(Number)));
    update.count(actor, op, topics, client, startMs, durationMs);
    assembler.add(actor, session, { startMs, durationMs, op, status, messages, topics });
    if (++n % 16_384 === 0) assembler.closeQuiet();
  }
  assembler.closeAll();
  update.finish(zone);
}

/**
 * `rehearse ingest --rebuild`: derives the model again from what the database holds: its stored
 * requests when it kept them (or predates the compact model), else its sessions' packed requests.
 */
export function rebuildModelIn(dbPath: string): { requests: number; ms: number } {
  const started = Date.now();
  const db = openDatabase(dbPath, { mustExist: true });
  try {
    const store = new ModelStore(db);
    const kept = storedRequestCount(db);
    const sessions = db.prepare('SELECT count(*) FROM sessions').pluck().get() as number;
    if (kept === 0 && sessions === 0) {
      throw new RehearseError('REHEARSE_MODEL', `${dbPath}: holds no ingested requests to rebuild from. Run \`rehearse ingest <logs> --db ${dbPath}\` first.`);
    }
    const zone = store.meta(timezoneKey) ?? 'UTC';
    db.transaction(() => {
      if (kept > 0) rebuildFromStoredRequests(db, store, zone);
      else {
        const update = new ModelUpdate(store);
        update.rederiveAll();
        update.finish(zone);
      }
      store.deleteMeta(modelStaleKey);
    }).immediate();
    return { requests: sourceStore.accepted(db), ms: Date.now() - started };
  } finally {
    db.close();
  }
}

/** Ingests files (or directories and globs of them, in time order) into a model database. */
export async function ingestFiles(options: IngestOptions): Promise<IngestSummary> {
  try {
    return await ingestFilesLocked(options);
  } catch (err) {
    // Every file is one transaction: a writer that waited past busy_timeout changed nothing,
    // and the person needs one sentence, not SQLITE_BUSY.
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
  for (const path of expandInputs(options.files)) prepared.push(await prepareFile(path, mapping));
  // A season comes as many files: take them in the order of their first records' times.
  const ordered = prepared
    .map((p, i) => ({ p, i }))
    .sort((a, b) => (a.p.firstMs ?? Infinity) - (b.p.firstMs ?? Infinity) || a.i - b.i)
    .map((x) => x.p);

  const keepIds = options.keepIds ?? false;
  const key = keepIds ? undefined : loadPseudonymKey({ keyFile: options.keyFile });
  const ownDb = typeof options.db === 'string';
  const db = typeof options.db === 'string' ? openDatabase(options.db, options.keyFile === undefined ? {} : { keyFile: options.keyFile }) : options.db;
  const files: FileSummary[] = [];
  const totals: RunTotals = {
    filesDone: 0,
    filesTotal: ordered.length,
    bytesDone: 0,
    bytesTotal: ordered.reduce((n, p) => n + fs.statSync(p.path).size, 0),
    linesDone: 0,
    started,
    modelMs: 0,
  };
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
    for (const p of ordered) {
      const f = await ingestOne(db, p, mapping, ids, options, limit, totals);
      files.push(f);
      totals.filesDone++;
      totals.bytesDone += fs.statSync(p.path).size;
      totals.linesDone += f.lines;
    }
    const zone = storedZoneReport(new ModelStore(db));
    return { files, requests: sourceStore.accepted(db), rebuildMs: totals.modelMs, elapsedMs: Date.now() - started, ...(zone ? { zone } : {}) };
  } finally {
    if (ownDb) db.close();
  }
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
    const offsets = new OffsetRunTracker();
    try {
      let lineBase = 0;
      let index = 0;
      for await (const bytes of recordChunks(source.stream, prepared.format === 'csv', 64 * 1024)) {
        lineBase += parseChunk(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), index++ === 0, (result, line) => {
          if (result === null || lines.length >= want) return;
          lines.push('reject' in result ? { line: lineBase + line, reject: result.reject } : { line: lineBase + line, record: result });
          if (!('reject' in result) && result.offsetMin !== undefined) offsets.add(result.offsetMin, result.timeMs!, lineBase + line);
        });
        if (lines.length >= want) break;
      }
    } finally {
      source.stream.destroy();
    }
    const format = prepared.format;
    // Times shown in the zone ingest would infer from these lines when the mapping names none.
    const timezone = mapping.timezoneGiven ? mapping.timezone : inferZone(mergeEvidence({ runs: [] }, { runs: offsets.runs })).zone;
    out.push({ path, format, timezone, lines });
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