/**
 * Mid-stream drops, through the real OpenAI and Anthropic SDKs against the loopback fake server: a drop
 * after text was streamed is retried when the tokens only went into a result (`run`, `runAll`), and for a
 * live `stream()` consumer only when it opted in with `retryAfterText` (it then sees a `retry` event with
 * `discardTokens: true` and the full text of the next attempt).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ChainRunError,
  ModelClient,
  ProviderRegistry,
  chain,
  createAnthropicProvider,
  createOpenAIProvider,
  type CallEvent,
  type ChainEvent,
} from '../../src/index.ts';
import { startFakeProviderServer, type FakeProviderServer } from '../support/fake-provider-server.ts';
import { fakeKey } from '../helpers/fake-keys.ts';

const OPENAI_KEY = fakeKey('test', 'openai', 'S3CRETvalue0123456789wxyz');
const ANTHROPIC_KEY = fakeKey('ant', 'api03', 'test', 'S3CRETvalue0123456789wxyz');
const ANSWER = 'one two three four five six seven eight nine ten';

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
  server.options.streamDelayMs = 5; // so the first deltas reach the client before the drop
  server.options.respond = () => ({ text: ANSWER });
});

function clientFor(options: { streamIdleTimeoutMs?: number } = {}): {
  client: ModelClient;
  events: CallEvent[];
} {
  const events: CallEvent[] = [];
  const registry = new ProviderRegistry()
    .register(createOpenAIProvider({ baseURL: server.openaiBaseURL, apiKey: OPENAI_KEY }))
    .register(createAnthropicProvider({ baseURL: server.anthropicBaseURL, apiKey: ANTHROPIC_KEY }));
  const client = new ModelClient({
    registry,
    retry: { baseDelayMs: 2, maxRetries: 3 },
    onEvent: (event) => events.push(event),
    ...options,
  });
  return { client, events };
}

function answerChain(model: string, client: ModelClient) {
  return chain({ name: 'answer', input: z.object({ q: z.string() }), model, client })
    .prompt('answer', { prompt: ({ input }) => `Count: ${input.q}` })
    .build();
}

const models = ['openai:gpt-4.1-mini', 'anthropic:claude-haiku-4-5'] as const;

describe.each(models)('a drop after text was streamed (%s)', (model) => {
  it('client.stream() with retryAfterText: a retry event, then the whole text of the next attempt', async () => {
    server.failNth(1, 'drop-mid-stream');
    const { client, events } = clientFor();
    const seen: string[] = [];
    let text = '';
    for await (const event of client.stream({ model, prompt: 'count' }, { retryAfterText: true })) {
      seen.push(event.type);
      if (event.type === 'text-delta') text += event.text;
      if (event.type === 'retry') {
        expect(event).toMatchObject({ attempt: 1, delayMs: expect.any(Number) as number });
        expect(event.error).toMatchObject({ name: 'ConnectionError' });
        text = '';
      }
    }
    expect(text).toBe(ANSWER);
    expect(seen.indexOf('retry')).toBeGreaterThan(seen.indexOf('text-delta'));
    expect(seen.at(-1)).toBe('finish');
    expect(server.requests).toBe(2);
    expect(events.filter((e) => e.type === 'retry')).toMatchObject([
      { kind: 'transport', attempt: 1, discardText: true },
    ]);
    // The dropped attempt is counted (estimated), then the finished one.
    expect(events.flatMap((e) => (e.type === 'call' ? [e.estimated] : []))).toEqual([true, false]);
  });

  it('chain.run() with streamTokens and no live consumer retries and returns the full output', async () => {
    server.failNth(1, 'drop-mid-stream');
    const { client, events } = clientFor();
    const result = await answerChain(model, client).run({ q: 'ten' }, { streamTokens: true });
    expect(result.outputs.answer).toBe(ANSWER);
    expect(result.usageByNode.answer?.calls).toBe(2); // the dropped attempt (estimated) and the finished one
    expect(server.requests).toBe(2);
    expect(events.filter((e) => e.type === 'retry')).toMatchObject([
      { nodeKey: 'answer', kind: 'transport', attempt: 1, discardText: true },
    ]);
  });

  it('chain.run() with streamTokens retries a stream that stalls after text', async () => {
    server.failNth(1, { stallAfter: 6 });
    const { client, events } = clientFor({ streamIdleTimeoutMs: 500 });
    const result = await answerChain(model, client).run({ q: 'ten' }, { streamTokens: true });
    expect(result.outputs.answer).toBe(ANSWER);
    expect(server.requests).toBe(2);
    expect(events.filter((e) => e.type === 'retry')).toMatchObject([{ attempt: 1, discardText: true }]);
  });

  it('chain.runAll() with streamTokens retries each dropped run', async () => {
    server.failNth(1, 'drop-mid-stream');
    server.failNth(3, 'drop-mid-stream');
    const { client } = clientFor();
    const settled = await answerChain(model, client).runAll([{ q: 'a' }, { q: 'b' }, { q: 'c' }], {
      streamTokens: true,
    });
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    for (const s of settled) if (s.status === 'fulfilled') expect(s.value.outputs.answer).toBe(ANSWER);
    expect(server.requests).toBe(5);
  });

  it('chain.run() without streaming retries a drop in the middle of the body', async () => {
    server.failNth(1, 'drop-mid-stream');
    const { client } = clientFor();
    const events: ChainEvent[] = [];
    const result = await answerChain(model, client).run(
      { q: 'ten' },
      { onEvent: (event) => events.push(event) },
    );
    expect(result.outputs.answer).toBe(ANSWER);
    expect(server.requests).toBe(2);
    expect(events.filter((e) => e.type === 'retry')).toMatchObject([{ node: 'answer', kind: 'transport' }]);
  });

  it('chain.run() with streamTokens and onEvent keeps tokens final unless retryAfterText is set', async () => {
    server.failNth(1, 'drop-mid-stream');
    const { client } = clientFor();
    const c = answerChain(model, client);
    const error = await c
      .run({ q: 'ten' }, { streamTokens: true, onEvent: () => undefined })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChainRunError);
    expect(server.requests).toBe(1);

    server.failNth(1, 'drop-mid-stream');
    const events: ChainEvent[] = [];
    const result = await c.run(
      { q: 'ten' },
      { streamTokens: true, retryAfterText: true, onEvent: (event) => events.push(event) },
    );
    expect(result.outputs.answer).toBe(ANSWER);
    expect(events.filter((e) => e.type === 'retry')).toMatchObject([
      { node: 'answer', attempt: 1, discardTokens: true },
    ]);
  });

  it('chain.stream() without opt-in fails with the typed error after the partial text', async () => {
    server.failNth(1, 'drop-mid-stream');
    const { client } = clientFor();
    const run = answerChain(model, client).stream({ q: 'ten' });
    const events: ChainEvent[] = [];
    for await (const event of run) events.push(event);
    const error = await run.result.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChainRunError);
    expect((error as ChainRunError).cause).toMatchObject({ name: 'ConnectionError' });
    const tokens = events.flatMap((e) => (e.type === 'token' ? [e.text] : []));
    expect(tokens.length).toBeGreaterThan(0);
    expect(tokens.join('')).not.toBe(ANSWER);
    expect(events.filter((e) => e.type === 'retry')).toEqual([]);
    expect(server.requests).toBe(1);
  });

  it('chain.stream() with retryAfterText: a retry event says to discard the tokens, then the full text', async () => {
    server.failNth(1, 'drop-mid-stream');
    const { client } = clientFor();
    const run = answerChain(model, client).stream({ q: 'ten' }, { retryAfterText: true });
    const order: string[] = [];
    let text = '';
    for await (const event of run) {
      const e = event as ChainEvent;
      order.push(e.type);
      if (e.type === 'token') text += e.text;
      if (e.type === 'retry') {
        expect(e).toMatchObject({ node: 'answer', kind: 'transport', discardTokens: true });
        text = '';
      }
    }
    const result = await run.result;
    expect(text).toBe(ANSWER);
    expect(result.outputs.answer).toBe(ANSWER);
    expect(order.indexOf('retry')).toBeGreaterThan(order.indexOf('token'));
    expect(order.lastIndexOf('token')).toBeGreaterThan(order.indexOf('retry'));
    expect(server.requests).toBe(2);
  });
});
