/**
 * Model calls through a ModelClient, offline on the simulated model (set OPENAI_API_KEY and pass
 * `--model openai:gpt-4.1-mini` to use a real one): a plain call, a zod-typed call, and a small chain of
 * model nodes run as a Composition whose trace shows every attempt.
 *
 *   node examples/model-calls.ts [--model provider:model]
 *
 * No chain here (a Composition of model calls), so the `symphonizer` command has nothing to load; importing
 * the module runs nothing.
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { Composition, DAGNote, ModelClient } from '../src/index.ts';
import { isMain } from './is-main.ts';

/** Makes the three kinds of call on `model` and prints each answer, the trace and the usage. */
async function main(model: string): Promise<void> {
  const client = new ModelClient({
    limits: { defaults: { maxConcurrency: 4, requestsPerMinute: 500 } },
    retry: { maxRetries: 3, baseDelayMs: 200 },
    budget: { maxUsd: 0.5 },
  });

  // 1. A plain call: the output is the text.
  const hello = await client.call({
    model,
    prompt: 'Say hello to a new user of symphonizer in one sentence.',
  });
  console.log(`text (${hello.simulated ? 'simulated model' : hello.modelId}):`, hello.output);

  // 2. A typed call: the output is validated against the schema and typed from it.
  const Idea = z.object({ title: z.string(), steps: z.array(z.string()).min(2).max(4) });
  const idea = await client.call({
    model,
    prompt: 'Plan a tiny weekend project.',
    schema: Idea,
    schemaName: 'idea',
  });
  console.log('typed output:', idea.output.title, '→', idea.output.steps.length, 'steps');

  // 3. Model calls as nodes of a DAG: `brief` feeds `draft` and `title`, which run in parallel.
  const brief = new DAGNote('brief', { topic: 'event-driven schedulers' });
  const draft = new DAGNote('draft');
  const title = new DAGNote('title');
  const composition = new Composition(
    new Map([
      [draft, [brief]],
      [title, [brief]],
    ]),
    {
      maxTries: client.maxTries,
      configureNodeRunner: (node, c) =>
        client.runner(
          (context) => ({
            model,
            prompt: `${node.name} about ${JSON.stringify(node.payload)}; input: ${JSON.stringify(context.inputs)}`,
          }),
          { labels: { compositionId: c.instanceId } },
        ),
    },
  );
  console.log('chain:', await composition.start());
  for (const record of composition.trace())
    console.log(' ', record.key, record.status, `attempt ${record.attempt}`);
  console.log('usage:', JSON.stringify(client.usage.total));
}

if (isMain(import.meta)) {
  const { values } = parseArgs({ options: { model: { type: 'string', default: 'sim:demo' } } });
  await main(values.model);
}
