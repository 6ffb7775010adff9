/**
 * Exact cost: cache reads, cache writes and batch calls priced at their own rates (known answers worked out
 * by hand), unknown rates shown as unknown, the default table's cache and batch rates, cache tokens summed
 * per node, composition and model, and cache token accounting from recorded OpenAI and Anthropic responses
 * read through the real SDKs.
 */
import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../src/core/errors.ts';
import {
  PriceTable,
  UsageMeter,
  costOf,
  createAnthropicProvider,
  createOpenAIProvider,
  defaultPrices,
  priceUsage,
  type ModelPrice,
  type UsageTotals,
} from '../../src/index.ts';
import { addUsageTotals, emptyUsage } from '../../src/providers/usage.ts';
import { anthropicUsage } from '../../src/providers/anthropic/anthropic-sdk.ts';
import { openaiUsage } from '../../src/providers/openai/openai-sdk.ts';
import { fakeKey } from '../helpers/fake-keys.ts';

describe('priceUsage: each part at its own rate', () => {
  const sonnet = PriceTable.default.priceOf('anthropic:claude-sonnet-4-5') as ModelPrice;
  // 10,000 input tokens of which 6,000 read from the cache and 2,000 written to it, 500 output tokens.
  const usage = { inputTokens: 10_000, outputTokens: 500, cacheReadTokens: 6_000, cacheWriteTokens: 2_000 };

  it('Anthropic online: uncached at $3, reads at $0.30, writes at $3.75, output at $15 per million', () => {
    // 2,000 × 3 + 6,000 × 0.3 + 2,000 × 3.75 + 500 × 15 = 6,000 + 1,800 + 7,500 + 7,500 = 22,800 µ$.
    expect(priceUsage(sonnet, usage).costUsd).toBeCloseTo(0.0228, 12);
  });

  it('Anthropic batch: every rate halved, caching included', () => {
    // 2,000 × 1.5 + 6,000 × 0.15 + 2,000 × 1.875 + 500 × 7.5 = 3,000 + 900 + 3,750 + 3,750 = 11,400 µ$.
    expect(priceUsage(sonnet, usage, { batch: true }).costUsd).toBeCloseTo(0.0114, 12);
    expect(
      costOf('anthropic:claude-sonnet-4-5', usage, PriceTable.default, { batch: true }).costUsd,
    ).toBeCloseTo(0.0114, 12);
  });

  it('OpenAI: cached_tokens at the cached-input rate, the rest of the prompt at the input rate', () => {
    // gpt-5-mini: 2,000 × 0.25 + 8,000 × 0.025 + 1,000 × 2 = 500 + 200 + 2,000 = 2,700 µ$.
    const cost = costOf('openai:gpt-5-mini', {
      inputTokens: 10_000,
      outputTokens: 1_000,
      cacheReadTokens: 8_000,
    });
    expect(cost).toEqual({ costUsd: expect.closeTo(0.0027, 12) as unknown, priced: true });
    // Batch: 2,000 × 0.125 + 8,000 × 0.0125 + 1,000 × 1 = 250 + 100 + 1,000 = 1,350 µ$.
    expect(
      costOf(
        'openai:gpt-5-mini',
        { inputTokens: 10_000, outputTokens: 1_000, cacheReadTokens: 8_000 },
        undefined,
        {
          batch: true,
        },
      ).costUsd,
    ).toBeCloseTo(0.00135, 12);
  });

  it('Anthropic 1-hour cache writes at their own rate (2 × input), the other writes at the 5-minute one', () => {
    const withHour = {
      inputTokens: 10_000,
      outputTokens: 100,
      cacheReadTokens: 5_000,
      cacheWriteTokens: 3_000,
    };
    // 2,000 × 3 + 5,000 × 0.3 + 2,000 × 3.75 + 1,000 × 6 + 100 × 15 = 6,000 + 1,500 + 7,500 + 6,000 + 1,500 µ$.
    expect(priceUsage(sonnet, { ...withHour, cacheWrite1hTokens: 1_000 }).costUsd).toBeCloseTo(0.0225, 12);
    // Batch: the same at half: 11,250 µ$.
    expect(
      priceUsage(sonnet, { ...withHour, cacheWrite1hTokens: 1_000 }, { batch: true }).costUsd,
    ).toBeCloseTo(0.01125, 12);
  });

  it('no cache tokens: the plain input and output rates, as before', () => {
    expect(costOf('openai:gpt-4.1', { inputTokens: 1_000_000, outputTokens: 1_000_000 }).costUsd).toBe(10);
  });

  it('a cache-heavy call costs less than the same call priced at the full input rate', () => {
    const full = priceUsage(sonnet, { inputTokens: 10_000, outputTokens: 500 }).costUsd ?? 0;
    const cached = priceUsage(sonnet, {
      inputTokens: 10_000,
      outputTokens: 500,
      cacheReadTokens: 9_000,
    }).costUsd;
    // 1,000 × 3 + 9,000 × 0.3 + 500 × 15 = 13,200 µ$ against 37,500 µ$.
    expect(cached).toBeCloseTo(0.0132, 12);
    expect(full).toBeCloseTo(0.0375, 12);
  });
});

