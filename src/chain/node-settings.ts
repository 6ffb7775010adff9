/**
 * A chain node's definition, in one place: its settings (kind, model, template, parameters, output schema
 * name, tools, steps) are the JSON payload of the node's DAGNote, which the runner reads back; its hooks
 * (prompt and variables functions, the zod output schema, the tools' code) sit beside them, since they are
 * not JSON.
 */
import type { z } from 'zod';
import type { Json } from '../core/json.ts';
import { isToolSource, type Tool, type ToolSource } from './tool.ts';
import type { AgentSpec, PromptSpec } from './types.ts';

/** A node kind: one model call, or a tool-calling loop. */
export type NodeKind = 'prompt' | 'agent';

/** The type-erased spec of a node, as the builder took it (its generics guarantee the types at its boundary). */
export type AnySpec = PromptSpec<unknown, Record<string, unknown>, string, z.ZodType | undefined> &
  Partial<Pick<AgentSpec<unknown, Record<string, unknown>, string, undefined>, 'tools' | 'maxSteps'>>;

/** A node as the builder adds it. */
export interface NodeEntry {
  readonly name: string;
  readonly kind: NodeKind;
  readonly spec: AnySpec;
}

/**
 * The settings of a node: the DAGNote payload, so that what a graph shows, what is hashed and what the runner
 * calls with are the same values. Keys are absent when the node leaves them to the defaults.
 */
export interface NodeSettings {
  readonly [key: string]: Json | undefined;
  readonly kind: NodeKind;
  /** `provider:model`: the node's own, else the chain's. */
  readonly model: string;
  readonly template?: string;
  readonly system?: string;
  readonly temperature?: number;
  readonly maxTokens?: number;
  /** Prompt caching, when the node sets it (`'auto'` otherwise). */
  readonly cache?: 'auto' | 'system' | false;
  /** The output schema's name (the node name unless `schemaName` says otherwise), when it has one. */
  readonly output?: string;
  /** Tool names, for an agent (a tool source as `<name>:*`). */
  readonly tools?: string[];
  readonly maxSteps?: number;
}

/** A node of a built chain: its settings, and the hooks that are not JSON. */
export interface ChainNode {
  readonly name: string;
  readonly settings: NodeSettings;
  /** Names of the nodes it runs after. */
  readonly after: readonly string[];
  readonly prompt: AnySpec['prompt'];
  readonly variables: AnySpec['variables'];
  /** The node's conversation, when it has one. */
  readonly messages: AnySpec['messages'];
  readonly schema: z.ZodType | undefined;
  readonly tools: readonly Tool[];
  /** The agent's tool sources (MCP servers), listed when it runs. */
  readonly toolSources: readonly ToolSource[];
}

/** The settings of `entry` in a chain whose nodes default to `chainModel`. */
export function nodeSettings(entry: NodeEntry, chainModel: string): NodeSettings {
  const spec = entry.spec;
  const settings: Record<string, Json> = { kind: entry.kind, model: spec.model ?? chainModel };
  if (spec.template !== undefined) settings.template = spec.template;
  if (spec.system !== undefined) settings.system = spec.system;
  if (spec.temperature !== undefined) settings.temperature = spec.temperature;
  if (spec.maxTokens !== undefined) settings.maxTokens = spec.maxTokens;
  if (spec.cache !== undefined) settings.cache = spec.cache;
  if (spec.output !== undefined) settings.output = spec.schemaName ?? entry.name;
  if (spec.tools !== undefined) {
    settings.tools = spec.tools.map((t) => (isToolSource(t) ? `${t.name}:*` : t.name));
  }
  if (spec.maxSteps !== undefined) settings.maxSteps = spec.maxSteps;
  return settings as NodeSettings;
}

/** The node of a built chain for `entry`, with `settings` as its DAGNote froze them. */
export function chainNode(entry: NodeEntry, settings: NodeSettings): ChainNode {
  return {
    name: entry.name,
    settings,
    after: entry.spec.after ?? [],
    prompt: entry.spec.prompt,
    variables: entry.spec.variables,
    messages: entry.spec.messages,
    schema: entry.spec.output,
    tools: (entry.spec.tools ?? []).filter((t): t is Tool => !isToolSource(t)),
    toolSources: (entry.spec.tools ?? []).filter(isToolSource),
  };
}
