// The model's zone when the mapping names none, inferred from the UTC offsets the logs' times
// carry (`+02:00`, CLF `+0200`, `Z`), record by record: parsing notes runs of records with one
// offset (cheap: a comparison per record), ingest merges the runs of every file into evidence kept
// in the model's meta, and the zone is an IANA zone whose offset equals the logged one at every
// observed instant, so the days and clock-time windows are right across a daylight-saving change.
// Pure: no I/O.

import { IANAZone, Info } from 'luxon';
import { formatOffset, utcOffsetLabel, zoneTransitions } from '../core/zone.js';

/** Consecutive records (in line order) whose times carried the same UTC offset. */
export interface OffsetRun {
  offsetMin: number;
  /** Earliest and latest instant logged with it (epoch ms). */
  fromMs: number;
  toMs: number;
  records: number;
  /** Line of the run's first record: the chunk's own line in a batch, the file's once ingest adds the lines before. */
  line: number;
  /** The file it was read from (set by ingest). */
  file?: string;
}

/** What one chunk's records said about offsets; structured-cloneable (sent from parse threads). */
export interface ChunkOffsets {
  runs: OffsetRun[];
  /** The chunk line where offsets started alternating more than any zone does (0: they did not). */
  mixedLine: number;
}

/** Offsets seen over every file ingested into a model, in time order (stored as JSON in meta). */
export interface ZoneEvidence {
  runs: OffsetRun[];
  /** Where offsets alternated more than any zone does. */
  mixed?: { file: string; line: number };
}

const dayMs = 86_400_000;
/** A zone changes offset a few times a year: more runs than this in one chunk is a mix of zones. */
const maxRunsPerChunk = 64;
/** Evidence kept in meta stays small whatever the logs say. */
const maxStoredRuns = 2000;

const DIGIT0 = 48;
const isDigit = (c: number): boolean => c >= DIGIT0 && c <= DIGIT0 + 9;

/**
 * The UTC offset (minutes) a time text ends with: `Z`, `+02:00`, `+0200` (also before CLF's `]`),
 * after a date and time; undefined when it carries none (epoch numbers, local times). No regex: it
 * runs once per record.
 */
export function offsetMinutesOf(text: unknown): number | undefined {
  if (typeof text !== 'string') return undefined;
  let end = text.length;
  if (end > 0 && text.charCodeAt(end - 1) === 93 /* ] */) end--;
  if (end < 9) return undefined;
  const last = text.charCodeAt(end - 1);
  if ((last === 90 || last === 122) /* Z z */ && isDigit(text.charCodeAt(end - 2))) return 0;
  // ±HH:MM or ±HHMM, after a digit or a space (the time it qualifies)
  let sign = end - 6;
  let colon = true;
  if (text.charCodeAt(end - 3) !== 58 /* : */) {
    sign = end - 5;
    colon = false;
  }
  const s = text.charCodeAt(sign);
  if (s !== 43 && s !== 45) return undefined;
  const before = text.charCodeAt(sign - 1);
  if (!isDigit(before) && before !== 32) return undefined;
  const h1 = text.charCodeAt(sign + 1);
  const h2 = text.charCodeAt(sign + 2);
  const m1 = text.charCodeAt(end - 2);
  const m2 = text.charCodeAt(end - 1);
  if (!isDigit(h1) || !isDigit(h2) || !isDigit(m1) || !isDigit(m2)) return undefined;
  if (!colon && sign + 5 !== end) return undefined;
  const minutes = ((h1 - DIGIT0) * 10 + (h2 - DIGIT0)) * 60 + (m1 - DIGIT0) * 10 + (m2 - DIGIT0);
  if (minutes > 18 * 60) return undefined;
  return s === 45 ? -minutes : minutes;
}

/** Notes the offset runs of one chunk as its records are parsed. */
export class OffsetRunTracker {
  readonly runs: OffsetRun[] = [];
  mixedLine = 0;
  private current: OffsetRun | undefined;

