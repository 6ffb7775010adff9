/**
 * Eval reports from row records: per-variant summaries (pass rate, mean scores with 95% CIs, latency, tokens,
 * cost), paired comparisons of two variants, and renderings as Markdown, a self-contained HTML file, and a
 * plain-text table for the terminal.
 *
 * Errors are never scores: a row whose status is `error` counts in `error`, is listed apart, and is left out
 * of the pass rate's denominator and of every mean.
 *
 * Memory: {@link summarizeRun} reads a stored run of any size in bounded memory (counts, usage and means are
 * streamed, latency percentiles are computed by SQLite, at most `maxListed` error and failed rows are kept
 * per variant). {@link summarize} over records in memory holds one record per distinct row, to keep the last
 * of repeated ones.
 */
import { InvalidOptionError } from '../core/errors.ts';
import { addUsageTotals, emptyUsage, type UsageTotals } from '../providers/usage.ts';
import {
  pairedComparison,
  percentile,
  ScoreStats,
  wilsonInterval,
  type ConfidenceInterval,
  type PairedComparison,
} from './stats.ts';
import { sqliteEvalStore, type EvalRunStore } from './run-store.ts';
import { RunStore } from './store.ts';
import type { ScoreResult, SummaryRecord } from './types.ts';
import { matrixMarkdown, type ResultsMatrix } from './report-matrix.ts';
import { matrixCss, matrixSection } from './report-matrix-page.ts';

/**
 * Most rows a summary lists per variant in `errors`, and as many in `failures`, by default: the rest are
 * counted (in `error` and `fail`) and stay in the run store, where `symphonizer runs` and
 * {@link RunStore.rows} reach every one of them.
 */
export const DEFAULT_MAX_LISTED = 1000;

/** Options of {@link summarize} and {@link summarizeRun}. */
export interface SummarizeOptions {
  /** The scorers to report, in column order. */
  readonly scorers: readonly string[];
  /**
   * Most rows listed per variant in `errors`, and as many in `failures` (the first ones by line); every row is
   * still counted in `error` and `fail`. @default {@link DEFAULT_MAX_LISTED} (1000)
   */
  readonly maxListed?: number | undefined;
}

/** A row that ended in error, as listed in reports. */
export interface RowErrorSummary {
  readonly rowId: string;
  readonly line: number;
  readonly node?: string | undefined;
  readonly code?: string | undefined;
  readonly message: string;
}

/** A row that ran but failed a threshold, with its scores, as listed in reports. */
export interface RowFailureSummary {
  readonly rowId: string;
  readonly line: number;
  /** The row's results of the reported scorers. */
  readonly scores: Readonly<Record<string, ScoreResult>>;
}

/** Latency percentiles of a variant's rows that ran (not errors, not answered wholly from the cache). */
export interface LatencySummary {
  readonly p50: number;
  readonly p95: number;
  /** How many rows the percentiles are over. */
  readonly n: number;
}

/** One variant's results. */
export interface VariantSummary {
  readonly variant: string;
  /** Rows in all: `pass + fail + error`. */
  readonly rows: number;
  readonly pass: number;
  readonly fail: number;
  readonly error: number;
  /** Rows answered wholly from the response cache. */
  readonly cached: number;
  /** `pass / (pass + fail)`: errors are not in the denominator. `NaN` when no row was scored. */
  readonly passRate: number;
  /** The pass rate with its 95% Wilson interval (within [0, 1]; see {@link wilsonInterval}). */
  readonly passRateCi: ConfidenceInterval;
  /**
   * Per scorer: the mean score with its 95% interval over the rows that are not errors and have that score,
   * as {@link ScoreStats} computes it (Wilson for 0/1 scores, a seeded bootstrap for other scores in [0, 1]:
   * never outside [0, 1]).
   */
  readonly scores: Readonly<Record<string, ConfidenceInterval>>;
  readonly latencyMs: LatencySummary;
  /** Tokens and cost of every row, errors included (they spent them too). */
  readonly usage: UsageTotals;
  /**
   * The first rows (by line) that ended in error, at most `maxListed` of them; `error` counts them all, so
   * `error - errors.length` were left out of the list.
   */
  readonly errors: readonly RowErrorSummary[];
  /**
   * The first rows (by line) that ran and failed, at most `maxListed` of them; `fail` counts them all, so
   * `fail - failures.length` were left out of the list.
   */
  readonly failures: readonly RowFailureSummary[];
}

