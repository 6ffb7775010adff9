/**
 * Evaluation batches: every dataset row × every variant runs as a chain Composition through one Perform,
 * is scored, and is committed to the run store as it finishes, so a crashed or stopped batch resumes without
 * redoing finished rows.
 */
import { createHash } from 'node:crypto';
import type { z } from 'zod';
import { InvalidOptionError, SymphonizerError, errorMessage } from '../core/errors.ts';
import type { Json } from '../core/json.ts';
import { Perform } from '../core/perform.ts';
import type { Chain } from '../chain/chain.ts';
import { ChainRunError } from '../chain/errors.ts';
import type { ChainResult } from '../chain/types.ts';
import { ModelClient } from '../providers/model-client.ts';
import { createDefaultRegistry, type ProviderRegistry } from '../providers/registry.ts';
import {
  BudgetExceededError,
  PriceTable,
  UsageMeter,
  addUsageTotals,
  emptyUsage,
  type UsageTotals,
} from '../providers/usage.ts';
import type { ResponseCache } from './cache.ts';
import type { EvalQueue } from './queue.ts';
import { openEvalStore } from './open-store.ts';
import { sqliteEvalStore, type EvalRunStore } from './run-store.ts';
import type { EvalErrorCode } from './errors.ts';
import { datasetFromArray, isUnreadRowId, readDataset } from './dataset.ts';
import { summarizeStoredRun, type EvalSummary } from './report.ts';
import { DEFAULT_LEASE_STALE_MS, RunLeasedError, RunStore, type LeaseInfo } from './store.ts';
import type { DatasetItem, DatasetRow, RowRecord, RowStatus, ScoreResult, Scorer, Variant } from './types.ts';
import { callHook } from '../core/hooks.ts';
import {
  BatchCoordinator,
  batchPrices,
  isBatchStateStore,
  resolveBatchOptions,
  type BatchInfo,
  type BatchOptions,
} from './batch-mode.ts';

/** Progress of a batch, reported after every finished row. */
export interface EvalProgress {
  readonly run: string;
  /** Row × variant units finished in this invocation (skipped ones not included). */
  readonly done: number;
  /** Units to do in this invocation, when known (file datasets are counted first). */
  readonly total: number | undefined;
  /** Units already finished by an earlier invocation and skipped. */
  readonly skipped: number;
  readonly pass: number;
  readonly fail: number;
  readonly errors: number;
  readonly tokens: number;
  readonly costUsd: number;
  /** Units per second so far. */
  readonly rate: number;
  /** Estimated milliseconds left, when `total` is known. */
  readonly etaMs: number | undefined;
  /** In batch mode: every batch of the run with its state (reported again whenever one changes). */
  readonly batches?: readonly BatchInfo[] | undefined;
}

/**
 * How {@link evaluate} leases its run: one process (or batch) at a time runs a run name, so two resuming the
 * same run cannot each redo every row. The holder heartbeats every `heartbeatMs`; a lease whose heartbeat is
 * older than `staleMs`, or whose holder is a dead process of this host, is taken over.
 */
export interface EvalLeaseOptions {
  /**
   * Wait for the holder to finish (polling with backoff, up to `heartbeatMs` apart) instead of throwing
   * {@link RunLeasedError}. Aborting `signal` stops the wait (the result is `stopped: 'aborted'`).
   * @default false
   */
  readonly wait?: boolean | undefined;
  /** How often the holder records that it is alive, in ms. @default 5000 */
  readonly heartbeatMs?: number | undefined;
  /** A lease not heartbeated for this long is stale and taken over, in ms. @default 30000 (6 × heartbeatMs) */
  readonly staleMs?: number | undefined;
  /** Called once when the batch starts waiting, with the lease it waits for. Must not throw. */
  readonly onWait?: ((lease: LeaseInfo) => void) | undefined;
}

