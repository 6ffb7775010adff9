/**
 * Where an evaluation sends its row × variant runs when they should not run in this process: a queue of
 * workers across a fleet (`symphonizer/distributed` makes one). The eval layer defines the shape; the layer
 * that owns the workers implements it, so eval never imports upward.
 */
import type { z } from 'zod';
import type { Chain } from '../chain/chain.ts';
import type { ChainResult, NodeOverride } from '../chain/types.ts';

/** One row × variant of an evaluation, as handed to an {@link EvalQueue}. */
export interface EvalJob {
  /** The chain to run (the queue finds the workers' copy of it by its name and checks its content hash). */
  readonly chain: Chain<z.ZodType, Record<string, unknown>>;
  /** The row's chain input, already validated against the chain's input schema. */
  readonly input: unknown;
  /**
   * Stable per run × variant × row id: the same unit always gets the same id, so a resumed evaluation that
   * hands a unit again never makes a second run of it (the queue's submit is idempotent on it).
   */
  readonly runId: string;
  /** The variant's model for every node. */
  readonly model?: string | undefined;
  /** The variant's per-node overrides. */
  readonly overrides?: Readonly<Record<string, NodeOverride>> | undefined;
}

/**
 * Runs evaluation units somewhere else. `run` resolves with the chain's result or rejects with the typed chain
 * error (a `ChainRunError` naming the node), as `chain.run()` would here; aborting `signal` means the
 * evaluation no longer waits for the unit (the queue may still finish it: its result is not stored).
 */
export interface EvalQueue {
  run(job: EvalJob, signal: AbortSignal): Promise<ChainResult<Record<string, unknown>>>;
}
