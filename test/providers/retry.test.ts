import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { InvalidOptionError, TryAgainError } from '../../src/core/errors.ts';
import { Composition } from '../../src/core/composition.ts';
import { DAGNote } from '../../src/core/dag-note.ts';
import { NodeRunner } from '../../src/core/node-runner.ts';
import { AbortedError, providerErrorFromStatus } from '../../src/providers/errors.ts';
import {
  RetriesExhaustedError,
  RetryPolicy,
  retryWithRunners,
  tryAgainFor,
} from '../../src/providers/retry.ts';
import type { RetryInfo } from '../../src/providers/retry.ts';

/** A plain stand-in for a ProviderError: the policy reads these fields structurally. */
function apiError(
  status: number | undefined,
  fields: { isRetryable?: boolean; retryAfterMs?: number; code?: string } = {},
): Error & Record<string, unknown> {
  const error = new Error(status === undefined ? 'network down' : `HTTP ${status}`) as Error &
    Record<string, unknown>;
  error['status'] = status;
  error['isRetryable'] = fields.isRetryable ?? (status === undefined ? true : isRetryableStatus(status));
  if (fields.retryAfterMs !== undefined) error['retryAfterMs'] = fields.retryAfterMs;
  if (fields.code !== undefined) error['code'] = fields.code;
  return error;
}

function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/** A policy whose jitter always draws `draw`. */
function policyWith(options: ConstructorParameters<typeof RetryPolicy>[0] = {}, draw = 1): RetryPolicy {
  return RetryPolicy.from({ random: () => draw, ...options });
}

describe('RetryPolicy.shouldRetry - which errors', () => {
  it.each([408, 409, 429, 500, 502, 503, 504, 529])('retries status %i', (status) => {
    expect(policyWith().shouldRetry(apiError(status), 1)).toMatchObject({ retry: true, source: 'backoff' });
  });

  it.each([400, 401, 403, 404, 422])('never retries status %i', (status) => {
    const decision = policyWith().shouldRetry(apiError(status), 1);
    expect(decision).toMatchObject({ retry: false, stop: 'not_retryable' });
    expect(decision.reason).toContain(`status ${status}`);
  });

  it('never retries 400/401/403/404/422 even when the error claims to be retryable', () => {
    expect(policyWith().shouldRetry(apiError(401, { isRetryable: true }), 1)).toMatchObject({
      retry: false,
      stop: 'not_retryable',
    });
  });

  it('retries connection resets and timeouts (retryable errors without a status)', () => {
    expect(policyWith().shouldRetry(apiError(undefined, { code: 'connection_error' }), 1).retry).toBe(true);
    expect(policyWith().shouldRetry(apiError(undefined, { code: 'request_timeout' }), 1).retry).toBe(true);
  });

  it('retries only isRetryable === true: plain errors, strings and truthy non-booleans are not retried', () => {
    const policy = policyWith();
    expect(policy.shouldRetry(new Error('bug'), 1)).toMatchObject({ retry: false, stop: 'not_retryable' });
    expect(policy.shouldRetry('oops', 1)).toMatchObject({ retry: false, stop: 'not_retryable' });
    expect(policy.shouldRetry({ isRetryable: 'yes' }, 1).retry).toBe(false);
    expect(policy.shouldRetry(apiError(503, { isRetryable: false }), 1).retry).toBe(false);
  });

  it('never retries an abort, whatever its other fields say', () => {
    const policy = policyWith();
    expect(policy.shouldRetry(apiError(undefined, { code: 'aborted', isRetryable: true }), 1)).toMatchObject({
      retry: false,
      stop: 'aborted',
    });
    expect(policy.shouldRetry(new AbortedError({ provider: 'openai' }), 1).retry).toBe(false);
    expect(policy.shouldRetry(new DOMException('stop', 'AbortError'), 1)).toMatchObject({ stop: 'aborted' });
  });

  it('agrees with the real ProviderError family', () => {
    const policy = policyWith();
    expect(policy.shouldRetry(providerErrorFromStatus(529, { provider: 'anthropic' }), 1).retry).toBe(true);
    expect(policy.shouldRetry(providerErrorFromStatus(401, { provider: 'openai' }), 1).retry).toBe(false);
    const limited = providerErrorFromStatus(429, {
      provider: 'openai',
      headers: { 'retry-after-ms': '1500' },
    });
    expect(policy.shouldRetry(limited, 1)).toMatchObject({
      retry: true,
      delayMs: 1500,
      source: 'retry-after',
    });
  });
});

