/**
 * One attempt of a model call, the same for every caller: resolve `provider:model`, build the request,
 * estimate its tokens, check the budget, wait for the rate limiter, send it under the attempt's timeout,
 * then count usage and cost and validate structured output. A streamed attempt does the same around the
 * provider's stream. Retrying is the caller's: an attempt only fails.
 */
import type { z } from 'zod';
import type { CallOutput, CallResult, CallSpec } from './call.ts';
import type { CallEventSink, ClientEvents } from './call-events.ts';
import { defaultOutputTokens, type InFlightBudget } from './budget.ts';
import { AbortedError, ConnectionError } from './errors.ts';
import { SymphonizerError } from '../core/errors.ts';
import { failureRelease, type RateLimiterRegistry, type RateLimitPermit } from './rate-limiter.ts';
import type { ProviderRegistry } from './registry.ts';
import { toModelRequest } from './request.ts';
import { estimateTokens } from './tokens.ts';
import type { RetryPolicy } from './retry.ts';
import { OutputValidationError, parseStructuredOutput } from './structured-output.ts';
import { AttemptGuard, attemptTimeout } from './timeouts.ts';
import type { ChatMessage, ModelRequest, ModelResponse, StreamEvent, Usage } from './types.ts';
import type { Budget, UsageLabels, UsageMeter } from './usage.ts';

/** What a client lends its attempts. */
export interface AttemptDeps {
  readonly registry: ProviderRegistry;
  readonly limiters: RateLimiterRegistry;
  /** For the backoff a 429 without Retry-After pauses the limiter by. */
  readonly policy: RetryPolicy;
  readonly meter: UsageMeter;
  readonly budget: Budget | undefined;
  readonly inFlight: InFlightBudget | undefined;
  readonly events: ClientEvents;
}

/** One attempt's own inputs. */
export interface AttemptInput {
  readonly signal: AbortSignal | undefined;
  readonly labels: UsageLabels | undefined;
  /** The attempt's number, from 1. */
  readonly attempt: number;
  /** Which transport failure of the call a failure of this attempt would be, from 1 (a 429's backoff). */
  readonly failureNumber: number;
  /** Per-attempt timeout; `undefined` leaves the provider's own. */
  readonly timeoutMs: number | undefined;
  readonly streamIdleTimeoutMs: number | undefined;
  /** Re-ask messages after an invalid output. */
  readonly feedback?: readonly ChatMessage[] | undefined;
  /** The call's own event sink. */
  readonly sink: CallEventSink | undefined;
}

/** What a streamed attempt tells its caller about how far it got (read after it threw). */
export interface StreamProgress {
  /** It yielded at least one event. */
  yielded: boolean;
  /** It yielded its `finish` event (usage counted). */
  finished: boolean;
}

/** @internal The attempt pipeline of one client. */
export class Attempts {
  readonly #deps: AttemptDeps;

  constructor(deps: AttemptDeps) {
    this.#deps = deps;
  }

