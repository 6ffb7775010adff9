/**
 * Workers: processes that take chain runs off a BullMQ queue and run them through one in-process Perform,
 * with their model calls under a shared {@link RedisRateLimiterRegistry}. A job whose chain differs from
 * the worker's (by content hash) is refused; the nodes of each run are checkpointed as they finish, so a job
 * picked up again after its worker died restores them instead of paying for them twice.
 */
import type * as BullMQ from 'bullmq';
import type { z } from 'zod';
import type { Chain } from '../chain/chain.ts';
import { InvalidOptionError } from '../core/errors.ts';
import { Perform } from '../core/perform.ts';
import { ModelClient } from '../providers/model-client.ts';
import { loadBullmq } from './bullmq.ts';
import { publishEvent, restoreNodes, saveFailure, saveNode, kvClient, type KvRedis } from './checkpoint.ts';
import { ChainMismatchError, UnknownChainError } from './errors.ts';
import { runKeys, serializeError, serializeResult, type ChainJobData } from './job.ts';
import { redisOptions, type Connection } from './peer.ts';
import type { RedisRateLimiterRegistry } from './redis-rate-limiter.ts';

/**
 * The chains producers and workers share, by name: the same module is loaded by both, and a job names its
 * chain by its key here.
 */
export type Chains = Readonly<Record<string, Chain<z.ZodType, Record<string, unknown>>>>;

/** The queue used when none is named. */
export const DEFAULT_QUEUE = 'symphonizer';
/** The prefix of the run records, checkpoints and events in Redis when none is given. */
export const DEFAULT_PREFIX = 'symphonizer';

/** Options of {@link startWorker}. */
export interface StartWorkerOptions {
  /** Where Redis is (the queue's, and the checkpoints'). */
  readonly connection: Connection;
  /** The BullMQ queue to take jobs from (no `:`). @default 'symphonizer' */
  readonly queue?: string | undefined;
  /** The chains this worker runs, by the names producers submit them under. */
  readonly chains: Chains;
  /** Runs at once: BullMQ's concurrency and the high water (= low water) of the worker's Perform. @default 16 */
  readonly concurrency?: number | undefined;
  /** The shared rate limits, given to the worker's ModelClient. Give `limits` or `client`, not both. */
  readonly limits?: RedisRateLimiterRegistry | undefined;
  /** The client the runs call models with. @default a ModelClient with `limits`, else each chain's own */
  readonly client?: ModelClient | undefined;
  /** Prefix of the checkpoint and event keys (producers must use the same). @default 'symphonizer' */
  readonly prefix?: string | undefined;
  /**
   * How long a job's lock lasts without renewal (renewed at half of it while the job runs): a worker that
   * dies loses its jobs' locks after this long. @default 30000
   */
  readonly lockDurationMs?: number | undefined;
  /** How often this worker looks for stalled jobs (locks lost by dead workers) to run again. @default 30000 */
  readonly stalledIntervalMs?: number | undefined;
  /** How often a job may stall (its worker die) before it fails instead of running again. @default 2 */
  readonly maxStalledCount?: number | undefined;
  /** How long a run's checkpointed nodes (and its stored failure) are kept in Redis. @default 86400000 (1 day) */
  readonly checkpointTtlMs?: number | undefined;
  /**
   * Called with each run's result once it is computed and its nodes checkpointed, before its job is
   * acknowledged (e.g. to write it elsewhere). If the worker dies in between, the job runs again elsewhere
   * with every node restored: it pays nothing and calls this again with the same outputs.
   */
  readonly beforeAck?: ((runId: string, result: unknown) => void | Promise<void>) | undefined;
  /** Hears errors of the queue connection (they are retried by BullMQ). Must not throw. */
  readonly onError?: ((error: Error) => void) | undefined;
  /**
   * Aborting it before the worker is connected (Redis may be unreachable: the worker waits for it) gives
   * up: the connections are closed and `startWorker` rejects with the signal's reason.
   */
  readonly signal?: AbortSignal | undefined;
}

/** A running worker. */
export interface SymphonizerWorker {
  /** Drains: takes no new job, lets the runs in flight finish, then closes its connections. */
  close(): Promise<void>;
  /** Runs in flight now. */
  readonly running: number;
  /** Runs that completed here. */
  readonly completed: number;
  /** Runs that failed here (a chain error, or a refused job). */
  readonly failed: number;
}

function positiveInteger(option: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) throw new InvalidOptionError(option, value, 'an integer >= 1');
  return value;
}

/** @internal Checks a queue name (BullMQ refuses `:`). */
export function queueName(queue: string | undefined): string {
  if (queue === undefined) return DEFAULT_QUEUE;
  if (typeof queue !== 'string' || queue === '' || queue.includes(':')) {
    throw new InvalidOptionError('queue', queue, 'a non-empty queue name without ":"');
  }
  return queue;
}

/** @internal Checks a chains record. */
export function checkChains(chains: Chains): void {
  if (typeof chains !== 'object' || (chains as unknown) === null || Object.keys(chains).length === 0) {
    throw new InvalidOptionError('chains', chains, 'a record of chains by name, with at least one');
  }
  for (const [name, chain] of Object.entries(chains)) {
    if (typeof (chain as { hash?: unknown } | undefined)?.hash !== 'string') {
      throw new InvalidOptionError(`chains.${name}`, chain, 'a chain built with chain(...).build()');
    }
  }
}

