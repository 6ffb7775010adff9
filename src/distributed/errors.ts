/**
 * Errors of `symphonizer/distributed`: each is a {@link SymphonizerError} with a stable `code`, naming what
 * failed and what to check.
 */
import { SymphonizerError } from '../core/errors.ts';

/** Codes of the errors `symphonizer/distributed` raises. */
export type DistributedErrorCode = 'limiter_unavailable' | 'missing_peer_dependency';

/**
 * The shared rate limiter could not reach Redis for `unavailableTimeoutMs` (or it was closed): the limiter
 * fails closed, so the request was never sent and nothing was charged to the provider.
 *
 * @example
 * ```ts
 * try { await client.call(spec, input); }
 * catch (err) { if (err instanceof RateLimiterUnavailableError) retryLater(); }
 * ```
 */
export class RateLimiterUnavailableError extends SymphonizerError<DistributedErrorCode> {
  /** Provider name, e.g. `openai`. */
  readonly provider: string;
  /** Model id without the provider prefix. */
  readonly model: string;
  /** Where the limiter looked for Redis, without credentials (`127.0.0.1:6379`). */
  readonly redis: string;
  /** How long this caller waited for Redis before giving up, in milliseconds. */
  readonly waitedMs: number;

  constructor(init: {
    readonly provider: string;
    readonly model: string;
    readonly redis: string;
    readonly waitedMs: number;
    readonly closed?: boolean | undefined;
    readonly cause?: unknown;
  }) {
    const key = `${init.provider}:${init.model}`;
    super(
      'limiter_unavailable',
      init.closed === true
        ? `The shared rate limiter of ${key} was closed while this call waited; no request was sent.`
        : `The shared rate limiter of ${key} could not reach Redis at ${init.redis} for ${Math.round(init.waitedMs)} ms; no request was sent.`,
      {
        hint:
          init.closed === true
            ? 'create a new RedisRateLimiterRegistry, or close it only after the calls using it have finished'
            : `check that Redis is running and reachable at ${init.redis} from this machine, or raise unavailableTimeoutMs`,
        cause: init.cause,
      },
    );
    this.provider = init.provider;
    this.model = init.model;
    this.redis = init.redis;
    this.waitedMs = init.waitedMs;
  }
}

/**
 * An optional peer dependency is not installed: the class lives in core, so the eval layer (the PostgreSQL run
 * store) raises the same one.
 */
export { MissingPeerDependencyError } from '../core/errors.ts';
