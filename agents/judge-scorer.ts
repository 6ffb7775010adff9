/**
 * `judgeScorer`: an eval scorer that asks the {@link judge} agent to grade each row's output against a rubric,
 * seeing the row's input and expected value as the task, and returns the judge's score normalized to [0, 1].
 */
import { z } from 'zod';
import { chain } from '../src/chain/builder.ts';
import { InvalidOptionError } from '../src/core/errors.ts';
import type { ModelClient } from '../src/providers/model-client.ts';
import { scorer, type ScorerOptions } from '../src/eval/scorers.ts';
import type { ScoreResult, Scorer } from '../src/eval/types.ts';
import { defaultJudgeScale, defaultPassAt, judge, type JudgeScale } from './judge.ts';

/** Options of {@link judgeScorer}. */
export interface JudgeScorerOptions {
  /** What a good answer is: one text, or a list of criteria. */
  readonly rubric: string | readonly string[];
  /** `provider:model` of the judge. @default SYMPHONIZER_MODEL, else 'sim:default' (as for every chain) */
  readonly model?: string | undefined;
  /** The client making the judge's calls (share the batch's to meter and cache them). @default the shared one */
  readonly client?: ModelClient | undefined;
  /** The judge's scale. @default [1, 5] */
  readonly scale?: JudgeScale | undefined;
  /** The judge's pass mark, on its scale. @default the scale's midpoint, rounded up */
  readonly passAt?: number | undefined;
  /** @default 'judge' */
  readonly name?: string | undefined;
  /** Which node's output to judge. @default the chain's last node */
  readonly node?: string | undefined;
  /**
   * A field inside that node's output to judge instead of the whole output (`'answer'`, `'a.b[0]'` or a list
   * of keys and indexes), as for every scorer (see `ScorerOptions.path`). An output without it scores 0.
   * @default the whole output
   */
  readonly path?: ScorerOptions['path'];
  /** Pass mark of the normalized score. @default `passAt` normalized, so the row passes when the judge says so */
  readonly threshold?: number | undefined;
  readonly temperature?: number | undefined;
  readonly maxTokens?: number | undefined;
}

const JudgeItem = z.object({ input: z.unknown(), output: z.unknown(), expected: z.unknown() });

/**
 * A {@link Scorer} backed by an LLM judge: for each row it runs a one-node chain with the {@link judge} agent,
 * which sees the row's output as the answer and `{ input, expected }` as the task, and scores it on `scale`.
 * The score is normalized to [0, 1] (`(score - min) / (max - min)`), the judge's reasons are the `reason`,
 * and the default threshold is `passAt` normalized. A failed judge call throws (the row is an error). The
 * judge's tokens are metered by its `client`, not in the row's usage.
 *
 * @example
 * ```ts
 * const scorers = [exactMatch(), judgeScorer({ rubric: 'Answers the question correctly.', scale: [0, 10], passAt: 7 })];
 * ```
 * @throws {InvalidOptionError} for an empty rubric, a bad scale, a `passAt` outside it, a bad threshold, node
 *   or path.
 */
export function judgeScorer(options: JudgeScorerOptions): Scorer {
  const { rubric, scale = defaultJudgeScale, model, client, temperature, maxTokens } = options;
  const passAt = options.passAt ?? defaultPassAt(scale);
  const spec = judge({ rubric, scale, passAt, temperature, maxTokens }); // validates rubric, scale, passAt
  const [min, max] = scale;
  const normalize = (score: number): number => (score - min) / (max - min);
  const criteria = typeof rubric === 'string' ? [rubric] : [...rubric];
  const threshold = options.threshold ?? normalize(passAt);
  if (!(typeof threshold === 'number' && threshold >= 0 && threshold <= 1)) {
    throw new InvalidOptionError('judgeScorer.threshold', threshold, 'a number within [0, 1]');
  }
  const grade = chain({ name: 'judge-scorer', input: JudgeItem, model, client })
    .prompt('verdict', {
      ...spec,
      variables: ({ input }) => ({
        candidate: text(input.output),
        task: text(
          input.expected === undefined
            ? { input: input.input }
            : { input: input.input, expected: input.expected },
        ),
        criteria,
        min,
        max,
        passAt,
      }),
    })
    .build();
  return scorer(
    options.name ?? 'judge',
    async ({ input, output, expected, signal }): Promise<ScoreResult> => {
      const { outputs } = await grade.run({ input, output, expected }, { signal });
      const { score, reasons } = outputs.verdict;
      const normalized = Math.min(1, Math.max(0, normalize(score)));
      const why = reasons.length === 0 ? '' : `: ${reasons.join('; ')}`;
      return { score: normalized, reason: `${score} on ${min}–${max}${why}` };
    },
    { node: options.node, threshold, path: options.path },
  );
}

/** A string as is, anything else as indented JSON. */
function text(value: unknown): string {
  if (typeof value === 'string') return value;
  const json: unknown = JSON.stringify(value, null, 2);
  return typeof json === 'string' ? json : `(${typeof value})`;
}
