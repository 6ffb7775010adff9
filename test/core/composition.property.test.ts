import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Composition, DAGNote, NodeRunner } from '../../src/index.ts';

/** A random DAG: edges only go from a lower to a higher index, so it is acyclic by construction. */
const dagArbitrary = fc.integer({ min: 1, max: 40 }).chain((size) =>
  fc.record({
    size: fc.constant(size),
    edges: fc.array(fc.tuple(fc.nat({ max: size - 1 }), fc.nat({ max: size - 1 })), { maxLength: size * 3 }),
    delays: fc.array(fc.nat({ max: 3 }), { minLength: size, maxLength: size }),
    concurrency: fc.oneof(fc.integer({ min: 1, max: 6 }), fc.constant(Infinity)),
    shuffle: fc.boolean(),
  }),
);

async function pause(ticks: number): Promise<void> {
  for (let i = 0; i < ticks; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

describe('Composition on random DAGs', () => {
  it('runs each node exactly once, never before its predecessors, within the concurrency cap', async () => {
    await fc.assert(
      fc.asyncProperty(dagArbitrary, async ({ size, edges, delays, concurrency, shuffle }) => {
        const notes = Array.from({ length: size }, (_, i) => new DAGNote(`n${i}`));
        const preds = notes.map(() => new Set<number>());
        for (const [a, b] of edges) if (a !== b) preds[Math.max(a, b)]!.add(Math.min(a, b));
        const entries = notes.map((note, i) => [note, [...preds[i]!].map((p) => notes[p]!)] as const);
        if (shuffle) entries.reverse();

        const starts: number[] = [];
        const ended = new Set<number>();
        let inFlight = 0;
        let peak = 0;
        const composition = new Composition(entries, {
          concurrency,
          configureNodeRunner: (node) => {
            const index = Number(node.name.slice(1));
            return new NodeRunner({
              executor: async (_p, ctx) => {
                for (const p of preds[index]!) expect(ended.has(p)).toBe(true);
                expect(Object.keys(ctx.inputs).sort()).toEqual([...preds[index]!].map((p) => `n${p}`).sort());
                starts.push(index);
                inFlight += 1;
                peak = Math.max(peak, inFlight);
                await pause(delays[index]!);
                inFlight -= 1;
                ended.add(index);
                return index;
              },
            });
          },
        });
        await expect(composition.start()).resolves.toBe('completed');
        expect([...starts].sort((a, b) => a - b)).toEqual(notes.map((_, i) => i));
        expect(peak).toBeLessThanOrEqual(concurrency);
        expect(composition.results.size).toBe(size);
        expect(composition.trace()).toHaveLength(size);
      }),
      { numRuns: 150 },
    );
  });
});
