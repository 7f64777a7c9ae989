// Time zones as people read them. A model's zone is what luxon understands: an IANA name (the
// mapping's, or inferred from the logs' offsets), or a fixed offset such as `Etc/GMT-2`, whose
// sign is the reverse of what it means (UTC+2). Everything printed goes through zoneLabel.

import { DateTime, IANAZone, Info, type Zone } from 'luxon';

const dayMs = 86_400_000;
const fixedName = /^(Etc\/)?(GMT|UTC|UCT|Universal|Zulu|Greenwich)([+-]\d+(:\d\d)?)?$/i;

/** `+02:00`, `-04:00`, `+05:30`: an offset in minutes as ISO 8601 writes it. */
export function formatOffset(minutes: number): string {
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/** `UTC+02:00`, or `UTC` for no offset. */
export function utcOffsetLabel(minutes: number): string {
  return minutes === 0 ? 'UTC' : `UTC${formatOffset(minutes)}`;
}

/** The luxon zone of a name, or undefined when luxon does not know it. */
function zoneOf(zone: string): Zone | undefined {
  const z: Zone | null = Info.normalizeZone(zone);
  return z && z.isValid ? z : undefined;
}

/** A zone whose offset never changes (UTC, Etc/GMT-2, UTC+5:30). */
function isFixed(z: Zone): boolean {
  return !(z instanceof IANAZone) || fixedName.test(z.name);
}

/** When a zone's offset changes within [fromMs, toMs], to the millisecond, and to what. */
export function zoneTransitions(zone: string, fromMs: number, toMs: number): Array<{ atMs: number; fromMin: number; toMin: number }> {
  const z = zoneOf(zone);
  if (!z || isFixed(z) || !(toMs > fromMs)) return [];
  const out: Array<{ atMs: number; fromMin: number; toMin: number }> = [];
  // No zone changes its offset twice within a day: a daily step sees every change.
  let t = fromMs;
  let offset = z.offset(t);
  for (let n = 0; t < toMs && n < 100_000; n++) {
    const next = Math.min(toMs, t + dayMs);
    const nextOffset = z.offset(next);
    if (nextOffset !== offset) {
      let lo = t;
      let hi = next;
      for (let i = 0; hi - lo > 1 && i < 64; i++) {
        const mid = Math.floor((lo + hi) / 2);
        if (z.offset(mid) === offset) lo = mid;
        else hi = mid;
      }
      out.push({ atMs: hi, fromMin: offset, toMin: nextOffset });
    }
    t = next;
    offset = nextOffset;
  }
  return out;
}

/** The zone's short name at an instant when there is one people use (CET, EDT, BST), else undefined. */
function abbreviation(zone: string, atMs: number): string | undefined {
  for (const locale of ['en-US', 'en-GB']) {
    const name = DateTime.fromMillis(atMs, { zone, locale }).offsetNameShort;
    if (name && !/^(GMT|UTC)[+\-\u2212]/.test(name)) return name;
  }
  return undefined;
}

function offsetText(zone: string, atMs: number, offset: number): string {
  const abbr = abbreviation(zone, atMs);
  const utc = `UTC${formatOffset(offset)}`;
  return abbr && abbr !== 'UTC' ? `${abbr}, ${utc}` : utc;
}

/**
 * A zone as people read it, over the time it is shown for: `Europe/Paris (CEST, UTC+02:00)`,
 * `Europe/Paris (CET, UTC+01:00; CEST, UTC+02:00 from 29 Mar 03:00)` across a daylight-saving
 * change (the local clock time it starts at), `UTC+02:00` for a fixed offset (never `Etc/GMT-2`),
 * `UTC`. An unknown zone is shown as given.
 */
export function zoneLabel(zone: string, fromMs = 0, toMs = fromMs): string {
  const z = zoneOf(zone);
  if (!z) return zone;
  if (isFixed(z)) return utcOffsetLabel(z.offset(fromMs));
  const changes = zoneTransitions(zone, fromMs, toMs);
  const yearsDiffer = DateTime.fromMillis(fromMs, { zone }).year !== DateTime.fromMillis(toMs, { zone }).year;
  const parts = [offsetText(zone, fromMs, z.offset(fromMs))];
  for (const c of changes) {
    const local = DateTime.fromMillis(c.atMs, { zone, locale: 'en-GB' }).toFormat(yearsDiffer ? 'd LLL yyyy HH:mm' : 'd LLL HH:mm');
    parts.push(`${offsetText(zone, c.atMs, c.toMin)} from ${local}`);
  }
  return `${z.name} (${parts.join('; ')})`;
}

/** Rewrites the `Etc/GMT±N` zones inside text stored before zones were labelled (a run's window). */
export function readableZones(text: string): string {
  return text.replace(/\bEtc\/(GMT|UTC)(?:([+-])(\d{1,2}))?\b/g, (whole) => zoneLabel(whole));
}
