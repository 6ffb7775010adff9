/**
 * ModelClient with the offline simulated provider: text and schema calls (runtime and compile-time types),
 * re-asks on invalid output, usage and cost accounting, the budget, events and argument errors.
 * The real-SDK paths (fake HTTP server) are in model-client.server.test.ts and model-client.retry.test.ts.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import {
  Budget,
  BadRequestError,
  BudgetExceededError,
  Composition,
  DAGNote,
  InvalidOptionError,
  ModelClient,
  OutputValidationError,
  PriceTable,
  ProviderRegistry,
  RateLimiterRegistry,
  UnknownProviderError,
  type CallEvent,
  type CallResult,
  type ModelClientOptions,
  type ModelRequest,
  type ModelResponse,
  type Provider,
  type StreamEvent,
} from '../../src/index.ts';
import { providerErrorFromStatus } from '../../src/providers/errors.ts';
import { deferred, flush, type Deferred } from '../helpers/deferred.ts';

const colour = z.object({ colour: z.string(), shade: z.number().int().min(0).max(10) });

/** A registry whose `sim` provider answers from a script keyed on the prompt. */
function scripted(script: { match: string | RegExp; reply: unknown }[]): ProviderRegistry {
  return new ProviderRegistry({ simulated: { script } });
}

describe('ModelClient.call() with the simulated provider', () => {
  it('returns a text result marked simulated, with usage, cost and attempt 1', async () => {
    const client = new ModelClient();
    const result = await client.call({ model: 'sim:echo', prompt: 'Name a colour' });
    expect(result).toMatchObject({
      output: '[simulated] Name a colour',
      text: '[simulated] Name a colour',
      modelId: 'sim:echo',
      simulated: true,
      attempt: 1,
      costUsd: 0,
    });
    expect(result.requestId).toMatch(/^sim_/);
    expect(result.usage.inputTokens).toBe(Math.ceil('Name a colour'.length / 4));
    expect(result.response.provider).toBe('sim');
    expectTypeOf(result.output).toEqualTypeOf<string>();
    expectTypeOf(result).toEqualTypeOf<CallResult<string>>();
  });

  it('with a zod schema returns the parsed, validated output, typed from the schema', async () => {
    const client = new ModelClient();
    const result = await client.call({ model: 'sim:default', prompt: 'Name a colour', schema: colour });
    expect(colour.safeParse(result.output).success).toBe(true);
    expect(JSON.parse(result.text)).toEqual(result.output);
    expect(result.simulated).toBe(true);
    expectTypeOf(result.output).toEqualTypeOf<{ colour: string; shade: number }>();
    // zod transforms apply: `output` is the schema's output type, not its input type.
    const lengths = z.object({ word: z.string() }).transform((v) => v.word.length);
    const transformed = await new ModelClient({
      registry: scripted([{ match: 'length', reply: { word: 'abcd' } }]),
    }).call({ model: 'sim:default', prompt: 'length please', schema: lengths });
    expect(transformed.output).toBe(4);
    expectTypeOf(transformed.output).toEqualTypeOf<number>();
    // The runner is typed the same way.
    const _runner = new ModelClient().runner({ model: 'sim:default', prompt: 'x', schema: colour });
    expectTypeOf<Awaited<ReturnType<typeof _runner.execute>>>().toEqualTypeOf<
      CallResult<{ colour: string; shade: number }>
    >();
    const _textRunner = new ModelClient().runner({ model: 'sim:default', prompt: 'x' });
    expectTypeOf<Awaited<ReturnType<typeof _textRunner.execute>>>().toEqualTypeOf<CallResult<string>>();
  });

  it('sends the schema to the provider as JSON Schema, named by schemaName', async () => {
    const seen: ModelRequest[] = [];
    const registry = new ProviderRegistry({
      simulated: {
        script: [
          {
            match: 'x',
            reply: (request: ModelRequest) => {
              seen.push(request);
              return { colour: 'red', shade: 1 };
            },
          },
        ],
      },
    });
    await new ModelClient({ registry }).call({
      model: 'sim:default',
      system: 'sys',
      prompt: 'x',
      schema: colour,
      schemaName: 'paint',
      temperature: 0.5,
      maxTokens: 33,
    });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      model: 'default',
      system: 'sys',
      messages: [{ role: 'user', content: 'x' }],
      temperature: 0.5,
      maxTokens: 33,
      output: { name: 'paint', schema: { type: 'object', required: ['colour', 'shade'] } },
    });
    expect(seen[0]?.output?.schema).not.toHaveProperty('$schema');
  });

  it('a schema with a transform is sent as the JSON Schema of its input (what the model writes)', async () => {
    const seen: ModelRequest[] = [];
    const registry = scripted([
      {
        match: 'count',
        reply: (request: ModelRequest) => {
          seen.push(request);
          return { word: 'abcd', at: '2024-01-02' };
        },
      },
    ]);
    const schema = z
      .object({ word: z.string(), at: z.string().transform((s) => s.split('-').map(Number)) })
      .transform((v) => ({ length: v.word.length, year: v.at[0] }));
    const result = await new ModelClient({ registry }).call({
      model: 'sim:default',
      prompt: 'count',
      schema,
    });
    expect(result.output).toEqual({ length: 4, year: 2024 });
    expectTypeOf(result.output).toEqualTypeOf<{ length: number; year: number | undefined }>();
    expect(seen[0]?.output?.schema).toEqual({
      type: 'object',
      properties: { word: { type: 'string' }, at: { type: 'string' } },
      required: ['word', 'at'],
      additionalProperties: false,
    });
  });

  it('a schema with no JSON Schema form is an InvalidOptionError naming `schema`', async () => {
    const client = new ModelClient();
    const error = await client
      .call({ model: 'sim:default', prompt: 'when?', schema: z.object({ at: z.date() }) })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as InvalidOptionError).option).toBe('schema');
    expect((error as Error).message).toMatch(/Date cannot be represented/);
  });

  it('uses `messages` as given when there is no prompt', async () => {
    const client = new ModelClient();
    const result = await client.call({
      model: 'sim:echo',
      messages: [
        { role: 'user', content: 'first' },
        { role: 'assistant', content: 'ok' },
        { role: 'user', content: 'second' },
      ],
    });
    expect(result.text).toBe('[simulated] second');
  });
});

