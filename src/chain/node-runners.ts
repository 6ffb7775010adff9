/**
 * The runner of a chain node in one run, by kind: a prompt node is one model call (each retry a
 * `retryTask()` child), a streamed text node streams its call's tokens as events, an agent node runs its
 * {@link AgentLoop}. Each reports its model calls' events to its own run only.
 */
import { NodeRunner, type RunContext } from '../core/node-runner.ts';
import type { CallRetries } from '../providers/call-policy.ts';
import type { CallResult, CallSpec } from '../providers/call.ts';
import type { ModelClient } from '../providers/model-client.ts';
import type { TemplateLoader } from '../prompts/template-loader.ts';
import { AgentLoop } from './agent-loop.ts';
import { callSpecOf } from './call-spec.ts';
import { ChainDefinitionError } from './errors.ts';
import type { ChainNode } from './node-settings.ts';
import type { RunState } from './run-state.ts';
import type { NodeOverride } from './types.ts';

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
  /** Stream the tokens of a text node as events. */
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
    if (state.observed) {
      state.emit({ type: 'node-start', node: name, attempt: context.attempt, model: spec.model });
    }
    return spec;
  };
  // nodeTimeoutMs bounds each attempt of each model call (and is retried), not the runner as a whole:
  // a runner timeout would fail the run at the first hang.
  const timeoutMs = run.timeoutMs;
  if (node.settings.kind === 'agent') {
    const loop = new AgentLoop(node, {
      client,
      labels,
      timeoutMs,
      onEvent,
      onStep: (step) => {
        state.emit({ type: 'agent-step', node: name, step });
      },
    });
    let spec: CallSpec | undefined;
    return new NodeRunner({
      executor: (_params, context) => {
        state.steps.set(name, loop.steps);
        if (spec === undefined) spec = build(context);
        else state.emit({ type: 'node-start', node: name, attempt: context.attempt, model: spec.model });
        const base = spec;
        return loop.run(() => base, context);
      },
    });
  }
  if (run.streamTokens && node.schema === undefined) {
    const retries = client.callRetries();
    return new NodeRunner({
      executor: (_params, context) => streamText(build(context), context, labels, run, retries),
    });
  }
  return client.runner(build, { labels, timeoutMs, onEvent });
}

/**
 * One attempt of a text node's call, streamed: each delta a `token` event; the node's result once it
 * finishes. A retried attempt is a `retryTask()` child of the node, as for any node.
 */
async function streamText<O>(
  spec: CallSpec,
  context: RunContext,
  labels: { readonly nodeKey: string; readonly compositionId: string },
  run: NodeRunInput<O>,
  retries: CallRetries,
): Promise<CallResult> {
  const { client, state } = run;
  let text = '';
  const stream = client.streamAttempt(spec, retries, {
    signal: context.signal,
    attempt: context.attempt,
    labels,
    timeoutMs: run.timeoutMs,
    retryAfterText: run.retryAfterText,
    onEvent: state.onCallEvent,
  });
  for await (const event of stream) {
    if (event.type === 'text-delta') {
      text += event.text;
      state.emit({ type: 'token', node: labels.nodeKey, text: event.text });
    } else if (event.type === 'finish') {
      const response = event.response;
      return {
        output: response.text === '' ? text : response.text,
        text: response.text === '' ? text : response.text,
        modelId: spec.model,
        usage: response.usage,
        costUsd: client.prices.costOf(spec.model, response.usage).costUsd,
        attempt: context.attempt,
        simulated: response.simulated === true,
        requestId: response.requestId,
        response,
      };
    }
  }
  throw new ChainDefinitionError(
    `The stream of node "${labels.nodeKey}" ended without a finish event.`,
    labels.nodeKey,
  );
}
