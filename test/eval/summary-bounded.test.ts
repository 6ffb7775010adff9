// A run's summary in bounded memory: summarizeRun() streams the stored rows (no inputs or outputs), keeps at
// most `maxListed` error and failed rows per variant while counting every one, accumulates means as the
// rows pass, and gets exact latency percentiles from SQLite.
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_LISTED,
  renderMarkdownReport,
  renderTextTable,
  summarize,
  summarizeRun,
} from '../../src/eval/report.ts';
import { ci95, percentile, RunningStats, scoreInterval } from '../../src/eval/stats.ts';
import { RunStore } from '../../src/eval/store.ts';
import type { RowRecord, RowStatus } from '../../src/eval/types.ts';
import { InvalidOptionError } from '../../src/index.ts';

/** A small deterministic generator (mulberry32), so the values are irregular but the test is repeatable. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function record(variant: string, line: number, status: RowStatus, extra: Partial<RowRecord> = {}): RowRecord {
  return {
    run: 'big',
    variant,
    rowId: `r${line}`,
    line,
    status,
    input: { q: line },
    outputs: { a: `answer ${line}` },
    scores: status === 'error' ? {} : { em: { score: status === 'pass' ? 1 : 0, reason: `row ${line}` } },
    usage: { inputTokens: 2, outputTokens: 1, totalTokens: 3, costUsd: 0.001, calls: 1, unpricedCalls: 0 },
    latencyMs: line,
    attempts: 1,
    ...(status === 'error' ? { error: { code: 'boom', message: `row ${line} failed`, node: 'n' } } : {}),
    cached: false,
    finishedAt: 1_000 + line,
    ...extra,
  };
}

/** `rows` rows of variant `v`: every third fails, every seventh is an error, the rest pass. */
function fill(store: RunStore, rows: number, seed = 1): RowRecord[] {
  const next = random(seed);
  const all: RowRecord[] = [];
  store.beginRun({ run: 'big', chain: 'c', variants: ['v'] });
  for (let line = 1; line <= rows; line++) {
    const status: RowStatus = line % 7 === 0 ? 'error' : line % 3 === 0 ? 'fail' : 'pass';
    const r = record('v', line, status, {
      latencyMs: Math.round(next() * 5_000) / 10,
      cached: line % 11 === 0,
      scores:
        status === 'error'
          ? {}
          : { em: { score: status === 'pass' ? 1 : 0 }, sim: { score: Math.round(next() * 1000) / 1000 } },
    });
    store.putRow(r);
    all.push(r);
  }
  return all;
}

