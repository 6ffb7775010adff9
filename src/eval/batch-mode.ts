/**
 * Batch mode of {@link evaluate}: the rows' model calls go through the providers' Batch APIs. A wrapped
 * registry hands every call to a {@link BatchCoordinator}, which collects the calls of one `provider:model`
 * for a short window (so every row's ready call of a chain layer lands in one batch), submits them, polls
 * with backoff and answers each call with its item's result; the chain, the re-asks, the response cache and
 * the scorers are unchanged (each call just waits longer). Batch ids and item states live in the run store,
 * so a resumed run polls the batches it submitted and never submits an item twice.
 */
import { createHash } from 'node:crypto';
import { InvalidOptionError } from '../core/errors.ts';
import { callHook } from '../core/hooks.ts';
import type { Json } from '../core/json.ts';
import {
  chunkBatchItems,
  finishBatchResponse,
  type BatchClient,
  type BatchItemResult,
  type BatchRequestItem,
  type BatchStatus,
} from '../providers/batch.ts';
import { createAnthropicBatchClient } from '../providers/batch-anthropic.ts';
import { createOpenAIBatchClient } from '../providers/batch-openai.ts';
import { createSimulatedBatchClient, type SimulatedBatchOptions } from '../providers/batch-simulated.ts';
import {
  AbortedError,
  BadRequestError,
  InternalServerError,
  RequestTimeoutError,
} from '../providers/errors.ts';
import { ProviderRegistry } from '../providers/registry.ts';
import type { ModelRequest, ModelResponse, Provider, StreamEvent } from '../providers/types.ts';
import { PriceTable, type ModelPrice } from '../providers/usage.ts';

/** Options of batch mode (`evaluate({ batch })`). */
export interface BatchOptions {
  /**
   * First wait before polling a submitted batch, in ms; later waits grow by half up to `maxPollMs`.
   * @default 1000 (the simulated client: its turnaround, between 10 and 1000)
   */
  readonly pollMs?: number | undefined;
  /** Longest wait between two polls of a batch, in ms. @default 60000 */
  readonly maxPollMs?: number | undefined;
  /**
   * Longest wait for a batch, in ms: past it the batch is cancelled and its unanswered items fail as
   * retryable timeouts (so they go into a later batch, within the client's retries). @default 26 hours
   */
  readonly maxWaitMs?: number | undefined;
  /** Most items per batch, within each provider's documented limit. @default the provider's limit */
  readonly maxItemsPerBatch?: number | undefined;
  /**
   * How long calls of one `provider:model` are collected before they are submitted together, in ms: the
   * window restarts with each new call, so a chain layer's calls across rows become one batch. @default 200
   */
  readonly collectMs?: number | undefined;
  /**
   * The batch client of each provider name. @default `openai` and `anthropic` over their SDKs (keys and base
   * URLs from the environment, as the providers read them), `sim` simulated; a provider without one is
   * called online.
   */
  readonly clients?: Readonly<Record<string, BatchClient>> | undefined;
  /** Turnaround of the default simulated batch client. @default ends at the first poll */
  readonly simulated?: SimulatedBatchOptions | undefined;
}

/** One batch as stored in the run store and shown in progress. */
export interface BatchInfo {
  readonly id: string;
  readonly provider: string;
  readonly model: string;
  readonly status: BatchStatus;
  readonly items: number;
  /** Items answered so far, when the provider says. */
  readonly completed?: number | undefined;
  readonly submittedAt: number;
}

/** The state of one batch item, as stored. */
export interface BatchItemRecord {
  readonly customId: string;
  readonly batchId: string;
  readonly state: 'submitted' | 'done' | 'failed';
  /** The item's response (state `done`). */
  readonly response?: Json | undefined;
  /** Why it failed (state `failed`). */
  readonly error?: string | undefined;
}

/**
 * Where batch mode keeps its batches and items: both run stores ({@link RunStore} for SQLite,
 * {@link PostgresRunStore}) implement it, in their `batches` and `batch_items` tables.
 */
export interface BatchStateStore {
  /** Records a submitted batch and its items (state `submitted`), in one transaction. */
  putBatch(run: string, batch: BatchInfo, customIds: readonly string[]): Promise<void>;
  /** Updates a batch's status and completed count. */
  updateBatch(run: string, id: string, status: BatchStatus, completed: number | undefined): Promise<void>;
  /** Records items' outcomes. */
  settleBatchItems(run: string, items: readonly BatchItemRecord[]): Promise<void>;
  /** Every batch of the run, oldest first. */
  batches(run: string): Promise<readonly BatchInfo[]>;
  /** Every item of the run. */
  batchItems(run: string): Promise<readonly BatchItemRecord[]>;
}

