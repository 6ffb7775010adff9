/**
 * Types of the chain layer: node specs (what a prompt or agent node does), the typed context a node sees,
 * and the events a running chain emits.
 */
import type { z } from 'zod';
import type { NodeRecord } from '../core/composition.ts';
import type { NodeDoneStatus } from '../core/status.ts';
import type { CallOutput } from '../providers/call.ts';
import type { ChatMessage, PromptCacheMode, ToolCall } from '../providers/types.ts';
import type { UsageTotals } from '../providers/usage.ts';
import type { Tool, ToolSource } from './tool.ts';

/** What a node's hooks see: the chain input, and the output of each node it runs after, by name. */
export type NodeContext<I, O, D extends keyof O> = { readonly input: I } & { readonly [K in D]: O[K] };

/** A prompt as a function: plain user text, or a system and a user part. */
export type PromptFunction<C> = (
  context: C,
) => string | { readonly system?: string | undefined; readonly user: string };

/**
 * A node's conversation as a function of its typed context: the history (system, user, assistant and tool
 * messages, oldest first) the node sends before its own prompt. See {@link PromptSpec.messages}.
 */
export type MessagesFunction<C> = (context: C) => readonly ChatMessage[];

/**
 * A value of which any part may be missing yet: objects with every key optional (deeply), arrays of
 * deep-partial items (the last one possibly incomplete), strings possibly cut short. The type of a
 * `partial-output` event's `partial`.
 */
export type DeepPartial<T> = T extends string | number | boolean | bigint | null | undefined
  ? T
  : T extends readonly (infer E)[]
    ? DeepPartial<E>[]
    : T extends object
      ? { [K in keyof T]?: DeepPartial<T[K]> }
      : T;

/** What a prompt node does: one model call on a rendered prompt. */
export interface PromptSpec<I, O, D extends keyof O & string, S extends z.ZodType | undefined> {
  /** Nodes whose outputs this node needs; it runs after them. @default [] (runs first) */
  readonly after?: readonly D[] | undefined;
  /** `provider:model`. @default the chain's model */
  readonly model?: string | undefined;
  /**
   * A template in `prompts/` by name (`summarize`, `agents/judge`) or an inline Handlebars string. Its
   * variables are `input` and each predecessor's output by node name, plus what `variables` returns.
   * Give `template` or `prompt`, or `messages` (alone or with either). A template may have
   * `{{!-- assistant --}}` parts (few-shot answers) and a `{{!-- history --}}` marker: see `messages`.
   */
  readonly template?: string | undefined;
  /** The prompt as a typed function of the context; an alternative to `template`. */
  readonly prompt?: PromptFunction<NodeContext<I, O, D>> | undefined;
  /**
   * The conversation the node continues (e.g. a chat's history), as a function of the typed context; with
   * or without `template`/`prompt`. The request's messages are, in order:
   *
   * 1. the template's turns before its `{{!-- history --}}` marker (few-shot `user`/`assistant` parts);
   * 2. these messages, as returned (validated: each needs a known `role` and a string `content`, a `tool`
   *    message a `toolCallId`; else an `InvalidMessagesError` naming the node and the index);
   * 3. the template's turns after the marker; a template without the marker has its last part, when it is a
   *    user part, after the history (so the rendered text is the newest user turn) and its other parts
   *    before it. A `prompt` function's text is the newest user turn. A part that renders empty adds no
   *    turn.
   *
   * The system text is the template's (or prompt's) system part, else `system`; a `system` message in the
   * history stays in the history (see `ChatMessage`). Without `template` and `prompt`, the node sends the
   * messages alone. The messages are part of the request, so they count in token estimates and in a
   * response cache's key.
   */
  readonly messages?: MessagesFunction<NodeContext<I, O, D>> | undefined;
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
  /**
   * Prompt caching of the node's calls: `'auto'`, `'system'` or `false` (see `PromptCacheMode`). It changes
   * what a call costs, never its answer, so it is not part of the response cache's key.
   * @default 'auto'
   */
  readonly cache?: PromptCacheMode | undefined;
}

/** What an agent node does: a tool-calling loop, then a (validated) final answer. */
export interface AgentSpec<
  I,
  O,
  D extends keyof O & string,
  S extends z.ZodType | undefined,
> extends PromptSpec<I, O, D, S> {
  /**
   * Tools the model may call: zod tools, and tool sources listed when the agent runs (an MCP server's
   * tools, `mcpTools()`); each of the agent's tools needs a name of its own.
   */
  readonly tools: readonly (Tool | ToolSource)[];
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
 * A `partial-output` event of a streamed node with an output schema: the output parsed so far from the
 * JSON received so far (incomplete strings, arrays and objects closed), typed as a deep-partial of the
 * node's output. Each one differs from the previous one of its node; the node's `node-done` then carries
 * the validated output. After a `retry` with `discardTokens`, the next partial starts over.
 */
export interface PartialOutputEvent<O> {
  readonly type: 'partial-output';
  readonly node: string;
  /** Narrow with {@link PartialOf} once `node` is known: `event.partial as PartialOf<typeof outputs, 'plan'>`. */
  readonly partial: DeepPartial<O[keyof O]>;
}

/** The type of the `partial` of node `K`'s `partial-output` events, in a chain whose outputs are `O`. */
export type PartialOf<O, K extends keyof O> = DeepPartial<O[K]>;

/**
 * Events of a running chain, in order: `chain-start`, then per node `node-start` (again for each retry),
 * `token`, `partial-output`, `tool-call`, `tool-result`, `retry`, `rate-limit-wait`, `agent-step`,
 * `node-done`; last `chain-done`.
 *
 * When a run streams (`Chain.stream()`, or `streamTokens: true`): a text node's answer arrives as `token`
 * events; a node with an output schema sends `partial-output` events instead; an agent node streams each
 * model turn's text as `token` events carrying the turn's `step` (the text of the turn that ends the loop
 * is the node's text output), and for each tool call a `tool-call` event when the model asks for it and a
 * `tool-result` event when the tool returns, then `agent-step` with the whole turn. A `retry` event with
 * `discardTokens` cancels the tokens (or partials) the failed attempt streamed: for an agent, those of
 * the turn in progress only (finished turns and their tools are never redone).
 */
export type ChainEvent<O = Record<string, unknown>> =
  | {
      readonly type: 'chain-start';
      readonly chain: string;
      readonly runId: string;
      readonly nodes: readonly string[];
    }
  | { readonly type: 'node-start'; readonly node: string; readonly attempt: number; readonly model: string }
  | {
      readonly type: 'token';
      readonly node: string;
      readonly text: string;
      /** For an agent node: the turn (from 1) whose text this is, as in `AgentStep.step`. */
      readonly step?: number | undefined;
    }
  | PartialOutputEvent<O>
  | {
      readonly type: 'tool-call';
      readonly node: string;
      /** The agent's turn (from 1) that made the call. */
      readonly step: number;
      readonly toolCallId: string;
      readonly toolName: string;
      /** The arguments as the model sent them (not yet validated). */
      readonly input: unknown;
    }
  | {
      readonly type: 'tool-result';
      readonly node: string;
      readonly step: number;
      readonly toolCallId: string;
      readonly toolName: string;
      /** False when the tool threw or its arguments were invalid (`output` is then the error text). */
      readonly ok: boolean;
      /** What went back to the model. */
      readonly output: string;
    }
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