/** What {@link summarize} returns. */
export interface EvalSummary {
  readonly scorers: readonly string[];
  /** One per variant, in the order the variants first appear in the records. */
  readonly variants: readonly VariantSummary[];
}

/** What {@link compareVariants} returns: a {@link PairedComparison} of variant `a` against `b` on one scorer. */
export interface VariantComparison extends PairedComparison {
  readonly a: string;
  readonly b: string;
  readonly scorer: string;
  /** Rows of `a` or `b` left out of the pairs: missing in the other variant, an error on either side, or unscored. */
  readonly unpaired: number;
}

/** Options of the renderers. */
export interface RenderOptions {
  /** @default 'Eval report' */
  readonly title?: string | undefined;
  /** Most error rows listed (over all variants); the rest are counted. @default 200 */
  readonly maxErrors?: number | undefined;
  /** Most failed rows listed (over all variants); the rest are counted. @default 200 (text: 0) */
  readonly maxFailures?: number | undefined;
  /**
   * The results matrix (rows × variants, see {@link collectMatrix}): the HTML report draws it as a paged grid
   * with filters, search and a side-by-side view, the Markdown report as a table. @default none
   */
  readonly matrix?: ResultsMatrix | undefined;
  /** Most matrix rows in the Markdown table (the HTML grid pages through all). @default 1000 */
  readonly maxMatrixRows?: number | undefined;
}

/**
 * Summarizes row records per variant. When records repeat a (variant, row) pair, e.g. after a re-run of
 * failed rows, the one that finished last counts. Latency percentiles are exact ({@link percentile}); the
 * records are held until the summary is made (one per distinct row), so for a stored run use
 * {@link summarizeRun}, which reads it in bounded memory.
 *
 * @example
 * ```ts
 * const summary = summarize(records, { scorers: ['exactMatch', 'judge'] });
 * console.log(renderTextTable(summary));
 * ```
 * @throws {InvalidOptionError} when `maxListed` is not an integer >= 0.
 */
export function summarize(records: Iterable<SummaryRecord>, options: SummarizeOptions): EvalSummary {
  const scorers = [...options.scorers];
  const maxListed = checkMaxListed(options.maxListed);
  const variants: VariantSummary[] = [];
  for (const [variant, rows] of latestRecords(records)) {
    const list = [...rows.values()].sort((x, y) => x.line - y.line);
    const summary = new VariantAccumulator(variant, scorers, maxListed);
    const latencies: number[] = [];
    for (const record of list) {
      summary.add(record);
      if (ranUncached(record)) latencies.push(record.latencyMs);
    }
    variants.push(
      summary.finish({
        p50: percentile(latencies, 50),
        p95: percentile(latencies, 95),
        n: latencies.length,
      }),
    );
  }
  return { scorers, variants };
}

/**
 * Summarizes the stored rows of `run` per variant (variants in the run's order), as {@link summarize} would
 * the same rows, in memory bounded by the number of variants and scorers and by `maxListed`, not by the rows:
 * the rows are streamed from the store once without their inputs and outputs, means and intervals are
 * accumulated as they pass ({@link ScoreStats}: Welford's update, and the counts of at most 2,000 distinct
 * scores per scorer for the bootstrap), latency
 * percentiles are exact, computed by SQLite over the stored latencies, and at most `maxListed` error rows and
 * as many failed rows are kept per variant (the first by line; every row is counted). The store holds one
 * row per (variant, row id), so there is nothing to deduplicate.
 *
 * @example
 * ```ts
 * const store = RunStore.open('.symphonizer/runs.db');
 * console.log(renderTextTable(summarizeRun(store, 'nightly', { scorers: ['exactMatch'] })));
 * ```
 * @throws {InvalidOptionError} when `maxListed` is not an integer >= 0.
 */
