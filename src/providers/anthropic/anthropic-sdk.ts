/**
 * The Anthropic adapter: the Messages API through the official `@anthropic-ai/sdk`, with SDK retries off (our
 * retry policy owns retries), tools, structured output (a forced tool call by default), streaming with usage,
 * request ids and `anthropic-ratelimit-*` headers.
 */
import Anthropic from '@anthropic-ai/sdk';
import type {
  CacheControlEphemeral,
  Message,
  MessageCreateParamsNonStreaming,
  MessageCreateParamsStreaming,
  MessageParam,
} from '@anthropic-ai/sdk/resources/messages';
import { AbortedError, ConnectionError } from '../errors.ts';
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
  PromptCacheMode,
  Provider,
  RateLimitInfo,
  StreamEvent,
  ToolCall,
  Usage,
} from '../types.ts';
import { anthropicMinCacheTokens } from './anthropic-cache.ts';
import { messagesBody, providerExtras } from './messages-wire.ts';
import { resolveAnthropicAccess, type AnthropicProviderSettings } from './anthropic-provider.ts';
import { mapAnthropicError } from './map-anthropic-error.ts';

const PLACEHOLDER_API_KEY = 'no-key-required';

interface ResolvedClient {
  readonly client: Anthropic;
  readonly secrets: readonly string[];
  readonly timeoutMs: number;
  readonly streamIdleTimeoutMs: number;
}

/** The adapter itself; loaded by {@link createAnthropicProvider} on the first call, with its SDK. */
export class AnthropicProvider implements Provider {
  readonly name: string;
  readonly #settings: AnthropicProviderSettings;
  // Built once, at the first call that finds a key; never rebuilt, so the key is read at most once.
  #resolved: ResolvedClient | undefined;

  constructor(settings: AnthropicProviderSettings) {
    this.name = settings.name ?? 'anthropic';
    this.#settings = settings;
  }

  async complete(request: ModelRequest): Promise<ModelResponse> {
    const { client, secrets, timeoutMs } = this.#resolve();
    const context = { provider: this.name, model: request.model, secrets, signal: request.signal };
    if (isAborted(request.signal)) throw new AbortedError({ provider: this.name, model: request.model });
    const body: MessageCreateParamsNonStreaming = Object.assign(
      this.#body(request),
      providerExtras(request, this.name),
    );
    let result: { data: Message; response: Response; request_id: string | null | undefined };
    // The whole response within timeoutMs: the SDK's own timeout stops at the headers.
    const guard = new AttemptGuard(request.signal);
    try {
      guard.arm(timeoutMs, () => requestTimeout(this.name, request.model, secrets, timeoutMs));
      result = await guard.race(client.messages.create(body, { signal: guard.signal }).withResponse());
    } catch (error) {
      throw mapAnthropicError(error, context);
    } finally {
      guard.dispose();
    }
    const { data, response, request_id: requestId } = result;
    const forced = this.#forcedToolName(request);
    let text = '';
    let json: unknown;
    let jsonSeen = false;
    const toolCalls: ToolCall[] = [];
    for (const block of data.content) {
      if (block.type === 'text') text += block.text;
      else if (block.type === 'tool_use') {
        if (forced !== undefined && block.name === forced && !jsonSeen) {
          json = block.input;
          jsonSeen = true;
        } else toolCalls.push({ id: block.id, name: block.name, arguments: block.input });
      }
    }
    return buildResponse({
      provider: this.name,
      request,
      text: jsonSeen ? JSON.stringify(json) : text,
      jsonFromTool: jsonSeen ? { value: json } : undefined,
      toolCalls,
      stopReason: data.stop_reason,
      usage: data.usage,
      requestId: requestId ?? undefined,
      rateLimit: rateLimitOf(response.headers),
    });
  }

