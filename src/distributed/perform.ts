/**
 * The producer side of distributed runs: {@link DistributedPerform} submits chain runs as BullMQ jobs, once
 * per run id, and hands back each run's typed result (or typed error) when a worker has finished it.
 *
 * How results and events reach the producer: results through BullMQ's queue events (a Redis stream, read
 * from its start when the producer starts, so no completion is missed) and, for a run submitted before, the
 * job itself; `node-done` events (with usage) through Redis pub/sub on `{prefix:queue}:events`, best effort
 * (a producer that is not connected misses them; results are never lost that way).
 */
import type * as BullMQ from 'bullmq';
import type { ChainInput, ChainOutputs } from '../chain/chain.ts';
import type { ChainResult, NodeOverride } from '../chain/types.ts';
import { InvalidOptionError } from '../core/errors.ts';
import { zodIssues } from '../providers/structured-output.ts';
import { InputValidationError } from '../chain/errors.ts';
import type { EvalJob, EvalQueue } from '../eval/queue.ts';
import { loadBullmq } from './bullmq.ts';
import { kvClient, loadFailure, type KvRedis, type DistributedRunEvent } from './checkpoint.ts';
import { RunExpiredError, RunFailedError, UnknownChainError } from './errors.ts';
import { jobIdOf, rebuildError, rebuildResult, runKeys, type ChainJobData, type RunKeys } from './job.ts';
import { redisOptions, type Connection } from './peer.ts';
import { checkChains, DEFAULT_PREFIX, queueName, type Chains } from './worker.ts';

/** Options of {@link DistributedPerform}. */
export interface DistributedPerformOptions<C extends Chains = Chains> {
  /** Where Redis is. */
  readonly connection: Connection;
  /** The BullMQ queue to submit to (no `:`). @default 'symphonizer' */
  readonly queue?: string | undefined;
  /** The chains runs may name, by the same names the workers know them under. */
  readonly chains: C;
  /** Prefix of the run records, checkpoints and events (the workers' `prefix`). @default 'symphonizer' */
  readonly prefix?: string | undefined;
  /**
   * How long a submitted run id is remembered, and a finished run's job (its result or error) kept: within
   * it, submitting the id again never runs it again and gets its result. @default 604800000 (7 days)
   */
  readonly retentionMs?: number | undefined;
  /**
   * Backpressure: most runs of this producer submitted and not yet settled. `submit` waits while that many
   * are, so the jobs this producer keeps in Redis stay bounded however many it has to submit. @default 1000
   */
  readonly maxPending?: number | undefined;
  /**
   * Hears the events of every run of this producer (`node-done` with usage, `run-start` of a retry), through
   * Redis pub/sub: subscribed before the first run is submitted, so none is missed while connected.
   */
  readonly onEvent?: ((event: DistributedRunEvent) => void) | undefined;
}

/** Options of {@link DistributedPerform.submit}. */
export interface SubmitOptions {
  /**
   * The run's id: submitting an id again (from any producer, also after it finished, within `retentionMs`)
   * never makes a second run; it returns the first run. @default a random UUID
   */
  readonly runId?: string | undefined;
  /** Model for every node of the run. */
  readonly model?: string | undefined;
  /** Per-node overrides of the run. */
  readonly overrides?: Readonly<Record<string, NodeOverride>> | undefined;
  /** Hears this run's events (subscribed before the run is submitted). */
  readonly onEvent?: ((event: DistributedRunEvent) => void) | undefined;
}

/** A submitted run. */
export interface DistributedRun<O = Record<string, unknown>> {
  readonly runId: string;
  /** True when the run id had been submitted before: this is that run, not a new one. */
  readonly existing: boolean;
  /**
   * Resolves with the chain's typed result when a worker completed the run; rejects with the typed error:
   * a `ChainRunError` (code, node, outputs, trace, usage; its cause a `RemoteError` with the original's
   * name, code and message), an `InputValidationError`, a `ChainMismatchError`, an `UnknownChainError`, a
   * `RunFailedError` (the job failed in the queue) or a `RunExpiredError` (its result is no longer kept).
   */
  result(): Promise<ChainResult<O>>;
}

