import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ModelClient, PriceTable, ProviderRegistry, chain } from '../../src/index.ts';
import { evaluate } from '../../src/eval/batch.ts';
import { ResponseCache } from '../../src/eval/cache.ts';
import { exactMatch } from '../../src/eval/scorers.ts';
import { RunLeasedError, RunStore } from '../../src/eval/store.ts';
import { ScriptedProvider } from '../helpers/scripted-provider.ts';
import { classifierChain, scorers, writeDataset } from './fixtures/eval-chain.ts';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'symphonizer-batch-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  dirs.length = 0;
});

/** A classifier on a scripted provider: answers "spam" when the text says so; "boom" makes the call fail. */
function scripted() {
  const provider = new ScriptedProvider('fake', (request) => {
    const text = request.messages.at(-1)?.content ?? '';
    if (text.includes('boom')) return Object.assign(new Error('bad request'), { status: 400 });
    return { json: { label: text.includes('spam') ? 'spam' : 'ham' } };
  });
  const registry = new ProviderRegistry().register(provider);
  const c = chain({
    name: 'cls',
    input: z.object({ text: z.string().min(1) }),
    model: 'fake:m',
    client: new ModelClient({ registry }),
  })
    .prompt('classify', {
      prompt: ({ input }) => input.text,
      output: z.object({ label: z.enum(['spam', 'ham']) }),
    })
    .build();
  return { provider, registry, chain: c };
}

const rows = [
  { id: 'a', text: 'buy spam now', expected: { label: 'spam' } },
  { id: 'b', text: 'hello friend', expected: { label: 'ham' } },
  { id: 'c', text: 'hello spam', expected: { label: 'ham' } }, // the model gets this one wrong: FAIL
  { id: 'd', text: 'boom', expected: { label: 'ham' } }, // the call fails: ERROR
  { id: 'e', text: '', expected: { label: 'ham' } }, // fails the input schema: ERROR, no call
];

