/**
 * The OpenAI adapter: Chat Completions through the official `openai` SDK, with SDK retries off (our retry
 * policy owns retries), structured output via `response_format: json_schema`, function tools, streaming with
 * usage, request ids and rate-limit headers. Works unchanged with OpenAI-compatible servers (Ollama, vLLM,
 * LM Studio, llama.cpp) through `baseURL`.
 */
import OpenAI from 'openai';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionCreateParamsStreaming,
} from 'openai/resources/chat/completions';
import { AbortedError, ConnectionError } from '../errors.ts';
import { buildBody, mapFinishReason, parseArguments, providerExtras } from './chat-wire.ts';
import { parseRateLimitHeaders } from '../rate-limit-headers.ts';
import {
  AttemptGuard,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_STREAM_IDLE_TIMEOUT_MS,
  requestTimeout,
  streamStalled,
} from '../timeouts.ts';
import type {
  FinishReason,
  ModelRequest,
  ModelResponse,
  Provider,
  RateLimitInfo,
  StreamEvent,
  ToolCall,
  Usage,
} from '../types.ts';
import { resolveOpenAIAccess, type OpenAIProviderSettings } from './openai-provider.ts';
import { mapOpenAIError } from './map-openai-error.ts';

/** Sent when a non-OpenAI server needs no key: the SDK insists on one, and such servers ignore it. */
const PLACEHOLDER_API_KEY = 'no-key-required';

/** An SDK client and what every call of the provider needs with it. Package-internal. */
export interface ResolvedClient {
  readonly client: OpenAI;
  readonly secrets: readonly string[];
  readonly maxTokensField: 'max_completion_tokens' | 'max_tokens';
  readonly timeoutMs: number;
  readonly streamIdleTimeoutMs: number;
}

/** The adapter itself; loaded by {@link createOpenAIProvider} on the first call, with its SDK. */
export class OpenAIProvider implements Provider {
  readonly name: string;
  readonly #settings: OpenAIProviderSettings;
  // Built once, at the first call that finds a key; never rebuilt, so the key is read at most once.
  #resolved: ResolvedClient | undefined;

  constructor(settings: OpenAIProviderSettings) {
    this.name = settings.name ?? 'openai';
    this.#settings = settings;
  }

  async complete(request: ModelRequest): Promise<ModelResponse> {
    const { client, secrets, maxTokensField, timeoutMs } = this.#resolve();
    const context = { provider: this.name, model: request.model, secrets, signal: request.signal };
    if (isAborted(request.signal)) throw new AbortedError({ provider: this.name, model: request.model });
    const body: ChatCompletionCreateParamsNonStreaming = Object.assign(
      buildBody(request, maxTokensField),
      providerExtras(request, this.name),
    );
    let result: { data: ChatCompletion; response: Response; request_id: string | null };
    // The whole response, body included, within timeoutMs.
    const guard = new AttemptGuard(request.signal);
    try {
      guard.arm(timeoutMs, () => requestTimeout(this.name, request.model, secrets, timeoutMs));
      result = await guard.race(
        client.chat.completions.create(body, { signal: guard.signal, timeout: timeoutMs }).withResponse(),
      );
    } catch (error) {
      throw mapOpenAIError(error, context);
    } finally {
      guard.dispose();
    }
    const { data, response, request_id: requestId } = result;
    const choice = data.choices[0];
    const message = choice?.message;
    const text = message?.content ?? '';
    const toolCalls: ToolCall[] = (message?.tool_calls ?? []).flatMap((call) =>
      call.type === 'function'
        ? [{ id: call.id, name: call.function.name, arguments: parseArguments(call.function.arguments) }]
        : [],
    );
    return finishResponse({
      provider: this.name,
      request,
      text,
      toolCalls,
      finishReason: mapFinishReason(choice?.finish_reason, message?.refusal),
      usage: openaiUsage(data.usage),
      requestId: requestId ?? undefined,
      rateLimit: rateLimitOf(response.headers),
    });
  }