describe('ModelClient errors', () => {
  it('an unknown provider names the known providers', async () => {
    const client = new ModelClient();
    const error = await client.call({ model: 'nope:model', prompt: 'hi' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnknownProviderError);
    expect((error as UnknownProviderError).known).toEqual(['anthropic', 'openai', 'sim']);
    expect((error as Error).message).toMatch(/nope/);
    expect((error as Error).message).toMatch(/anthropic, openai, sim/);
  });

  it('a call without prompt or messages is an InvalidOptionError naming `prompt`', async () => {
    const client = new ModelClient();
    const error = await client.call({ model: 'sim:echo' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as InvalidOptionError).code).toBe('invalid_option');
    expect((error as Error).message).toMatch(/`?prompt`?/);
    expect((error as Error).message).toMatch(/messages/);
    // The stream path refuses it the same way, before anything is sent.
    const streamed = client.stream({ model: 'sim:echo' });
    await expect(streamed.next()).rejects.toBeInstanceOf(InvalidOptionError);
  });

  it('refuses bad options at construction', () => {
    expect(() => new ModelClient({ repairAttempts: -1 })).toThrow(/repairAttempts/);
    expect(() => new ModelClient({ repairAttempts: 1.5 })).toThrow(InvalidOptionError);
    expect(() => new ModelClient({ onEvent: 42 as unknown as () => void })).toThrow(/onEvent/);
    expect(() => new ModelClient({ retry: { maxRetries: -1 } })).toThrow(/maxRetries/);
    expect(() => new ModelClient({ budget: { maxUsd: 0 } })).toThrow(/maxUsd/);
  });

  it('maxTries is 1 + transport retries + re-asks', () => {
    expect(new ModelClient().maxTries).toBe(1 + 4 + 1);
    expect(new ModelClient({ retry: { maxRetries: 2 }, repairAttempts: 3 }).maxTries).toBe(6);
  });

  it('a non-retryable simulated failure (400) is thrown as is after one attempt', async () => {
    const registry = new ProviderRegistry({ simulated: { failureRate: 1, failureStatus: 400 } });
    const events: CallEvent[] = [];
    const client = new ModelClient({ registry, onEvent: (e) => events.push(e) });
    const error = await client.call({ model: 'sim:echo', prompt: 'hi' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'BadRequestError', status: 400 });
    expect(events.filter((e) => e.type === 'retry')).toEqual([]);
  });
});

describe('ModelClient repair (re-ask on invalid output)', () => {
  it('re-asks with the raw reply and the validation feedback, and succeeds', async () => {
    const seen: ModelRequest[] = [];
    const registry = scripted([
      {
        match: 'PAINTER',
        reply: (request: ModelRequest) => {
          seen.push(request);
          return seen.length === 1 ? '{"colour": "red", "shade": 99}' : { colour: 'red', shade: 3 };
        },
      },
    ]);
    const events: CallEvent[] = [];
    const client = new ModelClient({ registry, onEvent: (e) => events.push(e) });
    const result = await client.call({
      model: 'sim:default',
      system: 'PAINTER',
      prompt: 'paint it',
      schema: colour,
    });
    expect(result.output).toEqual({ colour: 'red', shade: 3 });
    expect(result.attempt).toBe(2);
    expect(seen).toHaveLength(2);
    const second = seen[1]?.messages ?? [];
    expect(second).toHaveLength(3);
    expect(second[0]).toEqual({ role: 'user', content: 'paint it' });
    expect(second[1]).toEqual({ role: 'assistant', content: '{"colour": "red", "shade": 99}' });
    expect(second[2]?.role).toBe('user');
    expect(second[2]?.content).toMatch(/did not match the requested JSON schema/);
    expect(second[2]?.content).toMatch(/- shade: /);
    const retries = events.filter((e) => e.type === 'retry');
    expect(retries).toEqual([expect.objectContaining({ kind: 'repair', attempt: 1, delayMs: 0 })]);
    // Both calls were paid for.
    expect(client.usage.total.calls).toBe(2);
  });

  it('feeds back a parse failure too', async () => {
    const seen: ModelRequest[] = [];
    const registry = scripted([
      {
        match: 'PAINTER',
        reply: (request: ModelRequest) => {
          seen.push(request);
          return seen.length === 1 ? 'Sure! Here is your colour: red' : { colour: 'red', shade: 3 };
        },
      },
    ]);
    const result = await new ModelClient({ registry }).call({
      model: 'sim:default',
      system: 'PAINTER',
      prompt: 'paint it',
      schema: colour,
    });
    expect(result.output.colour).toBe('red');
    expect(seen[1]?.messages[1]).toEqual({ role: 'assistant', content: 'Sure! Here is your colour: red' });
    expect(seen[1]?.messages[2]?.content).toMatch(/not valid JSON/);
  });

  it('throws OutputValidationError (rawText, issues with paths, kind) once the repair budget is spent', async () => {
    let calls = 0;
    const registry = scripted([
      {
        match: 'PAINTER',
        reply: () => {
          calls += 1;
          return { colour: 7, shade: 'dark', extra: [1] };
        },
      },
    ]);
    const client = new ModelClient({ registry, repairAttempts: 2 });
    const error = await client
      .call({ model: 'sim:default', system: 'PAINTER', prompt: 'paint it', schema: colour })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutputValidationError);
    const invalid = error as OutputValidationError;
    expect(calls).toBe(3);
    expect(invalid.kind).toBe('schema');
    expect(invalid.code).toBe('output_validation');
    expect(invalid.rawText).toBe('{"colour":7,"shade":"dark","extra":[1]}');
    expect(invalid.issues.map((i) => i.path).sort()).toEqual(['colour', 'shade']);
    expect(invalid.modelId).toBe('sim:default');
    expect(invalid.message).toMatch(/colour: /);
  });

  it('with repairAttempts 0 the first invalid reply fails, kind `parse` for non-JSON', async () => {
    const registry = scripted([{ match: 'PAINTER', reply: 'not json' }]);
    const client = new ModelClient({ registry, repairAttempts: 0 });
    const error = await client
      .call({ model: 'sim:default', system: 'PAINTER', prompt: 'paint it', schema: colour })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutputValidationError);
    expect(error).toMatchObject({ kind: 'parse', rawText: 'not json', issues: [] });
  });

  it('in a Composition each re-ask is its own retryTask child in the trace', async () => {
    let calls = 0;
    const registry = scripted([
      {
        match: 'PAINTER',
        reply: () => (++calls === 1 ? { colour: 'red' } : { colour: 'red', shade: 2 }),
      },
    ]);
    const client = new ModelClient({ registry, repairAttempts: 1 });
    const node = new DAGNote('paint');
    const composition = new Composition([[node, []]], {
      maxTries: client.maxTries,
      configureNodeRunner: () =>
        client.runner({ model: 'sim:default', system: 'PAINTER', prompt: 'paint it', schema: colour }),
    });
    expect(await composition.start()).toBe('completed');
    expect(composition.results.get('paint')).toMatchObject({
      output: { colour: 'red', shade: 2 },
      attempt: 2,
    });
    const trace = composition.trace();
    expect(trace.map((r) => [r.status, r.attempt])).toEqual([
      ['retrying', 1],
      ['completed', 2],
    ]);
    expect(trace[1]?.parentId).toBe(trace[0]?.runnerId);
    expect(trace[0]?.error).toMatchObject({ name: 'TryAgainError' });
    expect(trace[0]?.error?.message).toMatch(/failed validation/);
  });

  it('in a Composition a spent repair budget fails the node with the OutputValidationError', async () => {
    const registry = scripted([{ match: 'PAINTER', reply: { colour: 'red' } }]);
    const client = new ModelClient({ registry, repairAttempts: 1 });
    const composition = new Composition([[new DAGNote('paint'), []]], {
      maxTries: client.maxTries,
      configureNodeRunner: () =>
        client.runner({ model: 'sim:default', system: 'PAINTER', prompt: 'paint it', schema: colour }),
    });
    expect(await composition.start()).toBe('error');
    const cause = (composition.error as Error).cause;
    expect(cause).toBeInstanceOf(OutputValidationError);
    expect(cause).toMatchObject({ nodeKey: 'paint', kind: 'schema', issues: [{ path: 'shade' }] });
    expect(composition.trace().map((r) => r.status)).toEqual(['retrying', 'error']);
  });
});

