// `rehearse report -o`: never writes over the database it reads, another SQLite file or a file that
// is not an earlier report (exit 2, the file byte for byte unchanged), and writes atomically.
// Through the CLI (main), with stored runs in a real SQLite file in a temp dir.

import fs from 'node:fs';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../cli/program.js';
import { MemoryOutput } from '../../cli/io.js';
import { insertRun, openTemp, tempDir } from './fixture-runs.js';

function io() {
  return { stdout: new MemoryOutput(), stderr: new MemoryOutput(), env: {}, signals: new EventEmitter() };
}

let dir: string;
let file: string;
beforeEach(() => {
  dir = tempDir();
  const opened = openTemp(dir);
  file = opened.file;
  insertRun(opened.db, { release: '2.3', seconds: 10 });
  opened.db.close();
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

async function report(...args: string[]) {
  const out = io();
  const code = await main(['node', 'rehearse', 'report', 'latest', '--results', file, ...args], out);
  return { code, stdout: out.stdout.text(), stderr: out.stderr.text() };
}

/** Names in the directory besides the database and its WAL companions: no temp file may be left. */
function leftovers(): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => !n.startsWith('results.db'))
    .sort();
}

describe('report -o refuses to destroy a file', () => {
  it('refuses the database it reads, leaving it byte for byte unchanged', async () => {
    const before = fs.readFileSync(file);
    const r = await report('-o', file);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('-o');
    expect(r.stderr).toMatch(/database the runs are read from/);
    expect(fs.readFileSync(file).equals(before)).toBe(true);
    expect(leftovers()).toEqual([]);
  });

  it('refuses the same database named another way (a relative path with ..)', async () => {
    const before = fs.readFileSync(file);
    const other = path.join(dir, 'sub', '..', 'results.db');
    fs.mkdirSync(path.join(dir, 'sub'));
    const r = await report('-o', other);
    expect(r.code).toBe(2);
    expect(fs.readFileSync(file).equals(before)).toBe(true);
  });

  it('refuses any other SQLite file', async () => {
    const other = openTemp(dir, 'model.sqlite');
    other.db.close();
    const before = fs.readFileSync(other.file);
    expect(before.subarray(0, 16).toString('latin1')).toBe('SQLite format 3\0');
    const r = await report('-o', other.file);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/-o .*model\.sqlite.*SQLite database/);
    expect(fs.readFileSync(other.file).equals(before)).toBe(true);
  });

  it.each([
    ['notes.txt', 'my notes, not a report\n'],
    ['page.html', '<!doctype html>\n<html><head><title>My page</title></head><body>hand written</body></html>\n'],
    ['empty.html', ''],
  ])('refuses an existing %s that rehearse did not write', async (name, content) => {
    const target = path.join(dir, name);
    fs.writeFileSync(target, content);
    const r = await report('-o', target);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/-o .* is not a report rehearse wrote/);
    expect(fs.readFileSync(target, 'utf8')).toBe(content);
    expect(leftovers()).toEqual([name]);
  });

  it('refuses a directory', async () => {
    fs.mkdirSync(path.join(dir, 'out'));
    const r = await report('-o', path.join(dir, 'out'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/-o .* is a directory/);
  });
});

describe('report -o writes', () => {
  it('a new file, and replaces a report it wrote earlier, leaving no temp file', async () => {
    const target = path.join(dir, 'run.html');
    const first = await report('-o', target);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`Wrote ${target}`);
    const html = fs.readFileSync(target, 'utf8');
    expect(html.startsWith('<!doctype html>')).toBe(true);
    fs.appendFileSync(target, '<!-- edited -->');
    const second = await report('-o', target);
    expect(second.code).toBe(0);
    expect(fs.readFileSync(target, 'utf8')).not.toContain('<!-- edited -->');
    expect(leftovers()).toEqual(['run.html']);
  });

  it('fails with exit 2 and creates nothing when the -o directory cannot exist', async () => {
    fs.writeFileSync(path.join(dir, 'plain'), 'a file, not a directory');
    const r = await report('-o', path.join(dir, 'plain', 'run.html'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/-o .*cannot write the report/);
    expect(leftovers()).toEqual(['plain']);
  });

  // Root writes anywhere, so the locked directory proves nothing there: skipped, not passed.
  it.skipIf(process.getuid?.() === 0)('leaves no partial report when the directory cannot be written', async () => {
    const locked = path.join(dir, 'locked');
    fs.mkdirSync(locked);
    fs.chmodSync(locked, 0o500);
    try {
      const r = await report('-o', path.join(locked, 'run.html'));
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/-o .*cannot write the report/);
      expect(fs.readdirSync(locked)).toEqual([]);
    } finally {
      fs.chmodSync(locked, 0o700);
    }
  });
});
