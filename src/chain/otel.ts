/**
 * OpenTelemetry spans of a chain run, after the GenAI semantic conventions: the run, one span per node, each
 * model call as a `chat {model}` client span, each tool call as `execute_tool {name}`; retries and
 * rate-limit waits as span events. `@opentelemetry/api` is an optional peer: it is loaded (synchronously,
 * once) only for a run that has telemetry on, and a run without it costs one global lookup.
 */
import { createRequire } from 'node:module';
import type * as Otel from '@opentelemetry/api';
import type { CallEvent } from '../providers/call-events.ts';
import type { CallSpec } from '../providers/call.ts';
import type { AgentStep, AgentToolCall } from './types.ts';
import type { ToolCall } from '../providers/types.ts';
import {
  InvalidOptionError,
  MissingPeerDependencyError,
  NodeError,
  SymphonizerError,
  errorMessage,
} from '../core/errors.ts';

/** The span of {@link TelemetryTracer} as this library uses it (an OpenTelemetry `Span` is one). */
export interface TelemetrySpan {
  setAttribute(key: string, value: string | number | boolean): unknown;
  end(): void;
}

/** A tracer, as this library uses it: an OpenTelemetry `Tracer` (`trace.getTracer(...)`) is one. */
export interface TelemetryTracer {
  startSpan(name: string, options?: object, context?: unknown): TelemetrySpan;
}

/** Options of a chain's telemetry (see {@link ChainTelemetry}). */
export interface ChainTelemetryOptions {
  /** The tracer the spans are made with. @default `trace.getTracer('symphonizer')` of the global tracer provider */
  readonly tracer?: TelemetryTracer | undefined;
  /**
   * Record prompts and answers on the model call spans (`gen_ai.input.messages`, `gen_ai.output.messages`).
   * They may hold personal data: off unless asked for. Keys and headers are never recorded.
   * @default false
   */
  readonly recordContent?: boolean | undefined;
}

/**
 * Whether a chain run emits OpenTelemetry spans: `true` (the global tracer provider's tracer), `false`
 * (never), or {@link ChainTelemetryOptions}. Left unset, a run emits spans when a tracer provider is
 * registered with `@opentelemetry/api` (`trace.setGlobalTracerProvider`, or an SDK's `register()`/`start()`),
 * and loads nothing otherwise.
 */
export type ChainTelemetry = boolean | ChainTelemetryOptions;

type Api = typeof Otel;
type Attributes = Otel.Attributes;

/** The global object `@opentelemetry/api` 1.x keeps its registrations in (shared by all its copies). */
const globalKey = Symbol.for('opentelemetry.js.api.1');

let loaded: Api | undefined;

/** `@opentelemetry/api`, loaded on first use. */
function otelApi(): Api {
  if (loaded !== undefined) return loaded;
  try {
    loaded = createRequire(import.meta.url)('@opentelemetry/api') as Api;
  } catch (error) {
    throw new MissingPeerDependencyError('@opentelemetry/api', 'Chain telemetry', error);
  }
  return loaded;
}

/** True when some code registered a global tracer provider with `@opentelemetry/api` 1.x (nothing is loaded). */
function providerRegistered(): boolean {
  const registry = (globalThis as Record<symbol, { readonly trace?: unknown } | undefined>)[globalKey];
  return registry?.trace !== undefined;
}

/** @internal Opens the spans of one run (its chain span first), for {@link telemetryOf}. */
export type StartRunTelemetry = (chainName: string, runId: string) => RunTelemetry | undefined;

/**
 * @internal What a run with this setting needs to open its spans, or `undefined` when it has none (left unset and no
 * tracer provider registered: the common case, which loads nothing).
 * @throws {MissingPeerDependencyError} when telemetry is asked for and `@opentelemetry/api` is not installed.
 * @throws {InvalidOptionError} for a setting that is not a boolean or an options object.
 */
