/**
 * Prompt caching through the real OpenAI and Anthropic SDKs against the loopback fake server: Anthropic
 * `cache_control` breakpoints on the wire when a call (or a chain node) asks for them and none when it does
 * not, no change to the OpenAI request, cache reads and writes counted from both wire formats (streamed too)
 * and priced at their own rates, and a budget that stops at the call the cache-priced spend says.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  BudgetExceededError,
  ModelClient,
  PriceTable,
  ProviderRegistry,
  chain,
  createAnthropicProvider,
  createOpenAIProvider,
  estimateTokens,
  type CallSpec,
  type ModelClientOptions,
  type ModelResponse,
  type StreamEvent,
  type Usage,
} from '../../src/index.ts';
import { cacheKey } from '../../src/eval/cache.ts';
import {
  anthropicBreakpointCache,
  startFakeProviderServer,
  type FakeProviderServer,
} from '../support/fake-provider-server.ts';
import { fakeKey } from '../helpers/fake-keys.ts';

const OPENAI_KEY = fakeKey('test', 'openai', 'S3CRETvalue0123456789wxyz');
const ANTHROPIC_KEY = fakeKey('ant', 'api03', 'test', 'S3CRETvalue0123456789wxyz');

/** Rates easy to check by hand: USD per million tokens. */
const RATES = {
  inputPerMillion: 1000,
  outputPerMillion: 2000,
  cachedInputPerMillion: 100,
  cacheWritePerMillion: 1250,
};
const prices = new PriceTable({ 'openai:fake-model': RATES, 'anthropic:claude-sonnet-4-5': RATES });

/** A system prompt well over Anthropic's 1024-token minimum for Sonnet (by a quarter of its characters). */
const LONG_SYSTEM = 'You are a careful assistant who follows the house rules. '.repeat(100);

let server: FakeProviderServer;

beforeAll(async () => {
  server = await startFakeProviderServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  server.reset();
  server.options.cacheTokens = undefined;
  server.options.respond = undefined;
});

function clientFor(options: ModelClientOptions = {}): ModelClient {
  const registry = new ProviderRegistry()
    .register(createOpenAIProvider({ baseURL: server.openaiBaseURL, apiKey: OPENAI_KEY }))
    .register(createAnthropicProvider({ baseURL: server.anthropicBaseURL, apiKey: ANTHROPIC_KEY }));
  return new ModelClient({ registry, retry: { baseDelayMs: 2, maxRetries: 1 }, prices, ...options });
}

/** Every `cache_control` value anywhere in a request body, with where it was found. */
function breakpoints(body: unknown, path = ''): string[] {
  if (Array.isArray(body)) return body.flatMap((item, i) => breakpoints(item, `${path}[${i}]`));
  if (typeof body !== 'object' || body === null) return [];
  const found: string[] = [];
  for (const [key, value] of Object.entries(body)) {
    if (key === 'cache_control') found.push(`${path} ${JSON.stringify(value)}`);
    else found.push(...breakpoints(value, `${path}.${key}`));
  }
  return found;
}

async function lastResponse(events: AsyncIterable<StreamEvent>): Promise<ModelResponse> {
  let response: ModelResponse | undefined;
  for await (const event of events) if (event.type === 'finish') response = event.response;
  if (response === undefined) throw new Error('the stream had no finish event');
  return response;
}

