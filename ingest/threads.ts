// Starts one of ingest's worker threads, from dist (plain JS) or from the .ts sources (vitest,
// tsx), where the worker must register tsx's loader before importing its entry module.

import { Worker, type ResourceLimits } from 'node:worker_threads';

export function startWorker(entry: 'worker' | 'parse-worker', workerData: unknown, resourceLimits: ResourceLimits): Worker {
  const fromSource = import.meta.url.endsWith('.ts');
  const url = new URL(`./${entry}.${fromSource ? 'ts' : 'js'}`, import.meta.url);
  const settings = { workerData, resourceLimits };
  // `execArgv: ['--import', 'tsx']` does not reach a worker's entry module here: register tsx first.
  return fromSource
    ? new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); })`, { ...settings, eval: true })
    : new Worker(url, settings);
}
