/**
 * ModelClient retry rules through the real SDKs against the fake server, on both paths: inside a Composition
 * (`client.runner()`, each retry a `retryTask()` child via TryAgainError) and standalone (`client.call()`, on
 * p-retry). 429/408/5xx/529 are retried (Retry-After honoured), 400/401 are not, and exhaustion is a
 * RetriesExhaustedError holding every attempt's error.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AuthenticationError,
  BadRequestError,
  Composition,
  DAGNote,
  InternalServerError,
  ModelClient,
  NodeError,
  ProviderError,
  ProviderRegistry,
  RateLimitError,
  RetriesExhaustedError,
  TryAgainError,
  createAnthropicProvider,
  createOpenAIProvider,
  type CallEvent,
  type CallResult,
  type ModelClientOptions,
} from '../../src/index.ts';
import {
  startFakeProviderServer,
  type FakeFault,
  type FakeProviderServer,
} from '../support/fake-provider-server.ts';
import { fakeKey } from '../helpers/fake-keys.ts';

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
  server.options.respond = undefined;
  server.options.rateLimit = undefined;
});

const OPENAI = 'openai:gpt-4.1-mini';
const ANTHROPIC = 'anthropic:claude-haiku-4-5';

function clientFor(options: ModelClientOptions = {}): { client: ModelClient; events: CallEvent[] } {
  const events: CallEvent[] = [];
  const registry = new ProviderRegistry()
    .register(
      createOpenAIProvider({ baseURL: server.openaiBaseURL, apiKey: fakeKey('test', 'retry', '0123456789') }),
    )
    .register(
      createAnthropicProvider({
        baseURL: server.anthropicBaseURL,
        apiKey: fakeKey('ant', 'test', 'retry', '0123456789'),
      }),
    );
  const client = new ModelClient({
    registry,
    retry: { maxRetries: 3, baseDelayMs: 2 },
    onEvent: (event) => events.push(event),
    ...options,
  });
  return { client, events };
}

/** A one-node Composition whose node calls `modelId` through `client.runner()`. */
function single(client: ModelClient, modelId: string): Composition {
  return new Composition([[new DAGNote('ask'), []]], {
    maxTries: client.maxTries,
    configureNodeRunner: () => client.runner({ model: modelId, prompt: 'hi' }),
  });
}

/** Faults with a tiny Retry-After (OpenAI sends `retry-after-ms`), so the honoured wait is short. */
const quick = (status: number): FakeFault => ({ status, retryAfterMs: 5 });

