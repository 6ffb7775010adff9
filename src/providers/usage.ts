/**
 * Token and cost accounting: a price table, a meter that aggregates calls per node, composition and model,
 * and a budget that refuses a call before it is sent when it would overspend.
 */
import { InvalidOptionError, SymphonizerError } from '../core/errors.ts';
import type { Usage } from './types.ts';
import type { ProviderErrorCode } from './errors.ts';

/** Price of one model in US dollars per million tokens. */
export interface ModelPrice {
  /** USD per million input (prompt) tokens. */
  readonly inputPerMillion: number;
  /** USD per million output (completion) tokens. */
  readonly outputPerMillion: number;
}

/** The result of pricing one call. */
export interface CallCost {
  /** Cost in USD, or `undefined` when the model has no price (never a silent `0`). */
  readonly costUsd: number | undefined;
  /** False when the model id matched no entry of the price table. */
  readonly priced: boolean;
}

/**
 * List prices (USD per million tokens, standard tier, no caching or batch discount) of current OpenAI and
 * Anthropic models as published by the vendors when this table was written, plus the offline `sim` provider
 * at zero. Prices change: check the vendors' pricing pages and override with {@link PriceTable.withPrices}.
 *
 * Keys are `provider:model`. A key ending in `*` matches every id starting with the rest, so dated snapshots
 * (`anthropic:claude-sonnet-4-5-20250929`) find their family; the longest matching prefix wins, and an exact
 * key beats any pattern.
 */
export const defaultPrices: Readonly<Record<string, ModelPrice>> = Object.freeze({
  'openai:gpt-5*': { inputPerMillion: 1.25, outputPerMillion: 10 },
  'openai:gpt-5-mini*': { inputPerMillion: 0.25, outputPerMillion: 2 },
  'openai:gpt-5-nano*': { inputPerMillion: 0.05, outputPerMillion: 0.4 },
  'openai:gpt-4.1*': { inputPerMillion: 2, outputPerMillion: 8 },
  'openai:gpt-4.1-mini*': { inputPerMillion: 0.4, outputPerMillion: 1.6 },
  'openai:gpt-4.1-nano*': { inputPerMillion: 0.1, outputPerMillion: 0.4 },
  'openai:gpt-4o*': { inputPerMillion: 2.5, outputPerMillion: 10 },
  'openai:gpt-4o-mini*': { inputPerMillion: 0.15, outputPerMillion: 0.6 },
  'openai:o3*': { inputPerMillion: 2, outputPerMillion: 8 },
  'openai:o4-mini*': { inputPerMillion: 1.1, outputPerMillion: 4.4 },
  'anthropic:claude-opus-4*': { inputPerMillion: 15, outputPerMillion: 75 },
  'anthropic:claude-sonnet-4*': { inputPerMillion: 3, outputPerMillion: 15 },
  'anthropic:claude-3-7-sonnet*': { inputPerMillion: 3, outputPerMillion: 15 },
  'anthropic:claude-haiku-4-5*': { inputPerMillion: 1, outputPerMillion: 5 },
  'anthropic:claude-3-5-haiku*': { inputPerMillion: 0.8, outputPerMillion: 4 },
  'sim:*': { inputPerMillion: 0, outputPerMillion: 0 },
});

/** How many ids a {@link PriceTable} remembers the pattern lookup of. */
const MATCHED_KEPT = 1024;

/**
 * Model prices, keyed by `provider:model` id (see {@link defaultPrices} for the `*` suffix rule).
 *
 * @example
 * ```ts
 * const prices = PriceTable.default.withPrices({ 'openai:my-finetune': { inputPerMillion: 3, outputPerMillion: 12 } });
 * prices.costOf('openai:my-finetune', { inputTokens: 1000, outputTokens: 500 }); // { costUsd: 0.009, priced: true }
 * ```
 */
export class PriceTable {
  /** The built-in table of {@link defaultPrices}. */
  static readonly default: PriceTable = new PriceTable(defaultPrices);

