/**
 * Token and cost accounting: a price table, a meter that aggregates calls per node, composition and model,
 * and a budget that refuses a call before it is sent when it would overspend.
 */
import { InvalidOptionError, SymphonizerError } from '../core/errors.ts';
import type { Usage } from './types.ts';
import type { ProviderErrorCode } from './errors.ts';

/**
 * Price of one model in US dollars per million tokens. Input and output rates are required; every other rate
 * is optional and, when left out, *unknown*: a call that needs it gets an unknown cost (never a guessed one).
 *
 * How a call is priced ({@link priceUsage}): {@link Usage.inputTokens} counts every input token, cached ones
 * included; of those, {@link Usage.cacheReadTokens} are priced at `cachedInputPerMillion`,
 * {@link Usage.cacheWriteTokens} at `cacheWritePerMillion`, the rest at `inputPerMillion`; output tokens at
 * `outputPerMillion`. A batch call (`{ batch: true }`) uses the `batch…` rates instead.
 */
export interface ModelPrice {
  /** USD per million input (prompt) tokens not read from or written to a prompt cache. */
  readonly inputPerMillion: number;
  /** USD per million output (completion) tokens. */
  readonly outputPerMillion: number;
  /**
   * USD per million input tokens read from the provider's prompt cache (OpenAI "cached input", Anthropic
   * "cache hits and refreshes"). @default unknown
   */
  readonly cachedInputPerMillion?: number | undefined;
  /**
   * USD per million input tokens written to the prompt cache (Anthropic "5m cache writes"; OpenAI charges no
   * write and reports none). @default unknown
   */
  readonly cacheWritePerMillion?: number | undefined;
  /**
   * USD per million input tokens written to Anthropic's 1-hour cache ({@link Usage.cacheWrite1hTokens}; this
   * library's own breakpoints use the 5-minute cache). @default unknown
   */
  readonly cacheWrite1hPerMillion?: number | undefined;
  /** USD per million uncached input tokens of a Batch API call. @default unknown */
  readonly batchInputPerMillion?: number | undefined;
  /** USD per million output tokens of a Batch API call. @default unknown */
  readonly batchOutputPerMillion?: number | undefined;
  /** USD per million cache-read input tokens of a Batch API call. @default unknown */
  readonly batchCachedInputPerMillion?: number | undefined;
  /** USD per million cache-write input tokens of a Batch API call. @default unknown */
  readonly batchCacheWritePerMillion?: number | undefined;
  /** USD per million 1-hour cache-write input tokens of a Batch API call. @default unknown */
  readonly batchCacheWrite1hPerMillion?: number | undefined;
}

/** The name of one rate of a {@link ModelPrice}. */
export type PriceRate = keyof ModelPrice;

/** Every rate field of a {@link ModelPrice}, in declaration order. */
const RATE_FIELDS: readonly PriceRate[] = [
  'inputPerMillion',
  'outputPerMillion',
  'cachedInputPerMillion',
  'cacheWritePerMillion',
  'cacheWrite1hPerMillion',
  'batchInputPerMillion',
  'batchOutputPerMillion',
  'batchCachedInputPerMillion',
  'batchCacheWritePerMillion',
  'batchCacheWrite1hPerMillion',
];

/** Options of pricing one call. */
export interface CostOptions {
  /** Price the call at the model's Batch API rates. @default false */
  readonly batch?: boolean | undefined;
}

/** The result of pricing one call. */
export interface CallCost {
  /**
   * Cost in USD, or `undefined` when the model has no price or a rate the call needs is unknown (never a
   * silent `0` nor a guess).
   */
  readonly costUsd: number | undefined;
  /** False when the model id matched no entry of the price table. */
  readonly priced: boolean;
  /** The rates the call needed that the model's entry does not give; absent when none is missing. */
  readonly unknownRates?: readonly PriceRate[] | undefined;
}

/**
 * The cost of `usage` at `price`: cache reads at the cached-input rate, cache writes at the cache-write rate,
 * the other input tokens at the input rate, output at the output rate; with `{ batch: true }` the `batch…`
 * rates. A part of zero tokens needs no rate; a part whose rate is unknown makes the whole cost unknown
 * (`costUsd: undefined`, the rate named in `unknownRates`).
 *
 * @example
 * ```ts
 * priceUsage({ inputPerMillion: 3, outputPerMillion: 15, cachedInputPerMillion: 0.3, cacheWritePerMillion: 3.75 },
 *   { inputTokens: 3000, outputTokens: 100, cacheReadTokens: 2000 });
 * // { costUsd: (1000 * 3 + 2000 * 0.3 + 100 * 15) / 1e6, priced: true }
 * ```
 */
