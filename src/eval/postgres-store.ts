/**
 * The run store in PostgreSQL: the semantics of the SQLite {@link RunStore} (one row per run × variant × row
 * id, first finished write wins, resume by run name, the run lease), shared by every machine that reaches the
 * database. `pg` is an optional peer dependency, loaded on the first {@link PostgresRunStore.open}.
 */
import { hostname } from 'node:os';
import { inspect } from 'node:util';
import {
  InvalidOptionError,
  MissingPeerDependencyError,
  SymphonizerError,
  errorMessage,
} from '../core/errors.ts';
import type { Json } from '../core/json.ts';
import type { EvalErrorCode } from './errors.ts';
import type { EvalRunStore, PutRowOptions } from './run-store.ts';
import {
  DEFAULT_LEASE_STALE_MS,
  RunLeasedError,
  RunMismatchError,
  StoreOpenError,
  StoreUnavailableError,
  UnknownRunError,
  rowKey,
  type AcquireLeaseOptions,
  type FinishedKeysOptions,
  type LeaseInfo,
  type RowCounts,
  type RowsOptions,
  type RunInfo,
  type RunSummary,
} from './store.ts';
import type { RowRecord, SummaryRecord } from './types.ts';
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
  type DbRow,
} from './store-rows.ts';
import type { BatchInfo, BatchItemRecord } from './batch-mode.ts';
import type { BatchStatus } from '../providers/batch.ts';

/** Options of {@link PostgresRunStore.open}. */
export interface PostgresRunStoreOptions {
  /**
   * PostgreSQL schema holding the tables (`symphonizer_runs`, `symphonizer_rows`, `symphonizer_leases`),
   * created when missing. Letters, digits and `_`. @default 'public'
   */
  readonly schema?: string | undefined;
  /** Most connections the store's pool opens. @default 10 */
  readonly poolSize?: number | undefined;
}

/** @internal The part of a `pg` query result the stores read. */
export interface PgResult {
  readonly rows: Record<string, unknown>[];
  readonly rowCount: number | null;
}

/** @internal The part of a `pg` client the stores use. */
export interface PgClient {
  query(text: string, values?: readonly unknown[]): Promise<PgResult>;
  release(error?: Error | boolean): void;
}