/** Options of {@link evaluate}. */
export interface EvaluateOptions<S extends z.ZodType, O extends Record<string, unknown>> {
  readonly chain: Chain<S, O>;
  /** A JSONL, CSV or JSON file (streamed), or rows in memory (`{ id?, expected?, ...input }`). */
  readonly dataset: string | readonly Readonly<Record<string, unknown>>[];
  readonly scorers: readonly Scorer<z.output<S>, O>[];
  /** Variants to compare on the same rows. @default [{ name: 'default' }] */
  readonly variants?: readonly Variant[] | undefined;
  /** The run's name: re-running with the same name resumes it. @default `${chain.name}` */
  readonly runName?: string | undefined;
  /**
   * The run store: a SQLite {@link RunStore}, any {@link EvalRunStore} (e.g. a {@link PostgresRunStore}), a
   * SQLite file path, or a `postgres://` URL (opened as a {@link PostgresRunStore}, loading `pg`, and closed at
   * the end). A store object is left open. @default an in-memory store (nothing survives the process)
   */
  readonly store?: RunStore | EvalRunStore | string | undefined;
  /**
   * Run the row × variant units on other machines: each one is handed to `queue.run()` (e.g. a
   * `DistributedPerform` of `symphonizer/distributed`) instead of running in this process, with a `runId`
   * stable per run name × variant × row id ({@link evalUnitRunId}), so a resumed evaluation hands an
   * unfinished unit again under the same id and the queue's idempotent submit never runs it twice. This
   * process still writes every row (first finished write wins: a unit executed twice is stored once) and
   * counts its usage; `concurrency` then bounds the units handed to the queue and not yet finished, so at most
   * that many of this evaluation's jobs wait in the queue at once. The workers' clients make the model calls:
   * `cache`, `client` and `registry` are refused with a queue, and `maxCostUsd` is checked against the
   * finished units' usage (the units in flight when it is reached may pass it).
   */
  readonly queue?: EvalQueue | undefined;
  /** A response cache: answers are replayed from it (read-only mode needs no provider at all). */
  readonly cache?: ResponseCache | undefined;
  /**
   * The registry to call providers through (wrapped by `cache` when given).
   * @default the registry of the chain's own client (its `client` option), else createDefaultRegistry()
   */
  readonly registry?: ProviderRegistry | undefined;
  /** Prices for cost accounting and the cost ceiling. @default PriceTable.default */
  readonly prices?: PriceTable | undefined;
  /**
   * The client for model calls; not combinable with `cache` (the cache wraps the registry).
   * @default the chain's own client when neither `registry`, `cache` nor `maxCostUsd` is given; else a new
   *   client (see `registry`) with the batch's budget, sharing the chain client's rate limiters
   */
  readonly client?: ModelClient | undefined;
  /** Most row × variant units running at once (Perform's high-water mark). @default 16 */
  readonly concurrency?: number | undefined;
  /**
   * A cost ceiling in USD. The batch first runs one row per variant, extrapolates, and refuses to go on if
   * the estimate for the whole batch is above it; while running, a call that would pass it is refused and the
   * batch stops cleanly (finished rows stay stored; resume after raising the ceiling).
   */
  readonly maxCostUsd?: number | undefined;
  /** Stored with the run (e.g. scorer and variant descriptions), for reports and audits. */
  readonly config?: Json | undefined;
  /** Re-run only the rows stored as ERROR (after a fix or an outage). @default false */
  readonly retryErrors?: boolean | undefined;
  /** Called after each finished unit. Must not throw. */
  readonly onProgress?: ((progress: EvalProgress) => void) | undefined;
  /** Aborting it stops the batch cleanly: running rows are cancelled and not stored. */
  readonly signal?: AbortSignal | undefined;
  /** How the run is leased while the batch runs (see {@link EvalLeaseOptions}). */
  readonly lease?: EvalLeaseOptions | undefined;
  /**
   * Batch mode: the model calls go through the providers' Batch APIs (half price, answered within a day),
   * layer by layer of the chain (see {@link BatchOptions}); their cost is counted at batch rates
   * ({@link batchPrices}). Batch ids and item states are kept in the run store, so a resumed run polls the
   * same batches and never submits an item twice. Not combinable with `queue` or `client`; `concurrency`
   * then defaults to 10000 (the units waiting for a batch cost no provider request). With `maxCostUsd` the
   * pilot (one row per variant) goes first in batches of its own, so the estimate costs a turnaround per
   * chain layer before the other rows are sent. @default false
   */
  readonly batch?: boolean | BatchOptions | undefined;
}

