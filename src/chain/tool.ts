import { z } from 'zod';
import { InvalidOptionError } from '../core/errors.ts';
import type { ToolDefinition } from '../providers/types.ts';

/** A function an agent may call, with zod-typed arguments. */
export interface Tool<A = unknown, R = unknown> {
  /** `[a-zA-Z0-9_-]{1,64}`, unique within an agent. */
  readonly name: string;
  /** What it does and when to use it: the model reads this. */
  readonly description: string;
  /** zod schema of the arguments object. */
  readonly input: z.ZodType<A>;
  /** Does the work; what it returns is sent back to the model as JSON (a string as is). */
  run(args: A, context: { readonly signal: AbortSignal }): R | Promise<R>;
  /**
   * The JSON Schema of the arguments sent to the provider, when it is not `input`'s own (an MCP tool sends
   * its server's schema as it is; `input` then validates against it).
   */
  readonly parameters?: Readonly<Record<string, unknown>> | undefined;
}

/**
 * Tools an agent gets when it runs rather than when the chain is built, e.g. an MCP server's
 * (`mcpTools()`): listed before each model turn (the source caches the list), so a changed list reaches the
 * next turn.
 */
export interface ToolSource {
  readonly kind: 'tool-source';
  /** Names the source in errors, in the node's settings (`<name>:*`) and in graphs. */
  readonly name: string;
  /** What the chain's definition hash includes for the source (never a secret). */
  readonly fingerprint: string;
  /** The tools the source offers now. */
  tools(signal: AbortSignal): Promise<readonly Tool[]>;
}

/** True for a {@link ToolSource} (as opposed to a {@link Tool}). */
export function isToolSource(value: Tool | ToolSource): value is ToolSource {
  return (value as Partial<ToolSource>).kind === 'tool-source';
}

const toolName = /^[a-zA-Z0-9_-]{1,64}$/;

/**
 * Defines a tool; the arguments' type comes from the zod schema.
 *
 * @example
 * ```ts
 * const add = tool({
 *   name: 'add',
 *   description: 'Adds two numbers.',
 *   input: z.object({ a: z.number(), b: z.number() }),
 *   run: ({ a, b }) => a + b,
 * });
 * ```
 * @throws {InvalidOptionError} for a bad name, description or schema.
 */
export function tool<S extends z.ZodType, R>(definition: {
  readonly name: string;
  readonly description: string;
  readonly input: S;
  readonly run: (args: z.output<S>, context: { readonly signal: AbortSignal }) => R | Promise<R>;
}): Tool<z.output<S>, R> {
  if (!toolName.test(definition.name)) {
    throw new InvalidOptionError(
      'tool.name',
      definition.name,
      'a name of 1 to 64 letters, digits, `_` or `-`',
    );
  }
  if (typeof definition.description !== 'string' || definition.description.length === 0) {
    throw new InvalidOptionError('tool.description', definition.description, 'a non-empty string', {
      hint: `tell the model what "${definition.name}" does`,
    });
  }
  if (!(definition.input instanceof z.ZodType)) {
    throw new InvalidOptionError('tool.input', definition.input, 'a zod schema');
  }
  if (typeof definition.run !== 'function')
    throw new InvalidOptionError('tool.run', definition.run, 'a function');
  return Object.freeze({
    name: definition.name,
    description: definition.description,
    input: definition.input as z.ZodType<z.output<S>>,
    run: definition.run,
  });
}

/** The provider-side definition of a tool (JSON Schema of its arguments). */
export function toolDefinition(t: Tool): ToolDefinition {
  if (t.parameters !== undefined) {
    return { name: t.name, description: t.description, parameters: { ...t.parameters } };
  }
  const schema = z.toJSONSchema(t.input, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  delete schema.$schema;
  return { name: t.name, description: t.description, parameters: schema };
}
