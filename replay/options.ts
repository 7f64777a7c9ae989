// Options of the replay runtime, validated once, here, with defaults merged: the CLI and the
// programmatic API (startReplay/runReplay) both go through resolveReplayOptions.

import { UsageError } from '../core/errors.js';
import { rehearseVersion } from '../core/version.js';
import type { ResultSettings } from './result.js';
import type { TargetSpec } from './target/index.js';
import { defaultBackoff, type BackoffPolicy } from './backoff.js';
import { parseHeaders } from './headers.js';
import { redactUrl } from '../core/redact.js';
import { parseSlo, defaultSlo, type Slo } from './slo.js';

/** What the run record says about the plan (for runs/compare/report). */
export interface RunDescription {
  scale: number;
  mode: string;
  window: string;
  speed: number;
  seed: number;
  modelFingerprint: string;
  /** The plan's length (ms, after speed), when known. */
  plannedDurationMs?: number;
  rampMs?: number;
  /** The --shape terms the plan applied to the model (docs/shape.md); absent or empty: the recorded model. */
  shape?: string[];
}

export interface ReplayOptionsInput {
  /** Base URL of the target, e.g. http://127.0.0.1:8080 (protocol v1) or http://127.0.0.1:8000/faye (Bayeux). */
  target: string;
  /** --protocol: 'v1' (default), 'nchan', 'bayeux', a profile FILE.json or a module FILE.mjs (docs/targets.md). */
  protocol?: string;
  /** --target-option key=value pairs, checked by the protocol. */
  targetOptions?: Readonly<Record<string, string>>;
  /** 'Name: value' lines (value 'env:VAR' reads the environment) or a name -> value map. */
  headers?: readonly string[] | Readonly<Record<string, string>>;
  /** Where env: header values are read from; process.env by default. */
  env?: NodeJS.ProcessEnv;
  slo?: string;
  /** Stop scheduling after this long (ms); the plan's own end otherwise. */
  durationMs?: number;
  /** timeout_s of every long-poll. */
  pollTimeoutS?: number;
  backoff?: Partial<BackoffPolicy>;
  /** Sockets shared by publishes (each subscriber also holds one connection of its own for its long-polls). */
  connections?: number;
  /** Publish requests time out after this long (ms) and are retried. */
  requestTimeoutMs?: number;
  release?: string | null;
  /** Seed of the backoff jitter and the topic nonce. */
  seed?: number;
  /** Schedule lag or event-loop delay p99 above this (ms) makes the run generator-bound. */
  generatorLagLimitMs?: number;
  /** Per-second snapshot period (ms); 1000 except in tests. */
  tickMs?: number;
  /** Topic prefix; a fresh random one per run by default. */
  runNonce?: string;
  scrape?: { url: string; intervalMs?: number };
  /** The run configuration file (--config) the options came from: absolute path and sha256. */
  config?: { path: string; sha256: string };
  run: RunDescription;
}

export interface ReplayOptions {
  target: string;
  protocol: string;
  targetOptions: Record<string, string>;
  headers: Record<string, string>;
  headerNames: string[];
  slo: Slo;
  durationMs: number | undefined;
  pollTimeoutS: number;
  backoff: BackoffPolicy;
  connections: number;
  requestTimeoutMs: number;
  release: string | null;
  seed: number;
  generatorLagLimitMs: number;
  tickMs: number;
  runNonce: string | undefined;
  scrape: { url: string; intervalMs: number } | undefined;
  config?: { path: string; sha256: string };
  run: RunDescription;
}

export const replayDefaults = {
  /** As the platform's own clients: "a poll ends when messages are delivered or after 25 s". */
  pollTimeoutS: 25,
  /** Publish sockets; long-polls have one connection per subscriber on top (RLIMIT_NOFILE caps the sum). */
  connections: 256,
  requestTimeoutMs: 10_000,
  generatorLagLimitMs: 200,
  tickMs: 1000,
  scrapeIntervalMs: 5000,
} as const;