  async *stream(request: ModelRequest): AsyncGenerator<StreamEvent, void, undefined> {
    const { client, secrets, maxTokensField, timeoutMs, streamIdleTimeoutMs } = this.#resolve();
    const idleMs = request.streamIdleTimeoutMs ?? streamIdleTimeoutMs;
    const context = { provider: this.name, model: request.model, secrets, signal: request.signal };
    if (isAborted(request.signal)) throw new AbortedError({ provider: this.name, model: request.model });
    const body: ChatCompletionCreateParamsStreaming = Object.assign(
      buildBody(request, maxTokensField),
      providerExtras(request, this.name),
      { stream: true as const, stream_options: { include_usage: true } },
    );

    let text = '';
    let finishReason: ChatCompletionChunk.Choice['finish_reason'] = null;
    let refusal: string | null = null;
    let usage: Usage = { inputTokens: 0, outputTokens: 0 };
    let requestId: string | undefined;
    let rateLimit: RateLimitInfo | undefined;
    // Tool-call deltas arrive in pieces keyed by `index`; the id and name come with the first piece.
    const partialCalls = new Map<number, { id: string; name: string; args: string }>();
    // The headers within timeoutMs, then each event within idleMs of the one before (SDK timeouts stop at
    // the headers, so a stream that stalls later would otherwise stay open for good).
    const guard = new AttemptGuard(request.signal);
    try {
      guard.arm(timeoutMs, () => requestTimeout(this.name, request.model, secrets, timeoutMs));
      const { data, response, request_id } = await guard.race(
        client.chat.completions.create(body, { signal: guard.signal, timeout: timeoutMs }).withResponse(),
      );
      guard.disarm();
      requestId = request_id ?? undefined;
      rateLimit = rateLimitOf(response.headers);
      const events = guard.iterate(data, {
        ms: idleMs,
        error: (received) => streamStalled(this.name, request.model, secrets, requestId, idleMs, received),
      });
      for await (const chunk of events) {
        // Events the SDK had already buffered keep coming after an abort; stop at once instead.
        if (isAborted(request.signal)) break;
        if (chunk.usage != null) usage = openaiUsage(chunk.usage);
        const choice = chunk.choices[0];
        if (choice === undefined) continue;
        const delta = choice.delta;
        if (typeof delta.content === 'string' && delta.content !== '') {
          text += delta.content;
          yield { type: 'text-delta', text: delta.content };
        }
        if (typeof delta.refusal === 'string') refusal = (refusal ?? '') + delta.refusal;
        for (const piece of delta.tool_calls ?? []) {
          const call = partialCalls.get(piece.index) ?? { id: '', name: '', args: '' };
          if (piece.id !== undefined) call.id = piece.id;
          if (piece.function?.name !== undefined) call.name += piece.function.name;
          if (piece.function?.arguments !== undefined) call.args += piece.function.arguments;
          partialCalls.set(piece.index, call);
        }
        if (choice.finish_reason !== null) finishReason = choice.finish_reason;
      }
    } catch (error) {
      throw mapOpenAIError(error, { ...context, requestId });
    } finally {
      guard.dispose();
    }
    // The SDK ends the iteration quietly when the request is aborted, so check the signal ourselves.
    const errorInit = { provider: this.name, model: request.model, secrets, requestId };
    if (isAborted(request.signal)) throw new AbortedError(errorInit);
    if (finishReason === null) {
      throw new ConnectionError({ ...errorInit, message: 'The stream ended before the model finished.' });
    }
    const toolCalls: ToolCall[] = [...partialCalls.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, call]) => ({ id: call.id, name: call.name, arguments: parseArguments(call.args) }));
    for (const toolCall of toolCalls) yield { type: 'tool-call', toolCall };
    yield {
      type: 'finish',
      response: finishResponse({
        provider: this.name,
        request,
        text,
        toolCalls,
        finishReason: mapFinishReason(finishReason, refusal),
        usage,
        requestId,
        rateLimit,
      }),
    };
  }

  #resolve(): ResolvedClient {
    this.#resolved ??= resolveOpenAIClient(this.#settings, this.name);
    return this.#resolved;
  }
}

