/**
 * Evaluation batches: datasets through chains, scorers, durable resumable runs (SQLite, or PostgreSQL shared by
 * machines), a response cache, statistics and reports.
 * @packageDocumentation
 */

export {
  evalUnitRunId,
  evaluate,
  type EvalLeaseOptions,
  type EvalProgress,
  type EvalResult,
  type EvaluateOptions,
} from './batch.ts';
export {
  BatchCoordinator,
  batchPrices,
  formatBatchLine,
  isBatchStateStore,
  type BatchInfo,
  type BatchItemRecord,
  type BatchOptions,
  type BatchStateStore,
} from './batch-mode.ts';
export {
  CacheClosedError,
  CacheMissError,
  ResponseCache,
  cacheKey,
  isCachedResponse,
  type CacheMode,
  type CacheStats,
  type CachedModelResponse,
} from './cache.ts';
export {
  DatasetError,
  datasetFromArray,
  readDataset,
  type DatasetFormat,
  type DatasetShapeOptions,
  type ReadDatasetOptions,
} from './dataset.ts';
export {
  compareVariants,
  renderHtmlReport,
  renderMarkdownReport,
  renderTextTable,
  summarize,
  summarizeRun,
  summarizeStoredRun,
  DEFAULT_MAX_LISTED,
  type EvalSummary,
  type LatencySummary,
  type RowErrorSummary,
  type SummarizeOptions,
  type VariantComparison,
  type VariantSummary,
} from './report.ts';
export {
  ScorerError,
  contains,
  exactMatch,
  numericTolerance,
  regex,
  schemaValid,
  scorer,
  stringSimilarity,
  type ContainsOptions,
  type ExactMatchOptions,
  type NumericToleranceOptions,
  type ScorerOptions,
  type StringSimilarityOptions,
} from './scorers.ts';
export {
  ci95,
  mean,
  pairedComparison,
  percentile,
  RunningStats,
  ScoreStats,
  scoreInterval,
  signTest,
  stdev,
  wilsonInterval,
  type ConfidenceInterval,
  type PairedComparison,
} from './stats.ts';
export {
  DEFAULT_LEASE_STALE_MS,
  RunLeasedError,
  RunMismatchError,
  RunStore,
  StoreOpenError,
  StoreUnavailableError,
  UnknownRunError,
  type AcquireLeaseOptions,
  type LeaseInfo,
  type RowCounts,
  type RunInfo,
  type RowsOptions,
  type RunSummary,
} from './store.ts';
export { isPostgresUrl, sqliteEvalStore, type EvalRunStore, type PutRowOptions } from './run-store.ts';
export { openEvalStore, type OpenEvalStoreOptions } from './open-store.ts';
export { PostgresRunStore, type PostgresRunStoreOptions } from './postgres-store.ts';
export {
  collectMatrix,
  DEFAULT_MATRIX_ROWS,
  isSimulated,
  type CollectMatrixOptions,
  type MatrixCell,
  type MatrixRow,
  type MatrixVariant,
  type ResultsMatrix,
} from './report-matrix.ts';
export type {
  DatasetItem,
  DatasetRow,
  RowRecord,
  RowStatus,
  ScoreResult,
  Scorer,
  ScorerContext,
  SummaryRecord,
  Variant,
} from './types.ts';
export type { EvalJob, EvalQueue } from './queue.ts';
export type { EvalErrorCode } from './errors.ts';
