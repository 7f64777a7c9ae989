// Defect: a mapping mistake built a wrong model without a word (topics joined by "," while the
// mapping keeps ";" gave 7 proctors instead of 2; a misspelt arg_ parameter gave no session).
// Now ingest warns, naming the mapping field and the fix, prints it and stores it with the file.

import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { ingestFiles } from '../../ingest/ingest.js';
import { makeTempDir, samples } from './helpers.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function storedWarnings(db: string): string[][] {
  const h = new Database(db, { readonly: true });
  try {
    return (h.prepare('SELECT warnings FROM sources ORDER BY id').pluck().all() as Array<string | null>).map((w) => (w === null ? [] : (JSON.parse(w) as string[])));
  } finally {
    h.close();
  }
}

describe('ingest warns about very likely mapping mistakes', () => {
  it('topics joined by "," while topicSeparator is ";"', async () => {
    const dir = makeTempDir(dirs, 'rehearse-checks-');
    const file = path.join(dir, 'comma.csv');
    const lines = ['time,actor,endpoint,topics,status,duration_ms'];
    for (let i = 0; i < 40; i++) lines.push(`2026-09-01T08:00:${String(i).padStart(2, '0')}Z,p${i % 2},/v1/events/subscribe,"tl${i},tl${i + 1}",200,25000`);
    fs.writeFileSync(file, lines.join('\n') + '\n');
    const db = path.join(dir, 'model.db');
    const summary = await ingestFiles({ files: [file], db, keyFile: path.join(dir, 'k.key') });
    const warnings = summary.files[0]!.warnings!;
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^fields\.topics: 40 of 40 distinct topics in .*comma\.csv contain "," \(e\.g\. "tl0,tl1"\) but topicSeparator is ";": if those are lists of topics, set "topicSeparator": "," in the mapping/);
    expect(storedWarnings(db)).toEqual([warnings]);
  });

  it('a misspelt arg_ parameter for the session in an nginx mapping', async () => {
    const dir = makeTempDir(dirs, 'rehearse-checks-');
    const mapping = JSON.parse(fs.readFileSync(path.join(samples, 'access.nginx.mapping.json'), 'utf8')) as { fields: Record<string, string> };
    mapping.fields.session = 'arg_sesion';
    const db = path.join(dir, 'model.db');
    const summary = await ingestFiles({ files: [path.join(samples, 'access.nginx.log')], db, mapping, maxErrors: 5, keyFile: path.join(dir, 'k.key') });
    expect(summary.files[0]!.warnings).toEqual([
      `fields.session: "arg_sesion" is empty on every line of ${path.join(samples, 'access.nginx.log')}: check its spelling in the mapping (for nginx, a misspelt arg_ parameter or variable yields nothing). Without it sessions are cut at 5 min of silence.`,
    ]);
  });

  it('a clean log gets no warning', async () => {
    const dir = makeTempDir(dirs, 'rehearse-checks-');
    const db = path.join(dir, 'model.db');
    const summary = await ingestFiles({ files: [path.join(samples, 'clean.csv')], db, keyFile: path.join(dir, 'k.key') });
    expect(summary.files[0]!.warnings).toEqual([]);
    expect(storedWarnings(db)).toEqual([[]]);
  });
});
