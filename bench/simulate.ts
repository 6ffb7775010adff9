/**
 * Zero-overhead lower bounds for W1, by discrete-event simulation of the same sleep schedule: every node
 * takes exactly its scheduled sleep and scheduling costs nothing. Compositions are all submitted at t = 0, in
 * order; a diamond's duration is its critical path A + max(B, C) + D.
 */

/** A binary min-heap of numbers (end times). */
class MinHeap {
  readonly #items: number[] = [];
  get size(): number {
    return this.#items.length;
  }
  push(value: number): void {
    const items = this.#items;
    items.push(value);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent]! <= value) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = value;
  }
  pop(): number {
    const items = this.#items;
    const top = items[0]!;
    const last = items.pop()!;
    if (items.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= items.length) break;
        const r = l + 1;
        const c = r < items.length && items[r]! < items[l]! ? r : l;
        if (items[c]! >= last) break;
        items[i] = items[c]!;
        i = c;
      }
      items[i] = last;
    }
    return top;
  }
}

/**
 * (a) Perform's own water-mark policy: compositions are admitted while running < highWater; once running
 * reaches highWater none is admitted until running < lowWater; then queued ones start FIFO until highWater
 * again. Returns the makespan in ms.
 */
export function waterMarkBound(durations: readonly number[], highWater: number, lowWater: number): number {
  const running = new MinHeap();
  let next = 0;
  let makespan = 0;
  /** Starts queued compositions at `now` until the high mark; returns whether it was reached. */
  const drain = (now: number): boolean => {
    while (next < durations.length) {
      running.push(now + durations[next++]!);
      if (running.size >= highWater) return true;
    }
    return false;
  };
  let saturated = drain(0);
  while (running.size > 0) {
    const end = running.pop();
    makespan = Math.max(makespan, end);
    if (saturated && running.size < lowWater) saturated = false;
    if (!saturated) saturated = drain(end);
  }
  return makespan;
}

/** (b) A plain cap: list-schedule the compositions, in submission order, on `slots` identical slots. */
export function plainCapBound(durations: readonly number[], slots: number): number {
  const free = new MinHeap();
  for (let i = 0; i < slots; i++) free.push(0);
  let makespan = 0;
  for (const d of durations) {
    const end = free.pop() + d;
    free.push(end);
    makespan = Math.max(makespan, end);
  }
  return makespan;
}

/** A diamond's critical path from its four node sleeps [A, B, C, D]. */
export function diamondDuration(a: number, b: number, c: number, d: number): number {
  return a + Math.max(b, c) + d;
}
