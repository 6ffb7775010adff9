/**
 * Conversations and streamed structure through the real OpenAI and Anthropic SDKs against the loopback
 * fake server: the wire carries the node's history as a real message array (OpenAI: system messages in
 * place; Anthropic: the system field, merged same-role turns, a user turn first), and a streamed schema
 * node's partial outputs grow to the validated output, also across a retried mid-stream drop.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ModelClient,
  ProviderRegistry,
  chain,
  createAnthropicProvider,
  createOpenAIProvider,
  tool,
  type ChainEvent,
  type ChatMessage,
} from '../../src/index.ts';
import { LEADING_USER_TURN } from '../../src/providers/anthropic/messages-wire.ts';
import { startFakeProviderServer, type FakeProviderServer } from '../support/fake-provider-server.ts';
import { fakeKey } from '../helpers/fake-keys.ts';

const OPENAI_KEY = fakeKey('test', 'openai', 'S3CRETvalue0123456789wxyz');
const ANTHROPIC_KEY = fakeKey('ant', 'api03', 'test', 'S3CRETvalue0123456789wxyz');

let server: FakeProviderServer;

beforeAll(async () => {
  server = await startFakeProviderServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  server.reset();
  server.options.latencyMs = 0;
  server.options.streamDelayMs = 0;
  server.options.respond = undefined;
});

function client(): ModelClient {
  const registry = new ProviderRegistry()
    .register(createOpenAIProvider({ baseURL: server.openaiBaseURL, apiKey: OPENAI_KEY }))
    .register(createAnthropicProvider({ baseURL: server.anthropicBaseURL, apiKey: ANTHROPIC_KEY }));
  return new ModelClient({ registry, retry: { baseDelayMs: 2, maxRetries: 3 } });
}

const Input = z.object({ history: z.array(z.custom<ChatMessage>()), question: z.string() });

/** The template: a system part, one few-shot exchange, the history, then the new question. */
const TEMPLATE = [
  '{{!-- system --}}',
  'You answer briefly.',
  '{{!-- user --}}',
  'What is 2 + 2?',
  '{{!-- assistant --}}',
  '4',
  '{{!-- history --}}',
  '{{!-- user --}}',
  '{{input.question}}',
].join('\n');

const HISTORY: ChatMessage[] = [
  { role: 'user', content: 'My name is Ada.' },
  { role: 'assistant', content: 'Hello Ada.' },
  { role: 'system', content: 'Address the user by name.' },
  { role: 'user', content: 'I like tides.' },
];

function conversationChain(model: string) {
  return chain({ name: 'talk', input: Input, model, client: client() })
    .prompt('reply', { template: TEMPLATE, messages: ({ input }) => input.history })
    .build();
}

describe('a node with messages on the OpenAI wire', () => {
  it('sends system, few-shot turns, the history (its system message in place) and the new turn in order', async () => {
    const talk = conversationChain('openai:gpt-4.1-mini');
    await talk.run({ history: HISTORY, question: 'What do I like?' });
    const body = server.lastRequest?.body as { messages: unknown[] };
    expect(body.messages).toEqual([
      { role: 'system', content: 'You answer briefly.' },
      { role: 'user', content: 'What is 2 + 2?' },
      { role: 'assistant', content: '4' },
      { role: 'user', content: 'My name is Ada.' },
      { role: 'assistant', content: 'Hello Ada.' },
      { role: 'system', content: 'Address the user by name.' },
      { role: 'user', content: 'I like tides.' },
      { role: 'user', content: 'What do I like?' },
    ]);
  });

  it('streams the same array', async () => {
    const talk = conversationChain('openai:gpt-4.1-mini');
    const stream = talk.stream({ history: HISTORY.slice(0, 2), question: 'Again?' });
    for await (const _event of stream) {
      // drain
    }
    await stream.result;
    const request = server.lastRequest;
    expect(request?.stream).toBe(true);
    expect((request?.body as { messages: unknown[] }).messages).toEqual([
      { role: 'system', content: 'You answer briefly.' },
      { role: 'user', content: 'What is 2 + 2?' },
      { role: 'assistant', content: '4' },
      { role: 'user', content: 'My name is Ada.' },
      { role: 'assistant', content: 'Hello Ada.' },
      { role: 'user', content: 'Again?' },
    ]);
  });
});

