// Benchmark of the embedded bus: open long-polls one process holds, messages/s delivered with
// fan-out, and RSS per 1,000 open polls. The bus and its clients run in separate processes.
//
//   npm run build && node dist/bench/bus.js [--runs 3] [--polls 19900] [--seconds 5]
//   (or: npx tsx bench/bus.ts ...)

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { startBus } from '../bus/index.js';
import { median } from '../stats/quantile.js';

const { values: args } = parseArgs({
  options: {
    role: { type: 'string', default: 'main' },
    url: { type: 'string', default: '' },
    runs: { type: 'string', default: '3' },
    polls: { type: 'string', default: '19900' },
    topics: { type: 'string', default: '50' },
    subscribers: { type: 'string', default: '500' },
    publishers: { type: 'string', default: '8' },
    batch: { type: 'string', default: '20' },
    seconds: { type: 'string', default: '5' },
    only: { type: 'string', default: '' },
  },
});

const self = [...process.execArgv, process.argv[1]!];

// ---------- roles run in child processes ----------

async function roleBus(): Promise<void> {
  const bus = await startBus({ port: 0, pollTimeoutS: 290 });
  process.stdout.write(`${bus.url}\n`);
  process.on('SIGTERM', () => void bus.close().then(() => process.exit(0)));
  // The orchestrator asks for memory after a full GC, so garbage not yet collected is not counted.
  const gc = (globalThis as { gc?: () => void }).gc;
  process.stdin.on('data', () => {
    gc?.();
    const m = process.memoryUsage();
    process.stdout.write(`${JSON.stringify({ rss: m.rss, heapUsed: m.heapUsed, gc: gc !== undefined })}\n`);
  });
}

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name.replace(/[{}"=]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

async function scrape(url: string): Promise<string> {
  const r = await fetch(`${url}/metrics`);
  return r.text();
}

/** Opens `count` long-polls, each on its own connection, then wakes them all with one publish. */
async function rolePolls(url: string, count: number): Promise<void> {
  const u = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  const topicCount = 1000;
  let answered = 0;
  let failed = 0;
  let allAnswered!: () => void;
  const done = new Promise<void>((r) => (allAnswered = r));
  const open = (i: number): void => {
    const body = JSON.stringify({ actor: `poll${i}`, topics: { [`p${i % topicCount}`]: null }, timeout_s: 280 });
    const req = http.request(
      { host: u.hostname, port: u.port, path: '/v1/events/subscribe', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) answered++;
          else failed++;
          if (answered + failed === count) allAnswered();
        });
      },
    );
    req.on('error', () => {
      failed++;
      if (answered + failed === count) allAnswered();
    });
    req.end(body);
  };
  const started = performance.now();
  const step = 500;
  for (let opened = 0; opened < count; ) {
    const next = Math.min(count, opened + step);
    for (let i = opened; i < next; i++) open(i);
    opened = next;
    // Ramp: let the bus register a batch before the next, so the listen backlog never overflows.
    for (let tries = 0; tries < 400; tries++) {
      const polls = metric(await scrape(url), 'rehearse_bus_open_polls');
      if (polls >= opened - failed) break;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  const rampS = (performance.now() - started) / 1000;
  const held = metric(await scrape(url), 'rehearse_bus_open_polls');
  process.stdout.write(`${JSON.stringify({ phase: 'held', held, failed, rampS })}\n`);
  // Wait for the parent to read RSS, then wake everyone: one message on each of the topics.
  await new Promise<void>((r) => process.stdin.once('data', () => r()));
  const wakeStart = performance.now();
  const messages = Array.from({ length: topicCount }, (_, i) => ({ topic: `p${i}`, id: `w${i}`, data: null }));
  const pub = await fetch(`${url}/v1/events/publish`, { method: 'POST', body: JSON.stringify({ actor: 'waker', messages }) });
  await pub.text();
  const publishS = (performance.now() - wakeStart) / 1000;
  const timeout = setTimeout(() => allAnswered(), 60_000);
  await done;
  clearTimeout(timeout);
  const wakeS = (performance.now() - wakeStart) / 1000;
  process.stdout.write(`${JSON.stringify({ phase: 'woken', answered, failed, wakeS, publishS })}\n`);
  agent.destroy();
  process.exit(0);
}

/** Subscribers loop on their cursors while publishers publish as fast as the bus answers. */
async function roleLoad(url: string): Promise<void> {
  const topics = Number(args.topics);
  const subscribers = Number(args.subscribers);
  const publishers = Number(args.publishers);
  const batch = Number(args.batch);
  const seconds = Number(args.seconds);
  const pool = new Pool(url, { connections: subscribers + publishers + 4, headersTimeout: 60_000, bodyTimeout: 60_000, pipelining: 1 });
  let running = true;
  let received = 0;
  let published = 0;
  let errors = 0;
  const subscriber = async (i: number): Promise<void> => {
    const topic = `t${i % topics}`;
    let cursor: number | null = null;
    while (running) {
      try {
        const r = await pool.request({ path: '/v1/events/subscribe', method: 'POST', body: JSON.stringify({ actor: `s${i}`, topics: { [topic]: cursor }, timeout_s: 2 }) });
        const a = (await r.body.json()) as { messages: unknown[]; cursors: Record<string, number> };
        received += a.messages.length;
        cursor = a.cursors[topic] ?? cursor;
      } catch {
        errors++;
      }
    }
  };
  let seq = 0;
  const publisher = async (p: number): Promise<void> => {
    while (running) {
      const messages = Array.from({ length: batch }, () => {
        const n = seq++;
        return { topic: `t${n % topics}`, id: `p${p}-${n}`, data: { n, at: Date.now() } };
      });
      try {
        const r = await pool.request({ path: '/v1/events/publish', method: 'POST', body: JSON.stringify({ actor: `p${p}`, messages }) });
        await r.body.text();
        published += batch;
      } catch {
        errors++;
      }
    }
  };
  const subs = Array.from({ length: subscribers }, (_, i) => subscriber(i));
  // Let every subscriber register its "from now on" cursor before publishing starts.
  for (let tries = 0; tries < 400; tries++) {
    if (metric(await scrape(url), 'rehearse_bus_open_polls') >= subscribers) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  const pubs = Array.from({ length: publishers }, (_, p) => publisher(p));
  process.stdout.write(`${JSON.stringify({ phase: 'started' })}\n`);
  await new Promise((r) => setTimeout(r, (seconds + 2) * 1000));
  running = false;
  await Promise.all(pubs);
  await Promise.all(subs);
  process.stdout.write(`${JSON.stringify({ phase: 'done', published, received, errors })}\n`);
  await pool.close();
  process.exit(0);
}

// ---------- the orchestrating process ----------

interface Child {
  proc: ChildProcess;
  lines: AsyncIterator<string>;
  /** Made at spawn, so an exit that comes before anyone waits for it is not missed. */
  exited: Promise<unknown>;
}

function child(role: string, extra: string[] = [], nodeFlags: string[] = []): Child {
  const proc = spawn(process.execPath, [...nodeFlags, ...self, '--role', role, ...extra], { stdio: ['pipe', 'pipe', 'inherit'] });
  async function* lines(): AsyncGenerator<string> {
    let buf = '';
    for await (const chunk of proc.stdout!) {
      buf += String(chunk);
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        yield buf.slice(0, nl);
        buf = buf.slice(nl + 1);
      }
    }
  }
  const exited = new Promise((r) => proc.once('exit', r));
  return { proc, lines: lines(), exited };
}

async function nextLine(c: Child): Promise<string> {
  const r = await c.lines.next();
  if (r.done) throw new Error('child ended early');
  return r.value;
}

function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks of 1/100 s (CLK_TCK on Linux)
}

