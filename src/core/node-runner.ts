import type { DAGNote } from './dag-note.ts';
import { CancelledError, InvalidOptionError, NodeTimeoutError, RunnerStateError } from './errors.ts';
import { formatId, nextSeq } from './ids.ts';
import { isFinalRunnerStatus, runnerTransitions, type RunnerStatus } from './status.ts';
import { callHook } from './hooks.ts';

/** What an executor receives besides its params. */
export interface RunContext {
  /** Aborted on the runner's timeout, on `cancel()`, or when the caller's signal aborts. */
  signal: AbortSignal;
  /** The node being run, when run by a Composition. */
  node?: DAGNote | undefined;
  /**
   * Each predecessor's result, keyed by node key (the name, for single-instance notes). Built by a
   * Composition as a null-prototype object, so only predecessors are keys (`'toString' in inputs` is false),
   * on the first read (the same object on every read; an executor that never reads it costs none).
   */
  inputs: Record<string, unknown>;
  /** 1 for the first try, then +1 for each `retryTask()` child. */
  attempt: number;
}

/** The work a runner does. It should be idempotent: it may be retried. */
export type Executor<P = unknown, R = unknown> = (params: P, context: RunContext) => R | Promise<R>;

/** Called on every status change of a runner. It must not throw. */
export type RunnerStatusListener = (runner: NodeRunner, from: RunnerStatus, to: RunnerStatus) => void;

/** Options of a {@link NodeRunner}. */
export interface NodeRunnerOptions<P = unknown, R = unknown> {
  /** The work to run; may also be set later with {@link NodeRunner.run}. */
  readonly executor?: Executor<P, R> | undefined;
  /** The executor's first argument; may also be set later with {@link NodeRunner.prepare}. */
  readonly params?: P | undefined;
  /** Abort the run (status `timed_out`) after this many milliseconds. @default no timeout */
  readonly timeoutMs?: number | undefined;
  /** Called on every status change. */
  readonly onStatus?: RunnerStatusListener | undefined;
  /** The instance id of the runner this one retries. */
  readonly parentId?: string | undefined;
}

type Settle = (ok: boolean, value: unknown) => void;

/** @internal The method a Composition implements to hear its runners settle (no closure per node). */
export const settledSymbol: unique symbol = Symbol('symphonizer.settled');

/**
 * @internal Receives a runner's outcome; `index` is the node's index in its plan. `stamp` is the clock reading
 * the runner took at its end when no code outside the core has run since (so the target may reuse it as the
 * start time of what it starts next, in the same synchronous turn), else NaN.
 */
export interface SettleTarget {
  [settledSymbol](index: number, runner: NodeRunner, ok: boolean, value: unknown, stamp: number): void;
  /** Builds the `inputs` of node `index`; called on the first read of `context.inputs`, if any. */
  [inputsSymbol](index: number): Record<string, unknown>;
}

/** @internal The method a {@link SettleTarget} builds a node's inputs with. */
export const inputsSymbol: unique symbol = Symbol('symphonizer.inputs');

/** Options a runner rarely has, kept out of line so that a plain runner stays small. */
interface Rare {
  readonly timeoutMs: number | undefined;
  readonly onStatus: RunnerStatusListener | undefined;
  readonly parentId: string | undefined;
}

const origin = performance.timeOrigin;
const perf = performance;
const now = (): number => origin + perf.now();

let signalOf: (runner: NodeRunner) => AbortSignal;

/** @internal The sequence number a runner's `instanceId` is formatted from (`formatId('r', seq)`). */
export let seqOf: (runner: NodeRunner) => number;

/**
 * @internal Starts a runner with a settle callback instead of a promise (no promise hop per node). `startedAt`
 * is a clock reading the caller took with no code outside the core run since, or NaN to read the clock. The
 * executor's `context.inputs` is built by `target` when first read.
 */
export let beginRunner: (
  runner: NodeRunner,
  node: DAGNote,
  target: SettleTarget,
  index: number,
  startedAt: number,
) => void;

/**
 * The execution proxy of one node: it runs its executor once and is then immutable. To try again, make a
 * fresh child with {@link NodeRunner.retryTask}.
 *
 * @example
 * ```ts
 * const runner = new NodeRunner({ executor: async (n: number) => n * 2, params: 21, timeoutMs: 1000 });
 * await runner.execute(); // 42
 * const again = runner.retryTask(); // attempt 2, parentId = runner.instanceId
 * ```
 */
