/**
 * `npm run bench`: symphonizer's core scheduler against a minimal hand-written baseline (bench/baseline.ts),
 * p-graph as a peer (bench/peers/p-graph.ts, on W2, W3, W4 and MEM-1M) and, for W1, against zero-overhead
 * lower bounds (bench/simulate.ts). See bench/README.md.
 *
 *   npm run bench                      the table
 *   npm run -s bench -- --json         results as JSON on stdout (progress on stderr; -s keeps npm quiet)
 *   npm run bench -- --only W2,W3      a subset (W1, W2, W3, W4, MEM; W3 = W3-10k and W3-100k, MEM = MEM and MEM-1M)
 *   BENCH_RUNS=9 npm run bench         measured runs per variant (default 3 for W1, 5 for the others)
 *   BENCH_WARMUP=5 npm run bench       warm-up rounds per variant before measuring (default 3)
 *   BENCH_GC=0 npm run bench           no forced GC before each timed run
 *
 * Method: this process only orchestrates. Each workload runs in a fresh child process (`--expose-gc`) that
 * builds the inputs, warms every variant up once, then runs symphonizer and baseline alternately (the order
 * flips every round), one full GC before each timed run, and reports every run; the table shows medians.
 * Warm-up: BENCH_WARMUP rounds of every variant (default 3; W1 warms up once, on 100 diamonds) — one round
 * is not enough for V8 to settle on the baseline's optimised code (its W2 runs took 42, 34, 19, 14, 10, 9 ms).
 * Peak RSS is `process.resourceUsage().maxRSS` of one more fresh child per variant that built the inputs and
 * ran that variant once (so one variant's peak never hides another's); the idle RSS of a child that only
 * loaded the modules is printed for reference. MEM-1M's bytes per node are (peak − the peak of a child that
 * only built the same inputs) / nodes: what running the million nodes adds to the graph the user built.
 * p-graph lives in bench/peers' own package: when bench/peers/node_modules is missing, the bench installs it
 * (`npm ci --prefix bench/peers`), and if that fails it prints that the p-graph rows are skipped.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  PGRAPH,
  PGRAPH_PACKAGE,
  SEEDS,
  loadPeers,
  memoryWorkloads,
  queuedMemory,
  workloads,
  type MemoryResult,
  type Role,
  type RunInfo,
} from './workloads.ts';
import { collectGarbage, fmt, hasGc, median, timed } from './util.ts';

const MEMORY_ID = 'MEM';
// One full GC before each timed run, so a run does not pay for the garbage of the variant before it.
const FORCE_GC = process.env.BENCH_GC !== '0';
const LIMIT = 2; // symphonizer µs/node within this factor of the baseline's
const W1_BOUND_SLACK = 1.01;
const W1_CPU_SHARE = 0.1;
const W3_10K_MS = 50;
const LINEAR_SLACK = 11; // 100k/10k time ratio: 10× is linear; allow 10% noise
const MEMORY_BYTES = 2048;
const MEMORY_1M_BYTES_PER_NODE = 1024; // MEM-1M: (peak RSS − the `inputs only` child's peak RSS) / nodes
const MEMORY_1M_ID = 'MEM-1M';

interface VariantResult {
  readonly name: string;
  readonly role: Role;
  readonly compareTo?: string;
  readonly wallMs: number[];
  readonly cpuMs: number[];
  readonly info: RunInfo[];
}

interface ChildResult {
  readonly id: string;
  readonly title: string;
  readonly nodes: number;
  readonly runs: number;
  readonly variants: VariantResult[];
  readonly bounds?: Readonly<Record<string, number>>;
}

const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    only: { type: 'string' },
    child: { type: 'string' },
    rss: { type: 'string' },
  },
});

function positiveInt(name: string, fallback: number): number {
  const env = process.env[name];
  if (env === undefined || env === '') return fallback;
  const value = Number(env);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be an integer >= 1, got ${env}`);
  return value;
}

function runsFor(id: string): number {
  return positiveInt('BENCH_RUNS', id === 'W1' ? 3 : 5);
}

// ---------------------------------------------------------------------------------------------- child side

async function childTimed(id: string): Promise<ChildResult> {
  const build = workloads[id];
  if (build === undefined) throw new Error(`unknown workload ${id}`);
  const workload = build();
  const runs = runsFor(id);
  const warmups = id === 'W1' ? 1 : positiveInt('BENCH_WARMUP', 3);
  for (let i = 0; i < warmups; i++) await workload.warmup();
  const results: VariantResult[] = workload.variants.map((v) => ({
    name: v.name,
    role: v.role,
    ...(v.compareTo === undefined ? {} : { compareTo: v.compareTo }),
    wallMs: [],
    cpuMs: [],
    info: [],
  }));
  for (let round = 0; round < runs; round++) {
    const order = workload.variants.map((_, i) => i);
    if (round % 2 === 1) order.reverse();
    for (const i of order) {
      const variant = workload.variants[i]!;
      const result = results[i]!;
      variant.prepare?.();
      if (FORCE_GC) collectGarbage();
      const { timing, value } = await timed(variant.run);
      if (value.completed !== workload.expectCompleted || value.failed !== 0) {
        throw new Error(
          `${id} ${variant.name}: ${JSON.stringify(value)}, expected ${workload.expectCompleted}`,
        );
      }
      result.wallMs.push(timing.wallMs);
      result.cpuMs.push(timing.cpuMs);
      result.info.push(value);
    }
  }
  return {
    id,
    title: workload.title,
    nodes: workload.nodes,
    runs,
    variants: results,
    ...(workload.bounds === undefined ? {} : { bounds: workload.bounds }),
  };
}

async function childRss(id: string, variantName: string): Promise<number> {
  if (id !== 'idle') {
    const build = workloads[id] ?? memoryWorkloads[id];
    const variant = build?.().variants.find((v) => v.name === variantName);
    if (variant === undefined) throw new Error(`unknown variant ${id} / ${variantName}`);
    variant.prepare?.();
    await variant.run();
  }
  return process.resourceUsage().maxRSS * 1024; // maxRSS is in KiB
}

async function child(id: string): Promise<void> {
  const skipped = id === 'idle' || id === MEMORY_ID ? undefined : await loadPeers();
  if (skipped !== undefined) process.stderr.write(`${PGRAPH} rows skipped in this child: ${skipped}\n`);
  let output: unknown;
  if (args.rss !== undefined) output = { maxRssBytes: await childRss(id, args.rss) };
  else if (id === MEMORY_ID) output = await queuedMemory();
  else output = await childTimed(id);
  process.stdout.write(JSON.stringify(output) + '\n');
}

// --------------------------------------------------------------------------------------------- parent side

const self = fileURLToPath(import.meta.url);

function spawnChild(childArgs: string[]): unknown {
  const execArgv = process.execArgv.includes('--expose-gc')
    ? process.execArgv
    : [...process.execArgv, '--expose-gc'];
  const result = spawnSync(process.execPath, [...execArgv, self, ...childArgs], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.status !== 0) throw new Error(`bench child ${childArgs.join(' ')} exited with ${result.status}`);
  return JSON.parse(result.stdout);
}

interface Row {
  workload: string;
  variant: string;
  runs?: number;
  wallMs?: number;
  cpuMs?: number;
  cpuShare?: number;
  usPerNode?: number;
  cpuUsPerNode?: number;
  peakRssMb?: number;
  vsBaseline?: number;
  vsBound?: string;
  notes?: string;
  target?: string;
  result?: string;
}

interface Check {
  readonly name: string;
  readonly pass: boolean;
  readonly measured: string;
}

function selectedIds(only: string | undefined): string[] {
  const all = [...Object.keys(workloads), MEMORY_ID, ...Object.keys(memoryWorkloads)];
  if (only === undefined) return all;
  const wanted = only.split(',').map((s) => s.trim().toUpperCase());
  const ids = all.filter((id) =>
    wanted.some((w) => id.toUpperCase() === w || id.toUpperCase().startsWith(`${w}-`)),
  );
  if (ids.length === 0) throw new Error(`--only ${only} matches none of ${all.join(', ')}`);
  return ids;
}

const passFail = (checks: readonly Check[]): string =>
  checks.map((c) => (c.pass ? 'PASS' : 'MISS')).join(' · ');

/** p-graph's version when bench/peers is installed, installing it first if needed; undefined if it cannot be. */
function ensurePeers(log: (message: string) => void): string | undefined {
  if (!existsSync(PGRAPH_PACKAGE)) {
    log('installing bench/peers (npm ci --prefix bench/peers) …');
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    spawnSync(
      npm,
      [
        'ci',
        '--prefix',
        fileURLToPath(new URL('peers', import.meta.url)),
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
      ],
      { stdio: ['ignore', 'ignore', 'inherit'], shell: process.platform === 'win32' },
    );
  }
  if (!existsSync(PGRAPH_PACKAGE)) return undefined;
  return (JSON.parse(readFileSync(PGRAPH_PACKAGE, 'utf8')) as { version: string }).version;
}

