// The examples on the real-provider path (pickModel() sees a key): the official OpenAI and Anthropic SDKs
// talk to the loopback fake server from test/support, which answers in both wire formats with schema-valid
// JSON. Nothing leaves the machine; the point is that the examples work unchanged when a key is set.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProviderServer, type FakeProviderServer } from '../support/fake-provider-server.ts';
import { runExample, slow } from './run-example.ts';

let fake: FakeProviderServer;
beforeAll(async () => {
  fake = await startFakeProviderServer();
});
afterAll(async () => {
  await fake.close();
});

describe('examples with a key set (against the loopback fake server)', () => {
  it('research-report --stream runs on openai:gpt-4.1-mini', slow, async () => {
    const { code, stdout, stderr } = await runExample('examples/research-report.ts', ['--stream'], {
      OPENAI_API_KEY: 'test-key',
      OPENAI_BASE_URL: fake.openaiBaseURL,
    });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout.split('\n')[0]).toBe('model: openai:gpt-4.1-mini (real model: calls cost money)');
    expect(stdout).toContain('done: revise (completed)');
    expect(stdout).toMatch(/7 calls, \d+ input/);
    expect(stdout).toMatch(/cost: \$\d+\.\d{4};/);
    expect(fake.requests).toBe(7);
  });

  it('eval-batch runs on anthropic:claude-sonnet-4-5', slow, async () => {
    const { code, stdout } = await runExample('examples/eval-batch.ts', [], {
      ANTHROPIC_API_KEY: 'test-key',
      ANTHROPIC_BASE_URL: fake.anthropicBaseURL,
    });
    expect(code).toBe(0);
    expect(stdout.split('\n')[0]).toBe('model: anthropic:claude-sonnet-4-5 (real model: calls cost money)');
    expect(stdout).toMatch(/accuracy: [\d.]+% \(\d+ of 10 answered rows correct\)/);
    expect(stdout).toMatch(/usage: 10 calls/);
  });
});
