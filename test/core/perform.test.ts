import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import {
  Composition,
  DAGNote,
  InvalidOptionError,
  NodeRunner,
  Perform,
  StopScheduleError,
} from '../../src/index.ts';
import { deferred, flush, type Deferred } from '../helpers/deferred.ts';
import { graphOf } from '../helpers/manual.ts';

/** A one-node composition that ends when its gate opens. */
function gated(gate: Deferred<unknown>, events?: string[], id?: number): Composition {
  return new Composition(new Map([[new DAGNote('only'), []]]), {
    configureNodeRunner: () =>
      new NodeRunner({
        executor: () => {
          events?.push(`start:${id}`);
          return gate.promise;
        },
      }),
  });
}

describe('Perform options', () => {
  it('defaults to 100 / 50, and lowWater to half of highWater', () => {
    expect(new Perform()).toMatchObject({ highWater: 100, lowWater: 50 });
    expect(new Perform({ highWater: 10 }).lowWater).toBe(5);
    expect(new Perform({ highWater: 1 }).lowWater).toBe(1);
    expect(new Perform({ highWater: 3 }).lowWater).toBe(1);
  });

  it('refuses marks outside 1 <= lowWater <= highWater, naming the option', () => {
    expect(() => new Perform({ highWater: 0 })).toThrow(InvalidOptionError);
    expect(() => new Perform({ highWater: 10, lowWater: 11 })).toThrow(
      /lowWater.*from 1 to highWater \(10\).*11/,
    );
    expect(() => new Perform({ highWater: 10, lowWater: 0 })).toThrow(/lowWater/);
    expect(() => new Perform({ highWater: 2.5 })).toThrow(/highWater/);
  });

  it('refuses something that is not a Composition', () => {
    expect(() => new Perform().add({} as unknown as Composition)).toThrow(/composition.*a Composition/);
  });
});

