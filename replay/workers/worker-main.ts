// A worker process of `replay --workers`: runs one shard of the plan (whole classes) with no
// database of its own and streams each second and its final portable result to the parent.
// Started by replay/workers/pool.ts with an IPC channel; never run by hand.

import { isRehearseError } from '../../core/errors.js';
import { openDatabase, type Db } from '../../db/open.js';
import { openModelReader } from '../../db/model-store.js';
import type { ModelReader } from '../../db/model-types.js';
import { replayModel } from '../rehearse.js';
import type { ReplayRun } from '../runner.js';
import type { ParentMessage, WorkerJob, WorkerMessage } from './messages.js';

function send(m: WorkerMessage): void {
  process.send?.(m);
}

/** Sends the last message and closes the channel once it is written (a result can be megabytes). */
function sendLast(m: WorkerMessage): void {
  if (!process.send) return;
  process.send(m, undefined, {}, () => process.disconnect?.());
}

function fail(err: unknown): void {
  db?.close();
  sendLast({ type: 'error', message: (err as Error).message, exitCode: isRehearseError(err) ? err.exitCode : 2 });
}

let db: Db | undefined;
let job: WorkerJob | undefined;
let model: ModelReader | undefined;
let run: ReplayRun | undefined;

// Ctrl-C reaches every process of the terminal's group: the parent decides, the workers obey it.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => undefined);
// The parent is gone: nobody would read the result, so stop sending load at once.
process.on('disconnect', () => {
  if (run) run.stop({ immediate: true, reason: 'the parent process went away' });
  else process.exit(3);
});

function go(startAtMs: number): void {
  const j = job!;
  try {
    run = replayModel({
      ...j.replay,
      model: model!,
      planOptions: j.planOptions,
      // The parent ran the pre-flight once for every worker.
      preflight: false,
      shard: j.planOptions.shard,
      startAtMs,
      groupId: j.groupId,
    }).run;
  } catch (err) {
    fail(err);
    return;
  }
  const r = run;
  r.on('start', (s) => send({ type: 'started', runNonce: s.nonce, protocol: s.protocol, startedAt: s.startedAt }));
  r.on('warning', (line) => send({ type: 'warning', line }));
  r.on('stopping', (s) => send({ type: 'stopping', reason: s.reason }));
  r.on('tick', (t) => {
    const { totals, elapsedMs, phase, requests: _requests, ...row } = t;
    send({ type: 'second', row, totals, elapsedMs, phase });
  });
  r.finished.then(() => {
    db?.close();
    sendLast({ type: 'result', result: r.portableResult! });
  }, fail);
}

process.on('message', (m: ParentMessage) => {
  if (m.type === 'stop') {
    // Stopped while ready (Ctrl-C before the common start): start and stop at once, so this shard
    // reports an empty, interrupted run as one process does, not a failure of its own.
    if (!run && model) {
      go(Date.now());
      if (!run) return; // go() could not start it and said why
    }
    if (run) run.stop({ immediate: m.immediate, reason: m.reason });
    else fail(new Error(`stopped before the load started (${m.reason})`));
    return;
  }
  if (m.type === 'go') {
    if (!run) go(m.startAtMs);
    return;
  }
  job = m.job;
  try {
    db = openDatabase(job.modelPath, { mustExist: true, readonly: true });
    model = openModelReader(db, job.day === undefined ? {} : { day: job.day });
    send({ type: 'ready' });
  } catch (err) {
    fail(err);
  }
});
