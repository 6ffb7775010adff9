import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluate } from '../../src/eval/batch.ts';
import { RunStore } from '../../src/eval/store.ts';
import { PriceTable } from '../../src/providers/usage.ts';
import { startFakeProviderServer, type FakeProviderServer } from '../support/fake-provider-server.ts';
import { batchModeOptions } from './fixtures/batch-mode-chain.ts';

let server: FakeProviderServer;
let dir: string;
beforeAll(async () => {
  server = await startFakeProviderServer();
  dir = mkdtempSync(join(tmpdir(), 'symphonizer-batch-kill-'));
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function until(ready: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ready()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}.`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('batch mode after kill -9', () => {
  it('a resumed run polls the batch the killed process submitted: nothing submitted twice, every row once', async () => {
    const storePath = join(dir, 'runs.sqlite');
    // The batch never ends while the first process polls it.
    server.batch.options.turnaround = { polls: Number.POSITIVE_INFINITY };
    const child = spawn(
      process.execPath,
      ['test/eval/fixtures/batch-mode-child.ts', server.openaiBaseURL, storePath],
      {
        stdio: 'ignore',
      },
    );
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on('exit', (_code, signal) => {
        resolve(signal);
      }),
    );
    try {
      await until(
        () => server.batch.counts.batchesCreated >= 1 && server.batch.counts.polls >= 2,
        'the child to poll',
      );
    } finally {
      child.kill('SIGKILL');
    }
    expect(await exited).toBe('SIGKILL');

    const probe = RunStore.open(storePath);
    const stored = probe.batches('killed-batch');
    expect(stored.map((b) => [b.status, b.items])).toEqual([['in_progress', 200]]);
    expect(probe.countRows('killed-batch').total).toBe(0);
    probe.close();

    // Now the batch ends at its next poll; the resumed run must poll it rather than submit the layer again.
    server.batch.options.turnaround = { polls: 0 };
    const result = await evaluate(batchModeOptions(server.openaiBaseURL, storePath, 200));
    const counts = server.batch.counts;
    expect(counts.batchesCreated).toBe(3); // the killed process's layer 1, then layers 2 and 3
    expect(counts.itemsSubmitted).toBe(600);
    expect([...counts.submissions.values()].every((n) => n === 1)).toBe(true);
    expect(result.done).toBe(200);
    expect(result.summary.variants[0]?.pass).toBe(200);

    const store = RunStore.open(storePath);
    const rows = [...store.rows('killed-batch')];
    expect(rows).toHaveLength(200);
    expect(new Set(rows.map((r) => r.rowId)).size).toBe(200);
    expect(store.batches('killed-batch').map((b) => b.status)).toEqual(['ended', 'ended', 'ended']);
    store.close();

    // Every call, the killed process's layer included, is priced at the batch rates.
    const price = PriceTable.default.priceOf('openai:gpt-4.1-mini');
    const { inputTokens, outputTokens, costUsd } = result.usage;
    expect(result.usage.calls).toBe(600);
    expect(costUsd).toBeCloseTo(
      (inputTokens * (price?.batchInputPerMillion ?? NaN) +
        outputTokens * (price?.batchOutputPerMillion ?? NaN)) /
        1e6,
      10,
    );
  });
});