describe('unknown rates are shown as unknown, never guessed', () => {
  it('OpenAI publishes no batch cached-input rate for gpt-4.1: a batch call with cache reads has no cost', () => {
    const cost = costOf(
      'openai:gpt-4.1',
      { inputTokens: 5_000, outputTokens: 10, cacheReadTokens: 4_000 },
      undefined,
      {
        batch: true,
      },
    );
    expect(cost).toEqual({ costUsd: undefined, priced: true, unknownRates: ['batchCachedInputPerMillion'] });
  });

  it('the same batch call without cache reads needs no such rate and is priced', () => {
    // 5,000 × 1 + 10 × 4 = 5,040 µ$.
    const cost = costOf('openai:gpt-4.1', { inputTokens: 5_000, outputTokens: 10 }, undefined, {
      batch: true,
    });
    expect(cost.costUsd).toBeCloseTo(0.00504, 12);
    expect(cost.unknownRates).toBeUndefined();
  });

  it('an entry with only input and output rates prices no cache write and no batch call', () => {
    const table = new PriceTable({ 'x:m': { inputPerMillion: 2, outputPerMillion: 8 } });
    expect(table.costOf('x:m', { inputTokens: 10, outputTokens: 1, cacheWriteTokens: 5 })).toEqual({
      costUsd: undefined,
      priced: true,
      unknownRates: ['cacheWritePerMillion'],
    });
    const fiveMinutesOnly = new PriceTable({
      'x:m': { inputPerMillion: 2, outputPerMillion: 8, cacheWritePerMillion: 2.5 },
    });
    expect(
      fiveMinutesOnly.costOf('x:m', {
        inputTokens: 10,
        outputTokens: 1,
        cacheWriteTokens: 5,
        cacheWrite1hTokens: 2,
      }),
    ).toEqual({ costUsd: undefined, priced: true, unknownRates: ['cacheWrite1hPerMillion'] });
    expect(table.costOf('x:m', { inputTokens: 10, outputTokens: 1 }, { batch: true }).unknownRates).toEqual([
      'batchInputPerMillion',
      'batchOutputPerMillion',
    ]);
  });

  it('a meter counts such a call as unpriced, so totals say their cost is a lower bound', () => {
    const meter = new UsageMeter({
      prices: new PriceTable({ 'x:m': { inputPerMillion: 2, outputPerMillion: 8 } }),
    });
    meter.record('x:m', { inputTokens: 10, outputTokens: 1, cacheReadTokens: 4 }, { nodeKey: 'n' });
    expect(meter.total).toMatchObject({ calls: 1, unpricedCalls: 1, costUsd: 0, cacheReadTokens: 4 });
    expect(meter.snapshot().unpricedModels).toEqual(['x:m']);
  });
});

