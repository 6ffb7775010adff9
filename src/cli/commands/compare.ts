/**
 * `symphonizer compare`: two stored runs (or two variants of one run) compared row by row on one scorer, with
 * `compareVariants()`: each side's rows are relabelled as one variant (the run's name, or the variant's name
 * within one run), so comparing runs reuses the paired comparison of variants.
 */
import { compareVariants, renderTextTable, summarize, type VariantComparison } from '../../eval/report.ts';
import type { EvalRunStore } from '../../eval/run-store.ts';
import type { RunSummary } from '../../eval/store.ts';
import type { RowRecord } from '../../eval/types.ts';
import { parseCommandArgs } from '../args.ts';
import { CliError } from '../errors.ts';
import { openExistingStore } from '../eval-support.ts';
import { compareHelp } from '../help.ts';
import type { CliIO } from '../output.ts';

/** One side of the comparison. */
interface Side {
  readonly run: string;
  readonly variant: string;
  /** The variant name its rows are relabelled with. */
  readonly label: string;
  readonly rows: readonly RowRecord[];
}

/** Runs `symphonizer compare`; returns the exit code (0 ok, 2 a usage error: unknown run, variant, scorer). */
export async function compareCommand(args: readonly string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('compare', {
    args: [...args],
    allowPositionals: true,
    strict: true,
    options: {
      store: { type: 'string' },
      scorer: { type: 'string' },
      variant: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    io.stdout.write(compareHelp);
    return 0;
  }
  const usage = 'symphonizer compare <run A> <run B>, or symphonizer compare <run> --variant <a>,<b>';
  if (positionals.length === 0 || positionals.length > 2) {
    throw new CliError(
      'invalid_argument',
      positionals.length === 0
        ? 'symphonizer compare needs two runs, or one run and two variants.'
        : `symphonizer compare takes at most two runs, got ${positionals.length}: ${positionals.join(' ')}`,
      { hint: usage },
    );
  }
  const variantNames = values.variant?.split(',').map((v) => v.trim());
  if (variantNames !== undefined && (variantNames.length > 2 || variantNames.some((v) => v === ''))) {
    throw new CliError(
      'invalid_argument',
      `--variant must be one name or two names separated by a comma, got ${JSON.stringify(values.variant)}.`,
    );
  }

  const store = await openExistingStore(values.store, io.cwd);
  const path = store.location;
  let a: Side;
  let b: Side;
  try {
    const runA = await findRun(store, positionals[0] as string);
    const runB = positionals[1] === undefined ? runA : await findRun(store, positionals[1]);
    if (positionals.length === 1 && variantNames?.length !== 2) {
      throw new CliError('invalid_argument', `With one run, give the two variants to compare.`, {
        hint: `symphonizer compare ${runA.name} --variant <a>,<b> (its variants: ${runA.variants.join(', ')})`,
      });
    }
    const [first, second] = variantNames ?? [];
    const variantA = first ?? (await firstVariant(store, runA));
    const variantB = second ?? first ?? (await firstVariant(store, runB));
    if (runA.name === runB.name && variantA === variantB) {
      throw new CliError('invalid_argument', `Both sides are variant "${variantA}" of run "${runA.name}".`, {
        hint: usage,
      });
    }
    const byVariant = runA.name === runB.name;
    a = await side(store, runA, variantA, byVariant ? variantA : runA.name);
    b = await side(store, runB, variantB, byVariant ? variantB : runB.name);
  } finally {
    await store.close();
  }

  const scorers = scorerNames(a, b);
  const common = scorers.filter((s) => hasScorer(a, s) && hasScorer(b, s));
  const scorer = values.scorer ?? common[0];
  if (scorer === undefined || !common.includes(scorer)) {
    throw new CliError(
      common.length === 0 ? 'no_scorers' : 'unknown_scorer',
      common.length === 0
        ? `The two sides have no scorer in common: nothing to compare on.`
        : `No scores of "${scorer ?? ''}" on both sides.`,
      {
        hint:
          common.length === 0
            ? `scorers: ${describeList(scorers)}; run both with the same scorers`
            : `scorers of both sides: ${common.join(', ')}`,
      },
    );
  }
  const records = [...a.rows, ...b.rows];
  const summary = summarize(records, { scorers: common });
  const comparison = compareVariants(records, a.label, b.label, scorer);

  if (values.json) {
    const describe = (s: Side): Record<string, unknown> => ({
      run: s.run,
      variant: s.variant,
      label: s.label,
      rows: s.rows.length,
    });
    io.stdout.write(
      `${JSON.stringify({ store: path, scorer, a: describe(a), b: describe(b), comparison, summary })}\n`,
    );
    return 0;
  }
  const out = io.stdout;
  out.write(`A: ${describeSide(a)}\nB: ${describeSide(b)}\nscorer: ${scorer}\n\n`);
  out.write(renderTextTable(summary, [comparison]));
  out.write(`\n${verdict(comparison)}\n`);
  return 0;
}

async function findRun(store: EvalRunStore, name: string): Promise<RunSummary> {
  const run = await store.run(name);
  if (run !== undefined) return run;
  const names = (await store.runs()).map((r) => r.name);
  throw new CliError('unknown_run', `No run named "${name}" in the store.`, {
    hint:
      names.length === 0
        ? 'the store holds no runs yet'
        : `runs: ${describeList(names)} (see symphonizer runs)`,
  });
}

/** The run's first variant that has rows (its first variant when none has). */
async function firstVariant(store: EvalRunStore, run: RunSummary): Promise<string> {
  for (const variant of run.variants) {
    // One row is enough to know it has rows.
    for await (const _row of store.summaryRows(run.name, { variant })) return variant;
  }
  return run.variants[0] ?? 'default';
}

async function side(store: EvalRunStore, run: RunSummary, variant: string, label: string): Promise<Side> {
  if (!run.variants.includes(variant)) {
    throw new CliError('unknown_variant', `Run "${run.name}" has no variant "${variant}".`, {
      hint: `its variants: ${describeList(run.variants)}`,
    });
  }
  const rows: RowRecord[] = [];
  for await (const r of store.rows(run.name, { variant })) rows.push({ ...r, variant: label });
  if (rows.length === 0) {
    throw new CliError('unknown_variant', `Variant "${variant}" of run "${run.name}" has no rows.`, {
      hint: `its variants: ${describeList(run.variants)}`,
    });
  }
  return { run: run.name, variant, label, rows };
}

/** Scorer names in the order the rows give them (A's first). */
function scorerNames(a: Side, b: Side): string[] {
  const names = new Set<string>();
  for (const row of [...a.rows, ...b.rows]) for (const name of Object.keys(row.scores)) names.add(name);
  return [...names];
}

function hasScorer(side: Side, scorer: string): boolean {
  return side.rows.some((r) => r.scores[scorer] !== undefined);
}

function describeSide(s: Side): string {
  const what =
    s.label === s.run ? `run "${s.run}" (variant ${s.variant})` : `variant "${s.variant}" of run "${s.run}"`;
  return `${what} · ${s.rows.length} rows`;
}

/** One sentence: wins, losses, ties, mean difference, p-value, and what it means at the 5% level. */
export function verdict(c: VariantComparison): string {
  if (c.n === 0) {
    return `No paired rows: no row was scored on "${c.scorer}" without error on both sides (${c.unpaired} unpaired).`;
  }
  const diff = Number.isFinite(c.meanDiff) ? `${c.meanDiff > 0 ? '+' : ''}${c.meanDiff.toFixed(3)}` : '–';
  const test = c.test === 'sign' ? 'exact sign test' : 'Wilcoxon signed-rank test';
  const facts =
    `A wins ${c.wins}, B wins ${c.losses}, ties ${c.ties} over ${c.n} paired rows` +
    `${c.unpaired > 0 ? ` (${c.unpaired} unpaired)` : ''}; mean difference (A − B) ${diff}; ` +
    `p = ${c.pValue < 0.0001 ? '< 0.0001' : c.pValue.toFixed(4)} (${test})`;
  if (c.pValue < 0.05 && c.wins !== c.losses) {
    const better = c.wins > c.losses ? `A ("${c.a}")` : `B ("${c.b}")`;
    return `${facts}: ${better} scores higher (significant at the 5% level).`;
  }
  return `${facts}: no significant difference at the 5% level.`;
}

function describeList(names: readonly string[]): string {
  if (names.length === 0) return 'none';
  return names.length > 10
    ? `${names.slice(0, 10).join(', ')}, … (${names.length} in all)`
    : names.join(', ');
}
