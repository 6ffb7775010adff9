// Batch state in both run stores: the same calls give the same stored batches and items in SQLite and in a
// real PostgreSQL (test/support/postgres-server.ts), and a batch-mode evaluation on PostgreSQL resumes from it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ModelClient, chain, createDefaultRegistry } from '../../src/index.ts';
import { evaluate } from '../../src/eval/batch.ts';
import type { BatchInfo, BatchItemRecord, BatchStateStore } from '../../src/eval/batch-mode.ts';
import { PostgresRunStore } from '../../src/eval/postgres-store.ts';
import { sqliteEvalStore } from '../../src/eval/run-store.ts';
import { RunStore } from '../../src/eval/store.ts';
import type { Scorer } from '../../src/eval/types.ts';
import { skipPostgres, startPostgresServer, type PostgresTestServer } from '../support/postgres-server.ts';

let server: PostgresTestServer;
beforeAll(async () => {
  if (!skipPostgres) server = await startPostgresServer();
}, 60_000);
afterAll(async () => {
  if (!skipPostgres) await server.close();
});

async function exercise(store: BatchStateStore): Promise<{
  batches: readonly BatchInfo[];
  items: readonly BatchItemRecord[];
}> {
  const batch: BatchInfo = {
    id: 'batch_1',
    provider: 'openai',
    model: 'gpt-4.1-mini',
    status: 'in_progress',
    items: 3,
    completed: 0,
    submittedAt: 1_700_000_000_000,
  };
  await store.putBatch('run-a', batch, ['k1-0', 'k2-0', 'k3-0']);
  await store.putBatch('run-b', { ...batch, id: 'batch_2', items: 1 }, ['k1-0']);
  await store.updateBatch('run-a', 'batch_1', 'in_progress', 2);
  await store.updateBatch('run-a', 'batch_1', 'ended', undefined); // keeps the last count
  await store.settleBatchItems('run-a', [
    {
      customId: 'k1-0',
      batchId: 'batch_1',
      state: 'done',
      response: { text: 'hi', usage: { inputTokens: 3 } },
    },
    { customId: 'k2-0', batchId: 'batch_1', state: 'failed', error: 'The server had an error.' },
  ]);
  const items = [...(await store.batchItems('run-a'))].sort((a, b) => a.customId.localeCompare(b.customId));
  return { batches: [...(await store.batches('run-a')), ...(await store.batches('run-b'))], items };
}

const expected = {
  batches: [
    {
      id: 'batch_1',
      provider: 'openai',
      model: 'gpt-4.1-mini',
      status: 'ended',
      items: 3,
      completed: 2,
      submittedAt: 1_700_000_000_000,
    },
    {
      id: 'batch_2',
      provider: 'openai',
      model: 'gpt-4.1-mini',
      status: 'in_progress',
      items: 1,
      completed: 0,
      submittedAt: 1_700_000_000_000,
    },
  ],
  items: [
    {
      customId: 'k1-0',
      batchId: 'batch_1',
      state: 'done',
      response: { text: 'hi', usage: { inputTokens: 3 } },
      error: undefined,
    },
    {
      customId: 'k2-0',
      batchId: 'batch_1',
      state: 'failed',
      response: undefined,
      error: 'The server had an error.',
    },
    { customId: 'k3-0', batchId: 'batch_1', state: 'submitted', response: undefined, error: undefined },
  ],
};

describe('batch state in the run stores', () => {
  it('SQLite keeps batches and items per run', async () => {
    const store = sqliteEvalStore(RunStore.open(':memory:'));
    expect(await exercise(store as unknown as BatchStateStore)).toEqual(expected);
    await store.close();
  });

  it.skipIf(skipPostgres)('PostgreSQL keeps the same', async () => {
    const store = await PostgresRunStore.open(server.url, { schema: 'batch_state' });
    try {
      expect(await exercise(store)).toEqual(expected);
    } finally {
      await store.close();
    }
  });

  it.skipIf(skipPostgres)(
    'a batch-mode evaluation on PostgreSQL stores its batches and resumes from them',
    async () => {
      const registry = createDefaultRegistry();
      const two = chain({
        name: 'two',
        input: z.object({ topic: z.string() }),
        model: 'sim:default',
        client: new ModelClient({ registry }),
      })
        .prompt('a', { template: 'About {{input.topic}}.' })
        .prompt('b', { after: ['a'], prompt: ({ a }) => `Shorter: ${a}` })
        .build();
      const answered: Scorer<{ topic: string }, Record<string, unknown>> = {
        name: 'answered',
        score: ({ output }) => ({ score: typeof output === 'string' ? 1 : 0 }),
      };
      const store = await PostgresRunStore.open(server.url, { schema: 'batch_eval' });
      try {
        const options = {
          chain: two,
          dataset: Array.from({ length: 30 }, (_, i) => ({ id: `r${i}`, topic: `t${i}` })),
          scorers: [answered],
          store,
          runName: 'pg-batch',
          batch: { pollMs: 5, collectMs: 20 },
        };
        const first = await evaluate(options);
        expect(first.summary.variants[0]?.pass).toBe(30);
        const stored = [];
        for await (const row of store.rows('pg-batch')) stored.push(row);
        expect(stored.filter((row) => row.batch === true)).toHaveLength(30);
        expect((await store.batches('pg-batch')).map((b) => [b.status, b.items])).toEqual([
          ['ended', 30],
          ['ended', 30],
        ]);
        // The rows gone, the answers kept: a resume answers every call from the stored items.
        await store.deleteRun('pg-batch');
        const second = await evaluate(options);
        expect(second.summary.variants[0]?.pass).toBe(30);
        expect(await store.batches('pg-batch')).toHaveLength(2);
      } finally {
        await store.close();
      }
    },
  );
});
