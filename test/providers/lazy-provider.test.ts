import { describe, expect, it } from 'vitest';
import { MissingApiKeyError } from '../../src/providers/errors.ts';
import { lazyProvider } from '../../src/providers/lazy-provider.ts';
import { createAnthropicProvider, createOpenAIProvider } from '../../src/providers/index.ts';
import { createSimulatedProvider } from '../../src/providers/simulated/index.ts';

describe('lazyProvider', () => {
  it('imports its implementation once, on the first call, and delegates calls and streams to it', async () => {
    let loads = 0;
    const provider = lazyProvider('sim', async () => {
      loads++;
      await Promise.resolve();
      return createSimulatedProvider();
    });
    expect(loads).toBe(0);
    const request = { model: 'demo', messages: [{ role: 'user' as const, content: 'hi' }] };
    const [a, b] = await Promise.all([provider.complete(request), provider.complete(request)]);
    expect(a.text).toBe(b.text);
    const events = [];
    for await (const event of provider.stream(request)) events.push(event.type);
    expect(events.at(-1)).toBe('finish');
    expect(loads).toBe(1);
  });

  it('tries the import again after a failed one', async () => {
    let loads = 0;
    const provider = lazyProvider('flaky', () => {
      loads++;
      return loads === 1
        ? Promise.reject(new Error('not installed'))
        : Promise.resolve(createSimulatedProvider());
    });
    const request = { model: 'demo', messages: [{ role: 'user' as const, content: 'hi' }] };
    await expect(provider.complete(request)).rejects.toThrow('not installed');
    await expect(provider.complete(request)).resolves.toMatchObject({ provider: 'sim' });
  });
});

describe('preflight of the SDK providers', () => {
  const saved = { ...process.env };
  const clear = (): void => {
    process.env['OPENAI_API_KEY'] = '';
    process.env['OPENAI_BASE_URL'] = '';
    process.env['ANTHROPIC_API_KEY'] = '';
    process.env['ANTHROPIC_BASE_URL'] = '';
  };

  it('refuses a vendor host without a key, naming the variable to set', () => {
    clear();
    try {
      expect(() => createOpenAIProvider().preflight?.('gpt-x')).toThrow(MissingApiKeyError);
      expect(() => createOpenAIProvider().preflight?.('gpt-x')).toThrow(/OPENAI_API_KEY/u);
      expect(() => createAnthropicProvider().preflight?.('claude-x')).toThrow(/ANTHROPIC_API_KEY/u);
    } finally {
      Object.assign(process.env, saved);
    }
  });

  it('accepts a configured key, or a compatible server that needs none', () => {
    clear();
    try {
      expect('preflight' in createOpenAIProvider({ apiKey: 'k' })).toBe(true);
      expect(() => createOpenAIProvider({ apiKey: 'k' }).preflight?.('gpt-x')).not.toThrow();
      expect(() => createOpenAIProvider({ baseURL: 'http://127.0.0.1:1/v1' }).preflight?.('m')).not.toThrow();
      expect(() => createAnthropicProvider({ baseURL: 'http://127.0.0.1:1' }).preflight?.('m')).not.toThrow();
    } finally {
      Object.assign(process.env, saved);
    }
  });
});
