// The run store on node:sqlite: create/resume, idempotent upserts, counts, streaming, and durability when the
// writing process is killed mid-write (a real child process, SIGKILLed).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SymphonizerError } from '../../src/core/errors.ts';
import {
  RunLeasedError,
  RunMismatchError,
  RunStore,
  StoreOpenError,
  UnknownRunError,
  rowKey,
} from '../../src/eval/store.ts';
import type { RowRecord, RowStatus } from '../../src/eval/types.ts';

function record(rowId: string, overrides: Partial<RowRecord> = {}): RowRecord {
  return {
    run: 'r1',
    variant: 'base',
    rowId,
    line: Number(rowId.replace(/\D/g, '')) || 1,
    status: 'pass',
    input: { question: `q${rowId}` },
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

let dir: string;
let store: RunStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'symphonizer-store-'));
  store = RunStore.open(join(dir, 'runs.db'));
});

afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('RunStore', () => {
  it('creates a run, then resumes it by name and records new variants', () => {
    expect(store.beginRun({ run: 'r1', chain: 'c', variants: ['base'], dataset: 'd.jsonl' })).toEqual({
      resumed: false,
    });
    expect(store.beginRun({ run: 'r1', chain: 'c', variants: ['base', 'fast'] })).toEqual({ resumed: true });
    const summary = store.run('r1');
    expect(summary).toMatchObject({ name: 'r1', chain: 'c', variants: ['base', 'fast'], dataset: 'd.jsonl' });
    expect(summary?.createdAt).toBeLessThanOrEqual(summary?.updatedAt ?? 0);
    expect(store.run('nope')).toBeUndefined();
  });

  it('refuses to resume a run with another chain', () => {
    store.beginRun({ run: 'r1', chain: 'c', variants: ['base'] });
    const attempt = (): unknown => store.beginRun({ run: 'r1', chain: 'other', variants: ['base'] });
    expect(attempt).toThrow(RunMismatchError);
    try {
      attempt();
    } catch (err) {
      expect(SymphonizerError.isInstance(err) && err.code).toBe('run_mismatch');
      expect((err as Error).message).toContain('"c"');
      expect((err as Error).message).toContain('"other"');
    }
    // The failed resume changed nothing.
    expect(store.run('r1')?.chain).toBe('c');
  });

  it('keeps one row per (run, variant, row id): re-putting replaces', () => {
    store.beginRun({ run: 'r1', chain: 'c', variants: ['base'] });
    store.putRow(record('1', { status: 'error', error: { code: 'api_error', message: 'boom', node: 'n' } }));
    store.putRow(record('1', { status: 'pass', attempts: 2 }));
    const rows = [...store.rows('r1')];
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ rowId: '1', status: 'pass', attempts: 2 });
    expect(rows[0]?.error).toBeUndefined();
    expect(store.countRows('r1')).toEqual({ total: 1, pass: 1, fail: 0, error: 0 });
  });

  it('round-trips every field of a row record', () => {
    store.beginRun({ run: 'r1', chain: 'c', variants: ['base'] });
    const full = record('3', {
      status: 'error',
      error: { code: 'chain_failed', message: 'no', node: 'draft' },
      cached: true,
    });
    const bare: RowRecord = { ...record('4'), expected: undefined, outputs: undefined };
    store.putRow(full);
    store.putRow(bare);
    const [a, b] = [...store.rows('r1')];
    expect(a).toStrictEqual(full);
    expect(b).toEqual(bare);
    expect(b && 'expected' in b).toBe(false);
    expect(b && 'outputs' in b).toBe(false);
  });

  it('counts rows by status and knows finished and error keys', () => {
    store.beginRun({ run: 'r1', chain: 'c', variants: ['base', 'alt'] });
    const statuses: RowStatus[] = ['pass', 'pass', 'fail', 'error', 'pass'];
    statuses.forEach((status, i) => {
      store.putRow(record(String(i + 1), { status }));
    });
    store.putRow(record('1', { variant: 'alt', status: 'error' }));
    expect(store.countRows('r1')).toEqual({ total: 6, pass: 3, fail: 1, error: 2 });
    expect(store.countRows('unknown')).toEqual({ total: 0, pass: 0, fail: 0, error: 0 });

    const finished = store.finishedKeys('r1');
    expect(finished.size).toBe(6);
    expect(finished.has(rowKey('base', '4'))).toBe(true); // errors included by default
    expect(finished.has('alt\u00001')).toBe(true);
    const noErrors = store.finishedKeys('r1', { includeErrors: false });
    expect([...noErrors].sort()).toEqual(['1', '2', '3', '5'].map((id) => rowKey('base', id)));
    expect(store.errorKeys('r1')).toEqual(new Set([rowKey('base', '4'), rowKey('alt', '1')]));

    expect(store.run('r1')).toMatchObject({
      counts: { total: 6, pass: 3, fail: 1, error: 2 },
      tokens: 90,
    });
    expect(store.run('r1')?.costUsd).toBeCloseTo(0.06);
  });

  it('streams rows by variant (run order), then line, and filters by variant', () => {
    store.beginRun({ run: 'r1', chain: 'c', variants: ['z-first', 'a-second'] });
    for (const id of ['3', '1', '2']) {
      store.putRow(record(id, { variant: 'a-second' }));
      store.putRow(record(id, { variant: 'z-first' }));
    }
    store.putRow(record('1', { variant: 'late' })); // a variant the run did not list is recorded
    const iterator = store.rows('r1');
    expect(iterator[Symbol.iterator]()).toBe(iterator);
    const order = [...iterator].map((r) => `${r.variant}/${r.rowId}`);
    expect(order).toEqual([
      'z-first/1',
      'z-first/2',
      'z-first/3',
      'a-second/1',
      'a-second/2',
      'a-second/3',
      'late/1',
    ]);
    expect([...store.rows('r1', { variant: 'a-second' })].map((r) => r.rowId)).toEqual(['1', '2', '3']);
    expect(store.run('r1')?.variants).toEqual(['z-first', 'a-second', 'late']);
  });

  it('can write while a row iteration is open', () => {
    store.beginRun({ run: 'r1', chain: 'c', variants: ['base'] });
    for (let i = 1; i <= 5; i++) store.putRow(record(String(i)));
    const seen: string[] = [];
    for (const row of store.rows('r1')) {
      seen.push(row.rowId);
      store.putRow({ ...row, attempts: 9 });
    }
    expect(seen).toEqual(['1', '2', '3', '4', '5']);
    expect([...store.rows('r1')].every((r) => r.attempts === 9)).toBe(true);
  });

  it('refuses rows of a run that was never begun', () => {
    expect(() => {
      store.putRow(record('1', { run: 'ghost' }));
    }).toThrow(UnknownRunError);
    expect(store.countRows('ghost').total).toBe(0);
  });

  it('lists runs and deletes one with its rows', () => {
    store.beginRun({ run: 'r1', chain: 'c', variants: ['base'], config: { concurrency: 4 } });
    store.beginRun({ run: 'r2', chain: 'c', variants: ['base'] });
    store.putRow(record('1'));
    store.putRow(record('1', { run: 'r2' }));
    expect(
      store
        .runs()
        .map((r) => r.name)
        .sort(),
    ).toEqual(['r1', 'r2']);
    expect(store.run('r1')?.config).toEqual({ concurrency: 4 });
    expect(store.deleteRun('r1')).toBe(true);
    expect(store.deleteRun('r1')).toBe(false);
    expect(store.runs().map((r) => r.name)).toEqual(['r2']);
    expect(store.countRows('r1').total).toBe(0);
    expect(store.beginRun({ run: 'r1', chain: 'other', variants: [] })).toEqual({ resumed: false });
  });

  it('uses WAL and persists across close/reopen', () => {
    store.beginRun({ run: 'r1', chain: 'c', variants: ['base'] });
    store.putRow(record('1'));
    expect(existsSync(join(dir, 'runs.db-wal'))).toBe(true);
    store.close();
    store.close(); // twice is fine
    store = RunStore.open(join(dir, 'runs.db'));
    expect(store.countRows('r1').total).toBe(1);
    const db = new DatabaseSync(join(dir, 'runs.db'));
    expect(db.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
    db.close();
  });

  it('works in memory and creates missing parent directories', () => {
    const memory = RunStore.open(':memory:');
    memory.beginRun({ run: 'r1', chain: 'c', variants: ['base'] });
    memory.putRow(record('1'));
    expect(memory.countRows('r1').total).toBe(1);
    memory.close();
    const nested = RunStore.open(join(dir, 'a', 'b', 'runs.db'));
    nested.close();
    expect(existsSync(join(dir, 'a', 'b', 'runs.db'))).toBe(true);
  });

  it('refuses a file that is not a database, with a coded error', () => {
    const bad = join(dir, 'bad.db');
    writeFileSync(bad, 'hello, not sqlite '.repeat(100));
    expect(() => RunStore.open(bad)).toThrow(StoreOpenError);
    try {
      RunStore.open(bad);
    } catch (err) {
      expect(SymphonizerError.isInstance(err) && err.code).toBe('store_open');
    }
  });
});

