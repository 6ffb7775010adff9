/**
 * Pure graph functions: turn the user's `Graph` (node → predecessors) into a compact, immutable plan of
 * integer-indexed adjacency lists, checking keys and cycles on the way. A plan holds no run state, so it is
 * shared by every composition built from the same graph object.
 */

import { DAGNote } from './dag-note.ts';
import { CycleError, InvalidGraphError, describe } from './errors.ts';
import { jsonEquals } from './json.ts';

/**
 * A DAG as node → its predecessors, as in Python's graphlib. Nodes that appear only as predecessors are nodes
 * too. Notes with equal keys are one node.
 */
export type Graph = Map<DAGNote, Iterable<DAGNote>> | Iterable<readonly [DAGNote, Iterable<DAGNote>]>;

/** The compiled, immutable form of a graph. Node `i` has key `keys[i]`. */
export interface GraphPlan {
  readonly nodes: readonly DAGNote[];
  readonly keys: readonly string[];
  /** Predecessor indices of each node. */
  readonly preds: readonly (readonly number[])[];
  /** Successor indices of each node. */
  readonly succs: readonly (readonly number[])[];
  /** Number of distinct predecessors of each node. */
  readonly indegree: readonly number[];
  /** Indices of the nodes with no predecessor, in first-seen order. */
  readonly roots: readonly number[];
  /** Node indices in one topological order. */
  readonly order: readonly number[];
}

/** The result of {@link findCycle}. */
export type CycleSearch =
  | { readonly hasCycle: false; readonly order: number[] }
  | { readonly hasCycle: true; readonly cycle: string[] };

interface CachedPlan {
  readonly plan: GraphPlan;
  /** Flat identity snapshot of the input: per entry, the node, its list object, the list length, then its members. */
  readonly snapshot: readonly unknown[];
}

// Graph object → plan. A graph is re-checked by identity (O(V + E), no allocation) before its plan is reused,
// so mutating a Map between compositions is still seen.
const cache = new WeakMap<object, CachedPlan>();

/**
 * Compiles a graph into a {@link GraphPlan}.
 * @throws {InvalidGraphError} on a malformed graph (`invalid_graph`) or equal keys with different payloads (`conflicting_node`).
 * @throws {CycleError} when the graph has a cycle.
 */
export function compileGraph(graph: Graph): GraphPlan {
  if (
    typeof graph !== 'object' ||
    (graph as unknown) === null ||
    typeof (graph as Iterable<unknown>)[Symbol.iterator] !== 'function'
  ) {
    throw new InvalidGraphError(
      'invalid_graph',
      `A graph must be a Map or an iterable of [node, predecessors] entries, got ${describe(graph)}.`,
    );
  }
  const cached = cache.get(graph);
  if (cached !== undefined && isUnchanged(graph, cached)) return cached.plan;

  const indexByKey = new Map<string, number>();
  const nodes: DAGNote[] = [];
  const predSets: Set<number>[] = [];
  const snapshot: unknown[] = [];
  let cacheable = Array.isArray(graph) || graph instanceof Map;

  const indexOf = (value: unknown, where: string): number => {
    if (!(value instanceof DAGNote)) {
      throw new InvalidGraphError(
        'invalid_graph',
        `${where} must be a DAGNote, got ${describe(value)}.`,
        undefined,
        'wrap each node in new DAGNote(name, payload)',
      );
    }
    const note = value as DAGNote;
    const existing = indexByKey.get(note.key);
    if (existing !== undefined) {
      const first = nodes[existing] as DAGNote;
      if (first !== note && !jsonEquals(first.payload, note.payload)) {
        throw new InvalidGraphError(
          'conflicting_node',
          `Two notes share the key "${note.key}" but have different payloads.`,
          note.key,
          'give them different names, or the same payload',
        );
      }
      return existing;
    }
    const index = nodes.length;
    indexByKey.set(note.key, index);
    nodes.push(note);
    predSets.push(new Set());
    return index;
  };

  let entryNumber = 0;
  for (const entry of graph as Iterable<unknown>) {
    if (!Array.isArray(entry) || entry.length !== 2) {
      throw new InvalidGraphError(
        'invalid_graph',
        `Graph entry #${entryNumber} must be a [node, predecessors] pair, got ${describe(entry)}.`,
      );
    }
    const [note, predecessors] = entry as [unknown, unknown];
    const index = indexOf(note, `The node of graph entry #${entryNumber}`);
    const key = (nodes[index] as DAGNote).key;
    if (
      typeof predecessors !== 'object' ||
      predecessors === null ||
      typeof (predecessors as Iterable<unknown>)[Symbol.iterator] !== 'function' ||
      typeof predecessors === 'string'
    ) {
      throw new InvalidGraphError(
        'invalid_graph',
        `The predecessors of "${key}" must be an iterable of DAGNotes, got ${describe(predecessors)}.`,
        key,
        'use [] for a node with no predecessors',
      );
    }
    if (Array.isArray(predecessors) || predecessors instanceof Set) {
      const list = predecessors as readonly unknown[] | ReadonlySet<unknown>;
      snapshot.push(
        note,
        list,
        Array.isArray(list) ? list.length : (list as ReadonlySet<unknown>).size,
        ...list,
      );
    } else {
      cacheable = false; // a one-shot iterable (e.g. a generator) cannot be re-checked
    }
    const set = predSets[index] as Set<number>;
    for (const pred of predecessors as Iterable<unknown>) set.add(indexOf(pred, `A predecessor of "${key}"`));
    entryNumber += 1;
  }

  const count = nodes.length;
  const preds: number[][] = new Array<number[]>(count);
  const succs: number[][] = new Array<number[]>(count);
  const indegree = new Array<number>(count).fill(0);
  const roots: number[] = [];
  for (let i = 0; i < count; i++) succs[i] = [];
  for (let i = 0; i < count; i++) {
    const list = [...(predSets[i] as Set<number>)];
    preds[i] = list;
    indegree[i] = list.length;
    if (list.length === 0) roots.push(i);
    for (const p of list) (succs[p] as number[]).push(i);
  }
  const keys = nodes.map((note) => note.key);
  const search = findCycle(keys, preds, succs, indegree, roots);
  if (search.hasCycle) throw new CycleError(search.cycle);

  const plan: GraphPlan = Object.freeze({ nodes, keys, preds, succs, indegree, roots, order: search.order });
  if (cacheable) cache.set(graph, { plan, snapshot });
  return plan;
}

