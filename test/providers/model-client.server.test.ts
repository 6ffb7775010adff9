/**
 * ModelClient through the real OpenAI and Anthropic SDKs against the loopback fake server: text and schema
 * calls, re-asks, usage and cost, the budget, rate limiting, cancellation, streaming and secrets.
 * Retry rules (429/5xx/4xx, exhaustion) are in model-client.retry.test.ts.
 */
import { inspect } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  AuthenticationError,
  BudgetExceededError,
  CancelledError,
  Composition,
  DAGNote,
  ModelClient,
  NodeError,
  OutputValidationError,
  Perform,
  PriceTable,
  ProviderRegistry,
  RateLimiterRegistry,
  createAnthropicProvider,
  createOpenAIProvider,
  type CallEvent,
  type CallResult,
  type ModelClientOptions,
  type RateLimitWait,
  type StreamEvent,
} from '../../src/index.ts';
import { deferred, flush } from '../helpers/deferred.ts';
import { startFakeProviderServer, type FakeProviderServer } from '../support/fake-provider-server.ts';
import { fakeKey } from '../helpers/fake-keys.ts';

const OPENAI_KEY = fakeKey('test', 'openai', 'S3CRETvalue0123456789wxyz');
const ANTHROPIC_KEY = fakeKey('ant', 'api03', 'test', 'S3CRETvalue0123456789wxyz');

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
  server.options.schemaViolation = undefined;
  server.options.rateLimit = undefined;
  server.options.apiKey = undefined;
});

function registry(keys: { openai?: string; anthropic?: string } = {}): ProviderRegistry {
  return new ProviderRegistry()
    .register(createOpenAIProvider({ baseURL: server.openaiBaseURL, apiKey: keys.openai ?? OPENAI_KEY }))
    .register(
      createAnthropicProvider({ baseURL: server.anthropicBaseURL, apiKey: keys.anthropic ?? ANTHROPIC_KEY }),
    );
}

/** A client on the fake server with fast retries; `events` collects every onEvent. */
function clientFor(options: ModelClientOptions = {}): { client: ModelClient; events: CallEvent[] } {
  const events: CallEvent[] = [];
  const client = new ModelClient({
    registry: registry(),
    retry: { baseDelayMs: 2, maxRetries: 3 },
    onEvent: (event) => events.push(event),
    ...options,
  });
  return { client, events };
}

const colour = z.object({ colour: z.string(), shade: z.number() });

const models = [
  { provider: 'openai', modelId: 'openai:gpt-4.1-mini', jsonMode: 'response_format' },
  { provider: 'anthropic', modelId: 'anthropic:claude-haiku-4-5', jsonMode: 'forced_tool' },
] as const;