describe('a node with messages on the Anthropic wire', () => {
  it('puts system text in the system field and merges consecutive user turns', async () => {
    const talk = conversationChain('anthropic:claude-haiku-4-5');
    await talk.run({ history: HISTORY, question: 'What do I like?' });
    const body = server.lastRequest?.body as { system: unknown; messages: unknown[] };
    expect(body.system).toBe('You answer briefly.\n\nAddress the user by name.');
    expect(body.messages).toEqual([
      { role: 'user', content: 'What is 2 + 2?' },
      { role: 'assistant', content: '4' },
      // The few-shot answer and the history's first user turn alternate; its last user turn and the new
      // question are merged into one turn of two text blocks.
      { role: 'user', content: 'My name is Ada.' },
      { role: 'assistant', content: 'Hello Ada.' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'I like tides.' },
          { type: 'text', text: 'What do I like?' },
        ],
      },
    ]);
  });

  it('starts a history that opens with the assistant with a user turn, and drops empty texts', async () => {
    const greeting = chain({
      name: 'greet',
      input: Input,
      model: 'anthropic:claude-haiku-4-5',
      client: client(),
    })
      .prompt('reply', { messages: ({ input }) => input.history })
      .build();
    await greeting.run({
      history: [
        { role: 'assistant', content: 'Hi! How can I help?' },
        { role: 'user', content: '' },
        { role: 'user', content: 'Tell me about tides.' },
      ],
      question: 'unused',
    });
    const body = server.lastRequest?.body as { system?: unknown; messages: unknown[] };
    expect(body.system).toBeUndefined();
    expect(body.messages).toEqual([
      { role: 'user', content: LEADING_USER_TURN },
      { role: 'assistant', content: 'Hi! How can I help?' },
      { role: 'user', content: 'Tell me about tides.' },
    ]);
  });
});

/** A history in which the assistant called a tool: its call and the result are part of the conversation. */
const TOOL_HISTORY: ChatMessage[] = [
  { role: 'user', content: 'Weather in Oslo?' },
  {
    role: 'assistant',
    content: '',
    toolCalls: [{ id: 'call_1', name: 'weather', arguments: { city: 'Oslo' } }],
  },
  { role: 'tool', toolCallId: 'call_1', content: 'rain, 8 C' },
  { role: 'assistant', content: 'Rain and 8 C.' },
  { role: 'user', content: 'And tomorrow?' },
];

function toolHistoryChain(model: string) {
  return chain({ name: 'talk', input: Input, model, client: client() })
    .prompt('reply', { messages: ({ input }) => input.history })
    .build();
}

describe('a history with tool calls', () => {
  it('reaches OpenAI as an assistant message with tool_calls and a tool message', async () => {
    await toolHistoryChain('openai:gpt-4.1-mini').run({ history: TOOL_HISTORY, question: '' });
    expect((server.lastRequest?.body as { messages: unknown[] }).messages).toEqual([
      { role: 'user', content: 'Weather in Oslo?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Oslo"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_1', content: 'rain, 8 C' },
      { role: 'assistant', content: 'Rain and 8 C.' },
      { role: 'user', content: 'And tomorrow?' },
    ]);
  });

  it('reaches Anthropic as tool_use and tool_result blocks, the result in a user turn', async () => {
    await toolHistoryChain('anthropic:claude-haiku-4-5').run({ history: TOOL_HISTORY, question: '' });
    expect((server.lastRequest?.body as { messages: unknown[] }).messages).toEqual([
      { role: 'user', content: 'Weather in Oslo?' },
      {
        role: 'assistant',
        content: [{ type: 'tool_use', id: 'call_1', name: 'weather', input: { city: 'Oslo' } }],
      },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_1', content: 'rain, 8 C' }] },
      { role: 'assistant', content: 'Rain and 8 C.' },
      { role: 'user', content: 'And tomorrow?' },
    ]);
  });
});

