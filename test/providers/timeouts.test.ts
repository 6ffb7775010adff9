import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../src/index.ts';
import { AttemptGuard, checkTimeout } from '../../src/providers/timeouts.ts';

async function* slowAfter(count: number, stallMs: number): AsyncGenerator<number> {
  for (let i = 0; i < count; i++) yield i;
  await new Promise((resolve) => setTimeout(resolve, stallMs));
  yield count;
}

describe('AttemptGuard', () => {
  it('race() settles as the promise does while the watchdog is quiet', async () => {
    const guard = new AttemptGuard();
    guard.arm(10_000, () => new Error('late'));
    await expect(guard.race(Promise.resolve(7))).resolves.toBe(7);
    guard.dispose();
    expect(guard.signal.aborted).toBe(false);
  });

  it('when the watchdog fires: aborts the signal with its error and rejects pending and later races', async () => {
    const guard = new AttemptGuard();
    const boom = new Error('too slow');
    guard.arm(20, () => boom);
    const never = new Promise<never>(() => undefined);
    await expect(guard.race(never)).rejects.toBe(boom);
    expect(guard.signal.aborted).toBe(true);
    expect(guard.signal.reason).toBe(boom);
    expect(guard.timedOut).toBe(boom);
    await expect(guard.race(Promise.resolve(1))).rejects.toBe(boom);
    guard.dispose();
  });

  it('disarm() stops the watchdog', async () => {
    const guard = new AttemptGuard();
    guard.arm(10, () => new Error('no'));
    guard.disarm();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(guard.signal.aborted).toBe(false);
    expect(guard.timedOut).toBeUndefined();
  });

  it("follows the caller's signal, and unlinks it on dispose()", () => {
    const caller = new AbortController();
    const guard = new AttemptGuard(caller.signal);
    caller.abort('stop');
    expect(guard.signal.aborted).toBe(true);
    expect(guard.signal.reason).toBe('stop');
    expect(guard.timedOut).toBeUndefined();

    const later = new AbortController();
    const unlinked = new AttemptGuard(later.signal);
    unlinked.dispose();
    later.abort();
    expect(unlinked.signal.aborted).toBe(false);

    expect(new AttemptGuard(AbortSignal.abort('already')).signal.reason).toBe('already');
  });

  it('iterate() with idle fails with the count of items so far when the next one is late', async () => {
    const guard = new AttemptGuard();
    const seen: number[] = [];
    const run = (async () => {
      for await (const n of guard.iterate(slowAfter(3, 10_000), {
        ms: 30,
        error: (received) => new Error(`stalled after ${received}`),
      }))
        seen.push(n);
    })();
    await expect(run).rejects.toThrow('stalled after 3');
    expect(seen).toEqual([0, 1, 2]);
    expect(guard.signal.aborted).toBe(true);
    guard.dispose();
  });

  it('iterate() passes every item of a source that keeps within the idle bound', async () => {
    const guard = new AttemptGuard();
    const seen: number[] = [];
    for await (const n of guard.iterate(slowAfter(2, 5), { ms: 5_000, error: () => new Error('no') }))
      seen.push(n);
    expect(seen).toEqual([0, 1, 2]);
    expect(guard.signal.aborted).toBe(false);
    guard.dispose();
  });

  it('iterate() returns the source when the consumer stops early', async () => {
    const guard = new AttemptGuard();
    let returned = false;
    async function* source(): AsyncGenerator<number> {
      try {
        await Promise.resolve();
        yield 1;
        yield 2;
      } finally {
        returned = true;
      }
    }
    for await (const n of guard.iterate(source())) if (n === 1) break;
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(returned).toBe(true);
    guard.dispose();
  });
});

describe('checkTimeout', () => {
  it('accepts undefined and positive finite numbers, and names the option otherwise', () => {
    expect(checkTimeout('timeoutMs', undefined)).toBeUndefined();
    expect(checkTimeout('timeoutMs', 1.5)).toBe(1.5);
    for (const bad of [0, -1, Number.NaN, Infinity, '100']) {
      expect(() => checkTimeout('timeoutMs', bad)).toThrow(InvalidOptionError);
      expect(() => checkTimeout('timeoutMs', bad)).toThrow(/timeoutMs/);
    }
  });
});
