import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryOutput } from '../../cli/io.js';
import { main, wantsJson, type JsonFailure } from '../../cli/program.js';
import { writeSchoolDay } from '../../fixtures/write-day.js';
import { ingestFiles } from '../../ingest/ingest.js';
import { insertRun, openTemp } from '../report/fixture-runs.js';

// A command run with --json that fails prints one JSON object on stdout (and the plain message on
// stderr) and exits with the same code it would without --json. Through main(), as the binary runs.

let dir: string;
let model: string;
let results: string;

function io() {
  return { stdout: new MemoryOutput(), stderr: new MemoryOutput(), env: {}, signals: new EventEmitter() };
}

async function rehearse(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = io();
  const code = await main(['node', 'rehearse', ...args], out);
  return { code, stdout: out.stdout.text(), stderr: out.stderr.text() };
}

/** stdout must be exactly one JSON object on one line. */
function oneJsonObject(stdout: string): JsonFailure {
  const lines = stdout.split('\n').filter((l) => l !== '');
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]!) as JsonFailure;
}

/** A port nothing listens on: bound to 0, then closed. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rehearse-json-errors-'));
  const day = await writeSchoolDay(path.join(dir, 'day'), 'small');
  model = path.join(dir, 'model.db');
  await ingestFiles({ files: [day.files.csv], db: model });
  const r = openTemp(dir, 'results.db');
  insertRun(r.db, { release: '2.3', seconds: 5 });
  r.db.close();
  results = r.file;
}, 60_000);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('--json failures', () => {
  it('replay against an unreachable target: REHEARSE_TARGET as JSON on stdout, the message on stderr, exit 2', async () => {
    const port = await closedPort();
    const plain = await rehearse(['replay', '--db', model, '--target', `http://127.0.0.1:${port}`, '--duration', '2s']);
    const r = await rehearse(['replay', '--db', model, '--target', `http://127.0.0.1:${port}`, '--duration', '2s', '--json']);
    expect(plain.code).toBe(2);
    expect(plain.stdout).toBe('');
    expect(r.code).toBe(plain.code);
    const failure = oneJsonObject(r.stdout);
    expect(failure.exitCode).toBe(2);
    expect(failure.error.code).toBe('REHEARSE_TARGET');
    expect(failure.error.message).toContain(`127.0.0.1:${port}`);
    expect(r.stderr).toContain(`rehearse: ${failure.error.message}`);
  }, 30_000);

  it('replay with a usage error (bad --scale): REHEARSE_USAGE, exit 2', async () => {
    const r = await rehearse(['replay', '--db', model, '--target', 'http://127.0.0.1:1', '--scale', 'lots', '--json']);
    expect(r.code).toBe(2);
    const failure = oneJsonObject(r.stdout);
    expect(failure).toEqual({ error: { code: 'REHEARSE_USAGE', message: expect.stringContaining('--scale') }, exitCode: 2 });
  });

  it('plan without its required --db (a commander error): REHEARSE_USAGE with commander’s sentence', async () => {
    const r = await rehearse(['plan', '--json']);
    expect(r.code).toBe(2);
    const failure = oneJsonObject(r.stdout);
    expect(failure).toEqual({ error: { code: 'REHEARSE_USAGE', message: "required option '--db <file>' not specified" }, exitCode: 2 });
    expect(r.stderr).toContain("required option '--db <file>' not specified");
  });

  it('plan on a database that does not exist: REHEARSE_DB', async () => {
    const r = await rehearse(['plan', '--db', path.join(dir, 'missing.db'), '--json']);
    expect(r.code).toBe(2);
    const failure = oneJsonObject(r.stdout);
    expect(failure.error.code).toBe('REHEARSE_DB');
    expect(failure.error.message).toContain('missing.db');
  });

  it('compare with a run that is not stored: REHEARSE_RUN_NOT_FOUND; without --json stdout stays empty', async () => {
    const r = await rehearse(['compare', '2.3', '#99', '--results', results, '--json']);
    expect(r.code).toBe(2);
    const failure = oneJsonObject(r.stdout);
    expect(failure.error.code).toBe('REHEARSE_RUN_NOT_FOUND');
    expect(failure.error.message).toContain('#99');
    const plain = await rehearse(['compare', '2.3', '#99', '--results', results]);
    expect(plain.code).toBe(2);
    expect(plain.stdout).toBe('');
    expect(plain.stderr).toContain('#99');
  });

  it('a successful --json command prints only its own object (no error object)', async () => {
    const r = await rehearse(['plan', '--db', model, '--duration', '1m', '--json']);
    expect(r.code).toBe(0);
    const printed = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(printed.error).toBeUndefined();
    expect(printed.durationMs).toBe(60_000);
  });

  it('--json after `--` is an argument, not the flag', () => {
    expect(wantsJson(['node', 'rehearse', 'plan', '--json'])).toBe(true);
    expect(wantsJson(['node', 'rehearse', 'ingest', '--', '--json'])).toBe(false);
    expect(wantsJson(['node', 'rehearse', 'plan'])).toBe(false);
  });
});

describe('--help', () => {
  const commands = ['ingest', 'model', 'bus', 'plan', 'replay', 'probe', 'demo', 'runs', 'compare', 'report', 'fixtures'];
  it.each(commands)('%s --help shows no empty default for repeatable flags', async (command) => {
    const r = await rehearse([command, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Usage: rehearse ${command}`);
    expect(r.stdout).not.toMatch(/\(default: (\[\]|\{\})\)/);
    expect(r.stdout).not.toMatch(/default: (\[\]|\{\})/);
  });

  it('keeps the defaults that say something, and the repeatable flags themselves', async () => {
    const r = await rehearse(['replay', '--help']);
    expect(r.stdout).toMatch(/--scale <n>[\s\S]*?\(default: "1"\)/);
    expect(r.stdout).toContain('--header <line>');
    expect(r.stdout).toContain('--target-option <key=value>');
  });
});
