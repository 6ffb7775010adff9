/**
 * What the `eval`, `runs` and `compare` commands share: the run store's path, finding scorers and variants
 * among a module's exports, aligned text tables, and the progress of a batch (a bar on a TTY, plain lines
 * otherwise).
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { EvalProgress } from '../eval/batch.ts';
import { openEvalStore } from '../eval/open-store.ts';
import { isPostgresUrl, type EvalRunStore } from '../eval/run-store.ts';
import type { Scorer, Variant } from '../eval/types.ts';
import { CliError } from './errors.ts';
import { describeExport, isChain } from './load-chain.ts';
import { formatCost, formatCount, formatDuration, type CliWritable } from './output.ts';

/** The run store used when `--store` is not given, relative to the working directory. */
export const defaultStore = '.symphonizer/runs.sqlite';

/**
 * Where the run store is: a `postgres://` URL as given, else the absolute path of the SQLite file (`--store`
 * resolved against `cwd`, else {@link defaultStore}).
 */
export function storePath(option: string | undefined, cwd: string): string {
  if (option !== undefined && isPostgresUrl(option)) return option;
  return resolve(cwd, option ?? defaultStore);
}

/**
 * Opens the run store a reading command (`runs`, `compare`) names: a `postgres://` URL, or a SQLite file that
 * must already exist.
 * @throws {CliError} `store_not_found` for a missing file.
 */
export async function openExistingStore(option: string | undefined, cwd: string): Promise<EvalRunStore> {
  if (option !== undefined && isPostgresUrl(option)) return openEvalStore(option);
  return openEvalStore(await existingStore(option, cwd));
}

/**
 * The path of a run store that must already exist (commands that only read it never create one).
 * @throws {CliError} `store_not_found`.
 */
export async function existingStore(option: string | undefined, cwd: string): Promise<string> {
  const path = storePath(option, cwd);
  if (!(await isFile(path))) {
    throw new CliError('store_not_found', `No run store at ${path}.`, {
      hint:
        option === undefined
          ? 'run symphonizer eval first, or point to a store with --store <file>'
          : 'check the path; symphonizer eval creates the store on its first run',
    });
  }
  return path;
}

/** True when `path` is a regular file. */
export async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** True for an object shaped like a {@link Scorer}: a string `name` and a `score` function. */
export function isScorer(value: unknown): value is Scorer {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.name === 'string' && typeof v.score === 'function';
}

/**
 * True for an object shaped like a {@link Variant}: a string `name`, `model` a string when present,
 * `overrides` an object when present, no function-valued field (so scorers and chains are not variants).
 */
export function isVariant(value: unknown): value is Variant {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || isChain(value)) return false;
  const v = value as Record<string, unknown>;
  if (typeof v.name !== 'string' || v.name === '') return false;
  if (v.model !== undefined && typeof v.model !== 'string') return false;
  if (v.overrides !== undefined && (typeof v.overrides !== 'object' || v.overrides === null)) return false;
  return Object.values(v).every((field) => typeof field !== 'function');
}

/**
 * The scorers a module exports: its `scorers` export (an array of scorers), else every export shaped like a
 * scorer (one object exported under several names counts once). Undefined when it has neither.
 * @throws {CliError} `no_scorers` when `scorers` is exported but is not an array of scorers.
 */
export function scorersOf(exports: Readonly<Record<string, unknown>>, path: string): Scorer[] | undefined {
  return collect(exports, path, 'scorers', isScorer, 'no_scorers', 'scorer ({ name, score() })');
}

/**
 * The variants a module exports: its `variants` export (an array of variants), else every export shaped like
 * a variant. Undefined when it has neither.
 * @throws {CliError} `no_variants` when `variants` is exported but is not an array of variants.
 */
export function variantsOf(exports: Readonly<Record<string, unknown>>, path: string): Variant[] | undefined {
  return collect(
    exports,
    path,
    'variants',
    isVariant,
    'no_variants',
    'variant ({ name, model?, overrides? })',
  );
}

function collect<T>(
  exports: Readonly<Record<string, unknown>>,
  path: string,
  name: string,
  is: (value: unknown) => value is T,
  code: 'no_scorers' | 'no_variants',
  shape: string,
): T[] | undefined {
  if (name in exports) {
    const value = exports[name];
    if (!Array.isArray(value)) {
      throw new CliError(code, `Export "${name}" of ${path} is ${describeExport(value)}, not an array.`, {
        hint: `export const ${name} = [...]: each element a ${shape}`,
      });
    }
    const bad = value.findIndex((item) => !is(item));
    if (bad >= 0) {
      throw new CliError(
        code,
        `Element ${bad} of export "${name}" of ${path} is not a ${shape}: it is ${describeExport(value[bad])}.`,
      );
    }
    return value as T[];
  }
  const found = new Set<T>();
  for (const key of Object.keys(exports).sort()) {
    const value = exports[key];
    if (is(value)) found.add(value);
  }
  return found.size === 0 ? undefined : [...found];
}

/** The lines listing a module's exports, for `details` of an error. */
export function exportListing(exports: Readonly<Record<string, unknown>>): string[] {
  const names = Object.keys(exports).sort();
  if (names.length === 0) return ['exports found:', '  (the module exports nothing)'];
  return ['exports found:', ...names.map((n) => `  ${n}: ${describeExport(exports[n])}`)];
}

