import { EventEmitter } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { FaultInjector, parseFault, startBus, type RunningBus } from '../../bus/index.js';
import { MemoryOutput } from '../../cli/io.js';
import { main } from '../../cli/program.js';
import { RehearseError } from '../../core/errors.js';
import { replayPreflight, type ProbeReport } from '../../replay/probe.js';

// `rehearse probe` through the real CLI against real servers on 127.0.0.1: the embedded bus, a
// closed port, a wrong path, an auth proxy and a body-rewriting proxy in front of the bus.

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function bus(options: Parameters<typeof startBus>[0] = {}): Promise<RunningBus> {
  const b = await startBus({ port: 0, ...options });
  closers.push(() => b.close());
  return b;
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A node:http server on port 0 that hands every request (with its body) to `handle`. */
async function server(handle: (req: http.IncomingMessage, body: string) => Promise<Answer>): Promise<string> {
  const s = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      handle(req, Buffer.concat(chunks).toString('utf8')).then(
        (a) => res.writeHead(a.status, a.headers).end(a.body),
        (err: Error) => res.writeHead(502, { 'content-type': 'text/plain' }).end(err.message),
      );
    });
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  closers.push(async () => {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  });
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

/** Forwards a request to `upstream` unchanged (undici) and returns its answer. */
async function forward(upstream: string, req: http.IncomingMessage, body: string): Promise<Answer> {
  const r = await request(upstream + req.url, { method: req.method as 'POST', headers: { 'content-type': 'application/json' }, ...(body ? { body } : {}) });
  return { status: r.statusCode, headers: { 'content-type': 'application/json' }, body: await r.body.text() };
}

