/**
 * What the SQLite and PostgreSQL run stores share: how a stored row, run or count reads back as the eval
 * layer's records, and the columns an ERROR row's replacement sets. Both stores keep the same columns, so
 * one mapping serves both (a flag column is 0/1 in SQLite and a boolean in PostgreSQL: {@link flag} reads
 * either).
 */
import type { Json } from '../core/json.ts';
import { SymphonizerError } from '../core/errors.ts';
import type { UsageTotals } from '../providers/usage.ts';
import type { EvalErrorCode } from './errors.ts';
import type { RowCounts, RowRecord, RowStatus, RunSummary, ScoreResult, SummaryRecord } from './types.ts';

/** @internal A row as a database driver returns it: column name → value. */
export type DbRow = Record<string, unknown>;

/** @internal The columns an ERROR row's replacement sets (every column but the key), as an upsert's SET list. */
export const rowUpdates = [
  'line',
  'status',
  'input',
  'expected',
  'outputs',
  'scores',
  'usage',
  'error',
  'latency_ms',
  'cost_usd',
  'tokens',
  'attempts',
  'cached',
  'finished_at',
  'batch',
]
  .map((column) => `${column} = excluded.${column}`)
  .join(', ');

/** @internal A flag column: 1 in SQLite, `true` in PostgreSQL. */
export function flag(value: unknown): boolean {
  return Number(value) === 1;
}

/** @internal A stored row's status, refused as `store_corrupt` when it is none of the three. */
export function rowStatus(row: DbRow): RowStatus {
  const status = String(row['status']);
  if (status !== 'pass' && status !== 'fail' && status !== 'error') {
    throw new SymphonizerError<EvalErrorCode>(
      'store_corrupt',
      `Stored row has an unknown status "${status}".`,
    );
  }
  return status;
}

/** @internal A stored row, whole. */
export function toRecord(row: DbRow): RowRecord {
  const status = rowStatus(row);
  const expected = fromJsonColumn(row['expected']);
  const outputs = fromJsonColumn(row['outputs']);
  const error = fromJsonColumn(row['error']) as RowRecord['error'];
  return {
    run: String(row['run']),
    variant: String(row['variant']),
    rowId: String(row['row_id']),
    line: Number(row['line']),
    status,
    input: JSON.parse(String(row['input'])) as Json,
    ...(expected === undefined ? {} : { expected }),
    ...(outputs === undefined ? {} : { outputs }),
    scores: JSON.parse(String(row['scores'])) as Record<string, ScoreResult>,
    usage: JSON.parse(String(row['usage'])) as UsageTotals,
    latencyMs: Number(row['latency_ms']),
    attempts: Number(row['attempts']),
    ...(error === undefined ? {} : { error }),
    cached: flag(row['cached']),
    ...(flag(row['batch']) ? { batch: true } : {}),
    finishedAt: Number(row['finished_at']),
  };
}

/** @internal A stored row without its input and outputs (what summaries read). */
export function toSummaryRecord(row: DbRow): SummaryRecord {
  const status = rowStatus(row);
  const error = fromJsonColumn(row['error']) as RowRecord['error'];
  return {
    variant: String(row['variant']),
    rowId: String(row['row_id']),
    line: Number(row['line']),
    status,
    scores: JSON.parse(String(row['scores'])) as Record<string, ScoreResult>,
    usage: JSON.parse(String(row['usage'])) as UsageTotals,
    latencyMs: Number(row['latency_ms']),
    ...(error === undefined ? {} : { error }),
    cached: flag(row['cached']),
    finishedAt: Number(row['finished_at']),
  };
}

/** @internal A count query's `total`, `pass`, `fail` and `error` columns (none: all 0). */
export function toCounts(row: DbRow | undefined): RowCounts {
  return {
    total: Number(row?.['total'] ?? 0),
    pass: Number(row?.['pass'] ?? 0),
    fail: Number(row?.['fail'] ?? 0),
    error: Number(row?.['error'] ?? 0),
  };
}

/** @internal A run's row with its counts and sums. */
export function toSummary(row: DbRow): RunSummary {
  const config = fromJsonColumn(row['config']);
  const dataset = row['dataset'];
  return {
    name: String(row['name']),
    chain: String(row['chain']),
    variants: parseStringArray(row['variants']),
    ...(typeof dataset === 'string' ? { dataset } : {}),
    ...(config === undefined ? {} : { config }),
    createdAt: Number(row['created_at']),
    updatedAt: Number(row['updated_at']),
    counts: toCounts(row),
    costUsd: Number(row['cost_usd']),
    tokens: Number(row['tokens']),
  };
}

/** @internal A value as a JSON text column (`undefined`: NULL). */
export function toJsonColumn(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value);
}

/** @internal A JSON text column's value (NULL: `undefined`). */
export function fromJsonColumn(value: unknown): Json | undefined {
  return typeof value === 'string' ? (JSON.parse(value) as Json) : undefined;
}

/** @internal A JSON text column holding an array, as strings. */
export function parseStringArray(value: unknown): string[] {
  const parsed: unknown = typeof value === 'string' ? JSON.parse(value) : [];
  return Array.isArray(parsed) ? parsed.map(String) : [];
}

/** @internal The values, each once, in first-seen order. */
export function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}

/** @internal Whether a process of this host is alive (EPERM: it exists, owned by another user). */
export function processAlive(pid: number): boolean {
  if (!(Number.isInteger(pid) && pid > 0)) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