describe('RunStore leases', () => {
  /** Rewrites the stored lease of `run` (as another process or an old heartbeat would have left it). */
  function setLease(run: string, fields: { host?: string; pid?: number; heartbeatAt?: number }): void {
    const db = new DatabaseSync(join(dir, 'runs.db'));
    db.prepare(
      'UPDATE leases SET host = coalesce(?, host), pid = coalesce(?, pid), heartbeat_at = coalesce(?, heartbeat_at) WHERE run = ?',
    ).run(fields.host ?? null, fields.pid ?? null, fields.heartbeatAt ?? null, run);
    db.close();
  }

  it('gives a run to one holder at a time, across connections, and frees it on release', () => {
    const other = RunStore.open(join(dir, 'runs.db'));
    try {
      const lease = store.acquireLease('r1');
      expect(lease).toMatchObject({ run: 'r1', host: hostname(), pid: process.pid });
      expect(lease.holder).toMatch(new RegExp(`^${hostname()}:${process.pid}:[a-z0-9]+$`));
      expect(other.lease('r1')).toEqual(lease);

      let refused: unknown;
      try {
        other.acquireLease('r1');
      } catch (err) {
        refused = err;
      }
      expect(refused).toBeInstanceOf(RunLeasedError);
      const error = refused as RunLeasedError;
      expect(error.code).toBe('run_leased');
      expect(error.lease).toEqual(lease);
      expect(error.message).toContain(lease.holder);
      expect(error.message).toContain(`pid ${process.pid}`);
      expect(error.message).toContain('last heartbeat');
      expect(error.hint).toContain('--wait');

      // Another run is not affected; a release by a non-holder does nothing.
      expect(other.acquireLease('r2').run).toBe('r2');
      other.releaseLease('r1', 'someone-else');
      expect(store.lease('r1')?.holder).toBe(lease.holder);

      expect(store.heartbeatLease('r1', lease.holder)).toBe(true);
      expect(store.heartbeatLease('r1', 'someone-else')).toBe(false);
      store.releaseLease('r1', lease.holder);
      expect(store.lease('r1')).toBeUndefined();
      expect(other.acquireLease('r1').run).toBe('r1');
    } finally {
      other.close();
    }
  });

  it('takes over a lease whose heartbeat is older than staleMs, and the old holder learns it lost it', () => {
    const old = store.acquireLease('r1');
    setLease('r1', { host: 'elsewhere', heartbeatAt: Date.now() - 10_000 });
    // Fresh enough for the default bound (30 s): refused.
    expect(() => store.acquireLease('r1')).toThrow(RunLeasedError);
    const taken = store.acquireLease('r1', { staleMs: 5000 });
    expect(taken.holder).not.toBe(old.holder);
    expect(store.lease('r1')?.holder).toBe(taken.holder);
    expect(store.heartbeatLease('r1', old.holder)).toBe(false);
    store.releaseLease('r1', old.holder); // the old holder's release does not free the new lease
    expect(store.lease('r1')?.holder).toBe(taken.holder);
  });

  it('takes over at once a lease of a dead process on this host, not one of a live process elsewhere', () => {
    const dead = spawnSync(process.execPath, ['-e', '']).pid;
    expect(dead).toBeGreaterThan(0);
    store.acquireLease('r1');
    setLease('r1', { pid: dead });
    const taken = store.acquireLease('r1');
    expect(taken.pid).toBe(process.pid);

    // The same pid on another host with a fresh heartbeat cannot be checked: it is live until it goes stale.
    setLease('r1', { host: 'elsewhere', pid: dead });
    expect(() => store.acquireLease('r1')).toThrow(RunLeasedError);
  });
});

