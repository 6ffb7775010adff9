/**
 * The ProviderError family: every transport or API failure of a model call, mapped once at the adapter
 * boundary. Each error carries only copied, secret-free fields (provider, model, status, request id,
 * retry-after, rate-limit state) and never a reference to an SDK error, request or headers object.
 */
import { SymphonizerError } from '../core/errors.ts';
import { parseRateLimitHeaders } from './rate-limit-headers.ts';
import type { HeadersLike } from './rate-limit-headers.ts';
import { REDACTED_USERINFO, redactSecrets, redactUrlCredentials } from './redact.ts';
import type { RateLimitInfo } from './types.ts';

/** Codes of the errors `symphonizer/providers` raises. */
export type ProviderErrorCode =
  | 'api_error'
  | 'bad_request'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found'
  | 'conflict'
  | 'unprocessable_entity'
  | 'rate_limit_error'
  | 'overloaded_error'
  | 'server_error'
  | 'request_timeout'
  | 'connection_error'
  | 'aborted'
  | 'missing_api_key'
  | 'credentials_in_url'
  | 'unknown_provider'
  | 'invalid_model_id'
  | 'retries_exhausted'
  | 'budget_exceeded'
  | 'output_validation';

/** What every {@link ProviderError} constructor accepts. Only these fields are copied onto the error. */
export interface ProviderErrorInit {
  /** Registry name of the provider, e.g. `openai`. */
  readonly provider: string;
  /** Model id without the provider prefix, when known. */
  readonly model?: string | undefined;
  /** HTTP status, when the server answered. */
  readonly status?: number | undefined;
  /** The provider's request id (`x-request-id` / `request-id`), when known. */
  readonly requestId?: string | undefined;
  /** The provider's own error message (it is redacted before use). */
  readonly message?: string | undefined;
  /** Milliseconds the server asked us to wait; overrides the value read from `rateLimit`. */
  readonly retryAfterMs?: number | undefined;
  /** Rate-limit state from the error response's headers. */
  readonly rateLimit?: RateLimitInfo | undefined;
  /** Exact secret strings to scrub from the message (e.g. the API key in use). Not stored. */
  readonly secrets?: readonly string[] | undefined;
  /** What the user can do about it, one sentence. */
  readonly hint?: string | undefined;
  /** An underlying cause. Adapters never pass SDK errors here (they may hold request headers). */
  readonly cause?: unknown;
  /**
   * The failure arrived as an error event inside a stream, after a 200: no HTTP status was on the wire, so
   * the class's usual status (e.g. 500 for {@link InternalServerError}) is not filled in and `status` stays
   * `undefined`; the class and code come from the event's error type. @default false
   */
  readonly inStream?: boolean | undefined;
}

/** True for statuses worth retrying: 408, 409, 429 and every 5xx (529 "overloaded" included). */
export function isRetryableStatus(status: number | undefined): boolean {
  if (status === undefined) return false;
  return status === 408 || status === 409 || status === 429 || (status >= 500 && status <= 599);
}

/**
 * Base class of every provider failure.
 *
 * @example
 * ```ts
 * try { await provider.complete(request); }
 * catch (err) { if (err instanceof ProviderError && err.isRetryable) await sleep(err.retryAfterMs ?? 1000); }
 * ```
 */
export class ProviderError extends SymphonizerError<ProviderErrorCode> {
  /** Registry name of the provider, e.g. `openai`. */
  readonly provider: string;
  /** Model id without the provider prefix, when known. */
  readonly model: string | undefined;
  /** HTTP status, when the server answered. */
  readonly status: number | undefined;
  /** The provider's request id, to quote when contacting its support. */
  readonly requestId: string | undefined;
  /** How long the server asked us to wait before retrying, in milliseconds. */
  readonly retryAfterMs: number | undefined;
  /** Rate-limit state reported with the error, when any. */
  readonly rateLimit: RateLimitInfo | undefined;
  /** Whether retrying the same request may succeed; decided at construction. */
  readonly isRetryable: boolean;

  /**
   * @param code - the stable error code.
   * @param init - the copied fields; `init.message` is the provider's own message.
   * @param isRetryable - overrides the status-based default ({@link isRetryableStatus}).
   */
  constructor(code: ProviderErrorCode, init: ProviderErrorInit, isRetryable?: boolean) {
    super(code, formatMessage(init), { hint: init.hint, cause: init.cause });
    this.provider = init.provider;
    this.model = init.model;
    this.status = init.status;
    this.requestId = init.requestId;
    this.rateLimit = init.rateLimit === undefined ? undefined : Object.freeze({ ...init.rateLimit });
    this.retryAfterMs = init.retryAfterMs ?? init.rateLimit?.retryAfterMs;
    this.isRetryable = isRetryable ?? isRetryableStatus(init.status);
  }
}

/** 400: the request was malformed or refused by validation. Not retryable. */
export class BadRequestError extends ProviderError {
  constructor(init: ProviderErrorInit) {
    super('bad_request', withDefaults(init, { status: 400 }), false);
  }
}