describe('summarizeRun (a stored run, bounded memory)', () => {
  it('lists at most maxListed failed and error rows, the first by line, and counts them all', () => {
    const store = RunStore.open(':memory:');
    const all = fill(store, 3_000);
    const summary = summarizeRun(store, 'big', { scorers: ['em', 'sim'], maxListed: 50 });
    const v = summary.variants[0]!;
    const errors = all.filter((r) => r.status === 'error');
    const failures = all.filter((r) => r.status === 'fail');
    expect(v.rows).toBe(3_000);
    expect(v.error).toBe(errors.length);
    expect(v.fail).toBe(failures.length);
    expect(v.pass).toBe(3_000 - errors.length - failures.length);
    expect(v.errors.map((e) => e.rowId)).toEqual(errors.slice(0, 50).map((r) => r.rowId));
    expect(v.failures.map((f) => f.rowId)).toEqual(failures.slice(0, 50).map((r) => r.rowId));
    expect(v.errors[0]).toEqual({ rowId: 'r7', line: 7, node: 'n', code: 'boom', message: 'row 7 failed' });
    // The renderers count what the list leaves out.
    expect(renderMarkdownReport(summary, [], { maxErrors: 10, maxFailures: 10 })).toContain(
      `… and ${errors.length - 10} more.`,
    );
    expect(renderTextTable(summary, [], { maxFailures: 5 })).toContain(
      `Failed rows (${failures.length}, first 5):`,
    );
    store.close();
  });

  it(`lists ${DEFAULT_MAX_LISTED} rows of each kind by default`, () => {
    const store = RunStore.open(':memory:');
    store.beginRun({ run: 'big', chain: 'c', variants: ['v'] });
    for (let line = 1; line <= DEFAULT_MAX_LISTED + 200; line++) store.putRow(record('v', line, 'fail'));
    const v = summarizeRun(store, 'big', { scorers: ['em'] }).variants[0]!;
    expect(v.fail).toBe(DEFAULT_MAX_LISTED + 200);
    expect(v.failures).toHaveLength(DEFAULT_MAX_LISTED);
    expect(v.failures.at(-1)?.line).toBe(DEFAULT_MAX_LISTED);
    store.close();
  });

  it('agrees with summarize() over the same rows: exact percentiles, means within rounding', () => {
    const store = RunStore.open(':memory:');
    const all = fill(store, 4_001, 7);
    const streamed = summarizeRun(store, 'big', { scorers: ['em', 'sim'], maxListed: 10_000 });
    const inMemory = summarize(all, { scorers: ['em', 'sim'], maxListed: 10_000 });
    const a = streamed.variants[0]!;
    const b = inMemory.variants[0]!;
    const ran = all.filter((r) => r.status !== 'error' && !r.cached).map((r) => r.latencyMs);
    expect(a.latencyMs).toEqual({ p50: percentile(ran, 50), p95: percentile(ran, 95), n: ran.length });
    expect(a.latencyMs).toEqual(b.latencyMs);
    const sims = all.filter((r) => r.status !== 'error').map((r) => r.scores['sim']!.score);
    const exact = scoreInterval(sims);
    for (const key of ['mean', 'low', 'high'] as const) {
      expect(a.scores['sim']![key]).toBeCloseTo(exact[key], 12);
    }
    expect(a.scores['sim']!.n).toBe(exact.n);
    const { scores: scoresA, ...restA } = a;
    const { scores: scoresB, ...restB } = b;
    expect(restA).toEqual(restB);
    expect(Object.keys(scoresA)).toEqual(Object.keys(scoresB));
    store.close();
  });

  it('keeps variants apart, in the run order, and has no latency for a variant with only errors', () => {
    const store = RunStore.open(':memory:');
    store.beginRun({ run: 'big', chain: 'c', variants: ['b', 'a'] });
    store.putRow(record('a', 1, 'pass', { latencyMs: 5 }));
    store.putRow(record('a', 2, 'pass', { latencyMs: 15 }));
    store.putRow(record('b', 1, 'error'));
    const summary = summarizeRun(store, 'big', { scorers: ['em'] });
    expect(summary.variants.map((v) => v.variant)).toEqual(['b', 'a']);
    expect(summary.variants[0]!.latencyMs.n).toBe(0);
    expect(summary.variants[0]!.latencyMs.p50).toBeNaN();
    expect(summary.variants[1]!.latencyMs).toEqual({ p50: 10, p95: 14.5, n: 2 });
    expect(summarizeRun(store, 'nope', { scorers: ['em'] }).variants).toEqual([]);
    store.close();
  });

  it('refuses a maxListed that is not an integer >= 0', () => {
    const store = RunStore.open(':memory:');
    expect(() => summarizeRun(store, 'big', { scorers: [], maxListed: -1 })).toThrow(InvalidOptionError);
    expect(() => summarize([], { scorers: [], maxListed: 1.5 })).toThrow(InvalidOptionError);
    expect(() => store.latencyPercentile('big', 'v', 101)).toThrow(InvalidOptionError);
    store.close();
  });
});

describe('summarize (records in memory)', () => {
  it('lists at most maxListed failed and error rows but counts every one', () => {
    const records = Array.from({ length: 40 }, (_, i) =>
      record('v', i + 1, i % 2 === 0 ? 'fail' : 'error'),
    ).reverse();
    const v = summarize(records, { scorers: ['em'], maxListed: 3 }).variants[0]!;
    expect([v.fail, v.error, v.rows]).toEqual([20, 20, 40]);
    expect(v.failures.map((f) => f.line)).toEqual([1, 3, 5]);
    expect(v.errors.map((e) => e.line)).toEqual([2, 4, 6]);
  });
});

describe('RunningStats', () => {
  it('gives the mean, stdev and CI of ci95() over the same values, within rounding', () => {
    const next = random(3);
    const values = Array.from({ length: 10_000 }, () => 1e6 + next());
    const stats = new RunningStats();
    for (const v of values) stats.add(v);
    const exact = ci95(values);
    expect(stats.n).toBe(values.length);
    expect(stats.ci95().mean).toBeCloseTo(exact.mean, 6);
    expect(Math.abs(stats.ci95().high - stats.ci95().low)).toBeCloseTo(exact.high - exact.low, 9);
    const one = new RunningStats();
    expect(one.ci95()).toEqual({ mean: Number.NaN, low: Number.NaN, high: Number.NaN, n: 0 });
    one.add(2);
    expect(one.ci95()).toEqual({ mean: 2, low: Number.NaN, high: Number.NaN, n: 1 });
  });
});
