import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { judgeScorer } from '../../agents/index.ts';
import {
  ScorerError,
  contains,
  exactMatch,
  levenshtein,
  levenshteinSimilarity,
  numericTolerance,
  regex,
  schemaValid,
  scorer,
  stringSimilarity,
  tokenF1,
} from '../../src/eval/scorers.ts';
import type { ScoreResult, Scorer, ScorerContext } from '../../src/eval/types.ts';
import { InvalidOptionError } from '../../src/index.ts';
import { captureClient, userText } from '../agents/capture.ts';

function context(output: unknown, expected?: unknown, input: unknown = {}): ScorerContext {
  return {
    input,
    outputs: { answer: output },
    output,
    expected,
    row: expected === undefined ? { id: '1', line: 1, input } : { id: '1', line: 1, input, expected },
    signal: new AbortController().signal,
  };
}

async function score(s: Scorer, output: unknown, expected?: unknown): Promise<ScoreResult> {
  return s.score(context(output, expected));
}

describe('exactMatch', () => {
  it('compares trimmed, case-sensitive strings by default; objects deeply', async () => {
    const s = exactMatch();
    expect(s).toMatchObject({ name: 'exactMatch', node: undefined, threshold: undefined });
    expect(await score(s, ' Paris\n', 'Paris')).toEqual({ score: 1 });
    expect(await score(s, 'paris', 'Paris')).toMatchObject({
      score: 0,
      reason: 'expected "Paris", got "paris"',
    });
    expect((await score(exactMatch({ caseSensitive: false }), 'paris', 'PARIS')).score).toBe(1);
    expect((await score(exactMatch({ trim: false }), 'Paris ', 'Paris')).score).toBe(0);
    expect(
      (await score(s, { b: [1, { c: 'x' }], a: 1, z: undefined }, { a: 1, b: [1, { c: 'x' }] })).score,
    ).toBe(1);
    expect((await score(s, { a: 1, b: [1, 2] }, { a: 1, b: [2, 1] })).score).toBe(0);
    expect((await score(s, { a: 1 }, { a: 1, b: 2 })).score).toBe(0);
    expect((await score(s, [1, 2], { 0: 1, 1: 2 })).score).toBe(0);
    // CSV expected values are strings.
    expect((await score(s, 42, '42')).score).toBe(1);
    expect((await score(s, true, ' true ')).score).toBe(1);
    expect((await score(s, null, 'null')).score).toBe(0);
  });

  it('throws ScorerError for a row without expected; validates options', async () => {
    await expect(score(exactMatch(), 'x')).rejects.toBeInstanceOf(ScorerError);
    await expect(score(exactMatch(), 'x')).rejects.toMatchObject({ code: 'scorer_error' });
    expect(exactMatch({ name: 'em', node: 'answer', threshold: 0.5 })).toMatchObject({
      name: 'em',
      node: 'answer',
      threshold: 0.5,
    });
    expect(() => exactMatch({ threshold: 2 })).toThrow(InvalidOptionError);
    expect(() => exactMatch({ name: ' ' })).toThrow(InvalidOptionError);
    expect(() => exactMatch({ trim: 'yes' as unknown as boolean })).toThrow(InvalidOptionError);
  });
});

describe('contains', () => {
  it('scores the share of expected substrings found', async () => {
    const s = contains();
    expect(await score(s, 'The capital is Paris.', 'Paris')).toEqual({ score: 1 });
    expect(await score(s, 'Paris and Rome', ['Paris', 'Rome', 'Madrid', 'Berlin'])).toEqual({
      score: 0.5,
      reason: 'missing "Madrid", "Berlin"',
    });
    expect((await score(s, 'paris', 'Paris')).score).toBe(0);
    expect((await score(contains({ caseSensitive: false }), 'paris', 'Paris')).score).toBe(1);
    expect((await score(s, { city: 'Paris' }, '"city":"Paris"')).score).toBe(1);
    expect((await score(contains({ values: ['a', 'b'] }), 'a', undefined)).score).toBe(0.5);
  });

  it('throws for a row whose expected is not text; validates values', async () => {
    await expect(score(contains(), 'x', { a: 1 })).rejects.toBeInstanceOf(ScorerError);
    await expect(score(contains(), 'x', [])).rejects.toBeInstanceOf(ScorerError);
    await expect(score(contains(), 'x')).rejects.toBeInstanceOf(ScorerError);
    expect(() => contains({ values: [] })).toThrow(InvalidOptionError);
    expect(() => contains({ values: [''] })).toThrow(InvalidOptionError);
  });
});

