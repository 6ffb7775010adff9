/**
 * Parse the rate-limit and retry-after headers of OpenAI- and Anthropic-style responses into one
 * provider-neutral {@link RateLimitInfo}, which feeds the per-provider rate limiter and the retry policy.
 */
import type { RateLimitInfo } from './types.ts';

/** Headers as the SDKs hand them over: a fetch `Headers` object or a plain, case-insensitive-by-convention record. */
export type HeadersLike = Headers | Readonly<Record<string, string | undefined>>;

const durationUnitMs: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

// A Go-style duration (what OpenAI sends in `x-ratelimit-reset-*`): one or more number+unit parts, e.g. `6m0s`.
const durationPattern =
  /^(?:\d+(?:\.\d+)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h)(?:(?:\d+(?:\.\d+)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))*$/;
const durationPart = /(\d+(?:\.\d+)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g;

/**
 * Parse a Go-style duration as OpenAI sends it (`1s`, `6m0s`, `250ms`, `1m30.5s`, `2h0m0s`) into milliseconds.
 * A bare non-negative number is read as seconds.
 *
 * @returns the duration in milliseconds, or `undefined` when `text` is not a duration.
 * @example
 * ```ts
 * parseDurationMs('1m30.5s'); // 90500
 * ```
 */
export function parseDurationMs(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  if (/^\d+(?:\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000;
  if (!durationPattern.test(trimmed)) return undefined;
  let total = 0;
  for (const match of trimmed.matchAll(durationPart)) {
    const [, amount = '0', unit = 's'] = match;
    total += Number(amount) * (durationUnitMs[unit] ?? 0);
  }
  return roundMs(total);
}

/**
 * Read every rate-limit header we know into one {@link RateLimitInfo}. Fields whose header is absent or
 * unparseable are left out, so an empty object means "the server said nothing".
 *
 * Understood headers:
 * - OpenAI: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` (reset is a duration such as `6m0s`).
 * - Anthropic: `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`
 *   (reset is an RFC 3339 timestamp, turned into milliseconds from `now`); the `tokens` family is preferred,
 *   then `input-tokens`.
 * - `retry-after-ms` (milliseconds), preferred over `retry-after` (seconds, or an HTTP date).
 *
 * @param headers - the response headers.
 * @param now - the current time in ms since the epoch, for timestamps and HTTP dates.
 * @default now `Date.now()`
 */
export function parseRateLimitHeaders(headers: HeadersLike, now: number = Date.now()): RateLimitInfo {
  const get = headerReader(headers);
  const info: {
    -readonly [K in keyof RateLimitInfo]: RateLimitInfo[K];
  } = {};

  const limitRequests =
    parseCount(get('x-ratelimit-limit-requests')) ?? parseCount(get('anthropic-ratelimit-requests-limit'));
  const remainingRequests =
    parseCount(get('x-ratelimit-remaining-requests')) ??
    parseCount(get('anthropic-ratelimit-requests-remaining'));
  const resetRequestsMs =
    parseReset(get('x-ratelimit-reset-requests'), now) ??
    parseReset(get('anthropic-ratelimit-requests-reset'), now);

  const tokenFamily = ['tokens', 'input-tokens'] as const;
  const anthropicTokens = (field: 'limit' | 'remaining' | 'reset'): string | undefined => {
    for (const family of tokenFamily) {
      const value = get(`anthropic-ratelimit-${family}-${field}`);
      if (value !== undefined) return value;
    }
    return undefined;
  };
  const limitTokens = parseCount(get('x-ratelimit-limit-tokens')) ?? parseCount(anthropicTokens('limit'));
  const remainingTokens =
    parseCount(get('x-ratelimit-remaining-tokens')) ?? parseCount(anthropicTokens('remaining'));
  const resetTokensMs =
    parseReset(get('x-ratelimit-reset-tokens'), now) ?? parseReset(anthropicTokens('reset'), now);

  const retryAfterMs = parseRetryAfterMs(get('retry-after-ms'), get('retry-after'), now);

  if (limitRequests !== undefined) info.limitRequests = limitRequests;
  if (remainingRequests !== undefined) info.remainingRequests = remainingRequests;
  if (resetRequestsMs !== undefined) info.resetRequestsMs = resetRequestsMs;
  if (limitTokens !== undefined) info.limitTokens = limitTokens;
  if (remainingTokens !== undefined) info.remainingTokens = remainingTokens;
  if (resetTokensMs !== undefined) info.resetTokensMs = resetTokensMs;
  if (retryAfterMs !== undefined) info.retryAfterMs = retryAfterMs;
  return info;
}

/**
 * The server's requested wait before a retry, from `retry-after-ms` (milliseconds, preferred) or `retry-after`
 * (delta-seconds or an HTTP date, relative to `now`).
 *
 * @returns milliseconds (never negative), or `undefined` when neither header is usable.
 */
export function parseRetryAfterMs(
  retryAfterMs: string | undefined,
  retryAfter: string | undefined,
  now: number = Date.now(),
): number | undefined {
  if (retryAfterMs !== undefined) {
    const ms = parseNonNegativeNumber(retryAfterMs);
    if (ms !== undefined) return roundMs(ms);
  }
  if (retryAfter !== undefined) {
    const seconds = parseNonNegativeNumber(retryAfter);
    if (seconds !== undefined) return roundMs(seconds * 1000);
    const date = Date.parse(retryAfter);
    if (!Number.isNaN(date)) return Math.max(0, date - now);
  }
  return undefined;
}

function headerReader(headers: HeadersLike): (name: string) => string | undefined {
  if (typeof Headers !== 'undefined' && headers instanceof Headers) {
    return (name) => headers.get(name) ?? undefined;
  }
  // Also accept any object with a `get` method (SDK header wrappers) without depending on its class.
  const maybeGetter = (headers as { get?: unknown }).get;
  if (typeof maybeGetter === 'function') {
    return (name) => {
      const value: unknown = (maybeGetter as (this: unknown, n: string) => unknown).call(headers, name);
      return typeof value === 'string' ? value : undefined;
    };
  }
  const record = headers as Readonly<Record<string, string | undefined>>;
  const lower = new Map<string, string>();
  for (const [key, value] of Object.entries(record)) {
    if (typeof value === 'string') lower.set(key.toLowerCase(), value);
  }
  return (name) => lower.get(name);
}

function parseNonNegativeNumber(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^\d+(?:\.\d+)?$/.test(trimmed)) return undefined;
  const value = Number(trimmed);
  return Number.isFinite(value) ? value : undefined;
}

function parseCount(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = parseNonNegativeNumber(text);
  return value === undefined ? undefined : Math.floor(value);
}

/** A reset header is either a duration (OpenAI) or an RFC 3339 timestamp (Anthropic). */
function parseReset(text: string | undefined, now: number): number | undefined {
  if (text === undefined) return undefined;
  const duration = parseDurationMs(text);
  if (duration !== undefined) return duration;
  if (!/^\d{4}-\d{2}-\d{2}T/.test(text.trim())) return undefined;
  const at = Date.parse(text.trim());
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function roundMs(ms: number): number {
  // Keep sub-millisecond parts only when the whole value is below 1 ms; otherwise integers read better.
  return ms >= 1 ? Math.round(ms) : ms;
}
