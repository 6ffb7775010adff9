/**
 * symphonizer: chain LLM agents as typed DAGs on a low-overhead, event-driven scheduler.
 * @packageDocumentation
 */

export {
  CancelledError,
  Composition,
  ContinueAfterError,
  CycleError,
  DAGNote,
  InvalidGraphError,
  InvalidOptionError,
  InvalidPayloadError,
  NodeError,
  NodeRunner,
  NodeTimeoutError,
  Perform,
  RESERVED_NODE_NAMES,
  ReservedNameError,
  RunnerStateError,
  StopScheduleError,
  SymphonizerError,
  TryAgainError,
  checkJson,
  compileGraph,
  jsonEquals,
  type CompositionOptions,
  type CompositionStatus,
  type DAGNoteOptions,
  type CoreErrorCode,
  type Executor,
  type Graph,
  type GraphPlan,
  type Json,
  type JsonCheck,
  type NodeDoneStatus,
  type NodeRecord,
  type NodeRunnerOptions,
  type PerformOptions,
  type RunContext,
  type RunnableNote,
  type RunnerStatus,
  type RunnerStatusListener,
  type SymphonizerErrorOptions,
  type TryAgainOptions,
} from './core/index.ts';
export {
  AbortedError,
  AuthenticationError,
  BadRequestError,
  Budget,
  BudgetExceededError,
  ConflictError,
  ConnectionError,
  CredentialsInUrlError,
  InternalServerError,
  InvalidModelIdError,
  MissingApiKeyError,
  ModelClient,
  NotFoundError,
  OutputValidationError,
  OverloadedError,
  PermissionDeniedError,
  PriceTable,
  ProviderError,
  ProviderRegistry,
  RateLimitError,
  RateLimiter,
  RateLimiterRegistry,
  RequestTimeoutError,
  RetriesExhaustedError,
  RetryPolicy,
  UnknownProviderError,
  UnprocessableEntityError,
  UsageMeter,
  costOf,
  createAnthropicProvider,
  createDefaultRegistry,
  createOpenAIProvider,
  createSimulatedProvider,
  defaultPrices,
  estimateTokens,
  parseRateLimitHeaders,
  parseStructuredOutput,
  redactSecrets,
  retryWithRunners,
  toJsonOutputSpec,
  tryAgainFor,
  type AnthropicProviderSettings,
  type BudgetOptions,
  type CallEvent,
  type CallOptions,
  type CallOutput,
  type CallResult,
  type CallSpec,
  type ChatMessage,
  type DefaultRegistryOptions,
  type FinishReason,
  type JsonOutputSpec,
  type JsonSchema,
  type ModelClientOptions,
  type ModelPrice,
  type ModelRequest,
  type ModelResponse,
  type ModelRunnerOptions,
  type OpenAIProviderSettings,
  type OutputIssue,
  type Provider,
  type RateLimitInfo,
  type RateLimitPermit,
  type RateLimitWait,
  type RateLimiterOptions,
  type RateLimiterRegistryOptions,
  type RateLimits,
  type RetryDecision,
  type RetryPolicyOptions,
  type SimulatedProviderOptions,
  type StreamEvent,
  type StreamOptions,
  type StreamRetryEvent,
  type ToolCall,
  type ToolDefinition,
  type Usage,
  type UsageLabels,
  type UsageSnapshot,
  type UsageTotals,
} from './providers/index.ts';
export {
  PromptTemplate,
  TemplateLoader,
  TemplateNotFoundError,
  TemplateSyntaxError,
  TemplateVariableError,
  defaultTemplateLoader,
  renderTemplate,
  type RenderedPrompt,
  type TemplateLoaderOptions,
} from './prompts/index.ts';
export {
  Chain,
  ChainBuilder,
  ChainDefinitionError,
  ChainRunError,
  InputValidationError,
  chain,
  defaultModelClient,
  formatServerSentEvent,
  formatTrace,
  tool,
  toServerSentEvents,
  type AgentSpec,
  type AgentStep,
  type AgentToolCall,
  type ChainEvent,
  type ChainInput,
  type ChainOptions,
  type ChainOutputs,
  type ChainResult,
  type ChainRun,
  type ChainRunOptions,
  type ChainStream,
  type NodeContext,
  type NodeOverride,
  type PromptSpec,
  type SpecOutput,
  type Tool,
} from './chain/index.ts';
export {
  CacheMissError,
  DatasetError,
  ResponseCache,
  RunLeasedError,
  RunMismatchError,
  RunStore,
  ScorerError,
  compareVariants,
  contains,
  datasetFromArray,
  evaluate,
  exactMatch,
  numericTolerance,
  readDataset,
  regex,
  renderHtmlReport,
  renderMarkdownReport,
  renderTextTable,
  schemaValid,
  scorer,
  stringSimilarity,
  summarize,
  type CacheMode,
  type DatasetItem,
  type DatasetRow,
  type EvalLeaseOptions,
  type EvalProgress,
  type EvalResult,
  type EvalSummary,
  type EvaluateOptions,
  type RowRecord,
  type RowStatus,
  type RunSummary,
  type ScoreResult,
  type Scorer,
  type ScorerContext,
  type Variant,
  type VariantComparison,
  type VariantSummary,
} from './eval/index.ts';

export type { ProviderErrorCode } from './providers/index.ts';
export type { PromptErrorCode } from './prompts/index.ts';
export type { ChainErrorCode } from './chain/index.ts';
export type { EvalErrorCode } from './eval/index.ts';
import type { CoreErrorCode } from './core/index.ts';
import type { ProviderErrorCode } from './providers/index.ts';
import type { PromptErrorCode } from './prompts/index.ts';
import type { ChainErrorCode } from './chain/index.ts';
import type { EvalErrorCode } from './eval/index.ts';
import type { CliErrorCode, CliRunErrorCode } from './cli/errors.ts';
import type { DistributedErrorCode } from './distributed/index.ts';

/**
 * Every stable `code` a symphonizer error can have: the union of the codes each layer defines for its own
 * errors (`CoreErrorCode`, `ProviderErrorCode`, `PromptErrorCode`, `ChainErrorCode`, `EvalErrorCode`, the
 * command's `CliErrorCode` and `CliRunErrorCode`, and `DistributedErrorCode`). New codes may be added;
 * existing ones never change meaning.
 *
 * @example
 * ```ts
 * function retryable(code: ErrorCode): boolean {
 *   return code === 'rate_limit_error' || code === 'overloaded_error' || code === 'connection_error';
 * }
 * ```
 */
export type ErrorCode =
  | CoreErrorCode
  | ProviderErrorCode
  | PromptErrorCode
  | ChainErrorCode
  | EvalErrorCode
  | CliErrorCode
  | CliRunErrorCode
  | DistributedErrorCode;
