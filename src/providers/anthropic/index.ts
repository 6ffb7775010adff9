/** The Anthropic adapter (Messages API over the official SDK). */
export { createAnthropicProvider } from './anthropic-provider.ts';
export type { AnthropicProviderSettings } from './anthropic-provider.ts';
export { anthropicMinCacheTokens } from './anthropic-cache.ts';
