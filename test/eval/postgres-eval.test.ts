// evaluate() and the PostgreSQL run store against a real PostgreSQL (test/support/postgres-server.ts):
// evaluate({ store: 'postgres://…' }) end to end with resume and retryErrors, two stores (two pools) writing
// the same rows at once, processes racing for one run's lease and a SIGKILLed holder taken over, schema
// creation by processes opening at once, and no password in any error.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluate } from '../../src/eval/batch.ts';
import { PostgresRunStore } from '../../src/eval/postgres-store.ts';
import { summarizeStoredRun } from '../../src/eval/report.ts';
import { openEvalStore } from '../../src/eval/open-store.ts';
import { sqliteEvalStore } from '../../src/eval/run-store.ts';
import { RunStore, StoreOpenError, StoreUnavailableError } from '../../src/eval/store.ts';
import type { RowRecord } from '../../src/eval/types.ts';
import { freePort } from '../support/server-process.ts';
import { skipPostgres, startPostgresServer, type PostgresTestServer } from '../support/postgres-server.ts';
import { classifierChain, scorers, writeDataset } from './fixtures/eval-chain.ts';

let server: PostgresTestServer;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'symphonizer-pg-eval-'));
  if (!skipPostgres) server = await startPostgresServer();
}, 60_000);

afterAll(async () => {
  if (!skipPostgres) await server.close();
  rmSync(dir, { recursive: true, force: true });
});

function row(rowId: string, attempts: number): RowRecord {
  return {
    run: 'race',
    variant: 'base',
    rowId,
    line: Number(rowId.slice(1)),
    status: 'pass',
    input: { text: rowId },
    scores: { correct: { score: 1 } },
    usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2, costUsd: 0, calls: 1, unpricedCalls: 0 },
    latencyMs: attempts,
    attempts,
    cached: false,
    finishedAt: Date.now(),
  };
}

async function storedIds(url: string, run: string): Promise<string[]> {
  const store = await PostgresRunStore.open(url);
  try {
    const ids: string[] = [];
    for await (const r of store.summaryRows(run)) ids.push(r.rowId);
    return ids;
  } finally {
    await store.close();
  }
}

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

