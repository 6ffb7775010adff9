/**
 * `summarizer`: condenses a text (an upstream node's output or the chain input) into prose, or into a summary
 * with key points.
 */
import { z } from 'zod';
import { InvalidOptionError } from '../src/core/errors.ts';
import {
  afterOf,
  commonSpec,
  readText,
  type AgentNodeSpec,
  type CommonAgentOptions,
  type Reads,
} from './common.ts';

/** Output schema of a structured summarizer (`structured: true`). */
export const Summary = z.object({
  summary: z.string().describe('The summary, as prose.'),
  keyPoints: z.array(z.string()).describe('The main points, one short sentence each, most important first.'),
});

/** Output of a structured summarizer. */
export type Summary = z.output<typeof Summary>;

/** Options of {@link summarizer}. */
export interface SummarizerOptions<F extends string, St extends boolean> extends CommonAgentOptions {
  /** The node whose output to summarize (a string, or anything else as JSON). @default the chain input */
  readonly from?: F | undefined;
  /** Most words of the summary (a positive integer). @default no limit */
  readonly maxWords?: number | undefined;
  /** `true`: output {@link Summary} (`{ summary, keyPoints }`) instead of text. @default false */
  readonly structured?: St | undefined;
  /** What to focus on, e.g. `'risks and deadlines'`. @default everything important */
  readonly focus?: string | undefined;
}

/**
 * A summarizer node: reads `from` (or the chain input: a string, its `text` field, or the whole input as JSON)
 * and returns the summary as text, or as {@link Summary} with `structured: true`. Template: `agents/summarizer`.
 *
 * @example
 * ```ts
 * const brief = chain({ input: z.object({ topic: z.string() }) })
 *   .prompt('draft', { template: 'Write about {{input.topic}}.' })
 *   .prompt('tldr', summarizer({ from: 'draft', maxWords: 50 }))
 *   .prompt('notes', summarizer({ from: 'draft', structured: true }))
 *   .build();
 * const { outputs } = await brief.run({ topic: 'tides' });
 * outputs.tldr; // string
 * outputs.notes.keyPoints; // string[]
 * ```
 * @throws {InvalidOptionError} when `maxWords` is not a positive integer.
 */
export function summarizer<const F extends string = never, const St extends boolean = false>(
  options: SummarizerOptions<F, St> = {},
): AgentNodeSpec<Reads<F>, St extends true ? typeof Summary : undefined> {
  const { from, maxWords, structured = false, focus } = options;
  if (maxWords !== undefined && !(Number.isInteger(maxWords) && maxWords > 0)) {
    throw new InvalidOptionError('summarizer.maxWords', maxWords, 'a positive integer');
  }
  return {
    ...commonSpec(options),
    after: afterOf(from),
    template: 'agents/summarizer',
    variables: (context) => ({
      text: readText(context, from),
      maxWords: maxWords ?? null,
      structured,
      focus: focus ?? null,
    }),
    output: (structured ? Summary : undefined) as St extends true ? typeof Summary : undefined,
    schemaName: structured ? 'summary' : undefined,
  };
}
