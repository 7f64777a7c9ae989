// Retry policy for every request a virtual user makes: exponential backoff with full jitter
// (AWS architecture blog), honouring Retry-After. Pure: the random source and "now" are passed in.

import type { Random } from '../stats/random.js';

export interface BackoffPolicy {
  /** First retry waits up to this long (ms). */
  baseMs: number;
  /** No computed wait exceeds this (ms); a server's Retry-After may ask for longer and is honoured. */
  capMs: number;
}

export const defaultBackoff: BackoffPolicy = { baseMs: 1000, capMs: 30_000 };

/** The ceiling of the jitter window before the `attempt`-th retry (attempt 0: first retry). */
export function backoffCeilingMs(policy: BackoffPolicy, attempt: number): number {
  // 2^attempt overflows to Infinity long after the cap bites; Math.min keeps it finite.
  return Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt, 60));
}

/**
 * Full jitter: uniform in [0, min(cap, base * 2^attempt)). A Retry-After from the server is a
 * floor: we never come back sooner than it asked.
 */
export function backoffDelayMs(policy: BackoffPolicy, attempt: number, rng: Random, retryAfterMs?: number): number {
  const jittered = rng.next() * backoffCeilingMs(policy, attempt);
  return retryAfterMs !== undefined && retryAfterMs > jittered ? retryAfterMs : jittered;
}

/** Expected total wait before the n-th request of a client that only ever fails (request 0 is immediate). */
export function expectedWaitBeforeRequest(policy: BackoffPolicy, n: number): number {
  let total = 0;
  for (let attempt = 0; attempt < n; attempt++) total += backoffCeilingMs(policy, attempt) / 2;
  return total;
}

/** Expected number of requests one always-failing client makes within `windowMs` of its first. */
export function expectedRequestsWithin(policy: BackoffPolicy, windowMs: number): number {
  let n = 0;
  while (expectedWaitBeforeRequest(policy, n + 1) <= windowMs && n < 1_000_000) n++;
  return n + 1;
}

/** Retry-After is either delta-seconds or an HTTP date (RFC 9110 10.2.3); anything else is ignored. */
export function parseRetryAfter(value: string | string[] | undefined, nowWallMs: number): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === '') return undefined;
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowWallMs);
}
