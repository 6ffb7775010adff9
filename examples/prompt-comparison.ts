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
 * Templates: prompts/examples/summary-brief.hbs (A) and prompts/examples/summary-focused.hbs (B).
 * On the simulated model the scores are arbitrary (but deterministic); use a real model to learn something.
 */
import { z } from 'zod';
import { chain } from '../src/index.ts';
import { judge } from '../agents/index.ts';
import { exampleClient, modelBanner, pickModel } from './model.ts';

const model = pickModel();
const client = exampleClient(); // one client for both variants: its usage meter totals the whole comparison
console.log(modelBanner(model));

// The prompt variants under test: template names under prompts/ (an inline {{template}} works too).
const variants = { A: 'examples/summary-brief', B: 'examples/summary-focused' } as const;

// Five short texts to summarize.
const texts = [
  'The city council voted 7 to 2 on Tuesday to turn the old rail yard into a 12-hectare park. Construction starts next spring and should take three years; the project costs 40 million euros, half paid by the region.',
  'Researchers at the University of Oslo found that adults who walked 7,000 steps a day had a 50% lower risk of early death than those who walked 4,000, in a study that followed 2,100 people for eleven years.',
  'Version 3.0 of the Lumen text editor drops support for 32-bit Windows, adds real-time collaboration for up to 10 users, and makes the plugin API stable. Existing plugins need a one-line manifest change.',
  'After two dry summers, the reservoir above Vila Nova is at 18% of capacity. The water company will limit garden watering to two evenings a week from June 1 and asks households to cut use by a fifth.',
  'The museum returned 23 bronze sculptures to Nigeria on Friday, ending a ten-year dispute. They were taken in 1897; three will stay on loan in the museum for five more years under the agreement.',
];

const compare = chain({
  name: 'prompt-comparison',
  input: z.object({ text: z.string() }),
  model,
  client,
})
  .prompt('summary', { template: variants.A }) // the default; each run overrides it
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

// Run both variants over all texts. runAll runs the five inputs concurrently (through one Perform);
// a failed run is a rejected entry, so one bad call does not sink the whole comparison.
const scores: Record<keyof typeof variants, (Result | undefined)[]> = { A: [], B: [] };
for (const [name, template] of Object.entries(variants) as [keyof typeof variants, string][]) {
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
    `variant ${name} (${variants[name as keyof typeof variants]}): mean score ${mean.toFixed(2)} / 5, ` +
      `${passed}/${texts.length} passed, ${texts.length - ok.length} error(s)`,
  );
}
const score = (r: Result | undefined): number => r?.outputs.verdict.score ?? 0;
const wins = texts.filter((_, i) => score(scores.B[i]) > score(scores.A[i])).length;
console.log(`B beat A on ${wins} of ${texts.length} texts`);
console.log(`example summary (B, text 1): ${scores.B[0]?.outputs.summary ?? '(error)'}`);
const { calls, totalTokens, costUsd } = client.usage.total;
console.log(`usage: ${calls} calls, ${totalTokens} tokens, $${costUsd.toFixed(4)}`);