/** The result of {@link evaluate}. */
export interface EvalResult {
  readonly run: string;
  /** Per-variant summary over every stored row of the run (earlier invocations included). */
  readonly summary: EvalSummary;
  readonly done: number;
  readonly skipped: number;
  /**
   * Dataset rows of this invocation that were not evaluated because the row itself is bad: they could not be
   * read or failed the input schema (stored as ERROR rows with code `invalid_row`; `unreadRows` included).
   */
  readonly rowErrors: number;
  /**
   * Dataset rows of this invocation that could not be read as rows of their own (invalid JSON, a malformed
   * CSV record, a bad, reserved or duplicate id): never evaluated, stored as ERROR rows under the id
   * `!line:<line>` (see `readDataset`). Counted on every invocation, resumed ones too, until the file is fixed.
   */
  readonly unreadRows: number;
  /** Tokens and cost of this invocation. */
  readonly usage: UsageTotals;
  /** Why the batch stopped early, if it did. */
  readonly stopped: 'budget' | 'estimate' | 'aborted' | undefined;
  /** The extrapolated cost of the whole batch, when a ceiling was given. */
  readonly estimatedCostUsd: number | undefined;
}

const keyOf = (variant: string, rowId: string): string => `${variant}\u0000${rowId}`;

/**
 * Runs a chain over a dataset, scores every row, stores every finished row durably, and summarises.
 *
 * Rows whose chain or scorer failed (after their retries) are ERROR rows, reported apart from rows that ran
 * and scored low (FAIL); errors never count as a score of 0.
 *
 * @example
 * ```ts
 * const result = await evaluate({ chain: classify, dataset: 'tickets.jsonl', scorers: [exactMatch({ node: 'label' })],
 *   variants: [{ name: 'a' }, { name: 'b', overrides: { label: { template: 'classify-v2' } } }], store: 'runs.sqlite' });
 * console.log(renderTextTable(result.summary));
 * ```
 * @throws {InvalidOptionError} for bad options (duplicate variant or scorer names, client with cache).
 * @throws {RunLeasedError} when another live process (or batch) is running the same run name and
 *   `lease.wait` is not set.
 */
