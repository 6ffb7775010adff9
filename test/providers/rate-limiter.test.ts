import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { InvalidOptionError } from '../../src/core/errors.ts';
import { AbortedError } from '../../src/providers/errors.ts';
import { RateLimiter, RateLimiterRegistry, failureRelease } from '../../src/providers/rate-limiter.ts';
import { estimateTokens } from '../../src/providers/tokens.ts';
import type { RateLimitPermit, RateLimitWait } from '../../src/providers/rate-limiter.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** Start an acquire and expose whether (and with what) it settled, without unhandled rejections. */
function pending(promise: Promise<RateLimitPermit>) {
  const state: { permit?: RateLimitPermit; error?: unknown } = {};
  void promise.then(
    (permit) => {
      state.permit = permit;
    },
    (error: unknown) => {
      state.error = error;
    },
  );
  return state;
}

const flush = async (): Promise<void> => {
  await vi.advanceTimersByTimeAsync(0);
};

/** Max number of times in any half-open window [t, t + windowMs), with t at each time. */
function maxInAnyWindow(times: readonly number[], windowMs: number, weights?: readonly number[]): number {
  let best = 0;
  for (let i = 0; i < times.length; i++) {
    let sum = 0;
    for (let j = i; j < times.length && (times[j] as number) < (times[i] as number) + windowMs; j++) {
      sum += weights?.[j] ?? 1;
    }
    best = Math.max(best, sum);
  }
  return best;
}

describe('RateLimiter - concurrency', () => {
  it('grants at most maxConcurrency permits at once and the next on release', async () => {
    const limiter = new RateLimiter({ maxConcurrency: 2 });
    const calls = Array.from({ length: 5 }, () => pending(limiter.acquire()));
    await flush();
    expect(calls.map((c) => c.permit !== undefined)).toEqual([true, true, false, false, false]);
    expect([limiter.inFlight, limiter.waiting]).toEqual([2, 3]);
    calls[0]?.permit?.release();
    await flush();
    expect(calls[2]?.permit).toBeDefined();
    expect(calls[3]?.permit).toBeUndefined();
    calls[1]?.permit?.settle();
    await flush();
    expect(calls[3]?.permit).toBeDefined();
    expect(limiter.inFlight).toBe(2);
  });

  it('ignores a second settle or release of the same permit', async () => {
    const limiter = new RateLimiter({ maxConcurrency: 1 });
    const permit = await limiter.acquire();
    const next = pending(limiter.acquire());
    const third = pending(limiter.acquire());
    permit.release();
    permit.release();
    permit.settle();
    await flush();
    expect(next.permit).toBeDefined();
    expect(third.permit).toBeUndefined();
    expect(limiter.inFlight).toBe(1);
  });

  it('serves waiters first in, first out', async () => {
    const limiter = new RateLimiter({ maxConcurrency: 1 });
    const order: number[] = [];
    const first = await limiter.acquire();
    const rest = Array.from({ length: 5 }, (_, i) =>
      limiter.acquire({ estimatedTokens: (5 - i) * 10 }).then((permit) => {
        order.push(i);
        return permit;
      }),
    );
    let permit = first;
    for (const next of rest) {
      permit.release();
      permit = await next;
    }
    permit.release();
    expect(order).toEqual([0, 1, 2, 3, 4]);
  });
});

