import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  CancelledError,
  InvalidOptionError,
  NodeRunner,
  NodeTimeoutError,
  RunnerStateError,
  type RunContext,
  type RunnerStatus,
} from '../../src/index.ts';
import { deferred } from '../helpers/deferred.ts';

afterEach(() => {
  vi.useRealTimers();
});

describe('NodeRunner', () => {
  it('runs its executor once with params and context, and records the result', async () => {
    const seen: [number, RunContext][] = [];
    const runner = new NodeRunner<number, number>({
      executor: (n, context) => {
        seen.push([n, context]);
        return n * 2;
      },
      params: 21,
    });
    expect(runner.status).toBe('new');
    await expect(runner.execute({ inputs: { up: 1 } })).resolves.toBe(42);
    expect(runner.status).toBe('completed');
    expect(runner.done).toBe(true);
    expect(runner.result).toBe(42);
    expect(seen).toHaveLength(1);
    expect(seen[0]![0]).toBe(21);
    expect(seen[0]![1].inputs).toEqual({ up: 1 });
    expect(seen[0]![1].attempt).toBe(1);
    expect(seen[0]![1].signal).toBeInstanceOf(AbortSignal);
    expect(runner.startedAt).toBeTypeOf('number');
    expect(runner.endedAt! >= runner.startedAt!).toBe(true);
  });

  it('goes new → starting → running → completed, reported to onStatus', async () => {
    const transitions: string[] = [];
    const runner = new NodeRunner({
      executor: () => Promise.resolve('ok'),
      onStatus: (_r, from: RunnerStatus, to: RunnerStatus) => transitions.push(`${from}>${to}`),
    });
    await runner.execute();
    expect(transitions).toEqual(['new>starting', 'starting>running', 'running>completed']);
  });

  it('rejects a second execute() and tells to use retryTask()', async () => {
    const runner = new NodeRunner({ executor: () => 1 });
    await runner.execute();
    await expect(runner.execute()).rejects.toThrow(RunnerStateError);
    await expect(runner.execute()).rejects.toThrow(/runs once.*retryTask\(\)/);
  });

  it('records a thrown error, sync or async', async () => {
    const boom = new Error('boom');
    const sync = new NodeRunner({
      executor: () => {
        throw boom;
      },
    });
    await expect(sync.execute()).rejects.toBe(boom);
    expect(sync.status).toBe('error');
    expect(sync.error).toBe(boom);
    const async = new NodeRunner({ executor: () => Promise.reject(boom) });
    await expect(async.execute()).rejects.toBe(boom);
    expect(async.status).toBe('error');
  });

  it('prepare() and run() set params and executor only before the start', async () => {
    const runner = new NodeRunner<string, string>().prepare('x').run((p) => p.toUpperCase());
    await expect(runner.execute()).resolves.toBe('X');
    expect(() => runner.prepare('y')).toThrow(RunnerStateError);
    expect(() => runner.run(() => 'z')).toThrow(/after it started/);
  });

  it('rejects execute() without an executor, and stays new', async () => {
    const runner = new NodeRunner();
    await expect(runner.execute()).rejects.toThrow(/has no executor/);
    expect(runner.status).toBe('new');
  });

  it('refuses a bad timeoutMs with the option name and value', () => {
    expect(() => new NodeRunner({ timeoutMs: 0 })).toThrow(InvalidOptionError);
    expect(() => new NodeRunner({ timeoutMs: -1 })).toThrow(/timeoutMs.*-1/);
    expect(() => new NodeRunner({ timeoutMs: Number.NaN })).toThrow(/timeoutMs/);
  });

  it('cancel() aborts the signal and rejects at once, without waiting for the executor', async () => {
    const never = deferred<string>();
    let signal: AbortSignal | undefined;
    const runner = new NodeRunner({
      executor: (_p, context) => {
        signal = context.signal;
        return never.promise;
      },
    });
    const execution = runner.execute();
    runner.cancel('user asked');
    await expect(execution).rejects.toBeInstanceOf(CancelledError);
    await expect(execution).rejects.toMatchObject({ code: 'cancelled', cause: 'user asked' });
    expect(runner.status).toBe('cancelled');
    expect(signal?.aborted).toBe(true);
    never.resolve('late');
    await Promise.resolve();
    expect(runner.status).toBe('cancelled');
    expect(runner.result).toBeUndefined();
  });

  it('an executor that reads the signal only after cancel() still sees it aborted', async () => {
    const gate = deferred();
    let aborted: boolean | undefined;
    const runner = new NodeRunner({
      executor: async (_p, context) => {
        await gate.promise;
        aborted = context.signal.aborted;
      },
    });
    const execution = runner.execute();
    runner.cancel();
    await expect(execution).rejects.toThrow(CancelledError);
    gate.resolve();
    await new Promise((resolve) => setImmediate(resolve));
    expect(aborted).toBe(true);
  });

  it('cancel() before execute() makes the runner cancelled and execute() reject', async () => {
    const executor = vi.fn(() => 1);
    const runner = new NodeRunner({ executor });
    runner.cancel();
    expect(runner.status).toBe('cancelled');
    await expect(runner.execute()).rejects.toMatchObject({ code: 'cancelled' });
    expect(executor).not.toHaveBeenCalled();
  });

  it('cancel() after the end changes nothing', async () => {
    const runner = new NodeRunner({ executor: () => 1 });
    await runner.execute();
    runner.cancel();
    expect(runner.status).toBe('completed');
  });

  it('times out: aborts the signal and rejects with NodeTimeoutError as soon as timeoutMs passes', async () => {
    vi.useFakeTimers();
    let signal: AbortSignal | undefined;
    const runner = new NodeRunner({
      timeoutMs: 50,
      executor: (_p, context) => {
        signal = context.signal;
        return new Promise(() => undefined);
      },
    });
    const execution = runner.execute();
    const outcome = expect(execution).rejects.toBeInstanceOf(NodeTimeoutError);
    await vi.advanceTimersByTimeAsync(49);
    expect(runner.status).toBe('running');
    await vi.advanceTimersByTimeAsync(1);
    await outcome;
    await expect(execution).rejects.toMatchObject({ code: 'timed_out', timeoutMs: 50 });
    expect(runner.status).toBe('timed_out');
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBeInstanceOf(NodeTimeoutError);
  });

  it('clears its timeout timer when the executor finishes first', async () => {
    vi.useFakeTimers();
    const runner = new NodeRunner({ timeoutMs: 1000, executor: () => 'fast' });
    await runner.execute();
    expect(vi.getTimerCount()).toBe(0);
  });

  it("follows the caller's signal, and removes its listener once done", async () => {
    const controller = new AbortController();
    const done = new NodeRunner({ executor: () => 1 });
    await done.execute({ signal: controller.signal });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);

    const hanging = new NodeRunner({ executor: () => new Promise(() => undefined) });
    const execution = hanging.execute({ signal: controller.signal });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    controller.abort('stop');
    await expect(execution).rejects.toMatchObject({ code: 'cancelled' });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('with an already aborted signal, ends cancelled without calling the executor', async () => {
    const executor = vi.fn(() => 1);
    const runner = new NodeRunner({ executor });
    await expect(runner.execute({ signal: AbortSignal.abort() })).rejects.toThrow(CancelledError);
    expect(executor).not.toHaveBeenCalled();
    expect(runner.status).toBe('cancelled');
  });

  it('retryTask() clones executor, params, timeout and listener, with parentId and attempt + 1', async () => {
    const statuses: string[] = [];
    const attempts: number[] = [];
    const runner = new NodeRunner<number, number>({
      executor: (n, context) => {
        attempts.push(context.attempt);
        return n + 1;
      },
      params: 1,
      timeoutMs: 500,
      onStatus: (r, _from, to) => statuses.push(`${r.instanceId}:${to}`),
    });
    await runner.execute();
    const child = runner.retryTask();
    expect(child).not.toBe(runner);
    expect(child.instanceId).not.toBe(runner.instanceId);
    expect(child.parentId).toBe(runner.instanceId);
    expect(child.attempt).toBe(2);
    expect(child.timeoutMs).toBe(500);
    expect(child.status).toBe('new');
    await expect(child.execute()).resolves.toBe(2);
    const grandchild = child.retryTask();
    expect(grandchild.attempt).toBe(3);
    expect(grandchild.parentId).toBe(child.instanceId);
    expect(attempts).toEqual([1, 2]);
    expect(statuses.filter((s) => s.startsWith(child.instanceId))).toContain(`${child.instanceId}:completed`);
  });

  it('retryTask() refuses a runner that is not done', async () => {
    const runner = new NodeRunner({ executor: () => new Promise(() => undefined) });
    expect(() => runner.retryTask()).toThrow(/while it is new/);
    const execution = runner.execute();
    expect(() => runner.retryTask()).toThrow(RunnerStateError);
    runner.cancel();
    await expect(execution).rejects.toThrow(CancelledError);
    expect(runner.retryTask().attempt).toBe(2);
  });

  it('a throwing onStatus listener does not corrupt the run', async () => {
    const uncaught = vi.fn();
    const original = globalThis.queueMicrotask;
    globalThis.queueMicrotask = (fn) => {
      original(() => {
        try {
          fn();
        } catch (error) {
          uncaught(error);
        }
      });
    };
    try {
      const runner = new NodeRunner({
        executor: () => 'value',
        onStatus: () => {
          throw new Error('listener bug');
        },
      });
      await expect(runner.execute()).resolves.toBe('value');
      await Promise.resolve();
      expect(uncaught).toHaveBeenCalled();
    } finally {
      globalThis.queueMicrotask = original;
    }
  });

  it('keeps context.signal when the context is spread', async () => {
    let spreadSignal: unknown;
    const runner = new NodeRunner({
      executor: (_p, context) => {
        spreadSignal = { ...context }.signal;
      },
    });
    await runner.execute();
    expect(spreadSignal).toBeInstanceOf(AbortSignal);
  });
});
