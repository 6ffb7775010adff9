/**
 * Typed chains of prompt and agent nodes, run as Compositions; streaming events, server-sent events, the AI
 * SDK UI message stream and a chat endpoint.
 * @packageDocumentation
 */

export { ChainBuilder, chain } from './builder.ts';
export {
  Chain,
  defaultModelClient,
  type ChainCheckpoint,
  type ChainInput,
  type ChainOptions,
  type ChainOutputs,
  type ChainRun,
  type ChainRunOptions,
  type ChainStream,
  type CheckpointedNode,
} from './chain.ts';
export { formatTrace } from './graph-text.ts';
export {
  ChainDefinitionError,
  ChainRunError,
  InputValidationError,
  InvalidMessagesError,
  type ChainErrorCode,
} from './errors.ts';
export { PartialJsonParser, parsePartialJson } from './partial-json.ts';
export { ChatMessageSchema } from './chat-message.ts';
export { formatServerSentEvent, toServerSentEvents } from './sse.ts';
export {
  DEFAULT_CHAT_ERROR_TEXT,
  UI_MESSAGE_STREAM_HEADERS,
  formatUIMessageStreamPart,
  toUIMessageStream,
  toUIMessageStreamResponse,
  type ChatDataParts,
  type UIMessageStreamOptions,
  type UIMessageStreamPart,
  type UIMessageStreamResponseOptions,
} from './ui-message-stream.ts';
export {
  DEFAULT_CHAT_LIMITS,
  createChatHandler,
  parseConversation,
  type ChatHandler,
  type ChatHandlerLimits,
  type ChatHandlerOptions,
  type ChatRejection,
  type ChatRejectionCode,
} from './chat-handler.ts';
export { toNodeHandler } from './node-http.ts';
export { isToolSource, tool, toolDefinition, type Tool, type ToolSource } from './tool.ts';
export {
  McpTools,
  mcpTools,
  type McpHttpServer,
  type McpServer,
  type McpStdioServer,
  type McpToolInfo,
  type McpToolsOptions,
} from './mcp-tools.ts';
export { McpToolError, McpUnavailableError, type McpToolFailure } from './mcp-errors.ts';
export type { ChainTelemetry, ChainTelemetryOptions, TelemetrySpan, TelemetryTracer } from './otel.ts';
export type {
  AgentSpec,
  AgentStep,
  AgentToolCall,
  ChainEvent,
  ChainResult,
  DeepPartial,
  MessagesFunction,
  NodeContext,
  NodeOverride,
  PartialOf,
  PartialOutputEvent,
  PromptFunction,
  PromptSpec,
  SpecOutput,
} from './types.ts';
