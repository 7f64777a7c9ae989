// A file's requests as batches in line order: cut at record boundaries and parsed in worker
// threads (one per core; a .gz by one thread that also decompresses), or in this thread for
// small files. Also hashes the content on the way.

import fs from 'node:fs';
import os from 'node:os';
import type { Worker } from 'node:worker_threads';
import { RehearseError } from '../core/errors.js';
import { isGzipFile, openSource } from './read.js';
import { recordChunks } from './chunks.js';
import { makeChunkParser, parseChunkToBatch, type ChunkSetup, type RequestBatch } from './parse-chunk.js';
import type { ParseWorkerData, ParseWorkerMessage } from './parse-worker.js';
import { startWorker } from './threads.js';

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
export interface BatchSource {
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


export function openBatches(setup: ChunkSetup, options: { chunkBytes?: number; parseThreads?: number }): BatchSource {
  const chunkBytes = options.chunkBytes ?? defaultChunkBytes;
  const threads = options.parseThreads ?? defaultParseThreads();
  const diskSize = fs.statSync(setup.path).size;
  if (threads > 0 && isGzipFile(setup.path)) {
    return diskSize >= Math.min(streamWorkerMinBytes, chunkBytes) ? streamWorkerBatches(setup, chunkBytes, diskSize) : inThreadBatches(setup, chunkBytes);
  }
  return threads > 0 && diskSize >= 2 * chunkBytes ? chunkWorkerBatches(setup, chunkBytes, threads) : inThreadBatches(setup, chunkBytes);
}