/**
 * One line of a batch's state, for logs and the command's progress:
 * `batch batch_12 openai:gpt-4.1-mini: in_progress 120/200`.
 */
export function formatBatchLine(batch: BatchInfo): string {
  const done = batch.completed === undefined ? '' : ` ${batch.completed}/${batch.items}`;
  return `batch ${batch.id} ${batch.provider}:${batch.model}: ${batch.status}${done || ` (${batch.items} items)`}`;
}

/** True when `store` keeps batch state (see {@link BatchStateStore}). */
export function isBatchStateStore(store: unknown): store is BatchStateStore {
  const s = store as Partial<BatchStateStore> | null;
  return typeof s?.putBatch === 'function' && typeof s.batchItems === 'function';
}

/**
 * The price table of batch calls: every model of `prices` at its Batch API rates (its `batch…` rates as the
 * input, output, cached-input and cache-write rates). A model without batch input and output rates is left
 * out, so its batch calls are unpriced (cost unknown) rather than priced at the online rates.
 */
export function batchPrices(prices: PriceTable = PriceTable.default): PriceTable {
  const out: Record<string, ModelPrice> = {};
  for (const [id, price] of Object.entries(prices.toJSON())) {
    if (price.batchInputPerMillion === undefined || price.batchOutputPerMillion === undefined) continue;
    out[id] = {
      inputPerMillion: price.batchInputPerMillion,
      outputPerMillion: price.batchOutputPerMillion,
      cachedInputPerMillion: price.batchCachedInputPerMillion,
      cacheWritePerMillion: price.batchCacheWritePerMillion,
      cacheWrite1hPerMillion: price.batchCacheWrite1hPerMillion,
    };
  }
  return new PriceTable(out);
}

/** Checks `evaluate`'s `batch` option. @throws {InvalidOptionError} naming the bad field. */
export function resolveBatchOptions(batch: true | BatchOptions): BatchOptions {
  const options = batch === true ? {} : batch;
  for (const field of ['pollMs', 'maxPollMs', 'maxWaitMs', 'collectMs'] as const) {
    const value = options[field];
    if (value !== undefined && !(typeof value === 'number' && value >= 0 && Number.isFinite(value)))
      throw new InvalidOptionError(`batch.${field}`, value, 'a finite number of ms >= 0');
  }
  const most = options.maxItemsPerBatch;
  if (most !== undefined && !(Number.isSafeInteger(most) && most >= 1))
    throw new InvalidOptionError('batch.maxItemsPerBatch', most, 'an integer >= 1');
  return options;
}

interface Waiter {
  readonly provider: string;
  readonly request: ModelRequest;
  resolve(response: ModelResponse): void;
  reject(error: Error): void;
}

interface Queued {
  readonly item: BatchRequestItem;
  readonly waiter: Waiter;
}

type Settled =
  | { readonly ok: true; readonly response: ModelResponse }
  | { readonly ok: false; readonly message: string; readonly retryable: boolean };

/**
 * Sends the model calls of one run through batches (see the module comment). {@link BatchCoordinator.start}
 * loads the run's stored batches and resumes polling the unfinished ones; {@link BatchCoordinator.close}
 * stops polling (the batches go on at the provider; a resume picks them up).
 */
export class BatchCoordinator {
  readonly #run: string;
  readonly #store: BatchStateStore;
  readonly #options: BatchOptions;
  readonly #onChange: (() => void) | undefined;
  readonly #clients = new Map<string, BatchClient | undefined>();
  readonly #queues = new Map<string, { items: Queued[]; timer: ReturnType<typeof setTimeout> | undefined }>();
  /** Items waiting for their batch: custom id → batch id. */
  readonly #pending = new Map<string, string>();
  readonly #settled = new Map<string, Settled>();
  readonly #waiters = new Map<string, Waiter[]>();
  readonly #occurrences = new Map<string, number>();
  readonly #batches = new Map<string, BatchInfo>();
  readonly #polling = new Set<string>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  #closed = false;
  /** Batches submitted by this process. */
  submitted = 0;
  /** Polls made by this process. */
  polls = 0;

