/**
 * The run store as `evaluate()`, the reports and the command read and write it: one asynchronous interface,
 * {@link EvalRunStore}, that the SQLite {@link RunStore} (through {@link sqliteEvalStore}) and the
 * {@link PostgresRunStore} both implement, so a batch runs the same over a local file or a shared database.
 */
import type { RowRecord, SummaryRecord } from './types.ts';
import type { BatchInfo, BatchItemRecord } from './batch-mode.ts';
import type { BatchStatus } from '../providers/batch.ts';
import {
  RunStore,
  type AcquireLeaseOptions,
  type FinishedKeysOptions,
  type LeaseInfo,
  type RowCounts,
  type RowsOptions,
  type RunInfo,
  type RunSummary,
} from './store.ts';

/** Options of {@link EvalRunStore.putRow}. */
export interface PutRowOptions {
  /** Replace a stored ERROR row of the same key (what `retryErrors` does). @default false */
  readonly replaceErrors?: boolean | undefined;
}

/**
 * A run store, whichever database holds it. Its semantics are the same everywhere:
 *
 * - one row per run × variant × row id; **the first finished write wins**: {@link EvalRunStore.putRow} keeps
 *   a stored row (a unit that ran twice, after a crash or by two producers, is stored once), except that
 *   `replaceErrors` replaces a stored ERROR row;
 * - beginning a run with a stored name resumes it (new variants are added); with another chain it is a
 *   {@link RunMismatchError};
 * - a run's lease ({@link EvalRunStore.acquireLease}) gives it to one holder at a time; a lease whose
 *   heartbeat is older than `staleMs` (by the database's clock), or whose holder is a dead process of this
 *   host, is taken over.
 */
export interface EvalRunStore {
  /** Which database this is. */
  readonly kind: 'sqlite' | 'postgres';
  /** Where it is, without credentials: a file path, or `postgres://user@host:port/db`. For messages. */
  readonly location: string;
  /** Create the run or resume the stored one (see {@link RunStore.beginRun}). */
  beginRun(info: RunInfo): Promise<{ resumed: boolean }>;
  /** Keys (`rowKey(variant, rowId)`) of the stored rows of `run`, error rows included by default. */
  finishedKeys(run: string, options?: FinishedKeysOptions): Promise<Set<string>>;
  /** Keys of the rows of `run` stored with status `error`. */
  errorKeys(run: string): Promise<Set<string>>;
  /**
   * Store one finished row unless a row with its key is stored already (first finished write wins; with
   * `replaceErrors` a stored ERROR row is replaced). Resolves true when the row was written.
   * @throws {UnknownRunError} when the run was never begun.
   */
  putRow(record: RowRecord, options?: PutRowOptions): Promise<boolean>;
  /** The stored rows of `run`, streamed: by variant in the run's order, then line, then row id. */
  rows(run: string, options?: RowsOptions): AsyncIterable<RowRecord>;
  /** The stored rows of `run` as {@link SummaryRecord}s, streamed in the order of {@link EvalRunStore.rows}. */
  summaryRows(run: string, options?: RowsOptions): AsyncIterable<SummaryRecord>;
  /** The `p`-th percentile of one variant's ran, uncached latencies (see {@link RunStore.latencyPercentile}). */
  latencyPercentile(
    run: string,
    variant: string,
    p: number,
  ): Promise<{ readonly value: number; readonly n: number }>;
  /** How many rows of `run` are stored, by status. */
  countRows(run: string): Promise<RowCounts>;
  /** Every stored run, most recently updated first. */
  runs(): Promise<RunSummary[]>;
  /** The stored run named `name`, if any. */
  run(name: string): Promise<RunSummary | undefined>;
  /** Delete a run and its rows; false when there was none. */
  deleteRun(name: string): Promise<boolean>;
  /**
   * Take the lease of `run`.
   * @throws {RunLeasedError} when a live holder has it.
   */
  acquireLease(run: string, options?: AcquireLeaseOptions): Promise<LeaseInfo>;
  /** Record that `holder` still runs `run`; false when it lost the lease. */
  heartbeatLease(run: string, holder: string): Promise<boolean>;
  /** End `holder`'s lease of `run`. */
  releaseLease(run: string, holder: string): Promise<void>;
  /** The stored lease of `run`, stale or not. */
  lease(run: string): Promise<LeaseInfo | undefined>;
  /** Close the store (its connections); closing twice does nothing. */
  close(): Promise<void>;
}