/**
 * Builds the SDK client of a provider from its settings (key and base URL read now, SDK retries off).
 * Package-internal: the Chat Completions and Responses adapters share it.
 */
export function resolveOpenAIClient(settings: OpenAIProviderSettings, name: string): ResolvedClient {
  const { baseURL, configuredKey, official } = resolveOpenAIAccess(settings, name);
  const apiKey = configuredKey ?? PLACEHOLDER_API_KEY;
  const timeoutMs = settings.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const client = new OpenAI({
    apiKey,
    baseURL: baseURL ?? null,
    maxRetries: 0,
    ...(settings.organization === undefined ? {} : { organization: settings.organization }),
    ...(settings.headers === undefined ? {} : { defaultHeaders: { ...settings.headers } }),
    ...(settings.fetch === undefined ? {} : { fetch: settings.fetch }),
    timeout: timeoutMs,
  });
  return {
    client,
    secrets: configuredKey === undefined ? [] : [configuredKey],
    maxTokensField: settings.maxTokensField ?? (official ? 'max_completion_tokens' : 'max_tokens'),
    timeoutMs,
    streamIdleTimeoutMs: settings.streamIdleTimeoutMs ?? DEFAULT_STREAM_IDLE_TIMEOUT_MS,
  };
}

/** A function, not an inline check, so TypeScript does not narrow `aborted` across awaits. Package-internal. */
export function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

/** The rate-limit headers of a response, `undefined` when it has none. Package-internal. */
export function rateLimitOf(headers: Headers): RateLimitInfo | undefined {
  const info = parseRateLimitHeaders(headers);
  return Object.keys(info).length === 0 ? undefined : info;
}

/** What {@link finishResponse} builds a response from. Package-internal. */
export interface FinishInput {
  readonly provider: string;
  readonly request: ModelRequest;
  readonly text: string;
  readonly toolCalls: readonly ToolCall[];
  readonly finishReason: FinishReason;
  readonly usage: Usage;
  readonly requestId: string | undefined;
  readonly rateLimit: RateLimitInfo | undefined;
}

/** The usage fields of a Chat Completions response (or of a stream's last chunk) this adapter reads. */
export interface OpenAIWireUsage {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly prompt_tokens_details?: { readonly cached_tokens?: number | null | undefined } | null | undefined;
  readonly completion_tokens_details?:
    { readonly reasoning_tokens?: number | null | undefined } | null | undefined;
}

/**
 * A Chat Completions `usage` as {@link Usage}: `prompt_tokens` already counts the cached tokens, of which
 * `prompt_tokens_details.cached_tokens` are the cache reads; OpenAI has no cache writes. Of
 * `completion_tokens`, `completion_tokens_details.reasoning_tokens` were spent reasoning. A missing usage
 * (some compatible servers send none) counts zero.
 */
export function openaiUsage(usage: OpenAIWireUsage | null | undefined): Usage {
  if (usage == null) return { inputTokens: 0, outputTokens: 0 };
  const inputTokens = usage.prompt_tokens;
  const cached = usage.prompt_tokens_details?.cached_tokens ?? 0;
  const reasoning = usage.completion_tokens_details?.reasoning_tokens ?? 0;
  return {
    inputTokens,
    outputTokens: usage.completion_tokens,
    // Never more than the prompt, even from a compatible server that reports it oddly.
    ...(cached > 0 ? { cacheReadTokens: Math.min(cached, inputTokens) } : {}),
    ...(reasoning > 0 ? { reasoningTokens: Math.min(reasoning, usage.completion_tokens) } : {}),
  };
}

/** The provider-neutral response, with `json` parsed when structured output was asked. Package-internal. */
export function finishResponse(input: FinishInput): ModelResponse {
  const response: ModelResponse = {
    provider: input.provider,
    model: input.request.model,
    text: input.text,
    toolCalls: input.toolCalls,
    finishReason: input.finishReason,
    usage: input.usage,
    requestId: input.requestId,
    rateLimit: input.rateLimit,
  };
  if (input.request.output === undefined) return response;
  try {
    return { ...response, json: JSON.parse(input.text) as unknown };
  } catch {
    return response;
  }
}