  async *stream(request: ModelRequest): AsyncGenerator<StreamEvent, void, undefined> {
    const { client, secrets, timeoutMs, streamIdleTimeoutMs } = this.#resolve();
    const idleMs = request.streamIdleTimeoutMs ?? streamIdleTimeoutMs;
    const context = { provider: this.name, model: request.model, secrets, signal: request.signal };
    if (isAborted(request.signal)) throw new AbortedError({ provider: this.name, model: request.model });
    const body: MessageCreateParamsStreaming = Object.assign(
      this.#body(request),
      providerExtras(request, this.name),
      {
        stream: true as const,
      },
    );
    const forced = this.#forcedToolName(request);

    let text = '';
    let jsonText: string | undefined;
    let stopReason: string | null = null;
    let stopped = false;
    const usage: {
      input_tokens: number;
      output_tokens: number;
      cache_creation_input_tokens: number;
      cache_read_input_tokens: number;
      cache_creation?: { readonly ephemeral_1h_input_tokens?: number | null | undefined } | null;
    } = {
      input_tokens: 0,
      output_tokens: 0,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
    };
    let requestId: string | undefined;
    let rateLimit: RateLimitInfo | undefined;
    const toolCalls: ToolCall[] = [];
    // Content blocks by index: tool_use input arrives as partial JSON until its content_block_stop.
    const blocks = new Map<
      number,
      { kind: 'text' | 'tool' | 'output' | 'other'; id: string; name: string; json: string }
    >();
    // The headers within timeoutMs, then each event within idleMs of the one before (SDK timeouts stop at
    // the headers, so a stream that stalls later would otherwise stay open for good).
    const guard = new AttemptGuard(request.signal);
    try {
      guard.arm(timeoutMs, () => requestTimeout(this.name, request.model, secrets, timeoutMs));
      const { data, response, request_id } = await guard.race(
        client.messages.create(body, { signal: guard.signal }).withResponse(),
      );
      guard.disarm();
      requestId = request_id ?? undefined;
      rateLimit = rateLimitOf(response.headers);
      const events = guard.iterate(data, {
        ms: idleMs,
        error: (received) => streamStalled(this.name, request.model, secrets, requestId, idleMs, received),
      });
      for await (const event of events) {
        // Events the SDK had already buffered keep coming after an abort; stop at once instead.
        if (isAborted(request.signal)) break;
        switch (event.type) {
          case 'message_start':
            usage.input_tokens = event.message.usage.input_tokens;
            usage.cache_creation_input_tokens = event.message.usage.cache_creation_input_tokens ?? 0;
            usage.cache_read_input_tokens = event.message.usage.cache_read_input_tokens ?? 0;
            usage.cache_creation = event.message.usage.cache_creation;
            usage.output_tokens = event.message.usage.output_tokens;
            break;
          case 'content_block_start': {
            const block = event.content_block;
            if (block.type === 'text') blocks.set(event.index, { kind: 'text', id: '', name: '', json: '' });
            else if (block.type === 'tool_use') {
              const isOutput = forced !== undefined && block.name === forced && jsonText === undefined;
              if (isOutput) jsonText = '';
              blocks.set(event.index, {
                kind: isOutput ? 'output' : 'tool',
                id: block.id,
                name: block.name,
                json: '',
              });
            } else blocks.set(event.index, { kind: 'other', id: '', name: '', json: '' });
            break;
          }
          case 'content_block_delta': {
            const block = blocks.get(event.index);
            const delta = event.delta;
            if (delta.type === 'text_delta' && delta.text !== '') {
              text += delta.text;
              yield { type: 'text-delta', text: delta.text };
            } else if (delta.type === 'input_json_delta' && block !== undefined) {
              block.json += delta.partial_json;
              // The forced output tool's JSON is the answer: stream it as text, like OpenAI's JSON mode.
              if (block.kind === 'output' && delta.partial_json !== '') {
                jsonText = (jsonText ?? '') + delta.partial_json;
                yield { type: 'text-delta', text: delta.partial_json };
              }
            }
            break;
          }
          case 'content_block_stop': {
            const block = blocks.get(event.index);
            if (block?.kind === 'tool') {
              const toolCall = { id: block.id, name: block.name, arguments: parseJson(block.json, {}) };
              toolCalls.push(toolCall);
              yield { type: 'tool-call', toolCall };
            }
            break;
          }
          case 'message_delta':
            stopReason = event.delta.stop_reason ?? stopReason;
            // `usage.output_tokens` in message_delta is cumulative.
            usage.output_tokens = event.usage.output_tokens;
            if (typeof event.usage.input_tokens === 'number') usage.input_tokens = event.usage.input_tokens;
            // Cumulative as well when present (the API may report the cache parts here too).
            if (typeof event.usage.cache_read_input_tokens === 'number')
              usage.cache_read_input_tokens = event.usage.cache_read_input_tokens;
            if (typeof event.usage.cache_creation_input_tokens === 'number')
              usage.cache_creation_input_tokens = event.usage.cache_creation_input_tokens;
            break;
          case 'message_stop':
            stopped = true;
            break;
          default:
            break;
        }
      }
    } catch (error) {
      throw mapAnthropicError(error, { ...context, requestId });
    } finally {
      guard.dispose();
    }
    const errorInit = { provider: this.name, model: request.model, secrets, requestId };
    // The SDK ends the iteration quietly when the request is aborted, so check the signal ourselves.
    if (isAborted(request.signal)) throw new AbortedError(errorInit);
    if (!stopped) {
      throw new ConnectionError({ ...errorInit, message: 'The stream ended before message_stop.' });
    }
    const json = jsonText === undefined ? undefined : tryParse(jsonText);
    yield {
      type: 'finish',
      response: buildResponse({
        provider: this.name,
        request,
        text: jsonText === undefined ? text : json === undefined ? jsonText : JSON.stringify(json.value),
        jsonFromTool: jsonText === undefined ? undefined : { value: json?.value },
        toolCalls,
        stopReason,
        usage,
        requestId,
        rateLimit,
      }),
    };
  }

