// The one binary min-heap with a caller-given order: the plan's session queue, the runtime's
// scheduler and the fixture generator's event queue and record buffers all use it.
// Sifts move a hole instead of swapping: one write per level (it is the hot loop of all three).

export class MinHeap<T> {
  private readonly items: T[] = [];
  constructor(private readonly less: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const a = this.items;
    let i = a.length;
    a.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = a[parent]!;
      if (!this.less(item, p)) break;
      a[i] = p;
      i = parent;
    }
    a[i] = item;
  }

  pop(): T | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  /** Re-establishes order after the top item's key grew (cheaper than pop + push). */
  replaceTop(item: T): void {
    if (this.items.length === 0) {
      this.items.push(item);
      return;
    }
    this.items[0] = item;
    this.siftDown(0);
  }

  /** Every item, in heap (not sorted) order. */
  values(): IterableIterator<T> {
    return this.items.values();
  }

  clear(): void {
    this.items.length = 0;
  }

  private siftDown(start: number): void {
    const a = this.items;
    const n = a.length;
    const item = a[start]!;
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let child = l;
      let c = a[l]!;
      if (r < n && this.less(a[r]!, c)) {
        child = r;
        c = a[r]!;
      }
      if (!this.less(c, item)) break;
      a[i] = c;
      i = child;
    }
    a[i] = item;
  }
}
