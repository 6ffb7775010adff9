/**
 * Structured output: a zod schema becomes the JSON Schema sent to the provider, and the reply goes
 * parse → validate → typed error. One place, so every provider and every chain node behaves the same.
 */
import { z } from 'zod';
import { InvalidOptionError, SymphonizerError, errorMessage } from '../core/errors.ts';
import type { JsonOutputSpec } from './types.ts';
import type { ProviderErrorCode } from './errors.ts';

/** One schema problem of a reply, as zod reported it. */
export interface OutputIssue {
  /** Where in the reply, e.g. `items[2].title` (empty for the root). */
  readonly path: string;
  readonly message: string;
  readonly code: string;
}

/** How a reply failed: it was not JSON at all, or it was JSON that broke the schema. */
export type OutputFailureKind = 'parse' | 'schema';

/** Most issues kept on an {@link OutputValidationError}. */
export const maxReportedIssues = 10;

/**
 * The model's reply did not parse as JSON or did not match the output schema (after any re-asks).
 * Carries the raw text so nothing is lost, and the first zod issues with their paths.
 */
export class OutputValidationError extends SymphonizerError<ProviderErrorCode> {
  /** `parse` (not JSON) or `schema` (JSON that broke the schema). */
  readonly kind: OutputFailureKind;
  /** The model's raw reply. */
  readonly rawText: string;
  /** The first {@link maxReportedIssues} schema issues (empty for a parse failure). */
  readonly issues: readonly OutputIssue[];
  /** `provider:model` that answered. */
  readonly modelId: string;
  /** The chain node that made the call, when known. */
  readonly nodeKey: string | undefined;

  constructor(init: {
    kind: OutputFailureKind;
    rawText: string;
    issues: readonly OutputIssue[];
    modelId: string;
    nodeKey?: string | undefined;
    cause?: unknown;
  }) {
    const where = init.nodeKey === undefined ? init.modelId : `node "${init.nodeKey}" (${init.modelId})`;
    const detail =
      init.kind === 'parse'
        ? 'the reply is not valid JSON'
        : `the reply does not match the schema: ${init.issues
            .slice(0, 3)
            .map((i) => `${i.path === '' ? '(root)' : i.path}: ${i.message}`)
            .join('; ')}${init.issues.length > 3 ? `; and ${init.issues.length - 3} more` : ''}`;
    super('output_validation', `Output of ${where} failed validation: ${detail}.`, {
      cause: init.cause,
      hint: 'raise repairAttempts, loosen the schema, or make the prompt state the format',
    });
    this.kind = init.kind;
    this.rawText = init.rawText;
    this.issues = init.issues;
    this.modelId = init.modelId;
    this.nodeKey = init.nodeKey;
  }
}

const namePattern = /^[a-zA-Z0-9_-]{1,64}$/;

/**
 * The provider-side output spec of a zod schema (JSON Schema draft 2020-12, as zod 4 emits it).
 * For OpenAI strict mode, make optional fields `.nullable()` instead: strict mode wants every key required.
 *
 * A schema with a `.transform()` has no JSON Schema for its output; then the schema of its *input* is sent
 * (what the model must write, before the transform runs), with objects closed (`additionalProperties:
 * false`) as in the output form.
 * @throws {InvalidOptionError} when `name` is not `[a-zA-Z0-9_-]{1,64}`, or when the schema has no JSON
 *   Schema form at all (e.g. `z.date()`, `z.bigint()`), naming `schema`.
 */
export function toJsonOutputSpec(schema: z.ZodType, name = 'output', description?: string): JsonOutputSpec {
  if (!namePattern.test(name)) {
    throw new InvalidOptionError('schemaName', name, 'a name of 1 to 64 letters, digits, `_` or `-`');
  }
  const jsonSchema = jsonSchemaOf(schema);
  delete jsonSchema.$schema;
  return description === undefined ? { name, schema: jsonSchema } : { name, schema: jsonSchema, description };
}

function jsonSchemaOf(schema: z.ZodType): Record<string, unknown> {
  try {
    return z.toJSONSchema(schema);
  } catch {
    // Most likely a transform, which only has an input form: fall through to it.
  }
  try {
    return z.toJSONSchema(schema, {
      io: 'input',
      override: ({ jsonSchema }) => {
        const node = jsonSchema as Record<string, unknown>;
        if (node.type === 'object' && node.additionalProperties === undefined) {
          node.additionalProperties = false;
        }
      },
    });
  } catch (error) {
    throw new InvalidOptionError(
      'schema',
      schema,
      `a zod schema with a JSON Schema form (${errorMessage(error)})`,
      { cause: error },
    );
  }
}

/** The result of {@link parseStructuredOutput}. */
export type ParsedOutput<T> =
  | { readonly ok: true; readonly value: T }
  | {
      readonly ok: false;
      readonly kind: OutputFailureKind;
      readonly issues: readonly OutputIssue[];
      readonly cause: unknown;
    };

/**
 * Parses a reply and validates it against `schema`. Uses the provider's already parsed JSON when there is
 * one; otherwise parses the text, tolerating a Markdown code fence around it.
 */
export function parseStructuredOutput<T>(
  schema: z.ZodType<T>,
  text: string,
  json?: unknown,
): ParsedOutput<T> {
  let value: unknown = json;
  if (value === undefined) {
    try {
      value = JSON.parse(stripFence(text));
    } catch (error) {
      return { ok: false, kind: 'parse', issues: [], cause: error };
    }
  }
  const result = schema.safeParse(value);
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, kind: 'schema', issues: zodIssues(result.error), cause: result.error };
}

/** The feedback sent with a re-ask, so the model can fix its reply. */
export function repairFeedback(error: OutputValidationError): string {
  if (error.kind === 'parse') {
    return 'Your previous reply was not valid JSON. Reply again with only a JSON value that matches the requested schema, with no prose and no code fence.';
  }
  const issues = error.issues.map((i) => `- ${i.path === '' ? '(root)' : i.path}: ${i.message}`).join('\n');
  return `Your previous reply did not match the requested JSON schema:\n${issues}\nReply again with only corrected JSON.`;
}

function stripFence(text: string): string {
  const trimmed = text.trim();
  const fenced = /^```(?:json)?\s*\n([\s\S]*?)\n?```$/i.exec(trimmed);
  return fenced?.[1] ?? trimmed;
}

/**
 * zod issues as {@link OutputIssue}s (`path` like `items[2].title`, empty for the root), at most `max`: the
 * one shape every layer reports schema problems in (outputs, chain inputs, dataset rows, tool arguments).
 */
export function zodIssues(error: z.ZodError, max = maxReportedIssues): OutputIssue[] {
  return error.issues.slice(0, max).map((issue) => ({
    path: formatIssuePath(issue.path),
    message: issue.message,
    code: issue.code,
  }));
}

/** A zod issue path as text: `items[2].title`, empty for the root. */
export function formatIssuePath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}
