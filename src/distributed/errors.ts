/**
 * Errors of `symphonizer/distributed`: each is a {@link SymphonizerError} with a stable `code`, naming what
 * failed and what to check.
 */
import { SymphonizerError } from '../core/errors.ts';

/** Codes of the errors `symphonizer/distributed` raises. */
export type DistributedErrorCode =
  | 'limiter_unavailable'
  | 'missing_peer_dependency'
  | 'chain_mismatch'
  | 'unknown_chain'
  | 'run_failed'
  | 'run_expired';

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

/**
 * A worker refused a job made for another version of its chain: the content hash of the chain the producer
 * submitted (`expected`) differs from the worker's (`actual`). The job failed without running anything
 * and is not retried.
 */
export class ChainMismatchError extends SymphonizerError<DistributedErrorCode> {
  /** The chain's name (its key in `chains`). */
  readonly chain: string;
  /** The hash the job was submitted with. */
  readonly expected: string;
  /** The worker's hash of its own chain of that name. */
  readonly actual: string;

  constructor(chain: string, expected: string, actual: string) {
    super(
      'chain_mismatch',
      `A worker refused a run of chain "${chain}": it was submitted for definition ${expected.slice(0, 12)}, the worker has ${actual.slice(0, 12)}.`,
      { hint: 'load the same chain module in producers and workers (redeploy the workers or the producer)' },
    );
    this.chain = chain;
    this.expected = expected;
    this.actual = actual;
  }
}

/** A chain name is not a key of the `chains` record (of the producer, or of the worker that took the job). */
export class UnknownChainError extends SymphonizerError<DistributedErrorCode> {
  /** The name asked for. */
  readonly chain: string;
  /** The names known where it was looked up. */
  readonly known: readonly string[];

  constructor(chain: string, known: readonly string[], where: 'producer' | 'worker') {
    super(
      'unknown_chain',
      where === 'producer'
        ? `No chain named "${chain}" in this producer's chains.`
        : `The worker that took the run has no chain named "${chain}".`,
      { hint: `known chains: ${known.length === 0 ? 'none' : known.join(', ')}` },
    );
    this.chain = chain;
    this.known = known;
  }
}

/**
 * A distributed run ended without a chain result for a reason other than the chain: its job failed in the
 * queue (e.g. its worker died more often than `maxStalledCount` allows), or was removed.
 */
export class RunFailedError extends SymphonizerError<DistributedErrorCode> {
  /** The run's id. */
  readonly runId: string;
  /** The queue's reason for the failure. */
  readonly reason: string;

  constructor(runId: string, reason: string) {
    super('run_failed', `Run "${runId}" failed in the queue: ${reason}`, {
      hint: "check the workers' logs; submit with a new runId to run it again",
    });
    this.runId = runId;
    this.reason = reason;
  }
}

/**
 * A run id was submitted before, but its job (and so its result) is no longer in Redis: the retention of
 * finished jobs has passed. The run is not made again, since `submit` never runs one id twice.
 */
export class RunExpiredError extends SymphonizerError<DistributedErrorCode> {
  /** The run's id. */
  readonly runId: string;

  constructor(runId: string) {
    super('run_expired', `Run "${runId}" was submitted before, and its result is no longer kept.`, {
      hint: 'keep results yourself when they are needed longer than the retention, or submit a new runId',
    });
    this.runId = runId;
  }
}
