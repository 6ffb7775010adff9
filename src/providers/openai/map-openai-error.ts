/**
 * Map errors thrown by the official `openai` SDK (and by the fetch underneath it) to our ProviderError family.
 * Only plain fields are copied: the SDK error, its headers and its request are never kept.
 */
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import {
  AbortedError,
  ConnectionError,
  InternalServerError,
  ProviderError,
  RateLimitError,
  RequestTimeoutError,
  providerErrorFromStatus,
} from '../errors.ts';
import { redactSecrets } from '../redact.ts';
import { errorMessage } from '../../core/errors.ts';

/** What the adapter knows about the failed call. */
export interface MapErrorContext {
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

/**
 * Turn anything the OpenAI SDK threw into a {@link ProviderError}. A `ProviderError` passes through unchanged.
 *
 * - `APIUserAbortError`, or any failure once `signal` is aborted → {@link AbortedError}
 * - `APIConnectionTimeoutError` → {@link RequestTimeoutError}; `APIConnectionError`, a dropped body → {@link ConnectionError}
 * - `APIError` with a status → {@link providerErrorFromStatus} (retry-after and rate-limit headers read)
 * - an error event inside a stream (no status on the wire, so `status` stays `undefined`) → mapped from its
 *   `type`/`code`: `server_error` → {@link InternalServerError}, a rate limit → {@link RateLimitError}, else a
 *   non-retryable `api_error`
 * - a malformed response body → retryable `ProviderError` with code `api_error`
 */
export function mapOpenAIError(error: unknown, context: MapErrorContext): ProviderError {
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
    return new ConnectionError({ ...base, message: connectionMessage(error) });
  }
  if (isApiError(error)) {
    const apiError = error;
    const body = apiError.error as { message?: unknown; type?: unknown; code?: unknown } | undefined;
    const providerMessage = typeof body?.message === 'string' ? body.message : stripStatus(apiError.message);
    const requestId = apiError.requestID ?? apiError.headers?.get('x-request-id') ?? context.requestId;
    const init = { ...base, message: providerMessage, requestId, headers: apiError.headers };
    if (apiError.status !== undefined) return providerErrorFromStatus(apiError.status, init);
    // An error event inside a stream, after a 200: no status was on the wire, so none is reported.
    const type = `${typeof body?.type === 'string' ? body.type : ''} ${typeof body?.code === 'string' ? body.code : ''}`;
    const inStream = { ...base, message: providerMessage, requestId, inStream: true };
    if (/rate_limit|requests|tokens/.test(type)) return new RateLimitError(inStream);
    if (/server_error|overloaded/.test(type)) return new InternalServerError(inStream);
    return new ProviderError('api_error', inStream, false);
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
    return new ConnectionError({ ...base, message: `Connection lost: ${innermostMessage(error)}` });
  }
  const message = errorMessage(error);
  return new ProviderError('api_error', { ...base, message: redactSecrets(message, context.secrets) }, false);
}

/** Keep the (redacted-later) innermost cause: "fetch failed" alone says nothing. */
function connectionMessage(error: Error): string {
  const inner = innermostMessage(error);
  return inner === error.message ? error.message : `${error.message} (${inner})`;
}

function innermostMessage(error: Error): string {
  let current: unknown = error;
  let message = error.message;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    message = current.message || message;
    current = current.cause;
  }
  return message;
}

// `instanceof` on the generic class would yield `any` type arguments; the guard pins the declared defaults.
function isApiError(error: unknown): error is APIError {
  return error instanceof APIError;
}

function stripStatus(message: string): string {
  return message.replace(/^\d{3}\s+/, '');
}
