import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../db/open.js';
import { hasModel, openModelReader, writeModel, type ModelData } from '../../db/model-store.js';
import { summarize } from '../../stats/quantile.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function tempDb(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rehearse-store-'));
  dirs.push(dir);
  return path.join(dir, 'model.db');
}

const t0 = Date.UTC(2026, 8, 1, 8, 0, 0);

function sampleModel(): ModelData {
  const intervals = Float64Array.from([1000, 2000, 3000, 4000]);
  return {
    overview: {
      fingerprint: 'f'.repeat(64),
      span: { startMs: t0, endMs: t0 + 185_000 },
      timezone: 'Europe/Paris',
      learners: 3,
      proctors: 1,
      sessions: 3,
      proctorSessions: 1,
      peakConcurrentLearners: 2,
      peakConcurrentLearnersAtMs: t0 + 60_000,
    },
    actors: [
      { id: 1, pseudonym: 'p1', role: 'proctor', clientFamily: 'Chrome' },
      { id: 2, pseudonym: 'l1', role: 'learner', clientFamily: null },
      { id: 3, pseudonym: 'l2', role: 'learner', clientFamily: null },
      { id: 4, pseudonym: 'l3', role: 'learner', clientFamily: null },
    ],
    sessions: [
      { id: 10, actorId: 1, role: 'proctor', pseudonym: 's-p', startMs: t0, endMs: t0 + 180_000, publishTopic: null, controlTopic: null, publishes: 1, messages: 1, polls: 5, controls: 1, errors: 0 },
      { id: 11, actorId: 2, role: 'learner', pseudonym: 's-1', startMs: t0 + 10_000, endMs: t0 + 100_000, publishTopic: 't1', controlTopic: 'c1', publishes: 2, messages: 3, polls: 1, controls: 0, errors: 1 },
      { id: 12, actorId: 3, role: 'learner', pseudonym: 's-2', startMs: t0 + 5_000, endMs: t0 + 90_000, publishTopic: 't2', controlTopic: 'c2', publishes: 0, messages: 0, polls: 0, controls: 0, errors: 0 },
      { id: 13, actorId: 4, role: 'learner', pseudonym: 's-3', startMs: t0 + 120_000, endMs: t0 + 185_000, publishTopic: 't3', controlTopic: 'c3', publishes: 0, messages: 0, polls: 0, controls: 0, errors: 0 },
    ],
    rosters: [
      { proctorSessionId: 10, learnerSessionId: 11 },
      { proctorSessionId: 10, learnerSessionId: 12 },
    ],
    timeline: [
      { sessionId: 11, atMs: 2000, kind: 'publish', messages: 2, durationMs: 5, status: 200, targetSessionId: null },
      { sessionId: 11, atMs: 0, kind: 'poll', messages: 0, durationMs: 30_000, status: 200, targetSessionId: null },
      { sessionId: 10, atMs: 500, kind: 'control', messages: 1, durationMs: 3, status: 200, targetSessionId: 12 },
    ],
    distributions: [{ name: 'learnerPublishInterval', unit: 'ms', summary: summarize(intervals), samples: intervals }],
    arrivals: [
      { minuteMs: t0, learners: 2 },
      { minuteMs: t0 + 120_000, learners: 1 },
    ],
  };
}

describe('model store', () => {
  it('round-trips a model through SQLite: overview, distributions, arrivals with zeros, classes, timelines', () => {
    const file = tempDb();
    const db = openDatabase(file);
    expect(hasModel(db)).toBe(false);
    expect(() => openModelReader(db)).toThrowError(/holds no model yet/);
    writeModel(db, sampleModel());
    db.close();

    const again = openDatabase(file, { mustExist: true, readonly: true });
    const reader = openModelReader(again);
    expect(reader.overview()).toEqual(sampleModel().overview);
    const d = reader.distribution('learnerPublishInterval')!;
    expect(d.summary).toEqual({ count: 4, mean: 2500, p50: 2500, p90: 3700, p99: 3970, max: 4000 });
    expect(Array.from(d.samples)).toEqual([1000, 2000, 3000, 4000]);
    expect(reader.distribution('retryGap')).toBeNull();
    expect(reader.arrivals()).toEqual([
      { minuteMs: t0, learners: 2 },
      { minuteMs: t0 + 60_000, learners: 0 },
      { minuteMs: t0 + 120_000, learners: 1 },
      { minuteMs: t0 + 180_000, learners: 0 },
    ]);
    const classes = [...reader.classes()];
    expect(classes).toHaveLength(2);
    expect(classes[0]!.proctor?.id).toBe(10);
    expect(classes[0]!.learners.map((l) => l.id)).toEqual([12, 11]); // by start
    expect(classes[0]!.learners[1]).toMatchObject({ actor: 'l1', role: 'learner', publishes: 2, messages: 3, errors: 1 });
    expect(classes[1]).toEqual({ proctor: null, learners: [expect.objectContaining({ id: 13, actor: 'l3' })] });
    expect(reader.timeline(11).map((e) => e.kind)).toEqual(['poll', 'publish']);
    expect(reader.timeline(10)).toEqual([{ atMs: 500, kind: 'control', messages: 1, durationMs: 3, status: 200, targetSessionId: 12 }]);
    again.close();
  });

  it('replaces the previous model entirely and puts a learner on two rosters in one class', () => {
    const db = openDatabase(':memory:');
    writeModel(db, sampleModel());
    const m = sampleModel();
    m.sessions.push({ id: 14, actorId: 1, role: 'proctor', pseudonym: 's-p2', startMs: t0 + 95_000, endMs: t0 + 200_000, publishTopic: null, controlTopic: null, publishes: 0, messages: 0, polls: 0, controls: 0, errors: 0 });
    m.rosters.push({ proctorSessionId: 14, learnerSessionId: 11 }, { proctorSessionId: 14, learnerSessionId: 13 });
    m.timeline = [];
    writeModel(db, m);
    const reader = openModelReader(db);
    const classes = [...reader.classes()];
    const ids = classes.flatMap((c) => c.learners.map((l) => l.id)).sort();
    expect(ids).toEqual([11, 12, 13]); // each learner exactly once
    expect(classes.find((c) => c.proctor?.id === 14)!.learners.map((l) => l.id)).toEqual([13]);
    expect(reader.timeline(11)).toEqual([]);
    db.close();
  });
});
