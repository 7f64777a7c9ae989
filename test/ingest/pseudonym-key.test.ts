// Defect: the pseudonym secret sat in the model database (meta.ids.secret), so anyone with the
// file could re-identify every actor. Now the key lives in a 0600 key file (or
// REHEARSE_PSEUDONYM_KEY); the database holds only a one-way key id, and an old database's
// secret is moved out by migration 003.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultKeyFile, keyIdOf, loadPseudonymKey, pseudonymKeyEnv } from '../../core/pseudonym-key.js';
import { openDatabase } from '../../db/open.js';
import { ingestFiles } from '../../ingest/ingest.js';
import { makeTempDir, samples } from './helpers.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const log = path.join(samples, 'clean.csv');

function storedActors(db: string): string[] {
  const h = new Database(db, { readonly: true });
  try {
    return h.prepare('SELECT value FROM ids WHERE kind = 1 ORDER BY value').pluck().all() as string[];
  } finally {
    h.close();
  }
}

/** Every byte the database left on disk (the file and any WAL), to grep for a key. */
function databaseBytes(db: string): Buffer {
  return Buffer.concat([db, `${db}-wal`, `${db}-journal`].filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f)));
}

function meta(db: string, key: string): string | undefined {
  const h = new Database(db, { readonly: true });
  try {
    return h.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(key) as string | undefined;
  } finally {
    h.close();
  }
}

