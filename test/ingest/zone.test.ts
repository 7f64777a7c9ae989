// The model's zone (issue 13 step 4): an IANA zone inferred record by record from the offsets the
// times carry, right across a daylight-saving change (a 23-hour and a 25-hour day), the same
// whether files are ingested one by one or at once, the mapping's when it names one, and printed
// as people read it.

import fs from 'node:fs';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { DateTime } from 'luxon';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryOutput } from '../../cli/io.js';
import { main } from '../../cli/program.js';
import { formatIngestSummary } from '../../cli/ingest.js';
import { zoneLabel } from '../../core/zone.js';
import { openDatabase } from '../../db/open.js';
import { dayBounds, modelDays, openModelReader } from '../../db/model-store.js';
import { ingestFiles, type IngestSummary } from '../../ingest/ingest.js';
import { describeModel } from '../../ingest/describe.js';
import { FileOffsets, inferZone, mergeEvidence, OffsetRunTracker } from '../../ingest/zone.js';
import { resolvePlanOptions } from '../../replay/plan.js';
import { resolveWindow } from '../../replay/plan/window.js';
import { makeTempDir, samples } from './helpers.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const header = 'time,actor,endpoint,topics,status,duration_ms,messages,session';
const paris = 'Europe/Paris';

/**
 * A learner session per start instant: a poll of its control topic, then a publish every 20 s
 * for 5 minutes. Times are written as a server in `zone` writes them: the offset of that instant.
 */
function sessionLines(startMs: number, n: number, zone: string): string[] {
  const at = (ms: number): string => DateTime.fromMillis(ms, { zone }).toISO()!;
  const lines = [`${at(startMs)},u${n},/v1/control/subscribe,tc${n},200,20000,0,s${n}`];
  for (let k = 1; k <= 15; k++) lines.push(`${at(startMs + k * 20_000)},u${n},/v1/events/publish,tb${n},200,12,1,s${n}`);
  return lines;
}

