// Defect: an ingest SIGKILLed during the model rebuild leaves `model.stale=1`, and `model`,
// `plan` and `replay` used the half-built model without a word. Now they refuse (exit 2) and
// name the command that rebuilds it, `rehearse ingest --rebuild --db FILE`, which works.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../cli/program.js';
import { MemoryOutput, type CliIO } from '../../cli/io.js';
import { ingestFiles } from '../../ingest/ingest.js';
import { makeTempDir, samples } from '../ingest/helpers.js';
import { EventEmitter } from 'node:events';

const dirs: string[] = [];
let dir: string;
let db: string;
let keyFile: string;

beforeAll(async () => {
  dir = makeTempDir(dirs, 'rehearse-stale-');
  db = path.join(dir, 'model.db');
  keyFile = path.join(dir, 'pseudonym.key');
  await ingestFiles({ files: [path.join(samples, 'clean.csv')], db, keyFile });
});
afterAll(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new MemoryOutput();
  const stderr = new MemoryOutput();
  const io: CliIO = { stdout, stderr, env: { ...process.env, REHEARSE_PSEUDONYM_KEY: '' }, signals: new EventEmitter() };
  const code = await main(['node', 'rehearse', ...args], io);
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

/** What an ingest killed between committing a file and committing the rebuild leaves behind. */
function interruptRebuild(file: string): void {
  const h = new Database(file);
  h.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('model.stale', '1')").run();
  h.close();
}

/** A port nothing listens on: the refusal must come before any byte is sent. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('a model left stale by an interrupted ingest', () => {
  it('model, plan and replay refuse with the rebuild command; ingest --rebuild repairs it', async () => {
    expect((await cli(['model', '--db', db])).code).toBe(0);
    interruptRebuild(db);
    const expected = `rehearse: the model in ${db} was not finished (an ingest was interrupted or is still running, or an older rehearse wrote it): run \`rehearse ingest --rebuild --db ${db}\``;
    const port = await closedPort();
    for (const args of [
      ['model', '--db', db],
      ['model', '--db', db, '--json'],
      ['plan', '--db', db, '--scale', '1'],
      ['replay', '--db', db, '--target', `http://127.0.0.1:${port}`, '--duration', '5s'],
    ]) {
      const r = await cli(args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr.startsWith(expected)).toBe(true);
      // --json also puts the error on stdout (cli/program.ts), as one object.
      expect(args.includes('--json') ? (JSON.parse(r.stdout) as { error: { code: string } }).error.code : r.stdout).toBe(args.includes('--json') ? 'REHEARSE_MODEL' : '');
    }

    const rebuilt = await cli(['ingest', '--rebuild', '--db', db]);
    expect(rebuilt.stderr).toBe('');
    expect(rebuilt.code).toBe(0);
    expect(rebuilt.stdout).toMatch(new RegExp(`^${db.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: model rebuilt from \\d+ requests`));
    const h = new Database(db, { readonly: true });
    expect(h.prepare("SELECT value FROM meta WHERE key = 'model.stale'").get()).toBeUndefined();
    h.close();
    const model = await cli(['model', '--db', db]);
    expect(model.code).toBe(0);
  });

  it('ingest --rebuild on a database without requests says so', async () => {
    const empty = path.join(dir, 'empty.db');
    new Database(empty).close();
    const r = await cli(['ingest', '--rebuild', '--db', empty]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/holds no ingested requests to rebuild from/);
  });

  it('ingest without files and without --rebuild is a usage error', async () => {
    const r = await cli(['ingest', '--db', db]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/name one or more log files to ingest \(or --rebuild/);
  });
});
