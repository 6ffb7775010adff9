/**
 * The run store: every finished row of a batch, committed to SQLite the moment it finishes, so a batch that
 * is interrupted (Ctrl-C, crash, power loss) resumes where it stopped and never stores a row twice.
 *
 * Uses `node:sqlite` (built into Node 24): no native build, no dependency.
 */
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import type { SQLInputValue, StatementSync } from 'node:sqlite';
import { InvalidOptionError, SymphonizerError, errorMessage } from '../core/errors.ts';
import type { Json } from '../core/json.ts';
import type { RowCounts, RowRecord, RunSummary, SummaryRecord } from './types.ts';
import {
  processAlive,
  rowUpdates,
  toCounts,
  toJsonColumn,
  toRecord,
  toSummary,
  toSummaryRecord,
  parseStringArray,
  unique,
} from './store-rows.ts';
import type { BatchInfo, BatchItemRecord } from './batch-mode.ts';
import type { BatchStatus } from '../providers/batch.ts';
import type { EvalErrorCode } from './errors.ts';

/** Version of the schema below, kept in `PRAGMA user_version`. */
const SCHEMA_VERSION = 1;

const schema = `
CREATE TABLE IF NOT EXISTS runs (
  name       TEXT PRIMARY KEY,
  chain      TEXT NOT NULL,
  variants   TEXT NOT NULL,          -- JSON array of variant names, in the order they were first seen
  dataset    TEXT,
  config     TEXT,                   -- JSON
  created_at INTEGER NOT NULL,       -- epoch ms
  updated_at INTEGER NOT NULL        -- epoch ms
) STRICT;
CREATE TABLE IF NOT EXISTS rows (
  run         TEXT NOT NULL REFERENCES runs (name) ON DELETE CASCADE,
  variant     TEXT NOT NULL,
  row_id      TEXT NOT NULL,
  line        INTEGER NOT NULL,
  status      TEXT NOT NULL CHECK (status IN ('pass', 'fail', 'error')),
  input       TEXT NOT NULL,         -- JSON
  expected    TEXT,                  -- JSON, NULL when absent
  outputs     TEXT,                  -- JSON, NULL when absent
  scores      TEXT NOT NULL,         -- JSON
  usage       TEXT NOT NULL,         -- JSON (UsageTotals)
  error       TEXT,                  -- JSON, NULL when absent
  latency_ms  REAL NOT NULL,
  cost_usd    REAL NOT NULL,
  tokens      INTEGER NOT NULL,
  attempts    INTEGER NOT NULL,
  cached      INTEGER NOT NULL,
  finished_at INTEGER NOT NULL,      -- epoch ms
  batch       INTEGER NOT NULL DEFAULT 0, -- 1 when the calls went through a Batch API
  PRIMARY KEY (run, variant, row_id)
) STRICT;
CREATE INDEX IF NOT EXISTS rows_by_status ON rows (run, status);
-- Who is running a run right now (see RunStore.acquireLease): one row per leased run, deleted on release.
CREATE TABLE IF NOT EXISTS leases (
  run          TEXT PRIMARY KEY,
  holder       TEXT NOT NULL,        -- "host:pid:random", unique per acquisition
  host         TEXT NOT NULL,
  pid          INTEGER NOT NULL,
  acquired_at  INTEGER NOT NULL,     -- epoch ms
  heartbeat_at INTEGER NOT NULL      -- epoch ms
) STRICT;
-- Batch mode (see batch-mode.ts): the batches a run submitted, and each item's state and answer.
CREATE TABLE IF NOT EXISTS batches (
  run          TEXT NOT NULL,
  id           TEXT NOT NULL,        -- the provider's batch id
  provider     TEXT NOT NULL,
  model        TEXT NOT NULL,
  status       TEXT NOT NULL,        -- in_progress | ended | failed | expired | cancelled
  items        INTEGER NOT NULL,
  completed    INTEGER,
  submitted_at INTEGER NOT NULL,     -- epoch ms
  PRIMARY KEY (run, id)
) STRICT;
CREATE TABLE IF NOT EXISTS batch_items (
  run       TEXT NOT NULL,
  custom_id TEXT NOT NULL,
  batch_id  TEXT NOT NULL,
  state     TEXT NOT NULL CHECK (state IN ('submitted', 'done', 'failed')),
  response  TEXT,                    -- JSON (ModelResponse), state done
  error     TEXT,                    -- state failed
  PRIMARY KEY (run, custom_id)
) STRICT;
-- No other index: every extra index costs each row write (profiled: 52 → 28 µs per row without them).
DROP INDEX IF EXISTS rows_by_latency;
DROP INDEX IF EXISTS rows_by_cost;
DROP INDEX IF EXISTS rows_by_tokens;
`;

