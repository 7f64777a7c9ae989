// A parse thread of ingest: turns chunks of a log into compact RequestBatches for the thread
// that writes SQLite. 'chunks' mode parses chunks it is sent (plain files, split by the
// writer); 'stream' mode reads a whole .gz file itself (decompress, hash, cut, parse) and
// sends batches as the writer acknowledges them, so the two cores overlap.

import { parentPort, workerData } from 'node:worker_threads';
import { isRehearseError } from '../core/errors.js';
import { recordChunks } from './chunks.js';
import { batchTransferList, makeChunkParser, parseChunkToBatch, type ChunkSetup } from './parse-chunk.js';
import { openSource } from './read.js';

export interface ParseWorkerData {
  setup: ChunkSetup;
  mode: 'chunks' | 'stream';
  chunkBytes: number;
  /** stream mode: batches sent ahead of the writer's acknowledgements. */
  window: number;
}

export type ParseWorkerMessage =
  | { type: 'batch'; batch: import('./parse-chunk.js').RequestBatch; diskBytes: number }
  | { type: 'end'; sha256: string; contentBytes: number; diskBytes: number }
  | { type: 'error'; code: string; message: string };

const data = workerData as ParseWorkerData;
const port = parentPort!;
const parseChunk = makeChunkParser(data.setup);

function fail(err: unknown): void {
  port.postMessage({
    type: 'error',
    code: isRehearseError(err) ? err.code : 'REHEARSE_INTERNAL',
    message: isRehearseError(err) ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err),
  } satisfies ParseWorkerMessage);
}

if (data.mode === 'chunks') {
  port.on('message', (m: { index: number; bytes: Uint8Array }) => {
    try {
      const batch = parseChunkToBatch(parseChunk, data.setup, m.bytes, m.index);
      port.postMessage({ type: 'batch', batch, diskBytes: 0 } satisfies ParseWorkerMessage, batchTransferList(batch));
    } catch (err) {
      fail(err);
    }
  });
} else {
  let credits = data.window;
  let wake: (() => void) | undefined;
  port.on('message', () => {
    credits++;
    wake?.();
    wake = undefined;
  });
  try {
    const source = openSource(data.setup.path);
    let index = 0;
    for await (const bytes of recordChunks(source.stream, data.setup.format === 'csv', data.chunkBytes)) {
      while (credits <= 0) await new Promise<void>((resolve) => (wake = resolve));
      credits--;
      const batch = parseChunkToBatch(parseChunk, data.setup, bytes, index++);
      port.postMessage({ type: 'batch', batch, diskBytes: source.diskBytes() } satisfies ParseWorkerMessage, batchTransferList(batch));
    }
    port.postMessage({ type: 'end', sha256: source.sha256(), contentBytes: source.contentBytes(), diskBytes: source.diskSize } satisfies ParseWorkerMessage);
  } catch (err) {
    fail(err);
  }
  port.unref();
}
