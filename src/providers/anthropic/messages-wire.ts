/**
 * The Messages API wire format of a request, as pure functions: the online adapter (anthropic-sdk.ts) and the
 * Message Batches client (batch-anthropic.ts) both send these bodies, and neither loads the SDK for it (only
 * its types are imported).
 */
import type {
  ContentBlockParam,
  MessageCreateParamsNonStreaming,
  MessageParam,
  Tool,
} from '@anthropic-ai/sdk/resources/messages';
import type { ModelRequest } from '../types.ts';

/**
 * @internal The Messages API body of `request`, without prompt-cache breakpoints and `providerOptions`.
 * `temperature` is never sent (see `createAnthropicProvider`: the current API version refuses it); structured
 * output is a forced tool call (`'tool'`) or `output_config`.
 */
export function messagesBody(
  request: ModelRequest,
  defaultMaxTokens: number,
  structuredOutput: 'tool' | 'output_config',
): MessageCreateParamsNonStreaming {
  const body: MessageCreateParamsNonStreaming = {
    model: request.model,
    max_tokens: request.maxTokens ?? defaultMaxTokens,
    messages: toMessages(request),
  };
  const system = systemText(request);
  if (system !== '') body.system = system;
  if (request.stop !== undefined && request.stop.length > 0) body.stop_sequences = [...request.stop];
  const tools: Tool[] = (request.tools ?? []).map((tool) => ({
    name: tool.name,
    ...(tool.description === undefined ? {} : { description: tool.description }),
    input_schema: { type: 'object', ...tool.parameters },
  }));
  if (request.output !== undefined) {
    if (structuredOutput === 'tool') {
      tools.push({
        name: request.output.name,
        description:
          request.output.description ??
          'Respond with your final answer as this JSON object. Call this tool exactly once.',
        input_schema: { type: 'object', ...request.output.schema },
      });
      body.tool_choice = { type: 'tool', name: request.output.name };
    } else {
      body.output_config = { format: { type: 'json_schema', schema: { ...request.output.schema } } };
    }
  }
  if (tools.length > 0) body.tools = tools;
  return body;
}

/**
 * @internal `providerOptions[name]`, merged into the body last so it can set any wire field (`top_k`,
 * `metadata`, …); `model`, `messages` and `stream` stay the adapter's.
 */
export function providerExtras(request: ModelRequest, name: string): Record<string, unknown> {
  const own = request.providerOptions?.[name];
  if (own === undefined) return {};
  const { model: _m, messages: _ms, stream: _s, ...rest } = own;
  return rest;
}

/**
 * The `system` field: the request's system text, then each `system` message of the conversation in order
 * (the Messages API has no system turns), separated by blank lines; empty parts are left out.
 */
function systemText(request: ModelRequest): string {
  const parts: string[] = [];
  if (request.system !== undefined && request.system !== '') parts.push(request.system);
  for (const message of request.messages) {
    if (message.role === 'system' && message.content !== '') parts.push(message.content);
  }
  return parts.join('\n\n');
}

/**
 * The user turn put before a conversation that starts with an assistant turn (e.g. a chat's greeting),
 * since the Messages API wants the first turn to be the user's.
 */
export const LEADING_USER_TURN = '(The conversation begins.)';

/**
 * Our messages → Messages API turns. Tool results go in a `user` turn as `tool_result` blocks; consecutive
 * turns of the same role are merged (their blocks in order), because the API requires user and assistant
 * turns to alternate. `system` messages go to the system field instead (see {@link systemText}); empty
 * texts are left out (the API refuses empty text blocks), and a turn left with nothing is dropped. A
 * conversation whose first turn is the assistant's gets a {@link LEADING_USER_TURN} before it.
 */
function toMessages(request: ModelRequest): MessageParam[] {
  const turns: { role: 'user' | 'assistant'; content: ContentBlockParam[] }[] = [];
  const push = (role: 'user' | 'assistant', blocks: ContentBlockParam[]): void => {
    if (blocks.length === 0) return;
    const last = turns.at(-1);
    if (last?.role === role) last.content.push(...blocks);
    else turns.push({ role, content: blocks });
  };
  for (const message of request.messages) {
    switch (message.role) {
      case 'system':
        break;
      case 'user':
        if (message.content !== '') push('user', [{ type: 'text', text: message.content }]);
        break;
      case 'assistant': {
        const blocks: ContentBlockParam[] = [];
        if (message.content !== '') blocks.push({ type: 'text', text: message.content });
        for (const call of message.toolCalls ?? []) {
          blocks.push({ type: 'tool_use', id: call.id, name: call.name, input: call.arguments ?? {} });
        }
        push('assistant', blocks);
        break;
      }
      case 'tool':
        push('user', [
          {
            type: 'tool_result',
            tool_use_id: message.toolCallId,
            content: message.content,
            ...(message.isError === true ? { is_error: true } : {}),
          },
        ]);
        break;
      default: {
        const unexpected: never = message;
        throw new TypeError(`Unknown message role in ${JSON.stringify(unexpected)}`);
      }
    }
  }
  if (turns[0]?.role === 'assistant')
    turns.unshift({ role: 'user', content: [{ type: 'text', text: LEADING_USER_TURN }] });
  // A single plain-text block reads better on the wire (and in logs) as a string.
  return turns.map((turn) => {
    const only = turn.content[0];
    return turn.content.length === 1 && only?.type === 'text'
      ? { role: turn.role, content: only.text }
      : { role: turn.role, content: turn.content };
  });
}
