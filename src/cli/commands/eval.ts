/**
 * `symphonizer eval <chain module> --dataset <file>`: run a chain over a dataset through `evaluate()`, with
 * scorers and variants found in modules, a durable run store (re-running resumes), an optional response
 * cache, progress, a summary table and an HTML or Markdown report.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, extname, resolve } from 'node:path';
import type { z } from 'zod';
import { SymphonizerError } from '../../core/errors.ts';
import type { Json } from '../../core/json.ts';
import type { Chain } from '../../chain/chain.ts';
import { createDefaultRegistry } from '../../providers/registry.ts';
import { evaluate, type EvalResult } from '../../eval/batch.ts';
import { formatBatchLine } from '../../eval/batch-mode.ts';
import { ResponseCache, type CacheMode, type CacheStats } from '../../eval/cache.ts';
import { readDataset } from '../../eval/dataset.ts';
import {
  compareVariants,
  renderHtmlReport,
  renderMarkdownReport,
  renderTextTable,
  type EvalSummary,
  type VariantComparison,
} from '../../eval/report.ts';
import { collectMatrix, type ResultsMatrix } from '../../eval/report-matrix.ts';
import { exactMatch } from '../../eval/scorers.ts';
import { rowKey, type RunSummary } from '../../eval/store.ts';
import type { EvalQueue } from '../../eval/queue.ts';
import { openEvalStore } from '../../eval/open-store.ts';
import { isPostgresUrl, type EvalRunStore } from '../../eval/run-store.ts';
import type { Scorer, SummaryRecord, Variant } from '../../eval/types.ts';
import { parseCommandArgs } from '../args.ts';
import { CliError, type CliRunErrorCode } from '../errors.ts';
import {
  createEvalProgress,
  exportListing,
  isFile,
  scorersOf,
  shellQuote,
  storePath,
  variantsOf,
} from '../eval-support.ts';
import { evalHelp } from '../help.ts';
import { importModule, loadChain } from '../load-chain.ts';
import { formatCost, formatCount, printError, type CliIO } from '../output.ts';
import { clientOf, preflight } from '../preflight.ts';

const modelId = /^[A-Za-z0-9_.-]+:\S+$/;
const cacheModes: readonly CacheMode[] = ['read-write', 'read-only', 'off'];
const datasetExtensions = new Set(['.jsonl', '.ndjson', '.csv', '.json']);

/** A chain `evaluate()` can run: this package's `Chain`, or one of another copy with the same shape. */
type EvalChain = Chain<z.ZodType, Record<string, unknown>>;

/** Where the scorers came from, for the note printed before the batch. */
type ScorerSource = 'option' | 'chain module' | 'default' | 'none';

/**
 * Runs `symphonizer eval`; returns the exit code: 0 the batch completed and every dataset row was read (FAIL
 * and ERROR rows included), 1 some rows could not be read (so were not evaluated), the batch was stopped
 * by the cost ceiling or interrupted, or another process is running the same run (`run_leased`, without
 * `--wait`), 2 a usage error.
 */