describe('the default price table', () => {
  const entries = Object.entries(defaultPrices);

  it.each(entries)('%s has cached-input and batch rates, batch at half the online rates', (_id, price) => {
    expect(price.cachedInputPerMillion).toBeTypeOf('number');
    expect(price.cachedInputPerMillion ?? Infinity).toBeLessThanOrEqual(price.inputPerMillion);
    expect(price.batchInputPerMillion).toBeCloseTo(price.inputPerMillion / 2, 12);
    expect(price.batchOutputPerMillion).toBeCloseTo(price.outputPerMillion / 2, 12);
    if (price.batchCachedInputPerMillion !== undefined) {
      expect(price.batchCachedInputPerMillion).toBeCloseTo((price.cachedInputPerMillion ?? NaN) / 2, 12);
    }
  });

  it.each(entries.filter(([id]) => id.startsWith('anthropic:')))(
    '%s has cache-write rates: 1.25 × input online, half that in a batch',
    (_id, price) => {
      expect(price.cacheWritePerMillion).toBeCloseTo(price.inputPerMillion * 1.25, 12);
      expect(price.cacheWrite1hPerMillion).toBeCloseTo(price.inputPerMillion * 2, 12);
      expect(price.batchCacheWrite1hPerMillion).toBeCloseTo(price.inputPerMillion, 12);
      expect(price.batchCacheWritePerMillion).toBeCloseTo(price.inputPerMillion * 0.625, 12);
      expect(price.batchCachedInputPerMillion).toBeCloseTo((price.cachedInputPerMillion ?? NaN) / 2, 12);
    },
  );

  it('OpenAI entries have no cache-write rate (OpenAI neither charges nor reports one)', () => {
    for (const [id, price] of entries.filter(([key]) => key.startsWith('openai:'))) {
      expect(price.cacheWritePerMillion, id).toBeUndefined();
    }
  });

  it('prices Claude Opus 4.5 and later at their own rates, not Opus 4 rates', () => {
    expect(PriceTable.default.priceOf('anthropic:claude-opus-4-1-20250805')?.inputPerMillion).toBe(15);
    expect(PriceTable.default.priceOf('anthropic:claude-opus-4-5-20251101')?.inputPerMillion).toBe(5);
    expect(PriceTable.default.priceOf('anthropic:claude-opus-4-8')?.outputPerMillion).toBe(25);
    expect(PriceTable.default.priceOf('anthropic:claude-opus-5-5')).toMatchObject({
      inputPerMillion: 4,
      cachedInputPerMillion: 0.2,
      cacheWritePerMillion: 5,
    });
  });

  it('a model it does not list has no price at all', () => {
    expect(costOf('anthropic:claude-sonnet-5-5', { inputTokens: 1, outputTokens: 1 })).toEqual({
      costUsd: undefined,
      priced: false,
    });
  });
});

describe('PriceTable with cache and batch rates', () => {
  it('keeps every rate through register, withPrices and toJSON', () => {
    const price = {
      inputPerMillion: 1,
      outputPerMillion: 2,
      cachedInputPerMillion: 0.1,
      cacheWritePerMillion: 1.25,
      batchInputPerMillion: 0.5,
      batchOutputPerMillion: 1,
      batchCachedInputPerMillion: 0.05,
      batchCacheWritePerMillion: 0.625,
    };
    const table = new PriceTable().withPrices({ 'p:m': price });
    expect(table.priceOf('p:m')).toEqual(price);
    expect(new PriceTable(table.toJSON()).priceOf('p:m')).toEqual(price);
  });

  it('refuses a negative or non-finite optional rate, naming the model and the field', () => {
    const bad = () =>
      new PriceTable({ 'p:m': { inputPerMillion: 1, outputPerMillion: 1, cachedInputPerMillion: -1 } });
    expect(bad).toThrow(InvalidOptionError);
    expect(bad).toThrow(/prices\["p:m"\]\.cachedInputPerMillion/);
    expect(
      () =>
        new PriceTable({
          'p:m': { inputPerMillion: 1, outputPerMillion: 1, batchInputPerMillion: Infinity },
        }),
    ).toThrow(/batchInputPerMillion/);
  });
});

