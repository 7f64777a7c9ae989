// Defect: two rehearse processes writing one database (concurrent ingests, an ingest during a
// replay) died with SQLITE_BUSY and a raw stack. Now a writer waits busy_timeout for the lock,
// and one that still cannot get it prints one sentence, exits 2, and the file stays intact.
// Real processes: the built binary (`npm run build` first).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { busyError, isBusy } from '../../db/open.js';
import { cliBin, makeTempDir, repoRoot } from '../ingest/helpers.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function writeLog(file: string, records: number, actorPrefix: string): void {
  const out = ['time,actor,endpoint,topics,status,duration_ms'];
  const base = Date.parse('2026-09-01T08:00:00Z');
  for (let i = 0; i < records; i++) {
    out.push(`${new Date(base + i * 50).toISOString()},${actorPrefix}${i % 500},/v1/events/${i % 3 === 0 ? 'subscribe' : 'publish'},t${i % 97},200,${i % 3 === 0 ? 25000 : 12}`);
  }
  fs.writeFileSync(file, out.join('\n') + '\n');
}

function ingest(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliBin, 'ingest', ...args], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ingest did not finish in time\n${stderr}`));
    }, 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('two rehearse processes writing one database', () => {
  it('concurrent ingests: each succeeds or gets the one clear message; the database is intact', async () => {
    expect(fs.existsSync(cliBin)).toBe(true);
    const dir = makeTempDir(dirs, 'rehearse-busy-');
    const db = path.join(dir, 'model.db');
    const a = path.join(dir, 'a.csv');
    const b = path.join(dir, 'b.csv');
    writeLog(a, 60_000, 'ua');
    writeLog(b, 60_000, 'ub');
    const env = { ...process.env, XDG_CONFIG_HOME: path.join(dir, 'config'), REHEARSE_PSEUDONYM_KEY: '' };
    const results = await Promise.all([ingest([a, '--db', db], env), ingest([b, '--db', db], env)]);
    const ok = results.filter((r) => r.code === 0);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    for (const r of results) {
      if (r.code === 0) {
        expect(r.stderr).toBe('');
      } else {
        expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 2, stderr: `rehearse: another rehearse is writing to ${db}; try again when it finishes.\n` });
      }
    }
    const h = new Database(db, { readonly: true });
    try {
      expect(h.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(h.prepare("SELECT value FROM meta WHERE key = 'model.stale'").get()).toBeUndefined();
      const sources = h.prepare('SELECT count(*) FROM sources').pluck().get() as number;
      expect(sources).toBe(ok.length);
      expect(h.prepare('SELECT sum(accepted) FROM sources').pluck().get()).toBe(60_000 * ok.length);
    } finally {
      h.close();
    }
  }, 240_000);

  it('a writer held off past busy_timeout gets the clear message, not SQLITE_BUSY', async () => {
    const dir = makeTempDir(dirs, 'rehearse-busy-');
    const db = path.join(dir, 'model.db');
    const a = path.join(dir, 'a.csv');
    writeLog(a, 200, 'ua');
    const env = { ...process.env, XDG_CONFIG_HOME: path.join(dir, 'config'), REHEARSE_PSEUDONYM_KEY: '' };
    expect((await ingest([a, '--db', db], env)).code).toBe(0);
    const b = path.join(dir, 'b.csv');
    writeLog(b, 200, 'ub');
    // This connection holds the write lock for the whole second ingest (past its busy_timeout).
    const holder = new Database(db);
    holder.pragma('busy_timeout = 1000');
    holder.exec('BEGIN IMMEDIATE');
    try {
      const r = await ingest([b, '--db', db], env);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 2, stderr: `rehearse: another rehearse is writing to ${db}; try again when it finishes.\n` });
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    const h = new Database(db, { readonly: true });
    expect(h.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(h.prepare('SELECT count(*) FROM sources').pluck().get()).toBe(1);
    h.close();
  }, 120_000);

  it('isBusy knows SQLite busy codes only', () => {
    expect(isBusy({ code: 'SQLITE_BUSY' })).toBe(true);
    expect(isBusy({ code: 'SQLITE_BUSY_SNAPSHOT' })).toBe(true);
    expect(isBusy({ code: 'SQLITE_CONSTRAINT' })).toBe(false);
    expect(isBusy(null)).toBe(false);
    expect(busyError('x.db').message).toBe('another rehearse is writing to x.db; try again when it finishes.');
  });
});