/** @internal The part of a `pg.Pool` the stores use. */
export interface PgPool {
  query(text: string, values?: readonly unknown[]): Promise<PgResult>;
  connect(): Promise<PgClient>;
  end(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

type PoolConstructor = new (config: Record<string, unknown>) => PgPool;

let poolClass: PoolConstructor | undefined;

/** @internal `pg.Pool`, imported on first use; a missing `pg` is a {@link MissingPeerDependencyError}. */
export async function loadPg(feature: string): Promise<PoolConstructor> {
  if (poolClass !== undefined) return poolClass;
  let module: { Pool?: PoolConstructor; default?: { Pool?: PoolConstructor } };
  try {
    module = await import('pg');
  } catch (error) {
    throw new MissingPeerDependencyError('pg', feature, error);
  }
  const found = module.Pool ?? module.default?.Pool;
  if (found === undefined) throw new MissingPeerDependencyError('pg', feature);
  poolClass = found;
  return found;
}

/** @internal A PostgreSQL URL without its password: `postgres://user@host:port/db`. */
export function redactUrl(url: string): string {
  const parsed = URL.parse(url);
  if (parsed === null) return 'postgres://(an invalid URL, not shown)';
  parsed.password = '';
  parsed.search = '';
  return parsed.toString();
}

/** @internal `text` with every occurrence of the URL's password (raw and decoded) replaced by `***`. */
export function scrub(text: string, url: string): string {
  const password = URL.parse(url)?.password ?? '';
  if (password === '') return text;
  let out = text.split(password).join('***');
  const decoded = safeDecode(password);
  if (decoded !== '') out = out.split(decoded).join('***');
  return out;
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * @internal The error to throw for `error`, raised while opening (`open`) or using (`use`) the database at
 * `url`: a {@link StoreOpenError} or a {@link StoreUnavailableError}, its message and cause free of the password.
 */
export function storeError(url: string, error: unknown, phase: 'open' | 'use'): Error {
  if (SymphonizerError.isInstance(error)) return error;
  const password = URL.parse(url)?.password ?? '';
  // The cause is kept only when nothing in it shows the password.
  const clean = password === '' || !inspect(error, { depth: 4 }).includes(safeDecode(password));
  const options = clean ? { cause: error } : {};
  const message = scrub(errorMessage(error), url);
  if (phase === 'use') {
    return new StoreUnavailableError(redactUrl(url), message, {
      ...options,
      hint: 'check that PostgreSQL is still reachable; rows not stored are redone on resume',
    });
  }
  return new StoreOpenError(redactUrl(url), message, {
    ...options,
    database: 'PostgreSQL database',
    hint: 'check that PostgreSQL is running and reachable, and the URL’s user, database and password',
  });
}

/** @internal A checked schema name, quoted. */
export function quoteSchema(schema: string | undefined): string {
  const name = schema ?? 'public';
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name)) {
    throw new InvalidOptionError(
      'schema',
      name,
      'a PostgreSQL schema name: letters, digits and _, at most 63',
    );
  }
  return `"${name}"`;
}

/** @internal A checked pool size. */
export function checkPoolSize(size: number | undefined): number {
  const max = size ?? 10;
  if (!(Number.isInteger(max) && max >= 1)) throw new InvalidOptionError('poolSize', max, 'an integer >= 1');
  return max;
}

/** @internal Opens a pool on `url` and checks that it answers. */
export async function openPool(url: string, poolSize: number, feature: string): Promise<PgPool> {
  const Pool = await loadPg(feature);
  let pool: PgPool;
  try {
    pool = new Pool({ connectionString: url, max: poolSize });
  } catch (error) {
    throw storeError(url, error, 'open');
  }
  // An idle connection that breaks (a server restart) is dropped by the pool; the next query reconnects.
  pool.on('error', () => undefined);
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw storeError(url, error, 'open');
  }
  return pool;
}

/** Epoch milliseconds by the database server's clock. */
const NOW_MS = `(extract(epoch from clock_timestamp()) * 1000)::bigint`;

/** Key of the advisory lock that serialises schema creation between processes opening at once. */
const SCHEMA_LOCK = 0x73796d70; // "symp"

/** Rows fetched per round trip when rows are streamed through a cursor. */
const FETCH_SIZE = 500;

/**
 * Runs and their rows in PostgreSQL, for evaluations spread over machines (`evaluate({ store: 'postgres://…' })`,
 * `symphonizer eval --store postgres://…`). Every row is written in one statement that keeps a stored row
 * (`INSERT … ON CONFLICT DO NOTHING`): of two processes finishing the same unit, the first write wins. Leases
 * are clocked by the server's `clock_timestamp()`, so the machines' clocks do not matter. Counts, sums and
 * latency percentiles are computed by PostgreSQL; rows are streamed through a cursor.
 *
 * @example
 * ```ts
 * const store = await PostgresRunStore.open('postgres://eval@db.internal:5432/evals');
 * console.log(await store.runs());
 * await store.close();
 * ```
 */
export class PostgresRunStore implements EvalRunStore {
  readonly kind = 'postgres' as const;
  /** The URL without its password. */
  readonly location: string;
  readonly #pool: PgPool;
  readonly #url: string;
  readonly #runs: string;
  readonly #rows: string;
  readonly #leases: string;
  readonly #batches: string;
  readonly #batchItems: string;
  #closed: Promise<void> | undefined;

  private constructor(pool: PgPool, url: string, schema: string) {
    this.#pool = pool;
    this.#url = url;
    this.location = redactUrl(url);
    this.#runs = `${schema}.symphonizer_runs`;
    this.#rows = `${schema}.symphonizer_rows`;
    this.#leases = `${schema}.symphonizer_leases`;
    this.#batches = `${schema}.symphonizer_batches`;
    this.#batchItems = `${schema}.symphonizer_batch_items`;
  }

