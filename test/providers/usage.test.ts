import { describe, expect, it } from 'vitest';
import { InvalidOptionError, SymphonizerError } from '../../src/core/errors.ts';
import {
  Budget,
  BudgetExceededError,
  PriceTable,
  UsageMeter,
  costOf,
  defaultPrices,
} from '../../src/providers/usage.ts';

describe('PriceTable', () => {
  it('prices a call in USD per million tokens', () => {
    const table = new PriceTable({ 'x:m': { inputPerMillion: 2, outputPerMillion: 8 } });
    expect(table.costOf('x:m', { inputTokens: 1_000_000, outputTokens: 500_000 })).toEqual({
      costUsd: 6,
      priced: true,
    });
  });

  it('gives an unknown model an undefined cost and priced: false, never 0', () => {
    const cost = costOf('openai:no-such-model-xyz', { inputTokens: 10, outputTokens: 10 });
    expect(cost.costUsd).toBeUndefined();
    expect(cost.priced).toBe(false);
  });

  it('prices the simulated provider at zero', () => {
    expect(costOf('sim:echo', { inputTokens: 5000, outputTokens: 5000 })).toEqual({
      costUsd: 0,
      priced: true,
    });
  });

  it('has default prices for current OpenAI and Anthropic models, dated snapshots included', () => {
    expect(PriceTable.default.priceOf('openai:gpt-4.1-mini')).toEqual(defaultPrices['openai:gpt-4.1-mini*']);
    expect(PriceTable.default.priceOf('anthropic:claude-sonnet-4-5-20250929')).toMatchObject({
      inputPerMillion: 3,
      outputPerMillion: 15,
    });
  });

  it('prefers an exact id, then the longest matching prefix pattern', () => {
    const table = new PriceTable({
      'p:a*': { inputPerMillion: 1, outputPerMillion: 1 },
      'p:ab*': { inputPerMillion: 2, outputPerMillion: 2 },
      'p:abc': { inputPerMillion: 3, outputPerMillion: 3 },
    });
    expect(table.priceOf('p:abc')?.inputPerMillion).toBe(3);
    expect(table.priceOf('p:abcd')?.inputPerMillion).toBe(2);
    expect(table.priceOf('p:ax')?.inputPerMillion).toBe(1);
    expect(table.priceOf('q:abc')).toBeUndefined();
  });

  it('withPrices returns an extended copy and leaves the original unchanged', () => {
    const base = new PriceTable({ 'x:a': { inputPerMillion: 1, outputPerMillion: 1 } });
    const extended = base.withPrices({ 'x:b': { inputPerMillion: 2, outputPerMillion: 4 } });
    expect(extended.priceOf('x:a')).toBeDefined();
    expect(extended.priceOf('x:b')).toEqual({ inputPerMillion: 2, outputPerMillion: 4 });
    expect(base.priceOf('x:b')).toBeUndefined();
  });

  it('register adds an entry in place', () => {
    const table = new PriceTable().register('x:c', { inputPerMillion: 1, outputPerMillion: 2 });
    expect(table.costOf('x:c', { inputTokens: 1e6, outputTokens: 1e6 }).costUsd).toBe(3);
  });

  it('refuses a negative or non-finite price with InvalidOptionError naming the entry', () => {
    expect(() => new PriceTable({ 'x:m': { inputPerMillion: -1, outputPerMillion: 0 } })).toThrow(
      InvalidOptionError,
    );
    expect(() => new PriceTable().register('x:m', { inputPerMillion: 0, outputPerMillion: NaN })).toThrow(
      /prices\["x:m"\]\.outputPerMillion/,
    );
  });
});