  #forcedToolName(request: ModelRequest): string | undefined {
    return request.output !== undefined && (this.#settings.structuredOutput ?? 'tool') === 'tool'
      ? request.output.name
      : undefined;
  }

  #body(request: ModelRequest): MessageCreateParamsNonStreaming {
    const structured = this.#settings.structuredOutput ?? 'tool';
    const body = messagesBody(request, this.#settings.defaultMaxTokens ?? 1024, structured);
    return withCacheBreakpoints(body, request.cache ?? 'auto');
  }

  #resolve(): ResolvedClient {
    if (this.#resolved !== undefined) return this.#resolved;
    const settings = this.#settings;
    const { baseURL, configuredKey } = resolveAnthropicAccess(settings, this.name);
    const timeoutMs = settings.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const client = new Anthropic({
      // An explicit key also stops the SDK from looking for other credentials (auth token, profiles on disk).
      apiKey: configuredKey ?? PLACEHOLDER_API_KEY,
      baseURL: baseURL ?? null,
      maxRetries: 0,
      ...(settings.headers === undefined ? {} : { defaultHeaders: { ...settings.headers } }),
      ...(settings.fetch === undefined ? {} : { fetch: settings.fetch }),
      timeout: timeoutMs,
    });
    this.#resolved = {
      client,
      secrets: configuredKey === undefined ? [] : [configuredKey],
      timeoutMs,
      streamIdleTimeoutMs: settings.streamIdleTimeoutMs ?? DEFAULT_STREAM_IDLE_TIMEOUT_MS,
    };
    return this.#resolved;
  }
}

/** A function, not an inline check, so TypeScript does not narrow `aborted` across awaits. */
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

function parseJson(text: string, fallback: unknown): unknown {
  if (text.trim() === '') return fallback;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** Strict parse: `undefined` when the text is not JSON (so a parsed JSON string is told apart from a failure). */
function tryParse(text: string): { readonly value: unknown } | undefined {
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return undefined;
  }
}

function mapStopReason(reason: string | null, jsonFromTool: boolean): FinishReason {
  switch (reason) {
    case 'end_turn':
    case 'stop_sequence':
      return 'stop';
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    // A forced output tool is how the answer arrives, not a tool call the caller must run.
    case 'tool_use':
      return jsonFromTool ? 'stop' : 'tool_calls';
    case 'refusal':
      return 'content_filter';
    default:
      return 'other';
  }
}

function rateLimitOf(headers: Headers): RateLimitInfo | undefined {
  const info = parseRateLimitHeaders(headers);
  return Object.keys(info).length === 0 ? undefined : info;
}

interface BuildInput {
  readonly provider: string;
  readonly request: ModelRequest;
  readonly text: string;
  /** Set when the JSON came from the forced output tool (then it is `json` as is). */
  readonly jsonFromTool: { readonly value: unknown } | undefined;
  readonly toolCalls: readonly ToolCall[];
  readonly stopReason: string | null;
  readonly usage: AnthropicWireUsage;
  readonly requestId: string | undefined;
  readonly rateLimit: RateLimitInfo | undefined;
}

/** The usage fields of a Messages API response (or of a stream's events) this adapter reads. */
export interface AnthropicWireUsage {
  readonly input_tokens: number;
  readonly output_tokens: number;
  readonly cache_creation_input_tokens?: number | null | undefined;
  readonly cache_read_input_tokens?: number | null | undefined;
  /** The writes by cache lifetime, when the API reports them. */
  readonly cache_creation?:
    { readonly ephemeral_1h_input_tokens?: number | null | undefined } | null | undefined;
}

/**
 * A Messages API `usage` as {@link Usage}. Anthropic's `input_tokens` leaves out the cached parts, so
 * `inputTokens` is `input_tokens + cache_read_input_tokens + cache_creation_input_tokens` (every token of
 * the prompt), with the two cache parts as `cacheReadTokens` and `cacheWriteTokens`, and the writes to the
 * 1-hour cache (`cache_creation.ephemeral_1h_input_tokens`) as `cacheWrite1hTokens`.
 */