describe('RetryPolicy.shouldRetry - how long to wait', () => {
  it("lets the server's retry-after win over our backoff", () => {
    const decision = policyWith({ baseDelayMs: 10 }).shouldRetry(apiError(429, { retryAfterMs: 7000 }), 3);
    expect(decision).toMatchObject({ retry: true, delayMs: 7000, source: 'retry-after' });
    expect(decision.reason).toContain('as the server asked');
  });

  it('honours a retry-after of 0 (retry at once)', () => {
    expect(policyWith().shouldRetry(apiError(503, { retryAfterMs: 0 }), 1)).toMatchObject({ delayMs: 0 });
  });

  it('gives up rather than hang when retry-after is above maxRetryAfterMs', () => {
    const policy = policyWith({ maxRetryAfterMs: 60_000 });
    expect(policy.shouldRetry(apiError(429, { retryAfterMs: 60_000 }), 1).retry).toBe(true);
    const decision = policy.shouldRetry(apiError(429, { retryAfterMs: 60_001 }), 1);
    expect(decision).toMatchObject({ retry: false, stop: 'retry_after_too_long' });
    expect(decision.reason).toContain('60001 ms');
  });

  it('backs off exponentially from baseDelayMs up to maxDelayMs (with random() = 1)', () => {
    const policy = policyWith({ baseDelayMs: 500, maxDelayMs: 3000, maxRetries: 10 });
    const delays = [1, 2, 3, 4, 5, 6].map((attempt) => {
      const decision = policy.shouldRetry(apiError(503), attempt);
      return decision.retry ? decision.delayMs : -1;
    });
    expect(delays).toEqual([500, 1000, 2000, 3000, 3000, 3000]);
  });

  it('uses full jitter: the delay is random() times the cap, from 0 up to the cap', () => {
    const draws = [0, 0.25, 0.999];
    const delays = draws.map((draw) => {
      const decision = policyWith({ baseDelayMs: 1000 }, draw).shouldRetry(apiError(500), 2);
      return decision.retry ? decision.delayMs : -1;
    });
    expect(delays).toEqual([0, 500, 1998]);
  });

  it('keeps the jitter within [0, cap] over many real random draws', () => {
    const policy = RetryPolicy.from({ baseDelayMs: 100, maxDelayMs: 1000, maxRetries: 20 });
    for (let attempt = 1; attempt <= 20; attempt++) {
      const cap = Math.min(1000, 100 * 2 ** (attempt - 1));
      const decision = policy.shouldRetry(apiError(502), attempt);
      expect(decision.retry).toBe(true);
      if (decision.retry) {
        expect(decision.delayMs).toBeGreaterThanOrEqual(0);
        expect(decision.delayMs).toBeLessThanOrEqual(cap);
      }
    }
  });

  it('clamps an out-of-range injected random() into [0, 1]', () => {
    expect(policyWith({ baseDelayMs: 100 }, 7).backoffMs(1)).toBe(100);
    expect(policyWith({ baseDelayMs: 100 }, -3).backoffMs(1)).toBe(0);
  });
});

