/**
 * An evaluation run with a report: two prompt variants of a ticket classifier, scored on a labelled
 * dataset, compared row by row, and written out as a self-contained HTML (or Markdown) report.
 *
 *   node examples/eval-report.ts                        writes ./eval-report.html
 *   node examples/eval-report.ts --out report.md        Markdown instead (by the extension)
 *   node examples/eval-report.ts --store runs.sqlite    keep the run store (re-running resumes the run)
 *
 * What happens:
 *   - the dataset is examples/data/tickets.jsonl, streamed: 21 labelled lines, one of them malformed JSON and
 *     one failing the chain's input schema (an empty text). Both become ERROR rows with their line number;
 *     they never stop the batch and never count as a score of 0;
 *   - the chain is one node, the ready-made `classifier` agent;
 *   - the variants differ only in that node's template (`overrides`): A is the agent's own template
 *     (prompts/agents/classifier.hbs), B a terser inline one;
 *   - scorers: `label` (exactMatch of the predicted label with the expected one) and `judge` (an LLM judge
 *     grading the answer against a rubric, see agents/judge-scorer.ts);
 *   - every finished row is committed to a SQLite run store (a temporary file unless --store is given);
 *   - the summary and the paired comparison of A against B are printed, and the report is written.
 *
 * The module exports the chain (`triage`), its `scorers` and its `variants`, so the `symphonizer` command can
 * run the same evaluation (importing the module runs nothing; only `node examples/eval-report.ts` does). The
 * variants are found with `--variants`, which may name this same module:
 *
 *   npm run -s cli -- eval examples/eval-report.ts --dataset examples/data/tickets.jsonl \
 *     --variants examples/eval-report.ts --run 'ticket-triage: agent vs terse template' \
 *     --report eval-report.html
 *
 * (`--run` keeps this run apart from eval-batch.ts's, whose chain has the same name: a run resumes by name.)
 *   npm run -s cli -- graph examples/eval-report.ts
 *
 * Offline (the default, sim:demo) the labels and grades are arbitrary but deterministic, so the numbers mean
 * nothing; set a key (see examples/model.ts) to evaluate a real model.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import {
  RunStore,
  chain,
  compareVariants,
  evaluate,
  exactMatch,
  renderHtmlReport,
  renderMarkdownReport,
  renderTextTable,
  type Scorer,
  type Variant,
} from '../src/index.ts';
import { classifier, judgeScorer, type Classification } from '../agents/index.ts';
import { isMain } from './is-main.ts';
import { exampleClient, modelBanner, pickModel } from './model.ts';

const model = pickModel();

const labels = ['bug', 'feature', 'billing', 'question'] as const;
type Label = (typeof labels)[number];

/** The ticket classifier: input `{ text }`, one node `kind` (the `classifier` agent). */
export const triage = chain({
  name: 'ticket-triage',
  input: z.object({ text: z.string().min(1, 'the ticket text is empty') }),
  model,
  client: exampleClient(), // a spending ceiling for real models; the batch meters usage per row itself
})
  .prompt(
    'kind',
    classifier({
      labels,
      descriptions: {
        bug: 'something that used to work or should work is broken',
        feature: 'a request for something the product does not do yet',
        billing: 'payments, invoices, refunds, plans',
        question: 'how to do something that the product already supports',
      },
    }),
  )
  .build();

// Variant B swaps the node's template for a terser inline one (same variables: text, labels, instructions).
const terse = `{{!-- system --}}
You sort support tickets into one category.
{{!-- user --}}
Categories: {{#each labels}}{{name}}{{#unless @last}}, {{/unless}}{{/each}}.
Ticket: {{text}}
Reply with JSON: "reason", "label" (one category), "confidence" (0 to 1).`;

/** The two variants compared: the agent's own template (A) and a terse inline one (B). */
export const variants: Variant[] = [
  { name: 'A: agent template' },
  { name: 'B: terse template', overrides: { kind: { template: terse } } },
];

// exactMatch compares the scored value with the row's `expected`: here the label inside the classification.
const labelMatch = exactMatch({ name: 'label' });
const label: Scorer = {
  ...labelMatch,
  score: (context) =>
    labelMatch.score({ ...context, output: (context.output as Classification<Label>).label }),
};
const judgeClient = exampleClient(); // the judge's calls are metered here, not in the rows' usage
const judged = judgeScorer({
  rubric: [
    'The label fits the ticket, or the expected label when one is given.',
    'The reason is short and refers to what the ticket says.',
  ],
  model,
  client: judgeClient,
});

/** The scorers: `label` (the predicted label is the expected one) and `judge` (the LLM judge's grade). */
export const scorers: Scorer[] = [label, judged];

/** Runs the evaluation and writes the report (see the header for the options). */
async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      out: { type: 'string', default: 'eval-report.html' },
      store: { type: 'string' },
    },
  });
  const out = resolve(args.out);
  const format = extname(out).toLowerCase() === '.md' ? 'markdown' : 'html';
  console.log(modelBanner(model));

  // The run store: every finished row is committed as it finishes, so an interrupted batch resumes.
  const scratch = args.store === undefined ? mkdtempSync(join(tmpdir(), 'symphonizer-eval-')) : undefined;
  const store = RunStore.open(args.store ?? join(scratch!, 'runs.sqlite'));
  try {
    const result = await evaluate({
      chain: triage,
      dataset: join(import.meta.dirname, 'data/tickets.jsonl'),
      scorers,
      variants,
      store,
      runName: 'ticket-triage: agent vs terse template',
      concurrency: 8,
      maxCostUsd: 0.5,
    });
    const records = [...store.rows(result.run)];
    const [a, b] = variants.map((v) => v.name) as [string, string];
    const byLabel = compareVariants(records, a, b, 'label');
    const comparisons = [byLabel, compareVariants(records, a, b, 'judge')];

    console.log(
      `\nrun "${result.run}": ${result.done} row × variant units this time, ${result.skipped} resumed, ` +
        `${result.rowErrors} unreadable dataset rows; chain: ${result.usage.calls} calls, ` +
        `${result.usage.totalTokens} tokens; judge: ${judgeClient.usage.total.calls} calls, ` +
        `${judgeClient.usage.total.totalTokens} tokens`,
    );
    if (result.stopped !== undefined) console.log(`the batch stopped early: ${result.stopped}`);
    console.log(`\n${renderTextTable(result.summary, comparisons)}`);
    console.log(
      `${a} vs ${b} on "label": ${byLabel.wins} wins, ${byLabel.losses} losses, ${byLabel.ties} ties over ` +
        `${byLabel.n} paired rows; p = ${byLabel.pValue.toFixed(3)} (${byLabel.test} test)`,
    );

    const title = 'Ticket triage: agent template vs terse template';
    const report =
      format === 'markdown'
        ? renderMarkdownReport(result.summary, comparisons, { title })
        : renderHtmlReport(result.summary, comparisons, { title });
    writeFileSync(out, report);
    console.log(`\nreport (${format}): ${out}`);
    if (args.store !== undefined) console.log(`run store: ${resolve(args.store)}`);
  } finally {
    store.close();
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  }
}

if (isMain(import.meta)) await main();
