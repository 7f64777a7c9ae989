// Time zones as people read them. Ingest stores a zone luxon understands: the mapping's IANA
// name, or, when only an offset was seen in the logs, the POSIX-style `Etc/GMT-2`, whose sign
// is the reverse of what it means (UTC+2). Everything printed goes through zoneLabel.

import { IANAZone, Info, type Zone } from 'luxon';

/**
 * `Europe/Paris` stays as the mapping named it; a fixed offset reads `UTC+2` (`UTC+5:30`,
 * `UTC-5`), and UTC reads `UTC`. `atMs` is when the offset applies (named zones ignore it).
 * An unknown zone is shown as given.
 */
export function zoneLabel(zone: string, atMs = 0): string {
  const z: Zone | null = Info.normalizeZone(zone);
  if (!z || !z.isValid) return zone;
  const named = z instanceof IANAZone && !/^(Etc\/)?(GMT|UTC|UCT|Universal|Zulu|Greenwich)([+-]\d+)?$/i.test(z.name);
  if (named) return z.name;
  const offset = z.offset(atMs);
  if (offset === 0) return 'UTC';
  return `UTC${z.formatOffset(atMs, 'narrow')}`;
}

/** Rewrites the `Etc/GMT±N` zones inside text stored before zones were labelled (a run's window). */
export function readableZones(text: string): string {
  return text.replace(/\bEtc\/(GMT|UTC)(?:([+-])(\d{1,2}))?\b/g, (whole) => zoneLabel(whole));
}
