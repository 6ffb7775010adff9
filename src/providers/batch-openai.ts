/**
 * OpenAI's Batch API over the official SDK: the requests go up as one JSONL file (`files.create`, purpose
 * `batch`), become a batch of `/v1/chat/completions` calls (`batches.create`, 24 h window), are polled
 * (`batches.retrieve`), and come back as the output and error files' JSONL (`files.content`), each line named
 * by its `custom_id`.
 */
import { buildBody, mapFinishReason, parseArguments, providerExtras } from './openai/chat-wire.ts';
import { resolveOpenAIAccess } from './openai/openai-provider.ts';
import type { OpenAIWireUsage } from './openai/openai-sdk.ts';
import {
  OPENAI_BATCH_LIMITS,
  type BatchClient,
  type BatchItemResult,
  type BatchLimits,
  type BatchRequestItem,
  type BatchState,
  type BatchStatus,
} from './batch.ts';
import type { ModelRequest, ModelResponse, ToolCall } from './types.ts';

/** Settings of {@link createOpenAIBatchClient}. */
export interface OpenAIBatchClientSettings {
  /** The registry name of the provider whose calls it sends. @default 'openai' */
  readonly name?: string | undefined;
  /** @default process.env.OPENAI_API_KEY */
  readonly apiKey?: string | undefined;
  /** @default process.env.OPENAI_BASE_URL, else the OpenAI API */
  readonly baseURL?: string | undefined;
  /** The token-limit field the server takes. @default 'max_completion_tokens' */
  readonly maxTokensField?: 'max_completion_tokens' | 'max_tokens' | undefined;
  /** Overrides the documented limits (e.g. smaller chunks). @default {@link OPENAI_BATCH_LIMITS} */
  readonly limits?: BatchLimits | undefined;
}

type OpenAIClient = import('openai').OpenAI;

/** What the client loads on its first request (the SDK and the adapter's mappings), never at import. */
interface LoadedSdk {
  readonly client: OpenAIClient;
  readonly secrets: string[];
  readonly toFile: typeof import('openai').toFile;
  readonly mapError: typeof import('./openai/map-openai-error.ts').mapOpenAIError;
  readonly usage: typeof import('./openai/openai-sdk.ts').openaiUsage;
}

/**
 * A {@link BatchClient} for OpenAI (or a server with the same Batch API). The SDK is loaded on the first
 * request; its own retries are off (a failed submit or poll is retried by the caller's next poll).
 *
 * @throws {MissingApiKeyError} at the first request when the OpenAI host is used and no key is set.
 */
export function createOpenAIBatchClient(settings: OpenAIBatchClientSettings = {}): BatchClient {
  return new OpenAIBatchClient(settings);
}

class OpenAIBatchClient implements BatchClient {
  readonly provider: string;
  readonly limits: BatchLimits;
  readonly #settings: OpenAIBatchClientSettings;
  #client: Promise<LoadedSdk> | undefined;

  constructor(settings: OpenAIBatchClientSettings) {
    this.provider = settings.name ?? 'openai';
    this.limits = settings.limits ?? OPENAI_BATCH_LIMITS;
    this.#settings = settings;
  }

  sizeOf(item: BatchRequestItem): number {
    return Buffer.byteLength(this.#line(item)) + 1;
  }

  async submit(items: readonly BatchRequestItem[]): Promise<string> {
    const { client, secrets, toFile, mapError } = await this.#sdk();
    const model = items[0]?.request.model;
    try {
      const jsonl = items.map((item) => this.#line(item)).join('\n') + '\n';
      const file = await client.files.create({
        file: await toFile(Buffer.from(jsonl), 'batch.jsonl', { type: 'application/jsonl' }),
        purpose: 'batch',
      });
      const batch = await client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      });
      return batch.id;
    } catch (error) {
      throw mapError(error, { provider: this.provider, model, secrets });
    }
  }

  async retrieve(id: string): Promise<BatchState> {
    const { client, secrets, mapError } = await this.#sdk();
    try {
      const batch = await client.batches.retrieve(id);
      const counts = batch.request_counts;
      return {
        id,
        status: openaiStatus(batch.status),
        completed: counts === undefined ? undefined : counts.completed + counts.failed,
        total: counts?.total,
      };
    } catch (error) {
      throw mapError(error, { provider: this.provider, model: undefined, secrets });
    }
  }