export function anthropicUsage(usage: AnthropicWireUsage): Usage {
  const read = usage.cache_read_input_tokens ?? 0;
  const write = usage.cache_creation_input_tokens ?? 0;
  const write1h = Math.min(write, usage.cache_creation?.ephemeral_1h_input_tokens ?? 0);
  return {
    inputTokens: usage.input_tokens + read + write,
    outputTokens: usage.output_tokens,
    ...(read > 0 ? { cacheReadTokens: read } : {}),
    ...(write > 0 ? { cacheWriteTokens: write } : {}),
    ...(write1h > 0 ? { cacheWrite1hTokens: write1h } : {}),
  };
}

const EPHEMERAL: CacheControlEphemeral = Object.freeze({ type: 'ephemeral' as const });

/** A quarter of the characters, the estimate {@link estimateTokens} uses too. */
function tokensOf(chars: number): number {
  return Math.ceil(chars / 4);
}

/** The characters of a turn's content as the prefix estimate counts them. */
function contentChars(content: MessageParam['content']): number {
  if (typeof content === 'string') return content.length;
  let chars = 0;
  for (const block of content)
    chars += block.type === 'text' ? block.text.length : JSON.stringify(block).length;
  return chars;
}

/** `turn` with a cache breakpoint on its last content block (a string content becomes one text block). */
function markTurn(turn: MessageParam): MessageParam {
  if (typeof turn.content === 'string') {
    return { ...turn, content: [{ type: 'text', text: turn.content, cache_control: EPHEMERAL }] };
  }
  const blocks = [...turn.content];
  const last = blocks.at(-1);
  // Thinking blocks cannot carry a breakpoint; such a turn is left unmarked.
  if (last === undefined || last.type === 'thinking' || last.type === 'redacted_thinking') return turn;
  blocks[blocks.length - 1] = { ...last, cache_control: EPHEMERAL };
  // The turns this adapter builds are user and assistant turns, whose blocks may all carry a breakpoint.
  return { ...turn, content: blocks } as MessageParam;
}

/**
 * `body` with the prompt-cache breakpoints of `mode` (see {@link PromptCacheMode}): the system prompt (or,
 * without one, the last tool definition) and, in `'auto'` mode, the end of the conversation before its last
 * turn, each only when the prefix up to it reaches the model's minimum cacheable length
 * ({@link anthropicMinCacheTokens}); `'system'` marks the system prompt whatever its length; `false` leaves
 * the body as is. Anthropic allows four breakpoints; this sets at most two.
 */
export function withCacheBreakpoints<B extends MessageCreateParamsNonStreaming>(
  body: B,
  mode: PromptCacheMode,
): B {
  if (mode === false) return body;
  const minimum = mode === 'auto' ? anthropicMinCacheTokens(body.model) : 0;
  let chars = body.tools === undefined ? 0 : JSON.stringify(body.tools).length;
  const system = typeof body.system === 'string' ? body.system : undefined;
  chars += system?.length ?? 0;
  const out: B = { ...body };
  if ((system !== undefined || body.tools !== undefined) && tokensOf(chars) >= minimum) {
    if (system !== undefined) out.system = [{ type: 'text', text: system, cache_control: EPHEMERAL }];
    else if (body.tools !== undefined && body.tools.length > 0) {
      const tools = [...body.tools];
      const last = tools.at(-1);
      if (last !== undefined) tools[tools.length - 1] = { ...last, cache_control: EPHEMERAL };
      out.tools = tools;
    }
  }
  if (mode !== 'auto' || body.messages.length < 2) return out;
  const stable = body.messages.length - 1;
  for (let i = 0; i < stable; i++) chars += contentChars(body.messages[i]?.content ?? '');
  if (tokensOf(chars) < minimum) return out;
  const messages = [...body.messages];
  const turn = messages[stable - 1];
  if (turn !== undefined) messages[stable - 1] = markTurn(turn);
  out.messages = messages;
  return out;
}

function buildResponse(input: BuildInput): ModelResponse {
  const { usage } = input;
  const response: ModelResponse = {
    provider: input.provider,
    model: input.request.model,
    text: input.text,
    toolCalls: input.toolCalls,
    finishReason: mapStopReason(
      input.stopReason,
      input.jsonFromTool !== undefined && input.toolCalls.length === 0,
    ),
    usage: anthropicUsage(usage),
    requestId: input.requestId,
    rateLimit: input.rateLimit,
  };
  if (input.request.output === undefined) return response;
  if (input.jsonFromTool !== undefined) {
    return input.jsonFromTool.value === undefined
      ? response
      : { ...response, json: input.jsonFromTool.value };
  }
  const parsed = tryParse(input.text);
  return parsed === undefined ? response : { ...response, json: parsed.value };
}
