/**
 * toUIMessageStream read by the AI SDK's own client code: `parseJsonEventStream` with `uiMessageChunkSchema`
 * (what `DefaultChatTransport` does with a response body) and `readUIMessageStream` (what `Chat` does with
 * the chunks). The assembled message must equal the chain's answer output; its data parts, the node progress.
 */
import {
  parseJsonEventStream,
  readUIMessageStream,
  uiMessageChunkSchema,
  type UIMessage,
  type UIMessageChunk,
} from 'ai';
import { afterAll, beforeAll, beforeEach, describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import {
  ChainRunError,
  ModelClient,
  ProviderRegistry,
  UI_MESSAGE_STREAM_HEADERS,
  chain,
  createOpenAIProvider,
  tool,
  toUIMessageStream,
  toUIMessageStreamResponse,
  type ChainEvent,
  type ChatDataParts,
} from '../../src/index.ts';
import { startFakeProviderServer, type FakeProviderServer } from '../support/fake-provider-server.ts';
import { fakeKey } from '../helpers/fake-keys.ts';

const OPENAI_KEY = fakeKey('test', 'openai', 'S3CRETvalue0123456789wxyz');

/** The chunks of a UI message stream, parsed and validated as the AI SDK's transport does. */
async function chunksOf(stream: ReadableStream<Uint8Array>): Promise<UIMessageChunk[]> {
  const chunks: UIMessageChunk[] = [];
  const parsed = parseJsonEventStream({ stream, schema: uiMessageChunkSchema });
  for await (const result of parsed) {
    if (!result.success) throw result.error;
    chunks.push(result.value);
  }
  return chunks;
}

/** Every snapshot `readUIMessageStream` makes of the assistant message, in order. */
async function messagesOf(chunks: readonly UIMessageChunk[]): Promise<UIMessage[]> {
  const stream = new ReadableStream<UIMessageChunk>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(structuredClone(chunk));
      controller.close();
    },
  });
  const snapshots: UIMessage[] = [];
  for await (const message of readUIMessageStream({ stream })) snapshots.push(structuredClone(message));
  return snapshots;
}

function textOf(message: UIMessage | undefined): string {
  return (message?.parts ?? []).flatMap((p) => (p.type === 'text' ? [p.text] : [])).join('');
}

/** The raw SSE text, to check the framing the protocol asks for. */
async function sseText(stream: ReadableStream<Uint8Array>): Promise<string> {
  return new Response(stream).text();
}

const research = chain({ name: 'chat', input: z.object({ question: z.string() }), model: 'sim:demo' })
  .prompt('research', { prompt: ({ input }) => `Collect facts for: ${input.question}` })
  .prompt('reply', {
    after: ['research'],
    prompt: ({ input, research }) => `Answer "${input.question}" using: ${research}`,
  })
  .build();

