import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { extractionFields, extractor } from '../../agents/index.ts';
import { chain, ChainRunError, InvalidOptionError, tool } from '../../src/index.ts';
import { captureClient, userText } from './capture.ts';

const Person = z.object({
  name: z.string().describe('Full name'),
  born: z.number().int().describe('Year of birth'),
  died: z.number().int().nullable(),
});

describe('extractor', () => {
  it('extracts into the schema: output validated and typed as the schema', async () => {
    const { options, requests } = captureClient([
      { match: 'Ada Lovelace', reply: { name: 'Ada Lovelace', born: 1815, died: 1852 } },
    ]);
    const people = chain({ input: z.object({ text: z.string() }), ...options })
      .prompt('person', extractor({ schema: Person, instructions: 'Use the full name.' }))
      .build();
    const { outputs } = await people.run({ text: 'Ada Lovelace (1815–1852) wrote the first program.' });
    expectTypeOf(outputs.person).toEqualTypeOf<{ name: string; born: number; died: number | null }>();
    expect(outputs.person).toEqual({ name: 'Ada Lovelace', born: 1815, died: 1852 });

    const request = requests[0];
    expect(request?.output?.name).toBe('extraction');
    expect(request?.system).toContain('never invent a value');
    const user = userText(request);
    expect(user).toContain('- name: Full name\n- born: Year of birth\n- died\n');
    expect(user).toContain('Use the full name.');
    expect(user).toContain('<text>\nAda Lovelace (1815–1852) wrote the first program.\n</text>');
  });

  it('reads an upstream node, and the simulated model answers schema-valid data', async () => {
    const Invoice = z.object({
      total: z.number().min(0),
      currency: z.enum(['EUR', 'USD']),
      lines: z.array(z.string()),
    });
    const { options, requests } = captureClient([
      { match: 'Write an invoice', reply: 'Two pens, 4 EUR in all.' },
    ]);
    const { outputs } = await chain({ input: z.object({}), ...options })
      .prompt('mail', { prompt: () => 'Write an invoice mail.' })
      .prompt('invoice', extractor({ schema: Invoice, from: 'mail', schemaName: 'invoice' }))
      .build()
      .run({});
    expectTypeOf(outputs.invoice.currency).toEqualTypeOf<'EUR' | 'USD'>();
    expect(Invoice.safeParse(outputs.invoice).success).toBe(true);
    expect(requests[1]?.output?.name).toBe('invoice');
    expect(userText(requests[1])).toContain('<text>\nTwo pens, 4 EUR in all.\n</text>');
  });

  it('works as an agent node with tools when spread into .agent()', async () => {
    const looked: string[] = [];
    const lookup = tool({
      name: 'lookup',
      description: 'Looks a person up by name.',
      input: z.object({ name: z.string() }),
      run: ({ name }) => {
        looked.push(name);
        return { born: 1815 };
      },
    });
    const { options } = captureClient();
    const result = await chain({ input: z.object({ text: z.string() }), ...options })
      .agent('person', { ...extractor({ schema: Person }), tools: [lookup], maxSteps: 2 })
      .build()
      .run({ text: 'Ada Lovelace wrote the first program.' });
    expect(looked).toHaveLength(1);
    expect(result.steps.person?.[0]?.toolCalls[0]?.name).toBe('lookup');
    expectTypeOf(result.outputs.person.born).toEqualTypeOf<number>();
    expect(Person.safeParse(result.outputs.person).success).toBe(true);
  });

  it('fails the run when the answer does not fit the schema, after re-asking', async () => {
    const { options, requests } = captureClient([
      { match: 'extract', reply: { name: 'Ada', born: 'long ago' } },
    ]);
    const run = chain({ input: z.string(), ...options })
      .prompt('person', extractor({ schema: Person }))
      .build()
      .run('Ada Lovelace was born in 1815.');
    await expect(run).rejects.toBeInstanceOf(ChainRunError);
    expect(requests).toHaveLength(2); // the answer, then one re-ask with the validation errors
  });

  it('lists the top-level fields of an object schema, and refuses a schema that is not zod', () => {
    expect(extractionFields(Person)).toEqual([
      { name: 'name', description: 'Full name' },
      { name: 'born', description: 'Year of birth' },
      { name: 'died', description: null },
    ]);
    expect(extractionFields(z.array(z.string()))).toEqual([]);
    // @ts-expect-error — not a zod schema
    expect(() => extractor({ schema: { type: 'object' } })).toThrow(InvalidOptionError);
  });
});