/** 401: the API key is missing, wrong or revoked. Not retryable. */
export class AuthenticationError extends ProviderError {
  constructor(init: ProviderErrorInit) {
    super('authentication_error', withDefaults(init, { status: 401, hint: 'check the API key' }), false);
  }
}

/** 403: the key may not use this model or resource. Not retryable. */
export class PermissionDeniedError extends ProviderError {
  constructor(init: ProviderErrorInit) {
    super('permission_error', withDefaults(init, { status: 403 }), false);
  }
}

/** 404: unknown model or endpoint. Not retryable. */
export class NotFoundError extends ProviderError {
  constructor(init: ProviderErrorInit) {
    super('not_found', withDefaults(init, { status: 404, hint: 'check the model id and baseURL' }), false);
  }
}

/** 409: a conflicting concurrent request. Retryable. */
export class ConflictError extends ProviderError {
  constructor(init: ProviderErrorInit) {
    super('conflict', withDefaults(init, { status: 409 }), true);
  }
}

/** 422: the request was well-formed but semantically refused. Not retryable. */
export class UnprocessableEntityError extends ProviderError {
  constructor(init: ProviderErrorInit) {
    super('unprocessable_entity', withDefaults(init, { status: 422 }), false);
  }
}

/** 429: a rate limit or quota was hit. Retryable, after `retryAfterMs` when the server said. */
export class RateLimitError extends ProviderError {
  constructor(init: ProviderErrorInit) {
    super('rate_limit_error', withDefaults(init, { status: 429 }), true);
  }
}

/** 529: the provider is overloaded (Anthropic). Retryable. */
export class OverloadedError extends ProviderError {
  constructor(init: ProviderErrorInit) {
    super('overloaded_error', withDefaults(init, { status: 529 }), true);
  }
}

/** Any other 5xx. Retryable. */
export class InternalServerError extends ProviderError {
  constructor(init: ProviderErrorInit) {
    super('server_error', withDefaults(init, { status: 500 }), true);
  }
}

/** 408 from the server, or a client-side timeout (no status). Retryable. */
export class RequestTimeoutError extends ProviderError {
  constructor(init: ProviderErrorInit) {
    super('request_timeout', withDefaults(init, { message: 'Request timed out.' }), true);
  }
}

/** The connection failed or dropped before a complete response arrived. Retryable. */
export class ConnectionError extends ProviderError {
  constructor(init: ProviderErrorInit) {
    super('connection_error', withDefaults(init, { message: 'Connection error.' }), true);
  }
}

/** The caller aborted the request through its `signal`. Never retried. */
export class AbortedError extends ProviderError {
  constructor(init: ProviderErrorInit) {
    super('aborted', withDefaults(init, { message: 'Request was aborted.' }), false);
  }
}

/** No API key was configured; raised before any request is sent. Never retried. */
export class MissingApiKeyError extends ProviderError {
  /** The environment variable that would supply the key, e.g. `OPENAI_API_KEY`. */
  readonly envVar: string;

  constructor(provider: string, envVar: string) {
    super(
      'missing_api_key',
      {
        provider,
        message: `No API key for provider "${provider}".`,
        hint: `Set ${envVar} or pass apiKey`,
      },
      false,
    );
    this.envVar = envVar;
  }
}

/** Fields of {@link CredentialsInUrlError}. */
export interface CredentialsInUrlErrorInit {
  /** Registry name of the provider, e.g. `openai`. */
  readonly provider: string;
  /** The URL as configured. Only its redacted form is kept. */
  readonly url: string;
  /** Where the URL came from: the setting (`baseURL`) or the environment variable (`OPENAI_BASE_URL`). */
  readonly setting: string;
  /** The environment variable that supplies the provider's key, e.g. `OPENAI_API_KEY`. */
  readonly keyEnvVar: string;
}

/**
 * A base URL has credentials in it (`http://user:password@host`): raised before any request, and never
 * retried, since the SDKs would not send them (and would print them). The key belongs in the `apiKey` setting
 * or the provider's key variable; `url` is the URL with its userinfo replaced by `***`.
 */
export class CredentialsInUrlError extends ProviderError {
  /** The configured URL with its userinfo redacted: `http://***@host/v1`. */
  readonly url: string;
  /** Where the URL came from: `baseURL` (the setting) or the environment variable, e.g. `OPENAI_BASE_URL`. */
  readonly setting: string;
  /** The environment variable that supplies the key, e.g. `OPENAI_API_KEY`. */
  readonly keyEnvVar: string;

  constructor(init: CredentialsInUrlErrorInit) {
    const url = redactedUrl(init.url);
    const from = init.setting === 'baseURL' ? 'the baseURL setting' : init.setting;
    super(
      'credentials_in_url',
      {
        provider: init.provider,
        message: `The base URL ${url} (from ${from}) has credentials in it; nothing was sent.`,
        hint:
          `put the API key in the apiKey setting or ${init.keyEnvVar}, ` +
          `and give ${init.setting === 'baseURL' ? 'baseURL' : init.setting} with no user:password@`,
      },
      false,
    );
    this.url = url;
    this.setting = init.setting;
    this.keyEnvVar = init.keyEnvVar;
  }
}

