/**
 * A small evaluation batch: how well does a classifier label support tickets?
 *
 * Eleven labelled rows go through a one-node chain (the ready-made `classifier` agent) with `runAll`, which runs
 * them concurrently through one Perform (at most 4 at a time here). Each answer is compared with the
 * expected label. A run that fails (bad input, a provider error that outlived its retries, output that never
 * matched the schema) is counted as an error, apart from wrong answers: an error says nothing about the
 * classifier's accuracy.
 *
 *   node examples/eval-batch.ts
 *
 * The module exports the chain (`triage`) and its `scorers` (the predicted label against the expected one),
 * so the `symphonizer` command can evaluate it over a dataset file, with a run store and a summary table
 * (importing the module runs nothing; only `node examples/eval-batch.ts` does):
 *
 *   npm run -s cli -- eval examples/eval-batch.ts --dataset examples/data/tickets.jsonl
 *   npm run -s cli -- run examples/eval-batch.ts --input '{"text":"I was charged twice."}'
 *   npm run -s cli -- graph examples/eval-batch.ts
 *
 * On the simulated model the labels are arbitrary (deterministic), so the accuracy means nothing; set a key
 * (see examples/model.ts) to evaluate a real model.
 */
import { z } from 'zod';
import { SymphonizerError, chain, exactMatch, type Scorer } from '../src/index.ts';
import { classifier, type Classification } from '../agents/index.ts';
import { isMain } from './is-main.ts';
import { exampleClient, modelBanner, pickModel } from './model.ts';

const model = pickModel();
const client = exampleClient(); // its usage meter totals the whole batch

const labels = ['bug', 'feature', 'billing', 'question'] as const;
type Label = (typeof labels)[number];

// The labelled data set: the text to classify and the label a person gave it.
const rows: { text: string; expected: Label }[] = [
  { text: 'The app crashes every time I open the settings page.', expected: 'bug' },
  { text: 'Could you add a dark mode? My eyes would thank you.', expected: 'feature' },
  { text: 'I was charged twice for my March subscription.', expected: 'billing' },
  { text: 'How do I export my notes to PDF?', expected: 'question' },
  { text: 'Since the last update, search returns no results at all.', expected: 'bug' },
  { text: 'Please let us share folders with people outside our team.', expected: 'feature' },
  { text: 'Can I get an invoice with our company VAT number on it?', expected: 'billing' },
  { text: 'Is there a limit on how many devices I can sync?', expected: 'question' },
  { text: 'Uploading a file larger than 10 MB shows a blank error box.', expected: 'bug' },
  { text: 'It would be great to schedule reports to go out every Monday.', expected: 'feature' },
  // A broken row, as real data sets have: the empty text fails the chain's input schema, so this run
  // fails before any model call. It is reported as an error, not as a wrong answer.
  { text: '', expected: 'question' },
];

/** The ticket classifier: input `{ text }`, one node `kind` (the `classifier` agent). */
export const triage = chain({
  name: 'ticket-triage',
  input: z.object({ text: z.string().min(1, 'the ticket text is empty') }),
  model,
  client,
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

// For `symphonizer eval`: exactMatch compares the scored value with the row's `expected`, here the label
// inside the classification.
const labelMatch = exactMatch({ name: 'label' });

/** The scorers `symphonizer eval` uses: `label`, 1 when the predicted label is the expected one. */
export const scorers: Scorer[] = [
  {
    ...labelMatch,
    score: (context) =>
      labelMatch.score({ ...context, output: (context.output as Classification<Label>).label }),
  },
];

/** Classifies the labelled rows and prints each answer, the accuracy and the usage. */
async function main(): Promise<void> {
  console.log(modelBanner(model));

  // Run the whole batch. Every row settles: `fulfilled` with the typed result, or `rejected` with the error.
  const settled = await triage.runAll(
    rows.map(({ text }) => ({ text })),
    { highWater: 4, lowWater: 2 },
  );

  let correct = 0;
  let wrong = 0;
  let errors = 0;
  const column = (value: string, width: number): string => value.padEnd(width);
  console.log(`\n${column('#', 4)}${column('expected', 10)}${column('got', 12)}${column('conf', 6)}text`);
  settled.forEach((outcome, i) => {
    const { text, expected } = rows[i]!;
    const shown = text === '' ? '(empty)' : text.length > 50 ? `${text.slice(0, 49)}…` : text;
    if (outcome.status === 'rejected') {
      errors++;
      // Every library error has a stable `code` to branch on (here `invalid_input`) and a readable message.
      const error: unknown = outcome.reason;
      const why = SymphonizerError.isInstance(error) ? `${error.code}: ${error.message}` : String(error);
      console.log(
        `${column(String(i + 1), 4)}${column(expected, 10)}${column('ERROR', 18)}${shown}\n    ${why}`,
      );
      return;
    }
    const { label, confidence } = outcome.value.outputs.kind; // label: 'bug' | 'feature' | 'billing' | 'question'
    const ok = label === expected;
    if (ok) correct++;
    else wrong++;
    const got = `${label} ${ok ? '✓' : '✗'}`;
    console.log(
      `${column(String(i + 1), 4)}${column(expected, 10)}${column(got, 12)}${column(confidence.toFixed(2), 6)}${shown}`,
    );
  });

  const answered = correct + wrong;
  const accuracy = answered === 0 ? 0 : (100 * correct) / answered;
  console.log(`\naccuracy: ${accuracy.toFixed(1)}% (${correct} of ${answered} answered rows correct)`);
  console.log(`wrong answers: ${wrong}, errors: ${errors} (not counted in the accuracy)`);
  const usage = client.usage.total;
  console.log(
    `usage: ${usage.calls} calls, ${usage.inputTokens} input + ${usage.outputTokens} output tokens, $${usage.costUsd.toFixed(4)}`,
  );
}

if (isMain(import.meta)) await main();
