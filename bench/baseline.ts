/**
 * The BASELINE: a minimal, hand-written, event-driven DAG scheduler (Kahn's algorithm) plus a FIFO semaphore
 * for many runs at once. No symphonizer code is used at run time; it reads the same `Map<DAGNote, DAGNote[]>`
 * graphs only to learn their keys. It does what a scheduler must (topological order, outputs flow downstream
 * as `inputs`, results kept per run, first failure ends the run) and nothing more: no statuses, runners,
 * trace, retries, timeouts, pause or cancellation. It is the "how fast could this be" reference.
 */

/** The executor signature shared by the bench and symphonizer's `Executor`. */
export type BenchExecutor = (params: unknown, context: { inputs: Record<string, unknown> }) => unknown;

/** A compiled graph: node `i` has key `keys[i]`. */
export interface BasePlan<N extends { readonly key: string } = { readonly key: string }> {
  readonly keys: readonly string[];
  /** The original notes, by index (any object with a `key`). */
  readonly notes: readonly N[];
  readonly preds: readonly (readonly number[])[];
  readonly succs: readonly (readonly number[])[];
  readonly indegree: Int32Array;
  readonly roots: readonly number[];
}

/** Indexes a node → predecessors map, dedupes predecessors, and checks for a cycle (Kahn). */
export function compileBase<N extends { readonly key: string }>(
  graph: ReadonlyMap<N, Iterable<N>>,
): BasePlan<N> {
  const index = new Map<string, number>();
  const notes: N[] = [];
  const preds: number[][] = [];
  const id = (note: N): number => {
    let i = index.get(note.key);
    if (i === undefined) {
      i = notes.length;
      index.set(note.key, i);
      notes.push(note);
      preds.push([]);
    }
    return i;
  };
  for (const [note, list] of graph) {
    const i = id(note);
    const mine = preds[i]!;
    for (const p of list) {
      const j = id(p);
      if (!mine.includes(j)) mine.push(j);
    }
  }
  const n = notes.length;
  const succs: number[][] = Array.from({ length: n }, () => []);
  const indegree = new Int32Array(n);
  const roots: number[] = [];
  for (let i = 0; i < n; i++) {
    indegree[i] = preds[i]!.length;
    if (preds[i]!.length === 0) roots.push(i);
    for (const p of preds[i]!) succs[p]!.push(i);
  }
  const left = indegree.slice();
  const order = [...roots];
  for (let h = 0; h < order.length; h++) {
    for (const s of succs[order[h]!]!) if (--left[s]! === 0) order.push(s);
  }
  if (order.length !== n) throw new Error('cycle');
  return { keys: notes.map((note) => note.key), notes, preds, succs, indegree, roots };
}

/**
 * Runs one DAG: each node's executor starts once all its predecessors are done, at most `concurrency` at
 * once. Resolves with the results by node index; rejects with the first failure (running nodes finish).
 */
export function runDag(
  plan: BasePlan,
  executor: BenchExecutor,
  paramsOf: ((node: number) => unknown) | undefined,
  concurrency = Infinity,
): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const n = plan.keys.length;
    const { preds, succs, keys } = plan;
    const remaining = plan.indegree.slice();
    const results = new Array<unknown>(n);
    let ready: number[] = [...plan.roots];
    let head = 0;
    let inFlight = 0;
    let done = 0;
    let failed = false;
    const fail = (error: unknown): void => {
      inFlight -= 1;
      if (!failed) {
        failed = true;
        reject(error); // eslint-disable-line @typescript-eslint/prefer-promise-reject-errors -- a node's error, as thrown
      }
    };
    const start = (i: number): void => {
      inFlight += 1;
      const inputs: Record<string, unknown> = {};
      for (const p of preds[i]!) inputs[keys[p]!] = results[p];
      let out: unknown;
      try {
        out = executor(paramsOf?.(i), { inputs });
      } catch (error) {
        fail(error);
        return;
      }
      Promise.resolve(out).then((value) => {
        inFlight -= 1;
        results[i] = value;
        done += 1;
        for (const s of succs[i]!) if (--remaining[s]! === 0) ready.push(s);
        if (done === n) resolve(results);
        else pump();
      }, fail);
    };
    const pump = (): void => {
      while (head < ready.length && inFlight < concurrency && !failed) start(ready[head++]!);
      if (head === ready.length) {
        ready = [];
        head = 0;
      }
    };
    if (n === 0) resolve(results);
    else pump();
  });
}

/** Outcome counts of {@link runMany}. */
export interface ManyResult {
  completed: number;
  failed: number;
  peakRunning: number;
}

/**
 * A FIFO semaphore over `count` runs: starts `run(i)` for i = 0, 1, … keeping at most `cap` in flight, each
 * next one as soon as any ends. Resolves when all have ended.
 */
export function runMany(
  count: number,
  cap: number,
  run: (i: number) => Promise<unknown>,
): Promise<ManyResult> {
  return new Promise((resolve) => {
    const result: ManyResult = { completed: 0, failed: 0, peakRunning: 0 };
    let next = 0;
    let running = 0;
    const launch = (): void => {
      while (next < count && running < cap) {
        const i = next++;
        running += 1;
        if (running > result.peakRunning) result.peakRunning = running;
        run(i).then(
          () => {
            result.completed += 1;
            ended();
          },
          () => {
            result.failed += 1;
            ended();
          },
        );
      }
    };
    const ended = (): void => {
      running -= 1;
      if (next < count) launch();
      else if (running === 0) resolve(result);
    };
    if (count === 0) resolve(result);
    else launch();
  });
}
