// Parses one chunk of a log (whole records, see chunks.ts) into results numbered by the chunk's
// own lines, and packs accepted requests into a compact batch (numbers in typed arrays, strings
// interned per batch) that a worker transfers to the thread writing SQLite. CSV/TSV go through
// csv-parse; JSON lines and nginx logs are one record per line. Pure: no I/O.

import { parse as parseCsv, type CsvError, type InfoRecord, type Options as CsvOptions } from 'csv-parse/sync';
import { InputError } from '../core/errors.js';
import { countLines, recordBoundary } from './chunks.js';
import { clientFamily } from './ids.js';
import type { Format, ResolvedMapping } from './mapping.js';
import { csvRecordMapper, jsonRecordMapper, nginxRecordMapper, opCode, type LineResult } from './parse.js';
import { OffsetRunTracker, type ChunkOffsets } from './zone.js';

/** What every chunk of one file is parsed with; structured-cloneable, so it can go to a worker. */
export interface ChunkSetup {
  path: string;
  format: Format;
  mapping: ResolvedMapping;
  /** CSV/TSV: the header's columns (the file's first record, which chunk 0 skips). */
  header?: string[];
  /** JSON lines: the first object of the file, which names the keys. */
  firstJson?: Record<string, unknown>;
  keepIds: boolean;
}

export type ResultSink = (result: LineResult, line: number) => void;

/** Reasons csv-parse's errors are counted under (as the summary prints them). */
const csvReasons: Record<string, string> = {
  CSV_QUOTE_NOT_CLOSED: 'CSV quote not closed',
  INVALID_OPENING_QUOTE: 'CSV quote inside an unquoted field',
  CSV_INVALID_CLOSING_QUOTE: 'CSV text after a closing quote',
  CSV_MAX_RECORD_SIZE: 'CSV record too long (over 1 MiB)',
};

/** One stray quote must not swallow megabytes before csv-parse notices. */
const maxRecordBytes = 1 << 20;

/**
 * csv-parse is handed a chunk in slices of about this many bytes (cut at record boundaries):
 * a slice's records are mapped and dropped before the next is parsed, so they die young. Whole
 * 2 MiB chunks kept ~8,000 records alive at once, more than the parse threads' young generation
 * (8 MB), and promoting them cost a fifth of a parse thread's CPU.
 */
const csvSliceBytes = 256 * 1024;

/** Thrown from csv-parse's on_skip to stop it; never escapes. */
const resume = new Error('resume parsing on the next line');

