import { inspect } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AbortedError,
  AuthenticationError,
  BadRequestError,
  ConflictError,
  ConnectionError,
  InternalServerError,
  MissingApiKeyError,
  NotFoundError,
  OverloadedError,
  PermissionDeniedError,
  ProviderError,
  RateLimitError,
  RequestTimeoutError,
  UnprocessableEntityError,
} from '../../src/providers/errors.ts';
import { createOpenAIProvider } from '../../src/providers/openai/index.ts';
import type { ModelRequest, Provider, StreamEvent } from '../../src/providers/types.ts';
import { startFakeProviderServer } from '../support/fake-provider-server.ts';
import type { FakeProviderServer } from '../support/fake-provider-server.ts';
import { fakeKey } from '../helpers/fake-keys.ts';

const KEY = fakeKey('test', 'openai', '0123456789abcdef');
let server: FakeProviderServer;
let openai: Provider;

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
  server.options.schemaViolation = undefined;
  server.options.rateLimit = undefined;
  openai = createOpenAIProvider({ apiKey: KEY, baseURL: server.openaiBaseURL });
});

const ask = (content: string, extra: Partial<ModelRequest> = {}): ModelRequest => ({
  model: 'gpt-4.1-mini',
  messages: [{ role: 'user', content }],
  ...extra,
});

async function collect(events: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  for await (const event of events) out.push(event);
  return out;
}

async function failure(promise: Promise<unknown>): Promise<ProviderError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ProviderError);
    return error as ProviderError;
  }
  throw new Error('expected a rejection');
}

describe('createOpenAIProvider().complete()', () => {
  it('sends a chat completion and maps text, usage, request id and rate-limit headers', async () => {
    const response = await openai.complete(
      ask('Hello there', { system: 'Be brief.', temperature: 0.2, maxTokens: 50, stop: ['END'] }),
    );
    expect(response).toMatchObject({
      provider: 'openai',
      model: 'gpt-4.1-mini',
      text: 'echo: Hello there',
      toolCalls: [],
      finishReason: 'stop',
    });
    expect(response.usage.inputTokens).toBeGreaterThan(0);
    expect(response.usage.outputTokens).toBeGreaterThan(0);
    expect(response.requestId).toMatch(/^req_/);
    expect(response.rateLimit).toMatchObject({ limitRequests: 10000, remainingRequests: 9999 });
    const body = server.lastRequest?.body as Record<string, unknown>;
    expect(body).toMatchObject({
      model: 'gpt-4.1-mini',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hello there' },
      ],
      temperature: 0.2,
      stop: ['END'],
      max_tokens: 50,
    });
    expect(body['stream']).toBeUndefined();
  });

  it('uses max_completion_tokens when asked (the OpenAI default)', async () => {
    const provider = createOpenAIProvider({
      apiKey: KEY,
      baseURL: server.openaiBaseURL,
      maxTokensField: 'max_completion_tokens',
    });
    await provider.complete(ask('hi', { maxTokens: 7 }));
    expect(server.lastRequest?.body).toMatchObject({ max_completion_tokens: 7 });
    expect(server.lastRequest?.body).not.toHaveProperty('max_tokens');
  });

  it('sends the key only in the Authorization header, with SDK retries off', async () => {
    server.failNth(1, 500);
    await expect(openai.complete(ask('hi'))).rejects.toBeInstanceOf(InternalServerError);
    expect(server.requests).toBe(1);
    const request = server.lastRequest!;
    expect(request.headers['authorization']).toBe(`Bearer ${KEY}`);
    const elsewhere = Object.entries(request.headers).filter(
      ([name, value]) => name !== 'authorization' && value.includes(KEY),
    );
    expect(elsewhere).toEqual([]);
    expect(JSON.stringify(request.body)).not.toContain(KEY);
    expect(request.headers['x-stainless-retry-count']).toBe('0');
  });

  it('requests structured output with a strict json_schema and parses json', async () => {
    const schema = {
      type: 'object',
      properties: { city: { type: 'string' }, population: { type: 'integer', minimum: 1 } },
      required: ['city', 'population'],
      additionalProperties: false,
    };
    const response = await openai.complete(ask('Largest city?', { output: { name: 'answer', schema } }));
    expect(server.lastRequest?.body).toMatchObject({
      response_format: { type: 'json_schema', json_schema: { name: 'answer', schema, strict: true } },
    });
    expect(response.json).toEqual(JSON.parse(response.text));
    expect(response.json).toMatchObject({
      city: expect.any(String) as unknown,
      population: expect.any(Number) as unknown,
    });
  });

  it('leaves json undefined when the output is not JSON', async () => {
    server.options.respond = () => ({ text: 'not json' });
    const response = await openai.complete(
      ask('x', { output: { name: 'o', schema: { type: 'object', properties: {} } } }),
    );
    expect(response.text).toBe('not json');
    expect(response.json).toBeUndefined();
  });

  it('round-trips tool calls and tool results', async () => {
    const tools = [
      {
        name: 'get_weather',
        description: 'Weather for a city',
        parameters: {
          type: 'object',
          properties: { city: { type: 'string' } },
          required: ['city'],
        },
      },
    ];
    server.options.respond = (req) =>
      req.lastIsToolResult
        ? { text: `It is ${req.messages.at(-1)?.content}` }
        : { toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: { city: 'Oslo' } }] };
    const first = await openai.complete(ask('Weather in Oslo?', { tools }));
    expect(first.finishReason).toBe('tool_calls');
    expect(first.toolCalls).toEqual([{ id: 'call_1', name: 'get_weather', arguments: { city: 'Oslo' } }]);
    expect(server.lastRequest?.body).toMatchObject({
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: tools[0]!.parameters } }],
    });

    const second = await openai.complete(
      ask('Weather in Oslo?', {
        tools,
        messages: [
          { role: 'user', content: 'Weather in Oslo?' },
          { role: 'assistant', content: '', toolCalls: first.toolCalls },
          { role: 'tool', toolCallId: 'call_1', content: 'sunny' },
        ],
      }),
    );
    expect(second.text).toBe('It is sunny');
    expect((server.lastRequest?.body as { messages: unknown[] }).messages).toEqual([
      { role: 'user', content: 'Weather in Oslo?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
    ]);
  });

  it('maps finish_reason length', async () => {
    server.options.respond = () => ({ text: 'cut', finishReason: 'length' });
    expect((await openai.complete(ask('x'))).finishReason).toBe('length');
  });

  it('merges providerOptions under its own name into the body', async () => {
    await openai.complete(ask('x', { providerOptions: { openai: { seed: 7 }, anthropic: { top_k: 3 } } }));
    expect(server.lastRequest?.body).toMatchObject({ seed: 7 });
    expect(server.lastRequest?.body).not.toHaveProperty('top_k');
  });
});

