// The shared rate limiter against a real redis-server: several processes (children, or registries with
// their own connections) share one limit. Windows are counted from the Redis TIME stamps of the grants,
// the clock the limiter itself keeps to, so the checks are the limiter's semantics, not timings.
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisClient } from '../../src/distributed/peer.ts';
import {
  MissingPeerDependencyError,
  RateLimiterUnavailableError,
  RedisRateLimiterRegistry,
  type RedisRateLimitPermit,
} from '../../src/distributed/index.ts';
import { InvalidOptionError, SymphonizerError } from '../../src/core/errors.ts';
import {
  ModelClient,
  ProviderRegistry,
  RateLimiterRegistry,
  createOpenAIProvider,
  type RateLimitWait,
} from '../../src/index.ts';
import { startFakeProviderServer } from '../support/fake-provider-server.ts';
import { fakeKey } from '../helpers/fake-keys.ts';
import { skipRedis, startRedisServer, type RedisTestServer } from '../support/redis-server.ts';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');
let server: RedisTestServer;
let prefixes = 0;
/** A fresh key prefix per test, so tests share nothing through Redis. */
const prefix = (): string => `t${process.pid}-${++prefixes}`;

/** Compiles only while ioredis's client has the shape the limiter relies on. */
const ioredisFits: Redis extends RedisClient ? true : false = true;

/** The most grants in any window `[t, t + windowMs)`, over the Redis times of the grants. */
function busiestWindow(grants: readonly number[], windowMs: number): number {
  const sorted = [...grants].sort((a, b) => a - b);
  let most = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end += 1) {
    while ((sorted[end] as number) - (sorted[start] as number) >= windowMs) start += 1;
    most = Math.max(most, end - start + 1);
  }
  return most;
}

