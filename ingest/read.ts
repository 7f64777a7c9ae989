// Reading log files: transparent gunzip (by magic bytes), sha256 of the decompressed content,
// byte counts for progress, and format detection from the first bytes.

import fs from 'node:fs';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { InputError, RehearseError } from '../core/errors.js';
import type { Format, ResolvedMapping } from './mapping.js';

export function isGzipFile(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(path, 'r');
    const head = Buffer.alloc(2);
    const n = fs.readSync(fd, head, 0, 2, 0);
    return n === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } catch (err) {
    throw new InputError(`cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { file: path });
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Describes a gzip failure for the person at the terminal. */
export function gzipError(path: string, err: unknown): InputError {
  const message = (err as Error).message ?? String(err);
  const truncated = /unexpected end of file/i.test(message);
  return new InputError(
    truncated
      ? 'truncated gzip file (unexpected end of file): the copy is incomplete; nothing from this file was ingested'
      : `corrupt gzip file (${message}); nothing from this file was ingested`,
    { file: path },
  );
}

/** The first decompressed bytes (up to maxBytes), for format detection, headers and dry runs. */
export async function readHead(path: string, maxBytes = 64 * 1024): Promise<Buffer> {
  const gz = isGzipFile(path);
  const chunks: Buffer[] = [];
  let total = 0;
  const raw = fs.createReadStream(path, { highWaterMark: 64 * 1024 });
  const stream: Readable = gz ? raw.pipe(zlib.createGunzip()) : raw;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      total += chunk.length;
      if (total >= maxBytes) break;
    }
  } catch (err) {
    // A truncated gzip still yields its first bytes; the full read reports the damage.
    if (!gz || total === 0) throw gz ? gzipError(path, err) : new InputError((err as Error).message, { file: path });
  } finally {
    raw.destroy();
    stream.destroy();
  }
  return Buffer.concat(chunks).subarray(0, maxBytes);
}

/** Strips .gz and returns the lower-case extension, e.g. "csv". */
export function extensionOf(path: string): string {
  const base = path.toLowerCase().replace(/\.gz$/, '');
  const dot = base.lastIndexOf('.');
  return dot < 0 ? '' : base.slice(dot + 1);
}

/**
 * The file's format: the mapping's if it says; else the extension (.csv .tsv .jsonl .ndjson;
 * .log with a logFormat); else the first line (a JSON object, a header with tabs or commas).
 */
export function detectFormat(path: string, head: Buffer, mapping: ResolvedMapping): Format {
  if (mapping.format) return mapping.format;
  const ext = extensionOf(path);
  if (ext === 'csv') return 'csv';
  if (ext === 'tsv' || ext === 'tab') return 'tsv';
  if (ext === 'jsonl' || ext === 'ndjson' || ext === 'json') return 'jsonl';
  if (mapping.logFormat) return 'nginx';
  const text = head.toString('utf8');
  const firstLine = (text.split('\n').find((l) => l.trim() !== '') ?? '').replace(/\r$/, '');
  if (firstLine.trimStart().startsWith('{')) return 'jsonl';
  const tabs = firstLine.split('\t').length - 1;
  const commas = firstLine.split(',').length - 1;
  const looksLikeHeader = /^[\w" .-]+$/.test(firstLine.replace(/[\t,]/g, ''));
  if (looksLikeHeader && tabs > 0 && commas === 0) return 'tsv';
  if (looksLikeHeader && commas > 0 && tabs === 0) return 'csv';
  throw new RehearseError(
    'REHEARSE_FORMAT',
    `${path}: unknown format: not a CSV/TSV with a header, not JSON lines, and no logFormat was given. ` +
      'Name it with a mapping file (--mapping, "format": "csv" | "tsv" | "jsonl" | "nginx", see docs/mapping.md).',
  );
}

export interface SourceStream {
  /** Decompressed content. */
  stream: Readable;
  /** Bytes read from disk so far (compressed size for .gz), for progress. */
  diskBytes(): number;
  diskSize: number;
  /** sha256 hex of the decompressed content; valid once the stream has ended. */
  sha256(): string;
  contentBytes(): number;
  gzip: boolean;
}

/** Opens a file for the full read, hashing the decompressed bytes as they pass. */
export function openSource(path: string): SourceStream {
  const gzip = isGzipFile(path);
  const diskSize = fs.statSync(path).size;
  const raw = fs.createReadStream(path, { highWaterMark: 1024 * 1024 });
  let diskBytes = 0;
  raw.on('data', (chunk) => (diskBytes += (chunk as Buffer).length));
  const hash = crypto.createHash('sha256');
  let contentBytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      hash.update(chunk);
      contentBytes += chunk.length;
      cb(null, chunk);
    },
  });
  let digest: string | undefined;
  let stream: Readable;
  if (gzip) {
    const gunzip = zlib.createGunzip({ chunkSize: 256 * 1024 });
    raw.on('error', (err) => tap.destroy(err));
    gunzip.on('error', (err) => tap.destroy(gzipError(path, err)));
    stream = raw.pipe(gunzip).pipe(tap);
  } else {
    raw.on('error', (err) => tap.destroy(new InputError((err as Error).message, { file: path })));
    stream = raw.pipe(tap);
  }
  return {
    stream,
    diskBytes: () => diskBytes,
    diskSize,
    sha256: () => (digest ??= hash.digest('hex')),
    contentBytes: () => contentBytes,
    gzip,
  };
}