export async function evaluate<S extends z.ZodType, O extends Record<string, unknown>>(
  options: EvaluateOptions<S, O>,
): Promise<EvalResult> {
  const { chain } = options;
  const variants = options.variants ?? [{ name: 'default' }];
  checkUnique(
    'variants',
    variants.map((v) => v.name),
  );
  checkUnique(
    'scorers',
    options.scorers.map((s) => s.name),
  );
  if (options.queue !== undefined) {
    for (const name of ['cache', 'client', 'registry'] as const) {
      if (options[name] !== undefined) {
        throw new InvalidOptionError(name, `a ${name}`, 'left out when `queue` is given', {
          hint: "the queue's workers make the model calls: give the cache, client or registry to the workers",
        });
      }
    }
  }
  const batchMode =
    options.batch === undefined || options.batch === false ? undefined : resolveBatchOptions(options.batch);
  if (batchMode !== undefined) {
    for (const name of ['queue', 'client'] as const) {
      if (options[name] !== undefined) {
        throw new InvalidOptionError(name, `a ${name}`, 'left out when `batch` is given', {
          hint: 'batch mode builds its own client over `registry` (and `cache`)',
        });
      }
    }
  }
  if (options.client !== undefined && options.cache !== undefined) {
    throw new InvalidOptionError('cache', 'a ResponseCache', 'left out when `client` is given', {
      hint: 'give `registry` (the cache wraps it) instead of `client`',
    });
  }
  const concurrency = options.concurrency ?? (batchMode === undefined ? 16 : 10_000);
  if (!(Number.isInteger(concurrency) && concurrency >= 1)) {
    throw new InvalidOptionError('concurrency', concurrency, 'an integer >= 1');
  }
  const maxCost = options.maxCostUsd;
  if (maxCost !== undefined && !(typeof maxCost === 'number' && maxCost > 0)) {
    throw new InvalidOptionError('maxCostUsd', maxCost, 'a number > 0');
  }
  const heartbeatMs = options.lease?.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  if (!(typeof heartbeatMs === 'number' && heartbeatMs > 0)) {
    throw new InvalidOptionError('lease.heartbeatMs', heartbeatMs, 'a number > 0');
  }
  const staleMs = options.lease?.staleMs ?? DEFAULT_LEASE_STALE_MS;
  if (!(typeof staleMs === 'number' && staleMs > heartbeatMs)) {
    throw new InvalidOptionError('lease.staleMs', staleMs, 'a number > lease.heartbeatMs');
  }
  const run = options.runName ?? chain.name;
  const ownsStore = options.store === undefined || typeof options.store === 'string';
  const store = await resolveStore(options.store);
  let lease: LeaseInfo | undefined;
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  try {
    lease = await acquire(store, run, staleMs, heartbeatMs, options);
    if (lease === undefined) {
      // Aborted while waiting for another holder: nothing ran.
      return {
        run,
        summary: await summarizeStoredRun(store, run, { scorers: options.scorers.map((s) => s.name) }),
        done: 0,
        skipped: 0,
        rowErrors: 0,
        unreadRows: 0,
        usage: emptyUsage(),
        stopped: 'aborted',
        estimatedCostUsd: undefined,
      };
    }
    const held = lease;
    heartbeat = setInterval(() => {
      // A busy or closing store: the next beat tries again (the lease goes stale only after several misses).
      store.heartbeatLease(run, held.holder).catch(() => undefined);
    }, heartbeatMs);
    heartbeat.unref();
    await store.beginRun({
      run,
      chain: chain.name,
      variants: variants.map((v) => v.name),
      dataset: typeof options.dataset === 'string' ? options.dataset : undefined,
      config: options.config,
    });
    const skip =
      options.retryErrors === true
        ? without(await store.finishedKeys(run), await store.errorKeys(run))
        : await store.finishedKeys(run);

    let coordinator: BatchCoordinator | undefined;
    const progress: { report: () => void } = { report: () => undefined };
    if (batchMode !== undefined) {
      if (!isBatchStateStore(store)) {
        throw new InvalidOptionError(
          'store',
          'a store without batch state',
          'a RunStore or PostgresRunStore',
          {
            hint: 'batch mode keeps its batch ids in the run store',
          },
        );
      }
      coordinator = new BatchCoordinator(run, store, batchMode, () => {
        progress.report();
      });
    }
    const client =
      coordinator !== undefined
        ? await batchModeClient(options, coordinator)
        : options.queue === undefined
          ? batchClient(options)
          : undefined;

    const total = typeof options.dataset === 'string' ? await countUnits(options, variants, skip) : undefined;
    const batch = new Batch(options, run, store, client, variants, skip, total, concurrency, coordinator);
    progress.report = () => {
      batch.report();
    };
    try {
      await batch.run();
    } finally {
      coordinator?.close();
    }
    return {
      run,
      summary: await summarizeStoredRun(store, run, { scorers: options.scorers.map((s) => s.name) }),
      done: batch.done,
      skipped: batch.skipped,
      rowErrors: batch.rowErrors,
      unreadRows: batch.unreadRows,
      usage: batch.usage,
      stopped: batch.stopped,
      estimatedCostUsd: batch.estimatedCostUsd,
    };
  } finally {
    if (heartbeat !== undefined) clearInterval(heartbeat);
    if (lease !== undefined) {
      // Releasing is best effort: an unreleased lease goes stale and is taken over.
      await store.releaseLease(run, lease.holder).catch(() => undefined);
    }
    if (ownsStore) await store.close();
  }
}

/**
 * The `runId` an evaluation hands to its {@link EvalQueue} for one unit: the same for the same run name,
 * variant and row id in every invocation and on every machine (`eval:` and 40 hex digits of a SHA-256).
 */
export function evalUnitRunId(run: string, variant: string, rowId: string): string {
  const digest = createHash('sha256')
    .update(JSON.stringify([run, variant, rowId]))
    .digest('hex');
  return `eval:${digest.slice(0, 40)}`;
}

/** The store `evaluate()` writes to: a store object as is, a path or URL opened. */
async function resolveStore(
  store: EvaluateOptions<z.ZodType, Record<string, unknown>>['store'],
): Promise<EvalRunStore> {
  if (store instanceof RunStore) return sqliteEvalStore(store);
  if (store === undefined) return sqliteEvalStore(RunStore.open(':memory:'), ':memory:');
  if (typeof store === 'string') return openEvalStore(store);
  return store;
}

const DEFAULT_HEARTBEAT_MS = 5000;

/**
 * Takes the run's lease; with `lease.wait`, polls with backoff (100 ms growing to `heartbeatMs`) until it is
 * free or stale. Returns undefined when `signal` aborted the wait.
 */