function writeLog(dir: string, name: string, startsUtc: number[], zone = paris, first = 0): string {
  const lines = [header];
  startsUtc.forEach((ms, i) => lines.push(...sessionLines(ms, first + i, zone)));
  const file = path.join(dir, name);
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

const utc = (iso: string): number => Date.parse(iso);
const localClock = (ms: number, zone: string): string => DateTime.fromMillis(ms, { zone }).toFormat('yyyy-MM-dd HH:mm');

// 2026-03-29, Europe: clocks go from 02:00 CET to 03:00 CEST at 01:00 UTC.
const springStarts = [
  utc('2026-03-28T09:00:00Z'), // 10:00 +01:00 the day before
  utc('2026-03-28T23:30:00Z'), // 00:30 +01:00
  utc('2026-03-29T00:30:00Z'), // 01:30 +01:00
  utc('2026-03-29T01:30:00Z'), // 03:30 +02:00 (02:30 on a fixed +01:00 clock)
  utc('2026-03-29T08:00:00Z'), // 10:00 +02:00
  utc('2026-03-29T21:30:00Z'), // 23:30 +02:00
  utc('2026-03-30T08:00:00Z'), // 10:00 +02:00 the day after
];
// 2026-10-25: clocks go from 03:00 CEST back to 02:00 CET at 01:00 UTC; 02:30 happens twice.
const fallStarts = [
  utc('2026-10-24T22:30:00Z'), // 00:30 +02:00
  utc('2026-10-25T00:30:00Z'), // 02:30 +02:00
  utc('2026-10-25T01:30:00Z'), // 02:30 +01:00
  utc('2026-10-25T09:00:00Z'), // 10:00 +01:00
  utc('2026-10-25T22:30:00Z'), // 23:30 +01:00
];

async function ingestInto(dir: string, name: string, files: string[], extra: Partial<Parameters<typeof ingestFiles>[0]> = {}): Promise<{ db: string; summaries: IngestSummary[] }> {
  const db = path.join(dir, name);
  const summaries: IngestSummary[] = [];
  summaries.push(await ingestFiles({ files, db, keepIds: true, ...extra }));
  return { db, summaries };
}

function withModel<T>(file: string, f: (db: ReturnType<typeof openDatabase>) => T): T {
  const db = openDatabase(file, { mustExist: true });
  try {
    return f(db);
  } finally {
    db.close();
  }
}

describe('offset evidence and inference (pure)', () => {
  it('a run of one offset per stretch of records; a change of offset starts the next', () => {
    const t = new OffsetRunTracker();
    t.add(60, 1000, 1);
    t.add(60, 500, 2);
    t.add(120, 3000, 3);
    t.add(120, 4000, 4);
    expect(t.result()).toEqual({
      runs: [
        { offsetMin: 60, fromMs: 500, toMs: 1000, records: 2, line: 1 },
        { offsetMin: 120, fromMs: 3000, toMs: 4000, records: 2, line: 3 },
      ],
      mixedLine: 0,
    });
  });

  it('runs that continue across chunks stay one, with file lines', () => {
    const f = new FileOffsets('a.csv');
    f.addChunk({ runs: [{ offsetMin: 60, fromMs: 0, toMs: 10, records: 3, line: 2 }], mixedLine: 0 }, 0);
    f.addChunk({ runs: [{ offsetMin: 60, fromMs: 11, toMs: 20, records: 2, line: 1 }, { offsetMin: 120, fromMs: 30, toMs: 40, records: 1, line: 3 }], mixedLine: 0 }, 100);
    expect(f.evidence().runs).toEqual([
      { offsetMin: 60, fromMs: 0, toMs: 20, records: 5, line: 2, file: 'a.csv' },
      { offsetMin: 120, fromMs: 30, toMs: 40, records: 1, line: 103, file: 'a.csv' },
    ]);
  });

  it('picks a well-known zone that gives every offset at its instant, and says where it changed', () => {
    const evidence = {
      runs: [
        { offsetMin: 60, fromMs: utc('2026-03-28T23:30:00Z'), toMs: utc('2026-03-29T00:59:00Z'), records: 10, line: 2, file: 'a.csv' },
        { offsetMin: 120, fromMs: utc('2026-03-29T01:00:00Z'), toMs: utc('2026-03-29T22:00:00Z'), records: 10, line: 12, file: 'a.csv' },
      ],
    };
    const inferred = inferZone(evidence);
    expect(inferred).toMatchObject({ zone: 'Europe/Paris', how: 'inferred', offsets: [60, 120] });
    expect(inferred.changes).toEqual([{ atMs: utc('2026-03-29T01:00:00Z'), fromMin: 60, toMin: 120 }]);
    // The same offsets changing on Saturday at noon are no zone's.
    const noon = {
      runs: [
        { offsetMin: 60, fromMs: utc('2026-03-28T08:00:00Z'), toMs: utc('2026-03-28T11:59:00Z'), records: 10, line: 2, file: 'a.csv' },
        { offsetMin: 120, fromMs: utc('2026-03-28T12:00:00Z'), toMs: utc('2026-03-28T16:00:00Z'), records: 3, line: 12, file: 'a.csv' },
      ],
    };
    const broken = inferZone(noon);
    expect(broken.how).toBe('fixed');
    expect(broken.breaksAt).toMatchObject({ file: 'a.csv', line: 12, offsetMin: 120 });
    expect(broken.zone).toBe('Etc/GMT-1');
  });

  it('merging evidence does not depend on the order files came in', () => {
    const a = { runs: [{ offsetMin: 60, fromMs: 0, toMs: 1000, records: 1, line: 2, file: 'a' }] };
    const b = { runs: [{ offsetMin: 60, fromMs: 2000, toMs: 3000, records: 1, line: 2, file: 'b' }] };
    expect(mergeEvidence(a, b)).toEqual(mergeEvidence(b, a));
    expect(mergeEvidence(a, b).runs).toEqual([{ offsetMin: 60, fromMs: 0, toMs: 3000, records: 2, line: 2, file: 'a' }]);
  });
});

describe('a day that crosses the spring-forward change (2026-03-29, Europe)', () => {
  const dir = makeTempDir(dirs, 'rehearse-zone-');
  const log = writeLog(dir, 'spring.csv', springStarts);

  it("infers an IANA zone consistent with both offsets, not the first record's", async () => {
    const { db, summaries } = await ingestInto(dir, 'spring.db', [log]);
    const zone = summaries[0]!.zone!;
    expect(zone.timezone).toBe('Europe/Paris');
    expect(zone.source).toBe('inferred');
    expect(zone.note).toBe("inferred from the times' offsets +01:00 and +02:00 (change at 2026-03-29 01:00 UTC)");
    expect(zone.warning).toBeUndefined();
    // Every logged offset is the zone's at that instant.
    for (const ms of springStarts) {
      const logged = DateTime.fromISO(DateTime.fromMillis(ms, { zone: paris }).toISO()!, { setZone: true }).offset;
      expect(DateTime.fromMillis(ms, { zone: zone.timezone }).offset).toBe(logged);
    }
    withModel(db, (h) => expect(openModelReader(h, { day: 'all' }).overview().timezone).toBe('Europe/Paris'));
  });

  it('the day is one day of 23 local hours, and the days around it keep 24', async () => {
    const db = path.join(dir, 'spring.db');
    withModel(db, (h) => {
      const days = modelDays(h);
      expect(days.map((d) => d.day)).toEqual(['2026-03-28', '2026-03-29', '2026-03-30']);
      const b = dayBounds('2026-03-29', 'Europe/Paris');
      expect((b.endMs - b.startMs) / 3_600_000).toBe(23);
      const d = describeModel(h).days;
      expect(d.map((x) => [x.day, x.hours, x.learnerSessions])).toEqual([
        ['2026-03-28', 24, 1],
        ['2026-03-29', 23, 5],
        ['2026-03-30', 24, 1],
      ]);
    });
  });

  it('the arrival curve places sessions at their local clock times (03:30 +02:00 is 03:30)', async () => {
    const db = path.join(dir, 'spring.db');
    withModel(db, (h) => {
      const reader = openModelReader(h, { day: '2026-03-29' });
      const arrivals = reader.arrivals().filter((a) => a.learners > 0);
      expect(arrivals.map((a) => localClock(a.minuteMs, reader.overview().timezone))).toEqual([
        '2026-03-29 00:30',
        '2026-03-29 01:30',
        '2026-03-29 03:30',
        '2026-03-29 10:00',
        '2026-03-29 23:30',
      ]);
    });
  });

  it('--day and a clock-time window mean the local clock on that day', async () => {
    const db = path.join(dir, 'spring.db');
    withModel(db, (h) => {
      const reader = openModelReader(h, { day: '2026-03-29' });
      // Local midnight to local midnight: 23 hours.
      const span = reader.overview().span;
      expect(span.startMs).toBe(utc('2026-03-28T23:30:00Z'));
      const w = resolveWindow(reader, resolvePlanOptions({ window: '03:00-04:00' }));
      expect([w.startMs, w.endMs]).toEqual([utc('2026-03-29T01:00:00Z'), utc('2026-03-29T02:00:00Z')]);
      expect(w.label).toBe('03:00-04:00 Europe/Paris (CEST, UTC+02:00)');
      const early = resolveWindow(reader, resolvePlanOptions({ window: '00:00-24:00' }));
      expect(early.label).toBe('00:30-23:35 Europe/Paris (CET, UTC+01:00; CEST, UTC+02:00 from 29 Mar 03:00)');
    });
  });

  it('files ingested one by one give the zone, evidence and days of all at once', async () => {
    const before = writeLog(dir, 'spring-1.csv', springStarts.slice(0, 3));
    const after = writeLog(dir, 'spring-2.csv', springStarts.slice(3), paris, 3);
    const once = await ingestInto(dir, 'once.db', [before, after]);
    const oneByOne = path.join(dir, 'one-by-one.db');
    const first = await ingestFiles({ files: [before], db: oneByOne, keepIds: true });
    const second = await ingestFiles({ files: [after], db: oneByOne, keepIds: true });
    expect(first.zone!.note).toBe("inferred from the times' offset +01:00; other zones at that offset then read the same: name one with \"timezone\" in the mapping");
    expect(second.zone).toEqual(once.summaries[0]!.zone);
    const meta = (file: string): unknown =>
      withModel(file, (h) => h.prepare("SELECT key, value FROM meta WHERE key IN ('model.timezone', 'model.zone_evidence', 'model.zone') ORDER BY key").all());
    expect(meta(oneByOne)).toEqual(meta(once.db));
    const days = (file: string): unknown => withModel(file, (h) => modelDays(h));
    expect(days(oneByOne)).toEqual(days(once.db));
  });

  it('one by one needs every file: +01:00 in January and +01:00 in July is no daylight-saving zone', async () => {
    const jan = writeLog(dir, 'jan.csv', [utc('2026-01-12T08:00:00Z')], 'Africa/Lagos');
    const jul = writeLog(dir, 'jul.csv', [utc('2026-07-13T08:00:00Z')], 'Africa/Lagos', 1);
    const db = path.join(dir, 'jan-jul.db');
    const a = await ingestFiles({ files: [jan], db, keepIds: true });
    // January alone: +01:00 is Paris' winter offset (the preferred zone).
    expect(a.zone!.timezone).toBe('Europe/Paris');
    const b = await ingestFiles({ files: [jul], db, keepIds: true });
    // July alone would be Europe/London (BST); with January, only zones at +01:00 all year fit.
    expect(b.zone!.timezone).toBe('Africa/Lagos');
    const once = await ingestInto(dir, 'jan-jul-once.db', [jan, jul]);
    expect(once.summaries[0]!.zone!.timezone).toBe('Africa/Lagos');
    withModel(db, (h) => expect(modelDays(h).map((d) => d.day)).toEqual(['2026-01-12', '2026-07-13']));
  });

  it('a file parsed in threads, in many chunks, infers the same', async () => {
    const { summaries } = await ingestInto(dir, 'threads.db', [log], { parseThreads: 2, chunkBytes: 4 * 1024 });
    expect(summaries[0]!.zone!.timezone).toBe('Europe/Paris');
    expect(summaries[0]!.zone!.note).toBe("inferred from the times' offsets +01:00 and +02:00 (change at 2026-03-29 01:00 UTC)");
  });

  it("the mapping's zone wins when it names one", async () => {
    const { db, summaries } = await ingestInto(dir, 'mapped.db', [log], { mapping: { timezone: 'America/New_York' } });
    expect(summaries[0]!.zone).toMatchObject({ timezone: 'America/New_York', source: 'mapping', note: 'from the mapping' });
    withModel(db, (h) => expect(openModelReader(h, { day: 'all' }).overview().timezone).toBe('America/New_York'));
  });
});

describe('a day that crosses the fall-back change (2026-10-25, Europe)', () => {
  const dir = makeTempDir(dirs, 'rehearse-zone-fall-');
  const log = writeLog(dir, 'fall.csv', fallStarts);

  it('is one day of 25 local hours, 02:30 happening twice, and sessions at their local times', async () => {
    const { db, summaries } = await ingestInto(dir, 'fall.db', [log]);
    expect(summaries[0]!.zone!.timezone).toBe('Europe/Paris');
    expect(summaries[0]!.zone!.note).toBe("inferred from the times' offsets +02:00 and +01:00 (change at 2026-10-25 01:00 UTC)");
    withModel(db, (h) => {
      expect(modelDays(h).map((d) => d.day)).toEqual(['2026-10-25']);
      expect(describeModel(h).days.map((d) => d.hours)).toEqual([25]);
      const reader = openModelReader(h, { day: '2026-10-25' });
      const arrivals = reader.arrivals().filter((a) => a.learners > 0);
      expect(arrivals.map((a) => DateTime.fromMillis(a.minuteMs, { zone: 'Europe/Paris' }).toISO({ suppressMilliseconds: true, suppressSeconds: true }))).toEqual([
        '2026-10-25T00:30+02:00',
        '2026-10-25T02:30+02:00',
        '2026-10-25T02:30+01:00',
        '2026-10-25T10:00+01:00',
        '2026-10-25T23:30+01:00',
      ]);
      // 10:00-11:00 on a 25-hour day is 09:00-10:00 UTC, not 08:00 (hours after midnight would say 11:00 local).
      const w = resolveWindow(reader, resolvePlanOptions({ window: '10:00-11:00' }));
      expect([w.startMs, w.endMs]).toEqual([utc('2026-10-25T09:00:00Z'), utc('2026-10-25T10:00:00Z')]);
    });
  });
});

describe('offsets no zone explains', () => {
  it('fall back to a fixed offset, with a warning naming the file and line where they stopped fitting', async () => {
    const dir = makeTempDir(dirs, 'rehearse-zone-mixed-');
    const zones = path.join(samples, 'zones.csv');
    const { summaries } = await ingestInto(dir, 'mixed.db', [zones]);
    const zone = summaries[0]!.zone!;
    expect(zone.timezone).toBe('Etc/GMT-2');
    expect(zone.source).toBe('fixed');
    expect(zone.label).toBe('UTC+02:00');
    expect(zone.warning).toBe(
      `${zones}:3: a time with offset +00:00 at 2026-09-01 06:00 UTC, which no IANA time zone gives together with the offsets before it; ` +
        'days and clock-time windows use UTC+02:00, the offset most records carry. If the logs were written in one zone, name it with "timezone" in the mapping (docs/mapping.md).',
    );
    expect(formatIngestSummary(summaries[0]!, 'mixed.db')).toContain(`zone UTC+02:00: ${zone.note}\n  warning: ${zones}:3: a time with offset +00:00`);
  });
});

describe('the zone as printed', () => {
  it('reads as people read it: a name with its offsets and when they change, a fixed offset as UTC+02:00', () => {
    const from = utc('2026-03-28T23:00:00Z');
    const to = utc('2026-03-29T22:00:00Z');
    expect(zoneLabel('Europe/Paris', from, to)).toBe('Europe/Paris (CET, UTC+01:00; CEST, UTC+02:00 from 29 Mar 03:00)');
    expect(zoneLabel('Europe/Paris', utc('2026-10-24T22:00:00Z'), utc('2026-10-25T23:00:00Z'))).toBe('Europe/Paris (CEST, UTC+02:00; CET, UTC+01:00 from 25 Oct 02:00)');
    expect(zoneLabel('America/New_York', from)).toBe('America/New_York (EDT, UTC-04:00)');
    expect(zoneLabel('Asia/Kolkata', from)).toBe('Asia/Kolkata (UTC+05:30)');
    expect(zoneLabel('Etc/GMT-2', from)).toBe('UTC+02:00');
    expect(zoneLabel('UTC+5:30', from)).toBe('UTC+05:30');
    expect(zoneLabel('UTC', from)).toBe('UTC');
  });

  it('the ingest summary and rehearse model show it; --json keeps the IANA name', async () => {
    const dir = makeTempDir(dirs, 'rehearse-zone-print-');
    const log = writeLog(dir, 'spring.csv', springStarts);
    const { db, summaries } = await ingestInto(dir, 'print.db', [log]);
    expect(formatIngestSummary(summaries[0]!, 'print.db')).toContain(
      "zone Europe/Paris (CET, UTC+01:00; CEST, UTC+02:00 from 29 Mar 03:00): inferred from the times' offsets +01:00 and +02:00 (change at 2026-03-29 01:00 UTC)",
    );
    const run = async (args: string[]): Promise<{ code: number; stdout: string }> => {
      const io = { stdout: new MemoryOutput(), stderr: new MemoryOutput(), env: {}, signals: new EventEmitter() };
      const code = await main(['node', 'rehearse', ...args], io);
      return { code, stdout: io.stdout.text() };
    };
    const text = await run(['model', '--db', db]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('  zone Europe/Paris (CET, UTC+01:00; CEST, UTC+02:00 from 29 Mar 03:00)');
    expect(text.stdout).toMatch(/\n {4}2026-03-29 \(23 h\) {2}learner sessions 5/);
    expect(text.stdout).not.toContain('Etc/GMT');
    const json = await run(['model', '--db', db, '--json']);
    expect((JSON.parse(json.stdout) as { timezone: string }).timezone).toBe('Europe/Paris');
    const plan = await run(['plan', '--db', db, '--day', '2026-03-29', '--window', '03:00-04:00']);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain('03:00-04:00 Europe/Paris (CEST, UTC+02:00)');
  });
});