describe('the pseudonym key lives outside the model', () => {
  it('an ingest creates the key file with mode 0600 and the database holds no trace of the key', async () => {
    const dir = makeTempDir(dirs, 'rehearse-key-');
    const keyFile = path.join(dir, 'conf', 'pseudonym.key');
    const db = path.join(dir, 'model.db');
    await ingestFiles({ files: [log], db, keyFile });
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    const hex = fs.readFileSync(keyFile, 'utf8').trim();
    expect(hex).toMatch(/^[0-9a-f]{64}$/);
    const bytes = databaseBytes(db);
    expect(bytes.includes(Buffer.from(hex))).toBe(false);
    expect(bytes.includes(Buffer.from(hex.toUpperCase()))).toBe(false);
    expect(bytes.includes(Buffer.from(hex, 'hex'))).toBe(false);
    expect(meta(db, 'ids.secret')).toBeUndefined();
    expect(meta(db, 'ids.key_id')).toBe(keyIdOf(Buffer.from(hex, 'hex')));
    expect(storedActors(db).length).toBeGreaterThan(0);
  });

  it('the same key gives the same pseudonyms in another database; another key gives others', async () => {
    const dir = makeTempDir(dirs, 'rehearse-key-');
    const keyA = path.join(dir, 'a.key');
    const keyB = path.join(dir, 'b.key');
    fs.writeFileSync(keyB, crypto.randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
    await ingestFiles({ files: [log], db: path.join(dir, 'one.db'), keyFile: keyA });
    await ingestFiles({ files: [log], db: path.join(dir, 'two.db'), keyFile: keyA });
    await ingestFiles({ files: [log], db: path.join(dir, 'three.db'), keyFile: keyB });
    const one = storedActors(path.join(dir, 'one.db'));
    expect(storedActors(path.join(dir, 'two.db'))).toEqual(one);
    const three = storedActors(path.join(dir, 'three.db'));
    expect(three).toHaveLength(one.length);
    expect(three.filter((a) => one.includes(a))).toEqual([]);
  });

  it('REHEARSE_PSEUDONYM_KEY is used when no --key-file is given', async () => {
    const dir = makeTempDir(dirs, 'rehearse-key-');
    const hex = crypto.randomBytes(32).toString('hex');
    const keyFile = path.join(dir, 'k.key');
    fs.writeFileSync(keyFile, hex, { mode: 0o600 });
    const before = process.env[pseudonymKeyEnv];
    process.env[pseudonymKeyEnv] = hex;
    try {
      await ingestFiles({ files: [log], db: path.join(dir, 'env.db') });
    } finally {
      if (before === undefined) delete process.env[pseudonymKeyEnv];
      else process.env[pseudonymKeyEnv] = before;
    }
    await ingestFiles({ files: [log], db: path.join(dir, 'file.db'), keyFile });
    expect(storedActors(path.join(dir, 'env.db'))).toEqual(storedActors(path.join(dir, 'file.db')));
    expect(databaseBytes(path.join(dir, 'env.db')).includes(Buffer.from(hex))).toBe(false);
  });

  it('a database refuses a different key, naming the fix, and is left unchanged', async () => {
    const dir = makeTempDir(dirs, 'rehearse-key-');
    const db = path.join(dir, 'model.db');
    await ingestFiles({ files: [log], db, keyFile: path.join(dir, 'a.key') });
    const actors = storedActors(db);
    await expect(ingestFiles({ files: [path.join(samples, 'bom-crlf.csv')], db, keyFile: path.join(dir, 'b.key') })).rejects.toMatchObject({
      code: 'REHEARSE_USAGE',
      message: expect.stringMatching(/made with another pseudonym key[\s\S]*--key-file/),
    });
    expect(storedActors(db)).toEqual(actors);
  });

  it('the default key file is under $XDG_CONFIG_HOME (or ~/.config), created once with mode 0600', () => {
    const dir = makeTempDir(dirs, 'rehearse-key-');
    const env = { XDG_CONFIG_HOME: path.join(dir, 'xdg'), HOME: dir };
    expect(defaultKeyFile(env)).toBe(path.join(dir, 'xdg', 'rehearse', 'pseudonym.key'));
    expect(defaultKeyFile({ HOME: dir })).toBe(path.join(dir, '.config', 'rehearse', 'pseudonym.key'));
    const first = loadPseudonymKey({ env });
    const again = loadPseudonymKey({ env });
    expect(again.key.equals(first.key)).toBe(true);
    expect(fs.statSync(defaultKeyFile(env)).mode & 0o777).toBe(0o600);
  });

  it('a malformed key is refused with how to make one', () => {
    expect(() => loadPseudonymKey({ env: { [pseudonymKeyEnv]: 'hunter2' } })).toThrow(/REHEARSE_PSEUDONYM_KEY: not a pseudonym key \(expected 64 hex digits.*openssl rand -hex 32/);
  });
});

describe('migration 003: an old database with meta.ids.secret', () => {
  /** A database as rehearse left it before the key moved out: schema 2, the secret in meta. */
  async function oldDatabase(dir: string): Promise<{ db: string; secret: string; actors: string[] }> {
    const db = path.join(dir, 'old.db');
    const secret = crypto.randomBytes(32).toString('hex');
    const legacyKey = path.join(dir, 'legacy.key');
    fs.writeFileSync(legacyKey, secret);
    await ingestFiles({ files: [log], db, keyFile: legacyKey, keepRequests: true }); // schema 2 kept every request
    const h = new Database(db);
    h.exec(`INSERT INTO meta (key, value) VALUES ('ids.secret', '${secret}'); DELETE FROM meta WHERE key = 'ids.key_id';
      ALTER TABLE runs DROP COLUMN pid; ALTER TABLE runs DROP COLUMN host; ALTER TABLE runs DROP COLUMN group_id; ALTER TABLE runs DROP COLUMN shard_index; ALTER TABLE runs DROP COLUMN shard_count; ALTER TABLE sources DROP COLUMN warnings;
      ALTER TABLE run_seconds DROP COLUMN delivery_histogram; DROP TABLE IF EXISTS run_stages; DROP TABLE IF EXISTS run_capacity;
      DROP TABLE actor_topics; DROP TABLE actor_clients; DROP TABLE distribution_counts; DROP TABLE days; DROP TABLE rosters; DROP TABLE sessions; DROP TABLE actors;
      CREATE TABLE actors (id INTEGER PRIMARY KEY); CREATE TABLE sessions (id INTEGER PRIMARY KEY); CREATE TABLE rosters (p INTEGER); CREATE TABLE timeline (s INTEGER);
      PRAGMA user_version = 2;`);
    h.close();
    fs.rmSync(legacyKey);
    return { db, secret, actors: storedActors(db) };
  }

  it('moves the secret to the key file when none exists, deletes it from the database, and says so', async () => {
    const dir = makeTempDir(dirs, 'rehearse-key-');
    const old = await oldDatabase(dir);
    expect(databaseBytes(old.db).includes(Buffer.from(old.secret))).toBe(true);
    const keyFile = path.join(dir, 'conf', 'pseudonym.key');
    const notices: string[] = [];
    openDatabase(old.db, { keyFile, onNotice: (m) => notices.push(m) }).close();
    expect(fs.readFileSync(keyFile, 'utf8').trim()).toBe(old.secret);
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(meta(old.db, 'ids.secret')).toBeUndefined();
    expect(databaseBytes(old.db).includes(Buffer.from(old.secret))).toBe(false);
    expect(notices).toEqual([`${old.db}: moved the pseudonym secret out of the database into ${keyFile} (mode 0600); the database no longer holds it.`]);
    // The moved key keeps the pseudonyms: re-ingesting adds no actor.
    await ingestFiles({ files: [log], db: old.db, keyFile, force: true });
    expect(storedActors(old.db)).toEqual(old.actors);
  });

  it('keeps an existing key file and writes the old secret beside it, naming it', async () => {
    const dir = makeTempDir(dirs, 'rehearse-key-');
    const old = await oldDatabase(dir);
    const keyFile = path.join(dir, 'pseudonym.key');
    const mine = crypto.randomBytes(32).toString('hex');
    fs.writeFileSync(keyFile, mine, { mode: 0o600 });
    const notices: string[] = [];
    openDatabase(old.db, { keyFile, onNotice: (m) => notices.push(m) }).close();
    expect(fs.readFileSync(keyFile, 'utf8')).toBe(mine);
    const beside = path.join(dir, `pseudonym-${keyIdOf(Buffer.from(old.secret, 'hex'))}.key`);
    expect(fs.readFileSync(beside, 'utf8').trim()).toBe(old.secret);
    expect(notices[0]).toContain(`--key-file ${beside}`);
    expect(meta(old.db, 'ids.secret')).toBeUndefined();
    // The database now refuses the unrelated key instead of mixing pseudonyms.
    await expect(ingestFiles({ files: [log], db: old.db, keyFile, force: true })).rejects.toMatchObject({ code: 'REHEARSE_USAGE' });
  });
});
