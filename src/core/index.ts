/**
 * The core of symphonizer: DAGNote, NodeRunner, Composition, Perform and their errors. No runtime
 * dependency; also published as the `symphonizer/core` subpath.
 * @packageDocumentation
 */

export { DAGNote, type DAGNoteOptions } from './dag-note.ts';
export { checkJson, jsonEquals, type Json, type JsonCheck } from './json.ts';
export { compileGraph, type Graph, type GraphPlan } from './graph.ts';
export type { CompositionStatus, NodeDoneStatus, RunnerStatus } from './status.ts';
export {
  NodeRunner,
  type Executor,
  type NodeRunnerOptions,
  type RunContext,
  type RunnerStatusListener,
} from './node-runner.ts';
export { Composition, type CompositionOptions, type NodeRecord, type RunnableNote } from './composition.ts';
export { Perform, type PerformOptions } from './perform.ts';
export {
  CancelledError,
  ContinueAfterError,
  CycleError,
  InvalidGraphError,
  InvalidOptionError,
  InvalidPayloadError,
  MissingPeerDependencyError,
  NodeError,
  NodeTimeoutError,
  RESERVED_NODE_NAMES,
  ReservedNameError,
  RunnerStateError,
  StopScheduleError,
  SymphonizerError,
  TryAgainError,
  type CoreErrorCode,
  type SymphonizerErrorOptions,
  type TryAgainOptions,
} from './errors.ts';
