/**
 * Built-in scorers for eval batches: exact match, substring, regex, schema validity, numeric tolerance and
 * embedding-free string similarity, plus {@link scorer} for custom ones. Each returns a {@link Scorer} whose
 * scores are in [0, 1].
 *
 * A scorer throws (making the row an `error`, never a 0) only when the row itself cannot be scored, e.g. it
 * has no expected value to compare with: a {@link ScorerError}. A bad output is a low score, not a throw.
 */
import type { z } from 'zod';
import { InvalidOptionError, SymphonizerError, describe, errorMessage } from '../core/errors.ts';
import { zodIssues } from '../providers/structured-output.ts';
import type { ScoreResult, Scorer, ScorerContext } from './types.ts';
import type { EvalErrorCode } from './errors.ts';

/** Options every built-in scorer takes. */
export interface ScorerOptions {
  /** The scorer's name: unique within a batch, the column in reports. @default the factory's name */
  readonly name?: string | undefined;
  /** Which node's output to score. @default the chain's last node */
  readonly node?: string | undefined;
  /**
   * A field inside the node's output to score instead of the whole output: a path such as `'answer'`,
   * `'a.b[0]'` (dots between keys, `[n]` for array indexes) or the same as a list of keys and indexes,
   * `['a', 'b', 0]` (for keys that hold dots or brackets). A string output is parsed as JSON first (a
   * ```json fence is stripped). An output without that field scores 0 with the reason `no value at <path>`.
   * @default the whole output
   */
  readonly path?: string | readonly (string | number)[] | undefined;
  /** A row passes when the score is at least this (in [0, 1]). @default 1 (0.8 for stringSimilarity) */
  readonly threshold?: number | undefined;
}

/** A row could not be scored (e.g. it has no expected value); the batch runner records the row as an error. */
export class ScorerError extends SymphonizerError<EvalErrorCode> {
  /** The scorer's name. */
  readonly scorer: string;

  constructor(scorer: string, message: string) {
    super('scorer_error', `Scorer "${scorer}": ${message}`);
    this.scorer = scorer;
  }
}

/** Options of {@link exactMatch}. */
export interface ExactMatchOptions extends ScorerOptions {
  /** Compare strings case-sensitively. @default true */
  readonly caseSensitive?: boolean | undefined;
  /** Trim strings before comparing. @default true */
  readonly trim?: boolean | undefined;
}

/**
 * 1 when the output equals the row's expected value, else 0. Strings are compared after `trim` and
 * `caseSensitive` (also inside objects and arrays); objects and arrays deeply (key order does not matter, a
 * key whose value is `undefined` counts as absent); a string and a number or boolean by their text (`"42"`
 * matches `42`, as CSV expected values are strings).
 * @throws {ScorerError} (when scoring) for a row with no expected value.
 */
export function exactMatch(options: ExactMatchOptions = {}): Scorer {
  const base = checkBase('exactMatch', options);
  const caseSensitive = checkBoolean('caseSensitive', options.caseSensitive, true);
  const trim = checkBoolean('trim', options.trim, true);
  const normalize = (s: string): string => {
    const t = trim ? s.trim() : s;
    return caseSensitive ? t : t.toLowerCase();
  };
  return withPath(base, {
    ...base,
    score: ({ output, expected }) => {
      requireExpected(base.name, expected);
      return deepEqual(output, expected, normalize)
        ? { score: 1 }
        : { score: 0, reason: `expected ${preview(expected)}, got ${preview(output)}` };
    },
  });
}

/** Options of {@link contains}. */
export interface ContainsOptions extends ScorerOptions {
  /** @default true */
  readonly caseSensitive?: boolean | undefined;
  /** The substrings to look for. @default the row's expected value (a string or a list of strings) */
  readonly values?: string | readonly string[] | undefined;
}

/**
 * The share of the expected substrings (the row's expected value, a string or a list of strings, or
 * `values`) found in the output's text; with the default threshold 1, a row passes when all are there.
 * A non-string output is searched as JSON.
 * @throws {ScorerError} (when scoring) when there is nothing to look for, or expected is not text.
 */
