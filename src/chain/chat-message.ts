/**
 * {@link ChatMessageSchema}: the zod schema of a conversation's message, for a chain input (or a dataset row)
 * that carries a conversation.
 */
import { z } from 'zod';
import type { ChatMessage } from '../providers/types.ts';

/**
 * A `ChatMessage` as a zod schema: `system`, `user` and `assistant` messages with a string `content` (an
 * assistant's `toolCalls` optional), `tool` messages with a `toolCallId`. Use it in a chain's input to take a
 * conversation (from a chat client, or a dataset row's `messages` field) with its types checked.
 *
 * @example
 * ```ts
 * const support = chain({ name: 'support', input: z.object({ messages: z.array(ChatMessageSchema) }) })
 *   .prompt('reply', { messages: ({ input }) => input.messages })
 *   .build();
 * ```
 */
export const ChatMessageSchema: z.ZodType<ChatMessage> = z.discriminatedUnion('role', [
  z.object({ role: z.literal('system'), content: z.string() }),
  z.object({ role: z.literal('user'), content: z.string() }),
  z.object({
    role: z.literal('assistant'),
    content: z.string(),
    toolCalls: z.array(z.object({ id: z.string(), name: z.string(), arguments: z.unknown() })).optional(),
  }),
  z.object({
    role: z.literal('tool'),
    toolCallId: z.string().min(1),
    content: z.string(),
    isError: z.boolean().optional(),
  }),
]);
