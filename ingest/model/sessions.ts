// Cuts a file's requests into sessions as they stream in (docs/model.md, Sessions), holding only
// the sessions still open: a session is closed once the log has moved on past its last request by
// more than the silence that ends a session plus the disorder a log may have (access logs are
// written when a request ends, so starts come out of order by up to a long-poll). A closing
// session first takes back the stored sessions it touches (same session id, or within the
// silence), whatever file or part of this one they came from, so sessions and the model come
// out the same however the requests were split into files.

import type { SessionRecordRow } from '../../db/session-pack.js';

/** Silence longer than this cuts an actor's records into sessions (when they carry no session id). */
export const sessionGapMs = 5 * 60_000;
/** How far out of start order a log's requests may be. */
export const disorderMs = 5 * 60_000;

/** Where closed sessions go, and where stored ones are taken back from. */
export interface SessionStore {
  /** Removes and returns the stored sessions of `actor` without a session id overlapping [fromMs, toMs]. */
  takeNear(actor: number, fromMs: number, toMs: number): SessionRecordRow[][];
  /** Removes and returns the stored sessions of `actor` with this session id. */
  takeKeyed(actor: number, key: number): SessionRecordRow[][];
  /** Stores a closed session (records sorted by start). */
  put(actor: number, key: number | null, records: SessionRecordRow[]): void;
}

interface OpenSession {
  actor: number;
  key: number | null;
  records: SessionRecordRow[];
  minStart: number;
  maxEnd: number;
}

/** Splits one actor's records without a session id (sorted by start) where it was silent longer than sessionGapMs. */
export function splitByGap(records: readonly SessionRecordRow[]): SessionRecordRow[][] {
  const out: SessionRecordRow[][] = [];
  let current: SessionRecordRow[] | undefined;
  let lastEnd = -Infinity;
  for (const r of records) {
    if (!current || r.startMs - lastEnd > sessionGapMs) {
      current = [];
      out.push(current);
      lastEnd = -Infinity;
    }
    current.push(r);
    lastEnd = Math.max(lastEnd, r.startMs + r.durationMs);
  }
  return out;
}

const byStart = (a: SessionRecordRow, b: SessionRecordRow): number => a.startMs - b.startMs;

export class SessionAssembler {
  /**
   * Open sessions by a number (no string built per request): -1 - actor without a session id,
   * else the session id; a session id two actors share goes to `shared` by "actor:key".
   */
  private readonly open = new Map<number, OpenSession>();
  private readonly shared = new Map<string, OpenSession>();
  private watermark = -Infinity;

  constructor(private readonly store: SessionStore) {}

  add(actor: number, key: number | null, r: SessionRecordRow): void {
    const id = key === null ? -1 - actor : key;
    let s = this.shared.size > 0 && key !== null ? this.shared.get(`${actor}:${key}`) : undefined;
    s ??= this.open.get(id);
    if (s && s.actor !== actor) {
      s = { actor, key, records: [], minStart: r.startMs, maxEnd: -Infinity };
      this.shared.set(`${actor}:${key}`, s);
    }
    if (!s) this.open.set(id, (s = { actor, key, records: [], minStart: r.startMs, maxEnd: -Infinity }));
    s.records.push(r);
    if (r.startMs < s.minStart) s.minStart = r.startMs;
    const end = r.startMs + r.durationMs;
    if (end > s.maxEnd) s.maxEnd = end;
    if (r.startMs > this.watermark) this.watermark = r.startMs;
  }

  /** Closes the sessions the log has moved past (call between batches). */
  closeQuiet(): void {
    const before = this.watermark - sessionGapMs - disorderMs;
    for (const open of [this.open, this.shared] as Array<Map<number | string, OpenSession>>) {
      for (const [id, s] of open) {
        if (s.maxEnd < before) {
          open.delete(id);
          this.close(s);
        }
      }
    }
  }

  /** Closes every open session (the end of a file). */
  closeAll(): void {
    for (const s of this.open.values()) this.close(s);
    for (const s of this.shared.values()) this.close(s);
    this.open.clear();
    this.shared.clear();
  }

  get openSessions(): number {
    return this.open.size + this.shared.size;
  }

  private close(s: OpenSession): void {
    if (s.key !== null) {
      const stored = this.store.takeKeyed(s.actor, s.key);
      const records = stored.length === 0 ? s.records : [...stored.flat(), ...s.records];
      this.store.put(s.actor, s.key, records.sort(byStart));
      return;
    }
    // Stored sessions within the silence of this one's records join it (continued across files).
    let records = s.records;
    let from = s.minStart - sessionGapMs;
    let to = s.maxEnd + sessionGapMs;
    for (;;) {
      const stored = this.store.takeNear(s.actor, from, to);
      if (stored.length === 0) break;
      const flat = stored.flat();
      records = [...flat, ...records];
      for (const r of flat) {
        from = Math.min(from, r.startMs - sessionGapMs);
        to = Math.max(to, r.startMs + r.durationMs + sessionGapMs);
      }
    }
    for (const part of splitByGap(records.sort(byStart))) this.store.put(s.actor, null, part);
  }
}
