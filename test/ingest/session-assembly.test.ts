// The pure pieces under the ingest writer's hot path (issue 13 step 5): the session assembler's
// numeric keys (one session id shared by two actors stays two sessions) and the packed timeline's
// round trip (one-topic lists keyed by number, varints past 31 bits).

import { describe, expect, it } from 'vitest';
import { SessionAssembler, sessionGapMs, disorderMs, type SessionStore } from '../../ingest/model/sessions.js';
import { packRecords, unpackRecords, type SessionRecordRow } from '../../db/session-pack.js';

class MemoryStore implements SessionStore {
  readonly put_: Array<{ actor: number; key: number | null; records: SessionRecordRow[] }> = [];
  takeNear(): SessionRecordRow[][] {
    return [];
  }
  takeKeyed(): SessionRecordRow[][] {
    return [];
  }
  put(actor: number, key: number | null, records: SessionRecordRow[]): void {
    this.put_.push({ actor, key, records });
  }
}

const req = (startMs: number, topics: number[] = [7], op = 1): SessionRecordRow => ({ startMs, durationMs: 10, op, status: 200, messages: 1, topics });

describe('SessionAssembler', () => {
  it('keeps two actors that share a session id as two sessions, also after the first one closes', () => {
    const store = new MemoryStore();
    const a = new SessionAssembler(store);
    a.add(1, 50, req(0));
    a.add(2, 50, req(1_000));
    a.add(1, 50, req(2_000));
    expect(a.openSessions).toBe(2);
    a.closeAll();
    expect(store.put_.map((s) => [s.actor, s.key, s.records.length]).sort()).toEqual([
      [1, 50, 2],
      [2, 50, 1],
    ]);
  });

  it('a shared session id still finds the second actor\'s open session once the first actor\'s has closed', () => {
    const store = new MemoryStore();
    const a = new SessionAssembler(store);
    const later = sessionGapMs + disorderMs + 60_000;
    a.add(1, 50, req(0));
    a.add(2, 50, req(1_000));
    // Actor 2 keeps going; actor 1's session is left behind and closes.
    a.add(2, 50, req(later));
    a.add(2, 50, req(later + 1_000));
    a.closeQuiet();
    expect(store.put_.map((s) => s.actor)).toEqual([1]);
    a.add(2, 50, req(later + 2_000));
    a.closeAll();
    const second = store.put_.filter((s) => s.actor === 2);
    expect(second.map((s) => s.records.map((r) => r.startMs))).toEqual([[1_000, later, later + 1_000, later + 2_000]]);
  });

  it('cuts sessions without a session id per actor', () => {
    const store = new MemoryStore();
    const a = new SessionAssembler(store);
    a.add(3, null, req(0));
    a.add(4, null, req(5));
    a.add(3, null, req(10));
    a.closeAll();
    expect(store.put_.map((s) => [s.actor, s.key, s.records.length]).sort()).toEqual([
      [3, null, 2],
      [4, null, 1],
    ]);
  });
});

describe('packRecords', () => {
  it('round-trips one-topic, many-topic and empty topic lists, and values past 31 bits', () => {
    const base = 1_790_000_000_000;
    const records: SessionRecordRow[] = [
      req(base, [7]),
      req(base + 5, [7]),
      req(base + 9, [7, 9]),
      req(base + 9, [79]),
      req(base + 20, []),
      { startMs: base + 3_000_000_000, durationMs: 2 ** 40, op: 2, status: 503, messages: 2 ** 33, topics: [2 ** 35] },
    ];
    const blob = packRecords(records, base);
    expect(unpackRecords(blob, base)).toEqual(records);
  });

  it('stores one topic list once however often it recurs', () => {
    const base = 0;
    const many = Array.from({ length: 100 }, (_, i) => req(i, [7, 9]));
    const once = packRecords(many, base);
    const each = packRecords(Array.from({ length: 100 }, (_, i) => req(i, [7 + 2 * i, 9])), base);
    expect(once.length).toBeLessThan(each.length);
    expect(unpackRecords(once, base)).toEqual(many);
  });
});