describe('RateLimiter - requests per window', () => {
  it('never exceeds requestsPerMinute in any window over a long run while using >= 90% of it', async () => {
    const windowMs = 1000;
    const limit = 10;
    const limiter = new RateLimiter({ requestsPerMinute: limit, windowMs, maxConcurrency: 4 });
    const grants: number[] = [];
    const start = performance.now();
    const work = Array.from({ length: 400 }, async () => {
      const permit = await limiter.acquire();
      grants.push(performance.now());
      await new Promise((resolve) => setTimeout(resolve, 150)); // the "request"
      permit.settle();
    });
    await vi.advanceTimersByTimeAsync(60_000);
    await Promise.all(work);

    expect(grants).toHaveLength(400);
    expect(maxInAnyWindow(grants, windowMs)).toBeLessThanOrEqual(limit);
    const elapsedWindows = ((grants.at(-1) as number) - start) / windowMs;
    expect(400 / (elapsedWindows * limit)).toBeGreaterThanOrEqual(0.9);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps the limit with callers arriving in bursts and lulls', async () => {
    const windowMs = 1000;
    const limiter = new RateLimiter({ requestsPerMinute: 7, windowMs });
    const grants: number[] = [];
    let seed = 42;
    const random = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const work: Promise<void>[] = [];
    for (let t = 0; t < 200; t++) {
      const burst = random() < 0.2 ? Math.floor(random() * 20) : 0;
      for (let i = 0; i < burst; i++) {
        work.push(
          limiter.acquire().then((permit) => {
            grants.push(performance.now());
            permit.settle();
          }),
        );
      }
      await vi.advanceTimersByTimeAsync(100);
    }
    await vi.advanceTimersByTimeAsync(1_000_000);
    await Promise.all(work);
    expect(grants.length).toBe(work.length);
    expect(maxInAnyWindow(grants, windowMs)).toBeLessThanOrEqual(7);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('RateLimiter - tokens per window', () => {
  it('holds a request until the window has room for its estimate', async () => {
    const limiter = new RateLimiter({ tokensPerMinute: 1000, windowMs: 1000 });
    const a = await limiter.acquire({ estimatedTokens: 600 });
    const b = pending(limiter.acquire({ estimatedTokens: 600 }));
    await vi.advanceTimersByTimeAsync(999);
    expect(b.permit).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(b.permit).toBeDefined();
    a.settle();
  });

  it('reconciles the estimate with real usage at settle: the pacing moves back by the difference', async () => {
    const limiter = new RateLimiter({ tokensPerMinute: 1000, windowMs: 1000, headroom: 0 });
    const a = await limiter.acquire({ estimatedTokens: 600 });
    const b = pending(limiter.acquire({ estimatedTokens: 600 }));
    await flush();
    expect(b.permit).toBeUndefined();
    a.settle({ usage: { inputTokens: 80, outputTokens: 20 } }); // really 100: b is due 100 ms after a, not 600
    await vi.advanceTimersByTimeAsync(99);
    expect(b.permit).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(b.permit).toBeDefined();
  });

  it('paces token grants evenly instead of letting a window of them go at once', async () => {
    const limiter = new RateLimiter({ tokensPerMinute: 1000, windowMs: 1000, headroom: 0 });
    const grants: number[] = [];
    const work = Array.from({ length: 20 }, async () => {
      const permit = await limiter.acquire({ estimatedTokens: 100 });
      grants.push(performance.now());
      permit.settle({ usage: { inputTokens: 60, outputTokens: 40 } });
    });
    await vi.advanceTimersByTimeAsync(3000);
    await Promise.all(work);
    const gaps = grants.slice(1).map((t, i) => t - (grants[i] as number));
    expect(gaps.every((gap) => gap >= 99 && gap <= 101)).toBe(true); // 100 tokens at 1000 per second
    expect(maxInAnyWindow(grants, 1000)).toBe(10);
  });

  it('flows at tokensPerMinute * (1 - headroom)', async () => {
    const limiter = new RateLimiter({ tokensPerMinute: 1000, windowMs: 1000, headroom: 0.2 });
    const first = await limiter.acquire({ estimatedTokens: 400 });
    first.settle({ usage: { inputTokens: 400, outputTokens: 0 } });
    const next = pending(limiter.acquire({ estimatedTokens: 400 }));
    await vi.advanceTimersByTimeAsync(499);
    expect(next.permit).toBeUndefined(); // 400 tokens at 800 per second take 500 ms
    await vi.advanceTimersByTimeAsync(1);
    expect(next.permit).toBeDefined();
  });

  it('learns how estimates compare with real usage and charges later estimates accordingly', async () => {
    const limiter = new RateLimiter({ tokensPerMinute: 10_000, windowMs: 1000, headroom: 0 });
    const first = await limiter.acquire({ estimatedTokens: 100 });
    expect(first.estimatedTokens).toBe(100); // nothing learned yet: the estimate as given
    first.settle({ usage: { inputTokens: 150, outputTokens: 50 } });
    await vi.advanceTimersByTimeAsync(1000);
    for (let i = 0; i < 40; i++) {
      const permit = await limiter.acquire({ estimatedTokens: 100 });
      permit.settle({ usage: { inputTokens: 150, outputTokens: 50 } }); // twice the estimate, every time
      await vi.advanceTimersByTimeAsync(1000);
    }
    const under = await limiter.acquire({ estimatedTokens: 100 });
    expect(under.estimatedTokens).toBe(200); // an under-count is charged at what such requests really use
    under.settle({ usage: { inputTokens: 150, outputTokens: 50 } });

    const over = new RateLimiter({ tokensPerMinute: 10_000, windowMs: 1000, headroom: 0 });
    for (let i = 0; i < 40; i++) {
      (await over.acquire({ estimatedTokens: 1000 })).settle({
        usage: { inputTokens: 200, outputTokens: 50 },
      });
      await vi.advanceTimersByTimeAsync(1000);
    }
    expect((await over.acquire({ estimatedTokens: 1000 })).estimatedTokens).toBe(250);
  });

  it('does not save idle time up into a burst', async () => {
    const limiter = new RateLimiter({ tokensPerMinute: 1000, windowMs: 1000, headroom: 0 });
    (await limiter.acquire({ estimatedTokens: 100 })).settle();
    await vi.advanceTimersByTimeAsync(10_000);
    (await limiter.acquire({ estimatedTokens: 500 })).settle();
    const second = pending(limiter.acquire({ estimatedTokens: 500 }));
    await vi.advanceTimersByTimeAsync(499);
    expect(second.permit).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(second.permit).toBeDefined();
  });

  it('refunds the estimate of a request refused with a 429 (release with backoffMs)', async () => {
    const limiter = new RateLimiter({ tokensPerMinute: 1000, windowMs: 1000, headroom: 0 });
    const refused = await limiter.acquire({ estimatedTokens: 900 });
    const next = pending(limiter.acquire({ estimatedTokens: 900 }));
    refused.release({ backoffMs: 50 });
    await vi.advanceTimersByTimeAsync(49);
    expect(next.permit).toBeUndefined(); // the pause holds everyone
    await vi.advanceTimersByTimeAsync(1);
    expect(next.permit).toBeDefined(); // and then the refused 900 tokens are not in its way
  });

  it('keeps the estimate of a request that failed otherwise charged (the provider may have counted it)', async () => {
    const limiter = new RateLimiter({ tokensPerMinute: 1000, windowMs: 1000, headroom: 0 });
    const failed = await limiter.acquire({ estimatedTokens: 900 });
    const next = pending(limiter.acquire({ estimatedTokens: 900 }));
    failed.release();
    await vi.advanceTimersByTimeAsync(899);
    expect(next.permit).toBeUndefined();
    await vi.advanceTimersByTimeAsync(101);
    expect(next.permit).toBeDefined();
  });

  it('charges usage above the estimate, so later requests wait longer', async () => {
    const limiter = new RateLimiter({ tokensPerMinute: 1000, windowMs: 1000 });
    const a = await limiter.acquire({ estimatedTokens: 100 });
    a.settle({ usage: { inputTokens: 500, outputTokens: 400 } }); // 900, not 100
    const b = pending(limiter.acquire({ estimatedTokens: 200 }));
    await vi.advanceTimersByTimeAsync(999);
    expect(b.permit).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(b.permit).toBeDefined();
  });

  it('never grants more estimated tokens than the limit in any window over a long run', async () => {
    const windowMs = 1000;
    const limiter = new RateLimiter({ tokensPerMinute: 5000, windowMs });
    const times: number[] = [];
    const sizes: number[] = [];
    const work = Array.from({ length: 200 }, async (_, i) => {
      const estimatedTokens = 100 + ((i * 37) % 900);
      const permit = await limiter.acquire({ estimatedTokens });
      times.push(performance.now());
      sizes.push(estimatedTokens);
      permit.settle({ usage: { inputTokens: estimatedTokens, outputTokens: 0 } });
    });
    await vi.advanceTimersByTimeAsync(100_000);
    await Promise.all(work);
    expect(maxInAnyWindow(times, windowMs, sizes)).toBeLessThanOrEqual(5000);
    const total = sizes.reduce((a, b) => a + b, 0);
    expect(
      total / ((((times.at(-1) as number) - (times[0] as number)) / windowMs + 1) * 5000),
    ).toBeGreaterThan(0.85);
  });

  it('does not let a small request overtake a large one waiting for tokens (no starvation)', async () => {
    const limiter = new RateLimiter({ tokensPerMinute: 1000, windowMs: 1000, headroom: 0 });
    await limiter.acquire({ estimatedTokens: 900 });
    const big = pending(limiter.acquire({ estimatedTokens: 500 }));
    const small = pending(limiter.acquire({ estimatedTokens: 50 }));
    await vi.advanceTimersByTimeAsync(500);
    expect(small.permit).toBeUndefined(); // it would fit, but it is behind the big one
    await vi.advanceTimersByTimeAsync(500);
    expect(big.permit).toBeDefined(); // the window has room for it once the 900 leave it
    expect(small.permit).toBeUndefined(); // and the small one is paced 500 tokens after it
    await vi.advanceTimersByTimeAsync(500);
    expect(small.permit).toBeDefined();
  });

  it('lets a request larger than the whole limit go alone once the window is empty', async () => {
    const limiter = new RateLimiter({ tokensPerMinute: 1000, windowMs: 1000 });
    await limiter.acquire({ estimatedTokens: 10 });
    const huge = pending(limiter.acquire({ estimatedTokens: 5000 }));
    await vi.advanceTimersByTimeAsync(999);
    expect(huge.permit).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(huge.permit).toBeDefined();
  });
});

describe('RateLimiter - provider signals', () => {
  it('holds everyone until the reset when headers say no requests remain', async () => {
    const waits: RateLimitWait[] = [];
    const limiter = new RateLimiter({ onWait: (w) => waits.push(w) });
    const first = await limiter.acquire();
    first.settle({
      usage: { inputTokens: 1, outputTokens: 1 },
      rateLimit: { remainingRequests: 0, resetRequestsMs: 2000 },
    });
    const calls = [pending(limiter.acquire()), pending(limiter.acquire())];
    await vi.advanceTimersByTimeAsync(1999);
    expect(calls.every((c) => c.permit === undefined)).toBe(true);
    expect(waits[0]).toEqual({ reason: 'hold', delayMs: 2000, waiting: 1 });
    await vi.advanceTimersByTimeAsync(1);
    expect(calls.every((c) => c.permit !== undefined)).toBe(true);
  });

  it('holds until the token reset when headers say no tokens remain', async () => {
    const limiter = new RateLimiter();
    limiter.observe({ remainingTokens: 0, resetTokensMs: 700, remainingRequests: 5, resetRequestsMs: 10 });
    const call = pending(limiter.acquire());
    await vi.advanceTimersByTimeAsync(699);
    expect(call.permit).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(call.permit).toBeDefined();
  });

  it('ignores headers with requests and tokens remaining', async () => {
    const limiter = new RateLimiter();
    limiter.observe({
      remainingRequests: 3,
      resetRequestsMs: 5000,
      remainingTokens: 10,
      resetTokensMs: 5000,
    });
    await expect(limiter.acquire()).resolves.toBeDefined();
  });

  it('backoff() after a 429 pauses every waiting caller, not only the one that got it', async () => {
    const limiter = new RateLimiter({ maxConcurrency: 1 });
    const unlucky = await limiter.acquire();
    const others = [pending(limiter.acquire()), pending(limiter.acquire()), pending(limiter.acquire())];
    unlucky.release({ backoffMs: 3000 }); // it got a 429
    await vi.advanceTimersByTimeAsync(2999);
    expect(others.every((c) => c.permit === undefined)).toBe(true);
    expect(limiter.waiting).toBe(3);
    await vi.advanceTimersByTimeAsync(1);
    expect(others[0]?.permit).toBeDefined();
    expect(others[1]?.permit).toBeUndefined(); // concurrency 1 still applies after the pause
  });

  it('backoff() from another caller holds waiters queued behind a concurrency slot too', async () => {
    const limiter = new RateLimiter({ maxConcurrency: 2 });
    const a = await limiter.acquire();
    await limiter.acquire();
    const waiter = pending(limiter.acquire());
    limiter.backoff(1000); // some other request got a 429
    a.settle();
    await vi.advanceTimersByTimeAsync(999);
    expect(waiter.permit).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(waiter.permit).toBeDefined();
  });

  it('release({ rateLimit }) learns from the failed response headers', async () => {
    const limiter = new RateLimiter();
    const permit = await limiter.acquire();
    permit.release({ rateLimit: { remainingRequests: 0, resetRequestsMs: 400 } });
    const call = pending(limiter.acquire());
    await vi.advanceTimersByTimeAsync(399);
    expect(call.permit).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(call.permit).toBeDefined();
  });

  it('backoff() never shortens a pause already in force', async () => {
    const limiter = new RateLimiter();
    limiter.backoff(5000);
    limiter.backoff(1000);
    const call = pending(limiter.acquire());
    await vi.advanceTimersByTimeAsync(4999);
    expect(call.permit).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(call.permit).toBeDefined();
  });

  it('treats retryAfterMs in observed headers as a backoff', async () => {
    const limiter = new RateLimiter();
    limiter.observe({ retryAfterMs: 250 });
    const call = pending(limiter.acquire());
    await vi.advanceTimersByTimeAsync(249);
    expect(call.permit).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(call.permit).toBeDefined();
  });
});

describe('RateLimiter - abort', () => {
  it('removes an aborted waiter from the queue at once and rejects with an AbortedError', async () => {
    const limiter = new RateLimiter({ maxConcurrency: 1, provider: 'openai', model: 'gpt-4.1' });
    const holder = await limiter.acquire();
    const controller = new AbortController();
    const aborted = pending(limiter.acquire({ signal: controller.signal }));
    const next = pending(limiter.acquire());
    expect(limiter.waiting).toBe(2);
    const reason = new Error('user gave up');
    controller.abort(reason);
    expect(limiter.waiting).toBe(1);
    await flush();
    expect(aborted.error).toBeInstanceOf(AbortedError);
    expect(aborted.error).toMatchObject({
      code: 'aborted',
      provider: 'openai',
      model: 'gpt-4.1',
      cause: reason,
    });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    holder.release();
    await flush();
    expect(next.permit).toBeDefined();
  });

  it('rejects at once when the signal is already aborted', async () => {
    const limiter = new RateLimiter();
    await expect(limiter.acquire({ signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'aborted' });
    expect(limiter.waiting).toBe(0);
  });

  it('removes the abort listener once the permit is granted', async () => {
    const limiter = new RateLimiter({ maxConcurrency: 1 });
    const holder = await limiter.acquire();
    const controller = new AbortController();
    const call = pending(limiter.acquire({ signal: controller.signal }));
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    holder.release();
    await flush();
    expect(call.permit).toBeDefined();
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    controller.abort();
    expect(limiter.inFlight).toBe(1); // aborting after the grant does nothing to the permit
  });

  it('aborting the head waiting for time re-plans the timer for the next caller', async () => {
    const limiter = new RateLimiter({ tokensPerMinute: 100, windowMs: 1000, headroom: 0 });
    await limiter.acquire({ estimatedTokens: 100 });
    const controller = new AbortController();
    pending(limiter.acquire({ estimatedTokens: 100, signal: controller.signal }));
    const next = pending(limiter.acquire({ estimatedTokens: 100 }));
    controller.abort();
    await vi.advanceTimersByTimeAsync(1000);
    expect(next.permit).toBeDefined();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('RateLimiter - event-driven', () => {
  it('leaves no timer when idle, and sets none while waiting only for a concurrency slot', async () => {
    const limiter = new RateLimiter({
      maxConcurrency: 1,
      requestsPerMinute: 600,
      tokensPerMinute: 10_000,
      windowMs: 1000,
    });
    expect(vi.getTimerCount()).toBe(0);
    const a = await limiter.acquire({ estimatedTokens: 10 });
    await vi.advanceTimersByTimeAsync(500);
    const b = pending(limiter.acquire({ estimatedTokens: 10 }));
    await flush();
    expect(vi.getTimerCount()).toBe(0); // b waits for a's slot, not for time
    a.settle();
    await flush();
    b.permit?.settle();
    limiter.backoff(10_000); // a pause with nobody waiting needs no timer either
    expect(vi.getTimerCount()).toBe(0);
    expect(limiter.waiting).toBe(0);
  });

  it('keeps at most one timer however many callers wait', async () => {
    const limiter = new RateLimiter({ requestsPerMinute: 1, windowMs: 1000, headroom: 0 });
    Array.from({ length: 50 }, () => pending(limiter.acquire()));
    await flush();
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(limiter.waiting).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('reports waits to onWait once per new wait, and to the caller that queued', async () => {
    const waits: RateLimitWait[] = [];
    const limiter = new RateLimiter({
      requestsPerMinute: 2,
      windowMs: 1000,
      headroom: 0, // exact slots: 500 ms apart
      onWait: (w) => waits.push(w),
    });
    await limiter.acquire();
    const mine: RateLimitWait[] = [];
    const call = pending(limiter.acquire({ onWait: (w) => mine.push(w) }));
    await vi.advanceTimersByTimeAsync(100);
    expect(waits).toEqual([{ reason: 'requests', delayMs: 500, waiting: 1 }]);
    expect(mine).toEqual([{ reason: 'requests', delayMs: 500, waiting: 1 }]);
    expect(Object.isFrozen(mine[0])).toBe(true);
    await vi.advanceTimersByTimeAsync(400);
    expect(call.permit).toBeDefined();
    expect(waits).toHaveLength(1);
  });

  it('counts waiting, inFlight, granted and throttledMs', async () => {
    const limiter = new RateLimiter({ requestsPerMinute: 1, windowMs: 1000, headroom: 0 });
    const a = await limiter.acquire();
    const b = pending(limiter.acquire());
    expect([limiter.waiting, limiter.inFlight, limiter.granted]).toEqual([1, 1, 1]);
    await vi.advanceTimersByTimeAsync(1000);
    expect([limiter.waiting, limiter.inFlight, limiter.granted]).toEqual([0, 2, 2]);
    expect(limiter.throttledMs).toBe(1000);
    expect(b.permit?.waitedMs).toBe(1000);
    a.settle();
    b.permit?.release();
    expect(limiter.inFlight).toBe(0);
  });

  it('survives an onWait hook that throws', async () => {
    const limiter = new RateLimiter({
      requestsPerMinute: 1,
      windowMs: 100,
      headroom: 0,
      onWait: () => {
        throw new Error('hook bug');
      },
    });
    const errors: unknown[] = [];
    const listener = (error: unknown): void => {
      errors.push(error);
    };
    process.on('uncaughtException', listener);
    try {
      await limiter.acquire();
      const call = pending(limiter.acquire());
      await vi.advanceTimersByTimeAsync(100);
      expect(call.permit).toBeDefined();
      expect(errors).toEqual([new Error('hook bug')]); // surfaced, not swallowed
    } finally {
      process.off('uncaughtException', listener);
    }
  });
});

describe('RateLimiter options', () => {
  it.each([
    ['maxConcurrency', 0],
    ['maxConcurrency', 1.5],
    ['requestsPerMinute', 0],
    ['tokensPerMinute', -1],
    ['windowMs', Infinity],
  ])('rejects %s = %s with InvalidOptionError naming it', (option, value) => {
    expect(() => new RateLimiter({ [option]: value })).toThrow(InvalidOptionError);
    expect(() => new RateLimiter({ [option]: value })).toThrow(`\`${option}\``);
  });

  it('rejects a bad estimatedTokens or backoff', () => {
    const limiter = new RateLimiter();
    expect(() => limiter.acquire({ estimatedTokens: -1 })).toThrow(/`estimatedTokens`/);
    expect(() => {
      limiter.backoff(NaN);
    }).toThrow(InvalidOptionError);
  });
});

describe('failureRelease', () => {
  it('pauses and refunds for a 429 or 529, with the delay the provider asked for or the fallback', () => {
    expect(failureRelease({ status: 429, retryAfterMs: 1500 }, () => 7)).toEqual({ backoffMs: 1500 });
    expect(failureRelease({ status: 529 }, () => 7)).toEqual({ backoffMs: 7 });
    expect(failureRelease({ code: 'rate_limit_error' }, () => 7)).toEqual({ backoffMs: 7 });
    expect(failureRelease({ code: 'overloaded_error', retryAfterMs: 3 }, () => 7)).toEqual({ backoffMs: 3 });
  });

  it('passes rate-limit headers on and neither pauses nor refunds any other failure', () => {
    const rateLimit = { remainingRequests: 0, resetRequestsMs: 100 };
    expect(failureRelease({ status: 503, rateLimit }, () => 7)).toEqual({ rateLimit });
    expect(failureRelease(new Error('socket hang up'), () => 7)).toEqual({});
    expect(failureRelease(undefined, () => 7)).toEqual({});
  });
});

describe('estimateTokens', () => {
  it('counts a quarter of the characters of system, messages and schema, plus maxTokens', () => {
    const estimate = estimateTokens({
      model: 'm',
      system: 'x'.repeat(40),
      messages: [
        { role: 'user', content: 'y'.repeat(39) },
        { role: 'assistant', content: 'z' },
      ],
      maxTokens: 100,
    });
    expect(estimate).toBe(20 + 100);
  });

  it('adds the output schema and tools, and a default output allowance without maxTokens', () => {
    const schema = { type: 'object', properties: { a: { type: 'string' } } };
    const withSchema = estimateTokens({
      model: 'm',
      messages: [],
      output: { name: 's', schema },
    });
    expect(withSchema).toBe(Math.ceil(JSON.stringify(schema).length / 4) + 1024);
    expect(estimateTokens({ model: 'm', messages: [] }, { defaultOutputTokens: 7 })).toBe(7);
  });

  it('counts tools and tool calls as their JSON, measured once per object', () => {
    const tools = [
      { name: 'lookup', description: 'Find a word', parameters: { type: 'object', properties: {} } },
      { name: 'add', parameters: { type: 'object', properties: { a: { type: 'number' } } } },
    ];
    const toolCalls = [{ id: 'c1', name: 'lookup', arguments: { word: 'ünïcode' } }];
    const request = {
      model: 'm',
      messages: [
        { role: 'user' as const, content: 'hi' },
        { role: 'assistant' as const, content: '', toolCalls },
      ],
      tools,
      maxTokens: 0,
    };
    const chars = 2 + JSON.stringify(toolCalls).length + JSON.stringify(tools).length;
    expect(estimateTokens(request)).toBe(Math.ceil(chars / 4));
    // The same definitions again (as every call of a node sends them): the same estimate, from the memo.
    const stringify = vi.spyOn(JSON, 'stringify');
    try {
      expect(estimateTokens(request)).toBe(Math.ceil(chars / 4));
      expect(stringify).not.toHaveBeenCalled();
    } finally {
      stringify.mockRestore();
    }
  });
});

describe('RateLimiterRegistry', () => {
  it('returns one limiter per provider:model', () => {
    const registry = new RateLimiterRegistry();
    expect(registry.get('openai', 'a')).toBe(registry.get('openai', 'a'));
    expect(registry.get('openai', 'a')).not.toBe(registry.get('openai', 'b'));
    expect(registry.keys()).toEqual(['openai:a', 'openai:b']);
  });

  it('resolves limits model over provider over defaults, field by field', async () => {
    const registry = new RateLimiterRegistry({
      defaults: { maxConcurrency: 5 },
      limits: { openai: { maxConcurrency: 2 }, 'openai:big': { requestsPerMinute: 1, windowMs: 1000 } },
    });
    const big = registry.get('openai', 'big');
    const permits = [pending(big.acquire()), pending(big.acquire())];
    await flush();
    expect(permits.map((p) => p.permit !== undefined)).toEqual([true, false]); // requestsPerMinute from the model

    const small = registry.get('openai', 'small');
    const three = [pending(small.acquire()), pending(small.acquire()), pending(small.acquire())];
    await flush();
    expect(three.filter((p) => p.permit !== undefined)).toHaveLength(2); // maxConcurrency from the provider

    const other = registry.get('anthropic', 'x');
    const six = Array.from({ length: 6 }, () => pending(other.acquire()));
    await flush();
    expect(six.filter((p) => p.permit !== undefined)).toHaveLength(5); // defaults
    await vi.advanceTimersByTimeAsync(1000);
  });

  it('applies configure() to limiters created afterwards, and names the key in onWait', async () => {
    const seen: string[] = [];
    const registry = new RateLimiterRegistry({ onWait: (key) => seen.push(key) });
    registry.configure('sim', { maxConcurrency: 1 });
    const limiter = registry.get('sim', 'echo');
    await limiter.acquire();
    pending(limiter.acquire());
    await flush();
    expect(seen).toEqual(['sim:echo']);
  });

  it('names the offending option when resolved limits are invalid', () => {
    const registry = new RateLimiterRegistry({ limits: { openai: { tokensPerMinute: 0 } } });
    expect(() => registry.get('openai', 'x')).toThrow(/`tokensPerMinute`/);
  });
});

describe('RateLimiterRegistry.from', () => {
  /** How many of `n` simultaneous acquires on `registry`'s limiter for `provider:model` are granted at once. */
  async function grantedAtOnce(registry: RateLimiterRegistry, provider: string, model: string, n: number) {
    const limiter = registry.get(provider, model);
    const permits = Array.from({ length: n }, () => pending(limiter.acquire()));
    await flush();
    return permits.filter((p) => p.permit !== undefined).length;
  }

  it('returns a registry as is, so clients can share it', () => {
    const registry = new RateLimiterRegistry();
    expect(RateLimiterRegistry.from(registry)).toBe(registry);
  });

  it('reads limits by provider or provider:model given directly', async () => {
    const registry = RateLimiterRegistry.from({
      openai: { maxConcurrency: 2 },
      'openai:big': { maxConcurrency: 1 },
    });
    expect(await grantedAtOnce(registry, 'openai', 'small', 4)).toBe(2);
    expect(await grantedAtOnce(registry, 'openai', 'big', 4)).toBe(1);
    expect(await grantedAtOnce(registry, 'anthropic', 'x', 4)).toBe(4); // unlimited
  });

  it('still reads registry options { limits, defaults }', async () => {
    const registry = RateLimiterRegistry.from({
      limits: { openai: { maxConcurrency: 2 } },
      defaults: { maxConcurrency: 3 },
    });
    expect(await grantedAtOnce(registry, 'openai', 'a', 5)).toBe(2);
    expect(await grantedAtOnce(registry, 'anthropic', 'b', 5)).toBe(3);
    expect(
      await grantedAtOnce(RateLimiterRegistry.from({ defaults: { maxConcurrency: 1 } }), 'x', 'y', 3),
    ).toBe(1);
  });

  it('gives an unlimited registry for undefined and for {}', async () => {
    expect(await grantedAtOnce(RateLimiterRegistry.from(undefined), 'openai', 'a', 5)).toBe(5);
    expect(await grantedAtOnce(RateLimiterRegistry.from({}), 'openai', 'a', 5)).toBe(5);
  });

  it('refuses a mix of option keys and provider keys, naming both forms', () => {
    const mixed = { defaults: { maxConcurrency: 1 }, openai: { maxConcurrency: 2 } };
    let error: unknown;
    try {
      RateLimiterRegistry.from(mixed); // the types allow it: `defaults` could be a provider
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect(error).toMatchObject({ code: 'invalid_option', option: 'limits', value: mixed });
    expect((error as Error).message).toMatch(/limits by provider or model .*registry options.*not a mix/);
    expect((error as InvalidOptionError).hint).toMatch(/limits, defaults, now, onWait are option names/);
  });

  it('names the entry that is not an object of rate limits', () => {
    // The old double nesting mistaken for a provider named "limits": { limits: { maxConcurrency: 8 } }.
    expect(() => RateLimiterRegistry.from({ limits: { maxConcurrency: 8 } })).toThrow(
      expect.objectContaining({ option: 'limits.limits.maxConcurrency', value: 8 }),
    );
    expect(() => RateLimiterRegistry.from({ openai: { requestPerMinute: 500 } } as never)).toThrow(
      /Option `limits.openai` must be an object of rate limits \(maxConcurrency, .*"requestPerMinute" is not one/,
    );
    expect(() => RateLimiterRegistry.from({ openai: null } as never)).toThrow(
      expect.objectContaining({ option: 'limits.openai' }),
    );
    expect(() => RateLimiterRegistry.from({ defaults: [1] } as never)).toThrow(
      expect.objectContaining({ option: 'limits.defaults' }),
    );
    expect(() => RateLimiterRegistry.from({ limits: 'openai' } as never, 'rateLimits')).toThrow(
      expect.objectContaining({ option: 'rateLimits.limits' }),
    );
  });

  it('refuses values that are neither a registry nor a plain object, and non-function hooks', () => {
    for (const value of [42, 'openai', [], new Map()]) {
      expect(() => RateLimiterRegistry.from(value as never)).toThrow(
        expect.objectContaining({ code: 'invalid_option', option: 'limits' }),
      );
    }
    expect(() => RateLimiterRegistry.from({ onWait: 'log' } as never)).toThrow(
      expect.objectContaining({ option: 'limits.onWait' }),
    );
  });
});

describe('RateLimiter - pacing', () => {
  it('keeps to its schedule when timers fire late, instead of drifting the rate down', async () => {
    vi.useFakeTimers();
    const limiter = new RateLimiter({ requestsPerMinute: 100, windowMs: 1000, headroom: 0 });
    const grants: number[] = [];
    for (let i = 0; i < 50; i++) {
      void limiter.acquire().then((permit) => {
        grants.push(performance.now());
        permit.settle();
      });
    }
    // Every timer fires up to 3 ms late: the schedule (10 ms slots) must absorb it.
    for (let step = 0; step < 200 && grants.length < 50; step++) await vi.advanceTimersByTimeAsync(13);
    expect(grants).toHaveLength(50);
    const span = grants.at(-1)! - grants[0]!;
    expect(span).toBeLessThanOrEqual(49 * 10 + 13);
    vi.useRealTimers();
  });

  it('leaves `headroom` of the request rate unused, and validates it', () => {
    expect(() => new RateLimiter({ requestsPerMinute: 10, headroom: 0.5 })).toThrow(/headroom/);
    expect(() => new RateLimiter({ requestsPerMinute: 10, headroom: -0.1 })).toThrow(/headroom/);
  });

  it('on "0 requests remaining" holds for one slot, not the full reset, when it paces itself', async () => {
    vi.useFakeTimers();
    const limiter = new RateLimiter({ requestsPerMinute: 10, windowMs: 1000, headroom: 0 });
    (await limiter.acquire()).settle({ rateLimit: { remainingRequests: 0, resetRequestsMs: 1000 } });
    let granted = false;
    void limiter.acquire().then((permit) => {
      granted = true;
      permit.settle();
    });
    await vi.advanceTimersByTimeAsync(100);
    expect(granted).toBe(true);
    vi.useRealTimers();
  });
});

describe('tryAcquire (the grant without a wait)', () => {
  it('grants at once when nothing limits the request, counting it in flight until it settles', async () => {
    const limiter = new RateLimiter({ maxConcurrency: 2 });
    const first = limiter.tryAcquire(100);
    const second = limiter.tryAcquire(100);
    expect(first?.estimatedTokens).toBe(100);
    expect(first?.waitedMs).toBe(0);
    expect(limiter.inFlight).toBe(2);
    expect(limiter.granted).toBe(2);
    // The cap is reached: no grant without a wait, and acquire() queues as before.
    expect(limiter.tryAcquire(100)).toBeUndefined();
    const queued = pending(limiter.acquire({ estimatedTokens: 100 }));
    await flush();
    expect(queued.permit).toBeUndefined();
    first?.settle({ usage: { inputTokens: 10, outputTokens: 5 } });
    first?.settle(); // a second settle does nothing
    await flush();
    expect(queued.permit).toBeDefined();
    expect(limiter.inFlight).toBe(2);
    second?.release();
    queued.permit?.release();
    expect(limiter.inFlight).toBe(0);
  });

  it('does not grant while a hold is in force, nor under request or token limits', () => {
    const held = new RateLimiter();
    const permit = held.tryAcquire(0);
    permit?.release({ backoffMs: 5_000 });
    expect(held.inFlight).toBe(0);
    expect(held.tryAcquire(0)).toBeUndefined();
    vi.advanceTimersByTime(5_000);
    expect(held.tryAcquire(0)).toBeDefined();
    expect(new RateLimiter({ requestsPerMinute: 60 }).tryAcquire(0)).toBeUndefined();
    expect(new RateLimiter({ tokensPerMinute: 1_000 }).tryAcquire(10)).toBeUndefined();
    expect(() => new RateLimiter().tryAcquire(-1)).toThrow(InvalidOptionError);
  });
});