  add(offsetMin: number, atMs: number, line: number): void {
    const c = this.current;
    if (c !== undefined && c.offsetMin === offsetMin) {
      if (atMs < c.fromMs) c.fromMs = atMs;
      else if (atMs > c.toMs) c.toMs = atMs;
      c.records++;
      return;
    }
    if (this.runs.length >= maxRunsPerChunk) {
      if (this.mixedLine === 0) this.mixedLine = line;
      return;
    }
    this.current = { offsetMin, fromMs: atMs, toMs: atMs, records: 1, line };
    this.runs.push(this.current);
  }

  result(): ChunkOffsets {
    return { runs: this.runs, mixedLine: this.mixedLine };
  }
}

/** Gathers one file's chunks (in line order) into evidence: a run that continues into the next chunk stays one. */
export class FileOffsets {
  private readonly runs: OffsetRun[] = [];
  private mixed: { file: string; line: number } | undefined;

  constructor(private readonly file: string) {}

  /** `linesBefore`: the file's lines in the chunks before this one. */
  addChunk(chunk: ChunkOffsets | undefined, linesBefore: number): void {
    if (!chunk) return;
    if (chunk.mixedLine > 0 && !this.mixed) this.mixed = { file: this.file, line: linesBefore + chunk.mixedLine };
    for (const r of chunk.runs) {
      const last = this.runs[this.runs.length - 1];
      if (last && last.offsetMin === r.offsetMin) {
        last.fromMs = Math.min(last.fromMs, r.fromMs);
        last.toMs = Math.max(last.toMs, r.toMs);
        last.records += r.records;
      } else {
        this.runs.push({ ...r, line: linesBefore + r.line, file: this.file });
      }
    }
  }

  evidence(): ZoneEvidence {
    return mergeEvidence({ runs: [] }, { runs: this.runs, ...(this.mixed ? { mixed: this.mixed } : {}) });
  }
}

/**
 * Evidence of two ingests as one: runs in time order, neighbours with the same offset less than a
 * day apart joined (no zone changes offset and back within a day). Merging is order-free, so
 * files ingested one by one give the evidence of all at once.
 */
export function mergeEvidence(a: ZoneEvidence, b: ZoneEvidence): ZoneEvidence {
  const all = [...a.runs, ...b.runs].map((r) => ({ ...r }));
  all.sort((x, y) => x.fromMs - y.fromMs || x.toMs - y.toMs || x.offsetMin - y.offsetMin);
  const runs: OffsetRun[] = [];
  for (const r of all) {
    const last = runs[runs.length - 1];
    if (last && last.offsetMin === r.offsetMin && r.fromMs - last.toMs < dayMs) {
      last.toMs = Math.max(last.toMs, r.toMs);
      last.records += r.records;
    } else runs.push(r);
  }
  let mixed = [a.mixed, b.mixed].filter((m) => m !== undefined)[0];
  if (runs.length > maxStoredRuns) {
    const cut = runs[maxStoredRuns]!;
    mixed ??= { file: cut.file ?? '', line: cut.line };
    runs.length = maxStoredRuns;
  }
  return { runs, ...(mixed ? { mixed } : {}) };
}

/** The model's zone as ingest reports it (and keeps in meta `model.zone`). */
export interface ZoneReport {
  /** What luxon reads: an IANA name, or a fixed offset (`Etc/GMT-2`). */
  timezone: string;
  /** As people read it over the model's span (core/zone.ts zoneLabel). */
  label?: string;
  source: 'mapping' | ZoneInference['how'];
  /** Where it came from: `inferred from the times' offsets +01:00 and +02:00 (change at ...)`. */
  note: string;
  /** Set when no IANA zone explains the offsets: the file and line where they stop making sense. */
  warning?: string;
}

export interface ZoneInference {
  zone: string;
  /** 'inferred': an IANA zone gives every logged offset; 'fixed': none does, the commonest offset is used; 'none': no time carried an offset. */
  how: 'inferred' | 'fixed' | 'none';
  /** Distinct offsets in the order they were first seen in time. */
  offsets: number[];
  /** Where the logged offset changes (the zone's own change instant when inferred). */
  changes: Array<{ atMs: number; fromMin: number; toMin: number }>;
  /** 'fixed': the record from which no zone explains the offsets. */
  breaksAt?: { file: string; line: number; offsetMin?: number; atMs?: number };
}

