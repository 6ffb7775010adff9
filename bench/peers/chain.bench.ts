/**
 * The chain-level peer bench: the 5-call fan-out/fan-in chain (bench/peers/chain-shared.ts) on symphonizer
 * (a constant provider, and the built-in `sim` model), the AI SDK (`generateText` on `MockLanguageModelV3`),
 * LangGraph.js (a `StateGraph` on `FakeListChatModel`) and plain `Promise.all` of zero-latency async
 * functions (the floor), each in text and in structured mode. Every model answers at once, so what is
 * measured is what each framework costs per model call.
 *
 *   node bench/peers/chain.bench.ts                  the table (from the repository root, Node >= 22.18)
 *   node bench/peers/chain.bench.ts --json           results as JSON on stdout (progress on stderr)
 *   node bench/peers/chain.bench.ts --only symphonizer,floor    a subset of the variants (ids below)
 *   BENCH_PEER_ROUNDS=7   rounds (fresh processes per variant and mode; default 5)
 *   BENCH_PEER_WARMUP_MS=3000   warm-up time in each process before the timed batch (default 2000; at least
 *                         one batch, at most 5)
 *   BENCH_PEER_CHAINS=2000 BENCH_PEER_CONCURRENCY=100   chains per batch, chains in flight (the defaults)
 *   BENCH_PEER_TIMED_BATCHES=3   batches timed as one window after the warm-up (default 3)
 *   BENCH_PEER_METRIC=cpu   ratios and targets on CPU µs per call instead of wall (for a loaded machine)
 *
 * Method: this process only orchestrates. Each measurement is one fresh child process (`--expose-gc`) that
 * builds its variant's chain once, runs whole batches to warm up (at least one, more until BENCH_PEER_WARMUP_MS
 * have passed, at most 5: the fast variants get more rounds of JIT, the slow ones do not take minutes), collects garbage,
 * runs one untimed batch (so the heap regrows to its working size after the forced collection), then times 3
 * batches in a row of 2,000 chains with 100 in flight (30,000 model calls, their garbage collections included). Variants and modes alternate
 * inside a round and the order flips every round; the table shows the median over the rounds of µs per
 * model call (batch wall time / calls). Overhead is a variant's µs per call minus the floor's in the same
 * run. If bench/peers/node_modules is missing it is installed first (`npm ci --prefix bench/peers`); if
 * that fails the bench prints a skip line and exits 0.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { collectGarbage, fmt, hasGc, median, timed } from '../util.ts';
import { CALLS_PER_CHAIN, MODES, type ChainVariant, type Mode } from './chain-shared.ts';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The variants, by id; each module is imported only by the child that runs it. */
const VARIANTS = {
  symphonizer: {
    label: 'symphonizer (constant provider)',
    load: async () => (await import('./chain-symphonizer.ts')).symphonizerConstant,
  },
  'symphonizer-sim': {
    label: 'symphonizer (built-in `sim`)',
    load: async () => (await import('./chain-symphonizer.ts')).symphonizerSim,
  },
  'ai-sdk': {
    label: 'AI SDK (`generateText`, mock model)',
    load: async () => (await import('./chain-ai-sdk.ts')).aiSdk,
  },
  langgraph: {
    label: 'LangGraph.js (`StateGraph`, fake model)',
    load: async () => (await import('./chain-langgraph.ts')).langGraph,
  },
  floor: {
    label: 'plain `Promise.all` (floor)',
    load: async () => (await import('./chain-floor.ts')).promiseAll,
  },
} satisfies Record<string, { label: string; load: () => Promise<ChainVariant> }>;

type VariantId = keyof typeof VARIANTS;
const VARIANT_IDS = Object.keys(VARIANTS) as VariantId[];

// Targets of the issue, checked against the same run.
const TEXT_US = 5;
const STRUCTURED_US = 6.5;
const SIM_FACTOR = 1.3;
const STRUCTURED_FACTOR = 1.3;
const AI_SDK_SHARE = 1 / 8;
const LANGGRAPH_SHARE = 1 / 40;

const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    only: { type: 'string' },
    child: { type: 'string' },
  },
});

function positiveInt(name: string, fallback: number, min = 1): number {
  const env = process.env[name];
  if (env === undefined || env === '') return fallback;
  const value = Number(env);
  if (!Number.isInteger(value) || value < min)
    throw new Error(`${name} must be an integer >= ${min}, got ${env}`);
  return value;
}