describe('createOpenAIProvider().stream()', () => {
  it('yields word-sized text deltas, then one finish event with usage', async () => {
    const events = await collect(openai.stream(ask('stream these words please')));
    const deltas = events.filter((e) => e.type === 'text-delta').map((e) => e.text);
    expect(deltas.length).toBeGreaterThan(2);
    expect(deltas.join('')).toBe('echo: stream these words please');
    const finishes = events.filter((e) => e.type === 'finish');
    expect(finishes).toHaveLength(1);
    expect(events.at(-1)?.type).toBe('finish');
    const finish = events.at(-1) as Extract<StreamEvent, { type: 'finish' }>;
    expect(finish.response.text).toBe('echo: stream these words please');
    expect(finish.response.usage.inputTokens).toBeGreaterThan(0);
    expect(finish.response.requestId).toMatch(/^req_/);
    expect(server.lastRequest?.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });

  it('accumulates tool-call deltas into complete tool calls', async () => {
    server.options.respond = () => ({
      toolCalls: [
        { id: 'call_a', name: 'lookup', arguments: { query: 'a fairly long query string', limit: 3 } },
        { id: 'call_b', name: 'lookup', arguments: { query: 'second' } },
      ],
    });
    const events = await collect(
      openai.stream(
        ask('x', { tools: [{ name: 'lookup', parameters: { type: 'object', properties: {} } }] }),
      ),
    );
    const calls = events.filter((e) => e.type === 'tool-call').map((e) => e.toolCall);
    expect(calls).toEqual([
      { id: 'call_a', name: 'lookup', arguments: { query: 'a fairly long query string', limit: 3 } },
      { id: 'call_b', name: 'lookup', arguments: { query: 'second' } },
    ]);
    const finish = events.at(-1) as Extract<StreamEvent, { type: 'finish' }>;
    expect(finish.response.finishReason).toBe('tool_calls');
    expect(finish.response.toolCalls).toEqual(calls);
  });

  it('parses json at the end of a structured-output stream', async () => {
    const schema = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] };
    const events = await collect(openai.stream(ask('x', { output: { name: 'o', schema } })));
    const finish = events.at(-1) as Extract<StreamEvent, { type: 'finish' }>;
    expect(finish.response.json).toEqual({ ok: expect.any(Boolean) as unknown });
  });

  it('maps a connection dropped mid-stream to a retryable ConnectionError', async () => {
    server.failNth(1, 'drop-mid-stream');
    const error = await failure(collect(openai.stream(ask('one two three four five six'))));
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error.isRetryable).toBe(true);
  });

  it('maps malformed SSE JSON to a retryable api_error', async () => {
    server.failNth(1, 'malformed-json');
    const error = await failure(collect(openai.stream(ask('one two three four five six'))));
    expect(error.code).toBe('api_error');
    expect(error.isRetryable).toBe(true);
  });

  it('aborting mid-stream closes the socket and rejects with AbortedError', async () => {
    server.failNth(1, 'hang-mid-stream');
    const controller = new AbortController();
    const seen: string[] = [];
    const error = await failure(
      (async () => {
        for await (const event of openai.stream(ask('a b c d e f g h', { signal: controller.signal }))) {
          if (event.type === 'text-delta') {
            seen.push(event.text);
            controller.abort();
          }
        }
      })(),
    );
    expect(error).toBeInstanceOf(AbortedError);
    expect(error.isRetryable).toBe(false);
    expect(seen).toHaveLength(1);
    await server.waitForAborted(1);
    expect(server.aborted).toBe(1);
  });

  it('breaking out of the loop closes the request', async () => {
    server.failNth(1, 'hang-mid-stream');
    for await (const event of openai.stream(ask('a b c d e f g h'))) {
      if (event.type === 'text-delta') break;
    }
    await server.waitForAborted(1);
    expect(server.aborted).toBe(1);
  });
});