export async function evalCommand(args: readonly string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('eval', {
    args: [...args],
    allowPositionals: true,
    strict: true,
    options: {
      dataset: { type: 'string' },
      export: { type: 'string' },
      scorers: { type: 'string' },
      variants: { type: 'string' },
      run: { type: 'string' },
      store: { type: 'string' },
      report: { type: 'string' },
      concurrency: { type: 'string' },
      'max-cost': { type: 'string' },
      'retry-errors': { type: 'boolean', default: false },
      wait: { type: 'boolean', default: false },
      batch: { type: 'boolean', default: false },
      cache: { type: 'string' },
      'cache-mode': { type: 'string' },
      queue: { type: 'string' },
      'queue-name': { type: 'string' },
      model: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    io.stdout.write(evalHelp);
    return 0;
  }

  // Every option is checked before anything is imported or opened: a typo should not wait for a slow import.
  const [specifier, ...extra] = positionals;
  if (specifier === undefined) {
    throw new CliError('invalid_argument', 'symphonizer eval needs a chain module.', {
      hint: 'symphonizer eval <chain module> --dataset <file>',
    });
  }
  if (extra.length > 0) {
    throw new CliError(
      'invalid_argument',
      `Unexpected argument${extra.length > 1 ? 's' : ''}: ${extra.join(' ')}`,
      { hint: 'give one chain module; the rows come from --dataset <file>' },
    );
  }
  if (values.dataset === undefined) {
    throw new CliError('invalid_argument', 'symphonizer eval needs --dataset <file>.', {
      hint: 'a .jsonl, .csv or .json file of rows: the chain input, with optional "id" and "expected" fields',
    });
  }
  if (values.model !== undefined && !modelId.test(values.model)) {
    throw new CliError(
      'invalid_argument',
      `--model must be provider:model, got ${JSON.stringify(values.model)}.`,
      { hint: 'e.g. --model openai:gpt-4.1-mini, --model anthropic:claude-sonnet-4-5 or --model sim:demo' },
    );
  }
  if (values.model !== undefined && values.variants !== undefined) {
    throw new CliError('invalid_argument', '--model and --variants cannot be combined.', {
      hint: '--model is one variant; to compare models, give each its variant in the --variants module',
    });
  }
  const concurrency = positiveInteger('--concurrency', values.concurrency);
  const queueUrl = values.queue;
  if (queueUrl !== undefined) {
    if (!/^rediss?:\/\//iu.test(queueUrl)) {
      throw new CliError(
        'invalid_argument',
        '--queue must be a redis:// or rediss:// URL (not shown: it may hold a password).',
        {
          hint: 'e.g. --queue redis://127.0.0.1:6379, the Redis the workers (symphonizer worker) take their jobs from',
        },
      );
    }
    if (values.cache !== undefined || values['cache-mode'] !== undefined) {
      throw new CliError('invalid_argument', '--queue and --cache / --cache-mode cannot be combined.', {
        hint: "the workers make the model calls: a cache belongs to the workers' clients",
      });
    }
    if (values.batch) {
      throw new CliError('invalid_argument', '--queue and --batch cannot be combined.', {
        hint: "batch mode sends this process's calls to the providers' Batch APIs; the workers call online",
      });
    }
  } else if (values['queue-name'] !== undefined) {
    throw new CliError('invalid_argument', '--queue-name needs --queue <redis url>.');
  }
  const maxCostUsd = positiveNumber('--max-cost', values['max-cost']);
  const cacheMode = parseCacheMode(values['cache-mode'], values.cache);
  const reportFormat = values.report === undefined ? undefined : reportFormatOf(values.report);
  if (values.run?.trim() === '') throw new CliError('invalid_argument', '--run must not be empty.');

  const dataset = resolve(io.cwd, values.dataset);
  if (!datasetExtensions.has(extname(dataset).toLowerCase())) {
    throw new CliError('invalid_argument', `Unknown dataset format: ${dataset}.`, {
      hint: 'use a .jsonl (or .ndjson), .csv or .json file',
    });
  }
  if (!(await isFile(dataset))) {
    throw new CliError('dataset_not_found', `Dataset not found: ${dataset}`, {
      hint: `paths are resolved against the working directory (${io.cwd})`,
    });
  }

  const loaded = await loadChain(specifier, io.cwd, values.export);
  const chain = evaluable(loaded.raw, loaded.chain.name, loaded.path);
  const { scorers, source } = await findScorers(values.scorers, loaded, chain, dataset, io.cwd);
  let variants = await findVariants(values.variants, values.model, io.cwd);
  const runName = values.run ?? chain.name;
  const store = storePath(values.store, io.cwd);
  const reportPath = values.report === undefined ? undefined : resolve(io.cwd, values.report);

  // The chain's own client and its registry (custom providers included) when it has one, else the default
  // registry; every model of every variant is checked against it before the store is even opened.
  const own = clientOf(loaded.raw);
  const registry = own?.registry ?? createDefaultRegistry();
  preflight({
    chain,
    runs: variants?.map((v) => ({ label: `variant "${v.name}"`, model: v.model, overrides: v.overrides })),
    registry,
    env: io.env,
    envKeys: own === undefined,
    // With --queue the workers call the providers: their keys are not needed here.
    keys: cacheMode !== 'read-only' && queueUrl === undefined,
  });

  const err = io.stderr;
  if (source === 'default') {
    err.write(
      `note: no scorers given: scoring exactMatch() of the last node against each row's "expected"\n`,
    );
  } else if (source === 'none') {
    err.write('note: no scorers given and no row has "expected": a row passes when the chain runs\n');
  }

  const runStore = await openEvalStore(store);
  let cache: ResponseCache | undefined;
  let queue: (EvalQueue & { close(): Promise<void> }) | undefined;
  let result: EvalResult;
  let comparisons: VariantComparison[];
  let matrix: ResultsMatrix | undefined;
  const progress = createEvalProgress(err, { live: err.isTTY === true });
  const batchLines = new Map<string, string>();
  try {
    const previous = await runStore.run(runName);
    if (previous !== undefined && variants === undefined) {
      // Re-running a stored run without --variants runs its stored variants, not a new `default` one.
      variants = storedVariants(previous, runName);
      if (variants !== undefined) {
        preflight({
          chain,
          runs: variants.map((v) => ({ label: `variant "${v.name}"`, model: v.model })),
          registry,
          env: io.env,
          envKeys: own === undefined,
          keys: cacheMode !== 'read-only' && queueUrl === undefined,
        });
        err.write(
          `note: run "${runName}" goes on with its stored variants ${variants.map((v) => v.name).join(', ')} ` +
            `(give --variants or --model to run others)\n`,
        );
      }
    }
    await runStore.beginRun({
      run: runName,
      chain: chain.name,
      variants: variants?.map((v) => v.name) ?? ['default'],
      dataset,
      config: config(scorers, variants, values, previous?.config),
    });
    if (previous !== undefined) {
      err.write(
        `${await resumeLine(runStore, runName, variants ?? [{ name: 'default' }], values['retry-errors'])}\n`,
      );
      const before = storedScorers(previous.config);
      const now = scorers.map((s) => s.name);
      if (before !== undefined && before.join('\0') !== now.join('\0')) {
        err.write(
          `note: run "${runName}" was scored with ${before.join(', ') || 'no scorers'} before, now with ` +
            `${now.join(', ') || 'no scorers'}: rows already done keep their scores (use another --run to rescore)\n`,
        );
      }
    }
    if (cacheMode !== undefined && cacheMode !== 'off') {
      // Beside the run store by default: in its file, or in its PostgreSQL database.
      const where = values.cache ?? store;
      cache = isPostgresUrl(where)
        ? await ResponseCache.openPostgres(where, cacheMode)
        : ResponseCache.open(values.cache === undefined ? store : resolve(io.cwd, values.cache), cacheMode);
    }
    if (queueUrl !== undefined) {
      // The distributed layer (and BullMQ) is loaded only with --queue. The workers know the module's chains
      // by the names `symphonizer worker --chains` gives them.
      const { chainsOf } = await import('./worker.ts');
      const { DistributedPerform } = await import('../../distributed/perform.ts');
      queue = new DistributedPerform({
        connection: queueUrl,
        queue: values['queue-name'],
        chains: chainsOf(loaded.exports, loaded.path),
      });
    }
    result = await evaluate({
      chain,
      queue,
      // Without one, evaluate() calls through the chain's own client (see its `client` option).
      registry: own === undefined && queue === undefined ? registry : undefined,
      dataset,
      scorers,
      variants,
      runName,
      store: runStore,
      cache,
      concurrency,
      maxCostUsd,
      retryErrors: values['retry-errors'],
      // Batch mode: the calls go to the providers' Batch APIs, each batch's state on its own line.
      batch: values.batch ? true : undefined,
      onProgress: (p) => {
        for (const batch of p.batches ?? []) {
          const line = formatBatchLine(batch);
          if (batchLines.get(batch.id) === line) continue;
          batchLines.set(batch.id, line);
          err.write(`${line}\n`);
        }
        progress.update(p);
      },
      signal: io.signal,
      // Another process running this run holds its lease: without --wait, evaluate() throws RunLeasedError (exit 1).
      lease: {
        wait: values.wait,
        onWait: (lease) => {
          err.write(
            `waiting for run "${runName}": it is being run by ${lease.holder} (host ${lease.host}, pid ${lease.pid})\n`,
          );
        },
      },
    });
    progress.finish();
    comparisons = await variantComparisons(runStore, runName, result.summary);
    if (reportPath !== undefined) {
      matrix = await collectMatrix(runStore, runName, {
        scorers: result.summary.scorers,
        models: variantModels(chain, variants ?? [{ name: 'default' }]),
      });
    }
  } finally {
    progress.finish();
    await cache?.dispose();
    await queue?.close();
    await runStore.close();
  }
  // A URL is shown without its password.
  const storeShown = runStore.location;
  const cacheStats = cache?.stats();

  if (reportPath !== undefined && reportFormat !== undefined) {
    const title = `Eval report: ${runName} (${chain.name})`;
    const text =
      reportFormat === 'html'
        ? renderHtmlReport(result.summary, comparisons, { title, matrix })
        : renderMarkdownReport(result.summary, comparisons, { title, matrix });
    await mkdir(dirname(reportPath), { recursive: true });
    await writeFile(reportPath, text);
  }

  if (values.json) {
    io.stdout.write(
      `${JSON.stringify({
        run: result.run,
        chain: chain.name,
        store: storeShown,
        dataset,
        stopped: result.stopped ?? null,
        done: result.done,
        skipped: result.skipped,
        rowErrors: result.rowErrors,
        unreadRows: result.unreadRows,
        usage: result.usage,
        estimatedCostUsd: result.estimatedCostUsd ?? null,
        summary: result.summary,
        comparisons,
        cache: cacheStats ?? null,
        report: reportPath ?? null,
      })}\n`,
    );
  } else {
    io.stdout.write(`\nrun "${result.run}" · chain "${chain.name}" · ${describeWork(result)}\n\n`);
    io.stdout.write(renderTextTable(result.summary, comparisons));
    if (cacheStats !== undefined) err.write(`${describeCache(cacheStats, cacheMode)}\n`);
    if (reportPath !== undefined) err.write(`report written to ${reportPath}\n`);
    err.write(`stored in ${storeShown}\n`);
  }

  // The ERROR rows --retry-errors would redo are those the table lists: every stored one, not only this time's.
  const storedErrors = result.summary.variants.reduce((n, v) => n + v.error, 0);
  if (result.stopped !== undefined) printError(err, stoppedError(result, maxCostUsd, args, storedErrors));
  if (result.unreadRows > 0) printError(err, unreadError(result, dataset));
  // Exit 1 whenever some rows were not evaluated: stopped early, or rows the dataset reader could not read.
  return result.stopped === undefined && result.unreadRows === 0 ? 0 : 1;
}

/**
 * The chain object `evaluate()` needs (a `Chain` has `compose`, `inputSchema` and `nodes`).
 * @throws {CliError} `no_chain` for a chain-like export that cannot be composed (a lookalike without it).
 */
function evaluable(raw: unknown, name: string, path: string): EvalChain {
  const v = raw as Record<string, unknown> | null;
  const schema = v?.inputSchema as { safeParse?: unknown } | undefined;
  if (
    typeof v?.compose !== 'function' ||
    typeof schema?.safeParse !== 'function' ||
    !Array.isArray(v.nodes) ||
    v.nodes.length === 0
  ) {
    throw new CliError(
      'no_chain',
      `Chain "${name}" of ${path} cannot be evaluated: it has no compose(), input schema or nodes.`,
      {
        hint: 'export a chain built with chain({ input }).prompt(...).build() by this version of symphonizer',
      },
    );
  }
  return raw as EvalChain;
}

/** The scorers, and where they came from (see the help of `--scorers`). */
async function findScorers(
  option: string | undefined,
  chainModule: { readonly path: string; readonly exports: Readonly<Record<string, unknown>> },
  chain: EvalChain,
  dataset: string,
  cwd: string,
): Promise<{ scorers: Scorer[]; source: ScorerSource }> {
  if (option !== undefined) {
    const { path, exports } = await importModule(option, cwd, 'Scorers module');
    const scorers = scorersOf(exports, path);
    if (scorers === undefined || scorers.length === 0) {
      throw new CliError('no_scorers', `${path} exports no scorers.`, {
        hint: 'export const scorers = [exactMatch({ node: "answer" }), ...], or scorer objects { name, score() }',
        details: exportListing(exports),
      });
    }
    return { scorers, source: 'option' };
  }
  if ('scorers' in chainModule.exports) {
    const scorers = scorersOf({ scorers: chainModule.exports.scorers }, chainModule.path) ?? [];
    return { scorers, source: 'chain module' };
  }
  return (await hasExpected(dataset, chain))
    ? { scorers: [exactMatch()], source: 'default' }
    : { scorers: [], source: 'none' };
}

/** True when some valid row of the dataset has an `expected` value (read until the first one). */
async function hasExpected(dataset: string, chain: EvalChain): Promise<boolean> {
  for await (const item of readDataset(dataset, { schema: chain.inputSchema })) {
    if (item.ok && item.row.expected !== undefined) return true;
  }
  return false;
}

/** The variants: from `--variants`, one from `--model`, or undefined (evaluate's single `default`). */
async function findVariants(
  option: string | undefined,
  model: string | undefined,
  cwd: string,
): Promise<Variant[] | undefined> {
  if (model !== undefined) return [{ name: model, model }];
  if (option === undefined) return undefined;
  const { path, exports } = await importModule(option, cwd, 'Variants module');
  const variants = variantsOf(exports, path);
  if (variants === undefined || variants.length === 0) {
    throw new CliError('no_variants', `${path} exports no variants.`, {
      hint: 'export const variants = [{ name: "a" }, { name: "b", model: "openai:gpt-4.1-mini" }]',
      details: exportListing(exports),
    });
  }
  for (const variant of variants) {
    if (variant.model !== undefined && !modelId.test(variant.model)) {
      throw new CliError(
        'no_variants',
        `Variant "${variant.name}" of ${path} has model ${JSON.stringify(variant.model)}, not provider:model.`,
      );
    }
  }
  return variants;
}

/** What the run records about this invocation (kept in the store: `runs` and `compare` read it). */
function config(
  scorers: readonly Scorer[],
  variants: readonly Variant[] | undefined,
  values: { readonly model?: string | undefined; readonly 'max-cost'?: string | undefined },
  previous: Json | undefined,
): Json {
  const now = (variants ?? [{ name: 'default' }]).map((v) => ({
    name: v.name,
    ...(v.model === undefined ? {} : { model: v.model }),
    ...(v.overrides === undefined ? {} : { nodes: Object.keys(v.overrides) }),
  }));
  // The variants of earlier invocations stay described, so a re-run without --variants can run them all.
  const earlier = storedVariantEntries(previous)
    .filter((v) => !now.some((n) => n.name === v.name))
    .map((v) => ({
      name: v.name,
      ...(v.model === undefined ? {} : { model: v.model }),
      ...(v.nodes === undefined ? {} : { nodes: previousNodes(previous, v.name) }),
    }));
  return {
    scorers: scorers.map((s) => s.name),
    variants: [...earlier, ...now],
    ...(values['max-cost'] === undefined ? {} : { maxCost: values['max-cost'] }),
  };
}

/**
 * The variants a stored run was run with, from its config, to run again when `--variants` and `--model` are
 * not given; undefined when it had only the `default` one.
 * @throws {CliError} `invalid_argument` when a stored variant overrides nodes (its overrides live in the
 *   variants module, which must be given again).
 */
function storedVariants(run: RunSummary, name: string): Variant[] | undefined {
  const known = new Map(storedVariantEntries(run.config).map((v) => [v.name, v]));
  // Every variant the run has rows of, in the run's order, as its last invocation that ran it described it.
  const stored = run.variants.map((v) => known.get(v) ?? { name: v, unknown: v !== 'default' });
  if (stored.length === 0 || (stored.length === 1 && stored[0]?.name === 'default' && !stored[0].model)) {
    return undefined;
  }
  const lost = stored.filter((v) => v.unknown === true || (v.nodes ?? 0) > 0);
  if (lost.length > 0) {
    throw new CliError(
      'invalid_argument',
      `Run "${name}" was run with the variants ${stored.map((v) => v.name).join(', ')}; ` +
        `${lost.map((v) => `"${v.name}"`).join(', ')} cannot be rebuilt from the store ` +
        '(node overrides are not stored): give the variants again.',
      { hint: `add --variants <the module that exports them>, or --run <another name> for a new run` },
    );
  }
  return stored.map((v) => (v.model === undefined ? { name: v.name } : { name: v.name, model: v.model }));
}

interface StoredVariant {
  readonly name: string;
  readonly model?: string | undefined;
  /** How many nodes it overrides. */
  readonly nodes?: number | undefined;
  /** True when no invocation described it (a run begun by evaluate() itself). */
  readonly unknown?: boolean | undefined;
}

/** The variants described in a run's stored config (see {@link config}). */
function storedVariantEntries(config: Json | undefined): StoredVariant[] {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) return [];
  const listed = config.variants;
  if (!Array.isArray(listed)) return [];
  return listed.flatMap((v): StoredVariant[] => {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || typeof v.name !== 'string') return [];
    return [
      {
        name: v.name,
        model: typeof v.model === 'string' ? v.model : undefined,
        nodes: Array.isArray(v.nodes) ? v.nodes.length : undefined,
      },
    ];
  });
}

