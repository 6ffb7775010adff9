/**
 * The chain builder: {@link chain} starts one, each `.prompt()` / `.agent()` adds a node that sees the typed
 * outputs of the nodes it runs after, and `.build()` makes the {@link Chain}.
 */
import { z } from 'zod';
import { RESERVED_NODE_NAMES, ReservedNameError } from '../core/errors.ts';
import { Chain, type ChainOptions } from './chain.ts';
import { ChainDefinitionError } from './errors.ts';
import { isToolSource } from './tool.ts';
import type { AnySpec, NodeEntry, NodeKind } from './node-settings.ts';
import type { AgentSpec, PromptSpec, SpecOutput } from './types.ts';

type Simplify<T> = { [K in keyof T]: T[K] } & {};

const nodeName = /^[A-Za-z_][\w-]{0,63}$/;

/**
 * Starts a typed chain.
 *
 * @example
 * ```ts
 * const report = chain({ name: 'report', input: z.object({ topic: z.string() }) })
 *   .prompt('outline', { template: 'Outline a report on {{input.topic}}.', output: Outline })
 *   .prompt('draft', { after: ['outline'], prompt: ({ outline }) => `Write: ${outline.title}` })
 *   .build();
 * const { outputs } = await report.run({ topic: 'tides' }); // outputs.outline: z.infer<typeof Outline>
 * ```
 */
// eslint-disable-next-line @typescript-eslint/no-generated-empty-object-type -- a new chain has no outputs yet
export function chain<S extends z.ZodType>(options: ChainOptions<S>): ChainBuilder<S, Record<never, never>> {
  if (!(options.input instanceof z.ZodType)) {
    throw new ChainDefinitionError('chain({ input }) needs a zod schema for the input.', undefined, {
      hint: 'e.g. input: z.object({ topic: z.string() })',
    });
  }
  // eslint-disable-next-line @typescript-eslint/no-generated-empty-object-type -- as above
  return new ChainBuilder<S, Record<never, never>>(options, []);
}

/** Adds nodes to a chain; each call returns a new builder whose output type includes the new node. */
export class ChainBuilder<S extends z.ZodType, O extends Record<string, unknown>> {
  readonly #options: ChainOptions<S>;
  readonly #entries: readonly NodeEntry[];

  /** @internal Use {@link chain}. */
  constructor(options: ChainOptions<S>, entries: readonly NodeEntry[]) {
    this.#options = options;
    this.#entries = entries;
  }
  /**
   * Adds a prompt node: one model call on a rendered prompt, returning text or (with `output`) a validated,
   * typed value.
   * @throws {ChainDefinitionError} for a duplicate or bad name, an unknown `after` node, or no prompt.
   * @throws {ReservedNameError} for a name every JavaScript object already has as a key (`__proto__`,
   *   `constructor`, `toString`, ...: see `RESERVED_NODE_NAMES`), code `reserved_name`.
   */
  prompt<
    N extends string,
    const D extends keyof O & string = never,
    X extends z.ZodType | undefined = undefined,
  >(
    name: N extends keyof O ? never : N,
    spec: PromptSpec<z.output<S>, O, D, X>,
  ): ChainBuilder<S, Simplify<O & { readonly [K in N]: SpecOutput<X> }>> {
    return this.#add(name, 'prompt', spec);
  }

  /**
   * Adds an agent node: the model may call `tools` (zod-typed functions) in a loop of at most `maxSteps`
   * turns; tool errors go back to the model as tool results; then the final answer (validated against
   * `output` when given).
   * @throws {ChainDefinitionError} as {@link ChainBuilder.prompt}, or for duplicate tool names.
   */
  agent<
    N extends string,
    const D extends keyof O & string = never,
    X extends z.ZodType | undefined = undefined,
  >(
    name: N extends keyof O ? never : N,
    spec: AgentSpec<z.output<S>, O, D, X>,
  ): ChainBuilder<S, Simplify<O & { readonly [K in N]: SpecOutput<X> }>> {
    const names = new Set<string>();
    for (const t of spec.tools) {
      const key = isToolSource(t) ? `${t.name}:*` : t.name;
      if (names.has(key))
        throw new ChainDefinitionError(`Agent "${name}" has two tools named "${t.name}".`, name);
      names.add(key);
    }
    if (spec.maxSteps !== undefined && !(Number.isInteger(spec.maxSteps) && spec.maxSteps >= 1)) {
      throw new ChainDefinitionError(
        `Agent "${name}": maxSteps must be an integer >= 1, got ${String(spec.maxSteps)}.`,
        name,
      );
    }
    return this.#add(name, 'agent', spec);
  }

  /**
   * Finishes the chain.
   * @throws {ChainDefinitionError} when it has no node.
   */
  build(): Chain<S, O> {
    if (this.#entries.length === 0) {
      throw new ChainDefinitionError('A chain needs at least one node.', undefined, {
        hint: 'add .prompt(...) or .agent(...)',
      });
    }
    return new Chain<S, O>(this.#options, this.#entries);
  }

  #add<R>(name: string, kind: NodeKind, spec: object, _result?: R): R {
    const typed = spec as AnySpec;
    if (typeof name !== 'string' || !nodeName.test(name) || name === 'input') {
      throw new ChainDefinitionError(`Node name ${JSON.stringify(name)} is not allowed.`, name, {
        hint: 'use a letter, then letters, digits, _ or - (at most 64), and not "input"',
      });
    }
    if (RESERVED_NODE_NAMES.has(name)) throw new ReservedNameError(name);
    if (this.#entries.some((e) => e.name === name)) {
      throw new ChainDefinitionError(`The chain already has a node named "${name}".`, name);
    }
    for (const dep of typed.after ?? []) {
      if (!this.#entries.some((e) => e.name === dep)) {
        throw new ChainDefinitionError(
          `Node "${name}" runs after "${dep}", which is not in the chain (yet).`,
          name,
          {
            hint: `add "${dep}" before "${name}"; known: ${this.#entries.map((e) => e.name).join(', ') || 'none'}`,
          },
        );
      }
    }
    if (typed.template === undefined && typed.prompt === undefined && typed.messages === undefined) {
      throw new ChainDefinitionError(
        `Node "${name}" has neither a template nor a prompt (nor messages).`,
        name,
        {
          hint: 'give template: "name-or-inline {{handlebars}}", prompt: (context) => string or messages: (context) => ChatMessage[]',
        },
      );
    }
    const cache: unknown = typed.cache;
    if (cache !== undefined && cache !== 'auto' && cache !== 'system' && cache !== false) {
      throw new ChainDefinitionError(
        `Node "${name}": cache must be 'auto', 'system' or false, got ${JSON.stringify(cache)}.`,
        name,
        { hint: "leave it out for 'auto' (a prompt-cache breakpoint where the prefix is long enough)" },
      );
    }
    if (typed.messages !== undefined && typeof typed.messages !== 'function') {
      throw new ChainDefinitionError(
        `Node "${name}": messages must be a function of the node's context.`,
        name,
        {
          hint: 'e.g. messages: ({ input }) => input.history',
        },
      );
    }
    return new ChainBuilder(this.#options, [...this.#entries, { name, kind, spec: typed }]) as unknown as R;
  }
}