export function contains(options: ContainsOptions = {}): Scorer {
  const base = checkBase('contains', options);
  const caseSensitive = checkBoolean('caseSensitive', options.caseSensitive, true);
  const fixed = options.values === undefined ? undefined : checkSubstrings('values', options.values);
  return withPath(base, {
    ...base,
    score: ({ output, expected }) => {
      let wanted = fixed;
      if (wanted === undefined) {
        requireExpected(base.name, expected);
        const list = toSubstrings(typeof expected === 'number' ? String(expected) : expected);
        if (list === undefined) {
          throw new ScorerError(
            base.name,
            `expected must be a non-empty string or list of non-empty strings, got ${describe(expected)}.`,
          );
        }
        wanted = list;
      }
      const fold = (s: string): string => (caseSensitive ? s : s.toLowerCase());
      const text = fold(textOf(output));
      const missing = wanted.filter((w) => !text.includes(fold(w)));
      const score = (wanted.length - missing.length) / wanted.length;
      return missing.length === 0
        ? { score }
        : { score, reason: `missing ${missing.map((m) => preview(m)).join(', ')}` };
    },
  });
}

/**
 * 1 when the output's text matches `pattern`, else 0. A string pattern is compiled with `flags`; the `g` and
 * `y` flags are dropped (they would make the test stateful).
 * @throws {InvalidOptionError} for an invalid pattern or flags.
 */
export function regex(
  pattern: RegExp | string,
  options: ScorerOptions & { readonly flags?: string } = {},
): Scorer {
  const base = checkBase('regex', options);
  let re: RegExp;
  try {
    if (typeof pattern !== 'string' && !(pattern instanceof RegExp)) throw new TypeError('not a pattern');
    const source = typeof pattern === 'string' ? pattern : pattern.source;
    const flags = (options.flags ?? (typeof pattern === 'string' ? '' : pattern.flags)).replace(/[gy]/g, '');
    re = new RegExp(source, flags);
  } catch {
    throw new InvalidOptionError('pattern', pattern, 'a RegExp or a valid regular expression source');
  }
  return withPath(base, {
    ...base,
    score: ({ output }) =>
      re.test(textOf(output)) ? { score: 1 } : { score: 0, reason: `no match for ${String(re)}` },
  });
}

/**
 * 1 when the output is valid against a zod schema, else 0 with the first issues as the reason. A string
 * output that fails is parsed as JSON (a ```json fence is stripped) and validated again, so text nodes that
 * answer JSON can be checked too.
 * @throws {InvalidOptionError} when `schema` is not a zod schema.
 */
export function schemaValid(schema: z.ZodType, options: ScorerOptions = {}): Scorer {
  const base = checkBase('schemaValid', options);
  if (typeof (schema as Partial<z.ZodType> | undefined)?.safeParseAsync !== 'function') {
    throw new InvalidOptionError('schema', schema, 'a zod schema');
  }
  return withPath(base, {
    ...base,
    score: async ({ output }) => {
      let result = await schema.safeParseAsync(output);
      if (!result.success && typeof output === 'string') {
        const json = parseJson(output);
        if (json.ok) result = await schema.safeParseAsync(json.value);
        else if (json.reason !== undefined) return { score: 0, reason: json.reason };
      }
      if (result.success) return { score: 1 };
      const reason = zodIssues(result.error, 3)
        .map((i) => `${i.path === '' ? '(root)' : i.path}: ${i.message}`)
        .join('; ');
      return { score: 0, reason };
    },
  });
}

/** Options of {@link numericTolerance}. */
export interface NumericToleranceOptions extends ScorerOptions {
  /** Largest absolute difference that passes. @default 0 */
  readonly abs?: number | undefined;
  /** Largest difference relative to |expected| that passes (0.01 = 1%). @default 0 */
  readonly rel?: number | undefined;
}

/**
 * 1 when the output is within `max(abs, rel · |expected|)` of the expected number (with floating-point
 * rounding forgiven), else 0. Numbers or numeric strings on either side; a non-numeric output scores 0.
 * @throws {InvalidOptionError} for a negative or non-finite `abs` or `rel`.
 * @throws {ScorerError} (when scoring) when the expected value is missing or not numeric.
 */