/**
 * `resuming run …: N rows already done`, counting only the rows of this invocation's variants (what the
 * final line's "already done" counts too); with `--retry-errors` the stored ERROR rows apart.
 */
async function resumeLine(
  store: EvalRunStore,
  run: string,
  variants: readonly Variant[],
  retryErrors: boolean,
): Promise<string> {
  const names = variants.map((v) => v.name);
  const finished = await store.finishedKeys(run);
  const errors = retryErrors ? await store.errorKeys(run) : new Set<string>();
  let done = 0;
  let retried = 0;
  for (const key of finished) {
    if (!names.some((n) => key.startsWith(rowKey(n, '')))) continue;
    if (errors.has(key)) retried++;
    else done++;
  }
  const per = names.length > 1 ? ` over ${names.length} variants` : '';
  const retry = retried > 0 ? `, ${formatCount(retried)} ERROR rows will be retried` : '';
  return `resuming run "${run}": ${formatCount(done)} rows already done${per}${retry}`;
}

/** The `provider:model` ids each variant's nodes call, by variant (for the report's matrix). */
function variantModels(chain: unknown, variants: readonly Variant[]): Record<string, string[]> {
  const models = (chain as { models?: unknown } | null)?.models;
  const out: Record<string, string[]> = {};
  for (const v of variants) {
    if (typeof models !== 'function') {
      out[v.name] = v.model === undefined ? [] : [v.model];
      continue;
    }
    const byNode = models.call(chain, { model: v.model, overrides: v.overrides }) as Readonly<
      Record<string, string>
    >;
    out[v.name] = [...new Set(Object.values(byNode))];
  }
  return out;
}