describe('regex', () => {
  it('matches the output text; global flags do not make it stateful', async () => {
    const s = regex(/\bparis\b/gi);
    expect((await score(s, 'It is Paris.')).score).toBe(1);
    expect((await score(s, 'It is Paris.')).score).toBe(1);
    expect(await score(s, 'Rome')).toEqual({ score: 0, reason: 'no match for /\\bparis\\b/i' });
    expect((await score(regex('^\\d{3}$'), 123)).score).toBe(1);
    expect(() => regex('(')).toThrow(InvalidOptionError);
    expect(() => regex(5 as unknown as string)).toThrow(InvalidOptionError);
  });
});

describe('schemaValid', () => {
  const Person = z.object({ name: z.string(), age: z.number().int().min(0) });

  it('validates objects and JSON text, with the first issues as the reason', async () => {
    const s = schemaValid(Person);
    expect(await score(s, { name: 'Ada', age: 36 })).toEqual({ score: 1 });
    expect(await score(s, '```json\n{"name":"Ada","age":36}\n```')).toEqual({ score: 1 });
    const bad = await score(s, { name: 'Ada', age: -1 });
    expect(bad.score).toBe(0);
    expect(bad.reason).toMatch(/^age: /);
    const notJson = await score(s, '{"name": ');
    expect(notJson).toMatchObject({ score: 0, reason: expect.stringMatching(/not valid JSON/) as string });
    expect((await score(s, 'just words')).reason).toMatch(/\(root\)/);
    expect((await score(schemaValid(z.string()), 'just words')).score).toBe(1);
    expect(() => schemaValid({} as z.ZodType)).toThrow(InvalidOptionError);
  });
});

describe('numericTolerance', () => {
  it('passes within max(abs, rel · |expected|), forgiving float rounding', async () => {
    expect((await score(numericTolerance(), 0.1 + 0.2, 0.3)).score).toBe(1);
    expect((await score(numericTolerance(), 3, '3')).score).toBe(1);
    expect((await score(numericTolerance({ abs: 0.5 }), '10.4', 10)).score).toBe(1);
    expect(await score(numericTolerance({ abs: 0.5 }), 10.6, 10)).toEqual({
      score: 0,
      reason: '|10.6 - 10| = 0.6 > 0.5',
    });
    expect((await score(numericTolerance({ rel: 0.01 }), 1009, 1000)).score).toBe(1);
    expect((await score(numericTolerance({ rel: 0.01, abs: 20 }), 1019, 1000)).score).toBe(1);
    expect((await score(numericTolerance({ rel: 0.01 }), 1011, 1000)).score).toBe(0);
    expect(await score(numericTolerance(), 'about ten', 10)).toMatchObject({
      score: 0,
      reason: /not a number/,
    });
  });

  it('throws for a non-numeric expected; validates options', async () => {
    await expect(score(numericTolerance(), 1, 'ten')).rejects.toBeInstanceOf(ScorerError);
    expect(() => numericTolerance({ abs: -1 })).toThrow(InvalidOptionError);
    expect(() => numericTolerance({ rel: Number.NaN })).toThrow(InvalidOptionError);
  });
});

describe('stringSimilarity', () => {
  it('levenshtein and token F1, normalized to [0, 1]', async () => {
    expect(levenshtein('kitten', 'sitting')).toBe(3);
    expect(levenshtein('', 'abc')).toBe(3);
    expect(levenshtein('héllo', 'hello')).toBe(1);
    expect(levenshtein('😀a', 'a')).toBe(1); // by code point
    expect(levenshteinSimilarity('', '')).toBe(1);
    expect(levenshteinSimilarity('abc', 'xyz')).toBe(0);
    expect(tokenF1('the cat sat', 'the cat')).toBeCloseTo(0.8, 10);
    expect(tokenF1('', '')).toBe(1);
    expect(tokenF1('a', '')).toBe(0);
    expect(tokenF1('a a b', 'a b b')).toBeCloseTo(2 / 3, 10);

    const lev = stringSimilarity();
    expect(lev).toMatchObject({ name: 'stringSimilarity', threshold: 0.8 });
    expect(await score(lev, 'Kitten ', 'sitting')).toEqual({
      score: 1 - 3 / 7,
      reason: 'levenshtein similarity 0.5714',
    });
    expect((await score(lev, 'PARIS', 'paris')).score).toBe(1);
    expect((await score(stringSimilarity({ caseSensitive: true }), 'PARIS', 'paris')).score).toBe(0);
    const f1 = stringSimilarity({ metric: 'token-f1', threshold: 0.5 });
    expect((await score(f1, 'The cat sat.', 'the cat')).score).toBeCloseTo(0.8, 10);
    expect(() => stringSimilarity({ metric: 'cosine' as 'levenshtein' })).toThrow(InvalidOptionError);
    await expect(score(lev, 'x')).rejects.toBeInstanceOf(ScorerError);
  });
});

