/**
 * The content hash of a chain's definition: two processes that load the same chain module get the same
 * hash, and any change to what a run would do (a node, a dependency, a model, a template's text, a schema,
 * a parameter, a tool, a prompt function's source) gives another one. Workers use it to refuse a job made
 * for another version of a chain.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { TemplateLoader } from '../prompts/template-loader.ts';
import { defaultTemplateLoader } from '../prompts/template-loader.ts';
import type { ChainNode } from './node-settings.ts';

/** A zod schema as JSON Schema, or a marker when it cannot be represented. */
function schemaJson(schema: z.ZodType): unknown {
  try {
    return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });
  } catch {
    return '(unrepresentable schema)';
  }
}

/** A template's text: an inline template is its own text; a named one is the file the loader resolves. */
function templateText(template: string, templates: TemplateLoader | undefined): string {
  try {
    return (templates ?? defaultTemplateLoader).load(template).source;
  } catch {
    // Not found or invalid: the run would fail the same way; hash the name.
    return `(unresolved) ${template}`;
  }
}

/** JSON with object keys sorted, so that key order never changes a hash. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

/**
 * @internal The hex SHA-256 of a chain's definition: its name, input schema and, per node in order, its
 * settings (kind, model, template name, system, parameters, output schema name, tool names, steps), the
 * nodes it runs after, its template's text, its output schema as JSON Schema, the source text of its
 * `prompt` and `variables` functions and, for each tool, its name, description, argument schema and the
 * source of its `run`. Template partials, and values a function closes over, are not included.
 */
export function chainDefinitionHash(
  name: string,
  input: z.ZodType,
  nodes: Iterable<ChainNode>,
  templates: TemplateLoader | undefined,
): string {
  const described = [...nodes].map((node) => ({
    name: node.name,
    settings: node.settings,
    after: node.after,
    template: node.settings.template === undefined ? null : templateText(node.settings.template, templates),
    schema: node.schema === undefined ? null : schemaJson(node.schema),
    prompt: node.prompt === undefined ? null : String(node.prompt),
    variables: node.variables === undefined ? null : String(node.variables),
    tools: node.tools.map((t) => ({
      name: t.name,
      description: t.description,
      input: t.parameters ?? schemaJson(t.input),
      // The tool's code, read as text (never called here).
      // eslint-disable-next-line @typescript-eslint/unbound-method -- only its source is read
      run: String(t.run),
    })),
    // A tool source's tools are the server's: what names the server (never a secret) is hashed.
    ...(node.toolSources.length === 0 ? {} : { toolSources: node.toolSources.map((s) => s.fingerprint) }),
  }));
  return createHash('sha256')
    .update(canonical({ name, input: schemaJson(input), nodes: described }))
    .digest('hex');
}