async function acquire<S extends z.ZodType, O extends Record<string, unknown>>(
  store: EvalRunStore,
  run: string,
  staleMs: number,
  heartbeatMs: number,
  options: EvaluateOptions<S, O>,
): Promise<LeaseInfo | undefined> {
  const { signal } = options;
  let delay = Math.min(100, heartbeatMs);
  let told = false;
  for (;;) {
    if (signal?.aborted === true) return undefined;
    try {
      return await store.acquireLease(run, { staleMs });
    } catch (error) {
      if (!(error instanceof RunLeasedError) || options.lease?.wait !== true) throw error;
      if (!told) {
        told = true;
        const onWait = options.lease.onWait;
        if (onWait !== undefined) callHook(onWait, error.lease);
      }
    }
    await sleep(delay, signal);
    delay = Math.min(delay * 1.5, heartbeatMs);
  }
}

/** `promise`, or a rejection with the abort reason as soon as `signal` aborts (the work itself may go on). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(toError(signal.reason));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      reject(toError(signal.reason));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(toError(error));
      },
    );
  });
}

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * The client a batch calls through: `options.client`; else the chain's own client (its `client` option) when
 * the batch needs nothing of its own, i.e. no `registry`, `cache` or `maxCostUsd`; else a new client on
 * `options.registry`, else on the chain client's registry and rate limiters (so its providers, custom ones
 * included, and its limits still apply), else on the default registry, with the batch's budget and cache.
 */
function batchClient<S extends z.ZodType, O extends Record<string, unknown>>(
  options: EvaluateOptions<S, O>,
): ModelClient {
  if (options.client !== undefined) return options.client;
  const own = chainClient(options.chain);
  const maxCost = options.maxCostUsd;
  if (
    own !== undefined &&
    options.registry === undefined &&
    options.cache === undefined &&
    maxCost === undefined
  )
    return own;
  const registry = options.registry ?? own?.registry ?? createDefaultRegistry();
  return new ModelClient({
    registry: options.cache === undefined ? registry : options.cache.wrapRegistry(registry),
    limits: options.registry === undefined ? own?.limiters : undefined,
    budget: maxCost === undefined ? undefined : { maxUsd: maxCost },
    prices: options.prices,
    // Rows carry their own usage; per-composition totals would grow by one entry per row.
    meter: new UsageMeter({ prices: options.prices, perComposition: false }),
  });
}

/**
 * The client of batch mode: the registry (`options.registry`, else the chain client's, else the default)
 * wrapped so that calls go through batches, under the cache when there is one (a cached answer is never
 * sent), priced at batch rates.
 */
async function batchModeClient<S extends z.ZodType, O extends Record<string, unknown>>(
  options: EvaluateOptions<S, O>,
  coordinator: BatchCoordinator,
): Promise<ModelClient> {
  const own = chainClient(options.chain);
  const registry = options.registry ?? own?.registry ?? createDefaultRegistry();
  await coordinator.start(registry);
  const batched = coordinator.wrapRegistry(registry);
  const maxCost = options.maxCostUsd;
  const prices = batchPrices(options.prices);
  return new ModelClient({
    registry: options.cache === undefined ? batched : options.cache.wrapRegistry(batched),
    budget: maxCost === undefined ? undefined : { maxUsd: maxCost },
    prices,
    meter: new UsageMeter({ prices, perComposition: false }),
  });
}

/** The chain's own client, if it has one (`undefined` for a chain of an older copy without the getter). */
function chainClient(chain: unknown): ModelClient | undefined {
  const client = (chain as { readonly client?: unknown }).client;
  return client instanceof ModelClient ? client : undefined;
}

class Batch<S extends z.ZodType, O extends Record<string, unknown>> {
  done = 0;
  skipped = 0;
  rowErrors = 0;
  unreadRows = 0;
  pass = 0;
  fail = 0;
  errors = 0;
  usage: UsageTotals = emptyUsage();
  stopped: EvalResult['stopped'];
  estimatedCostUsd: number | undefined;
  readonly #options: EvaluateOptions<S, O>;
  readonly #run: string;
  readonly #store: EvalRunStore;
  readonly #client: ModelClient | undefined;
  readonly #variants: readonly Variant[];
  readonly #skip: ReadonlySet<string>;
  readonly #total: number | undefined;
  readonly #perform: Perform | undefined;
  readonly #concurrency: number;
  readonly #coordinator: BatchCoordinator | undefined;
  readonly #controller = new AbortController();
  readonly #startedAt = performance.now();
  #inFlight = 0;
  #slot: (() => void) | undefined;
  #idle: (() => void) | undefined;

