// Opens a rehearse database (model and runs share one schema, so either can live in any
// file) and brings it to the current schema version with numbered migrations.

import fs from 'node:fs';
import Database from 'better-sqlite3';
import { RehearseError } from '../core/errors.js';
import { migrations } from './migrations/index.js';

export type Db = Database.Database;

export interface OpenOptions {
  /** Fail instead of creating the file when it does not exist (readers: model, runs, report). */
  mustExist?: boolean;
  readonly?: boolean;
  /** The pseudonym key file a migration moves an old in-database secret to (default: core/pseudonym-key.ts). */
  keyFile?: string;
  /** Where migrations' notices go (default: stderr, as `rehearse: ...`). */
  onNotice?: (message: string) => void;
}

export function openDatabase(path: string, options: OpenOptions = {}): Db {
  if (path !== ':memory:' && options.mustExist && !fs.existsSync(path)) {
    throw new RehearseError('REHEARSE_DB', `${path}: no such database file. Run \`rehearse ingest <logs> --db ${path}\` first.`);
  }
  let db: Db;
  try {
    db = new Database(path, { readonly: options.readonly ?? false, fileMustExist: options.mustExist ?? false });
    // Reading any page proves the file is SQLite before we trust it.
    db.pragma('schema_version');
  } catch (err) {
    const readOnlyHint =
      options.readonly && /readonly|read-only|unable to open/i.test((err as Error).message)
        ? ' On a read-only mount, open a copy made with `rehearse model --db <model.db> --export <copy.db>` (docs/scale-out.md).'
        : '';
    throw new RehearseError('REHEARSE_DB', `${path}: cannot open as a rehearse database (${(err as Error).message}).${readOnlyHint}`, { cause: err });
  }
  try {
    if (!options.readonly) {
      // WAL: a run's per-second flushes survive SIGKILL, and readers (report) never block the writer.
      if (path !== ':memory:') db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
    }
    db.pragma('foreign_keys = ON');
    // A second rehearse writing the same file (an ingest during a replay) waits this long for
    // the lock before giving up with busyError's message instead of SQLITE_BUSY.
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    migrate(db, path, options);
  } catch (err) {
    db.close();
    throw isBusy(err) ? busyError(path, err) : err;
  }
  return db;
}

export const busyTimeoutMs = 15_000;

/**
 * A compact copy of a database that opens read-only anywhere: rehearse keeps its files in WAL
 * mode, and SQLite cannot open a WAL file read-only where it may not create the -shm file beside
 * it (a read-only Kubernetes volume). VACUUM INTO writes a rollback-journal copy, whole.
 */
export function exportDatabase(db: Db, file: string): void {
  if (fs.existsSync(file)) throw new RehearseError('REHEARSE_DB', `${file} already exists; rehearse does not overwrite it. Remove it or name another file.`);
  db.prepare('VACUUM INTO ?').run(file);
}

/** SQLITE_BUSY (and its extended codes): another connection held the write lock past busy_timeout. */
export function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code === 'SQLITE_BUSY' || code.startsWith('SQLITE_BUSY_') || code === 'SQLITE_LOCKED');
}

/** The one message a writer that could not get the lock prints (exit 2, no stack). */
export function busyError(path: string, cause?: unknown): RehearseError {
  return new RehearseError('REHEARSE_DB', `another rehearse is writing to ${path}; try again when it finishes.`, { cause });
}

export const schemaVersion = migrations.length;

function migrate(db: Db, path: string, options: OpenOptions): void {
  const readonly = options.readonly ?? false;
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > migrations.length) {
    throw new RehearseError(
      'REHEARSE_DB',
      `${path}: schema version ${current} was written by a newer rehearse (this one knows up to ${migrations.length}). Upgrade rehearse.`,
    );
  }
  if (current === migrations.length) return;
  if (readonly) {
    throw new RehearseError('REHEARSE_DB', `${path}: schema version ${current} needs migrating; open it writable once.`);
  }
  for (let version = current + 1; version <= migrations.length; version++) {
    const migration = migrations[version - 1]!;
    // IMMEDIATE, and the version read again under the lock: two rehearse processes opening an
    // old database at once migrate it once, and the second waits instead of failing.
    const notices = db.transaction(() => {
      if ((db.pragma('user_version', { simple: true }) as number) >= version) return [];
      const said = migration.before?.(db, { path, keyFile: options.keyFile }) ?? [];
      db.exec(migration.sql);
      db.pragma(`user_version = ${version}`);
      return said;
    }).immediate();
    const notify = options.onNotice ?? ((m: string) => void process.stderr.write(`rehearse: ${m}\n`));
    for (const n of notices) notify(n);
  }
}
