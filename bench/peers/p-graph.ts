/**
 * p-graph (https://github.com/microsoft/p-graph) as a peer row of the core bench (W2, W3, W4, MEM-1M).
 *
 * It runs the same graphs (converted once, untimed, from the bench's `Map<DAGNote, DAGNote[]>` into
 * p-graph's node map and dependency list, as a p-graph user would hold them) and the same executor functions.
 * `new PGraph(...)` is inside the timed region, as `new Composition(...)` is for symphonizer. p-graph has no
 * data flow, so its run function passes each node its predecessors' results as `inputs`, as the baseline
 * does; that is the least a p-graph user has to add to do the same work.
 *
 * Loaded by the bench child only, with a dynamic `import()`, because p-graph lives in bench/peers' own
 * package (`npm ci --prefix bench/peers`), which the root install does not carry.
 */
import { PGraph, type DependencyList, type PGraphNode } from 'p-graph';
import type { BenchExecutor } from '../baseline.ts';

/** A graph as the bench holds it: node → its predecessors; nodes have a `key`. */
export type KeyedGraph = ReadonlyMap<{ readonly key: string }, readonly { readonly key: string }[]>;

/** A graph converted once into p-graph's inputs, plus each node's predecessor keys for `inputs`. */
export interface PGraphInput {
  readonly nodeMap: Map<string, PGraphNode>;
  readonly dependencies: DependencyList;
  readonly predKeys: ReadonlyMap<string, readonly string[]>;
}

/** Converts a bench graph into p-graph's node map and dependency list (untimed: the user's own data). */
export function toPGraph(graph: KeyedGraph): PGraphInput {
  const nodeMap = new Map<string, PGraphNode>();
  const dependencies: DependencyList = [];
  const predKeys = new Map<string, string[]>();
  const add = (key: string): void => {
    if (!nodeMap.has(key)) {
      nodeMap.set(key, {});
      predKeys.set(key, []);
    }
  };
  for (const [note, preds] of graph) {
    add(note.key);
    const mine = predKeys.get(note.key)!;
    for (const pred of preds) {
      add(pred.key);
      if (!mine.includes(pred.key)) {
        mine.push(pred.key);
        dependencies.push([pred.key, note.key]);
      }
    }
  }
  return { nodeMap, dependencies, predKeys };
}

/** Builds a PGraph and runs it once, every node calling `executor` with its predecessors' results. */
export async function runPGraph(input: PGraphInput, executor: BenchExecutor): Promise<Map<string, unknown>> {
  const results = new Map<string, unknown>();
  const { predKeys } = input;
  await new PGraph(input.nodeMap, input.dependencies).run({
    run: (key) => {
      const inputs: Record<string, unknown> = {};
      for (const p of predKeys.get(key)!) inputs[p] = results.get(p);
      return Promise.resolve(executor(undefined, { inputs })).then((value) => {
        results.set(key, value);
      });
    },
  });
  return results;
}
