/** The offline simulated provider and its JSON Schema sampler. */
export { createSimulatedProvider } from './simulated-provider.ts';
export type {
  SimulatedLatency,
  SimulatedProviderOptions,
  SimulatedScriptEntry,
} from './simulated-provider.ts';
export { contentWords, createRandom, hashString, sampleJsonSchema } from './json-schema-sample.ts';
export type { Random, SampleOptions } from './json-schema-sample.ts';
