/**
 * The one retry policy of symphonizer: which provider errors are retried, how long to wait (the server's
 * Retry-After within a cap, else exponential backoff with full jitter), and when to stop (retry budget,
 * deadline). An executor turns its verdict into a `TryAgainError` ({@link tryAgainFor}), which a Composition
 * follows, or {@link runRetryTasks} outside one; {@link retryWithRunners} drives a plain executor on
 * p-retry. Either way every retry is a visible `retryTask()` child runner.
 */
import pRetry from 'p-retry';
import { InvalidOptionError, SymphonizerError, TryAgainError, describe } from '../core/errors.ts';
import type { NodeRunner, RunContext } from '../core/node-runner.ts';
import type { ProviderErrorCode } from './errors.ts';

/** Options of {@link RetryPolicy}. */
export interface RetryPolicyOptions {
  /** Most retries per call (so at most `maxRetries + 1` attempts); an integer >= 0. @default 4 */
  readonly maxRetries?: number | undefined;
  /** Backoff cap of the first retry; the n-th retry's cap is `baseDelayMs * 2 ** (n - 1)`. @default 500 */
  readonly baseDelayMs?: number | undefined;
  /** Largest backoff cap, in milliseconds. @default 30_000 */
  readonly maxDelayMs?: number | undefined;
  /**
   * Longest server-requested wait (`retry-after-ms` / `retry-after`) we honour; a longer request makes us give
   * up rather than hang. @default 60_000
   */
  readonly maxRetryAfterMs?: number | undefined;
  /** Overall deadline for all attempts of one call, in milliseconds from its first attempt. @default none */
  readonly deadlineMs?: number | undefined;
  /** Source of jitter in `[0, 1)`, injectable for tests. @default Math.random */
  readonly random?: (() => number) | undefined;
}

/** Why a {@link RetryPolicy} stopped retrying. */
export type RetryStopReason =
  /** The error is not retryable (4xx other than 408/409/429, a bug, …). */
  | 'not_retryable'
  /** The call was aborted or cancelled; aborts are never retried. */
  | 'aborted'
  /** `maxRetries` retries were already made. */
  | 'max_retries'
  /** Waiting for the next attempt would pass `deadlineMs`. */
  | 'deadline'
  /** The server asked for a wait longer than `maxRetryAfterMs`. */
  | 'retry_after_too_long';

/** A {@link RetryPolicy}'s verdict on one failed attempt. */
export type RetryDecision =
  | {
      readonly retry: true;
      /** Wait this long before the next attempt, in milliseconds. */
      readonly delayMs: number;
      /** Where the delay came from: the server's Retry-After or our backoff. */
      readonly source: 'retry-after' | 'backoff';
      /** Human-readable explanation. */
      readonly reason: string;
    }
  | {
      readonly retry: false;
      /** Machine-readable cause of the stop. */
      readonly stop: RetryStopReason;
      /** Human-readable explanation. */
      readonly reason: string;
    };

/** Statuses that are never retried, even if an error claims otherwise. */
const neverRetriedStatuses: ReadonlySet<number> = new Set([400, 401, 403, 404, 422]);

/** The fields of a `ProviderError` the policy reads; read structurally so any error family can opt in. */
interface RetryFields {
  readonly isRetryable?: unknown;
  readonly retryAfterMs?: unknown;
  readonly status?: unknown;
  readonly code?: unknown;
  readonly name?: unknown;
}

function retryFields(error: unknown): RetryFields {
  return typeof error === 'object' && error !== null ? error : {};
}

