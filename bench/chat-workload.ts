/**
 * The chat handler under load on loopback, shared by `bench/chat.bench.ts` (figures) and
 * `test/chain/chat-handler.load.test.ts` (bounds): a node:http server over `createChatHandler`, a
 * one-node chain on the simulated model with a fixed latency, and clients that POST `useChat` bodies and
 * read each answer to its end.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import {
  ModelClient,
  ProviderRegistry,
  chain,
  createChatHandler,
  toNodeHandler,
  type ChatHandler,
  type ChatHandlerLimits,
} from '../src/index.ts';

/** A chat server for the load runs. */
export interface ChatLoadServer {
  readonly url: string;
  readonly handler: ChatHandler;
  close(): Promise<void>;
}

/** Starts the server: answers take `latencyMs` (simulated model), at most `limits.maxConcurrentRuns` at once. */
export async function startChatLoadServer(options: {
  readonly latencyMs: number;
  readonly limits?: ChatHandlerLimits;
}): Promise<ChatLoadServer> {
  const client = new ModelClient({
    registry: new ProviderRegistry({
      simulated: { latency: { minMs: options.latencyMs, maxMs: options.latencyMs } },
    }),
  });
  const Turn = z.object({ role: z.enum(['user', 'assistant']), content: z.string() });
  const chat = chain({
    name: 'chat',
    input: z.object({ messages: z.array(Turn) }),
    model: 'sim:demo',
    client,
  })
    .prompt('reply', {
      system: 'You are a concise assistant.',
      prompt: ({ input }) => input.messages.map((m) => `${m.role}: ${m.content}`).join('\n'),
    })
    .build();
  const handler = createChatHandler({
    chain: chat,
    input: (messages) => ({
      messages: messages.flatMap((m) => (m.role === 'user' || m.role === 'assistant' ? [m] : [])),
    }),
    limits: options.limits,
  });
  const server: Server = createServer(toNodeHandler(handler));
  // A backlog above the default 511, so 1,000 connects at once are queued by the kernel, not refused.
  await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/chat`,
    handler,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** How one request ended. */
export interface ChatOutcome {
  readonly status: number;
  readonly retryAfter: string | null;
  /** From sending to the end of the body, in ms. */
  readonly ms: number;
  /** The answer text (a 200's text deltas joined). */
  readonly answer: string;
  /** True when a 200's stream ended with `finish` and `[DONE]`. */
  readonly complete: boolean;
}

/** The `useChat` body of a conversation: `turns` earlier exchanges, then a new user message. */
export function conversationBody(n: number, turns: number): string {
  const messages = [];
  for (let t = 0; t < turns; t++) {
    messages.push({
      id: `u${n}-${t}`,
      role: 'user',
      parts: [{ type: 'text', text: `Question ${t} of chat ${n}?` }],
    });
    messages.push({
      id: `a${n}-${t}`,
      role: 'assistant',
      parts: [{ type: 'step-start' }, { type: 'text', text: `Answer ${t} of chat ${n}.`, state: 'done' }],
    });
  }
  messages.push({ id: `u${n}`, role: 'user', parts: [{ type: 'text', text: `Tell me about topic ${n}.` }] });
  return JSON.stringify({ id: `chat-${n}`, messages, trigger: 'submit-message' });
}

/** POSTs one conversation and reads the answer to its end. */
export async function sendConversation(url: string, body: string): Promise<ChatOutcome> {
  const started = performance.now();
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const text = await res.text();
  let answer = '';
  let finished = false;
  if (res.status === 200) {
    for (const event of text.split('\n\n')) {
      if (!event.startsWith('data: {')) continue;
      const part = JSON.parse(event.slice(6)) as { type: string; delta?: string };
      if (part.type === 'text-delta') answer += part.delta ?? '';
      if (part.type === 'finish') finished = true;
    }
  }
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    ms: performance.now() - started,
    answer,
    complete: finished && text.endsWith('data: [DONE]\n\n'),
  };
}

/** Sends `count` requests all at once; resolves with every outcome. */
export async function burst(url: string, count: number): Promise<ChatOutcome[]> {
  return Promise.all(Array.from({ length: count }, (_, n) => sendConversation(url, conversationBody(n, 2))));
}

/**
 * Holds `total` conversations, `concurrency` at a time (each a few turns of history); a 503 is retried after
 * a tenth of its Retry-After (the bench does not want to idle). Resolves with the RSS (bytes) sampled after each 1,000 conversations.
 */
export async function conversations(
  url: string,
  total: number,
  concurrency: number,
): Promise<{ readonly rssSamples: readonly number[]; readonly refused: number; readonly answered: number }> {
  let next = 0;
  let refused = 0;
  let answered = 0;
  const rssSamples: number[] = [];
  const worker = async (): Promise<void> => {
    while (next < total) {
      const n = next++;
      for (;;) {
        const outcome = await sendConversation(url, conversationBody(n, 1 + (n % 4)));
        if (outcome.status === 503) {
          refused += 1;
          await new Promise((resolve) => setTimeout(resolve, Number(outcome.retryAfter ?? 1) * 100));
          continue;
        }
        if (outcome.status !== 200 || !outcome.complete)
          throw new Error(`conversation ${n}: ${outcome.status}`);
        answered += 1;
        break;
      }
      if ((n + 1) % 1000 === 0) rssSamples.push(process.memoryUsage().rss);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { rssSamples, refused, answered };
}