export function numericTolerance(options: NumericToleranceOptions = {}): Scorer {
  const base = checkBase('numericTolerance', options);
  const abs = checkNonNegative('abs', options.abs);
  const rel = checkNonNegative('rel', options.rel);
  return withPath(base, {
    ...base,
    score: ({ output, expected }) => {
      requireExpected(base.name, expected);
      const e = toNumber(expected);
      if (e === undefined)
        throw new ScorerError(base.name, `expected is not a number: ${preview(expected)}.`);
      const o = toNumber(output);
      if (o === undefined) return { score: 0, reason: `output is not a number: ${preview(output)}` };
      const diff = Math.abs(o - e);
      const tolerance = Math.max(abs, rel * Math.abs(e));
      const rounding = 4 * Number.EPSILON * Math.max(1, Math.abs(e), Math.abs(o));
      return diff <= tolerance + rounding
        ? { score: 1 }
        : { score: 0, reason: `|${o} - ${e}| = ${round(diff)} > ${round(tolerance)}` };
    },
  });
}

/** Options of {@link stringSimilarity}. */
export interface StringSimilarityOptions extends ScorerOptions {
  /**
   * `levenshtein`: 1 − edit distance / length of the longer text (characters); `token-f1`: F1 of the word
   * tokens in common (SQuAD-style, a multiset). @default 'levenshtein'
   */
  readonly metric?: 'levenshtein' | 'token-f1' | undefined;
  /** @default false */
  readonly caseSensitive?: boolean | undefined;
}

/**
 * How similar the output's text is to the expected text, in [0, 1], without embeddings (see
 * {@link StringSimilarityOptions.metric}). Both texts are trimmed; two empty texts score 1. Default threshold 0.8.
 * Levenshtein takes time proportional to the product of the lengths: keep it for short answers.
 * @throws {ScorerError} (when scoring) for a row with no expected value.
 */
export function stringSimilarity(options: StringSimilarityOptions = {}): Scorer {
  const base = checkBase('stringSimilarity', { ...options, threshold: options.threshold ?? 0.8 });
  const metric: string = options.metric ?? 'levenshtein';
  if (metric !== 'levenshtein' && metric !== 'token-f1') {
    throw new InvalidOptionError('metric', metric, "'levenshtein' or 'token-f1'");
  }
  const caseSensitive = checkBoolean('caseSensitive', options.caseSensitive, false);
  return withPath(base, {
    ...base,
    score: ({ output, expected }) => {
      requireExpected(base.name, expected);
      const fold = (s: string): string => (caseSensitive ? s.trim() : s.trim().toLowerCase());
      const a = fold(textOf(output));
      const b = fold(textOf(expected));
      const score = metric === 'levenshtein' ? levenshteinSimilarity(a, b) : tokenF1(a, b);
      return { score, reason: `${metric} similarity ${round(score)}` };
    },
  });
}

/** What a custom scoring function may return: a boolean (1 or 0), a number in [0, 1], or a {@link ScoreResult}. */
export type ScoreValue = boolean | number | ScoreResult;

/**
 * A custom scorer from a typed function. Returning `true`/`false` gives 1/0; a number or `{ score, reason }`
 * must be within [0, 1] (a score outside it throws a {@link ScorerError}, so the row is an error).
 *
 * @example
 * ```ts
 * const short = scorer<{ topic: string }, { draft: string }>('short', ({ outputs }) => outputs.draft.length < 500);
 * ```
 * @throws {InvalidOptionError} for an empty name, a bad threshold or node, or a `fn` that is not a function.
 */
export function scorer<I = unknown, O = unknown>(
  name: string,
  fn: (context: ScorerContext<I, O>) => ScoreValue | Promise<ScoreValue>,
  options: Omit<ScorerOptions, 'name'> = {},
): Scorer<I, O> {
  const base = checkBase(name, { ...options, name });
  if (typeof fn !== 'function') throw new InvalidOptionError('fn', fn, 'a scoring function');
  return withPath(base, {
    ...base,
    score: async (context) => toScoreResult(base.name, await fn(context)),
  });
}

// ---------------------------------------------------------------------------------------------------------
// Metrics

/**
 * Levenshtein edit distance (insertions, deletions, substitutions) between two strings, by code point.
 *
 * @example
 * ```ts
 * levenshtein('kitten', 'sitting'); // 3
 * ```
 */
export function levenshtein(a: string, b: string): number {
  let s = Array.from(a);
  let t = Array.from(b);
  if (s.length < t.length) [s, t] = [t, s];
  if (t.length === 0) return s.length;
  let previous = Array.from({ length: t.length + 1 }, (_, j) => j);
  let current = new Array<number>(t.length + 1).fill(0);
  for (let i = 1; i <= s.length; i++) {
    current[0] = i;
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      current[j] = Math.min(
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
        (previous[j - 1] as number) + cost,
      );
    }
    [previous, current] = [current, previous];
  }
  return previous[t.length] as number;
}

