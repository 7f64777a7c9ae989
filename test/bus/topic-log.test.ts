import { describe, expect, it } from 'vitest';
import { TopicLog } from '../../bus/topic-log.js';

function filled(n: number, atMs = 0): TopicLog {
  const log = new TopicLog('t');
  for (let i = 1; i <= n; i++) log.append(`m${i}`, String(i), atMs + i);
  return log;
}

describe('TopicLog', () => {
  it('numbers messages 1, 2, 3 and serializes each once, as answered', () => {
    const log = filled(3);
    expect(log.after(0, 10).map((m) => m.seq)).toEqual([1, 2, 3]);
    expect(JSON.parse(log.after(1, 1)[0]!.json)).toEqual({ topic: 't', seq: 2, id: 'm2', data: 2 });
    expect(log.after(3, 10)).toEqual([]);
    expect(log.after(0, 2).map((m) => m.seq)).toEqual([1, 2]);
  });

  it('trims by count from the front and keeps seqs contiguous through compaction', () => {
    const log = new TopicLog('t');
    for (let i = 1; i <= 5000; i++) {
      log.append(`m${i}`, 'null', i);
      log.trim(100, Number.POSITIVE_INFINITY, i);
    }
    expect(log.size).toBe(100);
    expect(log.firstSeq).toBe(4901);
    expect(log.after(4950, 3).map((m) => m.seq)).toEqual([4951, 4952, 4953]);
    // A cursor older than retention gets what is retained.
    expect(log.after(10, 2).map((m) => m.seq)).toEqual([4901, 4902]);
  });

  it('trims by age', () => {
    const log = filled(10, 1000); // stored at 1001..1010
    expect(log.trim(100, 5, 1010)).toBe(4); // older than 5 ms at 1010: 1001..1004
    expect(log.firstSeq).toBe(5);
    expect(log.trim(100, 5, 10_000)).toBe(6);
    expect(log.size).toBe(0);
    expect(log.firstSeq).toBe(11);
    expect(log.lastSeq).toBe(10);
  });

  it('normalizes cursors: null and past-the-end mean now, too-old moves up to retention', () => {
    const log = filled(10);
    log.trim(4, Number.POSITIVE_INFINITY, 0);
    expect(log.normalizeCursor(null)).toBe(10);
    expect(log.normalizeCursor(99)).toBe(10);
    expect(log.normalizeCursor(2)).toBe(6);
    expect(log.normalizeCursor(8)).toBe(8);
  });
});