describe('RetryPolicy.shouldRetry - when to stop', () => {
  it('stops once maxRetries retries were made, saying so', () => {
    const policy = policyWith({ maxRetries: 2 });
    expect(policy.shouldRetry(apiError(503), 2).retry).toBe(true);
    const decision = policy.shouldRetry(apiError(503), 3);
    expect(decision).toMatchObject({ retry: false, stop: 'max_retries' });
    expect(decision.reason).toContain('retry budget of 2 retries is spent');
  });

  it('makes no retry at all with maxRetries: 0', () => {
    expect(policyWith({ maxRetries: 0 }).shouldRetry(apiError(503), 1)).toMatchObject({
      stop: 'max_retries',
    });
  });

  it('stops when elapsed + delay would pass the deadline, saying so', () => {
    const policy = policyWith({ baseDelayMs: 1000, deadlineMs: 5000 });
    expect(policy.shouldRetry(apiError(503), 1, 4000).retry).toBe(true); // 4000 + 1000 = 5000
    const decision = policy.shouldRetry(apiError(503), 1, 4001);
    expect(decision).toMatchObject({ retry: false, stop: 'deadline' });
    expect(decision.reason).toContain('5000 ms deadline');
  });

  it('applies the deadline to a server-requested wait too', () => {
    const policy = policyWith({ deadlineMs: 10_000 });
    expect(policy.shouldRetry(apiError(429, { retryAfterMs: 9000 }), 1, 2000)).toMatchObject({
      stop: 'deadline',
    });
  });
});

describe('RetryPolicy options', () => {
  it('has documented defaults', () => {
    const policy = RetryPolicy.from();
    expect(policy).toMatchObject({
      maxRetries: 4,
      baseDelayMs: 500,
      maxDelayMs: 30_000,
      maxRetryAfterMs: 60_000,
      deadlineMs: undefined,
    });
  });

  it('returns the same policy when given one', () => {
    const policy = RetryPolicy.from({ maxRetries: 1 });
    expect(RetryPolicy.from(policy)).toBe(policy);
  });

  it.each([
    ['maxRetries', -1],
    ['maxRetries', 1.5],
    ['baseDelayMs', -5],
    ['maxDelayMs', Infinity],
    ['maxRetryAfterMs', NaN],
    ['deadlineMs', 0],
    ['random', 'nope'],
  ])('rejects %s = %s with InvalidOptionError naming it', (option, value) => {
    expect(() => RetryPolicy.from({ [option]: value })).toThrow(InvalidOptionError);
    expect(() => RetryPolicy.from({ [option]: value })).toThrow(`\`${option}\``);
  });

  it('rejects an attempt number below 1', () => {
    expect(() => policyWith().shouldRetry(apiError(503), 0)).toThrow(/`attempt`/);
  });
});

describe('tryAgainFor', () => {
  it('drives a Composition: the node re-runs as retryTask() children after the policy delays', async () => {
    vi.useFakeTimers();
    try {
      const policy = policyWith({ baseDelayMs: 1000 });
      const outcomes: (Error | 'ok')[] = [apiError(503), apiError(429, { retryAfterMs: 5000 }), 'ok'];
      const attempts: { attempt: number; at: number }[] = [];
      const start = performance.now();
      const node = new DAGNote('call');
      const composition = new Composition(new Map([[node, []]]), {
        maxTries: 5,
        configureNodeRunner: () =>
          new NodeRunner({
            executor: (_params, context) => {
              attempts.push({ attempt: context.attempt, at: performance.now() - start });
              const outcome = outcomes[context.attempt - 1] ?? 'ok';
              if (outcome === 'ok') return 'done';
              throw tryAgainFor(outcome, context.attempt, policy) ?? outcome;
            },
          }),
      });
      const status = composition.start();
      await vi.advanceTimersByTimeAsync(10_000);
      await expect(status).resolves.toBe('completed');
      expect(attempts).toEqual([
        { attempt: 1, at: 0 },
        { attempt: 2, at: 1000 }, // backoff
        { attempt: 3, at: 6000 }, // retry-after
      ]);
      expect(composition.results.get('call')).toBe('done');
    } finally {
      vi.useRealTimers();
    }
  });

  it("returns a TryAgainError with the policy's delay, the reason in its message and the error as cause", () => {
    const error = apiError(503);
    const tryAgain = tryAgainFor(error, 2, policyWith({ baseDelayMs: 100 }));
    expect(tryAgain).toBeInstanceOf(TryAgainError);
    expect(tryAgain?.delayMs).toBe(200);
    expect(tryAgain?.code).toBe('try_again');
    expect(tryAgain?.message).toContain('status 503');
    expect(tryAgain?.message).toContain('in 200 ms');
    expect(tryAgain?.cause).toBe(error);
  });

  it('honours retry-after', () => {
    expect(tryAgainFor(apiError(429, { retryAfterMs: 4321 }), 1, policyWith())?.delayMs).toBe(4321);
  });

  it('returns undefined for an error that must not be retried, an abort, or a spent budget', () => {
    const policy = policyWith({ maxRetries: 1 });
    expect(tryAgainFor(apiError(400), 1, policy)).toBeUndefined();
    expect(tryAgainFor(apiError(undefined, { code: 'aborted' }), 1, policy)).toBeUndefined();
    expect(tryAgainFor(apiError(503), 2, policy)).toBeUndefined();
  });
});

