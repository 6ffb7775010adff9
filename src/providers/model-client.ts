/**
 * The one place a model call is made: {@link ModelClient} holds the policies (retries, repairs, rate limits,
 * usage, budget, events) and runs each attempt through the same pipeline (`attempt.ts`). Retries follow one
 * protocol: an attempt that should be retried throws `TryAgainError`, and the call is re-run after its
 * delay: by the Composition for a node (a `retryTask()` child, so traces show every try), by
 * {@link runRetryTasks} for a standalone call, and by `stream()`'s loop for a standalone stream.
 */
import type { z } from 'zod';
import { InvalidOptionError, TryAgainError } from '../core/errors.ts';
import { NodeRunner, type RunContext } from '../core/node-runner.ts';
import { Attempts, type AttemptInput, type StreamProgress } from './attempt.ts';
import { InFlightBudget } from './budget.ts';
import type {
  AttemptOptions,
  CallOptions,
  CallOutput,
  CallResult,
  CallSpec,
  ModelRunnerOptions,
  StreamOptions,
  StreamRetryEvent,
} from './call.ts';
import { ClientEvents, type CallEventSink } from './call-events.ts';
import { CallRetries } from './call-policy.ts';
import { AbortedError, ProviderError } from './errors.ts';
import { RateLimiterRegistry, type RateLimiterRegistryOptions, type RateLimits } from './rate-limiter.ts';
import { createDefaultRegistry, type ProviderRegistry } from './registry.ts';
import { RetryPolicy, abortableSleep, runRetryTasks, type RetryPolicyOptions } from './retry.ts';
import { checkTimeout } from './timeouts.ts';
import type { StreamEvent } from './types.ts';
import { Budget, PriceTable, UsageMeter, type BudgetOptions } from './usage.ts';

/** Options of a {@link ModelClient}. */
export interface ModelClientOptions {
  /** Where `provider:model` ids are resolved. @default createDefaultRegistry() */
  readonly registry?: ProviderRegistry | undefined;
  /**
   * Rate limits by provider or model, `{ openai: { maxConcurrency: 8, requestsPerMinute: 500 } }`; or a
   * registry of limiters, to share one between clients; or registry options `{ limits, defaults }` (see
   * {@link RateLimiterRegistry.from}). @default unlimited
   */
  readonly limits?:
    Readonly<Record<string, RateLimits>> | RateLimiterRegistry | RateLimiterRegistryOptions | undefined;
  /** Transport retry policy. @default RetryPolicy defaults: 4 retries, 500 ms base, full jitter */
  readonly retry?: RetryPolicy | RetryPolicyOptions | undefined;
  /** Re-asks when the output fails its schema, a budget separate from transport retries. @default 1 */
  readonly repairAttempts?: number | undefined;
  /** Prices for cost accounting. @default PriceTable.default */
  readonly prices?: PriceTable | undefined;
  /** Where usage is recorded; share one meter to total several clients. @default a new UsageMeter */
  readonly meter?: UsageMeter | undefined;
  /**
   * A spending ceiling: calls whose estimate would pass it are refused before they are sent. Calls of this
   * client that are in flight count at their estimate until their real usage is recorded, so many
   * concurrent calls cannot overspend it together. @default none
   */
  readonly budget?: Budget | BudgetOptions | undefined;
  /**
   * Called for the rate-limit waits, retries and finished calls of every call of this client. Must not
   * throw (an error is rethrown on a microtask). A run's own events come with its calls (`onEvent` of
   * {@link CallOptions}), so this is for whoever configured the client. @default none
   */
  readonly onEvent?: CallEventSink | undefined;
  /**
   * Stream idle timeout of every streamed call of this client, in milliseconds: the longest wait for the
   * next stream event; past it the stream is aborted and fails with a retryable `RequestTimeoutError`.
   * @default each provider's own `streamIdleTimeoutMs` (60000 for OpenAI and Anthropic)
   */
  readonly streamIdleTimeoutMs?: number | undefined;
}

/**
 * Makes model calls with retries, rate limits, usage, cost and budget; the building block of prompt and
 * agent nodes.
 *
 * @example
 * ```ts
 * const client = new ModelClient({ limits: { openai: { requestsPerMinute: 500 } } });
 * const { output } = await client.call({ model: 'sim:default', prompt: 'Name a colour', schema: z.object({ colour: z.string() }) });
 * ```
 */
export class ModelClient {
  readonly #registry: ProviderRegistry;
  readonly #limiters: RateLimiterRegistry;
  readonly #policy: RetryPolicy;
  readonly #repairAttempts: number;
  readonly #prices: PriceTable;
  readonly #meter: UsageMeter;
  readonly #budget: Budget | undefined;
  readonly #events: ClientEvents;
  readonly #streamIdleTimeoutMs: number | undefined;
  readonly #attempts: Attempts;

