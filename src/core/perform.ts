import { Composition, startEndedSymbol, startWith, type StartListener } from './composition.ts';
import { InvalidOptionError } from './errors.ts';
import type { CompositionStatus } from './status.ts';

/** Options of a {@link Perform}. */
export interface PerformOptions {
  /**
   * Once this many compositions run, new ones queue until the running count falls below `lowWater`.
   * @default 100
   */
  readonly highWater?: number | undefined;
  /**
   * When the running count falls below this (after reaching `highWater`), queued compositions start, first in
   * first out, until `highWater` is reached again or the queue is empty.
   * @default Math.max(1, Math.floor(highWater / 2))
   */
  readonly lowWater?: number | undefined;
}

interface Waiter {
  readonly resolve: (status: CompositionStatus) => void;
  readonly reject: (error: unknown) => void;
}

/** What `add()` returns: already resolved, and the same for every call (it carries nothing). */
const ADDED: Promise<void> = Promise.resolve();

interface Entry {
  readonly composition: Composition;
  readonly waiter: Waiter | undefined;
}

/**
 * Runs many compositions at once behind a high-water / low-water mark.
 *
 * A composition occupies a slot from its start until its `start()` promise settles; one that settles
 * `paused` leaves the Perform (add it again to resume it here).
 *
 * @example
 * ```ts
 * const perform = new Perform({ highWater: 100, lowWater: 50 });
 * for (const c of compositions) void perform.add(c);
 * await perform.onIdle();
 * console.log(perform.completed, perform.failed, perform.peakRunning);
 * ```
 */
export class Perform implements StartListener {
  readonly #highWater: number;
  readonly #lowWater: number;
  #running = 0;
  /** Queued compositions: a Composition added with `add()`, an Entry for `run()` (it has a waiter). */
  #queue: (Composition | Entry | undefined)[] = [];
  #head = 0;
  /** True from the moment `running` reaches highWater until it falls below lowWater: nothing new starts. */
  #saturated = false;
  #idleWaiters: (() => void)[] = [];
  #completed = 0;
  #failed = 0;
  #cancelled = 0;
  #paused = 0;
  #peakRunning = 0;
  #started = 0;
  /** True while {@link Perform.#drain} runs: a composition that ends during a launch only updates counts. */
  #draining = false;

  /**
   * @throws {InvalidOptionError} unless `1 <= lowWater <= highWater`, both integers.
   */
  constructor(options: PerformOptions = {}) {
    const highWater = options.highWater ?? 100;
    if (!(Number.isInteger(highWater) && highWater >= 1)) {
      throw new InvalidOptionError('highWater', highWater, 'an integer >= 1');
    }
    const lowWater = options.lowWater ?? Math.max(1, Math.floor(highWater / 2));
    if (!(Number.isInteger(lowWater) && lowWater >= 1 && lowWater <= highWater)) {
      throw new InvalidOptionError('lowWater', lowWater, `an integer from 1 to highWater (${highWater})`);
    }
    this.#highWater = highWater;
    this.#lowWater = lowWater;
  }

  /** The high-water mark. */
  get highWater(): number {
    return this.#highWater;
  }
  /** The low-water mark. */
  get lowWater(): number {
    return this.#lowWater;
  }
  /** Compositions started by this Perform whose `start()` has not settled yet. */
  get running(): number {
    return this.#running;
  }
  /** Compositions waiting for a slot. */
  get queued(): number {
    return this.#queue.length - this.#head;
  }
  /** Compositions that ended `completed`. */
  get completed(): number {
    return this.#completed;
  }
  /** Compositions that ended `error` (or whose `start()` rejected). */
  get failed(): number {
    return this.#failed;
  }
  /** Compositions that ended `cancelled`. */
  get cancelled(): number {
    return this.#cancelled;
  }
  /** Compositions that settled `paused` and so left this Perform. */
  get paused(): number {
    return this.#paused;
  }
  /** The most compositions ever running at once. */
  get peakRunning(): number {
    return this.#peakRunning;
  }
  /** Compositions started so far (a re-added paused one counts again). */
  get started(): number {
    return this.#started;
  }

  /**
   * Starts the composition now, or queues it when at the high mark. Resolves once it has started or been
   * queued; use {@link Perform.run} to wait for its end.
   * @throws {InvalidOptionError} when given something other than a Composition.
   */
  add(composition: Composition): Promise<void> {
    this.#admit(composition, undefined);
    return ADDED;
  }

  /** Adds the composition, then resolves with its final status (or `paused`) when its `start()` settles. */
  run(composition: Composition): Promise<CompositionStatus> {
    return new Promise<CompositionStatus>((resolve, reject) => {
      this.#admit(composition, { resolve, reject });
    });
  }

  /** Resolves when nothing runs or waits; at once if that already holds. */
  onIdle(): Promise<void> {
    if (this.#running === 0 && this.queued === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.#idleWaiters.push(resolve);
    });
  }

  #admit(composition: Composition, waiter: Waiter | undefined): void {
    if (!(composition instanceof Composition)) {
      throw new InvalidOptionError('composition', composition, 'a Composition');
    }
    if (!this.#saturated && this.#running < this.#highWater) this.#launch(composition, waiter);
    else this.#queue.push(waiter === undefined ? composition : { composition, waiter });
  }

  #launch(composition: Composition, waiter: Waiter | undefined): void {
    this.#running += 1;
    this.#started += 1;
    if (this.#running > this.#peakRunning) this.#peakRunning = this.#running;
    if (this.#running >= this.#highWater) this.#saturated = true;
    // The common case hears the end directly (no promise and two closures per composition); a composition
    // someone else already started or awaits is followed through its start() promise.
    if (startWith(composition, this, waiter)) return;
    composition.start().then(
      (status) => {
        this[startEndedSymbol](waiter, status, false, undefined);
      },
      (error: unknown) => {
        this[startEndedSymbol](waiter, 'error', true, error);
      },
    );
  }

  /** @internal A composition this Perform started has settled its start (`failed`: `onDone` threw `error`). */
  [startEndedSymbol](token: unknown, status: CompositionStatus, failed: boolean, error: unknown): void {
    const waiter = token as Waiter | undefined;
    this.#ended(failed ? 'error' : status);
    if (waiter === undefined) return;
    if (failed) waiter.reject(error);
    else waiter.resolve(status);
  }

  #ended(status: CompositionStatus): void {
    this.#running -= 1;
    if (status === 'completed') this.#completed += 1;
    else if (status === 'error') this.#failed += 1;
    else if (status === 'cancelled') this.#cancelled += 1;
    else if (status === 'paused') this.#paused += 1;
    if (this.#saturated && this.#running < this.#lowWater) this.#saturated = false;
    if (!this.#saturated) this.#drain();
    if (this.#running === 0 && this.queued === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  /** Starts queued compositions, first in first out, until the high mark or an empty queue. */
  #drain(): void {
    // A trampoline: a composition that ends synchronously while launched ends inside this loop, which then
    // goes on launching; the stack never grows with the queue.
    if (this.#draining) return;
    this.#draining = true;
    const queue = this.#queue;
    try {
      while (this.#head < queue.length && !this.#saturated) {
        const entry = queue[this.#head] as Composition | Entry;
        queue[this.#head] = undefined; // drop the reference: a finished composition must be collectable
        this.#head += 1;
        if (entry instanceof Composition) this.#launch(entry, undefined);
        else this.#launch(entry.composition, entry.waiter);
      }
    } finally {
      this.#draining = false;
    }
    if (this.#head === queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > queue.length) {
      this.#queue = queue.slice(this.#head);
      this.#head = 0;
    }
  }
}
