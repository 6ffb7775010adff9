import { afterEach, describe, expect, it, vi } from 'vitest';
import { isSimulated, pickModel } from '../../examples/model.ts';

describe('examples/model.ts pickModel()', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  const stub = (env: Record<string, string>): void => {
    for (const name of ['SYMPHONIZER_MODEL', 'OPENAI_API_KEY', 'ANTHROPIC_API_KEY'])
      vi.stubEnv(name, env[name] ?? '');
  };

  it('falls back to the simulated model when every variable is empty', () => {
    stub({});
    expect(pickModel()).toBe('sim:demo');
    expect(isSimulated(pickModel())).toBe(true);
  });

  it('prefers SYMPHONIZER_MODEL, then an OpenAI key, then an Anthropic key', () => {
    stub({ SYMPHONIZER_MODEL: 'ollama:llama3.1:8b', OPENAI_API_KEY: 'x', ANTHROPIC_API_KEY: 'y' });
    expect(pickModel()).toBe('ollama:llama3.1:8b');
    stub({ OPENAI_API_KEY: 'x', ANTHROPIC_API_KEY: 'y' });
    expect(pickModel()).toBe('openai:gpt-4.1-mini');
    stub({ ANTHROPIC_API_KEY: 'y', SYMPHONIZER_MODEL: '  ' });
    expect(pickModel()).toBe('anthropic:claude-sonnet-4-5');
  });
});
