/** Small helpers shared by the bench modules: a seeded PRNG, statistics, timing and heap measurement. */

/** mulberry32: a tiny, fast, seeded 32-bit PRNG. Returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Median of a non-empty list (mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Runs one full, synchronous garbage collection when the process was started with `--expose-gc`. Only one:
 * back-to-back full GCs made the next run of the (JIT-warm) baseline 3× slower on Node 24, as if its
 * optimised code had been dropped.
 */
export function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** True when `global.gc` is available (`node --expose-gc`). */
export function hasGc(): boolean {
  return typeof (globalThis as { gc?: unknown }).gc === 'function';
}

/** Wall and CPU time of one awaited call. CPU is user + system of the whole process (all threads). */
export interface Timing {
  readonly wallMs: number;
  readonly cpuMs: number;
}

export async function timed<T>(body: () => Promise<T>): Promise<{ timing: Timing; value: T }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await body();
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { timing: { wallMs, cpuMs: (cpu.user + cpu.system) / 1000 }, value };
}

/** A promise with its resolve function, for blocking a node until the bench releases it. */
export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((res) => {
    resolve = res;
  });
  return { promise, resolve };
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms);
  });

/** Formats a number with a fixed number of decimals, or an en dash for missing values. */
export function fmt(value: number | undefined, decimals = 1): string {
  if (value === undefined || Number.isNaN(value)) return '–';
  return value.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}
