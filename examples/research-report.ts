/**
 * A research report written by a chain of model calls, with fan-out and fan-in:
 *
 *            ┌─ history ─┐
 *   input ───┼─ science ─┼──> outline ──> draft ──> critique ──> revise
 *            └─ outlook ─┘
 *
 * The three research angles run in parallel; `outline` waits for all three. `critique` and `revise` are the
 * ready-made `critic` and `reviser` agents. Templates live in prompts/research/*.hbs.
 *
 *   node examples/research-report.ts ["a topic"] [--stream] [--graph]
 *
 *   --stream  print the draft and the revision token by token as they are written
 *   --graph   print the chain as a Mermaid flowchart and exit, without running it
 *
 * The module exports the chain as `report`, so the `symphonizer` command can load it (importing the module
 * runs nothing; only `node examples/research-report.ts` does):
 *
 *   npm run -s cli -- run examples/research-report.ts --input '{"topic":"ocean tides"}' [--stream]
 *   npm run -s cli -- graph examples/research-report.ts [--format dot]
 *
 * Offline by default (the simulated model); see examples/model.ts to use a real one.
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { chain, formatTrace, type ChainEvent } from '../src/index.ts';
import { critic, reviser } from '../agents/index.ts';
import { isMain } from './is-main.ts';
import { exampleClient, modelBanner, pickModel } from './model.ts';

const model = pickModel();

// Output schemas: the model must answer JSON matching them, and each node's output is typed from them.
const Findings = z.object({ findings: z.array(z.string()).describe('3 to 5 one-sentence findings.') });
const Outline = z.object({ title: z.string(), sections: z.array(z.string()).describe('Section headings.') });

// One template (prompts/research/angle.hbs) serves all three angles; `variables` fills in what differs.
const angle = (name: string, focus: string) => ({
  template: 'research/angle', // a plain name: loads prompts/research/angle.hbs
  variables: () => ({ angle: name, focus }),
  output: Findings,
});

/** The research-report chain: input `{ topic }`, seven model nodes. */
export const report = chain({
  name: 'research-report',
  input: z.object({ topic: z.string() }),
  model,
  client: exampleClient(),
})
  // No `after`: these three start at once.
  .prompt('history', angle('history', 'how it was discovered and understood over time.'))
  .prompt('science', angle('science', 'the mechanisms behind it, as currently understood.'))
  .prompt('outlook', angle('outlook', 'open questions, trends and what may change.'))
  // Fan-in: runs after all three, and its template sees each one's typed output by node name.
  .prompt('outline', {
    after: ['history', 'science', 'outlook'],
    template: 'research/outline',
    output: Outline,
  })
  // No `output`: the draft is plain text (and can be streamed).
  .prompt('draft', { after: ['outline', 'history', 'science', 'outlook'], template: 'research/draft' })
  // Ready agents: the critic scores the draft and lists issues; the reviser fixes them.
  .prompt(
    'critique',
    critic({ from: 'draft', rubric: ['Accurate', 'Clear for a general reader', 'Well structured'] }),
  )
  .prompt(
    'revise',
    reviser({ draft: 'draft', critique: 'critique', instructions: 'Keep it under 350 words.' }),
  )
  .build();

// Progress lines as nodes finish (events arrive while the chain runs).
const progress = (event: ChainEvent): void => {
  if (event.type === 'node-done') console.log(`  done: ${event.node} (${event.status})`);
};

// stream() yields every event as it happens; text nodes (draft, revise) also emit `token` events.
async function runStreaming(topic: string) {
  const run = report.stream({ topic });
  let streaming = ''; // the node whose tokens are being printed
  for await (const event of run) {
    if (event.type === 'token' && event.node !== streaming) console.log(`  --- ${(streaming = event.node)}:`);
    if (event.type === 'token') process.stdout.write(event.text);
    if (event.type === 'node-done' && event.node === streaming) process.stdout.write('\n');
    progress(event);
  }
  return run.result; // rejects with a ChainRunError if a node failed
}

/** Runs the report on the command line's topic and prints it (see the header for the options). */
async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { stream: { type: 'boolean', default: false }, graph: { type: 'boolean', default: false } },
  });
  if (values.graph) {
    console.log(report.toMermaid());
    return;
  }
  const topic = positionals.join(' ').trim() || 'ocean tides';
  console.log(modelBanner(model));
  console.log(`topic: ${topic}\n`);

  // run() resolves with every node's typed output once all are done.
  const result = values.stream
    ? await runStreaming(topic)
    : await report.run({ topic }, { onEvent: progress });

  const { outputs } = result; // typed: outputs.outline.sections is string[], outputs.critique.score a number
  const brief = (text: string, max = 100): string =>
    text.length > max ? `${text.slice(0, max - 1)}…` : text;

  console.log('\n=== Final report ===\n');
  console.log(outputs.revise);

  console.log('\n=== Each node, briefly ===');
  for (const name of ['history', 'science', 'outlook'] as const) {
    const { findings } = outputs[name];
    console.log(`${name}: ${findings.length} findings, e.g. "${brief(findings[0] ?? '')}"`);
  }
  console.log(`outline: "${outputs.outline.title}" — ${outputs.outline.sections.join(' / ')}`);
  console.log(`draft: ${outputs.draft.length} chars: "${brief(outputs.draft)}"`);
  console.log(`critique: score ${outputs.critique.score}/10, ${outputs.critique.issues.length} issue(s)`);
  console.log(`revise: ${outputs.revise.length} chars`);

  console.log('\n=== Trace (one line per node attempt) ===');
  for (const line of formatTrace(result.trace)) console.log(`  ${line}`);

  const { usage } = result;
  const cost = result.simulated
    ? ' (simulated model: free)'
    : usage.unpricedCalls > 0
      ? ` (+${usage.unpricedCalls} call(s) with no known price)`
      : '';
  console.log('\n=== Usage ===');
  console.log(`  ${usage.calls} calls, ${usage.inputTokens} input + ${usage.outputTokens} output tokens`);
  console.log(`  cost: $${usage.costUsd.toFixed(4)}${cost}; wall time ${result.elapsedMs.toFixed(0)} ms`);

  console.log('\n=== Graph (Mermaid: paste into https://mermaid.live) ===');
  console.log(report.toMermaid());
}

if (isMain(import.meta)) await main();
