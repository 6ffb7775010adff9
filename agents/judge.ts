/**
 * `judge`: an LLM judge for evaluations. Scores a candidate answer against a rubric on a numeric scale, with
 * reasons, and a pass/fail that follows from the score.
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

/** A judge's scale: the lowest and the highest score. */
export type JudgeScale = readonly [min: number, max: number];

/** The scale a judge uses when given none. */
export const defaultJudgeScale: JudgeScale = Object.freeze([1, 5] as const);

/**
 * The output schema of a judge: the model answers `{ reasons, score }` (`score` within `scale`, reasons first
 * so it reasons before it scores), and `pass` is added as `score >= passAt`, so pass/fail is the same rule for
 * every item of an eval batch.
 *
 * @example
 * ```ts
 * const Verdict = judgmentSchema([0, 10], 7);
 * Verdict.parse({ reasons: ['ok'], score: 8 }); // { reasons: ['ok'], score: 8, pass: true }
 * ```
 * @throws {InvalidOptionError} for a bad scale or a `passAt` outside it.
 */
export function judgmentSchema(scale: JudgeScale = defaultJudgeScale, passAt: number = defaultPassAt(scale)) {
  const [min, max] = checkScale(scale);
  if (!(Number.isFinite(passAt) && passAt >= min && passAt <= max)) {
    throw new InvalidOptionError('judge.passAt', passAt, `a number within the scale [${min}, ${max}]`);
  }
  return z
    .object({
      reasons: z
        .array(z.string())
        .describe('Short reasons for the score, one per point, the most important first.'),
      score: z.number().min(min).max(max).describe(`The score, from ${min} (worst) to ${max} (best).`),
    })
    .transform((verdict) => ({ ...verdict, pass: verdict.score >= passAt }));
}

/** The zod schema of a judge's output. */
export type JudgmentSchema = ReturnType<typeof judgmentSchema>;

/** A judge's output: reasons, a score within the scale, and `pass` (`score >= passAt`). */
export type Judgment = z.output<JudgmentSchema>;

/** The pass mark of a scale when none is given: its midpoint, rounded up (3 on 1–5, 5 on 0–10, 1 on 0–1). */
export function defaultPassAt(scale: JudgeScale): number {
  const [min, max] = checkScale(scale);
  return Math.ceil((min + max) / 2);
}

/** Options of {@link judge}. */
export interface JudgeOptions<F extends string> extends CommonAgentOptions {
  /** What a good answer is: one text, or a list of criteria. */
  readonly rubric: string | readonly string[];
  /** The lowest and highest score. @default [1, 5] */
  readonly scale?: JudgeScale | undefined;
  /** The lowest passing score. @default the scale's midpoint, rounded up ({@link defaultPassAt}) */
  readonly passAt?: number | undefined;
  /**
   * The node whose output (the candidate answer) to judge; the chain input is then shown as the task (put a
   * reference answer in the input to judge against it). @default the chain input is the candidate
   */
  readonly from?: F | undefined;
}

/**
 * A judge node for eval batches: scores the candidate (`from`, or the chain input) against `rubric` and
 * returns {@link Judgment} `{ reasons, score, pass }`. Run it over a batch with `chain.runAll(items)`.
 * Template: `agents/judge`.
 *
 * @example
 * ```ts
 * const evaluate = chain({ input: z.object({ question: z.string(), reference: z.string() }) })
 *   .prompt('answer', { template: 'Answer briefly: {{input.question}}' })
 *   .prompt('verdict', judge({ from: 'answer', rubric: 'Agrees with the reference answer.', scale: [0, 10], passAt: 7 }))
 *   .build();
 * const results = await evaluate.runAll(items);
 * const passed = results.filter((r) => r.status === 'fulfilled' && r.value.outputs.verdict.pass).length;
 * ```
 * @throws {InvalidOptionError} for an empty rubric, a bad scale, or a `passAt` outside it.
 */
export function judge<const F extends string = never>(
  options: JudgeOptions<F>,
): AgentNodeSpec<Reads<F>, JudgmentSchema> {
  const { from, rubric, scale = defaultJudgeScale } = options;
  const criteria = typeof rubric === 'string' ? [rubric] : [...rubric];
  if (criteria.length === 0 || criteria.some((c) => typeof c !== 'string' || c.trim() === '')) {
    throw new InvalidOptionError(
      'judge.rubric',
      rubric,
      'a non-empty string or a non-empty list of non-empty strings',
    );
  }
  const passAt = options.passAt ?? defaultPassAt(scale);
  const output = judgmentSchema(scale, passAt);
  const [min, max] = scale;
  return {
    ...commonSpec(options),
    after: afterOf(from),
    template: 'agents/judge',
    variables: (context) => ({
      candidate: readText(context, from),
      task: from === undefined ? null : readText(context, undefined),
      criteria,
      min,
      max,
      passAt,
    }),
    output,
    schemaName: 'judgment',
  };
}

function checkScale(scale: JudgeScale): JudgeScale {
  const [min, max] = scale;
  if (
    (scale as readonly number[]).length !== 2 ||
    !(Number.isFinite(min) && Number.isFinite(max) && min < max)
  ) {
    throw new InvalidOptionError('judge.scale', scale, '[min, max] with finite min < max');
  }
  return scale;
}