describe('RunStore after a crash', () => {
  const fixture = resolve(import.meta.dirname, 'fixtures/store-writer.ts');

  it('keeps every committed row, intact and unduplicated, when the writer is SIGKILLed mid-write', async () => {
    const path = join(dir, 'crash.db');
    const child = spawn(process.execPath, [fixture, path], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    // 'close' fires once the child is gone and its stdout is drained: every line it wrote has been read.
    const closed = new Promise<NodeJS.Signals | null>((done) =>
      child.on('close', (_code, signal) => {
        done(signal);
      }),
    );
    await new Promise<void>((done, fail) => {
      child.stdout.on('data', (chunk: string) => {
        stdout += chunk;
        if (lastCommitted(stdout.slice(-100)) >= 300 && child.kill('SIGKILL')) done();
      });
      child.on('exit', (_code, signal) => {
        if (signal !== 'SIGKILL') fail(new Error(`writer exited early: ${stderr}`));
      });
    });
    expect(await closed).toBe('SIGKILL');
    const committed = lastCommitted(stdout);

    // Opening runs recovery from the WAL; the file must be consistent.
    const after = RunStore.open(path);
    try {
      const db = new DatabaseSync(path);
      expect(db.prepare('PRAGMA integrity_check').get()).toEqual({ integrity_check: 'ok' });
      const dupes = db
        .prepare(
          'SELECT count(*) AS n FROM (SELECT run, variant, row_id FROM rows GROUP BY 1, 2, 3 HAVING count(*) > 1)',
        )
        .get();
      expect(dupes).toEqual({ n: 0 });
      db.close();

      const rows = [...after.rows('crash')];
      // Every reported commit is there, plus at most the one committed but killed before it was reported.
      expect(rows.length).toBeGreaterThanOrEqual(committed);
      expect(rows.length).toBeLessThanOrEqual(committed + 1);
      expect(rows.map((r) => r.line)).toEqual(rows.map((_, i) => i + 1));
      expect(new Set(rows.map((r) => r.rowId)).size).toBe(rows.length);
      for (const row of rows) {
        expect(row.input).toEqual({ n: row.line, padding: 'x'.repeat(200) });
        expect(row.status).toBe(row.line % 7 === 0 ? 'error' : 'pass');
      }
      // Rows re-put with attempt 2 before the kill read as the replacement, never both.
      expect(rows.find((r) => r.rowId === 'r1')?.attempts).toBe(2);
      expect(after.countRows('crash').total).toBe(rows.length);

      // And the run carries on.
      expect(after.beginRun({ run: 'crash', chain: 'chain', variants: ['a'] })).toEqual({ resumed: true });
      const done = after.finishedKeys('crash');
      expect(done.size).toBe(rows.length);
      const next = rows.length + 1;
      for (let n = next; n < next + 10; n++) {
        after.putRow({ ...rows[0]!, rowId: `r${n}`, line: n, input: { n, padding: '' } });
      }
      expect(after.countRows('crash').total).toBe(rows.length + 10);
    } finally {
      after.close();
    }
  }, 60_000);
});

function lastCommitted(stdout: string): number {
  const matches = [...stdout.matchAll(/committed (\d+)\n/g)];
  return Number(matches.at(-1)?.[1] ?? 0);
}
