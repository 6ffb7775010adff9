/**
 * The bench workloads. Each one builds its graphs and inputs once (outside any timing) and offers variants:
 * symphonizer and the hand-written baseline, over the same graph objects, the same executor functions and the
 * same concurrency caps, and, where bench/peers is installed, p-graph (bench/peers/p-graph.ts). A variant's
 * `run()` is what is timed; it includes constructing the compositions (that is part of what a user pays) and
 * p-graph's `new PGraph(...)`, but not building the DAGNotes.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Composition, DAGNote, NodeRunner, Perform, compileGraph, type Graph } from '../src/index.ts';
import { compileBase, runDag, runMany, type BasePlan, type BenchExecutor } from './baseline.ts';
import { diamondDuration, plainCapBound, waterMarkBound } from './simulate.ts';
import { collectGarbage, deferred, mulberry32, sleep } from './util.ts';

/** Seeds of every random choice in the bench, so every run of it sees the same inputs. */
export const SEEDS = { w1Sleeps: 0x5eed0001, w3Edges: 0x5eed0003 } as const;

/** What a variant reports about one run besides its timing. */
export interface RunInfo {
  readonly completed: number;
  readonly failed: number;
  readonly peakRunning?: number;
}

/** Who a variant measures: symphonizer, the hand-written baseline, or a peer library. */
export type Role = 'symphonizer' | 'baseline' | 'peer';

export interface Variant {
  readonly name: string;
  readonly role: Role;
  /** The baseline variant this one is compared with. */
  readonly compareTo?: string;
  /** Untimed set-up before each run. */
  readonly prepare?: () => void;
  readonly run: () => Promise<RunInfo>;
}

export interface Workload {
  readonly id: string;
  readonly title: string;
  /** Node executions per run (for µs per node). */
  readonly nodes: number;
  /** Expected `completed` count of a run. */
  readonly expectCompleted: number;
  readonly variants: readonly Variant[];
  /** One warm-up of every variant (JIT, inline caches); not measured. */
  readonly warmup: () => Promise<void>;
  /** Simulated lower bounds (ms), W1 only. */
  readonly bounds?: Readonly<Record<string, number>>;
}

/**
 * What the bench uses of bench/peers/p-graph.ts. Typed here, not imported, so that the root type check never
 * resolves `p-graph` (bench/peers is its own package, not installed by the root `npm ci`).
 */
interface PGraphPeer {
  toPGraph(graph: ReadonlyMap<DAGNote, readonly DAGNote[]>): unknown;
  runPGraph(input: unknown, executor: BenchExecutor): Promise<unknown>;
}

/** The name of the p-graph rows. */
export const PGRAPH = 'p-graph';
let pGraph: PGraphPeer | undefined;

/** Where p-graph is installed when bench/peers is. */
export const PGRAPH_PACKAGE = fileURLToPath(
  new URL('peers/node_modules/p-graph/package.json', import.meta.url),
);

/**
 * Loads the p-graph peer (bench/peers/p-graph.ts) for the workloads built after it, when bench/peers is
 * installed. Returns why it could not, or undefined.
 */
export async function loadPeers(): Promise<string | undefined> {
  if (!existsSync(PGRAPH_PACKAGE)) return 'bench/peers is not installed';
  // A computed specifier: the type checker does not follow it into bench/peers.
  const url = new URL('peers/p-graph.ts', import.meta.url).href;
  pGraph = (await import(url)) as PGraphPeer;
  return undefined;
}

