/**
 * The codes of the errors `symphonizer/eval` raises (the classes live beside the code that raises them).
 */

/** Codes of the errors `symphonizer/eval` raises, and of the ERROR rows it stores for rows it could not read. */
export type EvalErrorCode =
  | 'dataset_error'
  | 'invalid_row'
  | 'scorer_error'
  | 'invalid_score'
  | 'store_open'
  | 'store_unavailable'
  | 'store_corrupt'
  | 'run_mismatch'
  | 'unknown_run'
  | 'run_leased'
  | 'cache_miss'
  | 'cache_closed'
  | 'batch_stopped';
