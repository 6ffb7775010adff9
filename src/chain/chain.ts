/**
 * A built chain: runs it once, streams it, runs many inputs through one Perform, or prepares a run as a
 * Composition for the caller to start. Each run has its own state and its own events ({@link RunState});
 * each node's runner comes from {@link nodeRunner}.
 */
import type { z } from 'zod';
import { Composition } from '../core/composition.ts';
import { DAGNote } from '../core/dag-note.ts';
import { NodeError, InvalidOptionError, errorMessage } from '../core/errors.ts';
import type { Json } from '../core/json.ts';
import { NodeRunner } from '../core/node-runner.ts';
import { Perform, type PerformOptions } from '../core/perform.ts';
import type { CallResult } from '../providers/call.ts';
import { ModelClient } from '../providers/model-client.ts';
import { zodIssues } from '../providers/structured-output.ts';
import { TemplateLoader } from '../prompts/template-loader.ts';
import { ChainDefinitionError, ChainRunError, InputValidationError } from './errors.ts';
import { EventQueue } from './events.ts';
import { toDot, toMermaid } from './graph-text.ts';
import { chainDefinitionHash } from './hash.ts';
import { chainNode, nodeSettings, type ChainNode, type NodeEntry } from './node-settings.ts';
import { nodeRunner } from './node-runners.ts';
import { RunState, recordOf } from './run-state.ts';
import { telemetryOf, type ChainTelemetry } from './otel.ts';
import type { ChainEvent, ChainResult, NodeOverride } from './types.ts';
import type { UsageTotals } from '../providers/usage.ts';

/** A node that ended in an earlier try of a run, as a {@link ChainCheckpoint} stores it. */
export interface CheckpointedNode {
  /** The node's output (JSON). */
  readonly output: unknown;
  /** The text the model answered with. */
  readonly text?: string | undefined;
  /** The `provider:model` that answered. */
  readonly modelId?: string | undefined;
  /** What the node cost when it ran (informational: a restored node adds nothing to the new run's usage). */
  readonly usage?: UsageTotals | undefined;
}

/**
 * Checkpointing of a run's nodes, so a run retried after a crash does not run (nor pay for) the nodes that
 * already ended: each node in `restored` completes at once with its stored output, without calling the
 * model (its usage in the new run is zero), and every other node that completes is handed to `save`.
 */
export interface ChainCheckpoint {
  /** Nodes that ended in an earlier try, by node name. */
  readonly restored?: Readonly<Record<string, CheckpointedNode>> | undefined;
  /** Called once per node that completes in this run (restored nodes excluded). Must not throw. */
  readonly save?: ((node: string, entry: CheckpointedNode) => void) | undefined;
}

/** Options of {@link chain}. */
export interface ChainOptions<S extends z.ZodType> {
  /** Name used in errors, events and graphs. @default 'chain' */
  readonly name?: string | undefined;
  /** zod schema of the chain's input; `run()` validates against it. */
  readonly input: S;
  /**
   * Model of nodes that name none.
   * @default process.env.SYMPHONIZER_MODEL, else 'sim:default' (the offline simulated model)
   */
  readonly model?: string | undefined;
  /** The client that makes the model calls. @default a shared default ModelClient */
  readonly client?: ModelClient | undefined;
  /**
   * Where template names are looked up. A directory path (relative to the working directory when the chain
   * is built) is searched first, then `SYMPHONIZER_PROMPTS`, `./prompts` and the package's own prompts, so
   * the ready agents' `agents/*` templates and the stock partials are still found; partials of the directory
   * replace the package's of the same name. A {@link TemplateLoader} is used as it is.
   * @default SYMPHONIZER_PROMPTS, then ./prompts (when it exists), then the package's prompts/ folder
   */
  readonly templates?: string | TemplateLoader | undefined;
  /**
   * OpenTelemetry spans of the chain's runs (GenAI semantic conventions; see {@link ChainTelemetry}).
   * @default on when a tracer provider is registered with `@opentelemetry/api`, else off (nothing loaded)
   */
  readonly telemetry?: ChainTelemetry | undefined;
}

