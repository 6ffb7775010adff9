import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { Summary, summarizer } from '../../agents/index.ts';
import { chain, ChainDefinitionError, InvalidOptionError } from '../../src/index.ts';
import { captureClient, requestFor, userText } from './capture.ts';

const draftText =
  'Tides are the rise and fall of sea levels, caused by the Moon and the Sun pulling on the oceans.';

describe('summarizer', () => {
  it('summarizes an upstream node as text, within maxWords and with a focus', async () => {
    const { options, requests } = captureClient([
      { match: 'Write about tides', reply: draftText },
      { match: 'careful summarizer', reply: 'The Moon and Sun move the seas.' },
    ]);
    const brief = chain({ input: z.object({ topic: z.string() }), ...options })
      .prompt('draft', { prompt: ({ input }) => `Write about ${input.topic}.` })
      .prompt('tldr', summarizer({ from: 'draft', maxWords: 30, focus: 'causes' }))
      .build();
    const { outputs } = await brief.run({ topic: 'tides' });
    expectTypeOf(outputs.tldr).toEqualTypeOf<string>();
    expect(outputs.tldr).toBe('The Moon and Sun move the seas.');

    const request = requestFor(requests, 'careful summarizer');
    const user = userText(request);
    expect(user).toContain('Summarize the text between the <text> tags in at most 30 words.');
    expect(user).toContain('Focus on: causes.');
    expect(user).toContain(`<text>\n${draftText}\n</text>`);
    expect(user).toContain('Answer with the summary only');
    expect(request.output).toBeUndefined();
  });

  it('returns { summary, keyPoints } with structured: true, validated and typed', async () => {
    const { options, requests } = captureClient();
    const notes = chain({ input: z.object({ text: z.string() }), ...options })
      .prompt('notes', summarizer({ structured: true }))
      .build();
    const { outputs, simulated } = await notes.run({ text: draftText });
    expect(simulated).toBe(true);
    expectTypeOf(outputs.notes).toEqualTypeOf<{ summary: string; keyPoints: string[] }>();
    expect(Summary.safeParse(outputs.notes).success).toBe(true);

    const request = requests[0];
    expect(request?.output?.name).toBe('summary');
    const user = userText(request);
    expect(user).toContain('"keyPoints"');
    expect(user).not.toContain('at most');
    // Without `from`, the summarizer reads the input's `text` field.
    expect(user).toContain(`<text>\n${draftText}\n</text>`);
  });

  it('reads a string input as is, and any other input as JSON', async () => {
    const { options, requests } = captureClient();
    await chain({ input: z.string(), ...options })
      .prompt('s', summarizer())
      .build()
      .run('plain words');
    await chain({ input: z.object({ a: z.number() }), ...options })
      .prompt('s', summarizer())
      .build()
      .run({ a: 1 });
    expect(userText(requests[0])).toContain('<text>\nplain words\n</text>');
    expect(userText(requests[1])).toContain('<text>\n{\n  "a": 1\n}\n</text>');
  });

  it('runs after exactly the node it reads, and refuses a node that is not in the chain', () => {
    expect(summarizer({ from: 'draft' }).after).toEqual(['draft']);
    expect(summarizer().after).toEqual([]);
    const builder = chain({ input: z.object({ topic: z.string() }) }).prompt('draft', {
      prompt: ({ input }) => input.topic,
    });
    // @ts-expect-error — there is no node "drat"
    expect(() => builder.prompt('tldr', summarizer({ from: 'drat' }))).toThrow(ChainDefinitionError);
  });

  it('can be spread to run after more nodes than it reads', async () => {
    const { options, requests } = captureClient([{ match: 'Write', reply: 'The draft.' }]);
    const c = chain({ input: z.object({}), ...options })
      .prompt('draft', { prompt: () => 'Write.' })
      .prompt('outline', { prompt: () => 'Outline.' })
      .prompt('tldr', { ...summarizer({ from: 'draft' }), after: ['draft', 'outline'] })
      .build();
    expect(c.toMermaid()).toContain('outline --> tldr');
    await c.run({});
    expect(userText(requests[2])).toContain('<text>\nThe draft.\n</text>');
  });

  it('refuses a maxWords that is not a positive integer', () => {
    expect(() => summarizer({ maxWords: 0 })).toThrow(InvalidOptionError);
    expect(() => summarizer({ maxWords: 2.5 })).toThrow(/positive integer/);
  });
});