export function telemetryOf(setting: ChainTelemetry | undefined): StartRunTelemetry | undefined {
  if (setting === false) return undefined;
  if (setting === undefined && !providerRegistered()) return undefined;
  const value: unknown = setting; // JavaScript callers may pass anything
  if (value !== undefined && value !== true && (typeof value !== 'object' || value === null)) {
    throw new InvalidOptionError('telemetry', setting, 'true, false or { tracer, recordContent }');
  }
  const api = otelApi();
  const options = typeof setting === 'object' ? setting : {};
  if (options.tracer !== undefined && typeof options.tracer.startSpan !== 'function') {
    throw new InvalidOptionError('telemetry.tracer', options.tracer, 'an OpenTelemetry Tracer');
  }
  const content = options.recordContent === true;
  return (chainName, runId) => {
    // The global provider's tracer is looked up per run: a provider registered later is used.
    const tracer = (options.tracer ?? api.trace.getTracer('symphonizer')) as Otel.Tracer;
    try {
      return new OtelRunTelemetry(api, tracer, content, chainName, runId);
    } catch (error) {
      // A tracer that cannot open the run's span: the run goes on without spans.
      process.emitWarning(
        `symphonizer: chain telemetry failed, this run has no spans: ${errorMessage(error)}`,
      );
      return undefined;
    }
  };
}

/** A node's spans and what its next model call span starts from. */
interface NodeSpans {
  readonly span: Otel.Span;
  readonly context: Otel.Context;
  /** When the node's next model call began: its attempt's start, or the end of its last call or tool. */
  mark: number;
  /** Rate-limit waits since `mark`, added to the next model call span. */
  waits: { readonly time: number; readonly attributes: Attributes }[];
  /** The node's prompt, when content is recorded. */
  input: string | undefined;
  readonly tools: Map<string, Otel.Span>;
  model: string;
  /** Attempts of the node so far. */
  attempts: number;
  /**
   * The node's answered model call spans kept open, each with the time it ended: the last one until the
   * node's next step shows whether its answer stood (a re-ask after an invalid output marks it failed); with
   * content recorded, all of them, until their answer is known (an agent's step, the node's result).
   */
  readonly answered: { readonly span: Otel.Span; readonly end: number }[];
}

/**
 * @internal The spans of one chain run, as the run reports to them. Every method is a no-op for a node whose
 * span has not opened. (Declared apart from its class so no signature here names an OpenTelemetry type.)
 */
export interface RunTelemetry {
  /** An attempt of node `name` starts (its first one opens the node's span). */
  nodeAttempt(name: string, kind: string, spec: CallSpec): void;
  /** A model call event of the run, of node `nodeName`. */
  onCall(event: CallEvent, nodeName: string): void;
  /** The model asked node `name` for a tool call. */
  toolStart(name: string, call: ToolCall): void;
  /** The tool call's outcome is known. */
  toolEnd(name: string, call: AgentToolCall): void;
  /** An agent's turn ended. */
  agentStep(name: string, step: AgentStep): void;
  /** A try of node `name` ended with `status`; `text` is its answer when it completed. */
  nodeDone(name: string, status: string, error: unknown, text: string | undefined): void;
  /** The run ended. */
  runDone(status: string, error: unknown): void;
}

/** The spans of one chain run, made with `@opentelemetry/api`. */
class OtelRunTelemetry implements RunTelemetry {
  readonly #api: Api;
  readonly #tracer: Otel.Tracer;
  readonly #content: boolean;
  readonly #run: Otel.Span;
  readonly #context: Otel.Context;
  readonly #nodes = new Map<string, NodeSpans>();
  #warned = false;