describe('ModelClient usage and cost', () => {
  const prices = new PriceTable({
    'sim:priced': { inputPerMillion: 1_000_000, outputPerMillion: 2_000_000 },
  });

  it('computes cost per call from the price table, undefined for an unpriced model', async () => {
    const events: CallEvent[] = [];
    const client = new ModelClient({ prices, onEvent: (e) => events.push(e) });
    const priced = await client.call({ model: 'sim:priced', prompt: 'How much is this?' });
    const { inputTokens, outputTokens } = priced.usage;
    expect(inputTokens).toBeGreaterThan(0);
    expect(priced.costUsd).toBeCloseTo(inputTokens * 1 + outputTokens * 2, 10);
    const unpriced = await client.call({ model: 'sim:unpriced', prompt: 'And this?' });
    expect(unpriced.costUsd).toBeUndefined();
    expect(events.filter((e) => e.type === 'call')).toEqual([
      expect.objectContaining({ modelId: 'sim:priced', costUsd: priced.costUsd, estimated: false }),
      expect.objectContaining({ modelId: 'sim:unpriced', costUsd: undefined, simulated: true }),
    ]);
    const total = client.usage.total;
    expect(total.calls).toBe(2);
    expect(total.unpricedCalls).toBe(1);
    expect(total.costUsd).toBeCloseTo(priced.costUsd ?? Number.NaN, 10);
    expect(total.totalTokens).toBe(
      inputTokens + outputTokens + unpriced.usage.inputTokens + unpriced.usage.outputTokens,
    );
    expect(client.usage.snapshot().unpricedModels).toEqual(['sim:unpriced']);
  });

  it('aggregates per node and per composition (labels.compositionId), and in total', async () => {
    const client = new ModelClient({ prices });
    const a = new DAGNote('A');
    const b = new DAGNote('B');
    const graph = new Map([[b, [a]]]);
    const compose = (): Composition =>
      new Composition(graph, {
        configureNodeRunner: (node, composition) =>
          client.runner(
            (context) => ({
              model: 'sim:priced',
              prompt: `${node.name} after ${Object.keys(context.inputs).join(',') || 'nothing'}`,
            }),
            { labels: { compositionId: composition.instanceId } },
          ),
      });
    const first = compose();
    const second = compose();
    expect(await first.start()).toBe('completed');
    expect(await second.start()).toBe('completed');

    const resultOf = (c: Composition, key: string) => c.results.get(key) as CallResult<string>;
    const costOf = (...results: CallResult<string>[]) => results.reduce((s, r) => s + (r.costUsd ?? 0), 0);
    const tokensOf = (...results: CallResult<string>[]) =>
      results.reduce((s, r) => s + r.usage.inputTokens + r.usage.outputTokens, 0);
    expect(resultOf(first, 'B').text).toBeTruthy();
    expect(resultOf(first, 'B').response.model).toBe('priced');

    const nodeA = client.usage.forNode('A');
    expect(nodeA?.calls).toBe(2);
    expect(nodeA?.totalTokens).toBe(tokensOf(resultOf(first, 'A'), resultOf(second, 'A')));
    expect(nodeA?.costUsd).toBeCloseTo(costOf(resultOf(first, 'A'), resultOf(second, 'A')), 10);

    const firstTotals = client.usage.forComposition(first.instanceId);
    expect(firstTotals?.calls).toBe(2);
    expect(firstTotals?.totalTokens).toBe(tokensOf(resultOf(first, 'A'), resultOf(first, 'B')));
    expect(firstTotals?.costUsd).toBeCloseTo(costOf(resultOf(first, 'A'), resultOf(first, 'B')), 10);
    expect(client.usage.forComposition(second.instanceId)?.calls).toBe(2);

    expect(client.usage.total.calls).toBe(4);
    expect(client.usage.total.costUsd).toBeCloseTo(
      costOf(...[first, second].flatMap((c) => [resultOf(c, 'A'), resultOf(c, 'B')])),
      10,
    );
    expect(JSON.parse(JSON.stringify(client.usage))).toMatchObject({
      byNode: { A: { calls: 2 }, B: { calls: 2 } },
      byModel: { 'sim:priced': { calls: 4 } },
    });
  });

  it('withPrices adds a fake model price to the defaults', async () => {
    const client = new ModelClient({
      prices: PriceTable.default.withPrices({ 'sim:fancy': { inputPerMillion: 4, outputPerMillion: 8 } }),
    });
    const result = await client.call({ model: 'sim:fancy', prompt: 'hello' });
    expect(result.costUsd).toBeCloseTo(
      (result.usage.inputTokens * 4 + result.usage.outputTokens * 8) / 1e6,
      15,
    );
    expect(result.costUsd).toBeGreaterThan(0);
  });

  it('a shared meter totals several clients', async () => {
    const first = new ModelClient({ prices });
    const second = new ModelClient({ meter: first.usage });
    await first.call({ model: 'sim:priced', prompt: 'one' });
    await second.call({ model: 'sim:echo', prompt: 'two' });
    expect(first.usage).toBe(second.usage);
    expect(first.usage.total.calls).toBe(2);
  });
});