describe('UsageMeter and totals carry the cache tokens', () => {
  const prices = new PriceTable({
    'p:m': {
      inputPerMillion: 10,
      outputPerMillion: 20,
      cachedInputPerMillion: 1,
      cacheWritePerMillion: 12.5,
      batchInputPerMillion: 5,
      batchOutputPerMillion: 10,
      batchCachedInputPerMillion: 0.5,
      batchCacheWritePerMillion: 6.25,
    },
  });

  it('sums reads and writes per node, composition and model, and prices a batch call at batch rates', () => {
    const meter = new UsageMeter({ prices });
    const write = { inputTokens: 1000, outputTokens: 100, cacheWriteTokens: 900 };
    const read = { inputTokens: 1000, outputTokens: 100, cacheReadTokens: 900 };
    // 100 × 10 + 900 × 12.5 + 100 × 20 = 14,250 µ$; 100 × 10 + 900 × 1 + 100 × 20 = 3,900 µ$.
    expect(meter.record('p:m', write, { nodeKey: 'a', compositionId: 'c1' }).costUsd).toBeCloseTo(
      0.01425,
      12,
    );
    expect(meter.record('p:m', read, { nodeKey: 'a', compositionId: 'c1' }).costUsd).toBeCloseTo(0.0039, 12);
    // Batch: 100 × 5 + 900 × 0.5 + 100 × 10 = 1,950 µ$.
    expect(meter.record('p:m', read, { nodeKey: 'b' }, { batch: true }).costUsd).toBeCloseTo(0.00195, 12);
    expect(meter.forNode('a')).toMatchObject({ calls: 2, cacheReadTokens: 900, cacheWriteTokens: 900 });
    expect(meter.forNode('b')).toMatchObject({ calls: 1, cacheReadTokens: 900, cacheWriteTokens: 0 });
    expect(meter.forComposition('c1')).toMatchObject({ inputTokens: 2000, cacheReadTokens: 900 });
    const snapshot = meter.snapshot();
    expect(snapshot.byModel['p:m']).toMatchObject({ calls: 3, cacheReadTokens: 1800, cacheWriteTokens: 900 });
    expect(snapshot.total.costUsd).toBeCloseTo(0.01425 + 0.0039 + 0.00195, 12);
    expect(JSON.parse(JSON.stringify(meter)) as unknown).toEqual(snapshot);
  });

  it('refuses cache counts that are not whole numbers within the input tokens', () => {
    const meter = new UsageMeter({ prices });
    expect(() => meter.record('p:m', { inputTokens: 10, outputTokens: 0, cacheReadTokens: 11 })).toThrow(
      /usage\.cacheReadTokens/,
    );
    expect(() => meter.record('p:m', { inputTokens: 10, outputTokens: 0, cacheWriteTokens: 1.5 })).toThrow(
      /usage\.cacheWriteTokens/,
    );
    expect(() =>
      meter.record('p:m', { inputTokens: 10, outputTokens: 0, cacheWriteTokens: 2, cacheWrite1hTokens: 3 }),
    ).toThrow(/usage\.cacheWrite1hTokens/);
  });

  it('adds totals stored before the cache fields existed as zero cache tokens', () => {
    const old = { inputTokens: 5, outputTokens: 1, totalTokens: 6, costUsd: 0.1, calls: 1, unpricedCalls: 0 };
    const sum: UsageTotals = addUsageTotals(old, {
      ...emptyUsage(),
      inputTokens: 3,
      cacheReadTokens: 2,
      calls: 1,
    });
    expect(sum).toMatchObject({ inputTokens: 8, cacheReadTokens: 2, cacheWriteTokens: 0, calls: 2 });
    expect(emptyUsage()).toMatchObject({ cacheReadTokens: 0, cacheWriteTokens: 0 });
  });
});

/**
 * Recorded responses, in the shape the services send them (the usage blocks as documented in OpenAI's
 * prompt caching guide and Anthropic's Messages API reference).
 */