describe.each(models)('ModelClient through the $provider SDK', ({ provider, modelId, jsonMode }) => {
  it('makes a text call: text, usage, cost from the default price table, request id', async () => {
    const { client, events } = clientFor();
    const result = await client.call({ model: modelId, system: 'Be brief.', prompt: 'Hello there' });
    expect(result).toMatchObject({
      output: 'echo: Hello there',
      text: 'echo: Hello there',
      modelId,
      simulated: false,
      attempt: 1,
    });
    expect(result.requestId).toMatch(/^req_/);
    expect(result.response.provider).toBe(provider);
    expect(result.usage.inputTokens).toBeGreaterThan(0);
    expect(result.usage.outputTokens).toBeGreaterThan(0);
    expect(result.costUsd).toBe(PriceTable.default.costOf(modelId, result.usage).costUsd);
    expect(result.costUsd).toBeGreaterThan(0);
    expect(server.requests).toBe(1);
    expect(server.lastRequest).toMatchObject({ system: 'Be brief.', lastUserText: 'Hello there' });
    expect(events).toEqual([
      {
        type: 'call',
        modelId,
        nodeKey: undefined,
        usage: result.usage,
        costUsd: result.costUsd,
        requestId: result.requestId,
        simulated: false,
        estimated: false,
        cached: false,
        responseModel: result.response.model,
        finishReason: 'stop',
      },
    ]);
    expect(client.usage.total).toMatchObject({ calls: 1, inputTokens: result.usage.inputTokens });
  });

  it('makes a schema call: the schema goes on the wire, the output comes back validated', async () => {
    const { client } = clientFor();
    const result = await client.call({ model: modelId, prompt: 'Name a colour', schema: colour });
    expect(colour.parse(result.output)).toEqual(result.output);
    expect(typeof result.output.colour).toBe('string');
    expect(server.lastRequest?.jsonMode).toBe(jsonMode);
    expect(server.lastRequest?.jsonSchema).toMatchObject({
      type: 'object',
      properties: { colour: { type: 'string' }, shade: { type: 'number' } },
    });
  });

  it('re-asks after a schema violation, feeding back the raw reply and the issues', async () => {
    server.options.respond = (request) => (request.index === 1 ? { json: { colour: 'red' } } : {});
    const { client, events } = clientFor();
    const result = await client.call({ model: modelId, prompt: 'Name a colour', schema: colour });
    expect(result.attempt).toBe(2);
    expect(colour.safeParse(result.output).success).toBe(true);
    expect(server.requests).toBe(2);
    const second = server.log[1]?.messages ?? [];
    expect(second.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect(second[0]?.content).toBe('Name a colour');
    expect(JSON.parse(second[1]?.content ?? '')).toEqual({ colour: 'red' });
    expect(second[2]?.content).toMatch(/did not match the requested JSON schema/);
    expect(second[2]?.content).toMatch(/- shade: /);
    expect(events.filter((e) => e.type === 'retry')).toEqual([
      expect.objectContaining({ kind: 'repair', attempt: 1 }),
    ]);
    // Both replies were paid for.
    expect(client.usage.total.calls).toBe(2);
  });

  it('throws OutputValidationError once the repair budget is spent', async () => {
    server.options.schemaViolation = true;
    const { client } = clientFor({ repairAttempts: 2 });
    const error = await client
      .call({ model: modelId, prompt: 'Name a colour', schema: colour })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutputValidationError);
    const invalid = error as OutputValidationError;
    expect(invalid.kind).toBe('schema');
    expect(JSON.parse(invalid.rawText)).toEqual({ schema_violation: true });
    expect(invalid.issues.map((i) => i.path)).toEqual(['colour', 'shade']);
    expect(invalid.modelId).toBe(modelId);
    expect(server.requests).toBe(3);
  });
});

describe('ModelClient repair and transport budgets', () => {
  it('are separate: repairAttempts 1 still succeeds after 2 transport failures and a bad reply', async () => {
    server.failNth(1, 500);
    server.failNth(2, 503);
    server.options.respond = (request) => (request.index === 3 ? { json: { colour: 'red' } } : {});
    const { client, events } = clientFor({ retry: { maxRetries: 2, baseDelayMs: 1 }, repairAttempts: 1 });
    const result = await client.call({ model: 'openai:gpt-4.1-mini', prompt: 'colour', schema: colour });
    expect(result.attempt).toBe(4);
    expect(server.byStatus).toEqual({ '500': 1, '503': 1, '200': 2 });
    expect(events.filter((e) => e.type === 'retry').map((e) => e.kind)).toEqual([
      'transport',
      'transport',
      'repair',
    ]);
  });

  it('in a Composition, each transport retry and re-ask is its own retryTask child', async () => {
    server.failNth(1, 500);
    server.failNth(2, 500);
    server.options.respond = (request) => (request.index === 3 ? { json: { shade: 1 } } : {});
    const { client } = clientFor({ retry: { maxRetries: 2, baseDelayMs: 1 }, repairAttempts: 1 });
    const composition = new Composition([[new DAGNote('paint'), []]], {
      maxTries: client.maxTries,
      configureNodeRunner: () =>
        client.runner({ model: 'openai:gpt-4.1-mini', prompt: 'colour', schema: colour }),
    });
    expect(await composition.start()).toBe('completed');
    const trace = composition.trace();
    expect(trace.map((r) => [r.status, r.attempt, r.error?.status])).toEqual([
      ['retrying', 1, 500],
      ['retrying', 2, 500],
      ['retrying', 3, undefined],
      ['completed', 4, undefined],
    ]);
    for (let i = 1; i < trace.length; i++) expect(trace[i]?.parentId).toBe(trace[i - 1]?.runnerId);
    expect(trace[2]?.error?.message).toMatch(/failed validation/);
    expect((composition.results.get('paint') as CallResult).attempt).toBe(4);
  });
});

