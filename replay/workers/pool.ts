// `replay --workers N`: the plan split into N shards of whole classes, one child process each (its
// own core and file-descriptor limit), so every message's publisher and subscribers live in one
// process and delivery checks stay local. The parent runs the pre-flight once, starts every
// shard at one common time, joins their seconds into one live line and one stored run, and
// merges their results exactly into one verdict. It behaves like a ReplayRun ('start', 'tick',
// 'warning', 'stopping', 'done', `finished`, `stop()`), so the CLI follows either the same way.

import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { RehearseError } from '../../core/errors.js';
import { redactUrl } from '../../core/redact.js';
import type { Db } from '../../db/open.js';
import type { RunWriter } from '../../db/run-store.js';
import type { RunSummary } from '../../db/run-types.js';
import { mergeResults, mergeSecondRows } from '../merge-results.js';
import { resultSettingsOf, targetSpecOf, type ReplayOptions } from '../options.js';
import type { PlanOptions } from '../plan-types.js';
import { replayPreflight } from '../probe.js';
import type { ResultSecond, RunResult } from '../result.js';
import { beginResultRun, storedResultParts } from '../result-store.js';
import type { Phase, ReplayRunEvents, ReplayTick } from '../runner.js';
import { summarizeResult } from '../verdict.js';
import type { ParentMessage, WorkerJob, WorkerMessage, WorkerTotals } from './messages.js';

export interface WorkersInput {
  workers: number;
  modelPath: string;
  day: string | undefined;
  /** The whole plan's options; each worker gets shard i/N of them. */
  planOptions: PlanOptions;
  /** Passed to every worker as they are (validated by the caller). */
  replay: WorkerJob['replay'];
  /** The same options resolved (display, stored options, pre-flight). */
  options: ReplayOptions;
  storedOptions: Record<string, unknown>;
  /** Results go here; without it nothing is stored. */
  db?: Db;
  /** The pre-flight round trip; `false` skips it. */
  preflight?: false;
  /** How long after every worker is ready the load starts (ms). */
  startDelayMs?: number;
  /** --start-at: the load starts then (or once every worker is ready, if later). */
  startAtMs?: number;
}

/** A worker's node entry: the compiled .js, or the .ts source through tsx when run from source (tests). */
function workerEntry(): { file: string; execArgv: string[] } {
  const js = fileURLToPath(new URL('./worker-main.js', import.meta.url));
  if (fs.existsSync(js)) return { file: js, execArgv: [] };
  return { file: fileURLToPath(new URL('./worker-main.ts', import.meta.url)), execArgv: ['--import', 'tsx'] };
}

interface Worker {
  index: number;
  child: ChildProcess;
  ready: boolean;
  started: boolean;
  /** Result or error received, or the process is gone. */
  done: boolean;
  result: RunResult | undefined;
  lastSecond: number;
  totals: WorkerTotals;
  elapsedMs: number;
  phase: Phase;
  /** The end of its stderr, for the reason when it dies. */
  stderrTail: string;
}

const emptyTotals = (): WorkerTotals => ({ published: 0, expected: 0, delivered: 0, duplicates: 0, lost: 0, errors: 0, retries: 0 });

export class WorkerPoolRun extends EventEmitter<ReplayRunEvents> {
  readonly finished: Promise<RunSummary>;
  readonly options: ReplayOptions;
  private readonly workers: Worker[] = [];
  private readonly seconds = new Map<number, ResultSecond[]>();
  private nextSecond = 1;
  private writer: RunWriter | undefined;
  private groupId: string;
  /** Why the run failed (a worker died or could not start), naming the shard. */
  private failures: string[] = [];
  private stopping = false;
  /** A stop asked for before the workers existed (Ctrl-C during the pre-flight): each is told once spawned. */
  private earlyStop: { immediate: boolean; reason: string } | undefined;
  private result: RunResult | undefined;
  private resolveFinished!: (s: RunSummary) => void;
  private rejectFinished!: (e: unknown) => void;
  private settled = false;

  constructor(private readonly input: WorkersInput) {
    super();
    this.options = input.options;
    this.groupId = `w${Date.now().toString(36)}${process.pid.toString(36)}`;
    this.finished = new Promise<RunSummary>((resolve, reject) => {
      this.resolveFinished = resolve;
      this.rejectFinished = reject;
    });
    this.finished.catch(() => undefined);
  }

  /** Stops every worker: draining (each at most the loss limit), or at once. */
  stop(options: { immediate?: boolean; reason?: string } = {}): void {
    const reason = options.reason ?? (options.immediate ? 'stopped at once' : 'stopped');
    if (!options.immediate && this.stopping) return;
    this.stopping = true;
    if (this.workers.length < this.input.workers) this.earlyStop = { immediate: options.immediate ?? false, reason };
    for (const w of this.workers) this.tell(w, { type: 'stop', immediate: options.immediate ?? false, reason });
  }

