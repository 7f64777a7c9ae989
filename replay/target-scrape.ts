// Target health for `replay --scrape`: samples the target's Prometheus text-format endpoint
// every few seconds while a run lasts; the runtime stores the samples in run_scrapes and the
// report charts them beside the client-side view. Parsing is pure; the scraper takes its clock
// and fetch/dispatcher from the caller and never stops on a failing endpoint.

import { fetch as undiciFetch, type Dispatcher } from 'undici';
import { systemClock, type Clock } from '../core/clock.js';

export interface PromSample {
  metric: string;
  /** Label pairs in exposition order, values unescaped. */
  labels: Record<string, string>;
  value: number;
  /** The optional timestamp on the line (ms since the epoch). */
  timestampMs: number | null;
}

export interface PromExposition {
  samples: PromSample[];
  /** # TYPE lines: metric family -> counter, gauge, histogram, summary, untyped. */
  types: Map<string, string>;
  /** Lines that could not be parsed (1-based numbers), skipped. */
  badLines: number[];
}

/** A scraped sample as the runtime stores it in run_scrapes. */
export interface TargetSample {
  /** Ms since the scrape's origin (the run's start). */
  atMs: number;
  metric: string;
  /** Canonical form without braces, keys sorted: `code="200",method="GET"`; '' when none. */
  labels: string;
  value: number;
}

const namePattern = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const labelNamePattern = /^[a-zA-Z_][a-zA-Z0-9_]*/;

/** Parses the Prometheus text exposition format (version 0.0.4). Never throws on bad lines. */
export function parsePrometheusText(text: string): PromExposition {
  const samples: PromSample[] = [];
  const types = new Map<string, string>();
  const badLines: number[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '').trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^#\s*TYPE\s+(\S+)\s+(\S+)/.exec(line);
      if (m) types.set(m[1]!, m[2]!.toLowerCase());
      continue; // HELP and free comments carry nothing we chart
    }
    const sample = parseSampleLine(line);
    if (sample) samples.push(sample);
    else badLines.push(i + 1);
  }
  return { samples, types, badLines };
}

function parseSampleLine(line: string): PromSample | null {
  const nameMatch = namePattern.exec(line);
  if (!nameMatch) return null;
  const metric = nameMatch[0];
  let pos = metric.length;
  const labels: Record<string, string> = {};
  if (line[pos] === '{') {
    pos++;
    for (;;) {
      while (line[pos] === ' ' || line[pos] === '\t') pos++;
      if (line[pos] === '}') {
        pos++;
        break;
      }
      const ln = labelNamePattern.exec(line.slice(pos));
      if (!ln) return null;
      pos += ln[0].length;
      while (line[pos] === ' ') pos++;
      if (line[pos] !== '=') return null;
      pos++;
      while (line[pos] === ' ') pos++;
      if (line[pos] !== '"') return null;
      pos++;
      let value = '';
      for (;;) {
        const c = line[pos];
        if (c === undefined) return null; // unterminated quote
        if (c === '\\') {
          const next = line[pos + 1];
          value += next === 'n' ? '\n' : next === '\\' ? '\\' : next === '"' ? '"' : `\\${next ?? ''}`;
          pos += 2;
          continue;
        }
        if (c === '"') {
          pos++;
          break;
        }
        value += c;
        pos++;
      }
      labels[ln[0]] = value;
      while (line[pos] === ' ') pos++;
      if (line[pos] === ',') {
        pos++;
        continue;
      }
      if (line[pos] === '}') {
        pos++;
        break;
      }
      return null;
    }
  }
  const rest = line.slice(pos).trim().split(/\s+/);
  if (rest.length < 1 || rest.length > 2 || rest[0] === '') return null;
  const value = parseValue(rest[0]!);
  if (value === null) return null;
  let timestampMs: number | null = null;
  if (rest.length === 2) {
    const ts = Number(rest[1]);
    if (!Number.isFinite(ts)) return null;
    timestampMs = ts;
  }
  return { metric, labels, value, timestampMs };
}

function parseValue(text: string): number | null {
  switch (text) {
    case '+Inf':
    case 'Inf':
      return Infinity;
    case '-Inf':
      return -Infinity;
    case 'NaN':
      return NaN;
  }
  // Number('') is 0 and Number('0x10') is 16: accept only decimal float syntax.
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return null;
  return Number(text);
}

