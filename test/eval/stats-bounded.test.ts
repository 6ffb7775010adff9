/**
 * Intervals of scores in [0, 1] stay inside [0, 1]: Wilson for proportions (known values), a seeded
 * percentile bootstrap for other means (deterministic, close to the normal interval where that is right,
 * never below 0 where the t-interval is), and the clamped normal interval for large samples.
 */
import { describe, expect, it } from 'vitest';
import { bootstrapMaxN, ci95, scoreInterval, ScoreStats, wilsonInterval } from '../../src/eval/stats.ts';
import { InvalidOptionError } from '../../src/index.ts';

describe('wilsonInterval', () => {
  it('gives the known Wilson bounds (R: prop.test(correct = FALSE) / statsmodels proportion_confint(method="wilson"))', () => {
    const cases: [number, number, number, number][] = [
      [8, 10, 0.49016, 0.94332],
      [1, 10, 0.01788, 0.40415],
      [8, 9, 0.565, 0.98011],
      [50, 100, 0.40383, 0.59617],
    ];
    for (const [k, n, low, high] of cases) {
      const ci = wilsonInterval(k, n);
      expect(ci.mean).toBeCloseTo(k / n, 12);
      expect(ci.low).toBeCloseTo(low, 4);
      expect(ci.high).toBeCloseTo(high, 4);
    }
  });

  it('is exact at the ends and empty for no trials', () => {
    expect(wilsonInterval(0, 10)).toMatchObject({ mean: 0, low: 0 });
    expect(wilsonInterval(0, 10).high).toBeCloseTo(0.27753, 4);
    expect(wilsonInterval(10, 10)).toMatchObject({ mean: 1, high: 1 });
    expect(wilsonInterval(10, 10).low).toBeCloseTo(0.72247, 4);
    expect(wilsonInterval(0, 0)).toMatchObject({ n: 0, mean: Number.NaN, low: Number.NaN });
    expect(() => wilsonInterval(3, 2)).toThrow(InvalidOptionError);
    expect(() => wilsonInterval(1.5, 4)).toThrow(InvalidOptionError);
  });
});

describe('scoreInterval', () => {
  it("the issue's case: a low mean of [0, 1] scores, whose t-interval goes below 0, stays within [0, 1]", () => {
    // 2 of 19 scores are 1, the rest 0 except one 0.1: mean 0.1105, t-interval [-0.045, 0.266].
    const values = [1, 1, 0.1, ...Array.from({ length: 16 }, () => 0)];
    expect(ci95(values).low).toBeLessThan(0);
    const ci = scoreInterval(values);
    expect(ci.mean).toBeCloseTo(2.1 / 19, 12);
    expect(ci.low).toBeGreaterThanOrEqual(0);
    expect(ci.high).toBeLessThanOrEqual(1);
    expect(ci.low).toBeLessThanOrEqual(ci.mean);
    expect(ci.high).toBeGreaterThanOrEqual(ci.mean);
  });

  it('uses Wilson for 0/1 scores (a pass rate is a proportion)', () => {
    const values = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0];
    expect(scoreInterval(values)).toEqual(wilsonInterval(8, 10));
    expect(scoreInterval([1, 1, 1])).toMatchObject({ mean: 1, high: 1 });
    expect(scoreInterval([1, 1, 1]).low).toBeCloseTo(0.43849, 4);
  });

  it('bootstraps other [0, 1] scores deterministically, close to the normal interval on a symmetric sample', () => {
    // 400 scores, half 0.25 and half 0.75: mean 0.5, sd 0.2503, normal 95% half-width 1.96 · 0.2503 / 20 = 0.02453.
    const values = Array.from({ length: 400 }, (_, i) => (i % 2 === 0 ? 0.25 : 0.75));
    const ci = scoreInterval(values);
    expect(ci.mean).toBe(0.5);
    expect(ci.low).toBeCloseTo(0.5 - 0.02453, 2);
    expect(ci.high).toBeCloseTo(0.5 + 0.02453, 2);
    expect(Math.abs(ci.low - (0.5 - 0.02453))).toBeLessThan(0.004);
    expect(Math.abs(ci.high - (0.5 + 0.02453))).toBeLessThan(0.004);
    expect(scoreInterval(values)).toEqual(ci); // the fixed seed: the same interval every time
    expect(scoreInterval([0.5, 0.5, 0.5])).toEqual({ mean: 0.5, low: 0.5, high: 0.5, n: 3 });
  });

  it('clamps the normal interval to [0, 1] above the bootstrap size, and keeps t for other scales', () => {
    const many = [...Array.from({ length: bootstrapMaxN + 1 }, () => 0), 0.5];
    const ci = scoreInterval(many);
    expect(ci.n).toBe(bootstrapMaxN + 2);
    expect(ci.low).toBe(0);
    expect(ci.high).toBeGreaterThan(ci.mean);
    expect(ci.high).toBeLessThan(0.001);
    expect(scoreInterval([1, 2, 3, 4, 5])).toEqual(ci95([1, 2, 3, 4, 5]));
    expect(scoreInterval([0.3])).toMatchObject({ mean: 0.3, low: Number.NaN, high: Number.NaN, n: 1 });
  });

  it('ScoreStats streams the same interval as scoreInterval over an array', () => {
    const values = Array.from({ length: 300 }, (_, i) => ((i * 37) % 101) / 100);
    const stats = new ScoreStats();
    for (const v of values) stats.add(v);
    expect(stats.n).toBe(300);
    expect(stats.ci95()).toEqual(scoreInterval(values));
    const { low, high, mean } = stats.ci95();
    expect(low).toBeGreaterThanOrEqual(0);
    expect(high).toBeLessThanOrEqual(1);
    expect(low).toBeLessThan(mean);
    expect(high).toBeGreaterThan(mean);
  });
});
