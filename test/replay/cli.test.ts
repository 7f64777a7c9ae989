import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import { request } from 'undici';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli, until, type Spawned } from '../servers/cli-process.js';
import { parseFault, startBus, type RunningBus } from '../../bus/index.js';
import { openDatabase } from '../../db/open.js';
import { getRun, runCounts, runHistograms, runSamples, runSeconds } from '../../db/run-queries.js';
import type { RunSummary } from '../../db/run-types.js';
import { writeSchoolDay } from '../../fixtures/write-day.js';
import { MemoryOutput } from '../../cli/io.js';
import { main } from '../../cli/program.js';
import { ingestFiles } from '../../ingest/ingest.js';

// The CLI binary (dist/, built by `npm test`) against the embedded bus in this process: exit
// codes, --json, results in SQLite, SIGINT (drain, then stop) and SIGKILL (seconds kept).

let dir: string;
let model: string;
const buses: RunningBus[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rehearse-replay-cli-'));
  const day = await writeSchoolDay(path.join(dir, 'day'), 'small');
  model = path.join(dir, 'model.db');
  await ingestFiles({ files: [day.files.csv], db: model });
}, 60_000);
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const b of buses.splice(0)) await b.close();
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function bus(faults?: string): Promise<RunningBus> {
  const b = await startBus({ port: 0, seed: 5, ...(faults ? { faults: parseFault(faults) } : {}) });
  buses.push(b);
  return b;
}

function rehearse(args: string[], env: NodeJS.ProcessEnv = {}): Spawned {
  return spawnCli(args, children, env);
}


/** Rows in run_seconds so far, read the way another process would (0 while the file is being created). */
function secondsIn(results: string): number {
  if (!fs.existsSync(results)) return 0;
  let db: Database.Database | undefined;
  try {
    db = new Database(results, { readonly: true, fileMustExist: true });
    return (db.prepare('SELECT COUNT(*) AS n FROM run_seconds').get() as { n: number }).n;
  } catch {
    return 0;
  } finally {
    db?.close();
  }
}

const fast = ['--scale', '1', '--speed', '30', '--window', 'peak', '--mode', 'sample'];