/** Plain-text table with aligned columns (numeric columns aligned right) and a dashed rule under the head. */
export function textTable(
  head: readonly string[],
  rows: readonly (readonly string[])[],
  numeric: ReadonlySet<number> = new Set(),
): string {
  const all = [head, ...rows].map((r) => r.map((c) => c.replace(/[\r\n\t]+/g, ' ')));
  const widths = head.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]): string =>
    r
      .map((c, i) => (numeric.has(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const [first, ...rest] = all;
  return `${[line(first ?? []), widths.map((w) => '-'.repeat(w)).join('  '), ...rest.map(line)].join('\n')}\n`;
}

/** Epoch milliseconds as local `YYYY-MM-DD HH:MM`. */
export function formatTimestamp(ms: number): string {
  const d = new Date(ms);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}`;
}

/** Quotes an argument for a POSIX shell when it needs it, for commands printed to be pasted back. */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** Shows the progress of a batch; see {@link createEvalProgress}. */
export interface EvalProgressView {
  /** Called after every finished row (`evaluate`'s `onProgress`). */
  update(progress: EvalProgress): void;
  /** Draws the last state (on a TTY: ends the bar's line) and stops redrawing. */
  finish(): void;
}

/** Options of {@link createEvalProgress}. */
export interface EvalProgressOptions {
  /** Redraw one bar in place (a TTY) rather than print lines. */
  readonly live: boolean;
  /** Time source in milliseconds, for tests. @default performance.now */
  readonly now?: (() => number) | undefined;
}

/** Plain lines come at most this often... */
const lineIntervalMs = 1000;
/** ...unless another tenth of the batch is done. */
const lineSteps = 10;
/** The bar is redrawn at most this often. */
const drawIntervalMs = 100;
const barWidth = 20;

/**
 * The progress of a batch. Live: one line redrawn in place, `[████░░░░] 12/40 rows · 3.2/s · ETA 9 s · 2 fail ·
 * 1 error · 12,345 tok · $0.0123`, cut to the terminal's width. Otherwise plain lines of the same facts,
 * one when a second has passed since the last or the batch crossed another 10%, and always the last one.
 */
export function createEvalProgress(out: CliWritable, options: EvalProgressOptions): EvalProgressView {
  const now = options.now ?? (() => performance.now());
  let last: EvalProgress | undefined;
  let lastWrite = Number.NEGATIVE_INFINITY;
  let lastStep = 0;
  let drawn = false;
  let finished = false;
  let written: EvalProgress | undefined;

  /** The facts of a progress state; `compact` (the bar) uses short units to fit 80 columns. */
  const facts = (p: EvalProgress, compact: boolean): string[] => {
    const rate = p.rate < 10 ? p.rate.toFixed(1) : String(Math.round(p.rate));
    const parts = [
      `${formatCount(p.done)}${p.total === undefined ? '' : `/${formatCount(p.total)}`} rows`,
      compact ? `${rate}/s` : `${rate} rows/s`,
    ];
    if (p.etaMs !== undefined && p.total !== undefined && p.done < p.total)
      parts.push(`ETA ${formatDuration(p.etaMs)}`);
    parts.push(
      `${p.fail} fail`,
      `${p.errors} ${p.errors === 1 ? 'error' : 'errors'}`,
      `${formatCount(p.tokens)} ${compact ? 'tok' : 'tokens'}`,
      formatCost(p.costUsd),
    );
    return parts;
  };

  const draw = (p: EvalProgress): void => {
    lastWrite = now();
    written = p;
    const fraction = p.total === undefined || p.total === 0 ? 0 : Math.min(1, p.done / p.total);
    const filled = Math.round(fraction * barWidth);
    const bar = `[${'█'.repeat(filled)}${'░'.repeat(barWidth - filled)}]`;
    const width = Math.max(20, (out.columns !== undefined && out.columns > 0 ? out.columns : 80) - 1);
    const text = `${bar} ${facts(p, true).join(' · ')}`;
    out.write(`\r\x1b[2K${text.length <= width ? text : `${text.slice(0, width - 1)}…`}`);
    drawn = true;
  };

  const line = (p: EvalProgress): void => {
    lastWrite = now();
    written = p;
    const percent =
      p.total === undefined || p.total === 0 ? '' : ` (${Math.floor((p.done / p.total) * 100)}%)`;
    const [rows, ...rest] = facts(p, false);
    out.write(`eval "${p.run}": ${rows ?? ''}${percent} · ${rest.join(' · ')}\n`);
  };

  return {
    update: (p) => {
      if (finished) return;
      last = p;
      if (options.live) {
        if (now() - lastWrite >= drawIntervalMs || p.done === p.total) draw(p);
        return;
      }
      const step = p.total === undefined || p.total === 0 ? 0 : Math.floor((p.done / p.total) * lineSteps);
      if (now() - lastWrite >= lineIntervalMs || step > lastStep) {
        lastStep = step;
        line(p);
      }
    },
    finish: () => {
      if (finished) return;
      finished = true;
      if (last !== undefined && written !== last) {
        if (options.live) draw(last);
        else line(last);
      }
      if (drawn) out.write('\n');
    },
  };
}
