// evaluate() over an EvalQueue: every unit goes to the queue under a runId stable per run x variant x row, the
// producer stores each row once (first finished write wins), a resumed evaluation re-hands unfinished units
// under the same ids (an idempotent submit runs nothing twice), `concurrency` bounds the jobs waiting, and the
// cost ceiling is read from the units' usage. The queue here is a small in-process implementation of the
// interface: the interface's contract is what is under test.
import { describe, expect, it } from 'vitest';
import { ModelClient, ProviderRegistry } from '../../src/index.ts';
import type { ChainResult } from '../../src/chain/types.ts';
import { evalUnitRunId, evaluate } from '../../src/eval/batch.ts';
import { ResponseCache } from '../../src/eval/cache.ts';
import type { EvalJob, EvalQueue } from '../../src/eval/queue.ts';
import { RunStore } from '../../src/eval/store.ts';
import { classifierChain, scorers } from './fixtures/eval-chain.ts';

type Result = ChainResult<Record<string, unknown>>;

/**
 * Runs jobs on its own client (its "workers"), at most one execution per runId (idempotent submit: a job
 * handed again joins the first execution, or gets its result), and records what it saw.
 */
class InProcessQueue implements EvalQueue {
  readonly jobs = new Map<string, Promise<Result>>();
  readonly handed: string[] = [];
  readonly executions = new Map<string, number>();
  readonly jobsSeen: EvalJob[] = [];
  waiting = 0;
  maxWaiting = 0;
  readonly #client: ModelClient;
  readonly #delayMs: number;
  readonly #costUsd: number;

  constructor(options: { delayMs?: number; costUsd?: number } = {}) {
    this.#client = new ModelClient({ registry: new ProviderRegistry() });
    this.#delayMs = options.delayMs ?? 0;
    this.#costUsd = options.costUsd ?? 0;
  }

  run(job: EvalJob, signal: AbortSignal): Promise<Result> {
    this.handed.push(job.runId);
    this.jobsSeen.push(job);
    let execution = this.jobs.get(job.runId);
    if (execution === undefined) {
      execution = this.#execute(job);
      this.jobs.set(job.runId, execution);
    }
    // Each hand-over is one job waiting for this producer until it settles or the producer gives up on it.
    this.waiting++;
    this.maxWaiting = Math.max(this.maxWaiting, this.waiting);
    const done = (): void => {
      this.waiting--;
    };
    return new Promise<Result>((resolve, reject) => {
      signal.addEventListener(
        'abort',
        () => {
          reject(new Error('no longer waited for'));
        },
        { once: true },
      );
      execution.then(resolve, reject);
    }).finally(done);
  }

