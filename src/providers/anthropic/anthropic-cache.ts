/**
 * Anthropic prompt caching: the shortest prefix each model caches, as Anthropic documents it. Imports no SDK,
 * so the request side can decide on breakpoints without loading it.
 */

/**
 * Minimum cacheable prompt length in tokens, by model id prefix (longest prefix wins), as Anthropic's prompt
 * caching guide publishes it: a prefix shorter than this is processed without caching (and without a
 * cache-write charge) even with a breakpoint.
 */
const MIN_CACHE_TOKENS: readonly (readonly [prefix: string, tokens: number])[] = [
  ['claude-opus-4-5', 4096],
  ['claude-haiku-4-5', 4096],
  ['claude-3-5-haiku', 2048],
  ['claude-3-haiku', 2048],
  ['claude-opus-4', 1024],
  ['claude-sonnet-4', 1024],
  ['claude-3-7-sonnet', 1024],
  ['claude-3-opus', 1024],
];

/** The minimum assumed for a model not in the list: Anthropic's smallest published one. */
const DEFAULT_MIN_CACHE_TOKENS = 1024;

/**
 * The shortest prompt prefix, in tokens, that `model` (an Anthropic model id without its provider prefix,
 * dated snapshots included) caches: 4096 for Claude Opus 4.5 and Haiku 4.5, 2048 for the Haiku 3 models,
 * 1024 for the other listed models and for a model it does not know.
 *
 * @example
 * ```ts
 * anthropicMinCacheTokens('claude-sonnet-4-5-20250929'); // 1024
 * ```
 */
export function anthropicMinCacheTokens(model: string): number {
  let best: readonly [string, number] | undefined;
  for (const entry of MIN_CACHE_TOKENS) {
    if (model.startsWith(entry[0]) && (best === undefined || entry[0].length > best[0].length)) best = entry;
  }
  return best?.[1] ?? DEFAULT_MIN_CACHE_TOKENS;
}
