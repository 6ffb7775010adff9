import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  CancelledError,
  Composition,
  ContinueAfterError,
  DAGNote,
  InvalidOptionError,
  NodeError,
  NodeRunner,
  NodeTimeoutError,
  StopScheduleError,
  TryAgainError,
  type CompositionStatus,
  type NodeDoneStatus,
} from '../../src/index.ts';
import { ManualComposition, graphOf, settle } from '../helpers/manual.ts';

const diamond = (): Map<DAGNote, DAGNote[]> => graphOf({ D: ['B', 'C'], C: ['A'], B: ['A'] });

afterEach(() => {
  vi.useRealTimers();
});

describe('Composition scheduling', () => {
  it('runs a diamond in topological order, passing predecessor results as inputs', async () => {
    const m = new ManualComposition(diamond());
    const done = m.composition.start();
    await settle();
    expect(m.inFlight).toEqual(['A']);
    await m.complete('A', 1);
    expect(m.inFlight.sort()).toEqual(['B', 'C']);
    expect(m.open('B').inputs).toEqual({ A: 1 });
    await m.complete('B', 2);
    expect(m.inFlight).toEqual(['C']);
    await m.complete('C', 3);
    expect(m.open('D').inputs).toEqual({ B: 2, C: 3 });
    await m.complete('D', 4);
    await expect(done).resolves.toBe('completed');
    expect(m.composition.completed).toBe(true);
    expect(Object.fromEntries(m.composition.results)).toEqual({ A: 1, B: 2, C: 3, D: 4 });
  });

  it('starts every root at once', async () => {
    const m = new ManualComposition(graphOf({ C: ['A', 'B'], E: ['D'] }));
    void m.composition.start();
    await settle();
    expect(m.inFlight.sort()).toEqual(['A', 'B', 'D']);
  });

  it('never has more than `concurrency` nodes in flight', async () => {
    const spec: Record<string, string[]> = { Z: [] };
    for (let i = 0; i < 10; i++) spec[`N${i}`] = [];
    const m = new ManualComposition(graphOf(spec), { concurrency: 3 });
    const done = m.composition.start();
    await settle();
    while (m.inFlight.length > 0) {
      expect(m.inFlight.length).toBeLessThanOrEqual(3);
      await m.complete(m.inFlight[0]!);
    }
    await expect(done).resolves.toBe('completed');
    expect(m.peakInFlight).toBe(3);
    expect(m.started).toHaveLength(11);
  });

  it('completes an empty graph at once', async () => {
    const onDone = vi.fn();
    await expect(new Composition(new Map(), { onDone }).start()).resolves.toBe('completed');
    expect(onDone).toHaveBeenCalledOnce();
  });

  it('keeps results per composition when many share one graph', async () => {
    const graph = diamond();
    const compositions = Array.from(
      { length: 50 },
      (_, i) =>
        new Composition(graph, {
          configureNodeRunner: (node) =>
            new NodeRunner({
              executor: async (_p, ctx) => {
                await Promise.resolve();
                const upstream = Object.values(ctx.inputs) as number[];
                return node.name === 'A' ? i : upstream.reduce((a, b) => a + b, 0);
              },
            }),
        }),
    );
    await Promise.all(compositions.map((c) => c.start()));
    compositions.forEach((c, i) => {
      expect(c.results.get('D')).toBe(2 * i);
    });
  });

  it('keys inputs and results by node key for non-single-instance notes', async () => {
    const a = new DAGNote('A', {}, { singleInstance: false });
    const b = new DAGNote('B', {}, { singleInstance: false });
    let seen: Record<string, unknown> = {};
    const composition = new Composition(new Map([[b, [a]]]), {
      configureNodeRunner: (node) =>
        new NodeRunner({
          executor: (_p, ctx) => {
            if (node === b) seen = ctx.inputs;
            return node.name;
          },
        }),
    });
    await composition.start();
    expect(seen).toEqual({ [a.key]: 'A' });
    expect([...composition.results.keys()].sort()).toEqual([a.key, b.key].sort());
  });

  it('runs a chain of 50,000 synchronous executors without growing the stack', async () => {
    const notes = Array.from({ length: 50_000 }, (_, i) => new DAGNote(`n${i}`));
    const graph = new Map(notes.map((note, i) => [note, i === 0 ? [] : [notes[i - 1]!]] as const));
    const composition = new Composition(graph, {
      configureNodeRunner: () => new NodeRunner({ executor: (_p, ctx) => Object.keys(ctx.inputs).length }),
    });
    await expect(composition.start()).resolves.toBe('completed');
    expect(composition.results.size).toBe(50_000);
    expect(composition.results.get('n49999')).toBe(1);
  });

  it('accepts typed runners from configureNodeRunner', async () => {
    const work = (ms: number, context: { attempt: number }): string => `${ms}:${context.attempt}`;
    const composition = new Composition(graphOf({ A: [] }), {
      // NodeRunner<number, string> is assignable to the NodeRunner the option returns.
      configureNodeRunner: () => new NodeRunner({ executor: work, params: 5 }),
    });
    await composition.start();
    expect(composition.results.get('A')).toBe('5:1');
  });

  it('validates its options', () => {
    expect(() => new Composition(new Map(), { concurrency: 0 })).toThrow(InvalidOptionError);
    expect(() => new Composition(new Map(), { concurrency: 1.5 })).toThrow(/concurrency.*1\.5/);
    expect(() => new Composition(new Map(), { maxTries: 0 })).toThrow(/maxTries/);
    expect(() => new Composition(new Map(), { onDone: 'x' as never })).toThrow(/onDone/);
    expect(() => new Composition(new Map(), { signal: {} as never })).toThrow(/signal/);
  });
});

