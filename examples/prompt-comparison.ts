/**
 * Comparing two prompts: which template writes better summaries?
 *
 *   input ──> summary ──> verdict (the `judge` agent scores the summary from 1 to 5)
 *
 * The chain is built once. Each variant runs it over the same five texts, swapping only the `summary`
 * node's template with a per-run override (`overrides: { summary: { template } }`), so nothing else
 * changes between the two. The judge sees the original text as the task and the summary as the answer.
 *
 *   node examples/prompt-comparison.ts
 *
 * The texts are examples/data/news.jsonl. Templates: prompts/examples/summary-brief.hbs (A) and
 * prompts/examples/summary-focused.hbs (B).
 *
 * The module exports the chain (`compare`), its `variants` (A and B) and its `scorers` (the judge's score),
 * so the `symphonizer` command can run the same comparison as an eval, with a run store and a paired test
 * (importing the module runs nothing; only `node examples/prompt-comparison.ts` does):
 *
 *   npm run -s cli -- eval examples/prompt-comparison.ts --dataset examples/data/news.jsonl \
 *     --variants examples/prompt-comparison.ts
 *   npm run -s cli -- graph examples/prompt-comparison.ts
 *
 * On the simulated model the scores are arbitrary (but deterministic); use a real model to learn something.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { chain, scorer, type Scorer, type Variant } from '../src/index.ts';
import { judge } from '../agents/index.ts';
import { isMain } from './is-main.ts';
import { exampleClient, modelBanner, pickModel } from './model.ts';

const model = pickModel();
const client = exampleClient(); // one client for both variants: its usage meter totals the whole comparison

// The prompt variants under test: template names under prompts/ (an inline {{template}} works too).
const templates = { A: 'examples/summary-brief', B: 'examples/summary-focused' } as const;

/** The chain under test: input `{ text }`, a `summary` node, then the `verdict` judge. */
export const compare = chain({
  name: 'prompt-comparison',
  input: z.object({ text: z.string() }),
  model,
  client,
})
  .prompt('summary', { template: templates.A }) // the default; each run overrides it
  .prompt(
    'verdict',
    judge({
      from: 'summary',
      rubric: [
        'Faithful: says nothing the text does not say.',
        'Keeps the key fact, with its numbers and names.',
        'One sentence, at most 25 words.',
      ],
      scale: [1, 5],
      passAt: 4,
    }),
  )
  .build();

// One run's result, typed from the chain: outputs.summary is a string, outputs.verdict a Judgment.
type Result = Awaited<ReturnType<typeof compare.run>>;

/** For `symphonizer eval --variants`: each variant swaps the `summary` node's template. */
export const variants: Variant[] = Object.entries(templates).map(([name, template]) => ({
  name,
  overrides: { summary: { template } },
}));

/**
 * For `symphonizer eval`: the judge's score mapped from 1–5 onto 0–1; a row passes at 4 (0.75), as the judge's
 * own `pass` does.
 */
export const scorers: Scorer[] = [
  scorer<unknown, Result['outputs']>(
    'verdict',
    ({ outputs }) => ({ score: (outputs.verdict.score - 1) / 4, reason: outputs.verdict.reasons.join(' ') }),
    { node: 'verdict', threshold: 0.75 },
  ),
];

/** Runs both variants over the texts and prints the table, the mean scores and the usage. */
async function main(): Promise<void> {
  console.log(modelBanner(model));

  // The texts to summarize: one JSON object per line, `{ id, text }`.
  const texts = readFileSync(join(import.meta.dirname, 'data/news.jsonl'), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => (JSON.parse(line) as { text: string }).text);

  // Run both variants over all texts. runAll runs the five inputs concurrently (through one Perform);
  // a failed run is a rejected entry, so one bad call does not sink the whole comparison.
  const scores: Record<keyof typeof templates, (Result | undefined)[]> = { A: [], B: [] };
  for (const [name, template] of Object.entries(templates) as [keyof typeof templates, string][]) {
    const settled = await compare.runAll(
      texts.map((text) => ({ text })),
      { overrides: { summary: { template } }, highWater: 5 },
    );
    scores[name] = settled.map((s) => (s.status === 'fulfilled' ? s.value : undefined));
    for (const s of settled) if (s.status === 'rejected') console.error(`variant ${name}:`, String(s.reason));
  }

  // A per-input table, then the mean score of each variant.
  const cell = (r: Result | undefined): string =>
    r === undefined
      ? 'error'
      : `${r.outputs.verdict.score.toFixed(1)}${r.outputs.verdict.pass ? ' pass' : ' fail'}`;
  const cut = (text: string, n: number): string => (text.length > n ? `${text.slice(0, n - 1)}…` : text);
  console.log(`\n${'#'.padEnd(3)}${'text'.padEnd(42)}${'A: brief'.padEnd(12)}B: focused`);
  texts.forEach((text, i) => {
    console.log(
      `${String(i + 1).padEnd(3)}${cut(text, 40).padEnd(42)}${cell(scores.A[i]).padEnd(12)}${cell(scores.B[i])}`,
    );
  });

  console.log('');
  for (const [name, results] of Object.entries(scores)) {
    const ok = results.filter((r): r is Result => r !== undefined);
    const mean = ok.reduce((sum, r) => sum + r.outputs.verdict.score, 0) / Math.max(1, ok.length);
    const passed = ok.filter((r) => r.outputs.verdict.pass).length;
    console.log(
      `variant ${name} (${templates[name as keyof typeof templates]}): mean score ${mean.toFixed(2)} / 5, ` +
        `${passed}/${texts.length} passed, ${texts.length - ok.length} error(s)`,
    );
  }
  const score = (r: Result | undefined): number => r?.outputs.verdict.score ?? 0;
  const wins = texts.filter((_, i) => score(scores.B[i]) > score(scores.A[i])).length;
  console.log(`B beat A on ${wins} of ${texts.length} texts`);
  console.log(`example summary (B, text 1): ${scores.B[0]?.outputs.summary ?? '(error)'}`);
  const { calls, totalTokens, costUsd } = client.usage.total;
  console.log(`usage: ${calls} calls, ${totalTokens} tokens, $${costUsd.toFixed(4)}`);
}

if (isMain(import.meta)) await main();