  /**
   * One non-streamed attempt.
   * @throws what the provider, the limiter, the budget or the output validation threw.
   */
  async complete<S extends z.ZodType | undefined>(
    spec: CallSpec<S>,
    input: AttemptInput,
  ): Promise<CallResult<CallOutput<S>>> {
    const { signal, labels } = input;
    const { provider, model } = this.#deps.registry.resolve(spec.model);
    const request = toModelRequest(spec, {
      model,
      feedback: input.feedback,
      signal,
      streamIdleTimeoutMs: input.streamIdleTimeoutMs,
    });
    const estimated = estimateTokens(request, { defaultOutputTokens });
    this.#deps.inFlight?.check(spec.model, request, estimated);
    // Most limiters (none configured) grant at once: no promise, no queue entry.
    const permit =
      (signal?.aborted !== true
        ? this.#deps.limiters.get(provider.name, model).tryAcquire(estimated)
        : undefined) ?? (await this.#acquire(provider.name, model, spec.model, estimated, input));
    let response: ModelResponse;
    let unreserve = noop;
    let unwatch = noop;
    const cancel = { seen: false };
    const attemptMs = input.timeoutMs;
    // Only a per-attempt timeout needs an attempt's own abort controller; without one the request follows
    // the caller's signal as is.
    const guard = attemptMs === undefined ? undefined : new AttemptGuard(signal);
    try {
      // Re-check after the wait (other calls may have spent the budget meanwhile), and hold the estimate
      // against the budget while the request is in flight.
      unreserve = this.#deps.inFlight?.reserve(spec.model, request, estimated) ?? noop;
      // A request cancelled in flight was sent: count its estimate (no output) at the abort itself, so it is
      // in client.usage and in the run's usage before anyone sees the cancel.
      unwatch = onAbort(signal, () => {
        cancel.seen = true;
        this.recordEstimate(spec.model, request, estimated, '', labels, input.sink);
      });
      if (guard === undefined) response = await provider.complete(request);
      else {
        guard.arm(attemptMs, () => attemptTimeout(provider.name, model, attemptMs ?? 0));
        response = await guard.race(provider.complete({ ...request, signal: guard.signal }));
      }
    } catch (error) {
      unreserve();
      permit.release(failureRelease(error, () => this.#deps.policy.backoffMs(input.failureNumber)));
      throw error;
    } finally {
      guard?.dispose();
      unwatch();
    }
    unreserve();
    permit.settle(response);
    if (cancel.seen) {
      // The answer raced the abort; its estimate is already counted and the caller has given up on it.
      throw new AbortedError({
        provider: provider.name,
        model,
        requestId: response.requestId,
        cause: signal?.reason,
      });
    }
    const costUsd = this.record(spec.model, response, labels, input.sink);
    const output = this.#output(spec, response, labels);
    return {
      output,
      text: response.text,
      modelId: spec.model,
      usage: response.usage,
      costUsd,
      attempt: input.attempt,
      simulated: response.simulated === true,
      requestId: response.requestId,
      response,
    };
  }

  /**
   * One streamed attempt: the provider's events as they come, usage counted at `finish` (or estimated
   * from what was received when it breaks or is aborted). `progress` says how far it got.
   * @throws what the provider, the limiter or the budget threw; a `ConnectionError` when the stream ends
   *   without a `finish` event.
   */
  async *stream(
    spec: CallSpec,
    input: AttemptInput,
    progress: StreamProgress,
  ): AsyncGenerator<StreamEvent, void, undefined> {
    const { signal, labels, sink } = input;
    const { provider, model } = this.#deps.registry.resolve(spec.model);
    const request = toModelRequest(spec, {
      model,
      signal,
      streamIdleTimeoutMs: input.streamIdleTimeoutMs,
    });
    const estimated = estimateTokens(request, { defaultOutputTokens });
    this.#deps.inFlight?.check(spec.model, request, estimated);
    const permit = await this.#acquire(provider.name, model, spec.model, estimated, input);
    let received = '';
    let released = false;
    let counted = false;
    // Count what was streamed once: at the abort itself (before anyone sees the cancel), or when it broke.
    const count = (): void => {
      if (counted || progress.finished) return;
      counted = true;
      this.recordEstimate(spec.model, request, estimated, received, labels, sink);
    };
    let unwatch = noop;
    let unreserve = noop;
    // Every attempt has its own guard: its timeout aborts that attempt's request only.
    const guard = new AttemptGuard(signal);
    try {
      // Re-check after the wait, and hold the estimate against the budget while the stream is open.
      unreserve = this.#deps.inFlight?.reserve(spec.model, request, estimated) ?? noop;
      const attemptMs = input.timeoutMs;
      const sent: ModelRequest = { ...request, signal: guard.signal };
      guard.arm(attemptMs, () => attemptTimeout(provider.name, model, attemptMs ?? 0));
      unwatch = onAbort(signal, count);
      const events = attemptMs === undefined ? provider.stream(sent) : guard.iterate(provider.stream(sent));
      for await (const event of events) {
        if (event.type === 'text-delta') received += event.text;
        if (event.type === 'finish') {
          progress.finished = true;
          unreserve();
          permit.settle(event.response);
          this.record(spec.model, event.response, labels, sink);
        }
        progress.yielded = true;
        yield event;
      }
      if (!progress.finished) {
        throw new ConnectionError({
          provider: provider.name,
          model,
          message: 'the stream ended without a finish event',
        });
      }
    } catch (error) {
      guard.dispose();
      unreserve();
      if (!progress.finished) {
        permit.release(failureRelease(error, () => this.#deps.policy.backoffMs(input.failureNumber)));
        released = true;
        if (progress.yielded) count();
      }
      throw error;
    } finally {
      guard.dispose();
      unreserve();
      // The consumer stopped early (break / return): free the slot and count what was streamed.
      if (!progress.finished && !released) {
        permit.release();
        count();
      }
      unwatch();
    }
  }

  /** Reports a retry of a call to the client's listeners and the call's sink. */
  retried(
    modelId: string,
    labels: UsageLabels | undefined,
    sink: CallEventSink | undefined,
    retry: {
      readonly error: unknown;
      readonly attempt: number;
      readonly delayMs: number;
      readonly reason: string;
      readonly discardText?: boolean | undefined;
    },
  ): void {
    const events = this.#deps.events;
    if (!events.wanted(sink)) return;
    events.emit(
      {
        type: 'retry',
        modelId,
        nodeKey: labels?.nodeKey,
        compositionId: labels?.compositionId,
        kind: retry.error instanceof OutputValidationError ? 'repair' : 'transport',
        attempt: retry.attempt,
        delayMs: retry.delayMs,
        reason: retry.reason,
        ...(retry.discardText === true ? { discardText: true as const } : {}),
        errorCode: errorCodeOf(retry.error),
      },
      sink,
    );
  }

  /** Counts a finished call's usage and cost (meter, budget, a `call` event); returns its cost. */
  record(
    modelId: string,
    response: ModelResponse,
    labels: UsageLabels | undefined,
    sink: CallEventSink | undefined,
  ): number | undefined {
    return this.#count(modelId, response.usage, labels, sink, {
      requestId: response.requestId,
      simulated: response.simulated === true,
      estimated: false,
      cached: response.cached === true,
      responseModel: response.model,
      finishReason: response.finishReason,
    });
  }

  /** Counts a call cut short: the request's input estimate, and the output received so far. */
  recordEstimate(
    modelId: string,
    request: ModelRequest,
    estimated: number,
    received: string,
    labels: UsageLabels | undefined,
    sink: CallEventSink | undefined,
  ): void {
    const usage: Usage = {
      inputTokens: Math.max(0, estimated - (request.maxTokens ?? defaultOutputTokens)),
      outputTokens: Math.ceil(received.length / 4),
    };
    this.#count(modelId, usage, labels, sink, {
      requestId: undefined,
      simulated: false,
      estimated: true,
      cached: false,
    });
  }

  #count(
    modelId: string,
    usage: Usage,
    labels: UsageLabels | undefined,
    sink: CallEventSink | undefined,
    what: {
      requestId: string | undefined;
      simulated: boolean;
      estimated: boolean;
      cached: boolean;
      responseModel?: string;
      finishReason?: string;
    },
  ): number | undefined {
    const { costUsd } = this.#deps.meter.record(modelId, usage, labels);
    this.#deps.budget?.record({ ...usage, costUsd });
    const events = this.#deps.events;
    if (events.wanted(sink)) {
      events.emit(
        {
          type: 'call',
          modelId,
          nodeKey: labels?.nodeKey,
          compositionId: labels?.compositionId,
          usage,
          costUsd,
          ...what,
        },
        sink,
      );
    }
    return costUsd;
  }