/** A port nothing listens on: bound on port 0, then closed. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

async function probe(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> {
  const io = { stdout: new MemoryOutput(), stderr: new MemoryOutput(), env, signals: new EventEmitter() };
  const code = await main(['node', 'rehearse', 'probe', ...args], io);
  return { code, out: io.stdout.text(), err: io.stderr.text() };
}

async function probeJson(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; report: ProbeReport; raw: string }> {
  const r = await probe([...args, '--json'], env);
  expect(r.err).toBe('');
  return { code: r.code, report: JSON.parse(r.out) as ProbeReport, raw: r.out };
}

describe('rehearse probe', () => {
  it('passes against the embedded bus with protocol v1, printing each exchange', async () => {
    const b = await bus();
    const { code, out } = await probe(['--target', b.url]);
    expect(code).toBe(0);
    expect(out).toContain(`POST ${b.url}/v1/events/publish -> HTTP 200`);
    expect(out).toContain(`POST ${b.url}/v1/events/subscribe -> HTTP 200`);
    expect(out).toMatch(/read: accepted 1 message\(s\)/);
    expect(out).toMatch(/\nPASS: v1 works at /);
    expect(out).not.toContain('hint:');

    const json = await probeJson(['--target', b.url, '--protocol', 'v1']);
    expect(json.code).toBe(0);
    expect(json.report).toMatchObject({ ok: true, protocol: 'v1', url: b.url });
    expect(json.report.failure).toBeUndefined();
    expect(json.report.steps.map((s) => s.phase)).toEqual(['open', 'publish', 'poll']);
    expect(json.report.roundTripMs).toBeGreaterThanOrEqual(0);
    expect(b.stats().publishedMessages).toBe(2);
  });

  it('a closed port: nothing answers, exit 1', async () => {
    const port = await closedPort();
    const { code, out } = await probe(['--target', `http://127.0.0.1:${port}`, '--timeout', '2s']);
    expect(code).toBe(1);
    expect(out).toContain('ECONNREFUSED');
    expect(out).toContain(`hint: nothing answers at http://127.0.0.1:${port}: is the bus running, is the port right?`);
  });

  it("a URL whose paths the bus does not serve: not found, exit 1", async () => {
    const b = await bus();
    const { code, report } = await probeJson(['--target', `${b.url}/nchan`]);
    expect(code).toBe(1);
    expect(report.failure).toBe('not-found');
    expect(report.hints).toEqual([`the bus does not serve v1's paths at ${b.url}/nchan: wrong --protocol, wrong base URL, or paths that need --target-option`]);
    expect(report.steps.at(-1)?.trace[0]?.status).toBe(404);
  });

  it('--protocol nchan against the embedded v1 bus: not found, exit 1', async () => {
    const b = await bus();
    const { code, report } = await probeJson(['--target', b.url, '--protocol', 'nchan', '--timeout', '3s']);
    expect(code).toBe(1);
    expect(report.protocol).toBe('nchan');
    expect(report.failure).toBe('not-found');
    expect(report.hints).toEqual([`the bus does not serve nchan's paths at ${b.url}: wrong --protocol, wrong base URL, or paths that need --target-option`]);
  });

  it('a bus behind auth: the auth hint without credentials; passes with --header env:TOKEN, and the secret is never printed', async () => {
    const b = await bus();
    const secret = 'Bearer s3cret';
    const proxy = await server(async (req, body) => {
      if (req.headers.authorization !== secret) return { status: 401, headers: { 'content-type': 'application/json' }, body: '{"error":"missing or wrong token"}' };
      const a = await forward(b.url, req, body);
      // A careless bus that echoes the credentials: the probe must still not print them.
      if (req.url === '/v1/events/publish') a.body = JSON.stringify({ ...JSON.parse(a.body), echo: req.headers.authorization });
      return a;
    });

    const denied = await probe(['--target', proxy]);
    expect(denied.code).toBe(1);
    expect(denied.out).toContain('HTTP 401');
    expect(denied.out).toContain("hint: the bus wants credentials: pass them with --header 'Authorization: env:TOKEN'");

    const env = { TOKEN: secret };
    const allowed = await probe(['--target', proxy, '--header', 'Authorization: env:TOKEN'], env);
    expect(allowed.code).toBe(0);
    expect(allowed.out).toContain('headers sent: Authorization (values not shown)');
    expect(allowed.out).toContain('"echo":"<redacted>"');
    expect(allowed.out + allowed.err).not.toContain('s3cret');
    const json = await probeJson(['--target', proxy, '--header', 'Authorization: env:TOKEN'], env);
    expect(json.code).toBe(0);
    expect(json.raw).not.toContain('s3cret');

    const wrong = await probe(['--target', proxy, '--header', 'Authorization: Bearer nope'], env);
    expect(wrong.code).toBe(1);
    expect(wrong.out).toContain('hint: the bus refused the credentials sent (headers: Authorization)');
    expect(wrong.out).not.toContain('Bearer nope');
  });

  it('a bus that rewrites message bodies: the rewritten hint, exit 1', async () => {
    const b = await bus();
    const proxy = await server(async (req, body) => {
      const a = await forward(b.url, req, body);
      if (req.url === '/v1/events/subscribe' && a.status === 200) {
        const v = JSON.parse(a.body) as { messages: Array<{ data: unknown }> };
        for (const m of v.messages) m.data = 'rewritten by the bus';
        a.body = JSON.stringify(v);
      }
      return a;
    });
    const { code, report } = await probeJson(['--target', proxy]);
    expect(code).toBe(1);
    expect(report.failure).toBe('rewritten');
    expect(report.hints).toEqual(["a message came back but without rehearse's id: does the bus pass the body through unchanged?"]);
  });

  it('a bus answering 503 every time is overloaded: exit 0 with a warning', async () => {
    const busy = await server(async () => ({ status: 503, headers: { 'content-type': 'application/json', 'retry-after': '1' }, body: '{"error":"busy"}' }));
    const { code, out } = await probe(['--target', busy, '--timeout', '2s']);
    expect(code).toBe(0);
    expect(out).toMatch(/\nPASS \(with a warning\): /);
    expect(out).toContain('hint: warning: ');
    expect(out).toContain('HTTP 503 on every attempt');
  });

  it('a bus that drops the first probe message: a second round trip with a new message passes', async () => {
    // Seed 2 drops the first message of drop=0.5 and keeps the second (checked here, not assumed).
    const fates = new FaultInjector({ drop: 0.5 }, 2);
    expect([fates.messageFate().drop, fates.messageFate().drop]).toEqual([true, false]);
    const b = await bus({ seed: 2, faults: parseFault('drop=0.5') });
    const { code, report } = await probeJson(['--target', b.url, '--timeout', '3s']);
    expect(code).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.steps.filter((s) => s.phase === 'publish')).toHaveLength(2);
    expect(report.verdict).toContain('on attempt 2');
  });

  it('bad flags exit 2 and name every flag at fault', async () => {
    const r = await probe(['--target', 'not a url', '--timeout', 'soon', '--target-option', 'novalue', '--header', 'Authorization: env:UNSET']);
    expect(r.code).toBe(2);
    for (const flag of ['--target:', '--timeout:', '--target-option:', 'environment variable UNSET is not set']) expect(r.err).toContain(flag);
    const unknown = await probe(['--target', 'http://127.0.0.1:1', '--target-option', 'path=/x']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('protocol v1 has no option');
  });
});

describe('replayPreflight', () => {
  const spec = (url: string) => ({ protocol: 'v1', url, headers: {}, pollTimeoutS: 25, requestTimeoutMs: 5000, publishConnections: 1 });

  it('resolves for a working bus and throws REHEARSE_TARGET with the hint for a wrong path', async () => {
    const b = await bus();
    await expect(replayPreflight(spec(b.url), 'rtest.preflight')).resolves.toBeUndefined();
    const err = await replayPreflight(spec(`${b.url}/wrong`), 'rtest.preflight').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RehearseError);
    expect((err as RehearseError).code).toBe('REHEARSE_TARGET');
    expect((err as RehearseError).exitCode).toBe(2);
    expect((err as RehearseError).message).toContain(`hint: the bus does not serve v1's paths at ${b.url}/wrong`);
    expect((err as RehearseError).message).toContain(`last exchange: POST ${b.url}/wrong/v1/events/publish -> HTTP 404`);
  });

  it('lets an overloaded target through, with the warning handed to onWarning', async () => {
    const busy = await server(async () => ({ status: 503, headers: { 'content-type': 'application/json' }, body: '{"error":"busy"}' }));
    const warnings: string[] = [];
    await expect(replayPreflight(spec(busy), 'rtest.preflight', { timeoutMs: 1500, onWarning: (l) => warnings.push(l) })).resolves.toBeUndefined();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('HTTP 503 on every attempt');
  });
});