export class NodeRunner<P = unknown, R = unknown> {
  // The id string is formatted on each read: most runners of a zero-latency graph are never asked for it.
  readonly #seq = nextSeq();
  #attempt = 1;
  // Stored without P and R so that NodeRunner<number, string> is assignable to NodeRunner (= <unknown, unknown>):
  // P and R then appear only in method parameters and return types, which TypeScript checks covariantly.
  #executor: Executor<never> | undefined;
  #params: unknown;
  /** Timeout, status listener and parent id: undefined for a plain runner. */
  readonly #rare: Rare | undefined;
  #status: RunnerStatus = 'new';
  /** The result once `completed`, the error once failed, cancelled or timed out. */
  #value: unknown;
  #startedAt: number | undefined;
  #endedAt: number | undefined;
  // Created on the first read of context.signal: most executors never read it, and an AbortController is the
  // single largest cost of a zero-latency node. An abort before then is read off the status and `#value`.
  #controller: AbortController | undefined;
  /** Who hears the outcome: execute()'s callback, or the owning Composition (then `#index` is the node). */
  #sink: Settle | SettleTarget | undefined;
  #index = 0;
  /** Clears the timeout timer and the caller's abort listener; set only when there is one. */
  #release: (() => void) | undefined;

  static {
    beginRunner = (runner, node, target, index, startedAt) => {
      runner.#begin(target, index, undefined, node, undefined, startedAt);
    };
    signalOf = (runner) => runner.#signal();
    seqOf = (runner) => runner.#seq;
  }

  /**
   * @throws {InvalidOptionError} when `timeoutMs` is not a positive finite number.
   */
  constructor(options: NodeRunnerOptions<P, R> = {}) {
    const { timeoutMs, onStatus, parentId } = options;
    if (
      timeoutMs !== undefined &&
      !(typeof timeoutMs === 'number' && timeoutMs > 0 && Number.isFinite(timeoutMs))
    ) {
      throw new InvalidOptionError('timeoutMs', timeoutMs, 'a positive finite number of milliseconds');
    }
    this.#executor = options.executor;
    this.#params = options.params;
    this.#rare =
      timeoutMs === undefined && onStatus === undefined && parentId === undefined
        ? undefined
        : { timeoutMs, onStatus, parentId };
  }