/**
 * Decides whether and when a failed model call is retried.
 *
 * Rules, in order: an abort (`code` `'aborted'`/`'cancelled'`, or an `AbortError`) is never retried; nor is
 * status 400, 401, 403, 404 or 422; otherwise only errors with `isRetryable === true` are (the ProviderError
 * family sets it for 408, 409, 429, 5xx incl. 529, connection resets and timeouts; a runner's own
 * `NodeTimeoutError` is not). Then the budget (`maxRetries`), then the wait: the error's `retryAfterMs` when
 * present and ≤ `maxRetryAfterMs` (above it we stop), else `random() * min(maxDelayMs, baseDelayMs * 2 **
 * (attempt - 1))`. Last, the wait must not pass `deadlineMs`.
 *
 * @example
 * ```ts
 * const policy = RetryPolicy.from({ maxRetries: 2 });
 * const decision = policy.shouldRetry(err, 1);
 * if (decision.retry) await sleep(decision.delayMs);
 * ```
 */
export class RetryPolicy {
  /** Most retries per call. */
  readonly maxRetries: number;
  /** Backoff cap of the first retry, in milliseconds. */
  readonly baseDelayMs: number;
  /** Largest backoff cap, in milliseconds. */
  readonly maxDelayMs: number;
  /** Longest honoured server-requested wait, in milliseconds. */
  readonly maxRetryAfterMs: number;
  /** Overall deadline of one call, in milliseconds, or `undefined` for none. */
  readonly deadlineMs: number | undefined;
  readonly #random: () => number;

  /** @throws {@link InvalidOptionError} naming the option, the value and the valid range. */
  constructor(options: RetryPolicyOptions = {}) {
    const maxRetries = options.maxRetries ?? 4;
    if (!Number.isSafeInteger(maxRetries) || maxRetries < 0) {
      throw new InvalidOptionError('maxRetries', maxRetries, 'an integer >= 0');
    }
    this.maxRetries = maxRetries;
    this.baseDelayMs = finiteAtLeast('baseDelayMs', options.baseDelayMs ?? 500, 0);
    this.maxDelayMs = finiteAtLeast('maxDelayMs', options.maxDelayMs ?? 30_000, 0);
    const maxRetryAfterMs = options.maxRetryAfterMs ?? 60_000;
    if (typeof maxRetryAfterMs !== 'number' || Number.isNaN(maxRetryAfterMs) || maxRetryAfterMs < 0) {
      throw new InvalidOptionError('maxRetryAfterMs', maxRetryAfterMs, 'a number >= 0 (Infinity allowed)');
    }
    this.maxRetryAfterMs = maxRetryAfterMs;
    if (options.deadlineMs !== undefined) finiteAtLeast('deadlineMs', options.deadlineMs, Number.MIN_VALUE);
    this.deadlineMs = options.deadlineMs;
    const random = options.random ?? Math.random;
    if (typeof random !== 'function')
      throw new InvalidOptionError('random', random, 'a function returning [0, 1)');
    this.#random = random;
  }

  /** A policy from options, or the same policy when given one. */
  static from(options: RetryPolicyOptions | RetryPolicy = {}): RetryPolicy {
    return options instanceof RetryPolicy ? options : new RetryPolicy(options);
  }