/**
 * Zones tried first, in this order, when several explain the offsets (Europe/Paris and
 * Europe/Berlin agree on every instant since 1980): one well-known zone per rule. Otherwise the
 * first fitting zone alphabetically.
 */
export const preferredZones: readonly string[] = [
  'UTC', 'Europe/London', 'Europe/Paris', 'Europe/Helsinki', 'Europe/Moscow', 'Europe/Istanbul',
  'America/New_York', 'America/Chicago', 'America/Denver', 'America/Phoenix', 'America/Los_Angeles',
  'America/Anchorage', 'Pacific/Honolulu', 'America/Halifax', 'America/St_Johns', 'America/Sao_Paulo',
  'America/Argentina/Buenos_Aires', 'America/Mexico_City', 'America/Bogota', 'America/Santiago',
  'America/Lima', 'America/Caracas', 'Africa/Lagos', 'Africa/Johannesburg', 'Africa/Cairo',
  'Africa/Nairobi', 'Asia/Jerusalem', 'Asia/Riyadh', 'Asia/Tehran', 'Asia/Dubai', 'Asia/Kabul',
  'Asia/Karachi', 'Asia/Kolkata', 'Asia/Kathmandu', 'Asia/Dhaka', 'Asia/Yangon', 'Asia/Bangkok',
  'Asia/Jakarta', 'Asia/Shanghai', 'Asia/Singapore', 'Asia/Tokyo', 'Asia/Seoul', 'Australia/Perth',
  'Australia/Adelaide', 'Australia/Darwin', 'Australia/Brisbane', 'Australia/Sydney', 'Pacific/Auckland',
];

let allZones: string[] | undefined;
function candidateZones(): string[] {
  if (!allZones) {
    const known = new Set(Intl.supportedValuesOf('timeZone'));
    // Intl lists some zones by their older names (Asia/Calcutta): the preferred ones are the names people use today.
    allZones = [...preferredZones.filter((z) => IANAZone.isValidZone(z)), ...[...known].filter((z) => !preferredZones.includes(z)).sort()];
  }
  return allZones;
}

/** Whether the zone's offset is the run's at every instant of it (ends first, then a daily step). */
function fitsEnds(zone: IANAZone, r: OffsetRun): boolean {
  return zone.offset(r.fromMs) === r.offsetMin && zone.offset(r.toMs) === r.offsetMin;
}
function fitsWithin(zone: IANAZone, r: OffsetRun): boolean {
  for (let t = r.fromMs + dayMs, n = 0; t < r.toMs && n < 100_000; t += dayMs, n++) if (zone.offset(t) !== r.offsetMin) return false;
  return true;
}

/** The IANA name of a fixed offset: `Etc/GMT-2` for whole hours (its sign reversed, as POSIX has it), else luxon's `UTC+5:30`. */
export function fixedZone(offsetMin: number): string {
  if (offsetMin === 0) return 'UTC';
  if (offsetMin % 60 === 0 && Math.abs(offsetMin) <= 12 * 60) return `Etc/GMT${offsetMin > 0 ? '-' : '+'}${Math.abs(offsetMin) / 60}`;
  const abs = Math.abs(offsetMin);
  return `UTC${offsetMin < 0 ? '-' : '+'}${Math.floor(abs / 60)}:${String(abs % 60).padStart(2, '0')}`;
}

