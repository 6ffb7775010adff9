import type { DAGNote } from './dag-note.ts';
import {
  CancelledError,
  ContinueAfterError,
  InvalidOptionError,
  NodeError,
  NodeTimeoutError,
  RunnerStateError,
  StopScheduleError,
  SymphonizerError,
  TryAgainError,
  describe,
} from './errors.ts';
import { compileGraph, type Graph, type GraphPlan } from './graph.ts';
import { formatId, nextSeq } from './ids.ts';
import {
  NodeRunner,
  beginRunner,
  inputsSymbol,
  seqOf,
  settledSymbol,
  type SettleTarget,
} from './node-runner.ts';
import type { CompositionStatus, NodeDoneStatus } from './status.ts';

/** Options of a {@link Composition}. */
export interface CompositionOptions {
  /** Called exactly once when the composition ends `completed`, `error` or `cancelled`, before `start()` settles. */
  readonly onDone?:
    | ((composition: Composition, status: CompositionStatus, error: unknown, elapsedMs: number) => void)
    | undefined;
  /** Called at every end of a node's run (including each `retrying` try), in order. */
  readonly onNodeDone?: ((node: DAGNote, status: NodeDoneStatus, error: unknown) => void) | undefined;
  /** Makes the runner of a node; alternative to overriding {@link Composition.configureNodeRunner}. */
  readonly configureNodeRunner?: ((node: DAGNote, composition: Composition) => NodeRunner) | undefined;
  /** Most nodes of this composition in flight at once (a retry waiting for its delay is not in flight). @default Infinity */
  readonly concurrency?: number | undefined;
  /** Aborting it ends the composition as `cancelled` and cancels its running runners. */
  readonly signal?: AbortSignal | undefined;
  /** Most tries of one node, first run included, when it keeps throwing `TryAgainError`. @default 3 */
  readonly maxTries?: number | undefined;
}

/** A note that brings its own runner; the default {@link Composition.configureNodeRunner} uses it. */
export interface RunnableNote {
  /** Makes a fresh runner for this note in `composition`. */
  createRunner(composition: Composition): NodeRunner;
}

/** The JSON record of one end of a node's run; see {@link Composition.trace}. */
export interface NodeRecord {
  readonly key: string;
  readonly name: string;
  readonly status: NodeDoneStatus;
  readonly attempt: number;
  readonly runnerId?: string;
  readonly parentId?: string;
  /**
   * Epoch milliseconds (fractional) when the composition began the node: made its runner (see
   * {@link Composition.configureNodeRunner}) and started it.
   */
  readonly startedAt?: number;
  readonly endedAt?: number;
  readonly durationMs?: number;
  /** The error of a failed try; `status` is the HTTP status of a provider error (or of the error it wraps). */
  readonly error?: {
    readonly name: string;
    readonly message: string;
    readonly code?: string;
    readonly status?: number;
  };
}

interface StartDeferred {
  readonly promise: Promise<CompositionStatus>;
  readonly resolve: (status: CompositionStatus) => void;
  readonly reject: (error: unknown) => void;
}

const NONE: unknown[] = [];
const NO_OPTIONS: CompositionOptions = Object.freeze({});
/** Marks a node without a result in `#values` (undefined is a valid result). */
const unset: unique symbol = Symbol('unset');
/** Node end statuses by their code in the end log. */
const END_STATUS: readonly NodeDoneStatus[] = [
  'completed',
  'completed_error',
  'retrying',
  'error',
  'timed_out',
  'cancelled',
];
const END_CODE: Readonly<Record<NodeDoneStatus, number>> = {
  completed: 0,
  completed_error: 1,
  retrying: 2,
  error: 3,
  timed_out: 4,
  cancelled: 5,
};
/** Numbers per record of the end log: node index, status code, runner seq (-1: none), attempt, start, end. */
const END_WIDTH = 6;
/**
 * A clock reading taken with no code outside the core run since, or NaN: a node started now may use it as its
 * start time instead of reading the clock again. One for the module (JavaScript runs one thing at a time):
 * whoever sets it resets it to NaN before its synchronous turn ends, and before any outside code runs.
 */
