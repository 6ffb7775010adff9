import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { chain } from '../../src/chain/index.ts';
import { CliError } from '../../src/cli/errors.ts';
import { checkEnvKey, clientOf, preflight, type PreflightOptions } from '../../src/cli/preflight.ts';
import {
  MissingApiKeyError,
  ModelClient,
  ProviderRegistry,
  createDefaultRegistry,
  createOpenAIProvider,
} from '../../src/providers/index.ts';
import type { ModelRequest, ModelResponse, Provider } from '../../src/providers/types.ts';
import { fakeKey } from '../helpers/fake-keys.ts';

/** A provider that must never be called: the pre-flight sends no request. */
function uncallable(name: string, check?: (model: string) => void): Provider {
  const fail = (): never => {
    throw new Error(`${name} was called`);
  };
  return {
    name,
    complete: (_request: ModelRequest): Promise<ModelResponse> => fail(),
    stream: () => fail(),
    ...(check === undefined ? {} : { preflight: check }),
  };
}

const two = chain({ name: 'two', model: 'openai:gpt-x', input: z.object({}) })
  .prompt('first', { prompt: () => 'a' })
  .prompt('second', { model: 'anthropic:claude-x', after: ['first'], prompt: () => 'b' })
  .build();

function failure(options: PreflightOptions): CliError {
  try {
    preflight(options);
  } catch (error) {
    if (error instanceof CliError) return error;
    throw error;
  }
  throw new Error('the pre-flight passed');
}

describe('checkEnvKey()', () => {
  it('needs the key variable of openai and anthropic on their own hosts', () => {
    expect(() => {
      checkEnvKey('openai', {});
    }).toThrow(MissingApiKeyError);
    expect(() => {
      checkEnvKey('anthropic', { ANTHROPIC_API_KEY: '  ' });
    }).toThrow(MissingApiKeyError);
    expect(() => {
      checkEnvKey('openai', { OPENAI_BASE_URL: 'https://eu.api.openai.com/v1' });
    }).toThrow(/OPENAI_API_KEY/);
    expect(() => {
      checkEnvKey('anthropic', { ANTHROPIC_BASE_URL: 'https://api.anthropic.com' });
    }).toThrow(/ANTHROPIC_API_KEY/);
    try {
      checkEnvKey('anthropic', {});
    } catch (error) {
      expect((error as MissingApiKeyError).envVar).toBe('ANTHROPIC_API_KEY');
    }
  });

  it('passes with a key, with a base URL of another server, and for any other provider', () => {
    expect(() => {
      checkEnvKey('openai', { OPENAI_API_KEY: fakeKey('test', 'x') });
    }).not.toThrow();
    expect(() => {
      checkEnvKey('anthropic', { ANTHROPIC_API_KEY: fakeKey('ant', 'x') });
    }).not.toThrow();
    expect(() => {
      checkEnvKey('openai', { OPENAI_BASE_URL: 'http://localhost:11434/v1' });
    }).not.toThrow();
    expect(() => {
      checkEnvKey('anthropic', { ANTHROPIC_BASE_URL: 'http://127.0.0.1:8080' });
    }).not.toThrow();
    expect(() => {
      checkEnvKey('sim', {});
    }).not.toThrow();
    expect(() => {
      checkEnvKey('ollama', {});
    }).not.toThrow();
  });
});

