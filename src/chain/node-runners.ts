/**
 * The runner of a chain node in one run, by kind: a prompt node is one model call (each retry a
 * `retryTask()` child), a streamed node streams its call as events (a text node's tokens, a schema node's
 * partial outputs), an agent node runs its {@link AgentLoop} (streaming its turns when the run streams).
 * Each reports its model calls' events to its own run only.
 */
import { NodeRunner, type RunContext } from '../core/node-runner.ts';
import type { CallSpec } from '../providers/call.ts';
import type { ModelClient } from '../providers/model-client.ts';
import type { TemplateLoader } from '../prompts/template-loader.ts';
import { AgentLoop } from './agent-loop.ts';
import { callSpecOf } from './call-spec.ts';
import type { ChainNode } from './node-settings.ts';
import type { RunState } from './run-state.ts';
import { streamedCall, type StreamedCallOptions } from './streamed-call.ts';
import type { ChainEvent, NodeOverride } from './types.ts';

/** What a node's runner needs from its run. */
export interface NodeRunInput<O> {
  readonly node: ChainNode;
  /** The run's validated input. */
  readonly input: unknown;
  readonly client: ModelClient;
  readonly compositionId: string;
  readonly state: RunState<O>;
  readonly override: NodeOverride | undefined;
  readonly templates: TemplateLoader | undefined;
  /** Per-attempt timeout of each model call (`nodeTimeoutMs`). */
  readonly timeoutMs: number | undefined;
  /**
   * Stream the node's calls as events: a text node's tokens, a schema node's partial outputs, an agent's
   * turns and tool calls.
   */
  readonly streamTokens: boolean;
  /** Retry a streamed attempt that failed after its first token. */
  readonly retryAfterText: boolean;
}

/** The runner of `run.node` in its run. */
export function nodeRunner<O>(run: NodeRunInput<O>): NodeRunner {
  const { node, client, state } = run;
  const name = node.name;
  const labels = { nodeKey: name, compositionId: run.compositionId };
  const onEvent = state.onCallEvent;
  const build = (context: RunContext): CallSpec => {
    const spec = callSpecOf(node, run.input, context.inputs, run.override, run.templates);
    state.telemetry?.nodeAttempt(name, node.settings.kind, spec);
    if (state.observed) {
      state.emit({ type: 'node-start', node: name, attempt: context.attempt, model: spec.model });
    }
    return spec;
  };
  // nodeTimeoutMs bounds each attempt of each model call (and is retried), not the runner as a whole:
  // a runner timeout would fail the run at the first hang.
  const timeoutMs = run.timeoutMs;
  if (node.settings.kind === 'agent') {
    // The turn in progress, for the tokens streamed: one more than the turns done.
    const steps: { done: readonly unknown[] } = { done: [] };
    const stream = run.streamTokens ? streamOptions(run, labels, () => steps.done.length + 1) : undefined;
    const agent = new AgentLoop(node, {
      client,
      labels,
      timeoutMs,
      onEvent,
      stream,
      onStep: (step) => {
        state.telemetry?.agentStep(name, step);
        state.emit({ type: 'agent-step', node: name, step });
      },
      onToolCall: (step, call) => {
        state.telemetry?.toolStart(name, call);
        state.emit({
          type: 'tool-call',
          node: name,
          step,
          toolCallId: call.id,
          toolName: call.name,
          input: call.arguments,
        });
      },
      onToolResult: (step, call) => {
        state.telemetry?.toolEnd(name, call);
        state.emit({
          type: 'tool-result',
          node: name,
          step,
          toolCallId: call.id,
          toolName: call.name,
          ok: call.ok,
          output: call.result,
        });
      },
    });
    steps.done = agent.steps;
    let spec: CallSpec | undefined;
    return new NodeRunner({
      executor: (_params, context) => {
        state.steps.set(name, agent.steps);
        if (spec === undefined) spec = build(context);
        else {
          state.telemetry?.nodeAttempt(name, 'agent', spec);
          state.emit({ type: 'node-start', node: name, attempt: context.attempt, model: spec.model });
        }
        const base = spec;
        return agent.run(() => base, context);
      },
    });
  }
  if (run.streamTokens) {
    const retries = client.callRetries();
    const options = streamOptions(run, labels);
    return new NodeRunner({
      executor: (_params, context) => streamedCall(build(context), retries, context, options),
    });
  }
  return client.runner(build, { labels, timeoutMs, onEvent });
}

/**
 * How a streamed node reports its calls: a text node's deltas as `token` events (with the agent's turn
 * when `step` gives one), a schema node's partial values as `partial-output` events, and a re-ask after an
 * invalid streamed output as a `retry` that discards them.
 */
export function streamOptions<O>(
  run: NodeRunInput<O>,
  labels: { readonly nodeKey: string; readonly compositionId: string },
  step?: () => number,
): StreamedCallOptions {
  const { state } = run;
  const node = labels.nodeKey;
  return {
    client: run.client,
    labels,
    timeoutMs: run.timeoutMs,
    retryAfterText: run.retryAfterText,
    onEvent: state.onCallEvent,
    onText: (text) => {
      state.emit(
        step === undefined ? { type: 'token', node, text } : { type: 'token', node, text, step: step() },
      );
    },
    onPartial: (partial) => {
      state.emit({ type: 'partial-output', node, partial } as ChainEvent<O>);
    },
    onRepair: ({ attempt, reason }) => {
      state.emit({ type: 'retry', node, attempt, delayMs: 0, reason, kind: 'repair', discardTokens: true });
    },
  };
}
