import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { Critique, critic, defaultCriteria, reviser } from '../../agents/index.ts';
import { chain, ChainDefinitionError, InvalidOptionError } from '../../src/index.ts';
import { captureClient, requestFor, userText } from './capture.ts';

const draft = 'Tides is caused by the wind. They happen once a day.';
const critique: Critique = {
  issues: [
    {
      problem: 'Tides are caused by the Moon, not the wind.',
      severity: 'critical',
      suggestion: 'Name the Moon and the Sun.',
    },
    { problem: '"Tides is" is ungrammatical.', severity: 'minor', suggestion: 'Write "Tides are".' },
  ],
  score: 3,
};

describe('critic and reviser', () => {
  it('critiques a draft against a rubric, then revises it to fix the issues', async () => {
    const { options, requests } = captureClient([
      { match: 'Write a paragraph', reply: draft },
      { match: 'fair reviewer', reply: critique },
      { match: 'You are an editor', reply: 'Tides are caused mainly by the Moon, and partly by the Sun.' },
    ]);
    const write = chain({ input: z.object({ topic: z.string() }), ...options })
      .prompt('draft', { prompt: ({ input }) => `Write a paragraph on ${input.topic}.` })
      .prompt('critique', critic({ from: 'draft', rubric: ['Scientifically accurate', 'Grammatical'] }))
      .prompt(
        'final',
        reviser({ draft: 'draft', critique: 'critique', instructions: 'Keep it to one sentence.' }),
      )
      .build();
    const { outputs } = await write.run({ topic: 'tides' });
    expectTypeOf(outputs.critique).toEqualTypeOf<Critique>();
    expectTypeOf(outputs.final).toEqualTypeOf<string>();
    expect(outputs.critique).toEqual(critique);
    expect(outputs.final).toBe('Tides are caused mainly by the Moon, and partly by the Sun.');

    const review = requestFor(requests, 'fair reviewer');
    expect(review.output?.name).toBe('critique');
    const reviewText = userText(review);
    expect(reviewText).toContain('criteria:\n- Scientifically accurate\n- Grammatical\n');
    expect(reviewText).toContain('<task>\n{\n  "topic": "tides"\n}\n</task>');
    expect(reviewText).toContain(`<draft>\n${draft}\n</draft>`);

    const revision = requestFor(requests, 'You are an editor');
    expect(revision.output).toBeUndefined();
    const revisionText = userText(revision);
    expect(revisionText).toContain('scored it 3 out of 10');
    expect(revisionText).toContain(
      '1. [critical] Tides are caused by the Moon, not the wind.\n   Fix: Name the Moon and the Sun.\n' +
        '2. [minor] "Tides is" is ungrammatical.\n   Fix: Write "Tides are".',
    );
    expect(revisionText).toContain('Keep it to one sentence.');
    expect(revisionText).toContain(`<draft>\n${draft}\n</draft>`);
  });

  it('reads the draft from the input when given no node; the default criteria; no issues', async () => {
    const { options, requests } = captureClient([
      { match: 'fair reviewer', reply: { issues: [], score: 10 } },
    ]);
    const edit = chain({ input: z.object({ text: z.string() }), ...options })
      .prompt('critique', critic())
      .prompt('revised', reviser({ critique: 'critique' }))
      .build();
    const { outputs } = await edit.run({ text: draft });
    expect(outputs.critique).toEqual({ issues: [], score: 10 });
    expect(typeof outputs.revised).toBe('string');

    const reviewText = userText(requests[0]);
    for (const criterion of defaultCriteria) expect(reviewText).toContain(`- ${criterion}`);
    expect(reviewText).not.toContain('<task>');
    expect(reviewText).toContain(`<draft>\n${draft}\n</draft>`);
    const revisionText = userText(requests[1]);
    expect(revisionText).toContain('(none: polish the draft lightly');
    expect(revisionText).toContain(`<draft>\n${draft}\n</draft>`);
  });

  it('gives schema-valid critiques on the unscripted simulated model', async () => {
    const { options } = captureClient();
    const { outputs } = await chain({ input: z.string(), ...options })
      .prompt('critique', critic({ rubric: 'Clear and correct.' }))
      .prompt('revised', reviser({ critique: 'critique' }))
      .build()
      .run(draft);
    expect(Critique.safeParse(outputs.critique).success).toBe(true);
    expect(outputs.revised.startsWith('[simulated]')).toBe(true);
  });

  it('needs the critique node to output a Critique, and runs after both nodes it reads', () => {
    expect(reviser({ critique: 'c', draft: 'd' }).after).toEqual(['d', 'c']);
    const builder = chain({ input: z.object({ topic: z.string() }) }).prompt('draft', {
      prompt: ({ input }) => input.topic,
    });
    // @ts-expect-error — "draft" outputs text, not a Critique
    builder.prompt('final', reviser({ critique: 'draft' }));
    // @ts-expect-error — there is no node "critique" yet
    expect(() => builder.prompt('final', reviser({ critique: 'critique' }))).toThrow(ChainDefinitionError);
  });

  it('refuses an empty rubric', () => {
    expect(() => critic({ rubric: [] })).toThrow(InvalidOptionError);
    expect(() => critic({ rubric: '' })).toThrow(/rubric/);
  });
});