describe('toUIMessageStream', () => {
  it('frames every part as `data: <json>` and ends with `data: [DONE]`', async () => {
    const text = await sseText(toUIMessageStream(research.stream({ question: 'Why is the sea salty?' })));
    const events = text.split('\n\n').filter((e) => e !== '');
    expect(events.at(-1)).toBe('data: [DONE]');
    for (const event of events) expect(event).toMatch(/^data: [^\n]+$/);
    expect(JSON.parse(events[0]!.slice(6))).toEqual({ type: 'start' });
  });

  it("assembles, in the AI SDK's readUIMessageStream, the answer node's output as the message text", async () => {
    const events: ChainEvent[] = [];
    const run = research.stream({ question: 'Why is the sea salty?' }, { onEvent: (e) => events.push(e) });
    const chunks = await chunksOf(toUIMessageStream(run));
    const snapshots = await messagesOf(chunks);
    const { outputs } = await run.result;
    const message = snapshots.at(-1);
    expect(textOf(message)).toBe(outputs.reply);
    expect(outputs.reply.length).toBeGreaterThan(0);
    // Tokens arrive as deltas: the text grows over several snapshots.
    const texts = new Set(snapshots.map(textOf).filter((t) => t !== ''));
    expect(texts.size).toBeGreaterThanOrEqual(3);
    // The research node's text is progress, not answer.
    expect(textOf(message)).not.toContain(outputs.research);
    expect(chunks.at(-1)).toEqual({ type: 'finish', finishReason: 'stop' });
    // The data parts are the node progress: one per node, updated in place to its last status.
    const dataParts = (message?.parts ?? []).flatMap((p) =>
      'data' in p && p.type === 'data-node' ? [p.data] : [],
    );
    expect(dataParts).toEqual([
      { node: 'research', status: 'completed', attempt: 1 },
      { node: 'reply', status: 'completed', attempt: 1 },
    ]);
    // And in the stream, the same sequence as the run's node-start / node-done events.
    const progress = chunks.flatMap((c) => (c.type === 'data-node' ? [c.data] : []));
    const expected = events.flatMap((e) =>
      e.type === 'node-start'
        ? [{ node: e.node, status: 'running', attempt: e.attempt }]
        : e.type === 'node-done'
          ? [{ node: e.node, status: e.status, attempt: 1 }]
          : [],
    );
    expect(progress).toEqual(expected);
  });

  it('types the data parts for the AI SDK: UIMessage<unknown, ChatDataParts>', async () => {
    const chunks = await chunksOf(toUIMessageStream(research.stream({ question: 'q' })));
    const stream = new ReadableStream<UIMessageChunk<unknown, ChatDataParts>>({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(chunk as UIMessageChunk<unknown, ChatDataParts>);
        controller.close();
      },
    });
    let last: UIMessage<unknown, ChatDataParts> | undefined;
    for await (const message of readUIMessageStream<UIMessage<unknown, ChatDataParts>>({ stream }))
      last = message;
    const statuses = (last?.parts ?? []).flatMap((p) => (p.type === 'data-node' ? [p.data.status] : []));
    expectTypeOf(statuses).toEqualTypeOf<ChatDataParts['node']['status'][]>();
    expect(statuses).toEqual(['completed', 'completed']);
  });

  it('sends a schema node given as the answer as its JSON output, whole', async () => {
    const Card = z.object({ title: z.string(), points: z.array(z.string()) });
    const cards = chain({ name: 'cards', input: z.object({ topic: z.string() }), model: 'sim:demo' })
      .prompt('card', { prompt: ({ input }) => `A card on ${input.topic}`, output: Card })
      .build();
    const run = cards.stream({ topic: 'tides' });
    const chunks = await chunksOf(toUIMessageStream(run, { answer: 'card' }));
    const snapshots = await messagesOf(chunks);
    const { outputs } = await run.result;
    expect(JSON.parse(textOf(snapshots.at(-1)))).toEqual(outputs.card);
    // Its partial outputs came first, as one data part updated in place (the client keeps the latest).
    const partials = chunks.flatMap((c) => (c.type === 'data-partial-output' ? [c] : []));
    expect(partials.length).toBeGreaterThanOrEqual(2);
    expect(new Set(partials.map((c) => c.id))).toEqual(new Set(['partial-card']));
    const kept = (snapshots.at(-1)?.parts ?? []).filter((p) => p.type === 'data-partial-output');
    expect(kept).toHaveLength(1);
  });

  it("sends a failed tool call as a tool error with a short text, not the tool's message", async () => {
    const lookup = tool({
      name: 'lookup',
      description: 'Looks a term up.',
      input: z.object({ term: z.string() }),
      run: () => {
        throw new Error('db password hunter2 rejected');
      },
    });
    const agentChain = chain({ name: 'agent', input: z.object({ q: z.string() }), model: 'sim:demo' })
      .agent('helper', { prompt: ({ input }) => `Help with ${input.q}`, tools: [lookup], maxSteps: 2 })
      .build();
    const run = agentChain.stream({ q: 'tides' });
    const chunks = await chunksOf(toUIMessageStream(run));
    await run.result;
    const message = (await messagesOf(chunks)).at(-1);
    const failed = (message?.parts ?? []).flatMap((p) => (p.type === 'dynamic-tool' ? [p] : []));
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.map((p) => [p.state, p.errorText])).toEqual(
      failed.map(() => ['output-error', 'The tool "lookup" failed.']),
    );
    // (The model's own answer may quote the tool's error: that is model text, not a tool part.)
    expect(JSON.stringify(chunks.filter((c) => c.type.startsWith('tool-')))).not.toContain('hunter2');
  });

  it("shows an agent's tool calls as tool parts with their input and output", async () => {
    const lookup = tool({
      name: 'lookup',
      description: 'Looks a term up.',
      input: z.object({ term: z.string() }),
      run: ({ term }) => `definition of ${term}`,
    });
    const agentChain = chain({ name: 'agent', input: z.object({ q: z.string() }), model: 'sim:demo' })
      .agent('helper', { prompt: ({ input }) => `Help with ${input.q}`, tools: [lookup], maxSteps: 2 })
      .build();
    const run = agentChain.stream({ q: 'tides' });
    const message = (await messagesOf(await chunksOf(toUIMessageStream(run)))).at(-1);
    const { outputs, steps } = await run.result;
    const calls = steps.helper!.flatMap((s) => s.toolCalls);
    expect(calls.length).toBeGreaterThan(0);
    const toolParts = (message?.parts ?? []).flatMap((p) => (p.type === 'dynamic-tool' ? [p] : []));
    expect(
      toolParts.map((p) => ({ name: p.toolName, state: p.state, input: p.input, output: p.output })),
    ).toEqual(
      calls.map((c) => ({ name: c.name, state: 'output-available', input: c.arguments, output: c.result })),
    );
    // Each turn's text is a part of its own; the last one is the node's output.
    const texts = (message?.parts ?? []).flatMap((p) => (p.type === 'text' ? [p.text] : []));
    expect(texts.at(-1)).toBe(outputs.helper);
  });

  it('ends a failed run with a short error part that carries no provider text, then finish', async () => {
    const client = new ModelClient({
      registry: new ProviderRegistry({ simulated: { failureRate: 1, failureStatus: 400 } }),
    });
    const failing = chain({ name: 'f', input: z.object({ q: z.string() }), model: 'sim:demo', client })
      .prompt('reply', { prompt: ({ input }) => input.q })
      .build();
    const run = failing.stream({ q: 'hello' });
    const chunks = await chunksOf(toUIMessageStream(run));
    const error = await run.result.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChainRunError);
    const errorPart = chunks.find((c) => c.type === 'error');
    expect(errorPart).toEqual({
      type: 'error',
      errorText: 'The answer could not be completed. Please try again.',
    });
    expect(JSON.stringify(chunks)).not.toContain('Simulated failure');
    expect(chunks.at(-1)).toEqual({ type: 'finish', finishReason: 'error' });
    expect(
      chunks.find(
        (c) => c.type === 'data-node' && c.data && (c.data as { status: string }).status === 'error',
      ),
    ).toBeDefined();
  });

  it('lets errorText say more, with the run error in hand', async () => {
    const events: AsyncIterable<ChainEvent> = {
      [Symbol.asyncIterator]: () => ({
        next: () =>
          Promise.reject(
            new Error('Input of chain "x" is invalid: input.q: Expected string, received number.'),
          ),
      }),
    };
    const chunks = await chunksOf(
      toUIMessageStream(events, {
        errorText: (e) => (e?.includes('invalid') === true ? 'Bad input.' : 'Other.'),
      }),
    );
    expect(chunks.map((c) => c.type)).toEqual(['start', 'error', 'finish']);
    expect(chunks[1]).toEqual({ type: 'error', errorText: 'Bad input.' });
  });

  it('cancelling the stream aborts the run', async () => {
    const client = new ModelClient({
      registry: new ProviderRegistry({ simulated: { latency: { minMs: 5000, maxMs: 5000 } } }),
    });
    const slow = chain({ name: 's', input: z.object({ q: z.string() }), model: 'sim:demo', client })
      .prompt('reply', { prompt: ({ input }) => input.q })
      .build();
    const abort = new AbortController();
    const run = slow.stream({ q: 'hello' }, { signal: abort.signal });
    const reader = toUIMessageStream(run, { abortController: abort }).getReader();
    const first = await reader.read(); // start
    expect(new TextDecoder().decode(first.value)).toContain('"start"');
    const started = Date.now();
    await reader.cancel('client left');
    const error = await run.result.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChainRunError);
    expect((error as ChainRunError).status).toBe('cancelled');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('toUIMessageStreamResponse carries the protocol headers', async () => {
    const response = toUIMessageStreamResponse(research.stream({ question: 'q' }), {
      headers: { 'x-extra': '1' },
    });
    for (const [name, value] of Object.entries(UI_MESSAGE_STREAM_HEADERS)) {
      expect(response.headers.get(name)).toBe(value);
    }
    expect(response.headers.get('x-vercel-ai-ui-message-stream')).toBe('v1');
    expect(response.headers.get('x-extra')).toBe('1');
    expect(response.status).toBe(200);
    await response.body?.cancel();
  });
});

