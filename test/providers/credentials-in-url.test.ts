/**
 * A base URL with credentials in it (`http://user:password@host`) is refused before any request, through the
 * real OpenAI and Anthropic SDKs against the loopback fake server: a typed, non-retryable configuration error
 * that shows the URL with its userinfo redacted, and whose secret appears in no message, JSON, inspection,
 * cause chain or chain trace.
 */
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { ChainRunError, chain, formatTrace } from '../../src/chain/index.ts';
import {
  CredentialsInUrlError,
  ModelClient,
  ProviderError,
  ProviderRegistry,
  createAnthropicProvider,
  createOpenAIProvider,
  type CallEvent,
  type Provider,
} from '../../src/providers/index.ts';
import { startFakeProviderServer, type FakeProviderServer } from '../support/fake-provider-server.ts';
import { fakeKey } from '../helpers/fake-keys.ts';

// Built at run time, so no secret-looking literal sits in the repository.
const SECRET = `pw${randomBytes(12).toString('hex')}`;
const OPENAI_KEY = fakeKey('test', 'openai', 'credentialsinurl0123');
const ANTHROPIC_KEY = fakeKey('ant', 'api03', 'test', 'credentialsinurl0123');

let server: FakeProviderServer;

beforeAll(async () => {
  server = await startFakeProviderServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  server.reset();
  server.options.latencyMs = 0;
  server.options.streamDelayMs = 0;
  server.options.respond = undefined;
});
afterEach(() => {
  vi.unstubAllEnvs();
});

/** `http://user:SECRET@127.0.0.1:PORT/…`: the fake server's base URL with credentials added. */
function withCredentials(baseURL: string, userinfo = `user:${SECRET}`): string {
  return baseURL.replace('://', `://${userinfo}@`);
}

/** The same URL as it must be shown: userinfo replaced by `***`. */
function redacted(baseURL: string): string {
  return baseURL.replace('://', '://***@');
}

const wires = [
  {
    wire: 'openai',
    baseURL: () => server.openaiBaseURL,
    create: (baseURL?: string) =>
      createOpenAIProvider({ apiKey: OPENAI_KEY, ...(baseURL === undefined ? {} : { baseURL }) }),
    baseEnv: 'OPENAI_BASE_URL',
    keyEnv: 'OPENAI_API_KEY',
    model: 'gpt-4.1-mini',
  },
  {
    wire: 'anthropic',
    baseURL: () => server.anthropicBaseURL,
    create: (baseURL?: string) =>
      createAnthropicProvider({ apiKey: ANTHROPIC_KEY, ...(baseURL === undefined ? {} : { baseURL }) }),
    baseEnv: 'ANTHROPIC_BASE_URL',
    keyEnv: 'ANTHROPIC_API_KEY',
    model: 'claude-sonnet-4-5',
  },
] as const;

/** Every string a leak could hide in: message, hint, JSON, inspection, and each error of the cause chain. */
function renderings(error: unknown): string[] {
  const out = [JSON.stringify(error), inspect(error, { depth: 10 }), String(error)];
  for (let e: unknown = error, depth = 0; e !== undefined && depth < 10; depth++) {
    if (!(e instanceof Error)) {
      out.push(inspect(e));
      break;
    }
    out.push(e.message, e.stack ?? '', JSON.stringify(e), inspect(e));
    const hint = (e as { hint?: unknown }).hint;
    if (typeof hint === 'string') out.push(hint);
    e = e.cause;
  }
  return out;
}