describe('evaluate()', () => {
  it('scores rows, and keeps errors apart from failures (an error is never a 0)', async () => {
    const { chain: c, registry, provider } = scripted();
    const result = await evaluate({
      chain: c,
      dataset: rows,
      scorers: [exactMatch({ name: 'correct', node: 'classify' })],
      registry,
    });
    const summary = result.summary.variants[0]!;
    expect({ pass: summary.pass, fail: summary.fail, error: summary.error }).toEqual({
      pass: 2,
      fail: 1,
      error: 2,
    });
    expect(summary.passRate).toBeCloseTo(2 / 3);
    expect(summary.scores.correct?.mean).toBeCloseTo(2 / 3);
    expect(result.rowErrors).toBe(1);
    expect(result.unreadRows).toBe(0); // the empty text was read; it fails the schema
    expect(summary.errors.map((e) => e.rowId).sort()).toEqual(['d', 'e']);
    expect(provider.requests).toHaveLength(4);
  });

  it('stores a CSV row that cannot be read apart from a real row with its line as id, and counts it', async () => {
    const { chain: c, registry, provider } = scripted();
    const dataset = join(tempDir(), 'rows.csv');
    writeFileSync(dataset, 'id,text\n1,buy spam\n2,"bad"quote\n3,hello\n');
    const store = RunStore.open(':memory:');
    const result = await evaluate({ chain: c, dataset, scorers: [], registry, store, runName: 'csv' });
    expect({ done: result.done, rowErrors: result.rowErrors, unreadRows: result.unreadRows }).toEqual({
      done: 3,
      rowErrors: 1,
      unreadRows: 1,
    });
    const stored = [...store.rows('csv')].map((r) => [r.rowId, r.line, r.status]);
    expect(stored.sort()).toEqual([
      ['!line:3', 3, 'error'],
      ['1', 2, 'pass'],
      ['3', 4, 'pass'],
    ]);
    expect(provider.requests).toHaveLength(2); // the real row "3" ran
    store.close();
  });

  it('resumes a run by name without redoing finished rows, and --retry-errors redoes only the errors', async () => {
    const store = join(tempDir(), 'runs.sqlite');
    const first = scripted();
    await evaluate({
      chain: first.chain,
      dataset: rows,
      scorers: [exactMatch({ name: 'correct', node: 'classify' })],
      registry: first.registry,
      store,
      runName: 'r1',
    });
    const again = scripted();
    const resumed = await evaluate({
      chain: again.chain,
      dataset: rows,
      scorers: [exactMatch({ name: 'correct', node: 'classify' })],
      registry: again.registry,
      store,
      runName: 'r1',
    });
    expect(resumed.done).toBe(0);
    expect(resumed.skipped).toBe(5);
    expect(again.provider.requests).toHaveLength(0);
    const retry = scripted();
    const retried = await evaluate({
      chain: retry.chain,
      dataset: rows,
      scorers: [exactMatch({ name: 'correct', node: 'classify' })],
      registry: retry.registry,
      store,
      runName: 'r1',
      retryErrors: true,
    });
    expect(retried.done).toBe(2);
    expect(retry.provider.requests).toHaveLength(1); // only "boom"; the empty row fails its schema again
    const db = RunStore.open(store);
    expect(db.countRows('r1')).toEqual({ total: 5, pass: 2, fail: 1, error: 2 });
    db.close();
  });

  it('compares variants on the same rows', async () => {
    const { chain: c, registry } = scripted();
    const result = await evaluate({
      chain: c,
      dataset: rows.slice(0, 3),
      scorers: [exactMatch({ name: 'correct', node: 'classify' })],
      registry,
      variants: [{ name: 'a' }, { name: 'b', model: 'fake:other' }],
    });
    expect(result.summary.variants.map((v) => [v.variant, v.rows])).toEqual([
      ['a', 3],
      ['b', 3],
    ]);
  });

  it('replays a recorded run from the cache with no provider at all, at no cost', async () => {
    const dir = tempDir();
    const recorded = scripted();
    const cacheFile = join(dir, 'cache.sqlite');
    const rw = ResponseCache.open(cacheFile, 'read-write');
    const first = await evaluate({
      chain: recorded.chain,
      dataset: rows.slice(0, 3),
      scorers,
      registry: recorded.registry,
      cache: rw,
    });
    rw.close();
    const dead = new ScriptedProvider('fake', () => new Error('the provider must not be called'));
    const ro = ResponseCache.open(cacheFile, 'read-only');
    const { chain: replayChain } = scripted();
    const replay = await evaluate({
      chain: replayChain,
      dataset: rows.slice(0, 3),
      scorers,
      registry: new ProviderRegistry().register(dead),
      cache: ro,
    });
    ro.close();
    expect(dead.requests).toHaveLength(0);
    expect(replay.summary.variants[0]?.cached).toBe(3);
    expect(replay.usage.totalTokens).toBe(0);
    expect(replay.summary.variants[0]?.scores).toEqual(first.summary.variants[0]?.scores);
  });

  it('refuses to go on when the pilot extrapolates above maxCostUsd, having spent only the pilot', async () => {
    const { chain: c, registry, provider } = scripted();
    const prices = PriceTable.default.withPrices({
      'fake:m': { inputPerMillion: 1000, outputPerMillion: 1000 },
    });
    const file = join(tempDir(), 'many.jsonl');
    writeFileSync(
      file,
      Array.from({ length: 50 }, (_, i) => JSON.stringify({ id: `x${i}`, text: `hello ${i}` })).join('\n'),
    );
    const result = await evaluate({
      chain: c,
      dataset: file,
      scorers: [exactMatch({ name: 'correct', node: 'classify' })],
      registry,
      prices,
      maxCostUsd: 0.5, // each row costs 15 tokens × $0.001 = $0.015: 50 rows = $0.75
      variants: [{ name: 'small', overrides: { classify: { maxTokens: 10 } } }],
    });
    expect(result.stopped).toBe('estimate');
    expect(result.estimatedCostUsd).toBeCloseTo(0.75);
    expect(provider.requests).toHaveLength(1);
  });

  it('stops cleanly when a call would pass the cost ceiling', async () => {
    const { chain: c, registry, provider } = scripted();
    const prices = PriceTable.default.withPrices({
      'fake:m': { inputPerMillion: 1e6, outputPerMillion: 1e6 },
    });
    const result = await evaluate({
      chain: c,
      dataset: rows.slice(0, 2),
      scorers,
      registry,
      prices,
      maxCostUsd: 1,
    });
    expect(result.stopped).toBe('budget');
    expect(provider.requests).toHaveLength(0);
    expect(result.done).toBe(0);
  });

  it('survives SIGKILL mid-batch: the resumed run has every row exactly once, scored as an uninterrupted run', async () => {
    const dir = tempDir();
    const dataset = writeDataset(join(dir, 'rows.jsonl'), 120);
    const storePath = join(dir, 'killed.sqlite');
    const child = spawn(process.execPath, ['test/eval/fixtures/batch-child.ts', storePath, dataset], {
      stdio: 'ignore',
    });
    // Kill it once some rows are committed (polled through a second connection, as WAL allows).
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      let count: number;
      try {
        const probe = RunStore.open(storePath);
        count = probe.countRows('killed').total;
        probe.close();
      } catch {
        count = 0;
      }
      if (count >= 20) break;
      if (child.exitCode !== null) throw new Error('the child finished before it could be killed');
    }
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const partial = RunStore.open(storePath);
    const before = partial.countRows('killed').total;
    partial.close();
    expect(before).toBeGreaterThanOrEqual(20);
    expect(before).toBeLessThan(120);

    const { chain: c, registry } = classifierChain();
    const resumed = await evaluate({
      chain: c,
      dataset,
      scorers,
      store: storePath,
      runName: 'killed',
      registry,
    });
    expect(resumed.skipped).toBe(before);
    expect(resumed.done).toBe(120 - before);

    const clean = classifierChain();
    const reference = await evaluate({
      chain: clean.chain,
      dataset,
      scorers,
      registry: clean.registry,
      store: join(dir, 'clean.sqlite'),
      runName: 'killed',
    });
    const db = RunStore.open(storePath);
    const stored = [...db.rows('killed')];
    db.close();
    expect(stored).toHaveLength(120);
    expect(new Set(stored.map((r) => r.rowId)).size).toBe(120);
    const ref = RunStore.open(join(dir, 'clean.sqlite'));
    const expected = new Map([...ref.rows('killed')].map((r) => [r.rowId, r.scores]));
    ref.close();
    for (const row of stored) expect(row.scores).toEqual(expected.get(row.rowId));
    expect(resumed.summary.variants[0]?.scores).toEqual(reference.summary.variants[0]?.scores);
  }, 60_000);

  it("calls through the chain's own client and its registry when given neither client nor registry", async () => {
    const { chain: c, provider } = scripted(); // 'fake' is registered only on the chain's own client
    const scorer = [exactMatch({ name: 'correct', node: 'classify' })];
    const plain = await evaluate({ chain: c, dataset: rows, scorers: scorer });
    const summary = plain.summary.variants[0]!;
    expect({ pass: summary.pass, fail: summary.fail, error: summary.error }).toEqual({
      pass: 2,
      fail: 1,
      error: 2,
    });
    expect(summary.errors.map((e) => e.code)).not.toContain('unknown_provider');
    expect(provider.requests).toHaveLength(4);
    expect(c.client?.usage.total.calls).toBe(3); // the chain's client metered the 3 answered calls

    // With a cost ceiling the batch needs its own budget: a client on the chain client's registry.
    const capped = await evaluate({ chain: c, dataset: rows, scorers: scorer, maxCostUsd: 1 });
    expect(capped.summary.variants[0]!.pass).toBe(2);
    expect(provider.requests).toHaveLength(8);
    expect(c.client?.usage.total.calls).toBe(3);
  });
});