describe('toUIMessageStream over the real OpenAI SDK (loopback fake server)', () => {
  let server: FakeProviderServer;
  beforeAll(async () => {
    server = await startFakeProviderServer();
  });
  afterAll(async () => {
    await server.close();
  });
  beforeEach(() => {
    server.reset();
    server.options.streamDelayMs = 2;
    server.options.respond = () => ({ text: 'one two three four five six' });
  });

  function clientFor(): ModelClient {
    const registry = new ProviderRegistry().register(
      createOpenAIProvider({ baseURL: server.openaiBaseURL, apiKey: OPENAI_KEY }),
    );
    return new ModelClient({ registry, retry: { baseDelayMs: 2, maxRetries: 3 } });
  }

  it('sends a transient data-retry notice for a retried attempt, and the answer after it', async () => {
    server.failNth(1, 500);
    const answer = chain({
      name: 'a',
      input: z.object({ q: z.string() }),
      model: 'openai:gpt-4.1-mini',
      client: clientFor(),
    })
      .prompt('reply', { prompt: ({ input }) => input.q })
      .build();
    const run = answer.stream({ q: 'count' });
    const chunks = await chunksOf(toUIMessageStream(run));
    const retry = chunks.find((c) => c.type === 'data-retry');
    expect(retry).toMatchObject({
      transient: true,
      data: { node: 'reply', attempt: 1, kind: 'transport', discarded: false },
    });
    expect(JSON.stringify(retry)).not.toContain(OPENAI_KEY);
    const message = (await messagesOf(chunks)).at(-1);
    expect(textOf(message)).toBe((await run.result).outputs.reply);
    // Transient parts reach onData only: they are not kept in the message (nor sent back by useChat).
    expect(message?.parts.some((p) => p.type === 'data-retry')).toBe(false);
  });

  it('drops the text of an attempt that failed mid-stream (reset-step), keeping only the final answer', async () => {
    server.failNth(1, 'drop-mid-stream');
    const answer = chain({
      name: 'a',
      input: z.object({ q: z.string() }),
      model: 'openai:gpt-4.1-mini',
      client: clientFor(),
    })
      .prompt('reply', { prompt: ({ input }) => input.q })
      .build();
    const run = answer.stream({ q: 'count' }, { retryAfterText: true });
    const chunks = await chunksOf(toUIMessageStream(run));
    expect(chunks.some((c) => c.type === 'reset-step')).toBe(true);
    const message = (await messagesOf(chunks)).at(-1);
    expect(textOf(message)).toBe('one two three four five six');
    expect(textOf(message)).toBe((await run.result).outputs.reply);
  });

  it('aborting through the stream closes the provider connection', async () => {
    server.options.streamDelayMs = 200;
    const answer = chain({
      name: 'a',
      input: z.object({ q: z.string() }),
      model: 'openai:gpt-4.1-mini',
      client: clientFor(),
    })
      .prompt('reply', { prompt: ({ input }) => input.q })
      .build();
    const abort = new AbortController();
    const run = answer.stream({ q: 'count' }, { signal: abort.signal });
    const reader = toUIMessageStream(run, { abortController: abort }).getReader();
    let seen = '';
    while (!seen.includes('text-delta')) seen += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    await server.waitForAborted(1);
    expect(server.aborted).toBe(1);
    await expect(run.result).rejects.toBeInstanceOf(ChainRunError);
  });
});
