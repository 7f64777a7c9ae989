// Options of the embedded bus: defaults, validation in one place (the CLI and the typed API go
// through the same checks), and the small text syntaxes for durations and retention.

import { parseDuration } from '../core/duration.js';
import { UsageError } from '../core/errors.js';
import type { Clock } from '../core/clock.js';
import type { FaultConfig } from './faults.js';

export interface RetentionOptions {
  /** Messages kept per topic (the oldest are dropped first). */
  messages?: number;
  /** Age in milliseconds after which a message is dropped. */
  ms?: number;
}

export interface BusOptions {
  /** Interface to bind. Default 127.0.0.1. */
  host?: string;
  /** TCP port; 0 picks a free one. Default 0. */
  port?: number;
  /** Poll timeout when a subscribe request does not send timeout_s. Default 25. */
  pollTimeoutS?: number;
  /** Per-topic retention by count and age. Default 10,000 messages and 10 minutes. */
  retention?: RetentionOptions;
  /** Cap on open (waiting) long-polls; a subscribe that would wait beyond it gets 503. Default none. */
  maxPolls?: number;
  /** Largest request body accepted; larger ones get 413. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Most messages one subscribe answer carries; the cursors say where it stopped. Default 1000. */
  maxMessagesPerAnswer?: number;
  faults?: FaultConfig;
  /** Seed of every fault decision. Default 1, so runs are reproducible unless asked otherwise. */
  seed?: number;
  clock?: Clock;
}

export interface ResolvedBusOptions {
  host: string;
  port: number;
  pollTimeoutS: number;
  maxPollTimeoutS: number;
  retention: { messages: number; ms: number };
  maxPolls: number;
  maxBodyBytes: number;
  maxMessagesPerAnswer: number;
  faults: FaultConfig;
  seed: number;
}

export const busDefaults = {
  host: '127.0.0.1',
  port: 0,
  pollTimeoutS: 25,
  /** A client may ask for at most this timeout_s; longer waits only hide dead connections. */
  maxPollTimeoutS: 300,
  retention: { messages: 10_000, ms: 10 * 60_000 },
  maxBodyBytes: 1024 * 1024,
  maxMessagesPerAnswer: 1000,
  seed: 1,
} as const;

/** Merges defaults and collects every problem at once, naming the CLI flag of each. */
export function resolveBusOptions(options: BusOptions = {}): ResolvedBusOptions {
  const problems: string[] = [];
  const check = (ok: boolean, flag: string, message: string): void => {
    if (!ok) problems.push(`${flag}: ${message}`);
  };
  const host = options.host ?? busDefaults.host;
  check(typeof host === 'string' && host.length > 0, '--host', 'must be a host name or address');
  const port = options.port ?? busDefaults.port;
  check(Number.isInteger(port) && port >= 0 && port <= 65535, '--port', `must be an integer 0-65535, got ${port}`);
  const pollTimeoutS = options.pollTimeoutS ?? busDefaults.pollTimeoutS;
  check(
    Number.isFinite(pollTimeoutS) && pollTimeoutS >= 0 && pollTimeoutS <= busDefaults.maxPollTimeoutS,
    '--poll-timeout',
    `must be a number of seconds from 0 to ${busDefaults.maxPollTimeoutS}, got ${pollTimeoutS}`,
  );
  const retention = {
    messages: options.retention?.messages ?? busDefaults.retention.messages,
    ms: options.retention?.ms ?? busDefaults.retention.ms,
  };
  check(Number.isInteger(retention.messages) && retention.messages >= 1, '--retention', `message count must be an integer >= 1, got ${retention.messages}`);
  check(Number.isFinite(retention.ms) && retention.ms > 0, '--retention', `age must be a positive duration, got ${retention.ms} ms`);
  const maxPolls = options.maxPolls ?? Number.POSITIVE_INFINITY;
  check(maxPolls === Number.POSITIVE_INFINITY || (Number.isInteger(maxPolls) && maxPolls >= 0), '--max-polls', `must be an integer >= 0, got ${maxPolls}`);
  const maxBodyBytes = options.maxBodyBytes ?? busDefaults.maxBodyBytes;
  check(Number.isInteger(maxBodyBytes) && maxBodyBytes >= 64, 'maxBodyBytes', `must be an integer >= 64, got ${maxBodyBytes}`);
  const maxMessagesPerAnswer = options.maxMessagesPerAnswer ?? busDefaults.maxMessagesPerAnswer;
  check(Number.isInteger(maxMessagesPerAnswer) && maxMessagesPerAnswer >= 1, 'maxMessagesPerAnswer', `must be an integer >= 1, got ${maxMessagesPerAnswer}`);
  const seed = options.seed ?? busDefaults.seed;
  check(Number.isInteger(seed), '--seed', `must be an integer, got ${seed}`);
  if (problems.length > 0) throw new UsageError(problems.join('\n'));
  return {
    host,
    port,
    pollTimeoutS,
    maxPollTimeoutS: busDefaults.maxPollTimeoutS,
    retention,
    maxPolls,
    maxBodyBytes,
    maxMessagesPerAnswer,
    faults: options.faults ?? {},
    seed,
  };
}

/**
 * `--retention` value: a message count ('10000'), an age ('5m'), or both separated by a comma
 * ('10000,5m'). Whatever is not given keeps its default.
 */
export function parseRetention(spec: string): RetentionOptions {
  const out: RetentionOptions = {};
  const parts = spec.split(',').map((p) => p.trim());
  for (const part of parts) {
    if (/^\d+$/.test(part)) {
      const n = Number(part);
      if (n < 1 || out.messages !== undefined) throw retentionError(spec);
      out.messages = n;
      continue;
    }
    const ms = parseDuration(part);
    if (ms === null || ms <= 0 || out.ms !== undefined) throw retentionError(spec);
    out.ms = ms;
  }
  return out;
}

function retentionError(spec: string): UsageError {
  return new UsageError(
    `"${spec}" is not a retention: give a message count per topic (10000), an age (5m, 90s, 1h), or both (10000,5m)`,
    '--retention',
  );
}