function isUnchanged(graph: object, cached: CachedPlan): boolean {
  const { snapshot } = cached;
  let i = 0;
  const check = (node: unknown, list: unknown): boolean => {
    if (node !== snapshot[i] || list !== snapshot[i + 1]) return false;
    const members = list as readonly unknown[] | ReadonlySet<unknown>;
    const length = Array.isArray(members) ? members.length : (members as ReadonlySet<unknown>).size;
    if (length !== snapshot[i + 2]) return false;
    i += 3;
    for (const member of members) {
      if (member !== snapshot[i]) return false;
      i += 1;
    }
    return true;
  };
  if (graph instanceof Map) {
    // keys() + get(), not entries: no [key, value] array per entry on this per-composition path.
    const map = graph as Map<unknown, unknown>;
    for (const node of map.keys()) if (!check(node, map.get(node))) return false;
  } else {
    for (const item of graph as Iterable<unknown>) {
      if (!Array.isArray(item) || !check(item[0], item[1])) return false;
    }
  }
  return i === snapshot.length;
}

/**
 * Kahn's algorithm over an indexed graph. Returns a topological order, or one cycle as node keys where each
 * is an immediate predecessor of the next and the first equals the last (`['A', 'B', 'A']`).
 */
export function findCycle(
  keys: readonly string[],
  preds: readonly (readonly number[])[],
  succs: readonly (readonly number[])[],
  indegree: readonly number[],
  roots: readonly number[],
): CycleSearch {
  const remaining = indegree.slice();
  const order: number[] = [...roots];
  for (let head = 0; head < order.length; head++) {
    for (const s of succs[order[head] as number] as readonly number[]) {
      remaining[s] = (remaining[s] as number) - 1;
      if (remaining[s] === 0) order.push(s);
    }
  }
  if (order.length === keys.length) return { hasCycle: false, order };

  // Every node left has a predecessor that is also left, so walking predecessors must revisit a node.
  let current = remaining.findIndex((value) => value > 0);
  const position = new Map<number, number>();
  const walk: number[] = [];
  while (!position.has(current)) {
    position.set(current, walk.length);
    walk.push(current);
    current = (preds[current] as readonly number[]).find((p) => (remaining[p] as number) > 0) as number;
  }
  const loop = walk.slice(position.get(current)).reverse();
  const cycle = [current, ...loop].map((i) => keys[i] as string);
  return { hasCycle: true, cycle };
}