describe('createOpenAIProvider() errors', () => {
  const cases = [
    [400, BadRequestError, 'bad_request', false],
    [401, AuthenticationError, 'authentication_error', false],
    [403, PermissionDeniedError, 'permission_error', false],
    [404, NotFoundError, 'not_found', false],
    [408, RequestTimeoutError, 'request_timeout', true],
    [409, ConflictError, 'conflict', true],
    [422, UnprocessableEntityError, 'unprocessable_entity', false],
    [429, RateLimitError, 'rate_limit_error', true],
    [500, InternalServerError, 'server_error', true],
    [503, InternalServerError, 'server_error', true],
    [529, OverloadedError, 'overloaded_error', true],
  ] as const;

  it.each(cases)('maps HTTP %d to %o', async (status, errorClass, code, retryable) => {
    server.failNth(1, status);
    const error = await failure(openai.complete(ask('x')));
    expect(error).toBeInstanceOf(errorClass);
    expect(error).toMatchObject({
      code,
      status,
      provider: 'openai',
      model: 'gpt-4.1-mini',
      isRetryable: retryable,
    });
    expect(error.requestId).toMatch(/^req_/);
    expect(error.message).toContain('openai');
    expect(error.message).toContain(String(status));
    expect(error.message).toContain(error.requestId);
    expect(server.requests).toBe(1);
  });

  it('includes the provider message and retry-after on a 429', async () => {
    server.failNth(1, { status: 429, retryAfterMs: 1500, message: 'Slow down please.' });
    const error = await failure(openai.complete(ask('x')));
    expect(error).toBeInstanceOf(RateLimitError);
    expect(error.retryAfterMs).toBe(1500);
    expect(error.rateLimit).toMatchObject({ remainingRequests: 0, retryAfterMs: 1500 });
    expect(error.message).toContain('Slow down please.');
  });

  it('enforces the fake rate limit with real headers, mapped to RateLimitError', async () => {
    server.options.rateLimit = { requests: 2, windowMs: 60_000 };
    await openai.complete(ask('1'));
    const second = await openai.complete(ask('2'));
    expect(second.rateLimit?.remainingRequests).toBe(0);
    const error = await failure(openai.complete(ask('3')));
    expect(error).toBeInstanceOf(RateLimitError);
    expect(error.retryAfterMs).toBeGreaterThan(0);
    expect(error.message).toMatch(/requests per min/);
    expect(server.byStatus).toEqual({ '200': 2, '429': 1 });
  });

  it('maps a dropped connection to a retryable ConnectionError', async () => {
    server.failNth(1, 'drop');
    const error = await failure(openai.complete(ask('x')));
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error.isRetryable).toBe(true);
    expect(server.requests).toBe(1);
  });

  it('maps a client-side timeout to RequestTimeoutError', async () => {
    server.failNth(1, 'hang');
    const provider = createOpenAIProvider({ apiKey: KEY, baseURL: server.openaiBaseURL, timeoutMs: 20 });
    const error = await failure(provider.complete(ask('x')));
    expect(error).toBeInstanceOf(RequestTimeoutError);
    expect(error.status).toBeUndefined();
    expect(error.isRetryable).toBe(true);
  });

  it('aborting mid-request reaches the socket', async () => {
    server.failNth(1, 'hang');
    const controller = new AbortController();
    const pending = failure(openai.complete(ask('x', { signal: controller.signal })));
    await server.waitForRequests(1);
    controller.abort();
    const error = await pending;
    expect(error).toBeInstanceOf(AbortedError);
    expect(error.isRetryable).toBe(false);
    await server.waitForAborted(1);
    expect(server.aborted).toBe(1);
  });

  it('rejects an already-aborted signal without a request', async () => {
    const error = await failure(openai.complete(ask('x', { signal: AbortSignal.abort() })));
    expect(error).toBeInstanceOf(AbortedError);
    expect(server.requests).toBe(0);
  });

  it('fails with MissingApiKeyError before any request', async () => {
    const saved = process.env['OPENAI_API_KEY'];
    delete process.env['OPENAI_API_KEY'];
    try {
      const calls: unknown[] = [];
      const fetchSpy: typeof fetch = (...args) => {
        calls.push(args);
        return fetch(...args);
      };
      const official = createOpenAIProvider({ fetch: fetchSpy });
      const error = await failure(official.complete(ask('x')));
      expect(error).toBeInstanceOf(MissingApiKeyError);
      expect(error.message).toContain('Set OPENAI_API_KEY or pass apiKey');
      await expect(collect(official.stream(ask('x')))).rejects.toBeInstanceOf(MissingApiKeyError);
      const required = createOpenAIProvider({ baseURL: server.openaiBaseURL, requireApiKey: true });
      await expect(required.complete(ask('x'))).rejects.toBeInstanceOf(MissingApiKeyError);
      expect(calls).toEqual([]);
      expect(server.requests).toBe(0);
    } finally {
      if (saved !== undefined) process.env['OPENAI_API_KEY'] = saved;
    }
  });

  it('sends a placeholder key to a non-OpenAI server when none is configured', async () => {
    const saved = process.env['OPENAI_API_KEY'];
    delete process.env['OPENAI_API_KEY'];
    try {
      const local = createOpenAIProvider({ name: 'ollama', baseURL: server.openaiBaseURL });
      const response = await local.complete(ask('hi'));
      expect(response.provider).toBe('ollama');
      expect(server.lastRequest?.headers['authorization']).toBe('Bearer no-key-required');
    } finally {
      if (saved !== undefined) process.env['OPENAI_API_KEY'] = saved;
    }
  });

  it('reads the key lazily from OPENAI_API_KEY at the first call', async () => {
    const saved = process.env['OPENAI_API_KEY'];
    const provider = createOpenAIProvider({ baseURL: server.openaiBaseURL });
    process.env['OPENAI_API_KEY'] = fakeKey('from', 'env', 'abcdefghijkl');
    try {
      await provider.complete(ask('hi'));
      expect(server.lastRequest?.headers['authorization']).toBe(
        `Bearer ${fakeKey('from', 'env', 'abcdefghijkl')}`,
      );
    } finally {
      if (saved === undefined) delete process.env['OPENAI_API_KEY'];
      else process.env['OPENAI_API_KEY'] = saved;
    }
  });

  it('never leaks the key into messages, JSON or inspect output', async () => {
    server.options.apiKey = fakeKey('the', 'right', 'key', '000000');
    try {
      const error = await failure(openai.complete(ask('x')));
      expect(error).toBeInstanceOf(AuthenticationError);
      // The fake echoes a partially masked key like the real service; it must be scrubbed too.
      for (const text of [
        error.message,
        JSON.stringify(error),
        inspect(error, { depth: 10 }),
        String(error.stack),
      ]) {
        expect(text).not.toContain(KEY);
        expect(text).not.toContain(KEY.slice(0, 10));
        expect(text).not.toContain(KEY.slice(-4) + '.');
      }
      expect(error.message).toContain('[REDACTED]');
      expect(Object.values(error)).not.toContainEqual(expect.any(Headers));
    } finally {
      server.options.apiKey = undefined;
    }
  });
});