describe('Composition runners', () => {
  it('fails with a clear error when no runner can be made for a node', async () => {
    const composition = new Composition(graphOf({ B: ['A'] }));
    await expect(composition.start()).resolves.toBe('error');
    expect(composition.error).toBeInstanceOf(NodeError);
    expect((composition.error as NodeError).nodeKey).toBe('A');
    expect((composition.error as Error).message).toMatch(/No runner for node "A".*configureNodeRunner/);
  });

  it('uses an overridden configureNodeRunner in a subclass', async () => {
    class Doubling extends Composition {
      override configureNodeRunner(node: DAGNote): NodeRunner {
        return new NodeRunner({ executor: () => `${node.name}${node.name}` });
      }
    }
    const composition = new Doubling(graphOf({ B: ['A'] }));
    await composition.start();
    expect(composition.results.get('B')).toBe('BB');
  });

  it('uses a note that brings its own runner', async () => {
    class Shout extends DAGNote<{ text: string }> {
      createRunner(): NodeRunner {
        return new NodeRunner({ executor: () => this.payload.text.toUpperCase() });
      }
    }
    const composition = new Composition([[new Shout('s', { text: 'hi' }), []]]);
    await composition.start();
    expect(composition.results.get('s')).toBe('HI');
  });

  it('fails naming the node when configureNodeRunner returns something else', async () => {
    const composition = new Composition(graphOf({ A: [] }), {
      configureNodeRunner: () => ({}) as unknown as NodeRunner,
    });
    await composition.start();
    expect((composition.error as Error).message).toMatch(/returned an object for node "A", not a NodeRunner/);
  });
});

