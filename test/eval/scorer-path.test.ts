/**
 * `path` lets every built-in scorer reach a field of an object output (`'a.b[0]'` or `['a', 'b', 0]`), a
 * JSON string output included; a missing field scores 0 with a reason, a malformed path is refused.
 */
import { describe, expect, it } from 'vitest';
import {
  contains,
  exactMatch,
  numericTolerance,
  regex,
  scorer,
  stringSimilarity,
} from '../../src/eval/scorers.ts';
import type { ScoreResult, Scorer } from '../../src/eval/types.ts';
import { InvalidOptionError } from '../../src/index.ts';

const output = {
  label: 'spam',
  meta: { scores: [0.91, 0.09], 'odd.key': 'x' },
  items: [{ name: 'refund policy' }, { name: 'shipping' }],
};

async function score(s: Scorer, out: unknown, expected?: unknown): Promise<ScoreResult> {
  return s.score({
    input: {},
    outputs: { answer: out },
    output: out,
    expected,
    row: { id: '1', line: 1, input: {} },
    signal: new AbortController().signal,
  });
}

describe('scorers with a path', () => {
  it('exactMatch({ node, path }) compares a field of an object output', async () => {
    const s = exactMatch({ node: 'answer', path: 'label' });
    expect(s.node).toBe('answer');
    expect(await score(s, output, 'spam')).toEqual({ score: 1 });
    expect(await score(s, output, 'ham')).toMatchObject({ score: 0, reason: 'expected "ham", got "spam"' });
  });

  it('reaches nested keys and array indexes, as a string or a list of keys', async () => {
    expect(await score(numericTolerance({ path: 'meta.scores[0]', abs: 0.01 }), output, 0.9)).toEqual({
      score: 1,
    });
    expect(await score(contains({ path: 'items[1].name' }), output, 'ship')).toEqual({ score: 1 });
    expect(await score(regex(/^refund/, { path: ['items', 0, 'name'] }), output)).toEqual({ score: 1 });
    expect(await score(exactMatch({ path: ['meta', 'odd.key'] }), output, 'x')).toEqual({ score: 1 });
    const sim = await score(stringSimilarity({ path: 'items[0].name' }), output, 'refund policy');
    expect(sim.score).toBe(1);
    const custom = scorer('isSpam', ({ output: label }) => label === 'spam', { path: 'label' });
    expect(await score(custom, output)).toEqual({ score: 1 });
  });

  it('parses a JSON string output (a text node answering JSON) before following the path', async () => {
    const s = exactMatch({ path: 'label' });
    expect(await score(s, '```json\n{"label": "spam"}\n```', 'spam')).toEqual({ score: 1 });
  });

  it('scores 0 with a reason when the field is missing, and refuses malformed paths', async () => {
    const s = exactMatch({ path: 'meta.scores[5]' });
    expect(await score(s, output, 0.5)).toEqual({
      score: 0,
      reason: 'no value at meta.scores[5] of the output',
    });
    expect(await score(s, 'not json', 0.5)).toMatchObject({ score: 0 });
    for (const bad of ['', 'a..b', 'a[x]', '[0]', [], ['a', -1], ['']]) {
      expect(() => exactMatch({ path: bad as string })).toThrow(InvalidOptionError);
    }
  });
});
