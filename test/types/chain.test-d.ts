/* eslint-disable @typescript-eslint/no-unused-expressions -- expressions here exist to be type-checked */
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { chain, type ChainInput, type ChainOutputs, type ChainResult } from '../../src/index.ts';

const Outline = z.object({ title: z.string(), sections: z.array(z.string()) });
const Verdict = z.object({ score: z.number(), reasons: z.array(z.string()) });

describe('typed chains', () => {
  it('types each node context from the outputs of the nodes it runs after', () => {
    chain({ input: z.object({ topic: z.string() }) })
      .prompt('outline', { template: 'Outline {{input.topic}}', output: Outline })
      .prompt('draft', {
        after: ['outline'],
        prompt: (ctx) => {
          expectTypeOf(ctx.input).toEqualTypeOf<{ topic: string }>();
          expectTypeOf(ctx.outline).toEqualTypeOf<{ title: string; sections: string[] }>();
          return `Write "${ctx.outline.title}"`;
        },
      })
      .prompt('review', {
        after: ['draft', 'outline'],
        output: Verdict,
        prompt: (ctx) => {
          expectTypeOf(ctx.draft).toEqualTypeOf<string>();
          // @ts-expect-error — `review` does not run after a node called `summary`
          ctx.summary;
          // @ts-expect-error — a wrong field name of an upstream output fails tsc
          ctx.outline.titel;
          return ctx.draft;
        },
      });
  });

  it('types run() outputs and input', () => {
    const c = chain({ input: z.object({ topic: z.string() }) })
      .prompt('outline', { template: 'x', output: Outline })
      .prompt('draft', { after: ['outline'], template: 'y' })
      .build();
    type Result = Awaited<ReturnType<typeof c.run>>;
    expectTypeOf<Result['outputs']['outline']>().toEqualTypeOf<{ title: string; sections: string[] }>();
    expectTypeOf<Result['outputs']['draft']>().toEqualTypeOf<string>();
    expectTypeOf<Result>().toExtend<ChainResult<{ readonly outline: unknown; readonly draft: string }>>();
    // @ts-expect-error — the input must match the input schema
    void c.run({ subject: 'x' });
    expectTypeOf<ChainOutputs<typeof c>['outline']>().toEqualTypeOf<{ title: string; sections: string[] }>();
    expectTypeOf<ChainInput<typeof c>>().toEqualTypeOf<{ topic: string }>();
  });

  it('refuses an `after` that names a node not added yet', () => {
    chain({ input: z.object({}) })
      .prompt('a', { template: 'x' })
      // @ts-expect-error — "b" is not in the chain
      .prompt('c', { after: ['b'], template: 'y' });
  });

  it('refuses a duplicate node name', () => {
    chain({ input: z.object({}) })
      .prompt('a', { template: 'x' })
      // @ts-expect-error — "a" exists already
      .prompt('a', { template: 'y' });
  });
});
