/**
 * A run's events as an async iterable: `push` them as they happen, iterate them once, in order, ending
 * after `chain-done`. Holds nothing once read.
 */
import type { ChainEvent } from './types.ts';

/** @internal The event queue behind `Chain.stream()`. */
export class EventQueue<O> implements AsyncIterable<ChainEvent<O>> {
  readonly #queue: ChainEvent<O>[] = [];
  #wake: (() => void) | undefined;
  #ended = false;

  /** Adds an event; `chain-done` is the last one. */
  push(event: ChainEvent<O>): void {
    this.#queue.push(event);
    if (event.type === 'chain-done') this.#ended = true;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ChainEvent<O>, void, undefined> {
    for (;;) {
      const event = this.#queue.shift();
      if (event !== undefined) {
        yield event;
        if (event.type === 'chain-done') return;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = undefined;
    }
  }
}
