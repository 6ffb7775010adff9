/**
 * The OpenAI adapter over the Responses API (`POST /responses`) through the official `openai` SDK: the same
 * client, timeouts, error mapping and response shape as the Chat Completions adapter, with the Responses
 * wire format: `instructions` and `input` items, `text.format` json_schema (strict) for structured output,
 * `function_call` / `function_call_output` items for tools, and typed stream events. Requests are sent with
 * `store: false`, so nothing is kept on OpenAI's side between calls.
 */
import { APIError } from 'openai';
import type {
  FunctionTool,
  Response as ResponsesResponse,
  ResponseCreateParamsNonStreaming,
  ResponseCreateParamsStreaming,
  ResponseInputItem,
  ResponseStreamEvent,
  ResponseUsage,
} from 'openai/resources/responses/responses';
import { AbortedError, ConnectionError, ProviderError } from '../errors.ts';
import { AttemptGuard, requestTimeout, streamStalled } from '../timeouts.ts';
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
import { mapOpenAIError } from './map-openai-error.ts';
import type { OpenAIProviderSettings } from './openai-provider.ts';
import { parseArguments } from './chat-wire.ts';
import {
  finishResponse,
  isAborted,
  rateLimitOf,
  resolveOpenAIClient,
  type ResolvedClient,
} from './openai-sdk.ts';

/** The Responses API adapter; loaded by `createOpenAIProvider({ api: 'responses' })` on the first call. */
export class OpenAIResponsesProvider implements Provider {
  readonly name: string;
  readonly #settings: OpenAIProviderSettings;
  // Built once, at the first call that finds a key; never rebuilt, so the key is read at most once.
  #resolved: ResolvedClient | undefined;

  constructor(settings: OpenAIProviderSettings) {
    this.name = settings.name ?? 'openai';
    this.#settings = settings;
  }

  async complete(request: ModelRequest): Promise<ModelResponse> {
    const { client, secrets, timeoutMs } = this.#resolve();
    const context = { provider: this.name, model: request.model, secrets, signal: request.signal };
    if (isAborted(request.signal)) throw new AbortedError({ provider: this.name, model: request.model });
    const body: ResponseCreateParamsNonStreaming = Object.assign(
      buildBody(request, this.name),
      extras(request, this.name),
    );
    let result: { data: ResponsesResponse; response: Response; request_id: string | null };
    const guard = new AttemptGuard(request.signal);
    try {
      guard.arm(timeoutMs, () => requestTimeout(this.name, request.model, secrets, timeoutMs));
      result = await guard.race(
        client.responses.create(body, { signal: guard.signal, timeout: timeoutMs }).withResponse(),
      );
    } catch (error) {
      throw mapOpenAIError(error, context);
    } finally {
      guard.dispose();
    }
    const { data, response, request_id: requestId } = result;
    const rateLimit = rateLimitOf(response.headers);
    if (data.status === 'failed') {
      throw failedResponse(data, { ...context, requestId: requestId ?? undefined });
    }
    return fromResponse(this.name, request, data, requestId ?? undefined, rateLimit);
  }

