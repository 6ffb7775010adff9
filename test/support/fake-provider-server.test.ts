import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFakeProviderServer } from './fake-provider-server.ts';
import type { FakeProviderServer } from './fake-provider-server.ts';
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
  server.options.rateLimit = undefined;
  server.options.respond = undefined;
  server.options.schemaViolation = undefined;
});

const openaiPost = (body: unknown, init: { key?: string; signal?: AbortSignal } = {}) =>
  fetch(`${server.openaiBaseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${init.key ?? 'sk-test'}` },
    body: JSON.stringify(body),
    ...(init.signal === undefined ? {} : { signal: init.signal }),
  });

const anthropicPost = (body: unknown) =>
  fetch(`${server.anthropicBaseURL}/v1/messages`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-api-key': 'sk-ant-test',
      'anthropic-version': '2026-10-21',
    },
    body: JSON.stringify(body),
  });

const chat = (content: string, extra: Record<string, unknown> = {}) => ({
  model: 'gpt-test',
  messages: [{ role: 'user', content }],
  ...extra,
});

describe('fake provider server', () => {
  it('answers OpenAI chat completions with an x-request-id and x-ratelimit headers', async () => {
    const response = await openaiPost(chat('hi'));
    expect(response.status).toBe(200);
    expect(response.headers.get('x-request-id')).toMatch(/^req_/);
    expect(response.headers.get('x-ratelimit-remaining-requests')).toBe('9999');
    const body = (await response.json()) as { object: string; choices: { message: { content: string } }[] };
    expect(body.object).toBe('chat.completion');
    expect(body.choices[0]?.message.content).toBe('echo: hi');
  });

  it('streams OpenAI chunks, a usage chunk when asked, and [DONE]', async () => {
    const text = await (
      await openaiPost(chat('a b', { stream: true, stream_options: { include_usage: true } }))
    ).text();
    const events = text.split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    const chunks = events
      .slice(0, -1)
      .map((e) => JSON.parse(e.replace(/^data: /, '')) as { choices: unknown[]; usage: unknown });
    expect(chunks.every((c) => (c as { object?: string }).object === 'chat.completion.chunk')).toBe(true);
    expect(chunks.at(-1)?.choices).toEqual([]);
    expect(chunks.at(-1)?.usage).toMatchObject({ prompt_tokens: expect.any(Number) as unknown });
  });

  it('answers Anthropic messages in JSON and in the named-event SSE format', async () => {
    const json = (await (await anthropicPost(chat('hi', { max_tokens: 10 }))).json()) as {
      type: string;
      content: unknown;
    };
    expect(json).toMatchObject({ type: 'message', content: [{ type: 'text', text: 'echo: hi' }] });
    const stream = await anthropicPost(chat('hi there', { max_tokens: 10, stream: true }));
    expect(stream.headers.get('request-id')).toMatch(/^req_/);
    expect(stream.headers.get('anthropic-ratelimit-requests-remaining')).toBe('9999');
    const names = [...(await stream.text()).matchAll(/^event: (\S+)$/gm)].map((m) => m[1]);
    expect(names[0]).toBe('message_start');
    expect(names).toContain('content_block_start');
    expect(names).toContain('content_block_delta');
    expect(names.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
  });

  it('returns real error bodies for scripted statuses, in each wire format', async () => {
    server.failNth(1, 500);
    server.failNth(2, 529);
    const openai = await openaiPost(chat('x'));
    expect(openai.status).toBe(500);
    expect(await openai.json()).toEqual({
      error: { message: expect.any(String) as unknown, type: 'server_error', param: null, code: null },
    });
    const anthropic = await anthropicPost(chat('x', { max_tokens: 5 }));
    expect(anthropic.status).toBe(529);
    expect(await anthropic.json()).toMatchObject({
      type: 'error',
      error: { type: 'overloaded_error', message: 'Overloaded' },
    });
    expect(anthropic.headers.get('retry-after')).toBe('1');
    expect(server.byStatus).toEqual({ '500': 1, '529': 1 });
  });

  it('rejects a missing key with 401 and echoes only a masked key', async () => {
    server.options.apiKey = fakeKey('right', 'key', '123456');
    try {
      const response = await openaiPost(chat('x'), { key: fakeKey('wrong', 'key', 'abcdefgh') });
      expect(response.status).toBe(401);
      const body = (await response.json()) as { error: { message: string; code: string } };
      expect(body.error.code).toBe('invalid_api_key');
      expect(body.error.message).not.toContain(fakeKey('wrong', 'key', 'abcdefgh'));
    } finally {
      server.options.apiKey = undefined;
    }
  });

  it('enforces a fixed-window rate limit with 429, retry-after(-ms) and zero remaining', async () => {
    server.options.rateLimit = { requests: 2, windowMs: 60_000 };
    expect((await openaiPost(chat('1'))).status).toBe(200);
    expect((await openaiPost(chat('2'))).status).toBe(200);
    const limited = await openaiPost(chat('3'));
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after-ms'))).toBeGreaterThan(0);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(limited.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(((await limited.json()) as { error: { code: string } }).error.code).toBe('rate_limit_exceeded');
    expect(server.peakRequestsPerWindow).toBe(3);
  });

  it('enforces a token budget too', async () => {
    server.options.rateLimit = { requests: 100, tokens: 30, windowMs: 60_000 };
    expect((await openaiPost(chat('short'))).status).toBe(200);
    expect((await openaiPost(chat('x'.repeat(400)))).status).toBe(429);
  });

  it('sliding windows count from the oldest accepted request', async () => {
    server.options.rateLimit = { requests: 1, windowMs: 60_000, mode: 'sliding' };
    expect((await anthropicPost(chat('1', { max_tokens: 5 }))).status).toBe(200);
    const limited = await anthropicPost(chat('2', { max_tokens: 5 }));
    expect(limited.status).toBe(429);
    expect(await limited.json()).toMatchObject({ error: { type: 'rate_limit_error' } });
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(50);
  });

  it('failRate is deterministic for a seed', async () => {
    const run = async () => {
      server.reset();
      server.failRate(0.5, [503], 42);
      const statuses: number[] = [];
      for (let i = 0; i < 12; i++) statuses.push((await openaiPost(chat(String(i)))).status);
      return statuses;
    };
    const first = await run();
    expect(await run()).toEqual(first);
    expect(first).toContain(503);
    expect(first).toContain(200);
  });

  it('counts concurrency, in-flight requests and client aborts', async () => {
    server.failNth(1, 'hang');
    server.failNth(2, 'hang');
    const controller = new AbortController();
    const pending = [
      openaiPost(chat('a'), { signal: controller.signal }),
      openaiPost(chat('b'), { signal: controller.signal }),
    ];
    await server.waitForRequests(2);
    expect(server.inFlight).toBe(2);
    controller.abort();
    await Promise.allSettled(pending);
    await server.waitForAborted(2);
    await server.waitForIdle();
    expect(server.peakConcurrency).toBe(2);
    expect(server.aborted).toBe(2);
    expect(server.inFlight).toBe(0);
    expect(server.byStatus).toEqual({ hang: 2 });
  });

  it('drops connections, and sends malformed JSON', async () => {
    server.failNth(1, 'drop');
    server.failNth(2, 'malformed-json');
    await expect(openaiPost(chat('x'))).rejects.toThrow();
    const malformed = await openaiPost(chat('x'));
    await expect(malformed.json()).rejects.toThrow(SyntaxError);
    expect(server.aborted).toBe(0);
  });

  it('returns schema-valid JSON for json_schema requests and forced tools, or violates on demand', async () => {
    const schema = {
      type: 'object',
      properties: { n: { type: 'integer', minimum: 4, maximum: 4 } },
      required: ['n'],
    };
    const openai = (await (
      await openaiPost(
        chat('x', {
          response_format: { type: 'json_schema', json_schema: { name: 'o', schema, strict: true } },
        }),
      )
    ).json()) as { choices: { message: { content: string } }[] };
    expect(JSON.parse(openai.choices[0]!.message.content)).toEqual({ n: 4 });
    const anthropic = (await (
      await anthropicPost(
        chat('x', {
          max_tokens: 5,
          tools: [{ name: 'o', input_schema: schema }],
          tool_choice: { type: 'tool', name: 'o' },
        }),
      )
    ).json()) as { content: unknown[]; stop_reason: string };
    expect(anthropic.content).toEqual([
      { type: 'tool_use', id: expect.any(String) as unknown, name: 'o', input: { n: 4 } },
    ]);
    expect(anthropic.stop_reason).toBe('tool_use');
    server.options.schemaViolation = true;
    const violated = (await (
      await openaiPost(
        chat('x', { response_format: { type: 'json_schema', json_schema: { name: 'o', schema } } }),
      )
    ).json()) as { choices: { message: { content: string } }[] };
    expect(JSON.parse(violated.choices[0]!.message.content)).not.toHaveProperty('n');
  });

  it('records request bodies and headers, and refuses sampling parameters on the new Anthropic API version', async () => {
    await openaiPost(chat('logged', { temperature: 0 }));
    expect(server.lastRequest).toMatchObject({
      api: 'openai',
      model: 'gpt-test',
      lastUserText: 'logged',
      index: 1,
    });
    expect(server.lastRequest?.headers['authorization']).toBe('Bearer sk-test');
    const refused = await anthropicPost(chat('x', { max_tokens: 5, temperature: 1 }));
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({
      error: { message: 'temperature: Extra inputs are not permitted' },
    });
    expect(server.log).toHaveLength(2);
  });
});
