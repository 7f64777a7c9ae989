import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileLogFormat, parseRequestLine, queryValues } from '../../ingest/nginx.js';
import { makeTimeParser, parseClf } from '../../ingest/time.js';
import { MappingError, resolveMapping, parseRoleOverride } from '../../ingest/mapping.js';
import { csvRecordMapper, nginxRecordMapper, unescapeNginx, type ParsedRequest } from '../../ingest/parse.js';
import { dryRun } from '../../ingest/ingest.js';
import { detectFormat } from '../../ingest/read.js';
import { makeChunkParser, type ChunkSetup } from '../../ingest/parse-chunk.js';
import { countLines, recordBoundary } from '../../ingest/chunks.js';
import { RehearseError } from '../../core/errors.js';
import { samples } from './helpers.js';

const sample = (name: string): string => path.join(samples, name);

function accepted(lines: Array<{ line: number; record?: ParsedRequest; reject?: string }>) {
  return lines.filter((l) => l.record).map((l) => ({ line: l.line, ...l.record! }));
}

describe('mapping validation', () => {
  it('collects every problem, each naming its field', () => {
    let caught: unknown;
    try {
      resolveMapping({
        version: 2,
        format: 'xml',
        fields: { tme: 'x', actor: '' },
        timezone: 'Mars/Olympus',
        durationUnit: 'min',
        timeIs: 'middle',
        ops: { publish: '(' },
      }, 'm.json');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(MappingError);
    const e = caught as MappingError;
    expect(e.code).toBe('REHEARSE_MAPPING');
    expect(e.problems.map((p) => p.split(':')[0])).toEqual([
      'version', 'format', 'fields.tme', 'fields.actor', 'timezone', 'durationUnit', 'timeIs', 'ops.publish',
    ]);
    expect(e.message).toMatch(/^m\.json: invalid mapping \(8 problems\)/);
  });

  it('defaults make the canonical CSV need no mapping', () => {
    const m = resolveMapping(undefined);
    expect(m).toMatchObject({ version: 1, topicSeparator: ';', timeFormat: 'auto', timezone: 'UTC' });
    expect(m.ops.publish.test('/v1/events/Publish')).toBe(true);
    expect(m.ops.subscribe.test('/poll')).toBe(true);
  });

  it('requires logFormat for nginx and reads --role-override', () => {
    expect(() => resolveMapping({ format: 'nginx' })).toThrowError(/logFormat: required/);
    expect(parseRoleOverride('proctor=^teacher-')).toMatchObject({ role: 'proctor' });
    expect(() => parseRoleOverride('admin=x')).toThrowError(/--role-override/);
  });
});

describe('times', () => {
  it('reads CLF, epochs, ISO with offsets and luxon formats in a zone', () => {
    expect(parseClf('[01/Sep/2026:08:00:00 +0200]')).toBe(Date.UTC(2026, 8, 1, 6));
    const auto = makeTimeParser('auto', 'UTC');
    expect(auto('1788242400.5')).toBe(1788242400500);
    expect(auto(1788242400500)).toBe(1788242400500);
    expect(auto('2026-09-01T08:00:00+02:00')).toBe(1788242400000);
    expect(auto('01/Sep/2026:08:00:00 +0200')).toBe(1788242400000);
    expect(makeTimeParser('iso', 'America/New_York')('2026-12-01T09:00:00.000')).toBe(1796133600000);
    expect(makeTimeParser('dd/MM/yyyy HH:mm', 'Europe/Paris')('01/09/2026 08:00')).toBe(1788242400000);
    expect(auto('yesterday')).toBeNaN();
  });
});

describe('nginx log_format', () => {
  it('compiles variables into capture groups bounded by the literal after them', () => {
    const f = compileLogFormat('$remote_addr - $remote_user [$time_local] "$request" $status ${body_bytes_sent} $custom');
    expect(f.variables).toEqual(['remote_addr', 'remote_user', 'time_local', 'request', 'status', 'body_bytes_sent', 'custom']);
    const m = f.regex.exec('10.0.0.1 - bob [01/Sep/2026:08:00:00 +0200] "GET /a?b=1 HTTP/1.1" 200 12 x y');
    expect(m?.slice(1)).toEqual(['10.0.0.1', 'bob', '01/Sep/2026:08:00:00 +0200', 'GET /a?b=1 HTTP/1.1', '200', '12', 'x y']);
    expect(parseRequestLine('POST /v1/publish?topics=a%3Bb&x HTTP/1.1')).toEqual({ method: 'POST', path: '/v1/publish', query: 'topics=a%3Bb&x' });
    expect(queryValues('topic=a&topic=b+c&x=1', 'topic')).toEqual(['a', 'b c']);
    expect(unescapeNginx('Navigateur \\xC3\\xA9l\\xC3\\xA8ve \\x22q\\x22')).toBe('Navigateur élève "q"');
  });

  it('names the field when a variable is not in the log_format', () => {
    const m = resolveMapping({ format: 'nginx', logFormat: '$remote_addr [$time_local] "$request" $status', fields: { actor: '$remote_user' } });
    expect(() => nginxRecordMapper(m, 'x.log')).toThrowError(/fields\.actor: "\$remote_user" is not a variable of logFormat/);
  });
});

describe('format detection', () => {
  const none = resolveMapping({});
  it('goes by extension, then by content, and refuses what it cannot tell', () => {
    expect(detectFormat('a.csv.gz', Buffer.from(''), none)).toBe('csv');
    expect(detectFormat('a.log', Buffer.from('{"a":1}\n'), none)).toBe('jsonl');
    expect(detectFormat('a.txt', Buffer.from('time\tactor\n'), none)).toBe('tsv');
    let err: unknown;
    try {
      detectFormat('a.log', Buffer.from('127.0.0.1 - - [01/Sep/2026:08:00:00 +0200] "GET / HTTP/1.1" 200\n'), none);
    } catch (e) {
      err = e;
    }
    expect((err as RehearseError).code).toBe('REHEARSE_FORMAT');
    expect((err as Error).message).toMatch(/a\.log: unknown format/);
  });

  it('rejects a CSV line with the wrong column count and a CSV header missing a mapped column', () => {
    const map = csvRecordMapper(resolveMapping({}), ['time', 'actor', 'endpoint', 'topics', 'status'], 'x.csv');
    expect(map(['2026-09-01T08:00:00Z', 'a', '/publish', 't', '200'])).toMatchObject({ op: 'publish', messages: 1, durationMs: 0 });
    expect(map(['2026-09-01T08:00:00Z', 'a'])).toEqual({ reject: 'expected 5 columns, got 2' });
    expect(() => csvRecordMapper(resolveMapping({}), ['time', 'actor'], 'x.csv')).toThrowError(/fields\.endpoint: not mapped, and the header of x\.csv has no "endpoint" column/);
  });
});

describe('committed samples (docs/fixtures.md)', () => {
  it('malformed.csv: 6 good, 6 bad at the documented lines', async () => {
    const [r] = await dryRun({ files: [sample('malformed.csv')], lines: 100 });
    expect(r!.lines.filter((l) => l.reject).map((l) => l.line)).toEqual([6, 7, 8, 9, 12, 14]);
    const good = accepted(r!.lines);
    expect(good.map((g) => g.line)).toEqual([2, 3, 4, 10, 11, 13]);
    expect(good.map((g) => g.startMs)).toEqual([1788242400000, 1788242401250, 1788242402500, 1788242407000, 1788242408000, 1788242410000]);
    expect(good[1]!.userAgent).toBe('ExamKiosk/3.2.1 (Windows NT 10.0; "Managed Device", build 22631)');
    expect(good[2]!.userAgent).toBe('Mozilla/5.0 (multi-line\nagent; test)');
    expect(good[3]).toMatchObject({ topics: ['tc00004', 'tc00005'], op: 'subscribe', messages: 3 });
    expect(good[4]).toMatchObject({ status: 503, userAgent: 'Mozilla/5.0 "quoted", with, commas' });
  });

  it('malformed.jsonl, canonical.tsv, zones.csv', async () => {
    const [j, t, z] = await dryRun({ files: [sample('malformed.jsonl'), sample('canonical.tsv'), sample('zones.csv')], lines: 100 });
    expect(j!.lines.map((l) => l.reject ?? 'ok')).toEqual(['ok', 'ok', 'not valid JSON', 'not a JSON object', 'ok']);
    expect(accepted(j!.lines)[2]).toMatchObject({ startMs: 1788242403500, status: 503, op: 'publish' });
    expect(t!.format).toBe('tsv');
    expect(accepted(t!.lines)).toHaveLength(4);
    expect(accepted(t!.lines)[2]!.topics).toEqual(['tb20001', 'tb20003', 'tb20004']);
    expect(accepted(z!.lines).map((l) => l.startMs)).toEqual([
      1788242400000, 1788242400500, 1788242401000, 1788242401250, 1788242402750, 1792888200000, 1792891800000,
    ]);
  });

  it('no-offset.csv and mapped.csv with their mappings; access.nginx.log', async () => {
    const [n] = await dryRun({ files: [sample('no-offset.csv')], mapping: sample('no-offset.mapping.json') });
    expect(accepted(n!.lines).map((l) => l.startMs)).toEqual([1788242400000, 1788242404125, 1796133600000]);
    const [m] = await dryRun({ files: [sample('mapped.csv')], mapping: sample('mapped.mapping.json') });
    expect(accepted(m!.lines).map(({ startMs, durationMs, op, topics }) => ({ startMs, durationMs, op, topics }))).toEqual([
      { startMs: 1788242400000, durationMs: 25000, op: 'subscribe', topics: ['c50001'] },
      { startMs: 1788242425300, durationMs: 18, op: 'publish', topics: ['p50001', 'p50002'] },
      { startMs: 1788242426000, durationMs: 4, op: 'other', topics: [] },
    ]);
    const [a] = await dryRun({ files: [sample('access.nginx.log')], mapping: sample('access.nginx.mapping.json') });
    expect(a!.lines.filter((l) => l.reject).map((l) => l.line)).toEqual([4]);
    const good = accepted(a!.lines);
    expect(good.map((g) => g.startMs)).toEqual([1788242402000, 1788242410120, 1788242410140, 1788242410211, 1788242411000, 1788242412000, 1788242400000]);
    expect(good[0]).toMatchObject({ actor: 'u80009', topics: ['tl80009', 'tb80001', 'tb80002'], durationMs: 8133, messages: 2 });
    expect(good[2]!.userAgent).toMatch(/Navigateur élève/);
    expect(good[4]).toMatchObject({ op: 'publish', topics: ['tc80001', 'tc80002'] });
    expect(good[5]).toMatchObject({ op: 'other', topics: [], userAgent: undefined });
  });

  it('missing-column: a mapping error naming the field and the column, before any line is read', async () => {
    await expect(dryRun({ files: [sample('missing-column.csv')], mapping: sample('missing-column.mapping.json') })).rejects.toThrowError(
      /fields\.duration: column "elapsed_ms" is not in the header/,
    );
    expect(fs.existsSync(sample('missing-column.csv'))).toBe(true);
  });
});

describe('CSV records (csv-parse, chunk by chunk)', () => {
  const mapping = resolveMapping({});
  const setup = (header: string[]): ChunkSetup => ({ path: 'x.csv', format: 'csv', mapping, header, keepIds: true });
  const header = 'time,actor,endpoint,topics,status';
  const row = (i: number, ua = ''): string => `2026-09-01T08:00:${String(i % 60).padStart(2, '0')}.000Z,u${i},/publish,t${i},200${ua}`;

  function read(text: string, first = true, columns = header.split(',')): Array<[number, string]> {
    const out: Array<[number, string]> = [];
    const parse = makeChunkParser(setup(columns));
    const lines = parse(Buffer.from(text), first, (r, line) => out.push([line, r === null ? 'blank' : 'reject' in r ? r.reject : r.actor]));
    out.push([lines, 'lines']);
    return out;
  }

  it('numbers records by their first line, joins quoted line breaks, skips the header and counts bad lines', () => {
    const cols = [...header.split(','), 'user_agent'];
    const text = `${cols.join(',')}\n${row(1, ',"a ""b"", c"')}\n${row(2, ',"multi\nline"')}\n\n${row(3, ',"open')}\n${row(4, ',x')}\n${row(5, ',y"z')}\n${row(6, ',ok')}`;
    expect(read(text, true, cols)).toEqual([
      [2, 'u1'],
      [3, 'u2'],
      [5, 'blank'],
      [6, 'CSV text after a closing quote'],
      [7, 'u4'],
      [8, 'CSV quote inside an unquoted field'],
      [9, 'u6'],
      [9, 'lines'],
    ]);
  });

  it('a quote left open costs its own line only: the lines it swallowed are read afresh', () => {
    const lines = [`${row(0)},"unterminated`, ...Array.from({ length: 150 }, (_, i) => row(i + 1))];
    const out = read(lines.join('\n') + '\n', false);
    expect(out[0]).toEqual([1, 'CSV quote not closed']);
    const rest = out.slice(1, -1);
    // The quote reached the end of the chunk: one rejected line, the others parsed.
    expect(rest.map(([line]) => line)).toEqual(Array.from({ length: 150 }, (_, i) => i + 2));
    expect(rest.every(([, what]) => what.startsWith('u'))).toBe(true);
    expect(out.at(-1)).toEqual([151, 'lines']);
  });

  it('a chunk bigger than one csv-parse slice (256 KiB) numbers every line as one read would, quoted breaks and open quotes past the first slice included', () => {
    const cols = [...header.split(','), 'user_agent'];
    const n = 30_000; // ~1.5 MB: several slices
    const quotedBreakAt = 12_000;
    const openQuoteAt = 25_000;
    const rows = Array.from({ length: n }, (_, k) => {
      const i = k + 1;
      if (i === quotedBreakAt) return row(i, ',"two\nlines"');
      if (i === openQuoteAt) return row(i, ',"open');
      return row(i, ',plain agent text to fill the line');
    });
    const out = read(`${cols.join(',')}\n${rows.join('\n')}\n`, true, cols);
    // Record i starts on line i + 1 (the header is line 1) up to the quoted break, one line later after it.
    const expected: Array<[number, string]> = [];
    for (let i = 1; i <= n; i++) {
      const line = i + 1 + (i > quotedBreakAt ? 1 : 0);
      expected.push([line, i === openQuoteAt ? 'CSV quote not closed' : `u${i}`]);
    }
    expected.push([n + 2, 'lines']);
    expect(out).toEqual(expected);
  });

  it('chunk boundaries fall on newlines outside quotes, also for a quoted line break near the end', () => {
    const text = Buffer.from('a,b\nc,"d\ne"\nf,g\nh,"i\nj');
    expect(recordBoundary(text, true)).toBe(text.indexOf('h,'));
    expect(recordBoundary(Buffer.from('a,"b\nc"\n'), true)).toBe(8);
    expect(recordBoundary(Buffer.from('no newline'), true)).toBe(-1);
    expect(recordBoundary(Buffer.from('a\tb"\nc\td'), false)).toBe(5);
    // A stray quote in the back half cannot stop a chunk from ending.
    const stray = Buffer.from(`${'x,y\n'.repeat(10)}"stray\n${'x,y\n'.repeat(10)}`);
    expect(recordBoundary(stray, true)).toBe(stray.length);
    expect(countLines(Buffer.from('a\nb'))).toBe(2);
    expect(countLines(Buffer.from('a\nb\n'))).toBe(2);
  });
});
