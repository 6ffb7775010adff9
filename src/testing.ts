/**
 * Test doubles for code built on symphonizer: the offline, deterministic simulated provider and its JSON
 * Schema sampler. Published as the `symphonizer/testing` subpath, never from the main entry's hot path.
 * @packageDocumentation
 */

export {
  createSimulatedProvider,
  sampleJsonSchema,
  type SimulatedLatency,
  type SimulatedProviderOptions,
  type SimulatedScriptEntry,
} from './providers/simulated/index.ts';