describe('UsageMeter', () => {
  const prices = new PriceTable({ 'x:m': { inputPerMillion: 1, outputPerMillion: 2 } });

  it('aggregates per node, composition, model and in total', () => {
    const meter = new UsageMeter({ prices });
    meter.record('x:m', { inputTokens: 100, outputTokens: 50 }, { nodeKey: 'a', compositionId: 'c1' });
    meter.record('x:m', { inputTokens: 10, outputTokens: 5 }, { nodeKey: 'b', compositionId: 'c1' });
    meter.record('x:m', { inputTokens: 1, outputTokens: 1 }, { nodeKey: 'a', compositionId: 'c2' });

    expect(meter.total).toMatchObject({ inputTokens: 111, outputTokens: 56, totalTokens: 167, calls: 3 });
    expect(meter.total.costUsd).toBeCloseTo((111 + 56 * 2) / 1e6, 12);
    expect(meter.forNode('a')).toMatchObject({ inputTokens: 101, outputTokens: 51, calls: 2 });
    expect(meter.forComposition('c1')).toMatchObject({ inputTokens: 110, outputTokens: 55, calls: 2 });
    expect(meter.forNode('zzz')).toBeUndefined();
  });

  it('sums reasoning tokens per node and in total, and refuses more of them than output tokens', () => {
    const meter = new UsageMeter({ prices });
    meter.record('x:m', { inputTokens: 10, outputTokens: 50, reasoningTokens: 30 }, { nodeKey: 'a' });
    meter.record('x:m', { inputTokens: 10, outputTokens: 20 }, { nodeKey: 'a' });
    meter.record('x:m', { inputTokens: 10, outputTokens: 8, reasoningTokens: 8 }, { nodeKey: 'b' });
    expect(meter.total).toMatchObject({ outputTokens: 78, reasoningTokens: 38, calls: 3 });
    expect(meter.forNode('a')).toMatchObject({ reasoningTokens: 30 });
    // Reasoning tokens are output tokens: priced at the output rate, never on top of it.
    expect(meter.total.costUsd).toBeCloseTo((30 + 78 * 2) / 1e6, 12);
    expect(() => meter.record('x:m', { inputTokens: 1, outputTokens: 2, reasoningTokens: 3 })).toThrow(
      InvalidOptionError,
    );
    expect(meter.total.calls).toBe(3);
  });

  it('counts unpriced calls apart and lists their models, keeping costUsd a lower bound', () => {
    const meter = new UsageMeter({ prices });
    const cost = meter.record('y:unknown', { inputTokens: 10, outputTokens: 10 });
    meter.record('x:m', { inputTokens: 1e6, outputTokens: 0 });
    expect(cost).toEqual({ costUsd: undefined, priced: false });
    expect(meter.total).toMatchObject({ calls: 2, unpricedCalls: 1, costUsd: 1 });
    expect(meter.snapshot().unpricedModels).toEqual(['y:unknown']);
  });

  it('produces a JSON-serialisable snapshot that does not change with later records', () => {
    const meter = new UsageMeter({ prices });
    meter.record('x:m', { inputTokens: 3, outputTokens: 4 }, { nodeKey: 'n' });
    const snapshot = meter.snapshot();
    meter.record('x:m', { inputTokens: 3, outputTokens: 4 }, { nodeKey: 'n' });
    const roundTripped = JSON.parse(JSON.stringify(snapshot)) as unknown;
    expect(roundTripped).toEqual(snapshot);
    expect(snapshot.byNode['n']?.calls).toBe(1);
    expect(JSON.parse(JSON.stringify(meter))).toMatchObject({
      total: { calls: 2 },
      byModel: { 'x:m': { calls: 2 } },
    });
  });

  it('refuses negative or fractional token counts', () => {
    const meter = new UsageMeter({ prices });
    expect(() => meter.record('x:m', { inputTokens: -1, outputTokens: 0 })).toThrow(/usage\.inputTokens/);
    expect(() => meter.record('x:m', { inputTokens: 0, outputTokens: 1.5 })).toThrow(InvalidOptionError);
  });
});

describe('Budget', () => {
  it('refuses before sending when the estimate would exceed maxTokens', () => {
    const budget = new Budget({ maxTokens: 1000 });
    budget.record({ inputTokens: 600, outputTokens: 200 });
    expect(() => {
      budget.check({ tokens: 200 });
    }).not.toThrow();
    let caught: unknown;
    try {
      budget.check({ tokens: 300 });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(BudgetExceededError);
    const error = caught as BudgetExceededError;
    expect(SymphonizerError.isInstance(error)).toBe(true);
    expect(error.code).toBe('budget_exceeded');
    expect({ kind: error.kind, limit: error.limit, spent: error.spent, estimate: error.estimate }).toEqual({
      kind: 'tokens',
      limit: 1000,
      spent: 800,
      estimate: 300,
    });
    expect(error.message).toContain('800 tokens of the 1000 tokens limit spent');
    expect(error.message).toContain('raise `maxTokens` to at least 1100');
  });

  it('refuses when the estimated cost would exceed maxUsd', () => {
    const budget = new Budget({ maxUsd: 1 });
    budget.record({ inputTokens: 1, outputTokens: 1, costUsd: 0.9 });
    expect(budget.spent).toEqual({ usd: 0.9, tokens: 2 });
    expect(() => {
      budget.check({ costUsd: 0.2 });
    }).toThrow(/raise `maxUsd` to at least 1\.1000/);
    expect(() => {
      budget.check({ costUsd: 0.1 });
    }).not.toThrow();
  });

  it('refuses every call once a real cost has overshot the limit', () => {
    const budget = new Budget({ maxUsd: 1 });
    budget.record({ inputTokens: 0, outputTokens: 0, costUsd: 1.5 });
    expect(() => {
      budget.check();
    }).toThrow(BudgetExceededError);
    expect(budget.remaining.usd).toBe(0);
  });

  it('is unlimited when no limit is set', () => {
    const budget = new Budget();
    budget.record({ inputTokens: 1e9, outputTokens: 1e9, costUsd: 1e6 });
    expect(() => {
      budget.check({ tokens: 1e9, costUsd: 1e9 });
    }).not.toThrow();
    expect(budget.remaining).toEqual({ usd: Infinity, tokens: Infinity });
  });

  it('rejects a limit that is not a number > 0', () => {
    expect(() => new Budget({ maxUsd: 0 })).toThrow(InvalidOptionError);
    expect(() => new Budget({ maxTokens: NaN })).toThrow(/`maxTokens`/);
  });
});
