/**
 * The bookkeeping of one chain run: its events out (to the run's own `onEvent`), the usage of each node
 * counted from the run's own call events, and the agents' steps.
 */
import type { CallEvent, CallEventSink } from '../providers/call-events.ts';
import { addCallToTotals, addUsageTotals, emptyUsage, type UsageTotals } from '../providers/usage.ts';
import type { AgentStep, ChainEvent } from './types.ts';
import { callHook } from '../core/hooks.ts';
import type { RunTelemetry } from './otel.ts';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Per-run state of a chain: one per run, never shared. */
export class RunState<O> {
  readonly usageByNode = new Map<string, UsageTotals>();
  readonly steps = new Map<string, AgentStep[]>();
  simulated = false;
  cachedCalls = 0;
  started = false;
  /** The run's OpenTelemetry spans, when it has telemetry on. */
  telemetry: RunTelemetry | undefined;
  readonly #chain: string;
  readonly #onEvent: ((event: ChainEvent<O>) => void) | undefined;

  /** The sink the run's model calls report to: only this run's calls reach it. */
  readonly onCallEvent: CallEventSink = (event) => {
    this.#onCall(event);
  };

  constructor(chainName: string, onEvent: ((event: ChainEvent<O>) => void) | undefined) {
    this.#chain = chainName;
    this.#onEvent = onEvent;
  }

  /** True when someone listens to the run's events. */
  get observed(): boolean {
    return this.#onEvent !== undefined;
  }

  /** Delivers a frozen `event` to the run's `onEvent`; a throw is reported on a microtask. */
  emit(event: ChainEvent<O>): void {
    if (this.#onEvent === undefined) return;
    callHook(this.#onEvent, Object.freeze(event));
  }

  /** The run's usage so far, all nodes together. */
  total(): UsageTotals {
    let total = emptyUsage();
    for (const u of this.usageByNode.values()) total = addUsageTotals(total, u);
    return total;
  }

  #onCall(event: CallEvent): void {
    const node = event.nodeKey ?? this.#chain;
    this.telemetry?.onCall(event, node);
    switch (event.type) {
      case 'call': {
        if (event.simulated) this.simulated = true;
        if (event.cached) this.cachedCalls += 1;
        // Each node's totals are the run's own object, added to in place (a node's are final once it is done).
        let totals = this.usageByNode.get(node) as Mutable<UsageTotals> | undefined;
        if (totals === undefined) {
          totals = emptyUsage();
          this.usageByNode.set(node, totals);
        }
        addCallToTotals(totals, event.usage, event.costUsd);
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
}

/**
 * A null-prototype record of `entries`. Records keyed by node names (`outputs`, `usageByNode`, `steps`) are
 * built this way, so reading a name that is not a node gives `undefined`, never an inherited member.
 */
export function recordOf<V>(entries: Iterable<readonly [string, V]>): Record<string, V> {
  const record = Object.create(null) as Record<string, V>;
  for (const [key, value] of entries) record[key] = value;
  return record;
}
