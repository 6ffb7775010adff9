/**
 * The OpenAI provider over both of its APIs, Chat Completions and the Responses API: the same cases (text,
 * structured output, function tools, streaming, usage with cached and reasoning tokens, error mapping,
 * cancellation reaching the socket) through the real `openai` SDK against the loopback fake server, each
 * checking what went on the wire in that API's own format.
 */
import { inspect } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { InvalidOptionError } from '../../src/core/errors.ts';
import { ModelClient } from '../../src/providers/model-client.ts';
import {
  AbortedError,
  AuthenticationError,
  BadRequestError,
  ConnectionError,
  InternalServerError,
  ProviderError,
  RateLimitError,
  RequestTimeoutError,
} from '../../src/providers/errors.ts';
import { createOpenAIProvider } from '../../src/providers/openai/index.ts';
import type { OpenAIApi } from '../../src/providers/openai/index.ts';
import { createDefaultRegistry } from '../../src/providers/registry.ts';
import type { ModelRequest, Provider, StreamEvent, ToolCall } from '../../src/providers/types.ts';
import { startFakeProviderServer } from '../support/fake-provider-server.ts';
import type { FakeProviderServer } from '../support/fake-provider-server.ts';
import { fakeKey } from '../helpers/fake-keys.ts';

const KEY = fakeKey('test', 'responses', '0123456789abcdef');
let server: FakeProviderServer;

beforeAll(async () => {
  server = await startFakeProviderServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  server.reset();
  server.options.respond = undefined;
  server.options.cacheTokens = undefined;
  server.options.apiKey = undefined;
});

const ask = (content: string, extra: Partial<ModelRequest> = {}): ModelRequest => ({
  model: 'gpt-5-mini',
  messages: [{ role: 'user', content }],
  ...extra,
});

async function collect(events: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  for await (const event of events) out.push(event);
  return out;
}

function finishOf(events: readonly StreamEvent[]) {
  const last = events.at(-1);
  if (last?.type !== 'finish') throw new Error(`expected a finish event last, got ${last?.type}`);
  return last.response;
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

type Body = Record<string, unknown>;

/** Per API: its path, and how its wire body says each thing the cases check. */
const wire = {
  chat: {
    path: '/v1/chat/completions',
    text: (body: Body) => ({
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hello there' },
      ],
      temperature: 0.2,
      max_tokens: 50,
      ...(body['stream'] === true ? { stream: true } : {}),
    }),
    format: (name: string, schema: Body) => ({
      response_format: { type: 'json_schema', json_schema: { name, schema, strict: true } },
    }),
    tools: (name: string, parameters: Body) => ({
      tools: [{ type: 'function', function: { name, parameters } }],
    }),
    history: (call: ToolCall) => ({
      messages: [
        { role: 'user', content: 'Weather in Oslo?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: call.id, type: 'function', function: { name: call.name, arguments: '{"city":"Oslo"}' } },
          ],
        },
        { role: 'tool', tool_call_id: call.id, content: 'sunny' },
      ],
    }),
  },
  responses: {
    path: '/v1/responses',
    text: (body: Body) => ({
      instructions: 'Be brief.',
      input: [{ role: 'user', content: 'Hello there' }],
      temperature: 0.2,
      max_output_tokens: 50,
      store: false,
      ...(body['stream'] === true ? { stream: true } : {}),
    }),
    format: (name: string, schema: Body) => ({
      text: { format: { type: 'json_schema', name, schema, strict: true } },
    }),
    tools: (name: string, parameters: Body) => ({
      tools: [{ type: 'function', name, parameters, strict: false }],
    }),
    history: (call: ToolCall) => ({
      input: [
        { role: 'user', content: 'Weather in Oslo?' },
        { type: 'function_call', call_id: call.id, name: call.name, arguments: '{"city":"Oslo"}' },
        { type: 'function_call_output', call_id: call.id, output: 'sunny' },
      ],
    }),
  },
} as const;

