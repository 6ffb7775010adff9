/**
 * The eval bench's workload (bench/eval.bench.ts runs each phase in a fresh child process): a JSONL dataset
 * streamed to disk, a two-node chain on the simulated provider (zero latency), and one `evaluate()` batch
 * with the SQLite run store and a response cache, sampled for throughput and memory as it goes.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { z } from 'zod';
import {
  ProviderRegistry,
  ResponseCache,
  RunStore,
  chain,
  createSimulatedProvider,
  evaluate,
  exactMatch,
  regex,
  type ModelRequest,
  type Provider,
} from '../src/index.ts';
import { collectGarbage } from './util.ts';

export const LABELS = ['bug', 'feature', 'billing', 'question'] as const;

/** Writes `rows` labelled JSONL rows to `path`, streamed (never more than one write buffer in memory). */
export async function writeDataset(path: string, rows: number): Promise<void> {
  const out = createWriteStream(path, { encoding: 'utf8' });
  for (let i = 1; i <= rows; i++) {
    const line = `${JSON.stringify({
      id: `r${i}`,
      text: `Ticket ${i}: after the update on day ${i % 365}, screen ${i % 97} shows error E${i % 1009}.`,
      expected: { label: LABELS[i % LABELS.length] },
    })}\n`;
    if (!out.write(line)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

/**
 * A provider that counts the calls that reach it (the response cache sits in front of it). With
 * `freshEvery`, `make()` is called again every that many calls: the simulated provider keeps a counter per
 * distinct request (some 70 bytes of heap each, two per row here), which a fresh instance drops without
 * changing any answer (the bench draws no failures or latencies), so the eval layer's own memory shows.
 */
function counting(make: () => Provider, freshEvery?: number): { provider: Provider; calls: () => number } {
  let calls = 0;
  let provider = make();
  const next = (): Provider => {
    calls++;
    if (freshEvery !== undefined && calls % freshEvery === 0) provider = make();
    return provider;
  };
  return {
    provider: {
      name: provider.name,
      complete: (request: ModelRequest) => next().complete(request),
      stream: (request: ModelRequest) => next().stream(request),
    },
    calls: () => calls,
  };
}

/** The two-node chain: a free-text summary, then a structured label that reads it. */
export function benchChain() {
  return chain({ name: 'eval-bench', input: z.object({ text: z.string().min(1) }), model: 'sim:bench' })
    .prompt('summary', { prompt: ({ input }) => `Summarise this ticket in one line: ${input.text}` })
    .prompt('classify', {
      after: ['summary'],
      prompt: ({ input, summary }) =>
        `Label the ticket (${LABELS.join(', ')}).\nTicket: ${input.text}\nSummary: ${summary}`,
      output: z.object({ label: z.enum(LABELS) }),
    })
    .build();
}

export interface PhaseOptions {
  /** `record`: a fresh run with a read-write cache; `replay`: a fresh run name with a read-only cache. */
  readonly phase: 'record' | 'replay';
  readonly dataset: string;
  readonly storePath: string;
  readonly cachePath: string;
  /** Rows in the dataset. */
  readonly rows: number;
  /** Rows done at the memory checkpoint (capped at `rows`). @default 10,000 */
  readonly checkpoint?: number | undefined;
  /** A fresh simulated provider every this many calls (see `counting`). @default one for the whole run */
  readonly freshSimEvery?: number | undefined;
  readonly concurrency: number;
}

export interface PhaseResult {
  readonly phase: string;
  readonly rows: number;
  readonly units: number;
  /** evaluate() from call to return: the counting pre-pass over the file, the rows, the summary. */
  readonly wallMs: number;
  /** From evaluate()'s call to the last row's progress callback (no summary). */
  readonly rowsWallMs: number;
  /** Units per second over `rowsWallMs`. */
  readonly rowsPerSec: number;
  /** Units per second over `wallMs`. */
  readonly rowsPerSecOverall: number;
  readonly cpuMs: number;
  readonly providerCalls: number;
  readonly cache: { readonly hits: number; readonly misses: number; readonly writes: number };
  readonly stored: {
    readonly total: number;
    readonly pass: number;
    readonly fail: number;
    readonly error: number;
  };
  readonly cachedRows: number;
  readonly checkpoint: number;
  /** Highest sampled RSS (MB) until `checkpoint` units were done. */
  readonly peakRssAtCheckpointMb: number;
  /** Highest sampled RSS (MB) until the last unit was done (the summary step not included). */
  readonly peakRssAtEndMb: number;
  /** Highest sampled RSS (MB) including evaluate()'s final summary of every stored row. */
  readonly peakRssWithSummaryMb: number;
  /** `process.resourceUsage().maxRSS` at the very end (MB): the kernel's peak, summary included. */
  readonly maxRssMb: number;
  /** Heap in use right after a full GC at the checkpoint and after the last unit (MB): what is retained. */
  readonly heapAfterGcAtCheckpointMb: number;
  readonly heapAfterGcAtEndMb: number;
  /** `process.memoryUsage()` (MB) right after the forced full GC at the checkpoint and after the last unit. */
  readonly memoryAtCheckpoint: MemoryMb;
  readonly memoryAtEnd: MemoryMb;
  /** [units done, RSS MB] every 10 % of the run. */
  readonly rssCurve: readonly (readonly [number, number])[];
}

const MB = 2 ** 20;

export interface MemoryMb {
  readonly rss: number;
  readonly heapTotal: number;
  readonly heapUsed: number;
  readonly external: number;
}

/** `process.memoryUsage()` in MB. */
export function memoryMb(): MemoryMb {
  const m = process.memoryUsage();
  return {
    rss: m.rss / MB,
    heapTotal: m.heapTotal / MB,
    heapUsed: m.heapUsed / MB,
    external: m.external / MB,
  };
}

/** Runs one phase of the bench in this process and returns its measurements. */
export async function runPhase(options: PhaseOptions): Promise<PhaseResult> {
  const { phase, rows } = options;
  const sim = counting(() => createSimulatedProvider(), options.freshSimEvery);
  const registry = new ProviderRegistry().register(sim.provider); // replaces the default `sim`
  const cache = ResponseCache.open(options.cachePath, phase === 'record' ? 'read-write' : 'read-only');
  const store = RunStore.open(options.storePath);
  const checkpoint = Math.min(options.checkpoint ?? 10_000, rows);
  const step = Math.max(1, Math.floor(rows / 10));

  let peak = 0;
  let peakAtCheckpoint = 0;
  let peakAtEnd = 0;
  let memoryAtCheckpoint = memoryMb();
  let memoryAtEnd = memoryAtCheckpoint;
  let rowsDoneAt = 0;
  const curve: [number, number][] = [];
  const sample = (): number => {
    const rss = process.memoryUsage.rss();
    if (rss > peak) peak = rss;
    return rss;
  };
  // Between progress callbacks too: a timer catches peaks while rows are in flight.
  const timer = setInterval(sample, 50);

  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await evaluate({
    chain: benchChain(),
    dataset: options.dataset,
    scorers: [
      exactMatch({ name: 'label', node: 'classify' }),
      regex(/ticket/i, { name: 'summaryMentionsTicket', node: 'summary' }),
    ],
    runName: `bench-${phase}`,
    store,
    cache,
    registry,
    concurrency: options.concurrency,
    onProgress: ({ done }) => {
      if (done % 1000 === 0 || done === checkpoint || done === rows) {
        const rss = sample();
        if (done % step === 0) curve.push([done, rss / MB]);
      }
      if (done === checkpoint) {
        peakAtCheckpoint = peak;
        collectGarbage();
        memoryAtCheckpoint = memoryMb();
      }
      if (done === rows) {
        rowsDoneAt = performance.now();
        peakAtEnd = peak;
        collectGarbage();
        memoryAtEnd = memoryMb();
      }
    },
  });
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(timer);
  sample();
  const cachedRows = result.summary.variants.reduce((n, v) => n + v.cached, 0);
  const stored = store.countRows(result.run);
  const cacheStats = cache.stats();
  store.close();
  cache.close();
  const rowsWallMs = (rowsDoneAt > 0 ? rowsDoneAt : performance.now()) - t0;
  return {
    phase,
    rows,
    units: result.done,
    wallMs,
    rowsWallMs,
    rowsPerSec: (result.done / rowsWallMs) * 1000,
    rowsPerSecOverall: (result.done / wallMs) * 1000,
    cpuMs: (cpu.user + cpu.system) / 1000,
    providerCalls: sim.calls(),
    cache: cacheStats,
    stored,
    cachedRows,
    checkpoint,
    peakRssAtCheckpointMb: peakAtCheckpoint / MB,
    peakRssAtEndMb: peakAtEnd / MB,
    peakRssWithSummaryMb: peak / MB,
    maxRssMb: (process.resourceUsage().maxRSS * 1024) / MB,
    heapAfterGcAtCheckpointMb: memoryAtCheckpoint.heapUsed,
    heapAfterGcAtEndMb: memoryAtEnd.heapUsed,
    memoryAtCheckpoint,
    memoryAtEnd,
    rssCurve: curve,
  };
}