/** Canonical label text: keys sorted, values escaped as in the exposition format. */
export function canonicalLabels(labels: Record<string, string>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]!.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`)
    .join(',');
}

/** Inverse of canonicalLabels, for readers of run_scrapes. */
export function parseCanonicalLabels(text: string): Record<string, string> {
  if (text === '') return {};
  const parsed = parseSampleLine(`x{${text}} 0`);
  return parsed ? parsed.labels : {};
}

export interface TargetScrapeOptions {
  /** The target's metrics endpoint, e.g. http://127.0.0.1:8080/metrics. */
  url: string;
  /** Time between the starts of two scrapes; the first scrape is immediate. */
  intervalMs: number;
  /** Receives each successful scrape's samples (NaN values dropped: SQLite cannot store NaN). */
  onSamples(samples: TargetSample[]): void;
  /** Told about a failed scrape; the scraper keeps going. */
  onError?(error: Error): void;
  /** Keep only these metrics (e.g. skip histogram buckets); default keeps everything. */
  filter?(metric: string): boolean;
  clock?: Clock;
  /** Monotonic time atMs counts from (the run's start); default: when the scraper starts. */
  originMonoMs?: number;
  /** Per-request timeout; default min(intervalMs, 5000). */
  timeoutMs?: number;
  fetch?: typeof undiciFetch;
  dispatcher?: Dispatcher;
}

export interface TargetScrape {
  /** Stops scheduling, aborts a scrape in flight and resolves when nothing more will be delivered. */
  stop(): Promise<void>;
  /** Resolves after the next scrape attempt completes (tests wait on it instead of sleeping). */
  nextScrape(): Promise<void>;
}

export function startTargetScrape(options: TargetScrapeOptions): TargetScrape {
  if (!(options.intervalMs > 0)) throw new RangeError(`intervalMs must be positive, got ${options.intervalMs}`);
  const clock = options.clock ?? systemClock;
  const origin = options.originMonoMs ?? clock.monoMs();
  const doFetch = options.fetch ?? undiciFetch;
  const timeoutMs = options.timeoutMs ?? Math.min(options.intervalMs, 5000);
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let inFlight: Promise<void> | null = null;
  let controller: AbortController | null = null;
  let waiters: Array<() => void> = [];

  const scrapeOnce = async (): Promise<void> => {
    const started = clock.monoMs();
    controller = new AbortController();
    const timeout = setTimeout(() => controller?.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    try {
      const init: Parameters<typeof undiciFetch>[1] = { signal: controller.signal, headers: { accept: 'text/plain; version=0.0.4' } };
      if (options.dispatcher) init.dispatcher = options.dispatcher;
      const response = await doFetch(options.url, init);
      const body = await response.text();
      if (!response.ok) throw new Error(`${options.url}: HTTP ${response.status}`);
      if (stopped) return;
      const atMs = Math.round(started - origin);
      const out: TargetSample[] = [];
      for (const s of parsePrometheusText(body).samples) {
        if (Number.isNaN(s.value)) continue;
        if (options.filter && !options.filter(s.metric)) continue;
        out.push({ atMs, metric: s.metric, labels: canonicalLabels(s.labels), value: s.value });
      }
      options.onSamples(out);
    } catch (err) {
      if (!stopped) {
        const e = err instanceof Error ? err : new Error(String(err));
        options.onError?.(e.message.startsWith(options.url) ? e : new Error(`${options.url}: ${e.message}`, { cause: e }));
      }
    } finally {
      clearTimeout(timeout);
      controller = null;
    }
  };

  const tick = (): void => {
    timer = null;
    if (stopped) return;
    const started = clock.monoMs();
    inFlight = scrapeOnce().finally(() => {
      inFlight = null;
      const w = waiters;
      waiters = [];
      for (const resolve of w) resolve();
      if (stopped) return;
      // Keep the cadence from start to start; a slow endpoint never causes overlapping scrapes.
      const wait = Math.max(0, options.intervalMs - (clock.monoMs() - started));
      timer = setTimeout(tick, wait);
      timer.unref?.();
    });
  };
  tick();

  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      controller?.abort(new Error('scrape stopped'));
      if (inFlight) await inFlight;
      for (const resolve of waiters.splice(0)) resolve();
    },
    nextScrape() {
      if (stopped) return Promise.resolve();
      return new Promise((resolve) => waiters.push(resolve));
    },
  };
}
