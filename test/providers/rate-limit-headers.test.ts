import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  parseDurationMs,
  parseRateLimitHeaders,
  parseRetryAfterMs,
} from '../../src/providers/rate-limit-headers.ts';

const now = Date.parse('2025-01-01T00:00:00Z');

describe('parseDurationMs', () => {
  it.each([
    ['1s', 1000],
    ['6m0s', 360_000],
    ['250ms', 250],
    ['1m30.5s', 90_500],
    ['2h0m0s', 7_200_000],
    ['0s', 0],
    ['.5s', 500],
    ['17ms', 17],
    ['3', 3000],
  ])('reads %s as %d ms', (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms);
  });

  it.each(['', 'soon', '1x', 's', '-1s', '1s garbage', '2025-01-01T00:00:00Z'])('rejects %j', (text) => {
    expect(parseDurationMs(text)).toBeUndefined();
  });

  it('round-trips any minutes/seconds/milliseconds combination', () => {
    fc.assert(
      fc.property(fc.nat(59), fc.nat(59), fc.nat(999), (m, s, ms) => {
        expect(parseDurationMs(`${m}m${s}s`)).toBe(m * 60_000 + s * 1000);
        expect(parseDurationMs(`${ms}ms`)).toBe(ms);
      }),
    );
  });
});

describe('parseRateLimitHeaders', () => {
  it('reads the OpenAI headers from a Headers object', () => {
    const headers = new Headers({
      'x-ratelimit-limit-requests': '500',
      'x-ratelimit-remaining-requests': '499',
      'x-ratelimit-reset-requests': '120ms',
      'x-ratelimit-limit-tokens': '30000',
      'x-ratelimit-remaining-tokens': '29950',
      'x-ratelimit-reset-tokens': '6m0s',
    });
    expect(parseRateLimitHeaders(headers, now)).toEqual({
      limitRequests: 500,
      remainingRequests: 499,
      resetRequestsMs: 120,
      limitTokens: 30000,
      remainingTokens: 29950,
      resetTokensMs: 360_000,
    });
  });

  it('reads the Anthropic headers from a record, turning RFC 3339 resets into ms from now', () => {
    const info = parseRateLimitHeaders(
      {
        'anthropic-ratelimit-requests-limit': '50',
        'anthropic-ratelimit-requests-remaining': '0',
        'anthropic-ratelimit-requests-reset': '2025-01-01T00:00:30Z',
        'anthropic-ratelimit-tokens-limit': '80000',
        'anthropic-ratelimit-tokens-remaining': '1000',
        'anthropic-ratelimit-tokens-reset': '2025-01-01T00:01:00.500Z',
        'anthropic-ratelimit-input-tokens-limit': '40000',
      },
      now,
    );
    expect(info).toEqual({
      limitRequests: 50,
      remainingRequests: 0,
      resetRequestsMs: 30_000,
      limitTokens: 80000,
      remainingTokens: 1000,
      resetTokensMs: 60_500,
    });
  });

  it('falls back to the Anthropic input-tokens family when there is no tokens family', () => {
    const info = parseRateLimitHeaders(
      {
        'anthropic-ratelimit-input-tokens-limit': '40000',
        'anthropic-ratelimit-input-tokens-remaining': '39000',
        'anthropic-ratelimit-input-tokens-reset': '2025-01-01T00:00:01Z',
        'anthropic-ratelimit-output-tokens-limit': '8000',
      },
      now,
    );
    expect(info).toEqual({ limitTokens: 40000, remainingTokens: 39000, resetTokensMs: 1000 });
  });

  it('matches record keys case-insensitively', () => {
    expect(parseRateLimitHeaders({ 'X-RateLimit-Limit-Requests': '7', 'Retry-After': '2' }, now)).toEqual({
      limitRequests: 7,
      retryAfterMs: 2000,
    });
  });

  it('accepts any object with a get() method', () => {
    const headers = { get: (name: string) => (name === 'retry-after-ms' ? '15' : null) };
    expect(parseRateLimitHeaders(headers as unknown as Headers, now)).toEqual({ retryAfterMs: 15 });
  });

  it('never yields a negative reset for a timestamp in the past', () => {
    expect(
      parseRateLimitHeaders({ 'anthropic-ratelimit-requests-reset': '2024-12-31T23:59:00Z' }, now),
    ).toEqual({ resetRequestsMs: 0 });
  });

  it('leaves out absent and garbage values', () => {
    expect(
      parseRateLimitHeaders(
        { 'x-ratelimit-limit-requests': 'lots', 'x-ratelimit-reset-tokens': 'later', 'retry-after': 'never' },
        now,
      ),
    ).toEqual({});
    expect(parseRateLimitHeaders(new Headers(), now)).toEqual({});
  });
});

describe('parseRetryAfterMs', () => {
  it('prefers retry-after-ms over retry-after', () => {
    expect(parseRetryAfterMs('250', '10', now)).toBe(250);
    expect(parseRateLimitHeaders({ 'retry-after-ms': '250', 'retry-after': '10' }, now).retryAfterMs).toBe(
      250,
    );
  });

  it('reads retry-after seconds, fractional seconds and HTTP dates', () => {
    expect(parseRetryAfterMs(undefined, '10', now)).toBe(10_000);
    expect(parseRetryAfterMs(undefined, '0.5', now)).toBe(500);
    expect(parseRetryAfterMs(undefined, new Date(now + 5000).toUTCString(), now)).toBe(5000);
    expect(parseRetryAfterMs(undefined, new Date(now - 5000).toUTCString(), now)).toBe(0);
  });

  it('falls back to retry-after when retry-after-ms is garbage', () => {
    expect(parseRetryAfterMs('soon', '3', now)).toBe(3000);
    expect(parseRetryAfterMs(undefined, undefined, now)).toBeUndefined();
  });
});
