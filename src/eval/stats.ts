/**
 * Small, dependency-free statistics for eval reports: mean, standard deviation, 95% confidence intervals
 * (Student's t; Wilson for proportions; a seeded percentile bootstrap for means of scores in [0, 1]),
 * percentiles, and a paired comparison of two variants (exact sign test or Wilcoxon signed-rank).
 *
 * Reports use {@link scoreInterval} / {@link ScoreStats}: an interval of scores in [0, 1] never leaves
 * [0, 1] (a t-interval can: `0.105 [-0.047, 0.257]`).
 */
import { InvalidOptionError } from '../core/errors.ts';

/** A mean with its 95% confidence interval. */
export interface ConfidenceInterval {
  readonly mean: number;
  /** Lower bound; `NaN` with fewer than 2 values. */
  readonly low: number;
  /** Upper bound; `NaN` with fewer than 2 values. */
  readonly high: number;
  /** How many values. */
  readonly n: number;
}

/** The outcome of {@link pairedComparison}. */
export interface PairedComparison {
  /** Pairs where `a` is higher. */
  readonly wins: number;
  /** Pairs where `b` is higher. */
  readonly losses: number;
  /** Pairs where they are equal (within 1e-12). */
  readonly ties: number;
  /** Pairs compared (`wins + losses + ties`): pairs with a non-finite value on either side are dropped. */
  readonly n: number;
  /** Mean of `a - b` over the pairs; `NaN` when there is none. */
  readonly meanDiff: number;
  /** Two-sided p-value of "neither side tends to be higher"; 1 when every pair is a tie. */
  readonly pValue: number;
  /** `sign` (exact binomial) below {@link wilcoxonMinPairs} untied pairs, `wilcoxon` from there on. */
  readonly test: 'sign' | 'wilcoxon';
}

/** From this many untied pairs on, {@link pairedComparison} uses the Wilcoxon signed-rank test. */
export const wilcoxonMinPairs = 20;

/** Differences smaller than this are ties (scores such as `0.1 + 0.2` and `0.3` are equal). */
const tieEpsilon = 1e-12;

/** The arithmetic mean; `NaN` for no values. */
export function mean(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** The sample standard deviation (divides by `n - 1`); `NaN` for fewer than 2 values. */
export function stdev(values: readonly number[]): number {
  const n = values.length;
  if (n < 2) return Number.NaN;
  const m = mean(values);
  let squares = 0;
  for (const v of values) squares += (v - m) ** 2;
  return Math.sqrt(squares / (n - 1));
}

// Two-sided 95% critical values of Student's t for 1..30 degrees of freedom.
const t975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131,
  2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/**
 * The two-sided 95% critical value of Student's t with `df` degrees of freedom: a table up to 30, then the
 * normal value 1.96 with the Cornish–Fisher correction (within 0.001 of the exact value, and 1.96 in the limit).
 */
export function tCritical95(df: number): number {
  if (!(Number.isInteger(df) && df >= 1)) throw new InvalidOptionError('df', df, 'an integer >= 1');
  const tabled = t975[df - 1];
  if (tabled !== undefined) return tabled;
  const z = 1.959963984540054;
  return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2);
}

/**
 * The mean of `values` with its 95% confidence interval, `mean ± t(n-1) · s / √n` (Student's t; see
 * {@link tCritical95}). With one value the bounds are `NaN`; with none everything but `n` is.
 *
 * @example
 * ```ts
 * ci95([1, 2, 3, 4, 5]); // { mean: 3, low: 1.037, high: 4.963, n: 5 } (rounded)
 * ```
 */
export function ci95(values: readonly number[]): ConfidenceInterval {
  const n = values.length;
  const m = mean(values);
  if (n < 2) return { mean: m, low: Number.NaN, high: Number.NaN, n };
  const half = (tCritical95(n - 1) * stdev(values)) / Math.sqrt(n);
  return { mean: m, low: m - half, high: m + half, n };
}

