/**
 * The one place a model call is made: resolve `provider:model`, check the budget, wait for the rate limiter,
 * call the provider, count usage and cost, validate structured output, and retry (transport failures with
 * backoff, invalid output by re-asking) — each attempt a `retryTask()` child runner, so traces show every try.
 */
import type { z } from 'zod';
import { InvalidOptionError, TryAgainError } from '../core/errors.ts';
import { NodeRunner, type Executor, type RunContext } from '../core/node-runner.ts';
import { AbortedError, ConnectionError, ProviderError } from './errors.ts';
import {
  RateLimiterRegistry,
  estimateTokens,
  type RateLimiterRegistryOptions,
  type RateLimits,
} from './rate-limiter.ts';
import { createDefaultRegistry, type ProviderRegistry } from './registry.ts';
import {
  RetriesExhaustedError,
  RetryPolicy,
  abortableSleep,
  retryWithRunners,
  type RetryDecision,
  type RetryPolicyOptions,
} from './retry.ts';
import { AttemptGuard, attemptTimeout, checkTimeout } from './timeouts.ts';
import {
  OutputValidationError,
  parseStructuredOutput,
  repairFeedback,
  toJsonOutputSpec,
} from './structured-output.ts';
import type {
  ChatMessage,
  ModelRequest,
  ModelResponse,
  StreamEvent,
  ToolDefinition,
  Usage,
} from './types.ts';
import {
  Budget,
  BudgetExceededError,
  PriceTable,
  UsageMeter,
  type BudgetOptions,
  type UsageLabels,
} from './usage.ts';

/** A model call, provider-neutral. Give `prompt` (one user message) or `messages`. */
export interface CallSpec<S extends z.ZodType | undefined = z.ZodType | undefined> {
  /** `provider:model`, e.g. `openai:gpt-4.1-mini`, `anthropic:claude-sonnet-4-5`, `sim:default`. */
  readonly model: string;
  readonly system?: string | undefined;
  /** Shorthand for `messages: [{ role: 'user', content: prompt }]`. */
  readonly prompt?: string | undefined;
  readonly messages?: readonly ChatMessage[] | undefined;
  readonly temperature?: number | undefined;
  readonly maxTokens?: number | undefined;
  readonly stop?: readonly string[] | undefined;
  readonly tools?: readonly ToolDefinition[] | undefined;
  /** Ask for JSON matching this zod schema; the result's `output` is then the parsed, validated value. */
  readonly schema?: S;
  /** Name of the schema sent to the provider. @default 'output' */
  readonly schemaName?: string | undefined;
  /** Provider-specific extras, namespaced by provider name. */
  readonly providerOptions?: ModelRequest['providerOptions'];
}

/** What a call's `output` is: the schema's output type, or the text when no schema was given. */
export type CallOutput<S> = S extends z.ZodType ? z.output<S> : string;

/** The result of one successful call. */
export interface CallResult<T = unknown> {
  /** The validated value for a schema call, else the text. */
  readonly output: T;
  readonly text: string;
  readonly modelId: string;
  readonly usage: Usage;
  /** USD, or `undefined` when the model has no price in the table. */
  readonly costUsd: number | undefined;
  /** Which attempt succeeded, from 1 (retries and re-asks count). */
  readonly attempt: number;
  /** True when the offline simulated model answered. */
  readonly simulated: boolean;
  readonly requestId: string | undefined;
  /** The provider's full response (not meant for logs). */
  readonly response: ModelResponse;
}

