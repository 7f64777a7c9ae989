import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetch as undiciFetch } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import {
  canonicalLabels,
  parseCanonicalLabels,
  parsePrometheusText,
  startTargetScrape,
  type TargetSample,
} from '../../replay/target-scrape.js';

const exposition = [
  '# HELP bus_requests_total Requests by route and status.',
  '# TYPE bus_requests_total counter',
  'bus_requests_total{route="/publish",code="200"} 1027',
  'bus_requests_total{route="/subscribe", code="503"} 3 1712345678000',
  '# a free comment',
  '',
  '# TYPE bus_latency_seconds histogram',
  'bus_latency_seconds_bucket{le="0.5"} 120',
  'bus_latency_seconds_bucket{le="+Inf"} 130',
  'bus_latency_seconds_sum 12.5e0',
  'bus_latency_seconds_count 130',
  'weird_label{path="C:\\\\dir",msg="say \\"hi\\"\\nbye",empty=""} -1.5',
  'bus_gauge_inf +Inf',
  'bus_gauge_ninf -Inf',
  'bus_gauge_nan NaN',
  'bus_trailing_comma{a="1",} 2',
  'this is not a sample',
  'unterminated{a="1} 2',
  'bad_value 0x10',
  'process_start_time_seconds 1.7e9\r',
].join('\n');

describe('parsePrometheusText', () => {
  it('reads samples, labels with escapes, special values, timestamps and TYPE lines; skips comments', () => {
    const { samples, types, badLines } = parsePrometheusText(exposition);
    expect(types.get('bus_requests_total')).toBe('counter');
    expect(types.get('bus_latency_seconds')).toBe('histogram');
    const by = (metric: string) => samples.filter((s) => s.metric === metric);
    expect(by('bus_requests_total')).toEqual([
      { metric: 'bus_requests_total', labels: { route: '/publish', code: '200' }, value: 1027, timestampMs: null },
      { metric: 'bus_requests_total', labels: { route: '/subscribe', code: '503' }, value: 3, timestampMs: 1712345678000 },
    ]);
    expect(by('bus_latency_seconds_bucket').map((s) => [s.labels.le, s.value])).toEqual([
      ['0.5', 120],
      ['+Inf', 130],
    ]);
    expect(by('bus_latency_seconds_sum')[0]!.value).toBe(12.5);
    expect(by('weird_label')[0]!.labels).toEqual({ path: 'C:\\dir', msg: 'say "hi"\nbye', empty: '' });
    expect(by('weird_label')[0]!.value).toBe(-1.5);
    expect(by('bus_gauge_inf')[0]!.value).toBe(Infinity);
    expect(by('bus_gauge_ninf')[0]!.value).toBe(-Infinity);
    expect(by('bus_gauge_nan')[0]!.value).toBeNaN();
    expect(by('bus_trailing_comma')[0]!.labels).toEqual({ a: '1' });
    expect(by('process_start_time_seconds')[0]!.value).toBe(1.7e9);
    expect(badLines).toEqual([17, 18, 19]);
  });

  it('canonical labels sort keys, escape values, and read back unchanged', () => {
    const labels = { z: 'last', a: 'say "hi"\nC:\\dir' };
    const text = canonicalLabels(labels);
    expect(text).toBe('a="say \\"hi\\"\\nC:\\\\dir",z="last"');
    expect(parseCanonicalLabels(text)).toEqual(labels);
    expect(canonicalLabels({})).toBe('');
    expect(parseCanonicalLabels('')).toEqual({});
  });
});

describe('startTargetScrape', () => {
  const servers: http.Server[] = [];
  afterEach(async () => {
    await Promise.all(
      servers.splice(0).map((s) => {
        s.closeAllConnections();
        return new Promise((r) => s.close(r));
      }),
    );
  });

  async function serve(handler: http.RequestListener): Promise<string> {
    const server = http.createServer(handler);
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
  }

  it('samples the endpoint repeatedly, survives failures, drops NaN, stamps time from the origin', async () => {
    let hits = 0;
    const url = await serve((req, res) => {
      hits++;
      if (hits === 2) {
        res.writeHead(500).end('boom');
        return;
      }
      if (hits === 3) {
        req.socket.destroy(); // the connection dies mid-request
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(`# TYPE polls gauge\npolls{kind="open"} ${hits * 10}\nbroken NaN\n`);
    });
    let now = 1000;
    const clock = { nowMs: () => now, monoMs: () => now };
    const batches: TargetSample[][] = [];
    const errors: string[] = [];
    const scrape = startTargetScrape({
      url,
      intervalMs: 20,
      timeoutMs: 5000,
      clock,
      originMonoMs: 400,
      onSamples: (s) => {
        batches.push(s);
        now += 100;
      },
      onError: (e) => errors.push(e.message),
    });
    const deadline = Date.now() + 10_000;
    for (let i = 0; i < 200 && batches.length < 3 && Date.now() < deadline; i++) await scrape.nextScrape();
    await scrape.stop();
    expect(batches.length).toBeGreaterThanOrEqual(3);
    expect(batches[0]).toEqual([{ atMs: 600, metric: 'polls', labels: 'kind="open"', value: 10 }]);
    expect(batches[1]).toEqual([{ atMs: 700, metric: 'polls', labels: 'kind="open"', value: 40 }]);
    expect(errors[0]).toBe(`${url}: HTTP 500`);
    expect(errors[1]).toContain(url);
    expect(errors).toHaveLength(2);
    const after = hits;
    // stop() means stop: no timer is left to fire another request.
    await new Promise((r) => setImmediate(r));
    expect(hits).toBe(after);
  });

  it('keeps trying an endpoint that refuses connections, and stops cleanly', async () => {
    const url = await serve(() => undefined);
    await new Promise((r) => servers.pop()!.close(r)); // nothing listens there any more
    const errors: Error[] = [];
    const scrape = startTargetScrape({ url, intervalMs: 10, onSamples: () => expect.unreachable(), onError: (e) => errors.push(e) });
    for (let i = 0; i < 50 && errors.length < 3; i++) await scrape.nextScrape();
    await scrape.stop();
    expect(errors.length).toBeGreaterThanOrEqual(3);
    expect(errors[0]!.message).toContain(url);
  });

  it('times out a scrape that never answers without overlapping the next one', async () => {
    const url = await serve(() => undefined); // never answers
    let inFlight = 0;
    let maxInFlight = 0;
    const countingFetch: typeof undiciFetch = (input, init) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      return undiciFetch(input, init).finally(() => inFlight--);
    };
    const errors: Error[] = [];
    const scrape = startTargetScrape({ url, intervalMs: 10, timeoutMs: 50, fetch: countingFetch, onSamples: () => undefined, onError: (e) => errors.push(e) });
    for (let i = 0; i < 50 && errors.length < 2; i++) await scrape.nextScrape();
    await scrape.stop();
    expect(errors.length).toBeGreaterThanOrEqual(2);
    expect(errors[0]!.message).toMatch(/no answer within 50 ms/);
    expect(maxInFlight).toBe(1);
  });

  it('rejects a non-positive interval', () => {
    expect(() => startTargetScrape({ url: 'http://127.0.0.1:1/metrics', intervalMs: 0, onSamples: () => undefined })).toThrow(RangeError);
  });
});