/** The node names a stored variant description overrides. */
function previousNodes(config: Json | undefined, name: string): Json[] {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) return [];
  const listed = Array.isArray(config.variants) ? config.variants : [];
  for (const v of listed) {
    if (
      typeof v === 'object' &&
      v !== null &&
      !Array.isArray(v) &&
      v.name === name &&
      Array.isArray(v.nodes)
    ) {
      return v.nodes;
    }
  }
  return [];
}

/** The scorer names an earlier invocation recorded in the run's config, if it did. */
function storedScorers(config: Json | undefined): string[] | undefined {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) return undefined;
  const names = config.scorers;
  return Array.isArray(names) && names.every((n) => typeof n === 'string') ? names : undefined;
}

/** Each variant after the first against the first, on every scorer (empty with one variant). */
async function variantComparisons(
  store: EvalRunStore,
  run: string,
  summary: EvalSummary,
): Promise<VariantComparison[]> {
  const [first, ...others] = summary.variants;
  if (first === undefined || others.length === 0 || summary.scorers.length === 0) return [];
  const rows: SummaryRecord[] = [];
  for await (const row of store.summaryRows(run)) rows.push(row);
  return others.flatMap((other) =>
    summary.scorers.map((scorer) => compareVariants(rows, first.variant, other.variant, scorer)),
  );
}