export function summarizeRun(store: RunStore, run: string, options: SummarizeOptions): EvalSummary {
  const scorers = [...options.scorers];
  const maxListed = checkMaxListed(options.maxListed);
  const accumulators: VariantAccumulator[] = [];
  let current: VariantAccumulator | undefined;
  for (const record of store.summaryRows(run)) {
    if (current?.variant !== record.variant) {
      // Rows come grouped by variant (see RunStore.summaryRows), each group in line order.
      current = new VariantAccumulator(record.variant, scorers, maxListed);
      accumulators.push(current);
    }
    current.add(record);
  }
  const variants = accumulators.map((summary) => {
    const p50 = store.latencyPercentile(run, summary.variant, 50);
    const p95 = store.latencyPercentile(run, summary.variant, 95);
    return summary.finish({ p50: p50.value, p95: p95.value, n: p50.n });
  });
  return { scorers, variants };
}

/**
 * {@link summarizeRun} over any run store, the PostgreSQL one included: the same summary, in the same bounded
 * memory, the rows streamed and the latency percentiles computed by the database.
 *
 * @example
 * ```ts
 * const store = await PostgresRunStore.open('postgres://eval@db/evals');
 * console.log(renderTextTable(await summarizeStoredRun(store, 'nightly', { scorers: ['exactMatch'] })));
 * ```
 * @throws {InvalidOptionError} when `maxListed` is not an integer >= 0.
 */
export async function summarizeStoredRun(
  store: EvalRunStore | RunStore,
  run: string,
  options: SummarizeOptions,
): Promise<EvalSummary> {
  const source = store instanceof RunStore ? sqliteEvalStore(store) : store;
  const scorers = [...options.scorers];
  const maxListed = checkMaxListed(options.maxListed);
  const accumulators: VariantAccumulator[] = [];
  let current: VariantAccumulator | undefined;
  for await (const record of source.summaryRows(run)) {
    if (current?.variant !== record.variant) {
      current = new VariantAccumulator(record.variant, scorers, maxListed);
      accumulators.push(current);
    }
    current.add(record);
  }
  const variants: VariantSummary[] = [];
  for (const summary of accumulators) {
    const p50 = await source.latencyPercentile(run, summary.variant, 50);
    const p95 = await source.latencyPercentile(run, summary.variant, 95);
    variants.push(summary.finish({ p50: p50.value, p95: p95.value, n: p50.n }));
  }
  return { scorers, variants };
}

/** A row that ran (not an error), was not answered wholly from the cache, and has a finite latency. */
function ranUncached(record: SummaryRecord): boolean {
  return record.status !== 'error' && !record.cached && Number.isFinite(record.latencyMs);
}

/** One variant's summary, built one record at a time in memory bounded by the scorers and `maxListed`. */
class VariantAccumulator {
  readonly variant: string;
  readonly #scorers: readonly string[];
  readonly #maxListed: number;
  #rows = 0;
  #pass = 0;
  #fail = 0;
  #error = 0;
  #cached = 0;
  #usage = emptyUsage();
  readonly #errors: RowErrorSummary[] = [];
  readonly #failures: RowFailureSummary[] = [];
  readonly #scores: Map<string, ScoreStats>;

  constructor(variant: string, scorers: readonly string[], maxListed: number) {
    this.variant = variant;
    this.#scorers = scorers;
    this.#maxListed = maxListed;
    this.#scores = new Map(scorers.map((s) => [s, new ScoreStats()]));
  }

