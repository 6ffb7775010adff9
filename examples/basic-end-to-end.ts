/**
 * The seed example: 1000 runs of one small diamond-shaped DAG through a single Perform.
 *
 *        A          A runs first, B and C run in parallel once A is done,
 *       / \         and D runs once both B and C are done.
 *      B   C
 *       \ /         Every node just sleeps 1–100 ms, standing in for a call to an LLM.
 *        D
 *
 * Run it with `npm run seed` (or `node examples/basic-end-to-end.ts [count]`, default 1000 compositions).
 * It exits with code 1 if any composition failed. It is core only (no chain), so the `symphonizer` command
 * has nothing to load here; importing the module runs nothing.
 */
import { Composition, DAGNote, NodeRunner, Perform, type RunContext } from '../src/index.ts';
import { isMain } from './is-main.ts';

// 1. The graph: node → its predecessors (as in Python's graphlib). Notes hold no run state, so all 1000
//    compositions share this ONE Map; each composition keeps its own progress and results.
const [a, b, c, d] = ['A', 'B', 'C', 'D'].map((name) => new DAGNote(name));
const diamond = new Map<DAGNote, DAGNote[]>([
  [d!, [b!, c!]],
  [c!, [a!]],
  [b!, [a!]],
]);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// 2. The work of a node. `context.inputs` holds each predecessor's result keyed by its name.
async function work(ms: number, context: RunContext): Promise<string> {
  await sleep(ms);
  const after = Object.keys(context.inputs);
  return after.length === 0 ? context.node!.name : `${context.node!.name}(${after.join('+')})`;
}

// 3. A Composition decides how each node runs by making a NodeRunner for it. Overriding
//    configureNodeRunner in a subclass is one way (passing the `configureNodeRunner` option is another).
class SleepyComposition extends Composition {
  override configureNodeRunner(_node: DAGNote): NodeRunner {
    const ms = 1 + Math.floor(Math.random() * 100); // a random 1–100 ms per node
    return new NodeRunner({ executor: (_params, context) => work(ms, context) });
  }
}

/** Runs `count` diamond compositions through one Perform and prints what happened. */
async function main(count: number): Promise<void> {
  // 4. Perform runs many compositions at once behind water marks: once 100 run, new ones wait in a queue
  //    until fewer than 50 run; then it starts queued ones (first in, first out) back up to 100.
  const perform = new Perform({ highWater: 100, lowWater: 50 });

  let ownTimeMs = 0; // summed over compositions: each one's own time from its start to its end
  let firstError: unknown; // a failed composition's `error` is a NodeError naming the node that failed
  const onDone = (_c: Composition, _status: string, error: unknown, elapsedMs: number): void => {
    ownTimeMs += elapsedMs;
    firstError ??= error;
  };
  const compositions = Array.from({ length: count }, () => new SleepyComposition(diamond, { onDone }));

  const started = performance.now();
  for (const composition of compositions) void perform.add(composition);
  await perform.onIdle(); // resolves when nothing runs or waits any more
  const totalMs = performance.now() - started;

  // 5. Report. One composition takes A + max(B, C) + D ≈ 50 + 67 + 50 ≈ 170 ms on average; running up to 100
  //    at a time, the whole batch takes far less than count × 170 ms.
  console.log(`Ran ${count} diamond compositions (A → B, C → D; each node sleeps 1–100 ms)`);
  console.log(
    `  completed: ${perform.completed}, failed: ${perform.failed}, cancelled: ${perform.cancelled}`,
  );
  console.log(`  peak running at once: ${perform.peakRunning} (high water ${perform.highWater})`);
  console.log(`  total time: ${(totalMs / 1000).toFixed(2)} s`);
  console.log(`  average time per composition: ${(totalMs / count).toFixed(2)} ms (total time / count)`);
  console.log(`  average duration of one composition: ${(ownTimeMs / count).toFixed(1)} ms (start to end)`);
  console.log(`  results of the first one:`, Object.fromEntries(compositions[0]!.results));

  if (perform.completed !== count) {
    console.error(`${count - perform.completed} composition(s) did not complete; first error:`, firstError);
    process.exitCode = 1;
  }
}

if (isMain(import.meta)) {
  const arg = process.argv[2];
  const count = arg === undefined ? 1000 : Number(arg);
  if (!Number.isInteger(count) || count < 1) {
    console.error(`count must be a positive integer, got ${JSON.stringify(arg)}`);
    process.exitCode = 2;
  } else {
    await main(count);
  }
}