/** True for a `postgres://` or `postgresql://` URL, which `evaluate({ store })` opens as a {@link PostgresRunStore}. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(location);
}

/**
 * The {@link EvalRunStore} view of a SQLite {@link RunStore} (its methods are synchronous; these resolve at
 * once). Closing the view closes the store.
 *
 * @example
 * ```ts
 * const store = sqliteEvalStore(RunStore.open('.symphonizer/runs.sqlite'));
 * console.log(await store.runs());
 * await store.close();
 * ```
 */
export function sqliteEvalStore(store: RunStore, location = 'a SQLite run store'): EvalRunStore {
  return new SqliteEvalRunStore(store, location);
}

class SqliteEvalRunStore implements EvalRunStore {
  readonly kind = 'sqlite' as const;
  readonly location: string;
  readonly #store: RunStore;

  constructor(store: RunStore, location: string) {
    this.#store = store;
    this.location = location;
  }

  beginRun(info: RunInfo): Promise<{ resumed: boolean }> {
    return attempt(() => this.#store.beginRun(info));
  }
  finishedKeys(run: string, options?: FinishedKeysOptions): Promise<Set<string>> {
    return attempt(() => this.#store.finishedKeys(run, options));
  }
  errorKeys(run: string): Promise<Set<string>> {
    return attempt(() => this.#store.errorKeys(run));
  }
  putRow(record: RowRecord, options: PutRowOptions = {}): Promise<boolean> {
    return attempt(() => this.#store.insertRow(record, options));
  }
  // eslint-disable-next-line @typescript-eslint/require-await -- SQLite's rows come from a synchronous iterator
  async *rows(run: string, options?: RowsOptions): AsyncIterableIterator<RowRecord> {
    yield* this.#store.rows(run, options);
  }
  // eslint-disable-next-line @typescript-eslint/require-await -- SQLite's rows come from a synchronous iterator
  async *summaryRows(run: string, options?: RowsOptions): AsyncIterableIterator<SummaryRecord> {
    yield* this.#store.summaryRows(run, options);
  }
  latencyPercentile(run: string, variant: string, p: number): Promise<{ value: number; n: number }> {
    return attempt(() => this.#store.latencyPercentile(run, variant, p));
  }
  countRows(run: string): Promise<RowCounts> {
    return attempt(() => this.#store.countRows(run));
  }
  runs(): Promise<RunSummary[]> {
    return attempt(() => this.#store.runs());
  }
  run(name: string): Promise<RunSummary | undefined> {
    return attempt(() => this.#store.run(name));
  }
  deleteRun(name: string): Promise<boolean> {
    return attempt(() => this.#store.deleteRun(name));
  }
  acquireLease(run: string, options?: AcquireLeaseOptions): Promise<LeaseInfo> {
    return attempt(() => this.#store.acquireLease(run, options));
  }
  heartbeatLease(run: string, holder: string): Promise<boolean> {
    return attempt(() => this.#store.heartbeatLease(run, holder));
  }
  releaseLease(run: string, holder: string): Promise<void> {
    return attempt(() => {
      this.#store.releaseLease(run, holder);
    });
  }
  lease(run: string): Promise<LeaseInfo | undefined> {
    return attempt(() => this.#store.lease(run));
  }
  putBatch(run: string, batch: BatchInfo, customIds: readonly string[]): Promise<void> {
    return attempt(() => {
      this.#store.putBatch(run, batch, customIds);
    });
  }
  updateBatch(run: string, id: string, status: BatchStatus, completed: number | undefined): Promise<void> {
    return attempt(() => {
      this.#store.updateBatch(run, id, status, completed);
    });
  }
  settleBatchItems(run: string, items: readonly BatchItemRecord[]): Promise<void> {
    return attempt(() => {
      this.#store.settleBatchItems(run, items);
    });
  }
  batches(run: string): Promise<readonly BatchInfo[]> {
    return attempt(() => this.#store.batches(run));
  }
  batchItems(run: string): Promise<readonly BatchItemRecord[]> {
    return attempt(() => this.#store.batchItems(run));
  }
  close(): Promise<void> {
    return attempt(() => {
      this.#store.close();
    });
  }
}

/** A synchronous call as a promise: its value resolved, its throw rejected. */
async function attempt<T>(body: () => T): Promise<T> {
  await Promise.resolve();
  return body();
}