  /** Adds one record; records come in line order, so the first `maxListed` listed are the first by line. */
  add(record: SummaryRecord): void {
    this.#rows++;
    this.#usage = addUsageTotals(this.#usage, record.usage);
    if (record.cached) this.#cached++;
    if (record.status === 'error') {
      this.#error++;
      if (this.#errors.length < this.#maxListed) this.#errors.push(errorOf(record));
      return;
    }
    if (record.status === 'pass') this.#pass++;
    else {
      this.#fail++;
      if (this.#failures.length < this.#maxListed) {
        const shown: Record<string, ScoreResult> = {};
        for (const name of this.#scorers) {
          const result = record.scores[name];
          if (result !== undefined) shown[name] = result;
        }
        this.#failures.push({ rowId: record.rowId, line: record.line, scores: shown });
      }
    }
    for (const name of this.#scorers) {
      const score = record.scores[name]?.score;
      if (typeof score === 'number' && Number.isFinite(score)) this.#scores.get(name)?.add(score);
    }
  }

  finish(latencyMs: LatencySummary): VariantSummary {
    const scores: Record<string, ConfidenceInterval> = {};
    for (const name of this.#scorers) scores[name] = (this.#scores.get(name) ?? new ScoreStats()).ci95();
    const pass = this.#pass;
    const fail = this.#fail;
    return {
      variant: this.variant,
      rows: this.#rows,
      pass,
      fail,
      error: this.#error,
      cached: this.#cached,
      passRate: pass + fail === 0 ? Number.NaN : pass / (pass + fail),
      passRateCi: wilsonInterval(pass, pass + fail),
      scores,
      latencyMs,
      usage: this.#usage,
      errors: this.#errors,
      failures: this.#failures,
    };
  }
}

function checkMaxListed(value: number | undefined): number {
  const max = value ?? DEFAULT_MAX_LISTED;
  if (!(Number.isInteger(max) && max >= 0)) throw new InvalidOptionError('maxListed', max, 'an integer >= 0');
  return max;
}

/**
 * Compares variant `a` with `b` on one scorer, row by row: only rows both variants ran without error and
 * scored are paired; wins are rows where `a` scored higher. The test is the exact sign test below 20 untied
 * pairs and the Wilcoxon signed-rank test from there on (see {@link pairedComparison}).
 * @throws {InvalidOptionError} when `a` or `b` has no record.
 */
export function compareVariants(
  records: Iterable<SummaryRecord>,
  a: string,
  b: string,
  scorer: string,
): VariantComparison {
  const byVariant = latestRecords(records);
  const rowsA = byVariant.get(a);
  const rowsB = byVariant.get(b);
  if (rowsA === undefined)
    throw new InvalidOptionError('a', a, `a variant of the records (${known(byVariant)})`);
  if (rowsB === undefined)
    throw new InvalidOptionError('b', b, `a variant of the records (${known(byVariant)})`);
  const scoreOf = (record: SummaryRecord | undefined): number | undefined => {
    if (record === undefined || record.status === 'error') return undefined;
    const score = record.scores[scorer]?.score;
    return typeof score === 'number' && Number.isFinite(score) ? score : undefined;
  };
  const xs: number[] = [];
  const ys: number[] = [];
  for (const [rowId, recordA] of rowsA) {
    const x = scoreOf(recordA);
    const y = scoreOf(rowsB.get(rowId));
    if (x === undefined || y === undefined) continue;
    xs.push(x);
    ys.push(y);
  }
  const result = pairedComparison(xs, ys);
  return { a, b, scorer, ...result, unpaired: rowsA.size + rowsB.size - 2 * xs.length };
}

// ---------------------------------------------------------------------------------------------------------
// Renderers

interface Table {
  readonly head: readonly string[];
  readonly rows: readonly (readonly string[])[];
  /** Columns aligned right (numbers). */
  readonly numeric: ReadonlySet<number>;
}

function summaryTable(summary: EvalSummary): Table {
  const head = [
    'Variant',
    'Rows',
    'Pass',
    'Fail',
    'Error',
    'Pass rate (95% CI)',
    ...summary.scorers.map((s) => `${s} (mean, 95% CI)`),
    'p50 latency',
    'p95 latency',
    'Tokens',
    'Cost',
  ];
  const rows = summary.variants.map((v) => [
    v.variant,
    String(v.rows),
    String(v.pass),
    String(v.fail),
    String(v.error),
    formatRateCi(v),
    ...summary.scorers.map((s) => formatCi(v.scores[s])),
    formatMs(v.latencyMs.p50),
    formatMs(v.latencyMs.p95),
    formatInt(v.usage.totalTokens),
    formatCost(v.usage),
  ]);
  return { head, rows, numeric: new Set(head.map((_, i) => i).filter((i) => i > 0)) };
}

function comparisonTable(comparisons: readonly VariantComparison[]): Table {
  const head = [
    'A',
    'B',
    'Scorer',
    'Pairs',
    'A wins',
    'B wins',
    'Ties',
    'Mean diff (A − B)',
    'p-value',
    'Test',
  ];
  const rows = comparisons.map((c) => [
    c.a,
    c.b,
    c.scorer,
    String(c.n),
    String(c.wins),
    String(c.losses),
    String(c.ties),
    formatSigned(c.meanDiff),
    formatP(c.pValue),
    c.test === 'sign' ? 'sign (exact)' : 'Wilcoxon signed-rank',
  ]);
  return { head, rows, numeric: new Set([3, 4, 5, 6, 7, 8]) };
}

function errorTable(summary: EvalSummary, max: number): { table: Table; omitted: number } {
  const all = summary.variants.flatMap((v) => v.errors.map((e) => ({ variant: v.variant, ...e })));
  const total = summary.variants.reduce((n, v) => n + Math.max(v.error, v.errors.length), 0);
  const rows = all
    .slice(0, max)
    .map((e) => [e.variant, e.rowId, String(e.line), e.node ?? '', e.code ?? '', e.message]);
  return {
    table: { head: ['Variant', 'Row', 'Line', 'Node', 'Code', 'Message'], rows, numeric: new Set([2]) },
    omitted: total - rows.length,
  };
}

function failureTable(summary: EvalSummary, max: number): { table: Table; omitted: number } {
  const all = summary.variants.flatMap((v) => v.failures.map((f) => ({ variant: v.variant, ...f })));
  const total = summary.variants.reduce((n, v) => n + Math.max(v.fail, v.failures.length), 0);
  const rows = all.slice(0, max).map((f) => [
    f.variant,
    f.rowId,
    String(f.line),
    ...summary.scorers.map((name) => {
      const result = f.scores[name];
      if (result === undefined) return dash;
      return result.reason === undefined
        ? formatNumber(result.score)
        : `${formatNumber(result.score)}: ${result.reason}`;
    }),
  ]);
  return {
    table: { head: ['Variant', 'Row', 'Line', ...summary.scorers], rows, numeric: new Set([2]) },
    omitted: total - rows.length,
  };
}

/**
 * The report as Markdown: the summary table, the comparisons, and the rows that ended in error. Cell text
 * is escaped (`|`, newlines, `<`, `>`), so outputs cannot break the tables or inject HTML.
 */
export function renderMarkdownReport(
  summary: EvalSummary,
  comparisons: readonly VariantComparison[] = [],
  options: RenderOptions = {},
): string {
  const { title, maxErrors, maxFailures } = checkRender(options);
  const md = (table: Table): string => {
    const cell = (s: string): string => escapeMarkdown(s);
    const align = table.head.map((_, i) => (table.numeric.has(i) ? '--:' : '---'));
    return [
      `| ${table.head.map(cell).join(' | ')} |`,
      `| ${align.join(' | ')} |`,
      ...table.rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
    ].join('\n');
  };
  const parts = [`# ${escapeMarkdown(title)}`, '', '## Summary', '', md(summaryTable(summary)), ''];
  parts.push(
    'Pass rate = pass / (pass + fail): rows that ended in error are counted apart, never as a score of 0.',
    '',
  );
  if (comparisons.length > 0) parts.push('## Comparisons', '', md(comparisonTable(comparisons)), '');
  const failures = failureTable(summary, maxFailures);
  if (failures.table.rows.length > 0) {
    parts.push('## Failed rows', '', md(failures.table), '');
    if (failures.omitted > 0) parts.push(`… and ${failures.omitted} more.`, '');
  }
  const errors = errorTable(summary, maxErrors);
  if (errors.table.rows.length > 0) {
    parts.push('## Errors', '', md(errors.table), '');
    if (errors.omitted > 0) parts.push(`… and ${errors.omitted} more.`, '');
  }
  if (options.matrix !== undefined) {
    const max = options.maxMatrixRows ?? 1000;
    if (!(Number.isInteger(max) && max >= 0))
      throw new InvalidOptionError('maxMatrixRows', max, 'an integer >= 0');
    parts.push('## Results matrix', '');
    if (options.matrix.variants.some((v) => v.simulated)) {
      parts.push(
        'Columns marked "simulated" were answered by the offline simulated model, not a real one.',
        '',
      );
    }
    parts.push(matrixMarkdown(options.matrix, escapeMarkdown, max), '');
  }
  return parts.join('\n');
}

/**
 * The report as one self-contained HTML file (inline CSS, no external assets, nothing fetched): the summary
 * table, an inline SVG bar chart per scorer of the mean score per variant with its 95% CI as whiskers, the
 * comparison table, the errors table and, with `matrix`, the results matrix (an inline script draws it from
 * inline JSON; without `matrix` there is no script). All text is HTML-escaped; the matrix script sets every
 * value as text.
 */
export function renderHtmlReport(
  summary: EvalSummary,
  comparisons: readonly VariantComparison[] = [],
  options: RenderOptions = {},
): string {
  const { title, maxErrors, maxFailures } = checkRender(options);
  const html = (table: Table, className: string): string => {
    const cell = (tag: 'th' | 'td', text: string, i: number): string =>
      `<${tag}${table.numeric.has(i) ? ' class="num"' : ''}>${escapeHtml(text)}</${tag}>`;
    return [
      `<table class="${className}">`,
      `<thead><tr>${table.head.map((h, i) => cell('th', h, i)).join('')}</tr></thead>`,
      '<tbody>',
      ...table.rows.map((r) => `<tr>${r.map((c, i) => cell('td', c, i)).join('')}</tr>`),
      '</tbody>',
      '</table>',
    ].join('\n');
  };
  const body: string[] = [
    `<h1>${escapeHtml(title)}</h1>`,
    '<section>',
    '<h2>Summary</h2>',
    html(summaryTable(summary), 'summary'),
    '<p class="note">Pass rate = pass / (pass + fail): rows that ended in error are counted apart, never as a score of 0.</p>',
    '</section>',
  ];
  if (summary.scorers.length > 0 && summary.variants.length > 0) {
    body.push('<section>', '<h2>Mean score per variant (95% CI)</h2>');
    for (const scorer of summary.scorers) body.push(barChart(summary, scorer));
    body.push('</section>');
  }
  if (comparisons.length > 0) {
    body.push(
      '<section>',
      '<h2>Comparisons</h2>',
      html(comparisonTable(comparisons), 'comparisons'),
      '</section>',
    );
  }
  const failures = failureTable(summary, maxFailures);
  if (failures.table.rows.length > 0) {
    body.push('<section>', '<h2>Failed rows</h2>', html(failures.table, 'failures'));
    if (failures.omitted > 0) body.push(`<p class="note">… and ${failures.omitted} more.</p>`);
    body.push('</section>');
  }
  const errors = errorTable(summary, maxErrors);
  body.push('<section>', '<h2>Errors</h2>');
  if (errors.table.rows.length === 0) body.push('<p class="note">No row ended in error.</p>');
  else body.push(html(errors.table, 'errors'));
  if (errors.omitted > 0) body.push(`<p class="note">… and ${errors.omitted} more.</p>`);
  body.push('</section>');
  if (options.matrix !== undefined) body.push(matrixSection(options.matrix, escapeHtml));
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>${css}${options.matrix === undefined ? '' : `\n${matrixCss}`}</style>`,
    '</head>',
    '<body>',
    ...body,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

/** The summary (and comparisons) as plain-text tables with aligned columns, for the terminal. */
export function renderTextTable(
  summary: EvalSummary,
  comparisons: readonly VariantComparison[] = [],
  options: Pick<RenderOptions, 'maxErrors' | 'maxFailures'> = {},
): string {
  const { maxErrors, maxFailures } = checkRender(options, { maxErrors: 10, maxFailures: 0 });
  const text = (table: Table): string => {
    const clean = (s: string): string => s.replace(/[\r\n\t]+/g, ' ');
    const rows = [table.head, ...table.rows].map((r) => r.map(clean));
    const widths = table.head.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
    const line = (r: readonly string[]): string =>
      r
        .map((c, i) => (table.numeric.has(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd();
    const [head, ...rest] = rows;
    return [line(head ?? []), widths.map((w) => '-'.repeat(w)).join('  '), ...rest.map(line)].join('\n');
  };
  const parts = [text(summaryTable(summary))];
  if (comparisons.length > 0) parts.push('', text(comparisonTable(comparisons)));
  const failures = failureTable(summary, maxFailures);
  if (failures.table.rows.length > 0) {
    const total = failures.table.rows.length + failures.omitted;
    parts.push(
      '',
      `Failed rows (${total}${failures.omitted > 0 ? `, first ${failures.table.rows.length}` : ''}):`,
    );
    parts.push(text(failures.table));
  }
  const errors = errorTable(summary, maxErrors);
  if (errors.table.rows.length > 0) {
    const total = errors.table.rows.length + errors.omitted;
    parts.push('', `Errors (${total}${errors.omitted > 0 ? `, first ${errors.table.rows.length}` : ''}):`);
    parts.push(text(errors.table));
  }
  return `${parts.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------------------
// Chart

const chart = { width: 640, label: 170, bar: 380, rowHeight: 28, top: 8, axis: 24 } as const;

function barChart(summary: EvalSummary, scorer: string): string {
  const { width, label, bar, rowHeight, top, axis } = chart;
  const height = top + summary.variants.length * rowHeight + axis;
  const x = (v: number): number => label + Math.min(1, Math.max(0, v)) * bar;
  const parts = [
    `<figure><figcaption>${escapeHtml(scorer)}</figcaption>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(`Mean ${scorer} per variant`)}">`,
  ];
  summary.variants.forEach((v, i) => {
    const ci = v.scores[scorer];
    const y = top + i * rowHeight;
    const mid = y + rowHeight / 2;
    const name = v.variant.length > 24 ? `${v.variant.slice(0, 23)}…` : v.variant;
    parts.push(
      `<text x="${label - 8}" y="${mid + 4}" text-anchor="end"><title>${escapeHtml(v.variant)}</title>${escapeHtml(name)}</text>`,
    );
    if (ci === undefined || !Number.isFinite(ci.mean)) {
      parts.push(`<text x="${label + 4}" y="${mid + 4}" class="muted">no scores</text>`);
      return;
    }
    parts.push(
      `<rect x="${label}" y="${y + 5}" width="${fixed(x(ci.mean) - label)}" height="${rowHeight - 10}" class="bar"><title>${escapeHtml(`${v.variant}: ${formatCi(ci)} (n = ${ci.n})`)}</title></rect>`,
    );
    if (Number.isFinite(ci.low) && Number.isFinite(ci.high)) {
      const [lo, hi] = [fixed(x(ci.low)), fixed(x(ci.high))];
      parts.push(
        `<line x1="${lo}" x2="${hi}" y1="${mid}" y2="${mid}" class="whisker"/>`,
        `<line x1="${lo}" x2="${lo}" y1="${mid - 6}" y2="${mid + 6}" class="whisker"/>`,
        `<line x1="${hi}" x2="${hi}" y1="${mid - 6}" y2="${mid + 6}" class="whisker"/>`,
      );
    }
    parts.push(`<text x="${label + bar + 8}" y="${mid + 4}">${escapeHtml(formatNumber(ci.mean))}</text>`);
  });
  const axisY = top + summary.variants.length * rowHeight;
  parts.push(`<line x1="${label}" x2="${label + bar}" y1="${axisY}" y2="${axisY}" class="axis"/>`);
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(
      `<line x1="${fixed(x(tick))}" x2="${fixed(x(tick))}" y1="${axisY}" y2="${axisY + 4}" class="axis"/>`,
      `<text x="${fixed(x(tick))}" y="${axisY + 16}" text-anchor="middle" class="muted">${tick}</text>`,
    );
  }
  parts.push('</svg></figure>');
  return parts.join('\n');
}

const css = [
  'body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#1f2328}',
  'h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem}',
  'table{border-collapse:collapse;margin:.5rem 0;font-variant-numeric:tabular-nums}',
  'th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top}',
  'th{background:#f6f8fa}td.num,th.num{text-align:right}',
  'table.errors td:last-child,table.failures td{white-space:pre-wrap;word-break:break-word;max-width:40rem}',
  '.note,.muted{color:#656d76}figure{margin:1rem 0}figcaption{font-weight:600;margin-bottom:.25rem}',
  'svg text{font:12px system-ui,sans-serif;fill:#1f2328}svg text.muted{fill:#656d76}',
  '.bar{fill:#4c8bf5}.whisker{stroke:#1f2328;stroke-width:1.5}.axis{stroke:#8c959f}',
].join('\n');

// ---------------------------------------------------------------------------------------------------------
// Helpers

/** Latest record per (variant, row), variants in order of first appearance. */
function latestRecords<R extends SummaryRecord>(records: Iterable<R>): Map<string, Map<string, R>> {
  const byVariant = new Map<string, Map<string, R>>();
  for (const record of records) {
    let rows = byVariant.get(record.variant);
    if (rows === undefined) byVariant.set(record.variant, (rows = new Map<string, R>()));
    const previous = rows.get(record.rowId);
    if (previous === undefined || record.finishedAt >= previous.finishedAt) rows.set(record.rowId, record);
  }
  return byVariant;
}

function known(byVariant: ReadonlyMap<string, unknown>): string {
  return [...byVariant.keys()].map((k) => JSON.stringify(k)).join(', ') || 'none';
}

function errorOf(record: SummaryRecord): RowErrorSummary {
  const e = record.error;
  return {
    rowId: record.rowId,
    line: record.line,
    node: e?.node,
    code: e?.code,
    message: e?.message ?? 'unknown error',
  };
}

function checkRender(
  options: RenderOptions,
  defaults = { maxErrors: 200, maxFailures: 200 },
): { title: string; maxErrors: number; maxFailures: number } {
  const count = (option: string, value: number): number => {
    if (!(Number.isInteger(value) && value >= 0))
      throw new InvalidOptionError(option, value, 'an integer >= 0');
    return value;
  };
  return {
    title: options.title ?? 'Eval report',
    maxErrors: count('maxErrors', options.maxErrors ?? defaults.maxErrors),
    maxFailures: count('maxFailures', options.maxFailures ?? defaults.maxFailures),
  };
}

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => htmlEntities[c] ?? c);
}

const htmlEntities: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

function escapeMarkdown(text: string): string {
  return text
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\r?\n|\r/g, ' ');
}

