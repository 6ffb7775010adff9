/**
 * Token estimates for rate limiting and budgets: cheap enough to run before every call. The JSON lengths of
 * tool definitions, output schemas and tool calls are measured once per object and remembered (the same
 * definitions go with every call of a node), so an estimate costs a few additions, not a serialisation.
 */
import type { ModelRequest } from './types.ts';

/** Options of {@link estimateTokens}. */
export interface EstimateTokensOptions {
  /** Output tokens assumed when the request sets no `maxTokens`. @default 1024 */
  readonly defaultOutputTokens?: number | undefined;
}

/** `JSON.stringify(value).length` by object; objects of a request are treated as immutable once sent. */
const jsonLengths = new WeakMap<object, number>();

function jsonLength(value: object): number {
  let length = jsonLengths.get(value);
  if (length === undefined) {
    length = JSON.stringify(value).length;
    jsonLengths.set(value, length);
  }
  return length;
}

/** `JSON.stringify(items).length`, from the remembered length of each item. */
function arrayJsonLength(items: readonly object[]): number {
  let length = 2 + Math.max(0, items.length - 1); // brackets and commas
  for (const item of items) length += jsonLength(item);
  return length;
}

/**
 * A cheap, provider-neutral estimate of a request's tokens for rate limiting: a quarter of the characters of
 * the system text, the messages (tool calls included), the tool definitions and the output schema (each as
 * JSON), rounded up, plus `maxTokens` (or `defaultOutputTokens`) for the output. It over-counts the output
 * rather than under-counts it; a rate limiter corrects it with the real usage when the call settles, and
 * learns how its estimates compare with real usage.
 */
export function estimateTokens(request: ModelRequest, options: EstimateTokensOptions = {}): number {
  let chars = request.system?.length ?? 0;
  for (const message of request.messages) {
    chars += message.content.length;
    if (message.role === 'assistant' && message.toolCalls !== undefined)
      chars += arrayJsonLength(message.toolCalls);
  }
  if (request.tools !== undefined) chars += arrayJsonLength(request.tools);
  if (request.output !== undefined) chars += jsonLength(request.output.schema);
  return Math.ceil(chars / 4) + (request.maxTokens ?? options.defaultOutputTokens ?? 1024);
}
