/**
 * Typed chains of prompt and agent nodes, run as Compositions; streaming events and server-sent events.
 * @packageDocumentation
 */

export { ChainBuilder, chain } from './builder.ts';
export {
  Chain,
  defaultModelClient,
  type ChainInput,
  type ChainOptions,
  type ChainOutputs,
  type ChainRun,
  type ChainRunOptions,
  type ChainStream,
} from './chain.ts';
export { formatTrace } from './graph-text.ts';
export { ChainDefinitionError, ChainRunError, InputValidationError, type ChainErrorCode } from './errors.ts';
export { formatServerSentEvent, toServerSentEvents } from './sse.ts';
export { tool, toolDefinition, type Tool } from './tool.ts';
export type {
  AgentSpec,
  AgentStep,
  AgentToolCall,
  ChainEvent,
  ChainResult,
  NodeContext,
  NodeOverride,
  PromptFunction,
  PromptSpec,
  SpecOutput,
} from './types.ts';