/** A run store or response cache file could not be opened, or holds a schema this version does not know. */
export class StoreOpenError extends SymphonizerError<EvalErrorCode> {
  /** Path of the store file. */
  readonly path: string;

  constructor(
    path: string,
    message: string,
    options: { cause?: unknown; hint?: string; database?: string | undefined } = {},
  ) {
    super(
      'store_open',
      `Cannot open the ${options.database ?? 'SQLite database'} at ${path}: ${message}`,
      options,
    );
    this.path = path;
  }
}

/**
 * A run store or response cache in a database server (PostgreSQL) could not be read or written after it was
 * opened: the server went away, or refused a statement. Nothing half-written is kept (each write is one
 * statement or one transaction); a resumed batch redoes what was not stored.
 */
export class StoreUnavailableError extends SymphonizerError<EvalErrorCode> {
  /** Where the store is, without credentials. */
  readonly location: string;

  constructor(location: string, message: string, options: { cause?: unknown; hint?: string } = {}) {
    super('store_unavailable', `The store at ${location} could not be read or written: ${message}`, options);
    this.location = location;
  }
}

/** A run was resumed with a different chain than the one it was created with. */
export class RunMismatchError extends SymphonizerError<EvalErrorCode> {
  /** Name of the run. */
  readonly run: string;
  /** Chain the stored run was created with. */
  readonly storedChain: string;
  /** Chain of the batch that tried to resume it. */
  readonly chain: string;

  constructor(run: string, storedChain: string, chain: string) {
    super(
      'run_mismatch',
      `Run "${run}" was created with chain "${storedChain}" and cannot be resumed with chain "${chain}".`,
      { hint: 'pick another run name, or delete the old run first' },
    );
    this.run = run;
    this.storedChain = storedChain;
    this.chain = chain;
  }
}

/** A row was written for a run that {@link RunStore.beginRun} never created (or that was deleted). */
export class UnknownRunError extends SymphonizerError<EvalErrorCode> {
  /** Name of the run. */
  readonly run: string;

  constructor(run: string) {
    super('unknown_run', `No run named "${run}" in the store.`, {
      hint: 'call beginRun() before putRow()',
    });
    this.run = run;
  }
}

/** Who holds the lease of a run (see {@link RunStore.acquireLease}). */
export interface LeaseInfo {
  /** Name of the leased run. */
  readonly run: string;
  /** `${host}:${pid}:${random}`: unique per acquisition. */
  readonly holder: string;
  /** Host name of the holding process. */
  readonly host: string;
  /** Process id of the holding process (on `host`). */
  readonly pid: number;
  /** Epoch milliseconds. */
  readonly acquiredAt: number;
  /** Epoch milliseconds of the holder's last heartbeat. */
  readonly heartbeatAt: number;
}

/** Options of {@link RunStore.acquireLease}. */
export interface AcquireLeaseOptions {
  /**
   * A lease whose last heartbeat is older than this is stale, and is taken over. @default 30000 (30 s, six
   * missed heartbeats of evaluate()'s default 5 s interval)
   */
  readonly staleMs?: number | undefined;
  /** The holder name to record. @default `${hostname()}:${process.pid}:${random}` */
  readonly holder?: string | undefined;
}

/**
 * A run is being run by another process (or another batch of this one), which holds its lease: two batches
 * on one run would each redo every row.
 */
export class RunLeasedError extends SymphonizerError<EvalErrorCode> {
  /** Name of the run. */
  readonly run: string;
  /** The lease as stored: holder, host, pid, acquiredAt, heartbeatAt. */
  readonly lease: LeaseInfo;

