/**
 * Eval bench: how fast does `evaluate()` push rows through a chain with the SQLite run store on, does its
 * memory stay flat as the dataset grows, and does a re-run from the response cache reach the provider at all?
 *
 *   node bench/eval.bench.ts                 100,000 rows (also run by `npm run bench`)
 *   node bench/eval.bench.ts --rows 20000    a smaller batch
 *   node bench/eval.bench.ts --json          results as JSON on stdout (progress on stderr)
 *   --concurrency N (default 16, evaluate's default)   --keep (leave the temp dir)   --cpu-prof (profile each phase)
 *
 * Workload: `--rows` rows of a JSONL dataset, written (streamed) to a temp dir first, through a two-node
 * chain (`summary`: free text, then `classify`: structured `{ label }` reading the summary) on the simulated
 * provider with zero latency, two scorers (exactMatch on the label, regex on the summary), one variant, the
 * run store in a SQLite file in the temp dir. Two phases, each in a fresh child process (`--expose-gc`):
 *   1. record: a fresh run with a read-write ResponseCache (its own SQLite file): every call misses and is stored;
 *   2. replay: a fresh run name with the same cache read-only: every call must be answered from it
 *      (provider calls must be 0; a miss would throw and make the row an error).
 * Measured per phase: rows/s (evaluate() start to the last row's progress callback; the whole call, with its
 * counting pre-pass over the file and its final summary, is shown too), CPU, provider calls, cache hits,
 * stored rows; RSS sampled every 50 ms and every 1,000 rows, reported as the peak at 10,000 rows and the peak
 * at the last row (and with evaluate()'s summary step), the ratio of the two (flat ≈ 1), and the heap in use
 * right after a forced full GC at both points (what the batch retains).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { memoryMb, runPhase, writeDataset, type MemoryMb, type PhaseResult } from './eval-workload.ts';
import { fmt } from './util.ts';

const RSS_FLAT = 1.25; // peak RSS at the last row within this factor of the peak at 10k rows
const HEAP_BYTES_PER_ROW = 64; // what a batch may retain per finished row (flat: ~0; a Set of row ids: ~40)

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '100000' },
    concurrency: { type: 'string', default: '16' },
    json: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    'cpu-prof': { type: 'boolean', default: false },
    child: { type: 'string' },
    dir: { type: 'string' },
  },
});

function positiveInt(name: 'rows' | 'concurrency'): number {
  const value = Number(args[name]);
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`--${name} must be an integer >= 1, got ${args[name]}`);
  return value;
}
const rows = positiveInt('rows');
const concurrency = positiveInt('concurrency');

const paths = (dir: string) => ({
  dataset: join(dir, 'rows.jsonl'),
  storePath: join(dir, 'runs.sqlite'),
  cachePath: join(dir, 'cache.sqlite'),
});

if (args.child === 'idle') {
  // The modules loaded, nothing run: the floor under every RSS figure.
  process.stdout.write(`${JSON.stringify(memoryMb())}\n`);
} else if (args.child !== undefined) {
  const phase = args.child;
  if (phase !== 'record' && phase !== 'replay') throw new Error(`unknown phase ${phase}`);
  if (args.dir === undefined) throw new Error('--dir is required with --child');
  const result = await runPhase({ phase, rows, concurrency, ...paths(args.dir) });
  process.stdout.write(`${JSON.stringify(result)}\n`);
} else {
  await parent();
}

async function parent(): Promise<void> {
  const log = (line: string): void => {
    process.stderr.write(`${line}\n`);
  };
  const dir = mkdtempSync(join(os.tmpdir(), 'symphonizer-eval-bench-'));
  try {
    const files = paths(dir);
    const t0 = performance.now();
    await writeDataset(files.dataset, rows);
    const datasetMb = statSync(files.dataset).size / 2 ** 20;
    log(
      `eval bench: ${rows.toLocaleString('en-US')} rows (${fmt(datasetMb, 1)} MB JSONL) written in ${fmt(performance.now() - t0, 0)} ms to ${dir}`,
    );
    const idle = runChild('idle', dir) as MemoryMb;
    const phases: PhaseResult[] = [];
    for (const phase of ['record', 'replay'] as const) {
      log(`eval bench: ${phase} ...`);
      phases.push(runChild(phase, dir) as PhaseResult);
    }
    report(phases, idle, files, dir, datasetMb);
    if (args['cpu-prof']) log(`CPU profiles: ${join(dir, 'profile-record')}, ${join(dir, 'profile-replay')}`);
  } finally {
    if (args.keep || args['cpu-prof']) log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs one phase in a fresh child process (`--expose-gc`) and returns the JSON it prints last. */
