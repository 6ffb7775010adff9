/**
 * An agent node's loop: the model may call the node's tools for at most `maxSteps` turns, each tool's
 * outcome (errors included) going back to the model; then the final answer, validated against the node's
 * schema when it has one. Every model call is an attempt of the node: a call that should be retried makes
 * the Composition re-run the node through `retryTask()` (the trace shows it), and the new attempt resumes
 * the loop where it stopped, without running a tool twice.
 */
import type { RunContext } from '../core/node-runner.ts';
import type { CallEventSink } from '../providers/call-events.ts';
import type { CallRetries } from '../providers/call-policy.ts';
import type { CallResult, CallSpec } from '../providers/call.ts';
import type { ModelClient } from '../providers/model-client.ts';
import type { ChatMessage, ToolCall, ToolDefinition } from '../providers/types.ts';
import type { UsageLabels } from '../providers/usage.ts';
import { zodIssues } from '../providers/structured-output.ts';
import type { ChainNode } from './node-settings.ts';
import { streamedCall, type StreamedCallOptions } from './streamed-call.ts';
import { toolDefinition, type Tool } from './tool.ts';
import type { AgentStep, AgentToolCall } from './types.ts';
import { errorMessage } from '../core/errors.ts';
import { ChainDefinitionError } from './errors.ts';
import { McpUnavailableError } from './mcp-errors.ts';

/** What an agent's loop needs besides its node. */
export interface AgentLoopOptions {
  readonly client: ModelClient;
  readonly labels: UsageLabels;
  /** Per-attempt timeout of each model call. */
  readonly timeoutMs: number | undefined;
  /** The run's sink for the calls' events. */
  readonly onEvent: CallEventSink;
  /** Called with each finished step. */
  readonly onStep: (step: AgentStep) => void;
  /** Called when the model asks for a tool, before it runs, with the turn (from 1). */
  readonly onToolCall?: ((step: number, call: ToolCall) => void) | undefined;
  /** Called when a tool call's outcome is known, before it goes back to the model. */
  readonly onToolResult?: ((step: number, call: AgentToolCall) => void) | undefined;
  /** Stream each model call (its text, or its partial output) through these; else calls are not streamed. */
  readonly stream?: StreamedCallOptions | undefined;
}

/** Default of `maxSteps`. */
const defaultMaxSteps = 5;

/** One agent node's loop in one run, shared by the node's runner and its `retryTask()` children. */
export class AgentLoop {
  readonly #node: ChainNode;
  readonly #options: AgentLoopOptions;
  #byName: ReadonlyMap<string, Tool>;
  #definitions: readonly ToolDefinition[];
  /** The tool sources' lists the two fields above come from (the same arrays while the lists hold). */
  #listed: readonly (readonly Tool[])[] | undefined;
  /** The steps so far (the run's `steps` record holds this array). */
  readonly steps: AgentStep[] = [];
  readonly #messages: ChatMessage[] = [];
  #base: CallSpec | undefined;
  /** The retry state of the model call in progress; a new one for each call. */
  #retries: CallRetries | undefined;
  /** True once no more tool turns are made: only the final answer is left. */
  #toolsDone = false;
  #finalAsked = false;

  constructor(node: ChainNode, options: AgentLoopOptions) {
    this.#node = node;
    this.#options = options;
    this.#byName = new Map(node.tools.map((t) => [t.name, t]));
    this.#definitions = node.tools.map(toolDefinition);
  }