/** What {@link ModelClientOptions.onEvent} receives. */
export type CallEvent =
  | {
      readonly type: 'rate-limit-wait';
      readonly modelId: string;
      readonly nodeKey: string | undefined;
      /** `labels.compositionId` of the call, to route events of concurrent runs. */
      readonly compositionId: string | undefined;
      readonly reason: string;
      readonly delayMs: number | undefined;
    }
  | {
      readonly type: 'retry';
      readonly modelId: string;
      readonly nodeKey: string | undefined;
      /** `labels.compositionId` of the call, to route events of concurrent runs. */
      readonly compositionId: string | undefined;
      /** `transport` (HTTP/connection failure) or `repair` (invalid output, re-asked). */
      readonly kind: 'transport' | 'repair';
      readonly attempt: number;
      readonly delayMs: number;
      readonly reason: string;
      /**
       * Present and true when the failed attempt was a stream that had already yielded events (see
       * {@link StreamOptions.retryAfterText}): what it streamed is void and the next attempt starts over.
       */
      readonly discardText?: true | undefined;
    }
  | {
      readonly type: 'call';
      readonly modelId: string;
      readonly nodeKey: string | undefined;
      /** `labels.compositionId` of the call, to route events of concurrent runs. */
      readonly compositionId: string | undefined;
      readonly usage: Usage;
      readonly costUsd: number | undefined;
      readonly requestId: string | undefined;
      readonly simulated: boolean;
      /** True when the usage was estimated because the call was cut short (an aborted stream). */
      readonly estimated: boolean;
      /** True when a response cache answered. */
      readonly cached: boolean;
    };

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
  /** Called for rate-limit waits, retries and finished calls. Must not throw. */
  readonly onEvent?: ((event: CallEvent) => void) | undefined;
  /**
   * Stream idle timeout of every streamed call of this client, in milliseconds: the longest wait for the
   * next stream event; past it the stream is aborted and fails with a retryable `RequestTimeoutError`.
   * @default each provider's own `streamIdleTimeoutMs` (60000 for OpenAI and Anthropic)
   */
  readonly streamIdleTimeoutMs?: number | undefined;
}

/** Per-call options. */
export interface CallOptions {
  /** Aborting it cancels the wait, the HTTP request or stream, and any backoff. */
  readonly signal?: AbortSignal | undefined;
  /** Labels for usage accounting (node key, composition id). */
  readonly labels?: UsageLabels | undefined;
  /**
   * Per-attempt timeout in milliseconds, counted from when the request is sent (the wait for the rate
   * limiter is not counted): an attempt still unfinished then is aborted and fails with a retryable
   * `RequestTimeoutError` naming provider and model, retried per the retry policy like any transient
   * failure. For `stream()` it bounds the whole stream of an attempt.
   * @default none (the provider's own request timeout applies: 120000 for OpenAI and Anthropic)
   */
  readonly timeoutMs?: number | undefined;
  /** Stream idle timeout of this call, in milliseconds. @default the client's {@link ModelClientOptions.streamIdleTimeoutMs} */
  readonly streamIdleTimeoutMs?: number | undefined;
}

/** Options of {@link ModelClient.stream}. */
export interface StreamOptions extends CallOptions {
  /**
   * Also retry an attempt that fails after it has yielded events (a drop or a stall mid-stream), per the
   * retry policy like a failure before the first event. The stream then yields a {@link StreamRetryEvent}
   * before the next attempt starts over from its first event: the consumer must discard every event it
   * received since the stream began or since the previous `retry` event (the partial text is not resumed,
   * and the next attempt's text repeats it from the start). Without it, such a failure is thrown, since the
   * caller has already seen part of the answer. A failure after the `finish` event is never retried.
   * @default false
   */
  readonly retryAfterText?: boolean | undefined;
}

/**
 * Yielded by {@link ModelClient.stream} with `retryAfterText: true` when an attempt failed after it had
 * yielded events and is retried: discard what was received since the stream began or the previous `retry`.
 */
export interface StreamRetryEvent {
  readonly type: 'retry';
  /** The failed attempt, from 1. */
  readonly attempt: number;
  /** The backoff before the next attempt starts. */
  readonly delayMs: number;
  readonly reason: string;
  /** Why the attempt failed (e.g. a `ConnectionError` for a dropped connection). */
  readonly error: unknown;
}

/** Options of {@link ModelClient.runner}. */
export interface ModelRunnerOptions {
  /** Labels for usage accounting; the node key defaults to the running node's key. */
  readonly labels?: UsageLabels | undefined;
  /**
   * Per-attempt timeout, as {@link CallOptions.timeoutMs}: a timed-out attempt fails with a retryable
   * `RequestTimeoutError`, so the Composition retries it through `retryTask()` (the trace shows it).
   * @default none (the provider's own request timeout applies: 120000 for OpenAI and Anthropic)
   */
  readonly timeoutMs?: number | undefined;
}

/** Mutable state of one logical call across its attempts (shared by a runner and its retryTask children). */
interface CallState {
  transportFailures: number;
  repairs: number;
  readonly errors: unknown[];
  firstStartedAt: number | undefined;
  feedback: readonly ChatMessage[] | undefined;
}