describe.skipIf(skipRedis)('RedisRateLimiterRegistry against a real Redis', () => {
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server.close();
  });

  it('is a RateLimiterRegistry that ModelClient takes as its limits, and checks its options like one', async () => {
    const registry = new RedisRateLimiterRegistry(server.url, {
      prefix: prefix(),
      limits: { openai: { requestsPerMinute: 60 } },
    });
    try {
      expect(ioredisFits).toBe(true);
      expect(registry).toBeInstanceOf(RateLimiterRegistry);
      expect(RateLimiterRegistry.from(registry)).toBe(registry);
      const client = new ModelClient({ limits: registry });
      expect(client.limiters).toBe(registry);
      expect(registry.keys()).toEqual([]);
      expect(registry.get('openai', 'gpt-4.1')).toBe(registry.get('openai', 'gpt-4.1'));
      expect(registry.keys()).toEqual(['openai:gpt-4.1']);
      expect(() => registry.get('openai', 'gpt-4.1').acquire({ estimatedTokens: -1 })).toThrow(
        InvalidOptionError,
      );
    } finally {
      await registry.close();
    }
    expect(
      () =>
        new RedisRateLimiterRegistry(server.url, { limits: { openai: { requestsPerMinut: 5 } as never } }),
    ).toThrow(/requestsPerMinut/u);
    expect(() => new RedisRateLimiterRegistry('http://x', { limits: {} })).toThrow(InvalidOptionError);
    const bad = new RedisRateLimiterRegistry(server.url, { limits: { p: { maxConcurrency: 0 } } });
    expect(() => bad.get('p', 'm')).toThrow(/maxConcurrency/u);
    await bad.close();
  });

  it('keeps every window of three processes with random arrivals under the request and concurrency limits', async () => {
    const windowMs = 1000;
    const requests = 40;
    const maxConcurrency = 4;
    const shared = prefix();
    const children = [1, 2, 3].map((seed) =>
      run(
        process.execPath,
        [
          'test/distributed/fixtures/limiter-child.ts',
          JSON.stringify({
            url: server.url,
            prefix: shared,
            limits: { requestsPerMinute: requests, windowMs, maxConcurrency, headroom: 0.05 },
            calls: 40,
            seed,
            maxGapMs: 60,
            maxHoldMs: 40,
          }),
        ],
        { cwd: root },
      ),
    );
    const outputs = (await Promise.all(children)).map(
      ({ stdout }) => JSON.parse(stdout) as { grants: number[]; maxInFlight: number },
    );
    const grants = outputs.flatMap((output) => output.grants);
    expect(grants).toHaveLength(120);
    const busiest = busiestWindow(grants, windowMs);
    // Every process got its share, and the fleet never had more than the limits allow.
    for (const output of outputs) expect(output.grants).toHaveLength(40);
    expect(busiest).toBeLessThanOrEqual(requests);
    expect(Math.max(...outputs.map((output) => output.maxInFlight))).toBeLessThanOrEqual(maxConcurrency);
    // The spacing is shared, not per process: three processes alone would each have sent 40 in one window.
    const span = Math.max(...grants) - Math.min(...grants);
    expect(span).toBeGreaterThanOrEqual(((120 - 1) * windowMs) / requests);
    console.log(
      `[distributed] 3 processes x 40 calls: busiest ${windowMs} ms window ${busiest} / ${requests} requests, span ${Math.round(span)} ms`,
    );
  }, 30_000);

  it('reconciles tokens across processes: real usage at settle moves the shared token budget', async () => {
    const shared = prefix();
    const limits = { p: { tokensPerMinute: 1000, windowMs: 60_000, headroom: 0 } };
    const a = new RedisRateLimiterRegistry(server.url, { prefix: shared, limits });
    const b = new RedisRateLimiterRegistry(server.url, { prefix: shared, limits });
    try {
      // A charges 500 of the 1000 tokens; B then waits for tokens, paced at 60 ms per token.
      const big = await a.get('p', 'm').acquire({ estimatedTokens: 500 });
      expect(big.estimatedTokens).toBe(500);
      const before = await firstWait(b.get('p', 'm'), 10);
      expect(before.reason).toBe('tokens');
      expect(before.delayMs).toBeGreaterThan(20_000);
      // The call used only 50: settling it gives 450 tokens' worth of time back to every process.
      big.settle({ usage: { inputTokens: 30, outputTokens: 20 } });
      await a.flush();
      const after = await firstWait(b.get('p', 'm'), 10);
      expect(after.reason).toBe('tokens');
      expect(after.delayMs).toBeLessThan(before.delayMs! - 20_000);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('learns the ratio of real usage to estimates from every process, and scales later estimates by it', async () => {
    const shared = prefix();
    const limits = { p: { tokensPerMinute: 1_000_000, windowMs: 1000 } };
    const a = new RedisRateLimiterRegistry(server.url, { prefix: shared, limits });
    const b = new RedisRateLimiterRegistry(server.url, { prefix: shared, limits });
    try {
      const first = await a.get('p', 'm').acquire({ estimatedTokens: 100 });
      expect(first.estimatedTokens).toBe(100);
      first.settle({ usage: { inputTokens: 6, outputTokens: 4 } });
      await a.flush();
      // B never settled anything, but A's usage was a tenth of its estimate: B's estimates are scaled down.
      const lowered = await b.get('p', 'm').acquire({ estimatedTokens: 100 });
      expect(lowered.estimatedTokens).toBe(10);
      // Usage far above the estimate raises the ratio again, for A too.
      lowered.settle({ usage: { inputTokens: 2000, outputTokens: 0 } });
      await b.flush();
      const raised = await a.get('p', 'm').acquire({ estimatedTokens: 100 });
      expect(raised.estimatedTokens).toBeGreaterThan(100);
      raised.settle();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('pauses every process when one releases a 429 with backoffMs, and refunds the refused estimate', async () => {
    const shared = prefix();
    const limits = { p: { tokensPerMinute: 1_000_000, windowMs: 5000 } };
    const b = new RedisRateLimiterRegistry(server.url, { prefix: shared, limits });
    try {
      const { stdout } = await run(
        process.execPath,
        ['--input-type=module', '-e', releaseWith429(server.url, shared, limits.p, 2000)],
        { cwd: root },
      );
      const refused = JSON.parse(stdout) as { grantedAt: number };
      const waits: RateLimitWait[] = [];
      const [first, second] = await Promise.all([
        b.get('p', 'm').acquire({ onWait: (wait) => waits.push(wait) }),
        b.get('p', 'm').acquire(),
      ]);
      expect(waits[0]?.reason).toBe('hold');
      for (const permit of [first, second]) {
        expect(permit.grantedAt - refused.grantedAt).toBeGreaterThanOrEqual(2000);
        permit.release();
      }
      // The refused 400 000 tokens were refunded: a request of 990 000 fits into the same 5 s window as soon
      // as the pause ends (charged, the 400 000 would hold it until that window had passed).
      const big = await b.get('p', 'm').acquire({ estimatedTokens: 990_000 });
      expect(big.grantedAt - refused.grantedAt).toBeLessThan(4000);
      big.release();
    } finally {
      await b.close();
    }
  });

  it('holds every process when one reads rate-limit headers with nothing remaining, until their reset', async () => {
    const shared = prefix();
    const limits = { p: { requestsPerMinute: 1000, windowMs: 1000 } };
    const a = new RedisRateLimiterRegistry(server.url, { prefix: shared, limits });
    const b = new RedisRateLimiterRegistry(server.url, { prefix: shared, limits });
    try {
      const seen = await a.get('p', 'm').acquire();
      seen.settle({ rateLimit: { remainingTokens: 0, resetTokensMs: 800 } });
      await a.flush();
      const reasons: string[] = [];
      const next = await b.get('p', 'm').acquire({ onWait: (wait) => reasons.push(wait.reason) });
      expect(reasons).toEqual(['hold']);
      expect(next.grantedAt - seen.grantedAt).toBeGreaterThanOrEqual(800);
      next.settle();
      // observe() does the same without a permit.
      b.get('p', 'm').observe({ remainingRequests: 0, resetRequestsMs: 60_000 });
      await b.flush();
      const after = await a.get('p', 'm').acquire();
      // Paced at 1000 per window, a request reset holds only until the next paced slot (as in process).
      expect(after.grantedAt - next.grantedAt).toBeLessThan(60_000);
      after.settle();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('fails closed while Redis is down, then grants at the shared pace when it is back (no burst)', async () => {
    const shared = prefix();
    const windowMs = 1000;
    const requests = 10;
    const limits = { p: { requestsPerMinute: requests, windowMs, headroom: 0 } };
    const a = new RedisRateLimiterRegistry(server.url, { prefix: shared, limits, unavailableTimeoutMs: 600 });
    const b = new RedisRateLimiterRegistry(server.url, {
      prefix: shared,
      limits,
      unavailableTimeoutMs: 10_000,
    });
    try {
      (await a.get('p', 'm').acquire()).settle(); // both connected and known to Redis
      (await b.get('p', 'm').acquire()).settle();
      await server.stop();
      // A gives up after its timeout with a typed error naming the key and where Redis was expected.
      const error = await a
        .get('p', 'm')
        .acquire()
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect(error).toBeInstanceOf(RateLimiterUnavailableError);
      expect(SymphonizerError.isInstance(error) && error.code).toBe('limiter_unavailable');
      expect((error as Error).message).toContain('p:m');
      expect((error as Error).message).toContain(`127.0.0.1:${server.port}`);
      // B's callers keep waiting while Redis is down: nothing is granted, nothing is sent.
      let granted = 0;
      const waiting = Array.from({ length: 6 }, () =>
        b
          .get('p', 'm')
          .acquire()
          .then((permit) => {
            granted += 1;
            return permit;
          }),
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(granted).toBe(0);
      expect(b.get('p', 'm').waiting).toBe(6);
      await server.restart();
      const permits: RedisRateLimitPermit[] = await Promise.all(waiting);
      const at = permits.map((permit) => permit.grantedAt).sort((x, y) => x - y);
      // Granted on the shared schedule by Redis time, one spacing per grant, not all at once when Redis came
      // back (a grant a timer delayed keeps its slot, so consecutive gaps may be shorter, never the schedule).
      const spacing = windowMs / requests;
      for (let i = 1; i < at.length; i += 1) {
        expect((at[i] as number) - (at[0] as number)).toBeGreaterThanOrEqual(i * spacing - 0.01);
      }
      expect(busiestWindow(at, windowMs)).toBeLessThanOrEqual(requests);
      for (const permit of permits) permit.settle();
    } finally {
      if (!server.running) await server.restart();
      await Promise.all([a.close(), b.close()]);
    }
  }, 20_000);

  it('keeps two ModelClients on their own registries under a fake provider window, with no 429', async () => {
    const fake = await startFakeProviderServer();
    const shared = prefix();
    const windowMs = 500;
    const requests = 12;
    fake.options.rateLimit = { requests, tokens: 10_000_000, windowMs };
    const registries: RedisRateLimiterRegistry[] = [];
    const client = (): ModelClient => {
      const limits = new RedisRateLimiterRegistry(server.url, {
        prefix: shared,
        limits: { openai: { requestsPerMinute: requests, windowMs, headroom: 0.25 } },
      });
      registries.push(limits);
      const provider = createOpenAIProvider({
        baseURL: fake.openaiBaseURL,
        apiKey: fakeKey('test', 'openai', 'shared0123456789'),
      });
      return new ModelClient({
        registry: new ProviderRegistry().register(provider),
        limits,
        retry: { maxRetries: 0 },
      });
    };
    try {
      const clients = [client(), client()];
      // One call each first, so the SDK is loaded: a grant that waits for a module load would reach the
      // server later than Redis granted it, bunched with the next ones (the first window of any limiter).
      for (const each of clients) await each.call({ model: 'openai:gpt-4.1-mini', prompt: 'warm up' });
      fake.reset();
      const results = await Promise.allSettled(
        Array.from({ length: 30 }, (_, i) =>
          (clients[i % 2] as ModelClient).call({ model: 'openai:gpt-4.1-mini', prompt: `call ${i}` }),
        ),
      );
      expect(results.filter((result) => result.status === 'rejected')).toEqual([]);
      expect(fake.byStatus['429'] ?? 0).toBe(0);
      expect(fake.accepted).toHaveLength(30);
      // The server's own sliding count, over two clients each with its own registry and connection.
      expect(fake.peakRequestsPerWindow).toBeLessThanOrEqual(requests);
      console.log(
        `[distributed] 2 ModelClients x 15 calls: most requests the server saw in a ${windowMs} ms window ${fake.peakRequestsPerWindow} / ${requests}`,
      );
    } finally {
      await Promise.all(registries.map((registry) => registry.close()));
      await fake.close();
    }
  });

  it('frees the concurrency slot of a process that died holding a permit once its lease expires', async () => {
    const shared = prefix();
    const limits = { p: { maxConcurrency: 1 } };
    const registry = new RedisRateLimiterRegistry(server.url, { prefix: shared, limits, leaseMs: 1000 });
    (await registry.get('p', 'warm-up').acquire()).settle(); // connected before the other process starts
    const { stdout } = await run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { RedisRateLimiterRegistry } = await import('./src/distributed/index.ts');
const registry = new RedisRateLimiterRegistry(${JSON.stringify(server.url)}, { prefix: ${JSON.stringify(shared)}, limits: { p: ${JSON.stringify(limits.p)} }, leaseMs: 1000 });
const permit = await registry.get('p', 'm').acquire();
console.log(JSON.stringify({ grantedAt: permit.grantedAt }));
process.exit(0); // dies holding the permit: no settle, no release, no close`,
      ],
      { cwd: root },
    );
    const dead = JSON.parse(stdout) as { grantedAt: number };
    try {
      const reasons: string[] = [];
      const permit = await registry.get('p', 'm').acquire({ onWait: (wait) => reasons.push(wait.reason) });
      expect(reasons).toEqual(['concurrency']);
      expect(permit.grantedAt - dead.grantedAt).toBeGreaterThanOrEqual(1000);
      permit.settle();
    } finally {
      await registry.close();
    }
  });

  it('says which package to install when ioredis is missing', async () => {
    const { stdout } = await run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { registerHooks } = await import('node:module');
registerHooks({ resolve(specifier, context, next) {
  if (specifier === 'ioredis') throw Object.assign(new Error("Cannot find module 'ioredis'"), { code: 'MODULE_NOT_FOUND' });
  return next(specifier, context);
} });
const { RedisRateLimiterRegistry } = await import('./src/distributed/index.ts');
try { new RedisRateLimiterRegistry('redis://127.0.0.1:9', { limits: {} }); }
catch (error) { console.log(JSON.stringify({ name: error.name, code: error.code, message: error.message })); }`,
      ],
      { cwd: root },
    );
    const error = JSON.parse(stdout) as { name: string; code: string; message: string };
    expect(error).toMatchObject({ name: MissingPeerDependencyError.name, code: 'missing_peer_dependency' });
    expect(error.message).toContain('npm install ioredis');
  });
});

/** The first wait a new caller of `limiter` is told about; the caller then gives up (nothing is granted). */
async function firstWait(
  limiter: ReturnType<RedisRateLimiterRegistry['get']>,
  estimatedTokens: number,
): Promise<RateLimitWait> {
  const controller = new AbortController();
  let seen: RateLimitWait | undefined;
  const done = new Promise<RateLimitWait>((resolve) => {
    limiter
      .acquire({
        estimatedTokens,
        signal: controller.signal,
        onWait: (wait) => {
          seen = wait;
          controller.abort();
        },
      })
      .then(
        (permit) => {
          permit.release();
          resolve({ reason: 'concurrency', delayMs: 0, waiting: 0 });
        },
        () => {
          resolve(seen as RateLimitWait);
        },
      );
  });
  return done;
}

/** A child process that is granted 400 000 tokens, gets a 429 and releases with `backoffMs`. */
function releaseWith429(url: string, shared: string, limits: object, backoffMs: number): string {
  return `const { RedisRateLimiterRegistry } = await import('./src/distributed/index.ts');
const registry = new RedisRateLimiterRegistry(${JSON.stringify(url)}, { prefix: ${JSON.stringify(shared)}, limits: { p: ${JSON.stringify(limits)} } });
const permit = await registry.get('p', 'm').acquire({ estimatedTokens: 400000 });
permit.release({ backoffMs: ${backoffMs} });
await registry.close();
console.log(JSON.stringify({ grantedAt: permit.grantedAt }));`;
}