/** Returns a parser of chunks: `parse(bytes, first, sink)` emits each record with its line (1 = the chunk's first) and returns the chunk's physical lines. */
export function makeChunkParser(setup: ChunkSetup): (bytes: Buffer, first: boolean, sink: ResultSink) => number {
  const { format, mapping, path } = setup;
  if (format === 'csv' || format === 'tsv') {
    const mapFields = csvRecordMapper(mapping, setup.header ?? [], path);
    const quotes = format === 'csv';
    // csv-parse reads bytes: a Buffer parses about 3x faster than the same text as a string.
    const parseText = (text: Buffer, first: boolean, lineOffset: number, sink: ResultSink): void => {
      let prevEnd = 0;
      let headerPending = first;
      let resumeAt = 0;
      const options: CsvOptions = {
        delimiter: quotes ? ',' : '\t',
        quote: quotes ? '"' : false,
        bom: first,
        relax_column_count: true,
        skip_records_with_error: true,
        max_record_size: maxRecordBytes,
        on_record: (record: string[], context: InfoRecord) => {
          const start = prevEnd + 1;
          prevEnd = context.lines;
          if (headerPending) {
            if (record.length === 1 && record[0] === '') return null;
            headerPending = false;
            return null;
          }
          sink(mapFields(record), start + lineOffset);
          return null;
        },
        on_skip: (err: CsvError | undefined) => {
          const end = (err as (CsvError & { lines?: number }) | undefined)?.lines ?? prevEnd + 1;
          if (end <= prevEnd) return undefined; // a second complaint about the same record
          const start = prevEnd + 1;
          prevEnd = end;
          sink({ reject: csvReasons[err?.code ?? ''] ?? `CSV error (${err?.code ?? 'unknown'})` }, start + lineOffset);
          if (err?.code === 'CSV_MAX_RECORD_SIZE') {
            // csv-parse returns from its whole parse on this error even when told to skip
            // records with errors: everything after it was dropped. The oversized record ends
            // at the end of the line where it overflowed; read afresh from the next one.
            resumeAt = end;
            throw resume;
          }
          if (end > start) {
            // A quote left open swallowed the lines after the record's first, and csv-parse's
            // quote state is off from here: stop, and read the rest afresh from the next line.
            resumeAt = start;
            throw resume;
          }
          return undefined;
        },
      };
      try {
        parseCsv(text, options);
      } catch (err) {
        if (err !== resume) throw err;
        parseText(bytesFrom(text, resumeAt + 1), false, lineOffset + resumeAt, sink);
        return;
      }
      // Never lose records without a word: if csv-parse stopped before the text's last
      // non-blank line, that is a parser state we do not know, and ingest must fail loudly.
      const lastLine = lastContentLine(text);
      if (prevEnd < lastLine) {
        throw new InputError(`csv-parse stopped reading at line ${prevEnd + lineOffset + 1} without an error; nothing from this file was ingested. Please report it.`, {
          file: path,
          code: 'REHEARSE_INTERNAL',
        });
      }
    };
    const fastOptions: CsvOptions = {
      delimiter: quotes ? ',' : '\t',
      quote: quotes ? '"' : false,
      relax_column_count: true,
      skip_records_with_error: true,
      max_record_size: maxRecordBytes,
    };
    return (bytes, first, sink) => {
      const lines = countLines(bytes);
      let from = 0;
      let linesBefore = 0;
      while (from < bytes.length) {
        const rest = bytes.subarray(from);
        const cut = rest.length <= 2 * csvSliceBytes ? rest.length : recordBoundary(rest.subarray(0, csvSliceBytes), quotes);
        const slice = cut > 0 ? rest.subarray(0, cut) : rest;
        const head = first && from === 0;
        // Usually every line is one record: then csv-parse need not build an info object per
        // record (a sixth of its time), and record i is on line i + 1.
        let clean = true;
        const records = parseCsv(slice, { ...fastOptions, bom: head, on_skip: () => void (clean = false) }) as string[][];
        const sliceLines = countLines(slice);
        if (!clean || records.length !== sliceLines) {
          // The slow path reads the rest of the chunk as one (a quote may span the cut).
          parseText(rest, head, linesBefore, sink);
          return lines;
        }
        let i = 0;
        if (head) {
          while (i < records.length && records[i]!.length === 1 && records[i]![0] === '') i++;
          i++; // the header
        }
        for (; i < records.length; i++) sink(mapFields(records[i]!), linesBefore + i + 1);
        linesBefore += sliceLines;
        from += slice.length;
      }
      return lines;
    };
  }
  let mapLine: ((line: string) => LineResult) | undefined;
  if (format === 'nginx') mapLine = nginxRecordMapper(mapping, path);
  else if (setup.firstJson) mapLine = jsonRecordMapper(mapping, setup.firstJson, path);
  return (bytes, _first, sink) => {
    const text = bytes.toString('utf8');
    let lineNo = 0;
    let from = 0;
    const n = text.length;
    while (from < n) {
      let nl = text.indexOf('\n', from);
      if (nl < 0) nl = n;
      const end = nl > from && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      const line = text.slice(from, end);
      lineNo++;
      from = nl + 1;
      if (!mapLine) {
        // JSON lines whose head held no object: the first object read names the keys.
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch {
          value = undefined;
        }
        if (typeof value !== 'object' || value === null || Array.isArray(value)) {
          sink(line.trim() === '' ? null : { reject: 'not valid JSON' }, lineNo);
          continue;
        }
        mapLine = jsonRecordMapper(mapping, value as Record<string, unknown>, path);
      }
      sink(mapLine(line), lineNo);
    }
    return lineNo;
  };
}

/** The 1-based number of the last line of `bytes` holding anything but blanks (0: none). */
function lastContentLine(bytes: Buffer): number {
  let end = bytes.length;
  while (end > 0 && (bytes[end - 1] === 10 || bytes[end - 1] === 13 || bytes[end - 1] === 32 || bytes[end - 1] === 9)) end--;
  if (end === 0) return 0;
  return countLines(bytes.subarray(0, end));
}

