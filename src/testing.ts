/**
 * Test doubles for code built on symphonizer: the offline, deterministic simulated provider and its JSON
 * Schema sampler. Published as the `symphonizer/testing` subpath, never from the main entry's hot path.
 * @packageDocumentation
 */

export { sampleJsonSchema } from './providers/simulated/json-schema-sample.ts';
export {
  createSimulatedProvider,
  type SimulatedLatency,
  type SimulatedProviderOptions,
  type SimulatedScriptEntry,
} from './providers/simulated/simulated-provider.ts';
