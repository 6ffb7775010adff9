// Workers and producers on BullMQ against a real redis-server, with model calls to the loopback fake
// provider server: worker processes (test/distributed/fixtures/worker-child.ts) run the chains of
// fixtures/chains.ts, the test process submits runs and counts the requests per run and node the server saw.
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { chain } from '../../src/chain/builder.ts';
import { ChainRunError } from '../../src/chain/errors.ts';
import { InputValidationError } from '../../src/chain/errors.ts';
import {
  ChainMismatchError,
  DistributedPerform,
  RemoteError,
  UnknownChainError,
  startWorker,
  type DistributedRunEvent,
} from '../../src/distributed/index.ts';
import { ModelClient, ProviderRegistry, createOpenAIProvider } from '../../src/index.ts';
import type { ChainResult } from '../../src/chain/types.ts';
import { fakeKey } from '../helpers/fake-keys.ts';
import { startFakeProviderServer, type FakeProviderServer } from '../support/fake-provider-server.ts';
import { skipRedis, startRedisServer, type RedisTestServer } from '../support/redis-server.ts';
import type * as Fixture from './fixtures/chains.ts';
import { spawnWorker } from './fixtures/spawn-worker.ts';

const MODEL = 'openai:gpt-4.1-mini';
let redis: RedisTestServer;
let fake: FakeProviderServer;
let chains: typeof Fixture.chains;
let queues = 0;
/** A fresh queue per test, so tests share no jobs. */
const queue = (): string => `q${process.pid}-${++queues}`;
/** Fast stall detection for the tests: a dead worker's job is taken again within ~4 s. */
const stall = { lockDurationMs: 3000, stalledIntervalMs: 1000 };

/** Requests the fake server saw per `runId node`, and by which API key. */
function requestsByNode(): Map<string, string[]> {
  const counts = new Map<string, string[]>();
  for (const request of fake.log) {
    const match = /run (\S+) node (\w)/u.exec(request.lastUserText);
    if (match === null) continue;
    const key = `${match[1]} ${match[2]}`;
    const list = counts.get(key) ?? [];
    list.push(request.headers.authorization ?? '');
    counts.set(key, list);
  }
  return counts;
}

function client(): ModelClient {
  const provider = createOpenAIProvider({
    baseURL: fake.openaiBaseURL,
    apiKey: fakeKey('test', 'inprocess', 'worker0123456789'),
  });
  return new ModelClient({ registry: new ProviderRegistry().register(provider) });
}

/** The environment of a worker process: the fake server, its own key, the fixture model. */
function workerEnv(name: string): Record<string, string> {
  return {
    OPENAI_BASE_URL: fake.openaiBaseURL,
    OPENAI_API_KEY: fakeKey('test', name, 'worker0123456789'),
    FIXTURE_MODEL: MODEL,
  };
}

