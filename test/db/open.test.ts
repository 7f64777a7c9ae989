import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase, schemaVersion } from '../../db/open.js';
import { RehearseError } from '../../core/errors.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rehearse-db-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('openDatabase', () => {
  it('creates a file in WAL mode at the latest schema version, and reopens it unchanged', () => {
    const file = path.join(tempDir(), 'model.db');
    const db = openDatabase(file);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(schemaVersion);
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name").pluck().all();
    expect(tables).toEqual(expect.arrayContaining(['sessions', 'rosters', 'actor_topics', 'distribution_counts', 'days', 'distributions', 'runs', 'run_seconds']));
    db.close();
    const again = openDatabase(file, { mustExist: true });
    expect(again.pragma('user_version', { simple: true })).toBe(schemaVersion);
    again.close();
  });

  it('refuses a missing file when it must exist, naming it and the fix', () => {
    const file = path.join(tempDir(), 'absent.db');
    expect(() => openDatabase(file, { mustExist: true })).toThrowError(/absent\.db: no such database file.*rehearse ingest/);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('refuses a file that is not SQLite with a typed error', () => {
    const file = path.join(tempDir(), 'notes.db');
    fs.writeFileSync(file, 'this is not a database, just text that is long enough to have a header'.repeat(20));
    try {
      openDatabase(file);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(RehearseError);
      expect((err as RehearseError).code).toBe('REHEARSE_DB');
      expect((err as Error).message).toContain('notes.db');
    }
  });

  it('refuses a database from a newer rehearse', () => {
    const file = path.join(tempDir(), 'newer.db');
    openDatabase(file).close();
    const raw = openDatabase(file);
    raw.pragma(`user_version = ${schemaVersion + 1}`);
    raw.close();
    expect(() => openDatabase(file)).toThrowError(/newer rehearse/);
  });
});