let stamp = Number.NaN;

/** The state of a composition that few runs need, out of line so that a plain composition stays small. */
class Rare {
  error: unknown = undefined;
  /** The promise of `start()`, made only when someone calls it. */
  deferred: StartDeferred | undefined = undefined;
  results: Map<string, unknown> | undefined = undefined;
  /** How much of the end log is already reflected in `results`. */
  resultsUpTo = 0;
  /** Per end (2 slots each): the error and the runner's parent id, made only when one has either. */
  endExtras: unknown[] | undefined = undefined;
  /** Pending retry timers by node index. */
  retryTimers: Map<number, ReturnType<typeof setTimeout>> | undefined = undefined;
  aborting = false;
  abortListener: (() => void) | undefined = undefined;
}

/** A composition's options once validated. */
interface Settings {
  readonly concurrency: number;
  readonly maxTries: number;
  readonly onDone: CompositionOptions['onDone'];
  readonly onNodeDone: CompositionOptions['onNodeDone'];
  readonly configure: CompositionOptions['configureNodeRunner'];
  readonly signal: AbortSignal | undefined;
}
const HOOKS = ['onDone', 'onNodeDone', 'configureNodeRunner'] as const;
const DEFAULTS: Settings = Object.freeze({
  concurrency: Infinity,
  maxTries: 3,
  onDone: undefined,
  onNodeDone: undefined,
  configure: undefined,
  signal: undefined,
});
/** Most nodes of a plan whose nodes get fast-object inputs; see `#startNode`. */
const SMALL_PLAN = 64;
const origin = performance.timeOrigin;
const perf = performance;
const now = (): number => origin + perf.now();

/** @internal The method a {@link StartListener} implements. */
export const startEndedSymbol: unique symbol = Symbol('symphonizer.startEnded');

/**
 * @internal Hears a start made with {@link startWith} settle, as `start()`'s promise would: with the status,
 * or `failed` with the error `onDone` threw. `token` is what was passed to `startWith`.
 */
export interface StartListener {
  [startEndedSymbol](token: unknown, status: CompositionStatus, failed: boolean, error: unknown): void;
}

/**
 * @internal Starts (or resumes) a composition like `start()` but tells `listener` instead of making a promise
 * (a Perform runs thousands of compositions). False, doing nothing, unless the composition is new or paused
 * with no one waiting on it: then the caller uses `start()`.
 */
export let startWith: (composition: Composition, listener: StartListener, token: unknown) => boolean;

/**
 * A DAG run: each node's runner runs once its predecessors are done, concurrently where the graph allows.
 * All run state lives here, never on the notes, so many compositions may share one graph.
 *
 * @example
 * ```ts
 * const a = new DAGNote('A'), b = new DAGNote('B');
 * const composition = new Composition(new Map([[b, [a]]]), {
 *   configureNodeRunner: (node) => new NodeRunner({ executor: (_p, ctx) => `${node.name} after ${Object.keys(ctx.inputs)}` }),
 * });
 * await composition.start(); // 'completed'
 * composition.results.get('B'); // 'B after A'
 * ```
 */
export class Composition implements SettleTarget {
  // The id string is formatted on read: a queued composition should cost little.
  readonly #seq = nextSeq();
  readonly #plan: GraphPlan;
  /** The validated options; compositions made without any share one record. */
  readonly #options: Settings;