  #acquire(
    providerName: string,
    model: string,
    modelId: string,
    estimatedTokens: number,
    input: AttemptInput,
  ): Promise<RateLimitPermit> {
    const { labels, sink } = input;
    return this.#deps.limiters.get(providerName, model).acquire({
      estimatedTokens,
      signal: input.signal,
      onWait: (wait) => {
        this.#deps.events.emit(
          {
            type: 'rate-limit-wait',
            modelId,
            nodeKey: labels?.nodeKey,
            compositionId: labels?.compositionId,
            reason: wait.reason,
            delayMs: wait.delayMs,
          },
          sink,
        );
      },
    });
  }

  #output<S extends z.ZodType | undefined>(
    spec: CallSpec<S>,
    response: ModelResponse,
    labels: UsageLabels | undefined,
  ): CallOutput<S> {
    if (spec.schema === undefined) return response.text as CallOutput<S>;
    const parsed = parseStructuredOutput(spec.schema, response.text, response.json);
    if (!parsed.ok) {
      throw new OutputValidationError({
        kind: parsed.kind,
        rawText: response.text,
        issues: parsed.issues,
        modelId: spec.model,
        nodeKey: labels?.nodeKey,
        cause: parsed.cause,
      });
    }
    return parsed.value as CallOutput<S>;
  }
}

/** The `code` of an error (its class name when it has none). */
function errorCodeOf(error: unknown): string {
  if (error instanceof SymphonizerError) return (error as SymphonizerError).code;
  return error instanceof Error ? error.name : 'error';
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
