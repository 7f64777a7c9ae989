// Cuts decompressed log bytes into chunks that end at a record boundary, so each chunk parses
// on its own (in a worker) and line numbers add up: a chunk's first line is 1 + the lines before.
//
// A boundary is a newline outside quotes. Quote state is tracked from the chunk's own start
// (which is a boundary), by the parity of `"` bytes before each candidate newline: in RFC 4180
// a newline inside a quoted field always sits after an odd number of quotes. A malformed line
// with a stray quote would make every later newline look quoted, so if no newline in the back
// half of a chunk qualifies, the last newline is taken anyway: the damage stays in one chunk.

import type { Readable } from 'node:stream';

const NEWLINE = 10;
const QUOTE = 34;

function countByte(buf: Uint8Array, byte: number, from: number, to: number): number {
  let n = 0;
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  let i = b.indexOf(byte, from);
  while (i >= 0 && i < to) {
    n++;
    i = b.indexOf(byte, i + 1);
  }
  return n;
}

/** Newlines in `buf`, plus one for a last line without one: the physical lines it holds. */
export function countLines(buf: Uint8Array): number {
  if (buf.length === 0) return 0;
  return countByte(buf, NEWLINE, 0, buf.length) + (buf[buf.length - 1] === NEWLINE ? 0 : 1);
}

/**
 * Index just past the last newline of `buf` that ends a record, or -1 when `buf` holds no
 * newline. `quotes`: the format quotes fields (CSV); otherwise any newline ends a record.
 */
export function recordBoundary(buf: Buffer, quotes: boolean): number {
  let nl = buf.lastIndexOf(NEWLINE);
  if (nl < 0 || !quotes) return nl < 0 ? -1 : nl + 1;
  const last = nl;
  let quotesBefore = countByte(buf, QUOTE, 0, nl);
  const floor = buf.length >> 1;
  while (quotesBefore % 2 === 1) {
    const prev = nl > 0 ? buf.lastIndexOf(NEWLINE, nl - 1) : -1;
    if (prev < floor) return last + 1;
    quotesBefore -= countByte(buf, QUOTE, prev, nl);
    nl = prev;
  }
  return nl + 1;
}

/**
 * Gathers a byte stream into chunks of about `targetBytes` that end at record boundaries (the
 * last chunk ends where the stream does). Each chunk is its own exact-size buffer, so it can be
 * transferred to a worker.
 */
export async function* recordChunks(stream: Readable, quotes: boolean, targetBytes: number): AsyncGenerator<Uint8Array> {
  let parts: Buffer[] = [];
  let size = 0;
  for await (const data of stream as AsyncIterable<Buffer>) {
    parts.push(data);
    size += data.length;
    if (size < targetBytes) continue;
    const joined = Buffer.concat(parts, size);
    const cut = recordBoundary(joined, quotes);
    if (cut <= 0) {
      parts = [joined];
      continue; // one record longer than a chunk: keep gathering
    }
    yield copyOf(joined, 0, cut);
    parts = cut < size ? [joined.subarray(cut)] : [];
    size -= cut;
  }
  if (size > 0) {
    const joined = Buffer.concat(parts, size);
    yield copyOf(joined, 0, size);
  }
}

function copyOf(buf: Buffer, from: number, to: number): Uint8Array {
  const out = new Uint8Array(to - from);
  out.set(buf.subarray(from, to));
  return out;
}