interface Pending {
  readonly runId: string;
  readonly promise: Promise<ChainResult<Record<string, unknown>>>;
  readonly resolve: (result: ChainResult<Record<string, unknown>>) => void;
  readonly reject: (error: unknown) => void;
  readonly onEvent: ((event: DistributedRunEvent) => void) | undefined;
  settled: boolean;
  /** A failure is being loaded from Redis (a second failed event is ignored meanwhile). */
  failing: boolean;
}

/** The ioredis subscriber connection of a producer (only what it uses). */
type Subscriber = KvRedis;

/**
 * Submits chain runs to the workers of a queue and waits for their results, as Perform does in one
 * process. It also is an `EvalQueue`: hand it to an evaluation to spread rows × variants over the workers.
 *
 * @example
 * ```ts
 * const perform = new DistributedPerform({ connection: 'redis://127.0.0.1:6379', chains: { report } });
 * const run = await perform.submit('report', { topic: 'tides' }, { runId: 'tides-1' });
 * const { outputs } = await run.result();
 * await perform.close();
 * ```
 */
export class DistributedPerform<C extends Chains = Chains> implements EvalQueue {
  readonly #chains: C;
  readonly #names: string[];
  readonly #keys: RunKeys;
  readonly #retentionMs: number;
  readonly #maxPending: number;
  readonly #onEvent: ((event: DistributedRunEvent) => void) | undefined;
  readonly #queue: BullMQ.Queue<ChainJobData>;
  readonly #events: BullMQ.QueueEvents;
  readonly #Job: typeof BullMQ.Job;
  readonly #ready: Promise<KvRedis>;
  readonly #redis: KvRedis;
  readonly #pending = new Map<string, Pending>();
  readonly #slotWaiters: (() => void)[] = [];
  #idleWaiters: (() => void)[] = [];
  #subscriber: Promise<Subscriber> | undefined;
  #closed = false;
  #submitted = 0;
  #completed = 0;
  #failed = 0;