  /**
   * The verdict on a failed attempt.
   *
   * @param error - what the attempt threw.
   * @param attempt - the number of the attempt that failed, from 1.
   * @param elapsedMs - time since the call's first attempt started, for `deadlineMs`. @default 0
   * @throws {@link InvalidOptionError} when `attempt` is not an integer >= 1.
   */
  shouldRetry(error: unknown, attempt: number, elapsedMs = 0): RetryDecision {
    if (!Number.isSafeInteger(attempt) || attempt < 1) {
      throw new InvalidOptionError('attempt', attempt, 'an integer >= 1');
    }
    const fields = retryFields(error);
    const status = typeof fields.status === 'number' ? fields.status : undefined;
    const what = status === undefined ? describeError(error) : `status ${status} (${describeError(error)})`;

    if (fields.code === 'aborted' || fields.code === 'cancelled' || fields.name === 'AbortError') {
      return { retry: false, stop: 'aborted', reason: `the call was aborted: ${describeError(error)}` };
    }
    if (status !== undefined && neverRetriedStatuses.has(status)) {
      return { retry: false, stop: 'not_retryable', reason: `${what} is never retried` };
    }
    if (fields.isRetryable !== true) {
      return { retry: false, stop: 'not_retryable', reason: `${what} is not retryable` };
    }
    if (attempt > this.maxRetries) {
      return {
        retry: false,
        stop: 'max_retries',
        reason: `${what}, and the retry budget of ${this.maxRetries} retries is spent`,
      };
    }

    let delayMs: number;
    let source: 'retry-after' | 'backoff';
    const retryAfter = fields.retryAfterMs;
    if (typeof retryAfter === 'number' && Number.isFinite(retryAfter) && retryAfter >= 0) {
      if (retryAfter > this.maxRetryAfterMs) {
        return {
          retry: false,
          stop: 'retry_after_too_long',
          reason: `${what}: the server asked to wait ${retryAfter} ms, more than maxRetryAfterMs (${this.maxRetryAfterMs} ms)`,
        };
      }
      delayMs = retryAfter;
      source = 'retry-after';
    } else {
      delayMs = this.backoffMs(attempt);
      source = 'backoff';
    }

    if (this.deadlineMs !== undefined && elapsedMs + delayMs > this.deadlineMs) {
      return {
        retry: false,
        stop: 'deadline',
        reason: `${what}, and waiting ${delayMs} ms after ${Math.round(elapsedMs)} ms would pass the ${this.deadlineMs} ms deadline`,
      };
    }
    const why = source === 'retry-after' ? 'as the server asked' : 'backoff';
    return {
      retry: true,
      delayMs,
      source,
      reason: `${what}; retry ${attempt} of ${this.maxRetries} in ${delayMs} ms (${why})`,
    };
  }

  /** The jittered backoff before retry number `attempt`: uniform in `[0, min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1))]`. */
  backoffMs(attempt: number): number {
    const cap = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
    const draw = this.#random();
    const unit = Number.isFinite(draw) ? Math.min(1, Math.max(0, draw)) : 1;
    return Math.round(unit * cap);
  }
}

/** Retries stopped before a call succeeded; `cause` is the last error. */
export class RetriesExhaustedError extends SymphonizerError<ProviderErrorCode> {
  /** Machine-readable cause of the stop. */
  readonly stop: RetryStopReason;
  /** Why retrying stopped, in words (the policy's reason). */
  readonly reason: string;
  /** What every attempt threw, oldest first. */
  readonly errors: readonly unknown[];
  /** What the last attempt threw. */
  readonly lastError: unknown;
  /** Number of attempts made. */
  readonly attempts: number;

  constructor(stop: RetryStopReason, reason: string, errors: readonly unknown[]) {
    const lastError = errors.at(-1);
    super(
      'retries_exhausted',
      `Gave up after ${errors.length} attempt${errors.length === 1 ? '' : 's'} (${stop}): ${reason}. ` +
        `Last error: ${describeError(lastError)}`,
      { cause: lastError },
    );
    this.stop = stop;
    this.reason = reason;
    this.errors = Object.freeze([...errors]);
    this.lastError = lastError;
    this.attempts = errors.length;
  }
}

/** What {@link RetryOptions.onRetry} receives (frozen). */
export interface RetryInfo<P = unknown, R = unknown> {
  /** Number of the attempt that failed, from 1. */
  readonly attempt: number;
  /** Wait before the next attempt, in milliseconds. */
  readonly delayMs: number;
  /** The policy's explanation. */
  readonly reason: string;
  /** What the failed attempt threw. */
  readonly error: unknown;
  /** The runner whose attempt failed. */
  readonly runner: NodeRunner<P, R>;
}

