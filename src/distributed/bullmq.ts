/**
 * BullMQ, an optional peer of `symphonizer/distributed`, loaded on first use only (importing the entry
 * loads none); a missing one is a {@link MissingPeerDependencyError} saying what to install.
 */
import { createRequire } from 'node:module';
import type * as BullMQ from 'bullmq';
import { MissingPeerDependencyError } from './errors.ts';

/** @internal The parts of BullMQ the workers and producers use. */
export interface BullMQModule {
  readonly Queue: typeof BullMQ.Queue;
  readonly Worker: typeof BullMQ.Worker;
  readonly QueueEvents: typeof BullMQ.QueueEvents;
  readonly Job: typeof BullMQ.Job;
  readonly UnrecoverableError: typeof BullMQ.UnrecoverableError;
}

let loaded: BullMQModule | undefined;

/** @internal BullMQ, required on first use. */
export function loadBullmq(feature: string): BullMQModule {
  if (loaded !== undefined) return loaded;
  let module: BullMQModule;
  try {
    module = createRequire(import.meta.url)('bullmq') as BullMQModule;
  } catch (error) {
    throw new MissingPeerDependencyError('bullmq', feature, error);
  }
  if (typeof module.Worker !== 'function') throw new MissingPeerDependencyError('bullmq', feature);
  loaded = module;
  return module;
}
