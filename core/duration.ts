// Human durations on the command line ('90s', '10m', '1h30m', '250ms') to milliseconds and
// back. One small parser shared by every command that takes a duration flag.

const unitMs: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses '10m', '90s', '1h', '1h30m', '2.5s', '250ms', '250us' (units us, ms, s, m, h, d; parts in any
 * order, summed). A bare '0' is accepted; any other bare number is refused because '10'
 * could mean seconds or minutes. Returns null when the text is not a duration, so callers
 * can collect every bad flag before reporting.
 */
export function parseDuration(text: string): number | null {
  const s = text.trim().toLowerCase();
  if (s === '') return null;
  if (/^0+(\.0*)?$/.test(s)) return 0;
  const part = /(\d+(?:\.\d+)?|\.\d+)(us|ms|s|m|h|d)/y;
  let total = 0;
  let at = 0;
  while (at < s.length) {
    part.lastIndex = at;
    const m = part.exec(s);
    if (!m) return null;
    total += Number(m[1]) * unitMs[m[2]!]!;
    at = part.lastIndex;
  }
  // Rounded to the microsecond, the finest unit, so '0.1s' is exactly 100.
  return Number.isFinite(total) ? Math.round(total * 1000) / 1000 : null;
}

/** The shortest readable form: 0s, 250ms, 90s -> 1m30s, 3600000 -> 1h. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 0) return `-${formatDuration(-ms)}`;
  if (ms === 0) return '0s';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  let rest = Math.round(ms / 1000);
  const h = Math.floor(rest / 3600);
  rest -= h * 3600;
  const m = Math.floor(rest / 60);
  const sec = rest - m * 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${sec || (!h && !m) ? `${sec}s` : ''}`;
}