describe.skipIf(skipRedis)('workers and producers on BullMQ against a real Redis', () => {
  beforeAll(async () => {
    process.env.FIXTURE_MODEL = MODEL;
    chains = (await import('./fixtures/chains.ts')).chains;
    [redis, fake] = await Promise.all([startRedisServer(), startFakeProviderServer({ latencyMs: 5 })]);
  });
  afterAll(async () => {
    await Promise.all([redis.close(), fake.close()]);
  });

  it('runs a submitted run on a worker, delivers node events, and never runs one runId twice', async () => {
    const q = queue();
    const worker = await startWorker({
      connection: redis.url,
      queue: q,
      chains,
      concurrency: 4,
      client: client(),
    });
    const events: DistributedRunEvent[] = [];
    const producer = new DistributedPerform({ connection: redis.url, queue: q, chains });
    try {
      const [first, again] = await Promise.all([
        producer.submit('diamond', { id: 'idem-1' }, { runId: 'idem-1', onEvent: (e) => events.push(e) }),
        producer.submit('diamond', { id: 'idem-1' }, { runId: 'idem-1' }),
      ]);
      const result = await first.result();
      expect(await again.result()).toBe(result);
      expect(result.runId).toBe('idem-1');
      expect(Object.keys(result.outputs).sort()).toEqual(['a', 'b', 'c', 'd']);
      expect(result.outputs.d).toEqual(expect.any(String));
      expect(result.usage.calls).toBe(4);
      expect(result.trace.map((r) => r.status)).toEqual(['completed', 'completed', 'completed', 'completed']);
      expect(Object.getPrototypeOf(result.outputs)).toBeNull();
      // The producer listened before submitting: one node-done event per node, with its usage.
      expect(events.map((e) => (e.type === 'node-done' ? e.node : e.type)).sort()).toEqual([
        'a',
        'b',
        'c',
        'd',
      ]);
      for (const event of events) {
        expect(event).toMatchObject({ type: 'node-done', runId: 'idem-1', usage: { calls: 1 } });
      }
      await producer.onIdle();
      expect([producer.submitted, producer.completed, producer.failed]).toEqual([2, 1, 0]);
    } finally {
      await producer.close();
    }
    // A new producer (a restart) submitting the finished id gets the stored result; nothing runs again.
    const restarted = new DistributedPerform({ connection: redis.url, queue: q, chains });
    try {
      const run = await restarted.submit('diamond', { id: 'idem-1' }, { runId: 'idem-1' });
      expect(run.existing).toBe(true);
      const result = await run.result();
      expect(result.outputs.a).toEqual(expect.any(String));
      for (const node of ['a', 'b', 'c', 'd']) expect(requestsByNode().get(`idem-1 ${node}`)).toHaveLength(1);
      expect(worker.completed).toBe(1);
    } finally {
      await restarted.close();
      await worker.close();
    }
  });

  it('checks chain names and inputs at submit, and a worker refuses a job whose chain hash differs', async () => {
    const q = queue();
    // The worker's diamond differs from the producer's in one template's text.
    const input = z.object({ id: z.string() });
    const changed = chain({ name: 'diamond', input, model: MODEL })
      .prompt('a', { template: 'run {{input.id}} node a' })
      .prompt('b', { after: ['a'], template: 'run {{input.id}} node b' })
      .prompt('c', { after: ['a'], template: 'run {{input.id}} node c' })
      .prompt('d', { after: ['b', 'c'], template: 'run {{input.id}} node d, shorter' })
      .build();
    const other = { ...chains, diamond: changed };
    expect(other.diamond.hash).not.toBe(chains.diamond.hash);
    expect(other.failing.hash).toBe(chains.failing.hash);
    const worker = await startWorker({ connection: redis.url, queue: q, chains: other, client: client() });
    const producer = new DistributedPerform({ connection: redis.url, queue: q, chains });
    try {
      await expect(producer.submit('nope' as 'diamond', { id: 'x' })).rejects.toBeInstanceOf(
        UnknownChainError,
      );
      await expect(producer.submit('diamond', { id: 3 } as unknown as { id: string })).rejects.toBeInstanceOf(
        InputValidationError,
      );
      const run = await producer.submit('diamond', { id: 'mismatch-1' }, { runId: 'mismatch-1' });
      const error = await run.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ChainMismatchError);
      expect(error).toMatchObject({
        code: 'chain_mismatch',
        chain: 'diamond',
        expected: chains.diamond.hash,
        actual: other.diamond.hash,
      });
      expect(requestsByNode().get('mismatch-1 a')).toBeUndefined();
      expect(worker.failed).toBe(1);
    } finally {
      await producer.close();
      await worker.close();
    }
  });

  it('rejects with the typed chain error rebuilt from the worker: code, node, outputs, trace, cause', async () => {
    const q = queue();
    const worker = await startWorker({ connection: redis.url, queue: q, chains, client: client() });
    const producer = new DistributedPerform({ connection: redis.url, queue: q, chains });
    try {
      const run = await producer.submit('failing', { id: 'fail-1' }, { runId: 'fail-1' });
      const error = await run.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ChainRunError);
      const failure = error as ChainRunError;
      expect(failure.code).toBe('chain_failed');
      expect(failure.node).toBe('b');
      expect(failure.message).toContain('no tides for fail-1');
      expect(failure.outputs.a).toEqual(expect.any(String));
      expect(failure.trace.find((r) => r.name === 'b')?.status).toBe('error');
      expect(failure.trace.find((r) => r.name === 'a')?.status).toBe('completed');
      expect(failure.usage.calls).toBe(1);
      expect(failure.cause).toBeInstanceOf(RemoteError);
      expect((failure.cause as RemoteError).message).toBe('no tides for fail-1');
      await producer.onIdle();
      expect(producer.failed).toBe(1);
      // Submitted again, the failed run is not retried: the same error comes back.
      const again = await producer.submit('failing', { id: 'fail-1' }, { runId: 'fail-1' });
      expect(again.existing).toBe(true);
      await expect(again.result()).rejects.toMatchObject({ code: 'chain_failed', node: 'b' });
      expect(requestsByNode().get('fail-1 a')).toHaveLength(1);
    } finally {
      await producer.close();
      await worker.close();
    }
  });

  it('bounds the runs a producer keeps waiting (maxPending), and is an EvalQueue finding chains by identity or name', async () => {
    const q = queue();
    const producer = new DistributedPerform({ connection: redis.url, queue: q, chains, maxPending: 2 });
    const jobs = new Queue(q, { connection: { host: '127.0.0.1', port: redis.port } });
    try {
      const first = await producer.submit('diamond', { id: 'bp-1' }, { runId: 'bp-1' });
      const second = await producer.submit('diamond', { id: 'bp-2' }, { runId: 'bp-2' });
      let submittedThird = false;
      const third = producer.submit('diamond', { id: 'bp-3' }, { runId: 'bp-3' }).then((run) => {
        submittedThird = true;
        return run;
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(submittedThird).toBe(false);
      expect(producer.pending).toBe(2);
      expect(await jobs.getWaitingCount()).toBe(2);
      const worker = await startWorker({ connection: redis.url, queue: q, chains, client: client() });
      try {
        const results = await Promise.all([first.result(), second.result(), (await third).result()]);
        expect(results.map((r) => r.runId)).toEqual(['bp-1', 'bp-2', 'bp-3']);
        // As an EvalQueue: the job's chain by identity, or another object of the same name and definition.
        const byIdentity = await producer.run(
          { chain: chains.diamond, input: { id: 'eq-1' }, runId: 'eq-1' },
          new AbortController().signal,
        );
        expect(byIdentity.outputs.d).toEqual(expect.any(String));
        const sameDefinition = chain({ name: 'diamond', input: z.object({ id: z.string() }), model: MODEL })
          .prompt('a', { template: 'run {{input.id}} node a' })
          .prompt('b', { after: ['a'], template: 'run {{input.id}} node b' })
          .prompt('c', { after: ['a'], template: 'run {{input.id}} node c' })
          .prompt('d', { after: ['b', 'c'], template: 'run {{input.id}} node d' })
          .build();
        expect(sameDefinition).not.toBe(chains.diamond);
        const byName = await producer.run(
          { chain: sameDefinition, input: { id: 'eq-2' }, runId: 'eq-2', model: MODEL },
          new AbortController().signal,
        );
        expect(byName.runId).toBe('eq-2');
        const aborted = new AbortController();
        aborted.abort(new Error('the evaluation stopped'));
        await expect(
          producer.run({ chain: chains.diamond, input: { id: 'eq-3' }, runId: 'eq-3' }, aborted.signal),
        ).rejects.toThrow('the evaluation stopped');
      } finally {
        await worker.close();
      }
    } finally {
      await jobs.close();
      await producer.close();
    }
  });

  it('a worker killed after computing a result and before acking: the retry restores every node and pays 0', async () => {
    const q = queue();
    const crashing = await spawnWorker(
      { url: redis.url, queue: q, crashBeforeAck: 'crash-1', ...stall },
      workerEnv('crash'),
    );
    const producer = new DistributedPerform({ connection: redis.url, queue: q, chains });
    try {
      const run = await producer.submit('diamond', { id: 'crash-1' }, { runId: 'crash-1' });
      expect((await crashing.exited).signal).toBe('SIGKILL');
      for (const node of ['a', 'b', 'c', 'd'])
        expect(requestsByNode().get(`crash-1 ${node}`)).toHaveLength(1);
      const worker = await startWorker({
        connection: redis.url,
        queue: q,
        chains,
        client: client(),
        ...stall,
      });
      try {
        const result = await run.result();
        expect(Object.keys(result.outputs).sort()).toEqual(['a', 'b', 'c', 'd']);
        expect(result.usage.calls).toBe(0);
        expect(result.usage.costUsd).toBe(0);
        for (const node of ['a', 'b', 'c', 'd'])
          expect(requestsByNode().get(`crash-1 ${node}`)).toHaveLength(1);
        expect(worker.completed).toBe(1);
      } finally {
        await worker.close();
      }
    } finally {
      await producer.close();
    }
  }, 20_000);

  it('SIGTERM drains a worker process: the runs in flight finish, no new job is taken, exit code 0', async () => {
    const q = queue();
    fake.options.latencyMs = 150;
    const child = await spawnWorker({ url: redis.url, queue: q, concurrency: 3 }, workerEnv('drain'));
    const producer = new DistributedPerform({ connection: redis.url, queue: q, chains });
    try {
      const before = fake.requests;
      const runs = await Promise.all(
        [1, 2, 3, 4, 5].map((i) => producer.submit('diamond', { id: `drain-${i}` }, { runId: `drain-${i}` })),
      );
      await fake.waitForRequests(before + 3);
      child.kill('SIGTERM');
      const exit = await child.exited;
      expect(exit.code).toBe(0);
      expect(exit.lines.at(-1)).toMatchObject({ done: true, completed: 3, failed: 0, running: 0 });
      const results = await Promise.allSettled(runs.slice(0, 3).map((r) => r.result()));
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
      // The two runs it never started are still waiting for a worker; one started now runs them.
      expect(requestsByNode().get('drain-4 a')).toBeUndefined();
      const worker = await startWorker({ connection: redis.url, queue: q, chains, client: client() });
      try {
        const rest: ChainResult<Record<string, unknown>>[] = await Promise.all(
          runs.slice(3).map((r) => r.result()),
        );
        expect(rest.map((r) => r.runId)).toEqual(['drain-4', 'drain-5']);
      } finally {
        await worker.close();
      }
    } finally {
      fake.options.latencyMs = 5;
      await producer.close();
    }
  }, 20_000);

  it('three worker processes x 200 runs, one SIGKILLed mid-run: 0 lost, 0 duplicated, no finished node paid twice', async () => {
    const q = queue();
    fake.reset();
    fake.options.latencyMs = 20;
    const concurrency = 6;
    const workers = await Promise.all(
      [1, 2, 3].map((n) =>
        spawnWorker({ url: redis.url, queue: q, concurrency, ...stall }, workerEnv(`fleet${n}`)),
      ),
    );
    const victimKey = `Bearer ${fakeKey('test', 'fleet1', 'worker0123456789')}`;
    const producer = new DistributedPerform({ connection: redis.url, queue: q, chains, maxPending: 100 });
    let killedAt = -1;
    try {
      const settledById = new Map<string, number>();
      const results: Promise<void>[] = [];
      for (let i = 0; i < 200; i += 1) {
        const runId = `fleet-${i}`;
        const run = await producer.submit('diamond', { id: runId }, { runId });
        results.push(
          run.result().then((result) => {
            expect(result.runId).toBe(runId);
            expect(Object.keys(result.outputs)).toHaveLength(4);
            settledById.set(runId, (settledById.get(runId) ?? 0) + 1);
            if (settledById.size === 60 && killedAt < 0) {
              killedAt = fake.log.length;
              workers[0]?.kill('SIGKILL');
            }
          }),
        );
      }
      await Promise.all(results);
      expect(killedAt).toBeGreaterThan(0);
      expect((await workers[0]?.exited)?.signal).toBe('SIGKILL');
      // 0 lost, 0 duplicated: every run settled once, and the queue completed each job once.
      expect(settledById.size).toBe(200);
      expect([...settledById.values()].every((n) => n === 1)).toBe(true);
      const jobs = new Queue(q, { connection: { host: '127.0.0.1', port: redis.port } });
      try {
        expect(await jobs.getJobCounts('completed', 'failed', 'waiting', 'active')).toEqual({
          completed: 200,
          failed: 0,
          waiting: 0,
          active: 0,
        });
      } finally {
        await jobs.close();
      }
      // No node that finished was paid twice: a node asked twice was in flight on the killed worker (asked by
      // it among its last requests, at most its concurrency x 2 parallel nodes), and asked once more elsewhere.
      const victimRequests = fake.log
        .filter((r) => r.headers.authorization === victimKey)
        .map((r) => /run (\S+) node (\w)/u.exec(r.lastUserText)?.slice(1).join(' '));
      const lastOfVictim = new Set(victimRequests.slice(-concurrency * 2));
      let repaid = 0;
      for (const [key, askers] of requestsByNode()) {
        expect(askers.length, key).toBeLessThanOrEqual(2);
        if (askers.length === 2) {
          repaid += 1;
          expect(askers[0], key).toBe(victimKey);
          expect(lastOfVictim.has(key), key).toBe(true);
        }
      }
      expect(repaid).toBeLessThanOrEqual(concurrency * 2);
      expect(requestsByNode().size).toBe(800);
      console.log(
        `[distributed] 3 workers x 200 runs, one SIGKILLed after 60 results: 200 settled once, ${repaid} in-flight nodes asked again, ${fake.requests} requests`,
      );
    } finally {
      fake.options.latencyMs = 5;
      await producer.close();
      for (const worker of workers.slice(1)) worker.kill('SIGTERM');
      await Promise.all(workers.map((w) => w.exited));
    }
  }, 60_000);
});