describe('evaluate() run lease', () => {
  it('refuses a run leased by a live holder, without calling anything, and leaves the lease alone', async () => {
    const { chain: c, registry, provider } = scripted();
    const storePath = join(tempDir(), 'runs.sqlite');
    const other = RunStore.open(storePath);
    const held = other.acquireLease('leased');
    try {
      const attempt = evaluate({
        chain: c,
        dataset: rows,
        scorers: [],
        registry,
        store: storePath,
        runName: 'leased',
      });
      await expect(attempt).rejects.toBeInstanceOf(RunLeasedError);
      await attempt.catch((err: unknown) => {
        expect((err as RunLeasedError).code).toBe('run_leased');
        expect((err as RunLeasedError).lease.holder).toBe(held.holder);
      });
      expect(provider.requests).toHaveLength(0);
      expect(other.lease('leased')?.holder).toBe(held.holder);
      expect(other.countRows('leased').total).toBe(0);
    } finally {
      other.close();
    }
  });

  it('holds the lease while running, heartbeats it, and releases it at the end and on error', async () => {
    const { chain: c, registry } = classifierChain(20);
    const dir = tempDir();
    const storePath = join(dir, 'runs.sqlite');
    const probe = RunStore.open(storePath);
    try {
      const seen: { holder: string | undefined; heartbeatAt: number }[] = [];
      await evaluate({
        chain: c,
        dataset: writeDataset(join(dir, 'rows.jsonl'), 12),
        scorers,
        registry,
        store: storePath,
        runName: 'beat',
        concurrency: 1,
        lease: { heartbeatMs: 20, staleMs: 1000 },
        onProgress: () => {
          const lease = probe.lease('beat');
          seen.push({ holder: lease?.holder, heartbeatAt: lease?.heartbeatAt ?? 0 });
        },
      });
      expect(seen.length).toBeGreaterThan(5);
      expect(new Set(seen.map((s) => s.holder)).size).toBe(1);
      expect(seen[0]?.holder).toMatch(new RegExp(`:${process.pid}:`));
      expect(seen.at(-1)!.heartbeatAt).toBeGreaterThan(seen[0]!.heartbeatAt);
      expect(probe.lease('beat')).toBeUndefined();

      // A batch that throws (missing dataset file) releases its lease too.
      await expect(
        evaluate({
          chain: c,
          dataset: join(dir, 'missing.jsonl'),
          scorers,
          registry,
          store: storePath,
          runName: 'beat',
        }),
      ).rejects.toThrow();
      expect(probe.lease('beat')).toBeUndefined();
    } finally {
      probe.close();
    }
  });

  it('with lease.wait, waits for the holder to release, then runs; an abort ends the wait', async () => {
    const { chain: c, registry, provider } = scripted();
    const storePath = join(tempDir(), 'runs.sqlite');
    const other = RunStore.open(storePath);
    try {
      const held = other.acquireLease('queued');
      const waits: string[] = [];
      const waiting = evaluate({
        chain: c,
        dataset: rows,
        scorers: [],
        registry,
        store: storePath,
        runName: 'queued',
        lease: { wait: true, heartbeatMs: 20, staleMs: 60_000, onWait: (lease) => waits.push(lease.holder) },
      });
      await new Promise((resolve) => setTimeout(resolve, 150));
      expect(provider.requests).toHaveLength(0);
      expect(waits).toEqual([held.holder]);
      other.releaseLease('queued', held.holder);
      const result = await waiting;
      expect(result.stopped).toBeUndefined();
      expect(result.done).toBe(rows.length);

      other.acquireLease('queued');
      const controller = new AbortController();
      const aborted = evaluate({
        chain: c,
        dataset: rows,
        scorers: [],
        registry,
        store: storePath,
        runName: 'queued',
        signal: controller.signal,
        lease: { wait: true, heartbeatMs: 20 },
      });
      setTimeout(() => {
        controller.abort();
      }, 50);
      const stopped = await aborted;
      expect(stopped).toMatchObject({ stopped: 'aborted', done: 0 });
    } finally {
      other.close();
    }
  });
});

