/**
 * Typed chains: a builder that adds prompt and agent nodes one by one, each seeing the typed outputs of the
 * nodes it runs after, and a `Chain` that runs them as a Composition (or many through a Perform).
 */
import { z } from 'zod';
import {
  Composition,
  DAGNote,
  NodeError,
  NodeRunner,
  Perform,
  RESERVED_NODE_NAMES,
  ReservedNameError,
  type Json,
  type NodeRecord,
  type PerformOptions,
  type RunContext,
} from '../core/index.ts';
import {
  ModelClient,
  costOf,
  type CallEvent,
  type CallResult,
  type CallSpec,
  type ChatMessage,
  type UsageTotals,
  addUsageTotals,
  emptyUsage,
  zodIssues,
} from '../providers/index.ts';
import { InvalidOptionError } from '../core/errors.ts';
import { TemplateLoader, defaultTemplateLoader } from '../prompts/index.ts';
import { ChainDefinitionError, ChainRunError, InputValidationError } from './errors.ts';
import { toolDefinition, type Tool } from './tool.ts';
import type {
  AgentSpec,
  AgentStep,
  AgentToolCall,
  ChainEvent,
  ChainResult,
  NodeOverride,
  PromptSpec,
  SpecOutput,
} from './types.ts';

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
   * transient failure (prompt nodes: a `retryTask()` child in the trace; agent nodes: each model call of
   * the loop; streamed nodes: the stream of each attempt). Tools of an agent are not bounded by it.
   * @default none (the provider's own request timeout applies: 120000 for OpenAI and Anthropic)
   */
  readonly nodeTimeoutMs?: number | undefined;
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

// Internal, type-erased forms of the specs (the builder's generics guarantee the types at its boundary).
type AnyContext = Readonly<Record<string, unknown>> & { readonly input: unknown };
interface Entry {
  readonly name: string;
  readonly kind: 'prompt' | 'agent';
  readonly spec: PromptSpec<unknown, Record<string, unknown>, string, z.ZodType | undefined> &
    Partial<Pick<AgentSpec<unknown, Record<string, unknown>, string, undefined>, 'tools' | 'maxSteps'>>;
}

type Simplify<T> = { [K in keyof T]: T[K] } & {};

const nodeName = /^[A-Za-z_][\w-]{0,63}$/;

/**
 * A null-prototype record of `entries`. Records keyed by node names (`outputs`, `usageByNode`, `steps`) are
 * built this way, so reading a name that is not a node gives `undefined`, never an inherited member.
 */
function recordOf<V>(entries: Iterable<readonly [string, V]>): Record<string, V> {
  const record = Object.create(null) as Record<string, V>;
  for (const [key, value] of entries) record[key] = value;
  return record;
}
let sharedClient: ModelClient | undefined;

/** The ModelClient chains use when given none (created on first use: simulated model, no limits). */
export function defaultModelClient(): ModelClient {
  return (sharedClient ??= new ModelClient());
}

/**
 * Starts a typed chain.
 *
 * @example
 * ```ts
 * const report = chain({ name: 'report', input: z.object({ topic: z.string() }) })
 *   .prompt('outline', { template: 'Outline a report on {{input.topic}}.', output: Outline })
 *   .prompt('draft', { after: ['outline'], prompt: ({ outline }) => `Write: ${outline.title}` })
 *   .build();
 * const { outputs } = await report.run({ topic: 'tides' }); // outputs.outline: z.infer<typeof Outline>
 * ```
 */
// eslint-disable-next-line @typescript-eslint/no-generated-empty-object-type -- a new chain has no outputs yet
export function chain<S extends z.ZodType>(options: ChainOptions<S>): ChainBuilder<S, Record<never, never>> {
  if (!(options.input instanceof z.ZodType)) {
    throw new ChainDefinitionError('chain({ input }) needs a zod schema for the input.', undefined, {
      hint: 'e.g. input: z.object({ topic: z.string() })',
    });
  }
  // eslint-disable-next-line @typescript-eslint/no-generated-empty-object-type -- as above
  return new ChainBuilder<S, Record<never, never>>(options, []);
}

/** The chain's loader for its `templates` option: a path becomes a layered loader with it searched first. */
function templateLoaderOf(templates: string | TemplateLoader | undefined): TemplateLoader | undefined {
  if (templates === undefined || templates instanceof TemplateLoader) return templates;
  if (typeof templates !== 'string' || templates.trim() === '') {
    throw new InvalidOptionError('templates', templates, 'a directory path or a TemplateLoader');
  }
  return new TemplateLoader({ projectDir: templates });
}

/** Adds nodes to a chain; each call returns a new builder whose output type includes the new node. */
export class ChainBuilder<S extends z.ZodType, O extends Record<string, unknown>> {
  readonly #options: ChainOptions<S>;
  readonly #entries: readonly Entry[];

  /** @internal Use {@link chain}. */
  constructor(options: ChainOptions<S>, entries: readonly Entry[]) {
    this.#options = options;
    this.#entries = entries;
  }

  /**
   * Adds a prompt node: one model call on a rendered prompt, returning text or (with `output`) a validated,
   * typed value.
   * @throws {ChainDefinitionError} for a duplicate or bad name, an unknown `after` node, or no prompt.
   * @throws {ReservedNameError} for a name every JavaScript object already has as a key (`__proto__`,
   *   `constructor`, `toString`, ...: see `RESERVED_NODE_NAMES`), code `reserved_name`.
   */
  prompt<
    N extends string,
    const D extends keyof O & string = never,
    X extends z.ZodType | undefined = undefined,
  >(
    name: N extends keyof O ? never : N,
    spec: PromptSpec<z.output<S>, O, D, X>,
  ): ChainBuilder<S, Simplify<O & { readonly [K in N]: SpecOutput<X> }>> {
    return this.#add(name, 'prompt', spec);
  }

  /**
   * Adds an agent node: the model may call `tools` (zod-typed functions) in a loop of at most `maxSteps`
   * turns; tool errors go back to the model as tool results; then the final answer (validated against
   * `output` when given).
   * @throws {ChainDefinitionError} as {@link ChainBuilder.prompt}, or for duplicate tool names.
   */
  agent<
    N extends string,
    const D extends keyof O & string = never,
    X extends z.ZodType | undefined = undefined,
  >(
    name: N extends keyof O ? never : N,
    spec: AgentSpec<z.output<S>, O, D, X>,
  ): ChainBuilder<S, Simplify<O & { readonly [K in N]: SpecOutput<X> }>> {
    const names = new Set<string>();
    for (const t of spec.tools) {
      if (names.has(t.name))
        throw new ChainDefinitionError(`Agent "${name}" has two tools named "${t.name}".`, name);
      names.add(t.name);
    }
    if (spec.maxSteps !== undefined && !(Number.isInteger(spec.maxSteps) && spec.maxSteps >= 1)) {
      throw new ChainDefinitionError(
        `Agent "${name}": maxSteps must be an integer >= 1, got ${String(spec.maxSteps)}.`,
        name,
      );
    }
    return this.#add(name, 'agent', spec);
  }

  /**
   * Finishes the chain.
   * @throws {ChainDefinitionError} when it has no node.
   */
  build(): Chain<S, O> {
    if (this.#entries.length === 0) {
      throw new ChainDefinitionError('A chain needs at least one node.', undefined, {
        hint: 'add .prompt(...) or .agent(...)',
      });
    }
    return new Chain<S, O>(this.#options, this.#entries);
  }

  #add<R>(name: string, kind: 'prompt' | 'agent', spec: object, _result?: R): R {
    const typed = spec as Entry['spec'];
    if (typeof name !== 'string' || !nodeName.test(name) || name === 'input') {
      throw new ChainDefinitionError(`Node name ${JSON.stringify(name)} is not allowed.`, name, {
        hint: 'use a letter, then letters, digits, _ or - (at most 64), and not "input"',
      });
    }
    if (RESERVED_NODE_NAMES.has(name)) throw new ReservedNameError(name);
    if (this.#entries.some((e) => e.name === name)) {
      throw new ChainDefinitionError(`The chain already has a node named "${name}".`, name);
    }
    for (const dep of typed.after ?? []) {
      if (!this.#entries.some((e) => e.name === dep)) {
        throw new ChainDefinitionError(
          `Node "${name}" runs after "${dep}", which is not in the chain (yet).`,
          name,
          {
            hint: `add "${dep}" before "${name}"; known: ${this.#entries.map((e) => e.name).join(', ') || 'none'}`,
          },
        );
      }
    }
    if (typed.template === undefined && typed.prompt === undefined) {
      throw new ChainDefinitionError(`Node "${name}" has neither a template nor a prompt.`, name, {
        hint: 'give template: "name-or-inline {{handlebars}}" or prompt: (context) => string',
      });
    }
    return new ChainBuilder(this.#options, [...this.#entries, { name, kind, spec: typed }]) as unknown as R;
  }
}

/** A built chain: run it, stream it, compose it into a Perform, or draw it. */
export class Chain<S extends z.ZodType, O extends Record<string, unknown>> {
  /** The chain's name. */
  readonly name: string;
  /** zod schema of the input. */
  readonly inputSchema: S;
  /** Node names in the order they were added. */
  readonly nodes: readonly string[];
  readonly #entries: ReadonlyMap<string, Entry>;
  readonly #graph: Map<DAGNote, DAGNote[]>;
  readonly #model: string;
  readonly #client: ModelClient | undefined;
  readonly #templates: TemplateLoader | undefined;

  /** @internal Use {@link ChainBuilder.build}. */
  constructor(options: ChainOptions<S>, entries: readonly Entry[]) {
    this.name = options.name ?? 'chain';
    this.inputSchema = options.input;
    this.nodes = Object.freeze(entries.map((e) => e.name));
    this.#entries = new Map(entries.map((e) => [e.name, e]));
    this.#model = options.model ?? (process.env.SYMPHONIZER_MODEL?.trim() || 'sim:default');
    this.#client = options.client;
    this.#templates = templateLoaderOf(options.templates);
    // One graph of notes for every run: per-run state lives in each Composition.
    const notes = new Map<string, DAGNote>();
    for (const e of entries) notes.set(e.name, new DAGNote(e.name, this.#payload(e)));
    this.#graph = new Map(
      entries.map((e) => [
        notes.get(e.name) as DAGNote,
        (e.spec.after ?? []).map((d) => notes.get(d) as DAGNote),
      ]),
    );
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
    for (const [name, entry] of this.#entries) {
      models[name] = overrideOf(name, options)?.model ?? entry.spec.model ?? this.#model;
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
    const queue: ChainEvent<O>[] = [];
    let wake: (() => void) | undefined;
    let ended = false;
    const push = (event: ChainEvent<O>): void => {
      queue.push(event);
      options.onEvent?.(event);
      if (event.type === 'chain-done') ended = true;
      wake?.();
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
      [Symbol.asyncIterator]: async function* () {
        for (;;) {
          const event = queue.shift();
          if (event !== undefined) {
            yield event;
            if (event.type === 'chain-done') return;
            continue;
          }
          if (ended) return;
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
        }
      },
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
    let ended!: (status: string) => void;
    const end = new Promise<string>((resolve) => {
      ended = resolve;
    });
    const composition: Composition = new Composition(this.#graph, {
      maxTries: client.maxTries,
      signal: options.signal,
      onDone: (_c, status) => {
        ended(status);
      },
      configureNodeRunner: (node) => {
        if (!state.started) {
          state.started = true;
          state.emit({
            type: 'chain-start',
            chain: this.name,
            runId: composition.instanceId,
            nodes: this.nodes,
          });
        }
        return this.#runner(node.name, parsed.data, client, composition, state, options);
      },
      onNodeDone: (node, status, error) => {
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
    const unsubscribe = client.subscribe((event) => {
      if (event.compositionId === runId) state.onCallEvent(event);
    });
    const settle = (status: string): ChainResult<O> => {
      unsubscribe();
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
   * client's rate limiters bound the requests). Settles every run; a bad input is a rejected entry.
   */
  async runAll(
    inputs: Iterable<z.input<S>>,
    options: ChainRunOptions<O> & PerformOptions = {},
  ): Promise<PromiseSettledResult<ChainResult<O>>[]> {
    const perform = new Perform({ highWater: options.highWater, lowWater: options.lowWater });
    const results: Promise<ChainResult<O>>[] = [];
    for (const input of inputs) {
      try {
        const run = this.compose(input, options);
        void perform.add(run.composition);
        results.push(run.result);
      } catch (error) {
        results.push(Promise.reject(asError(error)));
      }
    }
    return Promise.allSettled(results);
  }

  /** The graph as a Mermaid flowchart. */
  toMermaid(): string {
    const lines = ['flowchart TD', '  input([input])'];
    for (const [name, entry] of this.#entries) {
      const label = `${name}<br/><small>${entry.kind} · ${entry.spec.model ?? this.#model}</small>`;
      lines.push(`  ${name}${entry.kind === 'agent' ? `{{"${label}"}}` : `["${label}"]`}`);
    }
    for (const [name, entry] of this.#entries) {
      const after = entry.spec.after ?? [];
      if (after.length === 0) lines.push(`  input --> ${name}`);
      for (const dep of after) lines.push(`  ${dep} --> ${name}`);
    }
    return lines.join('\n');
  }

  /** The graph in Graphviz DOT. */
  toDot(): string {
    const lines = [`digraph ${JSON.stringify(this.name)} {`, '  rankdir=TB;', '  input [shape=oval];'];
    for (const [name, entry] of this.#entries) {
      const label = `${name}\\n${entry.kind} · ${entry.spec.model ?? this.#model}`;
      lines.push(
        `  ${JSON.stringify(name)} [shape=${entry.kind === 'agent' ? 'hexagon' : 'box'}, label="${label}"];`,
      );
    }
    for (const [name, entry] of this.#entries) {
      const after = entry.spec.after ?? [];
      if (after.length === 0) lines.push(`  input -> ${JSON.stringify(name)};`);
      for (const dep of after) lines.push(`  ${JSON.stringify(dep)} -> ${JSON.stringify(name)};`);
    }
    lines.push('}');
    return lines.join('\n');
  }

  #checkOverrides(overrides: Readonly<Record<string, NodeOverride>> | undefined): void {
    for (const key of Object.keys(overrides ?? {})) {
      if (!this.#entries.has(key)) {
        throw new ChainDefinitionError(`Override for unknown node "${key}".`, key, {
          hint: `nodes: ${this.nodes.join(', ')}`,
        });
      }
    }
  }

  #payload(entry: Entry): Json {
    const spec = entry.spec;
    const payload: Record<string, Json> = { kind: entry.kind, model: spec.model ?? this.#model };
    if (spec.template !== undefined) payload.template = spec.template;
    if (spec.temperature !== undefined) payload.temperature = spec.temperature;
    if (spec.maxTokens !== undefined) payload.maxTokens = spec.maxTokens;
    if (spec.output !== undefined) payload.output = spec.schemaName ?? entry.name;
    if (spec.tools !== undefined) payload.tools = spec.tools.map((t) => t.name);
    if (spec.maxSteps !== undefined) payload.maxSteps = spec.maxSteps;
    return payload;
  }

  #runner(
    name: string,
    input: unknown,
    client: ModelClient,
    composition: Composition,
    state: RunState<O>,
    options: ChainRunOptions<O>,
  ): NodeRunner {
    const entry = this.#entries.get(name) as Entry;
    const override = overrideOf(name, options);
    const labels = { nodeKey: name, compositionId: composition.instanceId };
    const build = (context: RunContext): CallSpec => {
      const spec = this.#callSpec(entry, input, context.inputs, override);
      state.emit({ type: 'node-start', node: name, attempt: context.attempt, model: spec.model });
      return spec;
    };
    // nodeTimeoutMs bounds each attempt of each model call (and is retried), not the runner as a whole:
    // a runner timeout would fail the run at the first hang.
    const timeoutMs = options.nodeTimeoutMs;
    if (entry.kind === 'agent') {
      return new NodeRunner({
        executor: (_params, context) =>
          this.#agent(entry, build(context), client, context, labels, state, timeoutMs),
      });
    }
    if (options.streamTokens === true && entry.spec.output === undefined) {
      // Tokens no one has seen (no onEvent) only go into the result, so a drop after some of them is retried.
      const retryAfterText = options.retryAfterText ?? options.onEvent === undefined;
      return new NodeRunner({
        executor: (_params, context) =>
          streamText(build(context), client, context, labels, state, { timeoutMs, retryAfterText }),
      });
    }
    return client.runner(build, { labels, timeoutMs: options.nodeTimeoutMs });
  }

  #callSpec(
    entry: Entry,
    input: unknown,
    inputs: Record<string, unknown>,
    override: NodeOverride | undefined,
  ): CallSpec {
    const spec = entry.spec;
    const context: Record<string, unknown> = { input };
    for (const dep of spec.after ?? []) {
      if (dep in inputs) context[dep] = (inputs[dep] as CallResult).output;
    }
    const typedContext = context as AnyContext;
    let system = spec.system;
    let user: string;
    const template = override?.template ?? spec.template;
    if (template !== undefined) {
      const variables = { ...context, ...spec.variables?.(typedContext) };
      const rendered = (this.#templates ?? defaultTemplateLoader)
        .load(template)
        .render(variables, { nodeKey: entry.name });
      system = rendered.system ?? system;
      user = rendered.user;
    } else {
      const prompt = (
        spec.prompt as (c: AnyContext) => string | { system?: string | undefined; user: string }
      )(typedContext);
      if (typeof prompt === 'string') user = prompt;
      else {
        system = prompt.system ?? system;
        user = prompt.user;
      }
    }
    return {
      model: override?.model ?? spec.model ?? this.#model,
      system,
      prompt: user,
      schema: spec.output,
      schemaName:
        spec.output === undefined
          ? undefined
          : (spec.schemaName ?? entry.name.replace(/[^a-zA-Z0-9_-]/g, '_')),
      temperature: override?.temperature ?? spec.temperature,
      maxTokens: override?.maxTokens ?? spec.maxTokens,
    };
  }

  async #agent(
    entry: Entry,
    base: CallSpec,
    client: ModelClient,
    context: RunContext,
    labels: { nodeKey: string; compositionId: string },
    state: RunState<O>,
    timeoutMs: number | undefined,
  ): Promise<CallResult> {
    const tools = entry.spec.tools ?? [];
    const byName = new Map<string, Tool>(tools.map((t) => [t.name, t]));
    const definitions = tools.map(toolDefinition);
    const maxSteps = entry.spec.maxSteps ?? 5;
    const messages: ChatMessage[] = [{ role: 'user', content: base.prompt ?? '' }];
    const steps: AgentStep[] = [];
    state.steps.set(entry.name, steps);
    const { schema: _schema, schemaName: _schemaName, prompt: _prompt, ...plain } = base;
    const options = { signal: context.signal, labels, timeoutMs };
    for (let step = 1; step <= maxSteps; step++) {
      const reply = await client.call({ ...plain, messages, tools: definitions }, options);
      const calls = reply.response.toolCalls;
      if (calls.length === 0) {
        const done: AgentStep = { step, text: reply.text, toolCalls: [] };
        steps.push(done);
        state.emit({ type: 'agent-step', node: entry.name, step: done });
        if (base.schema === undefined) return reply;
        messages.push({ role: 'assistant', content: reply.text });
        break;
      }
      messages.push({ role: 'assistant', content: reply.text, toolCalls: calls });
      const outcomes: AgentToolCall[] = [];
      for (const call of calls) {
        const outcome = await runTool(
          byName.get(call.name),
          call.id,
          call.name,
          call.arguments,
          context.signal,
          [...byName.keys()],
        );
        outcomes.push(outcome);
        messages.push({ role: 'tool', toolCallId: call.id, content: outcome.result, isError: !outcome.ok });
      }
      const done: AgentStep = { step, text: reply.text, toolCalls: outcomes };
      steps.push(done);
      state.emit({ type: 'agent-step', node: entry.name, step: done });
    }
    // The final answer, without tools: validated against the node's schema when it has one.
    messages.push({
      role: 'user',
      content:
        base.schema === undefined
          ? 'Give your final answer now, without calling tools.'
          : 'Give your final answer now as JSON matching the requested schema, without calling tools.',
    });
    return client.call({ ...plain, messages, schema: base.schema, schemaName: base.schemaName }, options);
  }
}

/** Per-run bookkeeping: events out, usage by node, agent steps. */
class RunState<O> {
  readonly usageByNode = new Map<string, UsageTotals>();
  readonly steps = new Map<string, AgentStep[]>();
  simulated = false;
  cachedCalls = 0;
  started = false;
  readonly #chain: string;
  readonly #onEvent: ((event: ChainEvent<O>) => void) | undefined;

  constructor(chainName: string, onEvent: ((event: ChainEvent<O>) => void) | undefined) {
    this.#chain = chainName;
    this.#onEvent = onEvent;
  }

  emit(event: ChainEvent<O>): void {
    if (this.#onEvent === undefined) return;
    try {
      this.#onEvent(Object.freeze(event));
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  onCallEvent(event: CallEvent): void {
    const node = event.nodeKey ?? this.#chain;
    switch (event.type) {
      case 'call': {
        if (event.simulated) this.simulated = true;
        if (event.cached) this.cachedCalls += 1;
        const before = this.usageByNode.get(node) ?? emptyUsage();
        this.usageByNode.set(
          node,
          addUsageTotals(before, {
            inputTokens: event.usage.inputTokens,
            outputTokens: event.usage.outputTokens,
            totalTokens: event.usage.inputTokens + event.usage.outputTokens,
            costUsd: event.costUsd ?? 0,
            calls: 1,
            unpricedCalls: event.costUsd === undefined ? 1 : 0,
          }),
        );
        return;
      }
      case 'retry':
        this.emit({
          type: 'retry',
          node,
          attempt: event.attempt,
          delayMs: event.delayMs,
          reason: event.reason,
          kind: event.kind,
          ...(event.discardText === true ? { discardTokens: true as const } : {}),
        });
        return;
      case 'rate-limit-wait':
        this.emit({ type: 'rate-limit-wait', node, delayMs: event.delayMs, reason: event.reason });
        return;
      default: {
        const never: never = event;
        return never;
      }
    }
  }

  total(): UsageTotals {
    let total = emptyUsage();
    for (const u of this.usageByNode.values()) total = addUsageTotals(total, u);
    return total;
  }
}

async function streamText<O>(
  spec: CallSpec,
  client: ModelClient,
  context: RunContext,
  labels: { nodeKey: string; compositionId: string },
  state: RunState<O>,
  options: { readonly timeoutMs: number | undefined; readonly retryAfterText: boolean },
): Promise<CallResult> {
  let text = '';
  let retries = 0;
  const stream = client.stream(spec, { ...options, signal: context.signal, labels });
  for await (const event of stream) {
    // The client has already reported the retry (a `retry` event with `discardTokens`); start over.
    if (event.type === 'retry') {
      text = '';
      retries += 1;
    } else if (event.type === 'text-delta') {
      text += event.text;
      state.emit({ type: 'token', node: labels.nodeKey, text: event.text });
    } else if (event.type === 'finish') {
      const response = event.response;
      return {
        output: response.text === '' ? text : response.text,
        text: response.text === '' ? text : response.text,
        modelId: spec.model,
        usage: response.usage,
        costUsd: costOf(spec.model, response.usage).costUsd,
        attempt: context.attempt + retries,
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

async function runTool(
  t: Tool | undefined,
  id: string,
  name: string,
  args: unknown,
  signal: AbortSignal,
  known: readonly string[],
): Promise<AgentToolCall> {
  if (t === undefined) {
    return {
      id,
      name,
      arguments: args,
      ok: false,
      result: `Error: there is no tool "${name}". Tools: ${known.join(', ')}.`,
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
    if (signal.aborted) throw error;
    return { id, name, arguments: args, ok: false, result: `Error: ${errorMessage(error)}` };
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

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Lists the NodeRecords of a run's trace as short lines, for logs and the CLI. */
export function formatTrace(trace: readonly NodeRecord[]): string[] {
  return trace.map((r) => {
    const ms = r.durationMs === undefined ? '' : ` ${r.durationMs.toFixed(1)} ms`;
    const error =
      r.error === undefined
        ? ''
        : ` — ${r.error.name}${r.error.status === undefined ? '' : ` ${r.error.status}`}: ${r.error.message}`;
    return `${r.key} ${r.status} (attempt ${r.attempt})${ms}${error}`;
  });
}