  get portableResult(): RunResult | undefined {
    return this.result;
  }

  async begin(): Promise<void> {
    const o = this.options;
    try {
      if (this.input.preflight !== false) {
        const spec = targetSpecOf(o);
        await replayPreflight(spec, `${o.runNonce ?? this.groupId}.preflight`, { onWarning: (line) => this.emit('warning', line) });
      }
    } catch (err) {
      this.settle(err);
      return;
    }
    const entry = workerEntry();
    const n = this.input.workers;
    for (let i = 0; i < n; i++) this.spawn(i, n, entry);
  }

  private spawn(index: number, count: number, entry: { file: string; execArgv: string[] }): void {
    const child = fork(entry.file, [], { serialization: 'advanced', stdio: ['ignore', 'ignore', 'pipe', 'ipc'], execArgv: entry.execArgv });
    const w: Worker = { index, child, ready: false, started: false, done: false, result: undefined, lastSecond: 0, totals: emptyTotals(), elapsedMs: 0, phase: 'starting', stderrTail: '' };
    this.workers.push(w);
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      w.stderrTail = (w.stderrTail + chunk).slice(-2000);
    });
    child.on('message', (m: WorkerMessage) => this.onMessage(w, m));
    child.on('exit', (code, signal) => this.onExit(w, code, signal));
    child.on('error', (err) => this.workerFailed(w, `could not be started (${err.message})`));
    const nonce = this.options.runNonce ?? this.groupId;
    const job: WorkerJob = {
      modelPath: this.input.modelPath,
      day: this.input.day,
      planOptions: { ...this.input.planOptions, shard: { index, count } },
      // Topics stay apart between shards even if two shards ever held the same class.
      replay: { ...this.input.replay, runNonce: `${nonce}s${index}` },
      groupId: this.groupId,
    };
    this.tell(w, { type: 'start', job });
    // It loads, then starts and stops at once: an empty, interrupted shard, as one process records.
    if (this.earlyStop) this.tell(w, { type: 'stop', ...this.earlyStop });
  }

  private tell(w: Worker, m: ParentMessage): void {
    if (w.child.connected) w.child.send(m);
  }

  private shardName(w: Worker): string {
    return `worker ${w.index + 1} of ${this.input.workers} (shard ${w.index}/${this.input.workers})`;
  }

  private onMessage(w: Worker, m: WorkerMessage): void {
    switch (m.type) {
      case 'ready':
        w.ready = true;
        if (this.workers.length === this.input.workers && this.workers.every((x) => x.ready) && !this.stopping) {
          const startAtMs = Math.max(this.input.startAtMs ?? 0, Date.now() + (this.input.startDelayMs ?? 500));
          for (const x of this.workers) this.tell(x, { type: 'go', startAtMs });
        }
        return;
      case 'started':
        w.started = true;
        if (this.workers.every((x) => x.started)) this.onAllStarted(m.protocol, m.startedAt);
        return;
      case 'second':
        w.lastSecond = m.row.second;
        w.totals = m.totals;
        w.elapsedMs = m.elapsedMs;
        w.phase = m.phase;
        this.seconds.set(m.row.second, [...(this.seconds.get(m.row.second) ?? []), m.row]);
        this.flushSeconds();
        return;
      case 'warning':
        this.emit('warning', `${this.shardName(w)}: ${m.line}`);
        return;
      case 'stopping':
        if (!this.stopping) {
          this.stopping = true;
          this.emit('stopping', { reason: m.reason, immediate: false });
        }
        return;
      case 'result':
        w.result = m.result;
        w.done = true;
        this.flushSeconds();
        this.maybeFinish();
        return;
      case 'error':
        this.workerFailed(w, m.message);
        return;
    }
  }

  private onExit(w: Worker, code: number | null, signal: NodeJS.Signals | null): void {
    if (w.done) return;
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const lastWords = w.stderrTail.trim().split('\n').slice(-3).join(' | ');
    this.workerFailed(w, `${how}${w.started ? ` after ${(w.elapsedMs / 1000).toFixed(1)} s of load` : ' before its load started'}${lastWords ? `: ${lastWords}` : ''}`);
  }

  /** A worker that cannot deliver its share fails the whole run: the load never silently shrinks. */
  private workerFailed(w: Worker, why: string): void {
    if (w.done) return;
    w.done = true;
    this.failures.push(`${this.shardName(w)} ${why.startsWith('was ') || why.startsWith('exited') || why.startsWith('could') ? why : `failed: ${why}`}; its share of the load was not sent as planned`);
    if (!this.stopping) {
      this.stopping = true;
      this.emit('stopping', { reason: `${this.shardName(w)} failed`, immediate: true });
    }
    for (const x of this.workers) if (!x.done) this.tell(x, { type: 'stop', immediate: true, reason: `${this.shardName(w)} failed` });
    // A worker that never got as far as the load stops the others before they start: nothing to wait for.
    for (const x of this.workers) if (!x.done && !x.started && !x.ready) x.child.kill('SIGTERM');
    this.flushSeconds();
    this.maybeFinish();
  }

  /** The runs row, once the load starts (or at the end, for a run stopped before it started). */
  private openWriter(startedAt: string): void {
    if (!this.input.db || this.writer) return;
    this.writer = beginResultRun(
      this.input.db,
      { startedAt, settings: resultSettingsOf(this.options, this.options.protocol) },
      { groupId: this.groupId, options: this.input.storedOptions },
      { index: null, count: this.input.workers },
    );
  }

  private onAllStarted(protocol: string, startedAt: string): void {
    this.openWriter(startedAt);
    this.emit('start', {
      run: this.writer?.runId ?? 0,
      target: redactUrl(this.options.target),
      protocol,
      nonce: `${this.options.runNonce ?? this.groupId}s*`,
      startedAt,
      slo: this.options.slo.text,
    });
  }

  /** Emits (and stores) every second all live workers have reported. */
  private flushSeconds(): void {
    for (;;) {
      const k = this.nextSecond;
      const waiting = this.workers.some((w) => !w.done && w.lastSecond < k);
      if (waiting) return;
      const rows = this.seconds.get(k);
      if (!rows) {
        // Nobody will report this second again (every worker is done or beyond it with no row).
        if (this.workers.every((w) => w.done || w.lastSecond < k)) return;
        this.nextSecond++;
        continue;
      }
      this.seconds.delete(k);
      this.nextSecond++;
      const row = mergeSecondRows(k, rows);
      this.writer?.writeSecond(row);
      const totals = emptyTotals();
      for (const w of this.workers) for (const key of Object.keys(totals) as Array<keyof WorkerTotals>) totals[key] += w.totals[key];
      const phases = this.workers.filter((w) => !w.done).map((w) => w.phase);
      const tick: ReplayTick = {
        ...row,
        elapsedMs: Math.max(0, ...this.workers.map((w) => w.elapsedMs)),
        requests: row.publishes + row.subscribes,
        totals,
        phase: phases.includes('running') ? 'running' : phases.length > 0 ? 'draining' : 'done',
      };
      this.emit('tick', tick);
    }
  }

  private maybeFinish(): void {
    if (this.settled || this.workers.length < this.input.workers || this.workers.some((w) => !w.done)) return;
    // Seconds still held (a dead worker never reported them) go out with what the others sent.
    for (const w of this.workers) w.lastSecond = Number.POSITIVE_INFINITY;
    this.flushSeconds();
    const results = this.workers.filter((w) => w.result).map((w) => ({ source: this.shardName(w), result: w.result! }));
    if (results.length === 0) {
      this.writer?.finish({ status: 'failed', endedAt: new Date().toISOString(), pass: false, verdict: null, summary: null, histograms: {}, counts: {}, samples: {} });
      this.settle(new RehearseError('REHEARSE_WORKER', `every worker failed, nothing was measured:\n  ${this.failures.join('\n  ')}`));
      return;
    }
    let merged = mergeResults(results, { partial: this.failures.length > 0 });
    if (this.failures.length > 0) merged = { ...merged, status: 'failed', stopReason: this.failures.join('; ') };
    this.result = merged;
    let summary: RunSummary;
    try {
      // Every shard stopped before its load started (Ctrl-C during the pre-flight): still one stored run.
      this.openWriter(merged.startedAt);
      summary = summarizeResult(merged, { run: this.writer?.runId ?? 0, slo: this.options.slo });
      this.writer?.finish({ status: merged.status, endedAt: merged.endedAt, pass: summary.pass, verdict: summary.verdict, summary, ...storedResultParts(merged, summary) });
    } catch (err) {
      this.settle(err);
      return;
    }
    this.emit('done', summary);
    this.settle(undefined, summary);
  }

  private settle(err: unknown, summary?: RunSummary): void {
    if (this.settled) return;
    this.settled = true;
    for (const w of this.workers) if (w.child.exitCode === null && w.child.signalCode === null && !w.done) w.child.kill('SIGKILL');
    if (summary) this.resolveFinished(summary);
    else this.rejectFinished(err);
  }
}

/** Starts `input.workers` worker processes on the plan; listen like a ReplayRun, await `.finished`. */
export function startWorkers(input: WorkersInput): WorkerPoolRun {
  const run = new WorkerPoolRun(input);
  queueMicrotask(() => void run.begin());
  return run;
}