async function startBusProcess(): Promise<{ bus: Child; url: string }> {
  const bus = child('bus', [], ['--expose-gc']);
  const url = (await nextLine(bus)).trim();
  return { bus, url };
}

async function stopBus(bus: Child): Promise<void> {
  bus.proc.kill('SIGTERM');
  await bus.exited;
}

async function benchPolls(count: number) {
  const { bus, url } = await startBusProcess();
  const memory = async () => {
    bus.proc.stdin!.write('mem\n');
    return JSON.parse(await nextLine(bus)) as { rss: number; heapUsed: number };
  };
  const before = await memory();
  const client = child('polls', ['--url', url, '--polls', String(count)]);
  const held = JSON.parse(await nextLine(client)) as { held: number; failed: number; rampS: number };
  const withPolls = await memory();
  const cpuBeforeWake = cpuSeconds(bus.proc.pid!);
  client.proc.stdin!.write('go\n');
  const woken = JSON.parse(await nextLine(client)) as { answered: number; wakeS: number; publishS: number };
  // CPU time, not wall time: on a loaded 2-core machine the bus waits for a core, and so does the client.
  const wakeCpuS = cpuSeconds(bus.proc.pid!) - cpuBeforeWake;
  await client.exited;
  await stopBus(bus);
  return {
    held: held.held,
    failed: held.failed,
    rampS: held.rampS,
    rssPer1000MiB: (((withPolls.rss - before.rss) / held.held) * 1000) / 2 ** 20,
    heapPer1000MiB: (((withPolls.heapUsed - before.heapUsed) / held.held) * 1000) / 2 ** 20,
    rssHeldMiB: withPolls.rss / 2 ** 20,
    woken: woken.answered,
    wakeS: woken.wakeS,
    publishS: woken.publishS,
    wakeCpuS,
  };
}