describe('preflight()', () => {
  // Providers without a preflight() of their own: the environment rule applies to them (envKeys).
  const registry = new ProviderRegistry()
    .register(uncallable('openai'))
    .register(uncallable('anthropic'))
    .register(uncallable('sim'));

  it('names the missing key, the model and its nodes', () => {
    const error = failure({ chain: two, registry, env: {}, envKeys: true });
    expect(error.code).toBe('missing_api_key');
    expect(error.message).toContain('model openai:gpt-x (node "first") needs OPENAI_API_KEY');
    expect(error.hint).toContain('set OPENAI_API_KEY');
    const anthropic = failure({
      chain: two,
      registry,
      env: { OPENAI_API_KEY: fakeKey('test', 'x') },
      envKeys: true,
    });
    expect(anthropic.message).toContain('model anthropic:claude-x (node "second") needs ANTHROPIC_API_KEY');
  });

  it('passes when every key is there, and checks no key with keys: false or a chain-owned registry', () => {
    const env = { OPENAI_API_KEY: fakeKey('test', 'x'), ANTHROPIC_API_KEY: fakeKey('ant', 'y') };
    expect(() => {
      preflight({ chain: two, registry, env, envKeys: true });
    }).not.toThrow();
    expect(() => {
      preflight({ chain: two, registry, env: {}, envKeys: true, keys: false });
    }).not.toThrow();
    expect(() => {
      preflight({ chain: two, registry, env: {}, envKeys: false });
    }).not.toThrow();
  });

  it('applies run models and variant overrides, and reports unknown providers with the known ones', () => {
    const error = failure({
      chain: two,
      runs: [
        { label: 'variant "a"', model: 'sim:a' },
        { label: 'variant "b"', model: 'sim:b', overrides: { second: { model: 'nope:x' } } },
      ],
      registry,
      env: {},
      envKeys: true,
    });
    expect(error.code).toBe('unknown_provider');
    expect(error.message).toContain('Unknown provider "nope" in model nope:x (variant "b": node "second")');
    expect(error.hint).toContain('known providers: anthropic, openai, sim');
    // With --model on every node, the nodes' own openai and anthropic models are not used at all.
    expect(() => {
      preflight({ chain: two, runs: [{ model: 'sim:x' }], registry, env: {}, envKeys: true });
    }).not.toThrow();
  });

  it("uses the built-in providers' own preflight(): a key in their settings passes, none fails", () => {
    const saved = { key: process.env['OPENAI_API_KEY'], url: process.env['OPENAI_BASE_URL'] };
    process.env['OPENAI_API_KEY'] = '';
    process.env['OPENAI_BASE_URL'] = '';
    try {
      const builtIn = createDefaultRegistry();
      const only = chain({ name: 'one', model: 'openai:gpt-x', input: z.object({}) })
        .prompt('first', { template: 'hi' })
        .build();
      expect(failure({ chain: only, registry: builtIn, env: {}, envKeys: false }).code).toBe(
        'missing_api_key',
      );
      const keyed = new ProviderRegistry().register(createOpenAIProvider({ apiKey: fakeKey('test', 'z') }));
      expect(() => {
        preflight({ chain: only, registry: keyed, env: {}, envKeys: false });
      }).not.toThrow();
    } finally {
      process.env['OPENAI_API_KEY'] = saved.key ?? '';
      process.env['OPENAI_BASE_URL'] = saved.url ?? '';
    }
  });

  it("calls a provider's own preflight(), without any request", () => {
    const seen: string[] = [];
    const custom = new ProviderRegistry()
      .register(
        uncallable('openai', (model) => {
          seen.push(model);
        }),
      )
      .register(
        uncallable('keyed', () => {
          throw new MissingApiKeyError('keyed', 'KEYED_TOKEN');
        }),
      );
    // openai's own check is used instead of the environment one (which would refuse: env is empty).
    expect(() => {
      preflight({
        chain: two,
        runs: [{ overrides: { second: { model: 'openai:o' } } }],
        registry: custom,
        env: {},
        envKeys: true,
      });
    }).not.toThrow();
    expect(seen).toEqual(['gpt-x', 'o']);
    const error = failure({
      chain: two,
      runs: [{ model: 'keyed:m' }],
      registry: custom,
      env: {},
      envKeys: false,
    });
    expect(error.code).toBe('missing_api_key');
    expect(error.message).toContain('model keyed:m (nodes "first", "second") needs KEYED_TOKEN');
  });

  it('finds the client a chain was built with', () => {
    const client = new ModelClient();
    const owned = chain({ input: z.object({}), client })
      .prompt('a', { prompt: () => 'x' })
      .build();
    expect(clientOf(owned)).toBe(client);
    expect(clientOf(two)).toBeUndefined();
    expect(clientOf({ client: { registry: {} } })).toBeUndefined();
    expect(clientOf(null)).toBeUndefined();
  });
});
