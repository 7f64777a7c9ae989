// One topic's retained messages, numbered 1, 2, 3... Retained seqs are always contiguous (appends
// at the end, trims at the front), so a cursor maps to an array index without searching.

export interface StoredMessage {
  seq: number;
  id: string;
  /** When it became visible (monotonic ms), for trimming by age. */
  storedAtMs: number;
  /** The message as it appears in an answer, serialized once however many subscribers get it. */
  json: string;
}

export class TopicLog {
  lastSeq: number;
  private entries: StoredMessage[] = [];
  private head = 0;

  /**
   * `afterSeq` is where numbering starts: 0 for a topic the bus never saw, or a watermark above
   * every seq a forgotten topic had, so a subscriber's old cursor never lands ahead of new messages.
   */
  constructor(
    readonly name: string,
    afterSeq = 0,
  ) {
    this.lastSeq = afterSeq;
  }

  get size(): number {
    return this.entries.length - this.head;
  }

  /** The seq of the oldest retained message, or lastSeq + 1 when none is retained. */
  get firstSeq(): number {
    return this.entries[this.head]?.seq ?? this.lastSeq + 1;
  }

  append(id: string, dataJson: string, nowMs: number): StoredMessage {
    const seq = ++this.lastSeq;
    const json = `{"topic":${JSON.stringify(this.name)},"seq":${seq},"id":${JSON.stringify(id)},"data":${dataJson}}`;
    const msg: StoredMessage = { seq, id, storedAtMs: nowMs, json };
    this.entries.push(msg);
    return msg;
  }

  /** Drops messages beyond the count or older than the age; returns how many went. */
  trim(maxMessages: number, maxAgeMs: number, nowMs: number): number {
    let dropped = 0;
    while (this.size > maxMessages) {
      this.head++;
      dropped++;
    }
    while (this.head < this.entries.length && nowMs - this.entries[this.head]!.storedAtMs > maxAgeMs) {
      this.head++;
      dropped++;
    }
    if (dropped > 0) this.compact();
    return dropped;
  }

  /**
   * Where a subscriber's cursor really stands: null, or a cursor past the end (a bus restart),
   * means "from now on"; a cursor older than retention moves up to just before the oldest retained.
   */
  normalizeCursor(cursor: number | null): number {
    if (cursor === null || cursor > this.lastSeq) return this.lastSeq;
    return Math.max(cursor, this.firstSeq - 1);
  }

  /** Retained messages after `cursor`, at most `limit`, in seq order. */
  after(cursor: number, limit: number): StoredMessage[] {
    const from = Math.max(cursor + 1, this.firstSeq);
    if (from > this.lastSeq || limit <= 0) return [];
    const start = this.head + (from - this.firstSeq);
    return this.entries.slice(start, Math.min(start + limit, this.entries.length));
  }

  private compact(): void {
    // Copy only once the dead prefix dominates, so trimming stays amortized O(1) per message.
    if (this.head === this.entries.length) {
      this.entries = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}
