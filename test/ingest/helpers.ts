// Shared by the ingest tests: temp dirs, a whole-database fingerprint, and the CLI binary.

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import Database from 'better-sqlite3';

export const repoRoot = path.resolve(import.meta.dirname, '../..');
export const samples = path.join(repoRoot, 'fixtures/samples');
export const cliBin = path.join(repoRoot, 'dist/cli/bin.js');

export function makeTempDir(dirs: string[], prefix = 'rehearse-ingest-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

/** sha256 over every row of every table (sorted), so "database unchanged" is one comparison. */
export function databaseChecksum(file: string): string {
  const db = new Database(file, { readonly: true });
  try {
    const hash = crypto.createHash('sha256');
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all() as string[];
    for (const t of tables) {
      const rows = db.prepare(`SELECT * FROM "${t}"`).raw().all().map((r) => JSON.stringify(r, (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString('base64') : v)));
      rows.sort();
      hash.update(`${t}\n${rows.join('\n')}\n`);
    }
    hash.update(String(db.pragma('user_version', { simple: true })));
    return hash.digest('hex');
  } finally {
    db.close();
  }
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node dist/cli/bin.js ...args` and collects its output (bounded by a timeout). */
export function runCli(args: string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliBin, ...args], { cwd: options.cwd ?? repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`rehearse ${args.join(' ')} did not finish in time\n${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
