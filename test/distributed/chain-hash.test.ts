// The chain layer's hooks the workers rely on: a chain's content hash (equal for equal definitions, changed
// by any change to what a run would do) and checkpointed nodes (a restored node calls no model and costs 0).
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { chain } from '../../src/chain/builder.ts';
import type { CheckpointedNode } from '../../src/chain/chain.ts';
import { tool } from '../../src/chain/tool.ts';
import { ModelClient, ProviderRegistry, createSimulatedProvider } from '../../src/index.ts';

const input = z.object({ topic: z.string() });

function build(options: { model?: string; template?: string; schema?: z.ZodType; multiply?: boolean } = {}) {
  const add = tool({
    name: 'add',
    description: 'Adds two numbers.',
    input: z.object({ a: z.number(), b: z.number() }),
    // A tool's code is hashed as its source text (values it closes over are not part of it).
    run: options.multiply === true ? ({ a, b }) => a * b : ({ a, b }) => a + b,
  });
  return chain({ name: 'report', input, model: options.model ?? 'sim:one' })
    .prompt('outline', {
      template: options.template ?? 'Outline {{input.topic}}.',
      output: options.schema ?? z.object({ title: z.string() }),
    })
    .agent('draft', {
      after: ['outline'],
      tools: [add],
      prompt: ({ outline }) => `Write ${JSON.stringify(outline)}`,
    })
    .build();
}

describe('chain.hash', () => {
  it('is the same for two builds of one definition, and changes with any part of it', () => {
    const base = build().hash;
    expect(base).toMatch(/^[0-9a-f]{64}$/u);
    expect(build().hash).toBe(base);
    const changed = [
      build({ model: 'sim:two' }),
      build({ template: 'Outline {{input.topic}} briefly.' }),
      build({ schema: z.object({ title: z.string(), words: z.number() }) }),
      build({ multiply: true }),
    ].map((c) => c.hash);
    expect(new Set([base, ...changed]).size).toBe(5);
    const extra = chain({ name: 'report', input, model: 'sim:one' })
      .prompt('outline', { template: 'Outline {{input.topic}}.', output: z.object({ title: z.string() }) })
      .build();
    expect(extra.hash).not.toBe(base);
  });
});

describe('ChainRunOptions.checkpoint', () => {
  it('saves each node that completes, and a restored node calls no model and costs nothing', async () => {
    const calls: string[] = [];
    const provider = createSimulatedProvider({ name: 'sim' });
    const client = new ModelClient({
      registry: new ProviderRegistry().register(provider),
      onEvent: (event) => {
        if (event.type === 'call') calls.push(event.nodeKey ?? '?');
      },
    });
    const simple = chain({ name: 'pair', input, model: 'sim:one', client })
      .prompt('a', { template: 'About {{input.topic}}.' })
      .prompt('b', { after: ['a'], template: 'More on {{a}}.' })
      .build();
    const saved = new Map<string, CheckpointedNode>();
    const first = await simple.run(
      { topic: 'tides' },
      { checkpoint: { save: (node, entry) => saved.set(node, entry) } },
    );
    expect([...saved.keys()].sort()).toEqual(['a', 'b']);
    expect(saved.get('a')).toMatchObject({ output: first.outputs.a, usage: { calls: 1 } });
    expect(calls).toEqual(['a', 'b']);
    // A retry with a restored: only b calls the model, and it sees a's stored output.
    calls.length = 0;
    const savedAgain: string[] = [];
    const again = await simple.run(
      { topic: 'tides' },
      {
        checkpoint: {
          restored: { a: { output: 'stored answer', text: 'stored answer' } },
          save: (node) => savedAgain.push(node),
        },
      },
    );
    expect(calls).toEqual(['b']);
    expect(again.outputs.a).toBe('stored answer');
    expect(again.usageByNode.a).toBeUndefined();
    expect(again.usage.calls).toBe(1);
    expect(savedAgain).toEqual(['b']);
    expect(again.trace.map((r) => [r.name, r.status])).toEqual([
      ['a', 'completed'],
      ['b', 'completed'],
    ]);
  });
});
