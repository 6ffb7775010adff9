import { inspect } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AbortedError,
  InternalServerError,
  MissingApiKeyError,
  ProviderError,
  RateLimitError,
  UnknownProviderError,
  isRetryableStatus,
  providerErrorFromStatus,
} from '../../src/providers/errors.ts';
import { REDACTED, redactSecrets } from '../../src/providers/redact.ts';
import { fakeKey } from '../helpers/fake-keys.ts';

describe('redactSecrets', () => {
  it.each([
    [`key ${fakeKey('proj', 'AbC123_xyz', '0987654321')} leaked`, 'key sk-[REDACTED] leaked'],
    ['Incorrect API key provided: sk-abc1**********wxyz.', 'Incorrect API key provided: sk-[REDACTED]'],
    [`anthropic ${fakeKey('ant', 'api03', 'AAAA_bbbb', 'CCCC')}`, 'anthropic sk-ant-[REDACTED]'],
    ['Authorization: Bearer abc.def.ghi', 'Authorization: [REDACTED]'],
    ['{"authorization":"Bearer tok123"}', '{"authorization":"[REDACTED]"}'],
    ['bearer tok123 in text', 'Bearer [REDACTED] in text'],
    ['x-api-key: secret-value-1', 'x-api-key: [REDACTED]'],
    ['{"x-api-key": "secret-value-1", "a": 1}', '{"x-api-key": "[REDACTED]", "a": 1}'],
    ['api_key=abc123&x=1', 'api_key=[REDACTED]&x=1'],
  ])('scrubs %j', (input, expected) => {
    expect(redactSecrets(input)).toBe(expected);
  });

  it('keeps ordinary text, including words like sk-learn', () => {
    const text = 'Use sk-learn for the model; status 429, request req_123, retry in 2s.';
    expect(redactSecrets(text)).toBe(text);
  });

  it('removes explicit secrets wherever they occur, longest first', () => {
    expect(redactSecrets('token=hunter2 and hunter2-extra', ['hunter2', 'hunter2-extra'])).toBe(
      `token=${REDACTED} and ${REDACTED}`,
    );
    expect(redactSecrets('nothing here', ['', 'absent'])).toBe('nothing here');
  });

  it('never lets an explicit secret survive, whatever surrounds it', () => {
    fc.assert(
      fc.property(fc.string(), fc.string({ minLength: 6 }), fc.string(), (before, secret, after) => {
        expect(redactSecrets(`${before}${secret}${after}`, [secret])).not.toContain(secret);
      }),
    );
  });
});

describe('ProviderError family', () => {
  it('decides isRetryable from the status at construction', () => {
    expect([408, 409, 429, 500, 502, 529, 599].every(isRetryableStatus)).toBe(true);
    expect([400, 401, 403, 404, 422, 499, 600].some(isRetryableStatus)).toBe(false);
    expect(isRetryableStatus(undefined)).toBe(false);
    expect(providerErrorFromStatus(402, { provider: 'p' })).toMatchObject({
      code: 'api_error',
      isRetryable: false,
    });
    expect(providerErrorFromStatus(502, { provider: 'p' })).toBeInstanceOf(InternalServerError);
  });

  it('reads retry-after and rate-limit headers but keeps no headers object', () => {
    const headers = new Headers({
      'retry-after': '3',
      'x-ratelimit-remaining-requests': '0',
      authorization: `Bearer ${fakeKey('live', 'secret', '000000')}`,
    });
    const error = providerErrorFromStatus(429, {
      provider: 'openai',
      model: 'm',
      requestId: 'req_1',
      message: 'slow',
      headers,
    });
    expect(error).toBeInstanceOf(RateLimitError);
    expect(error).toMatchObject({ status: 429, retryAfterMs: 3000, requestId: 'req_1', isRetryable: true });
    expect(error.rateLimit).toEqual({ remainingRequests: 0, retryAfterMs: 3000 });
    expect(error.message).toBe('openai (model m, status 429, request req_1): slow');
    expect(JSON.stringify(error)).not.toContain('sk-live');
    expect(inspect(error)).not.toContain('sk-live');
    expect(Object.values(error).some((v) => v instanceof Headers)).toBe(false);
  });

  it('redacts provider messages and explicit secrets', () => {
    const error = new ProviderError('api_error', {
      provider: 'x',
      message: `bad key ${fakeKey('abcdefghijklmnop')} and mysecret`,
      secrets: ['mysecret'],
    });
    expect(error.message).toBe('x: bad key sk-[REDACTED] and [REDACTED]');
  });

  it('gives the helper errors stable codes and hints', () => {
    expect(new MissingApiKeyError('openai', 'OPENAI_API_KEY')).toMatchObject({
      code: 'missing_api_key',
      envVar: 'OPENAI_API_KEY',
      isRetryable: false,
    });
    expect(new MissingApiKeyError('openai', 'OPENAI_API_KEY').message).toContain(
      'Set OPENAI_API_KEY or pass apiKey',
    );
    expect(new UnknownProviderError('x', ['a', 'b']).message).toContain('a, b');
    expect(new AbortedError({ provider: 'p' })).toMatchObject({ code: 'aborted', isRetryable: false });
    expect(ProviderError.isInstance(new AbortedError({ provider: 'p' }))).toBe(true);
  });
});