/** `1 - levenshtein(a, b) / max(length)`: 1 for equal strings (two empty ones included), 0 for nothing in common. */
export function levenshteinSimilarity(a: string, b: string): number {
  const longest = Math.max(Array.from(a).length, Array.from(b).length);
  return longest === 0 ? 1 : 1 - levenshtein(a, b) / longest;
}

/**
 * Token F1: words (letters and digits, lowercased) shared by both texts, counted as a multiset; 1 when both
 * have no words, 0 when one has none.
 *
 * @example
 * ```ts
 * tokenF1('the cat sat', 'the cat'); // 0.8 (precision 2/3, recall 1)
 * ```
 */
export function tokenF1(a: string, b: string): number {
  const tokens = (s: string): string[] => s.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  const x = tokens(a);
  const y = tokens(b);
  if (x.length === 0 && y.length === 0) return 1;
  if (x.length === 0 || y.length === 0) return 0;
  const counts = new Map<string, number>();
  for (const token of y) counts.set(token, (counts.get(token) ?? 0) + 1);
  let common = 0;
  for (const token of x) {
    const left = counts.get(token) ?? 0;
    if (left > 0) {
      common++;
      counts.set(token, left - 1);
    }
  }
  if (common === 0) return 0;
  const precision = common / x.length;
  const recall = common / y.length;
  return (2 * precision * recall) / (precision + recall);
}

// ---------------------------------------------------------------------------------------------------------
// Helpers

interface Base {
  readonly name: string;
  readonly node?: string | undefined;
  readonly threshold?: number | undefined;
  /** The parsed {@link ScorerOptions.path}. */
  readonly path?: readonly (string | number)[] | undefined;
}

/** The scorer with its `path` applied: it scores the field at the path of the output (see ScorerOptions.path). */
function withPath<I, O>(base: Base, built: Scorer<I, O>): Scorer<I, O> {
  const path = base.path;
  if (path === undefined) return built;
  return {
    name: built.name,
    node: built.node,
    threshold: built.threshold,
    score: (context) => {
      const found = valueAt(context.output, path);
      if (!found.ok) return { score: 0, reason: `no value at ${formatPath(path)} of the output` };
      return built.score({ ...context, output: found.value });
    },
  };
}

/** The value at `path` inside `value` (a JSON string is parsed first). */
function valueAt(
  value: unknown,
  path: readonly (string | number)[],
): { ok: true; value: unknown } | { ok: false } {
  let current = value;
  if (typeof current === 'string') {
    const json = parseJson(current);
    if (!json.ok) return { ok: false };
    current = json.value;
  }
  for (const key of path) {
    if (typeof key === 'number') {
      if (!Array.isArray(current) || key >= current.length) return { ok: false };
      current = current[key] as unknown;
    } else {
      if (typeof current !== 'object' || current === null || !Object.hasOwn(current, key))
        return { ok: false };
      current = (current as Record<string, unknown>)[key];
    }
  }
  return current === undefined ? { ok: false } : { ok: true, value: current };
}

/** `a.b[0]` as `['a', 'b', 0]`; undefined for a malformed path. */
function parsePath(text: string): (string | number)[] | undefined {
  if (!/^[^.[\]]+(?:\.[^.[\]]+|\[\d+\])*$/.test(text)) return undefined;
  const keys: (string | number)[] = [];
  for (const m of text.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) {
    keys.push(m[2] === undefined ? (m[1] as string) : Number(m[2]));
  }
  return keys;
}

function formatPath(path: readonly (string | number)[]): string {
  return path.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
}

function checkPath(value: unknown): readonly (string | number)[] | undefined {
  if (value === undefined) return undefined;
  const keys =
    typeof value === 'string'
      ? parsePath(value)
      : Array.isArray(value) &&
          value.length > 0 &&
          value.every(
            (k) => (typeof k === 'string' && k !== '') || (Number.isInteger(k) && (k as number) >= 0),
          )
        ? (value as (string | number)[])
        : undefined;
  if (keys === undefined || keys.length === 0) {
    throw new InvalidOptionError(
      'path',
      value,
      "a field path such as 'answer' or 'a.b[0]', or a list of keys and indexes such as ['a', 'b', 0]",
    );
  }
  return keys;
}