async function benchThroughput() {
  const { bus, url } = await startBusProcess();
  const client = child('load', ['--url', url, '--topics', args.topics!, '--subscribers', args.subscribers!, '--publishers', args.publishers!, '--batch', args.batch!, '--seconds', args.seconds!]);
  await nextLine(client); // started
  await new Promise((r) => setTimeout(r, 1000)); // warm-up
  const m0 = await scrape(url);
  const cpu0 = cpuSeconds(bus.proc.pid!);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, Number(args.seconds) * 1000));
  const m1 = await scrape(url);
  const cpu1 = cpuSeconds(bus.proc.pid!);
  const s = (performance.now() - t0) / 1000;
  const done = JSON.parse(await nextLine(client)) as { errors: number };
  await client.exited;
  await stopBus(bus);
  const d = (name: string) => (metric(m1, name) - metric(m0, name)) / s;
  return {
    publishedPerS: d('rehearse_bus_published_messages_total'),
    deliveredPerS: d('rehearse_bus_delivered_messages_total'),
    busCpu: (cpu1 - cpu0) / s,
    errors: done.errors,
  };
}

async function roleMain(): Promise<void> {
  const runs = Number(args.runs);
  const polls = Number(args.polls);
  const command = `node dist/bench/bus.js --runs ${runs} --polls ${polls} --topics ${args.topics} --subscribers ${args.subscribers} --publishers ${args.publishers} --batch ${args.batch} --seconds ${args.seconds}`;
  console.log(`command: ${command}`);
  console.log(`machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), node ${process.version}, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const pollRuns = [];
  const loadRuns = [];
  for (let r = 0; r < runs; r++) {
    if (args.only !== 'throughput') {
      const p = await benchPolls(polls);
      console.log(`polls run ${r + 1}: ${JSON.stringify(p)}`);
      pollRuns.push(p);
    }
    if (args.only !== 'polls') {
      const t = await benchThroughput();
      console.log(`throughput run ${r + 1}: ${JSON.stringify(t)}`);
      loadRuns.push(t);
    }
  }
  const fanout = Number(args.subscribers) / Number(args.topics);
  const rows: Array<[string, string]> = [
    ['open long-polls held (one bus process)', median(pollRuns.map((p) => p.held)).toFixed(0)],
    ['refused/failed polls while opening', median(pollRuns.map((p) => p.failed)).toFixed(0)],
    ['time to open them (ramped in steps of 500), s', median(pollRuns.map((p) => p.rampS)).toFixed(1)],
    ['RSS per 1,000 open polls (after a full GC), MiB', median(pollRuns.map((p) => p.rssPer1000MiB)).toFixed(2)],
    ['JS heap per 1,000 open polls (after a full GC), MiB', median(pollRuns.map((p) => p.heapPer1000MiB)).toFixed(2)],
    ['bus RSS holding them, MiB', median(pollRuns.map((p) => p.rssHeldMiB)).toFixed(0)],
    ['bus CPU time to answer all of them, woken by one publish, s', median(pollRuns.map((p) => p.wakeCpuS)).toFixed(2)],
    ['wall time until the client has read every answer, s', median(pollRuns.map((p) => p.wakeS)).toFixed(2)],
    [`messages published/s (fan-out ${fanout})`, median(loadRuns.map((t) => t.publishedPerS)).toFixed(0)],
    ['messages delivered/s (copies to subscribers)', median(loadRuns.map((t) => t.deliveredPerS)).toFixed(0)],
    ['bus CPU during the throughput window, cores', median(loadRuns.map((t) => t.busCpu)).toFixed(2)],
    // The load client, not the bus, saturates first on 2 cores; this is the bus's own cost.
    ['deliveries per bus CPU-second (capacity of one core)', median(loadRuns.map((t) => t.deliveredPerS / t.busCpu)).toFixed(0)],
    ['client errors during the throughput window', median(loadRuns.map((t) => t.errors)).toFixed(0)],
  ];
  console.log(`\nmedians of ${runs} runs\n| measure | value |\n|---|---|`);
  for (const [k, v] of rows) console.log(`| ${k} | ${v} |`);
}

if (args.role === 'bus') await roleBus();
else if (args.role === 'polls') await rolePolls(args.url!, Number(args.polls));
else if (args.role === 'load') await roleLoad(args.url!);
else await roleMain();
