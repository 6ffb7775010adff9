/**
 * Usage and errors on cancel, through the real OpenAI and Anthropic SDKs against the loopback fake server:
 * a cancelled streamed chain keeps the streamed usage in its error as in `client.usage`; a cancelled
 * non-streamed call records its estimate; a call aborted while queued in the rate limiter is a typed
 * `AbortedError`; an error event inside a stream after a 200 has no status (none was on the wire).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  AbortedError,
  ChainRunError,
  InternalServerError,
  ModelClient,
  OverloadedError,
  ProviderError,
  ProviderRegistry,
  RateLimitError,
  chain,
  createAnthropicProvider,
  createOpenAIProvider,
  type CallEvent,
} from '../../src/index.ts';
import { startFakeProviderServer, type FakeProviderServer } from '../support/fake-provider-server.ts';
import { fakeKey } from '../helpers/fake-keys.ts';

const OPENAI_KEY = fakeKey('test', 'openai', 'S3CRETvalue0123456789wxyz');
const ANTHROPIC_KEY = fakeKey('ant', 'api03', 'test', 'S3CRETvalue0123456789wxyz');
const LONG = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');

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
  server.options.rateLimit = undefined;
});

function registry(): ProviderRegistry {
  return new ProviderRegistry()
    .register(createOpenAIProvider({ baseURL: server.openaiBaseURL, apiKey: OPENAI_KEY }))
    .register(createAnthropicProvider({ baseURL: server.anthropicBaseURL, apiKey: ANTHROPIC_KEY }));
}

const wires = [
  { api: 'openai', model: 'openai:gpt-4.1-mini' },
  { api: 'anthropic', model: 'anthropic:claude-haiku-4-5' },
] as const;

describe.each(wires)('usage on cancel ($api)', ({ model }) => {
  it('a chain.stream cancelled after some tokens has the streamed usage in its ChainRunError, as client.usage does', async () => {
    server.options.respond = () => ({ text: LONG });
    server.options.streamDelayMs = 20;
    const client = new ModelClient({ registry: registry(), retry: { maxRetries: 0 } });
    const controller = new AbortController();
    const c = chain({ name: 'cancelled', input: z.object({}), model, client })
      .prompt('talk', { template: 'Talk for a while.' })
      .build();
    const stream = c.stream({}, { signal: controller.signal });
    let tokens = 0;
    for await (const event of stream) {
      if (event.type === 'token' && ++tokens === 3) controller.abort();
    }
    const error = await stream.result.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ChainRunError);
    const failure = error as ChainRunError;
    expect(failure.status).toBe('cancelled');
    const meter = client.usage.total;
    expect(meter.outputTokens).toBeGreaterThan(0);
    expect(failure.usage.outputTokens).toBe(meter.outputTokens);
    expect(failure.usage.inputTokens).toBe(meter.inputTokens);
    expect(failure.usage.calls).toBe(1);
  });

  it('a non-streamed call cancelled in flight records its estimate in client.usage, marked as estimated', async () => {
    server.options.latencyMs = 5_000;
    const events: CallEvent[] = [];
    const client = new ModelClient({ registry: registry(), onEvent: (e) => events.push(e) });
    const controller = new AbortController();
    const call = client.call({ model, prompt: 'Say something long.' }, { signal: controller.signal });
    await server.waitForRequests(1);
    controller.abort();
    await expect(call).rejects.toBeInstanceOf(AbortedError);
    expect(client.usage.total.calls).toBe(1);
    expect(client.usage.total.inputTokens).toBeGreaterThan(0);
    const recorded = events.filter((e) => e.type === 'call');
    expect(recorded).toHaveLength(1);
    expect(recorded[0]?.type === 'call' && recorded[0].estimated).toBe(true);
  });

  it('a call aborted while queued in the rate limiter rejects with a typed AbortedError', async () => {
    server.options.latencyMs = 5_000;
    const client = new ModelClient({ registry: registry(), limits: { [model]: { maxConcurrency: 1 } } });
    const holder = new AbortController();
    const held = client.call({ model, prompt: 'hold the slot' }, { signal: holder.signal });
    held.catch(() => undefined);
    await server.waitForRequests(1);
    const controller = new AbortController();
    const reason = new Error('user gave up');
    const queued = client.call({ model, prompt: 'queued' }, { signal: controller.signal });
    controller.abort(reason);
    const error = await queued.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(AbortedError);
    const aborted = error as AbortedError;
    expect(aborted.code).toBe('aborted');
    expect(aborted.provider).toBe(model.split(':')[0]);
    expect(aborted.model).toBe(model.split(':')[1]);
    expect(aborted.cause).toBe(reason);
    expect(server.requests).toBe(1); // the queued call was never sent
    expect(client.usage.total.calls).toBe(0);
    holder.abort();
    await held.catch(() => undefined);
  });
});

describe('an error event inside a stream after a 200', () => {
  const cases = [
    {
      api: 'openai',
      model: 'openai:gpt-4.1-mini',
      type: 'server_error',
      cls: InternalServerError,
      code: 'server_error',
      retryable: true,
    },
    {
      api: 'openai',
      model: 'openai:gpt-4.1-mini',
      type: 'rate_limit_exceeded',
      cls: RateLimitError,
      code: 'rate_limit_error',
      retryable: true,
    },
    {
      api: 'openai',
      model: 'openai:gpt-4.1-mini',
      type: 'invalid_request_error',
      cls: ProviderError,
      code: 'api_error',
      retryable: false,
    },
    {
      api: 'anthropic',
      model: 'anthropic:claude-haiku-4-5',
      type: 'overloaded_error',
      cls: OverloadedError,
      code: 'overloaded_error',
      retryable: true,
    },
    {
      api: 'anthropic',
      model: 'anthropic:claude-haiku-4-5',
      type: 'api_error',
      cls: InternalServerError,
      code: 'server_error',
      retryable: true,
    },
  ] as const;
  it.each(cases)('$api $type → $code with no status', async ({ model, type, cls, code, retryable }) => {
    server.options.respond = () => ({ text: LONG });
    server.failNth(1, { streamErrorAfter: 4, type });
    const client = new ModelClient({ registry: registry(), retry: { maxRetries: 0 } });
    const seen: string[] = [];
    let error: unknown;
    try {
      for await (const event of client.stream({ model, prompt: 'Talk.' })) {
        if (event.type === 'text-delta') seen.push(event.text);
      }
    } catch (e) {
      error = e;
    }
    expect(seen.length).toBeGreaterThan(0);
    expect(error).toBeInstanceOf(cls);
    const failure = error as ProviderError;
    expect(failure.code).toBe(code);
    expect(failure.status).toBeUndefined();
    expect(failure.isRetryable).toBe(retryable);
    expect(failure.message).not.toMatch(/status \d{3}/);
    expect(failure.provider).toBe(model.split(':')[0]);
  });
});