describe('ModelClient budget', () => {
  it('refuses a call over maxTokens before sending it, reporting the spend so far', async () => {
    let sent = 0;
    const registry = scripted([
      {
        match: 'hi',
        reply: () => {
          sent += 1;
          return 'hello';
        },
      },
    ]);
    const client = new ModelClient({ registry, budget: { maxTokens: 50 } });
    const first = await client.call({ model: 'sim:default', prompt: 'hi', maxTokens: 20 });
    const spent = first.usage.inputTokens + first.usage.outputTokens;
    expect(client.budget?.spent.tokens).toBe(spent);
    client.budget?.record({ inputTokens: 50 - spent - 10, outputTokens: 0 }); // 40 of 50 spent
    const error = await client
      .call({ model: 'sim:default', prompt: 'hi', maxTokens: 20 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BudgetExceededError);
    expect(error).toMatchObject({ kind: 'tokens', limit: 50, spent: 40, estimate: 21 });
    expect(sent).toBe(1);
    expect(client.usage.total.calls).toBe(1);
  });

  it('refuses a call over maxUsd before sending it; a shared Budget instance is used as is', async () => {
    let sent = 0;
    const registry = scripted([
      {
        match: 'hi',
        reply: () => {
          sent += 1;
          return 'hello';
        },
      },
    ]);
    const budget = new Budget({ maxUsd: 0.85 });
    const prices = new PriceTable({ 'sim:dear': { inputPerMillion: 0, outputPerMillion: 40_000 } });
    const client = new ModelClient({ registry, prices, budget });
    expect(client.budget).toBe(budget);
    // Estimate: 20 output tokens at $0.04 = $0.80, under $0.85; the real cost is less, but not $0.05 less.
    const first = await client.call({ model: 'sim:dear', prompt: 'hi', maxTokens: 20 });
    expect(first.costUsd).toBeCloseTo(first.usage.outputTokens * 0.04, 10);
    expect(budget.spent.usd).toBeCloseTo(first.costUsd ?? Number.NaN, 10);
    const error = await client
      .call({ model: 'sim:dear', prompt: 'hi', maxTokens: 20 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BudgetExceededError);
    expect(error).toMatchObject({ kind: 'usd', limit: 0.85 });
    expect((error as BudgetExceededError).spent).toBeCloseTo(first.costUsd ?? Number.NaN, 10);
    expect((error as BudgetExceededError).estimate).toBeCloseTo(0.8, 10);
    expect(sent).toBe(1);
  });

  it('in a Composition a refused call fails the node without retrying', async () => {
    const client = new ModelClient({ budget: { maxTokens: 10 } });
    const composition = new Composition([[new DAGNote('A'), []]], {
      maxTries: client.maxTries,
      configureNodeRunner: () => client.runner({ model: 'sim:echo', prompt: 'hi' }),
    });
    expect(await composition.start()).toBe('error');
    expect((composition.error as Error).cause).toBeInstanceOf(BudgetExceededError);
    expect(composition.trace()).toHaveLength(1);
    expect(client.usage.total.calls).toBe(0);
  });
});

/** A provider whose calls stay in flight until the test releases them; prompt `fail` fails with a 400. */
function gatedProvider(): { provider: Provider; sent: ModelRequest[]; gates: Deferred<void>[] } {
  const sent: ModelRequest[] = [];
  const gates: Deferred<void>[] = [];
  const answer = async (request: ModelRequest): Promise<ModelResponse> => {
    sent.push(request);
    const gate = deferred();
    gates.push(gate);
    await gate.promise;
    if (request.messages[0]?.content === 'fail') {
      throw new BadRequestError({ provider: 'gate', model: request.model });
    }
    return {
      provider: 'gate',
      model: request.model,
      text: 'ok then',
      toolCalls: [],
      finishReason: 'stop',
      usage: { inputTokens: 1, outputTokens: 1 },
    };
  };
  const provider: Provider = {
    name: 'gate',
    complete: answer,
    async *stream(request: ModelRequest): AsyncGenerator<StreamEvent> {
      yield { type: 'text-delta', text: 'ok ' };
      const response = await answer(request);
      yield { type: 'text-delta', text: 'then' };
      yield { type: 'finish', response };
    },
  };
  return { provider, sent, gates };
}

describe('ModelClient budget with calls in flight', () => {
  it('counts calls in flight at their estimate, so concurrent calls cannot overspend it together', async () => {
    const { provider, sent, gates } = gatedProvider();
    const client = new ModelClient({
      registry: new ProviderRegistry().register(provider),
      budget: { maxTokens: 100 },
    });
    const ask = (prompt = 'hi') => client.call({ model: 'gate:m', prompt, maxTokens: 40 }); // estimate 41
    const first = ask();
    const second = ask();
    const third = ask();
    const refused = await third.catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BudgetExceededError);
    // Nothing is spent yet, but 2 x 41 tokens are in flight: they count as spent.
    expect(refused).toMatchObject({ kind: 'tokens', limit: 100, spent: 82, estimate: 41 });
    expect(sent).toHaveLength(2);

    for (const gate of gates) gate.resolve();
    await Promise.all([first, second]);
    expect(client.budget?.spent.tokens).toBe(4);
    // The estimates were released: two more fit again.
    const again = [ask(), ask()];
    await flush();
    expect(sent).toHaveLength(4);
    for (const gate of gates) gate.resolve();
    await Promise.all(again);
  });

  it('releases the estimate of a call that failed', async () => {
    const { provider, sent, gates } = gatedProvider();
    const client = new ModelClient({
      registry: new ProviderRegistry().register(provider),
      budget: { maxTokens: 50 },
    });
    const failing = client.call({ model: 'gate:m', prompt: 'fail', maxTokens: 40 });
    await flush();
    gates[0]?.resolve();
    await expect(failing).rejects.toBeInstanceOf(BadRequestError);
    const ok = client.call({ model: 'gate:m', prompt: 'hi', maxTokens: 40 });
    await flush();
    expect(sent).toHaveLength(2);
    gates[1]?.resolve();
    await expect(ok).resolves.toMatchObject({ text: 'ok then' });
  });

  it('an open stream holds its estimate until it finishes', async () => {
    const { provider, sent, gates } = gatedProvider();
    const client = new ModelClient({
      registry: new ProviderRegistry().register(provider),
      budget: { maxTokens: 50 },
    });
    const stream = client.stream({ model: 'gate:m', prompt: 'hi', maxTokens: 40 });
    expect(await stream.next()).toEqual({ done: false, value: { type: 'text-delta', text: 'ok ' } });
    await expect(client.call({ model: 'gate:m', prompt: 'hi', maxTokens: 40 })).rejects.toBeInstanceOf(
      BudgetExceededError,
    );
    const rest = stream.next();
    await flush();
    gates[0]?.resolve();
    expect(await rest).toEqual({ done: false, value: { type: 'text-delta', text: 'then' } });
    expect((await stream.next()).value).toMatchObject({ type: 'finish' });
    expect((await stream.next()).done).toBe(true);
    const after = client.call({ model: 'gate:m', prompt: 'hi', maxTokens: 40 });
    await flush();
    expect(sent).toHaveLength(2);
    gates[1]?.resolve();
    await expect(after).resolves.toMatchObject({ text: 'ok then' });
  });
});

describe('ModelClient and the rate limiter', () => {
  /** How many of three simultaneous calls to `gate:m` reach the provider before any of them returns. */
  async function sentAtOnce(client: ModelClient, gates: Deferred<void>[], sent: ModelRequest[]) {
    const calls = Promise.all(['a', 'b', 'c'].map((prompt) => client.call({ model: 'gate:m', prompt })));
    await flush();
    const atOnce = sent.length;
    for (let i = 0; i < 3; i++) {
      await flush();
      gates[i]?.resolve();
    }
    await calls;
    return atOnce;
  }

  it.each([
    ['limits by provider', { gate: { maxConcurrency: 1 } }],
    ['limits by provider:model', { 'gate:m': { maxConcurrency: 1 }, gate: { maxConcurrency: 3 } }],
    ['registry options (the older form)', { limits: { gate: { maxConcurrency: 1 } } }],
    ['registry options with defaults only', { defaults: { maxConcurrency: 1 } }],
  ] satisfies [string, ModelClientOptions['limits']][])('takes `limits` as %s', async (_form, limits) => {
    const { provider, sent, gates } = gatedProvider();
    const client = new ModelClient({ registry: new ProviderRegistry().register(provider), limits });
    expect(await sentAtOnce(client, gates, sent)).toBe(1);
    expect(sent).toHaveLength(3);
  });

  it('is unlimited without `limits`, and shares a registry given to two clients', async () => {
    const { provider, sent, gates } = gatedProvider();
    const registry = new ProviderRegistry().register(provider);
    expect(await sentAtOnce(new ModelClient({ registry }), gates, sent)).toBe(3);

    const limiters = new RateLimiterRegistry({ limits: { gate: { maxConcurrency: 1 } } });
    const [one, two] = [
      new ModelClient({ registry, limits: limiters }),
      new ModelClient({ registry, limits: limiters }),
    ];
    expect(one.limiters).toBe(limiters);
    expect(two.limiters).toBe(limiters);
    const first = one.call({ model: 'gate:m', prompt: 'x' });
    const second = two.call({ model: 'gate:m', prompt: 'y' });
    await flush();
    expect(sent).toHaveLength(4); // the other client's call waits for the shared slot
    gates[3]?.resolve();
    await flush();
    await flush();
    expect(sent).toHaveLength(5);
    gates[4]?.resolve();
    await Promise.all([first, second]);
  });

  it('refuses a `limits` that mixes the two forms, or whose entry is not rate limits', () => {
    expect(
      () =>
        new ModelClient({
          limits: { defaults: { maxConcurrency: 1 }, openai: { maxConcurrency: 2 } } as never,
        }),
    ).toThrow(expect.objectContaining({ code: 'invalid_option', option: 'limits' }));
    expect(() => new ModelClient({ limits: { openai: { requestPerMinute: 500 } } as never })).toThrow(
      expect.objectContaining({ code: 'invalid_option', option: 'limits.openai' }),
    );
  });

  it('types `limits`: a map of RateLimits, a registry or registry options', () => {
    expectTypeOf<{ openai: { maxConcurrency: 8; requestsPerMinute: 500 } }>().toExtend<
      NonNullable<ModelClientOptions['limits']>
    >();
    expectTypeOf<RateLimiterRegistry>().toExtend<NonNullable<ModelClientOptions['limits']>>();
    expectTypeOf<{ limits: { openai: { requestsPerMinute: 500 } } }>().toExtend<
      NonNullable<ModelClientOptions['limits']>
    >();
    expectTypeOf<{ openai: { requestsPerMinute: '500' } }>().not.toExtend<
      NonNullable<ModelClientOptions['limits']>
    >();
  });

  it.each([429, 529])(
    'a %i without Retry-After pauses every waiter for the policy backoff',
    async (status) => {
      let calls = 0;
      const provider: Provider = {
        name: 'flaky',
        complete: (request) => {
          calls += 1;
          if (calls === 1) {
            return Promise.reject(
              providerErrorFromStatus(status, { provider: 'flaky', model: request.model }),
            );
          }
          return Promise.resolve({
            provider: 'flaky',
            model: request.model,
            text: 'fine',
            toolCalls: [],
            finishReason: 'stop',
            usage: { inputTokens: 1, outputTokens: 1 },
          });
        },
        stream: () => {
          throw new Error('not used');
        },
      };
      const waits: { reason: string; delayMs: number | undefined; inFlight: number }[] = [];
      const limits: RateLimiterRegistry = new RateLimiterRegistry({
        limits: { flaky: { maxConcurrency: 1 } },
        onWait: (_key, wait) => {
          waits.push({ ...wait, inFlight: limits.get('flaky', 'm').inFlight });
        },
      });
      const client = new ModelClient({
        registry: new ProviderRegistry().register(provider),
        limits,
        retry: { baseDelayMs: 40, random: () => 1 },
      });
      expect(client.limiters).toBe(limits);
      const results = await Promise.all([
        client.call({ model: 'flaky:m', prompt: 'a' }),
        client.call({ model: 'flaky:m', prompt: 'b' }),
      ]);
      expect(results.map((r) => r.text)).toEqual(['fine', 'fine']);
      expect(calls).toBe(3);
      // B first waited for the slot; once A's failure freed it, B was held (nothing in flight) for the backoff.
      expect(waits[0]).toMatchObject({ reason: 'concurrency' });
      const hold = waits.find((w) => w.reason === 'hold');
      expect(hold).toMatchObject({ inFlight: 0 });
      expect(hold?.delayMs).toBeGreaterThan(0);
      expect(hold?.delayMs).toBeLessThanOrEqual(40);
    },
  );
});
