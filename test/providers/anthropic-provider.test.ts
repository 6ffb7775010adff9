import { inspect } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAnthropicProvider } from '../../src/providers/anthropic/index.ts';
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
import type { ModelRequest, Provider, StreamEvent } from '../../src/providers/types.ts';
import { startFakeProviderServer } from '../support/fake-provider-server.ts';
import type { FakeProviderServer } from '../support/fake-provider-server.ts';
import { fakeKey } from '../helpers/fake-keys.ts';

const KEY = fakeKey('ant', 'api03', 'test', '0123456789abcdefXYZ');
let server: FakeProviderServer;
let claude: Provider;

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
  claude = createAnthropicProvider({ apiKey: KEY, baseURL: server.anthropicBaseURL });
});

const ask = (content: string, extra: Partial<ModelRequest> = {}): ModelRequest => ({
  model: 'claude-sonnet-5-5',
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

const finishOf = (events: readonly StreamEvent[]) => {
  const last = events.at(-1);
  if (last?.type !== 'finish') throw new Error('the stream did not end with finish');
  return last.response;
};

describe('createAnthropicProvider().complete()', () => {
  it('sends a Messages request and maps text, usage, request id and rate-limit headers', async () => {
    const response = await claude.complete(ask('Hello there', { system: 'Be brief.', stop: ['END'] }));
    expect(response).toMatchObject({
      provider: 'anthropic',
      model: 'claude-sonnet-5-5',
      text: 'echo: Hello there',
      toolCalls: [],
      finishReason: 'stop',
    });
    expect(response.usage.inputTokens).toBeGreaterThan(0);
    expect(response.usage.outputTokens).toBeGreaterThan(0);
    expect(response.requestId).toMatch(/^req_/);
    expect(response.rateLimit).toMatchObject({
      limitRequests: 10000,
      remainingRequests: 9999,
      limitTokens: 2_000_000,
    });
    expect(server.lastRequest?.body).toEqual({
      model: 'claude-sonnet-5-5',
      max_tokens: 1024,
      system: 'Be brief.',
      stop_sequences: ['END'],
      messages: [{ role: 'user', content: 'Hello there' }],
    });
    expect(server.lastRequest?.headers['anthropic-version']).toBeDefined();
  });

  it('sends maxTokens and never temperature (refused by API version 2026-10-21)', async () => {
    const response = await claude.complete(ask('x', { maxTokens: 77, temperature: 0.3 }));
    expect(response.text).toBe('echo: x');
    expect(server.lastRequest?.body).toMatchObject({ max_tokens: 77 });
    expect(server.lastRequest?.body).not.toHaveProperty('temperature');
  });

  it('sends the key only in the auth header, with SDK retries off', async () => {
    server.failNth(1, 529);
    await expect(claude.complete(ask('hi'))).rejects.toBeInstanceOf(OverloadedError);
    expect(server.requests).toBe(1);
    const request = server.lastRequest!;
    const authHeaders = Object.entries(request.headers).filter(([, value]) => value.includes(KEY));
    expect(authHeaders.length).toBe(1);
    expect(['authorization', 'x-api-key']).toContain(authHeaders[0]![0]);
    expect(JSON.stringify(request.body)).not.toContain(KEY);
    expect(request.headers['x-stainless-retry-count']).toBe('0');
  });

  it('gets structured output through a forced tool call', async () => {
    const schema = {
      type: 'object',
      properties: {
        city: { type: 'string' },
        tags: { type: 'array', items: { type: 'string' }, minItems: 2, maxItems: 2 },
      },
      required: ['city', 'tags'],
    };
    const response = await claude.complete(ask('Largest city?', { output: { name: 'answer', schema } }));
    expect(server.lastRequest?.body).toMatchObject({
      tool_choice: { type: 'tool', name: 'answer' },
      tools: [{ name: 'answer', input_schema: schema }],
    });
    expect(response.finishReason).toBe('stop');
    expect(response.toolCalls).toEqual([]);
    expect(response.json).toMatchObject({ city: expect.any(String) as unknown });
    expect((response.json as { tags: unknown[] }).tags).toHaveLength(2);
    expect(response.text).toBe(JSON.stringify(response.json));
  });

  it('can use native output_config structured output instead', async () => {
    const provider = createAnthropicProvider({
      apiKey: KEY,
      baseURL: server.anthropicBaseURL,
      structuredOutput: 'output_config',
    });
    const schema = {
      type: 'object',
      properties: { n: { type: 'integer', minimum: 3, maximum: 3 } },
      required: ['n'],
    };
    const response = await provider.complete(ask('x', { output: { name: 'o', schema } }));
    expect(server.lastRequest?.body).toMatchObject({
      output_config: { format: { type: 'json_schema', schema } },
    });
    expect(server.lastRequest?.body).not.toHaveProperty('tool_choice');
    expect(response.json).toEqual({ n: 3 });
  });

  it('round-trips tool_use and tool_result blocks', async () => {
    const tools = [
      {
        name: 'get_weather',
        description: 'Weather for a city',
        parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
      },
    ];
    server.options.respond = (req) =>
      req.lastIsToolResult
        ? { text: `It is ${req.messages.at(-1)?.content}` }
        : {
            text: 'Let me check.',
            toolCalls: [{ id: 'toolu_1', name: 'get_weather', arguments: { city: 'Oslo' } }],
          };
    const first = await claude.complete(ask('Weather in Oslo?', { tools }));
    expect(first.finishReason).toBe('tool_calls');
    expect(first.text).toBe('Let me check.');
    expect(first.toolCalls).toEqual([{ id: 'toolu_1', name: 'get_weather', arguments: { city: 'Oslo' } }]);
    expect(server.lastRequest?.body).toMatchObject({
      tools: [{ name: 'get_weather', description: 'Weather for a city', input_schema: tools[0]!.parameters }],
    });

    const second = await claude.complete(
      ask('', {
        tools,
        messages: [
          { role: 'user', content: 'Weather in Oslo?' },
          { role: 'assistant', content: 'Let me check.', toolCalls: first.toolCalls },
          { role: 'tool', toolCallId: 'toolu_1', content: 'sunny' },
          { role: 'tool', toolCallId: 'toolu_2', content: 'boom', isError: true },
        ],
      }),
    );
    expect(second.text).toBe('It is sunnyboom');
    expect((server.lastRequest?.body as { messages: unknown[] }).messages).toEqual([
      { role: 'user', content: 'Weather in Oslo?' },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Let me check.' },
          { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_1', content: 'sunny' },
          { type: 'tool_result', tool_use_id: 'toolu_2', content: 'boom', is_error: true },
        ],
      },
    ]);
  });

  it('maps stop_reason max_tokens to length', async () => {
    server.options.respond = () => ({ text: 'cut', finishReason: 'max_tokens' });
    expect((await claude.complete(ask('x'))).finishReason).toBe('length');
  });
});

describe('createAnthropicProvider().stream()', () => {
  it('yields text deltas, then one finish event with usage from message_start and message_delta', async () => {
    const events = await collect(claude.stream(ask('stream these words please')));
    const deltas = events.filter((e) => e.type === 'text-delta').map((e) => e.text);
    expect(deltas.length).toBeGreaterThan(2);
    expect(deltas.join('')).toBe('echo: stream these words please');
    expect(events.filter((e) => e.type === 'finish')).toHaveLength(1);
    const response = finishOf(events);
    expect(response.text).toBe('echo: stream these words please');
    expect(response.finishReason).toBe('stop');
    expect(response.usage.inputTokens).toBeGreaterThan(0);
    expect(response.usage.outputTokens).toBeGreaterThan(1);
    expect(response.requestId).toMatch(/^req_/);
    expect(server.lastRequest?.body).toMatchObject({ stream: true });
  });

  it('accumulates input_json_delta into tool calls', async () => {
    server.options.respond = () => ({
      toolCalls: [
        { id: 'toolu_a', name: 'lookup', arguments: { query: 'a fairly long query string', limit: 3 } },
        { id: 'toolu_b', name: 'lookup', arguments: {} },
      ],
    });
    const events = await collect(
      claude.stream(
        ask('x', { tools: [{ name: 'lookup', parameters: { type: 'object', properties: {} } }] }),
      ),
    );
    const calls = events.filter((e) => e.type === 'tool-call').map((e) => e.toolCall);
    expect(calls).toEqual([
      { id: 'toolu_a', name: 'lookup', arguments: { query: 'a fairly long query string', limit: 3 } },
      { id: 'toolu_b', name: 'lookup', arguments: {} },
    ]);
    expect(finishOf(events)).toMatchObject({ finishReason: 'tool_calls', toolCalls: calls });
  });

  it('streams forced-tool JSON as text and parses it at the end', async () => {
    const schema = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] };
    const events = await collect(claude.stream(ask('x', { output: { name: 'o', schema } })));
    const streamed = events
      .filter((e) => e.type === 'text-delta')
      .map((e) => e.text)
      .join('');
    const response = finishOf(events);
    expect(response.json).toEqual({ ok: expect.any(Boolean) as unknown });
    expect(JSON.parse(streamed)).toEqual(response.json);
    expect(response.toolCalls).toEqual([]);
    expect(response.finishReason).toBe('stop');
  });

  it('maps a connection dropped mid-stream to a retryable ConnectionError', async () => {
    server.failNth(1, 'drop-mid-stream');
    const error = await failure(collect(claude.stream(ask('one two three four five six'))));
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error.isRetryable).toBe(true);
  });

  it('aborting mid-stream closes the socket and rejects with AbortedError', async () => {
    server.failNth(1, 'hang-mid-stream');
    const controller = new AbortController();
    const seen: string[] = [];
    const error = await failure(
      (async () => {
        for await (const event of claude.stream(ask('a b c d e f g h', { signal: controller.signal }))) {
          if (event.type === 'text-delta') {
            seen.push(event.text);
            controller.abort();
          }
        }
      })(),
    );
    expect(error).toBeInstanceOf(AbortedError);
    expect(seen).toHaveLength(1);
    await server.waitForAborted(1);
    expect(server.aborted).toBe(1);
  });
});

