/**
 * The model call of a node in one run: its prompt rendered (a template with the context as variables, or
 * the prompt function on the typed context) around its conversation (the `messages` function), with the
 * node's settings under the run's overrides.
 */
import type { CallResult, CallSpec } from '../providers/call.ts';
import type { ChatMessage, ToolCall } from '../providers/types.ts';
import type { RenderedTurn } from '../prompts/template.ts';
import { defaultTemplateLoader, type TemplateLoader } from '../prompts/template-loader.ts';
import { InvalidMessagesError } from './errors.ts';
import type { ChainNode } from './node-settings.ts';
import type { NodeOverride } from './types.ts';

/** What a node's prompt hooks see: the input and its predecessors' outputs by name. */
type AnyContext = Readonly<Record<string, unknown>> & { readonly input: unknown };

/**
 * The call node `node` makes in a run on `input`, given its predecessors' results (`inputs`, by name) and
 * the run's override of the node.
 * @throws what rendering throws (e.g. a `TemplateVariableError` naming the node).
 */
export function callSpecOf(
  node: ChainNode,
  input: unknown,
  inputs: Readonly<Record<string, unknown>>,
  override: NodeOverride | undefined,
  templates: TemplateLoader | undefined,
): CallSpec {
  const settings = node.settings;
  const context: Record<string, unknown> = { input };
  for (const dep of node.after) {
    if (dep in inputs) context[dep] = (inputs[dep] as CallResult).output;
  }
  const typedContext = context as AnyContext;
  let system = settings.system;
  let user: string | undefined;
  let turns: readonly RenderedTurn[] | undefined;
  const template = override?.template ?? settings.template;
  if (template !== undefined) {
    const variables = { ...context, ...node.variables?.(typedContext) };
    const rendered = (templates ?? defaultTemplateLoader)
      .load(template)
      .render(variables, { nodeKey: node.name });
    system = rendered.system ?? system;
    user = rendered.user;
    turns = rendered.turns;
  } else if (node.prompt !== undefined) {
    const prompt = (node.prompt as (c: AnyContext) => string | { system?: string | undefined; user: string })(
      typedContext,
    );
    if (typeof prompt === 'string') user = prompt;
    else {
      system = prompt.system ?? system;
      user = prompt.user;
    }
  }
  const history =
    node.messages === undefined
      ? undefined
      : validMessages(node.name, (node.messages as (c: AnyContext) => unknown)(typedContext));
  let prompt: string | undefined;
  let messages: readonly ChatMessage[] | undefined;
  if (history === undefined && turns === undefined) prompt = user ?? '';
  else {
    messages = conversation(
      turns ?? (user === undefined || user === '' ? [] : [{ role: 'user', content: user }]),
      history ?? [],
    );
    if (messages.length === 0)
      throw new InvalidMessagesError(
        node.name,
        undefined,
        'is empty and the node has no prompt text to send',
      );
  }
  return {
    model: override?.model ?? settings.model,
    system,
    prompt,
    messages,
    schema: node.schema,
    // Node names are valid schema names, so the node's own name needs no escaping.
    schemaName: node.schema === undefined ? undefined : settings.output,
    temperature: override?.temperature ?? settings.temperature,
    maxTokens: override?.maxTokens ?? settings.maxTokens,
    cache: settings.cache,
  };
}

/**
 * The messages of a node's call: the template's turns with `history` where its `{{!-- history --}}` marker
 * is; without the marker, before the last turn when that is a user turn (the newest message), else after
 * all turns.
 */
function conversation(turns: readonly RenderedTurn[], history: readonly ChatMessage[]): ChatMessage[] {
  let at = turns.findIndex((t) => t.role === 'history');
  if (at === -1) at = turns.at(-1)?.role === 'user' ? turns.length - 1 : turns.length;
  const messages: ChatMessage[] = [];
  turns.forEach((turn, index) => {
    if (index === at) messages.push(...history);
    if (turn.role !== 'history') messages.push({ role: turn.role, content: turn.content });
  });
  if (at === turns.length) messages.push(...history);
  return messages;
}

const roles = new Set(['system', 'user', 'assistant', 'tool']);

/**
 * `value` checked as a conversation and copied into plain messages (only the fields a provider reads, so
 * extra fields of the caller's objects neither reach the wire nor change a cache key).
 * @throws {InvalidMessagesError} naming the node and the index of the first bad message.
 */
export function validMessages(node: string, value: unknown): readonly ChatMessage[] {
  if (!Array.isArray(value))
    throw new InvalidMessagesError(node, undefined, `is ${describe(value)}, not an array of messages`);
  return value.map((item: unknown, index): ChatMessage => {
    if (typeof item !== 'object' || item === null)
      throw new InvalidMessagesError(node, index, `is ${describe(item)}, not a message object`);
    const message = item as Record<string, unknown>;
    const role = message.role;
    if (typeof role !== 'string' || !roles.has(role))
      throw new InvalidMessagesError(
        node,
        index,
        `has role ${describe(role, true)}; a role is 'system', 'user', 'assistant' or 'tool'`,
      );
    const content = message.content;
    if (typeof content !== 'string')
      throw new InvalidMessagesError(node, index, `(${role}) has content ${describe(content)}, not a string`);
    switch (role) {
      case 'system':
      case 'user':
        return { role, content };
      case 'assistant': {
        const calls = message.toolCalls;
        if (calls === undefined) return { role, content };
        if (!Array.isArray(calls) || !calls.every(isToolCall))
          throw new InvalidMessagesError(
            node,
            index,
            '(assistant) has toolCalls that are not an array of { id: string, name: string, arguments }',
          );
        return {
          role,
          content,
          toolCalls: calls.map((c: ToolCall) => ({ id: c.id, name: c.name, arguments: c.arguments })),
        };
      }
      default: {
        const id = message.toolCallId;
        if (typeof id !== 'string' || id === '')
          throw new InvalidMessagesError(
            node,
            index,
            `(tool) has toolCallId ${describe(id)}, not a non-empty string`,
          );
        return message.isError === true
          ? { role: 'tool', toolCallId: id, content, isError: true }
          : { role: 'tool', toolCallId: id, content };
      }
    }
  });
}

function isToolCall(value: unknown): value is ToolCall {
  if (typeof value !== 'object' || value === null) return false;
  const call = value as Record<string, unknown>;
  return typeof call.id === 'string' && typeof call.name === 'string';
}

/**
 * A value's kind for an error message; never the value itself (it may be a user's private text), except a
 * short word when `word` says it is a name (a role).
 */
function describe(value: unknown, word = false): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string')
    return word && value.length <= 20 && /^[\w-]*$/u.test(value) ? JSON.stringify(value) : 'a string';
  return typeof value === 'object'
    ? 'an object'
    : typeof value === 'undefined'
      ? 'undefined'
      : `a ${typeof value}`;
}