  #status: CompositionStatus = 'new';
  /** What few runs need (an error, a start() promise, results read, retries, a signal): made on first use. */
  #rare: Rare | undefined;
  #startedAt: number | undefined;
  #endedAt: number | undefined;
  /** Who started this composition through {@link startWith}, and their token. */
  #listener: StartListener | undefined;
  #token: unknown;
  // Per-run state: allocated at the first start() so a queued composition costs little memory.
  #remaining: number[] | undefined;
  /** The runner of each node while it may still run (dropped once the node is done). */
  #runners: (NodeRunner | undefined)[] = NONE as (NodeRunner | undefined)[];
  /** Each node's result (`unset` until it completes). */
  #values: unknown[] = NONE;
  /** Flat log of node ends: index, status, runner (or undefined), error. */
  /**
   * The end log, all numbers (END_WIDTH per end; a double array, so no box per timestamp): what the trace and
   * results need, so that a done node's runner is not kept. A finished composition that outlives a young
   * collection would otherwise keep every runner of its run alive into the old generation.
   */
  #ends: number[] | undefined;
  /** Used length of `#ends` (it is sized for one end per node up front). */
  #endsLength = 0;
  /**
   * Ready nodes, a ring of one slot per node (a node waits in it at most once: it is queued when its last
   * predecessor ends or when a retry of it is due, never while queued or running).
   */
  #ready: number[] = NONE as number[];
  #readyHead = 0;
  /** How many nodes wait in `#ready`. */
  #readyCount = 0;
  #inFlight = 0;
  /** True while {@link Composition.#pump} runs; nested settles then only queue. */
  #pumping = false;
  #doneCount = 0;
  /** Set once a terminal cause (failure, stop, abort) is known; the status follows when nothing runs. */
  #ending: 'error' | 'cancelled' | undefined;

