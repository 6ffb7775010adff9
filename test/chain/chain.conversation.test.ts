/**
 * Conversations on the simulated model: how a node's messages combine with its template or prompt, their
 * validation, their place in token estimates and response-cache keys; and streamed agents (turn tokens,
 * tool calls and results) and streamed schema nodes.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import {
  ChainDefinitionError,
  ChainRunError,
  InvalidMessagesError,
  ModelClient,
  ProviderRegistry,
  chain,
  createSimulatedProvider,
  estimateTokens,
  tool,
  type ChainEvent,
  type ChatMessage,
  type DeepPartial,
  type ModelRequest,
  type PartialOf,
  type Provider,
} from '../../src/index.ts';
import { ResponseCache } from '../../src/eval/cache.ts';
import { readDataset } from '../../src/eval/dataset.ts';
import { ChatMessageSchema } from '../../src/index.ts';

/** A provider that keeps each request it is sent and answers through the simulated model. */
function recordingClient(options: { tokenLatencyMs?: number } = {}): {
  client: ModelClient;
  requests: ModelRequest[];
} {
  const sim = createSimulatedProvider(options);
  const requests: ModelRequest[] = [];
  const recording: Provider = {
    name: 'sim',
    // A copy of the messages as sent: an agent's loop adds to its array for the next turn.
    complete: (request) => {
      requests.push({ ...request, messages: [...request.messages] });
      return sim.complete(request);
    },
    stream: (request) => {
      requests.push({ ...request, messages: [...request.messages] });
      return sim.stream(request);
    },
  };
  return { client: new ModelClient({ registry: new ProviderRegistry().register(recording) }), requests };
}

const History = z.object({ history: z.array(z.custom<ChatMessage>()), text: z.string() });
const HISTORY: ChatMessage[] = [
  { role: 'user', content: 'I am Ada.' },
  { role: 'assistant', content: 'Hi Ada.' },
];

describe('how messages combine with a template or prompt', () => {
  it('puts a plain template after the history as the newest user turn, its system part as the system text', async () => {
    const { client, requests } = recordingClient();
    const talk = chain({ name: 't', input: History, model: 'sim:echo', client })
      .prompt('reply', {
        template: '{{!-- system --}}\nBe kind.\n{{!-- user --}}\nNow: {{input.text}}',
        messages: ({ input }) => input.history,
      })
      .build();
    const { outputs } = await talk.run({ history: HISTORY, text: 'tides?' });
    expect(requests[0]?.system).toBe('Be kind.');
    expect(requests[0]?.messages).toEqual([...HISTORY, { role: 'user', content: 'Now: tides?' }]);
    expect(outputs.reply).toBe('[simulated] Now: tides?');
  });

  it('puts a prompt function after the history, and sends the messages alone without template or prompt', async () => {
    const { client, requests } = recordingClient();
    const talk = chain({ name: 't', input: History, model: 'sim:echo', client })
      .prompt('withPrompt', {
        prompt: ({ input }) => ({ system: 'S', user: input.text }),
        messages: ({ input }) => input.history,
      })
      .prompt('alone', {
        messages: ({ input }) => [...input.history, { role: 'user', content: 'last' }],
        system: 'Sys',
      })
      .build();
    const { outputs } = await talk.run({ history: HISTORY, text: 'new' });
    const byLast = (content: string) => requests.find((r) => r.messages.at(-1)?.content === content);
    expect(byLast('new')).toMatchObject({
      system: 'S',
      messages: [...HISTORY, { role: 'user', content: 'new' }],
    });
    expect(byLast('last')).toMatchObject({
      system: 'Sys',
      messages: [...HISTORY, { role: 'user', content: 'last' }],
    });
    expect(outputs.alone).toBe('[simulated] last');
  });

  it('places the history at the {{!-- history --}} marker, between few-shot turns and later parts', async () => {
    const { client, requests } = recordingClient();
    const template = [
      '{{!-- user --}}',
      'Example question',
      '{{!-- assistant --}}',
      'Example answer',
      '{{!-- history --}}',
      '{{!-- user --}}',
      '{{input.text}}',
      '{{!-- assistant --}}',
      '{{#if input.prefill}}{{input.prefill}}{{/if}}',
    ].join('\n');
    const talk = chain({ name: 't', input: History, model: 'sim:echo', client })
      .prompt('reply', { template, messages: ({ input }) => input.history })
      .build();
    await talk.run({ history: HISTORY, text: 'Q' });
    expect(requests[0]?.messages).toEqual([
      { role: 'user', content: 'Example question' },
      { role: 'assistant', content: 'Example answer' },
      ...HISTORY,
      // The last assistant part rendered empty: no turn.
      { role: 'user', content: 'Q' },
    ]);
  });

  it('without a marker, keeps few-shot turns before the history and the last user part after it', async () => {
    const { client, requests } = recordingClient();
    const talk = chain({ name: 't', input: History, model: 'sim:echo', client })
      .prompt('reply', {
        template: 'Shot\n{{!-- assistant --}}\nAnswer\n{{!-- user --}}\n{{input.text}}',
        messages: ({ input }) => input.history,
      })
      .build();
    await talk.run({ history: HISTORY, text: 'Q' });
    expect(requests[0]?.messages).toEqual([
      { role: 'user', content: 'Shot' },
      { role: 'assistant', content: 'Answer' },
      ...HISTORY,
      { role: 'user', content: 'Q' },
    ]);
  });

  it('copies only the fields a provider reads, so extra fields of the caller reach neither wire nor cache key', async () => {
    const { client, requests } = recordingClient();
    const talk = chain({ name: 't', input: z.object({}), model: 'sim:echo', client })
      .prompt('reply', {
        messages: () =>
          [
            { role: 'user', content: 'hello', id: 'ui-1', parts: [{ type: 'text' }] },
          ] as unknown as ChatMessage[],
      })
      .build();
    await talk.run({});
    expect(requests[0]?.messages).toEqual([{ role: 'user', content: 'hello' }]);
  });

  it('lets an agent continue a conversation', async () => {
    const { client, requests } = recordingClient();
    const lookup = tool({
      name: 'lookup',
      description: 'Looks a query up.',
      input: z.object({ q: z.string() }),
      run: ({ q }) => `found ${q}`,
    });
    const agent = chain({ name: 'a', input: History, model: 'sim:default', client })
      .agent('helper', {
        tools: [lookup],
        prompt: ({ input }) => input.text,
        messages: ({ input }) => input.history,
      })
      .build();
    await agent.run({ history: HISTORY, text: 'look it up' });
    expect(requests[0]?.messages).toEqual([...HISTORY, { role: 'user', content: 'look it up' }]);
    // The next turn keeps the history and adds the tool call and its result.
    expect(requests[1]?.messages.slice(0, 3)).toEqual(requests[0]?.messages);
    expect(requests[1]?.messages.at(-1)).toMatchObject({
      role: 'tool',
      content: expect.stringMatching(/^found /) as string,
    });
  });
});

