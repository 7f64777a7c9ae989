// Defect: one CSV/TSV record over csv-parse's max_record_size (1 MiB) made csv-parse stop, and
// every record after it was dropped with exit 0. Now the oversized record is rejected with its
// file:line and reason, and every other record is kept, whether parsed in this thread or in
// worker threads with the record spanning chunks.

import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ingestFiles } from '../../ingest/ingest.js';
import { makeTempDir } from './helpers.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** 3,000 records after the header; record `hugeAt` (0-based) carries a 1.1 MiB user agent. */
function logWithHugeRecord(format: 'csv' | 'tsv', records = 3000, hugeAt = 1500): string {
  const sep = format === 'csv' ? ',' : '\t';
  const out = [['time', 'actor', 'endpoint', 'topics', 'status', 'duration_ms', 'user_agent'].join(sep)];
  const base = Date.parse('2026-09-01T08:00:00Z');
  for (let i = 0; i < records; i++) {
    const ua = i === hugeAt ? 'x'.repeat(Math.round(1.1 * 1024 * 1024)) : 'curl/8.0';
    out.push([new Date(base + i * 1000).toISOString(), `u${i % 40}`, '/v1/events/publish', `t${i % 7}`, '200', '12', ua].join(sep));
  }
  return out.join('\n') + '\n';
}

describe('ingest: a record over 1 MiB', () => {
  for (const format of ['csv', 'tsv'] as const) {
    for (const threads of [0, 2]) {
      it(`${format}, ${threads === 0 ? 'parsed in the writing thread' : 'parsed in worker threads'}: 2,999 kept, the huge one rejected by line`, async () => {
        const dir = makeTempDir(dirs, 'rehearse-oversized-');
        const file = path.join(dir, `huge.${format}`);
        fs.writeFileSync(file, logWithHugeRecord(format));
        const summary = await ingestFiles({
          files: [file],
          db: path.join(dir, 'model.db'),
          maxErrors: 10,
          parseThreads: threads,
          // Small chunks, so the worker path really runs and the huge record spans several.
          ...(threads > 0 ? { chunkBytes: 256 * 1024 } : {}),
        });
        const f = summary.files[0]!;
        expect(f.lines).toBe(3001);
        expect(f.accepted).toBe(2999);
        expect(f.rejected).toBe(1);
        // Header on line 1, record 0 on line 2: record 1500 is on line 1502.
        expect(f.examples).toEqual([`${file}:1502: CSV record too long (over 1 MiB)`]);
        expect(summary.requests).toBe(2999);
      });
    }
  }

  it('a huge record as the last line drops nothing before it', async () => {
    const dir = makeTempDir(dirs, 'rehearse-oversized-');
    const file = path.join(dir, 'last.csv');
    fs.writeFileSync(file, logWithHugeRecord('csv', 50, 49));
    const summary = await ingestFiles({ files: [file], db: path.join(dir, 'model.db'), maxErrors: 10, parseThreads: 0 });
    expect(summary.files[0]).toMatchObject({ accepted: 49, rejected: 1, examples: [`${file}:51: CSV record too long (over 1 MiB)`] });
  });
});
