/**
 * Time bounds of an attempt, through the real OpenAI and Anthropic SDKs against the loopback fake server:
 * stalled streams end with a retryable timeout within the idle bound, non-streamed bodies that stall end
 * within the request timeout, per-attempt timeouts (`timeoutMs`, a chain's `nodeTimeoutMs`) are retried and
 * name provider and model, and the default request timeout is 2 minutes, not the SDKs' 10.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ChainRunError,
  ModelClient,
  ProviderRegistry,
  RequestTimeoutError,
  RetriesExhaustedError,
  chain,
  createAnthropicProvider,
  createOpenAIProvider,
  type CallEvent,
  type ChainEvent,
  type Provider,
  type StreamEvent,
} from '../../src/index.ts';
import { startFakeProviderServer, type FakeProviderServer } from '../support/fake-provider-server.ts';
import { fakeKey } from '../helpers/fake-keys.ts';

const OPENAI_KEY = fakeKey('test', 'openai', 'S3CRETvalue0123456789wxyz');
const ANTHROPIC_KEY = fakeKey('ant', 'api03', 'test', 'S3CRETvalue0123456789wxyz');
/** Idle bound of these tests: small, so a stall ends quickly; the assertions on time are generous. */
const IDLE_MS = 500;

let server: FakeProviderServer;

beforeAll(async () => {
  server = await startFakeProviderServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  server.reset();
});

interface Settings {
  readonly timeoutMs?: number;
  readonly streamIdleTimeoutMs?: number;
}

const wires = [
  {
    provider: 'openai',
    model: 'gpt-4.1-mini',
    create: (settings: Settings = {}): Provider =>
      createOpenAIProvider({ baseURL: server.openaiBaseURL, apiKey: OPENAI_KEY, ...settings }),
    /** SSE events before the first text: the role chunk. */
    silentEvents: 1,
  },
  {
    provider: 'anthropic',
    model: 'claude-haiku-4-5',
    create: (settings: Settings = {}): Provider =>
      createAnthropicProvider({ baseURL: server.anthropicBaseURL, apiKey: ANTHROPIC_KEY, ...settings }),
    /** SSE events before the first text: message_start, content_block_start, ping. */
    silentEvents: 3,
  },
] as const;