/** The zone that explains the evidence (see ZoneInference). */
export function inferZone(evidence: ZoneEvidence): ZoneInference {
  const runs = evidence.runs;
  const offsets: number[] = [];
  for (const r of runs) if (!offsets.includes(r.offsetMin)) offsets.push(r.offsetMin);
  if (runs.length === 0) return { zone: 'UTC', how: 'none', offsets, changes: [] };
  const observed: ZoneInference['changes'] = [];
  for (let i = 1; i < runs.length; i++) {
    if (runs[i]!.offsetMin !== runs[i - 1]!.offsetMin) observed.push({ atMs: runs[i]!.fromMs, fromMin: runs[i - 1]!.offsetMin, toMin: runs[i]!.offsetMin });
  }
  // Zones in order of preference; the first that gives every run's offset is the zone. Most logs
  // stop at the first few: a zone's first offset costs its Intl formatter (about 2 ms).
  const fitsAll = (z: IANAZone): boolean => runs.every((r) => fitsEnds(z, r)) && runs.every((r) => fitsWithin(z, r));
  if (!evidence.mixed) {
    for (const name of candidateZones()) {
      const z = IANAZone.create(name);
      if (!fitsAll(z)) continue;
      return { zone: z.name, how: 'inferred', offsets, changes: zoneTransitions(z.name, runs[0]!.fromMs, runs[runs.length - 1]!.toMs) };
    }
  }
  // None fits: narrow the candidates run by run, in time order; the run that leaves none is where the offsets stop making sense.
  let candidates = evidence.mixed ? [] : candidateZones().map((name) => IANAZone.create(name));
  let breakRun = -1;
  for (let i = 0; i < runs.length && candidates.length > 0; i++) {
    const r = runs[i]!;
    candidates = candidates.filter((z) => fitsEnds(z, r) && fitsWithin(z, r));
    if (candidates.length === 0) breakRun = i;
  }
  // No zone: the offset most records carry, and where the offsets stopped fitting any zone.
  const byOffset = new Map<number, number>();
  for (const r of runs) byOffset.set(r.offsetMin, (byOffset.get(r.offsetMin) ?? 0) + r.records);
  let commonest = runs[0]!.offsetMin;
  for (const [o, n] of byOffset) if (n > byOffset.get(commonest)!) commonest = o;
  const at = runs[Math.max(0, breakRun)]!;
  const breaksAt = evidence.mixed || breakRun < 0
    ? { file: evidence.mixed?.file ?? at.file ?? '', line: evidence.mixed?.line ?? at.line }
    : { file: at.file ?? '', line: at.line, offsetMin: at.offsetMin, atMs: at.fromMs };
  return { zone: fixedZone(commonest), how: 'fixed', offsets, changes: observed, breaksAt };
}

/** `+01:00 and +02:00`, `+01:00, +02:00 and +03:00`. */
function offsetList(offsets: number[]): string {
  const texts = offsets.map(formatOffset);
  return texts.length <= 1 ? (texts[0] ?? '') : `${texts.slice(0, -1).join(', ')} and ${texts[texts.length - 1]}`;
}

function utcMinute(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/**
 * How the zone was found, for the ingest summary: `inferred from offsets +01:00 and +02:00 (change
 * at 2026-03-29 01:00 UTC)`. `warning` when no zone explains the offsets, naming the file and line.
 */
export function describeInference(inf: ZoneInference): { note: string; warning?: string } {
  if (inf.how === 'none') return { note: 'no time carried an offset and the mapping names no timezone: days are UTC days' };
  const plural = inf.offsets.length === 1 ? 'offset' : 'offsets';
  const changes = inf.changes.length === 0 ? '' : ` (${inf.changes.length === 1 ? 'change' : 'changes'} at ${inf.changes.map((c) => utcMinute(c.atMs)).join(', ')})`;
  if (inf.how === 'inferred') {
    const alone = inf.offsets.length === 1 && inf.zone !== 'UTC' ? '; other zones at that offset then read the same: name one with "timezone" in the mapping' : '';
    return { note: `inferred from the times' ${plural} ${offsetList(inf.offsets)}${changes}${alone}` };
  }
  const b = inf.breaksAt!;
  const where = `${b.file}:${b.line}`;
  const what =
    b.offsetMin === undefined || b.atMs === undefined
      ? 'offsets alternate here more often than any time zone changes'
      : `a time with offset ${formatOffset(b.offsetMin)} at ${utcMinute(b.atMs)}, which no IANA time zone gives together with the offsets before it`;
  return {
    note: `fixed offset: no IANA time zone gives the times' ${plural} ${offsetList(inf.offsets)}`,
    warning:
      `${where}: ${what}; days and clock-time windows use ${utcOffsetLabel(offsetOf(inf.zone))}, the offset most records carry. ` +
      'If the logs were written in one zone, name it with "timezone" in the mapping (docs/mapping.md).',
  };
}

function offsetOf(zone: string): number {
  return Info.normalizeZone(zone)?.offset(0) ?? 0;
}