  constructor(
    options: EvaluateOptions<S, O>,
    run: string,
    store: EvalRunStore,
    client: ModelClient | undefined,
    variants: readonly Variant[],
    skip: ReadonlySet<string>,
    total: number | undefined,
    concurrency: number,
    coordinator?: BatchCoordinator,
  ) {
    this.#coordinator = coordinator;
    this.#options = options;
    this.#run = run;
    this.#store = store;
    this.#client = client;
    this.#variants = variants;
    this.#skip = skip;
    this.#total = total;
    this.#concurrency = concurrency;
    this.#perform =
      options.queue === undefined
        ? new Perform({ highWater: concurrency, lowWater: Math.max(1, Math.floor(concurrency / 2)) })
        : undefined;
    options.signal?.addEventListener(
      'abort',
      () => {
        this.#stop('aborted');
      },
      { once: true },
    );
  }

  async run(): Promise<void> {
    this.#report(); // a first progress report (0 done), so a progress bar shows before the first row ends
    const dataset = this.#dataset();
    let piloted = this.#options.maxCostUsd === undefined;
    const pilot: Promise<void>[] = [];
    for await (const item of dataset) {
      if (this.#halted()) break;
      if (!item.ok) {
        await this.#rowError(item);
        continue;
      }
      for (const variant of this.#variants) {
        if (this.#halted()) break;
        if (this.#skip.has(keyOf(variant.name, item.row.id))) {
          this.skipped += 1;
          continue;
        }
        // Backpressure: never more than `concurrency` units in flight, so memory stays flat however big the dataset.
        while (this.#inFlight >= this.#concurrency) {
          await new Promise<void>((resolve) => {
            this.#slot = resolve;
          });
        }
        const unit = this.#unit(item.row, variant);
        if (!piloted) pilot.push(unit);
      }
      if (!piloted) {
        // The pilot: one row per variant, then extrapolate the whole batch's cost before going on.
        await Promise.all(pilot);
        piloted = true;
        this.#estimate();
      }
    }
    while (this.#inFlight > 0) {
      await new Promise<void>((resolve) => {
        this.#idle = resolve;
      });
    }
    if (this.failure !== undefined) throw this.failure;
  }

  #dataset(): AsyncIterable<DatasetItem<z.output<S>>> | Iterable<DatasetItem<z.output<S>>> {
    const { dataset, chain } = this.#options;
    if (typeof dataset === 'string')
      return readDataset(dataset, { schema: chain.inputSchema as z.ZodType<z.output<S>> });
    return datasetFromArray(dataset, chain.inputSchema as z.ZodType<z.output<S>>);
  }

  #estimate(): void {
    const maxCost = this.#options.maxCostUsd;
    if (maxCost === undefined || this.#total === undefined || this.done === 0) return;
    const perUnit = this.usage.costUsd / this.done;
    this.estimatedCostUsd = perUnit * (this.#total + this.skipped);
    if (this.usage.costUsd + perUnit * (this.#total - this.done) > maxCost) this.#stop('estimate');
  }

  async #unit(row: DatasetRow<z.output<S>>, variant: Variant): Promise<void> {
    this.#inFlight += 1;
    const started = performance.now();
    let record: RowRecord;
    try {
      const result = await this.#execute(row, variant);
      record = await this.#scored(row, variant, result, performance.now() - started);
    } catch (error) {
      if (this.stopped === 'aborted' || this.stopped === 'estimate') {
        this.#release();
        return; // cancelled rows are not stored: a resume redoes them
      }
      if (causeIs(error, BudgetExceededError)) this.#stop('budget');
      if (this.stopped === 'budget') {
        this.#release();
        return;
      }
      record = this.#errorRecord(row, variant, error, performance.now() - started);
    }
    if (record.status === 'error' && this.#controller.signal.aborted) {
      // Failed because the batch is stopping (e.g. a scorer saw the abort): not a result; a resume redoes it.
      this.#release();
      return;
    }
    try {
      await this.#store.putRow(record, { replaceErrors: this.#options.retryErrors === true });
    } catch (error) {
      // The store is gone (a database that went away): stop; what was not stored is redone on resume.
      this.#fail(error);
      this.#release();
      return;
    }
    this.#count(record);
    this.#release();
  }

  /** Runs one unit: through the queue when there is one, else as a composition of this process's Perform. */
  async #execute(row: DatasetRow<z.output<S>>, variant: Variant): Promise<ChainResult<O>> {
    const { queue, chain } = this.#options;
    const signal = this.#controller.signal;
    if (queue !== undefined) {
      const job = {
        chain: chain as unknown as Chain<z.ZodType, Record<string, unknown>>,
        input: row.input,
        runId: evalUnitRunId(this.#run, variant.name, row.id),
        model: variant.model,
        overrides: variant.overrides,
      };
      return (await untilAborted(queue.run(job, signal), signal)) as ChainResult<O>;
    }
    const run = chain.compose(row.input as z.input<S>, {
      client: this.#client,
      model: variant.model,
      overrides: variant.overrides,
      signal,
    });
    void this.#perform?.add(run.composition);
    return run.result;
  }

  /** The first store failure, rethrown by {@link Batch.run} once the units in flight have ended. */
  failure: Error | undefined;

  #fail(error: unknown): void {
    this.failure ??= toError(error);
    this.#stop('aborted');
  }

  async #scored(
    row: DatasetRow<z.output<S>>,
    variant: Variant,
    result: ChainResult<O>,
    latencyMs: number,
  ): Promise<RowRecord> {
    const { chain, scorers } = this.#options;
    const last = chain.nodes.at(-1) as string;
    const scores: Record<string, ScoreResult> = {};
    let status: RowStatus = 'pass';
    try {
      for (const scorer of scorers) {
        const node = scorer.node ?? last;
        const score = await scorer.score({
          input: row.input,
          outputs: result.outputs,
          output: result.outputs[node],
          expected: row.expected,
          row,
          signal: this.#controller.signal,
        });
        if (!(typeof score.score === 'number' && score.score >= 0 && score.score <= 1)) {
          throw new SymphonizerError<EvalErrorCode>(
            'invalid_score',
            `Scorer "${scorer.name}" returned ${String(score.score)}, not a number in [0, 1].`,
          );
        }
        scores[scorer.name] = score;
        if (score.score < (scorer.threshold ?? 1)) status = 'fail';
      }
    } catch (error) {
      return this.#errorRecord(row, variant, error, latencyMs, result);
    }
    return {
      run: this.#run,
      variant: variant.name,
      rowId: row.id,
      line: row.line,
      status,
      input: toJson(row.input),
      expected: row.expected === undefined ? undefined : toJson(row.expected),
      outputs: toJson(result.outputs),
      scores,
      usage: result.usage,
      latencyMs,
      attempts: result.trace.length,
      cached: result.usage.calls > 0 && result.cachedCalls === result.usage.calls,
      // Batch mode: the calls that were not cache hits went through a Batch API.
      ...(this.#coordinator !== undefined && result.usage.calls > result.cachedCalls ? { batch: true } : {}),
      finishedAt: Date.now(),
    };
  }

  #errorRecord(
    row: DatasetRow<z.output<S>>,
    variant: Variant,
    error: unknown,
    latencyMs: number,
    result?: ChainResult<O>,
  ): RowRecord {
    const failure = error instanceof ChainRunError ? error : undefined;
    const cause = failure?.cause ?? error;
    const usage = result?.usage ?? failure?.usage ?? emptyUsage();
    const outputs = result?.outputs ?? failure?.outputs;
    return {
      run: this.#run,
      variant: variant.name,
      rowId: row.id,
      line: row.line,
      status: 'error',
      input: toJson(row.input),
      expected: row.expected === undefined ? undefined : toJson(row.expected),
      outputs: outputs === undefined ? undefined : toJson(outputs),
      scores: {},
      usage,
      latencyMs,
      attempts: result?.trace.length ?? failure?.trace.length ?? 0,
      error: {
        code: SymphonizerError.isInstance(cause) ? cause.code : undefined,
        message: errorMessage(cause),
        node: failure?.node,
      },
      cached: false,
      finishedAt: Date.now(),
    };
  }

  async #rowError(item: Extract<DatasetItem, { ok: false }>): Promise<void> {
    this.rowErrors += 1;
    if (isUnreadRowId(item.id)) this.unreadRows += 1;
    for (const variant of this.#variants) {
      if (this.#skip.has(keyOf(variant.name, item.id))) {
        this.skipped += 1;
        continue;
      }
      const record: RowRecord = {
        run: this.#run,
        variant: variant.name,
        rowId: item.id,
        line: item.line,
        status: 'error',
        input: item.raw,
        scores: {},
        usage: emptyUsage(),
        latencyMs: 0,
        attempts: 0,
        error: { code: 'invalid_row', message: `line ${item.line}: ${item.error}` },
        cached: false,
        finishedAt: Date.now(),
      };
      try {
        await this.#store.putRow(record, { replaceErrors: this.#options.retryErrors === true });
      } catch (error) {
        this.#fail(error);
        return;
      }
      this.#count(record);
    }
  }

