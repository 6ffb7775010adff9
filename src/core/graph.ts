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
  // Per node: its predecessor list, and the last entry that added to it (-1: none yet). Predecessors are
  // deduplicated with `seen` (node → the entry that saw it last), so no Set is made per node.
  const predLists: number[][] = [];
  const lastEntry: number[] = [];
  const seen: number[] = [];
  const scratch: number[] = [];
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
    predLists.push(NO_PREDS);
    lastEntry.push(-1);
    seen.push(-1);
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
    if (Array.isArray(predecessors)) {
      const list = predecessors as readonly unknown[];
      snapshot.push(note, list, list.length);
      for (let i = 0; i < list.length; i++) snapshot.push(list[i]);
    } else if (predecessors instanceof Set) {
      snapshot.push(note, predecessors, predecessors.size);
      for (const member of predecessors as ReadonlySet<unknown>) snapshot.push(member);
    } else {
      cacheable = false; // a one-shot iterable (e.g. a generator) cannot be re-checked
    }
    // A repeated entry of a node adds to its list; the first (the usual case) starts from an empty one.
    const previous = lastEntry[index] === -1 ? NO_PREDS : (predLists[index] as number[]);
    scratch.length = 0;
    for (const p of previous) {
      scratch.push(p);
      seen[p] = entryNumber;
    }
    for (const pred of predecessors as Iterable<unknown>) {
      const p = indexOf(pred, `A predecessor of "${key}"`);
      if (seen[p] !== entryNumber) {
        seen[p] = entryNumber;
        scratch.push(p);
      }
    }
    predLists[index] = scratch.length === 0 ? NO_PREDS : scratch.slice(); // exact length, no spare capacity
    lastEntry[index] = entryNumber;
    entryNumber += 1;
  }

  const count = nodes.length;
  const preds: (readonly number[])[] = predLists;
  const indegree = new Array<number>(count).fill(0);
  const succCount = new Array<number>(count).fill(0);
  const roots: number[] = [];
  for (let i = 0; i < count; i++) {
    const list = predLists[i] as number[];
    indegree[i] = list.length;
    if (list.length === 0) roots.push(i);
    for (const p of list) succCount[p] = (succCount[p] as number) + 1;
  }
  // Successor lists at their exact length (filled in node order, as before), so a large plan carries no
  // spare array capacity.
  const succs: number[][] = new Array<number[]>(count);
  for (let i = 0; i < count; i++) {
    const n = succCount[i] as number;
    succs[i] = n === 0 ? NO_PREDS : new Array<number>(n);
    succCount[i] = 0;
  }
  for (let i = 0; i < count; i++) {
    for (const p of predLists[i] as number[]) {
      const at = succCount[p] as number;
      (succs[p] as number[])[at] = i;
      succCount[p] = at + 1;
    }
  }
  const keys = nodes.map((note) => note.key);
  const search = findCycle(keys, preds, succs, indegree, roots);
  if (search.hasCycle) throw new CycleError(search.cycle);

  const plan: GraphPlan = Object.freeze({ nodes, keys, preds, succs, indegree, roots, order: search.order });
  if (cacheable) cache.set(graph, { plan, snapshot });
  return plan;
}

/** The shared empty list (never written to): a root's predecessors, a leaf's successors. */
const NO_PREDS: number[] = [];

/** Checks one snapshot record from `i`: the next index, or -1 when the entry changed. */
function checkEntry(snapshot: readonly unknown[], i: number, node: unknown, list: unknown): number {
  if (node !== snapshot[i] || list !== snapshot[i + 1]) return -1;
  let at = i + 3;
  if (Array.isArray(list)) {
    const members = list as readonly unknown[];
    if (members.length !== snapshot[i + 2]) return -1;
    for (let k = 0; k < members.length; k++) if (members[k] !== snapshot[at++]) return -1;
    return at;
  }
  const members = list as ReadonlySet<unknown>;
  if (members.size !== snapshot[i + 2]) return -1;
  for (const member of members) if (member !== snapshot[at++]) return -1;
  return at;
}

function isUnchanged(graph: object, cached: CachedPlan): boolean {
  const { snapshot } = cached;
  let i = 0;
  if (graph instanceof Map) {
    // keys() + get(), not entries: no [key, value] array per entry on this per-composition path.
    const map = graph as Map<unknown, unknown>;
    for (const node of map.keys()) {
      if (i >= snapshot.length) return false;
      i = checkEntry(snapshot, i, node, map.get(node));
      if (i < 0) return false;
    }
  } else {
    const items = graph as readonly unknown[];
    for (let k = 0; k < items.length; k++) {
      const item = items[k];
      if (!Array.isArray(item) || i >= snapshot.length) return false;
      i = checkEntry(snapshot, i, item[0], item[1]);
      if (i < 0) return false;
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