export function priceUsage(price: ModelPrice, usage: Usage, options: CostOptions = {}): CallCost {
  const batch = options.batch === true;
  const read = usage.cacheReadTokens ?? 0;
  const write = usage.cacheWriteTokens ?? 0;
  // Of the writes, those to the 1-hour cache have their own rate.
  const write1h = Math.min(write, usage.cacheWrite1hTokens ?? 0);
  // Providers report cached tokens as part of the input; never price a negative remainder.
  const uncached = Math.max(0, usage.inputTokens - read - write);
  const parts: readonly (readonly [number, PriceRate])[] = batch
    ? [
        [uncached, 'batchInputPerMillion'],
        [usage.outputTokens, 'batchOutputPerMillion'],
        [read, 'batchCachedInputPerMillion'],
        [write - write1h, 'batchCacheWritePerMillion'],
        [write1h, 'batchCacheWrite1hPerMillion'],
      ]
    : [
        [uncached, 'inputPerMillion'],
        [usage.outputTokens, 'outputPerMillion'],
        [read, 'cachedInputPerMillion'],
        [write - write1h, 'cacheWritePerMillion'],
        [write1h, 'cacheWrite1hPerMillion'],
      ];
  let micro = 0;
  const unknownRates: PriceRate[] = [];
  for (const [tokens, rate] of parts) {
    if (tokens === 0) continue;
    const perMillion = price[rate];
    if (perMillion === undefined) unknownRates.push(rate);
    else micro += tokens * perMillion;
  }
  return unknownRates.length > 0
    ? { costUsd: undefined, priced: true, unknownRates }
    : { costUsd: micro / 1e6, priced: true };
}

/**
 * An Anthropic model's rates from its base input and output rates and Anthropic's published multipliers of
 * the input rate: 5-minute cache write 1.25×, 1-hour cache write 2×, cache read 0.1× (`readMultiplier`: 0.05× for the models
 * published so). Message Batches: 50 % of every rate, since Anthropic's caching multipliers stack with the
 * batch discount.
 */
function anthropicPrice(inputPerMillion: number, outputPerMillion: number, readMultiplier = 0.1): ModelPrice {
  // Rounded to 1e-9 so 0.1 × 0.8 reads 0.08, not 0.08000000000000002.
  const r = (n: number): number => Math.round(n * 1e9) / 1e9;
  return {
    inputPerMillion,
    outputPerMillion,
    cachedInputPerMillion: r(inputPerMillion * readMultiplier),
    cacheWritePerMillion: r(inputPerMillion * 1.25),
    cacheWrite1hPerMillion: r(inputPerMillion * 2),
    batchInputPerMillion: r(inputPerMillion * 0.5),
    batchOutputPerMillion: r(outputPerMillion * 0.5),
    batchCachedInputPerMillion: r(inputPerMillion * readMultiplier * 0.5),
    batchCacheWritePerMillion: r(inputPerMillion * 1.25 * 0.5),
    batchCacheWrite1hPerMillion: r(inputPerMillion * 2 * 0.5),
  };
}

/**
 * An OpenAI model's rates: cached input as published; no cache write (OpenAI neither charges nor reports
 * one); Batch API input and output at 50 %; batch cached input only where the Batch price list gives one.
 */
function openaiPrice(
  inputPerMillion: number,
  cachedInputPerMillion: number,
  outputPerMillion: number,
  batchCachedInputPerMillion?: number,
): ModelPrice {
  return {
    inputPerMillion,
    outputPerMillion,
    cachedInputPerMillion,
    batchInputPerMillion: inputPerMillion / 2,
    batchOutputPerMillion: outputPerMillion / 2,
    ...(batchCachedInputPerMillion === undefined ? {} : { batchCachedInputPerMillion }),
  };
}

/**
 * List prices (USD per million tokens, standard tier) of current OpenAI and Anthropic models as published by
 * the vendors when this table was written, with their cached-input, cache-write and Batch API rates, plus the
 * offline `sim` provider at zero. A rate a vendor does not publish is left out (unknown): OpenAI publishes no
 * cache-write rate (it charges none), and no batch cached-input rate for the models before GPT-5. Anthropic
 * rates are the standard ones with 5-minute cache writes (long-context and prompt-length price bands are not
 * modelled); models not listed (e.g. the Sonnet 5, Haiku 5.5, Fable and Mythos families) have no price, so
 * their cost shows as unknown until you add it.
 * Prices change: check the vendors' pricing pages and override with {@link PriceTable.withPrices}.
 *
 * Keys are `provider:model`. A key ending in `*` matches every id starting with the rest, so dated snapshots
 * (`anthropic:claude-sonnet-4-5-20250929`) find their family; the longest matching prefix wins, and an exact
 * key beats any pattern.
 */