  constructor(lease: LeaseInfo, now = Date.now()) {
    const ago = Math.max(0, Math.round((now - lease.heartbeatAt) / 1000));
    super(
      'run_leased',
      `Run "${lease.run}" is being run by ${lease.holder} (host ${lease.host}, pid ${lease.pid}), ` +
        `last heartbeat ${ago} s ago (${new Date(lease.heartbeatAt).toISOString()}).`,
      {
        hint: 'wait for it to finish, or wait for it with --wait (lease: { wait: true }); or use another run name',
      },
    );
    this.run = lease.run;
    this.lease = lease;
  }
}

/** Default of {@link AcquireLeaseOptions.staleMs}. */
export const DEFAULT_LEASE_STALE_MS = 30_000;

/** What {@link RunStore.beginRun} records about a run. */
export interface RunInfo {
  /** Unique name of the run; beginning a run with a stored name resumes it. */
  readonly run: string;
  /** Name of the chain; a run can only be resumed with the same chain. */
  readonly chain: string;
  /** Variant names; new ones are added to a resumed run. */
  readonly variants: readonly string[];
  /** Where the rows came from (a path), for reports. */
  readonly dataset?: string | undefined;
  /** Anything else worth keeping (options, scorers), as JSON. */
  readonly config?: Json | undefined;
}

export type { RowCounts, RunSummary } from './types.ts';

/** Options of {@link RunStore.finishedKeys}. */
export interface FinishedKeysOptions {
  /** Include rows stored with status `error`. @default true */
  readonly includeErrors?: boolean | undefined;
}

/** Options of {@link RunStore.rows}. */
export interface RowsOptions {
  /** Only this variant's rows. @default every variant */
  readonly variant?: string | undefined;
}

/**
 * The key of one row of one variant in {@link RunStore.finishedKeys} and {@link RunStore.errorKeys}:
 * `${variant}\u0000${rowId}`.
 */
export function rowKey(variant: string, rowId: string): string {
  return `${variant}\u0000${rowId}`;
}

/**
 * Runs and their rows in one SQLite file. Each row is committed in its own transaction as it finishes, and
 * re-putting a row replaces it, so a resumed batch never duplicates rows.
 *
 * @example
 * ```ts
 * const store = RunStore.open('.symphonizer/runs.db');
 * const { resumed } = store.beginRun({ run: 'nightly', chain: 'summarize', variants: ['base'] });
 * const done = store.finishedKeys('nightly');
 * for (const row of dataset) if (!done.has(rowKey('base', row.id))) store.putRow(await runRow(row));
 * store.close();
 * ```
 */
export class RunStore {
  readonly #db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();

  private constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /**
   * Open (creating if needed) the store at `path`; `:memory:` gives a private in-memory store. Parent
   * directories are created.
   *
   * @throws {StoreOpenError} when the file cannot be opened or was written by a newer version.
   */
  static open(path: string): RunStore {
    const db = openDatabase(path);
    try {
      const version = Number(db.prepare('PRAGMA user_version').get()?.['user_version'] ?? 0);
      if (version > SCHEMA_VERSION) {
        throw new StoreOpenError(
          path,
          `its schema version is ${version}, this version reads ${SCHEMA_VERSION}`,
          {
            hint: 'upgrade symphonizer, or use another store file',
          },
        );
      }
      db.exec('BEGIN IMMEDIATE');
      try {
        db.exec(schema);
        // Files made before batch mode: the column is added (existing rows are not batch rows).
        const columns = db.prepare('PRAGMA table_info(rows)').all();
        if (!columns.some((column) => column['name'] === 'batch'))
          db.exec('ALTER TABLE rows ADD COLUMN batch INTEGER NOT NULL DEFAULT 0');
        db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
        db.exec('COMMIT');
      } catch (err) {
        db.exec('ROLLBACK');
        throw err;
      }
    } catch (err) {
      db.close();
      if (SymphonizerError.isInstance(err)) throw err;
      throw new StoreOpenError(path, errorMessage(err), { cause: err });
    }
    return new RunStore(db);
  }

