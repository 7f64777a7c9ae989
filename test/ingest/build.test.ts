// Roles, sessions and the rebuild on small hand-made logs (the generated day is acceptance.test.ts).

import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ingestFiles, ingestFilesInWorker } from '../../ingest/ingest.js';
import { openDatabase } from '../../db/open.js';
import { openModelReader } from '../../db/model-store.js';
import { splitByGap } from '../../ingest/model/sessions.js';
import { peakConcurrency } from '../../ingest/model/peak.js';
import type { SessionRecordRow } from '../../db/session-pack.js';
import { parseRoleOverride } from '../../ingest/mapping.js';
import { databaseChecksum, makeTempDir } from './helpers.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const t0 = Date.UTC(2026, 8, 1, 6, 0, 0);
const header = 'time,actor,endpoint,topics,status,duration_ms,messages';
function line(ms: number, actor: string, endpoint: string, topics: string, status = 200, duration = 10, messages = 1): string {
  return [new Date(t0 + ms).toISOString(), actor, endpoint, topics, status, duration, messages].join(',');
}

/** One proctor (p) watching one learner (l): the ambiguous case, told apart by publish counts. */
function oneLearnerClass(): string[] {
  const out: string[] = [];
  for (let s = 0; s < 600; s += 25) {
    out.push(line(s * 1000, 'l', '/subscribe', 'control-l', 200, 25_000, 0));
    out.push(line(s * 1000 + 1, 'p', '/subscribe', 'work-l', 200, 24_000, 1));
  }
  for (let s = 0; s < 600; s += 5) out.push(line(s * 1000 + 2, 'l', '/publish', 'work-l'));
  out.push(line(100_000, 'p', '/publish', 'control-l'));
  out.push(line(400_000, 'p', '/publish', 'control-l'));
  out.push(line(50_000, 'probe', '/healthz', ''));
  return out.sort();
}

function write(dir: string, name: string, lines: string[]): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, [header, ...lines].join('\n') + '\n');
  return file;
}

describe('model rebuild', () => {
  it('tells a proctor from its only learner by behaviour, and links controls, rosters and timelines', async () => {
    const dir = makeTempDir(dirs);
    const db = path.join(dir, 'm.db');
    await ingestFiles({ files: [write(dir, 'a.csv', oneLearnerClass())], db, keepIds: true });
    const h = openDatabase(db, { mustExist: true });
    const roles = Object.fromEntries(h.prepare('SELECT i.value, a.role FROM actors a JOIN ids i ON i.id = a.id').raw().all() as Array<[string, string]>);
    expect(roles).toEqual({ l: 'learner', p: 'proctor', probe: 'other' });
    const reader = openModelReader(h);
    const [cls] = [...reader.classes()];
    expect(cls!.proctor!.actor).toBe('p');
    expect(cls!.learners.map((l) => l.actor)).toEqual(['l']);
    const controls = reader.timeline(cls!.proctor!.id).filter((e) => e.kind === 'control');
    expect(controls.map((c) => [c.atMs, c.targetSessionId])).toEqual([
      [100_000 - 1, cls!.learners[0]!.id],
      [400_000 - 1, cls!.learners[0]!.id],
    ]);
    expect(reader.distribution('proctorControlInterval')!.summary).toMatchObject({ count: 1, p50: 300_000 });
    expect(reader.distribution('learnerPublishInterval')!.summary).toMatchObject({ count: 119, p50: 5000, max: 5000 });
    expect(reader.overview()).toMatchObject({ learners: 1, proctors: 1, sessions: 1, proctorSessions: 1, peakConcurrentLearners: 1 });
    h.close();
  });

  it('--role-override wins over behaviour, matched on the raw id before pseudonymising', async () => {
    const dir = makeTempDir(dirs);
    const db = path.join(dir, 'm.db');
    await ingestFiles({ files: [write(dir, 'a.csv', oneLearnerClass())], db, roleOverrides: [parseRoleOverride('learner=^p$')] });
    const h = openDatabase(db, { mustExist: true });
    expect(openModelReader(h).overview()).toMatchObject({ learners: 2, proctors: 0 });
    h.close();
  });

  it('a failing file among several leaves earlier files ingested and the model rebuilt over them', async () => {
    const dir = makeTempDir(dirs);
    const db = path.join(dir, 'm.db');
    const good = write(dir, 'good.csv', oneLearnerClass());
    const bad = write(dir, 'bad.csv', ['not-a-time,x,/publish,t,200,1,1', 'also-bad,x,/publish,t,200,1,1']);
    await expect(ingestFiles({ files: [good, bad], db })).rejects.toMatchObject({ code: 'REHEARSE_TOO_MANY_ERRORS' });
    const h = openDatabase(db, { mustExist: true });
    expect(h.prepare('SELECT path FROM sources').pluck().all()).toEqual([good]);
    expect(openModelReader(h).overview().learners).toBe(1);
    h.close();
    const before = databaseChecksum(db);
    const again = await ingestFiles({ files: [good], db });
    expect(again.files[0]!.status).toBe('skipped');
    expect(databaseChecksum(db)).toBe(before);
  });

  it('runs the same ingest in a bounded worker thread (what the CLI uses), errors keeping their code', async () => {
    const dir = makeTempDir(dirs);
    const inProcess = path.join(dir, 'a.db');
    const inWorker = path.join(dir, 'b.db');
    const file = write(dir, 'a.csv', oneLearnerClass());
    await ingestFiles({ files: [file], db: inProcess, keepIds: true });
    const summary = await ingestFilesInWorker({ files: [file], db: inWorker, keepIds: true, onProgress: () => undefined });
    expect(summary.files[0]).toMatchObject({ status: 'ingested', accepted: oneLearnerClass().length });
    const overview = (db: string) => {
      const h = openDatabase(db, { mustExist: true });
      try {
        return openModelReader(h).overview();
      } finally {
        h.close();
      }
    };
    expect(overview(inWorker)).toEqual(overview(inProcess));
    const bad = write(dir, 'bad.csv', ['not-a-time,x,/publish,t,200,1,1']);
    await expect(ingestFilesInWorker({ files: [bad], db: inWorker, keepIds: true })).rejects.toMatchObject({
      code: 'REHEARSE_TOO_MANY_ERRORS',
      message: expect.stringMatching(/bad\.csv: 1 of 2 lines rejected/),
    });
  });

  it('cuts sessions by 5 minutes of silence, counting requests still in flight', () => {
    const r = (startMs: number, durationMs: number): SessionRecordRow => ({ startMs, durationMs, op: 2, status: 200, messages: 0, topics: [1] });
    const sessions = splitByGap([r(0, 25_000), r(25_000, 400_000), r(700_000, 10), r(1_100_000, 10)]);
    expect(sessions.map((s) => s.length)).toEqual([3, 1]);
    expect(peakConcurrency([[0, 10], [10, 20], [5, 6]])).toEqual({ count: 2, atMs: 5 });
  });
});