export const defaultPrices: Readonly<Record<string, ModelPrice>> = Object.freeze({
  'openai:gpt-5*': openaiPrice(1.25, 0.125, 10, 0.0625),
  'openai:gpt-5-mini*': openaiPrice(0.25, 0.025, 2, 0.0125),
  'openai:gpt-5-nano*': openaiPrice(0.05, 0.005, 0.4, 0.0025),
  'openai:gpt-4.1*': openaiPrice(2, 0.5, 8),
  'openai:gpt-4.1-mini*': openaiPrice(0.4, 0.1, 1.6),
  'openai:gpt-4.1-nano*': openaiPrice(0.1, 0.025, 0.4),
  'openai:gpt-4o*': openaiPrice(2.5, 1.25, 10),
  'openai:gpt-4o-mini*': openaiPrice(0.15, 0.075, 0.6),
  'openai:o3*': openaiPrice(2, 0.5, 8),
  'openai:o4-mini*': openaiPrice(1.1, 0.275, 4.4),
  // Opus 4 and 4.1; from Opus 4.5 on the rates are a third of theirs.
  'anthropic:claude-opus-4*': anthropicPrice(15, 75),
  'anthropic:claude-opus-4-5*': anthropicPrice(5, 25),
  'anthropic:claude-opus-4-6*': anthropicPrice(5, 25),
  'anthropic:claude-opus-4-7*': anthropicPrice(5, 25),
  'anthropic:claude-opus-4-8*': anthropicPrice(5, 25),
  'anthropic:claude-opus-5*': anthropicPrice(5, 25),
  'anthropic:claude-opus-5-5*': anthropicPrice(4, 20, 0.05),
  'anthropic:claude-sonnet-4*': anthropicPrice(3, 15),
  'anthropic:claude-3-7-sonnet*': anthropicPrice(3, 15),
  'anthropic:claude-haiku-4-5*': anthropicPrice(1, 5),
  'anthropic:claude-3-5-haiku*': anthropicPrice(0.8, 4),
  'sim:*': {
    inputPerMillion: 0,
    outputPerMillion: 0,
    cachedInputPerMillion: 0,
    cacheWritePerMillion: 0,
    cacheWrite1hPerMillion: 0,
    batchInputPerMillion: 0,
    batchOutputPerMillion: 0,
    batchCachedInputPerMillion: 0,
    batchCacheWritePerMillion: 0,
    batchCacheWrite1hPerMillion: 0,
  },
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
    const copy: { -readonly [K in PriceRate]?: number } = {};
    for (const field of RATE_FIELDS) {
      const value = price[field];
      const required = field === 'inputPerMillion' || field === 'outputPerMillion';
      if (value === undefined && !required) continue;
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
        throw new InvalidOptionError(
          `prices["${modelId}"].${field}`,
          value,
          required ? 'a finite number of USD >= 0' : 'a finite number of USD >= 0, or left out when unknown',
        );
      }
      copy[field] = value;
    }
    const frozen = Object.freeze(copy) as ModelPrice;
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

  /**
   * The cost of one call (see {@link priceUsage}); an unknown model gives `{ costUsd: undefined, priced: false }`
   * and an unknown rate `{ costUsd: undefined, priced: true, unknownRates }`, never a silent 0.
   */
  costOf(modelId: string, usage: Usage, options: CostOptions = {}): CallCost {
    const price = this.priceOf(modelId);
    if (price === undefined) return { costUsd: undefined, priced: false };
    return priceUsage(price, usage, options);
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
 * The cost of one call under a price table (see {@link priceUsage} for how each part is priced).
 *
 * @param prices - @default {@link PriceTable.default}
 * @param options - `{ batch: true }` prices at the model's Batch API rates.
 * @example
 * ```ts
 * costOf('anthropic:claude-sonnet-4-5', response.usage, PriceTable.default, { batch: true }).costUsd;
 * ```
 */
export function costOf(
  modelId: string,
  usage: Usage,
  prices: PriceTable = PriceTable.default,
  options: CostOptions = {},
): CallCost {
  return prices.costOf(modelId, usage, options);
}

/** Aggregated usage of a set of calls. */
export interface UsageTotals {
  /** Every input token, cache reads and writes included (see {@link Usage}). */
  readonly inputTokens: number;
  readonly outputTokens: number;
  /**
   * Of `inputTokens`, how many were read from a prompt cache. Always set by this library's meters and sums;
   * optional so totals stored or built before it existed stay valid (read as 0).
   */
  readonly cacheReadTokens?: number | undefined;
  /** Of `inputTokens`, how many were written to a prompt cache (optional like `cacheReadTokens`). */
  readonly cacheWriteTokens?: number | undefined;
  /** Of `outputTokens`, how many the model spent reasoning (optional like `cacheReadTokens`). */
  readonly reasoningTokens?: number | undefined;
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

type MutableTotals = { -readonly [K in keyof UsageTotals]-?: number };

function emptyTotals(): MutableTotals {
  return {
    inputTokens: 0,
    outputTokens: 0,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
    reasoningTokens: 0,
    totalTokens: 0,
    costUsd: 0,
    calls: 0,
    unpricedCalls: 0,
  };
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
    // Totals stored before the cache fields existed have none: they count as 0.
    cacheReadTokens: (a.cacheReadTokens ?? 0) + (b.cacheReadTokens ?? 0),
    cacheWriteTokens: (a.cacheWriteTokens ?? 0) + (b.cacheWriteTokens ?? 0),
    reasoningTokens: (a.reasoningTokens ?? 0) + (b.reasoningTokens ?? 0),
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
   * @param options - `{ batch: true }` prices the call at the model's Batch API rates.
   * @throws {@link InvalidOptionError} when a token count is negative or not an integer, or a cache count
   *   exceeds `inputTokens`.
   */
  record(modelId: string, usage: Usage, labels: UsageLabels = {}, options: CostOptions = {}): CallCost {
    const { inputTokens, outputTokens } = usage;
    if (!Number.isInteger(inputTokens) || inputTokens < 0) {
      throw new InvalidOptionError('usage.inputTokens', inputTokens, 'an integer >= 0');
    }
    if (!Number.isInteger(outputTokens) || outputTokens < 0) {
      throw new InvalidOptionError('usage.outputTokens', outputTokens, 'an integer >= 0');
    }
    for (const field of ['cacheReadTokens', 'cacheWriteTokens'] as const) {
      const value = usage[field];
      if (value !== undefined && (!Number.isInteger(value) || value < 0 || value > inputTokens)) {
        throw new InvalidOptionError(`usage.${field}`, value, 'an integer >= 0 and <= usage.inputTokens');
      }
    }
    const reasoning = usage.reasoningTokens;
    if (
      reasoning !== undefined &&
      (!Number.isInteger(reasoning) || reasoning < 0 || reasoning > outputTokens)
    ) {
      throw new InvalidOptionError(
        'usage.reasoningTokens',
        reasoning,
        'an integer >= 0 and <= usage.outputTokens',
      );
    }
    const write1h = usage.cacheWrite1hTokens;
    if (
      write1h !== undefined &&
      (!Number.isInteger(write1h) || write1h < 0 || write1h > (usage.cacheWriteTokens ?? 0))
    ) {
      throw new InvalidOptionError(
        'usage.cacheWrite1hTokens',
        write1h,
        'an integer >= 0 and <= usage.cacheWriteTokens',
      );
    }
    const cost = this.#prices.costOf(modelId, usage, options);
    const costUsd = cost.costUsd;
    if (costUsd === undefined) this.#unpriced.add(modelId);
    addCallToTotals(this.#total, usage, costUsd);
    addCallToTotals(bucket(this.#byModel, modelId), usage, costUsd);
    if (labels.nodeKey !== undefined) addCallToTotals(bucket(this.#byNode, labels.nodeKey), usage, costUsd);
    if (labels.compositionId !== undefined && this.#perComposition) {
      addCallToTotals(bucket(this.#byComposition, labels.compositionId), usage, costUsd);
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

/**
 * Adds one call to `totals` in place (tokens, cache and reasoning tokens, cost); an undefined cost counts as an unpriced
 * call. For bookkeeping that keeps its own mutable totals (a chain run's per-node usage, a batch's).
 */
export function addCallToTotals(
  totals: { -readonly [K in keyof UsageTotals]: UsageTotals[K] },
  usage: Usage,
  costUsd: number | undefined,
): void {
  totals.inputTokens += usage.inputTokens;
  totals.outputTokens += usage.outputTokens;
  totals.cacheReadTokens = (totals.cacheReadTokens ?? 0) + (usage.cacheReadTokens ?? 0);
  totals.cacheWriteTokens = (totals.cacheWriteTokens ?? 0) + (usage.cacheWriteTokens ?? 0);
  totals.reasoningTokens = (totals.reasoningTokens ?? 0) + (usage.reasoningTokens ?? 0);
  totals.totalTokens += usage.inputTokens + usage.outputTokens;
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
