import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ModelClient,
  PriceTable,
  chain,
  createAnthropicProvider,
  createOpenAIProvider,
  ProviderRegistry,
} from '../../src/index.ts';
import { evaluate } from '../../src/eval/batch.ts';
import { RunStore } from '../../src/eval/store.ts';
import type { Scorer } from '../../src/eval/types.ts';
import type { BatchClient } from '../../src/providers/batch.ts';
import { createAnthropicBatchClient } from '../../src/providers/batch-anthropic.ts';
import { createOpenAIBatchClient } from '../../src/providers/batch-openai.ts';
import { fakeKey } from '../helpers/fake-keys.ts';
import { startFakeProviderServer, type FakeProviderServer } from '../support/fake-provider-server.ts';

let server: FakeProviderServer;
beforeAll(async () => {
  server = await startFakeProviderServer();
});
afterAll(async () => {
  await server.close();
});

const OPENAI_KEY = fakeKey('batch', 'openai');
const ANTHROPIC_KEY = fakeKey('ant', 'batch');

interface Setup {
  readonly provider: 'openai' | 'anthropic';
  readonly model: string;
  readonly registry: () => ProviderRegistry;
  readonly client: () => BatchClient;
}

const setups: Setup[] = [
  {
    provider: 'openai',
    model: 'gpt-4.1-mini',
    registry: () =>
      new ProviderRegistry().register(
        createOpenAIProvider({ baseURL: server.openaiBaseURL, apiKey: OPENAI_KEY }),
      ),
    client: () => createOpenAIBatchClient({ baseURL: server.openaiBaseURL, apiKey: OPENAI_KEY }),
  },
  {
    provider: 'anthropic',
    model: 'claude-haiku-4-5',
    registry: () =>
      new ProviderRegistry().register(
        createAnthropicProvider({ baseURL: server.anthropicBaseURL, apiKey: ANTHROPIC_KEY }),
      ),
    client: () => createAnthropicBatchClient({ baseURL: server.anthropicBaseURL, apiKey: ANTHROPIC_KEY }),
  },
];

function threeNodes(setup: Setup) {
  return chain({
    name: `three-${setup.provider}`,
    input: z.object({ topic: z.string() }),
    model: `${setup.provider}:${setup.model}`,
    client: new ModelClient({ registry: setup.registry() }),
  })
    .prompt('outline', {
      template: 'Outline {{input.topic}}.',
      output: z.object({ title: z.string() }),
    })
    .prompt('draft', { after: ['outline'], prompt: ({ outline }) => `Draft on ${outline.title}` })
    .prompt('title', { after: ['draft'], prompt: ({ draft }) => `Title for: ${draft.slice(0, 30)}` })
    .build();
}

const answered: Scorer<{ topic: string }, Record<string, unknown>> = {
  name: 'answered',
  node: 'title',
  score: ({ output }) => ({ score: typeof output === 'string' && output !== '' ? 1 : 0 }),
};

