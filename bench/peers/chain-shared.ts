/**
 * What every variant of the chain peer bench (bench/peers/chain.bench.ts) shares: the 5-call fan-out/fan-in
 * chain's prompts, the fixed answers of the zero-latency models, the structured-output schema and a pool
 * that keeps a fixed number of chains in flight.
 *
 * The chain: `plan` (reads the input) fans out to `facts`, `risks` and `ideas` (each reads `plan`), which fan
 * in to `report` (reads all three): 5 model calls per chain. In `structured` mode every call asks for a
 * {@link Section} object; in `text` mode every call answers free text.
 */
// The package's own zod (the root install), not bench/peers/node_modules/zod: `chain()` checks its schemas
// with `instanceof` against that copy. The AI SDK and LangChain read zod 4 schemas structurally, so all
// variants share this one schema.
import { z } from '../../node_modules/zod/index.js';

/** `text`: every call answers free text; `structured`: every call answers a {@link Section}, validated. */
export type Mode = 'text' | 'structured';

export const MODES: readonly Mode[] = ['text', 'structured'];

/** Model calls per chain. */
export const CALLS_PER_CHAIN = 5;

/** The three parallel nodes between `plan` and `report`. */
export const BRANCHES = ['facts', 'risks', 'ideas'] as const;

/** The structured output of every call in `structured` mode. */
export const Section = z.object({
  title: z.string(),
  points: z.array(z.string()),
  confidence: z.number().min(0).max(1),
});

/** A {@link Section}. */
export type Section = z.infer<typeof Section>;

/** The fixed answer of every text call. */
export const TEXT_ANSWER =
  'Tides follow the moon: two highs and two lows a day, springs at full and new moon.';

/** The fixed answer of every structured call, as the JSON text a model sends (each framework parses it). */
export const JSON_ANSWER = JSON.stringify({
  title: 'Tides',
  points: ['Two highs and two lows a day', 'Spring tides at full and new moon', 'Neap tides at quarters'],
  confidence: 0.9,
} satisfies Section);

/** The chain's input. */
export interface ChainInputValue {
  readonly topic: string;
}

/** The input of chain `i`. */
export const inputOf = (i: number): ChainInputValue => ({ topic: `tides ${i}` });

/** What a node's prompt is built from: a text answer, or a structured one (its title is quoted). */
const quote = (value: string | Section): string => (typeof value === 'string' ? value : value.title);

/** The prompt of `plan`. */
export const planPrompt = (input: ChainInputValue): string => `Plan a short report on ${input.topic}.`;

/** The prompt of one of the {@link BRANCHES}. */
export const branchPrompt = (branch: string, plan: string | Section): string =>
  `Write the ${branch} section of this plan: ${quote(plan)}`;

/** The prompt of `report`. */
export const reportPrompt = (
  facts: string | Section,
  risks: string | Section,
  ideas: string | Section,
): string =>
  `Merge these sections into a report.\nFacts: ${quote(facts)}\nRisks: ${quote(risks)}\nIdeas: ${quote(ideas)}`;

/** Throws unless `value` is the final output a chain of `mode` must produce. */
export function checkReport(mode: Mode, value: unknown): void {
  const ok =
    mode === 'text'
      ? value === TEXT_ANSWER
      : typeof value === 'object' && value !== null && JSON.stringify(value) === JSON_ANSWER;
  if (!ok) throw new Error(`unexpected ${mode} report: ${JSON.stringify(value)}`);
}

/**
 * Runs `count` chains with at most `concurrency` in flight (a new one starts as soon as one ends), the way the
 * peers without a scheduler of their own are driven. Rejects on the first failed chain.
 */
export async function pool(
  count: number,
  concurrency: number,
  runOne: (index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await runOne(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

/** One variant of the bench: `prepare` builds what is reused across chains and returns the batch runner. */
export interface ChainVariant {
  /** Builds the chain (and model) once; the returned function runs `count` chains, `concurrency` at once. */
  prepare(mode: Mode): Promise<(count: number, concurrency: number) => Promise<void>>;
}
