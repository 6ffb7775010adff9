/**
 * Beyond one process: `symphonizer/distributed` shares what one process did alone: rate limits through Redis,
 * chain runs through BullMQ workers, evaluation rows in PostgreSQL. Its clients (`ioredis`, `bullmq`, `pg`)
 * are optional peer dependencies, each loaded when first used; importing this entry loads none.
 *
 * @example
 * ```ts
 * import { RedisRateLimiterRegistry } from 'symphonizer/distributed';
 * const limits = new RedisRateLimiterRegistry('redis://127.0.0.1:6379', { limits: { openai: { requestsPerMinute: 500 } } });
 * const client = new ModelClient({ limits });
 * ```
 */
export {
  RedisRateLimiter,
  RedisRateLimiterRegistry,
  type RedisRateLimiterRegistryOptions,
  type RedisRateLimitPermit,
} from './redis-rate-limiter.ts';
export {
  ChainMismatchError,
  MissingPeerDependencyError,
  RunExpiredError,
  RunFailedError,
  UnknownChainError,
  RateLimiterUnavailableError,
  type DistributedErrorCode,
} from './errors.ts';
export type { Connection, RedisConnectionOptions } from './peer.ts';
export {
  DEFAULT_PREFIX,
  DEFAULT_QUEUE,
  startWorker,
  type Chains,
  type StartWorkerOptions,
  type SymphonizerWorker,
} from './worker.ts';
export {
  DistributedPerform,
  type DistributedPerformOptions,
  type DistributedRun,
  type SubmitOptions,
} from './perform.ts';
export type { DistributedRunEvent } from './checkpoint.ts';
export { RemoteError, type SerializedError } from './job.ts';
// The run store every machine of a fleet evaluation reaches: it lives in the eval layer (so `evaluate()` opens a
// postgres:// URL without importing upward) and is offered here beside the workers it goes with.
export { PostgresRunStore, type PostgresRunStoreOptions } from '../eval/postgres-store.ts';
