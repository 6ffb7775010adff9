/**
 * The words of one model call through a `ModelClient`: what is asked ({@link CallSpec}), how
 * ({@link CallOptions}, {@link StreamOptions}, {@link ModelRunnerOptions}), and what comes back
 * ({@link CallResult}, {@link StreamRetryEvent}).
 */
import type { z } from 'zod';
import type { CallEventSink } from './call-events.ts';
import type {
  ChatMessage,
  ModelRequest,
  ModelResponse,
  PromptCacheMode,
  ToolDefinition,
  Usage,
} from './types.ts';
import type { UsageLabels } from './usage.ts';

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
  /** Prompt caching (see {@link PromptCacheMode}). @default 'auto' */
  readonly cache?: PromptCacheMode | undefined;
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
  /** Stream idle timeout of this call, in milliseconds. @default the client's `ModelClientOptions.streamIdleTimeoutMs` */
  readonly streamIdleTimeoutMs?: number | undefined;
  /**
   * Receives this call's own events (rate-limit waits, retries, the finished call), after the client's
   * `onEvent` and subscribers. This is how a run gets its events without filtering everyone else's. Must
   * not throw (an error is rethrown on a microtask). @default none
   */
  readonly onEvent?: CallEventSink | undefined;
}

/** Options of `ModelClient.stream`. */
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
 * Yielded by `ModelClient.stream` with `retryAfterText: true` when an attempt failed after it had
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

/** Options of `ModelClient.runner`. */
export interface ModelRunnerOptions {
  /** Labels for usage accounting; the node key defaults to the running node's key. */
  readonly labels?: UsageLabels | undefined;
  /**
   * Per-attempt timeout, as {@link CallOptions.timeoutMs}: a timed-out attempt fails with a retryable
   * `RequestTimeoutError`, so the Composition retries it through `retryTask()` (the trace shows it).
   * @default none (the provider's own request timeout applies: 120000 for OpenAI and Anthropic)
   */
  readonly timeoutMs?: number | undefined;
  /** Receives the events of this runner's calls, as {@link CallOptions.onEvent}. @default none */
  readonly onEvent?: CallEventSink | undefined;
}

/** Options of `ModelClient.attempt`: one attempt of a logical call made inside a Composition node. */
export interface AttemptOptions extends Pick<
  CallOptions,
  'labels' | 'timeoutMs' | 'streamIdleTimeoutMs' | 'onEvent'
> {
  /** The running node's signal (`context.signal`). */
  readonly signal: AbortSignal;
  /** The running node's attempt (`context.attempt`), from 1: the number the result and events carry. */
  readonly attempt: number;
}