/** Per-run options of a chain. */
export interface ChainRunOptions<O = Record<string, unknown>> {
  /** Overrides the chain's client for this run. */
  readonly client?: ModelClient | undefined;
  /** Aborting it cancels the run and its in-flight requests. */
  readonly signal?: AbortSignal | undefined;
  /** Receives every event of the run. Must not throw. */
  readonly onEvent?: ((event: ChainEvent<O>) => void) | undefined;
  /** Model for every node of this run (per-node `overrides` still win). */
  readonly model?: string | undefined;
  /** Per-node overrides of model, template and parameters (prompt experiments, eval variants). */
  readonly overrides?: Readonly<Record<string, NodeOverride>> | undefined;
  /** Stream text nodes token by token (`token` events). @default true for `stream()`, false for `run()` */
  readonly streamTokens?: boolean | undefined;
  /**
   * Retry a streamed text node whose attempt fails after it has streamed tokens (a drop or a stall
   * mid-stream), per the client's retry policy like a failure before the first token. The run then emits a
   * `retry` event with `discardTokens: true` for the node, and its next attempt streams the answer again
   * from the start: a consumer must discard the node's `token` events received before that `retry` (the
   * node's output holds only the text of the attempt that finished). Without it, such a failure fails the
   * node with the provider's typed error. Only matters with `streamTokens`; non-streamed calls are retried
   * either way.
   * @default true when no one sees the tokens (`run()`/`runAll()` without `onEvent`), else false (`stream()`,
   *   or `onEvent` given: its `token` events are a live consumer that must opt in)
   */
  readonly retryAfterText?: boolean | undefined;
  /**
   * Per-attempt timeout of each model call of a node, in milliseconds, counted from when the request is sent
   * (see `CallOptions.timeoutMs`): a timed-out attempt is aborted and fails with a retryable
   * `RequestTimeoutError` naming provider and model, and is retried per the client's retry policy like any
   * transient failure (a `retryTask()` child of the node in the trace; for an agent, each model call of its
   * loop; for a streamed node, the stream of each attempt). Tools of an agent are not bounded by it.
   * @default none (the provider's own request timeout applies: 120000 for OpenAI and Anthropic)
   */
  readonly nodeTimeoutMs?: number | undefined;
  /**
   * Restores the nodes that ended in an earlier try of this run and saves those that end now (see
   * {@link ChainCheckpoint}); the workers of `symphonizer/distributed` keep them in Redis.
   */
  readonly checkpoint?: ChainCheckpoint | undefined;
  /** OpenTelemetry spans of this run; overrides the chain's `telemetry` option. */
  readonly telemetry?: ChainTelemetry | undefined;
}

/** The outputs type of a chain: `ChainOutputs<typeof report>['outline']`. */
export type ChainOutputs<C> = C extends Chain<z.ZodType, infer O> ? O : never;

/** The input type of a chain (what `run()` accepts). */
export type ChainInput<C> = C extends Chain<infer S, Record<string, unknown>> ? z.input<S> : never;

/** A started run: its Composition (add it to a Perform) and its result. */
export interface ChainRun<O> {
  readonly runId: string;
  readonly composition: Composition;
  /** Resolves when the run completes; rejects with a {@link ChainRunError} otherwise. */
  readonly result: Promise<ChainResult<O>>;
}

/** A streamed run: iterate the events; `result` settles at the end. */
export interface ChainStream<O> extends AsyncIterable<ChainEvent<O>> {
  readonly runId: string;
  readonly result: Promise<ChainResult<O>>;
}

let sharedClient: ModelClient | undefined;

/** The ModelClient chains use when given none (created on first use: simulated model, no limits). */
export function defaultModelClient(): ModelClient {
  return (sharedClient ??= new ModelClient());
}

/** The chain's loader for its `templates` option: a path becomes a layered loader with it searched first. */
function templateLoaderOf(templates: string | TemplateLoader | undefined): TemplateLoader | undefined {
  if (templates === undefined || templates instanceof TemplateLoader) return templates;
  if (typeof templates !== 'string' || templates.trim() === '') {
    throw new InvalidOptionError('templates', templates, 'a directory path or a TemplateLoader');
  }
  return new TemplateLoader({ projectDir: templates });
}

/** A built chain: run it, stream it, compose it into a Perform, or draw it. */
export class Chain<S extends z.ZodType, O extends Record<string, unknown>> {
  /** The chain's name. */
  readonly name: string;
  /** zod schema of the input. */
  readonly inputSchema: S;
  /** Node names in the order they were added. */
  readonly nodes: readonly string[];
  readonly #nodes: ReadonlyMap<string, ChainNode>;
  readonly #graph: Map<DAGNote, DAGNote[]>;
  readonly #client: ModelClient | undefined;
  readonly #templates: TemplateLoader | undefined;
  /** Most model calls one node may make in a run: 1, or an agent's `maxSteps` + 1 (its final answer). */
  readonly #callsPerNode: number;
  readonly #input: S;
  readonly #telemetry: ChainTelemetry | undefined;
  #hash: string | undefined;