  constructor(api: Api, tracer: Otel.Tracer, recordContent: boolean, chainName: string, runId: string) {
    this.#api = api;
    this.#tracer = tracer;
    this.#content = recordContent;
    const parent = api.context.active();
    this.#run = tracer.startSpan(
      `chain ${chainName}`,
      {
        kind: api.SpanKind.INTERNAL,
        attributes: { 'symphonizer.chain.name': chainName, 'symphonizer.run.id': runId },
        // Every time here is the wall clock's (the node and call spans are stamped after the fact).
        startTime: Date.now(),
      },
      parent,
    );
    this.#context = api.trace.setSpan(parent, this.#run);
  }

  // Each hook guards its work: a failure in the spans (a tracer's bug) must not fail the run.
  nodeAttempt(name: string, kind: string, spec: CallSpec): void {
    try {
      this.#nodeAttempt(name, kind, spec);
    } catch (error) {
      this.#broken(error);
    }
  }

  onCall(event: CallEvent, nodeName: string): void {
    try {
      this.#onCall(event, nodeName);
    } catch (error) {
      this.#broken(error);
    }
  }

  toolStart(name: string, call: ToolCall): void {
    try {
      this.#toolStart(name, call);
    } catch (error) {
      this.#broken(error);
    }
  }

  toolEnd(name: string, call: AgentToolCall): void {
    try {
      this.#toolEnd(name, call);
    } catch (error) {
      this.#broken(error);
    }
  }

  agentStep(name: string, step: AgentStep): void {
    try {
      this.#agentStep(name, step);
    } catch (error) {
      this.#broken(error);
    }
  }

  nodeDone(name: string, status: string, error: unknown, text: string | undefined): void {
    try {
      this.#nodeDone(name, status, error, text);
    } catch (error) {
      this.#broken(error);
    }
  }

  runDone(status: string, error: unknown): void {
    try {
      this.#runDone(status, error);
    } catch (error) {
      this.#broken(error);
    }
  }

  /** Reports the first failure of this run's spans as a process warning; the run goes on. */
  #broken(error: unknown): void {
    if (this.#warned) return;
    this.#warned = true;
    process.emitWarning(
      `symphonizer: chain telemetry failed, spans of this run may be missing: ${errorMessage(error)}`,
    );
  }

  /** An attempt of node `name` starts (its first one opens the node's span). */
  #nodeAttempt(name: string, kind: string, spec: CallSpec): void {
    const now = Date.now();
    let node = this.#nodes.get(name);
    if (node === undefined) {
      const agent = kind === 'agent';
      const attributes: Attributes = { 'symphonizer.node.name': name, 'symphonizer.node.kind': kind };
      if (agent) {
        attributes['gen_ai.operation.name'] = 'invoke_agent';
        attributes['gen_ai.agent.name'] = name;
      }
      const span = this.#tracer.startSpan(
        agent ? `invoke_agent ${name}` : `node ${name}`,
        { kind: this.#api.SpanKind.INTERNAL, attributes, startTime: now },
        this.#context,
      );
      node = {
        span,
        context: this.#api.trace.setSpan(this.#context, span),
        mark: now,
        waits: [],
        input: undefined,
        tools: new Map(),
        model: spec.model,
        attempts: 0,
        answered: [],
      };
      this.#nodes.set(name, node);
    }
    if (!this.#content) this.#endAnswered(node);
    node.mark = now;
    node.model = spec.model;
    node.attempts += 1;
    node.span.setAttribute('symphonizer.node.attempts', node.attempts);
    if (this.#content) node.input = JSON.stringify(inputMessages(spec));
  }

  /** A model call event of the run (the run's sink hands every one here). */
  #onCall(event: CallEvent, nodeName: string): void {
    const node = this.#nodes.get(nodeName);
    if (node === undefined) return;
    const now = Date.now();
    switch (event.type) {
      case 'rate-limit-wait': {
        const attributes: Attributes = { 'symphonizer.reason': event.reason };
        if (event.delayMs !== undefined) attributes['symphonizer.delay_ms'] = event.delayMs;
        node.waits.push({ time: now, attributes });
        return;
      }
      case 'retry': {
        // The failed attempt's model call, then the delay before the next one, as an event of the node.
        if (event.kind === 'transport')
          this.#chatSpan(node, event.modelId, now, undefined, event.errorCode ?? 'error');
        else this.#closeLast(node, undefined, event.errorCode ?? 'output_validation'); // a re-asked answer
        node.span.addEvent(
          'retry',
          {
            'symphonizer.retry.attempt': event.attempt,
            'symphonizer.retry.kind': event.kind,
            'symphonizer.delay_ms': event.delayMs,
            'symphonizer.reason': event.reason,
          },
          now,
        );
        node.mark = now;
        return;
      }
      case 'call':
        this.#chatSpan(node, event.modelId, now, event, undefined);
        node.mark = now;
        return;
      default: {
        const never: never = event;
        return never;
      }
    }
  }

  /** The model asked node `name` for a tool call: its `execute_tool` span opens. */
  #toolStart(name: string, call: ToolCall): void {
    const node = this.#nodes.get(name);
    if (node === undefined) return;
    if (!this.#content) this.#endAnswered(node);
    const span = this.#tracer.startSpan(
      `execute_tool ${call.name}`,
      {
        kind: this.#api.SpanKind.INTERNAL,
        attributes: {
          'gen_ai.operation.name': 'execute_tool',
          'gen_ai.tool.name': call.name,
          'gen_ai.tool.call.id': call.id,
          'gen_ai.tool.type': 'function',
        },
        startTime: Date.now(),
      },
      node.context,
    );
    if (this.#content)
      span.setAttribute('gen_ai.tool.call.arguments', JSON.stringify(call.arguments ?? null));
    node.tools.set(call.id, span);
  }

  /** The tool call's outcome is known: its span ends (a failed call with `error.type` `tool_error`). */
  #toolEnd(name: string, call: AgentToolCall): void {
    const node = this.#nodes.get(name);
    const span = node?.tools.get(call.id);
    if (node === undefined || span === undefined) return;
    node.tools.delete(call.id);
    if (this.#content) span.setAttribute('gen_ai.tool.call.result', call.result);
    if (!call.ok) {
      span.setAttribute('error.type', 'tool_error');
      // The tool's error text may quote its arguments: it is content.
      span.setStatus({
        code: this.#api.SpanStatusCode.ERROR,
        ...(this.#content ? { message: call.result } : {}),
      });
    }
    const now = Date.now();
    span.end(now);
    node.mark = now;
  }

  /** An agent's turn `step` ended: with content recorded, its model call span gets the turn's answer. */
  #agentStep(name: string, step: AgentStep): void {
    const node = this.#nodes.get(name);
    const entry = this.#content ? node?.answered[step.step - 1] : undefined;
    if (entry === undefined) return;
    const parts: unknown[] = step.text === '' ? [] : [{ type: 'text', content: step.text }];
    for (const call of step.toolCalls) {
      parts.push({ type: 'tool_call', id: call.id, name: call.name, arguments: call.arguments });
    }
    entry.span.setAttribute('gen_ai.output.messages', JSON.stringify([{ role: 'assistant', parts }]));
  }

  /**
   * A try of node `name` ended; unless it is retried, a model call it failed in gets its span, then the
   * node's span ends. `text` is the node's answer (recorded on its last model call span with content on).
   */
  #nodeDone(name: string, status: string, error: unknown, text: string | undefined): void {
    const node = this.#nodes.get(name);
    if (node === undefined || status === 'retrying') return;
    const now = Date.now();
    const cause = causeOf(error);
    const code = codeOf(cause);
    if (node.answered.length > 0) {
      // An output that failed validation for good is the last answer's failure.
      if (code === 'output_validation') this.#closeLast(node, undefined, code);
      else this.#closeLast(node, status === 'completed' ? text : undefined, undefined);
      this.#endAnswered(node);
    }
    for (const span of node.tools.values()) {
      if (code !== undefined) span.setAttribute('error.type', code);
      span.end(now);
    }
    // A failure outside any tool, of a model-call error, is the last model call's.
    if (node.tools.size === 0 && code !== undefined) {
      // The attempt that gave up: its own error (a `retries_exhausted` holds it as its cause).
      const last =
        cause instanceof SymphonizerError && cause.code === 'retries_exhausted' ? cause.cause : cause;
      if (isCallFailure(last)) this.#chatSpan(node, node.model, now, undefined, codeOf(last) ?? code);
    }
    node.tools.clear();
    this.#finish(node.span, status, cause, code);
    node.span.end(now);
  }

  /** The run ended with `status` (and `error` unless it completed): its span ends. */
  #runDone(status: string, error: unknown): void {
    const cause = causeOf(error);
    const code = codeOf(cause);
    this.#run.setAttribute('symphonizer.run.status', status);
    this.#finish(this.#run, status, cause, code);
    this.#run.end(Date.now());
  }

  /** Ends the answered spans the node kept open. */
  #endAnswered(node: NodeSpans): void {
    for (const entry of node.answered) entry.span.end(entry.end);
    node.answered.length = 0;
  }

  /**
   * Ends the node's last answered span kept open, with `text` as its answer when given and content is
   * recorded, or as failed with `errorType`.
   */
  #closeLast(node: NodeSpans, text: string | undefined, errorType: string | undefined): void {
    const last = node.answered.pop();
    if (last === undefined) return;
    if (errorType !== undefined) {
      last.span.setAttribute('error.type', errorType);
      last.span.setStatus({ code: this.#api.SpanStatusCode.ERROR });
    }
    if (text !== undefined && this.#content) {
      const message = { role: 'assistant', parts: [{ type: 'text', content: text }] };
      last.span.setAttribute('gen_ai.output.messages', JSON.stringify([message]));
    }
    last.span.end(last.end);
  }

  #finish(span: Otel.Span, status: string, cause: unknown, code: string | undefined): void {
    if (status === 'completed') return;
    span.setAttribute('error.type', code ?? status);
    span.setStatus({
      code: this.#api.SpanStatusCode.ERROR,
      message: cause === undefined ? status : errorMessage(cause),
    });
  }

  /** A `chat {model}` client span from the node's mark to `end`: a finished call's, or a failed one's. */
  #chatSpan(
    node: NodeSpans,
    modelId: string,
    end: number,
    call: Extract<CallEvent, { type: 'call' }> | undefined,
    errorType: string | undefined,
  ): void {
    const colon = modelId.indexOf(':');
    const provider = colon > 0 ? modelId.slice(0, colon) : modelId;
    const model = modelId.slice(colon + 1);
    const attributes: Attributes = {
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': providerName(provider),
      'gen_ai.request.model': model,
    };
    if (call !== undefined) {
      if (call.responseModel !== undefined) attributes['gen_ai.response.model'] = call.responseModel;
      if (call.requestId !== undefined) attributes['gen_ai.response.id'] = call.requestId;
      if (call.finishReason !== undefined) attributes['gen_ai.response.finish_reasons'] = [call.finishReason];
      attributes['gen_ai.usage.input_tokens'] = call.usage.inputTokens;
      attributes['gen_ai.usage.output_tokens'] = call.usage.outputTokens;
      if (call.costUsd !== undefined) attributes['symphonizer.cost_usd'] = call.costUsd;
      if (call.cached) attributes['symphonizer.cached'] = true;
      if (call.estimated) attributes['symphonizer.usage.estimated'] = true;
    }
    if (node.input !== undefined) attributes['gen_ai.input.messages'] = node.input;
    if (errorType !== undefined) attributes['error.type'] = errorType;
    const span = this.#tracer.startSpan(
      `chat ${model}`,
      { kind: this.#api.SpanKind.CLIENT, attributes, startTime: Math.min(node.mark, end) },
      node.context,
    );
    for (const wait of node.waits) span.addEvent('rate_limit_wait', wait.attributes, wait.time);
    node.waits = [];
    if (errorType !== undefined) span.setStatus({ code: this.#api.SpanStatusCode.ERROR });
    if (errorType !== undefined) {
      span.end(end);
      return;
    }
    // Whether its answer stands (and, with content, what it was) is known later: keep it open until then.
    if (!this.#content) this.#endAnswered(node);
    node.answered.push({ span, end });
  }
}

/** The well-known `gen_ai.provider.name` of a registry name (others as they are). */
function providerName(provider: string): string {
  return provider === 'sim' ? 'symphonizer.sim' : provider;
}

/** A node's prompt as GenAI input messages. */
function inputMessages(spec: CallSpec): unknown[] {
  const messages = spec.messages ?? [{ role: 'user' as const, content: spec.prompt ?? '' }];
  const out: unknown[] = [];
  if (spec.system !== undefined)
    out.push({ role: 'system', parts: [{ type: 'text', content: spec.system }] });
  for (const m of messages) out.push({ role: m.role, parts: [{ type: 'text', content: m.content }] });
  return out;
}

/** The error inside a node's failure wrapper (`NodeError`), if any. */
function causeOf(error: unknown): unknown {
  let e = error;
  while (e instanceof NodeError && e.cause !== undefined) e = e.cause;
  return e;
}

/** The `error.type` of an error: its `code`, else `error` (`undefined` for no error). */
function codeOf(error: unknown): string | undefined {
  if (error === undefined) return undefined;
  return error instanceof SymphonizerError ? (error as SymphonizerError).code : 'error';
}

/**
 * True for the errors a model call's request fails with (the providers' `ProviderError` family, which names
 * its provider). An invalid output is not one: its call answered, and has its span already.
 */
function isCallFailure(error: unknown): boolean {
  return error instanceof SymphonizerError && 'provider' in error;
}