describe('ModelClient.runner() retries inside a Composition', () => {
  it('a 429 with Retry-After, then success: attempts 1..n as retryTask children, status 429 on the failed tries', async () => {
    server.failNth(1, { status: 429, retryAfterMs: 20 });
    server.failNth(2, { status: 429, retryAfterMs: 10 });
    const { client, events } = clientFor();
    const composition = single(client, OPENAI);
    expect(await composition.start()).toBe('completed');
    const trace = composition.trace();
    expect(trace.map((r) => [r.status, r.attempt, r.error?.status])).toEqual([
      ['retrying', 1, 429],
      ['retrying', 2, 429],
      ['completed', 3, undefined],
    ]);
    expect(trace[0]?.parentId).toBeUndefined();
    expect(trace[1]?.parentId).toBe(trace[0]?.runnerId);
    expect(trace[2]?.parentId).toBe(trace[1]?.runnerId);
    expect(new Set(trace.map((r) => r.runnerId)).size).toBe(3);
    expect(trace[0]?.error).toMatchObject({ name: 'TryAgainError', code: 'try_again' });
    expect(trace[0]?.error?.message).toMatch(/status 429/);
    expect((composition.results.get('ask') as CallResult).attempt).toBe(3);
    expect(server.byStatus).toEqual({ '429': 2, '200': 1 });
    // The server's Retry-After is the delay (not the tiny backoff).
    expect(events.filter((e) => e.type === 'retry')).toEqual([
      expect.objectContaining({ kind: 'transport', attempt: 1, delayMs: 20, nodeKey: 'ask' }),
      expect.objectContaining({ kind: 'transport', attempt: 2, delayMs: 10, nodeKey: 'ask' }),
    ]);
  });

  it.each([
    [OPENAI, 500],
    [OPENAI, 503],
    [OPENAI, 529],
    [OPENAI, 408],
    [ANTHROPIC, 500],
  ])('%s: status %i is retried', async (modelId, status) => {
    server.failNth(1, status === 500 ? 500 : quick(status));
    const { client } = clientFor();
    const composition = single(client, modelId);
    expect(await composition.start()).toBe('completed');
    expect(composition.trace().map((r) => [r.status, r.attempt, r.error?.status])).toEqual([
      ['retrying', 1, status],
      ['completed', 2, undefined],
    ]);
    expect(server.requests).toBe(2);
  });

  it.each([
    [OPENAI, 400, BadRequestError],
    [OPENAI, 401, AuthenticationError],
    [ANTHROPIC, 400, BadRequestError],
    [ANTHROPIC, 401, AuthenticationError],
  ])(
    '%s: status %i is not retried; the NodeError cause is the ProviderError',
    async (modelId, status, type) => {
      server.failNth(1, status);
      const { client, events } = clientFor();
      const composition = single(client, modelId);
      expect(await composition.start()).toBe('error');
      const error = composition.error as NodeError;
      expect(error).toBeInstanceOf(NodeError);
      expect(error.nodeKey).toBe('ask');
      expect(error.cause).toBeInstanceOf(type);
      expect(error.cause).toMatchObject({ status, provider: modelId.split(':')[0] });
      expect(server.requests).toBe(1);
      const trace = composition.trace();
      expect(trace.map((r) => [r.status, r.attempt, r.error?.status])).toEqual([['error', 1, status]]);
      expect(events.filter((e) => e.type === 'retry')).toEqual([]);
    },
  );

  it('retries exhausted: RetriesExhaustedError with the error of every attempt', async () => {
    for (let n = 1; n <= 3; n++) server.failNth(n, 500);
    const { client } = clientFor({ retry: { maxRetries: 2, baseDelayMs: 1 } });
    const composition = single(client, OPENAI);
    expect(await composition.start()).toBe('error');
    const cause = (composition.error as NodeError).cause;
    expect(cause).toBeInstanceOf(RetriesExhaustedError);
    const exhausted = cause as RetriesExhaustedError;
    expect(exhausted.stop).toBe('max_retries');
    expect(exhausted.attempts).toBe(3);
    expect(exhausted.errors).toHaveLength(3);
    for (const error of exhausted.errors) expect(error).toBeInstanceOf(InternalServerError);
    expect(exhausted.lastError).toBe(exhausted.errors[2]);
    expect(composition.trace().map((r) => [r.status, r.attempt])).toEqual([
      ['retrying', 1],
      ['retrying', 2],
      ['error', 3],
    ]);
    expect(server.requests).toBe(3);
  });

  it('a retryable failure then a non-retryable one stops with RetriesExhaustedError (not_retryable)', async () => {
    server.failNth(1, 500);
    server.failNth(2, 400);
    const { client } = clientFor();
    const composition = single(client, OPENAI);
    expect(await composition.start()).toBe('error');
    const cause = (composition.error as NodeError).cause as RetriesExhaustedError;
    expect(cause).toBeInstanceOf(RetriesExhaustedError);
    expect(cause.stop).toBe('not_retryable');
    expect(cause.errors.map((e) => (e as ProviderError).status)).toEqual([500, 400]);
    expect(server.requests).toBe(2);
  });

  it('a Retry-After longer than maxRetryAfterMs is not waited for', async () => {
    server.failNth(1, { status: 429, retryAfterMs: 5000 });
    const { client } = clientFor({ retry: { maxRetryAfterMs: 1000, baseDelayMs: 1 } });
    const composition = single(client, OPENAI);
    expect(await composition.start()).toBe('error');
    expect((composition.error as NodeError).cause).toBeInstanceOf(RateLimitError);
    expect(server.requests).toBe(1);
  });

  it('a Composition with a smaller maxTries stops first, with the TryAgainError', async () => {
    for (let n = 1; n <= 3; n++) server.failNth(n, 500);
    const { client } = clientFor();
    const composition = new Composition([[new DAGNote('ask'), []]], {
      maxTries: 2,
      configureNodeRunner: () => client.runner({ model: OPENAI, prompt: 'hi' }),
    });
    expect(await composition.start()).toBe('error');
    const cause = (composition.error as NodeError).cause;
    expect(cause).toBeInstanceOf(TryAgainError);
    expect((cause as Error).cause).toBeInstanceOf(InternalServerError);
    expect(server.requests).toBe(2);
  });
});

