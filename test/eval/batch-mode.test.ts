import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ModelClient,
  PriceTable,
  ProviderRegistry,
  chain,
  createDefaultRegistry,
  createSimulatedProvider,
} from '../../src/index.ts';
import { evaluate, type EvalProgress } from '../../src/eval/batch.ts';
import {
  BatchCoordinator,
  batchPrices,
  type BatchOptions,
  type BatchStateStore,
} from '../../src/eval/batch-mode.ts';
import { sqliteEvalStore } from '../../src/eval/run-store.ts';
import { createSimulatedBatchClient } from '../../src/providers/batch-simulated.ts';
import { AbortedError, RequestTimeoutError } from '../../src/providers/errors.ts';
import type { RowRecord, Scorer } from '../../src/eval/types.ts';
import { RunStore } from '../../src/eval/store.ts';
import { chunkBatchItems } from '../../src/providers/batch.ts';

/** A 3-node chain (outline → draft → title) on the simulated model. */
function simChain() {
  const registry = createDefaultRegistry();
  return chain({
    name: 'three',
    input: z.object({ topic: z.string() }),
    model: 'sim:default',
    client: new ModelClient({ registry }),
  })
    .prompt('outline', {
      template: 'Outline {{input.topic}}.',
      output: z.object({ title: z.string(), points: z.array(z.string()) }),
    })
    .prompt('draft', { after: ['outline'], prompt: ({ outline }) => `Draft: ${outline.title}` })
    .prompt('title', { after: ['draft'], prompt: ({ draft }) => `Title for: ${draft.slice(0, 40)}` })
    .build();
}

const nonEmpty: Scorer<{ topic: string }, Record<string, unknown>> = {
  name: 'nonEmpty',
  node: 'title',
  score: ({ output }) => ({ score: typeof output === 'string' && output !== '' ? 1 : 0 }),
};

describe('evaluate({ batch }) on the simulated model', () => {
  it('sends each layer of a 3-node chain over 200 rows as one batch, offline', async () => {
    const store = RunStore.open(':memory:');
    const rows = Array.from({ length: 200 }, (_, i) => ({ id: `r${i}`, topic: `topic ${i}` }));
    const seen: EvalProgress[] = [];
    const result = await evaluate({
      chain: simChain(),
      dataset: rows,
      scorers: [nonEmpty],
      store,
      runName: 'sim-batch',
      batch: { pollMs: 5, collectMs: 30 },
      onProgress: (p) => seen.push(p),
    });
    expect(result.done).toBe(200);
    expect(result.summary.variants[0]?.error).toBe(0);
    expect(result.summary.variants[0]?.pass).toBe(200);
    const batches = store.batches('sim-batch');
    // One batch per layer: every row's outline, then every draft, then every title.
    expect(batches.map((b) => b.items)).toEqual([200, 200, 200]);
    expect(batches.every((b) => b.status === 'ended')).toBe(true);
    const items = store.batchItems('sim-batch');
    expect(items).toHaveLength(600);
    expect(items.every((item) => item.state === 'done')).toBe(true);
    expect(seen.at(-1)?.batches?.map((b) => b.status)).toEqual(['ended', 'ended', 'ended']);
    // Each row is stored as a batch row (the report's matrix shows it).
    expect([...store.rows('sim-batch')].every((row) => row.batch === true)).toBe(true);
    store.close();
  });

  it('a resumed run answers from the stored items and submits nothing again; deleting the run forgets them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'symphonizer-batch-mode-'));
    const path = join(dir, 'runs.sqlite');
    try {
      const rows = Array.from({ length: 20 }, (_, i) => ({ id: `r${i}`, topic: `t${i}` }));
      const options = {
        chain: simChain(),
        dataset: rows,
        scorers: [nonEmpty],
        store: path,
        runName: 'again',
        batch: { pollMs: 5, collectMs: 20 },
      };
      await evaluate(options);
      // Forget the rows only (as if the process died after the batches ended, before the rows were written).
      const raw = new DatabaseSync(path);
      raw.exec("DELETE FROM rows WHERE run = 'again'");
      raw.close();
      const second = await evaluate(options);
      expect(second.done).toBe(20);
      let store = RunStore.open(path);
      expect(store.batches('again')).toHaveLength(3);
      // Deleting the run deletes its batch state: the next run submits its own batches.
      store.deleteRun('again');
      expect(store.batches('again')).toHaveLength(0);
      expect(store.batchItems('again')).toHaveLength(0);
      store.close();
      await evaluate(options);
      store = RunStore.open(path);
      expect(store.batches('again')).toHaveLength(3);
      store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses batch with a client or queue, and bad batch options, naming the field', async () => {
    const base = { chain: simChain(), dataset: [{ topic: 'x' }], scorers: [nonEmpty] };
    await expect(evaluate({ ...base, batch: true, client: new ModelClient() })).rejects.toThrow(/client/);
    await expect(evaluate({ ...base, batch: { pollMs: -1 } })).rejects.toThrow(/batch\.pollMs/);
    await expect(evaluate({ ...base, batch: { maxItemsPerBatch: 0 } })).rejects.toThrow(
      /batch\.maxItemsPerBatch/,
    );
  });
});

