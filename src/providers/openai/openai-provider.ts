/**
 * The OpenAI adapter: Chat Completions or the Responses API through the official `openai` SDK: its settings
 * and its factory. The adapters and the SDK they wrap live in `./openai-sdk.ts` and `./openai-responses.ts`,
 * imported on the first call.
 */
import { InvalidOptionError } from '../../core/errors.ts';
import { CredentialsInUrlError, MissingApiKeyError } from '../errors.ts';
import { readEnv, type ProviderEnv } from '../env.ts';
import { lazyProvider } from '../lazy-provider.ts';
import { hasUrlCredentials } from '../redact.ts';
import type { Provider } from '../types.ts';

/** Settings of {@link createOpenAIProvider}. Every field is optional. */
export interface OpenAIProviderSettings {
  /**
   * Registry name of this provider; also the `provider` field of its responses and errors.
   * @default 'openai'
   */
  readonly name?: string | undefined;
  /**
   * API key, sent only in the `Authorization: Bearer` header. Read lazily at the first call, never logged,
   * and scrubbed from every error message.
   * @default process.env.OPENAI_API_KEY
   */
  readonly apiKey?: string | undefined;
  /**
   * Base URL of the API, e.g. `http://localhost:11434/v1` for Ollama. When it is not an OpenAI host and no
   * key is configured, a placeholder key is sent, so local OpenAI-compatible servers work without one.
   * It must have no credentials (`http://user:password@host`): such a URL, here or in `OPENAI_BASE_URL`, is
   * refused with a {@link CredentialsInUrlError} before any request (the key belongs in `apiKey` or
   * `OPENAI_API_KEY`), and wherever a URL is printed its userinfo is shown as `***@`.
   * @default process.env.OPENAI_BASE_URL, else the SDK default `https://api.openai.com/v1`
   */
  readonly baseURL?: string | undefined;
  /**
   * OpenAI organization id (`OpenAI-Organization` header).
   * @default the SDK default (`process.env.OPENAI_ORG_ID`)
   */
  readonly organization?: string | undefined;
  /**
   * Extra headers sent with every request.
   * @default {}
   */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /**
   * A custom `fetch` implementation (proxies, tests).
   * @default globalThis.fetch
   */
  readonly fetch?: typeof globalThis.fetch | undefined;
  /**
   * Per-attempt request timeout in milliseconds: a non-streamed call must be answered in full, and a streamed
   * call must send its response headers, within it; past it the request is aborted and fails with a retryable
   * `RequestTimeoutError`. Raise it for long non-streamed generations.
   * @default 120000 (2 minutes; the SDK's own default of 10 minutes is not used)
   */
  readonly timeoutMs?: number | undefined;
  /**
   * Stream idle timeout in milliseconds: the longest wait for the next event of a streamed call (the first
   * one counted from the response headers); past it the stream is aborted and fails with a retryable
   * `RequestTimeoutError`. A request's own `streamIdleTimeoutMs` (e.g. from the ModelClient) wins.
   * @default 60000
   */
  readonly streamIdleTimeoutMs?: number | undefined;
  /**
   * Whether a missing key is an error. When false, a placeholder key is sent instead.
   * @default true for OpenAI hosts (`*.openai.com`, `*.openai.azure.com`), false for any other `baseURL`
   */
  readonly requireApiKey?: boolean | undefined;
  /**
   * Body field that carries {@link ModelRequest.maxTokens}. OpenAI deprecated `max_tokens` and its reasoning
   * models reject it, while several compatible servers only know `max_tokens`.
   * @default 'max_completion_tokens' for OpenAI hosts, 'max_tokens' for any other `baseURL`
   */
  readonly maxTokensField?: 'max_completion_tokens' | 'max_tokens' | undefined;
  /**
   * Which OpenAI API the calls go to: `'chat'` (Chat Completions, `POST /chat/completions`) or `'responses'`
   * (the Responses API, `POST /responses`: `instructions` and `input` items, `text.format` for structured
   * output, `function_call` / `function_call_output` items for tools, typed stream events, usage with cached
   * and reasoning tokens). Both give the same `ModelResponse`, errors and stream events. Chat
   * Completions stays the default because every OpenAI-compatible server (Ollama, vLLM, LM Studio,
   * llama.cpp) speaks it and few speak the Responses API. The Responses API has no stop sequences: a request
   * with `stop` is refused before it is sent.
   * @default 'chat'
   */
  readonly api?: OpenAIApi | undefined;
}

