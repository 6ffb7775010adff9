/**
 * The provider spec: one small interface every model backend implements. No SDK is imported here, so the
 * chain and eval layers depend only on these types, and a user can plug in their own backend.
 */

/** A JSON Schema object (draft 2020-12 subset as accepted by OpenAI strict mode and Anthropic tools). */
export type JsonSchema = { readonly [key: string]: unknown };

/**
 * One message of a conversation: `system`, `user`, `assistant` (with the tool calls it made) or `tool` (a
 * tool call's result). A request's main system text goes in {@link ModelRequest.system}; a `system` message
 * in `messages` (e.g. an instruction a chat history carries) is sent in its place where the provider has
 * system turns (OpenAI), and appended to the system text, after {@link ModelRequest.system} and in order,
 * where it has only a system field (Anthropic).
 */
export type ChatMessage =
  | { readonly role: 'system'; readonly content: string }
  | { readonly role: 'user'; readonly content: string }
  | {
      readonly role: 'assistant';
      readonly content: string;
      readonly toolCalls?: readonly ToolCall[] | undefined;
    }
  | {
      readonly role: 'tool';
      readonly toolCallId: string;
      readonly content: string;
      readonly isError?: boolean | undefined;
    };

/** A tool the model may call. `parameters` is the JSON Schema of its arguments object. */
export interface ToolDefinition {
  readonly name: string;
  readonly description?: string | undefined;
  readonly parameters: JsonSchema;
}

/** A tool call the model made. `arguments` is already parsed from the wire JSON. */
export interface ToolCall {
  readonly id: string;
  readonly name: string;
  readonly arguments: unknown;
}

/** Ask the model for JSON matching this schema (structured output). */
export interface JsonOutputSpec {
  /** Name of the schema, `[a-zA-Z0-9_-]{1,64}`; OpenAI and Anthropic both need one. */
  readonly name: string;
  readonly schema: JsonSchema;
  readonly description?: string | undefined;
}

/**
 * Whether a call asks the provider to cache its prompt prefix (prompt caching; it never changes the answer,
 * so it is not part of the response cache's key):
 * - `'auto'`: Anthropic gets a `cache_control: { type: 'ephemeral' }` breakpoint (5-minute cache) at the end
 *   of the system prompt (tools included) when that prefix is estimated (a quarter of its characters) at
 *   least the model's documented minimum cacheable length ({@link anthropicMinCacheTokens}), and a second
 *   one at the end of the conversation before its last turn (the history and few-shot turns) when the prefix
 *   up to there is long enough as well. A prefix too short to be cached gets no breakpoint.
 * - `'system'`: one breakpoint at the end of the system prompt, whatever its length (Anthropic caches
 *   nothing, and charges nothing extra, for a prefix below its minimum).
 * - `false`: no breakpoint.
 *
 * OpenAI caches every prompt of 1024 tokens or more by itself; the request is the same whatever the mode,
 * and cache reads are counted and priced either way. The simulated provider ignores it.
 */
export type PromptCacheMode = 'auto' | 'system' | false;

/** One model call, provider-neutral. */
export interface ModelRequest {
  /** The model id without its provider prefix, e.g. `gpt-4.1-mini`. */
  readonly model: string;
  readonly system?: string | undefined;
  readonly messages: readonly ChatMessage[];
  readonly temperature?: number | undefined;
  /** @default provider-specific (Anthropic requires one: 1024 is used when omitted). */
  readonly maxTokens?: number | undefined;
  readonly stop?: readonly string[] | undefined;
  readonly output?: JsonOutputSpec | undefined;
  readonly tools?: readonly ToolDefinition[] | undefined;
  /** Aborting it aborts the HTTP request or stream. */
  readonly signal?: AbortSignal | undefined;
  /**
   * Longest wait for the next event of a streamed call, in milliseconds; past it the stream is aborted and
   * fails with a retryable `RequestTimeoutError`. Overrides the provider's own setting.
   * @default the provider's `streamIdleTimeoutMs` (60000 for OpenAI and Anthropic)
   */
  readonly streamIdleTimeoutMs?: number | undefined;
  /** Prompt caching (see {@link PromptCacheMode}). @default 'auto' */
  readonly cache?: PromptCacheMode | undefined;
  /** Provider-specific extras, namespaced by provider name: `{ openai: { seed: 1 } }`. */
  readonly providerOptions?: Readonly<Record<string, Readonly<Record<string, unknown>>>> | undefined;
}