  static {
    startWith = (composition, listener, token) => {
      const status = composition.#status;
      if ((status !== 'new' && status !== 'paused') || composition.#rare?.deferred !== undefined)
        return false;
      if (composition.#listener !== undefined) return false;
      composition.#listener = listener;
      composition.#token = token;
      if (status === 'new') composition.#firstStart();
      else composition.#resume();
      return true;
    };
  }

  /**
   * Validates the graph eagerly.
   * @throws {InvalidGraphError} for a malformed graph or equal keys with different payloads (`conflicting_node`).
   * @throws {CycleError} when the graph has a cycle.
   * @throws {InvalidOptionError} for a bad option.
   */
  constructor(graph: Graph, options: CompositionOptions = NO_OPTIONS) {
    this.#plan = compileGraph(graph);
    this.#options = options === NO_OPTIONS ? DEFAULTS : settingsOf(options);
  }

  /** Unique per composition. */
  get instanceId(): string {
    return formatId('c', this.#seq);
  }
  /** Current status. While a stop or failure waits for running nodes to finish, this is still `running`. */
  get status(): CompositionStatus {
    return this.#status;
  }
  /** `status === 'completed'`. */
  get completed(): boolean {
    return this.#status === 'completed';
  }
  /** Node key → its runner's result. Nodes that failed or ended with `ContinueAfterError` have no entry. */
  get results(): ReadonlyMap<string, unknown> {
    // Built on read, incrementally from the end log, so the hot path never touches a Map.
    const ends = this.#ends;
    const rare = this.#more();
    if (ends === undefined) return (rare.results ??= new Map());
    const results = (rare.results ??= new Map());
    const length = this.#endsLength;
    for (let i = rare.resultsUpTo; i < length; i += END_WIDTH) {
      if (ends[i + 1] === END_CODE.completed) {
        const index = ends[i] as number;
        results.set(this.#plan.keys[index], this.#values[index]);
      }
    }
    rare.resultsUpTo = length;
    return results;
  }
  /** Why the composition failed or was cancelled: a `NodeError`, a `StopScheduleError` or a `CancelledError`. */
  get error(): unknown {
    return this.#rare?.error;
  }
  /** The graph's nodes, one per key, in first-seen order. */
  get nodes(): readonly DAGNote[] {
    return this.#plan.nodes;
  }
  /** Wall time from the first `start()` to the end (or to now, while running), pauses included. */
  get elapsedMs(): number {
    if (this.#startedAt === undefined) return 0;
    return (this.#endedAt ?? now()) - this.#startedAt;
  }

  /**
   * Makes the runner of a node. Override it in a subclass, or pass the `configureNodeRunner` option; by
   * default a note with a `createRunner(composition)` method ({@link RunnableNote}) makes its own.
   * @throws {RunnerStateError} when no runner can be made for the node.
   */
  configureNodeRunner(node: DAGNote): NodeRunner {
    const configure = this.#options.configure;
    if (configure !== undefined) return configure(node, this);
    const factory = (node as Partial<RunnableNote>).createRunner;
    if (typeof factory === 'function') return factory.call(node, this);
    throw new RunnerStateError(
      `No runner for node "${node.key}".`,
      'pass configureNodeRunner in the Composition options, override configureNodeRunner in a subclass, or give the note a createRunner() method',
    );
  }

  /**
   * Runs the composition until it ends, pauses or stops; call again after a pause to resume. Resolves with the
   * resulting status once no node of it is running. Called while a start is in flight it returns the same
   * promise; called after the end it resolves at once with the final status. Rejects only if `onDone` throws.
   */
  start(): Promise<CompositionStatus> {
    switch (this.#status) {
      case 'completed':
      case 'error':
      case 'cancelled':
        return Promise.resolve(this.#status);
      case 'running':
        return (this.#more().deferred ??= makeDeferred()).promise;
      case 'paused': {
        const deferred = (this.#more().deferred ??= makeDeferred());
        this.#resume();
        return deferred.promise;
      }
      case 'new': {
        const deferred = (this.#more().deferred = makeDeferred());
        this.#firstStart();
        return deferred.promise;
      }
      default:
        return assertNever(this.#status);
    }
  }

  /** No new nodes start; running ones finish, then `start()` resolves `paused`. False unless running. */
  pause(): boolean {
    if (this.#status !== 'running' || this.#ending !== undefined) return false;
    this.#status = 'paused';
    if (this.#inFlight === 0) this.#settlePaused();
    return true;
  }

  /**
   * Ends the composition as `cancelled`: no new nodes start, running ones finish. On a new or paused
   * composition with nothing running it ends at once. False if it had already ended.
   */
  stop(): boolean {
    switch (this.#status) {
      case 'completed':
      case 'error':
      case 'cancelled':
        return false;
      case 'new':
        this.#finish('cancelled');
        return true;
      case 'running':
      case 'paused':
        this.#terminate('cancelled', undefined);
        return true;
      default:
        return assertNever(this.#status);
    }
  }

  /**
   * One JSON-serialisable record per end of a node's run (each retry is a record of its own), in the order
   * they ended.
   */
  trace(): NodeRecord[] {
    const ends = this.#ends ?? [];
    const extras = this.#rare?.endExtras;
    const records: NodeRecord[] = [];
    for (let i = 0, k = 0; i < this.#endsLength; i += END_WIDTH, k += 2) {
      const node = this.#plan.nodes[ends[i] as number] as DAGNote;
      const seq = ends[i + 2] as number;
      const record: { -readonly [K in keyof NodeRecord]: NodeRecord[K] } = {
        key: node.key,
        name: node.name,
        status: END_STATUS[ends[i + 1] as number] as NodeDoneStatus,
        attempt: ends[i + 3] as number,
      };
      if (seq >= 0) {
        record.runnerId = formatId('r', seq);
        const parentId = extras?.[k + 1] as string | undefined;
        if (parentId !== undefined) record.parentId = parentId;
        const startedAt = ends[i + 4] as number;
        const endedAt = ends[i + 5] as number;
        if (!Number.isNaN(startedAt)) record.startedAt = startedAt;
        if (!Number.isNaN(endedAt)) record.endedAt = endedAt;
        if (!Number.isNaN(startedAt) && !Number.isNaN(endedAt)) record.durationMs = endedAt - startedAt;
      }
      const error = extras?.[k];
      if (error !== undefined) record.error = errorInfo(error);
      records.push(record);
    }
    return records;
  }

  #more(): Rare {
    return (this.#rare ??= new Rare());
  }

  #resume(): void {
    this.#status = 'running';
    this.#pump();
  }

  /** The per-run state, made at the first start so that a queued composition costs little. */
  #allocateRun(): void {
    const plan = this.#plan;
    const count = plan.nodes.length;
    // Copies of prefilled templates: one allocation each, already of the final elements kind (a `new Array(n)`
    // filled in a loop is made holey of small integers first, then copied again as doubles).
    this.#remaining = plan.indegree.slice();
    this.#runners = new Array<NodeRunner | undefined>(count);
    this.#values = filled(UNSET_TEMPLATE, count, unset);
    this.#ends = filled(NAN_TEMPLATE, END_WIDTH * count, Number.NaN); // a double array: timestamps unboxed
    this.#ready = filled(ZERO_TEMPLATE, count, 0);
  }

  #firstStart(): void {
    const plan = this.#plan;
    // Started as another composition of a Perform ends, it reuses that end's reading (NaN: none fresh).
    const startedAt = stamp === stamp ? stamp : now();
    this.#startedAt = startedAt;
    this.#status = 'running';
    const signal = this.#options.signal;
    if (signal !== undefined) {
      if (signal.aborted) {
        this.#more().error = new CancelledError(signal.reason);
        this.#finish('cancelled');
        return;
      }
      const listener = (): void => {
        this.#abort(signal.reason);
      };
      signal.addEventListener('abort', listener, { once: true });
      this.#more().abortListener = listener;
    }
    this.#allocateRun();
    if (plan.nodes.length === 0) {
      this.#finish('completed');
      return;
    }
    for (const root of plan.roots) this.#enqueue(root);
    stamp = startedAt;
    this.#pump();
    stamp = Number.NaN;
  }

  /** Marks node `index` ready; {@link Composition.#pump} starts it when allowed. */
  #enqueue(index: number): void {
    const ready = this.#ready;
    let at = this.#readyHead + this.#readyCount;
    if (at >= ready.length) at -= ready.length;
    ready[at] = index;
    this.#readyCount += 1;
  }

  /**
   * Starts ready nodes while allowed. A trampoline: a node that settles synchronously (a sync executor) only
   * queues its successors, and this loop starts them, so a long chain of sync nodes never grows the stack.
   */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    const ready = this.#ready;
    try {
      while (
        this.#readyCount > 0 &&
        this.#status === 'running' &&
        this.#ending === undefined &&
        this.#inFlight < this.#options.concurrency
      ) {
        const index = ready[this.#readyHead] as number;
        this.#readyHead = this.#readyHead + 1 === ready.length ? 0 : this.#readyHead + 1;
        this.#readyCount -= 1;
        // Taken out of `stamp` before outside code (configureNodeRunner, the executor) runs, so that a
        // composition started from inside it cannot take the reading as its own.
        const at = stamp;
        stamp = Number.NaN;
        this.#startNode(index, at);
      }
    } finally {
      this.#pumping = false;
    }
    if (this.#status === 'paused' && this.#inFlight === 0) this.#settlePaused();
  }

  /** Starts node `index`; `at` is a fresh clock reading to use as its start time, or NaN. */
  #startNode(index: number, at: number): void {
    const plan = this.#plan;
    const node = plan.nodes[index] as DAGNote;
    const runners = this.#runners;
    let runner = runners[index];
    if (runner === undefined) {
      try {
        runner = this.configureNodeRunner(node);
        if (!(runner instanceof NodeRunner)) {
          throw new RunnerStateError(
            `configureNodeRunner returned ${describe(runner)} for node "${node.key}", not a NodeRunner.`,
          );
        }
      } catch (error) {
        this.#recordEnd(index, 'error', undefined, error);
        this.#terminate('error', new NodeError(node.key, error));
        return;
      }
      runners[index] = runner;
    }
    this.#inFlight += 1;
    beginRunner(runner, node, this, index, at);
  }

  /** @internal Builds node `index`'s `context.inputs`, on the executor's first read of them. */
  [inputsSymbol](index: number): Record<string, unknown> {
    const plan = this.#plan;
    // Null prototype: a predecessor's key is only ever its own entry, never an inherited member. A small plan
    // has few key sets, so a fast object (a third of a dictionary's size) stays cheap; a large one, with
    // thousands of distinct names, would make V8 build a hidden class per node: a dictionary is cheaper there.
    let inputs: Record<string, unknown>;
    if (plan.nodes.length <= SMALL_PLAN) {
      inputs = {};
      Object.setPrototypeOf(inputs, null);
    } else {
      inputs = Object.create(null) as Record<string, unknown>;
    }
    const values = this.#values;
    for (const p of plan.preds[index] as readonly number[]) {
      const value = values[p];
      if (value !== unset) inputs[plan.keys[p] as string] = value;
    }
    return inputs;
  }

  /** @internal Called by a runner of this composition when it settles. */
  [settledSymbol](index: number, runner: NodeRunner, ok: boolean, value: unknown, endStamp: number): void {
    stamp = endStamp;
    this.#settled(index, runner, ok, value);
    stamp = Number.NaN;
  }

  #settled(index: number, runner: NodeRunner, ok: boolean, value: unknown): void {
    this.#inFlight -= 1;
    const plan = this.#plan;
    const key = plan.keys[index] as string;
    if (ok) {
      this.#values[index] = value;
      this.#recordEnd(index, 'completed', runner, undefined);
      this.#nodeDone(index);
    } else if (value instanceof TryAgainError) {
      if (this.#ending !== undefined) {
        this.#recordEnd(index, 'cancelled', runner, value);
      } else if (runner.attempt < this.#options.maxTries) {
        this.#recordEnd(index, 'retrying', runner, value);
        this.#scheduleRetry(index, runner.retryTask(), value.delayMs);
      } else {
        this.#recordEnd(index, 'error', runner, value);
        this.#terminate('error', new NodeError(key, value));
      }
    } else if (value instanceof ContinueAfterError) {
      this.#recordEnd(index, 'completed_error', runner, value);
      this.#nodeDone(index);
    } else if (value instanceof StopScheduleError) {
      this.#recordEnd(index, 'cancelled', runner, value);
      this.#terminate('cancelled', value);
    } else if (value instanceof CancelledError && this.#rare?.aborting === true) {
      this.#recordEnd(index, 'cancelled', runner, value);
    } else if (value instanceof NodeTimeoutError && runner.status === 'timed_out') {
      this.#recordEnd(index, 'timed_out', runner, value);
      this.#terminate('error', new NodeError(key, value));
    } else {
      this.#recordEnd(index, runner.status === 'cancelled' ? 'cancelled' : 'error', runner, value);
      this.#terminate('error', new NodeError(key, value));
    }
    this.#afterSettle();
  }

  /** Marks node `index` done and releases its successors. */
  #nodeDone(index: number): void {
    this.#doneCount += 1;
    const remaining = this.#remaining as number[];
    for (const s of this.#plan.succs[index] as readonly number[]) {
      const left = (remaining[s] as number) - 1;
      remaining[s] = left;
      if (left === 0) this.#enqueue(s);
    }
  }

  #afterSettle(): void {
    if (this.#ending !== undefined) {
      if (this.#inFlight === 0) this.#finish(this.#ending);
      return;
    }
    if (this.#doneCount === this.#plan.nodes.length) {
      this.#finish('completed');
      return;
    }
    if (this.#readyCount > 0 || this.#status === 'paused') this.#pump();
  }

  #scheduleRetry(index: number, child: NodeRunner, delayMs: number): void {
    this.#runners[index] = child;
    if (delayMs <= 0) {
      this.#enqueue(index);
      return;
    }
    const timer = setTimeout(() => {
      this.#rare?.retryTimers?.delete(index);
      this.#enqueue(index);
      this.#pump();
    }, delayMs);
    (this.#more().retryTimers ??= new Map()).set(index, timer);
  }

  #recordEnd(index: number, status: NodeDoneStatus, runner: NodeRunner | undefined, error: unknown): void {
    const ends = (this.#ends ??= []);
    const at = this.#endsLength;
    ends[at] = index;
    ends[at + 1] = END_CODE[status];
    let parentId: string | undefined;
    if (runner === undefined) {
      ends[at + 2] = -1;
      ends[at + 3] = 1;
      ends[at + 4] = Number.NaN;
      ends[at + 5] = Number.NaN;
    } else {
      ends[at + 2] = seqOf(runner);
      ends[at + 3] = runner.attempt;
      ends[at + 4] = runner.startedAt ?? Number.NaN;
      ends[at + 5] = runner.endedAt ?? Number.NaN;
      parentId = runner.parentId;
      // Done for good (a retry has a child runner): the log holds all the trace needs of it.
      if (status !== 'retrying' && this.#runners[index] === runner) this.#runners[index] = undefined;
    }
    if (error !== undefined || parentId !== undefined) {
      const extras = (this.#more().endExtras ??= []);
      const k = (at / END_WIDTH) * 2;
      extras[k] = error;
      extras[k + 1] = parentId;
    }
    this.#endsLength = at + END_WIDTH;
    const hook = this.#options.onNodeDone;
    if (hook !== undefined) {
      stamp = Number.NaN; // outside code runs now
      try {
        hook(this.#plan.nodes[index] as DAGNote, status, error);
      } catch (hookError) {
        // A throwing hook is a bug in the caller's code: fail the composition with it, naming the node.
        this.#terminate('error', new NodeError(this.#plan.keys[index] as string, hookError));
      }
    }
  }

  /** Records the first terminal cause; the composition ends once nothing runs. */
  #terminate(status: 'error' | 'cancelled', error: unknown): void {
    if (this.#ending !== undefined || this.#isFinal()) return;
    this.#ending = status;
    const rare = this.#rare;
    if (rare !== undefined || error !== undefined) this.#more().error = error;
    for (const [index, timer] of rare?.retryTimers ?? []) {
      clearTimeout(timer);
      this.#recordEnd(
        index,
        'cancelled',
        this.#runners[index],
        new CancelledError('the composition ended before the retry'),
      );
    }
    rare?.retryTimers?.clear();
    if (this.#status === 'paused') this.#status = 'running';
    if (this.#inFlight === 0) this.#finish(status);
  }

  #abort(reason: unknown): void {
    if (this.#isFinal() || this.#ending !== undefined) return;
    this.#more().aborting = true;
    this.#terminate('cancelled', new CancelledError(reason));
    for (const runner of this.#runners) {
      if (runner !== undefined && (runner.status === 'running' || runner.status === 'starting'))
        runner.cancel(reason);
    }
  }

  #settlePaused(): void {
    this.#settleStart('paused', false, undefined);
  }

  /** Settles what `start()` or {@link startWith} handed out for this start. */
  #settleStart(status: CompositionStatus, failed: boolean, error: unknown): void {
    const rare = this.#rare;
    const deferred = rare?.deferred;
    const listener = this.#listener;
    const token = this.#token;
    if (rare !== undefined) rare.deferred = undefined;
    this.#listener = undefined;
    this.#token = undefined;
    if (deferred !== undefined) {
      if (failed) deferred.reject(error);
      else deferred.resolve(status);
    }
    listener?.[startEndedSymbol](token, status, failed, error);
  }

  #isFinal(): boolean {
    return this.#status === 'completed' || this.#status === 'error' || this.#status === 'cancelled';
  }

  #finish(status: 'completed' | 'error' | 'cancelled'): void {
    if (this.#isFinal()) return;
    const rare = this.#rare;
    if (rare !== undefined) {
      if (rare.abortListener !== undefined) {
        this.#options.signal?.removeEventListener('abort', rare.abortListener);
        rare.abortListener = undefined;
      }
      for (const timer of rare.retryTimers?.values() ?? []) clearTimeout(timer);
      rare.retryTimers?.clear();
    }
    this.#status = status;
    const endedAt = stamp === stamp ? stamp : now(); // NaN (no fresh reading) is the one value unequal to itself
    this.#endedAt = endedAt;
    this.#readyCount = 0;
    this.#readyHead = 0;
    const elapsed = endedAt - (this.#startedAt ?? endedAt);
    const onDone = this.#options.onDone;
    if (onDone !== undefined) {
      stamp = Number.NaN;
      try {
        onDone(this, status, this.#rare?.error, elapsed);
      } catch (error) {
        this.#settleStart(status, true, error);
        return;
      }
    }
    this.#settleStart(status, false, undefined);
  }
}

/** Templates the per-run arrays of plans up to their size are copied from; see `filled`. */
const TEMPLATE_SIZE = 1024;
const UNSET_TEMPLATE: readonly unknown[] = Array.from({ length: TEMPLATE_SIZE }, () => unset);
const NAN_TEMPLATE: readonly number[] = Array.from({ length: END_WIDTH * TEMPLATE_SIZE }, () => Number.NaN);
const ZERO_TEMPLATE: readonly number[] = Array.from({ length: TEMPLATE_SIZE }, () => 0);

/** A fresh array of `length` copies of `value`: a slice of `template` when it is long enough. */
function filled<T>(template: readonly T[], length: number, value: T): T[] {
  if (length <= template.length) return template.slice(0, length);
  // Sized up front: pushing would regrow (and copy) the array of a large plan many times.
  const array = new Array<T>(length);
  for (let i = 0; i < length; i++) array[i] = value;
  return array;
}

/** Validates a composition's options. @throws {InvalidOptionError} for a bad option. */
function settingsOf(options: CompositionOptions): Settings {
  const concurrency = options.concurrency ?? Infinity;
  if (!(concurrency === Infinity || (Number.isInteger(concurrency) && concurrency >= 1))) {
    throw new InvalidOptionError('concurrency', concurrency, 'an integer >= 1 or Infinity');
  }
  const maxTries = options.maxTries ?? DEFAULTS.maxTries;
  if (!(Number.isInteger(maxTries) && maxTries >= 1)) {
    throw new InvalidOptionError('maxTries', maxTries, 'an integer >= 1');
  }
  for (const name of HOOKS) {
    const value: unknown = options[name];
    if (value !== undefined && typeof value !== 'function')
      throw new InvalidOptionError(name, value, 'a function');
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new InvalidOptionError('signal', options.signal, 'an AbortSignal');
  }
  const { onDone, onNodeDone, configureNodeRunner, signal } = options;
  return concurrency === Infinity &&
    maxTries === DEFAULTS.maxTries &&
    onDone === undefined &&
    onNodeDone === undefined &&
    configureNodeRunner === undefined &&
    signal === undefined
    ? DEFAULTS
    : { concurrency, maxTries, onDone, onNodeDone, configure: configureNodeRunner, signal };
}

function makeDeferred(): StartDeferred {
  let resolve!: (status: CompositionStatus) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<CompositionStatus>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function errorInfo(error: unknown): { name: string; message: string; code?: string; status?: number } {
  if (!(error instanceof Error)) return { name: 'NonError', message: describe(error) };
  const info: { name: string; message: string; code?: string; status?: number } = {
    name: error.name,
    message: error.message,
  };
  const code: unknown = SymphonizerError.isInstance(error)
    ? error.code
    : (error as Error & { code?: unknown }).code;
  if (typeof code === 'string') info.code = code;
  const status = statusOf(error) ?? statusOf(error.cause);
  if (status !== undefined) info.status = status;
  return info;
}

function statusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const status: unknown = (error as { status?: unknown }).status;
  return typeof status === 'number' ? status : undefined;
}

function assertNever(value: never): never {
  throw new RunnerStateError(`Unexpected status ${String(value)} (a symphonizer bug; please report it).`);
}