describe('validation of messages', () => {
  const run = (messages: unknown) =>
    chain({ name: 'v', input: z.object({}), model: 'sim:default' })
      .prompt('talk', { prompt: () => 'x', messages: () => messages as ChatMessage[] })
      .build()
      .run({});

  async function rejection(messages: unknown): Promise<InvalidMessagesError> {
    const error = (await run(messages).catch((e: unknown) => e)) as ChainRunError;
    expect(error).toBeInstanceOf(ChainRunError);
    expect(error.cause).toBeInstanceOf(InvalidMessagesError);
    return error.cause as InvalidMessagesError;
  }

  it('names the node and the index of a message with a bad role or content', async () => {
    const badRole = await rejection([
      { role: 'user', content: 'ok' },
      { role: 'robot', content: 'x' },
    ]);
    expect(badRole).toMatchObject({ code: 'invalid_messages', node: 'talk', index: 1 });
    expect(badRole.message).toMatch(/Node "talk": messages\[1\] has role "robot"/);
    const badContent = await rejection([{ role: 'assistant', content: 42 }]);
    expect(badContent).toMatchObject({ node: 'talk', index: 0 });
    expect(badContent.message).toMatch(/messages\[0\] \(assistant\) has content a number, not a string/);
    expect(await rejection([{ role: 'tool', content: 'r' }])).toMatchObject({
      index: 0,
      message: expect.stringMatching(/toolCallId/) as string,
    });
    expect(await rejection([null])).toMatchObject({ index: 0 });
    expect(await rejection('hello')).toMatchObject({
      index: undefined,
      message: expect.stringMatching(/messages is a string, not an array/) as string,
    });
  });

  it('never shows the text of a bad message', async () => {
    const error = await rejection([{ role: 'my password is hunter2', content: 'x' }]);
    expect(error.message).not.toContain('hunter2');
  });

  it('refuses a node with nothing to send, and a messages option that is not a function', async () => {
    const empty = chain({ name: 'v', input: z.object({}), model: 'sim:default' })
      .prompt('talk', { messages: () => [] })
      .build();
    const error = (await empty.run({}).catch((e: unknown) => e)) as ChainRunError;
    expect(error.cause).toMatchObject({
      code: 'invalid_messages',
      node: 'talk',
      message: expect.stringMatching(/is empty/) as string,
    });
    expect(() =>
      chain({ name: 'v', input: z.object({}) }).prompt('talk', {
        messages: [] as unknown as () => ChatMessage[],
      }),
    ).toThrow(ChainDefinitionError);
  });
});