describe('Perform water marks', () => {
  it('queues at the high mark and refills to it, FIFO, only once running falls below the low mark', async () => {
    const perform = new Perform({ highWater: 4, lowWater: 2 });
    const events: string[] = [];
    const gates = Array.from({ length: 10 }, () => deferred<unknown>());
    for (let i = 0; i < 10; i++) await perform.add(gated(gates[i]!, events, i));
    await flush();
    expect(perform.running).toBe(4);
    expect(perform.queued).toBe(6);
    expect(events).toEqual(['start:0', 'start:1', 'start:2', 'start:3']);

    gates[0]!.resolve(0); // running 3: not below 2
    await flush();
    expect(perform.running).toBe(3);
    expect(perform.queued).toBe(6);
    gates[1]!.resolve(1); // running 2: not below 2
    await flush();
    expect(perform.running).toBe(2);
    expect(perform.queued).toBe(6);

    gates[2]!.resolve(2); // running 1 < 2: refill to 4
    await flush();
    expect(perform.running).toBe(4);
    expect(perform.queued).toBe(3);
    expect(events.slice(4)).toEqual(['start:4', 'start:5', 'start:6']);

    for (const gate of gates) gate.resolve(undefined);
    await perform.onIdle();
    expect(perform.peakRunning).toBe(4);
    expect(perform.completed).toBe(10);
    expect(events.filter((e) => e.startsWith('start')).map((e) => Number(e.slice(6)))).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
    ]);
  });

  it('starts new compositions at once below the high mark when it has not been reached', async () => {
    const perform = new Perform({ highWater: 3, lowWater: 1 });
    const gates = [deferred<unknown>(), deferred<unknown>(), deferred<unknown>()];
    await perform.add(gated(gates[0]!));
    await perform.add(gated(gates[1]!));
    expect(perform.running).toBe(2);
    gates[0]!.resolve(0);
    await flush();
    await perform.add(gated(gates[2]!));
    expect(perform.running).toBe(2);
    expect(perform.queued).toBe(0);
    gates[1]!.resolve(1);
    gates[2]!.resolve(2);
    await perform.onIdle();
  });

  it('reaches exactly highWater under sustained load, and never starts one above lowWater after a drop', async () => {
    const perform = new Perform({ highWater: 20, lowWater: 5 });
    const gates = Array.from({ length: 200 }, () => deferred<unknown>());
    let starts = 0;
    let startsWhileAboveLow = 0;
    const comps = gates.map(
      (gate) =>
        new Composition(graphOf({ A: [] }), {
          configureNodeRunner: () =>
            new NodeRunner({
              executor: () => {
                starts += 1;
                return gate.promise;
              },
            }),
        }),
    );
    for (const c of comps) await perform.add(c);
    await flush();
    let lastRunning = perform.running;
    let open = 0;
    while (perform.running > 0 || perform.queued > 0) {
      const before = starts;
      const runningBefore = perform.running;
      gates[open++]!.resolve(undefined);
      await flush();
      // A refill only ever happens when the count fell below lowWater.
      if (starts > before) {
        expect(runningBefore - 1).toBeLessThan(5);
        expect(perform.running).toBe(Math.min(20, runningBefore - 1 + (starts - before)));
      } else if (perform.queued > 0) {
        startsWhileAboveLow += perform.running >= 5 ? 0 : 1;
      }
      lastRunning = perform.running;
    }
    expect(lastRunning).toBe(0);
    expect(startsWhileAboveLow).toBe(0);
    expect(perform.peakRunning).toBe(20);
    expect(starts).toBe(200);
  });

  it('run() resolves with the status, and counts completed, failed, cancelled', async () => {
    const perform = new Perform({ highWater: 2 });
    const ok = new Composition(graphOf({ A: [] }), {
      configureNodeRunner: () => new NodeRunner({ executor: () => 1 }),
    });
    const bad = new Composition(graphOf({ A: [] }), {
      configureNodeRunner: () =>
        new NodeRunner({
          executor: () => {
            throw new Error('x');
          },
        }),
    });
    const stopped = new Composition(graphOf({ A: [] }), {
      configureNodeRunner: () =>
        new NodeRunner({
          executor: () => {
            throw new StopScheduleError();
          },
        }),
    });
    await expect(Promise.all([perform.run(ok), perform.run(bad), perform.run(stopped)])).resolves.toEqual([
      'completed',
      'error',
      'cancelled',
    ]);
    expect(perform).toMatchObject({
      completed: 1,
      failed: 1,
      cancelled: 1,
      started: 3,
      running: 0,
      queued: 0,
    });
  });

  it('lets a composition that settles paused leave, and resumes it when re-added', async () => {
    const perform = new Perform({ highWater: 1 });
    const gate = deferred<unknown>();
    const c = new Composition(graphOf({ B: ['A'] }), {
      configureNodeRunner: (node) =>
        new NodeRunner({ executor: () => (node.name === 'A' ? gate.promise : 'b') }),
    });
    const first = perform.run(c);
    await flush();
    c.pause();
    gate.resolve('a');
    await expect(first).resolves.toBe('paused');
    expect(perform.running).toBe(0);
    expect(perform.paused).toBe(1);
    await expect(perform.run(c)).resolves.toBe('completed');
    expect(c.results.get('B')).toBe('b');
  });

  it('onIdle() resolves at once when idle, and after the last composition otherwise', async () => {
    const perform = new Perform();
    await perform.onIdle();
    const gate = deferred<unknown>();
    await perform.add(gated(gate));
    let idle = false;
    const waiting = perform.onIdle().then(() => (idle = true));
    await flush();
    expect(idle).toBe(false);
    gate.resolve(undefined);
    await waiting;
    expect(idle).toBe(true);
  });

  it('runs 20,000 compositions sharing one graph without leaking listeners or compositions', async () => {
    const graph = graphOf({ D: ['B', 'C'], C: ['A'], B: ['A'] });
    const controller = new AbortController();
    const perform = new Perform({ highWater: 100, lowWater: 50 });
    const registry = new FinalizationRegistry<number>(() => {
      collected += 1;
    });
    let collected = 0;
    const total = 20_000;
    for (let i = 0; i < total; i++) {
      const c = new Composition(graph, {
        signal: controller.signal,
        configureNodeRunner: () =>
          new NodeRunner({
            executor: async (_p, ctx) => {
              await Promise.resolve();
              return ctx.signal.aborted ? -1 : 1;
            },
          }),
      });
      registry.register(c, i);
      void perform.add(c);
    }
    expect(perform.queued).toBe(total - 100);
    await perform.onIdle();
    expect(perform.completed).toBe(total);
    expect(perform.peakRunning).toBe(100);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc !== undefined) {
      for (let i = 0; i < 10 && collected < total * 0.99; i++) {
        gc();
        await flush(1);
      }
      expect(collected).toBeGreaterThanOrEqual(total * 0.99);
    } else {
      // Without --expose-gc, check the retained structure instead: nothing queued or running is held.
      expect(perform.queued).toBe(0);
      expect(perform.running).toBe(0);
    }
  });
});
