// The generated school day, ingested from every format (plain and gzipped), gives one model,
// and that model matches the generator's ground truth (docs/fixtures.md, docs/model.md).

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSchoolDay, type WrittenDay } from '../../fixtures/write-day.js';
import { ingestFiles } from '../../ingest/ingest.js';
import { describeModel, type ModelDescription } from '../../ingest/describe.js';
import { openDatabase } from '../../db/open.js';
import { openModelReader } from '../../db/model-store.js';
import type { Summary } from '../../stats/quantile.js';
import { makeTempDir } from './helpers.js';

const dirs: string[] = [];
let day: WrittenDay;
let dir: string;
const models = new Map<string, ModelDescription>();

/** The model without what names its input: sources, their hashes, and the zone read from the times' offsets. */
function withoutSourceIdentity(d: ModelDescription): Omit<ModelDescription, 'fingerprint' | 'sources' | 'timezone'> {
  const { fingerprint: _f, sources: _s, timezone: _t, ...rest } = d;
  return rest;
}

async function ingestInto(name: string, files: string[], mapping?: string): Promise<string> {
  const db = path.join(dir, `${name}.db`);
  await ingestFiles({ files, db, mapping });
  return db;
}

function describeFile(dbPath: string): ModelDescription {
  const db = openDatabase(dbPath, { mustExist: true, readonly: true });
  try {
    return describeModel(db);
  } finally {
    db.close();
  }
}

beforeAll(async () => {
  dir = makeTempDir(dirs, 'rehearse-accept-');
  day = await writeSchoolDay(path.join(dir, 'day'), 'small');
  const f = day.files;
  const inputs: Array<[string, string, string | undefined]> = [
    ['csv', f.csv, undefined],
    ['csvGz', f.csvGz, undefined],
    ['jsonl', f.jsonl, f.mappingJsonl],
    ['jsonlGz', f.jsonlGz, f.mappingJsonl],
    ['nginx', f.nginx, f.mappingNginx],
    ['nginxGz', f.nginxGz, f.mappingNginx],
  ];
  for (const [name, file, mapping] of inputs) models.set(name, describeFile(await ingestInto(name, [file], mapping)));
});