describe.each(['chat', 'responses'] as const satisfies readonly OpenAIApi[])('openai over api %s', (api) => {
  const w = wire[api];
  let openai: Provider;
  beforeEach(() => {
    openai = createOpenAIProvider({ apiKey: KEY, baseURL: server.openaiBaseURL, api });
  });
  const body = (): Body => server.lastRequest?.body as Body;

  it('sends text to its own endpoint and maps text, finish reason, usage, request id and rate limits', async () => {
    const response = await openai.complete(
      ask('Hello there', { system: 'Be brief.', temperature: 0.2, maxTokens: 50 }),
    );
    expect(server.lastRequest?.path).toBe(w.path);
    expect(body()).toMatchObject(w.text(body()));
    expect(body()['stream']).toBeUndefined();
    expect(response).toMatchObject({
      provider: 'openai',
      model: 'gpt-5-mini',
      text: 'echo: Hello there',
      toolCalls: [],
      finishReason: 'stop',
    });
    expect(response.usage.inputTokens).toBeGreaterThan(0);
    expect(response.usage.outputTokens).toBeGreaterThan(0);
    expect(response.usage.cacheReadTokens).toBeUndefined();
    expect(response.usage.reasoningTokens).toBeUndefined();
    expect(response.requestId).toMatch(/^req_/);
    expect(response.rateLimit).toMatchObject({ limitRequests: 10000, remainingRequests: 9999 });
  });

  it('reports cached and reasoning tokens within input and output tokens', async () => {
    server.options.cacheTokens = () => ({ read: 6 });
    server.options.respond = () => ({ text: 'thought it over', reasoningTokens: 3 });
    const response = await openai.complete(ask('a prompt long enough to have a cached prefix'));
    expect(response.usage.cacheReadTokens).toBe(6);
    expect(response.usage.inputTokens).toBeGreaterThan(6);
    expect(response.usage.reasoningTokens).toBe(3);
    expect(response.usage.outputTokens).toBeGreaterThanOrEqual(3);

    const events = await collect(openai.stream(ask('a prompt long enough to have a cached prefix')));
    // The streamed request's body is a little longer, so its input count differs; the parts do not.
    const streamed = finishOf(events).usage;
    expect(streamed).toMatchObject({ cacheReadTokens: 6, reasoningTokens: 3 });
    expect(streamed.inputTokens).toBeGreaterThan(6);
    expect(streamed.outputTokens).toBe(response.usage.outputTokens);
  });

  it('asks for structured output with a strict json_schema and parses json', async () => {
    const schema = {
      type: 'object',
      properties: { city: { type: 'string' }, population: { type: 'integer', minimum: 1 } },
      required: ['city', 'population'],
      additionalProperties: false,
    };
    const response = await openai.complete(ask('Largest city?', { output: { name: 'answer', schema } }));
    expect(body()).toMatchObject(w.format('answer', schema));
    expect(response.json).toEqual(JSON.parse(response.text));
    expect(response.json).toMatchObject({
      city: expect.any(String) as unknown,
      population: expect.any(Number) as unknown,
    });

    const events = await collect(openai.stream(ask('Largest city?', { output: { name: 'answer', schema } })));
    expect(body()).toMatchObject(w.format('answer', schema));
    expect(finishOf(events).json).toEqual(JSON.parse(finishOf(events).text));
  });

  it('round-trips function tool calls and their results', async () => {
    const parameters = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
    const tools = [{ name: 'get_weather', description: 'Weather for a city', parameters }];
    server.options.respond = (req) =>
      req.lastIsToolResult
        ? { text: `It is ${req.messages.at(-1)?.content}` }
        : { toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: { city: 'Oslo' } }] };
    const first = await openai.complete(ask('Weather in Oslo?', { tools }));
    expect(body()).toMatchObject(w.tools('get_weather', parameters));
    expect(first.finishReason).toBe('tool_calls');
    expect(first.toolCalls).toEqual([{ id: 'call_1', name: 'get_weather', arguments: { city: 'Oslo' } }]);

    const messages: ModelRequest['messages'] = [
      { role: 'user', content: 'Weather in Oslo?' },
      { role: 'assistant', content: '', toolCalls: first.toolCalls },
      { role: 'tool', toolCallId: 'call_1', content: 'sunny' },
    ];
    const second = await openai.complete(ask('', { tools, messages }));
    expect(body()).toMatchObject(w.history(first.toolCalls[0]!));
    expect(second.text).toBe('It is sunny');
    expect(second.finishReason).toBe('stop');
  });

  it('streams word-sized text deltas, then one finish event', async () => {
    const events = await collect(
      openai.stream(ask('Hello there', { system: 'Be brief.', temperature: 0.2, maxTokens: 50 })),
    );
    expect(server.lastRequest?.path).toBe(w.path);
    expect(body()).toMatchObject({ ...w.text(body()), stream: true });
    const deltas = events.filter((e) => e.type === 'text-delta').map((e) => e.text);
    expect(deltas).toEqual(['echo: ', 'Hello ', 'there']);
    expect(events.filter((e) => e.type === 'finish')).toHaveLength(1);
    const response = finishOf(events);
    expect(response).toMatchObject({ text: 'echo: Hello there', finishReason: 'stop', toolCalls: [] });
    expect(response.usage.inputTokens).toBeGreaterThan(0);
    expect(response.requestId).toMatch(/^req_/);
  });

  it('streams tool-call argument deltas into whole tool calls', async () => {
    const calls = [
      { id: 'call_a', name: 'lookup', arguments: { query: 'a fairly long query string', limit: 3 } },
      { id: 'call_b', name: 'lookup', arguments: { query: 'second' } },
    ];
    server.options.respond = () => ({ toolCalls: calls });
    const events = await collect(
      openai.stream(
        ask('x', { tools: [{ name: 'lookup', parameters: { type: 'object', properties: {} } }] }),
      ),
    );
    expect(events.filter((e) => e.type === 'tool-call').map((e) => e.toolCall)).toEqual(calls);
    const response = finishOf(events);
    expect(response.finishReason).toBe('tool_calls');
    expect(response.toolCalls).toEqual(calls);
  });

  it('maps a reply cut at the token limit to finish reason length', async () => {
    server.options.respond = () => ({ text: 'cut short', finishReason: 'length' });
    expect((await openai.complete(ask('x', { maxTokens: 3 }))).finishReason).toBe('length');
    expect(finishOf(await collect(openai.stream(ask('x', { maxTokens: 3 })))).finishReason).toBe('length');
  });

  it('maps a 429 with Retry-After to a retryable RateLimitError', async () => {
    server.failNth(1, { status: 429, retryAfterMs: 1500, message: 'Slow down please.' });
    const error = await failure(openai.complete(ask('x')));
    expect(error).toBeInstanceOf(RateLimitError);
    expect(error).toMatchObject({ code: 'rate_limit_error', status: 429, isRetryable: true });
    expect(error.retryAfterMs).toBe(1500);
    expect(error.rateLimit).toMatchObject({ remainingRequests: 0, retryAfterMs: 1500 });
    expect(error.message).toContain('Slow down please.');
    expect(error.requestId).toMatch(/^req_/);
    expect(server.requests).toBe(1);
  });

  it('maps a 500 to a retryable InternalServerError, and a 400 to a BadRequestError', async () => {
    server.failNth(1, 500);
    const internal = await failure(openai.complete(ask('x')));
    expect(internal).toBeInstanceOf(InternalServerError);
    expect(internal).toMatchObject({ code: 'server_error', status: 500, isRetryable: true });

    server.failNth(1, 400);
    const bad = await failure(collect(openai.stream(ask('x'))));
    expect(bad).toBeInstanceOf(BadRequestError);
    expect(bad).toMatchObject({ code: 'bad_request', status: 400, isRetryable: false });
    expect(bad.message).toContain("Invalid value for 'temperature'");
    expect(server.requests).toBe(2);
  });

  it('maps a bad key to AuthenticationError without the key in any form', async () => {
    server.options.apiKey = fakeKey('the', 'right', 'key', '000000');
    const error = await failure(openai.complete(ask('x')));
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error.message).toContain('[REDACTED]');
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
    expect(Object.values(error)).not.toContainEqual(expect.any(Headers));
  });

  it('maps an error event inside the stream by its type', async () => {
    server.failNth(1, { streamErrorAfter: 3, type: 'server_error', code: 'server_error' });
    const internal = await failure(collect(openai.stream(ask('one two three four five six'))));
    expect(internal).toBeInstanceOf(InternalServerError);
    expect(internal).toMatchObject({ status: undefined, isRetryable: true });

    server.failNth(1, { streamErrorAfter: 3, type: 'tokens', code: 'rate_limit_exceeded' });
    const limited = await failure(collect(openai.stream(ask('one two three four five six'))));
    expect(limited).toBeInstanceOf(RateLimitError);
  });

  it('maps a connection dropped mid-stream to a retryable ConnectionError', async () => {
    server.failNth(1, 'drop-mid-stream');
    const error = await failure(collect(openai.stream(ask('one two three four five six'))));
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error.isRetryable).toBe(true);
  });

  it('times out a hung request, and a stream that stalls after its headers, as retryable', async () => {
    server.failNth(1, 'hang');
    const hurried = createOpenAIProvider({ apiKey: KEY, baseURL: server.openaiBaseURL, api, timeoutMs: 30 });
    const hung = await failure(hurried.complete(ask('x')));
    expect(hung).toBeInstanceOf(RequestTimeoutError);
    expect(hung.isRetryable).toBe(true);

    server.failNth(1, { stallAfter: 3 });
    const stalled = await failure(collect(openai.stream(ask('a b c d e f', { streamIdleTimeoutMs: 30 }))));
    expect(stalled).toBeInstanceOf(RequestTimeoutError);
    expect(stalled.isRetryable).toBe(true);
    await server.waitForAborted(2);
  });

  it('maps malformed SSE JSON to a retryable api_error', async () => {
    server.failNth(1, 'malformed-json');
    const error = await failure(collect(openai.stream(ask('one two three four five six'))));
    expect(error.code).toBe('api_error');
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
    expect(seen).toHaveLength(1);
    await server.waitForAborted(1);
    expect(server.aborted).toBe(1);
  });
});