/** Collects every problem at once, each naming its CLI flag, and throws them together. */
export function resolveReplayOptions(input: ReplayOptionsInput): ReplayOptions {
  const problems: string[] = [];
  const check = (ok: boolean, flag: string, message: string): void => {
    if (!ok) problems.push(`${flag}: ${message}`);
  };

  let target = input.target;
  try {
    const u = new URL(target);
    check(u.protocol === 'http:' || u.protocol === 'https:', '--target', `must be an http(s) URL, got ${target}`);
    target = target.replace(/\/+$/, '');
  } catch {
    problems.push(`--target: "${target}" is not a URL (e.g. http://127.0.0.1:8080)`);
  }

  const parsedHeaders = parseHeaders(input.headers, input.env ?? process.env);
  problems.push(...parsedHeaders.problems);
  const headers = parsedHeaders.headers;
  const protocol = input.protocol ?? 'v1';
  check(protocol.trim() !== '', '--protocol', 'must name a protocol (v1, nchan, bayeux) or a FILE.json / FILE.mjs');

  let slo: Slo | undefined;
  try {
    slo = parseSlo(input.slo ?? defaultSlo);
  } catch (err) {
    problems.push((err as Error).message);
  }

  const positive = (v: number | undefined, flag: string, what: string, integer = false): void => {
    if (v === undefined) return;
    check(Number.isFinite(v) && v > 0 && (!integer || Number.isInteger(v)), flag, `${what} must be a positive ${integer ? 'integer' : 'number'}, got ${v}`);
  };
  positive(input.durationMs, '--duration', 'the duration');
  const pollTimeoutS = input.pollTimeoutS ?? replayDefaults.pollTimeoutS;
  check(Number.isFinite(pollTimeoutS) && pollTimeoutS >= 1 && pollTimeoutS <= 300, '--poll-timeout', `must be 1-300 seconds, got ${pollTimeoutS}`);
  const backoff: BackoffPolicy = { ...defaultBackoff, ...input.backoff };
  positive(backoff.baseMs, '--backoff-base', 'the backoff base');
  positive(backoff.capMs, '--backoff-cap', 'the backoff cap');
  check(!(backoff.capMs < backoff.baseMs), '--backoff-cap', `must not be below the base (${backoff.baseMs} ms)`);
  const connections = input.connections ?? replayDefaults.connections;
  positive(connections, '--publish-connections', 'the connection count', true);
  const requestTimeoutMs = input.requestTimeoutMs ?? replayDefaults.requestTimeoutMs;
  positive(requestTimeoutMs, 'requestTimeoutMs', 'the request timeout');
  const generatorLagLimitMs = input.generatorLagLimitMs ?? replayDefaults.generatorLagLimitMs;
  positive(generatorLagLimitMs, '--max-lag', 'the lag limit');
  const tickMs = input.tickMs ?? replayDefaults.tickMs;
  positive(tickMs, 'tickMs', 'the tick');
  const seed = input.seed ?? input.run.seed;
  check(Number.isInteger(seed), '--seed', `must be an integer, got ${seed}`);
  if (input.runNonce !== undefined) check(/^[A-Za-z0-9._-]{1,64}$/.test(input.runNonce), 'runNonce', 'must be 1-64 of [A-Za-z0-9._-]');
  let scrape: ReplayOptions['scrape'];
  if (input.scrape) {
    try {
      const u = new URL(input.scrape.url);
      check(u.protocol === 'http:' || u.protocol === 'https:', '--scrape', `must be an http(s) URL, got ${input.scrape.url}`);
    } catch {
      problems.push(`--scrape: "${input.scrape.url}" is not a URL (e.g. http://127.0.0.1:8080/metrics)`);
    }
    scrape = { url: input.scrape.url, intervalMs: input.scrape.intervalMs ?? replayDefaults.scrapeIntervalMs };
  }
  const r = input.run;
  check(Number.isFinite(r.scale) && r.scale > 0, '--scale', `must be a positive number, got ${r.scale}`);
  check(Number.isFinite(r.speed) && r.speed > 0, '--speed', `must be a positive number, got ${r.speed}`);

  if (problems.length > 0 || slo === undefined) {
    throw new UsageError(problems.length === 1 ? problems[0]! : `invalid options:\n  ${problems.join('\n  ')}`);
  }
  return {
    target,
    protocol,
    targetOptions: { ...input.targetOptions },
    headers,
    headerNames: Object.keys(headers),
    slo,
    durationMs: input.durationMs,
    pollTimeoutS,
    backoff,
    connections,
    requestTimeoutMs,
    release: input.release ?? null,
    seed,
    generatorLagLimitMs,
    tickMs,
    runNonce: input.runNonce,
    scrape,
    config: input.config,
    run: r,
  };
}

/** The options as stored with the run: everything but header values. */
export function describeOptions(o: ReplayOptions): Record<string, unknown> {
  return {
    target: redactUrl(o.target),
    protocol: o.protocol,
    targetOptions: o.targetOptions,
    headerNames: o.headerNames,
    slo: o.slo.text,
    lossLimitMs: o.slo.lossLimitMs,
    durationMs: o.durationMs ?? null,
    pollTimeoutS: o.pollTimeoutS,
    backoff: o.backoff,
    connections: o.connections,
    requestTimeoutMs: o.requestTimeoutMs,
    release: o.release,
    seed: o.seed,
    generatorLagLimitMs: o.generatorLagLimitMs,
    scrape: o.scrape ? { ...o.scrape, url: redactUrl(o.scrape.url) } : null,
    config: o.config ?? null,
    run: o.run,
  };
}

/** How the target is reached, from the options (the runtime, --workers' pre-flight). */
export function targetSpecOf(o: ReplayOptions): TargetSpec {
  return {
    protocol: o.protocol,
    url: o.target,
    headers: o.headers,
    pollTimeoutS: o.pollTimeoutS,
    requestTimeoutMs: o.requestTimeoutMs,
    publishConnections: o.connections,
    options: o.targetOptions,
  };
}

/** What every shard of one rehearsal must share (replay/result.ts): never a header value. */
export function resultSettingsOf(o: ReplayOptions, protocol: string): ResultSettings {
  return {
    rehearseVersion,
    release: o.release,
    target: redactUrl(o.target),
    protocol,
    targetOptions: o.targetOptions,
    headerNames: [...o.headerNames].sort(),
    slo: o.slo.text,
    lossLimitMs: o.slo.lossLimitMs,
    thresholdsMs: [...o.slo.thresholdsMs],
    durationMs: o.durationMs ?? null,
    pollTimeoutS: o.pollTimeoutS,
    backoff: { baseMs: o.backoff.baseMs, capMs: o.backoff.capMs },
    generatorLagLimitMs: o.generatorLagLimitMs,
    plan: o.run,
  };
}