/**
 * Mean and sample variance of a stream of values in constant memory (Welford's update), for summaries of
 * runs too large to keep every score: {@link RunningStats.ci95} agrees with {@link ci95} over the same
 * values to within floating-point rounding (about 1e-12 relative).
 *
 * @example
 * ```ts
 * const stats = new RunningStats();
 * for (const v of [1, 2, 3, 4, 5]) stats.add(v);
 * stats.ci95(); // { mean: 3, low: 1.037, high: 4.963, n: 5 } (rounded)
 * ```
 */
export class RunningStats {
  #n = 0;
  #mean = 0;
  #m2 = 0;

  /** Adds one value; non-finite values are the caller's to leave out. */
  add(value: number): void {
    this.#n++;
    const delta = value - this.#mean;
    this.#mean += delta / this.#n;
    this.#m2 += delta * (value - this.#mean);
  }

  /** How many values were added. */
  get n(): number {
    return this.#n;
  }

  /** The mean; `NaN` for no values. */
  get mean(): number {
    return this.#n === 0 ? Number.NaN : this.#mean;
  }

  /** The sample standard deviation (divides by `n - 1`); `NaN` for fewer than 2 values. */
  get stdev(): number {
    return this.#n < 2 ? Number.NaN : Math.sqrt(this.#m2 / (this.#n - 1));
  }

  /** The mean with its 95% confidence interval, as {@link ci95} computes it. */
  ci95(): ConfidenceInterval {
    const n = this.#n;
    const m = this.mean;
    if (n < 2) return { mean: m, low: Number.NaN, high: Number.NaN, n };
    const half = (tCritical95(n - 1) * this.stdev) / Math.sqrt(n);
    return { mean: m, low: m - half, high: m + half, n };
  }
}

/** Two-sided 95% normal quantile. */
const z95 = 1.959963984540054;

/**
 * The Wilson score interval of a proportion, `successes / n`, at 95%: always within [0, 1], and sensible at
 * 0 and n successes (where the normal interval collapses to a point). `NaN` bounds and mean for `n = 0`.
 *
 * @example
 * ```ts
 * wilsonInterval(8, 10); // { mean: 0.8, low: 0.4902, high: 0.9433, n: 10 } (rounded)
 * ```
 * @throws {InvalidOptionError} when `n` is not an integer >= 0 or `successes` not an integer within [0, n].
 */