/** A model id named a provider that is not registered; `known` lists the registered ones. */
export class UnknownProviderError extends ProviderError {
  /** Names of the providers that are registered. */
  readonly known: readonly string[];

  constructor(provider: string, known: readonly string[]) {
    super(
      'unknown_provider',
      {
        provider,
        message: `Unknown provider "${provider}".`,
        hint: `known providers: ${known.length === 0 ? '(none)' : known.join(', ')}`,
      },
      false,
    );
    this.known = Object.freeze([...known]);
  }
}

/** A model id is not of the form `provider:model`. `provider` is whatever preceded the colon, or ''. */
export class InvalidModelIdError extends ProviderError {
  /** The id as received. */
  readonly modelId: string;

  constructor(modelId: string) {
    const colon = modelId.indexOf(':');
    super(
      'invalid_model_id',
      {
        provider: colon > 0 ? modelId.slice(0, colon) : '',
        message: `Invalid model id ${JSON.stringify(modelId)}.`,
        hint: 'expected "provider:model", e.g. "openai:gpt-4.1-mini", "anthropic:claude-sonnet-4-5" or "sim:echo"',
      },
      false,
    );
    this.modelId = modelId;
  }
}

/** Fields of {@link providerErrorFromStatus}. */
export interface ProviderErrorFromStatusInit extends Omit<ProviderErrorInit, 'status' | 'rateLimit'> {
  /** Error response headers; read for rate-limit state and retry-after, then dropped. */
  readonly headers?: HeadersLike | undefined;
  /** Current time for HTTP-date retry-after values. @default `Date.now()` */
  readonly now?: number | undefined;
}

/**
 * Build the right {@link ProviderError} subclass for an HTTP error status. Headers are parsed into
 * `rateLimit` / `retryAfterMs` and not kept. Statuses without a dedicated class give a plain `ProviderError`
 * (`code: 'api_error'`), retryable per {@link isRetryableStatus}.
 */
export function providerErrorFromStatus(status: number, init: ProviderErrorFromStatusInit): ProviderError {
  const { headers, now, ...rest } = init;
  const rateLimit = headers === undefined ? undefined : parseRateLimitHeaders(headers, now);
  const full: ProviderErrorInit = {
    ...rest,
    status,
    rateLimit: rateLimit !== undefined && Object.keys(rateLimit).length > 0 ? rateLimit : undefined,
  };
  switch (status) {
    case 400:
      return new BadRequestError(full);
    case 401:
      return new AuthenticationError(full);
    case 403:
      return new PermissionDeniedError(full);
    case 404:
      return new NotFoundError(full);
    case 408:
      return new RequestTimeoutError(full);
    case 409:
      return new ConflictError(full);
    case 422:
      return new UnprocessableEntityError(full);
    case 429:
      return new RateLimitError(full);
    case 529:
      return new OverloadedError(full);
    default:
      if (status >= 500 && status <= 599) return new InternalServerError(full);
      return new ProviderError('api_error', full);
  }
}

function formatMessage(init: ProviderErrorInit): string {
  const context = [
    init.model === undefined ? undefined : `model ${init.model}`,
    init.status === undefined ? undefined : `status ${init.status}`,
    init.requestId === undefined ? undefined : `request ${init.requestId}`,
  ].filter((part) => part !== undefined);
  const where = context.length === 0 ? init.provider : `${init.provider} (${context.join(', ')})`;
  const detail = redactSecrets(init.message?.trim() || 'Request failed.', init.secrets);
  return where === '' ? detail : `${where}: ${detail}`;
}

/**
 * `url` with its userinfo (user name and password) replaced by `***`, as it was written when the text
 * redaction removes the userinfo whole, else rebuilt from its parsed parts, so no part of the credentials
 * survives whatever characters they hold.
 */
function redactedUrl(url: string): string {
  const asText = redactUrlCredentials(url);
  try {
    const check = new URL(asText);
    if (check.username === REDACTED_USERINFO && check.password === '') return asText;
  } catch {
    // not a URL once redacted: rebuild it below
  }
  try {
    const parsed = new URL(url);
    const userinfo = parsed.username !== '' || parsed.password !== '' ? `${REDACTED_USERINFO}@` : '';
    const authority = parsed.host === '' ? '' : `//${userinfo}${parsed.host}`;
    return `${parsed.protocol}${authority}${parsed.pathname}${parsed.search}${parsed.hash}`;
  } catch {
    return asText;
  }
}

/**
 * Fill `status`, `hint` and `message` only where the caller left them undefined (explicit undefined too);
 * never `status` for an error that came inside a stream (`inStream`), which had none on the wire.
 */
function withDefaults(
  init: ProviderErrorInit,
  defaults: { readonly status?: number; readonly hint?: string; readonly message?: string },
): ProviderErrorInit {
  return {
    ...init,
    status: init.inStream === true ? init.status : (init.status ?? defaults.status),
    hint: init.hint ?? defaults.hint,
    message: init.message ?? defaults.message,
  };
}