/** Options of {@link retryWithRunners}. */
export interface RetryOptions<P = unknown, R = unknown> {
  /**
   * Aborting it cancels the running attempt (through `execute({ signal })`) or the backoff sleep at once;
   * an abort is never retried. @default none
   */
  readonly signal?: AbortSignal | undefined;
  /** Passed to every attempt's `execute()` (`node`, `inputs`); `signal` and `attempt` are ours. @default {} */
  readonly context?: Readonly<Omit<Partial<RunContext>, 'signal' | 'attempt'>> | undefined;
  /** Called after a failed attempt that will be retried, before the backoff sleep. @default none */
  readonly onRetry?: ((info: RetryInfo<P, R>) => void) | undefined;
  /**
   * Called with each attempt's runner just before it executes (the given runner first, then each
   * `retryTask()` child), so a caller can record the lineage. @default none
   */
  readonly onAttempt?: ((runner: NodeRunner<P, R>) => void) | undefined;
}

/** Wraps what an attempt threw so p-retry never special-cases it (it would refuse to retry a `TypeError`). */
class AttemptFailure extends Error {
  readonly original: unknown;

  constructor(original: unknown) {
    super('attempt failed');
    this.original = original;
  }
}

/**
 * Run a runner, retrying per `policy` on p-retry, each retry on a fresh `runner.retryTask()` child (the
 * lineage: `parentId`, `attempt + 1`). p-retry drives the loop and its budget; its own delay is off
 * (`minTimeout: 0`) and replaced by the policy's decision, slept in `shouldRetry` (so Retry-After is honoured).
 *
 * - Resolves with the first successful result.
 * - A first attempt failing with a non-retryable error rejects with that error, unwrapped; so does an attempt
 *   failing with an abort error (e.g. a provider `AbortedError`), whichever attempt it is.
 * - Otherwise, when the policy stops, rejects with {@link RetriesExhaustedError} (`stop`, `reason`,
 *   `errors`, `lastError`); this includes a later non-retryable error (`stop: 'not_retryable'`).
 * - Aborting `signal` cancels the running attempt (`execute({ signal })`) or the backoff sleep at once and
 *   rejects with `signal.reason`, as p-retry does; an abort is never retried. Every abort listener is removed
 *   once its attempt or sleep settles.
 * - An error thrown by `onRetry` or `onAttempt` stops retrying and rejects with it.
 *
 * @param runner - the first attempt's runner, not yet started.
 * @param policy - a {@link RetryPolicy} or its options.
 * @example
 * ```ts
 * const runners: NodeRunner[] = [];
 * const response = await retryWithRunners(new NodeRunner({ executor: () => provider.complete(request) }), policy, {
 *   onAttempt: (r) => runners.push(r),
 * });
 * ```
 */
export async function retryWithRunners<P, R>(
  runner: NodeRunner<P, R>,
  policy: RetryPolicy | RetryPolicyOptions = {},
  options: RetryOptions<P, R> = {},
): Promise<R> {
  const retryPolicy = RetryPolicy.from(policy);
  const { signal, onRetry, onAttempt } = options;
  const context: Partial<RunContext> = { ...options.context };
  if (signal !== undefined) context.signal = signal;
  const errors: unknown[] = [];
  let current: NodeRunner<P, R> | undefined;
  let decision: RetryDecision | undefined;
  const startedAt = performance.now();

  const attemptOnce = async (): Promise<R> => {
    current = current === undefined ? runner : current.retryTask();
    const attemptRunner = current;
    onAttempt?.(attemptRunner);
    try {
      // The runner links `signal` to its own cancel() and removes that listener when it ends.
      return await attemptRunner.execute(context);
    } catch (error) {
      errors.push(error);
      throw new AttemptFailure(error);
    }
  };

  try {
    return await pRetry(attemptOnce, {
      retries: retryPolicy.maxRetries,
      minTimeout: 0,
      signal,
      onFailedAttempt: ({ attemptNumber }) => {
        decision = retryPolicy.shouldRetry(errors.at(-1), attemptNumber, performance.now() - startedAt);
      },
      shouldRetry: async ({ attemptNumber }) => {
        if (decision?.retry !== true || current === undefined) return false;
        onRetry?.(
          Object.freeze({
            attempt: attemptNumber,
            delayMs: decision.delayMs,
            reason: decision.reason,
            error: errors.at(-1),
            runner: current,
          }),
        );
        await abortableSleep(decision.delayMs, signal);
        return true;
      },
    });
  } catch (error) {
    if (signal?.aborted === true) throw signal.reason;
    if (!(error instanceof AttemptFailure)) throw error; // a hook threw
    if (decision === undefined || decision.retry) {
      // p-retry stopped on its own (its budget matches ours, so this is only a safety net).
      throw new RetriesExhaustedError('max_retries', 'the retry budget is spent', errors);
    }
    // An abort is the caller's decision, whenever it comes: surface it as is, not as exhaustion.
    if (decision.stop === 'aborted' || (decision.stop === 'not_retryable' && errors.length === 1)) {
      throw error.original;
    }
    throw new RetriesExhaustedError(decision.stop, decision.reason, errors);
  }
}