describe('ModelClient usage, cost and budget on the wire', () => {
  const prices = new PriceTable({ 'openai:fake-model': { inputPerMillion: 2, outputPerMillion: 6 } });

  it('costs a fake model from the price table and leaves an unpriced model undefined', async () => {
    const { client } = clientFor({ prices });
    const priced = await client.call({ model: 'openai:fake-model', prompt: 'hi' });
    expect(priced.costUsd).toBeCloseTo(
      (priced.usage.inputTokens * 2 + priced.usage.outputTokens * 6) / 1e6,
      15,
    );
    const unpriced = await client.call({ model: 'openai:gpt-4.1-mini', prompt: 'hi' });
    expect(unpriced.costUsd).toBeUndefined();
    expect(client.usage.total).toMatchObject({ calls: 2, unpricedCalls: 1 });
    expect(client.usage.total.costUsd).toBeCloseTo(priced.costUsd ?? Number.NaN, 15);
  });

  it('a call over maxTokens is refused before it is sent', async () => {
    const { client } = clientFor({ budget: { maxTokens: 1000 } });
    const first = await client.call({ model: 'openai:gpt-4.1-mini', prompt: 'hi', maxTokens: 16 });
    const spent = first.usage.inputTokens + first.usage.outputTokens;
    expect(client.budget?.spent.tokens).toBe(spent);
    client.budget?.record({ inputTokens: 1000 - spent - 5, outputTokens: 0 });
    const error = await client
      .call({ model: 'openai:gpt-4.1-mini', prompt: 'hi', maxTokens: 16 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BudgetExceededError);
    expect(error).toMatchObject({ kind: 'tokens', limit: 1000, spent: 995, estimate: 17 });
    expect(server.requests).toBe(1);
  });

  it('a call over maxUsd is refused before it is sent, also inside a Composition', async () => {
    const dear = new PriceTable({ 'openai:fake-model': { inputPerMillion: 0, outputPerMillion: 10_000 } });
    // 100 output tokens at $0.01 = $1 estimated: over a $0.50 budget.
    const { client } = clientFor({ prices: dear, budget: { maxUsd: 0.5 } });
    const composition = new Composition([[new DAGNote('A'), []]], {
      maxTries: client.maxTries,
      configureNodeRunner: () => client.runner({ model: 'openai:fake-model', prompt: 'hi', maxTokens: 100 }),
    });
    expect(await composition.start()).toBe('error');
    const cause = (composition.error as NodeError).cause;
    expect(cause).toBeInstanceOf(BudgetExceededError);
    expect(cause).toMatchObject({ kind: 'usd', limit: 0.5, spent: 0 });
    expect((cause as BudgetExceededError).estimate).toBeCloseTo(1, 10);
    expect(server.requests).toBe(0);
    expect(composition.trace()).toHaveLength(1);
  });
});

describe('ModelClient rate limiting against the fake server', () => {
  it('keeps many concurrent calls through Perform under the server limit: no 429 at all', async () => {
    server.options.rateLimit = { requests: 20, windowMs: 1000 };
    const { client } = clientFor({
      limits: { openai: { requestsPerMinute: 20, windowMs: 1000 } },
    });
    const note = new DAGNote('ask');
    const perform = new Perform({ highWater: 100 });
    const compositions = Array.from(
      { length: 30 },
      (_, i) =>
        new Composition([[note, []]], {
          maxTries: client.maxTries,
          configureNodeRunner: () => client.runner({ model: 'openai:gpt-4.1-mini', prompt: `question ${i}` }),
        }),
    );
    const statuses = await Promise.all(compositions.map((c) => perform.run(c)));
    expect(statuses.every((s) => s === 'completed')).toBe(true);
    expect(server.byStatus).toEqual({ '200': 30 });
    const limiter = client.limiters.get('openai', 'gpt-4.1-mini');
    expect(limiter.granted).toBe(30);
    expect(limiter.throttledMs).toBeGreaterThan(0);
    expect(
      compositions.map((c) => (c.results.get('ask') as CallResult).text).every((t) => t.startsWith('echo:')),
    ).toBe(true);
  });

  it('a 429 from the server holds every waiter of the limiter, not only the caller that got it', async () => {
    server.failNth(1, { status: 429, retryAfterMs: 200 });
    const holds: { wait: RateLimitWait; requests: number; inFlight: number; waiting: number }[] = [];
    const limits = new RateLimiterRegistry({
      limits: { openai: { maxConcurrency: 1 } },
      onWait: (_key, wait) => {
        const limiter = limits.get('openai', 'gpt-4.1-mini');
        holds.push({ wait, requests: server.requests, inFlight: limiter.inFlight, waiting: limiter.waiting });
      },
    });
    const duringHold: Promise<CallResult<string>>[] = [];
    const heldEvent = deferred<CallEvent>();
    const { client, events } = clientFor({
      limits,
      onEvent: (event) => {
        events.push(event);
        // The retry event comes after the 429's permit was released: the hold is in force now.
        if (event.type === 'retry' && duringHold.length === 0) {
          duringHold.push(client.call({ model: 'openai:gpt-4.1-mini', prompt: 'third' }));
        }
        if (event.type === 'rate-limit-wait' && event.reason === 'hold') heldEvent.resolve(event);
      },
    });
    const a = client.call({ model: 'openai:gpt-4.1-mini', prompt: 'first' });
    const b = client.call({ model: 'openai:gpt-4.1-mini', prompt: 'second' });
    const held = await heldEvent.promise;
    expect(held).toMatchObject({ type: 'rate-limit-wait', modelId: 'openai:gpt-4.1-mini', reason: 'hold' });
    expect(held.type === 'rate-limit-wait' ? held.delayMs : 0).toBeGreaterThan(0);
    await Promise.all([a, b, ...duringHold]);

    // B waited for the concurrency slot, then (slot free, nothing in flight) for the hold, with only the
    // failed request sent so far.
    expect(holds.map((h) => h.wait.reason)).toContain('concurrency');
    const hold = holds.find((h) => h.wait.reason === 'hold');
    expect(hold).toMatchObject({ requests: 1, inFlight: 0 });
    expect(hold?.waiting).toBeGreaterThanOrEqual(1);
    expect(duringHold).toHaveLength(1);
    expect(server.byStatus).toEqual({ '429': 1, '200': 3 });
    // B queued for the slot; C, called during the hold, queued for the hold (A's own retry comes later).
    const waits = events.filter((e) => e.type === 'rate-limit-wait');
    expect(waits.slice(0, 2).map((e) => e.reason)).toEqual(['concurrency', 'hold']);
  });
});

describe('ModelClient cancellation', () => {
  it('aborting the Composition signal aborts the in-flight HTTP request and empties the limiter queue', async () => {
    server.failNth(1, 'hang');
    const { client } = clientFor({ limits: { openai: { maxConcurrency: 1 } } });
    const controller = new AbortController();
    const a = new DAGNote('A');
    const b = new DAGNote('B');
    const composition = new Composition(
      [
        [a, []],
        [b, []],
      ],
      {
        signal: controller.signal,
        maxTries: client.maxTries,
        configureNodeRunner: (node) => client.runner({ model: 'openai:gpt-4.1-mini', prompt: node.name }),
      },
    );
    const done = composition.start();
    await server.waitForRequests(1);
    const limiter = client.limiters.get('openai', 'gpt-4.1-mini');
    await flush();
    expect(limiter.inFlight).toBe(1);
    expect(limiter.waiting).toBe(1);
    controller.abort(new Error('user pressed stop'));
    expect(await done).toBe('cancelled');
    expect(composition.error).toBeInstanceOf(CancelledError);
    await server.waitForAborted(1);
    expect(server.aborted).toBe(1);
    expect(limiter.waiting).toBe(0);
    await server.waitForIdle();
    await flush();
    expect(limiter.inFlight).toBe(0);
    expect(server.requests).toBe(1);
    expect(composition.trace().map((r) => r.status)).toEqual(['cancelled', 'cancelled']);
  });

  it('aborting during a retry delay cancels the composition without another request', async () => {
    server.failNth(1, { status: 429, retryAfterMs: 30_000 });
    const retry = deferred<CallEvent>();
    const { client } = clientFor({
      onEvent: (event) => {
        if (event.type === 'retry') retry.resolve(event);
      },
    });
    const controller = new AbortController();
    const composition = new Composition([[new DAGNote('A'), []]], {
      signal: controller.signal,
      maxTries: client.maxTries,
      configureNodeRunner: () => client.runner({ model: 'openai:gpt-4.1-mini', prompt: 'hi' }),
    });
    const done = composition.start();
    expect(await retry.promise).toMatchObject({ delayMs: 30_000 });
    await flush();
    expect(composition.trace().map((r) => r.status)).toEqual(['retrying']);
    controller.abort();
    expect(await done).toBe('cancelled');
    expect(composition.trace().map((r) => r.status)).toEqual(['retrying', 'cancelled']);
    expect(server.requests).toBe(1);
  });

  it('aborting a standalone call aborts its request and is not retried', async () => {
    server.failNth(1, 'hang');
    const { client, events } = clientFor();
    const controller = new AbortController();
    const call = client.call(
      { model: 'anthropic:claude-haiku-4-5', prompt: 'hi' },
      { signal: controller.signal },
    );
    await server.waitForRequests(1);
    controller.abort(new Error('enough'));
    await expect(call).rejects.toThrow('enough');
    await server.waitForAborted(1);
    expect(server.requests).toBe(1);
    expect(events.filter((e) => e.type === 'retry')).toEqual([]);
  });
});

async function collect(events: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  for await (const event of events) out.push(event);
  return out;
}

describe.each(models)('ModelClient.stream() through the $provider SDK', ({ modelId }) => {
  it('yields text deltas then finish, and records the usage', async () => {
    const { client, events } = clientFor();
    const streamed = await collect(
      client.stream({ model: modelId, prompt: 'tell me a story' }, { labels: { nodeKey: 'story' } }),
    );
    const deltas = streamed.filter((e) => e.type === 'text-delta');
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.map((e) => e.text).join('')).toBe('echo: tell me a story');
    const finish = streamed.at(-1);
    expect(finish?.type).toBe('finish');
    const response = finish?.type === 'finish' ? finish.response : undefined;
    expect(response?.text).toBe('echo: tell me a story');
    expect(response?.usage.outputTokens).toBeGreaterThan(0);
    expect(events).toEqual([
      expect.objectContaining({ type: 'call', nodeKey: 'story', usage: response?.usage, estimated: false }),
    ]);
    expect(client.usage.forNode('story')).toMatchObject({
      calls: 1,
      inputTokens: response?.usage.inputTokens,
      outputTokens: response?.usage.outputTokens,
    });
    expect(client.limiters.get(modelId.split(':')[0] ?? '', modelId.split(':')[1] ?? '').inFlight).toBe(0);
  });

  it('a consumer that breaks early still records estimated usage, and frees its permit', async () => {
    server.options.streamDelayMs = 5;
    server.options.respond = () => ({ text: 'one two three four five six seven eight nine ten' });
    const { client, events } = clientFor();
    const seen: string[] = [];
    for await (const event of client.stream({ model: modelId, prompt: 'count' })) {
      if (event.type === 'text-delta') seen.push(event.text);
      if (seen.length === 2) break;
    }
    const calls = events.filter((e) => e.type === 'call');
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ estimated: true, requestId: undefined });
    expect(calls[0]?.usage.outputTokens).toBe(Math.ceil(seen.join('').length / 4));
    expect(calls[0]?.usage.inputTokens).toBeGreaterThan(0);
    expect(client.usage.total.calls).toBe(1);
    const [providerName = '', model = ''] = modelId.split(':');
    expect(client.limiters.get(providerName, model).inFlight).toBe(0);
    // Breaking out closed the HTTP stream before the server had sent it all.
    await server.waitForAborted(1);
    expect(server.requests).toBe(1);
  });

  it('a failure before the first event is retried', async () => {
    server.failNth(1, 500);
    const { client, events } = clientFor();
    const streamed = await collect(client.stream({ model: modelId, prompt: 'again' }));
    expect(streamed.at(-1)?.type).toBe('finish');
    expect(
      streamed
        .filter((e) => e.type === 'text-delta')
        .map((e) => e.text)
        .join(''),
    ).toBe('echo: again');
    expect(server.byStatus).toEqual({ '500': 1, '200': 1 });
    // (The fake's error response says 0 requests remaining, so the limiter may also hold briefly.)
    expect(events.filter((e) => e.type !== 'rate-limit-wait').map((e) => e.type)).toEqual(['retry', 'call']);
    expect(events[0]).toMatchObject({ kind: 'transport', attempt: 1 });
  });

  it('a failure after the first event is not retried; the partial usage is recorded as estimated', async () => {
    server.failNth(1, 'drop-mid-stream');
    server.options.streamDelayMs = 5; // so the first deltas reach the client before the drop
    server.options.respond = () => ({ text: 'one two three four five six seven eight nine ten' });
    const { client, events } = clientFor();
    const seen: string[] = [];
    const failure = await (async () => {
      for await (const event of client.stream({ model: modelId, prompt: 'count' })) {
        if (event.type === 'text-delta') seen.push(event.text);
      }
    })().catch((e: unknown) => e);
    expect(failure).toMatchObject({ name: 'ConnectionError' });
    expect(seen.length).toBeGreaterThan(0);
    expect(server.requests).toBe(1);
    expect(events.filter((e) => e.type === 'retry')).toEqual([]);
    const calls = events.filter((e) => e.type === 'call');
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ estimated: true });
    expect(calls[0]?.usage.outputTokens).toBe(Math.ceil(seen.join('').length / 4));
    const [providerName = '', model = ''] = modelId.split(':');
    expect(client.limiters.get(providerName, model).inFlight).toBe(0);
  });

  it('a non-retryable failure before the first event is thrown at once', async () => {
    server.failNth(1, 400);
    const { client } = clientFor();
    await expect(collect(client.stream({ model: modelId, prompt: 'bad' }))).rejects.toMatchObject({
      status: 400,
    });
    expect(server.requests).toBe(1);
  });
});

