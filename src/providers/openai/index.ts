/** The OpenAI adapter (Chat Completions over the official SDK). */
export { createOpenAIProvider } from './openai-provider.ts';
export type { OpenAIProviderSettings } from './openai-provider.ts';