interface ChildOutcome {
  readonly pid: number;
  readonly code: number | null;
  readonly stdout: string;
  readonly result: {
    ok: boolean;
    done?: number;
    skipped?: number;
    code?: string;
    holder?: string;
    pid?: number;
  };
}

/**
 * Starts test/eval/fixtures/lease-child.ts; `until` resolves once its stdout contains `text`; `go` starts its
 * batch (after it printed `ready`).
 */
function leaseChild(storePath: string, dataset: string, mode: 'wait' | 'no-wait', latencyMs: number) {
  const child = spawn(
    process.execPath,
    ['test/eval/fixtures/lease-child.ts', storePath, dataset, mode, String(latencyMs)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  let stdout = '';
  const listeners: (() => void)[] = [];
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    for (const listener of listeners) listener();
  });
  const exited = new Promise<ChildOutcome>((resolve) => {
    child.once('exit', (code) => {
      const last = stdout.trim().split('\n').at(-1) ?? '';
      resolve({
        pid: child.pid ?? 0,
        code,
        stdout,
        result: last.startsWith('{') ? (JSON.parse(last) as ChildOutcome['result']) : { ok: false },
      });
    });
  });
  const until = (text: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (stdout.includes(text)) resolve();
        else if (child.exitCode !== null) reject(new Error(`exited before printing ${text}: ${stdout}`));
      };
      listeners.push(check);
      void exited.then(check);
      check();
    });
  const go = async (): Promise<void> => {
    await until('ready\n');
    child.stdin.end('go\n');
  };
  return { child, exited, until, go };
}