describe('cache_control on the Anthropic wire', () => {
  const model = 'anthropic:claude-sonnet-4-5';
  const history = [
    { role: 'user' as const, content: 'Here is a long document. '.repeat(300) },
    { role: 'assistant' as const, content: 'I have read it.' },
    { role: 'user' as const, content: 'Summarise it.' },
  ];

  it("'system' marks the system prompt, whatever its length", async () => {
    await clientFor().call({ model, system: 'Be brief.', prompt: 'hi', cache: 'system' });
    const body = server.lastRequest?.body as { system: unknown };
    expect(body.system).toEqual([{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }]);
    expect(breakpoints(body)).toHaveLength(1);
  });

  it('false sends no breakpoint at all, even for a long system prompt and history', async () => {
    await clientFor().call({ model, system: LONG_SYSTEM, messages: history, cache: false });
    const body = server.lastRequest?.body as { system: unknown };
    expect(body.system).toBe(LONG_SYSTEM);
    expect(breakpoints(body)).toEqual([]);
  });

  it("'auto' (the default) leaves a prompt too short to be cached unmarked", async () => {
    await clientFor().call({ model, system: 'Be brief.', prompt: 'hi' });
    expect(breakpoints(server.lastRequest?.body)).toEqual([]);
  });

  it("'auto' marks a long system prompt and the end of a long history before the newest turn", async () => {
    await clientFor().call({ model, system: LONG_SYSTEM, messages: history });
    const body = server.lastRequest?.body as {
      system: unknown;
      messages: { role: string; content: unknown }[];
    };
    expect(body.system).toEqual([{ type: 'text', text: LONG_SYSTEM, cache_control: { type: 'ephemeral' } }]);
    // The assistant turn closes the stable prefix; the newest user turn stays unmarked.
    expect(body.messages[1]).toEqual({
      role: 'assistant',
      content: [{ type: 'text', text: 'I have read it.', cache_control: { type: 'ephemeral' } }],
    });
    expect(body.messages[2]).toEqual({ role: 'user', content: 'Summarise it.' });
    expect(breakpoints(body)).toHaveLength(2);
  });

  it("'auto' applies the model's documented minimum: 4096 tokens for Claude Haiku 4.5", async () => {
    // About 1400 tokens: cacheable on Sonnet (1024), not on Haiku 4.5 (4096).
    const system = 'x'.repeat(5600);
    await clientFor().call({ model: 'anthropic:claude-haiku-4-5', system, prompt: 'hi' });
    expect(breakpoints(server.lastRequest?.body)).toEqual([]);
    await clientFor().call({ model, system, prompt: 'hi' });
    expect(breakpoints(server.lastRequest?.body)).toHaveLength(1);
  });

  it('marks the last tool when there is no system prompt', async () => {
    const tools = [{ name: 'lookup', description: 'Looks up a word.', parameters: { type: 'object' } }];
    await clientFor().call({ model, prompt: 'hi', tools, cache: 'system' });
    const body = server.lastRequest?.body as { tools: { name: string; cache_control?: unknown }[] };
    expect(body.tools[0]).toMatchObject({ name: 'lookup', cache_control: { type: 'ephemeral' } });
    expect(breakpoints(body)).toHaveLength(1);
  });

  it('a chain node with cache: false sends none, one with cache: system marks its system prompt', async () => {
    const client = clientFor();
    const twoNodes = chain({ name: 'cached', input: z.object({ q: z.string() }), model, client })
      .prompt('plain', { system: LONG_SYSTEM, prompt: ({ input }) => input.q, cache: false })
      .prompt('marked', {
        system: 'Short.',
        prompt: ({ input }) => input.q,
        cache: 'system',
        after: ['plain'],
      })
      .build();
    await twoNodes.run({ q: 'hello' });
    const [plain, marked] = server.log;
    expect(breakpoints(plain?.body)).toEqual([]);
    expect((marked?.body as { system: unknown }).system).toEqual([
      { type: 'text', text: 'Short.', cache_control: { type: 'ephemeral' } },
    ]);
  });

  it('refuses a bad cache value on a node, naming the node and the value', () => {
    const builder = chain({ name: 'bad', input: z.object({ q: z.string() }), model });
    expect(() =>
      builder.prompt('n', { prompt: () => 'hi', cache: 'always' as unknown as 'auto' }).build(),
    ).toThrow(/Node "n": cache must be 'auto', 'system' or false, got "always"/);
  });
});

describe('the OpenAI request does not change with the cache mode', () => {
  it('sends the same body for auto, system and false (OpenAI caches by itself)', async () => {
    const client = clientFor();
    const bodies: unknown[] = [];
    for (const cache of ['auto', 'system', false] as const) {
      await client.call({ model: 'openai:fake-model', system: LONG_SYSTEM, prompt: 'hi', cache });
      bodies.push(server.lastRequest?.body);
    }
    expect(bodies[1]).toEqual(bodies[0]);
    expect(bodies[2]).toEqual(bodies[0]);
    expect(breakpoints(bodies[0])).toEqual([]);
  });

  it('keeps the cache mode out of the response cache key (it never changes the answer)', () => {
    const request = {
      model: 'fake-model',
      system: 'S',
      messages: [{ role: 'user' as const, content: 'hi' }],
    };
    const key = cacheKey('openai', request);
    expect(cacheKey('openai', { ...request, cache: 'system' })).toBe(key);
    expect(cacheKey('openai', { ...request, cache: false })).toBe(key);
  });
});

/** Cost at RATES of a usage, computed here independently of the library. */
function expectedCost(u: {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens?: number | undefined;
  cacheWriteTokens?: number | undefined;
}): number {
  const read = u.cacheReadTokens ?? 0;
  const write = u.cacheWriteTokens ?? 0;
  return ((u.inputTokens - read - write) * 1000 + read * 100 + write * 1250 + u.outputTokens * 2000) / 1e6;
}