  async #execute(job: EvalJob): Promise<Result> {
    this.executions.set(job.runId, (this.executions.get(job.runId) ?? 0) + 1);
    if (this.#delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.#delayMs));
    const result = await job.chain.run(job.input, {
      client: this.#client,
      model: job.model,
      overrides: job.overrides,
    });
    if (this.#costUsd === 0) return result;
    return { ...result, usage: { ...result.usage, costUsd: this.#costUsd } };
  }
}

const dataset = Array.from({ length: 12 }, (_, i) => ({
  id: `r${i + 1}`,
  text: `message number ${i + 1}`,
  expected: { label: i % 2 === 0 ? 'ham' : 'spam' },
}));

describe('evaluate() over an EvalQueue', () => {
  it('hands every row x variant to the queue once, under stable ids, and stores the same rows as a local run', async () => {
    const { chain } = classifierChain();
    const queue = new InProcessQueue();
    const variants = [{ name: 'a' }, { name: 'b', model: 'sim:other' }];
    const store = RunStore.open(':memory:');
    const viaQueue = await evaluate({ chain, dataset, scorers, variants, queue, store, runName: 'q' });
    expect(viaQueue.done).toBe(24);
    expect(queue.handed).toHaveLength(24);
    expect(new Set(queue.handed).size).toBe(24);
    expect(queue.handed).toContain(evalUnitRunId('q', 'b', 'r7'));
    expect(queue.jobsSeen.find((j) => j.runId === evalUnitRunId('q', 'b', 'r7'))).toMatchObject({
      model: 'sim:other',
      input: { text: 'message number 7' },
    });
    expect(store.countRows('q').total).toBe(24);

    const local = await evaluate({ chain, dataset, scorers, variants, runName: 'q' });
    const pick = (r: typeof local) =>
      r.summary.variants.map((v) => ({ variant: v.variant, pass: v.pass, fail: v.fail, error: v.error }));
    expect(pick(viaQueue)).toEqual(pick(local));
    store.close();
  });

  it('gives the same id to the same unit in every invocation, and different ids to different units', () => {
    expect(evalUnitRunId('run', 'v', 'r1')).toBe(evalUnitRunId('run', 'v', 'r1'));
    expect(evalUnitRunId('run', 'v', 'r1')).toMatch(/^eval:[0-9a-f]{40}$/);
    const ids = new Set([
      evalUnitRunId('run', 'v', 'r1'),
      evalUnitRunId('run', 'v', 'r2'),
      evalUnitRunId('run', 'w', 'r1'),
      evalUnitRunId('other', 'v', 'r1'),
      evalUnitRunId('run', 'v\u0000r', '1'),
    ]);
    expect(ids.size).toBe(5);
  });

  it('resumed after an abort, re-hands only unfinished units with the same ids, and nothing executes twice', async () => {
    const { chain } = classifierChain();
    const queue = new InProcessQueue({ delayMs: 15 });
    const store = RunStore.open(':memory:');
    const controller = new AbortController();
    const first = await evaluate({
      chain,
      dataset,
      scorers,
      queue,
      store,
      runName: 'resume',
      concurrency: 3,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.done === 4) controller.abort();
      },
    });
    expect(first.stopped).toBe('aborted');
    const storedAfterFirst = store.countRows('resume').total;
    expect(storedAfterFirst).toBeGreaterThanOrEqual(4);
    expect(storedAfterFirst).toBeLessThan(12);
    const handedFirst = [...queue.handed];

    const second = await evaluate({
      chain,
      dataset,
      scorers,
      queue,
      store,
      runName: 'resume',
      concurrency: 3,
    });
    expect(second.skipped).toBe(storedAfterFirst);
    expect(second.done).toBe(12 - storedAfterFirst);
    const handedSecond = queue.handed.slice(handedFirst.length);
    // Units stored before are not handed again; units in flight at the abort are, under their first id.
    const stored = new Set([...store.rows('resume')].map((r) => evalUnitRunId('resume', r.variant, r.rowId)));
    expect(handedSecond.every((id) => stored.has(id))).toBe(true);
    const reHanded = handedSecond.filter((id) => handedFirst.includes(id));
    expect(reHanded.length).toBeGreaterThan(0);
    // The idempotent submit: every unit executed exactly once over both invocations.
    expect(queue.executions.size).toBe(12);
    expect([...queue.executions.values()].every((n) => n === 1)).toBe(true);
    const ids = [...store.rows('resume')].map((r) => r.rowId);
    expect(ids).toHaveLength(12);
    expect(new Set(ids).size).toBe(12);
    store.close();
  });

  it('keeps at most `concurrency` jobs waiting in the queue', async () => {
    const { chain } = classifierChain();
    const queue = new InProcessQueue({ delayMs: 5 });
    await evaluate({
      chain,
      dataset,
      scorers,
      queue,
      concurrency: 4,
      variants: [{ name: 'a' }, { name: 'b' }],
    });
    expect(queue.handed).toHaveLength(24);
    expect(queue.maxWaiting).toBe(4);
  });

  it('stops at the cost ceiling read from the units’ usage, with the finished rows stored', async () => {
    const { chain } = classifierChain();
    const queue = new InProcessQueue({ costUsd: 0.25 });
    const store = RunStore.open(':memory:');
    const result = await evaluate({
      chain,
      dataset,
      scorers,
      queue,
      store,
      runName: 'c',
      maxCostUsd: 1,
      concurrency: 1,
    });
    expect(result.stopped).toBe('budget');
    expect(result.usage.costUsd).toBeCloseTo(1, 10);
    expect(store.countRows('c').total).toBe(4);
    store.close();
  });

  it('stores a unit the queue failed as an ERROR row with the chain error’s node and code', async () => {
    const { chain } = classifierChain();
    const failing: EvalQueue = {
      run: async (job) => {
        if (job.runId === evalUnitRunId('f', 'default', 'r2')) {
          const { chain: c } = classifierChain();
          // A real chain failure: an unknown model id, raised by the chain with its node.
          return c.run(job.input as { text: string }, { model: 'nope:x' });
        }
        return job.chain.run(job.input);
      },
    };
    const store = RunStore.open(':memory:');
    const result = await evaluate({
      chain,
      dataset: dataset.slice(0, 3),
      scorers,
      queue: failing,
      store,
      runName: 'f',
    });
    expect(result.summary.variants[0]?.error).toBe(1);
    const row = [...store.rows('f')].find((r) => r.rowId === 'r2');
    expect(row?.status).toBe('error');
    expect(row?.error?.node).toBe('classify');
    expect(row?.error?.code).toBe('unknown_provider');
    store.close();
  });

  it('refuses a cache, a client or a registry with a queue: the workers make the calls', async () => {
    const { chain } = classifierChain();
    const queue = new InProcessQueue();
    const cache = ResponseCache.open(':memory:');
    await expect(evaluate({ chain, dataset, scorers, queue, cache })).rejects.toMatchObject({
      code: 'invalid_option',
      option: 'cache',
    });
    await expect(
      evaluate({ chain, dataset, scorers, queue, registry: new ProviderRegistry() }),
    ).rejects.toMatchObject({
      option: 'registry',
    });
    cache.close();
    expect(queue.handed).toHaveLength(0);
  });
});