  /**
   * @throws {InvalidOptionError} for bad options.
   * @throws {MissingPeerDependencyError} when `bullmq` is not installed.
   */
  constructor(options: DistributedPerformOptions<C>) {
    const queue = queueName(options.queue);
    checkChains(options.chains);
    this.#chains = options.chains;
    this.#names = Object.keys(options.chains);
    this.#keys = runKeys(options.prefix ?? DEFAULT_PREFIX, queue);
    this.#retentionMs = positive('retentionMs', options.retentionMs, 604_800_000);
    this.#maxPending = positive('maxPending', options.maxPending, 1000);
    this.#onEvent = options.onEvent;
    const connection = redisOptions(options.connection, { maxRetriesPerRequest: null });
    const { Queue, QueueEvents, Job } = loadBullmq('DistributedPerform');
    this.#Job = Job;
    this.#queue = new Queue<ChainJobData>(queue, { connection });
    // Read from the stream's start: a completion that lands before the first read is not missed.
    this.#events = new QueueEvents(queue, { connection, lastEventId: '0-0' });
    this.#events.on('completed', ({ jobId, returnvalue }) => {
      this.#settle(jobId, true, returnvalue);
    });
    this.#events.on('failed', ({ jobId, failedReason }) => {
      this.#settle(jobId, false, failedReason);
    });
    this.#events.on('error', () => undefined); // BullMQ reconnects; results are read again from the stream
    this.#queue.on('error', () => undefined);
    const redis = kvClient(options.connection, 'DistributedPerform');
    this.#redis = redis;
    const { queue: jobs, events } = { queue: this.#queue, events: this.#events };
    this.#ready = (async () => {
      await Promise.all([jobs.waitUntilReady(), events.waitUntilReady()]);
      return redis;
    })();
    this.#ready.catch(() => undefined);
    if (this.#onEvent !== undefined) this.#subscribe();
  }

  /** Runs submitted through this producer (a run id submitted again counts again). */
  get submitted(): number {
    return this.#submitted;
  }

  /** Runs of this producer that completed. */
  get completed(): number {
    return this.#completed;
  }

  /** Runs of this producer that failed. */
  get failed(): number {
    return this.#failed;
  }

  /** Runs of this producer submitted and not yet settled. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Submits one run of `chain` (its key in `chains`) on `input`. Resolves once the job is in Redis (after
   * waiting for room when `maxPending` runs are pending); the returned run's `result()` settles when a
   * worker finishes it. Idempotent on `runId`.
   * @throws {UnknownChainError} when `chain` is not a key of `chains`.
   * @throws {InputValidationError} when `input` fails the chain's schema (nothing is submitted).
   */
  async submit<K extends keyof C & string>(
    chain: K,
    input: ChainInput<C[K]>,
    options: SubmitOptions = {},
  ): Promise<DistributedRun<ChainOutputs<C[K]>>> {
    if (this.#closed) throw new InvalidOptionError('submit', 'after close()', 'called before close()');
    const found = Object.hasOwn(this.#chains, chain) ? this.#chains[chain] : undefined;
    if (found === undefined) throw new UnknownChainError(chain, this.#names, 'producer');
    const parsed = found.inputSchema.safeParse(input);
    if (!parsed.success) throw new InputValidationError(found.name, zodIssues(parsed.error));
    const runId = options.runId ?? crypto.randomUUID();
    if (typeof runId !== 'string' || runId === '') {
      throw new InvalidOptionError('runId', runId, 'a non-empty string');
    }
    while (this.#pending.size >= this.#maxPending) {
      await new Promise<void>((resolve) => this.#slotWaiters.push(resolve));
    }
    if (options.onEvent !== undefined) this.#subscribe();
    // Listening before the job exists: a connected producer hears every event of its run.
    if (this.#subscriber !== undefined) await this.#subscriber;
    const jobId = jobIdOf(runId);
    const already = this.#pending.get(jobId);
    this.#submitted += 1;
    if (already !== undefined) return this.#run(already, true);
    const pending = this.#track(jobId, runId, options.onEvent);
    try {
      return await this.#enqueue(pending, jobId, chain, found.hash, input, options);
    } catch (error) {
      // Redis refused or is gone: this submit failed, and its run is not left pending.
      this.#finish(jobId, pending, false, error);
      this.#submitted -= 1;
      this.#failed -= 1;
      throw error;
    }
  }

  async #enqueue<O>(
    pending: Pending,
    jobId: string,
    chain: string,
    hash: string,
    input: unknown,
    options: SubmitOptions,
  ): Promise<DistributedRun<O>> {
    const runId = pending.runId;
    const redis = await this.#ready;
    const recordKey = this.#keys.record(runId);
    const record = await redis.get(recordKey);
    if (record !== null) {
      await this.#attach(jobId, runId);
      return this.#run(pending, true);
    }
    const data: ChainJobData = {
      chain,
      hash,
      input,
      runId,
      ...(options.model === undefined ? {} : { model: options.model }),
      ...(options.overrides === undefined ? {} : { overrides: options.overrides }),
    };
    const age = Math.ceil(this.#retentionMs / 1000);
    // Added before the record is written: two producers adding one id meet in BullMQ's job id; a producer
    // that dies in between leaves a job that a second submit finds by its id.
    await this.#queue.add(chain, data, {
      jobId,
      attempts: 1,
      removeOnComplete: { age },
      removeOnFail: { age },
    });
    await redis.set(recordKey, JSON.stringify({ jobId, chain, at: Date.now() }), 'PX', this.#retentionMs);
    // A producer that died between adding the job and writing the record left a job this add did not
    // replace (BullMQ keeps the first job of an id): if that job already ended, its completion event may be
    // behind this producer's event stream, so its outcome is read from the job itself.
    const state = await this.#queue.getJobState(jobId);
    if (state === 'completed' || state === 'failed') {
      await this.#attach(jobId, runId);
      return this.#run(pending, true);
    }
    return this.#run(pending, false);
  }

  /**
   * Runs one evaluation unit on the workers (the `EvalQueue` of `symphonizer/eval`): `job.chain` is found
   * in `chains` by identity, else by name; `job.runId` makes it idempotent. Aborting `signal` stops the
   * wait (the run may still finish in the queue).
   */
  async run(job: EvalJob, signal: AbortSignal): Promise<ChainResult<Record<string, unknown>>> {
    signal.throwIfAborted();
    const entries = Object.entries(this.#chains);
    const key =
      entries.find(([, c]) => c === job.chain)?.[0] ??
      entries.find(([name, c]) => c.name === job.chain.name || name === job.chain.name)?.[0];
    if (key === undefined) throw new UnknownChainError(job.chain.name, this.#names, 'producer');
    const run = await this.submit(key, job.input as ChainInput<C[keyof C & string]>, {
      runId: job.runId,
      model: job.model,
      overrides: job.overrides,
    });
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        reject(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      run.result().then(
        (result) => {
          signal.removeEventListener('abort', onAbort);
          resolve(result);
        },
        (error: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }

  /** Resolves when every run of this producer has settled; at once if none is pending. */
  onIdle(): Promise<void> {
    if (this.#pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Closes the producer's connections. Runs still pending reject with a `RunFailedError` (they go on in the
   * queue: submit their ids again to get their results); call {@link DistributedPerform.onIdle} first to
   * wait for them.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const [jobId, pending] of this.#pending) {
      this.#finish(jobId, pending, false, new RunFailedError(pending.runId, 'the producer was closed first'));
    }
    const subscriber = this.#subscriber;
    await Promise.allSettled([
      this.#events.close(),
      this.#queue.close(),
      subscriber?.then((s) => s.quit()),
      this.#redis.quit(),
    ]);
  }

  #run<O>(pending: Pending, existing: boolean): DistributedRun<O> {
    return {
      runId: pending.runId,
      existing,
      result: () => pending.promise as Promise<ChainResult<O>>,
    };
  }

  #track(jobId: string, runId: string, onEvent: Pending['onEvent']): Pending {
    let resolve!: Pending['resolve'];
    let reject!: Pending['reject'];
    const promise = new Promise<ChainResult<Record<string, unknown>>>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => undefined); // a caller who never asks for the result sees no unhandled rejection
    const pending: Pending = { runId, promise, resolve, reject, onEvent, settled: false, failing: false };
    this.#pending.set(jobId, pending);
    return pending;
  }

  /** A run submitted before: its job's outcome if it has one, a wait for it if not, expired if gone. */
  async #attach(jobId: string, runId: string): Promise<void> {
    const job = await this.#Job.fromId<ChainJobData>(this.#queue, jobId);
    if (job === undefined) {
      const pending = this.#pending.get(jobId);
      if (pending !== undefined) this.#finish(jobId, pending, false, new RunExpiredError(runId));
      return;
    }
    const state = await job.getState();
    if (state === 'completed') this.#settle(jobId, true, job.returnvalue);
    else if (state === 'failed') this.#settle(jobId, false, job.failedReason);
  }

  #settle(jobId: string, ok: boolean, value: unknown): void {
    const pending = this.#pending.get(jobId);
    if (pending === undefined || pending.settled || pending.failing) return;
    if (ok) {
      this.#finish(jobId, pending, true, rebuildResult(value));
      return;
    }
    pending.failing = true;
    void this.#ready
      .then((redis) => loadFailure(redis, this.#keys, pending.runId))
      .catch(() => undefined)
      .then((stored) => {
        const error =
          stored === undefined
            ? new RunFailedError(pending.runId, String(value))
            : rebuildError(pending.runId, stored);
        this.#finish(jobId, pending, false, error);
      });
  }

  #finish(jobId: string, pending: Pending, ok: boolean, value: unknown): void {
    if (pending.settled) return;
    pending.settled = true;
    this.#pending.delete(jobId);
    if (ok) {
      this.#completed += 1;
      pending.resolve(value as ChainResult<Record<string, unknown>>);
    } else {
      this.#failed += 1;
      pending.reject(value);
    }
    this.#slotWaiters.shift()?.();
    if (this.#pending.size === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  #subscribe(): void {
    if (this.#subscriber !== undefined) return;
    this.#subscriber = this.#ready.then(async (redis) => {
      const subscriber = redis.duplicate();
      subscriber.on('error', () => undefined);
      subscriber.on('message', (_channel, message) => {
        this.#dispatch(message);
      });
      await subscriber.subscribe(this.#keys.events);
      return subscriber;
    });
    this.#subscriber.catch(() => undefined);
  }

  #dispatch(message: string): void {
    let event: DistributedRunEvent;
    try {
      event = JSON.parse(message) as DistributedRunEvent;
    } catch {
      return;
    }
    const pending = this.#pending.get(jobIdOf(event.runId));
    if (pending === undefined) return;
    try {
      pending.onEvent?.(event);
      this.#onEvent?.(event);
    } catch {
      // Listeners must not throw; one that does loses only its own event.
    }
  }
}

function positive(option: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) throw new InvalidOptionError(option, value, 'an integer >= 1');
  return value;
}
