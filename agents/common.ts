/**
 * What every ready agent shares: the node-spec type a factory returns, the options every factory accepts,
 * and how an agent turns the value it reads (an upstream node's output or the chain input) into prompt text.
 */
import type { z } from 'zod';
import type { PromptSpec } from '../src/chain/types.ts';

/**
 * The outputs an agent reads, keyed by the names of the nodes it runs after. `T` is the type it needs each of
 * them to have: the chain builder refuses (at compile time) a dependency whose output is not a `T`.
 */
export type Reads<D extends string, T = unknown> = { readonly [K in D]: T };

/**
 * The node spec an agent factory returns: a {@link PromptSpec} that runs after the nodes in `R` (its keys)
 * and reads their outputs (typed by `R`'s values), with output schema `X` (`undefined`: the output is text).
 *
 * It is written against any chain input (`unknown`) and only the outputs it reads, so it fits
 * `.prompt(name, spec)` of every chain whose earlier nodes include those names with outputs of those types.
 * It is a plain object: spread it to change anything, e.g. `.agent('x', { ...extractor({ schema }), tools })`
 * or `{ ...summarizer({ from: 'draft' }), after: ['draft', 'outline'] }`.
 */
export type AgentNodeSpec<
  R extends Readonly<Record<string, unknown>>,
  X extends z.ZodType | undefined,
> = PromptSpec<unknown, R, keyof R & string, X>;

/** Options every agent factory accepts. */
export interface CommonAgentOptions {
  /** `provider:model` of this node. @default the chain's model */
  readonly model?: string | undefined;
  /** Sampling temperature. @default the provider's */
  readonly temperature?: number | undefined;
  /** Most output tokens. @default the provider's */
  readonly maxTokens?: number | undefined;
}

/**
 * The text an agent works on: a string as is, anything else as indented JSON.
 *
 * @example
 * ```ts
 * asText('plain'); // 'plain'
 * asText({ a: 1 }); // '{\n  "a": 1\n}'
 * ```
 */
export function asText(value: unknown): string {
  if (typeof value === 'string') return value;
  // JSON.stringify returns undefined for undefined, functions and symbols, despite its declared `string`.
  const json = JSON.stringify(value, null, 2) as string | undefined;
  return json ?? String(value);
}

/**
 * The text an agent reads from the chain input when it is given no dependency: the input itself when it is a
 * string, else its `text` field when that is a string, else the whole input as JSON.
 *
 * @example
 * ```ts
 * inputText({ text: 'Tides are…', lang: 'en' }); // 'Tides are…'
 * ```
 */
export function inputText(input: unknown): string {
  if (typeof input === 'string') return input;
  if (typeof input === 'object' && input !== null && 'text' in input && typeof input.text === 'string') {
    return input.text;
  }
  return asText(input);
}

/**
 * The text an agent reads: the output of node `from` when it names one, else the chain input
 * ({@link inputText}).
 */
export function readText(context: { readonly input: unknown }, from: string | undefined): string {
  return from === undefined
    ? inputText(context.input)
    : asText((context as Readonly<Record<string, unknown>>)[from]);
}

/** `after` for a factory's optional dependency: `[from]`, or none. */
export function afterOf<F extends string>(...names: readonly (F | undefined)[]): readonly F[] {
  return names.filter((n): n is F => n !== undefined);
}

/** The parts of {@link CommonAgentOptions} a node spec takes as they are. */
export function commonSpec(options: CommonAgentOptions): CommonAgentOptions {
  return { model: options.model, temperature: options.temperature, maxTokens: options.maxTokens };
}
