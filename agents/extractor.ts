/**
 * `extractor`: pulls structured data out of a text, into the caller's zod schema.
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

/** Options of {@link extractor}. */
export interface ExtractorOptions<S extends z.ZodType, F extends string> extends CommonAgentOptions {
  /** What to extract: the output schema. `.describe()` on its fields tells the model what each one means. */
  readonly schema: S;
  /** The node whose output to read (a string, or anything else as JSON). @default the chain input */
  readonly from?: F | undefined;
  /** Extra instructions, e.g. `'Dates as YYYY-MM-DD; leave unknown fields null.'` */
  readonly instructions?: string | undefined;
  /** Name of the schema sent to the provider. @default 'extraction' */
  readonly schemaName?: string | undefined;
}

/** What an extractor with schema `S` outputs. */
export type Extraction<S extends z.ZodType> = z.output<S>;

/** One field of an object schema as the extractor's prompt lists it. */
export interface ExtractionField {
  /** The field's key. */
  readonly name: string;
  /** The field's `.describe()` text, or `null`. */
  readonly description: string | null;
}

/**
 * The top-level fields of an object schema with their descriptions (what the extractor's prompt lists);
 * empty for any other schema.
 *
 * @example
 * ```ts
 * extractionFields(z.object({ born: z.number().describe('Year of birth') })); // [{ name: 'born', description: 'Year of birth' }]
 * ```
 */
export function extractionFields(schema: z.ZodType): readonly ExtractionField[] {
  if (!(schema instanceof z.ZodObject)) return [];
  return Object.entries(schema.shape as Record<string, z.ZodType>).map(([name, field]) => ({
    name,
    description: field.description ?? null,
  }));
}

/**
 * An extractor node: reads `from` (or the chain input: a string, its `text` field, or the whole input as JSON)
 * and returns the data `schema` describes, validated and typed as `z.output<typeof schema>` (invalid answers
 * are re-asked with the validation errors). Template: `agents/extractor`.
 *
 * @example
 * ```ts
 * const Person = z.object({ name: z.string(), born: z.number().int().describe('Year of birth') });
 * const people = chain({ input: z.object({ text: z.string() }) })
 *   .prompt('person', extractor({ schema: Person, instructions: 'Use the full name.' }))
 *   .build();
 * const { outputs } = await people.run({ text: 'Ada Lovelace was born in 1815.' });
 * outputs.person.born; // number
 * ```
 * Give it tools by spreading it into an agent node: `.agent('person', { ...extractor({ schema: Person }), tools: [lookup] })`.
 * @throws {InvalidOptionError} when `schema` is not a zod schema.
 */
export function extractor<S extends z.ZodType, const F extends string = never>(
  options: ExtractorOptions<S, F>,
): AgentNodeSpec<Reads<F>, S> {
  const { schema, from, instructions } = options;
  if (!(schema instanceof z.ZodType))
    throw new InvalidOptionError('extractor.schema', schema, 'a zod schema');
  const fields = extractionFields(schema);
  return {
    ...commonSpec(options),
    after: afterOf(from),
    template: 'agents/extractor',
    variables: (context) => ({ text: readText(context, from), instructions: instructions ?? null, fields }),
    output: schema,
    schemaName: options.schemaName ?? 'extraction',
  };
}