  #count(record: RowRecord): void {
    this.done += 1;
    if (record.status === 'pass') this.pass += 1;
    else if (record.status === 'fail') this.fail += 1;
    else this.errors += 1;
    this.usage = addUsageTotals(this.usage, record.usage);
    // With a queue the workers' clients spend: the ceiling is checked here, on the usage the units report.
    const maxCost = this.#options.maxCostUsd;
    if (this.#options.queue !== undefined && maxCost !== undefined && this.usage.costUsd >= maxCost)
      this.#stop('budget');
    this.#report();
  }

  /** Reports progress now (batch mode calls it when a batch changes state). */
  report(): void {
    this.#report();
  }

  #report(): void {
    const elapsed = performance.now() - this.#startedAt;
    const rate = elapsed > 0 ? (this.done / elapsed) * 1000 : 0;
    const left = this.#total === undefined ? undefined : Math.max(0, this.#total - this.done);
    const onProgress = this.#options.onProgress;
    if (onProgress === undefined) return;
    callHook(onProgress, {
      run: this.#run,
      done: this.done,
      total: this.#total,
      skipped: this.skipped,
      pass: this.pass,
      fail: this.fail,
      errors: this.errors,
      tokens: this.usage.totalTokens,
      costUsd: this.usage.costUsd,
      rate,
      etaMs: left === undefined || rate === 0 ? undefined : (left / rate) * 1000,
      ...(this.#coordinator === undefined ? {} : { batches: this.#coordinator.batches }),
    });
  }