  constructor(run: string, store: BatchStateStore, options: BatchOptions, onChange?: () => void) {
    this.#run = run;
    this.#store = store;
    this.#options = options;
    this.#onChange = onChange;
  }

  /** Loads the run's stored batches and items, and resumes polling its unfinished batches. */
  async start(registry: ProviderRegistry): Promise<void> {
    for (const batch of await this.#store.batches(this.#run)) this.#batches.set(batch.id, batch);
    for (const item of await this.#store.batchItems(this.#run)) {
      if (item.state === 'submitted') this.#pending.set(item.customId, item.batchId);
      else if (item.state === 'done')
        this.#settled.set(item.customId, { ok: true, response: item.response as unknown as ModelResponse });
      else this.#settled.set(item.customId, { ok: false, message: item.error ?? '', retryable: true });
    }
    for (const batch of this.#batches.values()) {
      if (batch.status !== 'in_progress') continue;
      const client = this.#client(batch.provider, registry);
      if (client === undefined) continue;
      this.#poll(client, batch.id, Date.now(), this.#pollMs(client), true);
    }
  }

  /** Every batch of the run known to this process (stored and submitted), oldest first. */
  get batches(): readonly BatchInfo[] {
    return [...this.#batches.values()];
  }

  /**
   * A registry whose providers with a batch client send their `complete()` and `stream()` calls through
   * batches; the others are `registry`'s own.
   */
  wrapRegistry(registry: ProviderRegistry): ProviderRegistry {
    const registered = registry.names;
    const result = new ProviderRegistry({ simulated: { name: registered[0] ?? 'sim' } });
    for (const name of registered) {
      result.registerLazy(name, () => {
        const provider = registry.get(name);
        return this.#client(name, registry) === undefined ? provider : this.#wrap(provider);
      });
    }
    return result;
  }

  /** Stops polling and refuses the calls still waiting (their batches go on; a resume polls them). */
  close(): void {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const queue of this.#queues.values()) if (queue.timer !== undefined) clearTimeout(queue.timer);
  }

  #client(name: string, registry: ProviderRegistry): BatchClient | undefined {
    if (this.#clients.has(name)) return this.#clients.get(name);
    let client = this.#options.clients?.[name];
    if (client === undefined) {
      if (name === 'openai') client = createOpenAIBatchClient({ name });
      else if (name === 'anthropic') client = createAnthropicBatchClient({ name });
      else if (name === 'sim')
        client = createSimulatedBatchClient(registry.get(name), this.#options.simulated);
    }
    this.#clients.set(name, client);
    return client;
  }

  #wrap(provider: Provider): Provider {
    const complete = (request: ModelRequest): Promise<ModelResponse> => this.#call(provider.name, request);
    return {
      name: provider.name,
      complete,
      async *stream(request: ModelRequest): AsyncIterable<StreamEvent> {
        const response = await complete(request);
        if (response.text !== '') yield { type: 'text-delta', text: response.text };
        for (const toolCall of response.toolCalls) yield { type: 'tool-call', toolCall };
        yield { type: 'finish', response };
      },
      ...(provider.preflight === undefined ? {} : { preflight: provider.preflight.bind(provider) }),
    };
  }

  /** One call: answered from a settled item, attached to a pending one, or queued for the next batch. */
  #call(provider: string, request: ModelRequest): Promise<ModelResponse> {
    const { signal } = request;
    if (signal?.aborted === true || this.#closed)
      return Promise.reject(new AbortedError({ provider, model: request.model }));
    const key = requestKey(this.#run, provider, request);
    let occurrence = this.#occurrences.get(key) ?? 0;
    let customId = `${key}-${occurrence}`;
    // A failed item is never asked again under its id: the call goes on under the next one.
    while (this.#settled.get(customId)?.ok === false) {
      occurrence += 1;
      customId = `${key}-${occurrence}`;
    }
    this.#occurrences.set(key, occurrence + 1);
    return new Promise<ModelResponse>((resolve, reject) => {
      const onAbort = (): void => {
        reject(new AbortedError({ provider, model: request.model }));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const waiter: Waiter = {
        provider,
        request,
        resolve: (response) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(response);
        },
        reject: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      const settled = this.#settled.get(customId);
      if (settled !== undefined) {
        this.#answer(waiter, settled);
        return;
      }
      const list = this.#waiters.get(customId);
      if (list === undefined) this.#waiters.set(customId, [waiter]);
      else list.push(waiter);
      if (this.#pending.has(customId) || list !== undefined) return; // its batch is polled already
      this.#enqueue(provider, { item: { customId, request: stripRequest(request) }, waiter });
    });
  }

  #answer(waiter: Waiter, settled: Settled): void {
    const init = { provider: waiter.provider, model: waiter.request.model };
    if (settled.ok) waiter.resolve(finishBatchResponse(waiter.provider, waiter.request, settled.response));
    else if (settled.retryable)
      waiter.reject(new InternalServerError({ ...init, status: undefined, message: settled.message }));
    else waiter.reject(new BadRequestError({ ...init, message: settled.message }));
  }

  #enqueue(provider: string, queued: Queued): void {
    const modelKey = `${provider}:${queued.item.request.model}`;
    let queue = this.#queues.get(modelKey);
    if (queue === undefined) {
      queue = { items: [], timer: undefined };
      this.#queues.set(modelKey, queue);
    }
    queue.items.push(queued);
    const client = this.#clients.get(provider) as BatchClient;
    const most = Math.min(this.#options.maxItemsPerBatch ?? Infinity, client.limits.maxRequests);
    if (queue.timer !== undefined) clearTimeout(queue.timer);
    const target = queue;
    if (queue.items.length >= most) {
      queue.timer = undefined;
      this.#flush(client, target);
      return;
    }
    queue.timer = setTimeout(() => {
      target.timer = undefined;
      this.#flush(client, target);
    }, this.#options.collectMs ?? 200);
  }

  #flush(client: BatchClient, queue: { items: Queued[] }): void {
    const items = queue.items;
    queue.items = [];
    if (items.length === 0 || this.#closed) return;
    const chunks = chunkBatchItems(
      items,
      client.limits,
      (queued) => client.sizeOf(queued.item),
      this.#options.maxItemsPerBatch,
    );
    for (const chunk of chunks) void this.#submit(client, chunk);
  }

  async #submit(client: BatchClient, chunk: readonly Queued[]): Promise<void> {
    const items = chunk.map((queued) => queued.item);
    let id: string;
    try {
      id = await client.submit(items);
    } catch (error) {
      // Not submitted: every waiting call fails (retryable ones are asked again, into a later batch).
      for (const { item } of chunk) {
        const waiters = this.#waiters.get(item.customId) ?? [];
        this.#waiters.delete(item.customId);
        for (const waiter of waiters)
          waiter.reject(error instanceof Error ? error : new Error(String(error)));
      }
      return;
    }
    this.submitted += 1;
    const info: BatchInfo = {
      id,
      provider: client.provider,
      model: items[0]?.request.model ?? '',
      status: 'in_progress',
      items: items.length,
      completed: 0,
      submittedAt: Date.now(),
    };
    this.#batches.set(id, info);
    for (const item of items) this.#pending.set(item.customId, id);
    await this.#store.putBatch(
      this.#run,
      info,
      items.map((item) => item.customId),
    );
    this.#changed();
    this.#poll(client, id, info.submittedAt, this.#pollMs(client), false);
  }

  /** Polls a batch after `waitMs` (at once when `now`), with backoff, until it ends or `maxWaitMs` passes. */
  #poll(client: BatchClient, id: string, since: number, waitMs: number, now: boolean): void {
    if (this.#closed || (this.#polling.has(id) && now)) return;
    this.#polling.add(id);
    const timer = setTimeout(
      () => {
        this.#timers.delete(timer);
        void this.#pollOnce(client, id, since, waitMs);
      },
      now ? 0 : waitMs,
    );
    this.#timers.add(timer);
  }

  async #pollOnce(client: BatchClient, id: string, since: number, waitMs: number): Promise<void> {
    if (this.#closed) return;
    const next = Math.min(this.#options.maxPollMs ?? 60_000, Math.max(1, waitMs * 1.5));
    const maxWaitMs = this.#options.maxWaitMs ?? 26 * 3_600_000;
    let status: BatchStatus;
    let completed: number | undefined;
    try {
      this.polls += 1;
      ({ status, completed } = await client.retrieve(id));
    } catch {
      // A failed poll is tried again at the next interval (the batch goes on at the provider).
      if (Date.now() - since < maxWaitMs) this.#poll(client, id, since, next, false);
      else await this.#expire(client, id, 'the batch could not be polled');
      return;
    }
    if (this.#isClosed()) return;
    const info = this.#batches.get(id);
    if (info !== undefined) this.#batches.set(id, { ...info, status, completed });
    if (status === 'in_progress') {
      await this.#store.updateBatch(this.#run, id, status, completed);
      this.#changed();
      if (Date.now() - since < maxWaitMs) this.#poll(client, id, since, next, false);
      else await this.#expire(client, id, `no answer within maxWaitMs (${maxWaitMs} ms)`);
      return;
    }
    let results: readonly BatchItemResult[] = [];
    try {
      results = status === 'failed' ? [] : await client.results(id);
    } catch {
      if (Date.now() - since < maxWaitMs) {
        this.#poll(client, id, since, next, false);
        return;
      }
    }
    await this.#settle(id, results, `the batch ended ${status} without an answer for this item`);
    await this.#store.updateBatch(this.#run, id, status, completed);
    this.#polling.delete(id);
    this.#changed();
  }

  async #expire(client: BatchClient, id: string, why: string): Promise<void> {
    await client.cancel?.(id).catch(() => undefined);
    await this.#store.updateBatch(this.#run, id, 'expired', undefined);
    const info = this.#batches.get(id);
    if (info !== undefined) this.#batches.set(id, { ...info, status: 'expired' });
    await this.#settle(id, [], why, true);
    this.#polling.delete(id);
    this.#changed();
  }

  /** Records the batch's outcomes; its items without one fail (retryable) with `missing`. */
  async #settle(
    id: string,
    results: readonly BatchItemResult[],
    missing: string,
    timeout = false,
  ): Promise<void> {
    const byId = new Map(results.map((result) => [result.customId, result]));
    const records: BatchItemRecord[] = [];
    const answered: [string, Settled][] = [];
    for (const [customId, batchId] of this.#pending) {
      if (batchId !== id) continue;
      const result = byId.get(customId);
      const settled: Settled =
        result === undefined
          ? { ok: false, message: missing, retryable: true }
          : result.ok
            ? { ok: true, response: result.response }
            : { ok: false, message: result.message, retryable: result.retryable };
      answered.push([customId, settled]);
      records.push(
        settled.ok
          ? { customId, batchId, state: 'done', response: toJson(settled.response) }
          : { customId, batchId, state: 'failed', error: settled.message },
      );
    }
    // Stored first: a process killed after this line finds the answers and never asks again.
    await this.#store.settleBatchItems(this.#run, records);
    for (const [customId, settled] of answered) {
      this.#pending.delete(customId);
      this.#settled.set(customId, settled);
      const waiters = this.#waiters.get(customId) ?? [];
      this.#waiters.delete(customId);
      for (const waiter of waiters) {
        if (timeout && !settled.ok) {
          waiter.reject(
            new RequestTimeoutError({
              provider: waiter.provider,
              model: waiter.request.model,
              message: `Batch ${id}: ${settled.message}.`,
            }),
          );
        } else this.#answer(waiter, settled);
      }
    }
  }

  #pollMs(client: BatchClient): number {
    return this.#options.pollMs ?? client.pollMs ?? 1000;
  }

  /** A method, not a field read, so TypeScript does not narrow it across awaits. */
  #isClosed(): boolean {
    return this.#closed;
  }

  #changed(): void {
    if (this.#onChange !== undefined) callHook(this.#onChange);
  }
}

/** The request as sent: without its signal and stream timeout (not part of what the model sees). */
function stripRequest(request: ModelRequest): ModelRequest {
  const { signal: _signal, streamIdleTimeoutMs: _idle, ...rest } = request;
  return rest;
}

/**
 * A stable key of a call in a run: SHA-256 of the run name, the provider and the request as sent (the row's
 * input, the variant's template and model, the node's prompt and any re-ask feedback are all in it), 40 hex
 * digits; the custom id adds how many identical calls of the run came before it.
 */
function requestKey(run: string, provider: string, request: ModelRequest): string {
  return createHash('sha256')
    .update(JSON.stringify([run, provider, stripRequest(request)]))
    .digest('hex')
    .slice(0, 40);
}

function toJson(value: unknown): Json {
  return JSON.parse(JSON.stringify(value ?? null)) as Json;
}
