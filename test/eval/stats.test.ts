import { describe, expect, it } from 'vitest';
import {
  ci95,
  mean,
  normalCdf,
  pairedComparison,
  percentile,
  signTest,
  stdev,
  tCritical95,
} from '../../src/eval/stats.ts';
import { InvalidOptionError } from '../../src/index.ts';

describe('mean, stdev, percentile', () => {
  it('computes known values', () => {
    expect(mean([1, 2, 3, 4])).toBe(2.5);
    expect(stdev([2, 4, 4, 4, 5, 5, 7, 9])).toBeCloseTo(2.13809, 5); // sample (n - 1)
    expect(mean([])).toBeNaN();
    expect(stdev([1])).toBeNaN();
    expect(percentile([3, 1, 2, 10], 50)).toBe(2.5);
    expect(
      percentile(
        Array.from({ length: 100 }, (_, i) => i + 1),
        95,
      ),
    ).toBeCloseTo(95.05, 10);
    expect(percentile([7], 95)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
    expect(() => percentile([1], 101)).toThrow(InvalidOptionError);
  });
});

describe('ci95', () => {
  it('uses the t table for small samples (scipy: [1.03676, 4.96324] for 1..5)', () => {
    const ci = ci95([1, 2, 3, 4, 5]);
    expect(ci.mean).toBe(3);
    expect(ci.n).toBe(5);
    expect(ci.low).toBeCloseTo(1.03676, 3);
    expect(ci.high).toBeCloseTo(4.96324, 3);
  });

  it('uses the normal value with a correction above 30 degrees of freedom', () => {
    expect(tCritical95(30)).toBe(2.042);
    expect(Math.abs(tCritical95(39) - 2.02269)).toBeLessThan(1e-3);
    expect(Math.abs(tCritical95(100) - 1.98397)).toBeLessThan(1e-3);
    expect(Math.abs(tCritical95(1e6) - 1.95996)).toBeLessThan(1e-4);
    const ci = ci95(Array.from({ length: 40 }, (_, i) => i)); // scipy: [15.76121, 23.23879]
    expect(ci.low).toBeCloseTo(15.7612, 2);
    expect(ci.high).toBeCloseTo(23.2388, 2);
  });

  it('has no bounds for fewer than two values, zero width for equal values', () => {
    expect(ci95([0.5])).toEqual({ mean: 0.5, low: Number.NaN, high: Number.NaN, n: 1 });
    expect(ci95([])).toMatchObject({ n: 0 });
    expect(ci95([1, 1, 1])).toEqual({ mean: 1, low: 1, high: 1, n: 3 });
  });
});

describe('pairedComparison', () => {
  it('8 wins, 0 losses: exact sign test p = 0.0078', () => {
    const result = pairedComparison([1, 1, 1, 1, 1, 1, 1, 1, 0.5], [0, 0, 0, 0, 0, 0, 0, 0, 0.5]);
    expect(result).toMatchObject({ wins: 8, losses: 0, ties: 1, n: 9, test: 'sign' });
    expect(result.pValue).toBeCloseTo(0.0078125, 10);
    expect(result.meanDiff).toBeCloseTo(8 / 9, 10);
  });

  it('matches scipy binomtest for other splits', () => {
    expect(signTest(7, 1)).toBeCloseTo(0.0703125, 10);
    expect(signTest(12, 3)).toBeCloseTo(0.03515625, 10);
    expect(signTest(5, 5)).toBe(1);
    expect(signTest(0, 0)).toBe(1);
  });

  it('treats float noise as a tie and drops non-finite pairs', () => {
    const result = pairedComparison([0.1 + 0.2, Number.NaN, 1], [0.3, 1, 0]);
    expect(result).toMatchObject({ wins: 1, losses: 0, ties: 1, n: 2 });
  });

  it('uses Wilcoxon signed-rank from 20 untied pairs (scipy on the rounded differences: p = 0.0080766)', () => {
    const a = [
      0.9, 0.8, 0.7, 0.6, 1.0, 0.5, 0.9, 0.8, 0.7, 0.95, 0.85, 0.75, 0.65, 0.55, 0.45, 0.9, 0.8, 0.7, 0.6,
      0.5, 0.4, 0.3,
    ];
    const b = [
      0.5, 0.6, 0.7, 0.65, 0.7, 0.55, 0.5, 0.6, 0.8, 0.9, 0.6, 0.5, 0.6, 0.5, 0.5, 0.7, 0.9, 0.6, 0.3, 0.5,
      0.2, 0.35,
    ];
    const result = pairedComparison(a, b);
    expect(result).toMatchObject({ wins: 14, losses: 6, ties: 2, n: 22, test: 'wilcoxon' });
    // Magnitudes equal up to float noise (0.9 - 0.5 vs 0.6 - 0.2) share a rank, as scipy does on rounded data.
    expect(result.pValue).toBeCloseTo(0.0080766, 6);
    // All 20 differences positive and distinct: z = 3.9013, p = 9.569e-5.
    const ones = pairedComparison(
      Array.from({ length: 20 }, (_, i) => i + 1),
      Array.from({ length: 20 }, () => 0),
    );
    expect(ones.test).toBe('wilcoxon');
    expect(ones.pValue / 9.56917e-5).toBeCloseTo(1, 3);
  });

  it('refuses arrays of different lengths', () => {
    expect(() => pairedComparison([1], [1, 2])).toThrow(InvalidOptionError);
  });

  it('has an accurate normal CDF', () => {
    expect(normalCdf(0)).toBeCloseTo(0.5, 7);
    expect(normalCdf(1.959964)).toBeCloseTo(0.975, 6);
    expect(normalCdf(-3)).toBeCloseTo(0.0013499, 6);
  });
});