  async *stream(request: ModelRequest): AsyncGenerator<StreamEvent, void, undefined> {
    const { client, secrets, timeoutMs, streamIdleTimeoutMs } = this.#resolve();
    const idleMs = request.streamIdleTimeoutMs ?? streamIdleTimeoutMs;
    const context = { provider: this.name, model: request.model, secrets, signal: request.signal };
    if (isAborted(request.signal)) throw new AbortedError({ provider: this.name, model: request.model });
    const body: ResponseCreateParamsStreaming = Object.assign(
      buildBody(request, this.name),
      extras(request, this.name),
      { stream: true as const },
    );

    let requestId: string | undefined;
    let rateLimit: RateLimitInfo | undefined;
    // The response of the terminal event (`response.completed` or `response.incomplete`).
    let final: ResponsesResponse | undefined;
    // What the events said, for a terminal event whose response lists no output (some compatible servers).
    const streamed: StreamedOutput = { text: '', refused: false, calls: new Map() };
    const guard = new AttemptGuard(request.signal);
    try {
      guard.arm(timeoutMs, () => requestTimeout(this.name, request.model, secrets, timeoutMs));
      const { data, response, request_id } = await guard.race(
        client.responses.create(body, { signal: guard.signal, timeout: timeoutMs }).withResponse(),
      );
      guard.disarm();
      requestId = request_id ?? undefined;
      rateLimit = rateLimitOf(response.headers);
      const events = guard.iterate(data, {
        ms: idleMs,
        error: (received) => streamStalled(this.name, request.model, secrets, requestId, idleMs, received),
      });
      for await (const event of events as AsyncIterable<ResponseStreamEvent>) {
        // Events the SDK had already buffered keep coming after an abort; stop at once instead.
        if (isAborted(request.signal)) break;
        if (event.type === 'response.output_text.delta') {
          streamed.text += event.delta;
          if (event.delta !== '') yield { type: 'text-delta', text: event.delta };
        } else if (event.type === 'response.output_item.added' && event.item.type === 'function_call') {
          const { call_id: id, name, arguments: args } = event.item;
          streamed.calls.set(event.output_index, { id, name, args });
        } else if (event.type === 'response.function_call_arguments.delta') {
          const call = streamed.calls.get(event.output_index);
          if (call !== undefined) call.args += event.delta;
        } else if (event.type === 'response.function_call_arguments.done') {
          const call = streamed.calls.get(event.output_index);
          if (call !== undefined) call.args = event.arguments;
        } else if (event.type === 'response.refusal.delta') {
          streamed.refused = true;
        } else if (event.type === 'response.completed' || event.type === 'response.incomplete') {
          final = event.response;
        } else if (event.type === 'response.failed') {
          throw failedResponse(event.response, { ...context, requestId });
        }
        // Tool calls are reported once whole, after the terminal event, never piece by piece.
      }
    } catch (error) {
      throw mapOpenAIError(error, { ...context, requestId });
    } finally {
      guard.dispose();
    }
    // The SDK ends the iteration quietly when the request is aborted, so check the signal ourselves.
    const errorInit = { provider: this.name, model: request.model, secrets, requestId };
    if (isAborted(request.signal)) throw new AbortedError(errorInit);
    if (final === undefined) {
      throw new ConnectionError({ ...errorInit, message: 'The stream ended before the model finished.' });
    }
    const response = fromResponse(this.name, request, final, requestId, rateLimit, streamed);
    for (const toolCall of response.toolCalls) yield { type: 'tool-call', toolCall };
    yield { type: 'finish', response };
  }

  #resolve(): ResolvedClient {
    this.#resolved ??= resolveOpenAIClient(this.#settings, this.name);
    return this.#resolved;
  }
}

function buildBody(request: ModelRequest, provider: string): ResponseCreateParamsNonStreaming {
  if (request.stop !== undefined && request.stop.length > 0) {
    throw new ProviderError(
      'bad_request',
      {
        provider,
        model: request.model,
        message: `The Responses API has no stop sequences; the request asked for stop ${JSON.stringify(request.stop)}.`,
        hint: `Drop \`stop\` from the request, or create the ${provider} provider with api: 'chat'.`,
      },
      false,
    );
  }
  const body: ResponseCreateParamsNonStreaming = {
    model: request.model,
    input: toInput(request),
    store: false,
  };
  if (request.system !== undefined && request.system !== '') body.instructions = request.system;
  if (request.temperature !== undefined) body.temperature = request.temperature;
  if (request.maxTokens !== undefined) body.max_output_tokens = request.maxTokens;
  if (request.tools !== undefined && request.tools.length > 0) {
    body.tools = request.tools.map((tool): FunctionTool => ({
      type: 'function',
      name: tool.name,
      ...(tool.description === undefined ? {} : { description: tool.description }),
      parameters: { ...tool.parameters },
      // The Responses API makes function tools strict unless told otherwise, and strict mode refuses
      // schemas with optional properties; tool arguments are validated on our side instead.
      strict: false,
    }));
  }
  if (request.output !== undefined) {
    body.text = {
      format: {
        type: 'json_schema',
        name: request.output.name,
        schema: { ...request.output.schema },
        strict: true,
        ...(request.output.description === undefined ? {} : { description: request.output.description }),
      },
    };
  }
  return body;
}

/** `providerOptions[name]` is merged into the body last, so it can set any wire field (`reasoning`, …). */
function extras(request: ModelRequest, name: string): Record<string, unknown> {
  const own = request.providerOptions?.[name];
  if (own === undefined) return {};
  const { model: _m, input: _i, stream: _s, ...rest } = own;
  return rest;
}

function toInput(request: ModelRequest): ResponseInputItem[] {
  const input: ResponseInputItem[] = [];
  for (const message of request.messages) {
    switch (message.role) {
      case 'system':
      case 'user':
        input.push({ role: message.role, content: message.content });
        break;
      case 'assistant':
        if (message.content !== '') input.push({ role: 'assistant', content: message.content });
        for (const call of message.toolCalls ?? []) {
          input.push({
            type: 'function_call',
            call_id: call.id,
            name: call.name,
            arguments: JSON.stringify(call.arguments ?? {}),
          });
        }
        break;
      case 'tool':
        // Like Chat Completions, a function_call_output has no error flag; say so in the output.
        input.push({
          type: 'function_call_output',
          call_id: message.toolCallId,
          output: message.isError === true ? `Error: ${message.content}` : message.content,
        });
        break;
      default: {
        const unexpected: never = message;
        throw new TypeError(`Unknown message role in ${JSON.stringify(unexpected)}`);
      }
    }
  }
  return input;
}

