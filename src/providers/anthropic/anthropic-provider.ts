/**
 * The Anthropic adapter: the Messages API through the official `@anthropic-ai/sdk`: its settings and its factory. The adapter and the SDK it wraps live in
 * `./anthropic-sdk.ts`, imported on the first call.
 */
import { CredentialsInUrlError, MissingApiKeyError } from '../errors.ts';
import { readEnv, type ProviderEnv } from '../env.ts';
import { lazyProvider } from '../lazy-provider.ts';
import { hasUrlCredentials } from '../redact.ts';
import type { Provider } from '../types.ts';

/** Settings of {@link createAnthropicProvider}. Every field is optional. */
export interface AnthropicProviderSettings {
  /**
   * Registry name of this provider; also the `provider` field of its responses and errors.
   * @default 'anthropic'
   */
  readonly name?: string | undefined;
  /**
   * API key. Read lazily at the first call, never logged, and scrubbed from every error message. The SDK
   * sends it as its auth header (`Authorization: Bearer` in SDK 1.x).
   * @default process.env.ANTHROPIC_API_KEY
   */
  readonly apiKey?: string | undefined;
  /**
   * Base URL of the API (the SDK appends `/v1/messages`). It must have no credentials
   * (`http://user:password@host`): such a URL, here or in `ANTHROPIC_BASE_URL`, is refused with a
   * {@link CredentialsInUrlError} before any request (the key belongs in `apiKey` or `ANTHROPIC_API_KEY`), and
   * wherever a URL is printed its userinfo is shown as `***@`.
   * @default process.env.ANTHROPIC_BASE_URL, else the SDK default `https://api.anthropic.com`
   */
  readonly baseURL?: string | undefined;
  /**
   * Extra headers sent with every request (e.g. `anthropic-beta`).
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
   * `max_tokens` to send when the request sets none (the Messages API requires one).
   * @default 1024
   */
  readonly defaultMaxTokens?: number | undefined;
  /**
   * How {@link ModelRequest.output} is requested.
   * - `'tool'`: a tool named after the output spec, whose `input_schema` is the schema, forced with
   *   `tool_choice: {type: 'tool', name}`; its input becomes `json` and `text` is `JSON.stringify(json)`.
   *   Works with every tool-capable Claude model and with Anthropic-compatible proxies.
   * - `'output_config'`: the API's native structured outputs (`output_config.format: {type: 'json_schema'}`),
   *   where the model writes the JSON as text. Needs a model that supports it.
   * @default 'tool'
   */
  readonly structuredOutput?: 'tool' | 'output_config' | undefined;
  /**
   * Whether a missing key is an error. When false, a placeholder key is sent instead.
   * @default true for Anthropic hosts (`*.anthropic.com`), false for any other `baseURL`
   */
  readonly requireApiKey?: boolean | undefined;
}

/**
 * Create a {@link Provider} backed by the Anthropic Messages API.
 *
 * Nothing is read from the environment, no client is built and the SDK is not even imported until the
 * first call.
 *
 * {@link ModelRequest.temperature} is not sent: API version 2026-10-21 (what SDK 1.x sends) rejects
 * `temperature`, `top_p` and `top_k` with a 400, even at their defaults. To use them anyway, pin
 * `headers: {'anthropic-version': '2023-06-01'}` and pass `providerOptions.anthropic.temperature`.
 *
 * @throws {MissingApiKeyError} from `complete()`/`stream()`, before any request, when a key is required and absent.
 * @throws {CredentialsInUrlError} from `complete()`/`stream()` and `preflight()`, before any request, when the base
 *   URL has credentials in it.
 * @example
 * ```ts
 * const claude = createAnthropicProvider();
 * await claude.complete({ model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'Hi' }] });
 * ```
 */
export function createAnthropicProvider(settings: AnthropicProviderSettings = {}): Provider {
  const name = settings.name ?? 'anthropic';
  return lazyProvider(
    name,
    async () => new (await import('./anthropic-sdk.ts')).AnthropicProvider(settings),
    {
      preflight: () => {
        resolveAnthropicAccess(settings, name);
      },
    },
  );
}

/** Where calls go and with which key, read from the settings, else the environment. Package-internal. */
export interface AnthropicAccess {
  readonly baseURL: string | undefined;
  readonly configuredKey: string | undefined;
}

/**
 * Reads the base URL and the key of a provider the way its first call will, without importing its SDK.
 * Package-internal: the adapter, {@link Provider.preflight} and the command's pre-flight share it; `env` is
 * where unset settings are read from.
 *
 * @throws {CredentialsInUrlError} when the base URL has credentials in it (`http://user:password@host`).
 * @throws {MissingApiKeyError} when a key is required (the vendor's own host, or `requireApiKey`) and none is set.
 */
export function resolveAnthropicAccess(
  settings: AnthropicProviderSettings,
  name: string,
  env: ProviderEnv = process.env,
): AnthropicAccess {
  const baseURL = settings.baseURL ?? readEnv('ANTHROPIC_BASE_URL', env);
  if (baseURL !== undefined && hasUrlCredentials(baseURL)) {
    const setting = settings.baseURL === undefined ? 'ANTHROPIC_BASE_URL' : 'baseURL';
    throw new CredentialsInUrlError({
      provider: name,
      url: baseURL,
      setting,
      keyEnvVar: 'ANTHROPIC_API_KEY',
    });
  }
  const official = isAnthropicHost(baseURL);
  const configuredKey = settings.apiKey ?? readEnv('ANTHROPIC_API_KEY', env);
  if (configuredKey === undefined && (settings.requireApiKey ?? official))
    throw new MissingApiKeyError(name, 'ANTHROPIC_API_KEY');
  return { baseURL, configuredKey };
}

function isAnthropicHost(baseURL: string | undefined): boolean {
  if (baseURL === undefined) return true;
  try {
    const host = new URL(baseURL).hostname;
    return host === 'anthropic.com' || host.endsWith('.anthropic.com');
  } catch {
    return false;
  }
}
