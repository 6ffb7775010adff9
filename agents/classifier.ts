/**
 * `classifier`: picks one of a fixed set of labels for a text, with a confidence and a reason. The label is
 * typed as the union of the given labels.
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

/**
 * The output schema of a classifier over `labels`: `{ reason, label, confidence }`, `label` one of `labels`,
 * `confidence` in `[0, 1]`. (`reason` comes first so the model reasons before it labels.)
 *
 * @example
 * ```ts
 * const Sentiment = classificationSchema(['positive', 'negative'] as const);
 * type Sentiment = z.output<typeof Sentiment>; // { reason: string; label: 'positive' | 'negative'; confidence: number }
 * ```
 */
export function classificationSchema<const L extends readonly string[]>(labels: L) {
  return z.object({
    reason: z.string().describe('One or two sentences: why this label fits.'),
    label: z.enum(labels).describe('The label that fits best.'),
    confidence: z.number().min(0).max(1).describe('How sure you are, from 0 (a guess) to 1 (certain).'),
  });
}

/** The zod schema of a classifier's output over labels `L`. */
export type ClassificationSchema<L extends readonly string[]> = ReturnType<typeof classificationSchema<L>>;

/** A classifier's output: `label` is one of `L`. */
export interface Classification<L extends string> {
  /** Why the label fits, in a sentence or two. */
  readonly reason: string;
  /** The chosen label. */
  readonly label: L;
  /** From 0 (a guess) to 1 (certain). */
  readonly confidence: number;
}

/** Options of {@link classifier}. */
export interface ClassifierOptions<L extends readonly string[], F extends string> extends CommonAgentOptions {
  /** The labels to choose from: non-empty, distinct, non-empty strings. */
  readonly labels: L;
  /** What each label means, where its name does not say enough. */
  readonly descriptions?: Readonly<Partial<Record<L[number], string>>> | undefined;
  /** The node whose output to classify (a string, or anything else as JSON). @default the chain input */
  readonly from?: F | undefined;
  /** Extra instructions, e.g. `'Sarcasm counts as negative.'` */
  readonly instructions?: string | undefined;
}

/**
 * A classifier node: reads `from` (or the chain input: a string, its `text` field, or the whole input as JSON)
 * and returns `{ reason, label, confidence }` with `label` typed as the union of `labels`. Template:
 * `agents/classifier`.
 *
 * @example
 * ```ts
 * const triage = chain({ input: z.object({ text: z.string() }) })
 *   .prompt('kind', classifier({ labels: ['bug', 'feature', 'question'], descriptions: { bug: 'something broke' } }))
 *   .build();
 * const { outputs } = await triage.run({ text: 'The export button does nothing.' });
 * outputs.kind.label; // 'bug' | 'feature' | 'question'
 * ```
 * @throws {InvalidOptionError} for no labels, an empty label, or a label given twice.
 */
export function classifier<const L extends readonly string[], const F extends string = never>(
  options: ClassifierOptions<L, F>,
): AgentNodeSpec<Reads<F>, ClassificationSchema<L>> {
  const { labels, from, instructions } = options;
  if (!Array.isArray(labels) || labels.length === 0) {
    throw new InvalidOptionError('classifier.labels', labels, 'a non-empty array of labels');
  }
  for (const [i, label] of labels.entries()) {
    if (typeof label !== 'string' || label.trim() === '') {
      throw new InvalidOptionError(`classifier.labels[${i}]`, label, 'a non-empty string');
    }
    if (labels.indexOf(label) !== i) {
      throw new InvalidOptionError(`classifier.labels[${i}]`, label, 'a label not given before');
    }
  }
  const descriptions: Readonly<Record<string, string | undefined>> = options.descriptions ?? {};
  const choices = labels.map((name) => ({ name, description: descriptions[name] ?? null }));
  return {
    ...commonSpec(options),
    after: afterOf(from),
    template: 'agents/classifier',
    variables: (context) => ({
      text: readText(context, from),
      labels: choices,
      instructions: instructions ?? null,
    }),
    output: classificationSchema(labels),
    schemaName: 'classification',
  };
}