function clientFor(
  provider: Provider,
  options: ConstructorParameters<typeof ModelClient>[0] = {},
): { client: ModelClient; events: CallEvent[] } {
  const events: CallEvent[] = [];
  const client = new ModelClient({
    registry: new ProviderRegistry().register(provider),
    retry: { maxRetries: 2, baseDelayMs: 0 },
    onEvent: (event) => events.push(event),
    ...options,
  });
  return { client, events };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

async function collect(events: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  for await (const event of events) out.push(event);
  return out;
}

describe.each(wires)('a stalled $provider stream', (wire) => {
  const request = { model: wire.model, messages: [{ role: 'user' as const, content: 'a b c d e f g h' }] };

  it('ends with a retryable RequestTimeoutError naming provider, model and the idle bound, and closes the socket', async () => {
    server.failNth(1, { stallAfter: 3 });
    const provider = wire.create({ streamIdleTimeoutMs: IDLE_MS });
    const seen: StreamEvent[] = [];
    const startedAt = performance.now();
    const error = await rejection(
      (async () => {
        for await (const event of provider.stream(request)) seen.push(event);
      })(),
    );
    const elapsedMs = performance.now() - startedAt;
    expect(error).toBeInstanceOf(RequestTimeoutError);
    const timeout = error as RequestTimeoutError;
    expect(timeout.isRetryable).toBe(true);
    expect(timeout.code).toBe('request_timeout');
    expect(timeout.provider).toBe(wire.provider);
    expect(timeout.model).toBe(wire.model);
    expect(timeout.message).toContain(wire.provider);
    expect(timeout.message).toContain(wire.model);
    expect(timeout.message).toContain(`no event for ${IDLE_MS} ms`);
    // The SSE events the SDK hands on (Anthropic's SDK drops the ping).
    expect(timeout.message).toMatch(/after [23] events\./);
    expect(seen.every((e) => e.type === 'text-delta')).toBe(true);
    expect(elapsedMs).toBeLessThan(5_000); // generous: the bound is IDLE_MS
    await server.waitForAborted(1);
    expect(server.aborted).toBe(1);
    await server.waitForIdle();
  }, 10_000);

  it("takes the request's streamIdleTimeoutMs over the provider's", async () => {
    server.failNth(1, { stallAfter: 3 });
    const provider = wire.create({ streamIdleTimeoutMs: 600_000 });
    const error = await rejection(collect(provider.stream({ ...request, streamIdleTimeoutMs: IDLE_MS })));
    expect(error).toBeInstanceOf(RequestTimeoutError);
    expect((error as Error).message).toContain(`${IDLE_MS} ms`);
  }, 10_000);

  it('does not count the time the consumer spends between events', async () => {
    server.options.streamDelayMs = 0;
    const provider = wire.create({ streamIdleTimeoutMs: IDLE_MS });
    const texts: string[] = [];
    for await (const event of provider.stream(request)) {
      if (event.type === 'text-delta') {
        texts.push(event.text);
        if (texts.length === 1) await new Promise((resolve) => setTimeout(resolve, IDLE_MS * 2));
      }
    }
    expect(texts.join('')).toBe('echo: a b c d e f g h');
  }, 10_000);

  it('is retried by ModelClient.stream() when it stalls before any text, and the retry succeeds', async () => {
    server.failNth(1, { stallAfter: wire.silentEvents });
    const { client, events } = clientFor(wire.create(), { streamIdleTimeoutMs: IDLE_MS });
    const streamed = await collect(
      client.stream({ model: `${wire.provider}:${wire.model}`, prompt: 'tell me' }),
    );
    const finish = streamed.at(-1);
    expect(finish?.type === 'finish' ? finish.response.text : undefined).toBe('echo: tell me');
    expect(server.requests).toBe(2);
    const retries = events.filter((e) => e.type === 'retry');
    expect(retries).toHaveLength(1);
    expect(retries[0]).toMatchObject({ kind: 'transport', attempt: 1 });
    expect(retries[0]?.type === 'retry' ? retries[0].reason : '').toContain('stream stalled');
  }, 10_000);

  it('ends a chain stream that stalled after text with a typed timeout, not a hang', async () => {
    server.failRate(1, [{ stallAfter: wire.silentEvents + 2 }]);
    const { client } = clientFor(wire.create(), { streamIdleTimeoutMs: IDLE_MS });
    const story = chain({ name: 'story', input: z.object({ topic: z.string() }), client })
      .prompt('tell', { model: `${wire.provider}:${wire.model}`, prompt: ({ input }) => input.topic })
      .build();
    const run = story.stream({ topic: 'tides' });
    const seen: ChainEvent[] = [];
    for await (const event of run) seen.push(event);
    const error = await rejection(run.result);
    expect(error).toBeInstanceOf(ChainRunError);
    expect((error as ChainRunError).cause).toBeInstanceOf(RequestTimeoutError);
    expect((error as Error).message).toContain(wire.model);
    expect(seen.some((e) => e.type === 'token')).toBe(true);
  }, 10_000);

  it('retries a chain stream that stalled before any text: the result is complete and the run shows the retry', async () => {
    server.failNth(1, { stallAfter: wire.silentEvents });
    const { client } = clientFor(wire.create(), { streamIdleTimeoutMs: IDLE_MS });
    const story = chain({ name: 'story', input: z.object({ topic: z.string() }), client })
      .prompt('tell', { model: `${wire.provider}:${wire.model}`, prompt: ({ input }) => input.topic })
      .build();
    const run = story.stream({ topic: 'tides' });
    const seen: ChainEvent[] = [];
    for await (const event of run) seen.push(event);
    const result = await run.result;
    expect(result.outputs.tell).toBe('echo: tides');
    const retry = seen.find((e) => e.type === 'retry');
    expect(retry).toMatchObject({ type: 'retry', node: 'tell', attempt: 1, kind: 'transport' });
    expect(retry?.type === 'retry' ? retry.reason : '').toContain('stream stalled');
  }, 10_000);
});

describe.each(wires)('$provider request timeouts', (wire) => {
  const modelId = `${wire.provider}:${wire.model}`;

  it('defaults to 120 s per attempt (the SDK is told 120, not its own 600)', async () => {
    const { client } = clientFor(wire.create());
    await client.call({ model: modelId, prompt: 'hi' });
    expect(server.lastRequest?.headers['x-stainless-timeout']).toBe('120');
  });

  it('bound a non-streamed body that stalls after the headers, and the retry succeeds (in the trace)', async () => {
    server.failNth(1, { stallAfter: 0 });
    const { client } = clientFor(wire.create({ timeoutMs: 1500 }));
    const answer = chain({ name: 'answer', input: z.object({ q: z.string() }), client })
      .prompt('reply', { model: modelId, prompt: ({ input }) => input.q })
      .build();
    const result = await answer.run({ q: 'why' });
    expect(result.outputs.reply).toBe('echo: why');
    expect(result.trace.map((r) => r.status)).toEqual(['retrying', 'completed']);
    // Our bound and the SDK's own request timeout are both 1500 ms here; whichever fires first, the attempt
    // ends as a retryable RequestTimeoutError naming the provider.
    expect(result.trace[0]?.error?.message).toMatch(
      /RequestTimeoutError: (openai|anthropic) \(model [^)]+\): (No response within 1500 ms|Request timed out)/,
    );
    expect(server.byStatus.stall).toBe(1);
  }, 10_000);

  it('retries a chain node whose first attempt hangs past nodeTimeoutMs; the trace shows the retry', async () => {
    server.failNth(1, 'hang');
    const { client } = clientFor(wire.create());
    const answer = chain({ name: 'answer', input: z.object({ q: z.string() }), client })
      .prompt('reply', { model: modelId, prompt: ({ input }) => input.q })
      .build();
    const seen: ChainEvent[] = [];
    const result = await answer.run({ q: 'why' }, { nodeTimeoutMs: 1500, onEvent: (e) => seen.push(e) });
    expect(result.outputs.reply).toBe('echo: why');
    expect(result.trace.map((r) => [r.status, r.attempt])).toEqual([
      ['retrying', 1],
      ['completed', 2],
    ]);
    expect(result.trace[1]?.parentId).toBe(result.trace[0]?.runnerId);
    expect(result.trace[0]?.error?.message).toContain('timed out after 1500 ms');
    expect(seen.filter((e) => e.type === 'retry')).toHaveLength(1);
    await server.waitForAborted(1); // the hung attempt's socket was closed
  }, 10_000);

  it('names provider and model when every attempt times out', async () => {
    server.failRate(1, ['hang']);
    const { client } = clientFor(wire.create(), { retry: { maxRetries: 1, baseDelayMs: 0 } });
    const answer = chain({ name: 'answer', input: z.object({ q: z.string() }), client })
      .prompt('reply', { model: modelId, prompt: ({ input }) => input.q })
      .build();
    const error = await rejection(answer.run({ q: 'why' }, { nodeTimeoutMs: 100 }));
    expect(error).toBeInstanceOf(ChainRunError);
    const failure = error as ChainRunError;
    expect(failure.node).toBe('reply');
    expect(failure.message).toContain(wire.provider);
    expect(failure.message).toContain(wire.model);
    expect(failure.message).toContain('timed out after 100 ms');
    expect(failure.cause).toBeInstanceOf(RetriesExhaustedError);
    const last = (failure.cause as RetriesExhaustedError).lastError;
    expect(last).toBeInstanceOf(RequestTimeoutError);
    expect(last).toMatchObject({ provider: wire.provider, model: wire.model, isRetryable: true });
    expect(failure.trace.map((r) => r.status)).toEqual(['retrying', 'error']);
    expect(server.requests).toBe(2);
    await server.waitForAborted(2);
  }, 10_000);

  it('retries a standalone call whose attempt passes timeoutMs', async () => {
    server.failNth(1, 'hang');
    const { client, events } = clientFor(wire.create());
    const result = await client.call({ model: modelId, prompt: 'hi' }, { timeoutMs: 1500 });
    expect(result.text).toBe('echo: hi');
    expect(result.attempt).toBe(2);
    expect(events.filter((e) => e.type === 'retry')).toHaveLength(1);
  }, 10_000);

  it('retries a stream whose attempt passes timeoutMs before any event', async () => {
    server.failNth(1, 'hang');
    const { client, events } = clientFor(wire.create());
    const streamed = await collect(client.stream({ model: modelId, prompt: 'hi' }, { timeoutMs: 1500 }));
    const finish = streamed.at(-1);
    expect(finish?.type === 'finish' ? finish.response.text : undefined).toBe('echo: hi');
    const retry = events.find((e) => e.type === 'retry');
    expect(retry?.type === 'retry' ? retry.reason : '').toContain('timed out after 1500 ms');
  }, 10_000);
});

describe('timeout options', () => {
  it('refuse a timeout that is not a positive finite number', async () => {
    expect(() => new ModelClient({ streamIdleTimeoutMs: 0 })).toThrow(/streamIdleTimeoutMs/);
    const client = new ModelClient();
    await expect(client.call({ model: 'sim:x', prompt: 'hi' }, { timeoutMs: -1 })).rejects.toThrow(
      /timeoutMs/,
    );
    expect(() => client.runner({ model: 'sim:x', prompt: 'hi' }, { timeoutMs: Number.NaN })).toThrow(
      /timeoutMs/,
    );
  });
});