  /**
   * Create the run, or resume the stored run of that name. Variants not yet recorded are added; `dataset`
   * and `config`, when given, replace the stored ones (the latest invocation wins).
   *
   * @returns `resumed: true` when the run already existed.
   * @throws {RunMismatchError} when the stored run has another chain.
   */
  beginRun(info: RunInfo): { resumed: boolean } {
    return this.#transaction(() => {
      const now = Date.now();
      const existing = this.#stmt('SELECT chain, variants FROM runs WHERE name = ?').get(info.run);
      if (existing === undefined) {
        this.#stmt(
          `INSERT INTO runs (name, chain, variants, dataset, config, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
        ).run(
          info.run,
          info.chain,
          JSON.stringify(unique(info.variants)),
          info.dataset ?? null,
          toJsonColumn(info.config),
          now,
          now,
        );
        return { resumed: false };
      }
      const storedChain = String(existing['chain']);
      if (storedChain !== info.chain) throw new RunMismatchError(info.run, storedChain, info.chain);
      const variants = unique([...parseStringArray(existing['variants']), ...info.variants]);
      this.#stmt(
        `UPDATE runs SET variants = ?, dataset = coalesce(?, dataset), config = coalesce(?, config),
         updated_at = max(updated_at, ?) WHERE name = ?`,
      ).run(JSON.stringify(variants), info.dataset ?? null, toJsonColumn(info.config), now, info.run);
      return { resumed: true };
    });
  }

  /**
   * Keys ({@link rowKey}) of the rows already stored for `run`. Error rows are included by default, so a
   * plain resume does not redo them; use {@link RunStore.errorKeys} to retry only the errors.
   */
  finishedKeys(run: string, options: FinishedKeysOptions = {}): Set<string> {
    const sql =
      options.includeErrors === false
        ? "SELECT variant, row_id FROM rows WHERE run = ? AND status != 'error'"
        : 'SELECT variant, row_id FROM rows WHERE run = ?';
    return this.#keys(sql, run);
  }

  /** Keys ({@link rowKey}) of the rows of `run` stored with status `error`. */
  errorKeys(run: string): Set<string> {
    return this.#keys("SELECT variant, row_id FROM rows WHERE run = ? AND status = 'error'", run);
  }

  /**
   * Store one finished row in its own transaction, replacing any row with the same run, variant and row id.
   * A variant the run did not list yet is added to it.
   *
   * @throws {UnknownRunError} when the run was never begun.
   */
  putRow(record: RowRecord): void {
    this.#write(record, 'replace');
  }

  /**
   * Store one finished row unless the run already has a row with its variant and row id: the first finished
   * write wins, so a unit that ran twice (a retried job, a second producer) is stored once. With
   * `replaceErrors`, a stored ERROR row is replaced (what `retryErrors` does); other stored rows never are.
   *
   * @returns true when the row was written, false when a stored row was kept.
   * @throws {UnknownRunError} when the run was never begun.
   */
  insertRow(record: RowRecord, options: { readonly replaceErrors?: boolean | undefined } = {}): boolean {
    return this.#write(record, options.replaceErrors === true ? 'errors' : 'never');
  }

  #write(record: RowRecord, replace: 'replace' | 'errors' | 'never'): boolean {
    return this.#transaction(() => {
      const run = this.#stmt('SELECT variants FROM runs WHERE name = ?').get(record.run);
      if (run === undefined) throw new UnknownRunError(record.run);
      const variants = parseStringArray(run['variants']);
      const newVariants = variants.includes(record.variant)
        ? null
        : JSON.stringify([...variants, record.variant]);
      this.#stmt(
        `UPDATE runs SET variants = coalesce(?, variants), updated_at = max(updated_at, ?) WHERE name = ?`,
      ).run(newVariants, Date.now(), record.run);
      const values: SQLInputValue[] = [
        record.run,
        record.variant,
        record.rowId,
        record.line,
        record.status,
        JSON.stringify(record.input),
        toJsonColumn(record.expected),
        toJsonColumn(record.outputs),
        JSON.stringify(record.scores),
        JSON.stringify(record.usage),
        toJsonColumn(record.error),
        record.latencyMs,
        record.usage.costUsd,
        Math.round(record.usage.totalTokens),
        Math.round(record.attempts),
        record.cached ? 1 : 0,
        Math.round(record.finishedAt),
        record.batch === true ? 1 : 0,
      ];
      const columns = `rows (run, variant, row_id, line, status, input, expected, outputs, scores,
           usage, error, latency_ms, cost_usd, tokens, attempts, cached, finished_at, batch)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;
      const sql =
        replace === 'replace'
          ? `INSERT OR REPLACE INTO ${columns}`
          : replace === 'never'
            ? `INSERT INTO ${columns} ON CONFLICT (run, variant, row_id) DO NOTHING`
            : `INSERT INTO ${columns} ON CONFLICT (run, variant, row_id) DO UPDATE SET ${rowUpdates}
               WHERE rows.status = 'error'`;
      return Number(this.#stmt(sql).run(...values).changes) > 0;
    });
  }

