// A season ingested file by file gives the model the same files give at once (issue 13): counts
// exact, quantiles within 1%; the model knows its days and reads one of them at a time.

import fs from 'node:fs';
import path from 'node:path';
import { DateTime } from 'luxon';
import { parse as parseCsv } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSchoolDay } from '../../fixtures/write-day.js';
import { ingestFiles } from '../../ingest/ingest.js';
import { describeModel, formatModelDescription, type ModelDescription } from '../../ingest/describe.js';
import { openDatabase } from '../../db/open.js';
import { openModelReader } from '../../db/model-store.js';
import { makeTempDir } from './helpers.js';

const dirs: string[] = [];
let dir: string;
let files: string[];

/** The generated day again `days` days later: every time moved by whole calendar days, session ids made that day's own. */
function shiftedDay(lines: string[], days: number): string[] {
  const [header, ...body] = lines;
  const columns = header!.split(',');
  const time = columns.indexOf('time');
  const session = columns.indexOf('session');
  const quote = (v: string): string => `"${v.replace(/"/g, '""')}"`;
  return [
    header!,
    ...body.map((l) => {
      const fields = (parseCsv(l, { relax_column_count: true }) as string[][])[0]!;
      fields[time] = DateTime.fromISO(fields[time]!, { setZone: true }).plus({ days }).toISO({ suppressMilliseconds: false })!;
      if (session >= 0 && fields[session]) fields[session] = `${fields[session]}-d${days}`;
      return fields.map(quote).join(',');
    }),
  ];
}

function describeFile(db: string): ModelDescription {
  const h = openDatabase(db, { mustExist: true, readonly: true });
  try {
    return describeModel(h);
  } finally {
    h.close();
  }
}

beforeAll(async () => {
  dir = makeTempDir(dirs, 'rehearse-season-');
  const day = await writeSchoolDay(path.join(dir, 'gen'), 'small');
  const lines = fs.readFileSync(day.files.csv, 'utf8').trimEnd().split('\n');
  fs.mkdirSync(path.join(dir, 'logs'));
  // Thinner later days (fewer requests, the same sessions).
  files = [0, 1, 2].map((d) => {
    const file = path.join(dir, 'logs', `day-${d}.csv`);
    const kept = d === 0 ? lines : lines.filter((_, i) => i === 0 || i % (d + 1) !== 0);
    fs.writeFileSync(file, shiftedDay(kept, d).join('\n') + '\n');
    return file;
  });
});

afterAll(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('a season of daily files', () => {
  it('one by one gives the model of all at once (counts exact, quantiles within 1%), and the days with their peaks', async () => {
    const oneByOne = path.join(dir, 'one.db');
    for (const f of [...files].reverse()) await ingestFiles({ files: [f], db: oneByOne });
    const atOnce = path.join(dir, 'once.db');
    // A directory: its files in the order of their first records' times.
    const summary = await ingestFiles({ files: [path.join(dir, 'logs')], db: atOnce });
    expect(summary.files.map((f) => path.basename(f.path))).toEqual(['day-0.csv', 'day-1.csv', 'day-2.csv']);

    const a = describeFile(oneByOne);
    const b = describeFile(atOnce);
    for (const key of ['learners', 'proctors', 'sessions', 'proctorSessions', 'requests', 'peakConcurrentLearners', 'span', 'arrivalsPerMinute', 'days'] as const) {
      expect(a[key], key).toEqual(b[key]);
    }
    for (const key of ['learnersPerProctor', 'learnerPublishIntervalS', 'proctorControlIntervalS', 'sessionDurationS', 'proctorSessionDurationS', 'messagesPerPublish', 'pollDurationS', 'retryGapS'] as const) {
      expect(a[key].count, key).toBe(b[key].count);
      for (const q of ['mean', 'p50', 'p90', 'p99', 'max'] as const) {
        expect(Math.abs(a[key][q] - b[key][q]), `${key}.${q}`).toBeLessThanOrEqual(Math.abs(b[key][q]) * 0.01 + 1e-9);
      }
    }
    expect(b.days).toHaveLength(3);
    expect(new Set(b.days.map((d) => d.day)).size).toBe(3);
    // Equal peaks: the earliest day is the busiest.
    expect(b.days[0]!.peakConcurrentLearners).toBeGreaterThanOrEqual(Math.max(...b.days.map((d) => d.peakConcurrentLearners)));
    expect(formatModelDescription(b)).toMatch(new RegExp(`3 days \\(plan and replay use --day, default the busiest: ${b.days[0]!.day}\\)`));
  });

  it('reads one day at a time: the busiest by default, any day by name, every day with all', async () => {
    const db = path.join(dir, 'once.db');
    const h = openDatabase(db, { mustExist: true, readonly: true });
    try {
      const days = describeModel(h).days;
      const zone = openModelReader(h, { day: 'all' }).overview().timezone;
      const inDay = (day: string, ms: number): boolean => DateTime.fromMillis(ms, { zone }).toISODate() === day;
      const busiest = openModelReader(h);
      expect(inDay(days[0]!.day, busiest.overview().span.startMs)).toBe(true);
      const second = openModelReader(h, { day: days[1]!.day });
      const classes = [...second.classes()];
      expect(classes.length).toBeGreaterThan(0);
      for (const c of classes) for (const l of c.learners) expect(inDay(days[1]!.day, l.startMs)).toBe(true);
      expect(classes.reduce((n, c) => n + c.learners.length, 0)).toBe(days[1]!.learnerSessions);
      expect(second.arrivals().reduce((n, m) => n + m.learners, 0)).toBe(days[1]!.learnerSessions);
      expect(() => openModelReader(h, { day: '2020-01-01' })).toThrowError(/--day: 2020-01-01 is not a recorded day/);
      const all = openModelReader(h, { day: 'all' });
      expect([...all.classes()].reduce((n, c) => n + c.learners.length, 0)).toBe(days.reduce((n, d) => n + d.learnerSessions, 0));
    } finally {
      h.close();
    }
  });
});
