/**
 * The events of model calls, and where they go: the client's `onEvent` and subscribers (whoever configured
 * the client), then the call's own sink (the run that made it). Each event is delivered to those and no one
 * else, so many concurrent runs cost nothing extra per event.
 */
import type { Usage } from './types.ts';
import { callHook } from '../core/hooks.ts';

/** What `ModelClientOptions.onEvent`, `ModelClient.subscribe` listeners and a call's own sink receive. */
export type CallEvent =
  | {
      readonly type: 'rate-limit-wait';
      readonly modelId: string;
      readonly nodeKey: string | undefined;
      /** `labels.compositionId` of the call. */
      readonly compositionId: string | undefined;
      readonly reason: string;
      readonly delayMs: number | undefined;
    }
  | {
      readonly type: 'retry';
      readonly modelId: string;
      readonly nodeKey: string | undefined;
      /** `labels.compositionId` of the call. */
      readonly compositionId: string | undefined;
      /** `transport` (HTTP/connection failure) or `repair` (invalid output, re-asked). */
      readonly kind: 'transport' | 'repair';
      readonly attempt: number;
      readonly delayMs: number;
      readonly reason: string;
      /**
       * Present and true when the failed attempt was a stream that had already yielded events (see
       * `StreamOptions.retryAfterText`): what it streamed is void and the next attempt starts over.
       */
      readonly discardText?: true | undefined;
      /** The `code` of the failed attempt's error (its class name when it has none). */
      readonly errorCode?: string | undefined;
    }
  | {
      readonly type: 'call';
      readonly modelId: string;
      readonly nodeKey: string | undefined;
      /** `labels.compositionId` of the call. */
      readonly compositionId: string | undefined;
      readonly usage: Usage;
      readonly costUsd: number | undefined;
      readonly requestId: string | undefined;
      readonly simulated: boolean;
      /** True when the usage was estimated because the call was cut short (an aborted stream). */
      readonly estimated: boolean;
      /** True when a response cache answered. */
      readonly cached: boolean;
      /** The model that answered, as the provider named it (absent for an estimated call). */
      readonly responseModel?: string | undefined;
      /** Why the model stopped (absent for an estimated call). */
      readonly finishReason?: string | undefined;
    };

/** A receiver of {@link CallEvent}s; must not throw. */
export type CallEventSink = (event: CallEvent) => void;

/** @internal The client's listeners (its `onEvent` option and subscribers); a call adds its own sink per event. */
export class ClientEvents {
  readonly #onEvent: CallEventSink | undefined;
  readonly #listeners = new Set<CallEventSink>();

  constructor(onEvent: CallEventSink | undefined) {
    this.#onEvent = onEvent;
  }

  /** Adds a listener; returns a function that removes it. */
  subscribe(listener: CallEventSink): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** True when an event of a call with this sink would reach anyone (build the event only then). */
  wanted(sink: CallEventSink | undefined): boolean {
    return sink !== undefined || this.#onEvent !== undefined || this.#listeners.size > 0;
  }

  /** Delivers `event`, frozen, to the client's listeners and then to `sink`. A throwing listener is reported on a microtask. */
  emit(event: CallEvent, sink: CallEventSink | undefined): void {
    if (!this.wanted(sink)) return;
    const frozen = Object.freeze(event);
    if (this.#onEvent !== undefined) deliver(this.#onEvent, frozen);
    if (this.#listeners.size > 0) for (const listener of this.#listeners) deliver(listener, frozen);
    if (sink !== undefined) deliver(sink, frozen);
  }
}

function deliver(listener: CallEventSink, event: CallEvent): void {
  callHook(listener, event);
}