function describeWork(result: EvalResult): string {
  const parts = [`${formatCount(result.done)} rows run`];
  if (result.skipped > 0) parts.push(`${formatCount(result.skipped)} already done`);
  const unread = result.unreadRows;
  const invalid = result.rowErrors - unread;
  if (unread > 0) parts.push(`${formatCount(unread)} ${unread === 1 ? 'row' : 'rows'} could not be read`);
  if (invalid > 0) parts.push(`${formatCount(invalid)} invalid ${invalid === 1 ? 'row' : 'rows'}`);
  parts.push(`${formatCount(result.usage.totalTokens)} tokens`, `cost ${formatCost(result.usage.costUsd)}`);
  return parts.join(' · ');
}

function describeCache(stats: CacheStats, mode: CacheMode | undefined): string {
  return `cache (${mode ?? 'read-write'}): ${stats.hits} hits, ${stats.misses} misses, ${stats.writes} answers stored`;
}

/** Rows of the dataset that could not be read: not evaluated, so the command exits 1. */
function unreadError(result: EvalResult, dataset: string): SymphonizerError {
  const n = result.unreadRows;
  const what =
    n === 1
      ? `1 row of ${dataset} could not be read and was not evaluated: it is stored as an ERROR row (invalid_row) with the id !line:<its line>.`
      : `${formatCount(n)} rows of ${dataset} could not be read and were not evaluated: they are stored as ERROR rows (invalid_row) with the ids !line:<their line>.`;
  return new SymphonizerError<CliRunErrorCode>('unread_rows', what, {
    hint: 'fix the lines listed as invalid_row (bad JSON or CSV, a bad or duplicate id) and run the same command again',
  });
}