  #release(): void {
    this.#inFlight -= 1;
    const slot = this.#slot;
    this.#slot = undefined;
    slot?.();
    if (this.#inFlight === 0) {
      const idle = this.#idle;
      this.#idle = undefined;
      idle?.();
    }
  }

  /** A method, not a field read, so TypeScript does not narrow it away across awaits. */
  #halted(): boolean {
    return this.stopped !== undefined;
  }

  #stop(reason: NonNullable<EvalResult['stopped']>): void {
    if (this.stopped !== undefined) return;
    this.stopped = reason;
    this.#controller.abort(
      new SymphonizerError<EvalErrorCode>('batch_stopped', `The batch stopped (${reason}).`),
    );
  }
}

async function countUnits<S extends z.ZodType, O extends Record<string, unknown>>(
  options: EvaluateOptions<S, O>,
  variants: readonly Variant[],
  skip: ReadonlySet<string>,
): Promise<number> {
  let units = 0;
  for await (const item of readDataset(options.dataset as string, { schema: options.chain.inputSchema })) {
    const id = item.ok ? item.row.id : item.id;
    for (const variant of variants) if (!skip.has(keyOf(variant.name, id))) units += 1;
  }
  return units;
}

function without(all: ReadonlySet<string>, remove: ReadonlySet<string>): Set<string> {
  const out = new Set(all);
  for (const key of remove) out.delete(key);
  return out;
}

function checkUnique(option: string, names: readonly string[]): void {
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name))
      throw new InvalidOptionError(option, name, 'unique names', { hint: `"${name}" appears twice` });
    seen.add(name);
  }
}

function causeIs(error: unknown, type: abstract new (...args: never[]) => Error): boolean {
  for (let e: unknown = error, depth = 0; e !== undefined && depth < 5; depth++) {
    if (e instanceof type) return true;
    e = e instanceof Error ? e.cause : undefined;
  }
  return false;
}

function toJson(value: unknown): Json {
  return JSON.parse(JSON.stringify(value ?? null)) as Json;
}