/** Time bounds of each attempt of one logical call; `undefined` leaves the provider's own. */
interface AttemptTimeouts {
  readonly timeoutMs: number | undefined;
  readonly streamIdleTimeoutMs: number | undefined;
}

const defaultOutputTokens = 1024;

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
  readonly #onEvent: ((event: CallEvent) => void) | undefined;
  readonly #streamIdleTimeoutMs: number | undefined;
  readonly #listeners = new Set<(event: CallEvent) => void>();
  /** Budget estimates of this client's calls that were sent and not yet recorded. */
  readonly #pending = { calls: 0, tokens: 0, usd: 0 };

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
    this.#onEvent = options.onEvent;
    this.#streamIdleTimeoutMs = checkTimeout('streamIdleTimeoutMs', options.streamIdleTimeoutMs);
  }

  /** Usage and cost of every call made through this client. */
  get usage(): UsageMeter {
    return this.#meter;
  }
  /** The spending ceiling, if any. */
  get budget(): Budget | undefined {
    return this.#budget;
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
   * Makes one call outside any Composition, retrying on p-retry through `retryTask()` children.
   * @throws {OutputValidationError} when the output still fails its schema after the re-asks.
   * @throws {RetriesExhaustedError} when transport retries ran out (`errors` holds every attempt's error).
   * @throws {ProviderError} for a first non-retryable failure (e.g. 401, 400), unwrapped.
   * @throws {BudgetExceededError} when the call's estimate, with the estimates of this client's calls in
   *   flight, would pass the budget (`spent` then includes those in-flight estimates).
   */
  async call<S extends z.ZodType | undefined = undefined>(
    spec: CallSpec<S>,
    options: CallOptions = {},
  ): Promise<CallResult<CallOutput<S>>> {
    const state = newState();
    const policy = new CallPolicy(this.#policy, this.#repairAttempts, state);
    const timeouts = this.#timeouts(options);
    const runner = new NodeRunner<unknown, CallResult<CallOutput<S>>>({
      executor: this.#executor(() => spec, options.labels, state, undefined, timeouts),
    });
    try {
      return await retryWithRunners(runner, policy, {
        signal: options.signal,
        onRetry: (info) => {
          this.#emitRetry(spec.model, options.labels, info.error, info.attempt, info.delayMs, info.reason);
        },
      });
    } catch (error) {
      if (error instanceof RetriesExhaustedError && error.lastError instanceof OutputValidationError) {
        throw error.lastError;
      }
      // An abort rejects with the signal's reason as is; report it as a typed error naming provider and model.
      const signal = options.signal;
      if (signal?.aborted === true && error === signal.reason && !(error instanceof ProviderError)) {
        throw this.#aborted(spec.model, signal.reason, state.errors.at(-1));
      }
      throw error;
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
   * A runner for a Composition node: each attempt is one provider call; a retryable failure or an invalid
   * output throws `TryAgainError` (with the policy's delay), so the Composition re-runs the node through
   * `retryTask()` and its trace shows every attempt. `spec` may be a function of the run context, to build the
   * request from the node's inputs.
   */
  runner<S extends z.ZodType | undefined = undefined>(
    spec: CallSpec<S> | ((context: RunContext) => CallSpec<S>),
    options: ModelRunnerOptions = {},
  ): NodeRunner<unknown, CallResult<CallOutput<S>>> {
    const state = newState();
    const policy = new CallPolicy(this.#policy, this.#repairAttempts, state);
    const build = typeof spec === 'function' ? spec : () => spec;
    // The timeout is the attempt's own (not the runner's), so a timed-out attempt is retried like any
    // transient failure instead of failing the Composition.
    const timeouts = this.#timeouts({ timeoutMs: options.timeoutMs });
    return new NodeRunner({ executor: this.#executor(build, options.labels, state, policy, timeouts) });
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
    const { provider, model } = this.#registry.resolve(spec.model);
    const labels = options.labels;
    const timeouts = this.#timeouts(options);
    const startedAt = performance.now();
    for (let failures = 0; ;) {
      const request = this.#request(spec, model, undefined, options.signal, timeouts.streamIdleTimeoutMs);
      const estimated = estimateTokens(request, { defaultOutputTokens });
      this.#checkBudget(spec.model, request, estimated);
      const permit = await this.#limiters.get(provider.name, model).acquire({
        estimatedTokens: estimated,
        signal: options.signal,
        onWait: (wait) => {
          this.#emit({
            type: 'rate-limit-wait',
            modelId: spec.model,
            nodeKey: labels?.nodeKey,
            compositionId: labels?.compositionId,
            reason: wait.reason,
            delayMs: wait.delayMs,
          });
        },
      });
      let received = '';
      let yielded = false;
      let finished = false;
      let released = false;
      let counted = false;
      // Count what was streamed once: at the abort itself (before anyone sees the cancel), or when it broke.
      const count = (): void => {
        if (counted || finished) return;
        counted = true;
        this.#recordEstimate(spec.model, request, estimated, received, labels);
      };
      let unwatch = noop;
      let unreserve = noop;
      // Every attempt has its own guard: its timeout aborts that attempt's request only.
      const guard = new AttemptGuard(options.signal);
      try {
        // Re-check after the wait, and hold the estimate against the budget while the stream is open.
        unreserve = this.#reserveBudget(spec.model, request, estimated);
        const attemptMs = timeouts.timeoutMs;
        const sent: ModelRequest = { ...request, signal: guard.signal };
        guard.arm(attemptMs, () => attemptTimeout(provider.name, model, attemptMs ?? 0));
        unwatch = onAbort(options.signal, count);
        const events = attemptMs === undefined ? provider.stream(sent) : guard.iterate(provider.stream(sent));
        for await (const event of events) {
          if (event.type === 'text-delta') received += event.text;
          if (event.type === 'finish') {
            finished = true;
            unreserve();
            permit.settle(event.response);
            this.#record(spec.model, event.response, labels, false);
          }
          yielded = true;
          yield event;
        }
        if (!finished) {
          throw new ConnectionError({
            provider: provider.name,
            model,
            message: 'the stream ended without a finish event',
          });
        }
        return;
      } catch (error) {
        guard.dispose();
        unreserve();
        if (!finished) {
          permit.release(releaseInfo(error, this.#policy, failures + 1));
          released = true;
          if (yielded) count();
        }
        if (finished || (yielded && options.retryAfterText !== true)) throw error;
        failures += 1;
        const decision = this.#policy.shouldRetry(error, failures, performance.now() - startedAt);
        if (!decision.retry) throw error;
        this.#emitRetry(spec.model, labels, error, failures, decision.delayMs, decision.reason, yielded);
        if (yielded) {
          yield {
            type: 'retry',
            attempt: failures,
            delayMs: decision.delayMs,
            reason: decision.reason,
            error,
          };
        }
        await abortableSleep(decision.delayMs, options.signal);
      } finally {
        guard.dispose();
        unreserve();
        // The consumer stopped early (break / return): free the slot and count what was streamed.
        if (!finished && !released) {
          permit.release();
          count();
        }
        unwatch();
      }
    }
  }

  #executor<S extends z.ZodType | undefined>(
    build: (context: RunContext) => CallSpec<S>,
    labels: UsageLabels | undefined,
    state: CallState,
    policy: CallPolicy | undefined,
    timeouts: AttemptTimeouts,
  ): Executor<unknown, CallResult<CallOutput<S>>> {
    return async (_params, context) => {
      const spec = build(context);
      const nodeKey = labels?.nodeKey ?? context.node?.key;
      const callLabels: UsageLabels = { ...labels, nodeKey };
      state.firstStartedAt ??= performance.now();
      try {
        return await this.#attempt(spec, state, context.signal, callLabels, context.attempt, timeouts);
      } catch (error) {
        state.errors.push(error);
        if (error instanceof OutputValidationError) {
          state.feedback = [
            { role: 'assistant', content: error.rawText },
            { role: 'user', content: repairFeedback(error) },
          ];
        }
        if (policy === undefined) throw error; // standalone: retryWithRunners decides
        const decision = policy.shouldRetry(error, context.attempt, performance.now() - state.firstStartedAt);
        if (decision.retry) {
          this.#emitRetry(spec.model, callLabels, error, context.attempt, decision.delayMs, decision.reason);
          throw new TryAgainError(`Retrying: ${decision.reason}.`, {
            delayMs: decision.delayMs,
            cause: error,
          });
        }
        if (
          decision.stop === 'aborted' ||
          state.errors.length === 1 ||
          error instanceof OutputValidationError
        ) {
          throw error;
        }
        throw new RetriesExhaustedError(decision.stop, decision.reason, state.errors);
      }
    };
  }

  async #attempt<S extends z.ZodType | undefined>(
    spec: CallSpec<S>,
    state: CallState,
    signal: AbortSignal,
    labels: UsageLabels,
    attempt: number,
    timeouts: AttemptTimeouts,
  ): Promise<CallResult<CallOutput<S>>> {
    const { provider, model } = this.#registry.resolve(spec.model);
    const request = this.#request(spec, model, state.feedback, signal, timeouts.streamIdleTimeoutMs);
    const estimated = estimateTokens(request, { defaultOutputTokens });
    this.#checkBudget(spec.model, request, estimated);
    const permit = await this.#limiters.get(provider.name, model).acquire({
      estimatedTokens: estimated,
      signal,
      onWait: (wait) => {
        this.#emit({
          type: 'rate-limit-wait',
          modelId: spec.model,
          nodeKey: labels.nodeKey,
          compositionId: labels.compositionId,
          reason: wait.reason,
          delayMs: wait.delayMs,
        });
      },
    });
    let response: ModelResponse;
    let unreserve = noop;
    let unwatch = noop;
    const cancel = { seen: false };
    const guard = new AttemptGuard(signal);
    try {
      // Re-check after the wait (other calls may have spent the budget meanwhile), and hold the estimate
      // against the budget while the request is in flight.
      unreserve = this.#reserveBudget(spec.model, request, estimated);
      const attemptMs = timeouts.timeoutMs;
      guard.arm(attemptMs, () => attemptTimeout(provider.name, model, attemptMs ?? 0));
      // A request cancelled in flight was sent: count its estimate (no output) at the abort itself, so it is
      // in client.usage and in the run's usage before anyone sees the cancel.
      unwatch = onAbort(signal, () => {
        cancel.seen = true;
        this.#recordEstimate(spec.model, request, estimated, '', labels);
      });
      response = await guard.race(provider.complete({ ...request, signal: guard.signal }));
    } catch (error) {
      unreserve();
      permit.release(releaseInfo(error, this.#policy, state.transportFailures + 1));
      throw error;
    } finally {
      guard.dispose();
      unwatch();
    }
    if (cancel.seen) {
      // The answer raced the abort; its estimate is already counted and the caller has given up on it.
      unreserve();
      permit.settle(response);
      throw new AbortedError({
        provider: provider.name,
        model,
        requestId: response.requestId,
        cause: signal.reason,
      });
    }
    unreserve();
    permit.settle(response);
    const costUsd = this.#record(spec.model, response, labels, false);
    const base = {
      text: response.text,
      modelId: spec.model,
      usage: response.usage,
      costUsd,
      attempt,
      simulated: response.simulated === true,
      requestId: response.requestId,
      response,
    };
    if (spec.schema === undefined) return { ...base, output: response.text as CallOutput<S> };
    const parsed = parseStructuredOutput(spec.schema, response.text, response.json);
    if (!parsed.ok) {
      throw new OutputValidationError({
        kind: parsed.kind,
        rawText: response.text,
        issues: parsed.issues,
        modelId: spec.model,
        nodeKey: labels.nodeKey,
        cause: parsed.cause,
      });
    }
    return { ...base, output: parsed.value as CallOutput<S> };
  }

  #request(
    spec: CallSpec,
    model: string,
    feedback: readonly ChatMessage[] | undefined,
    signal: AbortSignal | undefined,
    streamIdleTimeoutMs: number | undefined,
  ): ModelRequest {
    let messages: readonly ChatMessage[];
    if (spec.messages !== undefined) messages = spec.messages;
    else if (typeof spec.prompt === 'string') messages = [{ role: 'user', content: spec.prompt }];
    else
      throw new InvalidOptionError('prompt', spec.prompt, 'a string, or give `messages`', {
        hint: `in the call to ${spec.model}`,
      });
    if (feedback !== undefined) messages = [...messages, ...feedback];
    return {
      model,
      system: spec.system,
      messages,
      temperature: spec.temperature,
      maxTokens: spec.maxTokens,
      stop: spec.stop,
      tools: spec.tools,
      output: spec.schema === undefined ? undefined : toJsonOutputSpec(spec.schema, spec.schemaName),
      signal,
      streamIdleTimeoutMs,
      providerOptions: spec.providerOptions,
    };
  }

  /** The time bounds of each attempt of a call with these options; the call's own win over the client's. */
  #timeouts(options: Pick<CallOptions, 'timeoutMs' | 'streamIdleTimeoutMs'>): AttemptTimeouts {
    return {
      timeoutMs: checkTimeout('timeoutMs', options.timeoutMs),
      streamIdleTimeoutMs:
        checkTimeout('streamIdleTimeoutMs', options.streamIdleTimeoutMs) ?? this.#streamIdleTimeoutMs,
    };
  }

  /**
   * Refuse a call whose estimate, with the estimates of this client's calls in flight, would pass the budget.
   * @returns the call's estimate in tokens and USD, or `undefined` without a budget.
   */
  #checkBudget(
    modelId: string,
    request: ModelRequest,
    estimated: number,
  ): { readonly tokens: number; readonly usd: number } | undefined {
    const budget = this.#budget;
    if (budget === undefined) return undefined;
    const outputTokens = request.maxTokens ?? defaultOutputTokens;
    const usd =
      this.#prices.costOf(modelId, { inputTokens: Math.max(0, estimated - outputTokens), outputTokens })
        .costUsd ?? 0;
    const pending = this.#pending;
    try {
      budget.check({ tokens: estimated + pending.tokens, costUsd: usd + pending.usd });
    } catch (error) {
      if (!(error instanceof BudgetExceededError) || pending.calls === 0) throw error;
      // Report this call's own estimate; what is in flight counts as spent.
      const tokens = error.kind === 'tokens';
      throw new BudgetExceededError(
        error.kind,
        error.limit,
        error.spent + (tokens ? pending.tokens : pending.usd),
        tokens ? estimated : usd,
      );
    }
    return { tokens: estimated, usd };
  }

  /** {@link ModelClient.#checkBudget}, then hold the estimate until the returned function is called. */
  #reserveBudget(modelId: string, request: ModelRequest, estimated: number): () => void {
    const estimate = this.#checkBudget(modelId, request, estimated);
    if (estimate === undefined) return noop;
    const pending = this.#pending;
    pending.calls += 1;
    pending.tokens += estimate.tokens;
    pending.usd += estimate.usd;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      pending.calls -= 1;
      pending.tokens -= estimate.tokens;
      pending.usd -= estimate.usd;
      if (pending.calls === 0) {
        // No float residue once nothing is in flight.
        pending.tokens = 0;
        pending.usd = 0;
      }
    };
  }

  #record(
    modelId: string,
    response: ModelResponse,
    labels: UsageLabels | undefined,
    estimated: boolean,
  ): number | undefined {
    const { costUsd } = this.#meter.record(modelId, response.usage, labels);
    this.#budget?.record({ ...response.usage, costUsd });
    this.#emit({
      type: 'call',
      modelId,
      nodeKey: labels?.nodeKey,
      compositionId: labels?.compositionId,
      usage: response.usage,
      costUsd,
      requestId: response.requestId,
      simulated: response.simulated === true,
      estimated,
      cached: response.cached === true,
    });
    return costUsd;
  }

  #recordEstimate(
    modelId: string,
    request: ModelRequest,
    estimated: number,
    received: string,
    labels: UsageLabels | undefined,
  ): void {
    const usage: Usage = {
      inputTokens: Math.max(0, estimated - (request.maxTokens ?? defaultOutputTokens)),
      outputTokens: Math.ceil(received.length / 4),
    };
    const { costUsd } = this.#meter.record(modelId, usage, labels);
    this.#budget?.record({ ...usage, costUsd });
    this.#emit({
      type: 'call',
      modelId,
      nodeKey: labels?.nodeKey,
      compositionId: labels?.compositionId,
      usage,
      costUsd,
      requestId: undefined,
      simulated: false,
      estimated: true,
      cached: false,
    });
  }

  #emitRetry(
    modelId: string,
    labels: UsageLabels | undefined,
    error: unknown,
    attempt: number,
    delayMs: number,
    reason: string,
    discardText = false,
  ): void {
    const kind = error instanceof OutputValidationError ? 'repair' : 'transport';
    this.#emit({
      type: 'retry',
      modelId,
      nodeKey: labels?.nodeKey,
      compositionId: labels?.compositionId,
      kind,
      attempt,
      delayMs,
      reason,
      ...(discardText ? { discardText: true as const } : {}),
    });
  }

  /**
   * Adds a listener for this client's events (in addition to the `onEvent` option); returns a function that
   * removes it. Listeners must not throw (an error is rethrown on a microtask).
   */
  subscribe(listener: (event: CallEvent) => void): () => void {
    if (typeof listener !== 'function') throw new InvalidOptionError('listener', listener, 'a function');
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  #emit(event: CallEvent): void {
    if (this.#onEvent === undefined && this.#listeners.size === 0) return;
    const frozen = Object.freeze(event);
    for (const listener of this.#onEvent === undefined
      ? this.#listeners
      : [this.#onEvent, ...this.#listeners]) {
      try {
        listener(frozen);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}

/**
 * The retry policy of one logical call: transport failures go to the base policy with their own count;
 * invalid outputs are re-asked (no delay) from a separate budget.
 */
class CallPolicy extends RetryPolicy {
  readonly #base: RetryPolicy;
  readonly #repairAttempts: number;
  readonly #state: CallState;

  constructor(base: RetryPolicy, repairAttempts: number, state: CallState) {
    super({
      maxRetries: base.maxRetries + repairAttempts,
      baseDelayMs: base.baseDelayMs,
      maxDelayMs: base.maxDelayMs,
      maxRetryAfterMs: base.maxRetryAfterMs,
      deadlineMs: base.deadlineMs,
    });
    this.#base = base;
    this.#repairAttempts = repairAttempts;
    this.#state = state;
  }

  override shouldRetry(error: unknown, _attempt: number, elapsedMs = 0): RetryDecision {
    const state = this.#state;
    if (error instanceof OutputValidationError) {
      if (state.repairs >= this.#repairAttempts) {
        return {
          retry: false,
          stop: 'not_retryable',
          reason: `the output failed validation and the repair budget of ${this.#repairAttempts} re-asks is spent`,
        };
      }
      state.repairs += 1;
      return {
        retry: true,
        delayMs: 0,
        source: 'backoff',
        reason: `the output failed validation (${error.kind}); re-ask ${state.repairs} of ${this.#repairAttempts}`,
      };
    }
    state.transportFailures += 1;
    return this.#base.shouldRetry(error, state.transportFailures, elapsedMs);
  }
}

function noop(): void {
  // nothing to undo
}

/** Calls `listener` once if `signal` aborts; returns a function that stops watching. */
function onAbort(signal: AbortSignal | undefined, listener: () => void): () => void {
  if (signal === undefined || signal.aborted) return noop;
  signal.addEventListener('abort', listener, { once: true });
  return () => {
    signal.removeEventListener('abort', listener);
  };
}

function newState(): CallState {
  return { transportFailures: 0, repairs: 0, errors: [], firstStartedAt: undefined, feedback: undefined };
}

/** How to release a permit after a failure: a 429 or 529 pauses every waiter of the limiter. */
function releaseInfo(
  error: unknown,
  policy: RetryPolicy,
  failure: number,
): { backoffMs?: number; rateLimit?: ModelResponse['rateLimit'] } {
  const fields = (typeof error === 'object' && error !== null ? error : {}) as {
    status?: unknown;
    code?: unknown;
    retryAfterMs?: unknown;
    rateLimit?: ModelResponse['rateLimit'];
  };
  const info: { backoffMs?: number; rateLimit?: ModelResponse['rateLimit'] } = {};
  if (fields.rateLimit !== undefined) info.rateLimit = fields.rateLimit;
  // An error event inside a stream has no status; its code says it was a rate limit or an overload.
  if (
    fields.status === 429 ||
    fields.status === 529 ||
    fields.code === 'rate_limit_error' ||
    fields.code === 'overloaded_error'
  ) {
    info.backoffMs =
      typeof fields.retryAfterMs === 'number' ? fields.retryAfterMs : policy.backoffMs(failure);
  }
  return info;
}
