import { describe, expect, it } from 'vitest';
import { MinHeap } from '../../core/min-heap.js';
import { seededRandom } from '../../stats/random.js';

describe('MinHeap', () => {
  it('pops in order through pushes, pops and replaceTop', () => {
    const r = seededRandom(1);
    const heap = new MinHeap<number>((a, b) => a < b);
    const mirror: number[] = [];
    for (let step = 0; step < 5000; step++) {
      const x = Math.floor(r.next() * 1000);
      const op = r.next();
      if (op < 0.5 || heap.size === 0) {
        heap.push(x);
        mirror.push(x);
      } else if (op < 0.8) {
        mirror.sort((a, b) => a - b);
        expect(heap.pop()).toBe(mirror.shift());
      } else {
        mirror.sort((a, b) => a - b);
        const top = heap.peek()!;
        expect(top).toBe(mirror[0]);
        heap.replaceTop(top + x);
        mirror[0] = top + x;
      }
      expect(heap.size).toBe(mirror.length);
    }
    mirror.sort((a, b) => a - b);
    const drained: number[] = [];
    while (heap.size > 0) drained.push(heap.pop()!);
    expect(drained).toEqual(mirror);
    expect(heap.pop()).toBeUndefined();
  });

  it('pops in order with ties broken by the comparator, across interleaved pushes and pops', () => {
    const rng = seededRandom(5);
    const heap = new MinHeap<{ t: number; seq: number }>((a, b) => a.t < b.t || (a.t === b.t && a.seq < b.seq));
    const out: Array<{ t: number; seq: number }> = [];
    let seq = 0;
    let floor = 0;
    for (let round = 0; round < 200; round++) {
      for (let i = 0; i < 30; i++) heap.push({ t: floor + Math.floor(rng.next() * 50), seq: seq++ });
      for (let i = 0; i < 25; i++) {
        const e = heap.pop()!;
        out.push(e);
        floor = e.t;
      }
    }
    while (heap.size > 0) out.push(heap.pop()!);
    expect(out).toHaveLength(6000);
    expect(heap.pop()).toBeUndefined();
    const misordered = out.filter((e, i) => i > 0 && (e.t < out[i - 1]!.t || (e.t === out[i - 1]!.t && e.seq < out[i - 1]!.seq)));
    expect(misordered).toEqual([]);
  });

  it('lists and clears its items', () => {
    const heap = new MinHeap<number>((a, b) => a < b);
    for (const x of [5, 3, 8, 1]) heap.push(x);
    expect([...heap.values()].sort((a, b) => a - b)).toEqual([1, 3, 5, 8]);
    heap.clear();
    expect(heap.size).toBe(0);
    expect(heap.peek()).toBeUndefined();
    heap.replaceTop(4);
    expect(heap.pop()).toBe(4);
  });
});