describe('rehearse replay (CLI)', () => {
  it('exits 0 with a passing --json summary and stores the run', async () => {
    const b = await bus();
    const results = path.join(dir, 'pass.db');
    const r = rehearse(['replay', '--db', model, '--target', b.url, ...fast, '--duration', '3s', '--results', results, '--release', 'v1', '--max-lag', '1s', '--json']);
    const { code } = await r.exit;
    expect(r.stderr()).not.toMatch(/internal error/);
    const summary = JSON.parse(r.stdout()) as RunSummary;
    expect(JSON.stringify({ code, verdict: summary.verdict })).toContain("\"code\":0");
    expect(summary.pass).toBe(true);
    expect(summary.expected).toBeGreaterThan(100);
    expect(summary.delivered).toBe(summary.expected);
    expect(summary.release).toBe('v1');
    const db = openDatabase(results, { mustExist: true });
    try {
      const run = getRun(db, summary.run)!;
      expect(run).toMatchObject({ status: 'finished', pass: true, release: 'v1', target: b.url, scale: 1, speed: 30 });
      expect(run.summary).toEqual(summary);
      expect(run.modelFingerprint).toMatch(/^[0-9a-f]{64}$/);
      const seconds = runSeconds(db, summary.run);
      expect(seconds.length).toBeGreaterThanOrEqual(3);
      expect(seconds.reduce((a, s) => a + s.deliveries, 0)).toBe(summary.delivered);
      expect(Object.fromEntries(runCounts(db, summary.run))).toMatchObject({ expected: summary.expected, lost: 0 });
      expect(runHistograms(db, summary.run).get('delivery')).toBeTruthy();
      const gaps = runSamples(db, summary.run).get('learnerPublishInterval')!;
      expect(gaps.length).toBeGreaterThan(10);
      expect(runSamples(db, summary.run).get('rosterSize')!.length).toBeGreaterThan(0);
      // Every answered long-poll, in recorded time (wall ms x --speed 30), at most the poll timeout (25 s) plus slack.
      const polls = runSamples(db, summary.run).get('pollDuration')!;
      expect(polls.length).toBeGreaterThan(10);
      expect(polls[polls.length - 1]!).toBeLessThanOrEqual((25 + 15) * 1000 * 30);
    } finally {
      db.close();
    }
  });

  it('exits 1 when the SLO fails (dropped messages), with counts matching the bus', async () => {
    const b = await bus('drop=0.05');
    const r = rehearse(['replay', '--db', model, '--target', b.url, ...fast, '--duration', '3s', '--results', path.join(dir, 'drop.db'), '--slo', 'p95<=1s, lost>1500ms', '--json']);
    const { code } = await r.exit;
    expect(code).toBe(1);
    const summary = JSON.parse(r.stdout()) as RunSummary;
    expect(summary.lost).toBeGreaterThan(0);
    // Each learner message goes to the proctors watching the learner: lost pairs >= dropped messages.
    expect(summary.lost).toBeGreaterThanOrEqual(b.stats().faults.drop);
    expect(summary.pass).toBe(false);
  });

  it('reports every bad flag at once, before touching any file (in-process)', async () => {
    const stdout = new MemoryOutput();
    const stderr = new MemoryOutput();
    const missing = path.join(dir, 'never-created.db');
    const code = await main(
      ['node', 'rehearse', 'replay', '--db', missing, '--target', 'nope', '--scale', '0', '--slo', 'p95<=2x', '--header', 'no-colon'],
      { stdout, stderr, env: {}, signals: new EventEmitter() },
    );
    expect(code).toBe(2);
    const text = stderr.text();
    expect(text).toMatch(/4 options are invalid/);
    for (const flag of ['--scale', '--target', '--slo: clause 1 "p95<=2x"', '--header']) expect(text).toContain(flag);
    expect(fs.existsSync(missing)).toBe(false);
  });

  it('reports an unreachable target clearly and exits 2 without a stack trace', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const r = rehearse(['replay', '--db', model, '--target', `http://127.0.0.1:${port}`, ...fast, '--duration', '2s', '--results', path.join(dir, 'none.db')]);
    const { code } = await r.exit;
    expect(code).toBe(2);
    expect(r.stderr()).toMatch(/the target failed the pre-flight round trip \(v1 at http:\/\/127\.0\.0\.1:\d+\): .*ECONNREFUSED/);
    expect(r.stderr()).toMatch(/\n {2}hint: nothing answers at http:\/\/127\.0\.0\.1:\d+: is the bus running/);
    expect(r.stderr()).not.toMatch(/\n\s+at /);
  });

  it('sends --header values but never stores or prints them', async () => {
    // A recording proxy in front of the real bus: the run (and its pre-flight) must get real answers.
    const b = await bus();
    const seen: string[] = [];
    const server = http.createServer((req, res) => {
      seen.push(String(req.headers.authorization));
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', () => {
        void request(b.url + (req.url ?? '/'), { method: req.method as 'POST', body: Buffer.concat(chunks), headers: { 'content-type': 'application/json' } })
          .then(async (r) => {
            res.writeHead(r.statusCode, { 'content-type': 'application/json' });
            res.end(await r.body.text());
          })
          .catch(() => res.destroy());
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const results = path.join(dir, 'secret.db');
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const r = rehearse(
        ['replay', '--db', model, '--target', url, ...fast, '--duration', '1s', '--results', results, '--header', 'Authorization: env:BUS_TOKEN', '--header', 'X-Team: load', '--slo', 'p95<=1s, lost>1s'],
        { BUS_TOKEN: 'Bearer s3cret-token-value' },
      );
      await r.exit;
      expect(seen.length).toBeGreaterThan(1);
      expect(seen.every((h) => h === 'Bearer s3cret-token-value')).toBe(true);
      expect(r.stdout() + r.stderr()).not.toContain('s3cret');
      for (const f of fs.readdirSync(dir).filter((n) => n.startsWith('secret.db'))) {
        expect(fs.readFileSync(path.join(dir, f)).includes('s3cret')).toBe(false);
      }
      const db = openDatabase(results, { mustExist: true });
      try {
        const run = getRun(db, 1)!;
        expect(run.options.headerNames).toEqual(['Authorization', 'X-Team']);
      } finally {
        db.close();
      }
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('on SIGINT stops scheduling, drains, saves the run and leaves the target alone', async () => {
    const b = await bus();
    const results = path.join(dir, 'sigint.db');
    const r = rehearse(['replay', '--db', model, '--target', b.url, ...fast, '--duration', '60s', '--results', results, '--slo', 'p95<=1s, lost>2s', '--json']);
    await until(() => secondsIn(results) >= 2, 20_000, 'two seconds of results');
    const sentAt = Date.now();
    r.child.kill('SIGINT');
    const { code, atMs } = await r.exit;
    // The drain is bounded by the loss limit (2 s here), plus writing the results.
    expect(atMs - sentAt).toBeLessThan(2000 + 3000);
    // A run stopped 2 s into 60 proves nothing about the planned load: it never passes.
    expect(code).toBe(1);
    const atExit = b.stats();
    expect(atExit.openPolls).toBe(0);
    const summary = JSON.parse(r.stdout()) as RunSummary;
    expect(summary.pass).toBe(false);
    expect(summary.verdict.reasons.join('\n')).toMatch(/the run was stopped before its end \(interrupted \(SIGINT\) after \d+ s of the planned 60 s\)/);
    expect(summary.durationS).toBeLessThan(30);
    // Nothing keeps loading the target after the process is gone.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(b.stats().publishRequests + b.stats().subscribeRequests).toBe(atExit.publishRequests + atExit.subscribeRequests);
    const db = openDatabase(results, { mustExist: true });
    try {
      const run = getRun(db, summary.run)!;
      expect(run.status).toBe('interrupted');
      expect(run.summary?.expected).toBe(summary.expected);
      expect(Object.fromEntries(runCounts(db, summary.run)).unresolved).toBe(0);
    } finally {
      db.close();
    }
  });

  it('a second SIGINT stops at once', async () => {
    const b = await bus('drop=0.2');
    const results = path.join(dir, 'sigint2.db');
    const r = rehearse(['replay', '--db', model, '--target', b.url, ...fast, '--duration', '60s', '--results', results, '--json']);
    await until(() => secondsIn(results) >= 2, 20_000, 'two seconds of results');
    r.child.kill('SIGINT');
    await until(() => r.stderr().includes('again stops at once'), 5000, 'the first SIGINT to be acknowledged');
    const sentAt = Date.now();
    r.child.kill('SIGINT');
    const { atMs } = await r.exit;
    // Dropped messages would hold a drain for 15 s; the second SIGINT does not wait for them.
    expect(atMs - sentAt).toBeLessThan(3000);
    const summary = JSON.parse(r.stdout()) as RunSummary;
    expect(summary.pass).toBe(false);
    expect(summary.verdict.reasons.join('\n')).toMatch(/no verdict/);
  });

  it('rehearse demo generates, ingests and replays against its own bus, then reuses the model', async () => {
    const demoDir = path.join(dir, 'demo');
    const first = rehearse(['demo', '--dir', demoDir, '--duration', '3s', '--json']);
    const a = await first.exit;
    expect(first.stderr()).toMatch(/generating the synthetic 'small' day/);
    const summary = JSON.parse(first.stdout()) as RunSummary;
    expect({ code: a.code, pass: summary.pass, reasons: summary.verdict.reasons }).toMatchObject({ code: summary.pass ? 0 : 1 });
    expect(summary.release).toBe('demo');
    expect(summary.expected).toBeGreaterThan(0);
    expect(summary.lost).toBe(0);
    const second = rehearse(['demo', '--dir', demoDir, '--duration', '2s']);
    await second.exit;
    expect(second.stderr()).toMatch(/reusing the model/);
    expect(second.stdout()).toMatch(/results: run 2 in /);
  });

  it('after SIGKILL the per-second results up to the last second are in the database', async () => {
    const b = await bus();
    const results = path.join(dir, 'sigkill.db');
    const r = rehearse(['replay', '--db', model, '--target', b.url, ...fast, '--duration', '60s', '--results', results]);
    await until(() => secondsIn(results) >= 3, 20_000, 'three seconds of results');
    r.child.kill('SIGKILL');
    await r.exit;
    const db = openDatabase(results, { mustExist: true });
    try {
      const run = getRun(db, 1)!;
      // Stored as running; readers show it as abandoned once its process is gone.
      expect(run.status).toBe('abandoned');
      const seconds = runSeconds(db, 1);
      expect(seconds.length).toBeGreaterThanOrEqual(3);
      expect(seconds.map((s) => s.second)).toEqual(seconds.map((_, i) => i + 1));
      expect(seconds.every((s) => s.publishes > 0)).toBe(true);
    } finally {
      db.close();
    }
  });
});
