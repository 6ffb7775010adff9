/**
 * Time bounds of one attempt of a model call: the defaults, and {@link AttemptGuard}, the abort controller
 * with a watchdog timer that the adapters (request timeout, stream idle timeout) and the ModelClient
 * (per-attempt timeout) wrap around a request, so that a hung call ends with a typed, retryable error.
 */
import { InvalidOptionError } from '../core/errors.ts';
import { RequestTimeoutError } from './errors.ts';

/**
 * Default per-attempt request timeout of the OpenAI and Anthropic adapters, in milliseconds: a non-streamed
 * call must be answered in full, and a streamed call must send its headers, within it.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 120_000;

/**
 * Default stream idle timeout of the OpenAI and Anthropic adapters, in milliseconds: the longest wait for the
 * next stream event (the first one counted from the response headers).
 */
export const DEFAULT_STREAM_IDLE_TIMEOUT_MS = 60_000;

/**
 * Checks an optional timeout option: `undefined`, or a positive finite number of milliseconds.
 * @throws {InvalidOptionError} naming the option otherwise.
 */
export function checkTimeout(option: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidOptionError(option, value, 'a positive finite number of milliseconds');
  }
  return value;
}

/**
 * The error of a request that got no (complete) response within the adapter's `timeoutMs`. Retryable.
 * @param secrets - scrubbed from the message.
 */
export function requestTimeout(
  provider: string,
  model: string,
  secrets: readonly string[],
  timeoutMs: number,
): RequestTimeoutError {
  return new RequestTimeoutError({
    provider,
    model,
    secrets,
    message: `No response within ${timeoutMs} ms (the request timeout, timeoutMs).`,
    hint: `raise the provider's timeoutMs if calls of this size legitimately take longer`,
  });
}

/** The error of a stream that sent no event for `idleMs` after `received` events. Retryable. */
export function streamStalled(
  provider: string,
  model: string,
  secrets: readonly string[],
  requestId: string | undefined,
  idleMs: number,
  received: number,
): RequestTimeoutError {
  return new RequestTimeoutError({
    provider,
    model,
    secrets,
    requestId,
    message: `The stream stalled: no event for ${idleMs} ms (the stream idle timeout, streamIdleTimeoutMs) after ${received} event${received === 1 ? '' : 's'}.`,
    hint: 'raise streamIdleTimeoutMs for models that think silently for longer',
  });
}

/** The error of an attempt that passed the ModelClient's per-attempt `timeoutMs`. Retryable. */
export function attemptTimeout(provider: string, model: string, timeoutMs: number): RequestTimeoutError {
  return new RequestTimeoutError({
    provider,
    model,
    message: `The attempt timed out after ${timeoutMs} ms (the per-attempt timeout, timeoutMs / nodeTimeoutMs).`,
    hint: 'the attempt was aborted and is retried per the retry policy; raise the timeout if calls legitimately take longer',
  });
}

/**
 * One attempt's own abort controller, linked to the caller's signal, with one watchdog timer at a time. When
 * the timer fires, the request is aborted (its socket closed) and every {@link AttemptGuard.race} rejects at
 * once with the timer's error, without waiting for the SDK to notice the abort.
 *
 * @example
 * ```ts
 * const guard = new AttemptGuard(request.signal);
 * try {
 *   guard.arm(120_000, () => new RequestTimeoutError({ provider, model }));
 *   const response = await guard.race(sdk.create(body, { signal: guard.signal }));
 * } finally {
 *   guard.dispose();
 * }
 * ```
 */
export class AttemptGuard {
  readonly #controller = new AbortController();
  readonly #caller: AbortSignal | undefined;
  readonly #onCallerAbort: (() => void) | undefined;
  /** Rejects with the timer's error once it fires; never resolves. */
  readonly #fired: Promise<never>;
  #reject!: (error: Error) => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #error: Error | undefined;

  /** @param caller - the caller's signal; aborting it aborts {@link AttemptGuard.signal} with its reason. */
  constructor(caller?: AbortSignal) {
    this.#fired = new Promise<never>((_resolve, reject) => {
      this.#reject = reject;
    });
    this.#fired.catch(noop); // observed by race(); a timer firing between races must not be unhandled
    this.#caller = caller;
    if (caller === undefined) return;
    if (caller.aborted) {
      this.#controller.abort(caller.reason);
      return;
    }
    this.#onCallerAbort = () => {
      this.#controller.abort(caller.reason);
    };
    caller.addEventListener('abort', this.#onCallerAbort, { once: true });
  }

  /** The signal to give the request: aborted by the caller's signal or by the watchdog. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** The watchdog's error once it has fired, else `undefined`. */
  get timedOut(): Error | undefined {
    return this.#error;
  }

  /**
   * Starts (or restarts) the watchdog: after `ms` milliseconds, unless disarmed, the request is aborted and
   * pending and later races reject with `error()`. `undefined` disarms instead.
   */
  arm(ms: number | undefined, error: () => Error): void {
    this.disarm();
    if (ms === undefined || this.#error !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#fire(error());
    }, ms);
  }

  /** Stops the watchdog; a watchdog that already fired stays fired. */
  disarm(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Settles as `promise` does, or rejects with the watchdog's error as soon as it fires (or has fired). */
  race<T>(promise: Promise<T>): Promise<T> {
    promise.catch(noop); // once the watchdog wins, the aborted request's own rejection is of no interest
    return this.#error === undefined ? Promise.race([promise, this.#fired]) : this.#fired;
  }

  /**
   * Yields the items of `source`, each wait for the next item raced against the watchdog (as
   * {@link AttemptGuard.race}). With `idle`, the watchdog is armed for each wait: when the next item takes
   * longer than `idle.ms` to arrive, the request is aborted and the iteration fails with
   * `idle.error(received)` (`received` counts the items so far); only the wait for the source counts, not the
   * time the consumer spends between items. Stopping early returns the source's iterator.
   */
  async *iterate<T>(
    source: AsyncIterable<T>,
    idle?: { readonly ms: number; readonly error: (received: number) => Error },
  ): AsyncGenerator<T, void, undefined> {
    const iterator = source[Symbol.asyncIterator]();
    let received = 0;
    let done = false;
    try {
      for (;;) {
        if (idle !== undefined) this.arm(idle.ms, () => idle.error(received));
        let next: IteratorResult<T>;
        try {
          next = await this.race(iterator.next());
        } finally {
          if (idle !== undefined) this.disarm();
        }
        if (next.done === true) {
          done = true;
          return;
        }
        received += 1;
        yield next.value;
      }
    } finally {
      // After a timeout the source is still waiting on its aborted socket: do not wait for its return().
      if (!done) void Promise.resolve(iterator.return?.()).catch(noop);
    }
  }

  /** Stops the watchdog and unlinks the caller's signal. Call it once the attempt has settled. */
  dispose(): void {
    this.disarm();
    if (this.#onCallerAbort !== undefined) this.#caller?.removeEventListener('abort', this.#onCallerAbort);
  }

  #fire(error: Error): void {
    if (this.#error !== undefined) return;
    this.#error = error;
    this.#controller.abort(error);
    this.#reject(error);
  }
}

function noop(): void {
  // nothing to do
}