  /**
   * Connect to `url` (a `postgres://` URL; `pg` reads the same environment variables as `psql` for what it
   * leaves out) and create the tables when missing, under an advisory lock so that processes opening at once
   * do not race.
   *
   * @throws {MissingPeerDependencyError} when `pg` is not installed (`npm install pg`).
   * @throws {StoreOpenError} when the database cannot be reached or the tables cannot be created; the URL's
   *   password never appears in it.
   * @throws {InvalidOptionError} for a bad `schema` or `poolSize`.
   */
  static async open(url: string, options: PostgresRunStoreOptions = {}): Promise<PostgresRunStore> {
    const schema = quoteSchema(options.schema);
    const poolSize = checkPoolSize(options.poolSize);
    const pool = await openPool(url, poolSize, 'The PostgreSQL run store');
    const store = new PostgresRunStore(pool, url, schema);
    try {
      await store.#transaction(async (client) => {
        await client.query(`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK})`);
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
        await client.query(`
          CREATE TABLE IF NOT EXISTS ${store.#runs} (
            name       TEXT PRIMARY KEY,
            chain      TEXT NOT NULL,
            variants   TEXT NOT NULL,
            dataset    TEXT,
            config     TEXT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
          )`);
        await client.query(`
          CREATE TABLE IF NOT EXISTS ${store.#rows} (
            run         TEXT NOT NULL REFERENCES ${store.#runs} (name) ON DELETE CASCADE,
            variant     TEXT NOT NULL,
            row_id      TEXT NOT NULL,
            line        INTEGER NOT NULL,
            status      TEXT NOT NULL CHECK (status IN ('pass', 'fail', 'error')),
            input       TEXT NOT NULL,
            expected    TEXT,
            outputs     TEXT,
            scores      TEXT NOT NULL,
            usage       TEXT NOT NULL,
            error       TEXT,
            latency_ms  DOUBLE PRECISION NOT NULL,
            cost_usd    DOUBLE PRECISION NOT NULL,
            tokens      BIGINT NOT NULL,
            attempts    INTEGER NOT NULL,
            cached      BOOLEAN NOT NULL,
            finished_at BIGINT NOT NULL,
            batch       BOOLEAN NOT NULL DEFAULT false,
            PRIMARY KEY (run, variant, row_id)
          )`);
        // Tables made before batch mode: the column is added (existing rows are not batch rows).
        await client.query(
          `ALTER TABLE ${store.#rows} ADD COLUMN IF NOT EXISTS batch BOOLEAN NOT NULL DEFAULT false`,
        );
        await client.query(`
          CREATE TABLE IF NOT EXISTS ${store.#leases} (
            run          TEXT PRIMARY KEY,
            holder       TEXT NOT NULL,
            host         TEXT NOT NULL,
            pid          INTEGER NOT NULL,
            acquired_at  BIGINT NOT NULL,
            heartbeat_at BIGINT NOT NULL
          )`);
        // Batch mode (see batch-mode.ts): the batches a run submitted, and each item's state and answer.
        await client.query(`
          CREATE TABLE IF NOT EXISTS ${store.#batches} (
            run          TEXT NOT NULL,
            id           TEXT NOT NULL,
            provider     TEXT NOT NULL,
            model        TEXT NOT NULL,
            status       TEXT NOT NULL,
            items        INTEGER NOT NULL,
            completed    INTEGER,
            submitted_at BIGINT NOT NULL,
            PRIMARY KEY (run, id)
          )`);
        await client.query(`
          CREATE TABLE IF NOT EXISTS ${store.#batchItems} (
            run       TEXT NOT NULL,
            custom_id TEXT NOT NULL,
            batch_id  TEXT NOT NULL,
            state     TEXT NOT NULL CHECK (state IN ('submitted', 'done', 'failed')),
            response  TEXT,
            error     TEXT,
            PRIMARY KEY (run, custom_id)
          )`);
      }, 'open');
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw error;
    }
    return store;
  }

  /**
   * Create the run, or resume the stored run of that name (see {@link RunStore.beginRun}).
   * @throws {RunMismatchError} when the stored run has another chain.
   */
  beginRun(info: RunInfo): Promise<{ resumed: boolean }> {
    return this.#transaction(async (client) => {
      const inserted = await client.query(
        `INSERT INTO ${this.#runs} (name, chain, variants, dataset, config, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, ${NOW_MS}, ${NOW_MS}) ON CONFLICT (name) DO NOTHING RETURNING name`,
        [
          info.run,
          info.chain,
          JSON.stringify(unique(info.variants)),
          info.dataset ?? null,
          toJsonColumn(info.config),
        ],
      );
      if (inserted.rows.length > 0) return { resumed: false };
      const existing = await client.query(
        `SELECT chain, variants FROM ${this.#runs} WHERE name = $1 FOR UPDATE`,
        [info.run],
      );
      const row = existing.rows[0];
      if (row === undefined) throw new UnknownRunError(info.run); // deleted in between: a rare race, reported
      const storedChain = String(row['chain']);
      if (storedChain !== info.chain) throw new RunMismatchError(info.run, storedChain, info.chain);
      const variants = unique([...parseStringArray(row['variants']), ...info.variants]);
      await client.query(
        `UPDATE ${this.#runs} SET variants = $1, dataset = coalesce($2, dataset), config = coalesce($3, config),
           updated_at = greatest(updated_at, ${NOW_MS}) WHERE name = $4`,
        [JSON.stringify(variants), info.dataset ?? null, toJsonColumn(info.config), info.run],
      );
      return { resumed: true };
    });
  }

  /** Keys ({@link rowKey}) of the stored rows of `run`; error rows included unless `includeErrors: false`. */
  async finishedKeys(run: string, options: FinishedKeysOptions = {}): Promise<Set<string>> {
    const filter = options.includeErrors === false ? `AND status <> 'error'` : '';
    return this.#keys(`SELECT variant, row_id FROM ${this.#rows} WHERE run = $1 ${filter}`, run);
  }

  /** Keys ({@link rowKey}) of the rows of `run` stored with status `error`. */
  async errorKeys(run: string): Promise<Set<string>> {
    return this.#keys(`SELECT variant, row_id FROM ${this.#rows} WHERE run = $1 AND status = 'error'`, run);
  }

  /**
   * Store one finished row in one statement, unless a row with its run, variant and row id is stored (the first
   * finished write wins); with `replaceErrors`, a stored ERROR row is replaced. A variant the run did not list
   * is added to it.
   *
   * @returns true when the row was written.
   * @throws {UnknownRunError} when the run was never begun.
   */
  async putRow(record: RowRecord, options: PutRowOptions = {}): Promise<boolean> {
    const replace = options.replaceErrors === true;
    const conflict = replace
      ? `DO UPDATE SET ${rowUpdates} WHERE ${this.#rows}.status = 'error'`
      : 'DO NOTHING';
    const result = await this.#query(
      `WITH r AS (
         UPDATE ${this.#runs} SET updated_at = greatest(updated_at, ${NOW_MS}),
           variants = CASE WHEN variants::jsonb ? $2 THEN variants ELSE (variants::jsonb || to_jsonb($2::text))::text END
         WHERE name = $1 RETURNING name
       ), w AS (
         INSERT INTO ${this.#rows} (run, variant, row_id, line, status, input, expected, outputs, scores, usage, error,
           latency_ms, cost_usd, tokens, attempts, cached, finished_at, batch)
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18 FROM r
         ON CONFLICT (run, variant, row_id) ${conflict}
         RETURNING 1
       )
       SELECT (SELECT count(*) FROM r)::int AS found, (SELECT count(*) FROM w)::int AS written`,
      [
        record.run,
        record.variant,
        record.rowId,
        Math.round(record.line),
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
        record.cached,
        Math.round(record.finishedAt),
        record.batch === true,
      ],
    );
    const row = result.rows[0];
    if (Number(row?.['found'] ?? 0) === 0) throw new UnknownRunError(record.run);
    return Number(row?.['written'] ?? 0) > 0;
  }

  /** The stored rows of `run`, streamed through a cursor: by variant in the run's order, then line, then row id. */
  async *rows(run: string, options: RowsOptions = {}): AsyncIterableIterator<RowRecord> {
    for await (const row of this.#ordered(
      `r.run, r.variant, r.row_id, r.line, r.status, r.input, r.expected, r.outputs, r.scores, r.usage, r.error,
       r.latency_ms, r.attempts, r.cached, r.finished_at, r.batch`,
      run,
      options,
    ))
      yield toRecord(row);
  }

  /** The stored rows of `run` as {@link SummaryRecord}s (no input, expected value or outputs), streamed. */
  async *summaryRows(run: string, options: RowsOptions = {}): AsyncIterableIterator<SummaryRecord> {
    for await (const row of this.#ordered(
      `r.variant, r.row_id, r.line, r.status, r.scores, r.usage, r.error, r.latency_ms, r.cached, r.finished_at`,
      run,
      options,
    ))
      yield toSummaryRecord(row);
  }

  /**
   * The `p`-th percentile (0–100) of the latencies of one variant's rows that ran (not `error`, not cached,
   * finite), computed by PostgreSQL (`percentile_cont`: linear interpolation between the closest ranks, as
   * {@link percentile}). `NaN` with `n: 0` when no row qualifies.
   * @throws {InvalidOptionError} when `p` is not within [0, 100].
   */
  async latencyPercentile(run: string, variant: string, p: number): Promise<{ value: number; n: number }> {
    if (!(Number.isFinite(p) && p >= 0 && p <= 100))
      throw new InvalidOptionError('p', p, 'a number within [0, 100]');
    const result = await this.#query(
      `SELECT count(*)::int AS n, percentile_cont($3::float8) WITHIN GROUP (ORDER BY latency_ms) AS value
       FROM ${this.#rows}
       WHERE run = $1 AND variant = $2 AND status <> 'error' AND NOT cached
         AND latency_ms BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308`,
      [run, variant, p / 100],
    );
    const n = Number(result.rows[0]?.['n'] ?? 0);
    if (n === 0) return { value: Number.NaN, n };
    return { value: Number(result.rows[0]?.['value']), n };
  }

  /** How many rows of `run` are stored, by status (all zero for an unknown run). */
  async countRows(run: string): Promise<RowCounts> {
    const result = await this.#query(
      `SELECT count(*)::int AS total, count(*) FILTER (WHERE status = 'pass')::int AS pass,
         count(*) FILTER (WHERE status = 'fail')::int AS fail, count(*) FILTER (WHERE status = 'error')::int AS error
       FROM ${this.#rows} WHERE run = $1`,
      [run],
    );
    return toCounts(result.rows[0]);
  }

  /** Every stored run, most recently updated first. */
  async runs(): Promise<RunSummary[]> {
    const result = await this.#query(
      `${this.#summarySelect()} ORDER BY r.updated_at DESC, r.name COLLATE "C"`,
    );
    return result.rows.map(toSummary);
  }

  /** The stored run named `name`, if any. */
  async run(name: string): Promise<RunSummary | undefined> {
    const result = await this.#query(`${this.#summarySelect()} WHERE r.name = $1`, [name]);
    const row = result.rows[0];
    return row === undefined ? undefined : toSummary(row);
  }

  /** Delete a run, all its rows and its batch-mode state. Resolves false when there was no such run. */
  deleteRun(name: string): Promise<boolean> {
    return this.#transaction(async (client) => {
      await client.query(`DELETE FROM ${this.#rows} WHERE run = $1`, [name]);
      await client.query(`DELETE FROM ${this.#batchItems} WHERE run = $1`, [name]);
      await client.query(`DELETE FROM ${this.#batches} WHERE run = $1`, [name]);
      const deleted = await client.query(`DELETE FROM ${this.#runs} WHERE name = $1`, [name]);
      return (deleted.rowCount ?? 0) > 0;
    });
  }

  /**
   * Take the lease of `run` (see {@link RunStore.acquireLease}), in one transaction holding the lease row: of
   * processes racing for it, on any machines, exactly one gets it. A lease is stale when its heartbeat is older
   * than `staleMs` by the database server's clock, or its holder is a process of this host that is gone.
   *
   * @throws {RunLeasedError} when a live holder has it.
   */
  async acquireLease(run: string, options: AcquireLeaseOptions = {}): Promise<LeaseInfo> {
    const staleMs = options.staleMs ?? DEFAULT_LEASE_STALE_MS;
    const host = hostname();
    const holder = options.holder ?? `${host}:${process.pid}:${Math.random().toString(36).slice(2, 10)}`;
    const values = [run, holder, host, process.pid];
    for (;;) {
      const taken = await this.#transaction(async (client) => {
        const inserted = await client.query(
          `INSERT INTO ${this.#leases} (run, holder, host, pid, acquired_at, heartbeat_at)
           VALUES ($1, $2, $3, $4, ${NOW_MS}, ${NOW_MS}) ON CONFLICT (run) DO NOTHING RETURNING *`,
          values,
        );
        if (inserted.rows[0] !== undefined) return toLease(inserted.rows[0]);
        const current = await client.query(
          `SELECT *, ${NOW_MS} AS now FROM ${this.#leases} WHERE run = $1 FOR UPDATE`,
          [run],
        );
        const row = current.rows[0];
        if (row === undefined) return undefined; // released in between: try again
        const lease = toLease(row);
        const now = Number(row['now']);
        const stale = now - lease.heartbeatAt > staleMs || (lease.host === host && !processAlive(lease.pid));
        if (!stale) throw new RunLeasedError(lease, now);
        const updated = await client.query(
          `UPDATE ${this.#leases} SET holder = $2, host = $3, pid = $4, acquired_at = ${NOW_MS},
             heartbeat_at = ${NOW_MS} WHERE run = $1 RETURNING *`,
          values,
        );
        return toLease(updated.rows[0] ?? {});
      });
      if (taken !== undefined) return taken;
    }
  }

  /** Record that `holder` still runs `run` (server time). False when it no longer holds the lease. */
  async heartbeatLease(run: string, holder: string): Promise<boolean> {
    const result = await this.#query(
      `UPDATE ${this.#leases} SET heartbeat_at = ${NOW_MS} WHERE run = $1 AND holder = $2`,
      [run, holder],
    );
    return (result.rowCount ?? 0) > 0;
  }

  /** End `holder`'s lease of `run` (nothing happens when it does not hold it). */
  async releaseLease(run: string, holder: string): Promise<void> {
    await this.#query(`DELETE FROM ${this.#leases} WHERE run = $1 AND holder = $2`, [run, holder]);
  }

  /** The stored lease of `run`, stale or not, if any. */
  async lease(run: string): Promise<LeaseInfo | undefined> {
    const result = await this.#query(`SELECT * FROM ${this.#leases} WHERE run = $1`, [run]);
    const row = result.rows[0];
    return row === undefined ? undefined : toLease(row);
  }

  /** Records a submitted batch of `run` and its items (state `submitted`), in one transaction (batch mode). */
  putBatch(run: string, batch: BatchInfo, customIds: readonly string[]): Promise<void> {
    return this.#transaction(async (client) => {
      await client.query(
        `INSERT INTO ${this.#batches} (run, id, provider, model, status, items, completed, submitted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (run, id) DO UPDATE SET status = EXCLUDED.status, completed = EXCLUDED.completed`,
        [
          run,
          batch.id,
          batch.provider,
          batch.model,
          batch.status,
          batch.items,
          batch.completed ?? null,
          batch.submittedAt,
        ],
      );
      // One statement for every item: unnest the ids.
      await client.query(
        `INSERT INTO ${this.#batchItems} (run, custom_id, batch_id, state)
         SELECT $1, id, $2, 'submitted' FROM unnest($3::text[]) AS id
         ON CONFLICT (run, custom_id) DO UPDATE SET batch_id = EXCLUDED.batch_id, state = 'submitted'`,
        [run, batch.id, [...customIds]],
      );
    });
  }

  /** Updates a batch's status and completed count (batch mode). */
  async updateBatch(
    run: string,
    id: string,
    status: BatchStatus,
    completed: number | undefined,
  ): Promise<void> {
    await this.#query(
      `UPDATE ${this.#batches} SET status = $1, completed = COALESCE($2, completed) WHERE run = $3 AND id = $4`,
      [status, completed ?? null, run, id],
    );
  }

  /** Records batch items' outcomes, in one statement (batch mode). */
  async settleBatchItems(run: string, items: readonly BatchItemRecord[]): Promise<void> {
    if (items.length === 0) return;
    await this.#query(
      `INSERT INTO ${this.#batchItems} (run, custom_id, batch_id, state, response, error)
       SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
       ON CONFLICT (run, custom_id) DO UPDATE SET
         batch_id = EXCLUDED.batch_id, state = EXCLUDED.state, response = EXCLUDED.response, error = EXCLUDED.error`,
      [
        run,
        items.map((item) => item.customId),
        items.map((item) => item.batchId),
        items.map((item) => item.state),
        items.map((item) => (item.response === undefined ? null : JSON.stringify(item.response))),
        items.map((item) => item.error ?? null),
      ],
    );
  }

  /** Every batch `run` submitted, oldest first (batch mode). */
  async batches(run: string): Promise<readonly BatchInfo[]> {
    const result = await this.#query(
      `SELECT * FROM ${this.#batches} WHERE run = $1 ORDER BY submitted_at, id`,
      [run],
    );
    return result.rows.map((row) => ({
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
  async batchItems(run: string): Promise<readonly BatchItemRecord[]> {
    const result = await this.#query(`SELECT * FROM ${this.#batchItems} WHERE run = $1`, [run]);
    return result.rows.map((row) => ({
      customId: String(row['custom_id']),
      batchId: String(row['batch_id']),
      state: String(row['state']) as BatchItemRecord['state'],
      response: row['response'] === null ? undefined : (JSON.parse(row['response'] as string) as Json),
      error: row['error'] === null ? undefined : (row['error'] as string),
    }));
  }

  /** End the pool's connections. The store cannot be used afterwards; closing twice does nothing. */
  close(): Promise<void> {
    this.#closed ??= this.#pool.end().catch(() => undefined);
    return this.#closed;
  }

  #summarySelect(): string {
    return `
      SELECT r.name, r.chain, r.variants, r.dataset, r.config, r.created_at, r.updated_at,
        coalesce(c.total, 0) AS total, coalesce(c.pass, 0) AS pass, coalesce(c.fail, 0) AS fail,
        coalesce(c.error, 0) AS error, coalesce(c.cost_usd, 0) AS cost_usd, coalesce(c.tokens, 0) AS tokens
      FROM ${this.#runs} r
      LEFT JOIN LATERAL (
        SELECT count(*)::int AS total, count(*) FILTER (WHERE status = 'pass')::int AS pass,
          count(*) FILTER (WHERE status = 'fail')::int AS fail, count(*) FILTER (WHERE status = 'error')::int AS error,
          sum(cost_usd) AS cost_usd, sum(tokens)::float8 AS tokens
        FROM ${this.#rows} WHERE run = r.name
      ) c ON true`;
  }

  /** Rows of `run` in the stores' order, fetched `FETCH_SIZE` at a time through a cursor. */
  async *#ordered(
    columns: string,
    run: string,
    options: RowsOptions,
  ): AsyncIterableIterator<Record<string, unknown>> {
    const client = await this.#connect();
    try {
      await client.query('BEGIN READ ONLY');
      const variants = await client.query(`SELECT variants FROM ${this.#runs} WHERE name = $1`, [run]);
      const order = parseStringArray(variants.rows[0]?.['variants']);
      const filter = options.variant === undefined ? '' : 'AND r.variant = $3';
      const params: unknown[] = options.variant === undefined ? [run, order] : [run, order, options.variant];
      await client.query(
        `DECLARE symphonizer_rows_cursor NO SCROLL CURSOR FOR
         SELECT ${columns} FROM ${this.#rows} r WHERE r.run = $1 ${filter}
         ORDER BY coalesce(array_position($2::text[], r.variant), 2147483647), r.variant COLLATE "C", r.line,
           r.row_id COLLATE "C"`,
        params,
      );
      for (;;) {
        const batch = await client.query(`FETCH ${FETCH_SIZE} FROM symphonizer_rows_cursor`);
        for (const row of batch.rows) yield row;
        if (batch.rows.length < FETCH_SIZE) break;
      }
      await client.query('COMMIT');
    } catch (error) {
      throw storeError(this.#url, error, 'use');
    } finally {
      // Left early (a `break` in the caller's loop) or failed: end the transaction before the client goes back.
      try {
        await client.query('ROLLBACK');
        client.release();
      } catch (error) {
        client.release(error instanceof Error ? error : true);
      }
    }
  }

  async #keys(sql: string, run: string): Promise<Set<string>> {
    const keys = new Set<string>();
    for await (const row of this.#cursor(sql, [run]))
      keys.add(rowKey(String(row['variant']), String(row['row_id'])));
    return keys;
  }

  /** Any query's rows through a cursor, `FETCH_SIZE` at a time. */
  async *#cursor(sql: string, params: readonly unknown[]): AsyncIterableIterator<Record<string, unknown>> {
    const client = await this.#connect();
    try {
      await client.query('BEGIN READ ONLY');
      await client.query(`DECLARE symphonizer_keys_cursor NO SCROLL CURSOR FOR ${sql}`, params);
      for (;;) {
        const batch = await client.query(`FETCH ${FETCH_SIZE * 10} FROM symphonizer_keys_cursor`);
        for (const row of batch.rows) yield row;
        if (batch.rows.length < FETCH_SIZE * 10) break;
      }
    } catch (error) {
      throw storeError(this.#url, error, 'use');
    } finally {
      try {
        await client.query('ROLLBACK');
        client.release();
      } catch (error) {
        client.release(error instanceof Error ? error : true);
      }
    }
  }

  async #connect(phase: 'open' | 'use' = 'use'): Promise<PgClient> {
    this.#checkOpen();
    try {
      return await this.#pool.connect();
    } catch (error) {
      throw storeError(this.#url, error, phase);
    }
  }

  async #query(sql: string, params?: readonly unknown[]): Promise<PgResult> {
    this.#checkOpen();
    try {
      return await this.#pool.query(sql, params);
    } catch (error) {
      throw storeError(this.#url, error, 'use');
    }
  }

  async #transaction<T>(body: (client: PgClient) => Promise<T>, phase: 'open' | 'use' = 'use'): Promise<T> {
    const client = await this.#connect(phase);
    try {
      await client.query('BEGIN');
      const result = await body(client);
      await client.query('COMMIT');
      client.release();
      return result;
    } catch (error) {
      try {
        await client.query('ROLLBACK');
        client.release();
      } catch (rollback) {
        client.release(rollback instanceof Error ? rollback : true);
      }
      throw storeError(this.#url, error, phase);
    }
  }

  #checkOpen(): void {
    if (this.#closed !== undefined) {
      throw new SymphonizerError<EvalErrorCode>(
        'store_open',
        `The run store at ${this.location} is closed.`,
        {
          hint: 'open a new PostgresRunStore',
        },
      );
    }
  }
}

function toLease(row: DbRow): LeaseInfo {
  return {
    run: String(row['run']),
    holder: String(row['holder']),
    host: String(row['host']),
    pid: Number(row['pid']),
    acquiredAt: Number(row['acquired_at']),
    heartbeatAt: Number(row['heartbeat_at']),
  };
}