  async results(id: string): Promise<readonly BatchItemResult[]> {
    const { client, secrets, mapError, usage } = await this.#sdk();
    try {
      const batch = await client.batches.retrieve(id);
      const out: BatchItemResult[] = [];
      for (const fileId of [batch.output_file_id, batch.error_file_id]) {
        if (typeof fileId !== 'string' || fileId === '') continue;
        const text = await (await client.files.content(fileId)).text();
        for (const line of text.split('\n')) {
          if (line.trim() === '') continue;
          out.push(this.#result(JSON.parse(line) as OpenAIBatchLine, usage));
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
      await client.batches.cancel(id);
    } catch (error) {
      throw mapError(error, { provider: this.provider, model: undefined, secrets });
    }
  }

  #line(item: BatchRequestItem): string {
    return JSON.stringify({
      custom_id: item.customId,
      method: 'POST',
      url: '/v1/chat/completions',
      body: openaiBatchBody(item.request, this.#settings.maxTokensField ?? 'max_completion_tokens'),
    });
  }

  #result(line: OpenAIBatchLine, usage: LoadedSdk['usage']): BatchItemResult {
    const customId = line.custom_id;
    const status = line.response?.status_code;
    const body = line.response?.body;
    if (line.error != null || status === undefined || status >= 400 || body === undefined) {
      const message =
        line.error?.message ?? body?.error?.message ?? `The batch item failed (status ${String(status)}).`;
      // A refused request (4xx but 408/409/429) fails the same way again; the rest may succeed later.
      const retryable =
        status === undefined || status >= 500 || status === 408 || status === 409 || status === 429;
      return { customId, ok: false, message, retryable };
    }
    return { customId, ok: true, response: openaiBatchResponse(this.provider, body, line.model, usage) };
  }

  #sdk(): Promise<LoadedSdk> {
    this.#client ??= (async () => {
      const { baseURL, configuredKey } = resolveOpenAIAccess(this.#settings, this.provider);
      const [{ OpenAI, toFile }, { mapOpenAIError }, { openaiUsage }] = await Promise.all([
        import('openai'),
        import('./openai/map-openai-error.ts'),
        import('./openai/openai-sdk.ts'),
      ]);
      const client = new OpenAI({
        apiKey: configuredKey ?? 'no-key-required',
        baseURL: baseURL ?? null,
        maxRetries: 0,
      });
      return {
        client,
        secrets: configuredKey === undefined ? [] : [configuredKey],
        toFile,
        mapError: mapOpenAIError,
        usage: openaiUsage,
      };
    })();
    return this.#client;
  }
}

interface OpenAIBatchLine {
  readonly custom_id: string;
  readonly model?: string;
  readonly response?: {
    readonly status_code: number;
    readonly request_id?: string;
    readonly body?: OpenAIWireCompletion & { readonly error?: { readonly message?: string } };
  } | null;
  readonly error?: { readonly code?: string; readonly message?: string } | null;
}

interface OpenAIWireCompletion {
  readonly id?: string;
  readonly model?: string;
  readonly choices?: readonly {
    readonly finish_reason?: string | null;
    readonly message?: {
      readonly content?: string | null;
      readonly refusal?: string | null;
      readonly tool_calls?: readonly {
        readonly id: string;
        readonly type: string;
        readonly function: { readonly name: string; readonly arguments: string };
      }[];
    };
  }[];
  readonly usage?: OpenAIWireUsage | null;
}

function openaiStatus(status: string): BatchStatus {
  switch (status) {
    case 'completed':
      return 'ended';
    case 'failed':
      return 'failed';
    case 'expired':
      return 'expired';
    case 'cancelled':
      return 'cancelled';
    default:
      return 'in_progress';
  }
}

/** The Chat Completions body of a request, as the online adapter sends it (`providerOptions.openai` merged last). */
export function openaiBatchBody(
  request: ModelRequest,
  maxTokensField: 'max_completion_tokens' | 'max_tokens',
): Record<string, unknown> {
  return Object.assign(buildBody(request, maxTokensField), providerExtras(request, 'openai'));
}

function openaiBatchResponse(
  provider: string,
  body: OpenAIWireCompletion,
  model: string | undefined,
  openaiUsage: LoadedSdk['usage'],
): ModelResponse {
  const choice = body.choices?.[0];
  const message = choice?.message;
  const text = message?.content ?? '';
  const toolCalls: ToolCall[] = (message?.tool_calls ?? []).flatMap((call) =>
    call.type === 'function'
      ? [{ id: call.id, name: call.function.name, arguments: parseArguments(call.function.arguments) }]
      : [],
  );
  const response: ModelResponse = {
    provider,
    model: body.model ?? model ?? '',
    text,
    toolCalls,
    finishReason: mapFinishReason(choice?.finish_reason, message?.refusal),
    usage: openaiUsage(body.usage),
    requestId: body.id,
  };
  try {
    return text === '' ? response : { ...response, json: JSON.parse(text) as unknown };
  } catch {
    return response;
  }
}
