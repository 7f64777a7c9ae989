// The parse threads: a plain file cut into many chunks across two threads, and a .gz parsed by
// one thread while the caller writes, must store exactly what parsing in one thread stores, with
// rejected lines named by their line in the whole file.

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { ingestFiles, type IngestSummary } from '../../ingest/ingest.js';
import { databaseChecksum, makeTempDir } from './helpers.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const t0 = Date.UTC(2026, 8, 1, 6, 0, 0);
const header = 'time,actor,endpoint,topics,status,duration_ms,messages,session,bytes,user_agent';

/** ~3,000 lines: quoted user agents, some with a line break, and a bad line every 500. */
function logLines(): { text: string; badLines: number[] } {
  const out = [header];
  const badLines: number[] = [];
  let line = 1;
  for (let i = 0; i < 3000; i++) {
    const actor = `u${i % 40}`;
    const ua = i % 7 === 0 ? '"Kiosk ""A"", with\nline break"' : i % 3 === 0 ? '"Mozilla/5.0 (X11; Linux x86_64), Chrome/126.0"' : 'curl/8.5.0';
    const time = i % 500 === 250 ? 'not-a-time' : new Date(t0 + i * 1000).toISOString();
    const endpoint = i % 2 ? '/v1/events/publish' : '/v1/events/subscribe';
    const row = `${time},${actor},${endpoint},t${i % 40};c${i % 5},200,${i % 2 ? 12 : 25000},${i % 2},s${i % 40},40,${ua}`;
    line++;
    if (time === 'not-a-time') badLines.push(line);
    out.push(row);
    line += ua.includes('\n') ? 1 : 0;
  }
  return { text: out.join('\n') + '\n', badLines };
}

describe('parse threads', () => {
  const dir = makeTempDir(dirs, 'rehearse-threads-');
  const { text, badLines } = logLines();
  const csv = path.join(dir, 'day.csv');
  fs.writeFileSync(csv, text);
  const gz = path.join(dir, 'day.csv.gz');
  fs.writeFileSync(gz, zlib.gzipSync(text));

  async function ingest(file: string, name: string, parseThreads: number, chunkBytes = 16 * 1024): Promise<{ summary: IngestSummary; checksum: string }> {
    const db = path.join(dir, `${name}.db`);
    // Ids kept as they are, so databases compare; chunks of ~16 KB make dozens of chunks.
    const summary = await ingestFiles({ files: [file], db, keepIds: true, parseThreads, chunkBytes, maxErrors: 10 });
    // Source paths and times differ by construction: compare what was stored and derived.
    const h = (await import('better-sqlite3')).default(db);
    h.exec("UPDATE sources SET path = 'x', ingested_at = 'x'; DELETE FROM meta WHERE key = 'ids.secret'");
    h.close();
    return { summary, checksum: databaseChecksum(db) };
  }

  it('two threads over many chunks, one .gz thread and the calling thread store the same rows and name the same lines', async () => {
    expect(fs.statSync(csv).size).toBeGreaterThan(8 * 16 * 1024);
    const single = await ingest(csv, 'single', 0);
    const threads = await ingest(csv, 'threads', 2);
    // A .gz goes to its parse thread when it is at least a chunk on disk: 4 KB chunks.
    expect(fs.statSync(gz).size).toBeGreaterThan(4 * 1024);
    const gzip = await ingest(gz, 'gzip', 2, 4 * 1024);
    for (const r of [single, threads, gzip]) {
      const f = r.summary.files[0]!;
      expect(f.accepted).toBe(3000 - badLines.length);
      expect(f.rejected).toBe(badLines.length);
      expect(f.lines).toBe(text.split('\n').length - 1);
      expect(f.examples).toEqual(badLines.slice(0, 5).map((l) => `${f.path}:${l}: unreadable time`));
    }
    expect(threads.checksum).toBe(single.checksum);
    // The .gz source row records gzip; everything else is the same.
    expect(gzip.summary.files[0]!.sha256).toBe(single.summary.files[0]!.sha256);
  });

  it('a truncated .gz read by its parse thread fails with the gzip reason and stores nothing', async () => {
    const zipped = zlib.gzipSync(text);
    const cut = path.join(dir, 'cut.csv.gz');
    fs.writeFileSync(cut, zipped.subarray(0, Math.floor(zipped.length * 0.6)));
    expect(fs.statSync(cut).size).toBeGreaterThan(4 * 1024); // big enough for the parse thread
    const db = path.join(dir, 'cut.db');
    await expect(ingestFiles({ files: [cut], db, parseThreads: 2, chunkBytes: 4 * 1024 })).rejects.toThrowError(/cut\.csv\.gz: truncated gzip file/);
    const h = (await import('better-sqlite3')).default(db);
    expect(h.prepare('SELECT count(*) FROM requests').pluck().get()).toBe(0);
    h.close();
  });
});