describe('messages in token estimates and cache keys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'symphonizer-conversation-'));
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('counts every message, system ones included', () => {
    const base: ModelRequest = { model: 'm', messages: [{ role: 'user', content: 'hi' }], maxTokens: 0 };
    const longer: ModelRequest = {
      ...base,
      messages: [{ role: 'system', content: 'x'.repeat(400) }, ...HISTORY, { role: 'user', content: 'hi' }],
    };
    expect(estimateTokens(longer) - estimateTokens(base)).toBe(
      Math.ceil((2 + 400 + 'I am Ada.'.length + 'Hi Ada.'.length) / 4) - Math.ceil(2 / 4),
    );
  });

  it('answers the same conversation from the cache, and a different history not', async () => {
    const cache = ResponseCache.open(join(dir, 'cache.db'));
    const registry = cache.wrapRegistry(new ProviderRegistry());
    const client = new ModelClient({ registry });
    const talk = chain({ name: 't', input: History, model: 'sim:default', client })
      .prompt('reply', { prompt: ({ input }) => input.text, messages: ({ input }) => input.history })
      .build();
    const first = await talk.run({ history: HISTORY, text: 'same' });
    const again = await talk.run({ history: HISTORY, text: 'same' });
    const other = await talk.run({ history: [{ role: 'user', content: 'I am Bob.' }], text: 'same' });
    expect([first.cachedCalls, again.cachedCalls, other.cachedCalls]).toEqual([0, 1, 0]);
    expect(again.outputs.reply).toBe(first.outputs.reply);
    cache.close();
  });
});

describe('a streamed agent', () => {
  it('streams its turns: tool-call, tool-result, agent-step, then the final text as tokens with their step', async () => {
    const lookup = tool({
      name: 'lookup',
      description: 'Looks a query up.',
      input: z.object({ q: z.string() }),
      run: ({ q }) => `found ${q}`,
    });
    const agent = chain({ name: 'a', input: z.object({ q: z.string() }), model: 'sim:default' })
      .agent('helper', { tools: [lookup], prompt: ({ input }) => `Find ${input.q}` })
      .build();
    const events: ChainEvent[] = [];
    const stream = agent.stream({ q: 'tides' });
    for await (const event of stream) events.push(event);
    const result = await stream.result;
    const types = events.map((e) => e.type);
    const call = events.find((e) => e.type === 'tool-call');
    const outcome = events.find((e) => e.type === 'tool-result');
    expect(call).toMatchObject({
      node: 'helper',
      step: 1,
      toolName: 'lookup',
      input: { q: expect.any(String) as string },
    });
    expect(outcome).toMatchObject({
      node: 'helper',
      step: 1,
      toolName: 'lookup',
      ok: true,
      output: expect.stringMatching(/^found /) as string,
    });
    expect(
      call?.type === 'tool-call' && outcome?.type === 'tool-result' && call.toolCallId === outcome.toolCallId,
    ).toBe(true);
    expect(types.indexOf('tool-call')).toBeLessThan(types.indexOf('tool-result'));
    expect(types.indexOf('tool-result')).toBeLessThan(types.indexOf('agent-step'));
    const tokens = events.filter((e) => e.type === 'token');
    expect(tokens.length).toBeGreaterThan(1);
    // The sim's tool turn has no text, so every token is of the final turn (step 2), and they make the output.
    expect(new Set(tokens.map((t) => t.step))).toEqual(new Set([2]));
    expect(tokens.map((t) => t.text).join('')).toBe(result.outputs.helper);
    expect(types.indexOf('agent-step')).toBeLessThan(types.indexOf('token'));
  });

  it('streams the partial output of a final answer with a schema', async () => {
    const Answer = z.object({ summary: z.string(), sources: z.array(z.string()) });
    const lookup = tool({
      name: 'lookup',
      description: 'Looks a query up.',
      input: z.object({ q: z.string() }),
      run: () => 'a source',
    });
    const agent = chain({ name: 'a', input: z.object({ q: z.string() }), model: 'sim:default' })
      .agent('helper', { tools: [lookup], prompt: ({ input }) => `Find ${input.q}`, output: Answer })
      .build();
    const partials: PartialOf<{ helper: z.infer<typeof Answer> }, 'helper'>[] = [];
    const stream = agent.stream({ q: 'tides' });
    for await (const event of stream) {
      if (event.type === 'partial-output' && event.node === 'helper') partials.push(event.partial);
    }
    const result = await stream.result;
    expect(partials.length).toBeGreaterThan(2);
    expect(partials.at(-1)).toEqual(result.outputs.helper);
  });
});