const OPENAI_RECORDED = {
  id: 'chatcmpl-recorded1',
  object: 'chat.completion',
  created: 1_733_000_000,
  model: 'gpt-4.1-mini-2025-04-14',
  choices: [
    {
      index: 0,
      message: { role: 'assistant', content: 'Paris.', refusal: null, annotations: [] },
      logprobs: null,
      finish_reason: 'stop',
    },
  ],
  usage: {
    prompt_tokens: 2006,
    completion_tokens: 300,
    total_tokens: 2306,
    prompt_tokens_details: { cached_tokens: 1920, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  },
  service_tier: 'default',
  system_fingerprint: 'fp_recorded',
};

const ANTHROPIC_RECORDED = {
  id: 'msg_recorded1',
  type: 'message',
  role: 'assistant',
  model: 'claude-sonnet-4-5-20250929',
  content: [{ type: 'text', text: 'Paris.' }],
  stop_reason: 'end_turn',
  stop_sequence: null,
  usage: {
    input_tokens: 21,
    cache_creation_input_tokens: 188,
    cache_read_input_tokens: 1800,
    cache_creation: { ephemeral_5m_input_tokens: 188, ephemeral_1h_input_tokens: 0 },
    output_tokens: 393,
    service_tier: 'standard',
  },
};

/** A fetch that answers every request with `body` (no network), so the real SDK parses a recorded response. */
function recorded(body: unknown): typeof globalThis.fetch {
  return () =>
    Promise.resolve(
      new Response(JSON.stringify(body), {
        status: 200,
        headers: {
          'content-type': 'application/json',
          'x-request-id': 'req_recorded',
          'request-id': 'req_recorded',
        },
      }),
    );
}

describe('cache token accounting from recorded responses', () => {
  it('OpenAI: prompt_tokens is inputTokens, cached_tokens the cache reads (through the SDK)', async () => {
    const provider = createOpenAIProvider({
      apiKey: fakeKey('test', 'openai', 'S3CRETvalue0123456789wxyz'),
      baseURL: 'http://127.0.0.1:9/v1',
      fetch: recorded(OPENAI_RECORDED),
    });
    const response = await provider.complete({
      model: 'gpt-4.1-mini',
      messages: [{ role: 'user', content: 'Capital?' }],
    });
    expect(response.usage).toEqual({ inputTokens: 2006, outputTokens: 300, cacheReadTokens: 1920 });
    // gpt-4.1-mini: 86 × 0.4 + 1,920 × 0.1 + 300 × 1.6 = 34.4 + 192 + 480 = 706.4 µ$.
    expect(costOf('openai:gpt-4.1-mini', response.usage).costUsd).toBeCloseTo(0.0007064, 12);
  });

  it('Anthropic: inputTokens is input_tokens plus both cache parts (through the SDK)', async () => {
    const provider = createAnthropicProvider({
      apiKey: fakeKey('ant', 'api03', 'test', 'S3CRETvalue0123456789wxyz'),
      baseURL: 'http://127.0.0.1:9',
      fetch: recorded(ANTHROPIC_RECORDED),
    });
    const response = await provider.complete({
      model: 'claude-sonnet-4-5',
      messages: [{ role: 'user', content: 'Capital?' }],
    });
    expect(response.usage).toEqual({
      inputTokens: 21 + 188 + 1800,
      outputTokens: 393,
      cacheReadTokens: 1800,
      cacheWriteTokens: 188,
    });
    // 21 × 3 + 1,800 × 0.3 + 188 × 3.75 + 393 × 15 = 63 + 540 + 705 + 5,895 = 7,203 µ$.
    expect(costOf('anthropic:claude-sonnet-4-5', response.usage).costUsd).toBeCloseTo(0.007203, 12);
  });

  it('the mapping functions read the same usage blocks, and a missing OpenAI usage as zero', () => {
    expect(openaiUsage(OPENAI_RECORDED.usage)).toEqual({
      inputTokens: 2006,
      outputTokens: 300,
      cacheReadTokens: 1920,
    });
    expect(openaiUsage({ prompt_tokens: 12, completion_tokens: 3, prompt_tokens_details: null })).toEqual({
      inputTokens: 12,
      outputTokens: 3,
    });
    expect(openaiUsage(undefined)).toEqual({ inputTokens: 0, outputTokens: 0 });
    expect(
      anthropicUsage({
        input_tokens: 4,
        output_tokens: 2,
        cache_creation_input_tokens: 30,
        cache_creation: { ephemeral_1h_input_tokens: 20 },
      }),
    ).toEqual({ inputTokens: 34, outputTokens: 2, cacheWriteTokens: 30, cacheWrite1hTokens: 20 });
    expect(anthropicUsage({ input_tokens: 7, output_tokens: 2, cache_read_input_tokens: null })).toEqual({
      inputTokens: 7,
      outputTokens: 2,
    });
  });
});
