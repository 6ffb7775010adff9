/**
 * A chat web app in one file: a node:http server with one page, and answers streamed token by token.
 *
 *   GET  /      the page (inline HTML + JS, no framework)
 *   POST /chat  { conversationId, message } → the chain's events as server-sent events (text/event-stream)
 *
 * Each conversation's history lives in memory (a Map by id, capped) and goes into the chain's input, so the
 * model sees the earlier turns. Template: prompts/examples/chat.hbs.
 *
 *   PORT=3000 node examples/chatbot-server.ts    (without PORT, a free port is picked; the URL is printed)
 *
 * Importing the module starts nothing: it exports {@link createChatServer}, and listens only when run
 * directly. Its chain is built inside the server (one per server), so there is no chain for the `symphonizer`
 * command.
 */
import { createServer, type Server } from 'node:http';
import { json } from 'node:stream/consumers';
import { z } from 'zod';
import { chain, toServerSentEvents, type ModelClient } from '../src/index.ts';
import { isMain } from './is-main.ts';
import { exampleClient, modelBanner, pickModel } from './model.ts';

export interface ChatServerOptions {
  /** `provider:model`. @default pickModel() */
  readonly model?: string | undefined;
  readonly client?: ModelClient | undefined;
  /** Messages kept per conversation (user and assistant turns); older ones are dropped. @default 20 */
  readonly maxHistory?: number | undefined;
  /** Conversations kept; the least recently used is dropped. @default 1000 */
  readonly maxConversations?: number | undefined;
}

const Turn = z.object({ role: z.enum(['user', 'assistant']), content: z.string() });
type Turn = z.output<typeof Turn>;
const ChatRequest = z.object({
  conversationId: z.string().min(1).max(100),
  message: z.string().min(1).max(4000),
});

export function createChatServer(options: ChatServerOptions = {}): Server {
  const { maxHistory = 20, maxConversations = 1000 } = options;
  // One node; its input carries the history, so the chain itself stays stateless and shareable.
  const chat = chain({
    name: 'chat',
    input: z.object({ history: z.array(Turn), message: z.string() }),
    model: options.model ?? pickModel(),
    client: options.client ?? exampleClient(),
  })
    .prompt('reply', { template: 'examples/chat' })
    .build();
  const conversations = new Map<string, Turn[]>();

  return createServer((req, res) => {
    void (async () => {
      if (req.method === 'GET' && req.url === '/') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page);
        return;
      }
      if (req.method !== 'POST' || req.url !== '/chat') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found\n');
        return;
      }
      const body = ChatRequest.safeParse(await json(req).catch(() => undefined)); // invalid JSON → 400
      if (!body.success) {
        res
          .writeHead(400, { 'content-type': 'text/plain' })
          .end(`Bad request: ${body.error.issues[0]?.message}\n`);
        return;
      }
      const { conversationId, message } = body.data;
      const history = conversations.get(conversationId) ?? [];
      // Stop the run (and its model call) if the browser goes away before the answer is done.
      const abort = new AbortController();
      res.on('close', () => {
        abort.abort();
      });
      const run = chat.stream({ history, message }, { signal: abort.signal });
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      for await (const chunk of toServerSentEvents(run)) res.write(chunk);
      try {
        const { outputs } = await run.result;
        const turns: Turn[] = [...history, { role: 'user', content: message }];
        turns.push({ role: 'assistant', content: outputs.reply });
        conversations.delete(conversationId); // re-insert: the Map's order is least recently used first
        conversations.set(conversationId, turns.slice(-maxHistory));
        if (conversations.size > maxConversations) conversations.delete(conversations.keys().next().value!);
      } catch {
        // The run failed or was cancelled: its chain-done event already told the page; keep no turn.
      }
      res.end();
    })().catch((error: unknown) => {
      console.error(error);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
}

// The page: a log of messages and a form. It reads the SSE stream with fetch + ReadableStream (EventSource
// only does GET) and appends each `token` event's text to the answer as it arrives.
const page = `<!doctype html><meta charset="utf-8"><title>symphonizer chat</title>
<style>body{font:16px system-ui;max-width:40em;margin:2em auto}#log p{white-space:pre-wrap}.user{color:#235}.error{color:#a00}</style>
<h1>symphonizer chat</h1><div id="log"></div>
<form id="form"><input id="text" size="50" autofocus placeholder="Say something"> <button>Send</button></form>
<script>
const id = crypto.randomUUID?.() ?? String(Math.random());
const log = document.getElementById('log'), text = document.getElementById('text');
const say = (who, t, cls = '') => { const p = document.createElement('p'); p.className = cls; p.textContent = who + ': ' + t; log.append(p); return p; };
document.getElementById('form').onsubmit = async (e) => {
  e.preventDefault(); const message = text.value.trim(); if (!message) return; text.value = '';
  say('you', message, 'user'); const answer = say('bot', '');
  const res = await fetch('/chat', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ conversationId: id, message }) });
  if (!res.ok) { answer.textContent = 'bot: ' + (await res.text()); answer.className = 'error'; return; }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader(); let buffer = '';
  for (;;) {
    const { done, value } = await reader.read(); if (done) break; buffer += value;
    let end; while ((end = buffer.indexOf('\\n\\n')) >= 0) { // one event: "event: <type>\\ndata: <json>"
      const data = JSON.parse(buffer.slice(0, end).split('\\n').find((l) => l.startsWith('data: ')).slice(6)); buffer = buffer.slice(end + 2);
      if (data.type === 'token') answer.textContent += data.text;
      if (data.type === 'chain-done' && data.status !== 'completed') { answer.textContent += ' [' + data.error + ']'; answer.className = 'error'; }
    }
  }
};
</script>`;

// Listen only when run directly (`node examples/chatbot-server.ts`), not when a test imports this module.
if (isMain(import.meta)) {
  const server = createChatServer();
  server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
    const address = server.address();
    console.log(modelBanner(pickModel()));
    console.log(
      `chat server: http://127.0.0.1:${typeof address === 'object' && address ? address.port : '?'}/`,
    );
  });
}