/** The OpenAI API a provider calls: Chat Completions or the Responses API. */
export type OpenAIApi = 'chat' | 'responses';

/**
 * Create a {@link Provider} backed by the OpenAI Chat Completions API, or by the Responses API with
 * `api: 'responses'`.
 *
 * Nothing is read from the environment, no client is built and the SDK is not even imported until the
 * first call.
 *
 * @throws {MissingApiKeyError} from `complete()`/`stream()`, before any request, when a key is required and absent.
 * @throws {CredentialsInUrlError} from `complete()`/`stream()` and `preflight()`, before any request, when the base
 *   URL has credentials in it.
 * @example
 * ```ts
 * const openai = createOpenAIProvider();
 * const local = createOpenAIProvider({ name: 'ollama', baseURL: 'http://localhost:11434/v1' });
 * const responses = createOpenAIProvider({ api: 'responses' });
 * ```
 */
export function createOpenAIProvider(settings: OpenAIProviderSettings = {}): Provider {
  const name = settings.name ?? 'openai';
  // Typed wider than OpenAIApi: JavaScript callers and config files can pass anything.
  const api: string = settings.api ?? 'chat';
  if (api !== 'chat' && api !== 'responses') {
    throw new InvalidOptionError('api', api, "'chat' or 'responses'", {
      hint: `Set the \`api\` of the ${name} provider to 'chat' (Chat Completions) or 'responses'.`,
    });
  }
  const load = async (): Promise<Provider> =>
    api === 'responses'
      ? new (await import('./openai-responses.ts')).OpenAIResponsesProvider(settings)
      : new (await import('./openai-sdk.ts')).OpenAIProvider(settings);
  return lazyProvider(name, load, {
    preflight: () => {
      resolveOpenAIAccess(settings, name);
    },
  });
}

/** Where calls go and with which key, read from the settings, else the environment. Package-internal. */
export interface OpenAIAccess {
  readonly baseURL: string | undefined;
  readonly configuredKey: string | undefined;
  /** Whether `baseURL` is the vendor's own API (the default when unset). */
  readonly official: boolean;
}

/**
 * Reads the base URL and the key of a provider the way its first call will, without importing its SDK.
 * Package-internal: the adapter, {@link Provider.preflight} and the command's pre-flight share it; `env` is
 * where unset settings are read from.
 *
 * @throws {CredentialsInUrlError} when the base URL has credentials in it (`http://user:password@host`).
 * @throws {MissingApiKeyError} when a key is required (the vendor's own host, or `requireApiKey`) and none is set.
 */
export function resolveOpenAIAccess(
  settings: OpenAIProviderSettings,
  name: string,
  env: ProviderEnv = process.env,
): OpenAIAccess {
  const baseURL = settings.baseURL ?? readEnv('OPENAI_BASE_URL', env);
  if (baseURL !== undefined && hasUrlCredentials(baseURL)) {
    const setting = settings.baseURL === undefined ? 'OPENAI_BASE_URL' : 'baseURL';
    throw new CredentialsInUrlError({ provider: name, url: baseURL, setting, keyEnvVar: 'OPENAI_API_KEY' });
  }
  const official = isOpenAIHost(baseURL);
  const configuredKey = settings.apiKey ?? readEnv('OPENAI_API_KEY', env);
  if (configuredKey === undefined && (settings.requireApiKey ?? official))
    throw new MissingApiKeyError(name, 'OPENAI_API_KEY');
  return { baseURL, configuredKey, official };
}

function isOpenAIHost(baseURL: string | undefined): boolean {
  if (baseURL === undefined) return true;
  try {
    const host = new URL(baseURL).hostname;
    return host === 'openai.com' || host.endsWith('.openai.com') || host.endsWith('.openai.azure.com');
  } catch {
    return false;
  }
}
