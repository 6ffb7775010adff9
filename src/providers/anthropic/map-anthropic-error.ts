/**
 * Map errors thrown by the official `@anthropic-ai/sdk` (and by the fetch underneath it) to our
 * ProviderError family. Only plain fields are copied: the SDK error, its headers and its request are never kept.
 */
import {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
} from '@anthropic-ai/sdk';
import {
  AbortedError,
  ConnectionError,
  ProviderError,
  RequestTimeoutError,
  providerErrorFromStatus,
} from '../errors.ts';
import { redactSecrets } from '../redact.ts';

/** What the adapter knows about the failed call. */
export interface AnthropicErrorContext {
  /** Registry name of the provider. */
  readonly provider: string;
  /** Model id of the call. */
  readonly model?: string | undefined;
  /** Secrets to scrub from every message (the API key in use). */
  readonly secrets: readonly string[];
  /** The caller's signal; when it is aborted, any failure is reported as {@link AbortedError}. */
  readonly signal?: AbortSignal | undefined;
  /** Request id already known (e.g. from a stream's headers), used when the error carries none. */
  readonly requestId?: string | undefined;
}

// An `error` event inside a stream has no HTTP status; its `error.type` says which status it stands for.
const statusByType: Readonly<Record<string, number>> = {
  invalid_request_error: 400,
  authentication_error: 401,
  billing_error: 402,
  permission_error: 403,
  not_found_error: 404,
  timeout_error: 408,
  conflict_error: 409,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  overloaded_error: 529,
};

/**
 * Turn anything the Anthropic SDK threw into a {@link ProviderError}. A `ProviderError` passes through unchanged.
 *
 * - `APIUserAbortError`, or any failure once `signal` is aborted → {@link AbortedError}
 * - `APIConnectionTimeoutError` → {@link RequestTimeoutError}; `APIConnectionError`, a dropped body → {@link ConnectionError}
 * - `APIError` with a status → {@link providerErrorFromStatus} (529 → `OverloadedError`; retry-after and
 *   `anthropic-ratelimit-*` headers read)
 * - an `error` event inside a stream → mapped from its `error.type` (e.g. `overloaded_error` → `OverloadedError`)
 * - a malformed response body → retryable `ProviderError` with code `api_error`
 */
export function mapAnthropicError(error: unknown, context: AnthropicErrorContext): ProviderError {
  if (error instanceof ProviderError) return error;
  const base = {
    provider: context.provider,
    model: context.model,
    secrets: context.secrets,
    requestId: context.requestId,
  };
  if (error instanceof APIUserAbortError || context.signal?.aborted === true) return new AbortedError(base);
  if (error instanceof APIConnectionTimeoutError) return new RequestTimeoutError(base);
  if (error instanceof APIConnectionError) {
    return new ConnectionError({ ...base, message: withInnermost(error) });
  }
  if (isApiError(error)) {
    const body = error.error as { error?: { message?: unknown; type?: unknown } } | undefined;
    const providerMessage =
      error.apiMessage ??
      (typeof body?.error?.message === 'string'
        ? body.error.message
        : error.message.replace(/^\d{3}\s+/, ''));
    const requestId = error.requestID ?? error.headers?.get('request-id') ?? context.requestId;
    const init = { ...base, message: providerMessage, requestId, headers: error.headers };
    if (error.status !== undefined) return providerErrorFromStatus(error.status, init);
    const type = error.type ?? (typeof body?.error?.type === 'string' ? body.error.type : undefined);
    const status = type === undefined ? undefined : statusByType[type];
    if (status !== undefined) return providerErrorFromStatus(status, { ...init, headers: undefined });
    return new ProviderError('api_error', { ...base, message: providerMessage, requestId }, false);
  }
  if (error instanceof SyntaxError) {
    return new ProviderError(
      'api_error',
      { ...base, message: `Malformed response from the server: ${error.message}` },
      true,
    );
  }
  if (error instanceof TypeError) {
    // undici reports a connection lost while reading the body as `TypeError: terminated`.
    return new ConnectionError({ ...base, message: `Connection lost: ${innermost(error)}` });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new ProviderError('api_error', { ...base, message: redactSecrets(message, context.secrets) }, false);
}

// `instanceof` on the generic class would yield `any` type arguments; the guard pins the declared defaults.
function isApiError(error: unknown): error is APIError {
  return error instanceof APIError;
}

function withInnermost(error: Error): string {
  const inner = innermost(error);
  return inner === error.message ? error.message : `${error.message} (${inner})`;
}

function innermost(error: Error): string {
  let current: unknown = error;
  let message = error.message;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    message = current.message || message;
    current = current.cause;
  }
  return message;
}
