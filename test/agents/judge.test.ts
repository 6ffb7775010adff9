import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { defaultPassAt, judge, judgmentSchema, type Judgment } from '../../agents/index.ts';
import { chain, ChainRunError, InvalidOptionError, type ModelRequest } from '../../src/index.ts';
import { captureClient, requestFor, userText } from './capture.ts';

const Item = z.object({ question: z.string(), reference: z.string() });

describe('judge', () => {
  it('scores a batch of answers; pass follows the pass mark', async () => {
    // The simulated judge gives 9 to answers that mention the reference, 2 to the others.
    const verdict = (request: ModelRequest): unknown => {
      const text = userText(request);
      const answer = /<answer>\n([\s\S]*)\n<\/answer>/.exec(text)?.[1] ?? '';
      const reference = /"reference": "([^"]*)"/.exec(text)?.[1] ?? '?';
      return answer.includes(reference)
        ? { reasons: ['Matches the reference.'], score: 9 }
        : { reasons: ['Misses the reference.'], score: 2 };
    };
    const { options, requests } = captureClient([
      { match: 'impartial evaluator', reply: verdict },
      { match: 'capital of France', reply: 'It is Paris.' },
      { match: 'capital of Italy', reply: 'It is Milan.' },
      { match: 'capital of Spain', reply: 'Madrid, of course.' },
    ]);
    const evaluate = chain({ name: 'capitals', input: Item, ...options })
      .prompt('answer', { prompt: ({ input }) => `Answer briefly: ${input.question}` })
      .prompt(
        'verdict',
        judge({
          from: 'answer',
          rubric: ['Agrees with the reference answer.', 'Brief.'],
          scale: [0, 10],
          passAt: 7,
        }),
      )
      .build();
    const items = [
      { question: 'What is the capital of France?', reference: 'Paris' },
      { question: 'What is the capital of Italy?', reference: 'Rome' },
      { question: 'What is the capital of Spain?', reference: 'Madrid' },
    ];
    const results = await evaluate.runAll(items);
    const verdicts = results.map((r) => (r.status === 'fulfilled' ? r.value.outputs.verdict : undefined));
    expectTypeOf(verdicts[0]).toEqualTypeOf<
      { reasons: string[]; score: number; pass: boolean } | undefined
    >();
    expect(verdicts.map((v) => v?.pass)).toEqual([true, false, true]);
    expect(verdicts[1]).toEqual({ reasons: ['Misses the reference.'], score: 2, pass: false });

    const request = requestFor(requests, 'impartial evaluator');
    expect(request.output?.name).toBe('judgment');
    // The model is asked for reasons and a score only; pass is derived.
    expect(request.output?.schema).toMatchObject({
      properties: { score: { minimum: 0, maximum: 10 } },
      required: ['reasons', 'score'],
    });
    const text = userText(request);
    expect(text).toContain(
      'from 0 (worst) to 10 (best) against this rubric:\n- Agrees with the reference answer.\n- Brief.\n',
    );
    expect(text).toContain('A score of 7 or more passes.');
    expect(text).toMatch(
      /<task>\n\{\n {2}"question": "What is the capital of \w+\?",\n {2}"reference": "\w+"\n\}\n<\/task>/,
    );
  });

  it('judges the chain input on the default 1–5 scale (pass at 3), with schema-valid simulated answers', async () => {
    const { options, requests } = captureClient();
    const { outputs } = await chain({ input: z.string(), ...options })
      .prompt('verdict', judge({ rubric: 'Polite.' }))
      .build()
      .run('Thanks a lot for your help!');
    expectTypeOf(outputs.verdict).toEqualTypeOf<Judgment>();
    expect(outputs.verdict.score).toBeGreaterThanOrEqual(1);
    expect(outputs.verdict.score).toBeLessThanOrEqual(5);
    expect(outputs.verdict.pass).toBe(outputs.verdict.score >= 3);
    const text = userText(requests[0]);
    expect(text).toContain('from 1 (worst) to 5 (best)');
    expect(text).not.toContain('<task>');
    expect(text).toContain('<answer>\nThanks a lot for your help!\n</answer>');
  });

  it('fails the run on a score outside the scale', async () => {
    const { options } = captureClient([{ match: 'impartial', reply: { reasons: ['great'], score: 11 } }], 0);
    const run = chain({ input: z.string(), ...options })
      .prompt('v', judge({ rubric: 'x' }))
      .build()
      .run('y');
    await expect(run).rejects.toBeInstanceOf(ChainRunError);
  });

  it('derives pass from the score; checks scale, pass mark and rubric', () => {
    expect(judgmentSchema([0, 10], 7).parse({ reasons: [], score: 7 })).toEqual({
      reasons: [],
      score: 7,
      pass: true,
    });
    expect(judgmentSchema().parse({ reasons: [], score: 2 }).pass).toBe(false);
    expect([
      defaultPassAt([1, 5]),
      defaultPassAt([0, 10]),
      defaultPassAt([0, 1]),
      defaultPassAt([1, 10]),
    ]).toEqual([3, 5, 1, 6]);
    expect(() => judge({ rubric: 'x', scale: [5, 1] })).toThrow(InvalidOptionError);
    expect(() => judge({ rubric: 'x', scale: [0, Number.NaN] })).toThrow(/scale/);
    expect(() => judge({ rubric: 'x', scale: [0, 10], passAt: 11 })).toThrow(/passAt/);
    expect(() => judge({ rubric: [] })).toThrow(/rubric/);
  });
});
