// Runs ingestFiles in a worker thread for the CLI: a bounded V8 heap there (and in the parse
// threads it starts) keeps the process's memory flat on 10M-line files (writing and the rebuild
// make garbage faster than V8 returns it).

import { parentPort, workerData } from 'node:worker_threads';
import { isRehearseError } from '../core/errors.js';
import { ingestFiles, type IngestOptions } from './ingest.js';

const options = workerData as Omit<IngestOptions, 'onProgress'> & { progress: boolean };
const port = parentPort!;
try {
  const summary = await ingestFiles({
    ...options,
    ...(options.progress ? { onProgress: (p) => port.postMessage({ type: 'progress', progress: p }) } : {}),
  });
  port.postMessage({ type: 'done', summary });
} catch (err) {
  port.postMessage({
    type: 'error',
    error: isRehearseError(err)
      ? { code: err.code, message: err.message, exitCode: err.exitCode }
      : { code: 'REHEARSE_INTERNAL', message: err instanceof Error ? (err.stack ?? err.message) : String(err), exitCode: 2 },
  });
}
