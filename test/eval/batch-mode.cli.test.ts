import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunStore } from '../../src/eval/store.ts';
import { PriceTable } from '../../src/providers/usage.ts';
import { fakeKey } from '../helpers/fake-keys.ts';
import { startFakeProviderServer, type FakeProviderServer } from '../support/fake-provider-server.ts';

const root = resolve(import.meta.dirname, '../..');
const example = [
  'eval',
  'examples/eval-report.ts',
  '--dataset',
  'examples/data/tickets.jsonl',
  '--variants',
  'examples/eval-report.ts',
  '--batch',
];

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function cli(args: readonly string[], extraEnv: Record<string, string> = {}): Promise<Outcome> {
  const dropped = [
    'SYMPHONIZER_MODEL',
    'OPENAI_API_KEY',
    'OPENAI_BASE_URL',
    'ANTHROPIC_API_KEY',
    'ANTHROPIC_BASE_URL',
  ];
  const env: Record<string, string | undefined> = {
    ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !dropped.includes(name))),
    NO_COLOR: '1',
    ...extraEnv,
  };
  return new Promise((done) => {
    execFile(process.execPath, ['src/cli/main.ts', ...args], { cwd: root, env }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      done({ code, stdout, stderr });
    });
  });
}

let dir: string;
let server: FakeProviderServer;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'symphonizer-batch-cli-'));
  server = await startFakeProviderServer();
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

const slow = { timeout: 120_000 };

describe('symphonizer eval --batch', () => {
  it(
    'runs the eval example offline through simulated batches, and a re-run submits nothing',
    slow,
    async () => {
      const store = join(dir, 'sim.sqlite');
      const report = join(dir, 'sim.html');
      const first = await cli([...example, '--run', 'sim', '--store', store, '--report', report]);
      // Exit 1: the example's dataset has a malformed line on purpose (an unread row).
      expect(first.code).toBe(1);
      expect(first.stderr).toMatch(/^batch simbatch_\S+ sim:demo: ended 38\/38$/m);
      const runs = RunStore.open(store);
      expect(runs.batches('sim').map((b) => [b.status, b.items])).toEqual([['ended', 38]]);
      expect(runs.countRows('sim').total).toBe(42);
      // The report's matrix marks the 38 answered cells (19 rows × 2 variants) as batch answers.
      expect(readFileSync(report, 'utf8').match(/"batch":true/g)).toHaveLength(38);
      runs.close();

      const again = await cli([...example, '--run', 'sim', '--store', store]);
      // The stored batch is shown as it was; nothing new is submitted.
      expect(again.stderr.match(/^batch .*$/gm)).toEqual([first.stderr.match(/^batch .*ended.*$/m)?.[0]]);
      const after = RunStore.open(store);
      expect(after.batches('sim')).toHaveLength(1);
      after.close();
    },
  );

  it(
    'runs it against the fake OpenAI server: one batch for the chain calls, each row priced at batch rates',
    slow,
    async () => {
      const store = join(dir, 'openai.sqlite');
      server.batch.reset();
      server.reset();
      const model = 'openai:gpt-4.1-mini';
      const outcome = await cli(
        [
          'eval',
          'examples/eval-report.ts',
          '--dataset',
          'examples/data/tickets.jsonl',
          '--batch',
          '--model',
          model,
          '--run',
          'oa',
          '--store',
          store,
        ],
        {
          OPENAI_BASE_URL: server.openaiBaseURL,
          OPENAI_API_KEY: fakeKey('cli', 'batch'),
        },
      );
      expect(outcome.code).toBe(1); // the unread row again
      expect(outcome.stderr).toMatch(/^batch batch_\d+ openai:gpt-4\.1-mini: ended 19\/19$/m);
      expect(server.batch.counts.batchesCreated).toBe(1);
      // The chain's calls all went in the batch; the online calls are the LLM judge's (a scorer, with its own
      // client), one per answered row.
      const online = server.log.filter((r) => r.path === '/v1/chat/completions');
      expect(online).toHaveLength(19);
      expect(online.every((r) => /judge|grade/i.test(JSON.stringify(r.body)))).toBe(true);
      const price = PriceTable.default.priceOf(model);
      const runs = RunStore.open(store);
      const rows = [...runs.rows('oa')].filter((r) => r.usage.calls > 0);
      expect(rows).toHaveLength(19);
      for (const row of rows) {
        const batchCost =
          (row.usage.inputTokens * (price?.batchInputPerMillion ?? NaN) +
            row.usage.outputTokens * (price?.batchOutputPerMillion ?? NaN)) /
          1e6;
        expect(row.usage.costUsd).toBeCloseTo(batchCost, 12);
        expect(row.usage.costUsd).toBeGreaterThan(0);
      }
      runs.close();
    },
  );
});
