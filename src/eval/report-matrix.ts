/**
 * The results matrix of an eval report: one line per dataset row (its input and expected value), one column
 * per variant, each cell the row's output (the last node's, or a chosen node's), its status, every scorer's
 * score and reason, latency, tokens, cost and whether it was cached or batched; an ERROR cell shows its
 * message, never a score.
 *
 * {@link collectMatrix} reads it from a run store; `renderHtmlReport` (with `matrix`) draws it as a
 * paged grid with filters, a text search and a side-by-side view of two variants, drawn in the browser by an
 * inline script from an inline JSON block (report-matrix-page.ts: no network, every value set as text), and
 * `renderMarkdownReport` as tables.
 */
import { InvalidOptionError } from '../core/errors.ts';
import type { Json } from '../core/json.ts';
import type { UsageTotals } from '../providers/usage.ts';
import { sqliteEvalStore, type EvalRunStore } from './run-store.ts';
import { RunStore } from './store.ts';
import type { RowRecord, RowStatus, ScoreResult } from './types.ts';

/** One variant's column of the matrix. */
export interface MatrixVariant {
  readonly name: string;
  /** The `provider:model` ids its nodes call (empty when unknown). */
  readonly models: readonly string[];
  /** True when one of them is the offline simulated model (`sim:…`): its answers are not a real model's. */
  readonly simulated: boolean;
}

/** One cell: one row of one variant. */
export interface MatrixCell {
  readonly status: RowStatus;
  /** The shown node's output (absent for an error before any output). */
  readonly output?: Json | undefined;
  readonly scores: Readonly<Record<string, ScoreResult>>;
  readonly latencyMs: number;
  readonly usage: UsageTotals;
  /** Every model answer came from the response cache. */
  readonly cached: boolean;
  /** The row's calls went through a provider batch API (when the store records it). */
  readonly batch?: boolean | undefined;
  readonly error?: { readonly code?: string | undefined; readonly message: string; readonly node?: string };
}

/** One dataset row across the variants. */
export interface MatrixRow {
  readonly rowId: string;
  readonly line: number;
  readonly input: Json;
  readonly expected?: Json | undefined;
  /** By variant name; a variant that has not run the row has no cell. */
  readonly cells: Readonly<Record<string, MatrixCell>>;
}

/** What {@link collectMatrix} returns. */
export interface ResultsMatrix {
  readonly variants: readonly MatrixVariant[];
  readonly scorers: readonly string[];
  /** Which node's output the cells show (`undefined`: each row's last node). */
  readonly node?: string | undefined;
  /** Rows in line order. */
  readonly rows: readonly MatrixRow[];
  /** Rows of the run left out past `maxRows`. */
  readonly omittedRows: number;
}

/** Options of {@link collectMatrix}. */
export interface CollectMatrixOptions {
  /** The scorers, in column order. */
  readonly scorers: readonly string[];
  /** The models of each variant, by variant name (for the column heads; see {@link MatrixVariant}). */
  readonly models?: Readonly<Record<string, readonly string[]>> | undefined;
  /** The node whose output a cell shows. @default each row's last node output */
  readonly node?: string | undefined;
  /** Most rows kept (the first by line order of the run's first variant); the rest are counted. @default 20000 */
  readonly maxRows?: number | undefined;
}

/** Default of {@link CollectMatrixOptions.maxRows}. */
export const DEFAULT_MATRIX_ROWS = 20_000;

/**
 * Reads the matrix of `run` from a run store (SQLite or PostgreSQL): the rows streamed once, at most
 * `maxRows` distinct rows kept with their inputs, expected values and shown outputs.
 *
 * @example
 * ```ts
 * const matrix = await collectMatrix(store, 'nightly', { scorers: ['exactMatch'], models: { default: ['sim:demo'] } });
 * writeFileSync('report.html', renderHtmlReport(summary, [], { matrix }));
 * ```
 * @throws {InvalidOptionError} when `maxRows` is not an integer >= 0.
 */
export async function collectMatrix(
  store: EvalRunStore | RunStore,
  run: string,
  options: CollectMatrixOptions,
): Promise<ResultsMatrix> {
  const maxRows = options.maxRows ?? DEFAULT_MATRIX_ROWS;
  if (!(Number.isInteger(maxRows) && maxRows >= 0)) {
    throw new InvalidOptionError('maxRows', maxRows, 'an integer >= 0');
  }
  const source = store instanceof RunStore ? sqliteEvalStore(store) : store;
  const rows = new Map<string, { row: MatrixRow; cells: Record<string, MatrixCell> }>();
  const omitted = new Set<string>();
  const variantNames: string[] = [];
  for await (const record of source.rows(run)) {
    if (!variantNames.includes(record.variant)) variantNames.push(record.variant);
    let entry = rows.get(record.rowId);
    if (entry === undefined) {
      if (rows.size >= maxRows) {
        omitted.add(record.rowId);
        continue;
      }
      const cells: Record<string, MatrixCell> = {};
      entry = {
        row: {
          rowId: record.rowId,
          line: record.line,
          input: record.input,
          ...(record.expected === undefined ? {} : { expected: record.expected }),
          cells,
        },
        cells,
      };
      rows.set(record.rowId, entry);
    }
    entry.cells[record.variant] = cellOf(record, options.node);
  }
  const models = options.models ?? {};
  const variants = variantNames.map((name) => {
    const ids = [...new Set(models[name] ?? [])];
    return { name, models: ids, simulated: ids.some(isSimulated) };
  });
  const list = [...rows.values()].map((e) => e.row).sort((a, b) => a.line - b.line);
  return {
    variants,
    scorers: [...options.scorers],
    node: options.node,
    rows: list,
    omittedRows: omitted.size,
  };
}