function expectNoSecret(error: unknown): void {
  for (const text of renderings(error)) expect(text).not.toContain(SECRET);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

async function drain(events: AsyncIterable<unknown>): Promise<void> {
  for await (const _event of events) {
    // nothing: the stream must fail before its first event
  }
}

describe.each(wires)(
  '$wire: a baseURL with credentials',
  ({ wire, baseURL, create, baseEnv, keyEnv, model }) => {
    const request = { model, messages: [{ role: 'user' as const, content: 'hello' }] };

    it('is refused by complete() and stream() with a typed error, before any request', async () => {
      const provider: Provider = create(withCredentials(baseURL()));
      for (const call of [() => provider.complete(request), () => drain(provider.stream(request))]) {
        const error = await rejection(call());
        expect(error).toBeInstanceOf(CredentialsInUrlError);
        expect(error).toBeInstanceOf(ProviderError);
        expect(error).toMatchObject({
          code: 'credentials_in_url',
          provider: wire,
          isRetryable: false,
          setting: 'baseURL',
          url: redacted(baseURL()),
          status: undefined,
        });
        const typed = error as CredentialsInUrlError;
        expect(typed.message).toContain(redacted(baseURL()));
        expect(typed.hint).toContain('apiKey');
        expect(typed.hint).toContain(keyEnv);
        expect(typed.hint).toContain('user:password@');
        expectNoSecret(error);
      }
      expect(server.requests).toBe(0);
    });

    it('is refused by preflight(), which sends nothing and loads no SDK', () => {
      const provider = create(withCredentials(baseURL()));
      let caught: unknown;
      try {
        provider.preflight?.(model);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(CredentialsInUrlError);
      expectNoSecret(caught);
      expect(server.requests).toBe(0);
    });

    it(`is refused from ${baseEnv} too, and the hint names the variable`, async () => {
      vi.stubEnv(baseEnv, withCredentials(baseURL()));
      const error = await rejection(create().complete(request));
      expect(error).toBeInstanceOf(CredentialsInUrlError);
      expect(error).toMatchObject({ setting: baseEnv, url: redacted(baseURL()) });
      expect((error as CredentialsInUrlError).message).toContain(baseEnv);
      expect((error as CredentialsInUrlError).hint).toContain(keyEnv);
      expectNoSecret(error);
      expect(server.requests).toBe(0);
    });

    it('is refused for a user name alone (a token as user name) and for an encoded password', async () => {
      for (const userinfo of [SECRET, `user:${SECRET}%40x`, `${SECRET}:`]) {
        const error = await rejection(create(withCredentials(baseURL(), userinfo)).complete(request));
        expect(error).toBeInstanceOf(CredentialsInUrlError);
        expectNoSecret(error);
      }
      expect(server.requests).toBe(0);
    });

    it('is never retried by the ModelClient', async () => {
      const events: CallEvent[] = [];
      const client = new ModelClient({
        registry: new ProviderRegistry().register(create(withCredentials(baseURL()))),
        retry: { baseDelayMs: 1, maxRetries: 5 },
        onEvent: (event) => events.push(event),
      });
      const error = await rejection(client.call({ model: `${wire}:${model}`, prompt: 'hello' }));
      expect(error).toBeInstanceOf(CredentialsInUrlError);
      expect(events.filter((event) => event.type === 'retry')).toEqual([]);
      expect(server.requests).toBe(0);
      expectNoSecret(error);
    });

    it('fails a chain at its first node, with no retry, and no secret in the error or the trace', async () => {
      const client = new ModelClient({
        registry: new ProviderRegistry().register(create(withCredentials(baseURL()))),
        retry: { baseDelayMs: 1, maxRetries: 5 },
      });
      const c = chain({ name: 'leak', model: `${wire}:${model}`, input: z.object({}), client })
        .prompt('ask', { prompt: () => 'hello' })
        .build();
      const error = await rejection(c.run({}));
      expect(error).toBeInstanceOf(ChainRunError);
      const failure = error as ChainRunError;
      expect(failure.node).toBe('ask');
      expect(failure.cause).toBeInstanceOf(CredentialsInUrlError);
      expect(failure.message).toContain(redacted(baseURL()));
      expectNoSecret(failure);
      // One attempt, no retries.
      expect(failure.trace.map((r) => [r.key, r.status, r.attempt])).toEqual([['ask', 'error', 1]]);
      for (const text of [JSON.stringify(failure.trace), inspect(failure.trace, { depth: 10 })])
        expect(text).not.toContain(SECRET);
      for (const line of formatTrace(failure.trace)) expect(line).not.toContain(SECRET);
      expect(server.requests).toBe(0);
    });

    it('still runs against the same server without credentials in the URL', async () => {
      const response = await create(baseURL()).complete(request);
      expect(response.text).toContain('hello');
      expect(server.requests).toBe(1);
    });
  },
);
