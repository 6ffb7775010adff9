/**
 * Provider batch clients: the half-price, answered-within-a-day Batch APIs (OpenAI Batch, Anthropic Message
 * Batches) behind one small interface, so the evaluation layer can send a layer of a chain's calls as one
 * batch. No SDK is imported here; each client loads its SDK on its first request.
 */
import type { ModelRequest, ModelResponse } from './types.ts';

/** One request of a batch, named by the caller's stable `customId` (results are mapped back by it). */
export interface BatchRequestItem {
  /** `[a-zA-Z0-9_-]{1,64}`, unique within the batch (both providers require it). */
  readonly customId: string;
  readonly request: ModelRequest;
}

/** A batch's state as the provider reports it, normalised. */
export type BatchStatus = 'in_progress' | 'ended' | 'failed' | 'expired' | 'cancelled';

/** What {@link BatchClient.retrieve} reports of a batch. */
export interface BatchState {
  readonly id: string;
  readonly status: BatchStatus;
  /** Requests answered so far (succeeded or failed), when the provider says. */
  readonly completed?: number | undefined;
  /** Requests of the batch, when the provider says. */
  readonly total?: number | undefined;
}

/**
 * The outcome of one item of an ended batch: its response, or an error message with whether sending the
 * same request again (in a later batch) may succeed (an expired, cancelled or server-failed item may; a
 * request the provider refused as invalid may not).
 */
export type BatchItemResult =
  | { readonly customId: string; readonly ok: true; readonly response: ModelResponse }
  | {
      readonly customId: string;
      readonly ok: false;
      readonly message: string;
      readonly retryable: boolean;
    };

/** The documented limits of one batch of a provider. */
export interface BatchLimits {
  /** Most requests in one batch (OpenAI 50,000; Anthropic 100,000). */
  readonly maxRequests: number;
  /** Most bytes of the batch's requests as sent (OpenAI 200 MB input file; Anthropic 256 MB). */
  readonly maxBytes: number;
}

/** A provider's Batch API. */
export interface BatchClient {
  /** The registry name of the provider it sends to, e.g. `openai`. */
  readonly provider: string;
  readonly limits: BatchLimits;
  /** The first wait before polling a new batch, in ms, when the caller sets none (the simulated client's is short). */
  readonly pollMs?: number | undefined;
  /** The bytes one item takes in a batch (its JSONL line or JSON entry), for chunking by `maxBytes`. */
  sizeOf(item: BatchRequestItem): number;
  /** Submits the items (within {@link BatchClient.limits}) as one batch and returns its id. */
  submit(items: readonly BatchRequestItem[]): Promise<string>;
  /** The batch's current state. */
  retrieve(id: string): Promise<BatchState>;
  /** Every item's outcome, once the batch is no longer `in_progress`. */
  results(id: string): Promise<readonly BatchItemResult[]>;
  /** Asks the provider to cancel the batch (items already answered keep their results). */
  cancel?(id: string): Promise<void>;
}

/** OpenAI's documented Batch API limits: 50,000 requests and 200 MB per input file. */
export const OPENAI_BATCH_LIMITS: BatchLimits = Object.freeze({
  maxRequests: 50_000,
  maxBytes: 200 * 1024 * 1024,
});

/** Anthropic's documented Message Batches limits: 100,000 requests and 256 MB per batch. */
export const ANTHROPIC_BATCH_LIMITS: BatchLimits = Object.freeze({
  maxRequests: 100_000,
  maxBytes: 256 * 1024 * 1024,
});

/**
 * Splits items into consecutive chunks within `limits` (and at most `maxItems` per chunk when given), in
 * order. An item larger than `maxBytes` on its own gets a chunk of its own (the provider then refuses it).
 */
export function chunkBatchItems<T>(
  items: readonly T[],
  limits: BatchLimits,
  sizeOf: (item: T) => number,
  maxItems = limits.maxRequests,
): T[][] {
  const most = Math.max(1, Math.min(maxItems, limits.maxRequests));
  const chunks: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = sizeOf(item);
    if (current.length > 0 && (current.length >= most || bytes + size > limits.maxBytes)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/**
 * A batch item's response as its online call would have returned it: `provider` and `model` those of the
 * request; for a request with `output`, the structured output (Anthropic's forced output tool, else the
 * text parsed as JSON) as `json` and its JSON text as `text`; no `json` for a request without `output`.
 */
export function finishBatchResponse(
  provider: string,
  request: ModelRequest,
  response: ModelResponse,
): ModelResponse {
  const base: ModelResponse = { ...response, provider, model: request.model, json: undefined };
  const output = request.output;
  if (output === undefined) {
    const { json: _json, ...rest } = base;
    return rest;
  }
  const forced = response.toolCalls.find((call) => call.name === output.name);
  if (forced !== undefined) {
    const toolCalls = response.toolCalls.filter((call) => call !== forced);
    return {
      ...base,
      text: JSON.stringify(forced.arguments),
      json: forced.arguments,
      toolCalls,
      finishReason:
        toolCalls.length === 0 && response.finishReason === 'tool_calls' ? 'stop' : response.finishReason,
    };
  }
  try {
    return { ...base, json: JSON.parse(response.text) as unknown };
  } catch {
    const { json: _json, ...rest } = base;
    return rest;
  }
}
