// Importing an entry point loads no optional weight: no provider SDK, no node:sqlite, no Handlebars.
// Each check runs in a fresh Node process that records every module it resolves.
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');

interface Loaded {
  readonly urls: readonly string[];
  readonly sqlite: boolean;
}

async function loadedBy(script: string): Promise<Loaded> {
  const code = `const { registerHooks } = await import('node:module');
const urls = [];
registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); urls.push(r.url); return r; } });
${script}
console.log(JSON.stringify({ urls, sqlite: process.moduleLoadList.some((m) => m.includes('sqlite')) }));`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', code], { cwd: root });
  return JSON.parse(stdout) as Loaded;
}

const sdk = /node_modules\/(openai|@anthropic-ai\/sdk)\//u;
const handlebars = /node_modules\/handlebars\//u;
const redisOrPg = /node_modules\/(ioredis|bullmq|pg|pg-[a-z-]+)\//u;

describe('lazy optional weight', () => {
  it.each(['src/index.ts', 'src/eval/index.ts', 'agents/index.ts', 'src/cli/main.ts'])(
    'importing %s loads no provider SDK, no node:sqlite and no Handlebars',
    async (entry) => {
      const loaded = await loadedBy(
        `${entry.endsWith('main.ts') ? "process.argv[1] = '/nowhere';" : ''} await import('./${entry}');`,
      );
      expect(loaded.urls.some((url) => url.endsWith(entry))).toBe(true);
      expect(loaded.urls.filter((url) => sdk.test(url))).toEqual([]);
      expect(loaded.urls.filter((url) => handlebars.test(url))).toEqual([]);
      expect(loaded.sqlite).toBe(false);
    },
  );

  it.each([
    'src/index.ts',
    'src/core/index.ts',
    'src/providers/index.ts',
    'src/prompts/index.ts',
    'src/chain/index.ts',
    'src/eval/index.ts',
    'agents/index.ts',
    'src/testing.ts',
    'src/distributed/index.ts',
  ])('importing %s loads no Redis or PostgreSQL client', async (entry) => {
    const loaded = await loadedBy(`await import('./${entry}');`);
    expect(loaded.urls.some((url) => url.endsWith(entry))).toBe(true);
    expect(loaded.urls.filter((url) => redisOrPg.test(url))).toEqual([]);
  });

  it('loads ioredis on the first RedisRateLimiterRegistry, and no PostgreSQL client', async () => {
    const loaded =
      await loadedBy(`const { RedisRateLimiterRegistry } = await import('./src/distributed/index.ts');
await new RedisRateLimiterRegistry('redis://127.0.0.1:9', { limits: {} }).close();`);
    expect(loaded.urls.some((url) => /node_modules\/ioredis\//u.test(url))).toBe(true);
    expect(loaded.urls.some((url) => /node_modules\/pg\//u.test(url))).toBe(false);
  });

  it('loads the OpenAI SDK on the first call of its provider, and only that SDK', async () => {
    const loaded = await loadedBy(`const { createOpenAIProvider } = await import('./src/index.ts');
const provider = createOpenAIProvider({ baseURL: 'http://127.0.0.1:9/v1' });
await provider.complete({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }).catch(() => {});`);
    expect(loaded.urls.some((url) => /node_modules\/openai\//u.test(url))).toBe(true);
    expect(loaded.urls.some((url) => /node_modules\/@anthropic-ai\/sdk\//u.test(url))).toBe(false);
  });

  it('loads node:sqlite on the first run store, and Handlebars on the first template', async () => {
    const loaded = await loadedBy(`const { RunStore } = await import('./src/eval/index.ts');
const { PromptTemplate } = await import('./src/prompts/index.ts');
RunStore.open(':memory:').close();
new PromptTemplate('Hi {{name}}').render({ name: 'x' });`);
    expect(loaded.sqlite).toBe(true);
    expect(loaded.urls.some((url) => handlebars.test(url))).toBe(true);
  });
});