  /** Unique per runner. */
  get instanceId(): string {
    return formatId('r', this.#seq);
  }
  /** The instance id of the runner this one retries, if any. */
  get parentId(): string | undefined {
    return this.#rare?.parentId;
  }
  /** 1 for a first try; a `retryTask()` child has its parent's attempt + 1. */
  get attempt(): number {
    return this.#attempt;
  }
  /** Current status. */
  get status(): RunnerStatus {
    return this.#status;
  }
  /** True once the status is final (`completed`, `error`, `timed_out` or `cancelled`). */
  get done(): boolean {
    return isFinalRunnerStatus(this.#status);
  }
  /** The executor's result once `completed`. */
  get result(): R | undefined {
    return this.#status === 'completed' ? (this.#value as R) : undefined;
  }
  /** Why the run failed: what the executor threw, a `NodeTimeoutError` or a `CancelledError`. */
  get error(): unknown {
    const status = this.#status;
    return status === 'error' || status === 'timed_out' || status === 'cancelled' ? this.#value : undefined;
  }
  /**
   * Epoch milliseconds (fractional) when the run started: when `execute()` was called, or for a runner of a
   * Composition, when the composition began its node (see `NodeRecord.startedAt`).
   */
  get startedAt(): number | undefined {
    return this.#startedAt;
  }
  /** Epoch milliseconds (fractional) when the run ended. */
  get endedAt(): number | undefined {
    return this.#endedAt;
  }
  /** The configured timeout, if any. */
  get timeoutMs(): number | undefined {
    return this.#rare?.timeoutMs;
  }

  /**
   * Sets the executor's params.
   * @throws {RunnerStateError} once the runner has started.
   */
  prepare(params: P): this {
    this.#assertNew('prepare()');
    this.#params = params;
    return this;
  }

  /**
   * Sets the executor; does not call it.
   * @throws {RunnerStateError} once the runner has started.
   */
  run(executor: Executor<P, R>): this {
    this.#assertNew('run()');
    if (typeof executor !== 'function') throw new InvalidOptionError('executor', executor, 'a function');
    this.#executor = executor;
    return this;
  }

  /**
   * Runs the executor once. Rejects with a `CancelledError` after `cancel()` or a `NodeTimeoutError` after
   * `timeoutMs`, as soon as that happens, without waiting for the executor to notice its aborted signal.
   * A second call rejects with a `RunnerStateError`: use {@link NodeRunner.retryTask} to run again.
   */
  execute(context: Partial<RunContext> = {}): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const settle: Settle = (ok, value) => {
        if (ok) resolve(value as R);
        else reject(value); // eslint-disable-line @typescript-eslint/prefer-promise-reject-errors -- executors may throw anything; we pass it on unchanged
      };
      this.#begin(settle, 0, context.signal, context.node, context.inputs ?? {}, Number.NaN);
    });
  }

  /**
   * A fresh child runner with the same executor, params, timeout and status listener, `parentId` set to this
   * runner's id and `attempt` + 1.
   * @throws {RunnerStateError} unless this runner is done.
   */
  retryTask(): NodeRunner<P, R> {
    if (!this.done) {
      throw new RunnerStateError(
        `retryTask() on runner ${this.instanceId} while it is ${this.#status}.`,
        'wait until it is done',
      );
    }
    const child = new NodeRunner<P, R>({
      executor: this.#executor as Executor<P, R> | undefined,
      timeoutMs: this.#rare?.timeoutMs,
      onStatus: this.#rare?.onStatus,
      parentId: this.instanceId,
    });
    child.#params = this.#params;
    child.#attempt = this.#attempt + 1;
    return child;
  }

  /**
   * Aborts the executor's signal and ends the runner as `cancelled`; `execute()` rejects with a
   * `CancelledError` at once. Before `execute()`, it makes `execute()` reject. No effect once done.
   */
  cancel(reason?: unknown): void {
    if (this.done) return;
    const error = new CancelledError(reason);
    if (this.#status === 'new') {
      this.#value = error;
      this.#setStatus('cancelled');
      return;
    }
    this.#end('cancelled', error);
  }

  #assertNew(what: string): void {
    if (this.#status !== 'new') {
      throw new RunnerStateError(
        `${what} on runner ${this.instanceId} after it started (status ${this.#status}).`,
        'use retryTask() for a fresh runner',
      );
    }
  }

  /** Lazily created signal; see `#controller`. */
  #signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#status === 'cancelled' || this.#status === 'timed_out') this.#controller.abort(this.#value);
    }
    return this.#controller.signal;
  }

  #begin(
    sink: Settle | SettleTarget,
    index: number,
    external: AbortSignal | undefined,
    node: DAGNote | undefined,
    inputs: Record<string, unknown> | undefined,
    startedAt: number,
  ): void {
    // A refused start answers only its own caller: the sink of a run in progress stays in place.
    if (this.#status !== 'new') {
      deliverTo(
        sink,
        index,
        this,
        false,
        this.#status === 'cancelled' && this.#startedAt === undefined
          ? this.#value
          : new RunnerStateError(
              `Runner ${this.instanceId} has already run (status ${this.#status}); a runner runs once.`,
              'call retryTask() for a fresh runner',
            ),
        Number.NaN,
      );
      return;
    }
    const executor = this.#executor;
    if (executor === undefined) {
      deliverTo(
        sink,
        index,
        this,
        false,
        new RunnerStateError(
          `Runner ${this.instanceId} has no executor.`,
          'pass { executor } or call run(executor) before execute()',
        ),
        Number.NaN,
      );
      return;
    }
    this.#sink = sink;
    this.#index = index;
    // NaN !== NaN: the caller had no fresh reading to give.
    this.#startedAt = startedAt === startedAt ? startedAt : now();
    const rare = this.#rare;
    if (rare === undefined && external === undefined) {
      // The plain case: new → starting → running with no listener to tell and nothing to arm (the status
      // was checked to be 'new' above, so both transitions are valid).
      this.#status = 'running';
    } else {
      this.#setStatus('starting');
      if (!this.#arm(external, rare?.timeoutMs)) return;
      this.#setStatus('running');
    }
    let output: unknown;
    try {
      const source = inputs === undefined ? (sink as SettleTarget) : undefined;
      output = executor(this.#params as never, makeContext(this, node, inputs, source, index, this.#attempt));
    } catch (error) {
      this.#finish(false, error);
      return;
    }
    if (isThenable(output)) {
      output.then(
        (value) => {
          this.#finish(true, value);
        },
        (error: unknown) => {
          this.#finish(false, error);
        },
      );
    } else {
      this.#finish(true, output);
    }
  }

  /** Follows the caller's signal and starts the timeout timer; false when the signal had already aborted. */
  #arm(external: AbortSignal | undefined, timeoutMs: number | undefined): boolean {
    let listener: (() => void) | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (external !== undefined) {
      if (external.aborted) {
        this.#end('cancelled', new CancelledError(external.reason));
        return false;
      }
      listener = (): void => {
        this.cancel(external.reason);
      };
      external.addEventListener('abort', listener, { once: true });
    }
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => {
        this.#end('timed_out', new NodeTimeoutError(timeoutMs));
      }, timeoutMs);
    }
    if (listener !== undefined || timer !== undefined) {
      this.#release = () => {
        if (timer !== undefined) clearTimeout(timer);
        if (listener !== undefined) external?.removeEventListener('abort', listener);
      };
    }
    return true;
  }

  #finish(ok: boolean, value: unknown): void {
    if (this.#status !== 'running') return; // already cancelled or timed out: the late outcome is dropped
    if (this.#release !== undefined) this.#cleanup();
    const endedAt = now();
    this.#endedAt = endedAt;
    this.#value = value;
    if (this.#rare === undefined)
      this.#status = ok ? 'completed' : 'error'; // running → final: valid, no listener
    else this.#setStatus(ok ? 'completed' : 'error');
    // The reading is still "now" for the composition unless a status listener (outside code) has just run.
    this.#deliver(ok, value, this.#rare?.onStatus === undefined ? endedAt : Number.NaN);
  }

  #end(status: 'cancelled' | 'timed_out', error: Error): void {
    this.#cleanup();
    this.#endedAt = now();
    this.#value = error;
    this.#controller?.abort(error);
    this.#setStatus(status);
    this.#deliver(false, error, Number.NaN);
  }

  /** Hands the outcome to whoever started the run: execute()'s promise, or the owning Composition. */
  #deliver(ok: boolean, value: unknown, stamp: number): void {
    const sink = this.#sink;
    this.#sink = undefined;
    if (sink !== undefined) deliverTo(sink, this.#index, this, ok, value, stamp);
  }

  #cleanup(): void {
    const release = this.#release;
    if (release !== undefined) {
      this.#release = undefined;
      release();
    }
  }

  #setStatus(to: RunnerStatus): void {
    const from = this.#status;
    if (!runnerTransitions[from].includes(to)) {
      throw new RunnerStateError(
        `Invalid runner transition ${from} → ${to} (a symphonizer bug; please report it).`,
      );
    }
    this.#status = to;
    const onStatus = this.#rare?.onStatus;
    if (onStatus !== undefined) {
      // A listener bug must not corrupt the run; surface it loudly, as EventEmitter does.
      callHook(onStatus, this, from, to);
    }
  }
}