describe.each(setups)('batch mode through the $provider SDK against the fake server', (setup) => {
  it('runs a 3-node chain over 200 rows as 3 batches, every item once, cost at batch rates', async () => {
    server.batch.reset();
    server.reset();
    const store = RunStore.open(':memory:');
    const rows = Array.from({ length: 200 }, (_, i) => ({ id: `r${i}`, topic: `topic ${i}` }));
    const result = await evaluate({
      chain: threeNodes(setup),
      dataset: rows,
      scorers: [answered],
      store,
      runName: 'e2e',
      batch: { pollMs: 5, collectMs: 40, clients: { [setup.provider]: setup.client() } },
    });
    expect(result.summary.variants[0]?.pass).toBe(200);
    const counts = server.batch.counts;
    expect(counts.batchesCreated).toBe(3);
    expect(counts.itemsSubmitted).toBe(600);
    expect([...counts.submissions.values()].every((n) => n === 1)).toBe(true);
    // No online call at all: only batch endpoints were asked.
    expect(server.log).toHaveLength(0);
    if (setup.provider === 'openai') expect(counts.filesUploaded).toBe(3);
    const price = PriceTable.default.priceOf(`${setup.provider}:${setup.model}`);
    const { inputTokens, outputTokens, costUsd } = result.usage;
    expect(inputTokens).toBeGreaterThan(0);
    // The fake server reports no prompt-cache tokens here: every input token at the batch input rate.
    expect(result.usage.cacheReadTokens ?? 0).toBe(0);
    expect(result.usage.cacheWriteTokens ?? 0).toBe(0);
    const batchCost =
      (inputTokens * (price?.batchInputPerMillion ?? NaN) +
        outputTokens * (price?.batchOutputPerMillion ?? NaN)) /
      1e6;
    expect(costUsd).toBeCloseTo(batchCost, 10);
    const online = PriceTable.default.costOf(`${setup.provider}:${setup.model}`, {
      inputTokens,
      outputTokens,
    }).costUsd;
    expect(costUsd).toBeCloseTo((online ?? NaN) / 2, 10);
    store.close();
  });

  it('a failed item is asked again in a later batch', async () => {
    server.batch.reset();
    const failedOnce = new Set<string>();
    // The first batch item of each call fails (its custom id ends in the count of identical calls before it).
    server.batch.options.failItem = (customId) => {
      const call = customId.replace(/-\d+$/, '');
      if (failedOnce.has(call)) return undefined;
      failedOnce.add(call);
      return 'The server had an error processing this item.';
    };
    const store = RunStore.open(':memory:');
    try {
      const result = await evaluate({
        chain: threeNodes(setup),
        dataset: [{ id: 'a', topic: 'x' }],
        scorers: [answered],
        store,
        runName: 'retry',
        batch: { pollMs: 5, collectMs: 5, clients: { [setup.provider]: setup.client() } },
      });
      expect([...store.rows('retry')].map((r) => r.error?.message)).toEqual([undefined]);
      expect(result.summary.variants[0]?.pass).toBe(1);
      // Each of the 3 calls failed once, then went into a batch of its own again.
      expect(server.batch.counts.batchesCreated).toBe(6);
      expect(store.batchItems('retry').filter((i) => i.state === 'failed')).toHaveLength(3);
    } finally {
      server.batch.options.failItem = undefined;
      store.close();
    }
  });

  it('with maxCostUsd, the pilot row goes in batches of its own, then the estimate stops the run', async () => {
    server.batch.reset();
    const store = RunStore.open(':memory:');
    // A file: its rows are counted first, which the estimate needs.
    const dir = mkdtempSync(join(tmpdir(), 'symphonizer-batch-ceiling-'));
    const dataset = join(dir, 'rows.jsonl');
    writeFileSync(
      dataset,
      Array.from({ length: 200 }, (_, i) => JSON.stringify({ id: `r${i}`, topic: `topic ${i}` })).join('\n'),
    );
    try {
      const result = await evaluate({
        chain: threeNodes(setup),
        dataset,
        scorers: [answered],
        store,
        runName: 'ceiling',
        maxCostUsd: 0.01,
        batch: { pollMs: 5, collectMs: 20, clients: { [setup.provider]: setup.client() } },
      });
      expect(result.stopped).toBe('estimate');
      expect(result.done).toBe(1);
      // 200 rows at the pilot's batch cost.
      expect(result.estimatedCostUsd).toBeCloseTo(result.usage.costUsd * 200, 10);
      expect(store.batches('ceiling').map((b) => b.items)).toEqual([1, 1, 1]);
    } finally {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an item the provider refuses as invalid is not asked again: its row is an ERROR row, not a FAIL', async () => {
    server.batch.reset();
    server.batch.options.failItem = () => ({ status: 400, message: 'messages: invalid content' });
    const store = RunStore.open(':memory:');
    try {
      const result = await evaluate({
        chain: threeNodes(setup),
        dataset: [{ id: 'a', topic: 'x' }],
        scorers: [answered],
        store,
        runName: 'refused',
        batch: { pollMs: 5, collectMs: 5, clients: { [setup.provider]: setup.client() } },
      });
      expect(result.summary.variants[0]?.error).toBe(1);
      expect(result.summary.variants[0]?.fail).toBe(0);
      const [row] = [...store.rows('refused')];
      expect(row?.error).toMatchObject({ code: 'bad_request', node: 'outline' });
      expect(row?.error?.message).toContain('messages: invalid content');
      expect(server.batch.counts.batchesCreated).toBe(1);
    } finally {
      server.batch.options.failItem = undefined;
      store.close();
    }
  });
});
