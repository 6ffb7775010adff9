/**
 * The model call of a node in one run: its prompt rendered (a template with the context as variables, or
 * the prompt function on the typed context), with the node's settings under the run's overrides.
 */
import type { CallResult, CallSpec } from '../providers/call.ts';
import { defaultTemplateLoader, type TemplateLoader } from '../prompts/template-loader.ts';
import type { ChainNode } from './node-settings.ts';
import type { NodeOverride } from './types.ts';

/** What a node's prompt hooks see: the input and its predecessors' outputs by name. */
type AnyContext = Readonly<Record<string, unknown>> & { readonly input: unknown };

/**
 * The call node `node` makes in a run on `input`, given its predecessors' results (`inputs`, by name) and
 * the run's override of the node.
 * @throws what rendering throws (e.g. a `TemplateVariableError` naming the node).
 */
export function callSpecOf(
  node: ChainNode,
  input: unknown,
  inputs: Readonly<Record<string, unknown>>,
  override: NodeOverride | undefined,
  templates: TemplateLoader | undefined,
): CallSpec {
  const settings = node.settings;
  const context: Record<string, unknown> = { input };
  for (const dep of node.after) {
    if (dep in inputs) context[dep] = (inputs[dep] as CallResult).output;
  }
  const typedContext = context as AnyContext;
  let system = settings.system;
  let user: string;
  const template = override?.template ?? settings.template;
  if (template !== undefined) {
    const variables = { ...context, ...node.variables?.(typedContext) };
    const rendered = (templates ?? defaultTemplateLoader)
      .load(template)
      .render(variables, { nodeKey: node.name });
    system = rendered.system ?? system;
    user = rendered.user;
  } else {
    const prompt = (node.prompt as (c: AnyContext) => string | { system?: string | undefined; user: string })(
      typedContext,
    );
    if (typeof prompt === 'string') user = prompt;
    else {
      system = prompt.system ?? system;
      user = prompt.user;
    }
  }
  return {
    model: override?.model ?? settings.model,
    system,
    prompt: user,
    schema: node.schema,
    // Node names are valid schema names, so the node's own name needs no escaping.
    schemaName: node.schema === undefined ? undefined : settings.output,
    temperature: override?.temperature ?? settings.temperature,
    maxTokens: override?.maxTokens ?? settings.maxTokens,
  };
}