/** The output a stream's events carried, by output index for the calls. */
interface StreamedOutput {
  text: string;
  refused: boolean;
  readonly calls: Map<number, { id: string; name: string; args: string }>;
}

/**
 * The provider-neutral response of a finished `Response`: its output items, or, when it lists none, what the
 * stream's events carried (`streamed`).
 */
function fromResponse(
  provider: string,
  request: ModelRequest,
  data: ResponsesResponse,
  requestId: string | undefined,
  rateLimit: RateLimitInfo | undefined,
  streamed?: StreamedOutput,
): ModelResponse {
  let text = '';
  let refused = false;
  let toolCalls: ToolCall[] = [];
  const listed = data.output.some((item) => item.type === 'message' || item.type === 'function_call');
  if (!listed && streamed !== undefined) {
    text = streamed.text;
    refused = streamed.refused;
    toolCalls = [...streamed.calls.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, call]) => ({ id: call.id, name: call.name, arguments: parseArguments(call.args) }));
  }
  for (const item of data.output) {
    if (item.type === 'message') {
      for (const part of item.content) {
        if (part.type === 'output_text') text += part.text;
        else refused = true; // a `refusal` part
      }
    } else if (item.type === 'function_call') {
      toolCalls.push({ id: item.call_id, name: item.name, arguments: parseArguments(item.arguments) });
    }
  }
  return finishResponse({
    provider,
    request,
    text,
    toolCalls,
    finishReason: finishReasonOf(data, refused, toolCalls.length > 0),
    usage: openaiResponsesUsage(data.usage),
    requestId,
    rateLimit,
  });
}

function finishReasonOf(data: ResponsesResponse, refused: boolean, calledTools: boolean): FinishReason {
  if (refused) return 'content_filter';
  if (data.status === 'incomplete') {
    switch (data.incomplete_details?.reason) {
      case 'max_output_tokens':
        return 'length';
      case 'content_filter':
        return 'content_filter';
      default:
        return 'other';
    }
  }
  if (data.status !== 'completed') return 'other';
  return calledTools ? 'tool_calls' : 'stop';
}

/** The usage fields of a Responses API response this adapter reads. */
export type OpenAIResponsesWireUsage = Pick<ResponseUsage, 'input_tokens' | 'output_tokens'> & {
  readonly input_tokens_details?: Partial<ResponseUsage.InputTokensDetails> | null | undefined;
  readonly output_tokens_details?: Partial<ResponseUsage.OutputTokensDetails> | null | undefined;
};

/**
 * A Responses API `usage` as {@link Usage}: `input_tokens` already counts the cached tokens, of which
 * `input_tokens_details.cached_tokens` were read from the prompt cache (and `cache_write_tokens`, when the
 * server reports any, written to it); of `output_tokens`, `output_tokens_details.reasoning_tokens` were spent
 * reasoning. A missing usage counts zero.
 */
export function openaiResponsesUsage(usage: OpenAIResponsesWireUsage | null | undefined): Usage {
  if (usage == null) return { inputTokens: 0, outputTokens: 0 };
  const inputTokens = usage.input_tokens;
  const outputTokens = usage.output_tokens;
  const read = Math.min(usage.input_tokens_details?.cached_tokens ?? 0, inputTokens);
  const write = Math.min(usage.input_tokens_details?.cache_write_tokens ?? 0, inputTokens - read);
  const reasoning = Math.min(usage.output_tokens_details?.reasoning_tokens ?? 0, outputTokens);
  return {
    inputTokens,
    outputTokens,
    ...(read > 0 ? { cacheReadTokens: read } : {}),
    ...(write > 0 ? { cacheWriteTokens: write } : {}),
    ...(reasoning > 0 ? { reasoningTokens: reasoning } : {}),
  };
}

/**
 * A response whose `status` is `failed` (a `response.failed` event, or a 200 carrying one): its `error`
 * (`{ code, message }`) mapped like a stream's error event, so `server_error` is a retryable
 * `InternalServerError` and `rate_limit_exceeded` a `RateLimitError`.
 */
function failedResponse(
  data: ResponsesResponse,
  context: Parameters<typeof mapOpenAIError>[1],
): ProviderError {
  const error = data.error;
  const wire = {
    type: '',
    code: error?.code ?? 'server_error',
    message: error?.message ?? 'The response failed without an error message.',
  };
  return mapOpenAIError(new APIError(undefined, wire, undefined, new Headers()), {
    ...context,
    signal: undefined,
  });
}
