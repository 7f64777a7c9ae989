import { describe, expect, it } from 'vitest';
import { MinHeap } from '../../replay/plan/heap.js';
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
});