describe('cache tokens counted and priced from both wire formats', () => {
  it('OpenAI: cached_tokens are cache reads within inputTokens, priced at the cached rate', async () => {
    server.options.cacheTokens = () => ({ read: 1024 });
    const client = clientFor();
    const spec: CallSpec = { model: 'openai:fake-model', system: LONG_SYSTEM, prompt: 'hi' };
    const called = await client.call(spec);
    const streamed = await lastResponse(client.stream(spec));
    const wire = server.log[0]?.body;
    expect(wire).toBeDefined();
    for (const usage of [called.usage, streamed.usage]) {
      expect(usage.cacheReadTokens).toBe(1024);
      expect(usage.cacheWriteTokens).toBeUndefined();
      expect(usage.inputTokens).toBeGreaterThan(1024);
    }
    expect(called.costUsd).toBeCloseTo(expectedCost(called.usage), 12);
    expect(client.usage.total).toMatchObject({ calls: 2, cacheReadTokens: 2048, cacheWriteTokens: 0 });
  });

  it('Anthropic: a write on the first call, reads on the next, input_tokens plus both parts as inputTokens', async () => {
    server.options.cacheTokens = anthropicBreakpointCache();
    const client = clientFor();
    const spec: CallSpec = { model: 'anthropic:claude-sonnet-4-5', system: LONG_SYSTEM, prompt: 'hi' };
    const first = await client.call(spec);
    const second = await client.call(spec);
    const streamed = await lastResponse(client.stream(spec));
    expect(first.usage.cacheWriteTokens).toBeGreaterThan(1024);
    expect(first.usage.cacheReadTokens).toBeUndefined();
    expect(second.usage.cacheReadTokens).toBe(first.usage.cacheWriteTokens);
    expect(second.usage.cacheWriteTokens).toBeUndefined();
    expect(streamed.usage.cacheReadTokens).toBe(first.usage.cacheWriteTokens);
    // The whole prompt each time, however it was cached.
    expect(second.usage.inputTokens).toBe(first.usage.inputTokens);
    // The streamed body is the same plus `"stream":true`, a few tokens more of uncached input.
    expect(streamed.usage.inputTokens - first.usage.inputTokens).toBeGreaterThan(0);
    expect(streamed.usage.inputTokens - first.usage.inputTokens).toBeLessThan(10);
    expect(first.costUsd).toBeCloseTo(expectedCost(first.usage), 12);
    expect(second.costUsd).toBeCloseTo(expectedCost(second.usage), 12);
    expect(second.costUsd ?? Infinity).toBeLessThan((first.costUsd ?? 0) / 2);
    const written = first.usage.cacheWriteTokens ?? 0;
    expect(client.usage.total).toMatchObject({
      calls: 3,
      cacheReadTokens: 2 * written,
      cacheWriteTokens: written,
    });
  });

  it('a chain run carries the cache tokens in its per-node usage', async () => {
    server.options.cacheTokens = anthropicBreakpointCache();
    const client = clientFor();
    const once = chain({
      name: 'c',
      input: z.object({ q: z.string() }),
      model: 'anthropic:claude-sonnet-4-5',
      client,
    })
      .prompt('ask', { system: LONG_SYSTEM, prompt: ({ input }) => input.q })
      .build();
    const first = await once.run({ q: 'hello' });
    const second = await once.run({ q: 'hello' });
    const written = first.usageByNode['ask']?.cacheWriteTokens ?? 0;
    expect(written).toBeGreaterThan(1024);
    expect(second.usageByNode['ask']).toMatchObject({ cacheReadTokens: written, cacheWriteTokens: 0 });
    expect(second.usageByNode['ask']?.costUsd ?? Infinity).toBeLessThan(
      first.usageByNode['ask']?.costUsd ?? 0,
    );
  });
});

describe('a budget with cached calls', () => {
  it('stops at the first call whose estimate would pass the cache-priced spend, later than full-rate pricing would', async () => {
    server.options.cacheTokens = anthropicBreakpointCache();
    const spec: CallSpec = {
      model: 'anthropic:claude-sonnet-4-5',
      system: LONG_SYSTEM,
      prompt: 'hi',
      maxTokens: 8,
    };
    // The client's estimate: input chars / 4 at the input rate, maxTokens at the output rate.
    const request = {
      model: 'claude-sonnet-4-5',
      system: spec.system,
      messages: [{ role: 'user' as const, content: 'hi' }],
      maxTokens: 8,
    };
    const estimate = ((estimateTokens(request) - 8) * 1000 + 8 * 2000) / 1e6;
    const maxUsd = 6 * estimate;
    const client = clientFor({ budget: { maxUsd } });
    const usages: Usage[] = [];
    let refused: unknown;
    while (usages.length < 50) {
      try {
        usages.push((await client.call(spec)).usage);
      } catch (error) {
        refused = error;
        break;
      }
    }
    expect(refused).toBeInstanceOf(BudgetExceededError);
    // The known answer: how many calls fit, replayed with this test's own arithmetic.
    const fitting = (costs: readonly number[]): { fit: number; spent: number } => {
      let spent = 0;
      let fit = 0;
      for (const cost of costs) {
        if (spent + estimate > maxUsd) break;
        spent += cost;
        fit += 1;
      }
      return { fit, spent };
    };
    const cached = fitting(usages.map(expectedCost));
    expect(usages).toHaveLength(cached.fit);
    expect(cached.spent + estimate).toBeGreaterThan(maxUsd);
    expect(client.budget?.spent.usd).toBeCloseTo(cached.spent, 12);
    // Priced as if nothing were cached (the old accounting), the same calls would have stopped much earlier.
    const fullRate = fitting(
      usages.map((u) => expectedCost({ inputTokens: u.inputTokens, outputTokens: u.outputTokens })),
    );
    expect(fullRate.fit).toBeLessThanOrEqual(6);
    expect(cached.fit).toBeGreaterThan(fullRate.fit * 2);
    const fit = cached.fit;
    expect(server.requests).toBe(fit);
  });
});
