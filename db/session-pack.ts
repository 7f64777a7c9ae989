// A session's requests packed into one blob: what replaces a row per request (issue 13). Varints,
// starts as deltas in start order, topic lists once per session. About 8-10 bytes a request.
// Pure; the model store keeps the blob in `sessions.records` and decodes it for timelines.

/** One request of a session as the model keeps it (topics are ids rows). */
export interface SessionRecordRow {
  startMs: number;
  durationMs: number;
  /** 0 other, 1 publish, 2 subscribe. */
  op: number;
  status: number;
  messages: number;
  topics: readonly number[];
}

class Writer {
  buf = Buffer.allocUnsafe(256);
  pos = 0;
  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  /** Non-negative whole numbers up to 2^53. */
  uint(v: number): void {
    this.room(8);
    // Bit operations while the value fits 31 bits (nearly always), division above.
    while (v >= 0x80 && v < 0x80000000) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }
  int(v: number): void {
    this.uint(v < 0 ? -2 * v - 1 : 2 * v);
  }
  done(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}

class Reader {
  pos = 0;
  constructor(private readonly buf: Uint8Array) {}
  uint(): number {
    let v = 0;
    let scale = 1;
    for (;;) {
      const b = this.buf[this.pos++]!;
      v += (b & 0x7f) * scale;
      if (b < 0x80) return v;
      scale *= 0x80;
    }
  }
  int(): number {
    const u = this.uint();
    return u % 2 === 1 ? -(u + 1) / 2 : u / 2;
  }
}

const version = 1;

/** Packs records already sorted by start; starts are stored from `baseMs` (the session's start). */
export function packRecords(records: readonly SessionRecordRow[], baseMs: number): Buffer {
  const w = new Writer();
  w.uint(version);
  w.uint(records.length);
  // Keyed by the one topic of a one-topic list (most requests), else by the joined list.
  const lists = new Map<number | string, number>();
  const listOf: number[] = [];
  const order: Array<readonly number[]> = [];
  for (const r of records) {
    const key = r.topics.length === 1 ? r.topics[0]! : r.topics.join(',');
    let i = lists.get(key);
    if (i === undefined) {
      lists.set(key, (i = order.length));
      order.push(r.topics);
    }
    listOf.push(i);
  }
  w.uint(order.length);
  for (const topics of order) {
    w.uint(topics.length);
    for (const t of topics) w.uint(t);
  }
  let prev = baseMs;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    w.int(r.startMs - prev);
    prev = r.startMs;
    w.int(r.durationMs);
    w.uint(r.status * 4 + r.op);
    w.int(r.messages);
    w.uint(listOf[i]!);
  }
  return w.done();
}

export function unpackRecords(blob: Uint8Array, baseMs: number): SessionRecordRow[] {
  const r = new Reader(blob);
  const v = r.uint();
  if (v !== version) throw new Error(`session records: unknown packing version ${v}`);
  const n = r.uint();
  const lists: number[][] = [];
  for (let i = r.uint(); i > 0; i--) {
    const topics: number[] = [];
    for (let k = r.uint(); k > 0; k--) topics.push(r.uint());
    lists.push(topics);
  }
  const out: SessionRecordRow[] = new Array(n);
  let prev = baseMs;
  for (let i = 0; i < n; i++) {
    const startMs = prev + r.int();
    prev = startMs;
    const durationMs = r.int();
    const opStatus = r.uint();
    const messages = r.int();
    const topics = lists[r.uint()]!;
    out[i] = { startMs, durationMs, op: opStatus % 4, status: Math.floor(opStatus / 4), messages, topics };
  }
  return out;
}

/** A proctor session's control targets: for each successful control publish in order, the learner sessions it addressed. */
export function packTargets(targets: ReadonlyArray<readonly number[]>): Buffer {
  const w = new Writer();
  w.uint(targets.length);
  for (const list of targets) {
    w.uint(list.length);
    for (const t of list) w.uint(t);
  }
  return w.done();
}

export function unpackTargets(blob: Uint8Array | null): number[][] {
  if (!blob) return [];
  const r = new Reader(blob);
  const out: number[][] = [];
  for (let n = r.uint(); n > 0; n--) {
    const list: number[] = [];
    for (let k = r.uint(); k > 0; k--) list.push(r.uint());
    out.push(list);
  }
  return out;
}

/** What a session did, for replay (docs/model.md): the timeline the ModelReader gives. */
export interface PackedTimelineEvent {
  atMs: number;
  kind: 'publish' | 'control' | 'poll' | 'error';
  messages: number;
  durationMs: number;
  status: number;
  targetSessionId: number | null;
}

/**
 * A session's timeline from its requests: 5xx are errors, successful publishes are a learner's
 * publishes or a proctor's controls (one event per addressed learner session), successful
 * subscribes polls; 4xx and other requests are left out. Sorted by time, controls after the
 * other events of the same millisecond.
 */
export function timelineOf(role: 'learner' | 'proctor', startMs: number, records: readonly SessionRecordRow[], targets: number[][]): PackedTimelineEvent[] {
  const events: PackedTimelineEvent[] = [];
  const controls: PackedTimelineEvent[] = [];
  let control = 0;
  for (const r of records) {
    const base = { atMs: r.startMs - startMs, messages: r.messages, durationMs: r.durationMs, status: r.status, targetSessionId: null };
    if (r.status >= 500) events.push({ ...base, kind: 'error' });
    else if (r.status >= 400) continue;
    else if (r.op === 2) events.push({ ...base, kind: 'poll' });
    else if (r.op === 1 && role === 'learner') events.push({ ...base, kind: 'publish' });
    else if (r.op === 1) {
      const addressed = targets[control++] ?? [];
      if (addressed.length === 0) controls.push({ ...base, kind: 'control' });
      for (const t of addressed) controls.push({ ...base, kind: 'control', targetSessionId: t });
    }
  }
  events.push(...controls);
  // Stable: equal times keep the order above.
  return events.sort((a, b) => a.atMs - b.atMs);
}