describe('Composition control errors', () => {
  it('TryAgainError re-runs the node through retryTask(), with lineage in the trace', async () => {
    const nodeDone: [string, NodeDoneStatus][] = [];
    const composition = new Composition(graphOf({ B: ['A'] }), {
      onNodeDone: (node, status) => nodeDone.push([node.key, status]),
      configureNodeRunner: (node) =>
        new NodeRunner({
          executor: (_p, ctx) => {
            if (node.name === 'A' && ctx.attempt < 3) throw new TryAgainError('busy');
            return ctx.attempt;
          },
        }),
    });
    await expect(composition.start()).resolves.toBe('completed');
    expect(composition.results.get('A')).toBe(3);
    expect(nodeDone).toEqual([
      ['A', 'retrying'],
      ['A', 'retrying'],
      ['A', 'completed'],
      ['B', 'completed'],
    ]);
    const trace = composition.trace();
    expect(trace.map((r) => [r.key, r.status, r.attempt])).toEqual([
      ['A', 'retrying', 1],
      ['A', 'retrying', 2],
      ['A', 'completed', 3],
      ['B', 'completed', 1],
    ]);
    expect(trace[1]!.parentId).toBe(trace[0]!.runnerId);
    expect(trace[2]!.parentId).toBe(trace[1]!.runnerId);
    expect(trace[0]!.parentId).toBeUndefined();
    expect(trace[0]!.error).toEqual({ name: 'TryAgainError', message: 'busy', code: 'try_again' });
  });

  it('TryAgainError past maxTries is an unhandled error', async () => {
    const composition = new Composition(graphOf({ A: [] }), {
      maxTries: 2,
      configureNodeRunner: () =>
        new NodeRunner({
          executor: () => {
            throw new TryAgainError('still busy');
          },
        }),
    });
    await expect(composition.start()).resolves.toBe('error');
    const error = composition.error as NodeError;
    expect(error).toBeInstanceOf(NodeError);
    expect(error.nodeKey).toBe('A');
    expect(error.cause).toBeInstanceOf(TryAgainError);
    expect(composition.trace().map((r) => r.status)).toEqual(['retrying', 'error']);
  });

  it('waits delayMs before a retry', async () => {
    vi.useFakeTimers();
    let calls = 0;
    const composition = new Composition(graphOf({ A: [] }), {
      configureNodeRunner: () =>
        new NodeRunner({
          executor: () => {
            calls += 1;
            if (calls === 1) throw new TryAgainError('later', { delayMs: 100 });
            return 'ok';
          },
        }),
    });
    const done = composition.start();
    await vi.advanceTimersByTimeAsync(99);
    expect(calls).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    await expect(done).resolves.toBe('completed');
    expect(calls).toBe(2);
  });

  it('does not start a retry while paused; it runs after the resume', async () => {
    vi.useFakeTimers();
    let calls = 0;
    const composition = new Composition(graphOf({ A: [] }), {
      configureNodeRunner: () =>
        new NodeRunner({
          executor: () => {
            calls += 1;
            if (calls === 1) throw new TryAgainError('later', { delayMs: 10 });
            return 'ok';
          },
        }),
    });
    const first = composition.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(composition.pause()).toBe(true);
    await expect(first).resolves.toBe('paused');
    await vi.advanceTimersByTimeAsync(50);
    expect(calls).toBe(1);
    await expect(composition.start()).resolves.toBe('completed');
    expect(calls).toBe(2);
  });

  it('drops a pending retry when the composition stops, reporting the node cancelled', async () => {
    vi.useFakeTimers();
    const statuses: NodeDoneStatus[] = [];
    const composition = new Composition(graphOf({ A: [] }), {
      onNodeDone: (_n, status) => statuses.push(status),
      configureNodeRunner: () =>
        new NodeRunner({
          executor: () => {
            throw new TryAgainError('later', { delayMs: 1000 });
          },
        }),
    });
    const done = composition.start();
    await vi.advanceTimersByTimeAsync(0);
    composition.stop();
    await expect(done).resolves.toBe('cancelled');
    expect(statuses).toEqual(['retrying', 'cancelled']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('ContinueAfterError marks the node completed_error and successors run without its input', async () => {
    const statuses: [string, NodeDoneStatus][] = [];
    const composition = new Composition(graphOf({ C: ['A', 'B'] }), {
      onNodeDone: (node, status) => statuses.push([node.key, status]),
      configureNodeRunner: (node) =>
        new NodeRunner({
          executor: (_p, ctx) => {
            if (node.name === 'A') throw new ContinueAfterError('no data');
            return node.name === 'C' ? ctx.inputs : node.name;
          },
        }),
    });
    await expect(composition.start()).resolves.toBe('completed');
    expect(composition.results.has('A')).toBe(false);
    expect(composition.results.get('C')).toEqual({ B: 'B' });
    expect(statuses).toContainEqual(['A', 'completed_error']);
    expect(composition.trace().find((r) => r.key === 'A')?.error).toMatchObject({
      message: 'no data',
      code: 'continue_after',
    });
  });

  it('StopScheduleError cancels the composition: no new node starts, running ones finish', async () => {
    const statuses: [string, NodeDoneStatus][] = [];
    const onDone = vi.fn();
    const composition = new ManualComposition(graphOf({ C: ['A'], D: ['B'] }), {
      onDone,
      onNodeDone: (node, status) => statuses.push([node.key, status]),
    });
    const done = composition.composition.start();
    await settle();
    const stop = new StopScheduleError('enough');
    await composition.fail('A', stop);
    expect(composition.composition.status).toBe('running');
    expect(onDone).not.toHaveBeenCalled();
    await composition.complete('B');
    await expect(done).resolves.toBe('cancelled');
    expect(composition.started.sort()).toEqual(['A', 'B']);
    expect(composition.composition.error).toBe(stop);
    expect(statuses).toEqual([
      ['A', 'cancelled'],
      ['B', 'completed'],
    ]);
    expect(onDone).toHaveBeenCalledExactlyOnceWith(
      composition.composition,
      'cancelled',
      stop,
      expect.any(Number),
    );
  });

  it('an unhandled error fails the composition with a NodeError; running nodes finish; the first failure wins', async () => {
    const m = new ManualComposition(graphOf({ C: ['A'], D: ['B'], E: [] }));
    const done = m.composition.start();
    await settle();
    const first = new Error('disk full');
    await m.fail('A', first);
    expect(m.inFlight.sort()).toEqual(['B', 'E']);
    await m.fail('B', new Error('second'));
    await m.complete('E');
    await expect(done).resolves.toBe('error');
    const error = m.composition.error as NodeError;
    expect(error).toBeInstanceOf(NodeError);
    expect(error.code).toBe('node_failed');
    expect(error.nodeKey).toBe('A');
    expect(error.message).toBe('Node "A" failed: disk full');
    expect(error.cause).toBe(first);
    expect(m.started.sort()).toEqual(['A', 'B', 'E']);
    expect(m.composition.results.get('E')).toBe('E');
  });

  it('a node timeout fails the composition with status timed_out for the node', async () => {
    vi.useFakeTimers();
    const statuses: NodeDoneStatus[] = [];
    const composition = new Composition(graphOf({ A: [] }), {
      onNodeDone: (_n, s) => statuses.push(s),
      configureNodeRunner: () =>
        new NodeRunner({ timeoutMs: 20, executor: () => new Promise(() => undefined) }),
    });
    const done = composition.start();
    await vi.advanceTimersByTimeAsync(20);
    await expect(done).resolves.toBe('error');
    expect(statuses).toEqual(['timed_out']);
    expect((composition.error as NodeError).cause).toBeInstanceOf(NodeTimeoutError);
  });

  it('a runner cancelled on its own fails the composition', async () => {
    let runner: NodeRunner | undefined;
    const composition = new Composition(graphOf({ A: [] }), {
      configureNodeRunner: () => (runner = new NodeRunner({ executor: () => new Promise(() => undefined) })),
    });
    const done = composition.start();
    await settle();
    runner!.cancel('by hand');
    await expect(done).resolves.toBe('error');
    expect((composition.error as NodeError).cause).toBeInstanceOf(CancelledError);
    expect(composition.trace()[0]!.status).toBe('cancelled');
  });

  it('a throwing onNodeDone hook fails the composition, naming the node', async () => {
    const composition = new Composition(graphOf({ B: ['A'] }), {
      onNodeDone: () => {
        throw new Error('hook bug');
      },
      configureNodeRunner: () => new NodeRunner({ executor: () => 1 }),
    });
    await expect(composition.start()).resolves.toBe('error');
    expect((composition.error as Error).message).toBe('Node "A" failed: hook bug');
  });
});

describe('Composition lifecycle', () => {
  it('pause() lets running nodes finish, start() resumes', async () => {
    const m = new ManualComposition(graphOf({ B: ['A'], C: ['B'] }));
    const first = m.composition.start();
    await settle();
    expect(m.composition.pause()).toBe(true);
    expect(m.composition.status).toBe('paused');
    expect(m.composition.pause()).toBe(false);
    await m.complete('A');
    await expect(first).resolves.toBe('paused');
    expect(m.inFlight).toEqual([]);
    const second = m.composition.start();
    await settle();
    expect(m.inFlight).toEqual(['B']);
    await m.complete('B');
    await m.complete('C');
    await expect(second).resolves.toBe('completed');
  });

  it('start() while paused with nodes still running resumes the same start', async () => {
    const m = new ManualComposition(graphOf({ B: ['A'] }));
    const first = m.composition.start();
    await settle();
    m.composition.pause();
    const again = m.composition.start();
    expect(again).toBe(first);
    await m.complete('A');
    await m.complete('B');
    await expect(first).resolves.toBe('completed');
  });

  it('start() during a run returns the same promise; after the end it resolves the final status at once', async () => {
    const m = new ManualComposition(graphOf({ A: [] }));
    const first = m.composition.start();
    expect(m.composition.start()).toBe(first);
    await settle();
    await m.complete('A');
    await first;
    await expect(m.composition.start()).resolves.toBe('completed');
    expect(m.started).toEqual(['A']);
  });

  it('stop() on a running composition lets running nodes finish and starts no new ones', async () => {
    const m = new ManualComposition(graphOf({ B: ['A'] }));
    const done = m.composition.start();
    await settle();
    expect(m.composition.stop()).toBe(true);
    await m.complete('A');
    await expect(done).resolves.toBe('cancelled');
    expect(m.started).toEqual(['A']);
    expect(m.composition.results.get('A')).toBe('A');
    expect(m.composition.stop()).toBe(false);
  });

  it('stop() on a new composition ends it cancelled at once, firing onDone', async () => {
    const onDone = vi.fn();
    const m = new ManualComposition(graphOf({ A: [] }), { onDone });
    expect(m.composition.stop()).toBe(true);
    expect(m.composition.status).toBe('cancelled');
    expect(onDone).toHaveBeenCalledExactlyOnceWith(m.composition, 'cancelled', undefined, 0);
    await expect(m.composition.start()).resolves.toBe('cancelled');
    expect(m.started).toEqual([]);
  });

  it('stop() on a paused composition ends it at once', async () => {
    const onDone = vi.fn();
    const m = new ManualComposition(graphOf({ B: ['A'] }), { onDone });
    const first = m.composition.start();
    await settle();
    m.composition.pause();
    await m.complete('A');
    await expect(first).resolves.toBe('paused');
    m.composition.stop();
    expect(m.composition.status).toBe('cancelled');
    expect(onDone).toHaveBeenCalledOnce();
  });

  it('aborting the signal cancels running runners and ends the composition cancelled', async () => {
    const controller = new AbortController();
    const statuses: [string, NodeDoneStatus][] = [];
    const m = new ManualComposition(graphOf({ C: ['A', 'B'] }), {
      signal: controller.signal,
      onNodeDone: (node, status) => statuses.push([node.key, status]),
    });
    const done = m.composition.start();
    await settle();
    const signals = [m.open('A').signal, m.open('B').signal];
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    controller.abort('user left');
    await expect(done).resolves.toBe('cancelled');
    expect(signals.every((s) => s.aborted)).toBe(true);
    expect(statuses.map(([, s]) => s)).toEqual(['cancelled', 'cancelled']);
    expect(m.composition.error).toBeInstanceOf(CancelledError);
    expect((m.composition.error as CancelledError).cause).toBe('user left');
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(m.started.sort()).toEqual(['A', 'B']);
  });

  it('an already aborted signal ends the composition cancelled at once', async () => {
    const onDone = vi.fn();
    const m = new ManualComposition(graphOf({ A: [] }), { signal: AbortSignal.abort('gone'), onDone });
    await expect(m.composition.start()).resolves.toBe('cancelled');
    expect(onDone).toHaveBeenCalledOnce();
    expect(m.started).toEqual([]);
  });

  it('removes its abort listener when it completes normally', async () => {
    const controller = new AbortController();
    const composition = new Composition(graphOf({ A: [] }), {
      signal: controller.signal,
      configureNodeRunner: () => new NodeRunner({ executor: () => 1 }),
    });
    await composition.start();
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('fires onDone exactly once, before start() settles, with the elapsed time', async () => {
    const order: string[] = [];
    let elapsed = -1;
    const composition = new Composition(diamond(), {
      onDone: (_c, status: CompositionStatus, error, ms) => {
        order.push(`onDone:${status}:${String(error)}`);
        elapsed = ms;
      },
      configureNodeRunner: () => new NodeRunner({ executor: () => Promise.resolve(1) }),
    });
    const done = composition.start().then((status) => order.push(`start:${status}`));
    await done;
    await composition.start();
    composition.stop();
    expect(order).toEqual(['onDone:completed:undefined', 'start:completed']);
    expect(elapsed).toBeGreaterThanOrEqual(0);
    expect(composition.elapsedMs).toBe(elapsed);
  });

  it('rejects start() when onDone throws (misuse), after reaching its final status', async () => {
    const composition = new Composition(graphOf({ A: [] }), {
      onDone: () => {
        throw new Error('onDone bug');
      },
      configureNodeRunner: () => new NodeRunner({ executor: () => 1 }),
    });
    await expect(composition.start()).rejects.toThrow('onDone bug');
    expect(composition.status).toBe('completed');
  });

  it('trace() gives one JSON record per node end, in end order', async () => {
    const m = new ManualComposition(graphOf({ C: ['A', 'B'] }));
    const done = m.composition.start();
    await settle();
    await m.complete('B');
    await m.complete('A');
    await m.complete('C');
    await done;
    const trace = m.composition.trace();
    expect(trace.map((r) => r.key)).toEqual(['B', 'A', 'C']);
    const record = trace[0]!;
    expect(record).toMatchObject({ key: 'B', name: 'B', status: 'completed', attempt: 1 });
    expect(record.runnerId).toMatch(/^r-/);
    expect(record.startedAt).toBeTypeOf('number');
    expect(record.endedAt! >= record.startedAt!).toBe(true);
    expect(JSON.parse(JSON.stringify(trace))).toEqual(trace);
  });
});

describe('Composition inputs', () => {
  it('are a null-prototype record: only predecessors are keys, and a "__proto__" key in an output stays data', async () => {
    const seen: Record<string, unknown>[] = [];
    const composition = new Composition(graphOf({ B: ['A'] }), {
      configureNodeRunner: (node) =>
        new NodeRunner({
          executor: (_params, context) => {
            if (node.name === 'B') seen.push(context.inputs);
            return node.name === 'A' ? (JSON.parse('{"__proto__":{"isAdmin":true}}') as unknown) : 'b';
          },
        }),
    });
    expect(await composition.start()).toBe('completed');
    const inputs = seen[0] as Record<string, unknown>;
    expect(Object.getPrototypeOf(inputs)).toBeNull();
    expect(Object.keys(inputs)).toEqual(['A']);
    expect('toString' in inputs).toBe(false);
    expect('constructor' in inputs).toBe(false);
    expect(inputs['isAdmin']).toBeUndefined();
    const a = inputs['A'] as Record<string, unknown>;
    expect(a['isAdmin']).toBeUndefined();
    expect(JSON.stringify(inputs)).toBe('{"A":{"__proto__":{"isAdmin":true}}}');
  });
});
