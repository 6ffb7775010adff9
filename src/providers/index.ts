/**
 * Model providers: the provider spec, the OpenAI, Anthropic and simulated adapters, the registry of
 * `provider:model` ids, and the policies around every call (retries, rate limits, usage, budget, structured
 * output), brought together by {@link ModelClient}.
 * @packageDocumentation
 */

export type {
  ChatMessage,
  FinishReason,
  JsonOutputSpec,
  JsonSchema,
  ModelRequest,
  ModelResponse,
  PromptCacheMode,
  Provider,
  RateLimitInfo,
  StreamEvent,
  ToolCall,
  ToolDefinition,
  Usage,
} from './types.ts';
export {
  AbortedError,
  AuthenticationError,
  BadRequestError,
  ConflictError,
  ConnectionError,
  CredentialsInUrlError,
  InternalServerError,
  InvalidModelIdError,
  MissingApiKeyError,
  NotFoundError,
  OverloadedError,
  PermissionDeniedError,
  ProviderError,
  RateLimitError,
  RequestTimeoutError,
  UnknownProviderError,
  UnprocessableEntityError,
  isRetryableStatus,
  providerErrorFromStatus,
  type CredentialsInUrlErrorInit,
  type ProviderErrorFromStatusInit,
  type ProviderErrorInit,
  type ProviderErrorCode,
} from './errors.ts';
export {
  parseDurationMs,
  parseRateLimitHeaders,
  parseRetryAfterMs,
  type HeadersLike,
} from './rate-limit-headers.ts';
export { REDACTED, redactSecrets } from './redact.ts';
export {
  RetriesExhaustedError,
  RetryPolicy,
  retryWithRunners,
  tryAgainFor,
  type RetryDecision,
  type RetryInfo,
  type RetryOptions,
  type RetryPolicyOptions,
  type RetryStopReason,
} from './retry.ts';
export {
  RateLimiter,
  RateLimiterRegistry,
  type AcquireOptions,
  type RateLimitPermit,
  type RateLimitWait,
  type RateLimitWaitReason,
  type RateLimiterOptions,
  type RateLimiterRegistryOptions,
  type RateLimits,
} from './rate-limiter.ts';
export { estimateTokens, type EstimateTokensOptions } from './tokens.ts';
export {
  Budget,
  BudgetExceededError,
  PriceTable,
  UsageMeter,
  addCallToTotals,
  addUsageTotals,
  costOf,
  defaultPrices,
  emptyUsage,
  priceUsage,
  type BudgetEstimate,
  type BudgetLimitKind,
  type BudgetOptions,
  type BudgetSpent,
  type CallCost,
  type CostOptions,
  type ModelPrice,
  type PriceRate,
  type UsageLabels,
  type UsageMeterOptions,
  type UsageSnapshot,
  type UsageTotals,
} from './usage.ts';
export {
  OutputValidationError,
  formatIssuePath,
  parseStructuredOutput,
  toJsonOutputSpec,
  zodIssues,
  type OutputFailureKind,
  type OutputIssue,
  type ParsedOutput,
} from './structured-output.ts';
export {
  ProviderRegistry,
  createDefaultRegistry,
  type DefaultRegistryOptions,
  type ProviderFactory,
  type ProviderRegistryOptions,
  type ResolvedModel,
} from './registry.ts';
export { createOpenAIProvider, type OpenAIApi, type OpenAIProviderSettings } from './openai/index.ts';
export {
  anthropicMinCacheTokens,
  createAnthropicProvider,
  type AnthropicProviderSettings,
} from './anthropic/index.ts';
export {
  createSimulatedProvider,
  type SimulatedLatency,
  type SimulatedProviderOptions,
  type SimulatedScriptEntry,
} from './simulated/index.ts';
export { ModelClient, type ModelClientOptions } from './model-client.ts';
export {
  ANTHROPIC_BATCH_LIMITS,
  OPENAI_BATCH_LIMITS,
  chunkBatchItems,
  finishBatchResponse,
  type BatchClient,
  type BatchItemResult,
  type BatchLimits,
  type BatchRequestItem,
  type BatchState,
  type BatchStatus,
} from './batch.ts';
export { createOpenAIBatchClient, type OpenAIBatchClientSettings } from './batch-openai.ts';
export { createAnthropicBatchClient, type AnthropicBatchClientSettings } from './batch-anthropic.ts';
export { createSimulatedBatchClient, type SimulatedBatchOptions } from './batch-simulated.ts';
export type {
  AttemptOptions,
  CallOptions,
  CallOutput,
  CallResult,
  CallSpec,
  ModelRunnerOptions,
  StreamOptions,
  StreamRetryEvent,
} from './call.ts';
export type { CallEvent, CallEventSink } from './call-events.ts';
export { CallRetries } from './call-policy.ts';
