/**
 * Eval bench: how fast does `evaluate()` push rows through a chain with the SQLite run store on, does its
 * memory stay flat as the dataset grows, and does a re-run from the response cache reach the provider at all?
 *
 *   node bench/eval.bench.ts                 100,000 rows, and the --input @file peaks (run by `npm run bench`)
 *   node bench/eval.bench.ts --scale         also a 1,000,000-row record run: RSS at 100k rows vs at 1M
 *                                            (about 8 minutes on 2 cores, so not in the default run)
 *   node bench/eval.bench.ts --rows 20000    a smaller batch   (--scale-rows N: the scale run's rows)
 *   node bench/eval.bench.ts --json          results as JSON on stdout (progress on stderr)
 *   --concurrency N (default 16, evaluate's default)   --keep (leave the temp dir)   --cpu-prof (profile each phase)
 *   --input-mb N (default 50: the size of the --input files)   --no-input (skip the --input measurement)
 *   --fresh-sim N  a fresh simulated provider every N calls, which drops its per-request attempt counters
 *                  (see eval-workload.ts): what the eval layer itself keeps, apart from the provider's
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
 *
 * Scale (`--scale`): one more record run of `--scale-rows` rows (default 1,000,000) in its own temp files, its
 * checkpoint at 100,000 rows: peak RSS up to 100k rows against the peak to the end, evaluate()'s final summary
 * included; target: within 1.3× (the memory of a batch is bounded by the work in flight, not by the rows).
 *
 * --input @file: the CLI's `readInput()` of a 50 MB JSON file (an object with an array of small objects, the
 * usual shape of a large chain input), once ASCII and once with accented, CJK and emoji text, each in a fresh
 * child process; peak = `process.resourceUsage().maxRSS` minus that of the same child reading `{}`; target:
 * at most 5× the file's size.
 */
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { memoryMb, runPhase, writeDataset, type MemoryMb, type PhaseResult } from './eval-workload.ts';
import { fmt } from './util.ts';

const RSS_FLAT = 1.25; // peak RSS at the last row within this factor of the peak at 10k rows
const RSS_SCALE = 1.3; // a 1M-row run's peak RSS within this factor of its peak at 100k rows
const INPUT_PEAK = 5; // --input @file: peak RSS above the floor at most this many times the file's size
const HEAP_BYTES_PER_ROW = 64; // what a batch may retain per finished row (flat: ~0; a Set of row ids: ~40)

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '100000' },
    concurrency: { type: 'string', default: '16' },
    json: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    'cpu-prof': { type: 'boolean', default: false },
    scale: { type: 'boolean', default: false },
    'scale-rows': { type: 'string', default: '1000000' },
    'input-mb': { type: 'string', default: '50' },
    'no-input': { type: 'boolean', default: false },
    checkpoint: { type: 'string', default: '10000' },
    'fresh-sim': { type: 'string' },
    child: { type: 'string' },
    dir: { type: 'string' },
    file: { type: 'string' },
  },
});

function positiveInt(
  name: 'rows' | 'concurrency' | 'scale-rows' | 'input-mb' | 'checkpoint' | 'fresh-sim',
): number {
  const value = Number(args[name]);
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`--${name} must be an integer >= 1, got ${args[name]}`);
  return value;
}
const rows = positiveInt('rows');
const concurrency = positiveInt('concurrency');
const scaleRows = positiveInt('scale-rows');
const inputMb = positiveInt('input-mb');

const paths = (dir: string) => ({
  dataset: join(dir, 'rows.jsonl'),
  storePath: join(dir, 'runs.sqlite'),
  cachePath: join(dir, 'cache.sqlite'),
});

