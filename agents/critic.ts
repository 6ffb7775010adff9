/**
 * `critic`: reviews a draft against a rubric and lists its issues with a score; pair it with `reviser`.
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

/** One problem a critic found. */
export const CritiqueIssue = z.object({
  problem: z.string().describe('What is wrong, quoting the draft where that helps.'),
  severity: z.enum(['minor', 'major', 'critical']).describe('How much it hurts the draft.'),
  suggestion: z.string().describe('A concrete change that fixes it.'),
});

/** One problem a critic found. */
export type CritiqueIssue = z.output<typeof CritiqueIssue>;

/** Output schema of {@link critic}: the issues, most severe first, then a score from 0 (unusable) to 10. */
export const Critique = z.object({
  issues: z.array(CritiqueIssue).describe('Every problem worth fixing, most severe first; empty if none.'),
  score: z.number().min(0).max(10).describe('Overall quality from 0 (unusable) to 10 (nothing to improve).'),
});

/** Output of {@link critic}. */
export type Critique = z.output<typeof Critique>;

/** The criteria a critic uses when given no rubric. */
export const defaultCriteria: readonly string[] = Object.freeze([
  'Correctness: no factual or logical errors, no unsupported claims.',
  'Completeness: it does what was asked, nothing important is missing.',
  'Clarity: easy to follow, well organised, precise wording.',
  'Concision: no padding or repetition.',
]);

/** Options of {@link critic}. */
export interface CriticOptions<F extends string> extends CommonAgentOptions {
  /** The node whose output (the draft) to review. @default the chain input (a string, its `text` field, or JSON) */
  readonly from?: F | undefined;
  /** What a good draft is: one text, or a list of criteria. @default {@link defaultCriteria} */
  readonly rubric?: string | readonly string[] | undefined;
}

/**
 * A critic node: reviews the draft (`from`, or the chain input) against `rubric` and returns a
 * {@link Critique}. When the draft comes from another node, the chain input is shown too, as the task the
 * draft answers. Template: `agents/critic`.
 *
 * @example
 * ```ts
 * const write = chain({ input: z.object({ topic: z.string() }) })
 *   .prompt('draft', { template: 'Write a paragraph on {{input.topic}}.' })
 *   .prompt('critique', critic({ from: 'draft', rubric: ['Accurate', 'Under 100 words'] }))
 *   .prompt('final', reviser({ draft: 'draft', critique: 'critique' }))
 *   .build();
 * const { outputs } = await write.run({ topic: 'tides' });
 * outputs.critique.score; // number, 0..10
 * outputs.final; // string
 * ```
 * @throws {InvalidOptionError} for an empty rubric.
 */
export function critic<const F extends string = never>(
  options: CriticOptions<F> = {},
): AgentNodeSpec<Reads<F>, typeof Critique> {
  const { from, rubric = defaultCriteria } = options;
  const criteria = typeof rubric === 'string' ? [rubric] : [...rubric];
  if (criteria.length === 0 || criteria.some((c) => typeof c !== 'string' || c.trim() === '')) {
    throw new InvalidOptionError(
      'critic.rubric',
      rubric,
      'a non-empty string or a non-empty list of non-empty strings',
    );
  }
  return {
    ...commonSpec(options),
    after: afterOf(from),
    template: 'agents/critic',
    variables: (context) => ({
      text: readText(context, from),
      task: from === undefined ? null : readText(context, undefined),
      criteria,
    }),
    output: Critique,
    schemaName: 'critique',
  };
}