/**
 * The in-Composition path: the `TryAgainError` an executor should throw so its Composition re-runs the node
 * through `retryTask()` after the policy's delay, or `undefined` when the error must not be retried (rethrow
 * it then). The Composition's `maxTries` still bounds the attempts, whichever of it and `maxRetries + 1` is
 * smaller wins.
 *
 * @param attempt - the failed attempt's number (`context.attempt`).
 * @param elapsedMs - time since the first attempt started, for `deadlineMs`. @default 0
 * @example
 * ```ts
 * catch (err) { throw tryAgainFor(err, context.attempt, policy) ?? err; }
 * ```
 */
export function tryAgainFor(
  error: unknown,
  attempt: number,
  policy: RetryPolicy,
  elapsedMs = 0,
): TryAgainError | undefined {
  const decision = policy.shouldRetry(error, attempt, elapsedMs);
  if (!decision.retry) return undefined;
  return new TryAgainError(`Retrying: ${decision.reason}.`, { delayMs: decision.delayMs, cause: error });
}

/**
 * @internal Runs `runner` as a Composition would run its node, outside one: an attempt that throws a
 * `TryAgainError` is re-run as a `retryTask()` child after the error's `delayMs`; anything else settles.
 * p-retry drives the loop (the attempts' own TryAgainError decides whether another follows, so its budget
 * is unbounded and its own delay off); aborting `signal` cancels the running attempt or the wait at once and
 * rejects with `signal.reason`.
 */
export async function runRetryTasks<R>(runner: NodeRunner<unknown, R>, signal?: AbortSignal): Promise<R> {
  const context: Partial<RunContext> = signal === undefined ? {} : { signal };
  let current: NodeRunner<unknown, R> | undefined;
  try {
    return await pRetry(
      async () => {
        current = current === undefined ? runner : current.retryTask();
        try {
          // The runner links `signal` to its own cancel() and removes that listener when it ends.
          return await current.execute(context);
        } catch (error) {
          throw new AttemptFailure(error);
        }
      },
      {
        retries: Number.POSITIVE_INFINITY,
        minTimeout: 0,
        signal,
        shouldRetry: async ({ error }) => {
          const failure = error instanceof AttemptFailure ? error.original : error;
          if (signal?.aborted === true || !(failure instanceof TryAgainError)) return false;
          await abortableSleep(failure.delayMs, signal);
          return true;
        },
      },
    );
  } catch (error) {
    if (signal?.aborted === true) throw signal.reason;
    throw error instanceof AttemptFailure ? error.original : error;
  }
}

/** @internal A sleep that an abort ends at once (rejecting with `signal.reason`); its listener is removed when it settles. */
export function abortableSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
  if (ms <= 0) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function finiteAtLeast(option: string, value: number, min: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new InvalidOptionError(option, value, min === 0 ? 'a finite number >= 0' : 'a finite number > 0');
  }
  return value;
}

function describeError(error: unknown): string {
  if (error instanceof Error) return error.message === '' ? error.name : `${error.name}: ${error.message}`;
  return describe(error);
}
