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
  AuthenticationError,
  BadRequestError,
  ConflictError,
  ConnectionError,
  InternalServerError,
  NotFoundError,
  OverloadedError,
  PermissionDeniedError,
  ProviderError,
  RateLimitError,
  RequestTimeoutError,
  providerErrorFromStatus,
} from '../errors.ts';
import type { ProviderErrorInit } from '../errors.ts';
import { redactSecrets } from '../redact.ts';
import { errorMessage } from '../../core/errors.ts';

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

// An `error` event inside a stream has no HTTP status (the response was a 200); its `error.type` says which
// failure it is. The error keeps `status: undefined`: only what the wire said is reported.
const classByType: Readonly<Record<string, (init: ProviderErrorInit) => ProviderError>> = {
  invalid_request_error: (init) => new BadRequestError(init),
  authentication_error: (init) => new AuthenticationError(init),
  permission_error: (init) => new PermissionDeniedError(init),
  not_found_error: (init) => new NotFoundError(init),
  timeout_error: (init) => new RequestTimeoutError(init),
  conflict_error: (init) => new ConflictError(init),
  rate_limit_error: (init) => new RateLimitError(init),
  api_error: (init) => new InternalServerError(init),
  overloaded_error: (init) => new OverloadedError(init),
};

/**
 * Turn anything the Anthropic SDK threw into a {@link ProviderError}. A `ProviderError` passes through unchanged.
 *
 * - `APIUserAbortError`, or any failure once `signal` is aborted → {@link AbortedError}
 * - `APIConnectionTimeoutError` → {@link RequestTimeoutError}; `APIConnectionError`, a dropped body → {@link ConnectionError}
 * - `APIError` with a status → {@link providerErrorFromStatus} (529 → `OverloadedError`; retry-after and
 *   `anthropic-ratelimit-*` headers read)
 * - an `error` event inside a stream → mapped from its `error.type` (e.g. `overloaded_error` → `OverloadedError`,
 *   `api_error` → `InternalServerError`), with `status` left `undefined` (the wire said 200, then the event)
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
    const inStream = { ...base, message: providerMessage, requestId, inStream: true };
    const make = type === undefined || !Object.hasOwn(classByType, type) ? undefined : classByType[type];
    if (make !== undefined) return make(inStream);
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
    return new ConnectionError({ ...base, message: `Connection lost: ${innermost(error)}` });
  }
  const message = errorMessage(error);
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