export function wilsonInterval(successes: number, n: number): ConfidenceInterval {
  if (!(Number.isInteger(n) && n >= 0)) throw new InvalidOptionError('n', n, 'an integer >= 0');
  if (!(Number.isInteger(successes) && successes >= 0 && successes <= n)) {
    throw new InvalidOptionError('successes', successes, `an integer within [0, ${n}]`);
  }
  if (n === 0) return { mean: Number.NaN, low: Number.NaN, high: Number.NaN, n };
  const p = successes / n;
  const z2 = z95 * z95;
  const denominator = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denominator;
  const half = (z95 * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denominator;
  // Exact at the ends: 0 successes has low 0, n successes high 1 (rounding could miss by 1e-17).
  const low = successes === 0 ? 0 : Math.max(0, centre - half);
  const high = successes === n ? 1 : Math.min(1, centre + half);
  return { mean: p, low, high, n };
}

/** Resamples of {@link scoreInterval}'s bootstrap. */
export const bootstrapResamples = 2000;

/** Up to this many values, {@link scoreInterval} bootstraps; above, the normal interval clamped to [0, 1]. */
export const bootstrapMaxN = 2000;

/** The bootstrap's fixed seed: the same scores give the same interval on every run and machine. */
export const bootstrapSeed = 0x5eed;

/**
 * Accumulates scores one at a time and gives the 95% interval of their mean that reports show
 * ({@link ScoreStats.ci95}), in memory bounded by {@link bootstrapMaxN} distinct values:
 *
 * - every score 0 or 1 (exact match, regex, ...): the mean is a proportion, the interval is Wilson's
 *   ({@link wilsonInterval});
 * - scores within [0, 1], at most {@link bootstrapMaxN} of them: the percentile bootstrap of the mean,
 *   {@link bootstrapResamples} resamples drawn by a PRNG with the fixed seed {@link bootstrapSeed}
 *   (deterministic; its bounds are means of resampled scores, so they stay within [min, max] ⊆ [0, 1]);
 * - scores within [0, 1], more of them: `mean ± 1.96 · s / √n` clamped to [0, 1] (at that size the mean's
 *   distribution is normal to well within the interval's precision, and only the clamp matters);
 * - any score outside [0, 1] (a custom scale): Student's t interval, as {@link ci95}.
 *
 * Fewer than 2 values give `NaN` bounds, except that proportions have Wilson's from 1 value on.
 */
export class ScoreStats {
  readonly #running = new RunningStats();
  #ones = 0;
  #binary = true;
  #unit = true;
  /** Counts of distinct values while `n <= bootstrapMaxN`; dropped (undefined) above. */
  #counts: Map<number, number> | undefined = new Map();

  /** Adds one finite value. */
  add(value: number): void {
    this.#running.add(value);
    if (value === 1) this.#ones++;
    else if (value !== 0) this.#binary = false;
    if (!(value >= 0 && value <= 1)) this.#unit = false;
    if (this.#counts !== undefined) {
      if (this.#running.n > bootstrapMaxN) this.#counts = undefined;
      else this.#counts.set(value, (this.#counts.get(value) ?? 0) + 1);
    }
  }

  /** How many values were added. */
  get n(): number {
    return this.#running.n;
  }

  /** The mean with its 95% interval (see the class). */
  ci95(): ConfidenceInterval {
    const n = this.#running.n;
    const m = this.#running.mean;
    if (n > 0 && this.#binary) return wilsonInterval(this.#ones, n);
    if (n < 2) return { mean: m, low: Number.NaN, high: Number.NaN, n };
    if (!this.#unit) return this.#running.ci95();
    if (this.#counts !== undefined) return { ...bootstrap(this.#counts, n), mean: m, n };
    const half = (z95 * this.#running.stdev) / Math.sqrt(n);
    return { mean: m, low: Math.max(0, m - half), high: Math.min(1, m + half), n };
  }
}

/** The interval {@link ScoreStats} gives for `values` (a convenience over arrays). */
export function scoreInterval(values: readonly number[]): ConfidenceInterval {
  const stats = new ScoreStats();
  for (const v of values) stats.add(v);
  return stats.ci95();
}

/** Percentile bootstrap (2.5 %, 97.5 %) of the mean of the multiset `counts` of `n` values. */
function bootstrap(counts: ReadonlyMap<number, number>, n: number): { low: number; high: number } {
  // The n values laid out in ascending order: a draw is one uniform index into them.
  const values = new Float64Array(n);
  let at = 0;
  for (const v of [...counts.keys()].sort((a, b) => a - b)) {
    values.fill(v, at, at + (counts.get(v) ?? 0));
    at += counts.get(v) ?? 0;
  }
  const random = mulberry32(bootstrapSeed);
  const means: number[] = [];
  for (let b = 0; b < bootstrapResamples; b++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += values[Math.floor(random() * n)] as number;
    means.push(sum / n);
  }
  return { low: Math.max(0, percentile(means, 2.5)), high: Math.min(1, percentile(means, 97.5)) };
}

/** A small seeded PRNG (mulberry32): uniform in [0, 1). */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The `p`-th percentile (0–100) by linear interpolation between the closest ranks (numpy's default), e.g.
 * `percentile(latencies, 95)`. `NaN` for no values.
 * @throws {InvalidOptionError} when `p` is not within [0, 100].
 */
export function percentile(values: readonly number[], p: number): number {
  if (!(Number.isFinite(p) && p >= 0 && p <= 100)) {
    throw new InvalidOptionError('p', p, 'a number within [0, 100]');
  }
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((x, y) => x - y);
  const rank = (p / 100) * (sorted.length - 1);
  const lower = Math.floor(rank);
  const low = sorted[lower] as number;
  const high = sorted[Math.min(lower + 1, sorted.length - 1)] as number;
  return low + (high - low) * (rank - lower);
}

/**
 * Compares two paired samples, `a[i]` with `b[i]` (e.g. one scorer's scores of two variants on the rows both
 * ran): counts wins, losses and ties, and tests whether either side tends to score higher.
 *
 * - With fewer than {@link wilcoxonMinPairs} (20) untied pairs: the **exact two-sided sign test** (binomial,
 *   p = ½), which only uses the direction of each difference. 8 wins and 0 losses give p = 0.0078.
 * - From 20 untied pairs on: the **Wilcoxon signed-rank test** with the normal approximation (average ranks
 *   for tied magnitudes, with the variance correction for them, and a continuity correction), which also uses
 *   the size of the differences.
 *
 * Ties (|a - b| < 1e-12) are dropped by both tests, as usual; pairs with a non-finite value are ignored.
 * @throws {InvalidOptionError} when the arrays differ in length.
 */
export function pairedComparison(a: readonly number[], b: readonly number[]): PairedComparison {
  if (a.length !== b.length) {
    throw new InvalidOptionError('b', b, `an array as long as a (${a.length}), paired by index`);
  }
  const diffs: number[] = [];
  let sum = 0;
  let n = 0;
  let wins = 0;
  let losses = 0;
  let ties = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    const d = x - y;
    n++;
    sum += d;
    if (Math.abs(d) < tieEpsilon) ties++;
    else {
      if (d > 0) wins++;
      else losses++;
      diffs.push(d);
    }
  }
  const meanDiff = n === 0 ? Number.NaN : sum / n;
  if (diffs.length < wilcoxonMinPairs) {
    return { wins, losses, ties, n, meanDiff, pValue: signTest(wins, losses), test: 'sign' };
  }
  return { wins, losses, ties, n, meanDiff, pValue: wilcoxonSignedRank(diffs), test: 'wilcoxon' };
}

/** Exact two-sided sign test: P(X ≤ min(w, l)) · 2 for X ~ Binomial(w + l, ½), capped at 1. */
export function signTest(wins: number, losses: number): number {
  const n = wins + losses;
  if (n === 0) return 1;
  const k = Math.min(wins, losses);
  // Sum the binomial probabilities in log space so large n does not overflow.
  const logHalfN = n * Math.log(0.5);
  let tail = 0;
  let logChoose = 0; // log C(n, 0)
  for (let i = 0; i <= k; i++) {
    if (i > 0) logChoose += Math.log((n - i + 1) / i);
    tail += Math.exp(logChoose + logHalfN);
  }
  return Math.min(1, 2 * tail);
}

/** Two-sided Wilcoxon signed-rank p-value of non-zero differences (normal approximation). */
function wilcoxonSignedRank(diffs: readonly number[]): number {
  const n = diffs.length;
  const order = diffs.map((d) => ({ d, abs: Math.abs(d) })).sort((x, y) => x.abs - y.abs);
  let wPlus = 0;
  let tieTerm = 0;
  for (let i = 0; i < n;) {
    let j = i;
    while (
      j + 1 < n &&
      (order[j + 1] as { abs: number }).abs - (order[i] as { abs: number }).abs < tieEpsilon
    )
      j++;
    const rank = (i + j + 2) / 2; // average of the 1-based ranks i+1..j+1
    const t = j - i + 1;
    tieTerm += t ** 3 - t;
    for (let k = i; k <= j; k++) if ((order[k] as { d: number }).d > 0) wPlus += rank;
    i = j + 1;
  }
  const expected = (n * (n + 1)) / 4;
  const variance = (n * (n + 1) * (2 * n + 1)) / 24 - tieTerm / 48;
  if (variance <= 0) return 1;
  const z = Math.max(0, Math.abs(wPlus - expected) - 0.5) / Math.sqrt(variance);
  return Math.min(1, erfc(z / Math.SQRT2));
}

/** The complementary error function (Numerical Recipes' Chebyshev fit; relative error < 1.2e-7). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** The standard normal cumulative distribution function. */
export function normalCdf(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}