/** test/eval/fixtures/lease-child.ts on a PostgreSQL URL: one evaluating process of a run named `shared`. */
function leaseChild(url: string, dataset: string, mode: 'wait' | 'no-wait', latencyMs: number) {
  const child = spawn(
    process.execPath,
    ['test/eval/fixtures/lease-child.ts', url, dataset, mode, String(latencyMs)],
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

/** A database of its own per test, so runs named alike do not meet. */
let databases = 0;
async function freshUrl(): Promise<string> {
  const name = `eval_${process.pid}_${++databases}`;
  const pg = await import('pg');
  const client = new pg.default.Client({ connectionString: server.url });
  await client.connect();
  await client.query(`CREATE DATABASE ${name}`);
  await client.end();
  return server.url.replace(/\/[^/]+$/, `/${name}`);
}

describe.skipIf(skipPostgres)('evaluate() on PostgreSQL', () => {
  it("runs with store: 'postgres://…', resumes by name without redoing rows, retries only the errors", async () => {
    const url = await freshUrl();
    const dataset = [
      { id: 'a', text: 'buy spam now', expected: { label: 'spam' } },
      { id: 'b', text: 'hello friend', expected: { label: 'ham' } },
      { id: 'c', text: '', expected: { label: 'ham' } }, // fails the input schema: an ERROR row
    ];
    const { chain, registry } = classifierChain();
    const first = await evaluate({ chain, dataset, scorers, registry, store: url, runName: 'r1' });
    expect(first.done).toBe(3);
    const local = await evaluate({ chain, dataset, scorers, registry, runName: 'r1' });
    const pick = (r: typeof first) =>
      r.summary.variants.map((v) => ({
        rows: v.rows,
        pass: v.pass,
        fail: v.fail,
        error: v.error,
        n: v.latencyMs.n,
      }));
    expect(pick(first)).toEqual(pick(local));

    const again = await evaluate({ chain, dataset, scorers, registry, store: url, runName: 'r1' });
    expect({ done: again.done, skipped: again.skipped }).toEqual({ done: 0, skipped: 3 });
    const retried = await evaluate({
      chain,
      dataset,
      scorers,
      registry,
      store: url,
      runName: 'r1',
      retryErrors: true,
    });
    expect({ done: retried.done, skipped: retried.skipped }).toEqual({ done: 1, skipped: 2 });

    const store = await openEvalStore(url);
    try {
      expect(store.kind).toBe('postgres');
      expect((await store.run('r1'))?.counts.total).toBe(3);
      expect(await store.lease('r1')).toBeUndefined(); // released at the end
    } finally {
      await store.close();
    }
  }, 60_000);

  it('two stores (two pools) writing the same rows at once store each row once: the first write wins', async () => {
    const url = await freshUrl();
    const [a, b] = await Promise.all([PostgresRunStore.open(url), PostgresRunStore.open(url)]);
    try {
      await a.beginRun({ run: 'race', chain: 'c', variants: ['base'] });
      const ids = Array.from({ length: 200 }, (_, i) => `r${i + 1}`);
      const writes = await Promise.all(
        ids.flatMap((id) => [
          a.putRow(row(id, 1)).then((written) => ({ id, written, by: 1 })),
          b.putRow(row(id, 2)).then((written) => ({ id, written, by: 2 })),
        ]),
      );
      const winners = new Map<string, number>();
      for (const w of writes) {
        if (!w.written) continue;
        expect(winners.has(w.id)).toBe(false); // exactly one write of each row succeeds
        winners.set(w.id, w.by);
      }
      expect(winners.size).toBe(200);
      const stored: RowRecord[] = [];
      for await (const r of a.rows('race')) stored.push(r);
      expect(stored).toHaveLength(200);
      // Each stored row is the one whose write succeeded, never a mix.
      for (const r of stored) expect(r.attempts).toBe(winners.get(r.rowId));
      expect(await b.countRows('race')).toEqual({ total: 200, pass: 200, fail: 0, error: 0 });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  }, 60_000);

  it('creates its tables once when several processes open a new database at the same moment', async () => {
    const url = await freshUrl();
    const stores = await Promise.all(
      Array.from({ length: 6 }, () => PostgresRunStore.open(url, { schema: 'evals' })),
    );
    try {
      await stores[0]!.beginRun({ run: 'x', chain: 'c', variants: ['v'] });
      for (const s of stores) expect((await s.runs()).map((r) => r.name)).toEqual(['x']);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  }, 60_000);

  it('two processes started at once on one run: one runs every row, the other fails with run_leased', async () => {
    const url = await freshUrl();
    const dataset = writeDataset(join(dir, 'lease-rows.jsonl'), 40);
    const a = leaseChild(url, dataset, 'no-wait', 30);
    const b = leaseChild(url, dataset, 'no-wait', 30);
    await Promise.all([a.until('ready\n'), b.until('ready\n')]);
    await Promise.all([a.go(), b.go()]);
    const outcomes = await Promise.all([a.exited, b.exited]);
    const winners = outcomes.filter((o) => o.result.ok);
    const losers = outcomes.filter((o) => !o.result.ok);
    expect(winners).toHaveLength(1);
    expect(losers).toHaveLength(1);
    expect(winners[0]!.result).toMatchObject({ done: 40, skipped: 0 });
    expect(losers[0]!.result).toMatchObject({ code: 'run_leased', host: hostname(), pid: winners[0]!.pid });
    const ids = await storedIds(url, 'shared');
    expect(ids).toHaveLength(40);
    expect(new Set(ids).size).toBe(40);
  }, 60_000);

  it('a SIGKILLed holder does not lock the run: a new process takes the lease over and resumes', async () => {
    const url = await freshUrl();
    const dataset = writeDataset(join(dir, 'kill-rows.jsonl'), 40);
    const a = leaseChild(url, dataset, 'no-wait', 40);
    await a.go();
    await a.until('row 5\n');
    a.child.kill('SIGKILL');
    await a.exited;
    const before = (await storedIds(url, 'shared')).length;
    expect(before).toBeGreaterThanOrEqual(5);
    expect(before).toBeLessThan(40);
    const b = leaseChild(url, dataset, 'no-wait', 0);
    await b.go();
    const resumed = await b.exited;
    expect(resumed.result).toMatchObject({ ok: true, done: 40 - before, skipped: before });
    const ids = await storedIds(url, 'shared');
    expect(ids).toHaveLength(40);
    expect(new Set(ids).size).toBe(40);
  }, 60_000);

  it('never shows the URL password: not in the message, hint, cause or inspected error', async () => {
    const password = 'pw-Secr3t-Xyz';
    const closed = await freePort();
    const cases = [
      `postgres://someone:${password}@127.0.0.1:${closed}/db`, // nothing listens
      `postgres://${server.user}:${password}@127.0.0.1:${server.port}/no_such_database`, // the server refuses
    ];
    for (const url of cases) {
      const error = await PostgresRunStore.open(url).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(StoreOpenError);
      const open = error as StoreOpenError;
      expect(open.code).toBe('store_open');
      expect(open.path).not.toContain(password);
      expect(open.path).toMatch(/^postgres:\/\/[^:@]+@127\.0\.0\.1:\d+\//);
      expect(`${open.message} ${open.hint ?? ''}`).not.toContain(password);
      expect(inspect(open, { depth: 10 })).not.toContain(password);
      expect(JSON.stringify(open)).not.toContain(password);
    }
    const { chain, registry } = classifierChain();
    const viaEvaluate = await evaluate({
      chain,
      dataset: [{ text: 'x' }],
      scorers,
      registry,
      store: cases[1],
    }).catch((err: unknown) => err);
    expect(viaEvaluate).toBeInstanceOf(StoreOpenError);
    expect(inspect(viaEvaluate, { depth: 10 })).not.toContain(password);
    expect((viaEvaluate as Error).message).toContain('no_such_database');
  }, 60_000);

  it('stops with store_unavailable (no password) when the database goes away mid-run', async () => {
    const own = await startPostgresServer('gone');
    const password = 'gone-Pw-Secr3t';
    const url = own.url.replace(`${own.user}@`, `${own.user}:${password}@`);
    const { chain, registry } = classifierChain(20);
    const dataset = writeDataset(join(dir, 'gone-rows.jsonl'), 200);
    let stopped = false;
    const outcome = await evaluate({
      chain,
      dataset,
      scorers,
      registry,
      store: url,
      runName: 'gone',
      concurrency: 2,
      onProgress: (p) => {
        if (p.done >= 5 && !stopped) {
          stopped = true;
          void own.close();
        }
      },
    }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(stopped).toBe(true);
    expect(outcome).toBeInstanceOf(StoreUnavailableError);
    expect((outcome as StoreUnavailableError).code).toBe('store_unavailable');
    expect((outcome as StoreUnavailableError).location).toBe(own.url);
    expect(inspect(outcome, { depth: 10 })).not.toContain(password);
  }, 60_000);

  it('summarises a run as the SQLite store does: counts, means, CIs, usage and exact percentiles', async () => {
    const url = await freshUrl();
    const pgStore = await PostgresRunStore.open(url);
    const sqlite = sqliteEvalStore(RunStore.open(':memory:'));
    try {
      let seed = 7;
      const random = (): number => {
        seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
        return seed / 2 ** 31;
      };
      const records: RowRecord[] = [];
      for (const variant of ['b-second', 'a-first']) {
        for (let i = 1; i <= 400; i++) {
          const roll = random();
          const status = roll < 0.1 ? 'error' : roll < 0.4 ? 'fail' : 'pass';
          records.push({
            ...row(`r${i}`, 1 + Math.floor(random() * 3)),
            run: 'parity',
            variant,
            status,
            scores: status === 'error' ? {} : { correct: { score: random() }, other: { score: random() } },
            latencyMs: random() * 1000,
            cached: random() < 0.1,
            usage: {
              inputTokens: 10,
              outputTokens: 5,
              totalTokens: 15,
              costUsd: random() / 100,
              calls: 1,
              unpricedCalls: 0,
            },
            ...(status === 'error' ? { error: { code: 'api_error', message: `boom ${i}`, node: 'n' } } : {}),
          });
        }
      }
      for (const store of [pgStore, sqlite]) {
        await store.beginRun({ run: 'parity', chain: 'c', variants: ['b-second', 'a-first'] });
        for (let i = 0; i < records.length; i += 50)
          await Promise.all(records.slice(i, i + 50).map((r) => store.putRow(r)));
      }
      const options = { scorers: ['correct', 'other'], maxListed: 20 };
      const [fromPg, fromSqlite] = await Promise.all([
        summarizeStoredRun(pgStore, 'parity', options),
        summarizeStoredRun(sqlite, 'parity', options),
      ]);
      expect(fromPg.variants.map((v) => v.variant)).toEqual(['b-second', 'a-first']);
      for (const [i, v] of fromPg.variants.entries()) {
        const w = fromSqlite.variants[i]!;
        expect({ ...v, latencyMs: undefined, scores: undefined, usage: undefined }).toEqual({
          ...w,
          latencyMs: undefined,
          scores: undefined,
          usage: undefined,
        });
        expect(v.latencyMs.n).toBe(w.latencyMs.n);
        expect(v.latencyMs.p50).toBeCloseTo(w.latencyMs.p50, 9);
        expect(v.latencyMs.p95).toBeCloseTo(w.latencyMs.p95, 9);
        expect(v.scores.correct?.mean).toBeCloseTo(w.scores.correct?.mean ?? Number.NaN, 12);
        expect(v.usage.costUsd).toBeCloseTo(w.usage.costUsd, 12);
        expect(v.usage.totalTokens).toBe(w.usage.totalTokens);
      }
      const [pgRun, sqliteRun] = [await pgStore.run('parity'), await sqlite.run('parity')];
      expect(pgRun?.counts).toEqual(sqliteRun?.counts);
      expect(pgRun?.costUsd).toBeCloseTo(sqliteRun?.costUsd ?? Number.NaN, 12);
    } finally {
      await Promise.all([pgStore.close(), sqlite.close()]);
    }
  }, 60_000);
});