function parent(): void {
  const ids = selectedIds(args.only);
  const log = (message: string): void => {
    process.stderr.write(`${message}\n`);
  };
  const pGraphVersion = ensurePeers(log);
  const idleRss = (spawnChild(['--child', 'idle', '--rss', 'idle']) as { maxRssBytes: number }).maxRssBytes;
  const timedResults: ChildResult[] = [];
  const rss = new Map<string, number>();
  let memory: MemoryResult | undefined;
  const memory1M: { variant: string; role: Role; peakBytes: number }[] = [];
  let memory1MInfo: { title: string; nodes: number } | undefined;
  for (const id of ids) {
    log(`running ${id} …`);
    if (id === MEMORY_ID) {
      memory = spawnChild(['--child', MEMORY_ID]) as MemoryResult;
      continue;
    }
    if (id === MEMORY_1M_ID) {
      // The variants of memoryWorkloads['MEM-1M'], named here so this process never builds the million notes.
      const described: { name: string; role: Role }[] = [
        { name: 'inputs only', role: 'baseline' },
        { name: 'symphonizer', role: 'symphonizer' },
        { name: 'baseline', role: 'baseline' },
        ...(pGraphVersion === undefined ? [] : [{ name: PGRAPH, role: 'peer' as const }]),
      ];
      for (const v of described) {
        log(`  ${id} ${v.name} …`);
        const peak = (spawnChild(['--child', id, '--rss', v.name]) as { maxRssBytes: number }).maxRssBytes;
        memory1M.push({ variant: v.name, role: v.role, peakBytes: peak });
      }
      memory1MInfo = {
        title: 'one DAG of 10,000 layers of 100 (1,000,000 nodes), 3 seeded-random preds each, run once',
        nodes: 1_000_000,
      };
      continue;
    }
    const result = spawnChild(['--child', id]) as ChildResult;
    timedResults.push(result);
    for (const v of result.variants) {
      rss.set(
        `${id}/${v.name}`,
        (spawnChild(['--child', id, '--rss', v.name]) as { maxRssBytes: number }).maxRssBytes,
      );
    }
  }

  const rows: Row[] = [];
  const checks: Check[] = [];
  const medianWall = new Map<string, number>();
  for (const w of timedResults) {
    for (const v of w.variants) medianWall.set(`${w.id}/${v.name}`, median(v.wallMs));
  }
  for (const w of timedResults) {
    const bounds = w.bounds ?? {};
    for (const [name, ms] of Object.entries(bounds)) {
      rows.push({
        workload: w.id,
        variant: name,
        wallMs: ms,
        usPerNode: (ms * 1000) / w.nodes,
        notes: 'simulated',
      });
    }
    for (const v of w.variants) {
      const wallMs = median(v.wallMs);
      const cpuMs = median(v.cpuMs);
      const row: Row = {
        workload: w.id,
        variant: v.name,
        runs: v.wallMs.length,
        wallMs,
        cpuMs,
        cpuShare: cpuMs / wallMs,
        usPerNode: (wallMs * 1000) / w.nodes,
        cpuUsPerNode: (cpuMs * 1000) / w.nodes,
      };
      const peak = rss.get(`${w.id}/${v.name}`);
      if (peak !== undefined) row.peakRssMb = peak / 2 ** 20;
      const base = v.compareTo === undefined ? undefined : medianWall.get(`${w.id}/${v.compareTo}`);
      if (base !== undefined) row.vsBaseline = wallMs / base;
      const peakRunning = Math.max(...v.info.map((i) => i.peakRunning ?? 0));
      if (peakRunning > 0) row.notes = `peak running ${peakRunning}`;
      const boundA = bounds['bound (a): Perform 100/50 policy'];
      const boundB = bounds['bound (b): plain cap of 100'];
      if (boundA !== undefined && boundB !== undefined) {
        row.vsBound = `${fmt(wallMs / boundA, 3)} (a) · ${fmt(wallMs / boundB, 3)} (b)`;
      }
      const mine: Check[] = [];
      const diagnostic = v.name.includes('compile') || v.name.includes('on demand');
      if (v.role === 'symphonizer' && row.vsBaseline !== undefined && w.id !== 'W1' && !diagnostic) {
        mine.push({
          name: `${w.id} µs/node ≤ ${LIMIT}× baseline`,
          pass: row.vsBaseline <= LIMIT,
          measured: `${fmt(row.vsBaseline, 2)}×`,
        });
        const peer = medianWall.get(`${w.id}/${PGRAPH}`);
        if (peer !== undefined) {
          mine.push({
            name: `${w.id} faster than ${PGRAPH}`,
            pass: wallMs < peer,
            measured: `${fmt(wallMs / peer, 2)}× ${PGRAPH}`,
          });
        }
      }
      if (w.id === 'W1' && v.name === 'symphonizer' && boundA !== undefined) {
        mine.push(
          {
            name: `W1 wall ≤ ${W1_BOUND_SLACK}× bound (a)`,
            pass: wallMs / boundA <= W1_BOUND_SLACK,
            measured: `${fmt(wallMs / boundA, 3)}×`,
          },
          {
            name: `W1 CPU < ${W1_CPU_SHARE * 100}% of wall`,
            pass: cpuMs / wallMs < W1_CPU_SHARE,
            measured: `${fmt((cpuMs / wallMs) * 100, 1)}%`,
          },
        );
      }
      if (w.id === 'W3-10k' && v.name === 'symphonizer') {
        mine.push({
          name: `W3-10k < ${W3_10K_MS} ms`,
          pass: wallMs < W3_10K_MS,
          measured: `${fmt(wallMs, 1)} ms`,
        });
      }
      if (w.id === 'W3-100k' && v.role === 'symphonizer' && !v.name.includes('compile')) {
        mine.push({
          name: `W3-100k < ${10 * W3_10K_MS} ms`,
          pass: wallMs < 10 * W3_10K_MS,
          measured: `${fmt(wallMs, 1)} ms`,
        });
      }
      if (w.id === 'W3-100k' && !v.name.includes('compile')) {
        const small = medianWall.get(`W3-10k/${v.name}`);
        if (small !== undefined) {
          const scaling = wallMs / small;
          row.notes = `100k/10k = ${fmt(scaling, 1)}×`;
          if (v.role === 'symphonizer') {
            mine.push({
              name: `W3 100k/10k ≤ ${LINEAR_SLACK}× (linear)`,
              pass: scaling <= LINEAR_SLACK,
              measured: `${fmt(scaling, 1)}×`,
            });
          }
        }
      }
      if (mine.length > 0) {
        row.target = mine.map((c) => c.name.replace(`${w.id} `, '')).join(' · ');
        row.result = passFail(mine);
        checks.push(...mine);
      }
      rows.push(row);
    }
  }
  if (memory !== undefined) {
    const check: Check = {
      name: `bytes per queued composition < ${MEMORY_BYTES}`,
      pass: memory.symphonizerBytes < MEMORY_BYTES,
      measured: `${fmt(memory.symphonizerBytes, 0)} B`,
    };
    checks.push(check);
    rows.push(
      {
        workload: MEMORY_ID,
        variant: 'symphonizer',
        notes: `${fmt(memory.symphonizerBytes, 0)} B per queued composition (N = ${memory.count.toLocaleString('en-US')})`,
        target: check.name,
        result: passFail([check]),
      },
      {
        workload: MEMORY_ID,
        variant: 'baseline',
        notes: `${fmt(memory.baselineBytes, 0)} B per queued run descriptor`,
      },
    );
  }

  if (memory1MInfo !== undefined) {
    const inputsOnly = memory1M.find((m) => m.variant === 'inputs only')?.peakBytes ?? idleRss;
    for (const m of memory1M) {
      const perNode = (m.peakBytes - inputsOnly) / memory1MInfo.nodes;
      const row: Row = {
        workload: MEMORY_1M_ID,
        variant: m.variant,
        peakRssMb: m.peakBytes / 2 ** 20,
        notes:
          m.variant === 'inputs only'
            ? `${fmt((m.peakBytes - idleRss) / memory1MInfo.nodes, 0)} B/node above idle (the graph itself)`
            : `${fmt(perNode, 0)} B/node above inputs only`,
      };
      if (m.role === 'symphonizer') {
        const check: Check = {
          name: `MEM-1M peak RSS ≤ ${MEMORY_1M_BYTES_PER_NODE} B/node`,
          pass: perNode <= MEMORY_1M_BYTES_PER_NODE,
          measured: `${fmt(perNode, 0)} B/node`,
        };
        checks.push(check);
        row.target = check.name.replace('MEM-1M ', '');
        row.result = passFail([check]);
      }
      rows.push(row);
    }
  }

  const meta = {
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform} ${os.release()} ${process.arch}`,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    benchRuns: process.env.BENCH_RUNS ?? 'default (W1 3, others 5)',
    warmups: process.env.BENCH_WARMUP ?? '3 (W1: 1, on 100 diamonds)',
    forcedGc: FORCE_GC,
    seeds: SEEDS,
    pGraph: pGraphVersion === undefined ? 'not installed (rows skipped)' : `p-graph ${pGraphVersion}`,
    idleRssMb: idleRss / 2 ** 20,
    rssMethod: 'maxRSS of a fresh child that built the inputs and ran only that variant once',
  };

  if (args.json) {
    process.stdout.write(
      JSON.stringify({ meta, rows, checks, raw: { timed: timedResults, memory } }, null, 2) + '\n',
    );
    return;
  }

  const out: string[] = [];
  out.push(`symphonizer core bench — Node ${meta.node} (V8 ${meta.v8}), ${meta.platform}`);
  out.push(
    `CPUs: ${meta.cpus} × ${meta.cpuModel}; runs: ${meta.benchRuns}; warm-up rounds: ${meta.warmups}; full GC before each run: ${FORCE_GC ? 'yes' : 'no'}`,
  );
  out.push(
    `Peak RSS: ${meta.rssMethod}; an idle child (modules loaded) peaks at ${fmt(meta.idleRssMb, 1)} MB.`,
  );
  out.push(
    'Wall/CPU: medians; CPU = process user+system (all threads, GC included); µs/node = time / nodes run.',
  );
  out.push(
    pGraphVersion === undefined
      ? `${PGRAPH} row skipped: run npm ci --prefix bench/peers`
      : `Peer: p-graph ${pGraphVersion} (bench/peers), same graphs and executors, new PGraph() timed.`,
  );
  out.push('');
  for (const w of timedResults)
    out.push(`- ${w.id}: ${w.title} (${w.nodes.toLocaleString('en-US')} nodes per run)`);
  if (memory1MInfo !== undefined) out.push(`- MEM-1M: ${memory1MInfo.title}`);
  if (memory !== undefined) {
    out.push(
      `- MEM: ${memory.count.toLocaleString('en-US')} diamonds queued behind a blocked Perform (highWater 1)`,
    );
  }
  out.push('');
  const header = [
    'Workload',
    'Variant',
    'Runs',
    'Wall ms',
    'CPU ms',
    'CPU/wall',
    'µs/node',
    'CPU µs/node',
    'Peak RSS MB',
    '× baseline',
    '× bound',
    'Notes',
    'Target',
    'Result',
  ];
  const cells = rows.map((r) => [
    r.workload,
    r.variant,
    r.runs === undefined ? '–' : String(r.runs),
    fmt(r.wallMs, r.wallMs !== undefined && r.wallMs >= 100 ? 0 : 2),
    fmt(r.cpuMs, r.cpuMs !== undefined && r.cpuMs >= 100 ? 0 : 2),
    r.cpuShare === undefined ? '–' : `${fmt(r.cpuShare * 100, 1)}%`,
    fmt(r.usPerNode, 2),
    fmt(r.cpuUsPerNode, 2),
    fmt(r.peakRssMb, 1),
    r.vsBaseline === undefined ? '–' : `${fmt(r.vsBaseline, 2)}×`,
    r.vsBound ?? '–',
    r.notes ?? '',
    r.target ?? '',
    r.result ?? '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]): string => `| ${c.map((s, i) => s.padEnd(widths[i]!)).join(' | ')} |`;
  out.push(line(header));
  out.push(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const c of cells) out.push(line(c));
  out.push('');
  const missed = checks.filter((c) => !c.pass);
  out.push(
    `Targets: ${checks.length - missed.length}/${checks.length} PASS` +
      (missed.length > 0 ? `; MISS: ${missed.map((c) => `${c.name} (${c.measured})`).join('; ')}` : ''),
  );
  console.log(out.join('\n'));
}

if (args.child !== undefined) {
  if (!hasGc()) throw new Error('bench children need --expose-gc');
  await child(args.child);
} else {
  parent();
  if (args.only === undefined && !args.json)
    spawnSync(
      process.execPath,
      [fileURLToPath(new URL('providers.bench.ts', import.meta.url)), '--time-scale', '10'],
      { stdio: 'inherit' },
    );
  if (args.only === undefined && !args.json)
    spawnSync(process.execPath, [fileURLToPath(new URL('eval.bench.ts', import.meta.url))], {
      stdio: 'inherit',
    });
  if (args.only === undefined && !args.json)
    spawnSync(process.execPath, [fileURLToPath(new URL('import.bench.ts', import.meta.url))], {
      stdio: 'inherit',
    });
  // The chain-level peers: symphonizer, the AI SDK and LangGraph.js on one 5-call chain.
  if (args.only === undefined && !args.json)
    spawnSync(process.execPath, [fileURLToPath(new URL('peers/chain.bench.ts', import.meta.url))], {
      stdio: 'inherit',
    });
  // The chat handler on loopback: a 1,000-request burst and RSS over 5,000 conversations.
  if (args.only === undefined && !args.json)
    spawnSync(process.execPath, ['--expose-gc', fileURLToPath(new URL('chat.bench.ts', import.meta.url))], {
      stdio: 'inherit',
    });
  // Workers on BullMQ + Redis sharing one limit (prints a skip line without redis-server).
  if (args.only === undefined && !args.json)
    spawnSync(process.execPath, [fileURLToPath(new URL('distributed.bench.ts', import.meta.url))], {
      stdio: 'inherit',
    });
  // Batch mode: 10,000 rows × 2 calls through the fake server's Batch API against the same rows online.
  if (args.only === undefined && !args.json)
    spawnSync(process.execPath, [fileURLToPath(new URL('batch.bench.ts', import.meta.url))], {
      stdio: 'inherit',
    });
}