const Plan = z.object({
  title: z.string(),
  steps: z.array(z.object({ name: z.string(), minutes: z.number() })),
  done: z.boolean(),
});
const PLAN = {
  title: 'Watch the tide come in',
  steps: [
    { name: 'walk to the beach', minutes: 15 },
    { name: 'find a dry rock', minutes: 5 },
    { name: 'wait and watch the water rise', minutes: 40 },
  ],
  done: false,
};

function planChain(model: string) {
  return chain({ name: 'plans', input: z.object({ topic: z.string() }), model, client: client() })
    .prompt('plan', { prompt: ({ input }) => `Plan: ${input.topic}`, output: Plan })
    .build();
}

/** Each partial is consistent with the final value: nothing it has is changed later, only extended. */
function extends_(later: unknown, earlier: unknown): boolean {
  if (typeof earlier === 'string') return typeof later === 'string' && later.startsWith(earlier);
  if (Array.isArray(earlier)) {
    if (!Array.isArray(later) || later.length < earlier.length) return false;
    return earlier.every((item, i) =>
      i < earlier.length - 1 ? isEqual(later[i], item) : extends_(later[i], item),
    );
  }
  if (typeof earlier === 'object' && earlier !== null) {
    if (typeof later !== 'object' || later === null) return false;
    return Object.entries(earlier).every(
      ([key, value]) => key in later && extends_((later as Record<string, unknown>)[key], value),
    );
  }
  return Object.is(later, earlier);
}

function isEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

const models = ['openai:gpt-4.1-mini', 'anthropic:claude-haiku-4-5'] as const;