/** Why the batch stopped, with how to resume (the same command: the run name resumes it). */
function stoppedError(
  result: EvalResult,
  maxCostUsd: number | undefined,
  args: readonly string[],
  errors: number,
): SymphonizerError {
  const again = `symphonizer eval ${args.map(shellQuote).join(' ')}`;
  const raised = `symphonizer eval ${withMaxCost(args).map(shellQuote).join(' ')}`;
  const ceiling = maxCostUsd === undefined ? '' : formatCost(maxCostUsd);
  switch (result.stopped) {
    case 'aborted':
      return new SymphonizerError<CliRunErrorCode>(
        'eval_interrupted',
        `Run "${result.run}" was interrupted; the ${formatCount(result.done)} rows finished this time are stored.`,
        {
          // A row cut off while it was being scored is stored as an ERROR row (evaluate() does so).
          hint:
            errors > 0 && !args.includes('--retry-errors')
              ? `resume with: ${again} (add --retry-errors to redo the ${errors} rows stored as ERROR)`
              : `resume with: ${again}`,
        },
      );
    case 'budget':
      return new SymphonizerError<CliRunErrorCode>(
        'cost_ceiling',
        `Run "${result.run}" stopped at the cost ceiling (--max-cost ${ceiling}, spent ${formatCost(result.usage.costUsd)}); finished rows are stored.`,
        { hint: `raise the ceiling to resume: ${raised}` },
      );
    default:
      return new SymphonizerError<CliRunErrorCode>(
        'cost_estimate',
        `Run "${result.run}" stopped after its first rows: the whole batch would cost about ${formatCost(result.estimatedCostUsd ?? 0)}, above --max-cost ${ceiling}.`,
        { hint: `raise the ceiling to go on: ${raised}` },
      );
  }
}

