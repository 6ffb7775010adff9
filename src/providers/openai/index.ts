/** The OpenAI adapter (Chat Completions over the official SDK). */
export { createOpenAIProvider } from './openai-provider.ts';
export type { OpenAIProviderSettings } from './openai-provider.ts';
export { mapOpenAIError } from './map-openai-error.ts';
export type { MapErrorContext } from './map-openai-error.ts';