const dash = '–';

function formatNumber(n: number): string {
  return Number.isFinite(n) ? n.toFixed(3) : dash;
}

function formatSigned(n: number): string {
  return Number.isFinite(n) ? `${n > 0 ? '+' : ''}${n.toFixed(3)}` : dash;
}

function formatCi(ci: ConfidenceInterval | undefined): string {
  if (ci === undefined || !Number.isFinite(ci.mean)) return dash;
  if (!Number.isFinite(ci.low)) return formatNumber(ci.mean);
  return `${formatNumber(ci.mean)} [${formatNumber(ci.low)}, ${formatNumber(ci.high)}]`;
}

function formatRate(rate: number): string {
  return Number.isFinite(rate) ? `${(rate * 100).toFixed(1)}%` : dash;
}

function formatRateCi(v: VariantSummary): string {
  const ci = v.passRateCi as ConfidenceInterval | undefined; // absent from summaries made before it existed
  if (ci === undefined || !Number.isFinite(ci.low)) return formatRate(v.passRate);
  return `${formatRate(v.passRate)} [${(ci.low * 100).toFixed(1)}, ${(ci.high * 100).toFixed(1)}]`;
}

function formatMs(ms: number): string {
  return Number.isFinite(ms) ? `${Math.round(ms)} ms` : dash;
}

function formatInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function formatCost(usage: UsageTotals): string {
  const cost = `$${usage.costUsd.toFixed(usage.costUsd >= 1 ? 2 : 4)}`;
  return usage.unpricedCalls > 0 ? `≥ ${cost}` : cost;
}

function formatP(p: number): string {
  if (!Number.isFinite(p)) return dash;
  return p < 0.0001 ? '< 0.0001' : p.toFixed(4);
}

function fixed(n: number): string {
  return String(Math.round(n * 10) / 10);
}
