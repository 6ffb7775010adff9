/**
 * A chat web app: a node:http server with one static page (examples/chat/index.html, no build step) and a
 * chat endpoint made with `createChatHandler`, speaking the AI SDK UI message stream (so `useChat` works
 * against it too).
 *
 *   GET  /          the page
 *   POST /api/chat  the body useChat sends ({ id, messages }) → the answer as a UI message stream
 *
 * The chain has two nodes: `research` (notes on the last message, shown as progress: "researching…") and
 * `draft` (the answer, streamed token by token: "drafting…"), template prompts/examples/chat.hbs, with the
 * earlier turns as the model's message history. The conversation lives in the page and comes whole with each
 * turn; the server keeps nothing between requests.
 * Offline the simulated model answers, slowed to a visible pace per token; with OPENAI_API_KEY or
 * ANTHROPIC_API_KEY (or SYMPHONIZER_MODEL) a real model does.
 *
 *   PORT=3000 node examples/chatbot-server.ts    (without PORT, a free port is picked; the URL is printed)
 *
 * Importing the module starts nothing: it exports {@link createChatServer}, and listens only when run
 * directly. Its chain is built inside the server (one per server), so there is no chain for the `symphonizer`
 * command.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { z } from 'zod';
import {
  ModelClient,
  chain,
  createChatHandler,
  createDefaultRegistry,
  toNodeHandler,
  type ChainEvent,
  type ChatHandler,
  type ChatHandlerLimits,
  type ChatMessage,
  type SimulatedProviderOptions,
} from '../src/index.ts';
import { isMain } from './is-main.ts';
import { modelBanner, pickModel } from './model.ts';

/** Options of {@link createChatServer}. */
export interface ChatServerOptions {
  /** `provider:model`. @default pickModel() */
  readonly model?: string | undefined;
  /** The client of the chain's calls. @default a demo client (see below) */
  readonly client?: ModelClient | undefined;
  /**
   * Delay before each token of the simulated model after the first, in ms (its `tokenLatencyMs`), so
   * streaming can be seen offline. @default 40
   */
  readonly tokenDelayMs?: number | undefined;
  /** Options of the simulated model (seed, latency, failureRate…) of the default client. @default {} */
  readonly simulated?: SimulatedProviderOptions | undefined;
  /** The chat endpoint's limits. @default createChatHandler's */
  readonly limits?: ChatHandlerLimits | undefined;
  /** Receives every event of every run (e.g. to log them, or to see a run cancelled by Stop). */
  readonly onEvent?: ((event: ChainEvent) => void) | undefined;
}

/** A chat server and its handler (whose `running` counts the answers in progress). */
export interface ChatServer {
  readonly server: Server;
  readonly handler: ChatHandler;
}

const Turn = z.object({ role: z.enum(['user', 'assistant']), content: z.string() });

/** The page, and the Content-Security-Policy that lets only its own inline script and style run. */
function loadPage(): { readonly html: string; readonly csp: string } {
  const html = readFileSync(new URL('chat/index.html', import.meta.url), 'utf8');
  const hash = (tag: string): string => {
    const body = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(html)?.[1] ?? '';
    return `'sha256-${createHash('sha256').update(body).digest('base64')}'`;
  };
  const csp = `default-src 'none'; script-src ${hash('script')}; style-src ${hash('style')}; connect-src 'self'; base-uri 'none'; form-action 'none'`;
  return { html, csp };
}

/** The demo client: real providers with a few requests at once, retries, and the slowed simulated model. */
function demoClient(options: ChatServerOptions): ModelClient {
  // The simulated model streams at a visible pace (its tokenLatencyMs), so streaming shows offline.
  const registry = createDefaultRegistry({
    simulated: { tokenLatencyMs: options.tokenDelayMs ?? 40, ...options.simulated },
  });
  const realLimits = { maxConcurrency: 4, requestsPerMinute: 300 };
  return new ModelClient({
    registry,
    limits: { openai: realLimits, anthropic: realLimits },
    retry: { maxRetries: 3, baseDelayMs: 500 },
    repairAttempts: 1,
    budget: { maxUsd: 0.5 },
  });
}

/** The chain's input for a conversation: the earlier turns, and the new message. */
function turnsOf(messages: ChatMessage[]): { history: z.output<typeof Turn>[]; message: string } {
  const turns = messages.flatMap((m) => (m.role === 'user' || m.role === 'assistant' ? [m] : []));
  const last = turns.at(-1);
  return {
    history: turns.slice(0, -1).map((m) => ({ role: m.role, content: m.content })),
    message: last?.content ?? '',
  };
}

/** Creates the chat server (not listening yet). */
export function createChatServer(options: ChatServerOptions = {}): ChatServer {
  const model = options.model ?? pickModel();
  const chat = chain({
    name: 'chat',
    input: z.object({ history: z.array(Turn), message: z.string().min(1) }),
    model,
    client: options.client ?? demoClient(options),
  })
    .prompt('research', {
      prompt: ({ input }) => ({
        system: 'You collect, in three short bullet points, what an answer to the user needs. No preamble.',
        user: input.message,
      }),
      maxTokens: 200,
    })
    // The earlier turns go to the model as real messages, at the template's history marker.
    .prompt('draft', {
      after: ['research'],
      template: 'examples/chat',
      messages: ({ input }) => input.history,
    })
    .build();
  const handler = createChatHandler({
    chain: chat,
    input: turnsOf,
    answer: 'draft',
    limits: options.limits,
    runOptions: { onEvent: options.onEvent },
  });
  const { html, csp } = loadPage();
  const api = toNodeHandler(handler);
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/api/chat') {
      api(req, res);
      return;
    }
    if (req.method === 'GET' && path === '/') {
      res
        .writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'content-security-policy': csp,
          'x-content-type-options': 'nosniff',
          'cache-control': 'no-cache',
        })
        .end(html);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found\n');
  });
  return { server, handler };
}

// Listen only when run directly (`node examples/chatbot-server.ts`), not when a test imports this module.
if (isMain(import.meta)) {
  const { server } = createChatServer();
  server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
    const address = server.address();
    console.log(modelBanner(pickModel()));
    console.log(
      `chat server: http://127.0.0.1:${typeof address === 'object' && address ? address.port : '?'}/`,
    );
  });
}
