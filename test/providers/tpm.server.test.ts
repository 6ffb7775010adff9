/**
 * Tokens-per-minute limiting through the real OpenAI and Anthropic SDKs against the loopback fake server
 * enforcing a token window (input at acceptance plus output once generated). The client's estimates
 * (prompt chars / 4 + maxTokens) under-count the input and over-count the output, so the limiter must pace
 * token grants, learn how its estimates compare with the usage, and reconcile them at settle, without
 * bursting at window edges. Throughput as a share of the
 * limit is measured by `npm run bench` (bench/providers.bench.ts), not here.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ModelClient,
  ProviderRegistry,
  RateLimiterRegistry,
  createAnthropicProvider,
  createOpenAIProvider,
} from '../../src/index.ts';
import type { RateLimitWaitReason } from '../../src/providers/rate-limiter.ts';
import { startFakeProviderServer, type FakeProviderServer } from '../support/fake-provider-server.ts';
import { fakeKey } from '../helpers/fake-keys.ts';

let server: FakeProviderServer;

beforeAll(async () => {
  server = await startFakeProviderServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  server.reset();
  server.options.rateLimit = undefined;
  server.options.respond = undefined;
  // A tokenizer that is not chars / 4 (the client's estimate under-counts the input), and latency that keeps
  // several requests in flight before their usage reconciles the estimates.
  server.options.charsPerToken = 2.5;
  server.options.latencyMs = 100;
});

// Windows long against the event-loop lag of a loaded machine (client and server share one process here).
const WINDOW_MS = 1000;
const TOKENS_PER_WINDOW = 12_000;
const CALLS = 100; // about 500 tokens each: 4 windows' worth

/** Seeded sizes, so each run sees the same prompts and replies. */
const size = (i: number, spread: number): number => ((i * 7919) % 97) % spread;

/** The client's view of each HTTP answer: when it arrived and its status. */
interface Answer {
  readonly at: number;
  readonly status: number;
}

function clientFor(
  api: 'openai' | 'anthropic',
  reasons: RateLimitWaitReason[],
  answers: Answer[],
): ModelClient {
  const apiKey = fakeKey('test', api, 'tpm0123456789');
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const response = await globalThis.fetch(input, init);
    answers.push({ at: Date.now(), status: response.status });
    return response;
  };
  const provider =
    api === 'openai'
      ? createOpenAIProvider({ baseURL: server.openaiBaseURL, apiKey, fetch })
      : createAnthropicProvider({ baseURL: server.anthropicBaseURL, apiKey, fetch });
  return new ModelClient({
    registry: new ProviderRegistry().register(provider),
    retry: { baseDelayMs: 5, maxRetries: 8 },
    limits: new RateLimiterRegistry({
      limits: { [api]: { tokensPerMinute: TOKENS_PER_WINDOW, windowMs: WINDOW_MS, headroom: 0.1 } },
      onWait: (_key, wait) => reasons.push(wait.reason),
    }),
  });
}

describe.each([
  { api: 'openai', model: 'openai:gpt-4.1-mini' },
  { api: 'anthropic', model: 'anthropic:claude-haiku-4-5' },
] as const)('tokens per minute through the $api SDK', ({ api, model }) => {
  it('keeps every server window under its token limit, with no 429 after the first window and no call lost', async () => {
    server.options.rateLimit = { requests: 100_000, tokens: TOKENS_PER_WINDOW, windowMs: WINDOW_MS };
    server.options.respond = (request) => ({
      text: `reply: ${'word '.repeat(40 + size(Number(/\d+/.exec(request.lastUserText)?.[0]), 150))}`,
    });
    const reasons: RateLimitWaitReason[] = [];
    const answers: Answer[] = [];
    const client = clientFor(api, reasons, answers);
    const startedAt = Date.now();
    const results = await Promise.allSettled(
      Array.from({ length: CALLS }, (_, i) =>
        client.call({ model, prompt: `call ${i} ${'text '.repeat(100 + size(i, 200))}`, maxTokens: 300 }),
      ),
    );

    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    const accepted = server.accepted;
    expect(accepted).toHaveLength(CALLS);
    // The window the first request fell in is where a limiter without history may overshoot; after it, at
    // most one 429 in all (the bench's target is at most 1 per 10 windows).
    const firstWindow = Math.floor(accepted[0]!.at / WINDOW_MS);
    const byWindow = new Map<number, number>();
    for (const entry of accepted) {
      const w = Math.floor(entry.at / WINDOW_MS);
      byWindow.set(w, (byWindow.get(w) ?? 0) + entry.tokens);
    }
    expect(Math.max(...byWindow.values())).toBeLessThanOrEqual(TOKENS_PER_WINDOW);
    const rejected = answers.filter((a) => a.status === 429);
    expect(rejected).toHaveLength(server.byStatus['429'] ?? 0);
    expect(rejected.filter((a) => Math.floor(a.at / WINDOW_MS) > firstWindow).length).toBeLessThanOrEqual(1);
    // The limiter paced the calls by tokens (it did not rely on 429s to slow down).
    expect(reasons).toContain('tokens');
    // The real usage, reconciled at settle, is what the client recorded.
    const counted = accepted.reduce((sum, entry) => sum + entry.tokens, 0);
    expect(client.usage.total.totalTokens).toBe(counted);
    // More than a window's tokens went through, so the pacing spanned several windows.
    expect(counted).toBeGreaterThan(3 * TOKENS_PER_WINDOW);
    expect(Date.now() - startedAt).toBeGreaterThan(2 * WINDOW_MS);
  }, 30_000);
});