describe('ModelClient keeps API keys secret', () => {
  function expectNoSecret(value: unknown, secret: string): void {
    const texts = [
      value instanceof Error ? value.message : '',
      JSON.stringify(value),
      inspect(value, { depth: 10, showHidden: true }),
    ];
    for (const text of texts) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain('S3CRET');
      expect(text).not.toContain('wxyz');
    }
  }

  it.each(models)('a 401 from $provider leaks the key nowhere', async ({ modelId }) => {
    server.options.apiKey = fakeKey('the', 'right', 'key', '000000000000');
    const events: CallEvent[] = [];
    const client = new ModelClient({
      registry: registry(),
      retry: { baseDelayMs: 1 },
      onEvent: (e) => events.push(e),
    });
    // Standalone: thrown as is (401 is never retried).
    const error = await client.call({ model: modelId, prompt: 'hi' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(server.requests).toBe(1);
    const secret = modelId.startsWith('openai') ? OPENAI_KEY : ANTHROPIC_KEY;
    expectNoSecret(error, secret);

    // In a Composition: the NodeError, its cause chain, the trace.
    const composition = new Composition([[new DAGNote('A'), []]], {
      maxTries: client.maxTries,
      configureNodeRunner: () => client.runner({ model: modelId, prompt: 'hi' }),
    });
    expect(await composition.start()).toBe('error');
    expect(composition.error).toBeInstanceOf(NodeError);
    expect((composition.error as NodeError).cause).toBeInstanceOf(AuthenticationError);
    expectNoSecret(composition.error, secret);
    expectNoSecret(composition.trace(), secret);
    expect(composition.trace()[0]?.error).toMatchObject({ status: 401, code: 'authentication_error' });
    expectNoSecret(events, secret);
  });

  it('a server message that echoes the whole key is scrubbed too', async () => {
    server.failNth(1, { status: 401, message: `Incorrect API key provided: ${OPENAI_KEY}.` });
    server.failNth(2, { status: 500, message: `upstream said Authorization: Bearer ${OPENAI_KEY}` });
    server.failNth(3, { status: 500, message: `upstream said Authorization: Bearer ${OPENAI_KEY}` });
    const { client, events } = clientFor({ retry: { maxRetries: 1, baseDelayMs: 1 } });
    const unauthorised = await client
      .call({ model: 'openai:gpt-4.1-mini', prompt: 'hi' })
      .catch((e: unknown) => e);
    expect(unauthorised).toBeInstanceOf(AuthenticationError);
    expectNoSecret(unauthorised, OPENAI_KEY);
    const exhausted = await client
      .call({ model: 'openai:gpt-4.1-mini', prompt: 'hi' })
      .catch((e: unknown) => e);
    expect(exhausted).toMatchObject({ name: 'RetriesExhaustedError', attempts: 2 });
    expectNoSecret(exhausted, OPENAI_KEY);
    expectNoSecret(events, OPENAI_KEY);

    // And in a Composition's trace of retried tries.
    server.failNth(1, { status: 500, message: `upstream said x-api-key: ${OPENAI_KEY}` });
    server.failNth(2, { status: 401, message: `Incorrect API key provided: ${OPENAI_KEY}.` });
    const composition = new Composition([[new DAGNote('A'), []]], {
      maxTries: client.maxTries,
      configureNodeRunner: () => client.runner({ model: 'openai:gpt-4.1-mini', prompt: 'hi' }),
    });
    expect(await composition.start()).toBe('error');
    expect(composition.trace().map((r) => r.error?.status)).toEqual([500, 401]);
    expectNoSecret(composition.trace(), OPENAI_KEY);
    expectNoSecret(composition.error, OPENAI_KEY);
    expect(events.some((e) => e.type === 'retry' && e.reason.includes('[REDACTED]'))).toBe(true);
  });
});