/** An executor that throws (or returns) the scripted outcomes in order, then keeps returning 'ok'. */
function scripted(outcomes: readonly (Error | 'ok')[]) {
  let call = 0;
  return vi.fn((): Promise<string> => {
    const outcome = outcomes[call++];
    if (outcome === undefined || outcome === 'ok') return Promise.resolve('ok');
    return Promise.reject(outcome);
  });
}

/** Settle a promise's outcome without an unhandled rejection while fake time advances. */
function track<T>(promise: Promise<T>): {
  readonly settled: () => boolean;
  readonly outcome: Promise<unknown>;
} {
  let settled = false;
  const outcome = promise.then(
    (value) => {
      settled = true;
      return { value };
    },
    (error: unknown) => {
      settled = true;
      return { error };
    },
  );
  return { settled: () => settled, outcome };
}

describe('retryWithRunners', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('returns the first result without retrying when the first attempt succeeds', async () => {
    const executor = scripted(['ok']);
    const runner = new NodeRunner({ executor });
    const seen: NodeRunner<unknown, string>[] = [];
    await expect(retryWithRunners(runner, policyWith(), { onAttempt: (r) => seen.push(r) })).resolves.toBe(
      'ok',
    );
    expect(executor).toHaveBeenCalledTimes(1);
    expect(seen).toEqual([runner]);
  });

  it('runs each retry on a fresh retryTask() child after the policy delay', async () => {
    const executor = scripted([apiError(503), apiError(502), 'ok']);
    const runners: NodeRunner<unknown, string>[] = [];
    const call = track(
      retryWithRunners(new NodeRunner({ executor }), policyWith({ baseDelayMs: 100 }), {
        onAttempt: (r) => runners.push(r),
      }),
    );

    await vi.advanceTimersByTimeAsync(0);
    expect(executor).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(99);
    expect(executor).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1); // first backoff: 100 ms
    expect(executor).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(199);
    expect(executor).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(1); // second backoff: 200 ms
    expect(executor).toHaveBeenCalledTimes(3);
    await expect(call.outcome).resolves.toEqual({ value: 'ok' });

    expect(runners.map((r) => r.attempt)).toEqual([1, 2, 3]);
    expect(runners[1]?.parentId).toBe(runners[0]?.instanceId);
    expect(runners[2]?.parentId).toBe(runners[1]?.instanceId);
    expect(runners.map((r) => r.status)).toEqual(['error', 'error', 'completed']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('honours retry-after instead of the backoff', async () => {
    const executor = scripted([apiError(429, { retryAfterMs: 5000 }), 'ok']);
    const call = track(retryWithRunners(new NodeRunner({ executor }), policyWith({ baseDelayMs: 10 })));
    await vi.advanceTimersByTimeAsync(4999);
    expect(executor).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(executor).toHaveBeenCalledTimes(2);
    await expect(call.outcome).resolves.toEqual({ value: 'ok' });
  });

  it('rethrows a first non-retryable error unwrapped, after one attempt', async () => {
    const error = apiError(401);
    const executor = scripted([error]);
    await expect(retryWithRunners(new NodeRunner({ executor }), policyWith())).rejects.toBe(error);
    expect(executor).toHaveBeenCalledTimes(1);
  });

  it('rethrows an abort error from a later attempt unwrapped, not as exhaustion', async () => {
    const abort = new AbortedError({ provider: 'openai' });
    const call = track(
      retryWithRunners(
        new NodeRunner({ executor: scripted([apiError(503), abort]) }),
        policyWith({ baseDelayMs: 1 }),
      ),
    );
    await vi.advanceTimersByTimeAsync(10);
    await expect(call.outcome).resolves.toEqual({ error: abort });
  });

  it('rethrows a first non-Error throw as it was thrown', async () => {
    const runner = new NodeRunner({ executor: () => Promise.reject(new Error('plain')) });
    await expect(retryWithRunners(runner, policyWith())).rejects.toThrow('plain');
    const stringThrower = new NodeRunner({
      executor: () => {
        // eslint-disable-next-line @typescript-eslint/only-throw-error
        throw 'a string';
      },
    });
    await expect(retryWithRunners(stringThrower, policyWith())).rejects.toBe('a string');
  });

  it('retries a retryable TypeError (p-retry would refuse one)', async () => {
    const error = Object.assign(new TypeError('fetch failed'), { isRetryable: true });
    const executor = scripted([error, 'ok']);
    const call = track(retryWithRunners(new NodeRunner({ executor }), policyWith({ baseDelayMs: 1 })));
    await vi.advanceTimersByTimeAsync(1);
    await expect(call.outcome).resolves.toEqual({ value: 'ok' });
  });

  it('raises RetriesExhaustedError with every error once the budget is spent', async () => {
    const errors = [apiError(503), apiError(500), apiError(529)];
    const executor = scripted(errors);
    const call = track(
      retryWithRunners(new NodeRunner({ executor }), policyWith({ maxRetries: 2, baseDelayMs: 10 })),
    );
    await vi.advanceTimersByTimeAsync(1000);
    const { error } = (await call.outcome) as { error: RetriesExhaustedError };
    expect(error).toBeInstanceOf(RetriesExhaustedError);
    expect(error.code).toBe('retries_exhausted');
    expect(error.stop).toBe('max_retries');
    expect(error.attempts).toBe(3);
    expect(error.errors).toEqual(errors);
    expect(error.lastError).toBe(errors[2]);
    expect(error.cause).toBe(errors[2]);
    expect(error.reason).toContain('retry budget of 2 retries is spent');
    expect(error.message).toMatch(
      /^Gave up after 3 attempts \(max_retries\): .*Last error: Error: HTTP 529$/,
    );
    expect(executor).toHaveBeenCalledTimes(3);
  });

  it('wraps a later non-retryable error in RetriesExhaustedError (stop: not_retryable)', async () => {
    const errors = [apiError(503), apiError(400)];
    const call = track(
      retryWithRunners(new NodeRunner({ executor: scripted(errors) }), policyWith({ baseDelayMs: 1 })),
    );
    await vi.advanceTimersByTimeAsync(10);
    const { error } = (await call.outcome) as { error: RetriesExhaustedError };
    expect(error).toMatchObject({ stop: 'not_retryable', attempts: 2, lastError: errors[1] });
  });

  it('stops at the deadline, saying so', async () => {
    const executor = scripted([apiError(503), apiError(503), apiError(503)]);
    const call = track(
      retryWithRunners(new NodeRunner({ executor }), policyWith({ baseDelayMs: 100, deadlineMs: 250 })),
    );
    await vi.advanceTimersByTimeAsync(1000);
    const { error } = (await call.outcome) as { error: RetriesExhaustedError };
    expect(error.stop).toBe('deadline'); // 0 + 100 fits; 100 + 200 would pass 250
    expect(executor).toHaveBeenCalledTimes(2);
    expect(error.message).toContain('250 ms deadline');
  });

  it('gives up at once when retry-after exceeds maxRetryAfterMs', async () => {
    const executor = scripted([apiError(429, { retryAfterMs: 120_000 })]);
    const error = await retryWithRunners(new NodeRunner({ executor }), policyWith()).catch((e: unknown) => e);
    expect(error).toMatchObject({ stop: 'retry_after_too_long', attempts: 1 });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('reports each retry to onRetry with a frozen info object, before sleeping', async () => {
    const infos: RetryInfo<unknown, string>[] = [];
    const first = apiError(503);
    const runner = new NodeRunner({ executor: scripted([first, 'ok']) });
    const call = track(
      retryWithRunners(runner, policyWith({ baseDelayMs: 300 }), { onRetry: (info) => infos.push(info) }),
    );
    await vi.advanceTimersByTimeAsync(0);
    expect(infos).toHaveLength(1);
    expect(infos[0]).toMatchObject({ attempt: 1, delayMs: 300, error: first, runner });
    expect(infos[0]?.reason).toContain('retry 1 of 4 in 300 ms');
    expect(Object.isFrozen(infos[0])).toBe(true);
    await vi.advanceTimersByTimeAsync(300);
    await expect(call.outcome).resolves.toEqual({ value: 'ok' });
  });

  it('aborting during the backoff rejects at once with the reason, with no further attempt and no timer left', async () => {
    const controller = new AbortController();
    const executor = scripted([apiError(503), 'ok']);
    const call = track(
      retryWithRunners(new NodeRunner({ executor }), policyWith({ baseDelayMs: 10_000 }), {
        signal: controller.signal,
      }),
    );
    await vi.advanceTimersByTimeAsync(100);
    expect(vi.getTimerCount()).toBe(1); // the backoff sleep
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    const reason = new Error('user cancelled');
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(call.settled()).toBe(true);
    await expect(call.outcome).resolves.toEqual({ error: reason });
    expect(executor).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(0);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('aborting during an attempt cancels its runner and does not retry', async () => {
    const controller = new AbortController();
    const runner = new NodeRunner({ executor: () => new Promise<string>(() => undefined) });
    const call = track(retryWithRunners(runner, policyWith(), { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(50);
    controller.abort(new Error('stop'));
    await vi.advanceTimersByTimeAsync(0);
    await expect(call.outcome).resolves.toMatchObject({ error: { message: 'stop' } });
    expect(runner.status).toBe('cancelled');
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('never calls the executor when the signal is already aborted', async () => {
    const executor = scripted(['ok']);
    const reason = new Error('too late');
    await expect(
      retryWithRunners(new NodeRunner({ executor }), policyWith(), { signal: AbortSignal.abort(reason) }),
    ).rejects.toBe(reason);
    expect(executor).not.toHaveBeenCalled();
  });

  it('removes every abort listener once settled, after success and after exhaustion', async () => {
    const controller = new AbortController();
    const { signal } = controller;
    const ok = track(
      retryWithRunners(new NodeRunner({ executor: scripted([apiError(503), 'ok']) }), policyWith(), {
        signal,
      }),
    );
    const failed = track(
      retryWithRunners(
        new NodeRunner({ executor: scripted([apiError(503), apiError(503)]) }),
        policyWith({ maxRetries: 1 }),
        { signal },
      ),
    );
    await vi.advanceTimersByTimeAsync(10_000);
    await expect(ok.outcome).resolves.toEqual({ value: 'ok' });
    await expect(failed.outcome).resolves.toMatchObject({ error: { code: 'retries_exhausted' } });
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects with what an onRetry hook threw and stops retrying', async () => {
    const hookError = new Error('hook broke');
    const executor = scripted([apiError(503), 'ok']);
    const call = track(
      retryWithRunners(new NodeRunner({ executor }), policyWith(), {
        onRetry: () => {
          throw hookError;
        },
      }),
    );
    await vi.advanceTimersByTimeAsync(10_000);
    await expect(call.outcome).resolves.toEqual({ error: hookError });
    expect(executor).toHaveBeenCalledTimes(1);
  });

  it('passes context inputs to every attempt', async () => {
    const seen: unknown[] = [];
    const runner = new NodeRunner<unknown, string>({
      executor: (_params, context) => {
        seen.push(context.inputs);
        return seen.length < 2 ? Promise.reject(apiError(503)) : Promise.resolve('ok');
      },
    });
    const call = track(
      retryWithRunners(runner, policyWith({ baseDelayMs: 1 }), { context: { inputs: { a: 1 } } }),
    );
    await vi.advanceTimersByTimeAsync(10);
    await expect(call.outcome).resolves.toEqual({ value: 'ok' });
    expect(seen).toEqual([{ a: 1 }, { a: 1 }]);
  });
});