describe('scorer (custom)', () => {
  it('turns booleans, numbers and results into scores; refuses scores outside [0, 1]', async () => {
    const short = scorer<{ topic: string }, { draft: string }>('short', ({ outputs, input }) => {
      const typed: string = outputs.draft + input.topic;
      return typed.length < 10;
    });
    const input = { topic: 't' };
    const ctx: ScorerContext<{ topic: string }, { draft: string }> = {
      ...context('abc', undefined, input),
      input,
      outputs: { draft: 'abc' },
      row: { id: '1', line: 1, input },
    };
    expect(await short.score(ctx)).toEqual({ score: 1 });
    expect(await scorer('n', () => 0.25).score(context('x'))).toEqual({ score: 0.25 });
    expect(
      await scorer('r', () => Promise.resolve({ score: 0.5, reason: 'half' })).score(context('x')),
    ).toEqual({
      score: 0.5,
      reason: 'half',
    });
    await expect(scorer('big', () => 2).score(context('x'))).rejects.toBeInstanceOf(ScorerError);
    await expect(scorer('nan', () => Number.NaN).score(context('x'))).rejects.toThrow(/within \[0, 1\]/);
    expect(scorer('t', () => true, { node: 'draft', threshold: 0.7 })).toMatchObject({
      node: 'draft',
      threshold: 0.7,
    });
    expect(() => scorer('', () => true)).toThrow(InvalidOptionError);
    expect(() => scorer('x', 'nope' as unknown as () => boolean)).toThrow(InvalidOptionError);
  });
});

describe('judgeScorer', () => {
  it('runs the judge on the simulated model and returns a score in [0, 1] with reasons', async () => {
    const s = judgeScorer({ rubric: 'Answers the question correctly.', model: 'sim:judge' });
    expect(s).toMatchObject({ name: 'judge', threshold: 0.5 }); // passAt 3 on 1–5
    const result = await s.score(context('Paris', 'Paris', { question: 'Capital of France?' }));
    expect(result.score).toBeGreaterThanOrEqual(0);
    expect(result.score).toBeLessThanOrEqual(1);
    expect(result.reason).toMatch(/^\d+(\.\d+)? on 1–5/);
  });

  it('shows the judge the output as the answer and input and expected as the task; normalizes the scale', async () => {
    const { client, requests } = captureClient([
      { match: 'impartial evaluator', reply: { reasons: ['Right city.', 'Brief.'], score: 7 } },
    ]);
    const s = judgeScorer({
      rubric: ['Correct.', 'Brief.'],
      scale: [0, 10],
      passAt: 7,
      client,
      model: 'capture:j',
      name: 'j',
    });
    expect(s).toMatchObject({ name: 'j', threshold: 0.7 });
    const result = await s.score(context('It is Paris.', 'Paris', { question: 'Capital of France?' }));
    expect(result).toEqual({ score: 0.7, reason: '7 on 0–10: Right city.; Brief.' });
    expect(result.score >= (s.threshold ?? 1)).toBe(true);
    const text = userText(requests[0]);
    expect(text).toContain('<answer>\nIt is Paris.\n</answer>');
    expect(text).toContain('"question": "Capital of France?"');
    expect(text).toContain('"expected": "Paris"');
    expect(text).toContain('from 0 (worst) to 10 (best) against this rubric:\n- Correct.\n- Brief.');
  });

  it('judges the field at `path` of an object output, and scores 0 without asking when it is missing', async () => {
    const { client, requests } = captureClient([
      { match: 'impartial evaluator', reply: { reasons: ['Right city.'], score: 5 } },
    ]);
    const s = judgeScorer({ rubric: 'Correct.', client, model: 'capture:j', path: 'answer.city' });
    const found = await s.score(context({ answer: { city: 'Paris' }, confidence: 0.9 }, 'Paris', {}));
    expect(found).toEqual({ score: 1, reason: '5 on 1–5: Right city.' });
    const text = userText(requests[0]);
    expect(text).toContain('<answer>\nParis\n</answer>');
    expect(text).not.toContain('confidence');
    const missing = await s.score(context({ answer: {} }, 'Paris', {}));
    expect(missing).toEqual({ score: 0, reason: 'no value at answer.city of the output' });
    expect(requests).toHaveLength(1);
    expect(() => judgeScorer({ rubric: 'x', path: 'a..b' })).toThrow(InvalidOptionError);
  });

  it('validates its options', () => {
    expect(() => judgeScorer({ rubric: '' })).toThrow(InvalidOptionError);
    expect(() => judgeScorer({ rubric: 'x', scale: [0, 10], passAt: 11 })).toThrow(InvalidOptionError);
    expect(() => judgeScorer({ rubric: 'x', threshold: -1 })).toThrow(InvalidOptionError);
  });
});
