/**
 * Types shared by the eval layer: dataset rows, scorers, row records, variants. Pinned here so the dataset
 * reader, the scorers, the store, the cache and the batch runner agree.
 */
import type { Json } from '../core/json.ts';
import type { NodeOverride } from '../chain/types.ts';
import type { OutputIssue } from '../providers/structured-output.ts';
import type { UsageTotals } from '../providers/usage.ts';

/** One valid row of a dataset. */
export interface DatasetRow<I = unknown> {
  /** Stable id: the row's `id` field when it has one, else its 1-based line (JSONL/CSV) or index (JSON). */
  readonly id: string;
  /** 1-based line in the file (for a JSON array: the element's index + 1). */
  readonly line: number;
  /** The chain input, validated against the chain's input schema. */
  readonly input: I;
  /** The `expected` field, if any. */
  readonly expected?: unknown;
}

/** What a dataset reader yields: a valid row, or a row error that never stops the batch. */
export type DatasetItem<I = unknown> =
  | { readonly ok: true; readonly row: DatasetRow<I> }
  | {
      readonly ok: false;
      readonly id: string;
      readonly line: number;
      /** Why the row was refused (bad JSON, bad CSV, input failing the schema). */
      readonly error: string;
      readonly issues?: readonly OutputIssue[] | undefined;
      /** The raw text of the row, for the report. */
      readonly raw: string;
    };

/** A score in [0, 1] with an optional reason. */
export interface ScoreResult {
  readonly score: number;
  readonly reason?: string | undefined;
}

/** What a scorer sees for one row. */
export interface ScorerContext<I = unknown, O = unknown> {
  readonly input: I;
  /** The chain's outputs, by node name. */
  readonly outputs: O;
  /** The value to score: the output of the scorer's `node`, or of the chain's last node. */
  readonly output: unknown;
  readonly expected: unknown;
  readonly row: DatasetRow<I>;
  readonly signal: AbortSignal;
}

/** Scores one row; custom scorers are plain objects of this shape. */
export interface Scorer<I = unknown, O = unknown> {
  /** Unique within a batch; the column name in reports. */
  readonly name: string;
  /** Which node's output to score. @default the chain's last node */
  readonly node?: string | undefined;
  /** A row passes when every scorer's score is at least its threshold. @default 1 */
  readonly threshold?: number | undefined;
  score(context: ScorerContext<I, O>): ScoreResult | Promise<ScoreResult>;
}

/** `pass` (all scores at or above their thresholds), `fail` (ran, scored low), `error` (did not run or score). */
export type RowStatus = 'pass' | 'fail' | 'error';

/** A variant of the chain: same dataset, other models, templates or parameters for named nodes. */
export interface Variant {
  readonly name: string;
  /** Model for every node of the chain. */
  readonly model?: string | undefined;
  /** Per-node overrides. */
  readonly overrides?: Readonly<Record<string, NodeOverride>> | undefined;
}

/** Everything stored about one finished row of one variant. */
export interface RowRecord {
  readonly run: string;
  readonly variant: string;
  readonly rowId: string;
  readonly line: number;
  readonly status: RowStatus;
  readonly input: Json;
  readonly expected?: Json | undefined;
  /** Each node's output, by node name (absent for a row that failed before any output). */
  readonly outputs?: Json | undefined;
  readonly scores: Readonly<Record<string, ScoreResult>>;
  readonly usage: UsageTotals;
  readonly latencyMs: number;
  /** Node attempts, retries included. */
  readonly attempts: number;
  readonly error?:
    | { readonly code?: string | undefined; readonly message: string; readonly node?: string | undefined }
    | undefined;
  /** True when every model answer came from the response cache. */
  readonly cached: boolean;
  /** True when the row's model calls went through a provider Batch API (`evaluate({ batch })`). @default false */
  readonly batch?: boolean | undefined;
  /** Epoch milliseconds. */
  readonly finishedAt: number;
}

/**
 * The part of a {@link RowRecord} that summaries and comparisons read: no input, expected value or outputs, so
 * a run's rows can be streamed for a report without parsing what the report never shows.
 */
export type SummaryRecord = Pick<
  RowRecord,
  | 'variant'
  | 'rowId'
  | 'line'
  | 'status'
  | 'scores'
  | 'usage'
  | 'error'
  | 'latencyMs'
  | 'cached'
  | 'finishedAt'
>;

/** Row counts of a run, by status. */
export interface RowCounts {
  readonly total: number;
  readonly pass: number;
  readonly fail: number;
  readonly error: number;
}

/** One run as listed by `RunStore.runs`. */
export interface RunSummary {
  readonly name: string;
  readonly chain: string;
  /** In the order they were first recorded. */
  readonly variants: readonly string[];
  readonly dataset?: string | undefined;
  readonly config?: Json | undefined;
  /** Epoch milliseconds. */
  readonly createdAt: number;
  /** Epoch milliseconds of the last `beginRun` or `putRow`. */
  readonly updatedAt: number;
  readonly counts: RowCounts;
  /** Sum of the rows' `usage.costUsd`. */
  readonly costUsd: number;
  /** Sum of the rows' `usage.totalTokens`. */
  readonly tokens: number;
}
