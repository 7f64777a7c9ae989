import fs from 'node:fs';
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../cli/program.js';
import { MemoryOutput } from '../../cli/io.js';
import { RehearseError } from '../../core/errors.js';
import type { Db } from '../../db/open.js';
import { resolveRun } from '../../db/run-queries.js';
import { listRunEntries } from '../../report/runs-list.js';
import { insertRun, openTemp, tempDir } from './fixture-runs.js';

function io() {
  return { stdout: new MemoryOutput(), stderr: new MemoryOutput(), env: {}, signals: new EventEmitter() };
}

let dir: string;
let db: Db;
let file: string;
beforeEach(() => {
  dir = tempDir();
  ({ db, file } = openTemp(dir));
});
afterEach(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function threeRuns(): number[] {
  return [
    insertRun(db, { release: '2.3', medianMs: 40, startedAt: '2026-08-20T09:00:00.000Z' }),
    insertRun(db, { release: '2.4', medianMs: 60, lost: 3, duplicates: 2, startedAt: '2026-08-21T09:00:00.000Z' }),
    insertRun(db, { release: '2.4', medianMs: 45, startedAt: '2026-08-22T09:00:00.000Z' }),
  ];
}

describe('resolveRun', () => {
  it('names a run by id, #id, latest, previous, release label (its latest run) and release:<label>', () => {
    const [r1, r2, r3] = threeRuns();
    expect(resolveRun(db, String(r1)).id).toBe(r1);
    expect(resolveRun(db, `#${r2}`).id).toBe(r2);
    expect(resolveRun(db, 'latest').id).toBe(r3);
    expect(resolveRun(db, 'previous').id).toBe(r2);
    expect(resolveRun(db, '2.4').id).toBe(r3);
    expect(resolveRun(db, '2.3').id).toBe(r1);
    expect(resolveRun(db, 'release:2.3').id).toBe(r1);
  });

  it('lets release:<label> reach a release that looks like an id', () => {
    const a = insertRun(db, { release: '7' });
    insertRun(db, { release: '8' });
    expect(resolveRun(db, 'release:7').id).toBe(a);
    expect(() => resolveRun(db, '7')).toThrowError(/no run with id 7/);
  });

  it('says what exists when a name does not resolve', () => {
    threeRuns();
    try {
      resolveRun(db, '2.5', 'results.db');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(RehearseError);
      expect((err as RehearseError).code).toBe('REHEARSE_RUN_NOT_FOUND');
      const msg = (err as Error).message;
      expect(msg).toContain('"2.5"');
      expect(msg).toContain('results.db');
      expect(msg).toContain('Runs: 1, 2, 3');
      expect(msg).toContain('2.3 (#1), 2.4 (#3)');
      expect(msg).toMatch(/latest.*previous/);
    }
    expect(() => resolveRun(db, '99')).toThrowError(/no run with id 99/);
  });

  it('explains an empty database and a missing previous run', () => {
    expect(() => resolveRun(db, 'latest')).toThrowError(/no runs in .* yet/);
    insertRun(db, { release: '2.3' });
    expect(() => resolveRun(db, 'previous')).toThrowError(/only one run/);
  });
});

describe('rehearse runs', () => {
  it('prints one line per run with every column', async () => {
    threeRuns();
    const out = io();
    expect(await main(['node', 'rehearse', 'runs', '--results', file], out)).toBe(0);
    const lines = out.stdout.text().trimEnd().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^id\s+date\s+release\s+target\s+scale\s+mode\s+window\s+duration\s+p95\s+within 2s\s+lost\s+dup\s+verdict$/);
    expect(lines[2]).toMatch(/^ 2\s+2026-08-21 09:00\s+2\.4\s+http:\/\/127\.0\.0\.1:8080\s+5x\s+sample\s+peak\s+60s\s+\d+(\.\d+)?ms\s+\d+\.\d\d%\s+3\s+2\s+FAIL$/);
    expect(lines[3]).toMatch(/PASS$/);
  });

  it('--json gives the documented shape, and --db works when no --results is given', async () => {
    threeRuns();
    const out = io();
    expect(await main(['node', 'rehearse', 'runs', '--db', file, '--json'], out)).toBe(0);
    const parsed = JSON.parse(out.stdout.text()) as { runs: Record<string, unknown>[] };
    expect(parsed.runs).toHaveLength(3);
    expect(Object.keys(parsed.runs[0]!).sort()).toEqual(
      ['id', 'startedAt', 'release', 'target', 'scale', 'mode', 'window', 'speed', 'durationS', 'p95Ms', 'withinTarget', 'lost', 'duplicates', 'status', 'verdict', 'shape'].sort(),
    );
    expect(parsed.runs[1]).toMatchObject({ id: 2, release: '2.4', lost: 3, duplicates: 2, verdict: 'fail', status: 'finished', durationS: 60 });
    expect(parsed.runs[0]!.p95Ms).toBeGreaterThan(40);
    expect(parsed.runs[0]!.p95Ms).toBeLessThan(200);
  });

  it('lists an interrupted run from its per-second rows', () => {
    insertRun(db, { release: 'wip', status: 'interrupted', seconds: 12, lost: 1 });
    const [entry] = listRunEntries(db);
    expect(entry).toMatchObject({ status: 'interrupted', verdict: 'interrupted', durationS: 12, lost: 1, withinTarget: null });
    expect(entry!.p95Ms).toBeNull();
  });

  it('fails with exit 2 naming the flag when no database is given, and naming the file when it is missing', async () => {
    const out = io();
    expect(await main(['node', 'rehearse', 'runs'], out)).toBe(2);
    expect(out.stderr.text()).toContain('--results');
    const out2 = io();
    expect(await main(['node', 'rehearse', 'runs', '--results', `${dir}/absent.db`], out2)).toBe(2);
    expect(out2.stderr.text()).toContain('absent.db');
  });

  it('shows a hostile release label as inert text, never as terminal control sequences', async () => {
    insertRun(db, { release: 'evil\u001b[2J<script>' });
    const out = io();
    await main(['node', 'rehearse', 'runs', '--results', file], out);
    expect(out.stdout.text()).not.toContain('\u001b');
    expect(out.stdout.text()).toContain('evil\\x1b[2J<script>');
  });
});
