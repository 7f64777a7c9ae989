import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryOutput } from '../../cli/io.js';
import { main } from '../../cli/program.js';
import { readableZones, zoneLabel } from '../../core/zone.js';
import { writeSchoolDay } from '../../fixtures/write-day.js';
import { ingestFiles } from '../../ingest/ingest.js';
import { insertRun, openTemp } from '../report/fixture-runs.js';

// The synthetic day's CSV carries +02:00 times and no mapping zone: ingest infers Europe/Paris,
// printed with its offset; a fixed offset (Etc/GMT-2, as runs stored before zones were inferred
// say) must read UTC+02:00 wherever it is printed.

let dir: string;
let model: string;

async function rehearse(args: string[]): Promise<{ code: number; stdout: string }> {
  const out = { stdout: new MemoryOutput(), stderr: new MemoryOutput(), env: {}, signals: new EventEmitter() };
  const code = await main(['node', 'rehearse', ...args], out);
  return { code, stdout: out.stdout.text() };
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rehearse-zone-'));
  const day = await writeSchoolDay(path.join(dir, 'day'), 'small');
  model = path.join(dir, 'model.db');
  await ingestFiles({ files: [day.files.csv], db: model });
}, 60_000);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('zoneLabel', () => {
  const sept = Date.UTC(2026, 8, 1);
  it('reads POSIX Etc/GMT zones with the sign people expect', () => {
    expect(zoneLabel('Etc/GMT-2', sept)).toBe('UTC+02:00');
    expect(zoneLabel('Etc/GMT+5', sept)).toBe('UTC-05:00');
    expect(zoneLabel('Etc/GMT', sept)).toBe('UTC');
    expect(zoneLabel('UTC', sept)).toBe('UTC');
    expect(zoneLabel('UTC+5:30', sept)).toBe('UTC+05:30');
  });
  it('shows an IANA name with its offset then, and an unknown zone as given', () => {
    expect(zoneLabel('Europe/Paris', sept)).toBe('Europe/Paris (CEST, UTC+02:00)');
    expect(zoneLabel('Not/AZone', sept)).toBe('Not/AZone');
  });
  it('rewrites zones inside labels stored earlier', () => {
    expect(readableZones('peak 1h 09:00-10:00 Etc/GMT-2')).toBe('peak 1h 09:00-10:00 UTC+02:00');
    expect(readableZones('all 08:00-16:00 Europe/Paris')).toBe('all 08:00-16:00 Europe/Paris');
  });
});

describe('the zone as printed', () => {
  it('rehearse model shows the inferred zone with its offset; --json keeps the IANA name', async () => {
    const text = await rehearse(['model', '--db', model]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('  zone Europe/Paris (CEST, UTC+02:00)\n');
    expect(text.stdout).not.toContain('Etc/GMT');
    const json = await rehearse(['model', '--db', model, '--json']);
    expect((JSON.parse(json.stdout) as { timezone: string }).timezone).toBe('Europe/Paris');
  });

  it('rehearse plan labels the window with the zone and its offset (text and --json)', async () => {
    const text = await rehearse(['plan', '--db', model, '--duration', '10m']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/peak 10m \d\d:\d\d-\d\d:\d\d Europe\/Paris \(CEST, UTC\+02:00\)/);
    expect(text.stdout).not.toContain('Etc/GMT');
    const json = await rehearse(['plan', '--db', model, '--duration', '10m', '--json']);
    expect((JSON.parse(json.stdout) as { window: { label: string } }).window.label).toMatch(/ Europe\/Paris \(CEST, UTC\+02:00\)$/);
  });

  it('rehearse runs shows a window stored with Etc/GMT-2 (before zones were inferred) as UTC+02:00', async () => {
    const r = openTemp(dir, 'runs.db');
    insertRun(r.db, { release: '2.3', seconds: 5, window: 'peak 1h 09:00-10:00 Etc/GMT-2' });
    r.db.close();
    const out = await rehearse(['runs', '--results', r.file]);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain('peak 1h 09:00-10:00 UTC+02:00');
    expect(out.stdout).not.toContain('Etc/GMT');
  });
});
