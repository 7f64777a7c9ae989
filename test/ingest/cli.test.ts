// `rehearse ingest` and `rehearse model` as a user runs them (the built binary): every bad input
// is one clear error, exit code 2, and the database is unchanged.

import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { databaseChecksum, makeTempDir, runCli, samples } from './helpers.js';

const dirs: string[] = [];
let dir: string;
let dbFile: string;
let before: string;

beforeAll(async () => {
  dir = makeTempDir(dirs, 'rehearse-ingest-cli-');
  dbFile = path.join(dir, 'model.db');
  const r = await runCli(['ingest', path.join(samples, 'clean.csv'), '--db', dbFile]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  before = databaseChecksum(dbFile);
});

afterAll(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function expectRefused(args: string[], message: RegExp): Promise<void> {
  const r = await runCli(['ingest', ...args, '--db', dbFile]);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(message);
  expect(r.stderr.trim().split('\n')[0]).toMatch(/^rehearse: /);
  expect(r.stderr).not.toMatch(/at .*\.js:\d+/); // no stack trace
  expect(databaseChecksum(dbFile)).toBe(before);
}

describe('rehearse ingest: bad inputs change nothing', () => {
  it('a truncated gzip', async () => {
    await expectRefused([path.join(samples, 'truncated.csv.gz')], /truncated\.csv\.gz: truncated gzip file \(unexpected end of file\)/);
  });

  it('a mapping naming a column the header lacks', async () => {
    await expectRefused(
      [path.join(samples, 'missing-column.csv'), '--mapping', path.join(samples, 'missing-column.mapping.json')],
      /invalid mapping[\s\S]*fields\.duration: column "elapsed_ms" is not in the header of .*missing-column\.csv/,
    );
  });

  it('an unknown format', async () => {
    const file = path.join(dir, 'access.log');
    fs.writeFileSync(file, '203.0.113.1 - - [01/Sep/2026:08:00:00 +0200] "GET /v1/events/subscribe HTTP/1.1" 200 16\n');
    await expectRefused([file], /access\.log: unknown format: .*--mapping/);
  });

  it('an invalid mapping file, every problem named', async () => {
    const mapping = path.join(dir, 'bad.mapping.json');
    fs.writeFileSync(mapping, JSON.stringify({ format: 'csv', fields: { when: 'time' }, durationUnit: 'minutes' }));
    await expectRefused([path.join(samples, 'clean.csv'), '--mapping', mapping], /fields\.when: not a canonical field[\s\S]*durationUnit: "minutes"/);
  });

  it('too many malformed lines (--max-errors), with reasons and file:line examples', async () => {
    await expectRefused(
      [path.join(samples, 'malformed.csv')],
      /malformed\.csv: 6 of 14 lines rejected, more than --max-errors 1%; nothing from this file was ingested[\s\S]*unreadable time: 1[\s\S]*malformed\.csv:6: unreadable time/,
    );
    await expectRefused([path.join(samples, 'malformed.csv'), '--max-errors', '5'], /more than --max-errors 5;/);
  });

  it('a missing file', async () => {
    await expectRefused([path.join(dir, 'nope.csv')], /nope\.csv: cannot read \(ENOENT\)/);
  });
});

describe('rehearse ingest: the happy paths', () => {
  it('accepts malformed lines under --max-errors and counts them by reason with file:line', async () => {
    const db = path.join(dir, 'tolerant.db');
    const r = await runCli(['ingest', path.join(samples, 'malformed.csv'), '--db', db, '--max-errors', '50%']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/malformed\.csv \(csv\): 14 lines, 6 accepted, 6 rejected/);
    expect(r.stdout).toMatch(/rejected 1: CSV quote not closed/);
    expect(r.stdout).toMatch(/malformed\.csv:6: unreadable time/);
  });

  it('re-ingesting the same content is a no-op; --force re-ingests it', async () => {
    const again = await runCli(['ingest', path.join(samples, 'clean.csv.gz'), '--db', dbFile]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/already ingested \(same content/);
    expect(databaseChecksum(dbFile)).toBe(before);
    const copy = path.join(dir, 'forced.db');
    fs.copyFileSync(dbFile, copy);
    // The compact model cannot take a file back out: --force needs a database that kept its requests.
    const refused = await runCli(['ingest', path.join(samples, 'clean.csv'), '--db', copy, '--force']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/keeps no requests to take it back out of the model/);
    const kept = path.join(dir, 'kept-requests.db');
    expect((await runCli(['ingest', path.join(samples, 'clean.csv'), '--db', kept, '--keep-requests'])).code).toBe(0);
    const forced = await runCli(['ingest', path.join(samples, 'clean.csv'), '--db', kept, '--force', '--json']);
    expect(forced.code).toBe(0);
    const summary = JSON.parse(forced.stdout) as { files: Array<{ status: string; accepted: number }>; requests: number };
    expect(summary.files[0]).toMatchObject({ status: 'ingested', accepted: 12 });
    expect(summary.requests).toBe(12);
  });

  it('--dry-run shows canonical records and rejections, and writes nothing', async () => {
    const db = path.join(dir, 'dry.db');
    const r = await runCli(['ingest', path.join(samples, 'access.nginx.log'), '--mapping', path.join(samples, 'access.nginx.mapping.json'), '--dry-run', '--lines', '4', '--db', db]);
    expect(r.code).toBe(0);
    // Times in the zone ingest infers from the lines' offsets ($time_local beside $msec), as the log wrote them.
    expect(r.stdout).toContain('access.nginx.log (nginx), times shown in Europe/Paris (CEST, UTC+02:00):');
    expect(r.stdout).toMatch(/1: 2026-09-01T08:00:02\.000\+02:00 actor=u80009 op=subscribe .*topics=\[tl80009, tb80001, tb80002\] status=200 duration=8133ms messages=2/);
    expect(r.stdout).toMatch(/access\.nginx\.log:4: REJECTED does not match logFormat/);
    expect(r.stdout).not.toMatch(/^\s+5: /m);
    expect(fs.existsSync(db)).toBe(false);
  });

  it('keeps only pseudonyms and no IP addresses by default; --keep-ids keeps the ids', async () => {
    const raw = fs.readFileSync(path.join(samples, 'clean.csv'), 'utf8');
    const actor = raw.split('\n')[1]!.split(',')[1]!;
    const dump = (file: string): string => {
      const db = new Database(file, { readonly: true });
      try {
        const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[];
        return tables.map((t) => JSON.stringify(db.prepare(`SELECT * FROM "${t}"`).raw().all(), (_k, v: unknown) => (Buffer.isBuffer(v) ? '' : v))).join('\n');
      } finally {
        db.close();
      }
    };
    const text = dump(dbFile);
    expect(text).not.toContain(actor);
    expect(text).not.toMatch(/\d+\.\d+\.\d+\.\d+|2001:db8/);
    expect(text).not.toMatch(/Mozilla\/5\.0/);
    const kept = path.join(dir, 'kept.db');
    const r = await runCli(['ingest', path.join(samples, 'clean.csv'), '--db', kept, '--keep-ids']);
    expect(r.code).toBe(0);
    expect(dump(kept)).toContain(actor);
    const mixed = await runCli(['ingest', path.join(samples, 'zones.csv'), '--db', kept]);
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toMatch(/ingest with --keep-ids into it/);
  });

  it('rehearse model --json prints the documented object', async () => {
    const r = await runCli(['model', '--db', dbFile, '--json']);
    expect(r.code).toBe(0);
    const m = JSON.parse(r.stdout) as Record<string, unknown>;
    for (const key of ['learners', 'proctors', 'sessions', 'span', 'learnersPerProctor', 'learnerPublishIntervalS', 'proctorControlIntervalS', 'sessionDurationS', 'peakConcurrentLearners', 'arrivalsPerMinute']) {
      expect(m, key).toHaveProperty(key);
    }
    expect(m.span).toEqual({ start: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/), end: expect.stringMatching(/Z$/) });
    expect(Object.keys(m.sessionDurationS as object)).toEqual(['count', 'mean', 'p50', 'p90', 'p99', 'max']);
    expect(m.arrivalsPerMinute).toEqual({ peak: expect.any(Number), peakAt: expect.stringMatching(/:00\.000Z$/) });
    const text = await runCli(['model', '--db', dbFile]);
    expect(text.stdout).toMatch(/learner publish interval/);
    const missing = await runCli(['model', '--db', path.join(dir, 'absent.db')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/absent\.db: no such database file/);
  });
});
