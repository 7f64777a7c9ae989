// Runs stored with credentials in their target or scrape URL (by older versions, or before the
// runtime redacted them) never show them: runs, runs --json, compare, compare --json and the HTML
// report all pass stored URLs through redactUrl. Through the CLI, on a real SQLite file.

import fs from 'node:fs';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../cli/program.js';
import { MemoryOutput } from '../../cli/io.js';
import { openDatabase } from '../../db/open.js';
import { getRun } from '../../db/run-queries.js';
import { redactStoredRun } from '../../report/redact-run.js';
import { listRunEntries } from '../../report/runs-list.js';
import { insertRun, openTemp, tempDir } from './fixture-runs.js';

function io() {
  return { stdout: new MemoryOutput(), stderr: new MemoryOutput(), env: {}, signals: new EventEmitter() };
}

const secretTarget = 'http://alice:hunter2@bus.example:8080';
const secretScrape = 'http://127.0.0.1:9090/metrics?format=prom&token=s3cr3t';
const secrets = ['alice', 'hunter2', 's3cr3t'];

let dir: string;
let file: string;
beforeEach(() => {
  dir = tempDir();
  const opened = openTemp(dir);
  file = opened.file;
  const options = { target: secretTarget, scrape: { url: secretScrape, intervalMs: 5000 }, slo: 'p95<=2s,lost<=0', nested: [{ url: 'https://x.example/?api_key=s3cr3t' }] };
  insertRun(opened.db, { release: '2.3', target: secretTarget, options, seconds: 10 });
  insertRun(opened.db, { release: '2.4', target: secretTarget, options, seconds: 10 });
  opened.db.close();
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

async function cli(...args: string[]) {
  const out = io();
  const code = await main(['node', 'rehearse', ...args], out);
  return { code, text: out.stdout.text() + out.stderr.text() };
}

function expectNoSecret(text: string): void {
  for (const s of secrets) expect(text).not.toContain(s);
}

describe('stored credentials are never shown', () => {
  it('the stored row really holds them (the readers, not the fixture, do the redacting)', () => {
    const db = openDatabase(file, { mustExist: true });
    try {
      const run = getRun(db, 1)!;
      expect(run.target).toBe(secretTarget);
      expect(JSON.stringify(run)).toContain('s3cr3t');
      const redacted = redactStoredRun(run);
      expect(redacted.target).toBe('http://***@bus.example:8080');
      expect(redacted.summary!.target).toBe('http://***@bus.example:8080');
      expect(redacted.options).toMatchObject({
        target: 'http://***@bus.example:8080',
        scrape: { url: 'http://127.0.0.1:9090/metrics?format=prom&token=***', intervalMs: 5000 },
        slo: 'p95<=2s,lost<=0',
        nested: [{ url: 'https://x.example/?api_key=***' }],
      });
      expectNoSecret(JSON.stringify(redacted));
      // The stored run object itself is not changed.
      expect(run.target).toBe(secretTarget);
      expect(listRunEntries(db).map((e) => e.target)).toEqual(['http://***@bus.example:8080', 'http://***@bus.example:8080']);
    } finally {
      db.close();
    }
  });

  it('runs and runs --json', async () => {
    const table = await cli('runs', '--results', file);
    expect(table.code).toBe(0);
    expect(table.text).toContain('http://***@bus.example:8080');
    expectNoSecret(table.text);
    const json = await cli('runs', '--results', file, '--json');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.text).runs[0].target).toBe('http://***@bus.example:8080');
    expectNoSecret(json.text);
  });

  it('compare and compare --json', async () => {
    const text = await cli('compare', '1', '2', '--results', file);
    expect(text.code).toBe(0);
    expectNoSecret(text.text);
    const json = await cli('compare', '1', '2', '--results', file, '--json');
    expect(json.code).toBe(0);
    expectNoSecret(json.text);
  });

  it('the HTML report, for a run and a run --vs another', async () => {
    const out = path.join(dir, 'report.html');
    const r = await cli('report', '2', '--vs', '1', '--results', file, '-o', out);
    expect(r.code).toBe(0);
    expectNoSecret(r.text);
    const html = fs.readFileSync(out, 'utf8');
    expect(html).toContain('http://***@bus.example:8080');
    expect(html).toContain('token=***');
    expectNoSecret(html);
  });
});
