// The response cache: stable keys, read-write/read-only/off modes, streaming replay, zero-cost hits, and
// persistence across close/reopen. Test-double providers count (or forbid) the calls that reach them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SymphonizerError } from '../../src/core/errors.ts';
import {
  CacheClosedError,
  CacheMissError,
  ResponseCache,
  cacheKey,
  isCachedResponse,
} from '../../src/eval/cache.ts';
import { ProviderRegistry } from '../../src/providers/registry.ts';
import type { ModelRequest, ModelResponse, Provider, StreamEvent } from '../../src/providers/types.ts';
import { ScriptedProvider } from '../helpers/scripted-provider.ts';

const request: ModelRequest = {
  model: 'm1',
  system: 'Be brief.',
  messages: [{ role: 'user', content: 'Capital of France?' }],
  temperature: 0,
  maxTokens: 100,
  stop: ['\n\n'],
  output: { name: 'answer', schema: { type: 'object', properties: { city: { type: 'string' } } } },
};

/** A provider that fails the test if it is ever called. */
const unreachable: Provider = {
  name: 'scripted',
  complete: () => Promise.reject(new Error('the provider must not be called')),
  stream: () => {
    throw new Error('the provider must not be called');
  },
};

async function collect(events: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  for await (const event of events) out.push(event);
  return out;
}