function runChild(phase: string, dir: string): unknown {
  const child = spawnSync(
    process.execPath,
    [
      '--expose-gc',
      ...(args['cpu-prof'] && phase !== 'idle'
        ? ['--cpu-prof', `--cpu-prof-dir=${join(dir, `profile-${phase}`)}`]
        : []),
      fileURLToPath(import.meta.url),
      '--child',
      phase,
      '--dir',
      dir,
      '--rows',
      String(rows),
      '--concurrency',
      String(concurrency),
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 * 2 ** 20 },
  );
  const last = child.stdout.trim().split('\n').at(-1) ?? '';
  if (child.status !== 0 || !last.startsWith('{')) {
    throw new Error(`the ${phase} child failed (status ${String(child.status)}): ${child.stdout}`);
  }
  return JSON.parse(last);
}

interface Check {
  readonly name: string;
  readonly pass: boolean;
  readonly measured: string;
}

function report(
  phases: readonly PhaseResult[],
  idle: MemoryMb,
  files: ReturnType<typeof paths>,
  dir: string,
  datasetMb: number,
): void {
  const [record, replay] = phases as [PhaseResult, PhaseResult];
  const ratio = (p: PhaseResult): number => p.peakRssAtEndMb / p.peakRssAtCheckpointMb;
  const heapGrowth = (p: PhaseResult): number => p.heapAfterGcAtEndMb - p.heapAfterGcAtCheckpointMb;
  const heapPerRow = (p: PhaseResult): number =>
    p.units > p.checkpoint ? (heapGrowth(p) * 2 ** 20) / (p.units - p.checkpoint) : 0;
  const checks: Check[] = [
    {
      name: `every row stored (record: ${rows})`,
      pass: record.stored.total === rows,
      measured: `${record.stored.total} stored, ${record.stored.error} errors`,
    },
    ...phases.map((p) => ({
      name: `${p.phase}: peak RSS at ${p.units} rows ≤ ${RSS_FLAT} × at ${p.checkpoint}`,
      pass: ratio(p) <= RSS_FLAT,
      measured: `${fmt(p.peakRssAtCheckpointMb, 1)} → ${fmt(p.peakRssAtEndMb, 1)} MB, ${fmt(ratio(p), 2)}×`,
    })),
    ...phases.map((p) => ({
      name: `${p.phase}: heap retained after GC grows < ${HEAP_BYTES_PER_ROW} B/row (${p.checkpoint} → ${p.units} rows)`,
      pass: heapPerRow(p) < HEAP_BYTES_PER_ROW,
      measured: `${fmt(heapPerRow(p), 0)} B/row (+${fmt(heapGrowth(p), 1)} MB)`,
    })),
    {
      name: 'replay: 0 provider calls',
      pass: replay.providerCalls === 0,
      measured: `${replay.providerCalls} calls, ${replay.cache.hits} cache hits, ${replay.cache.misses} misses`,
    },
    {
      name: 'replay: every row stored, none an error, all cached',
      pass: replay.stored.total === rows && replay.stored.error === 0 && replay.cachedRows === rows,
      measured: `${replay.stored.total} stored, ${replay.stored.error} errors, ${replay.cachedRows} cached`,
    },
  ];
  const meta = {
    node: process.version,
    platform: `${process.platform} ${os.release()} ${process.arch}`,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    rows,
    concurrency,
    datasetMb,
    storeMb: sizeMb(files.storePath),
    cacheMb: sizeMb(files.cachePath),
    idle,
  };
  if (args.json) {
    process.stdout.write(`${JSON.stringify({ meta, phases, checks, dir }, null, 2)}\n`);
    return;
  }
  const out: string[] = [];
  out.push(
    `symphonizer eval bench — Node ${meta.node}, ${meta.platform}, ${meta.cpus} × ${meta.cpuModel}`,
    `${rows.toLocaleString('en-US')} rows × 1 variant through a 2-node chain (sim, zero latency), concurrency ${concurrency}, ` +
      `SQLite run store (${fmt(meta.storeMb, 1)} MB) + response cache (${fmt(meta.cacheMb, 1)} MB); dataset ${fmt(datasetMb, 1)} MB`,
    'rows/s: evaluate() start → last row done; "overall" also counts the counting pre-pass over the file and the final summary.',
    'RSS: sampled every 50 ms and every 1,000 rows; heap: heapUsed right after a forced full GC.',
    '',
  );
  const header = [
    'Phase',
    'Rows',
    'rows/s',
    'rows/s overall',
    'Wall s',
    'CPU s',
    'Provider calls',
    'Cache hits/misses/writes',
    `Peak RSS @${fmt(record.checkpoint, 0)} MB`,
    `Peak RSS @${fmt(rows, 0)} MB`,
    'Ratio',
    '+ summary MB',
    `Heap@${fmt(record.checkpoint, 0)} MB`,
    `Heap@${fmt(rows, 0)} MB`,
  ];
  const cells = phases.map((p) => [
    p.phase,
    fmt(p.units, 0),
    fmt(p.rowsPerSec, 0),
    fmt(p.rowsPerSecOverall, 0),
    fmt(p.wallMs / 1000, 1),
    fmt(p.cpuMs / 1000, 1),
    fmt(p.providerCalls, 0),
    `${p.cache.hits}/${p.cache.misses}/${p.cache.writes}`,
    fmt(p.peakRssAtCheckpointMb, 1),
    fmt(p.peakRssAtEndMb, 1),
    `${fmt(ratio(p), 2)}×`,
    fmt(p.peakRssWithSummaryMb, 1),
    fmt(p.heapAfterGcAtCheckpointMb, 1),
    `${fmt(p.heapAfterGcAtEndMb, 1)} (${heapGrowth(p) >= 0 ? '+' : ''}${fmt(heapGrowth(p), 1)})`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]): string => `| ${c.map((s, i) => s.padEnd(widths[i]!)).join(' | ')} |`;
  out.push(line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line), '');
  const mem = (m: MemoryMb): string =>
    `RSS ${fmt(m.rss, 0)}, heap ${fmt(m.heapUsed, 1)} used / ${fmt(m.heapTotal, 0)} total, external ${fmt(m.external, 1)}`;
  out.push(`Idle child (modules loaded, nothing run): ${mem(idle)} MB`);
  for (const p of phases) {
    out.push(
      `After a full GC (${p.phase}): at ${fmt(p.checkpoint, 0)} rows ${mem(p.memoryAtCheckpoint)} MB; at ${fmt(p.units, 0)} rows ${mem(p.memoryAtEnd)} MB`,
    );
  }
  for (const p of phases) {
    out.push(
      `RSS curve (${p.phase}, rows: MB): ${p.rssCurve.map(([n, mb]) => `${fmt(n, 0)}: ${fmt(mb, 0)}`).join(', ')}`,
    );
  }
  out.push(`replay speed-up over record: ${fmt(replay.rowsPerSec / record.rowsPerSec, 2)}×`, '');
  const missed = checks.filter((c) => !c.pass);
  for (const c of checks) out.push(`${c.pass ? 'PASS' : 'MISS'}  ${c.name}: ${c.measured}`);
  out.push(`Targets: ${checks.length - missed.length}/${checks.length} PASS`);
  if (args.keep) out.push(`files kept in ${dir}`);
  console.log(out.join('\n'));
}

function sizeMb(path: string): number {
  let bytes = 0;
  for (const suffix of ['', '-wal', '-shm']) {
    try {
      bytes += statSync(path + suffix).size;
    } catch {
      // no such file
    }
  }
  return bytes / 2 ** 20;
}