/**
 * What an executor's context holds. The executor gets it behind a Proxy ({@link contextHandler}) that answers
 * `signal` and `inputs` when first read: `signal` from the runner (an AbortController is made only then), and
 * a Composition's `inputs` from the composition (an executor that never reads them costs no inputs object).
 * Both stay own, enumerable properties, so `{ ...context }` keeps them. This costs one small object and a
 * proxy per run; own accessors would need an `Object.defineProperty` each, which costs more than the rest.
 */
class ContextTarget {
  /** Answered by the proxy; the stored value is never seen. */
  signal: AbortSignal | undefined = undefined;
  readonly node: DAGNote | undefined;
  /** Undefined until first read for a Composition's node (then built by `#source`). */
  inputs: Record<string, unknown> | undefined;
  readonly attempt: number;
  readonly #runner: NodeRunner;
  readonly #source: SettleTarget | undefined;
  readonly #index: number;

  constructor(
    runner: NodeRunner,
    node: DAGNote | undefined,
    inputs: Record<string, unknown> | undefined,
    source: SettleTarget | undefined,
    index: number,
    attempt: number,
  ) {
    this.node = node;
    this.inputs = inputs;
    this.attempt = attempt;
    this.#runner = runner;
    this.#source = source;
    this.#index = index;
  }

  static signalOf(target: ContextTarget): AbortSignal {
    return signalOf(target.#runner);
  }

  static inputsOf(target: ContextTarget): Record<string, unknown> {
    return (target.inputs ??= (target.#source as SettleTarget)[inputsSymbol](target.#index));
  }
}

/** Answers a lazily made property, or undefined for the others. */
function lazyValue(target: ContextTarget, key: string | symbol): unknown {
  return key === 'signal' ? ContextTarget.signalOf(target) : ContextTarget.inputsOf(target);
}

const contextHandler: ProxyHandler<ContextTarget> = {
  get(target, key) {
    return key === 'signal' || key === 'inputs'
      ? lazyValue(target, key)
      : (target as unknown as Record<PropertyKey, unknown>)[key];
  },
  getOwnPropertyDescriptor(target, key) {
    const descriptor = Reflect.getOwnPropertyDescriptor(target, key);
    if ((key === 'signal' || key === 'inputs') && descriptor !== undefined) {
      descriptor.value = lazyValue(target, key);
    }
    return descriptor;
  },
};

function makeContext(
  runner: NodeRunner,
  node: DAGNote | undefined,
  inputs: Record<string, unknown> | undefined,
  source: SettleTarget | undefined,
  index: number,
  attempt: number,
): RunContext {
  return new Proxy(
    new ContextTarget(runner, node, inputs, source, index, attempt),
    contextHandler,
  ) as unknown as RunContext;
}

function deliverTo(
  sink: Settle | SettleTarget,
  index: number,
  runner: NodeRunner,
  ok: boolean,
  value: unknown,
  stamp: number,
): void {
  if (typeof sink === 'function') sink(ok, value);
  else sink[settledSymbol](index, runner, ok, value, stamp);
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
  );
}