/**
 * Starts a worker on `queue`: it takes jobs (chain runs), runs them through one in-process Perform with
 * `concurrency` at once, stores each run's finished nodes in Redis as they finish, and acknowledges the job
 * with the chain's result (or fails it, not to be retried, with the chain's typed error). A job whose worker
 * died is taken again by another after `lockDurationMs` (checked every `stalledIntervalMs`), with its
 * finished nodes restored. Resolves once the worker is connected.
 *
 * @example
 * ```ts
 * const limits = new RedisRateLimiterRegistry(redis, { limits: { openai: { requestsPerMinute: 500 } } });
 * const worker = await startWorker({ connection: redis, chains: { report }, concurrency: 32, limits });
 * process.once('SIGTERM', () => void worker.close());
 * ```
 * @throws {InvalidOptionError} for bad options (both `limits` and `client`, a queue name with `:`, ...).
 * @throws {MissingPeerDependencyError} when `bullmq` is not installed.
 */
export async function startWorker(options: StartWorkerOptions): Promise<SymphonizerWorker> {
  const queue = queueName(options.queue);
  checkChains(options.chains);
  const concurrency = positiveInteger('concurrency', options.concurrency, 16);
  const lockDuration = positiveInteger('lockDurationMs', options.lockDurationMs, 30_000);
  const stalledInterval = positiveInteger('stalledIntervalMs', options.stalledIntervalMs, 30_000);
  const maxStalledCount = positiveInteger('maxStalledCount', options.maxStalledCount, 2);
  const ttlMs = positiveInteger('checkpointTtlMs', options.checkpointTtlMs, 86_400_000);
  if (options.limits !== undefined && options.client !== undefined) {
    throw new InvalidOptionError('limits', '(a registry)', 'left out when `client` is given', {
      hint: 'give the registry to your client: new ModelClient({ limits })',
    });
  }
  const client =
    options.client ??
    (options.limits === undefined ? undefined : new ModelClient({ limits: options.limits }));
  const chains = options.chains;
  const names = Object.keys(chains);
  const keys = runKeys(options.prefix ?? DEFAULT_PREFIX, queue);
  const connection = redisOptions(options.connection, { maxRetriesPerRequest: null });
  const { Worker, UnrecoverableError } = loadBullmq('startWorker');
  const perform = new Perform({ highWater: concurrency, lowWater: concurrency });
  let running = 0;
  let completed = 0;
  let failed = 0;
  const redis: KvRedis = kvClient(options.connection, 'startWorker');

  const fail = async (runId: string, error: unknown, chain?: string): Promise<never> => {
    failed += 1;
    await saveFailure(redis, keys, ttlMs, runId, serializeError(error, chain));
    throw new UnrecoverableError(error instanceof Error ? error.message : String(error));
  };

  const processor = async (job: BullMQ.Job<ChainJobData>): Promise<unknown> => {
    const data = job.data;
    const runId = data.runId;
    const chain = Object.hasOwn(chains, data.chain) ? chains[data.chain] : undefined;
    if (chain === undefined) return fail(runId, new UnknownChainError(data.chain, names, 'worker'));
    if (chain.hash !== data.hash)
      return fail(runId, new ChainMismatchError(data.chain, data.hash, chain.hash));
    const r = redis;
    // A first try has nothing to restore: the checkpoint is read only when the job was started before.
    const retried = job.attemptsStarted > 1 || job.stalledCounter > 0;
    const restored = retried ? await restoreNodes(r, keys, runId) : {};
    const again = Object.keys(restored);
    if (again.length > 0) {
      void publishEvent(r, keys, { type: 'run-start', runId, restored: again }).catch(() => undefined);
    }
    const saves: Promise<void>[] = [];
    running += 1;
    try {
      let run;
      try {
        run = chain.compose(data.input, {
          client,
          model: data.model,
          overrides: data.overrides,
          checkpoint: {
            restored,
            save: (node, entry) => {
              saves.push(saveNode(r, keys, ttlMs, runId, node, entry));
            },
          },
        });
      } catch (error) {
        return await fail(runId, error, chain.name);
      }
      void perform.add(run.composition);
      let result;
      try {
        result = await run.result;
      } catch (error) {
        await Promise.allSettled(saves);
        return await fail(runId, error, chain.name);
      }
      // Every finished node is in Redis before the job is acknowledged: a crash after this pays nothing again.
      await Promise.all(saves);
      const value = serializeResult(runId, result);
      await options.beforeAck?.(runId, value);
      completed += 1;
      return value;
    } finally {
      running -= 1;
    }
  };

  const worker = new Worker<ChainJobData>(queue, processor, {
    connection,
    concurrency,
    lockDuration,
    stalledInterval,
    maxStalledCount,
    autorun: false,
  });
  worker.on('error', (error) => {
    options.onError?.(error);
  });
  const signal = options.signal;
  if (signal !== undefined) {
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_resolve, reject) => {
      onAbort = () => {
        reject(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await Promise.race([worker.waitUntilReady(), aborted]);
    } catch (error) {
      redis.disconnect();
      await worker.close(true).catch(() => undefined);
      throw error;
    } finally {
      if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
    }
  } else {
    await worker.waitUntilReady();
  }
  worker.run().catch((error: unknown) => {
    options.onError?.(error instanceof Error ? error : new Error(String(error)));
  });
  let closing: Promise<void> | undefined;
  return {
    close: () =>
      (closing ??= (async () => {
        await worker.close();
        await perform.onIdle();
        await redis.quit().catch(() => {
          redis.disconnect();
        });
      })()),
    get running() {
      return running;
    },
    get completed() {
      return completed;
    },
    get failed() {
      return failed;
    },
  };
}