/** A Composition subclass that overrides configureNodeRunner, as the seed example does. */
class BenchComposition extends Composition {
  readonly #executor: BenchExecutor;
  readonly #params: ((node: DAGNote) => unknown) | undefined;
  constructor(graph: Graph, executor: BenchExecutor, params?: (node: DAGNote) => unknown) {
    super(graph);
    this.#executor = executor;
    this.#params = params;
  }
  override configureNodeRunner(node: DAGNote): NodeRunner {
    return new NodeRunner({ executor: this.#executor, params: this.#params?.(node) });
  }
}

/** Zero-latency async node: `async () => value`. */
// eslint-disable-next-line @typescript-eslint/require-await -- the workload is exactly an async function that returns at once
const zero: BenchExecutor = async () => 1;
/** A node that sleeps its params (ms). */
const sleeper: BenchExecutor = (ms) => sleep(ms as number);

/** The diamond {D: [B, C], C: [A], B: [A]} and each note's local index (A 0, B 1, C 2, D 3). */
function diamond(): { graph: Map<DAGNote, DAGNote[]>; local: Map<DAGNote, number> } {
  const [a, b, c, d] = ['A', 'B', 'C', 'D'].map((name) => new DAGNote(name)) as [
    DAGNote,
    DAGNote,
    DAGNote,
    DAGNote,
  ];
  const graph = new Map<DAGNote, DAGNote[]>([
    [d, [b, c]],
    [c, [a]],
    [b, [a]],
  ]);
  return { graph, local: new Map([a, b, c, d].map((note, i) => [note, i])) };
}

function localIndices(plan: BasePlan<DAGNote>, local: ReadonlyMap<DAGNote, number>): Int32Array {
  return Int32Array.from(plan.notes, (note) => local.get(note)!);
}

/** Runs `count` compositions through one Perform and waits for it to go idle. */
async function throughPerform(
  count: number,
  perform: Perform,
  make: (i: number) => Composition,
): Promise<RunInfo> {
  for (let i = 0; i < count; i++) void perform.add(make(i));
  await perform.onIdle();
  return {
    completed: perform.completed,
    failed: perform.failed + perform.cancelled,
    peakRunning: perform.peakRunning,
  };
}

/** W1: 1000 diamonds, each node sleeping a seeded 1–100 ms, Perform 100/50. */
function w1(count = 1000): Workload {
  const { graph, local } = diamond();
  const plan = compileBase(graph);
  const baseLocal = localIndices(plan, local);
  const random = mulberry32(SEEDS.w1Sleeps);
  const schedule = Int32Array.from({ length: count * 4 }, () => 1 + Math.floor(random() * 100));
  const durations = Array.from({ length: count }, (_, i) =>
    diamondDuration(schedule[4 * i]!, schedule[4 * i + 1]!, schedule[4 * i + 2]!, schedule[4 * i + 3]!),
  );
  const symphonizer = (n: number, highWater: number, lowWater: number) => () =>
    throughPerform(
      n,
      new Perform({ highWater, lowWater }),
      (i) => new BenchComposition(graph, sleeper, (note) => schedule[4 * i + local.get(note)!]),
    );
  const baseline = (n: number) => async (): Promise<RunInfo> =>
    runMany(n, 100, (i) => runDag(plan, sleeper, (node) => schedule[4 * i + baseLocal[node]!]));
  const warmCount = Math.min(count, 100);
  return {
    id: 'W1',
    title: `${count} diamonds, nodes sleep 1–100 ms (seeded), Perform 100/50`,
    nodes: count * 4,
    expectCompleted: count,
    variants: [
      { name: 'symphonizer', role: 'symphonizer', compareTo: 'baseline', run: symphonizer(count, 100, 50) },
      {
        name: 'symphonizer, Perform 100/100 (plain cap)',
        role: 'symphonizer',
        compareTo: 'baseline',
        run: symphonizer(count, 100, 100),
      },
      { name: 'baseline', role: 'baseline', run: baseline(count) },
    ],
    // Warm up on the first 100 diamonds only: the code paths are the same and W1 is timer-bound.
    warmup: async () => {
      await symphonizer(warmCount, 100, 50)();
      await symphonizer(warmCount, 100, 100)();
      await baseline(warmCount)();
    },
    bounds: {
      'bound (a): Perform 100/50 policy': waterMarkBound(durations, 100, 50),
      'bound (b): plain cap of 100': plainCapBound(durations, 100),
    },
  };
}

/** W2: 20,000 diamonds with zero-latency async nodes, Perform 100/50 (baseline: 100 diamonds at once). */
function w2(count = 20_000): Workload {
  const { graph } = diamond();
  const plan = compileBase(graph);
  const variants: Variant[] = [
    {
      name: 'symphonizer',
      role: 'symphonizer',
      compareTo: 'baseline',
      run: () =>
        throughPerform(
          count,
          new Perform({ highWater: 100, lowWater: 50 }),
          () => new BenchComposition(graph, zero),
        ),
    },
    {
      name: 'baseline',
      role: 'baseline',
      run: () => runMany(count, 100, () => runDag(plan, zero, undefined)),
    },
    ...pGraphVariants((peer, input) => runMany(count, 100, () => peer.runPGraph(input, zero)), graph),
    {
      // Diagnostic: the same runs, but each composition is built only when a slot frees up (100 loops over
      // perform.run), instead of all 20,000 built and queued up front. The gap to the row above is the cost of
      // holding 20,000 queued compositions (old-generation promotion and GC), not of running nodes.
      name: 'symphonizer, built on demand',
      role: 'symphonizer',
      compareTo: 'baseline',
      run: async () => {
        const perform = new Perform({ highWater: 100, lowWater: 50 });
        let next = 0;
        const loop = async (): Promise<void> => {
          while (next < count) {
            next += 1; // claim one before awaiting, so the 100 loops never overshoot
            await perform.run(new BenchComposition(graph, zero));
          }
        };
        await Promise.all(Array.from({ length: 100 }, loop));
        return { completed: perform.completed, failed: perform.failed + perform.cancelled };
      },
    },
  ];
  return {
    id: 'W2',
    title: `${count.toLocaleString('en-US')} diamonds, zero-latency async nodes, Perform 100/50`,
    nodes: count * 4,
    expectCompleted: count,
    variants,
    warmup: async () => {
      for (const v of variants) await v.run();
    },
  };
}

/**
 * The p-graph row of a workload, if bench/peers is loaded: `run(peer, input)` runs it over `graph` converted
 * once to p-graph's inputs.
 */
function pGraphVariants(
  run: (peer: PGraphPeer, input: unknown) => Promise<RunInfo>,
  graph: ReadonlyMap<DAGNote, readonly DAGNote[]>,
): Variant[] {
  const peer = pGraph;
  if (peer === undefined) return [];
  // Converted on the first run (a warm-up, for the timed workloads), so no other variant's peak RSS holds it.
  let input: unknown;
  return [
    {
      name: PGRAPH,
      role: 'peer',
      compareTo: 'baseline',
      run: () => run(peer, (input ??= peer.toPGraph(graph))),
    },
  ];
}

/** Variants that run one big DAG once: symphonizer (one Composition, unbounded), the baseline and p-graph. */
function singleDag(graph: Map<DAGNote, DAGNote[]>, withColdCompile: boolean): Variant[] {
  const plan = compileBase(graph);
  const variants: Variant[] = [
    {
      name: 'symphonizer',
      role: 'symphonizer',
      compareTo: 'baseline',
      run: async () => {
        const status = await new BenchComposition(graph, zero).start();
        return { completed: status === 'completed' ? 1 : 0, failed: status === 'completed' ? 0 : 1 };
      },
    },
    {
      name: 'baseline',
      role: 'baseline',
      run: async () => {
        await runDag(plan, zero, undefined);
        return { completed: 1, failed: 0 };
      },
    },
    ...pGraphVariants(async (peer, input) => {
      await peer.runPGraph(input, zero);
      return { completed: 1, failed: 0 };
    }, graph),
  ];
  if (withColdCompile) {
    // Compiling a graph object seen for the first time (no cached plan): a fresh Map of the same notes.
    let copy = new Map(graph);
    const fresh = (): void => {
      copy = new Map(graph);
    };
    variants.push(
      {
        name: 'symphonizer: compileGraph, cold',
        role: 'symphonizer',
        compareTo: 'baseline: compile, cold',
        prepare: fresh,
        run: () => Promise.resolve({ completed: compileGraph(copy).nodes.length > 0 ? 1 : 0, failed: 0 }),
      },
      {
        name: 'baseline: compile, cold',
        role: 'baseline',
        prepare: fresh,
        run: () => Promise.resolve({ completed: compileBase(copy).keys.length > 0 ? 1 : 0, failed: 0 }),
      },
    );
  }
  return variants;
}

/** `layers` layers of 100 nodes, each depending on 3 distinct seeded-random nodes of the layer before. */
function layered(layers: number, width = 100): Map<DAGNote, DAGNote[]> {
  const random = mulberry32(SEEDS.w3Edges);
  const graph = new Map<DAGNote, DAGNote[]>();
  let previous: DAGNote[] = [];
  for (let l = 0; l < layers; l++) {
    const layer = Array.from({ length: width }, (_, j) => new DAGNote(`n${l}_${j}`));
    for (const note of layer) {
      const preds = new Set<DAGNote>();
      while (previous.length > 0 && preds.size < 3) preds.add(previous[Math.floor(random() * width)]!);
      graph.set(note, [...preds]);
    }
    previous = layer;
  }
  return graph;
}

/** W3: `layers` layers of 100 nodes, each depending on 3 distinct seeded-random nodes of the layer before. */
function w3(layers: number): Workload {
  const width = 100;
  const graph = layered(layers, width);
  const nodes = layers * width;
  const variants = singleDag(graph, true);
  return {
    id: `W3-${nodes / 1000}k`,
    title: `wide: ${layers} layers of ${width}, 3 seeded-random preds each, zero latency`,
    nodes,
    expectCompleted: 1,
    variants,
    warmup: async () => {
      for (const v of variants) {
        v.prepare?.();
        await v.run();
      }
    },
  };
}

/** W4: a chain of `length` nodes, zero latency. */
function w4(length = 10_000): Workload {
  const notes = Array.from({ length }, (_, i) => new DAGNote(`n${i}`));
  const graph = new Map(notes.map((note, i) => [note, i === 0 ? [] : [notes[i - 1]!]]));
  const variants = singleDag(graph, false);
  return {
    id: 'W4',
    title: `deep: a chain of ${length.toLocaleString('en-US')} nodes, zero latency`,
    nodes: length,
    expectCompleted: 1,
    variants,
    warmup: async () => {
      for (const v of variants) await v.run();
    },
  };
}

/** Builders of the timed workloads, by id. `--only W3` selects every id starting with `W3`. */
export const workloads: Readonly<Record<string, () => Workload>> = {
  W1: () => w1(),
  W2: () => w2(),
  'W3-10k': () => w3(100),
  'W3-100k': () => w3(1000),
  W4: () => w4(),
};

/**
 * Workloads measured only for peak RSS, each variant in a fresh child that builds the inputs and runs it once:
 * MEM-1M is a 1M-node layered DAG (10,000 layers of 100, 3 seeded-random predecessors each) run as one
 * composition. `inputs only` builds the graph and runs nothing: the part of every peak that is the graph.
 */
export const memoryWorkloads: Readonly<Record<string, () => Workload>> = {
  'MEM-1M': () => {
    const graph = layered(10_000);
    const variants: Variant[] = [
      { name: 'inputs only', role: 'baseline', run: () => Promise.resolve({ completed: 1, failed: 0 }) },
      ...singleDag(graph, false),
    ];
    return {
      id: 'MEM-1M',
      title: 'one DAG of 10,000 layers of 100 (1,000,000 nodes), 3 seeded-random preds each, zero latency',
      nodes: graph.size,
      expectCompleted: 1,
      variants,
      warmup: () => Promise.resolve(),
    };
  },
};

/** Result of {@link queuedMemory}. */
export interface MemoryResult {
  readonly count: number;
  readonly symphonizerBytes: number;
  readonly baselineBytes: number;
  readonly completedAfterRelease: number;
}

/**
 * Heap bytes per queued composition: a Perform with highWater 1 whose running composition blocks on a
 * deferred; `count` diamond compositions sharing one graph are then built and added (so all queue), and
 * `heapUsed` is compared after a forced full GC before and after. The baseline's equivalent of a queued run
 * is a small descriptor object in an array.
 */
export async function queuedMemory(count = 20_000): Promise<MemoryResult> {
  const { graph } = diamond();
  const gate = deferred<undefined>();
  const configureNodeRunner = (): NodeRunner => new NodeRunner({ executor: zero });
  const perform = new Perform({ highWater: 1 });
  const blocker = new Composition(graph, {
    configureNodeRunner: () => new NodeRunner({ executor: () => gate.promise }),
  });
  void perform.add(blocker);
  // One composition through the same path first, so hidden classes and code are in place before measuring.
  void perform.add(new Composition(graph, { configureNodeRunner }));

  collectGarbage();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < count; i++) void perform.add(new Composition(graph, { configureNodeRunner }));
  collectGarbage();
  const after = process.memoryUsage().heapUsed;
  if (perform.queued !== count + 1 || perform.running !== 1) throw new Error('compositions did not queue');

  const plan = compileBase(graph);
  collectGarbage();
  const baseBefore = process.memoryUsage().heapUsed;
  const queue: { plan: BasePlan; executor: BenchExecutor; paramsOf: undefined }[] = [];
  for (let i = 0; i < count; i++) queue.push({ plan, executor: zero, paramsOf: undefined });
  collectGarbage();
  const baseAfter = process.memoryUsage().heapUsed;
  await runMany(queue.length, 100, (i) => runDag(queue[i]!.plan, queue[i]!.executor, queue[i]!.paramsOf));

  gate.resolve(undefined);
  await perform.onIdle();
  return {
    count,
    symphonizerBytes: (after - before) / count,
    baselineBytes: (baseAfter - baseBefore) / count,
    completedAfterRelease: perform.completed,
  };
}