describe.each(models)('a streamed schema node (%s)', (model) => {
  it('sends partial outputs that only grow, then the validated output', async () => {
    // Pretty-printed JSON, so the server streams it in many pieces.
    server.options.respond = () => ({ text: JSON.stringify(PLAN, null, 1) });
    const events: ChainEvent[] = [];
    const stream = planChain(model).stream({ topic: 'tides' });
    for await (const event of stream) events.push(event);
    const result = await stream.result;
    expect(result.outputs.plan).toEqual(PLAN);
    const partials = events.filter((e) => e.type === 'partial-output').map((e) => e.partial);
    expect(partials.length).toBeGreaterThanOrEqual(10);
    partials.forEach((partial, i) => {
      if (i > 0) {
        expect(isEqual(partial, partials[i - 1])).toBe(false);
        expect(extends_(partial, partials[i - 1])).toBe(true);
      }
      expect(extends_(PLAN, partial)).toBe(true);
    });
    // Distinct intermediate states: a title cut short, then steps arriving one by one.
    expect(
      partials.some(
        (p) =>
          typeof (p as { title?: string }).title === 'string' &&
          (p as { title: string }).title.length < PLAN.title.length,
      ),
    ).toBe(true);
    expect(
      new Set(partials.map((p) => (p as { steps?: unknown[] }).steps?.length ?? -1)).size,
    ).toBeGreaterThanOrEqual(4);
    const done = events.find((e) => e.type === 'node-done');
    expect(done).toMatchObject({ node: 'plan', status: 'completed', output: PLAN });
    expect(events.findIndex((e) => e.type === 'node-done')).toBeGreaterThan(
      events.findLastIndex((e) => e.type === 'partial-output'),
    );
    expect(events.some((e) => e.type === 'token')).toBe(false);
  });

  it('after a drop mid-stream (retryAfterText), discards the partials and streams the next attempt from the start', async () => {
    server.options.respond = () => ({ text: JSON.stringify(PLAN, null, 1) });
    server.options.streamDelayMs = 2;
    server.failNth(1, 'drop-mid-stream');
    const events: ChainEvent[] = [];
    const stream = planChain(model).stream({ topic: 'tides' }, { retryAfterText: true });
    for await (const event of stream) events.push(event);
    const result = await stream.result;
    expect(result.outputs.plan).toEqual(PLAN);
    const retry = events.findIndex((e) => e.type === 'retry');
    expect(events[retry]).toMatchObject({
      type: 'retry',
      node: 'plan',
      kind: 'transport',
      discardTokens: true,
    });
    const before = events.slice(0, retry).filter((e) => e.type === 'partial-output');
    const after = events
      .slice(retry)
      .filter((e) => e.type === 'partial-output')
      .map((e) => e.partial);
    expect(before.length).toBeGreaterThan(0);
    // The next attempt starts over: its first partial is smaller than the last one before the drop.
    expect(JSON.stringify(after[0]).length).toBeLessThan(JSON.stringify(before.at(-1)?.partial).length);
    after.forEach((partial, i) => {
      if (i > 0) expect(extends_(partial, after[i - 1])).toBe(true);
    });
    expect(after.at(-1)).toEqual(PLAN);
  });

  it('re-asks after a streamed output that fails validation, with a repair retry that discards the partials', async () => {
    let calls = 0;
    server.options.respond = () => {
      calls += 1;
      return {
        text: calls === 1 ? JSON.stringify({ title: 'half a plan' }, null, 1) : JSON.stringify(PLAN, null, 1),
      };
    };
    const events: ChainEvent[] = [];
    const stream = planChain(model).stream({ topic: 'tides' });
    for await (const event of stream) events.push(event);
    const result = await stream.result;
    expect(result.outputs.plan).toEqual(PLAN);
    expect(events.find((e) => e.type === 'retry')).toMatchObject({
      kind: 'repair',
      discardTokens: true,
      delayMs: 0,
    });
    // The re-ask carries the bad reply and what was wrong with it.
    const messages = (server.lastRequest?.body as { messages: { role: string; content: unknown }[] })
      .messages;
    expect(JSON.stringify(messages.at(-2))).toContain('half a plan');
    expect(JSON.stringify(messages.at(-1))).toMatch(/steps/);
  });
});

describe.each(models)('a streamed agent (%s)', (model) => {
  it('streams the tool call, its result, and the final turn as tokens that make the output', async () => {
    const weather = tool({
      name: 'weather',
      description: 'The weather in a city.',
      input: z.object({ city: z.string() }),
      run: ({ city }) => `rain in ${city}`,
    });
    const agent = chain({ name: 'a', input: z.object({ q: z.string() }), model, client: client() })
      .agent('helper', { tools: [weather], prompt: ({ input }) => input.q })
      .build();
    server.options.streamDelayMs = 1;
    const events: ChainEvent[] = [];
    const stream = agent.stream({ q: 'Weather in Oslo, in a few words please' });
    for await (const event of stream) events.push(event);
    const result = await stream.result;
    const call = events.find((e) => e.type === 'tool-call');
    const outcome = events.find((e) => e.type === 'tool-result');
    expect(call).toMatchObject({ node: 'helper', step: 1, toolName: 'weather' });
    expect(outcome).toMatchObject({
      node: 'helper',
      step: 1,
      ok: true,
      output: expect.stringMatching(/^rain in /) as string,
    });
    const tokens = events.flatMap((e) => (e.type === 'token' ? [e] : []));
    expect(tokens.length).toBeGreaterThan(1);
    expect(tokens.every((t) => t.step === 2)).toBe(true);
    expect(tokens.map((t) => t.text).join('')).toBe(result.outputs.helper);
    // Both turns went out as streamed requests.
    expect(server.log.filter((r) => r.stream).length).toBe(2);
  });
});
