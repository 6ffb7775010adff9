/**
 * A {@link CallSpec} as the provider-neutral {@link ModelRequest} one attempt sends. The JSON Schema of an
 * output schema is computed once per zod schema and name, not on every call.
 */
import type { z } from 'zod';
import { InvalidOptionError } from '../core/errors.ts';
import type { CallSpec } from './call.ts';
import { toJsonOutputSpec } from './structured-output.ts';
import type { ChatMessage, JsonOutputSpec, ModelRequest } from './types.ts';

/** Output specs by zod schema, then by schema name (a schema is mostly sent under one name). */
const outputSpecs = new WeakMap<z.ZodType, Map<string, JsonOutputSpec>>();

/**
 * The provider-side output spec of `schema` under `name`, as {@link toJsonOutputSpec} makes it, computed
 * once and then shared (deep-frozen, so no provider can change it for the next call).
 * @throws {InvalidOptionError} as {@link toJsonOutputSpec} (not cached: the next call throws again).
 */
export function cachedOutputSpec(schema: z.ZodType, name = 'output'): JsonOutputSpec {
  let byName = outputSpecs.get(schema);
  if (byName === undefined) {
    byName = new Map();
    outputSpecs.set(schema, byName);
  }
  let spec = byName.get(name);
  if (spec === undefined) {
    spec = deepFreeze(toJsonOutputSpec(schema, name));
    byName.set(name, spec);
  }
  return spec;
}

/** What one attempt adds to a spec: the resolved model, repair feedback, its signal and idle timeout. */
export interface RequestParts {
  /** The model id without its provider prefix. */
  readonly model: string;
  /** The re-ask messages after an invalid output, appended to the spec's messages. */
  readonly feedback?: readonly ChatMessage[] | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly streamIdleTimeoutMs?: number | undefined;
}

/**
 * The request one attempt of `spec` sends.
 * @throws {InvalidOptionError} for a spec with neither `prompt` nor `messages`, or a bad schema or name.
 */
export function toModelRequest(spec: CallSpec, parts: RequestParts): ModelRequest {
  let messages: readonly ChatMessage[];
  if (spec.messages !== undefined) messages = spec.messages;
  else if (typeof spec.prompt === 'string') messages = [{ role: 'user', content: spec.prompt }];
  else
    throw new InvalidOptionError('prompt', spec.prompt, 'a string, or give `messages`', {
      hint: `in the call to ${spec.model}`,
    });
  if (parts.feedback !== undefined) messages = [...messages, ...parts.feedback];
  return {
    model: parts.model,
    system: spec.system,
    messages,
    temperature: spec.temperature,
    maxTokens: spec.maxTokens,
    stop: spec.stop,
    tools: spec.tools,
    output: spec.schema === undefined ? undefined : cachedOutputSpec(spec.schema, spec.schemaName),
    signal: parts.signal,
    streamIdleTimeoutMs: parts.streamIdleTimeoutMs,
    cache: spec.cache,
    providerOptions: spec.providerOptions,
  };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