describe('without the optional bullmq package', () => {
  it('startWorker and DistributedPerform throw a MissingPeerDependencyError naming it', async () => {
    // A child process in which resolving "bullmq" fails, as when it is not installed.
    const script = `
      import { registerHooks } from 'node:module';
      registerHooks({
        resolve(specifier, context, next) {
          if (specifier === 'bullmq') throw Object.assign(new Error("Cannot find module 'bullmq'"), { code: 'MODULE_NOT_FOUND' });
          return next(specifier, context);
        },
      });
      const { z } = await import('zod');
      const { chain } = await import('./src/chain/builder.ts');
      const { startWorker, DistributedPerform } = await import('./src/distributed/index.ts');
      const chains = { one: chain({ input: z.object({}) }).prompt('a', { template: 'hi' }).build() };
      const seen = [];
      for (const make of [() => startWorker({ connection: 'redis://127.0.0.1:9', chains }), async () => new DistributedPerform({ connection: 'redis://127.0.0.1:9', chains })]) {
        try { await make(); seen.push('no error'); } catch (e) { seen.push({ name: e.name, code: e.code, packageName: e.packageName, message: e.message }); }
      }
      console.log(JSON.stringify(seen));
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      cwd: resolve(import.meta.dirname, '../..'),
    });
    const seen = JSON.parse(stdout) as { name: string; code: string; packageName: string; message: string }[];
    expect(seen).toHaveLength(2);
    for (const error of seen) {
      expect(error).toMatchObject({
        name: 'MissingPeerDependencyError',
        code: 'missing_peer_dependency',
        packageName: 'bullmq',
      });
      expect(error.message).toContain('npm install bullmq');
    }
  });
});
