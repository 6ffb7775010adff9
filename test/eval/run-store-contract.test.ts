// The run store's semantics, once for each database: the SQLite store (through its async view) and the
// PostgreSQL store against a real server (test/support/postgres-server.ts). Both must give the same answers.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PostgresRunStore } from '../../src/eval/postgres-store.ts';
import { sqliteEvalStore, type EvalRunStore } from '../../src/eval/run-store.ts';
import { RunLeasedError, RunMismatchError, RunStore, UnknownRunError, rowKey } from '../../src/eval/store.ts';
import type { RowRecord, RowStatus } from '../../src/eval/types.ts';
import { skipPostgres, startPostgresServer, type PostgresTestServer } from '../support/postgres-server.ts';

function record(rowId: string, overrides: Partial<RowRecord> = {}): RowRecord {
  return {
    run: 'r1',
    variant: 'base',
    rowId,
    line: Number(rowId.replace(/\D/g, '')) || 1,
    status: 'pass',
    input: { question: `q${rowId}`, nested: { b: 1, a: [true, null] } },
    expected: 'yes',
    outputs: { answer: 'yes' },
    scores: { exact: { score: 1, reason: 'match' } },
    usage: { inputTokens: 10, outputTokens: 5, totalTokens: 15, costUsd: 0.01, calls: 1, unpricedCalls: 0 },
    latencyMs: 12.5,
    attempts: 1,
    cached: false,
    finishedAt: 1_700_000_000_000,
    ...overrides,
  };
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

interface LeaseEdit {
  readonly host?: string;
  readonly pid?: number;
  /** Milliseconds to move the heartbeat into the past. */
  readonly agoMs?: number;
}

interface Backend {
  /** A second store on the same database (another process would open one). */
  open(): Promise<EvalRunStore>;
  /** Rewrites the stored lease of `run`, as another process or an old heartbeat would have left it. */
  editLease(run: string, edit: LeaseEdit): Promise<void>;
  dispose(): Promise<void>;
}

let server: PostgresTestServer | undefined;

beforeAll(async () => {
  if (!skipPostgres) server = await startPostgresServer();
}, 60_000);

afterAll(async () => {
  await server?.close();
});

const backends: { name: string; skip: boolean; make: () => Promise<Backend> }[] = [
  {
    name: 'SQLite',
    skip: false,
    make: () => {
      const dir = mkdtempSync(join(tmpdir(), 'symphonizer-contract-'));
      const path = join(dir, 'runs.db');
      return Promise.resolve({
        open: () => Promise.resolve(sqliteEvalStore(RunStore.open(path), path)),
        editLease: (run, edit) => {
          const db = new DatabaseSync(path);
          db.prepare(
            `UPDATE leases SET host = coalesce(?, host), pid = coalesce(?, pid),
               heartbeat_at = heartbeat_at - ? WHERE run = ?`,
          ).run(edit.host ?? null, edit.pid ?? null, edit.agoMs ?? 0, run);
          db.close();
          return Promise.resolve();
        },
        dispose: () => {
          rmSync(dir, { recursive: true, force: true });
          return Promise.resolve();
        },
      });
    },
  },
  {
    name: 'PostgreSQL',
    skip: skipPostgres,
    make: async () => {
      const url = (server as PostgresTestServer).url;
      const schema = `contract_${Math.random().toString(36).slice(2, 10)}`;
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      return {
        open: () => PostgresRunStore.open(url, { schema, poolSize: 4 }),
        editLease: async (run, edit) => {
          await admin.query(
            `UPDATE ${schema}.symphonizer_leases SET host = coalesce($1, host), pid = coalesce($2, pid),
               heartbeat_at = heartbeat_at - $3 WHERE run = $4`,
            [edit.host ?? null, edit.pid ?? null, edit.agoMs ?? 0, run],
          );
        },
        dispose: async () => {
          await admin.query(`DROP SCHEMA ${schema} CASCADE`);
          await admin.end();
        },
      };
    },
  },
];

describe.each(backends)('run store contract: $name', ({ skip, make }) => {
  let backend: Backend;
  let store: EvalRunStore;

  beforeEach(async () => {
    if (skip) return;
    backend = await make();
    store = await backend.open();
  });

  afterEach(async () => {
    if (skip) return;
    await store.close();
    await backend.dispose();
  });

  it.skipIf(skip)(
    'creates a run, then resumes it by name, records new variants, refuses another chain',
    async () => {
      expect(
        await store.beginRun({ run: 'r1', chain: 'c', variants: ['a', 'b'], dataset: 'd.jsonl' }),
      ).toEqual({
        resumed: false,
      });
      expect(await store.beginRun({ run: 'r1', chain: 'c', variants: ['b', 'c'], config: { k: 1 } })).toEqual(
        {
          resumed: true,
        },
      );
      const run = await store.run('r1');
      expect(run).toMatchObject({
        name: 'r1',
        chain: 'c',
        variants: ['a', 'b', 'c'],
        dataset: 'd.jsonl',
        config: { k: 1 },
      });
      await expect(store.beginRun({ run: 'r1', chain: 'other', variants: ['a'] })).rejects.toBeInstanceOf(
        RunMismatchError,
      );
      expect(await store.run('missing')).toBeUndefined();
    },
  );

  it.skipIf(skip)(
    'keeps the first finished write of a row; replaceErrors replaces only an ERROR row',
    async () => {
      await store.beginRun({ run: 'r1', chain: 'c', variants: ['base'] });
      expect(await store.putRow(record('1', { attempts: 1 }))).toBe(true);
      expect(await store.putRow(record('1', { attempts: 2, status: 'fail' }))).toBe(false);
      expect(await store.putRow(record('1', { attempts: 3 }), { replaceErrors: true })).toBe(false);
      const error = record('2', {
        status: 'error',
        error: { code: 'api_error', message: 'boom', node: 'n' },
      });
      expect(await store.putRow(error)).toBe(true);
      expect(await store.putRow(record('2', { attempts: 7 }))).toBe(false);
      expect(await store.putRow(record('2', { attempts: 8 }), { replaceErrors: true })).toBe(true);
      const rows = await collect(store.rows('r1'));
      expect(rows.map((r) => [r.rowId, r.status, r.attempts])).toEqual([
        ['1', 'pass', 1],
        ['2', 'pass', 8],
      ]);
      expect(await store.countRows('r1')).toEqual({ total: 2, pass: 2, fail: 0, error: 0 });
    },
  );

  it.skipIf(skip)('round-trips every field of a row record, and a bare one', async () => {
    await store.beginRun({ run: 'r1', chain: 'c', variants: ['base'] });
    const full = record('1', {
      status: 'error',
      error: { code: 'x', message: 'm', node: 'n' },
      latencyMs: 1.25,
      cached: true,
      line: 7,
    });
    const { expected: _e, outputs: _o, ...bare } = record('2', { latencyMs: Number.POSITIVE_INFINITY });
    await store.putRow(full);
    await store.putRow(bare);
    const rows = await collect(store.rows('r1'));
    expect(rows).toEqual([bare, full].sort((x, y) => x.line - y.line));
    const summary = await collect(store.summaryRows('r1'));
    expect(summary[0]).not.toHaveProperty('input');
    expect(summary.map((r) => r.rowId)).toEqual(rows.map((r) => r.rowId));
  });

  it.skipIf(skip)('counts by status, lists finished and error keys, streams in run order', async () => {
    await store.beginRun({ run: 'r1', chain: 'c', variants: ['z-first', 'a-second'] });
    const statuses: RowStatus[] = ['pass', 'fail', 'error', 'pass'];
    for (const [i, status] of statuses.entries()) {
      await store.putRow(record(String(i + 1), { variant: 'a-second', status }));
      await store.putRow(record(String(i + 1), { variant: 'z-first', status: 'pass' }));
    }
    await store.putRow(record('1', { variant: 'late' }));
    expect(await store.countRows('r1')).toEqual({ total: 9, pass: 7, fail: 1, error: 1 });
    expect(await store.countRows('nope')).toEqual({ total: 0, pass: 0, fail: 0, error: 0 });
    expect((await store.finishedKeys('r1')).size).toBe(9);
    expect((await store.finishedKeys('r1', { includeErrors: false })).has(rowKey('a-second', '3'))).toBe(
      false,
    );
    expect([...(await store.errorKeys('r1'))]).toEqual([rowKey('a-second', '3')]);
    const order = (await collect(store.rows('r1'))).map((r) => `${r.variant}/${r.rowId}`);
    expect(order).toEqual([
      'z-first/1',
      'z-first/2',
      'z-first/3',
      'z-first/4',
      'a-second/1',
      'a-second/2',
      'a-second/3',
      'a-second/4',
      'late/1',
    ]);
    expect((await collect(store.rows('r1', { variant: 'late' }))).length).toBe(1);
    expect((await store.run('r1'))?.variants).toEqual(['z-first', 'a-second', 'late']);
    const summary = await store.run('r1');
    expect(summary?.counts).toEqual({ total: 9, pass: 7, fail: 1, error: 1 });
    expect(summary?.tokens).toBe(135);
    expect(summary?.costUsd).toBeCloseTo(0.09, 10);
  });

  it.skipIf(skip)(
    'computes latency percentiles in the database over ran, uncached, finite latencies',
    async () => {
      await store.beginRun({ run: 'r1', chain: 'c', variants: ['base'] });
      const latencies = [40, 10, 30, 20, 50, 1000, Number.POSITIVE_INFINITY];
      for (const [i, latencyMs] of latencies.entries()) {
        const status: RowStatus = i === 5 ? 'error' : 'pass';
        await store.putRow(record(String(i + 1), { latencyMs, status }));
      }
      await store.putRow(record('99', { latencyMs: 5000, cached: true }));
      const p50 = await store.latencyPercentile('r1', 'base', 50);
      const p95 = await store.latencyPercentile('r1', 'base', 95);
      expect(p50).toEqual({ value: 30, n: 5 });
      expect(p95.value).toBeCloseTo(48, 9);
      expect((await store.latencyPercentile('r1', 'none', 50)).n).toBe(0);
      await expect(store.latencyPercentile('r1', 'base', 101)).rejects.toMatchObject({
        code: 'invalid_option',
      });
    },
  );

  it.skipIf(skip)('refuses rows of a run never begun; lists runs newest first and deletes one', async () => {
    await expect(store.putRow(record('1', { run: 'ghost' }))).rejects.toBeInstanceOf(UnknownRunError);
    await store.beginRun({ run: 'r1', chain: 'c', variants: ['base'] });
    await new Promise((resolve) => setTimeout(resolve, 5));
    await store.beginRun({ run: 'r2', chain: 'c', variants: ['base'] });
    await store.putRow(record('1', { run: 'r2' }));
    expect((await store.runs()).map((r) => r.name)).toEqual(['r2', 'r1']);
    expect(await store.deleteRun('r2')).toBe(true);
    expect(await store.deleteRun('r2')).toBe(false);
    expect((await store.runs()).map((r) => r.name)).toEqual(['r1']);
    expect(await store.countRows('r2')).toEqual({ total: 0, pass: 0, fail: 0, error: 0 });
  });

  it.skipIf(skip)('stops a row stream early without leaking its connection', async () => {
    await store.beginRun({ run: 'r1', chain: 'c', variants: ['base'] });
    for (let i = 1; i <= 30; i++) await store.putRow(record(String(i)));
    for (let round = 0; round < 8; round++) {
      for await (const row of store.rows('r1')) {
        expect(row.rowId).toBe('1');
        break;
      }
    }
    // Writing while a stream is open works too.
    let seen = 0;
    for await (const row of store.summaryRows('r1')) {
      seen++;
      if (row.rowId === '2') await store.putRow(record('31'));
    }
    expect(seen).toBeGreaterThanOrEqual(30);
    expect((await store.countRows('r1')).total).toBe(31);
  });

  it.skipIf(skip)('gives a run to one holder at a time across stores, and frees it on release', async () => {
    const other = await backend.open();
    try {
      const lease = await store.acquireLease('r1');
      expect(lease).toMatchObject({ run: 'r1', host: hostname(), pid: process.pid });
      expect(await other.lease('r1')).toEqual(lease);
      const refused = await other.acquireLease('r1').catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(RunLeasedError);
      expect((refused as RunLeasedError).lease).toEqual(lease);
      expect((refused as RunLeasedError).message).toContain('last heartbeat 0 s ago');
      expect((await other.acquireLease('r2')).run).toBe('r2');
      await other.releaseLease('r1', 'someone-else');
      expect((await store.lease('r1'))?.holder).toBe(lease.holder);
      expect(await store.heartbeatLease('r1', lease.holder)).toBe(true);
      expect(await store.heartbeatLease('r1', 'someone-else')).toBe(false);
      await store.releaseLease('r1', lease.holder);
      expect(await store.lease('r1')).toBeUndefined();
      expect((await other.acquireLease('r1')).run).toBe('r1');
    } finally {
      await other.close();
    }
  });

  it.skipIf(skip)(
    'takes over a stale lease (by the store clock) and a dead local holder, not a live remote one',
    async () => {
      const old = await store.acquireLease('r1');
      await backend.editLease('r1', { host: 'elsewhere', agoMs: 10_000 });
      await expect(store.acquireLease('r1')).rejects.toBeInstanceOf(RunLeasedError);
      const taken = await store.acquireLease('r1', { staleMs: 5000 });
      expect(taken.holder).not.toBe(old.holder);
      expect(await store.heartbeatLease('r1', old.holder)).toBe(false);

      const dead = spawnSync(process.execPath, ['-e', '']).pid;
      await backend.editLease('r1', { pid: dead, host: hostname() });
      expect((await store.acquireLease('r1')).pid).toBe(process.pid);
      await backend.editLease('r1', { pid: dead, host: 'elsewhere' });
      await expect(store.acquireLease('r1')).rejects.toBeInstanceOf(RunLeasedError);
    },
  );

  it.skipIf(skip)('lets exactly one of many concurrent acquisitions win', async () => {
    const others = await Promise.all([backend.open(), backend.open(), backend.open()]);
    try {
      const results = await Promise.allSettled(
        [store, ...others].flatMap((s) => [s.acquireLease('race'), s.acquireLease('race')]),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(RunLeasedError);
    } finally {
      await Promise.all(others.map((s) => s.close()));
    }
  });
});
