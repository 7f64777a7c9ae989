// Fault injection for the embedded bus: the `--fault` syntax and the seeded decisions. Every
// fault draws from its own random stream, so adding one fault does not change another's choices.

import { UsageError } from '../core/errors.js';
import { forkRandom, type Random } from '../stats/random.js';
import { parseDuration } from '../core/duration.js';

export interface FaultConfig {
  /** Each subscribe answer that carries messages is held for fixedMs + uniform[0, jitterMs). */
  latency?: { fixedMs: number; jitterMs: number };
  /** Fraction of published messages accepted and never stored. */
  drop?: number;
  /** Fraction of stored messages appended a second time (new seq, same id). */
  dup?: number;
  /** Fraction of messages held aside for ms, then appended (new seq at that time). */
  delay?: { fraction: number; ms: number };
  /** Fraction of publish/subscribe requests answered 503 without being processed. */
  error?: number;
  /** Windows, in ms since the bus started, in which publish/subscribe requests are read and never answered. */
  stalls?: Array<{ startMs: number; endMs: number }>;
  /**
   * A saturating server: published messages are served one after another at this many per
   * second before they become visible, so above it the queue and delivery latency grow without bound.
   */
  servicePerS?: number;
}

export type FaultName = 'latency' | 'drop' | 'dup' | 'delay' | 'error' | 'stall' | 'max_polls' | 'service';
export const faultNames: readonly FaultName[] = ['latency', 'drop', 'dup', 'delay', 'error', 'stall', 'max_polls', 'service'];

const syntax =
  'expected one of drop=<fraction>, dup=<fraction>, error=<fraction>, delay=<fraction>:<duration>, ' +
  'latency=<duration>[+<jitter>], stall=<from>-<to>, service=<messages>/s (durations like 50ms, 4s, 2m; fractions 0-1)';

/** Parses one `--fault` spec, e.g. `drop=0.02`, `delay=0.03:4s`, `latency=50ms+20ms`, `stall=30s-40s`, `service=200/s`. */
export function parseFault(spec: string): FaultConfig {
  const bad = (why: string): UsageError => new UsageError(`"${spec}": ${why}; ${syntax}`, '--fault');
  const eq = spec.indexOf('=');
  if (eq < 0) throw bad('missing "="');
  const kind = spec.slice(0, eq).trim();
  const value = spec.slice(eq + 1).trim();
  const fraction = (text: string): number => {
    if (!/^(\d+(\.\d*)?|\.\d+)$/.test(text)) throw bad(`"${text}" is not a fraction`);
    const p = Number(text);
    if (p < 0 || p > 1) throw bad(`fraction ${text} is outside 0-1`);
    return p;
  };
  const duration = (text: string): number => {
    const ms = parseDuration(text);
    if (ms === null) throw bad(`"${text}" is not a duration (give a unit: 50ms, 4s, 2m)`);
    return ms;
  };
  switch (kind) {
    case 'drop':
      return { drop: fraction(value) };
    case 'dup':
      return { dup: fraction(value) };
    case 'error':
      return { error: fraction(value) };
    case 'delay': {
      const [p, d, ...rest] = value.split(':');
      if (p === undefined || d === undefined || rest.length > 0) throw bad('delay takes <fraction>:<duration>');
      return { delay: { fraction: fraction(p), ms: duration(d) } };
    }
    case 'latency': {
      const [fixed, jitter, ...rest] = value.split('+');
      if (fixed === undefined || rest.length > 0) throw bad('latency takes <duration>[+<jitter>]');
      return { latency: { fixedMs: duration(fixed), jitterMs: jitter === undefined ? 0 : duration(jitter) } };
    }
    case 'stall': {
      const [from, to, ...rest] = value.split('-');
      if (from === undefined || to === undefined || rest.length > 0) throw bad('stall takes <from>-<to>');
      const startMs = duration(from);
      const endMs = duration(to);
      if (endMs <= startMs) throw bad('the stall window ends before it starts');
      return { stalls: [{ startMs, endMs }] };
    }
    case 'service': {
      const m = /^(\d+(?:\.\d*)?)(?:\/s)?$/.exec(value);
      if (!m || !(Number(m[1]) > 0)) throw bad(`"${value}" is not a positive rate (messages per second, e.g. 200/s)`);
      return { servicePerS: Number(m[1]) };
    }
    default:
      throw bad(`unknown fault "${kind}"`);
  }
}

/** Combines several specs: a later spec of the same kind replaces an earlier one; stall windows add up. */
export function mergeFaults(configs: readonly FaultConfig[]): FaultConfig {
  const out: FaultConfig = {};
  for (const c of configs) {
    const { stalls, ...rest } = c;
    Object.assign(out, rest);
    if (stalls) out.stalls = [...(out.stalls ?? []), ...stalls];
  }
  return out;
}

/** The decisions of one running bus. Pure apart from its seeded random streams. */
export class FaultInjector {
  private readonly dropRng: Random;
  private readonly dupRng: Random;
  private readonly delayRng: Random;
  private readonly errorRng: Random;
  private readonly latencyRng: Random;

  constructor(
    readonly config: FaultConfig,
    seed: number,
  ) {
    this.dropRng = forkRandom(seed, 'drop');
    this.dupRng = forkRandom(seed, 'dup');
    this.delayRng = forkRandom(seed, 'delay');
    this.errorRng = forkRandom(seed, 'error');
    this.latencyRng = forkRandom(seed, 'latency');
  }

  /**
   * The fate of one published message. Every stream is drawn for every message, whatever the
   * others decide, so a message's fate depends only on the seed and its position.
   */
  messageFate(): { drop: boolean; dup: boolean; delayMs: number } {
    const drop = bernoulli(this.dropRng, this.config.drop);
    const dup = bernoulli(this.dupRng, this.config.dup);
    const delayed = bernoulli(this.delayRng, this.config.delay?.fraction);
    return { drop, dup: !drop && dup, delayMs: !drop && delayed ? (this.config.delay?.ms ?? 0) : 0 };
  }

  /** True when this publish/subscribe request is to be answered 503. */
  requestFails(): boolean {
    return bernoulli(this.errorRng, this.config.error);
  }

  /** Extra hold of a subscribe answer that carries messages, or 0. */
  answerLatencyMs(): number {
    const l = this.config.latency;
    if (!l || (l.fixedMs === 0 && l.jitterMs === 0)) return 0;
    return l.fixedMs + this.latencyRng.next() * l.jitterMs;
  }

  /** True when `sinceStartMs` falls inside a stall window. */
  stalled(sinceStartMs: number): boolean {
    return this.stallRemainingMs(sinceStartMs) > 0;
  }

  /** How long the stall window containing `sinceStartMs` still lasts; 0 outside every window. */
  stallRemainingMs(sinceStartMs: number): number {
    let remaining = 0;
    for (const w of this.config.stalls ?? []) {
      if (sinceStartMs >= w.startMs && sinceStartMs < w.endMs) remaining = Math.max(remaining, w.endMs - sinceStartMs);
    }
    return remaining;
  }
}

function bernoulli(rng: Random, p: number | undefined): boolean {
  // Draw even when p is 0 or absent so streams stay aligned across configurations.
  const u = rng.next();
  return p !== undefined && u < p;
}