/** True for a model id of the offline simulated provider (`sim:…`). */
export function isSimulated(modelId: string): boolean {
  return /^sim:/i.test(modelId);
}

function cellOf(record: RowRecord, node: string | undefined): MatrixCell {
  const batch = (record as { readonly batch?: unknown }).batch;
  return {
    status: record.status,
    output: shownOutput(record.outputs, node),
    scores: record.scores,
    latencyMs: record.latencyMs,
    usage: record.usage,
    cached: record.cached,
    ...(typeof batch === 'boolean' ? { batch } : {}),
    ...(record.error === undefined
      ? {}
      : {
          error: {
            message: record.error.message,
            ...(record.error.code === undefined ? {} : { code: record.error.code }),
            ...(record.error.node === undefined ? {} : { node: record.error.node }),
          },
        }),
  };
}

/** The output of `node`, or of the last node in `outputs` (nodes are stored in the chain's order). */
function shownOutput(outputs: Json | undefined, node: string | undefined): Json | undefined {
  if (outputs === undefined || outputs === null || typeof outputs !== 'object' || Array.isArray(outputs)) {
    return outputs ?? undefined;
  }
  if (node !== undefined) return outputs[node];
  const keys = Object.keys(outputs);
  const last = keys.at(-1);
  return last === undefined ? undefined : outputs[last];
}

// ---------------------------------------------------------------------------------------------------------
// Text of values and cells (shared by the Markdown tables; the browser script has its own copy)

/** A value as text: a string as is, anything else as pretty-printed JSON. */
export function valueText(value: Json | undefined): string {
  if (value === undefined) return '';
  return typeof value === 'string' ? value : JSON.stringify(value, null, 2);
}

/** The variant's column head: name, models and "simulated". */
export function variantLabel(variant: MatrixVariant): string {
  const models = variant.models.length === 0 ? '' : ` (${variant.models.join(', ')})`;
  return `${variant.name}${models}${variant.simulated ? ' · simulated' : ''}`;
}

/** A cell as one line of text: status, output, scores and reasons, latency, tokens, cost, flags. */
export function cellText(cell: MatrixCell | undefined, scorers: readonly string[], maxChars = 300): string {
  if (cell === undefined) return '–';
  if (cell.status === 'error') {
    const where = [cell.error?.code, cell.error?.node === undefined ? undefined : `node ${cell.error.node}`]
      .filter((s) => s !== undefined)
      .join(', ');
    return `ERROR${where === '' ? '' : ` (${where})`}: ${fold(cell.error?.message ?? 'unknown error', maxChars)}`;
  }
  const parts = [`${cell.status.toUpperCase()}: ${fold(valueText(cell.output), maxChars)}`];
  for (const name of scorers) {
    const s = cell.scores[name];
    if (s !== undefined)
      parts.push(`${name} ${s.score.toFixed(3)}${s.reason === undefined ? '' : ` (${s.reason})`}`);
  }
  parts.push(metaText(cell));
  return parts.join(' · ');
}

/** Latency, tokens, cost and the cached / batch flags of a cell. */
export function metaText(cell: MatrixCell): string {
  const u = cell.usage;
  const parts = [
    Number.isFinite(cell.latencyMs) ? `${Math.round(cell.latencyMs)} ms` : '– ms',
    `${u.totalTokens} tokens`,
  ];
  if ((u.cacheReadTokens ?? 0) > 0 || (u.cacheWriteTokens ?? 0) > 0) {
    parts.push(`cache read ${u.cacheReadTokens ?? 0} / write ${u.cacheWriteTokens ?? 0}`);
  }
  const cost = `$${u.costUsd.toFixed(u.costUsd >= 1 ? 2 : 6)}`;
  parts.push(u.unpricedCalls > 0 ? `≥ ${cost}` : cost);
  if (cell.cached) parts.push('cached');
  if (cell.batch === true) parts.push('batch');
  return parts.join(', ');
}

function fold(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

// ---------------------------------------------------------------------------------------------------------
// Markdown

/** The matrix as a Markdown table (one line per row, one column per variant), at most `maxRows` lines. */
export function matrixMarkdown(
  matrix: ResultsMatrix,
  escape: (text: string) => string,
  maxRows: number,
): string {
  const head = ['Row', 'Line', 'Input', 'Expected', ...matrix.variants.map(variantLabel)];
  const lines = [
    `| ${head.map(escape).join(' | ')} |`,
    `| ${head.map((_, i) => (i === 1 ? '--:' : '---')).join(' | ')} |`,
  ];
  for (const row of matrix.rows.slice(0, maxRows)) {
    const cells = [
      row.rowId,
      String(row.line),
      fold(valueText(row.input), 200),
      row.expected === undefined ? '–' : fold(valueText(row.expected), 200),
      ...matrix.variants.map((v) => cellText(row.cells[v.name], matrix.scorers)),
    ];
    lines.push(`| ${cells.map(escape).join(' | ')} |`);
  }
  const left = matrix.rows.length - Math.min(maxRows, matrix.rows.length) + matrix.omittedRows;
  if (left > 0) lines.push('', `… and ${left} more rows (the HTML report pages through them all).`);
  return lines.join('\n');
}
