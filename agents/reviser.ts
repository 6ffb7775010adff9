/**
 * `reviser`: rewrites a draft so that it fixes what a `critic` found.
 */
import { commonSpec, readText, type AgentNodeSpec, type CommonAgentOptions, type Reads } from './common.ts';
import type { Critique } from './critic.ts';

/** Options of {@link reviser}. */
export interface ReviserOptions<C extends string, D extends string> extends CommonAgentOptions {
  /** The node whose output is the {@link Critique}: a `critic` node (the chain checks its output type). */
  readonly critique: C;
  /** The node whose output is the draft. @default the chain input (a string, its `text` field, or JSON) */
  readonly draft?: D | undefined;
  /** Extra instructions, e.g. `'Keep it under 100 words.'` */
  readonly instructions?: string | undefined;
}

/**
 * A reviser node: reads the draft (`draft`, or the chain input) and the `critique` of a {@link critic} node,
 * and returns the revised draft as text (only the text, no commentary). Template: `agents/reviser`. The chain
 * refuses at compile time a `critique` node whose output is not a {@link Critique}.
 *
 * @example
 * ```ts
 * const edit = chain({ input: z.object({ text: z.string() }) })
 *   .prompt('critique', critic())
 *   .prompt('revised', reviser({ critique: 'critique', instructions: 'Keep the tone.' }))
 *   .build();
 * const { outputs } = await edit.run({ text: 'Tides is caused by the moon.' });
 * outputs.revised; // string
 * ```
 */
export function reviser<const C extends string, const D extends string = never>(
  options: ReviserOptions<C, D>,
): AgentNodeSpec<Reads<D> & Reads<C, Critique>, undefined> {
  const { critique, draft, instructions } = options;
  const after: readonly (C | D)[] = draft === undefined ? [critique] : [draft, critique];
  return {
    ...commonSpec(options),
    after,
    template: 'agents/reviser',
    variables: (context) => {
      const found: Critique = context[critique];
      return {
        draft: readText(context, draft),
        issues: found.issues,
        score: found.score,
        instructions: instructions ?? null,
      };
    },
  };
}
