/**
 * Anthropic's Message Batches over the official SDK: `messages.batches.create` with one `params` per
 * request, `messages.batches.retrieve` to poll, `messages.batches.results` for the JSONL of outcomes, each
 * named by its `custom_id`.
 */
import type { AnthropicWireUsage } from './anthropic/anthropic-sdk.ts';
import { resolveAnthropicAccess } from './anthropic/anthropic-provider.ts';
import { messagesBody, providerExtras } from './anthropic/messages-wire.ts';
import {
  ANTHROPIC_BATCH_LIMITS,
  type BatchClient,
  type BatchItemResult,
  type BatchLimits,
  type BatchRequestItem,
  type BatchState,
} from './batch.ts';
import type { FinishReason, ModelRequest, ModelResponse, ToolCall } from './types.ts';

/** Settings of {@link createAnthropicBatchClient}. */
export interface AnthropicBatchClientSettings {
  /** The registry name of the provider whose calls it sends. @default 'anthropic' */
  readonly name?: string | undefined;
  /** @default process.env.ANTHROPIC_API_KEY */
  readonly apiKey?: string | undefined;
  /** @default process.env.ANTHROPIC_BASE_URL, else the Anthropic API */
  readonly baseURL?: string | undefined;
  /** `max_tokens` of a request that sets none (the API requires one). @default 1024 */
  readonly defaultMaxTokens?: number | undefined;
  /** Overrides the documented limits. @default {@link ANTHROPIC_BATCH_LIMITS} */
  readonly limits?: BatchLimits | undefined;
}

type AnthropicClient = import('@anthropic-ai/sdk').Anthropic;

/** What the client loads on its first request (the SDK and the adapter's mappings), never at import. */
interface LoadedSdk {
  readonly client: AnthropicClient;
  readonly secrets: string[];
  readonly mapError: typeof import('./anthropic/map-anthropic-error.ts').mapAnthropicError;
  readonly usage: typeof import('./anthropic/anthropic-sdk.ts').anthropicUsage;
  readonly breakpoints: typeof import('./anthropic/anthropic-sdk.ts').withCacheBreakpoints;
}

/**
 * A {@link BatchClient} for Anthropic's Message Batches. The SDK is loaded on the first request; its own
 * retries are off.
 *
 * @throws {MissingApiKeyError} at the first request when the Anthropic host is used and no key is set.
 */
export function createAnthropicBatchClient(settings: AnthropicBatchClientSettings = {}): BatchClient {
  return new AnthropicBatchClient(settings);
}

class AnthropicBatchClient implements BatchClient {
  readonly provider: string;
  readonly limits: BatchLimits;
  readonly #settings: AnthropicBatchClientSettings;
  #client: Promise<LoadedSdk> | undefined;

  constructor(settings: AnthropicBatchClientSettings) {
    this.provider = settings.name ?? 'anthropic';
    this.limits = settings.limits ?? ANTHROPIC_BATCH_LIMITS;
    this.#settings = settings;
  }