  /** @throws {InvalidOptionError} for a bad option. */
  constructor(options: ModelClientOptions = {}) {
    this.#registry = options.registry ?? createDefaultRegistry();
    this.#limiters = RateLimiterRegistry.from(options.limits);
    this.#policy = RetryPolicy.from(options.retry);
    const repairs = options.repairAttempts ?? 1;
    if (!Number.isSafeInteger(repairs) || repairs < 0) {
      throw new InvalidOptionError('repairAttempts', repairs, 'an integer >= 0');
    }
    this.#repairAttempts = repairs;
    this.#prices = options.prices ?? PriceTable.default;
    this.#meter = options.meter ?? new UsageMeter({ prices: this.#prices });
    this.#budget =
      options.budget === undefined || options.budget instanceof Budget
        ? options.budget
        : new Budget(options.budget);
    if (options.onEvent !== undefined && typeof options.onEvent !== 'function') {
      throw new InvalidOptionError('onEvent', options.onEvent, 'a function');
    }
    this.#events = new ClientEvents(options.onEvent);
    this.#streamIdleTimeoutMs = checkTimeout('streamIdleTimeoutMs', options.streamIdleTimeoutMs);
    this.#attempts = new Attempts({
      registry: this.#registry,
      limiters: this.#limiters,
      policy: this.#policy,
      meter: this.#meter,
      budget: this.#budget,
      inFlight: this.#budget === undefined ? undefined : new InFlightBudget(this.#budget, this.#prices),
      events: this.#events,
    });
  }

  /** Usage and cost of every call made through this client. */
  get usage(): UsageMeter {
    return this.#meter;
  }
  /** The spending ceiling, if any. */
  get budget(): Budget | undefined {
    return this.#budget;
  }
  /** The prices this client counts cost with. */
  get prices(): PriceTable {
    return this.#prices;
  }
  /** The provider registry. */
  get registry(): ProviderRegistry {
    return this.#registry;
  }
  /** The rate limiters, one per provider model. */
  get limiters(): RateLimiterRegistry {
    return this.#limiters;
  }
  /**
   * Most attempts one call may take: 1 + transport retries + re-asks. Give a Composition at least this
   * `maxTries` so it does not stop retrying before the client's own budgets do.
   */
  get maxTries(): number {
    return 1 + this.#policy.maxRetries + this.#repairAttempts;
  }

  /**
   * Makes one call outside any Composition: each retry is a `retryTask()` child of the first attempt's
   * runner, after the policy's delay.
   * @throws {OutputValidationError} when the output still fails its schema after the re-asks.
   * @throws {RetriesExhaustedError} when transport retries ran out (`errors` holds every attempt's error).
   * @throws {ProviderError} for a first non-retryable failure (e.g. 401, 400), unwrapped.
   * @throws {AbortedError} when `signal` aborts it, naming provider and model.
   * @throws {BudgetExceededError} when the call's estimate, with the estimates of this client's calls in
   *   flight, would pass the budget (`spent` then includes those in-flight estimates).
   */
  async call<S extends z.ZodType | undefined = undefined>(
    spec: CallSpec<S>,
    options: CallOptions = {},
  ): Promise<CallResult<CallOutput<S>>> {
    const retries = this.callRetries();
    const timeouts = this.#timeouts(options);
    const { labels, onEvent } = options;
    const runner = new NodeRunner<unknown, CallResult<CallOutput<S>>>({
      executor: (_params, context) =>
        this.#attempt(spec, retries, {
          ...timeouts,
          signal: context.signal,
          attempt: context.attempt,
          labels,
          onEvent,
        }),
    });
    try {
      return await runRetryTasks(runner, options.signal);
    } catch (error) {
      // An abort rejects with the signal's reason as is; report it as a typed error naming provider and model.
      const signal = options.signal;
      if (signal?.aborted === true && error === signal.reason && !(error instanceof ProviderError)) {
        throw this.#aborted(spec.model, signal.reason, retries.errors.at(-1));
      }
      throw error;
    }
  }

  /**
   * A runner for a Composition node: each attempt is one provider call; a retryable failure or an invalid
   * output throws `TryAgainError` (with the policy's delay), so the Composition re-runs the node through
   * `retryTask()` and its trace shows every attempt. `spec` may be a function of the run context, to build the
   * request from the node's inputs.
   */
  runner<S extends z.ZodType | undefined = undefined>(
    spec: CallSpec<S> | ((context: RunContext) => CallSpec<S>),
    options: ModelRunnerOptions = {},
  ): NodeRunner<unknown, CallResult<CallOutput<S>>> {
    const retries = this.callRetries();
    const build = typeof spec === 'function' ? spec : () => spec;
    // The timeout is the attempt's own (not the runner's), so a timed-out attempt is retried like any
    // transient failure instead of failing the Composition.
    const { timeoutMs, streamIdleTimeoutMs } = this.#timeouts({ timeoutMs: options.timeoutMs });
    const { labels, onEvent } = options;
    // Labels that name the node already are the same for every attempt.
    const fixedLabels = labels?.nodeKey === undefined ? undefined : labels;
    return new NodeRunner({
      executor: (_params, context) =>
        this.#run(build(context), retries, {
          signal: context.signal,
          labels: fixedLabels ?? { ...labels, nodeKey: context.node?.key },
          attempt: context.attempt,
          failureNumber: retries.transportFailures + 1,
          timeoutMs,
          streamIdleTimeoutMs,
          feedback: retries.feedback,
          sink: onEvent,
        }),
    });
  }

  /**
   * The retry state of one logical call made with {@link ModelClient.attempt}, one per call: its
   * transport failures, re-asks and errors so far.
   */
  callRetries(): CallRetries {
    return new CallRetries(this.#policy, this.#repairAttempts);
  }

  /**
   * Makes one attempt of a logical call inside a Composition node's executor, for an executor that makes
   * several calls (an agent's loop): resolves with the result, or throws the `TryAgainError` (with the
   * policy's delay) that makes the Composition re-run the node through `retryTask()` (so the trace shows the
   * retry), or the error that ends the call. Pass the same `retries` to every attempt of the call, and a new
   * one for the next call.
   * @throws {TryAgainError} when the call should be retried; its `cause` is the attempt's error.
   * @throws as {@link ModelClient.call} once retrying stops.
   */
  attempt<S extends z.ZodType | undefined = undefined>(
    spec: CallSpec<S>,
    retries: CallRetries,
    options: AttemptOptions,
  ): Promise<CallResult<CallOutput<S>>> {
    return this.#attempt(spec, retries, { ...options, ...this.#timeouts(options) });
  }

  async #attempt<S extends z.ZodType | undefined>(
    spec: CallSpec<S>,
    retries: CallRetries,
    options: AttemptOptions & { readonly streamIdleTimeoutMs: number | undefined },
  ): Promise<CallResult<CallOutput<S>>> {
    return this.#run(spec, retries, {
      signal: options.signal,
      labels: options.labels,
      attempt: options.attempt,
      failureNumber: retries.transportFailures + 1,
      timeoutMs: options.timeoutMs,
      streamIdleTimeoutMs: options.streamIdleTimeoutMs,
      feedback: retries.feedback,
      sink: options.onEvent,
    });
  }

  /** One attempt of a call whose retry state is `retries`, with its input built from that state. */
  async #run<S extends z.ZodType | undefined>(
    spec: CallSpec<S>,
    retries: CallRetries,
    input: AttemptInput,
  ): Promise<CallResult<CallOutput<S>>> {
    retries.started();
    try {
      return await this.#attempts.complete(spec, input);
    } catch (error) {
      const decision = retries.decide(error);
      if (!decision.retry) throw retries.failure(error, decision);
      this.#attempts.retried(spec.model, input.labels, input.sink, {
        error,
        attempt: input.attempt,
        delayMs: decision.delayMs,
        reason: decision.reason,
      });
      throw new TryAgainError(`Retrying: ${decision.reason}.`, { delayMs: decision.delayMs, cause: error });
    }
  }

  /** The {@link AbortedError} of a call to `modelId` that its caller aborted with `reason`. */
  #aborted(modelId: string, reason: unknown, last: unknown): AbortedError {
    if (last instanceof AbortedError && last.cause === reason) return last; // e.g. the rate limiter's
    let names: { provider: string; model: string | undefined };
    try {
      const { provider, model } = this.#registry.resolve(modelId);
      names = { provider: provider.name, model };
    } catch {
      const colon = modelId.indexOf(':');
      names = { provider: colon > 0 ? modelId.slice(0, colon) : '', model: modelId.slice(colon + 1) };
    }
    const requestId = last instanceof ProviderError ? last.requestId : undefined;
    const why = reason instanceof Error && reason.name !== 'AbortError' ? reason.message : '';
    const message = why === '' ? undefined : `The call was aborted: ${why}`;
    return new AbortedError({ ...names, requestId, message, cause: reason });
  }

  /**
   * Streams one call: text deltas as they come, then a `finish` event. Rate limits, budget and usage apply as
   * for {@link ModelClient.call}; a failure before the first event is retried per the policy, a failure after
   * it is not (the caller has already seen part of the answer) unless `retryAfterText` is set: then it is
   * retried too, after a {@link StreamRetryEvent} that tells the consumer to discard what it received. If
   * the stream is aborted or breaks, the usage is still recorded, estimated from what was received (the
   * `call` event says `estimated: true`).
   */
  stream(
    spec: CallSpec,
    options?: StreamOptions & { readonly retryAfterText?: false | undefined },
  ): AsyncGenerator<StreamEvent, void, undefined>;
  stream(
    spec: CallSpec,
    options: StreamOptions,
  ): AsyncGenerator<StreamEvent | StreamRetryEvent, void, undefined>;
  async *stream(
    spec: CallSpec,
    options: StreamOptions = {},
  ): AsyncGenerator<StreamEvent | StreamRetryEvent, void, undefined> {
    const { labels, signal, onEvent } = options;
    const timeouts = this.#timeouts(options);
    const retries = this.callRetries();
    const retryAfterText = options.retryAfterText === true;
    // The TryAgainError protocol, as a Composition follows it, for a stream: each attempt that should be
    // retried throws it, and the next attempt starts after its delay.
    for (let attempt = 1; ; attempt++) {
      const progress: StreamProgress & { reason?: string } = { yielded: false, finished: false };
      const input = { ...timeouts, signal, labels, attempt, failureNumber: attempt, sink: onEvent };
      try {
        yield* this.#streamAttempt(spec, retries, input, retryAfterText, progress);
        return;
      } catch (error) {
        if (!(error instanceof TryAgainError)) throw error;
        const { delayMs } = error;
        if (progress.yielded) {
          yield { type: 'retry', attempt, delayMs, reason: progress.reason ?? '', error: error.cause };
        }
        await abortableSleep(delayMs, signal);
      }
    }
  }

  /**
   * Streams one attempt of a logical call inside a Composition node's executor (a streamed node): yields
   * its events, or throws the `TryAgainError` (with the policy's delay) that makes the Composition re-run
   * the node through `retryTask()`, after a `retry` event that says whether the events yielded so far are
   * void (`discardText`). A failure after events were yielded is retried only with `retryAfterText`, and a
   * failure after `finish` never is. Pass the same `retries` to every attempt of the call.
   * @throws {TryAgainError} when the call should be retried; its `cause` is the attempt's error.
   * @throws the attempt's error, as is, once retrying stops.
   */
  streamAttempt(
    spec: CallSpec,
    retries: CallRetries,
    options: AttemptOptions & { readonly retryAfterText?: boolean | undefined },
  ): AsyncGenerator<StreamEvent, void, undefined> {
    const input: AttemptInput = {
      ...this.#timeouts(options),
      signal: options.signal,
      labels: options.labels,
      attempt: options.attempt,
      failureNumber: retries.transportFailures + 1,
      sink: options.onEvent,
    };
    const progress: StreamProgress = { yielded: false, finished: false };
    return this.#streamAttempt(spec, retries, input, options.retryAfterText === true, progress);
  }

  async *#streamAttempt(
    spec: CallSpec,
    retries: CallRetries,
    input: AttemptInput,
    retryAfterText: boolean,
    progress: StreamProgress & { reason?: string },
  ): AsyncGenerator<StreamEvent, void, undefined> {
    retries.started();
    try {
      yield* this.#attempts.stream(spec, input, progress);
    } catch (error) {
      if (progress.finished || (progress.yielded && !retryAfterText)) throw error;
      const decision = retries.decide(error);
      // A stream's caller sees the attempt's own error when retrying stops (what it streamed came from it).
      if (!decision.retry) throw error;
      const { delayMs, reason } = decision;
      progress.reason = reason;
      this.#attempts.retried(spec.model, input.labels, input.sink, {
        error,
        attempt: input.attempt,
        delayMs,
        reason,
        discardText: progress.yielded,
      });
      throw new TryAgainError(`Retrying: ${reason}.`, { delayMs, cause: error });
    }
  }

  /** The time bounds of each attempt of a call with these options; the call's own win over the client's. */
  #timeouts(options: Pick<CallOptions, 'timeoutMs' | 'streamIdleTimeoutMs'>): {
    readonly timeoutMs: number | undefined;
    readonly streamIdleTimeoutMs: number | undefined;
  } {
    return {
      timeoutMs: checkTimeout('timeoutMs', options.timeoutMs),
      streamIdleTimeoutMs:
        checkTimeout('streamIdleTimeoutMs', options.streamIdleTimeoutMs) ?? this.#streamIdleTimeoutMs,
    };
  }

  /**
   * Adds a listener for the events of every call of this client (in addition to the `onEvent` option);
   * returns a function that removes it. Listeners must not throw (an error is rethrown on a microtask). A
   * run that wants only its own calls' events passes `onEvent` with them instead.
   */
  subscribe(listener: CallEventSink): () => void {
    if (typeof listener !== 'function') throw new InvalidOptionError('listener', listener, 'a function');
    return this.#events.subscribe(listener);
  }
}
