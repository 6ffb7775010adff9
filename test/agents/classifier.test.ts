import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { classificationSchema, classifier, type Classification } from '../../agents/index.ts';
import { chain, ChainRunError, InvalidOptionError } from '../../src/index.ts';
import { captureClient, userText } from './capture.ts';

const labels = ['bug', 'feature', 'question'] as const;

describe('classifier', () => {
  it('returns { reason, label, confidence } with the label typed as the union of the labels', async () => {
    const { options, requests } = captureClient([
      { match: 'export button', reply: { reason: 'Something broke.', label: 'bug', confidence: 0.9 } },
    ]);
    const triage = chain({ input: z.object({ text: z.string() }), ...options })
      .prompt(
        'kind',
        classifier({
          labels,
          descriptions: { bug: 'something that used to work is broken' },
          instructions: 'Crashes are always bugs.',
        }),
      )
      .build();
    const { outputs } = await triage.run({ text: 'The export button does nothing.' });
    expectTypeOf(outputs.kind.label).toEqualTypeOf<'bug' | 'feature' | 'question'>();
    expectTypeOf(outputs.kind).toExtend<Classification<'bug' | 'feature' | 'question'>>();
    expect(outputs.kind).toEqual({ reason: 'Something broke.', label: 'bug', confidence: 0.9 });

    const request = requests[0];
    expect(request?.output?.name).toBe('classification');
    expect(request?.output?.schema).toMatchObject({
      properties: { label: { enum: ['bug', 'feature', 'question'] }, confidence: { minimum: 0, maximum: 1 } },
    });
    const user = userText(request);
    expect(user).toContain('- bug: something that used to work is broken\n- feature\n- question');
    expect(user).toContain('Crashes are always bugs.');
    expect(user).toContain('<text>\nThe export button does nothing.\n</text>');
  });

  it('classifies an upstream node; the simulated model picks one of the labels', async () => {
    const { options } = captureClient();
    const { outputs } = await chain({ input: z.object({ topic: z.string() }), ...options })
      .prompt('draft', { prompt: ({ input }) => `Write a review of ${input.topic}.` })
      .prompt('tone', classifier({ labels: ['positive', 'negative', 'mixed'], from: 'draft' }))
      .build()
      .run({ topic: 'a cafe' });
    expectTypeOf(outputs.tone.label).toEqualTypeOf<'positive' | 'negative' | 'mixed'>();
    expect(['positive', 'negative', 'mixed']).toContain(outputs.tone.label);
    expect(classificationSchema(['positive', 'negative', 'mixed']).safeParse(outputs.tone).success).toBe(
      true,
    );
  });

  it('fails the run when the model answers a label that is not in the list', async () => {
    const { options } = captureClient(
      [{ match: 'classify', reply: { reason: '?', label: 'other', confidence: 1 } }],
      0,
    );
    const run = chain({ input: z.string(), ...options })
      .prompt('kind', classifier({ labels }))
      .build()
      .run('Hello');
    await expect(run).rejects.toBeInstanceOf(ChainRunError);
  });

  it('refuses no labels, an empty label and a repeated label; descriptions must name labels', () => {
    expect(() => classifier({ labels: [] })).toThrow(InvalidOptionError);
    expect(() => classifier({ labels: ['a', ' '] })).toThrow(/labels\[1\]/);
    expect(() => classifier({ labels: ['a', 'b', 'a'] })).toThrow(/labels\[2\]/);
    // @ts-expect-error — "c" is not a label
    classifier({ labels: ['a', 'b'], descriptions: { c: 'no such label' } });
  });
});