  /**
   * Runs (or resumes) the loop in one attempt of the node; `base` is the node's call, built on its first
   * attempt and kept for the next ones.
   * @throws {TryAgainError} when a model call should be retried (the Composition re-runs the node).
   */
  async run(base: () => CallSpec, context: RunContext): Promise<CallResult> {
    if (this.#base === undefined) {
      this.#base = base();
      const first = this.#base.messages ?? [{ role: 'user' as const, content: this.#base.prompt ?? '' }];
      this.#messages.push(...first);
    }
    const { schema, schemaName, prompt: _prompt, messages: _messages, ...plain } = this.#base;
    const maxSteps = this.#node.settings.maxSteps ?? defaultMaxSteps;
    const messages = this.#messages;
    while (!this.#toolsDone && this.steps.length < maxSteps) {
      await this.#listTools(context.signal);
      const reply = await this.#call({ ...plain, messages, tools: this.#definitions }, context);
      const step = this.steps.length + 1;
      const calls = reply.response.toolCalls;
      if (calls.length === 0) {
        this.#done({ step, text: reply.text, toolCalls: [] });
        if (schema === undefined) return reply;
        messages.push({ role: 'assistant', content: reply.text });
        this.#toolsDone = true;
        break;
      }
      messages.push({ role: 'assistant', content: reply.text, toolCalls: calls });
      const outcomes: AgentToolCall[] = [];
      for (const call of calls) {
        this.#options.onToolCall?.(step, call);
        const outcome = await runTool(this.#byName.get(call.name), {
          id: call.id,
          name: call.name,
          args: call.arguments,
          signal: context.signal,
          known: [...this.#byName.keys()],
        });
        outcomes.push(outcome);
        this.#options.onToolResult?.(step, outcome);
        messages.push({ role: 'tool', toolCallId: call.id, content: outcome.result, isError: !outcome.ok });
      }
      this.#done({ step, text: reply.text, toolCalls: outcomes });
    }
    // The final answer, without tools: validated against the node's schema when it has one.
    if (!this.#finalAsked) {
      this.#finalAsked = true;
      messages.push({
        role: 'user',
        content:
          schema === undefined
            ? 'Give your final answer now, without calling tools.'
            : 'Give your final answer now as JSON matching the requested schema, without calling tools.',
      });
    }
    return this.#call({ ...plain, messages, schema, schemaName }, context);
  }

  /** Adds the tool sources' tools (listed again only when a source's list changed) to the node's own. */
  async #listTools(signal: AbortSignal): Promise<void> {
    const sources = this.#node.toolSources;
    if (sources.length === 0) return;
    const lists = await Promise.all(sources.map((s) => s.tools(signal)));
    const previous = this.#listed;
    if (previous !== undefined && lists.every((list, i) => list === previous[i])) return;
    this.#listed = lists;
    const byName = new Map<string, Tool>();
    for (const t of this.#node.tools) byName.set(t.name, t);
    lists.forEach((list, i) => {
      for (const t of list) {
        if (byName.has(t.name)) {
          throw new ChainDefinitionError(
            `Agent "${this.#node.name}" has two tools named "${t.name}" (one from "${sources[i]?.name ?? ''}").`,
            this.#node.name,
            { hint: "leave one of them out with the tool source's include or filter option" },
          );
        }
        byName.set(t.name, t);
      }
    });
    this.#byName = byName;
    this.#definitions = [...byName.values()].map(toolDefinition);
  }

  #done(step: AgentStep): void {
    this.steps.push(step);
    this.#options.onStep(step);
  }

  async #call(spec: CallSpec, context: RunContext): Promise<CallResult> {
    const { client, labels, timeoutMs, onEvent } = this.#options;
    this.#retries ??= client.callRetries();
    const stream = this.#options.stream;
    const result =
      stream === undefined
        ? await client.attempt(spec, this.#retries, {
            signal: context.signal,
            attempt: context.attempt,
            labels,
            timeoutMs,
            onEvent,
          })
        : await streamedCall(spec, this.#retries, context, stream);
    this.#retries = undefined;
    return result;
  }
}

/** Runs one tool call of the model; its failures become the result the model reads (not thrown). */
async function runTool(
  t: Tool | undefined,
  call: {
    readonly id: string;
    readonly name: string;
    readonly args: unknown;
    readonly signal: AbortSignal;
    readonly known: readonly string[];
  },
): Promise<AgentToolCall> {
  const { id, name, args, signal } = call;
  if (t === undefined) {
    return {
      id,
      name,
      arguments: args,
      ok: false,
      result: `Error: there is no tool "${name}". Tools: ${call.known.join(', ')}.`,
    };
  }
  const parsed = t.input.safeParse(args);
  if (!parsed.success) {
    const issues = zodIssues(parsed.error, Infinity)
      .map((i) => `${i.path || '(root)'}: ${i.message}`)
      .join('; ');
    return {
      id,
      name,
      arguments: args,
      ok: false,
      result: `Error: invalid arguments for "${name}": ${issues}`,
    };
  }
  try {
    const value = await t.run(parsed.data, { signal });
    return {
      id,
      name,
      arguments: args,
      ok: true,
      result: typeof value === 'string' ? value : value === undefined ? 'null' : JSON.stringify(value),
    };
  } catch (error) {
    // A server that cannot be reached fails the node: the model cannot fix it.
    if (signal.aborted || error instanceof McpUnavailableError) throw error;
    return {
      id,
      name,
      arguments: args,
      ok: false,
      result: `Error: ${errorMessage(error)}`,
    };
  }
}
