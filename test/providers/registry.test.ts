import { describe, expect, it } from 'vitest';
import { InvalidModelIdError, MissingApiKeyError, UnknownProviderError } from '../../src/providers/errors.ts';
import { ProviderRegistry, createDefaultRegistry } from '../../src/providers/registry.ts';
import type { Provider } from '../../src/providers/types.ts';

const fakeProvider = (name: string): Provider => ({
  name,
  complete: () => Promise.reject(new Error('unused')),
  stream: () => ({
    [Symbol.asyncIterator]: () => ({
      next: () => Promise.resolve({ done: true as const, value: undefined }),
    }),
  }),
});

describe('ProviderRegistry', () => {
  it('always has the simulated provider', async () => {
    const { provider, model } = new ProviderRegistry().resolve('sim:echo');
    expect(provider.name).toBe('sim');
    expect(model).toBe('echo');
    const response = await provider.complete({ model, messages: [{ role: 'user', content: 'hi' }] });
    expect(response.text).toBe('[simulated] hi');
  });

  it('resolves provider:model ids, keeping colons inside the model id', () => {
    const registry = new ProviderRegistry().register(fakeProvider('ollama'));
    expect(registry.resolve('ollama:llama3.1:8b')).toMatchObject({ model: 'llama3.1:8b' });
    expect(registry.resolve('ollama:llama3.1:8b').provider.name).toBe('ollama');
  });

  it.each(['gpt-4.1-mini', ':gpt', 'openai:', 'open ai:gpt', 'openai: gpt', 'openai:gpt ', ''])(
    'refuses the malformed id %j with InvalidModelIdError',
    (id) => {
      const registry = createDefaultRegistry();
      expect(() => registry.resolve(id)).toThrow(InvalidModelIdError);
      try {
        registry.resolve(id);
      } catch (error) {
        expect((error as InvalidModelIdError).code).toBe('invalid_model_id');
        expect((error as Error).message).toContain('provider:model');
      }
    },
  );

  it('names the known providers when the provider is unknown', () => {
    const registry = createDefaultRegistry();
    let caught: unknown;
    try {
      registry.resolve('mistral:large');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(UnknownProviderError);
    expect((caught as UnknownProviderError).known).toEqual(['anthropic', 'openai', 'sim']);
    expect((caught as Error).message).toContain('anthropic, openai, sim');
    expect(() => registry.get('nope')).toThrow(UnknownProviderError);
  });

  it('creates openai and anthropic only on first use, once', () => {
    let created = 0;
    const registry = new ProviderRegistry().registerLazy('lazy', () => {
      created++;
      return fakeProvider('lazy');
    });
    expect(registry.has('lazy')).toBe(true);
    expect(created).toBe(0);
    const first = registry.resolve('lazy:m').provider;
    expect(registry.get('lazy')).toBe(first);
    expect(created).toBe(1);
  });

  it('reads no API key until a network provider is called', async () => {
    const saved = process.env['OPENAI_API_KEY'];
    delete process.env['OPENAI_API_KEY'];
    try {
      const registry = createDefaultRegistry();
      const { provider, model } = registry.resolve('openai:gpt-4.1-mini');
      expect(provider.name).toBe('openai');
      await expect(
        provider.complete({ model, messages: [{ role: 'user', content: 'x' }] }),
      ).rejects.toBeInstanceOf(MissingApiKeyError);
      expect(registry.resolve('anthropic:claude-sonnet-4-5')).toMatchObject({ model: 'claude-sonnet-4-5' });
    } finally {
      if (saved !== undefined) process.env['OPENAI_API_KEY'] = saved;
    }
  });

  it('lets a registered provider replace a lazy one of the same name', () => {
    const mine = fakeProvider('openai');
    const registry = createDefaultRegistry().register(mine);
    expect(registry.get('openai')).toBe(mine);
    expect(registry.names).toEqual(['anthropic', 'openai', 'sim']);
  });
});
