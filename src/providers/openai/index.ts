/** The OpenAI adapter (Chat Completions or the Responses API, over the official SDK). */
export { createOpenAIProvider } from './openai-provider.ts';
export type { OpenAIApi, OpenAIProviderSettings } from './openai-provider.ts';
