import { inspect } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AbortedError,
  CredentialsInUrlError,
  InternalServerError,
  MissingApiKeyError,
  ProviderError,
  RateLimitError,
  UnknownProviderError,
  isRetryableStatus,
  providerErrorFromStatus,
} from '../../src/providers/errors.ts';
import {
  REDACTED,
  hasUrlCredentials,
  redactSecrets,
  redactUrlCredentials,
} from '../../src/providers/redact.ts';
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

describe('redactUrlCredentials', () => {
  // Built at run time, so no secret-looking literal sits in the repository.
  const pw = ['pa', 'ss', 'w0rd'].join('');

  it.each([
    [`fetch http://user:${pw}@127.0.0.1:8080/v1 failed`, 'fetch http://***@127.0.0.1:8080/v1 failed'],
    [`https://${pw}@proxy.example/`, 'https://***@proxy.example/'],
    [`"url":"https://u:${pw}@h:1?q=a@b"`, '"url":"https://***@h:1?q=a@b"'],
    // An unencoded `@` or `(` in the password is part of the userinfo, as the URL parser reads it.
    [`http://u:p@${pw}(x@host/a@b`, 'http://***@host/a@b'],
    [`a http://u:${pw}@h b SOCKS5://x:${pw}@y:1080 c`, 'a http://***@h b SOCKS5://***@y:1080 c'],
    [`http://u:${pw}@h\nws://v:${pw}@k`, 'http://***@h\nws://***@k'],
  ])('%s', (text, expected) => {
    expect(redactUrlCredentials(text)).toBe(expected);
    expect(redactSecrets(text)).toBe(expected);
  });

  it('leaves URLs without userinfo, e-mail addresses and redacted URLs alone', () => {
    const text =
      'see https://api.openai.com/v1/chat?x=a@b, http://[::1]:8080/p, mail ada@example.com, http://***@h/';
    expect(redactUrlCredentials(text)).toBe(text);
  });

  it('never lets the userinfo of a URL survive, whatever it holds', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('http', 'https', 'ws', 'git+ssh'),
        fc.stringMatching(/^[A-Za-z0-9._~!$&'()*+,;=%:@-]{6,30}$/),
        fc.domain(),
        (scheme, userinfo, host) => {
          const out = redactSecrets(`error: ${scheme}://${userinfo}@${host}/path`);
          expect(out).toBe(`error: ${scheme}://***@${host}/path`);
        },
      ),
    );
  });

  it('hasUrlCredentials() sees a user name, a password, or both', () => {
    expect(hasUrlCredentials(`http://u:${pw}@h/v1`)).toBe(true);
    expect(hasUrlCredentials(`http://${pw}@h`)).toBe(true);
    expect(hasUrlCredentials(`http://:${pw}@h`)).toBe(true);
    expect(hasUrlCredentials('http://127.0.0.1:11434/v1')).toBe(false);
    expect(hasUrlCredentials('https://api.openai.com/v1?to=a@b')).toBe(false);
    expect(hasUrlCredentials(`not a url u:${pw}@h`)).toBe(false);
  });
});

describe('CredentialsInUrlError', () => {
  const pw = ['pa', 'ss', 'w0rd', '42'].join('');

  it('keeps only the redacted URL, says where the key belongs, and is never retried', () => {
    const error = new CredentialsInUrlError({
      provider: 'openai',
      url: `http://user:${pw}@127.0.0.1:8080/v1`,
      setting: 'OPENAI_BASE_URL',
      keyEnvVar: 'OPENAI_API_KEY',
    });
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({
      code: 'credentials_in_url',
      provider: 'openai',
      url: 'http://***@127.0.0.1:8080/v1',
      setting: 'OPENAI_BASE_URL',
      keyEnvVar: 'OPENAI_API_KEY',
      isRetryable: false,
      status: undefined,
    });
    expect(error.message).toBe(
      'openai: The base URL http://***@127.0.0.1:8080/v1 (from OPENAI_BASE_URL) has credentials in it; ' +
        'nothing was sent. (put the API key in the apiKey setting or OPENAI_API_KEY, and give OPENAI_BASE_URL ' +
        'with no user:password@)',
    );
    for (const text of [error.message, JSON.stringify(error), inspect(error), error.stack ?? ''])
      expect(text).not.toContain(pw);
  });

  it('redacts userinfo the text rule cannot delimit, by rebuilding the URL', () => {
    const error = new CredentialsInUrlError({
      provider: 'anthropic',
      url: `http://user:my ${pw}@host:1`,
      setting: 'baseURL',
      keyEnvVar: 'ANTHROPIC_API_KEY',
    });
    expect(error.url).toBe('http://***@host:1/');
    expect(error.message).not.toContain(pw);
    expect(error.message).toContain('the baseURL setting');
  });
});