describe('batchPrices()', () => {
  it('prices every model at its batch rates, and leaves models without them unpriced', () => {
    const table = PriceTable.default;
    const id = 'openai:gpt-4.1-mini';
    const online = table.priceOf(id);
    const batch = batchPrices(table).priceOf(id);
    expect(online?.batchInputPerMillion).toBeDefined();
    expect(batch?.inputPerMillion).toBe(online?.batchInputPerMillion);
    expect(batch?.outputPerMillion).toBe(online?.batchOutputPerMillion);
    const custom = new PriceTable({ 'x:y': { inputPerMillion: 1, outputPerMillion: 2 } });
    expect(batchPrices(custom).priceOf('x:y')).toBeUndefined();
  });
});

describe('chunkBatchItems()', () => {
  it('splits by request count and by bytes, in order', () => {
    const items = Array.from({ length: 10 }, (_, i) => i);
    expect(chunkBatchItems(items, { maxRequests: 4, maxBytes: 1000 }, () => 1)).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [8, 9],
    ]);
    expect(chunkBatchItems(items, { maxRequests: 100, maxBytes: 25 }, () => 10).map((c) => c.length)).toEqual(
      [2, 2, 2, 2, 2],
    );
    expect(chunkBatchItems(items, { maxRequests: 100, maxBytes: 1000 }, () => 1, 3)).toHaveLength(4);
  });
});

describe('BatchCoordinator', () => {
  function setup(options: Omit<BatchOptions, 'clients'>, turnaroundPolls: number) {
    const store = sqliteEvalStore(RunStore.open(':memory:'));
    const sim = createSimulatedProvider();
    const registry = new ProviderRegistry().register(sim);
    const client = createSimulatedBatchClient(sim, { turnaroundPolls });
    const coordinator = new BatchCoordinator('unit', store as unknown as BatchStateStore, {
      ...options,
      clients: { sim: client },
    });
    return { store, registry, coordinator };
  }

  it('a batch not done within maxWaitMs is given up: its calls fail as retryable timeouts, the batch is expired', async () => {
    const { store, registry, coordinator } = setup(
      { pollMs: 5, maxPollMs: 5, maxWaitMs: 40, collectMs: 1 },
      1e9,
    );
    await coordinator.start(registry);
    const provider = coordinator.wrapRegistry(registry).get('sim');
    const error: unknown = await provider
      .complete({ model: 'default', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RequestTimeoutError);
    expect((error as RequestTimeoutError).isRetryable).toBe(true);
    expect((error as Error).message).toMatch(/maxWaitMs \(40 ms\)/);
    expect(coordinator.batches.map((b) => b.status)).toEqual(['expired']);
    const stored = await (store as unknown as BatchStateStore).batchItems('unit');
    expect(stored.map((i) => i.state)).toEqual(['failed']);
    coordinator.close();
    await store.close();
  });

  it('an aborted call rejects at once with AbortedError; its item stays in the batch', async () => {
    const { store, registry, coordinator } = setup({ pollMs: 5, collectMs: 1 }, 3);
    await coordinator.start(registry);
    const provider = coordinator.wrapRegistry(registry).get('sim');
    const controller = new AbortController();
    const call = provider.complete({
      model: 'default',
      messages: [{ role: 'user', content: 'hi' }],
      signal: controller.signal,
    });
    controller.abort();
    await expect(call).rejects.toBeInstanceOf(AbortedError);
    coordinator.close();
    await store.close();
  });

  it('identical calls get distinct custom ids, each answered once', async () => {
    const { store, registry, coordinator } = setup({ pollMs: 5, collectMs: 5 }, 1);
    await coordinator.start(registry);
    const provider = coordinator.wrapRegistry(registry).get('sim');
    const request = { model: 'default', messages: [{ role: 'user' as const, content: 'same' }] };
    const [a, b] = await Promise.all([provider.complete(request), provider.complete(request)]);
    expect(a.text).toBe(b.text);
    const items = await (store as unknown as BatchStateStore).batchItems('unit');
    expect(new Set(items.map((i) => i.customId)).size).toBe(2);
    expect(coordinator.batches).toHaveLength(1);
    coordinator.close();
    await store.close();
  });
});

describe('the rows table of a store file made before batch mode', () => {
  it('gains the batch column when opened, its rows read as not batch rows, and batch rows round-trip', () => {
    const dir = mkdtempSync(join(tmpdir(), 'symphonizer-batch-column-'));
    const path = join(dir, 'old.sqlite');
    try {
      const row = (rowId: string, batch?: boolean): RowRecord => ({
        run: 'old',
        variant: 'base',
        rowId,
        line: 1,
        status: 'pass',
        input: { q: rowId },
        scores: {},
        usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2, costUsd: 0, calls: 1, unpricedCalls: 0 },
        latencyMs: 1,
        attempts: 1,
        cached: false,
        ...(batch === undefined ? {} : { batch }),
        finishedAt: 1_700_000_000_000,
      });
      let store = RunStore.open(path);
      store.beginRun({ run: 'old', chain: 'c', variants: ['base'] });
      store.putRow(row('a'));
      store.close();
      // As an older version left it: no batch column.
      const raw = new DatabaseSync(path);
      raw.exec('ALTER TABLE rows DROP COLUMN batch');
      raw.close();
      store = RunStore.open(path);
      store.putRow(row('b', true));
      const rows = [...store.rows('old')];
      expect(rows.map((r) => [r.rowId, r.batch])).toEqual([
        ['a', undefined],
        ['b', true],
      ]);
      store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
