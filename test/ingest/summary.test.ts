import { describe, expect, it } from 'vitest';
import { formatIngestSummary, formatProgress } from '../../cli/ingest.js';
import { offsetMinutesOf, parseMaxErrors } from '../../ingest/ingest.js';

describe('ingest output', () => {
  it('progress shows bytes, lines/s and an ETA', () => {
    const text = formatProgress({ file: 'day.csv', bytes: 50e6, totalBytes: 200e6, lines: 400_000, elapsedMs: 4000 });
    expect(text).toBe('day.csv: 50.0 MB / 200.0 MB (25%)  400000 lines  100000 lines/s  ETA 12 s');
    expect(formatProgress({ file: 'x', bytes: 0, totalBytes: 10, lines: 0, elapsedMs: 0 })).toMatch(/ETA -$/);
  });

  it('the summary names rejected reasons with file:line examples, and skipped files', () => {
    const text = formatIngestSummary(
      {
        files: [
          { path: 'a.csv', format: 'csv', gzip: true, sha256: 'ab'.repeat(32), status: 'ingested', bytes: 10, lines: 101, accepted: 99, rejected: 1, reasons: { 'bad status': 1 }, examples: ['a.csv:7: bad status'], elapsedMs: 1000 },
          { path: 'b.csv', format: 'csv', gzip: false, sha256: 'cd'.repeat(32), status: 'skipped', bytes: 10, lines: 5, accepted: 4, rejected: 0, reasons: {}, examples: [], elapsedMs: 5 },
        ],
        requests: 103,
        rebuildMs: 200,
        elapsedMs: 1300,
      },
      'm.db',
    );
    expect(text).toContain('a.csv (csv, gzip): 101 lines, 99 accepted, 1 rejected in 1.0 s (101 lines/s)');
    expect(text).toContain('  rejected 1: bad status\n    a.csv:7: bad status');
    expect(text).toContain('b.csv: already ingested (same content, sha256 cdcdcdcdcdcd); skipped. --force re-ingests it.');
    expect(text).toContain('m.db: 103 requests in the model');
  });

  it('--max-errors takes a count or a percentage', () => {
    expect(parseMaxErrors(undefined)).toEqual({ percent: 1 });
    expect(parseMaxErrors('25')).toEqual({ count: 25 });
    expect(parseMaxErrors('0.5%')).toEqual({ percent: 0.5 });
    expect(() => parseMaxErrors('lots')).toThrowError(/--max-errors: "lots"/);
  });

  it("reads the UTC offset each record's time was written with", () => {
    expect(offsetMinutesOf('2026-09-01T08:00:00.000+02:00')).toBe(120);
    expect(offsetMinutesOf('[01/Sep/2026:08:00:00 -0500]')).toBe(-300);
    expect(offsetMinutesOf('01/Sep/2026:08:00:00 +0100')).toBe(60);
    expect(offsetMinutesOf('2026-09-01T06:00:00Z')).toBe(0);
    expect(offsetMinutesOf('2026-09-01T11:30:00+05:30')).toBe(330);
    expect(offsetMinutesOf('2026-09-01T11:30:00-0330')).toBe(-210);
    // no offset: epoch numbers, local times, dates alone
    expect(offsetMinutesOf(1788242400000)).toBeUndefined();
    expect(offsetMinutesOf('1788242400000')).toBeUndefined();
    expect(offsetMinutesOf('-1788242400')).toBeUndefined();
    expect(offsetMinutesOf('2026-09-01T08:00:00.000')).toBeUndefined();
    expect(offsetMinutesOf('2026-09-01')).toBeUndefined();
    expect(offsetMinutesOf('01/09/2026 08:00:00.000')).toBeUndefined();
  });
});
