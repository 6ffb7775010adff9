import {
  Composition,
  DAGNote,
  NodeRunner,
  type CompositionOptions,
  type Executor,
  type Graph,
} from '../../src/index.ts';
import { deferred, type Deferred } from './deferred.ts';

/** Builds `Graph` entries from a `{ node: [predecessors] }` record of names. */
export function graphOf(spec: Record<string, string[]>): Map<DAGNote, DAGNote[]> {
  const notes = new Map<string, DAGNote>();
  const note = (name: string): DAGNote => {
    let existing = notes.get(name);
    if (existing === undefined) {
      existing = new DAGNote(name);
      notes.set(name, existing);
    }
    return existing;
  };
  return new Map(Object.entries(spec).map(([name, preds]) => [note(name), preds.map(note)]));
}

/** A started node run, held open until the test settles it. */
export interface ManualRun {
  readonly key: string;
  readonly attempt: number;
  readonly inputs: Record<string, unknown>;
  readonly signal: AbortSignal;
  readonly gate: Deferred<unknown>;
}

/**
 * A composition whose every node run waits for the test to resolve or reject it, so the order of starts and
 * the set of nodes in flight are observable without timers.
 */
export class ManualComposition {
  readonly composition: Composition;
  /** Every run started so far, in order. */
  readonly runs: ManualRun[] = [];
  /** Node keys in the order they started (retries appear again). */
  readonly started: string[] = [];
  #open = new Map<string, ManualRun>();
  peakInFlight = 0;

  constructor(graph: Graph, options: Omit<CompositionOptions, 'configureNodeRunner'> = {}) {
    this.composition = new Composition(graph, {
      ...options,
      configureNodeRunner: (node) => new NodeRunner({ executor: this.#executor(node.key) }),
    });
  }

  #executor(key: string): Executor {
    return (_params, context) => {
      const gate = deferred<unknown>();
      const run: ManualRun = {
        key,
        attempt: context.attempt,
        inputs: context.inputs,
        signal: context.signal,
        gate,
      };
      this.runs.push(run);
      this.started.push(key);
      this.#open.set(key, run);
      this.peakInFlight = Math.max(this.peakInFlight, this.#open.size);
      const finish = (): void => {
        this.#open.delete(key);
      };
      gate.promise.then(finish, finish);
      return gate.promise;
    };
  }

  /** Keys of the runs started and not yet settled. */
  get inFlight(): string[] {
    return [...this.#open.keys()];
  }

  /** The open run of a node. */
  open(key: string): ManualRun {
    const run = this.#open.get(key);
    if (run === undefined)
      throw new Error(`node ${key} is not running (running: ${this.inFlight.join(', ') || 'none'})`);
    return run;
  }

  /** Resolves the open run of `key` with `value` (default: the key) and lets the scheduler react. */
  async complete(key: string, value: unknown = key): Promise<void> {
    this.open(key).gate.resolve(value);
    await settle();
  }

  /** Rejects the open run of `key` with `error` and lets the scheduler react. */
  async fail(key: string, error: unknown): Promise<void> {
    this.open(key).gate.reject(error);
    await settle();
  }
}

/** Lets promise callbacks run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}