describe('ModelClient.call() retries standalone (p-retry)', () => {
  it('a 429 with Retry-After, then success; the wait is the server’s', async () => {
    server.failNth(1, { status: 429, retryAfterMs: 15 });
    const { client, events } = clientFor();
    const result = await client.call({ model: OPENAI, prompt: 'hi' });
    expect(result.attempt).toBe(2);
    expect(result.text).toBe('echo: hi');
    expect(server.byStatus).toEqual({ '429': 1, '200': 1 });
    expect(events.filter((e) => e.type === 'retry')).toEqual([
      expect.objectContaining({ kind: 'transport', attempt: 1, delayMs: 15 }),
    ]);
    expect(events.filter((e) => e.type === 'call')).toHaveLength(1);
  });

  it.each([
    [OPENAI, 500],
    [OPENAI, 503],
    [OPENAI, 529],
    [ANTHROPIC, 500],
  ])('%s: status %i is retried', async (modelId, status) => {
    server.failNth(1, status === 500 ? 500 : quick(status));
    server.failNth(2, status === 500 ? 500 : quick(status));
    const { client } = clientFor();
    const result = await client.call({ model: modelId, prompt: 'hi' });
    expect(result.attempt).toBe(3);
    expect(server.byStatus).toEqual({ [String(status)]: 2, '200': 1 });
  });

  it.each([
    [OPENAI, 400, BadRequestError],
    [OPENAI, 401, AuthenticationError],
    [ANTHROPIC, 400, BadRequestError],
    [ANTHROPIC, 401, AuthenticationError],
  ])('%s: status %i is thrown as is, after one request', async (modelId, status, type) => {
    server.failNth(1, status);
    const { client, events } = clientFor();
    const error = await client.call({ model: modelId, prompt: 'hi' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(type);
    expect(error).toMatchObject({ status });
    expect(server.requests).toBe(1);
    expect(events).toEqual([]);
  });

  it('retries exhausted: RetriesExhaustedError with every attempt’s error', async () => {
    for (let n = 1; n <= 3; n++) server.failNth(n, n === 2 ? quick(503) : 500);
    const { client, events } = clientFor({ retry: { maxRetries: 2, baseDelayMs: 1 } });
    const error = await client.call({ model: OPENAI, prompt: 'hi' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetriesExhaustedError);
    const exhausted = error as RetriesExhaustedError;
    expect(exhausted.stop).toBe('max_retries');
    expect(exhausted.errors.map((e) => (e as ProviderError).status)).toEqual([500, 503, 500]);
    expect(exhausted.message).toMatch(/Gave up after 3 attempts/);
    expect(server.requests).toBe(3);
    expect(events.filter((e) => e.type === 'retry').map((e) => e.attempt)).toEqual([1, 2]);
  });

  it.each([OPENAI, ANTHROPIC])('%s: a dropped connection is retried', async (modelId) => {
    server.failNth(1, 'drop');
    const { client, events } = clientFor();
    const result = await client.call({ model: modelId, prompt: 'hi' });
    expect(result.attempt).toBe(2);
    expect(server.requests).toBe(2);
    expect(events.find((e) => e.type === 'retry')?.reason).toMatch(/ConnectionError/);
  });

  it('usage is recorded only for the successful attempt', async () => {
    server.failNth(1, 500);
    const { client } = clientFor();
    const result = await client.call({ model: OPENAI, prompt: 'hi' }, { labels: { nodeKey: 'solo' } });
    expect(client.usage.total.calls).toBe(1);
    expect(client.usage.forNode('solo')?.inputTokens).toBe(result.usage.inputTokens);
  });
});