/** Why the model stopped. */
export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter' | 'error' | 'other';

/**
 * Token counts of one call. `inputTokens` counts every input token of the call, prompt-cache reads and writes
 * included (so it is what the context held); `cacheReadTokens` and `cacheWriteTokens` say how many of them
 * were read from or written to the provider's prompt cache, and are priced at their own rates. OpenAI reports
 * `prompt_tokens` (cached ones included) and `prompt_tokens_details.cached_tokens` (reads; it has no writes);
 * Anthropic reports `input_tokens` *without* the cached parts, so its adapter adds `cache_read_input_tokens`
 * and `cache_creation_input_tokens` to it.
 */
export interface Usage {
  /** Every input token, cached ones included. */
  readonly inputTokens: number;
  readonly outputTokens: number;
  /** Of `inputTokens`, how many were read from the prompt cache. @default 0 */
  readonly cacheReadTokens?: number | undefined;
  /** Of `inputTokens`, how many were written to the prompt cache (Anthropic only). @default 0 */
  readonly cacheWriteTokens?: number | undefined;
  /**
   * Of `outputTokens`, how many the model spent reasoning before it answered (OpenAI's `reasoning_tokens`,
   * from either API; they are priced as output). @default 0
   */
  readonly reasoningTokens?: number | undefined;
  /**
   * Of `cacheWriteTokens`, how many went to Anthropic's 1-hour cache (priced at its own rate); the rest went
   * to the 5-minute cache, the one this library's breakpoints use. @default 0
   */
  readonly cacheWrite1hTokens?: number | undefined;
}

/** Rate-limit state a provider reported in its response headers, normalised across providers. */
export interface RateLimitInfo {
  readonly limitRequests?: number | undefined;
  readonly remainingRequests?: number | undefined;
  /** Milliseconds until the request budget is fully restored. */
  readonly resetRequestsMs?: number | undefined;
  readonly limitTokens?: number | undefined;
  readonly remainingTokens?: number | undefined;
  /** Milliseconds until the token budget is fully restored. */
  readonly resetTokensMs?: number | undefined;
  /** From `retry-after-ms` or `retry-after` (seconds or HTTP date), in milliseconds. */
  readonly retryAfterMs?: number | undefined;
}

/** The result of one model call. */
export interface ModelResponse {
  /** Provider name as registered, e.g. `openai`. */
  readonly provider: string;
  readonly model: string;
  /** Concatenated text output (for a JSON request: the raw JSON text). */
  readonly text: string;
  /** Parsed JSON when {@link ModelRequest.output} was set and the text parsed; not schema-validated here. */
  readonly json?: unknown;
  readonly toolCalls: readonly ToolCall[];
  readonly finishReason: FinishReason;
  readonly usage: Usage;
  readonly requestId?: string | undefined;
  readonly rateLimit?: RateLimitInfo | undefined;
  /** True when the offline simulated model produced this answer. */
  readonly simulated?: boolean | undefined;
  /** True when a response cache answered (the provider was not called; usage is zero). */
  readonly cached?: boolean | undefined;
}

/** One event of a streamed call. A stream ends with exactly one `finish` event (unless it throws). */
export type StreamEvent =
  | { readonly type: 'text-delta'; readonly text: string }
  | { readonly type: 'tool-call'; readonly toolCall: ToolCall }
  | { readonly type: 'finish'; readonly response: ModelResponse };

/** A model backend. Implementations map transport failures to the `ProviderError` family. */
export interface Provider {
  /** Registry name, e.g. `openai`, `anthropic`, `sim`. */
  readonly name: string;
  complete(request: ModelRequest): Promise<ModelResponse>;
  stream(request: ModelRequest): AsyncIterable<StreamEvent>;
  /**
   * Checks, before anything runs, that a call to `model` (without its provider prefix) could be sent: sends
   * no request, builds no SDK client, imports no SDK. The `symphonizer` command calls it for every model a
   * run will use, so a missing key is reported before the first node starts.
   * @throws {MissingApiKeyError} when the call needs an API key and none is configured.
   */
  preflight?(model: string): void;
}
