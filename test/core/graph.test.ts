import { describe, expect, it } from 'vitest';
import {
  Composition,
  CycleError,
  DAGNote,
  InvalidGraphError,
  compileGraph,
  type Graph,
} from '../../src/index.ts';

const n = (name: string, payload?: Record<string, number>): DAGNote => new DAGNote(name, payload);

function cycleOf(graph: Graph): string[] {
  try {
    new Composition(graph);
  } catch (error) {
    expect(error).toBeInstanceOf(CycleError);
    expect((error as CycleError).code).toBe('cycle');
    return (error as CycleError).cycle;
  }
  throw new Error('expected a CycleError');
}

/** Checks that each key of the cycle is an immediate predecessor of the next. */
function expectClosedCycle(cycle: string[], edges: Record<string, string[]>): void {
  expect(cycle[0]).toBe(cycle.at(-1));
  for (let i = 0; i + 1 < cycle.length; i++) expect(edges[cycle[i + 1]!]).toContain(cycle[i]);
}

describe('compileGraph', () => {
  it('accepts a Map or entries, and counts nodes that appear only as predecessors', () => {
    const [a, b, c] = [n('A'), n('B'), n('C')];
    const fromMap = compileGraph(new Map([[c, [a, b]]]));
    const fromEntries = compileGraph([[c, [a, b]]]);
    expect([...fromMap.keys].sort()).toEqual(['A', 'B', 'C']);
    expect([...fromEntries.keys].sort()).toEqual(['A', 'B', 'C']);
    expect(fromMap.roots.map((i) => fromMap.keys[i])).toEqual(['A', 'B']);
  });

  it('treats notes with equal keys as one node', () => {
    const plan = compileGraph([
      [n('B'), [n('A')]],
      [n('C'), [n('A')]],
    ]);
    expect(plan.nodes).toHaveLength(3);
  });

  it('merges repeated entries and duplicate predecessors', () => {
    const [a, b, c] = [n('A'), n('B'), n('C')];
    const plan = compileGraph([
      [c, [a, a]],
      [c, [b]],
    ]);
    const ci = plan.keys.indexOf('C');
    expect(plan.indegree[ci]).toBe(2);
  });

  it('refuses equal keys with different payloads, naming the key', () => {
    const graph = new Map([
      [n('B'), [n('A', { x: 1 })]],
      [n('A', { x: 2 }), []],
    ]);
    expect(() => new Composition(graph)).toThrow(InvalidGraphError);
    try {
      new Composition(graph);
    } catch (error) {
      expect((error as InvalidGraphError).code).toBe('conflicting_node');
      expect((error as InvalidGraphError).nodeKey).toBe('A');
      expect((error as Error).message).toContain('"A"');
    }
  });

  it('accepts equal keys with deep-equal payloads in another key order', () => {
    const one = new DAGNote('A', { x: 1, y: [1, { z: 2 }] });
    const two = new DAGNote('A', { y: [1, { z: 2 }], x: 1 });
    expect(
      () =>
        new Composition([
          [n('B'), [one]],
          [two, []],
        ]),
    ).not.toThrow();
  });

  it('reports a cycle as a closed list where each key precedes the next', () => {
    const [a, b, c, d] = [n('A'), n('B'), n('C'), n('D')];
    const cycle = cycleOf(
      new Map([
        [b, [a]],
        [c, [b]],
        [a, [c]],
        [d, [a]],
      ]),
    );
    expectClosedCycle(cycle, { B: ['A'], C: ['B'], A: ['C'], D: ['A'] });
    expect(cycle).toHaveLength(4);
  });

  it('reports a self-loop as [A, A]', () => {
    const a = n('A');
    expect(cycleOf([[a, [a]]])).toEqual(['A', 'A']);
  });

  it('finds a cycle downstream of acyclic nodes', () => {
    const [r, x, y] = [n('R'), n('X'), n('Y')];
    const cycle = cycleOf([
      [x, [r, y]],
      [y, [x]],
    ]);
    expectClosedCycle(cycle, { X: ['R', 'Y'], Y: ['X'] });
  });

  it.each([
    ['a non-iterable graph', 42, /must be a Map or an iterable/],
    ['a bad entry', [[n('A')]], /entry #0 must be a \[node, predecessors\] pair/],
    ['a non-note node', [[{ name: 'A' }, []]], /must be a DAGNote, got an object/],
    ['a non-note predecessor', [[n('A'), ['B']]], /A predecessor of "A" must be a DAGNote, got "B"/],
    ['non-iterable predecessors', [[n('A'), 5]], /predecessors of "A" must be an iterable/],
    ['string predecessors', [[n('A'), 'B']], /predecessors of "A" must be an iterable/],
  ])('refuses %s with invalid_graph', (_label, graph, message) => {
    expect(() => compileGraph(graph as Graph)).toThrow(message);
    try {
      compileGraph(graph as Graph);
    } catch (error) {
      expect((error as InvalidGraphError).code).toBe('invalid_graph');
    }
  });

  it('shares one plan between compositions of the same unchanged graph', () => {
    const graph = new Map([[n('B'), [n('A')]]]);
    expect(compileGraph(graph)).toBe(compileGraph(graph));
  });

  it('sees a graph mutated between compositions', () => {
    const [a, b, c] = [n('A'), n('B'), n('C')];
    const preds = [a];
    const graph = new Map<DAGNote, DAGNote[]>([[b, preds]]);
    const first = compileGraph(graph);
    preds.push(c);
    const second = compileGraph(graph);
    expect(second).not.toBe(first);
    expect(second.nodes).toHaveLength(3);
    graph.set(a, [b]);
    expect(() => compileGraph(graph)).toThrow(CycleError);
  });

  it('accepts one-shot iterables such as generators', () => {
    const [a, b] = [n('A'), n('B')];
    function* preds(): Generator<DAGNote> {
      yield a;
    }
    const plan = compileGraph(new Map([[b, preds()]]));
    expect(plan.nodes).toHaveLength(2);
  });
});
