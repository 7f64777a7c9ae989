// Turns a log's time value into epoch milliseconds, per the mapping's timeFormat and timezone.
// Pure; returns NaN for values it cannot read so the caller can reject the line with a reason.

import { DateTime } from 'luxon';

export type TimeParser = (value: unknown) => number;

const months: Record<string, number> = { Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11 };
const clfPattern = /^\[?(\d{1,2})\/([A-Z][a-z]{2})\/(\d{4}):(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))? ([+-])(\d{2})(\d{2})\]?$/;
const hasOffset = /(?:Z|[+-]\d{2}:?\d{2})$/i;
const numeric = /^-?\d+(?:\.\d+)?$/;

/** Common Log Format time: `28/Nov/2026:10:00:00 +0100` (brackets optional). */
export function parseClf(text: string): number {
  const m = clfPattern.exec(text);
  if (!m) return Number.NaN;
  const month = months[m[2]!];
  if (month === undefined) return Number.NaN;
  const ms = m[7] ? Number(m[7].padEnd(3, '0')) : 0;
  const utc = Date.UTC(Number(m[3]), month, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]), ms);
  const offsetMin = (Number(m[9]) * 60 + Number(m[10])) * (m[8] === '-' ? -1 : 1);
  return utc - offsetMin * 60_000;
}

function parseIso(text: string, zone: string): number {
  if (hasOffset.test(text)) {
    const t = Date.parse(text);
    if (!Number.isNaN(t)) return t;
  }
  // No offset: the mapping's timezone says where the clock hung.
  let dt = DateTime.fromISO(text, { zone });
  if (!dt.isValid) dt = DateTime.fromSQL(text, { zone });
  return dt.isValid ? dt.toMillis() : Number.NaN;
}

function parseEpoch(value: unknown, unitMs: number): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && numeric.test(value) ? Number(value) : Number.NaN;
  return Math.round(n * unitMs);
}

export function makeTimeParser(format: string, zone: string): TimeParser {
  switch (format) {
    case 'epoch_ms':
      return (v) => parseEpoch(v, 1);
    case 'epoch_s':
      return (v) => parseEpoch(v, 1000);
    case 'clf':
      return (v) => (typeof v === 'string' ? parseClf(v) : Number.NaN);
    case 'iso':
      return (v) => (typeof v === 'string' ? parseIso(v, zone) : Number.NaN);
    case 'auto':
      return (v) => {
        if (typeof v === 'number') return Math.round(Math.abs(v) > 1e11 ? v : v * 1000);
        if (typeof v !== 'string' || v === '') return Number.NaN;
        if (numeric.test(v)) {
          // Seconds since 1970 stay below 1e11 until the year 5138; milliseconds are above it after 1973.
          const n = Number(v);
          return Math.round(Math.abs(n) > 1e11 ? n : n * 1000);
        }
        const c = v.charCodeAt(0);
        if (c === 91 /* [ */ || (v.length > 2 && v.charCodeAt(2) === 47) /* dd/ */) return parseClf(v);
        return parseIso(v, zone);
      };
    default:
      return (v) => {
        if (typeof v !== 'string') return Number.NaN;
        const dt = DateTime.fromFormat(v, format, { zone, setZone: true });
        return dt.isValid ? dt.toMillis() : Number.NaN;
      };
  }
}

/** ISO 8601 of an epoch ms in a zone, with its offset (dry runs and summaries). */
export function formatInZone(ms: number, zone: string): string {
  return DateTime.fromMillis(ms, { zone }).toISO({ suppressMilliseconds: false }) ?? new Date(ms).toISOString();
}
