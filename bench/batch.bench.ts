/**
 * Batch-mode bench: an evaluation of 10,000 rows × a 2-call chain (`summary`: free text, then `classify`:
 * structured `{ label }` reading the summary) on `openai:gpt-4.1-mini`, against the loopback fake server
 * through the real OpenAI SDK, once in batch mode (`evaluate({ batch })`: the Batch API with a simulated
 * turnaround) and once online (Chat Completions, 64 rows at once), the same rows and answers.
 *
 *   node bench/batch.bench.ts                   10,000 rows (run by `npm run bench`)
 *   node bench/batch.bench.ts --rows 2000       fewer rows
 *   --turnaround-ms N   a batch ends at its first poll N ms after its creation (default 1000)
 *   --json              results as JSON on stdout
 *
 * Reported per mode: wall time, the provider requests made (batch mode: file uploads, batches created, polls,
 * file downloads; online: chat completions), the calls answered, and the cost; then the batch cost against the
 * online cost of the same rows (the Batch API's rates are half the online ones). Targets: batch mode makes
 * fewer than 1 % of the online run's requests, and costs half as much (within 0.1 %).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { ModelClient, ProviderRegistry, chain, createOpenAIProvider } from '../src/index.ts';
import { evaluate, type EvalResult } from '../src/eval/batch.ts';
import type { Scorer } from '../src/eval/types.ts';
import { createOpenAIBatchClient } from '../src/providers/batch-openai.ts';
import { startFakeProviderServer } from '../test/support/fake-provider-server.ts';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '10000' },
    'turnaround-ms': { type: 'string', default: '1000' },
    json: { type: 'boolean', default: false },
  },
});
const rows = Number(values.rows);
const turnaroundMs = Number(values['turnaround-ms']);
const key = ['sk', 'bench', 'batch'].join('-');
const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

const server = await startFakeProviderServer();
server.batch.options.turnaround = { ms: turnaroundMs, polls: 1 };
const dir = mkdtempSync(join(os.tmpdir(), 'symphonizer-batch-bench-'));

function twoCalls() {
  const registry = new ProviderRegistry().register(
    createOpenAIProvider({ baseURL: server.openaiBaseURL, apiKey: key }),
  );
  return chain({
    name: 'two-calls',
    input: z.object({ text: z.string() }),
    model: 'openai:gpt-4.1-mini',
    client: new ModelClient({ registry }),
  })
    .prompt('summary', { template: 'Summarise in one line: {{input.text}}' })
    .prompt('classify', {
      after: ['summary'],
      prompt: ({ summary }) => `Label this summary as bug, feature or question: ${summary}`,
      output: z.object({ label: z.string() }),
    })
    .build();
}

const labelled: Scorer<{ text: string }, Record<string, unknown>> = {
  name: 'labelled',
  node: 'classify',
  score: ({ output }) => ({
    score: typeof (output as { label?: unknown } | undefined)?.label === 'string' ? 1 : 0,
  }),
};

const dataset = Array.from({ length: rows }, (_, i) => ({
  id: `r${i}`,
  text: `Ticket ${i}: the export button ${i % 3 === 0 ? 'crashes' : 'is slow'} on page ${i % 17}.`,
}));

interface ModeResult {
  readonly mode: 'batch' | 'online';
  readonly wallMs: number;
  readonly requests: Record<string, number>;
  readonly totalRequests: number;
  readonly calls: number;
  readonly costUsd: number;
  readonly pass: number;
}

async function run(mode: 'batch' | 'online'): Promise<ModeResult> {
  server.reset();
  server.batch.reset();
  const started = performance.now();
  const result: EvalResult = await evaluate({
    chain: twoCalls(),
    dataset,
    scorers: [labelled],
    store: join(dir, `${mode}.sqlite`),
    runName: mode,
    ...(mode === 'batch'
      ? {
          batch: {
            pollMs: Math.max(50, turnaroundMs / 4),
            maxPollMs: Math.max(100, turnaroundMs / 2),
            collectMs: 250,
            clients: { openai: createOpenAIBatchClient({ baseURL: server.openaiBaseURL, apiKey: key }) },
          },
        }
      : { concurrency: 64 }),
  });
  const wallMs = performance.now() - started;
  const c = server.batch.counts;
  const online = server.log.filter((r) => r.path === '/v1/chat/completions').length;
  const requests =
    mode === 'batch'
      ? {
          'file uploads': c.filesUploaded,
          'batches created': c.batchesCreated,
          polls: c.polls,
          'file downloads': c.fileDownloads,
          'chat completions': online,
        }
      : { 'chat completions': online };
  return {
    mode,
    wallMs,
    requests,
    totalRequests: Object.values(requests).reduce((a, b) => a + b, 0),
    calls: result.usage.calls,
    costUsd: result.usage.costUsd,
    pass: result.summary.variants[0]?.pass ?? 0,
  };
}

log(`batch bench: ${rows.toLocaleString('en-US')} rows × 2 calls, batch turnaround ${turnaroundMs} ms …`);
const batch = await run('batch');
log(`  batch mode done in ${(batch.wallMs / 1000).toFixed(1)} s; now the online run …`);
const online = await run('online');
await server.close();
rmSync(dir, { recursive: true, force: true });

const ratio = batch.costUsd / online.costUsd;
const checks = [
  {
    name: 'requests < 1% of online',
    ok: batch.totalRequests < online.totalRequests / 100,
    measured: `${batch.totalRequests} vs ${online.totalRequests}`,
  },
  {
    name: 'cost = 50% of online (±0.1%)',
    ok: Math.abs(ratio - 0.5) < 0.0005,
    measured: `${(ratio * 100).toFixed(2)}%`,
  },
  {
    name: 'every row passed in both',
    ok: batch.pass === rows && online.pass === rows,
    measured: `${batch.pass}/${online.pass}`,
  },
];

if (values.json) {
  console.log(JSON.stringify({ rows, turnaroundMs, batch, online, costRatio: ratio, checks }, null, 2));
} else {
  const fmtRequests = (r: ModeResult): string =>
    Object.entries(r.requests)
      .filter(([, n]) => n > 0 || r.mode === 'online')
      .map(([name, n]) => `${n.toLocaleString('en-US')} ${name}`)
      .join(', ');
  const out = [
    '',
    `Batch mode: ${rows.toLocaleString('en-US')} rows × a 2-call chain, openai:gpt-4.1-mini on the fake server (real SDK), batch turnaround ${turnaroundMs} ms`,
    '',
    'Mode    Wall time  Calls   Provider requests                                                   Cost',
    '------  ---------  ------  ------------------------------------------------------------------  ----------',
    ...[batch, online].map(
      (r) =>
        `${r.mode.padEnd(6)}  ${`${(r.wallMs / 1000).toFixed(1)} s`.padStart(9)}  ${String(r.calls).padStart(6)}  ${fmtRequests(r).padEnd(66)}  $${r.costUsd.toFixed(4)}`,
    ),
    '',
    `Batch cost / online cost: ${(ratio * 100).toFixed(1)}% ($${batch.costUsd.toFixed(4)} vs $${online.costUsd.toFixed(4)}); requests: ${batch.totalRequests} vs ${online.totalRequests.toLocaleString('en-US')}.`,
    `Targets: ${checks.filter((c) => c.ok).length}/${checks.length} PASS` +
      (checks.some((c) => !c.ok)
        ? `; MISS: ${checks
            .filter((c) => !c.ok)
            .map((c) => `${c.name} (${c.measured})`)
            .join('; ')}`
        : ''),
  ];
  console.log(out.join('\n'));
}