describe('openai over api responses only', () => {
  let openai: Provider;
  beforeEach(() => {
    openai = createOpenAIProvider({ apiKey: KEY, baseURL: server.openaiBaseURL, api: 'responses' });
  });

  it('streams the events the Responses API sends, function call arguments included', async () => {
    server.options.respond = () => ({
      toolCalls: [{ id: 'call_z', name: 'lookup', arguments: { query: 'twelve chars' } }],
    });
    const response = await fetch(`${server.openaiBaseURL}/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'gpt-5-mini',
        input: 'x',
        stream: true,
        tools: [{ type: 'function', name: 'lookup', parameters: {} }],
      }),
    });
    const names = [...(await response.text()).matchAll(/^event: (\S+)$/gm)].map((m) => m[1]);
    expect(names[0]).toBe('response.created');
    expect(names.at(-1)).toBe('response.completed');
    expect(names.filter((n) => n === 'response.function_call_arguments.delta').length).toBeGreaterThan(1);
    expect(names).toContain('response.function_call_arguments.done');
    expect(names).toContain('response.output_item.done');
  });

  it('reads text and tool calls from the events when the terminal response lists no output', async () => {
    // A compatible server's bare `response.completed`: the same stream with the final output list emptied.
    const bareCompleted: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      const events = (await response.text()).split('\n\n').map((event) =>
        event.replace(/^data: (.*)$/m, (_line, json: string) => {
          const data = JSON.parse(json) as { type: string; response?: { output: unknown[] } };
          if (data.type === 'response.completed' && data.response) data.response.output = [];
          return `data: ${JSON.stringify(data)}`;
        }),
      );
      return new Response(events.join('\n\n'), { status: response.status, headers: response.headers });
    };
    const bare = createOpenAIProvider({
      apiKey: KEY,
      baseURL: server.openaiBaseURL,
      api: 'responses',
      fetch: bareCompleted,
    });
    const text = finishOf(await collect(bare.stream(ask('plain words here'))));
    expect(text).toMatchObject({ text: 'echo: plain words here', finishReason: 'stop' });

    const calls = [{ id: 'call_q', name: 'lookup', arguments: { query: 'a query long enough for pieces' } }];
    server.options.respond = () => ({ toolCalls: calls });
    const tools = [{ name: 'lookup', parameters: { type: 'object', properties: {} } }];
    const events = await collect(bare.stream(ask('x', { tools })));
    expect(events.filter((e) => e.type === 'tool-call').map((e) => e.toolCall)).toEqual(calls);
    expect(finishOf(events)).toMatchObject({ toolCalls: calls, finishReason: 'tool_calls' });
  });

  it('maps a failed response to its error, and a refusal to content_filter', async () => {
    type Wire = { status: string; error: unknown; output: { type: string; content?: unknown[] }[] };
    let rewrite: (data: Wire) => void = () => undefined;
    const rewriting: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      const data = (await response.json()) as Wire;
      rewrite(data);
      return new Response(JSON.stringify(data), { status: response.status, headers: response.headers });
    };
    const provider = createOpenAIProvider({
      apiKey: KEY,
      baseURL: server.openaiBaseURL,
      api: 'responses',
      fetch: rewriting,
    });
    rewrite = (data) => {
      data.status = 'failed';
      data.error = { code: 'server_error', message: 'The model failed.' };
    };
    const failed = await failure(provider.complete(ask('x')));
    expect(failed).toBeInstanceOf(InternalServerError);
    expect(failed.isRetryable).toBe(true);
    expect(failed.message).toContain('The model failed.');
    expect(failed.requestId).toMatch(/^req_/);

    rewrite = (data) => {
      const message = data.output.find((item) => item.type === 'message');
      if (message !== undefined) message.content = [{ type: 'refusal', refusal: 'I cannot help.' }];
    };
    const refused = await provider.complete(ask('x'));
    expect(refused).toMatchObject({ text: '', finishReason: 'content_filter' });
  });

  it('maps a response.failed event to the error it carries', async () => {
    server.failNth(1, {
      streamErrorAfter: 4,
      type: 'response.failed',
      code: 'server_error',
      message: 'Boom.',
    });
    const error = await failure(collect(openai.stream(ask('one two three four five six'))));
    expect(error).toBeInstanceOf(InternalServerError);
    expect(error.message).toContain('Boom.');
    expect(error.requestId).toMatch(/^req_/);
  });

  it('sends tool errors and system turns as Responses input items', async () => {
    await openai.complete(
      ask('', {
        messages: [
          { role: 'system', content: 'Answer in French.' },
          { role: 'user', content: 'Weather?' },
          { role: 'assistant', content: 'Let me look.', toolCalls: [{ id: 'c1', name: 'w', arguments: {} }] },
          { role: 'tool', toolCallId: 'c1', content: 'timeout', isError: true },
        ],
      }),
    );
    expect((server.lastRequest?.body as Body)['input']).toEqual([
      { role: 'system', content: 'Answer in French.' },
      { role: 'user', content: 'Weather?' },
      { role: 'assistant', content: 'Let me look.' },
      { type: 'function_call', call_id: 'c1', name: 'w', arguments: '{}' },
      { type: 'function_call_output', call_id: 'c1', output: 'Error: timeout' },
    ]);
  });

  it('refuses stop sequences before sending, naming the way out', async () => {
    const error = await failure(openai.complete(ask('x', { stop: ['END'] })));
    expect(error.code).toBe('bad_request');
    expect(error.isRetryable).toBe(false);
    expect(error.message).toContain('stop');
    expect(error.hint).toContain("api: 'chat'");
    expect(server.requests).toBe(0);
  });

  it('merges providerOptions under its own name into the body', async () => {
    await openai.complete(ask('x', { providerOptions: { openai: { reasoning: { effort: 'low' } } } }));
    expect(server.lastRequest?.body).toMatchObject({ reasoning: { effort: 'low' } });
  });

  it('is chosen for openai: ids through the default registry', async () => {
    const registry = createDefaultRegistry({
      openai: { apiKey: KEY, baseURL: server.openaiBaseURL, api: 'responses' },
    });
    const { provider, model } = registry.resolve('openai:gpt-5-mini');
    const response = await provider.complete({ model, messages: [{ role: 'user', content: 'hi' }] });
    expect(response.text).toBe('echo: hi');
    expect(server.lastRequest?.path).toBe('/v1/responses');
  });

  it('refuses an unknown api at creation', () => {
    expect(() => createOpenAIProvider({ api: 'assistants' as OpenAIApi })).toThrow(InvalidOptionError);
  });
});

describe('ModelClient over the Responses API', () => {
  const colour = z.object({ colour: z.string(), shade: z.number() });
  const clientFor = (): ModelClient =>
    new ModelClient({
      registry: createDefaultRegistry({
        openai: { apiKey: KEY, baseURL: server.openaiBaseURL, api: 'responses' },
      }),
      retry: { baseDelayMs: 1, maxRetries: 2 },
    });

  it('retries a 500, then re-asks after a schema violation with the issues, over /v1/responses', async () => {
    server.failNth(1, 500);
    server.options.respond = (request) => (request.index === 2 ? { json: { colour: 'red' } } : {});
    const client = clientFor();
    const result = await client.call({ model: 'openai:gpt-5-mini', prompt: 'Name a colour', schema: colour });
    expect(colour.parse(result.output)).toEqual(result.output);
    expect(server.requests).toBe(3);
    expect(server.log.map((r) => r.path)).toEqual(['/v1/responses', '/v1/responses', '/v1/responses']);
    expect(server.lastRequest?.jsonMode).toBe('text_format');
    const third = server.log[2]?.messages ?? [];
    expect(third.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect(JSON.parse(third[1]?.content ?? '')).toEqual({ colour: 'red' });
    expect(third[2]?.content).toMatch(/- shade: /);
    expect(client.usage.total.calls).toBe(2);
  });

  it('streams through the client and records the usage', async () => {
    const client = clientFor();
    const deltas: string[] = [];
    let finished: string | undefined;
    for await (const event of client.stream({ model: 'openai:gpt-5-mini', prompt: 'count one two three' })) {
      if (event.type === 'text-delta') deltas.push(event.text);
      if (event.type === 'finish') finished = event.response.text;
    }
    expect(deltas.join('')).toBe('echo: count one two three');
    expect(finished).toBe('echo: count one two three');
    expect(client.usage.total).toMatchObject({ calls: 1 });
    expect(client.usage.total.inputTokens).toBeGreaterThan(0);
  });
});