const ROUNDS = positiveInt('BENCH_PEER_ROUNDS', 5);
const WARMUP_MS = positiveInt('BENCH_PEER_WARMUP_MS', 2000, 0);
const MAX_WARMUP_BATCHES = 5;
const TIMED_BATCHES = positiveInt('BENCH_PEER_TIMED_BATCHES', 3);
const CHAINS = positiveInt('BENCH_PEER_CHAINS', 2000);
const CONCURRENCY = positiveInt('BENCH_PEER_CONCURRENCY', 100);
const CALLS = CHAINS * CALLS_PER_CHAIN;
/**
 * What the ratios and targets compare: `wall` (the default, batch wall time per call) or `cpu` (process
 * CPU time per call), which moves far less when other work shares the machine's cores.
 */
const METRIC: 'wall' | 'cpu' = process.env.BENCH_PEER_METRIC === 'cpu' ? 'cpu' : 'wall';

/** What one child reports. */
interface Measurement {
  readonly id: VariantId;
  readonly mode: Mode;
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly calls: number;
  readonly warmupBatches: number;
}

// ---------------------------------------------------------------------------------------------- child side

async function child(spec: string): Promise<void> {
  const [id, mode] = spec.split(':') as [VariantId, Mode];
  if (!(id in VARIANTS) || !MODES.includes(mode)) throw new Error(`unknown child ${spec}`);
  const run = await (await VARIANTS[id].load()).prepare(mode);
  const warmupStart = performance.now();
  let warmupBatches = 0;
  do {
    await run(CHAINS, CONCURRENCY);
    warmupBatches++;
  } while (performance.now() - warmupStart < WARMUP_MS && warmupBatches < MAX_WARMUP_BATCHES);
  collectGarbage();
  // A forced full collection shrinks the young generation to its minimum; the batch right after it pays for
  // regrowing the heap (measured on symphonizer: ~2.5x the steady state), which no long-running process does.
  // One untimed batch lets the heap regrow to its working size, then TIMED_BATCHES batches in a row are timed
  // as one window, their own collections included.
  await run(CHAINS, CONCURRENCY);
  const { timing } = await timed(async () => {
    for (let i = 0; i < TIMED_BATCHES; i++) await run(CHAINS, CONCURRENCY);
  });
  const result: Measurement = {
    id,
    mode,
    wallMs: timing.wallMs,
    cpuMs: timing.cpuMs,
    calls: CALLS * TIMED_BATCHES,
    warmupBatches,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

// --------------------------------------------------------------------------------------------- parent side

/** Installs bench/peers/node_modules when missing; returns why it cannot run, or undefined when it can. */
function ensurePeers(log: (message: string) => void): string | undefined {
  const needed = ['ai', '@langchain/langgraph', '@langchain/core'];
  if (needed.every((name) => existsSync(`${HERE}node_modules/${name}/package.json`))) return undefined;
  log('Installing bench/peers (npm ci --prefix bench/peers) …');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const install = spawnSync(
    npm,
    ['ci', '--prefix', HERE, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  if (install.status !== 0)
    return `npm ci --prefix bench/peers failed (${install.error?.message ?? `exit ${install.status}`})`;
  return needed.every((name) => existsSync(`${HERE}node_modules/${name}/package.json`))
    ? undefined
    : 'bench/peers/node_modules is incomplete after npm ci';
}

function versionOf(packageJson: string): string {
  try {
    return (JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

function versions(): Record<VariantId, string> {
  const symphonizer = `${versionOf(`${ROOT}package.json`)} (this tree)`;
  return {
    symphonizer,
    'symphonizer-sim': symphonizer,
    'ai-sdk': `ai ${versionOf(`${HERE}node_modules/ai/package.json`)}`,
    langgraph:
      `@langchain/langgraph ${versionOf(`${HERE}node_modules/@langchain/langgraph/package.json`)}, ` +
      `@langchain/core ${versionOf(`${HERE}node_modules/@langchain/core/package.json`)}`,
    floor: `Node ${process.versions.node}`,
  };
}

function measure(id: VariantId, mode: Mode): Measurement {
  const run = spawnSync(
    process.execPath,
    ['--expose-gc', fileURLToPath(import.meta.url), '--child', `${id}:${mode}`],
    { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 16 * 2 ** 20 },
  );
  const line = run.stdout.trim().split('\n').at(-1) ?? '';
  if (run.status !== 0 || !line.startsWith('{')) {
    throw new Error(`child ${id}:${mode} failed (exit ${run.status}):\n${run.stderr}${run.stdout}`);
  }
  return JSON.parse(line) as Measurement;
}

function selected(only: string | undefined): VariantId[] {
  if (only === undefined) return VARIANT_IDS;
  const wanted = only.split(',').map((s) => s.trim());
  const unknown = wanted.filter((w) => !(VARIANT_IDS as string[]).includes(w));
  if (unknown.length > 0)
    throw new Error(`--only: unknown ${unknown.join(', ')} (ids: ${VARIANT_IDS.join(', ')})`);
  return VARIANT_IDS.filter((id) => wanted.includes(id));
}

interface Row {
  readonly id: VariantId;
  readonly label: string;
  readonly version: string;
  /**
   * Per mode: wall and CPU µs per call of each round, their medians, and `median`: the one of the two
   * ({@link METRIC}) the ratios and targets use.
   */
  readonly modes: Partial<
    Record<
      Mode,
      {
        readonly wallUsPerCall: number[];
        readonly cpuUsPerCall: number[];
        readonly wallMedian: number;
        readonly cpuMedian: number;
        readonly median: number;
      }
    >
  >;
}

interface Check {
  readonly name: string;
  readonly target: string;
  readonly measured: string;
  readonly pass: boolean;
}

function checksOf(rows: readonly Row[]): Check[] {
  const us = (id: VariantId, mode: Mode): number | undefined =>
    rows.find((r) => r.id === id)?.modes[mode]?.median;
  const checks: Check[] = [];
  const add = (
    name: string,
    target: string,
    measured: number | undefined,
    pass: (m: number) => boolean,
    show: (m: number) => string,
  ): void => {
    if (measured === undefined || !Number.isFinite(measured)) return;
    checks.push({ name, target, measured: show(measured), pass: pass(measured) });
  };
  const micros = (m: number): string => `${fmt(m, 2)} µs`;
  const times = (m: number): string => `${fmt(m, 2)}×`;
  const own = { text: TEXT_US, structured: STRUCTURED_US };
  for (const mode of MODES) {
    const mine = us('symphonizer', mode);
    const floor = us('floor', mode);
    add(`symphonizer ${mode} µs/call`, `<= ${own[mode]} µs`, mine, (m) => m <= own[mode], micros);
    const sim = us('symphonizer-sim', mode);
    if (mine !== undefined && sim !== undefined)
      add(`sim ${mode} vs constant provider`, `<= ${SIM_FACTOR}×`, sim / mine, (m) => m <= SIM_FACTOR, times);
    if (mine === undefined || floor === undefined) continue;
    const ai = us('ai-sdk', mode);
    if (ai !== undefined)
      add(
        `${mode} overhead share of the AI SDK's`,
        `<= 1/${1 / AI_SDK_SHARE}`,
        (mine - floor) / (ai - floor),
        (m) => m <= AI_SDK_SHARE,
        share,
      );
    const lg = us('langgraph', mode);
    if (lg !== undefined)
      add(
        `${mode} overhead share of LangGraph's`,
        `<= 1/${1 / LANGGRAPH_SHARE}`,
        (mine - floor) / (lg - floor),
        (m) => m <= LANGGRAPH_SHARE,
        share,
      );
  }
  const text = us('symphonizer', 'text');
  const structured = us('symphonizer', 'structured');
  if (text !== undefined && structured !== undefined)
    add(
      'structured call vs text call',
      `<= ${STRUCTURED_FACTOR}×`,
      structured / text,
      (m) => m <= STRUCTURED_FACTOR,
      times,
    );
  return checks;
}

/** `1/n` for a share below one (overheads compared), else `n×`. */
function share(value: number): string {
  if (!Number.isFinite(value) || value <= 0) return '–';
  return value < 1 ? `1/${fmt(1 / value, 1)}` : `${fmt(value, 2)}×`;
}

function table(rows: readonly Row[], checks: readonly Check[]): string {
  const base = rows.find((r) => r.id === 'symphonizer');
  const floor = rows.find((r) => r.id === 'floor');
  const header = [
    'Variant',
    'Version',
    'text µs/call (CPU)',
    'structured µs/call (CPU)',
    '× symphonizer (text / structured)',
    'symphonizer overhead share (text / structured)',
  ];
  const perCall = (r: Row, mode: Mode): string => {
    const m = r.modes[mode];
    return m === undefined ? '–' : `${fmt(m.wallMedian, 2)} (${fmt(m.cpuMedian, 2)})`;
  };
  const cells = rows.map((r) => {
    const ratio = (mode: Mode): string => {
      const mine = base?.modes[mode]?.median;
      const theirs = r.modes[mode]?.median;
      return mine === undefined || theirs === undefined ? '–' : `${fmt(theirs / mine, 2)}×`;
    };
    const overheadShare = (mode: Mode): string => {
      const mine = base?.modes[mode]?.median;
      const theirs = r.modes[mode]?.median;
      const f = floor?.modes[mode]?.median;
      if (!['ai-sdk', 'langgraph'].includes(r.id)) return '–';
      if (mine === undefined || theirs === undefined || f === undefined) return '–';
      return share((mine - f) / (theirs - f));
    };
    return [
      r.label,
      r.version,
      perCall(r, 'text'),
      perCall(r, 'structured'),
      `${ratio('text')} / ${ratio('structured')}`,
      `${overheadShare('text')} / ${overheadShare('structured')}`,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]): string => `| ${c.map((s, i) => s.padEnd(widths[i]!)).join(' | ')} |`;
  const out = [
    `Chain peers: 5-call fan-out/fan-in chain, ${CHAINS.toLocaleString('en-US')} chains, ${CONCURRENCY} at once, ` +
      `zero-latency models; median of ${ROUNDS} fresh processes per cell (each warmed up ` +
      `for ${WARMUP_MS} ms, 1 to ${MAX_WARMUP_BATCHES} batches, then one settling batch; ${TIMED_BATCHES} batches timed), ` +
      `Node ${process.versions.node}.`,
    'µs/call = timed wall time / model calls (CPU: the process’s user + system time / calls). ' +
      `Ratios and targets use ${METRIC} time. Overhead = µs/call minus the floor’s; the last column is ` +
      'symphonizer’s (constant provider) overhead as a share of that row’s.',
    '',
    line(header),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...cells.map(line),
    '',
    ...checks.map((c) => `${c.pass ? 'PASS' : 'MISS'}  ${c.name}: ${c.measured} (target ${c.target})`),
  ];
  const missed = checks.filter((c) => !c.pass);
  out.push(
    `Chain peer targets: ${checks.length - missed.length}/${checks.length} PASS` +
      (missed.length > 0 ? `; MISS: ${missed.map((c) => `${c.name} (${c.measured})`).join('; ')}` : ''),
  );
  return out.join('\n');
}

function parent(): void {
  const log = (message: string): void => {
    process.stderr.write(`${message}\n`);
  };
  const ids = selected(args.only);
  const skip = ensurePeers(log);
  if (skip !== undefined) {
    if (args.json) console.log(JSON.stringify({ skipped: skip }));
    else console.log(`Chain peers: SKIPPED (${skip})`);
    return;
  }
  const cells = ids.flatMap((id) => MODES.map((mode) => ({ id, mode })));
  const samples = new Map<string, Measurement[]>();
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? cells : [...cells].reverse();
    for (const { id, mode } of order) {
      const m = measure(id, mode);
      const key = `${id}:${mode}`;
      samples.set(key, [...(samples.get(key) ?? []), m]);
      log(`round ${round + 1}/${ROUNDS} ${key}: ${fmt((m.wallMs * 1000) / m.calls, 2)} µs/call`);
    }
  }
  const version = versions();
  const rows: Row[] = ids.map((id) => ({
    id,
    label: VARIANTS[id].label,
    version: version[id],
    modes: Object.fromEntries(
      MODES.map((mode) => {
        const ms = samples.get(`${id}:${mode}`) ?? [];
        const wallUsPerCall = ms.map((m) => (m.wallMs * 1000) / m.calls);
        const cpuUsPerCall = ms.map((m) => (m.cpuMs * 1000) / m.calls);
        const wallMedian = median(wallUsPerCall);
        const cpuMedian = median(cpuUsPerCall);
        return [
          mode,
          {
            wallUsPerCall,
            cpuUsPerCall,
            wallMedian,
            cpuMedian,
            median: METRIC === 'cpu' ? cpuMedian : wallMedian,
          },
        ];
      }),
    ),
  }));
  const checks = checksOf(rows);
  if (args.json) {
    console.log(
      JSON.stringify(
        {
          bench: 'chain-peers',
          chains: CHAINS,
          concurrency: CONCURRENCY,
          callsPerChain: CALLS_PER_CHAIN,
          rounds: ROUNDS,
          warmupMs: WARMUP_MS,
          timedBatches: TIMED_BATCHES,
          metric: METRIC,
          node: process.versions.node,
          rows,
          checks,
        },
        null,
        2,
      ),
    );
  } else {
    console.log(table(rows, checks));
  }
}

if (args.child !== undefined) {
  if (!hasGc()) throw new Error('bench children need --expose-gc');
  await child(args.child);
} else {
  parent();
}