describe('createAnthropicProvider() errors', () => {
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
    [504, InternalServerError, 'server_error', true],
    [529, OverloadedError, 'overloaded_error', true],
  ] as const;

  it.each(cases)('maps HTTP %d to %o', async (status, errorClass, code, retryable) => {
    server.failNth(1, status);
    const error = await failure(claude.complete(ask('x')));
    expect(error).toBeInstanceOf(errorClass);
    expect(error).toMatchObject({
      code,
      status,
      provider: 'anthropic',
      model: 'claude-sonnet-5-5',
      isRetryable: retryable,
    });
    expect(error.requestId).toMatch(/^req_/);
    expect(error.message).toContain(String(status));
    expect(error.message).toContain(error.requestId);
    expect(server.requests).toBe(1);
  });

  it('reads retry-after and anthropic-ratelimit headers from a 429', async () => {
    server.options.rateLimit = { requests: 1, windowMs: 60_000 };
    await claude.complete(ask('1'));
    const error = await failure(claude.complete(ask('2')));
    expect(error).toBeInstanceOf(RateLimitError);
    expect(error.retryAfterMs).toBeGreaterThan(0);
    expect(error.retryAfterMs! % 1000).toBe(0);
    expect(error.rateLimit).toMatchObject({ limitRequests: 1, remainingRequests: 0 });
    expect(error.message).toContain('rate limit');
  });

  it('maps a dropped connection to a retryable ConnectionError', async () => {
    server.failNth(1, 'drop');
    const error = await failure(claude.complete(ask('x')));
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error.isRetryable).toBe(true);
  });

  it('maps a malformed JSON body to a retryable api_error', async () => {
    server.failNth(1, 'malformed-json');
    const error = await failure(claude.complete(ask('x')));
    expect(error.code).toBe('api_error');
    expect(error.isRetryable).toBe(true);
  });

  it('aborting mid-request reaches the socket', async () => {
    server.failNth(1, 'hang');
    const controller = new AbortController();
    const pending = failure(claude.complete(ask('x', { signal: controller.signal })));
    await server.waitForRequests(1);
    controller.abort();
    expect(await pending).toBeInstanceOf(AbortedError);
    await server.waitForAborted(1);
    expect(server.aborted).toBe(1);
  });

  it('fails with MissingApiKeyError before any request', async () => {
    const saved = process.env['ANTHROPIC_API_KEY'];
    delete process.env['ANTHROPIC_API_KEY'];
    try {
      const calls: unknown[] = [];
      const fetchSpy: typeof fetch = (...args) => {
        calls.push(args);
        return fetch(...args);
      };
      const official = createAnthropicProvider({ fetch: fetchSpy });
      const error = await failure(official.complete(ask('x')));
      expect(error).toBeInstanceOf(MissingApiKeyError);
      expect(error.message).toContain('Set ANTHROPIC_API_KEY or pass apiKey');
      await expect(collect(official.stream(ask('x')))).rejects.toBeInstanceOf(MissingApiKeyError);
      expect(calls).toEqual([]);
    } finally {
      if (saved !== undefined) process.env['ANTHROPIC_API_KEY'] = saved;
    }
  });

  it('never leaks the key into messages, JSON or inspect output', async () => {
    server.options.apiKey = fakeKey('ant', 'the', 'right', 'one');
    try {
      const error = await failure(claude.complete(ask('x')));
      expect(error).toBeInstanceOf(AuthenticationError);
      for (const text of [
        error.message,
        JSON.stringify(error),
        inspect(error, { depth: 10 }),
        String(error.stack),
      ]) {
        expect(text).not.toContain(KEY);
      }
    } finally {
      server.options.apiKey = undefined;
    }
  });
});