  /** @internal Use {@link ChainBuilder.build}. */
  constructor(options: ChainOptions<S>, entries: readonly NodeEntry[]) {
    this.name = options.name ?? 'chain';
    this.inputSchema = options.input;
    this.#input = options.input;
    this.nodes = Object.freeze(entries.map((e) => e.name));
    const model = options.model ?? (process.env.SYMPHONIZER_MODEL?.trim() || 'sim:default');
    this.#client = options.client;
    this.#telemetry = options.telemetry;
    this.#templates = templateLoaderOf(options.templates);
    // One graph of notes for every run (per-run state lives in each Composition). A note's payload is its
    // node's settings, and the runner reads them back from it.
    const notes = new Map<string, DAGNote>();
    const nodes = new Map<string, ChainNode>();
    for (const e of entries) {
      const note = new DAGNote(e.name, nodeSettings(e, model) as Json);
      notes.set(e.name, note);
      nodes.set(e.name, chainNode(e, note.payload as ChainNode['settings']));
    }
    this.#nodes = nodes;
    this.#graph = new Map(
      entries.map((e) => [
        notes.get(e.name) as DAGNote,
        (e.spec.after ?? []).map((d) => notes.get(d) as DAGNote),
      ]),
    );
    let calls = 1;
    for (const node of nodes.values()) {
      if (node.settings.kind === 'agent') calls = Math.max(calls, (node.settings.maxSteps ?? 5) + 1);
    }
    this.#callsPerNode = calls;
  }

  /**
   * The content hash of the chain's definition (hex SHA-256): name, input schema, and per node its kind,
   * dependencies, model, parameters, template text, output schema (as JSON Schema), prompt and variables
   * functions' source, and tools (names, schemas, source). Processes that load the same module agree on it;
   * a changed chain gets another one (values its functions close over, and template partials, are not part
   * of it). Computed on first read.
   */
  get hash(): string {
    return (this.#hash ??= chainDefinitionHash(
      this.name,
      this.#input,
      this.#nodes.values(),
      this.#templates,
    ));
  }

  /** The client given to {@link chain} (its `client` option), if any: runs given no client of their own use it. */
  get client(): ModelClient | undefined {
    return this.#client;
  }

  /**
   * The model (`provider:model`) each node calls in a run with these options: the node's override, else the
   * run's `model`, else the node's own, else the chain's. Lets a caller check every provider before a run.
   * @throws {ChainDefinitionError} for an override of an unknown node.
   */
  models(options: Pick<ChainRunOptions, 'model' | 'overrides'> = {}): Readonly<Record<string, string>> {
    this.#checkOverrides(options.overrides);
    const models: Record<string, string> = {};
    for (const [name, node] of this.#nodes) {
      models[name] = overrideOf(name, options)?.model ?? node.settings.model;
    }
    return models;
  }

  /**
   * Runs the chain once.
   * @throws {InputValidationError} when the input fails the chain's schema (nothing runs).
   * @throws {ChainRunError} when a node fails or the run is cancelled; it keeps the outputs so far.
   */
  async run(input: z.input<S>, options: ChainRunOptions<O> = {}): Promise<ChainResult<O>> {
    const run = this.compose(input, options);
    await run.composition.start();
    return run.result;
  }

  /** Runs the chain and yields its events (tokens included) as they happen; `result` settles at the end. */
  stream(input: z.input<S>, options: ChainRunOptions<O> = {}): ChainStream<O> {
    const queue = new EventQueue<O>();
    const push = (event: ChainEvent<O>): void => {
      queue.push(event);
      options.onEvent?.(event);
    };
    let run: ChainRun<O>;
    try {
      run = this.compose(input, { ...options, streamTokens: options.streamTokens ?? true, onEvent: push });
    } catch (error) {
      const failed = Promise.reject(asError(error));
      failed.catch(() => undefined);
      return {
        runId: '',
        result: failed,
        [Symbol.asyncIterator]: () => ({
          next: async (): Promise<IteratorResult<ChainEvent<O>>> => {
            await failed;
            return { done: true, value: undefined };
          },
        }),
      };
    }
    void run.composition.start();
    return {
      runId: run.runId,
      result: run.result,
      [Symbol.asyncIterator]: () => queue[Symbol.asyncIterator](),
    };
  }

  /**
   * Validates the input and prepares a run without starting it: start it with `composition.start()`, or
   * hand `composition` to a Perform. `result` settles when the composition ends (it never starts by itself).
   * @throws {InputValidationError} when the input fails the chain's schema.
   */
  compose(input: z.input<S>, options: ChainRunOptions<O> = {}): ChainRun<O> {
    const parsed = this.inputSchema.safeParse(input);
    if (!parsed.success) {
      throw new InputValidationError(this.name, zodIssues(parsed.error));
    }
    this.#checkOverrides(options.overrides);
    const client = options.client ?? this.#client ?? defaultModelClient();
    const state = new RunState<O>(this.name, options.onEvent);
    const telemetry = telemetryOf(options.telemetry === undefined ? this.#telemetry : options.telemetry);
    // Tokens no one has seen (no onEvent) only go into the result, so a drop after some of them is retried.
    const retryAfterText = options.retryAfterText ?? options.onEvent === undefined;
    let ended!: (status: string) => void;
    const end = new Promise<string>((resolve) => {
      ended = resolve;
    });
    const composition: Composition = new Composition(this.#graph, {
      // Every model call of a node has the client's budget of tries; an agent's node makes several.
      maxTries: 1 + this.#callsPerNode * (client.maxTries - 1),
      signal: options.signal,
      onDone: (_c, status) => {
        ended(status);
      },
      configureNodeRunner: (note) => {
        if (!state.started) {
          state.started = true;
          state.telemetry = telemetry?.(this.name, composition.instanceId);
          if (state.observed)
            state.emit({
              type: 'chain-start',
              chain: this.name,
              runId: composition.instanceId,
              nodes: this.nodes,
            });
        }
        const restored = options.checkpoint?.restored?.[note.name];
        if (restored !== undefined) return restoredRunner(restored);
        return nodeRunner({
          node: this.#nodes.get(note.name) as ChainNode,
          input: parsed.data,
          client,
          compositionId: composition.instanceId,
          state,
          override: overrideOf(note.name, options),
          templates: this.#templates,
          timeoutMs: options.nodeTimeoutMs,
          streamTokens: options.streamTokens === true,
          retryAfterText,
        });
      },
      onNodeDone: (node, status, error) => {
        state.telemetry?.nodeDone(
          node.name,
          status,
          error,
          (composition.results.get(node.key) as CallResult | undefined)?.text,
        );
        const save = options.checkpoint?.save;
        if (
          save !== undefined &&
          status === 'completed' &&
          options.checkpoint?.restored?.[node.name] === undefined
        ) {
          const done = composition.results.get(node.key) as CallResult;
          save(node.name, {
            output: done.output,
            text: done.text,
            modelId: done.modelId,
            usage: state.usageByNode.get(node.name),
          });
        }
        if (!state.observed) return;
        const result = composition.results.get(node.key) as CallResult | undefined;
        state.emit({
          type: 'node-done',
          node: node.name,
          status,
          output: status === 'completed' ? result?.output : undefined,
          usage: state.usageByNode.get(node.name),
          error: error === undefined ? undefined : errorMessage(error),
        });
      },
    });
    const runId = composition.instanceId;
    const settle = (status: string): ChainResult<O> => {
      state.telemetry?.runDone(status, status === 'completed' ? undefined : composition.error);
      const outputs = recordOf<unknown>([]);
      for (const [key, value] of composition.results) outputs[key] = (value as CallResult).output;
      const trace = composition.trace();
      if (status !== 'completed') {
        const error = composition.error;
        const failure = new ChainRunError({
          chain: this.name,
          status: status === 'error' ? 'error' : 'cancelled',
          node: error instanceof NodeError ? error.nodeKey : undefined,
          cause: error instanceof NodeError ? error.cause : error,
          outputs,
          trace,
          usage: state.total(),
        });
        if (state.observed)
          state.emit({
            type: 'chain-done',
            status: failure.status,
            outputs: outputs as Partial<O>,
            usage: state.total(),
            error: failure.message,
          });
        throw failure;
      }
      const done: ChainResult<O> = {
        runId,
        outputs: outputs as O,
        trace,
        usage: state.total(),
        usageByNode: recordOf(state.usageByNode),
        steps: recordOf(state.steps),
        elapsedMs: composition.elapsedMs,
        simulated: state.simulated,
        cachedCalls: state.cachedCalls,
      };
      if (state.observed)
        state.emit({
          type: 'chain-done',
          status: 'completed',
          outputs: outputs as Partial<O>,
          usage: done.usage,
        });
      return done;
    };
    // The result follows the composition however it is started (by run(), a Perform, or the caller).
    const result = end.then(settle);
    result.catch(() => undefined); // a caller who only starts the composition must not see an unhandled rejection
    return { runId, composition, result };
  }

  /**
   * Runs the chain on many inputs at once through one Perform (water marks bound the runs in flight; the
   * client's rate limiters bound the requests). Settles every run; a bad input is a rejected entry. Inputs
   * are read and their runs prepared as room frees up (at most twice `highWater` prepared and not ended), so
   * memory follows the runs in flight, not the number of inputs.
   */
  async runAll(
    inputs: Iterable<z.input<S>>,
    options: ChainRunOptions<O> & PerformOptions = {},
  ): Promise<PromiseSettledResult<ChainResult<O>>[]> {
    const perform = new Perform({ highWater: options.highWater, lowWater: options.lowWater });
    // Enough prepared runs that Perform always has queued ones to start when it falls below its low water.
    const window = 2 * perform.highWater;
    const results: Promise<ChainResult<O>>[] = [];
    const iterator = inputs[Symbol.iterator]();
    let open = 0;
    let read = false;
    let finish!: () => void;
    let fail!: (error: unknown) => void;
    const finished = new Promise<void>((resolve, reject) => {
      finish = resolve;
      fail = reject;
    });
    const ended = (): void => {
      open -= 1;
      fill();
    };
    const fill = (): void => {
      while (!read && open < window) {
        let next: IteratorResult<z.input<S>>;
        try {
          next = iterator.next();
        } catch (error) {
          // The inputs themselves failed: runAll rejects with that (the runs started go on to their end).
          read = true;
          fail(error);
          return;
        }
        if (next.done === true) {
          read = true;
          break;
        }
        try {
          const run = this.compose(next.value, options);
          open += 1;
          run.result.then(ended, ended);
          void perform.add(run.composition);
          results.push(run.result);
        } catch (error) {
          const rejected = Promise.reject(asError(error));
          rejected.catch(() => undefined); // settled by allSettled below, maybe later than this turn
          results.push(rejected);
        }
      }
      if (read && open === 0) finish();
    };
    fill();
    await finished;
    return Promise.allSettled(results);
  }

  /** The graph as a Mermaid flowchart. */
  toMermaid(): string {
    return toMermaid(this.#nodes.values());
  }

  /** The graph in Graphviz DOT. */
  toDot(): string {
    return toDot(this.name, this.#nodes.values());
  }

  #checkOverrides(overrides: Readonly<Record<string, NodeOverride>> | undefined): void {
    for (const key of Object.keys(overrides ?? {})) {
      if (!this.#nodes.has(key)) {
        throw new ChainDefinitionError(`Override for unknown node "${key}".`, key, {
          hint: `nodes: ${this.nodes.join(', ')}`,
        });
      }
    }
  }
}

/** The override of node `name` in a run with these options: its own override over the run's `model`. */
function overrideOf(
  name: string,
  options: Pick<ChainRunOptions, 'model' | 'overrides'>,
): NodeOverride | undefined {
  return options.model === undefined
    ? options.overrides?.[name]
    : { model: options.model, ...options.overrides?.[name] };
}

/** The runner of a node restored from a checkpoint: its stored result, no model call, zero usage. */
function restoredRunner(entry: CheckpointedNode): NodeRunner {
  const text = entry.text ?? (typeof entry.output === 'string' ? entry.output : '');
  const modelId = entry.modelId ?? 'restored';
  const usage = { inputTokens: 0, outputTokens: 0 };
  const result: CallResult = {
    output: entry.output,
    text,
    modelId,
    usage,
    costUsd: 0,
    attempt: 1,
    simulated: false,
    requestId: undefined,
    response: { provider: 'checkpoint', model: modelId, text, toolCalls: [], finishReason: 'stop', usage },
  };
  return new NodeRunner({ executor: () => result });
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