function storedIds(storePath: string): string[] {
  const db = RunStore.open(storePath);
  try {
    return [...db.rows('shared')].map((r) => r.rowId);
  } finally {
    db.close();
  }
}

describe('two processes on one run', () => {
  it('started at once: exactly one runs the rows, the other fails with run_leased naming the holder', async () => {
    const dir = tempDir();
    const dataset = writeDataset(join(dir, 'rows.jsonl'), 60);
    const storePath = join(dir, 'runs.sqlite');
    const a = leaseChild(storePath, dataset, 'no-wait', 40);
    const b = leaseChild(storePath, dataset, 'no-wait', 40);
    await Promise.all([a.until('ready\n'), b.until('ready\n')]);
    await Promise.all([a.go(), b.go()]);
    const outcomes = await Promise.all([a.exited, b.exited]);
    const winners = outcomes.filter((o) => o.result.ok);
    const losers = outcomes.filter((o) => !o.result.ok);
    expect(winners).toHaveLength(1);
    expect(losers).toHaveLength(1);
    expect(winners[0]!.result).toMatchObject({ done: 60, skipped: 0 });
    expect(losers[0]!.code).toBe(1);
    expect(losers[0]!.result).toMatchObject({ code: 'run_leased', host: hostname(), pid: winners[0]!.pid });
    expect(losers[0]!.result.holder).toMatch(new RegExp(`^${hostname()}:${winners[0]!.pid}:`));
    expect(losers[0]!.stdout).not.toContain('row ');
    const ids = storedIds(storePath);
    expect(ids).toHaveLength(60);
    expect(new Set(ids).size).toBe(60);
  }, 60_000);

  it('with wait, the second waits for the first and then runs zero rows', async () => {
    const dir = tempDir();
    const dataset = writeDataset(join(dir, 'rows.jsonl'), 30);
    const storePath = join(dir, 'runs.sqlite');
    const a = leaseChild(storePath, dataset, 'no-wait', 30);
    const b = leaseChild(storePath, dataset, 'wait', 30);
    await Promise.all([a.go(), b.until('ready\n')]);
    await a.until('row 1\n');
    await b.go();
    const [first, second] = await Promise.all([a.exited, b.exited]);
    expect(first.result).toMatchObject({ ok: true, done: 30, skipped: 0 });
    expect(second.stdout).toContain('waiting\n');
    expect(second.result).toMatchObject({ ok: true, done: 0, skipped: 30 });
    expect(second.code).toBe(0);
    const ids = storedIds(storePath);
    expect(ids).toHaveLength(30);
    expect(new Set(ids).size).toBe(30);
  }, 60_000);

  it('a SIGKILLed holder does not lock the run: a new process takes the lease over and resumes', async () => {
    const dir = tempDir();
    const dataset = writeDataset(join(dir, 'rows.jsonl'), 60);
    const storePath = join(dir, 'runs.sqlite');
    const a = leaseChild(storePath, dataset, 'no-wait', 40);
    await a.go();
    await a.until('row 5\n');
    a.child.kill('SIGKILL');
    await a.exited;
    const before = storedIds(storePath).length;
    expect(before).toBeGreaterThanOrEqual(5);
    expect(before).toBeLessThan(60);
    const b = leaseChild(storePath, dataset, 'no-wait', 0);
    await b.go();
    const resumed = await b.exited;
    expect(resumed.result).toMatchObject({ ok: true, done: 60 - before, skipped: before });
    const ids = storedIds(storePath);
    expect(ids).toHaveLength(60);
    expect(new Set(ids).size).toBe(60);
  }, 60_000);
});
