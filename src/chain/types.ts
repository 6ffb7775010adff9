/**
 * Types of the chain layer: node specs (what a prompt or agent node does), the typed context a node sees,
 * and the events a running chain emits.
 */
import type { z } from 'zod';
import type { NodeRecord } from '../core/composition.ts';
import type { NodeDoneStatus } from '../core/status.ts';
import type { CallOutput } from '../providers/call.ts';
import type { ToolCall } from '../providers/types.ts';
import type { UsageTotals } from '../providers/usage.ts';
import type { Tool } from './tool.ts';

/** What a node's hooks see: the chain input, and the output of each node it runs after, by name. */
export type NodeContext<I, O, D extends keyof O> = { readonly input: I } & { readonly [K in D]: O[K] };

/** A prompt as a function: plain user text, or a system and a user part. */
export type PromptFunction<C> = (
  context: C,
) => string | { readonly system?: string | undefined; readonly user: string };

/** What a prompt node does: one model call on a rendered prompt. */
export interface PromptSpec<I, O, D extends keyof O & string, S extends z.ZodType | undefined> {
  /** Nodes whose outputs this node needs; it runs after them. @default [] (runs first) */
  readonly after?: readonly D[] | undefined;
  /** `provider:model`. @default the chain's model */
  readonly model?: string | undefined;
  /**
   * A template in `prompts/` by name (`summarize`, `agents/judge`) or an inline Handlebars string. Its
   * variables are `input` and each predecessor's output by node name, plus what `variables` returns.
   * Give `template` or `prompt`.
   */
  readonly template?: string | undefined;
  /** The prompt as a typed function of the context; an alternative to `template`. */
  readonly prompt?: PromptFunction<NodeContext<I, O, D>> | undefined;
  /** Extra template variables, computed from the typed context. */
  readonly variables?: ((context: NodeContext<I, O, D>) => Readonly<Record<string, unknown>>) | undefined;
  /** System text, when the template or prompt gives none. */
  readonly system?: string | undefined;
  /** zod schema of the output; without it the output is the text. */
  readonly output?: S;
  /** Name of the output schema sent to the provider. @default the node name */
  readonly schemaName?: string | undefined;
  readonly temperature?: number | undefined;
  readonly maxTokens?: number | undefined;
}

/** What an agent node does: a tool-calling loop, then a (validated) final answer. */
export interface AgentSpec<
  I,
  O,
  D extends keyof O & string,
  S extends z.ZodType | undefined,
> extends PromptSpec<I, O, D, S> {
  /** Tools the model may call. */
  readonly tools: readonly Tool[];
  /** Most model turns that may call tools; then a final answer is asked for without tools. @default 5 */
  readonly maxSteps?: number | undefined;
}

/** The output type of a node spec. */
export type SpecOutput<S> = CallOutput<S>;

/** One tool call made by an agent, with its outcome. */
export interface AgentToolCall {
  readonly id: string;
  readonly name: string;
  readonly arguments: unknown;
  /** `ok: false` when the tool threw or its arguments were invalid; the message went back to the model. */
  readonly ok: boolean;
  readonly result: string;
}

/** One turn of an agent's loop. */
export interface AgentStep {
  readonly step: number;
  readonly text: string;
  readonly toolCalls: readonly AgentToolCall[];
}

/**
 * Events of a running chain, in order: `chain-start`, then per node `node-start` (again for each retry),
 * `token`, `retry`, `rate-limit-wait`, `agent-step`, `node-done`; last `chain-done`.
 */
export type ChainEvent<O = Record<string, unknown>> =
  | {
      readonly type: 'chain-start';
      readonly chain: string;
      readonly runId: string;
      readonly nodes: readonly string[];
    }
  | { readonly type: 'node-start'; readonly node: string; readonly attempt: number; readonly model: string }
  | { readonly type: 'token'; readonly node: string; readonly text: string }
  | {
      readonly type: 'retry';
      readonly node: string;
      readonly attempt: number;
      readonly delayMs: number;
      readonly reason: string;
      readonly kind: 'transport' | 'repair';
      /**
       * Present and true when the failed attempt had already streamed `token` events of this node (see
       * `ChainRunOptions.retryAfterText`): discard them; the next attempt streams the answer from the start.
       */
      readonly discardTokens?: true | undefined;
    }
  | {
      readonly type: 'rate-limit-wait';
      readonly node: string;
      readonly delayMs: number | undefined;
      readonly reason: string;
    }
  | { readonly type: 'agent-step'; readonly node: string; readonly step: AgentStep }
  | {
      readonly type: 'node-done';
      readonly node: string;
      readonly status: NodeDoneStatus;
      readonly output?: unknown;
      readonly usage?: UsageTotals | undefined;
      readonly error?: string | undefined;
    }
  | {
      readonly type: 'chain-done';
      readonly status: 'completed' | 'error' | 'cancelled';
      readonly outputs: Partial<O>;
      readonly usage: UsageTotals;
      readonly error?: string | undefined;
    };

/** The result of a completed chain run. */
export interface ChainResult<O> {
  readonly runId: string;
  /**
   * Every node's output, typed. This record, `usageByNode` and `steps` have a null prototype: their keys are
   * node names only (`'toString' in outputs` is false).
   */
  readonly outputs: O;
  /** One record per node end (retries included), as `Composition.trace()`. */
  readonly trace: readonly NodeRecord[];
  /** Tokens and cost of this run. */
  readonly usage: UsageTotals;
  /** Tokens and cost per node. */
  readonly usageByNode: Readonly<Record<string, UsageTotals>>;
  /** The tool-calling steps of each agent node. */
  readonly steps: Readonly<Record<string, readonly AgentStep[]>>;
  readonly elapsedMs: number;
  /** True when any answer came from the offline simulated model. */
  readonly simulated: boolean;
  /** Model calls answered by a response cache (they cost nothing). */
  readonly cachedCalls: number;
}

/** Per-run overrides, e.g. for prompt experiments: a model, template or parameters for named nodes. */
export interface NodeOverride {
  readonly model?: string | undefined;
  readonly template?: string | undefined;
  readonly temperature?: number | undefined;
  readonly maxTokens?: number | undefined;
}

/** A tool call request as the provider returned it. */
export type { ToolCall };