  sizeOf(item: BatchRequestItem): number {
    // Without its prompt-cache breakpoints (at most two `cache_control` objects): a margin covers them.
    const entry = { custom_id: item.customId, params: anthropicBatchParams(item.request, this.#maxTokens()) };
    return Buffer.byteLength(JSON.stringify(entry)) + 128;
  }

  #maxTokens(): number {
    return this.#settings.defaultMaxTokens ?? 1024;
  }

  async submit(items: readonly BatchRequestItem[]): Promise<string> {
    const { client, secrets, mapError, breakpoints } = await this.#sdk();
    try {
      const requests = items.map((item) => ({
        custom_id: item.customId,
        params: anthropicBatchParams(item.request, this.#maxTokens(), breakpoints),
      }));
      const batch = await client.messages.batches.create({ requests: requests as never });
      return batch.id;
    } catch (error) {
      throw mapError(error, {
        provider: this.provider,
        model: items[0]?.request.model,
        secrets,
      });
    }
  }

  async retrieve(id: string): Promise<BatchState> {
    const { client, secrets, mapError } = await this.#sdk();
    try {
      const batch = await client.messages.batches.retrieve(id);
      const c = batch.request_counts;
      const done = c.succeeded + c.errored + c.canceled + c.expired;
      return {
        id,
        status: batch.processing_status === 'ended' ? 'ended' : 'in_progress',
        completed: done,
        total: done + c.processing,
      };
    } catch (error) {
      throw mapError(error, { provider: this.provider, model: undefined, secrets });
    }
  }

  async results(id: string): Promise<readonly BatchItemResult[]> {
    const { client, secrets, mapError, usage } = await this.#sdk();
    try {
      const out: BatchItemResult[] = [];
      for await (const entry of await client.messages.batches.results(id)) {
        const result = entry.result;
        if (result.type === 'succeeded') {
          out.push({
            customId: entry.custom_id,
            ok: true,
            response: anthropicBatchResponse(this.provider, result.message, usage),
          });
        } else if (result.type === 'errored') {
          const type = result.error.error.type;
          out.push({
            customId: entry.custom_id,
            ok: false,
            message: result.error.error.message,
            retryable: type !== 'invalid_request_error' && type !== 'not_found_error',
          });
        } else {
          out.push({
            customId: entry.custom_id,
            ok: false,
            message: `The batch item was ${result.type}.`,
            retryable: true,
          });
        }
      }
      return out;
    } catch (error) {
      throw mapError(error, { provider: this.provider, model: undefined, secrets });
    }
  }

  async cancel(id: string): Promise<void> {
    const { client, secrets, mapError } = await this.#sdk();
    try {
      await client.messages.batches.cancel(id);
    } catch (error) {
      throw mapError(error, { provider: this.provider, model: undefined, secrets });
    }
  }

  #sdk(): Promise<LoadedSdk> {
    this.#client ??= (async () => {
      const { baseURL, configuredKey } = resolveAnthropicAccess(this.#settings, this.provider);
      const [{ Anthropic }, { mapAnthropicError }, { anthropicUsage, withCacheBreakpoints }] =
        await Promise.all([
          import('@anthropic-ai/sdk'),
          import('./anthropic/map-anthropic-error.ts'),
          import('./anthropic/anthropic-sdk.ts'),
        ]);
      const client = new Anthropic({
        apiKey: configuredKey ?? 'no-key-required',
        baseURL: baseURL ?? null,
        maxRetries: 0,
      });
      return {
        client,
        secrets: configuredKey === undefined ? [] : [configuredKey],
        mapError: mapAnthropicError,
        usage: anthropicUsage,
        breakpoints: withCacheBreakpoints,
      };
    })();
    return this.#client;
  }
}

/**
 * The Messages API params of a request, as the online adapter sends them: the system text, the turns,
 * structured output as a forced tool named after the output, prompt-cache breakpoints, and
 * `providerOptions.anthropic` merged last.
 */
export function anthropicBatchParams(
  request: ModelRequest,
  defaultMaxTokens: number,
  breakpoints?: LoadedSdk['breakpoints'],
): Record<string, unknown> {
  // The online adapter's body, with its forced-tool structured output (the adapter's default).
  const body = messagesBody(request, defaultMaxTokens, 'tool');
  const cached = breakpoints === undefined ? body : breakpoints(body, request.cache ?? 'auto');
  return Object.assign(cached, providerExtras(request, 'anthropic'));
}

interface AnthropicWireMessage {
  readonly id: string;
  readonly model: string;
  readonly content: readonly (
    | { readonly type: 'text'; readonly text: string }
    | { readonly type: 'tool_use'; readonly id: string; readonly name: string; readonly input: unknown }
    | { readonly type: string }
  )[];
  readonly stop_reason: string | null;
  readonly usage: AnthropicWireUsage;
}

/**
 * The response of a succeeded item. A `tool_use` block is the structured output when it is the only tool
 * call and the stop reason is `tool_use` (the forced output tool); the caller drops `json` for a request
 * without output and re-reads it as a tool call when the request had tools of its own.
 */
function anthropicBatchResponse(
  provider: string,
  message: AnthropicWireMessage,
  anthropicUsage: LoadedSdk['usage'],
): ModelResponse {
  let text = '';
  const toolCalls: ToolCall[] = [];
  for (const block of message.content) {
    if (block.type === 'text' && 'text' in block) text += block.text;
    else if (block.type === 'tool_use' && 'input' in block)
      toolCalls.push({ id: block.id, name: block.name, arguments: block.input });
  }
  return {
    provider,
    model: message.model,
    text,
    toolCalls,
    finishReason: stopReason(message.stop_reason),
    usage: anthropicUsage(message.usage),
    requestId: message.id,
  };
}

function stopReason(reason: string | null): FinishReason {
  switch (reason) {
    case 'end_turn':
    case 'stop_sequence':
      return 'stop';
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    default:
      return 'other';
  }
}