function checkBase(defaultName: string, options: ScorerOptions): Base {
  const name = options.name ?? defaultName;
  if (typeof name !== 'string' || name.trim() === '') {
    throw new InvalidOptionError('name', name, 'a non-empty string');
  }
  const { node, threshold } = options;
  if (node !== undefined && (typeof node !== 'string' || node === '')) {
    throw new InvalidOptionError('node', node, 'a node name');
  }
  if (threshold !== undefined && !(typeof threshold === 'number' && threshold >= 0 && threshold <= 1)) {
    throw new InvalidOptionError('threshold', threshold, 'a number within [0, 1]');
  }
  const path = checkPath(options.path);
  return { name, node, threshold, ...(path === undefined ? {} : { path }) };
}

function checkBoolean(option: string, value: boolean | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new InvalidOptionError(option, value, 'a boolean');
  return value;
}

function checkNonNegative(option: string, value: number | undefined): number {
  if (value === undefined) return 0;
  if (!(typeof value === 'number' && Number.isFinite(value) && value >= 0)) {
    throw new InvalidOptionError(option, value, 'a finite number >= 0');
  }
  return value;
}

function checkSubstrings(option: string, value: unknown): readonly string[] {
  const list = toSubstrings(value);
  if (list === undefined) {
    throw new InvalidOptionError(
      option,
      value,
      'a non-empty string or a non-empty list of non-empty strings',
    );
  }
  return list;
}

/** A non-empty string as a list of one, a non-empty list of non-empty strings as is, anything else undefined. */
function toSubstrings(value: unknown): readonly string[] | undefined {
  const list: unknown = typeof value === 'string' ? [value] : value;
  return Array.isArray(list) && list.length > 0 && list.every((v) => typeof v === 'string' && v !== '')
    ? (list as string[])
    : undefined;
}

function requireExpected(name: string, expected: unknown): void {
  if (expected === undefined) {
    throw new ScorerError(name, 'the row has no expected value to compare with.');
  }
}

function toScoreResult(name: string, value: ScoreValue): ScoreResult {
  const result: ScoreResult =
    typeof value === 'boolean'
      ? { score: value ? 1 : 0 }
      : typeof value === 'number'
        ? { score: value }
        : value;
  const { score } = result as { score: unknown };
  if (!(typeof score === 'number' && score >= 0 && score <= 1)) {
    throw new ScorerError(name, `the score must be a number within [0, 1], got ${describe(score)}.`);
  }
  return result;
}

/** Deep equality of JSON-like values; `normalize` applies to every string; text compares with numbers/booleans. */
function deepEqual(a: unknown, b: unknown, normalize: (s: string) => string): boolean {
  if (typeof a === 'string' || typeof b === 'string') {
    const text = (v: unknown): string | undefined =>
      typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
    const x = text(a);
    const y = text(b);
    return x !== undefined && y !== undefined && normalize(x) === normalize(y);
  }
  if (a === b) return true;
  if (typeof a === 'number' && typeof b === 'number') return Number.isNaN(a) && Number.isNaN(b);
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((v, i) => deepEqual(v, b[i], normalize));
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  const keys = (o: Record<string, unknown>): string[] => Object.keys(o).filter((k) => o[k] !== undefined);
  const xKeys = keys(x);
  if (xKeys.length !== keys(y).length) return false;
  return xKeys.every((k) => Object.hasOwn(y, k) && deepEqual(x[k], y[k], normalize));
}

function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string' && value.trim() !== '') {
    const n = Number(value.trim());
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/** The text of an output: a string as is, anything else as JSON (`undefined` as the empty text). */
function textOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined) return '';
  const json: unknown = JSON.stringify(value);
  return typeof json === 'string' ? json : describe(value);
}

function preview(value: unknown): string {
  const json: unknown = value === undefined ? 'undefined' : JSON.stringify(value);
  const text = typeof json === 'string' ? json : String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false; reason?: string } {
  const trimmed = text.trim();
  const fenced = /^```(?:json)?\s*\n([\s\S]*?)\n?```$/i.exec(trimmed)?.[1] ?? trimmed;
  if (!/^[[{"\d-]|^(true|false|null)$/.test(fenced)) return { ok: false };
  try {
    return { ok: true, value: JSON.parse(fenced) };
  } catch (error) {
    return {
      ok: false,
      reason: `output is not valid JSON: ${errorMessage(error)}`,
    };
  }
}

function round(n: number): string {
  return String(Math.round(n * 1e4) / 1e4);
}