afterAll(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function expectWithin(actual: Summary, truth: Summary, tolerance: number): void {
  expect(actual.count).toBe(truth.count);
  for (const q of ['p50', 'p90'] as const) {
    expect(Math.abs(actual[q] - truth[q])).toBeLessThanOrEqual(Math.abs(truth[q]) * tolerance + 1e-9);
  }
}

describe('the small school day', () => {
  it('gives the same model from CSV, JSON lines and nginx, plain and gzipped', () => {
    const reference = withoutSourceIdentity(models.get('csv')!);
    for (const [name, m] of models) {
      expect(withoutSourceIdentity(m), name).toEqual(reference);
    }
    // Plain and gzipped copies are the same content: same sha256, same fingerprint.
    expect(models.get('csvGz')!.fingerprint).toBe(models.get('csv')!.fingerprint);
    expect(models.get('nginxGz')!.sources[0]!.sha256).toBe(models.get('nginx')!.sources[0]!.sha256);
    // Paris in September is +02:00 on every CSV time and nginx $time_local (beside $msec): the
    // preferred zone at +02:00 then is Europe/Paris. Epoch ms say nothing: UTC.
    expect([...models].map(([name, m]) => [name, m.timezone])).toEqual([
      ['csv', 'Europe/Paris'], ['csvGz', 'Europe/Paris'], ['jsonl', 'UTC'], ['jsonlGz', 'UTC'], ['nginx', 'Europe/Paris'], ['nginxGz', 'Europe/Paris'],
    ]);
  });

  it('matches the generator truth: counts exact, interval medians and p90 within 10%, peak concurrency within 5%', () => {
    const t = day.truth;
    const m = models.get('nginx')!; // the hardest format: no session field, end-time order
    expect(m.learners).toBe(t.learners);
    expect(m.proctors).toBe(t.proctors);
    expect(m.sessions).toBe(t.learnerSessions);
    expect(m.proctorSessions).toBe(t.proctorSessions);
    expect(m.requests).toBe(t.lines);
    expect(m.span).toEqual({ start: new Date(t.span.startMs).toISOString(), end: new Date(t.span.endMs).toISOString() });
    const ms = (s: Summary): Summary => ({ ...s, mean: s.mean / 1000, p50: s.p50 / 1000, p90: s.p90 / 1000, p99: s.p99 / 1000, max: s.max / 1000 });
    expectWithin(m.learnerPublishIntervalS, ms(t.learnerPublishInterval), 0.1);
    expectWithin(m.proctorControlIntervalS, ms(t.proctorControlInterval), 0.1);
    expectWithin(m.sessionDurationS, ms(t.sessionDuration), 0.1);
    expectWithin(m.learnersPerProctor, t.rosterSize, 0.1);
    expect(Math.abs(m.peakConcurrentLearners - t.peakConcurrentLearners)).toBeLessThanOrEqual(t.peakConcurrentLearners * 0.05);
    expect(m.arrivalsPerMinute).toEqual({ peak: t.arrivals.peak, peakAt: new Date(t.arrivals.peakAtMs).toISOString() });
    // Closer than the issue asks: the definitions are shared, so the numbers are the same.
    expect(m.learnerPublishIntervalS.p50).toBeCloseTo(t.learnerPublishInterval.p50 / 1000, 9);
    expect(m.peakConcurrentLearners).toBe(t.peakConcurrentLearners);
  });

  it('stores every distribution, the arrivals curve and rosters as the truth computes them', () => {
    const db = openDatabase(path.join(dir, 'jsonl.db'), { mustExist: true, readonly: true });
    try {
      const reader = openModelReader(db);
      const t = day.truth;
      for (const name of ['messagesPerPublish', 'controlTargets', 'pollDuration', 'retryGap', 'proctorLeadTime', 'proctorSessionDuration'] as const) {
        const d = reader.distribution(name)!;
        expect(d.summary, name).toEqual(t[name]);
        expect(d.samples.length).toBe(Math.min(d.summary.count, 100_000));
      }
      const arrivals = reader.arrivals().filter((a) => a.learners > 0).map((a) => [a.minuteMs, a.learners]);
      expect(arrivals).toEqual(t.arrivalsPerMinute);
      const classes = [...reader.classes()];
      const rosterSizes = classes.filter((c) => c.proctor).map((c) => c.learners.length).sort();
      expect(rosterSizes).toEqual(t.rosters.map((r) => r.learners.length).sort());
      const o = reader.overview();
      expect(o.sessions).toBe(t.learnerSessions);
      // Timelines replay the truth's counts: successful learner publishes and their messages.
      let publishes = 0;
      let messages = 0;
      let controls = 0;
      for (const c of classes) {
        for (const l of c.learners) {
          for (const e of reader.timeline(l.id)) {
            if (e.kind === 'publish') (publishes++, (messages += e.messages));
          }
        }
        if (c.proctor) controls += c.proctor.controls;
      }
      expect({ publishes, messages, controls }).toEqual({ publishes: t.publishes, messages: t.messages, controls: t.controls });
    } finally {
      db.close();
    }
  });

  it('gives the same model from hourly-rotated files ingested one after another', async () => {
    const lines = fs.readFileSync(day.files.csv, 'utf8').trimEnd().split('\n');
    const header = lines[0]!;
    const body = lines.slice(1);
    const parts = [body.slice(0, 9000), body.slice(9000, 20000), body.slice(20000)];
    const files = parts.map((p, i) => {
      const file = path.join(dir, `rot-${i}.csv${i === 1 ? '.gz' : ''}`);
      const text = [header, ...p].join('\n') + '\n';
      fs.writeFileSync(file, i === 1 ? zlib.gzipSync(text) : text);
      return file;
    });
    const db = path.join(dir, 'rotated.db');
    for (const f of files) await ingestFiles({ files: [f], db });
    const rotated = describeFile(db);
    expect(rotated.sources).toHaveLength(3);
    expect(withoutSourceIdentity(rotated)).toEqual(withoutSourceIdentity(models.get('csv')!));
  });
});
