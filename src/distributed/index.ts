/**
 * Beyond one process: `symphonizer/distributed` shares what one process did alone through Redis. Its
 * Redis client (`ioredis`, BullMQ's own client) is an optional peer dependency, loaded only when a
 * registry is created; importing this entry loads none.
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
  MissingPeerDependencyError,
  RateLimiterUnavailableError,
  type DistributedErrorCode,
} from './errors.ts';
export type { Connection, RedisConnectionOptions } from './peer.ts';