describe('a streamed schema node on the simulated model', () => {
  it('sends growing partials ending with the validated output, paced by tokenLatencyMs', async () => {
    const Plan = z.object({ title: z.string(), steps: z.array(z.string()).min(3) });
    const { client } = recordingClient({ tokenLatencyMs: 4 });
    const plans = chain({ name: 'p', input: z.object({ topic: z.string() }), model: 'sim:default', client })
      .prompt('plan', { prompt: ({ input }) => `Plan ${input.topic}`, output: Plan })
      .build();
    const seen: { at: number; partial: unknown }[] = [];
    const started = performance.now();
    const stream = plans.stream({ topic: 'tides' });
    for await (const event of stream) {
      if (event.type === 'partial-output')
        seen.push({ at: performance.now() - started, partial: event.partial });
    }
    const result = await stream.result;
    expect(seen.length).toBeGreaterThan(3);
    expect(seen.at(-1)?.partial).toEqual(result.outputs.plan);
    const sizes = seen.map((s) => JSON.stringify(s.partial).length);
    sizes.forEach((size, i) => {
      if (i > 0) expect(size).toBeGreaterThanOrEqual(sizes[i - 1] ?? 0);
    });
    // Paced: the partials arrive over time, not at once.
    expect((seen.at(-1)?.at ?? 0) - (seen[0]?.at ?? 0)).toBeGreaterThanOrEqual(4 * (seen.length - 1) * 0.8);
  });
});

describe('a dataset row that carries a conversation', () => {
  const dir = mkdtempSync(join(tmpdir(), 'symphonizer-dataset-'));
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('is part of the chain input, validated with ChatMessageSchema, and reaches the model as messages', async () => {
    const file = join(dir, 'chats.jsonl');
    const rows = [
      {
        id: 'r1',
        messages: [
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Hello' },
          { role: 'user', content: 'Tides?' },
        ],
        expected: 'x',
      },
      { id: 'r2', messages: [{ role: 'wizard', content: 'Hi' }] },
    ];
    writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n'));
    const { client, requests } = recordingClient();
    const support = chain({
      name: 's',
      input: z.object({ messages: z.array(ChatMessageSchema) }),
      model: 'sim:echo',
      client,
    })
      .prompt('reply', { messages: ({ input }) => input.messages })
      .build();
    const items = [];
    for await (const item of readDataset(file, { schema: support.inputSchema })) items.push(item);
    expect(items.map((i) => i.ok)).toEqual([true, false]);
    const first = items[0];
    if (first?.ok !== true) throw new Error('row r1 should be valid');
    const { outputs } = await support.run(first.row.input);
    expect(requests[0]?.messages).toEqual(rows[0]?.messages);
    expect(outputs.reply).toBe('[simulated] Tides?');
  });
});

describe('types', () => {
  it('types a partial as a deep-partial of the outputs, and the messages function on the typed context', () => {
    const Plan = z.object({ title: z.string(), steps: z.array(z.object({ name: z.string() })) });
    const plans = chain({ name: 'p', input: z.object({ topic: z.string() }) })
      .prompt('plan', { prompt: ({ input }) => input.topic, output: Plan })
      .prompt('chat', {
        after: ['plan'],
        messages: (context) => {
          expectTypeOf(context.plan).toEqualTypeOf<z.infer<typeof Plan>>();
          return [{ role: 'user', content: context.plan.title }];
        },
      })
      .build();
    type Outputs = { readonly plan: z.infer<typeof Plan>; readonly chat: string };
    expectTypeOf<PartialOf<Outputs, 'plan'>>().toEqualTypeOf<{
      title?: string;
      steps?: { name?: string }[];
    }>();
    expectTypeOf<DeepPartial<string>>().toEqualTypeOf<string>();
    const sample = { type: 'partial-output', node: 'plan', partial: { title: 'T' } } as const;
    const event: ChainEvent<Outputs> = sample;
    expect(event.type).toBe('partial-output');
    expect(plans.name).toBe('p');
  });
});