  /**
   * The stored rows of `run`, streamed from the database (not loaded all at once): by variant in the run's
   * order, then by line, then by row id.
   */
  *rows(run: string, options: RowsOptions = {}): IterableIterator<RowRecord> {
    const filter = options.variant === undefined ? '' : 'AND r.variant = ?';
    const params: SQLInputValue[] = options.variant === undefined ? [run, run] : [run, run, options.variant];
    // A fresh statement (not the cached one): two iterations may be open at the same time.
    const statement = this.#db.prepare(
      `SELECT r.* FROM rows r
       LEFT JOIN json_each((SELECT variants FROM runs WHERE name = ?)) v ON v.value = r.variant
       WHERE r.run = ? ${filter}
       ORDER BY coalesce(v.key, 1e18), r.variant, r.line, r.row_id`,
    );
    for (const row of statement.iterate(...params)) yield toRecord(row);
  }

  /**
   * The stored rows of `run` as {@link SummaryRecord}s (no input, expected value or outputs read or parsed),
   * streamed in the order of {@link RunStore.rows}: what a summary or a comparison needs of a large run.
   */
  *summaryRows(run: string, options: RowsOptions = {}): IterableIterator<SummaryRecord> {
    const filter = options.variant === undefined ? '' : 'AND r.variant = ?';
    const params: SQLInputValue[] = options.variant === undefined ? [run, run] : [run, run, options.variant];
    const statement = this.#db.prepare(
      `SELECT r.variant, r.row_id, r.line, r.status, r.scores, r.usage, r.error, r.latency_ms, r.cached,
         r.finished_at
       FROM rows r
       LEFT JOIN json_each((SELECT variants FROM runs WHERE name = ?)) v ON v.value = r.variant
       WHERE r.run = ? ${filter}
       ORDER BY coalesce(v.key, 1e18), r.variant, r.line, r.row_id`,
    );
    for (const row of statement.iterate(...params)) yield toSummaryRecord(row);
  }

  /**
   * The `p`-th percentile (0–100) of the latencies of one variant's rows of `run` that ran (status not
   * `error`, not answered wholly from the cache, finite latency), exactly as {@link percentile} computes it
   * over the same values (linear interpolation between the closest ranks), but sorted by SQLite, so a run of
   * any size is not loaded into memory. `NaN` (with `n: 0`) when no row qualifies.
   * @throws {InvalidOptionError} when `p` is not within [0, 100].
   */
  latencyPercentile(run: string, variant: string, p: number): { readonly value: number; readonly n: number } {
    if (!(Number.isFinite(p) && p >= 0 && p <= 100)) {
      throw new InvalidOptionError('p', p, 'a number within [0, 100]');
    }
    const where = `run = ? AND variant = ? AND status != 'error' AND cached = 0
      AND latency_ms BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308`;
    const n = Number(
      this.#stmt(`SELECT count(*) AS n FROM rows WHERE ${where}`).get(run, variant)?.['n'] ?? 0,
    );
    if (n === 0) return { value: Number.NaN, n };
    const rank = (p / 100) * (n - 1);
    const lower = Math.floor(rank);
    const pair = this.#stmt(`SELECT latency_ms FROM rows WHERE ${where} ORDER BY latency_ms LIMIT 2 OFFSET ?`)
      .all(run, variant, lower)
      .map((row) => Number(row['latency_ms']));
    const low = pair[0] ?? Number.NaN;
    const high = pair[1] ?? low;
    return { value: low + (high - low) * (rank - lower), n };
  }

  /** How many rows of `run` are stored, by status (all zero for an unknown run). */
  countRows(run: string): RowCounts {
    return toCounts(
      this.#stmt(
        `SELECT count(*) AS total,
           coalesce(sum(status = 'pass'), 0) AS pass,
           coalesce(sum(status = 'fail'), 0) AS fail,
           coalesce(sum(status = 'error'), 0) AS error
         FROM rows WHERE run = ?`,
      ).get(run),
    );
  }

  /** Every stored run, most recently updated first. */
  runs(): RunSummary[] {
    return this.#stmt(`${summarySelect} ORDER BY r.updated_at DESC, r.name`).all().map(toSummary);
  }

  /** The stored run named `name`, if any. */
  run(name: string): RunSummary | undefined {
    const row = this.#stmt(`${summarySelect} WHERE r.name = ?`).get(name);
    return row === undefined ? undefined : toSummary(row);
  }

  /** Delete a run, all its rows and its batch-mode state. Returns false when there was no such run. */
  deleteRun(name: string): boolean {
    return this.#transaction(() => {
      this.#stmt('DELETE FROM rows WHERE run = ?').run(name);
      this.#stmt('DELETE FROM batch_items WHERE run = ?').run(name);
      this.#stmt('DELETE FROM batches WHERE run = ?').run(name);
      return Number(this.#stmt('DELETE FROM runs WHERE name = ?').run(name).changes) > 0;
    });
  }

  /**
   * Take the lease of `run`, so that no other process (or batch) runs it at the same time. Done in one
   * `BEGIN IMMEDIATE` transaction: of two processes racing for it, exactly one gets it. A lease held by someone
   * else is taken over when it is stale: its heartbeat is older than `staleMs`, or its holder is a process of
   * this host that no longer exists.
   *
   * @returns the lease now held; keep it alive with {@link RunStore.heartbeatLease}, end it with
   *   {@link RunStore.releaseLease}.
   * @throws {RunLeasedError} when a live holder has it.
   */
  acquireLease(run: string, options: AcquireLeaseOptions = {}): LeaseInfo {
    const staleMs = options.staleMs ?? DEFAULT_LEASE_STALE_MS;
    const host = hostname();
    const holder = options.holder ?? `${host}:${process.pid}:${Math.random().toString(36).slice(2, 10)}`;
    return this.#transaction(() => {
      const now = Date.now();
      const current = this.lease(run);
      if (current !== undefined && !isStale(current, now, staleMs, host))
        throw new RunLeasedError(current, now);
      this.#stmt(
        `INSERT OR REPLACE INTO leases (run, holder, host, pid, acquired_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?)`,
      ).run(run, holder, host, process.pid, now, now);
      return { run, holder, host, pid: process.pid, acquiredAt: now, heartbeatAt: now };
    });
  }

  /**
   * Record that `holder` is still running `run`. Returns false when it no longer holds the lease (another
   * process took it over as stale).
   */
  heartbeatLease(run: string, holder: string): boolean {
    const result = this.#stmt('UPDATE leases SET heartbeat_at = ? WHERE run = ? AND holder = ?').run(
      Date.now(),
      run,
      holder,
    );
    return Number(result.changes) > 0;
  }

  /** End `holder`'s lease of `run` (nothing happens when it does not hold it). */
  releaseLease(run: string, holder: string): void {
    this.#stmt('DELETE FROM leases WHERE run = ? AND holder = ?').run(run, holder);
  }

  /** The stored lease of `run`, stale or not, if any. */
  lease(run: string): LeaseInfo | undefined {
    const row = this.#stmt('SELECT * FROM leases WHERE run = ?').get(run);
    if (row === undefined) return undefined;
    return {
      run: String(row['run']),
      holder: String(row['holder']),
      host: String(row['host']),
      pid: Number(row['pid']),
      acquiredAt: Number(row['acquired_at']),
      heartbeatAt: Number(row['heartbeat_at']),
    };
  }

  /** Close the database. The store cannot be used afterwards; closing twice does nothing. */
  close(): void {
    if (!this.#db.isOpen) return;
    this.#statements.clear();
    this.#db.close();
  }

  #keys(sql: string, run: string): Set<string> {
    const keys = new Set<string>();
    for (const row of this.#stmt(sql).iterate(run))
      keys.add(rowKey(String(row['variant']), String(row['row_id'])));
    return keys;
  }

  /** Records a submitted batch of `run` and its items (state `submitted`), in one transaction (batch mode). */
  putBatch(run: string, batch: BatchInfo, customIds: readonly string[]): void {
    this.#transaction(() => {
      this.#stmt(
        `INSERT OR REPLACE INTO batches (run, id, provider, model, status, items, completed, submitted_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        run,
        batch.id,
        batch.provider,
        batch.model,
        batch.status,
        batch.items,
        batch.completed ?? null,
        batch.submittedAt,
      );
      const item = this.#stmt(
        `INSERT OR REPLACE INTO batch_items (run, custom_id, batch_id, state) VALUES (?, ?, ?, 'submitted')`,
      );
      for (const customId of customIds) item.run(run, customId, batch.id);
    });
  }

  /** Updates a batch's status and completed count (batch mode). */
  updateBatch(run: string, id: string, status: BatchStatus, completed: number | undefined): void {
    this.#stmt(
      'UPDATE batches SET status = ?, completed = COALESCE(?, completed) WHERE run = ? AND id = ?',
    ).run(status, completed ?? null, run, id);
  }

  /** Records batch items' outcomes, in one transaction (batch mode). */
  settleBatchItems(run: string, items: readonly BatchItemRecord[]): void {
    if (items.length === 0) return;
    this.#transaction(() => {
      const statement = this.#stmt(
        `INSERT OR REPLACE INTO batch_items (run, custom_id, batch_id, state, response, error)
         VALUES (?, ?, ?, ?, ?, ?)`,
      );
      for (const item of items) {
        statement.run(
          run,
          item.customId,
          item.batchId,
          item.state,
          item.response === undefined ? null : JSON.stringify(item.response),
          item.error ?? null,
        );
      }
    });
  }

  /** Every batch `run` submitted, oldest first (batch mode). */
  batches(run: string): BatchInfo[] {
    return this.#stmt('SELECT * FROM batches WHERE run = ? ORDER BY submitted_at, id')
      .all(run)
      .map((row) => ({
        id: String(row['id']),
        provider: String(row['provider']),
        model: String(row['model']),
        status: String(row['status']) as BatchStatus,
        items: Number(row['items']),
        completed: row['completed'] === null ? undefined : Number(row['completed']),
        submittedAt: Number(row['submitted_at']),
      }));
  }

  /** Every batch item of `run` (batch mode). */
  batchItems(run: string): BatchItemRecord[] {
    return this.#stmt('SELECT * FROM batch_items WHERE run = ?')
      .all(run)
      .map((row) => ({
        customId: String(row['custom_id']),
        batchId: String(row['batch_id']),
        state: String(row['state']) as BatchItemRecord['state'],
        response: row['response'] === null ? undefined : (JSON.parse(String(row['response'])) as Json),
        error: row['error'] === null ? undefined : String(row['error']),
      }));
  }

  #stmt(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  // BEGIN IMMEDIATE takes the write lock up front, so two processes sharing the file wait on busy_timeout
  // instead of failing to upgrade a read lock midway.
  #transaction<T>(body: () => T): T {
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const result = body();
      this.#db.exec('COMMIT');
      return result;
    } catch (err) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw err;
    }
  }
}

/** A lease is stale when its heartbeat is older than `staleMs`, or its holder was a process of this host that is gone. */
function isStale(lease: LeaseInfo, now: number, staleMs: number, host: string): boolean {
  if (now - lease.heartbeatAt > staleMs) return true;
  return lease.host === host && !processAlive(lease.pid);
}

const summarySelect = `
  SELECT r.name, r.chain, r.variants, r.dataset, r.config, r.created_at, r.updated_at,
    (SELECT count(*) FROM rows WHERE run = r.name) AS total,
    (SELECT count(*) FROM rows WHERE run = r.name AND status = 'pass') AS pass,
    (SELECT count(*) FROM rows WHERE run = r.name AND status = 'fail') AS fail,
    (SELECT count(*) FROM rows WHERE run = r.name AND status = 'error') AS error,
    (SELECT coalesce(sum(cost_usd), 0) FROM rows WHERE run = r.name) AS cost_usd,
    (SELECT coalesce(sum(tokens), 0) FROM rows WHERE run = r.name) AS tokens
  FROM runs r`;

/**
 * `node:sqlite`, loaded on the first store or cache that opens a database, so that importing the package does
 * not need it (it is built in from Node 22.13; earlier 22.x releases have it only behind a flag).
 */
function loadSqlite(path: string): typeof import('node:sqlite') {
  // Node 22 prints an ExperimentalWarning when the module loads: the stores are ours to vouch for, so a user's
  // stderr does not get it (any other warning passes through). The original function is put back as it was.
  const original = Object.getOwnPropertyDescriptor(process, 'emitWarning');
  const forward = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = (warning: string | Error, ...rest: unknown[]) => {
    if (String(warning).includes('SQLite is an experimental feature')) return;
    forward(warning, ...rest);
  };
  // Before Node 22.13 (without --experimental-sqlite) there is no such module: `undefined`, not a throw.
  let sqlite: typeof import('node:sqlite') | undefined;
  try {
    sqlite = process.getBuiltinModule('node:sqlite');
  } finally {
    if (original === undefined) delete (process as { emitWarning?: unknown }).emitWarning;
    else Object.defineProperty(process, 'emitWarning', original);
  }
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- typed as always there; it is not before 22.13
  if (sqlite === undefined) {
    throw new StoreOpenError(path, `node:sqlite is not available on Node ${process.versions.node}`, {
      hint: 'run store and cache features on Node 22.13 or later (the SQLite module is built in from there)',
    });
  }
  return sqlite;
}

/**
 * Switches `db` to WAL. The switch needs the file to itself for a moment, and SQLite answers "database is
 * locked" at once, without waiting on `busy_timeout`, when another process is opening or switching the same
 * new file at that instant (two batches started together on one store): so it is retried for up to the same
 * 5 s, and skipped when the file is already in WAL mode (WAL is a property of the file, kept across opens).
 */
function enableWal(db: DatabaseSync): void {
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      const row = db.prepare('PRAGMA journal_mode').get() as { journal_mode?: unknown } | undefined;
      if (row?.journal_mode === 'wal') return;
      db.exec('PRAGMA journal_mode = WAL');
      return;
    } catch (err) {
      if (!/database is locked/u.test(errorMessage(err)) || Date.now() >= deadline) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20); // a synchronous 20 ms pause
    }
  }
}

/**
 * Opens a SQLite file with the settings every symphonizer store uses (the run store and the response
 * cache). Not part of the public API.
 *
 * @internal
 */
export function openDatabase(path: string): DatabaseSync {
  let db: DatabaseSync;
  try {
    if (path !== ':memory:' && path !== '' && !path.startsWith('file:'))
      mkdirSync(dirname(path), { recursive: true });
    db = new (loadSqlite(path).DatabaseSync)(path);
  } catch (err) {
    if (err instanceof StoreOpenError) throw err;
    throw new StoreOpenError(path, errorMessage(err), { cause: err });
  }
  try {
    // Another process (a second batch, a report) may hold the write lock for a moment: wait, don't fail.
    db.exec('PRAGMA busy_timeout = 5000');
    // WAL: readers never block the writer, and a commit is one append to the log. synchronous=NORMAL fsyncs
    // the log at checkpoints rather than at every commit, so each row commit stays cheap. A killed process
    // loses nothing it committed (the log is in the OS cache); an OS crash or power loss may lose the last
    // few transactions, but never corrupts the file (WAL at NORMAL stays consistent). A lost row is simply
    // run again on resume.
    enableWal(db);
    db.exec('PRAGMA synchronous = NORMAL');
    db.exec('PRAGMA foreign_keys = ON');
  } catch (err) {
    db.close();
    throw new StoreOpenError(path, errorMessage(err), {
      cause: err,
      hint: 'is it a SQLite database, and is its directory writable?',
    });
  }
  return db;
}
