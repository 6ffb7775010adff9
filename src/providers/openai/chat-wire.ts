/**
 * The Chat Completions wire format of a request, and what the answers' fields mean, as pure functions: the
 * online adapter (openai-sdk.ts) and the Batch API client (batch-openai.ts) both send these bodies and read
 * these fields, and neither loads the `openai` SDK for it (only its types are imported).
 */
import type {
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionMessageParam,
  ChatCompletionTool,
} from 'openai/resources/chat/completions';
import type { FinishReason, ModelRequest } from '../types.ts';

/** @internal The Chat Completions body of `request`, without `providerOptions` (see {@link providerExtras}). */
export function buildBody(
  request: ModelRequest,
  maxTokensField: 'max_completion_tokens' | 'max_tokens',
): ChatCompletionCreateParamsNonStreaming {
  const body: ChatCompletionCreateParamsNonStreaming = {
    model: request.model,
    messages: toMessages(request),
  };
  if (request.temperature !== undefined) body.temperature = request.temperature;
  if (request.maxTokens !== undefined) body[maxTokensField] = request.maxTokens;
  if (request.stop !== undefined && request.stop.length > 0) body.stop = [...request.stop];
  if (request.tools !== undefined && request.tools.length > 0) {
    body.tools = request.tools.map((tool): ChatCompletionTool => ({
      type: 'function',
      function: {
        name: tool.name,
        ...(tool.description === undefined ? {} : { description: tool.description }),
        parameters: { ...tool.parameters },
      },
    }));
  }
  if (request.output !== undefined) {
    body.response_format = {
      type: 'json_schema',
      json_schema: {
        name: request.output.name,
        schema: { ...request.output.schema },
        strict: true,
        ...(request.output.description === undefined ? {} : { description: request.output.description }),
      },
    };
  }
  return body;
}

/**
 * @internal `providerOptions[name]`, merged into the body last so it can set any wire field (`seed`, `top_p`, …);
 * the fields the adapter owns (`model`, `messages`, `stream`, `stream_options`) are left out.
 */
export function providerExtras(request: ModelRequest, name: string): Record<string, unknown> {
  const own = request.providerOptions?.[name];
  if (own === undefined) return {};
  const { model: _m, messages: _ms, stream: _s, stream_options: _so, ...rest } = own;
  return rest;
}

function toMessages(request: ModelRequest): ChatCompletionMessageParam[] {
  const messages: ChatCompletionMessageParam[] = [];
  if (request.system !== undefined && request.system !== '')
    messages.push({ role: 'system', content: request.system });
  for (const message of request.messages) {
    switch (message.role) {
      case 'system':
        messages.push({ role: 'system', content: message.content });
        break;
      case 'user':
        messages.push({ role: 'user', content: message.content });
        break;
      case 'assistant': {
        const calls = message.toolCalls ?? [];
        messages.push({
          role: 'assistant',
          content: calls.length > 0 && message.content === '' ? null : message.content,
          ...(calls.length === 0
            ? {}
            : {
                tool_calls: calls.map((call) => ({
                  id: call.id,
                  type: 'function' as const,
                  function: { name: call.name, arguments: JSON.stringify(call.arguments ?? {}) },
                })),
              }),
        });
        break;
      }
      case 'tool':
        // Chat Completions has no error flag on tool results; say so in the content.
        messages.push({
          role: 'tool',
          tool_call_id: message.toolCallId,
          content: message.isError === true ? `Error: ${message.content}` : message.content,
        });
        break;
      default: {
        const unexpected: never = message;
        throw new TypeError(`Unknown message role in ${JSON.stringify(unexpected)}`);
      }
    }
  }
  return messages;
}

/** @internal A tool call's wire arguments, parsed; kept as text when they are not JSON. */
export function parseArguments(text: string): unknown {
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // Keep the raw text: the caller may still repair it, and dropping it would hide the model's output.
    return text;
  }
}

/** @internal Why the model stopped, from `finish_reason` (a refusal is a content filter). */
export function mapFinishReason(
  reason: string | null | undefined,
  refusal: string | null | undefined,
): FinishReason {
  if (typeof refusal === 'string' && refusal !== '') return 'content_filter';
  switch (reason) {
    case 'stop':
      return 'stop';
    case 'length':
      return 'length';
    case 'tool_calls':
    case 'function_call':
      return 'tool_calls';
    case 'content_filter':
      return 'content_filter';
    default:
      return 'other';
  }
}