  // Exact ids and `prefix*` patterns are kept apart so lookup is exact-first, then longest prefix.
  readonly #exact = new Map<string, ModelPrice>();
  readonly #patterns = new Map<string, ModelPrice>();
  /** What `priceOf` found by pattern (or not at all) for ids without an exact entry; cleared by `register`. */
  readonly #matched = new Map<string, { readonly price: ModelPrice | undefined }>();

  /**
   * @param prices - entries to start with; none by default (use {@link PriceTable.default} for the built-ins).
   * @throws {@link InvalidOptionError} when a price is negative or not finite.
   */
  constructor(prices: Readonly<Record<string, ModelPrice>> = {}) {
    for (const [id, price] of Object.entries(prices)) this.register(id, price);
  }

  /** A new table with these entries added to (or replacing) this table's; this table is unchanged. */
  withPrices(prices: Readonly<Record<string, ModelPrice>>): PriceTable {
    const table = new PriceTable(this.toJSON());
    for (const [id, price] of Object.entries(prices)) table.register(id, price);
    return table;
  }

  /**
   * Add or replace one entry in place.
   *
   * @throws {@link InvalidOptionError} when the id is empty or a price is negative or not finite.
   */
  register(modelId: string, price: ModelPrice): this {
    if (modelId === '' || modelId === '*') {
      throw new InvalidOptionError(
        'modelId',
        modelId,
        'a non-empty `provider:model` id or `prefix*` pattern',
      );
    }
    for (const field of ['inputPerMillion', 'outputPerMillion'] as const) {
      const value = price[field];
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
        throw new InvalidOptionError(`prices["${modelId}"].${field}`, value, 'a finite number of USD >= 0');
      }
    }
    const frozen = Object.freeze({
      inputPerMillion: price.inputPerMillion,
      outputPerMillion: price.outputPerMillion,
    });
    this.#matched.clear();
    if (modelId.endsWith('*')) this.#patterns.set(modelId.slice(0, -1), frozen);
    else this.#exact.set(modelId, frozen);
    return this;
  }

  /** The price of a model: its exact entry, else the longest matching `prefix*` entry, else `undefined`. */
  priceOf(modelId: string): ModelPrice | undefined {
    const exact = this.#exact.get(modelId);
    if (exact !== undefined) return exact;
    const matched = this.#matched.get(modelId);
    if (matched !== undefined) return matched.price;
    const price = this.#longestPattern(modelId);
    // Bounded: a table priced against unboundedly many ids (generated ones) does not grow without end.
    if (this.#matched.size >= MATCHED_KEPT) this.#matched.clear();
    this.#matched.set(modelId, { price });
    return price;
  }

  #longestPattern(modelId: string): ModelPrice | undefined {
    let best: ModelPrice | undefined;
    let bestLength = -1;
    for (const [prefix, price] of this.#patterns) {
      if (prefix.length > bestLength && modelId.startsWith(prefix)) {
        best = price;
        bestLength = prefix.length;
      }
    }
    return best;
  }

  /** The cost of one call; an unknown model gives `{ costUsd: undefined, priced: false }`, never a silent 0. */
  costOf(modelId: string, usage: Usage): CallCost {
    const price = this.priceOf(modelId);
    if (price === undefined) return { costUsd: undefined, priced: false };
    const costUsd =
      (usage.inputTokens * price.inputPerMillion + usage.outputTokens * price.outputPerMillion) / 1e6;
    return { costUsd, priced: true };
  }

  /** Every entry, patterns spelled with their trailing `*`. */
  toJSON(): Record<string, ModelPrice> {
    const out: Record<string, ModelPrice> = {};
    for (const [id, price] of this.#exact) out[id] = price;
    for (const [prefix, price] of this.#patterns) out[`${prefix}*`] = price;
    return out;
  }
}

/**
 * The cost of one call under a price table.
 *
 * @param prices - @default {@link PriceTable.default}
 */
export function costOf(modelId: string, usage: Usage, prices: PriceTable = PriceTable.default): CallCost {
  return prices.costOf(modelId, usage);
}

/** Aggregated usage of a set of calls. */
export interface UsageTotals {
  readonly inputTokens: number;
  readonly outputTokens: number;
  /** `inputTokens + outputTokens`. */
  readonly totalTokens: number;
  /** Sum of the priced calls' costs; a lower bound when {@link UsageTotals.unpricedCalls} > 0. */
  readonly costUsd: number;
  readonly calls: number;
  /** Calls whose model had no price, so their cost is missing from `costUsd`. */
  readonly unpricedCalls: number;
}

/** Where a call happened, for aggregation. */
export interface UsageLabels {
  /** Key of the chain node (DAGNote key) that made the call. */
  readonly nodeKey?: string | undefined;
  /** `instanceId` of the Composition the call ran in. */
  readonly compositionId?: string | undefined;
}

/** A JSON-serialisable view of a {@link UsageMeter}; the records are keyed by node key, composition id, model id. */
export interface UsageSnapshot {
  readonly total: UsageTotals;
  readonly byNode: Readonly<Record<string, UsageTotals>>;
  readonly byComposition: Readonly<Record<string, UsageTotals>>;
  readonly byModel: Readonly<Record<string, UsageTotals>>;
  /** Model ids that had no price, sorted. */
  readonly unpricedModels: readonly string[];
}

/** Options of {@link UsageMeter}. */
export interface UsageMeterOptions {
  /** Prices to cost calls with. @default PriceTable.default */
  readonly prices?: PriceTable | undefined;
  /**
   * Keep totals per composition. A long-lived client (a chatbot, a 100k-row batch) should turn this off:
   * it keeps one small entry per composition forever (chains report their own per-run usage anyway).
   * @default true
   */
  readonly perComposition?: boolean | undefined;
}

type MutableTotals = { -readonly [K in keyof UsageTotals]: UsageTotals[K] };

function emptyTotals(): MutableTotals {
  return { inputTokens: 0, outputTokens: 0, totalTokens: 0, costUsd: 0, calls: 0, unpricedCalls: 0 };
}

/** The totals of no call at all. */
export function emptyUsage(): UsageTotals {
  return emptyTotals();
}

/** The sum of two usage totals (a new object). */
export function addUsageTotals(a: UsageTotals, b: UsageTotals): UsageTotals {
  return {
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    totalTokens: a.totalTokens + b.totalTokens,
    costUsd: a.costUsd + b.costUsd,
    calls: a.calls + b.calls,
    unpricedCalls: a.unpricedCalls + b.unpricedCalls,
  };
}

/**
 * Records model calls and aggregates them per node, per composition, per model and in total.
 *
 * @example
 * ```ts
 * const meter = new UsageMeter();
 * meter.record('openai:gpt-4.1-mini', response.usage, { nodeKey: 'summarise', compositionId: c.instanceId });
 * JSON.stringify(meter.snapshot());
 * ```
 */
export class UsageMeter {
  readonly #prices: PriceTable;
  readonly #total = emptyTotals();
  readonly #byNode = new Map<string, MutableTotals>();
  readonly #byComposition = new Map<string, MutableTotals>();
  readonly #byModel = new Map<string, MutableTotals>();
  readonly #unpriced = new Set<string>();
  readonly #perComposition: boolean;

  constructor(options: UsageMeterOptions = {}) {
    this.#prices = options.prices ?? PriceTable.default;
    this.#perComposition = options.perComposition ?? true;
  }

  /**
   * Record one call and return its cost.
   *
   * @throws {@link InvalidOptionError} when a token count is negative or not an integer.
   */
  record(modelId: string, usage: Usage, labels: UsageLabels = {}): CallCost {
    const { inputTokens, outputTokens } = usage;
    if (!Number.isInteger(inputTokens) || inputTokens < 0) {
      throw new InvalidOptionError('usage.inputTokens', inputTokens, 'an integer >= 0');
    }
    if (!Number.isInteger(outputTokens) || outputTokens < 0) {
      throw new InvalidOptionError('usage.outputTokens', outputTokens, 'an integer >= 0');
    }
    const cost = this.#prices.costOf(modelId, usage);
    const costUsd = cost.costUsd;
    if (costUsd === undefined) this.#unpriced.add(modelId);
    add(this.#total, inputTokens, outputTokens, costUsd);
    add(bucket(this.#byModel, modelId), inputTokens, outputTokens, costUsd);
    if (labels.nodeKey !== undefined)
      add(bucket(this.#byNode, labels.nodeKey), inputTokens, outputTokens, costUsd);
    if (labels.compositionId !== undefined && this.#perComposition) {
      add(bucket(this.#byComposition, labels.compositionId), inputTokens, outputTokens, costUsd);
    }
    return cost;
  }

  /** Totals over every recorded call (a copy). */
  get total(): UsageTotals {
    return { ...this.#total };
  }

  /** Totals of one node key, or `undefined` if it made no call. */
  forNode(nodeKey: string): UsageTotals | undefined {
    const totals = this.#byNode.get(nodeKey);
    return totals === undefined ? undefined : { ...totals };
  }

  /** Totals of one composition, or `undefined` if it made no call. */
  forComposition(compositionId: string): UsageTotals | undefined {
    const totals = this.#byComposition.get(compositionId);
    return totals === undefined ? undefined : { ...totals };
  }

  /** A JSON-serialisable copy of every aggregate. */
  snapshot(): UsageSnapshot {
    return {
      total: { ...this.#total },
      byNode: toRecord(this.#byNode),
      byComposition: toRecord(this.#byComposition),
      byModel: toRecord(this.#byModel),
      unpricedModels: [...this.#unpriced].sort(),
    };
  }

  /** Same as {@link UsageMeter.snapshot}, so `JSON.stringify(meter)` works. */
  toJSON(): UsageSnapshot {
    return this.snapshot();
  }
}

/** Adds one call to `totals`; an undefined cost counts as an unpriced call. */
function add(
  totals: MutableTotals,
  inputTokens: number,
  outputTokens: number,
  costUsd: number | undefined,
): void {
  totals.inputTokens += inputTokens;
  totals.outputTokens += outputTokens;
  totals.totalTokens += inputTokens + outputTokens;
  totals.calls += 1;
  if (costUsd === undefined) totals.unpricedCalls += 1;
  else totals.costUsd += costUsd;
}

function bucket(map: Map<string, MutableTotals>, key: string): MutableTotals {
  let totals = map.get(key);
  if (totals === undefined) {
    totals = emptyTotals();
    map.set(key, totals);
  }
  return totals;
}

function toRecord(map: ReadonlyMap<string, UsageTotals>): Record<string, UsageTotals> {
  const out: Record<string, UsageTotals> = {};
  for (const [key, totals] of map) out[key] = { ...totals };
  return out;
}

/** Options of {@link Budget}; at least one limit is usually set (none means unlimited). */
export interface BudgetOptions {
  /** Most USD that may be spent; calls of unpriced models count 0 towards it. @default unlimited */
  readonly maxUsd?: number | undefined;
  /** Most tokens (input + output) that may be spent. @default unlimited */
  readonly maxTokens?: number | undefined;
}

/** What a call about to be sent is expected to cost. */
export interface BudgetEstimate {
  /** Expected input + output tokens. @default 0 */
  readonly tokens?: number | undefined;
  /** Expected USD; leave it out for an unpriced model. @default 0 */
  readonly costUsd?: number | undefined;
}

/** Spend so far. */
export interface BudgetSpent {
  readonly usd: number;
  readonly tokens: number;
}

/** Which limit of a {@link Budget} a call would break. */
export type BudgetLimitKind = 'usd' | 'tokens';

/** A call was refused before it was sent because it would exceed a {@link Budget}. */
export class BudgetExceededError extends SymphonizerError<ProviderErrorCode> {
  /** Which limit: `'usd'` (`maxUsd`) or `'tokens'` (`maxTokens`). */
  readonly kind: BudgetLimitKind;
  /** The limit, in the unit of `kind`. */
  readonly limit: number;
  /** Spent so far, in the unit of `kind`. */
  readonly spent: number;
  /** The refused call's estimate, in the unit of `kind`. */
  readonly estimate: number;

  constructor(kind: BudgetLimitKind, limit: number, spent: number, estimate: number) {
    const option = kind === 'usd' ? 'maxUsd' : 'maxTokens';
    const show = kind === 'usd' ? (n: number) => `$${n.toFixed(4)}` : (n: number) => `${n} tokens`;
    super(
      'budget_exceeded',
      `Budget exceeded: ${show(spent)} of the ${show(limit)} limit spent so far, and the next call is estimated ` +
        `at ${show(estimate)}.`,
      {
        hint: `raise \`${option}\` to at least ${kind === 'usd' ? (spent + estimate).toFixed(4) : spent + estimate}`,
      },
    );
    this.kind = kind;
    this.limit = limit;
    this.spent = spent;
    this.estimate = estimate;
  }
}

/**
 * A spending limit: {@link Budget.check} refuses a call *before* it is sent when its estimate would push the
 * spend over a limit; {@link Budget.record} adds what a call really cost. A call's real cost may overshoot its
 * estimate, so the spend can end slightly above a limit; every later call is then refused.
 *
 * @example
 * ```ts
 * const budget = new Budget({ maxUsd: 2 });
 * budget.check({ tokens: estimateTokens(request), costUsd: costOf(id, guess).costUsd });
 * const response = await provider.complete(request);
 * budget.record({ ...response.usage, costUsd: costOf(id, response.usage).costUsd });
 * ```
 */
export class Budget {
  readonly #maxUsd: number;
  readonly #maxTokens: number;
  #usd = 0;
  #tokens = 0;

  /** @throws {@link InvalidOptionError} when a limit is not a number > 0. */
  constructor(options: BudgetOptions = {}) {
    this.#maxUsd = limitOption('maxUsd', options.maxUsd);
    this.#maxTokens = limitOption('maxTokens', options.maxTokens);
  }

  /**
   * Refuse a call whose estimate would take the spend over a limit. Tokens are checked first.
   *
   * @throws {@link BudgetExceededError} naming the limit, the spend so far and the estimate.
   */
  check(estimate: BudgetEstimate = {}): void {
    const tokens = estimate.tokens ?? 0;
    const usd = estimate.costUsd ?? 0;
    if (this.#tokens + tokens > this.#maxTokens) {
      throw new BudgetExceededError('tokens', this.#maxTokens, this.#tokens, tokens);
    }
    if (this.#usd + usd > this.#maxUsd) throw new BudgetExceededError('usd', this.#maxUsd, this.#usd, usd);
  }

  /** Add what a call really used; `costUsd` is left out (or `undefined`) for an unpriced model. */
  record(usage: Usage & { readonly costUsd?: number | undefined }): void {
    this.#tokens += usage.inputTokens + usage.outputTokens;
    this.#usd += usage.costUsd ?? 0;
  }

  /** Spend so far (a copy). */
  get spent(): BudgetSpent {
    return { usd: this.#usd, tokens: this.#tokens };
  }

  /** What is left of each limit (`Infinity` when unlimited, never negative). */
  get remaining(): BudgetSpent {
    return {
      usd: Math.max(0, this.#maxUsd - this.#usd),
      tokens: Math.max(0, this.#maxTokens - this.#tokens),
    };
  }
}

function limitOption(option: string, value: number | undefined): number {
  if (value === undefined) return Infinity;
  if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) {
    throw new InvalidOptionError(option, value, 'a number > 0 (or left out for no limit)');
  }
  return value;
}