let dir: string;
let path: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'symphonizer-cache-'));
  path = join(dir, 'cache.db');
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('cacheKey', () => {
  it('is stable whatever the key order of the request objects', () => {
    const reordered: ModelRequest = {
      output: { schema: { properties: { city: { type: 'string' } }, type: 'object' }, name: 'answer' },
      stop: ['\n\n'],
      maxTokens: 100,
      temperature: 0,
      messages: [{ content: 'Capital of France?', role: 'user' }],
      system: 'Be brief.',
      model: 'm1',
    };
    expect(cacheKey('p', reordered)).toBe(cacheKey('p', request));
    expect(cacheKey('p', request)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('ignores the signal and undefined fields', () => {
    const withSignal = { ...request, signal: new AbortController().signal, tools: undefined };
    expect(cacheKey('p', withSignal)).toBe(cacheKey('p', request));
  });

  it('changes with anything that changes the answer', () => {
    const base = cacheKey('p', request);
    const variants: ModelRequest[] = [
      { ...request, model: 'm2' },
      { ...request, system: 'Be verbose.' },
      { ...request, messages: [{ role: 'user', content: 'Capital of Spain?' }] },
      { ...request, temperature: 0.5 },
      { ...request, maxTokens: 101 },
      { ...request, stop: ['END'] },
      { ...request, tools: [{ name: 't', parameters: { type: 'object' } }] },
      {
        ...request,
        output: { name: 'answer', schema: { type: 'object', properties: { city: { type: 'number' } } } },
      },
      { ...request, output: undefined },
      { ...request, providerOptions: { openai: { seed: 1 } } },
    ];
    const keys = new Set(variants.map((v) => cacheKey('p', v)));
    expect(keys.size).toBe(variants.length);
    expect(keys.has(base)).toBe(false);
    expect(cacheKey('q', request)).not.toBe(base);
  });
});

describe('ResponseCache', () => {
  it('read-write: the second identical call is answered from the cache, at zero cost', async () => {
    const cache = ResponseCache.open(path);
    const inner = new ScriptedProvider('scripted', () => ({ json: { city: 'Paris' } }));
    const provider = cache.wrap(inner);
    expect(provider.name).toBe('scripted');

    const first = await provider.complete(request);
    expect(isCachedResponse(first)).toBe(false);
    expect(first.usage).toEqual({ inputTokens: 10, outputTokens: 5 });

    const second = await provider.complete({ ...request, signal: new AbortController().signal });
    expect(inner.requests).toHaveLength(1);
    expect(isCachedResponse(second)).toBe(true);
    expect(second).toMatchObject({
      provider: 'scripted',
      model: 'm1',
      text: first.text,
      json: { city: 'Paris' },
    });
    expect(second.usage).toEqual({ inputTokens: 0, outputTokens: 0 });
    expect(isCachedResponse(second) && second.cachedUsage).toEqual({ inputTokens: 10, outputTokens: 5 });

    await provider.complete({ ...request, temperature: 1 });
    expect(inner.requests).toHaveLength(2);
    expect(cache.stats()).toEqual({ hits: 1, misses: 2, writes: 2 });
    cache.close();
  });

  it('does not cache provider errors', async () => {
    const cache = ResponseCache.open(path);
    const inner = new ScriptedProvider('scripted', (_r, n) => (n === 1 ? new Error('boom') : 'ok'));
    const provider = cache.wrap(inner);
    await expect(provider.complete(request)).rejects.toThrow('boom');
    expect((await provider.complete(request)).text).toBe('ok');
    expect(inner.requests).toHaveLength(2);
    expect(cache.stats()).toEqual({ hits: 0, misses: 2, writes: 1 });
    cache.close();
  });

  it('survives close and reopen, and replays read-only with no provider behind it', async () => {
    const recorder = ResponseCache.open(path);
    await recorder.wrap(new ScriptedProvider('scripted', () => 'Paris.')).complete(request);
    recorder.close();

    const replay = ResponseCache.open(path, 'read-only');
    const provider = replay.wrap(unreachable);
    const answer = await provider.complete(request);
    expect(answer.text).toBe('Paris.');
    expect(isCachedResponse(answer)).toBe(true);
    expect(replay.stats()).toEqual({ hits: 1, misses: 0, writes: 0 });
    replay.close();

    const again = ResponseCache.open(path);
    const inner = new ScriptedProvider('scripted', () => 'other');
    expect((await again.wrap(inner).complete(request)).text).toBe('Paris.');
    expect(inner.requests).toHaveLength(0);
    again.close();
  });

  it('read-only: a miss throws CacheMissError naming the provider and model', async () => {
    const cache = ResponseCache.open(path, 'read-only');
    const provider = cache.wrap(unreachable);
    const error: unknown = await provider.complete(request).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(CacheMissError);
    expect(SymphonizerError.isInstance(error) && error.code).toBe('cache_miss');
    expect(error).toMatchObject({ provider: 'scripted', model: 'm1', key: cacheKey('scripted', request) });
    expect((error as Error).message).toContain('scripted:m1');
    expect((error as Error).message).toMatch(/record the run first/);
    await expect(collect(provider.stream(request))).rejects.toBeInstanceOf(CacheMissError);
    expect(cache.stats()).toEqual({ hits: 0, misses: 2, writes: 0 });
    cache.close();
  });

  it('off: passes every call through and stores nothing', async () => {
    const cache = ResponseCache.open(path, 'off');
    const inner = new ScriptedProvider('scripted', () => 'fresh');
    const provider = cache.wrap(inner);
    expect(provider).toBe(inner);
    await provider.complete(request);
    await provider.complete(request);
    expect(inner.requests).toHaveLength(2);
    expect(cache.stats()).toEqual({ hits: 0, misses: 0, writes: 0 });
    cache.close();
  });

  it('streams: a miss passes the stream through and stores it; a hit replays one delta and finish', async () => {
    const cache = ResponseCache.open(path);
    const inner = new ScriptedProvider('scripted', () => 'The capital is Paris.');
    const provider = cache.wrap(inner);

    const live = await collect(provider.stream(request));
    expect(live.filter((e) => e.type === 'text-delta').length).toBeGreaterThan(1);
    expect(cache.stats().writes).toBe(1);

    const replayed = await collect(provider.stream(request));
    expect(inner.requests).toHaveLength(1);
    expect(replayed.map((e) => e.type)).toEqual(['text-delta', 'finish']);
    expect(replayed[0]).toEqual({ type: 'text-delta', text: 'The capital is Paris.' });
    const finish = replayed[1];
    const response = finish?.type === 'finish' ? finish.response : undefined;
    expect(response && isCachedResponse(response)).toBe(true);
    expect(response?.usage).toEqual({ inputTokens: 0, outputTokens: 0 });

    // complete() and stream() share entries.
    expect((await provider.complete(request)).text).toBe('The capital is Paris.');
    expect(inner.requests).toHaveLength(1);
    cache.close();
  });

  it('replays tool calls in a stream and stores nothing for an unfinished stream', async () => {
    const cache = ResponseCache.open(path);
    const toolCall = { id: 'call_1', name: 'lookup', arguments: { q: 'x' } };
    const response: ModelResponse = {
      provider: 'scripted',
      model: 'm1',
      text: 'Looking up.',
      toolCalls: [toolCall],
      finishReason: 'tool_calls',
      usage: { inputTokens: 4, outputTokens: 2 },
    };
    let streams = 0;
    const inner: Provider = {
      name: 'scripted',
      complete: () => Promise.resolve(response),
      async *stream() {
        streams++;
        await Promise.resolve();
        yield { type: 'text-delta', text: 'Looking up.' };
        yield { type: 'tool-call', toolCall };
        yield { type: 'finish', response };
      },
    };
    const provider = cache.wrap(inner);
    for await (const event of provider.stream(request)) {
      if (event.type === 'tool-call') break; // abandoned before finish
    }
    expect(cache.stats().writes).toBe(0);
    expect(await collect(provider.stream(request))).toHaveLength(3);
    expect(streams).toBe(2);
    const replayed = await collect(provider.stream(request));
    expect(streams).toBe(2);
    expect(replayed.map((e) => e.type)).toEqual(['text-delta', 'tool-call', 'finish']);
    expect(replayed[1]).toEqual({ type: 'tool-call', toolCall });
    cache.close();
  });

  it('keeps the original usage when a cached answer is cached again, and drops rate-limit state', async () => {
    const outer = ResponseCache.open(join(dir, 'outer.db'));
    const innerCache = ResponseCache.open(path);
    const base: ModelResponse = {
      provider: 'scripted',
      model: 'm1',
      text: 'hi',
      toolCalls: [],
      finishReason: 'stop',
      usage: { inputTokens: 7, outputTokens: 3 },
      rateLimit: { remainingRequests: 0, resetRequestsMs: 60_000 },
    };
    const raw: Provider = { ...unreachable, complete: () => Promise.resolve(base) };
    const twice = outer.wrap(innerCache.wrap(raw));
    await twice.complete(request); // both miss, both store
    const fresh = ResponseCache.open(join(dir, 'outer.db'), 'read-only');
    const replayed = await fresh.wrap(unreachable).complete(request);
    expect(isCachedResponse(replayed) && replayed.cachedUsage).toEqual({ inputTokens: 7, outputTokens: 3 });
    expect(replayed.rateLimit).toBeUndefined();
    for (const c of [outer, innerCache, fresh]) c.close();
  });

  it('throws CacheClosedError after close', async () => {
    const cache = ResponseCache.open(path);
    const provider = cache.wrap(unreachable);
    cache.close();
    cache.close();
    await expect(provider.complete(request)).rejects.toBeInstanceOf(CacheClosedError);
  });

  it('shares a file with the run store', async () => {
    const { RunStore } = await import('../../src/eval/store.ts');
    const store = RunStore.open(path);
    const cache = ResponseCache.open(path);
    store.beginRun({ run: 'r', chain: 'c', variants: ['v'] });
    await cache.wrap(new ScriptedProvider('scripted', () => 'x')).complete(request);
    expect(cache.stats().writes).toBe(1);
    expect(store.run('r')?.chain).toBe('c');
    cache.close();
    store.close();
  });
});

describe('ResponseCache.wrapRegistry', () => {
  it('wraps every provider of a registry, lazily registered ones included, keeping their names', async () => {
    const cache = ResponseCache.open(path);
    const eager = new ScriptedProvider('eager', () => 'e');
    const lazy = new ScriptedProvider('lazy', () => 'l');
    let created = 0;
    const source = new ProviderRegistry().register(eager).registerLazy('lazy', () => {
      created++;
      return lazy;
    });
    const wrapped = cache.wrapRegistry(source);
    expect(wrapped).not.toBe(source);
    expect(wrapped.names).toEqual(source.names);
    expect(created).toBe(0); // still lazy

    const { provider, model } = wrapped.resolve('lazy:m1');
    expect(provider.name).toBe('lazy');
    expect(created).toBe(1);
    await provider.complete({ ...request, model });
    await wrapped.get('lazy').complete({ ...request, model });
    expect(lazy.requests).toHaveLength(1);

    await wrapped.get('eager').complete(request);
    await wrapped.get('eager').complete(request);
    expect(eager.requests).toHaveLength(1);
    expect(cache.stats()).toEqual({ hits: 2, misses: 2, writes: 2 });

    // The built-in simulated provider is wrapped too.
    const sim = wrapped.get('sim');
    const first = await sim.complete({ model: 'echo', messages: [{ role: 'user', content: 'hi' }] });
    const second = await sim.complete({ model: 'echo', messages: [{ role: 'user', content: 'hi' }] });
    expect(isCachedResponse(first)).toBe(false);
    expect(isCachedResponse(second)).toBe(true);
    expect(second.text).toBe(first.text);
    cache.close();
  });

  it('wraps only the names given, and refuses unknown names', async () => {
    const cache = ResponseCache.open(path);
    const a = new ScriptedProvider('a', () => 'A');
    const b = new ScriptedProvider('b', () => 'B');
    const source = new ProviderRegistry({ simulated: { name: 'fake' } }).register(a).register(b);
    const wrapped = cache.wrapRegistry(source, ['a']);
    expect(wrapped.names).toEqual(['a', 'b', 'fake']);
    expect(wrapped.get('b')).toBe(b);
    await wrapped.get('a').complete(request);
    await wrapped.get('a').complete(request);
    expect(a.requests).toHaveLength(1);
    expect(() => cache.wrapRegistry(source, ['nope'])).toThrow(/nope/);
    cache.close();
  });
});