if (args.child === 'input') {
  // The CLI's --input @file read, then the kernel's peak RSS of this process.
  if (args.file === undefined) throw new Error('--file is required with --child input');
  const { readInput } = await import('../src/cli/input.ts');
  const value = await readInput(`@${args.file}`, process.cwd());
  const keys = typeof value === 'object' && value !== null ? Object.keys(value).length : 0;
  process.stdout.write(
    `${JSON.stringify({ maxRssMb: (process.resourceUsage().maxRSS * 1024) / 2 ** 20, keys })}\n`,
  );
} else if (args.child === 'idle') {
  // The modules loaded, nothing run: the floor under every RSS figure.
  process.stdout.write(`${JSON.stringify(memoryMb())}\n`);
} else if (args.child !== undefined) {
  const phase = args.child;
  if (phase !== 'record' && phase !== 'replay') throw new Error(`unknown phase ${phase}`);
  if (args.dir === undefined) throw new Error('--dir is required with --child');
  const checkpoint = positiveInt('checkpoint');
  const freshSimEvery = args['fresh-sim'] === undefined ? undefined : positiveInt('fresh-sim');
  const result = await runPhase({ phase, rows, concurrency, checkpoint, freshSimEvery, ...paths(args.dir) });
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
    const input = args['no-input'] ? undefined : await inputPeaks(dir, log);
    const scale = args.scale ? await scaleRun(dir, log) : undefined;
    report(phases, idle, files, dir, datasetMb, input, scale);
    if (args['cpu-prof']) log(`CPU profiles: ${join(dir, 'profile-record')}, ${join(dir, 'profile-replay')}`);
  } finally {
    if (args.keep || args['cpu-prof']) log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

interface InputPeak {
  readonly kind: string;
  readonly fileMb: number;
  readonly maxRssMb: number;
  readonly floorMb: number;
  /** (maxRss - floor) / file size. */
  readonly ratio: number;
}

/** Writes a JSON file of about `mb` MB: `{ topic, items: [{ i, text, tags }, …] }`, streamed. */
async function writeInputFile(path: string, mb: number, word: string): Promise<void> {
  const out = createWriteStream(path, { encoding: 'utf8' });
  const target = mb * 2 ** 20;
  let size = 0;
  const write = async (chunk: string): Promise<void> => {
    size += Buffer.byteLength(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
  };
  await write(`{"topic":${JSON.stringify(word)},"items":[`);
  for (let i = 0; size < target - 2; i++) {
    await write(`${i === 0 ? '' : ','}${JSON.stringify({ i, text: `${word} ${i}`, tags: ['a', 'b'] })}`);
  }
  out.end(']}');
  await once(out, 'finish');
}

/** --input @file peaks of an ASCII and a non-ASCII file, each in a fresh child, against the same child's floor. */
async function inputPeaks(dir: string, log: (line: string) => void): Promise<InputPeak[]> {
  const floorFile = join(dir, 'input-empty.json');
  writeFileSync(floorFile, '{}');
  const files = [
    { kind: 'ASCII', path: join(dir, 'input-ascii.json'), word: 'tides and currents of the northern sea' },
    { kind: 'non-ASCII', path: join(dir, 'input-utf8.json'), word: 'marées et courants 🌊 潮汐と海流' },
  ];
  const peaks: InputPeak[] = [];
  for (const file of files) {
    await writeInputFile(file.path, inputMb, file.word);
    const fileMb = statSync(file.path).size / 2 ** 20;
    // The floor is measured next to each file (the median of three), so a noisy neighbour moves both alike.
    const floors = [0, 1, 2].map(() => (runChild('input', dir, floorFile) as { maxRssMb: number }).maxRssMb);
    const floorMb = floors.sort((a, b) => a - b)[1] ?? 0;
    const { maxRssMb } = runChild('input', dir, file.path) as { maxRssMb: number };
    peaks.push({ kind: file.kind, fileMb, maxRssMb, floorMb, ratio: (maxRssMb - floorMb) / fileMb });
    log(
      `eval bench: --input @file (${file.kind}, ${fmt(fileMb, 1)} MB): peak ${fmt(maxRssMb, 0)} MB, floor ${fmt(floorMb, 0)} MB`,
    );
    rmSync(file.path, { force: true });
  }
  return peaks;
}

interface ScaleResult {
  readonly rows: number;
  readonly checkpoint: number;
  readonly atCheckpointMb: number;
  readonly atEndMb: number;
  readonly withSummaryMb: number;
  readonly ratio: number;
  readonly wallS: number;
  readonly heapPerRowBytes: number;
}

/** The 1M-row record run (own temp files), its checkpoint at 100k rows. */
async function scaleRun(parentDir: string, log: (line: string) => void): Promise<ScaleResult> {
  const dir = mkdtempSync(join(parentDir, 'scale-'));
  try {
    const files = paths(dir);
    await writeDataset(files.dataset, scaleRows);
    const checkpoint = Math.min(100_000, scaleRows);
    log(
      `eval bench: scale: record ${scaleRows.toLocaleString('en-US')} rows (checkpoint ${checkpoint.toLocaleString('en-US')}) ...`,
    );
    const p = runChild('record', dir, undefined, { rows: scaleRows, checkpoint }) as PhaseResult;
    const heapGrowth = p.heapAfterGcAtEndMb - p.heapAfterGcAtCheckpointMb;
    return {
      rows: p.units,
      checkpoint: p.checkpoint,
      atCheckpointMb: p.peakRssAtCheckpointMb,
      atEndMb: p.peakRssAtEndMb,
      withSummaryMb: p.peakRssWithSummaryMb,
      ratio: p.peakRssWithSummaryMb / p.peakRssAtCheckpointMb,
      wallS: p.wallMs / 1000,
      heapPerRowBytes: p.units > p.checkpoint ? (heapGrowth * 2 ** 20) / (p.units - p.checkpoint) : 0,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs one phase in a fresh child process (`--expose-gc`) and returns the JSON it prints last. */
function runChild(
  phase: string,
  dir: string,
  file?: string,
  sizes: { rows: number; checkpoint: number } = { rows, checkpoint: 10_000 },
): unknown {
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
      String(sizes.rows),
      '--checkpoint',
      String(sizes.checkpoint),
      '--concurrency',
      String(concurrency),
      ...(file === undefined ? [] : ['--file', file]),
      ...(args['fresh-sim'] === undefined ? [] : ['--fresh-sim', args['fresh-sim']]),
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
  input: readonly InputPeak[] | undefined,
  scale: ScaleResult | undefined,
): void {
  const [record, replay] = phases as [PhaseResult, PhaseResult];
  const ratio = (p: PhaseResult): number => p.peakRssAtEndMb / p.peakRssAtCheckpointMb;
  const heapGrowth = (p: PhaseResult): number => p.heapAfterGcAtEndMb - p.heapAfterGcAtCheckpointMb;
  const heapPerRow = (p: PhaseResult): number =>
    p.units > p.checkpoint ? (heapGrowth(p) * 2 ** 20) / (p.units - p.checkpoint) : 0;
  const fresh = args['fresh-sim'];
  const freshNote = fresh === undefined ? '' : ` (a fresh simulated provider every ${fresh} calls)`;
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
    ...(scale === undefined
      ? []
      : [
          {
            name: `scale: peak RSS of a ${fmt(scale.rows, 0)}-row run (summary included) ≤ ${RSS_SCALE} × its peak at ${fmt(scale.checkpoint, 0)} rows${freshNote}`,
            pass: scale.ratio <= RSS_SCALE,
            measured: `${fmt(scale.atCheckpointMb, 1)} → ${fmt(scale.withSummaryMb, 1)} MB (${fmt(scale.atEndMb, 1)} before the summary), ${fmt(scale.ratio, 2)}×; heap ${fmt(scale.heapPerRowBytes, 0)} B/row; ${fmt(scale.wallS, 0)} s`,
          },
        ]),
    ...(input ?? []).map((p) => ({
      name: `--input @file, ${p.kind} ${fmt(p.fileMb, 0)} MB: peak RSS above the floor ≤ ${INPUT_PEAK} × the file`,
      pass: p.ratio <= INPUT_PEAK,
      measured: `${fmt(p.maxRssMb, 0)} − ${fmt(p.floorMb, 0)} MB floor = ${fmt(p.maxRssMb - p.floorMb, 0)} MB, ${fmt(p.ratio, 2)}×`,
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
    process.stdout.write(`${JSON.stringify({ meta, phases, input, scale, checks, dir }, null, 2)}\n`);
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