/** The arguments with `--max-cost` replaced by a placeholder to fill in. */
function withMaxCost(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--max-cost') i++;
    else if (!arg.startsWith('--max-cost=')) out.push(arg);
  }
  return [...out, '--max-cost', '<usd>'];
}

function positiveInteger(option: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!(/^\d+$/.test(raw.trim()) && Number.isSafeInteger(n) && n >= 1)) {
    throw new CliError('invalid_argument', `${option} must be an integer >= 1, got ${JSON.stringify(raw)}.`);
  }
  return n;
}

function positiveNumber(option: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const text = raw.trim().replace(/^\$/, '');
  const n = Number(text);
  if (text === '' || !(Number.isFinite(n) && n > 0)) {
    throw new CliError(
      'invalid_argument',
      `${option} must be an amount in USD > 0, got ${JSON.stringify(raw)}.`,
      {
        hint: `e.g. ${option} 0.50`,
      },
    );
  }
  return n;
}

function parseCacheMode(raw: string | undefined, file: string | undefined): CacheMode | undefined {
  if (raw === undefined) return file === undefined ? undefined : 'read-write';
  const mode = cacheModes.find((m) => m === raw);
  if (mode === undefined) {
    throw new CliError(
      'invalid_argument',
      `--cache-mode must be ${cacheModes.join(', ')}, got ${JSON.stringify(raw)}.`,
    );
  }
  return mode;
}

function reportFormatOf(path: string): 'html' | 'md' {
  const ext = extname(path).toLowerCase();
  if (ext === '.html' || ext === '.htm') return 'html';
  if (ext === '.md' || ext === '.markdown') return 'md';
  throw new CliError('invalid_argument', `--report must end in .html or .md, got ${JSON.stringify(path)}.`, {
    hint: 'the extension picks the format: report.html (self-contained page) or report.md (Markdown)',
  });
}