/** `bytes` from the start of line `from` (1-based). */
function bytesFrom(bytes: Buffer, from: number): Buffer {
  let start = 0;
  for (let line = 1; line < from && start >= 0; line++) {
    const nl = bytes.indexOf(10, start);
    start = nl < 0 ? -1 : nl + 1;
  }
  return start < 0 ? bytes.subarray(bytes.length) : bytes.subarray(start);
}

/** Accepted requests of one chunk, compactly; rows in line order. Index fields point into the string tables (-1: none). */
export interface RequestBatch {
  /** The chunk's position in the file. */
  index: number;
  /** Physical lines of the chunk: the next chunk's line numbers start after them. */
  lines: number;
  count: number;
  line: Int32Array;
  startMs: Float64Array;
  durationMs: Float64Array;
  messages: Float64Array;
  /** NaN: absent. */
  bytes: Float64Array;
  op: Uint8Array;
  status: Uint16Array;
  actor: Int32Array;
  session: Int32Array;
  topics: Int32Array;
  client: Int32Array;
  actors: string[];
  sessions: string[];
  /** Each distinct topic list, its topics joined by NUL ('' is no topic). */
  topicLists: string[];
  /** Client family (or the raw user agent with --keep-ids). */
  clients: string[];
  /** Rejected lines (chunk lines) and their reasons, in line order. */
  rejectLines: number[];
  rejectReasons: string[];
  /** The UTC offsets the records' times were written with, as runs (the model's zone is inferred from them). */
  offsets?: ChunkOffsets;
}

class Interner {
  readonly values: string[] = [];
  private readonly index = new Map<string, number>();
  of(value: string): number {
    let i = this.index.get(value);
    if (i === undefined) {
      i = this.values.length;
      this.values.push(value);
      this.index.set(value, i);
    }
    return i;
  }
}

/** Parses one chunk into a RequestBatch (what a parse worker sends back). */
export function parseChunkToBatch(parseChunk: ReturnType<typeof makeChunkParser>, setup: ChunkSetup, bytes: Uint8Array, index: number): RequestBatch {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // At most one record per line.
  const capacity = countLines(buf) + 1;
  const b = {
    line: new Int32Array(capacity),
    startMs: new Float64Array(capacity),
    durationMs: new Float64Array(capacity),
    messages: new Float64Array(capacity),
    bytes: new Float64Array(capacity),
    op: new Uint8Array(capacity),
    status: new Uint16Array(capacity),
    actor: new Int32Array(capacity),
    session: new Int32Array(capacity),
    topics: new Int32Array(capacity),
    client: new Int32Array(capacity),
  };
  const actors = new Interner();
  const sessions = new Interner();
  const topicLists = new Interner();
  const clients = new Interner();
  const rejectLines: number[] = [];
  const rejectReasons: string[] = [];
  const offsets = new OffsetRunTracker();
  let count = 0;
  const lines = parseChunk(buf, index === 0, (r, line) => {
    if (r === null) return;
    if ('reject' in r) {
      rejectLines.push(line);
      rejectReasons.push(r.reject);
      return;
    }
    const i = count++;
    b.line[i] = line;
    b.startMs[i] = r.startMs;
    b.durationMs[i] = r.durationMs;
    b.messages[i] = r.messages;
    b.bytes[i] = r.bytes ?? Number.NaN;
    b.op[i] = opCode[r.op];
    b.status[i] = r.status;
    b.actor[i] = actors.of(r.actor);
    b.session[i] = r.session === undefined ? -1 : sessions.of(r.session);
    b.topics[i] = topicLists.of(r.topics.join('\u0000'));
    b.client[i] = r.userAgent === undefined ? -1 : clients.of(setup.keepIds ? r.userAgent : clientFamily(r.userAgent));
    if (r.offsetMin !== undefined) offsets.add(r.offsetMin, r.timeMs!, line);
  });
  return {
    index,
    lines,
    count,
    ...b,
    actors: actors.values,
    sessions: sessions.values,
    topicLists: topicLists.values,
    clients: clients.values,
    rejectLines,
    rejectReasons,
    offsets: offsets.result(),
  };
}

/** The typed arrays of a batch, to transfer rather than copy. */
export function batchTransferList(b: RequestBatch): ArrayBuffer[] {
  return [b.line, b.startMs, b.durationMs, b.messages, b.bytes, b.op, b.status, b.actor, b.session, b.topics, b.client].map((a) => a.buffer as ArrayBuffer);
}
