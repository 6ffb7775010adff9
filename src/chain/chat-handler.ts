/**
 * A chat endpoint over a chain, in the fetch standard (`(request: Request) => Promise<Response>`): it takes
 * the body `useChat` (the AI SDK's `Chat` with `DefaultChatTransport`) sends, runs the chain on the
 * conversation and answers with the UI message stream. It keeps nothing between requests: the conversation
 * is what the client sends.
 */
import type { z } from 'zod';
import { InvalidOptionError } from '../core/errors.ts';
import type { ChatMessage } from '../providers/types.ts';
import type { Chain, ChainRunOptions } from './chain.ts';
import { DEFAULT_CHAT_ERROR_TEXT, toUIMessageStreamResponse } from './ui-message-stream.ts';

/** Bounds of a chat handler. Every request beyond one is refused before the chain runs. */
export interface ChatHandlerLimits {
  /**
   * Largest request body, in bytes: a larger `Content-Length` is refused before any of the body is read, and
   * a body without one is counted as it arrives and refused as soon as it passes the bound (413).
   * @default 1048576 (1 MiB)
   */
  readonly maxBodyBytes?: number | undefined;
  /** Most messages in one request (400). @default 200 */
  readonly maxMessages?: number | undefined;
  /** Longest text of one message, in characters (UTF-16 code units) (400). @default 20000 */
  readonly maxMessageChars?: number | undefined;
  /**
   * Most runs of this handler at once. A request beyond it is answered at once with 503 and `Retry-After`;
   * nothing waits in a queue. A run holds its place from admission until it ends (answered, failed, or
   * aborted because the client went away).
   * @default 32
   */
  readonly maxConcurrentRuns?: number | undefined;
  /** `Retry-After` of a 503, in seconds. @default 1 */
  readonly retryAfterSeconds?: number | undefined;
  /** Longest wait for the whole request body, in milliseconds (408). @default 10000 */
  readonly bodyTimeoutMs?: number | undefined;
  /**
   * Longest run, in milliseconds: past it the run is aborted and the stream ends with an `abort` part.
   * @default 120000
   */
  readonly maxRunMs?: number | undefined;
}

/** Options of {@link createChatHandler}. */
export interface ChatHandlerOptions<S extends z.ZodType, O extends Record<string, unknown>> {
  /** The chain to run per request. */
  readonly chain: Chain<S, O>;
  /**
   * The chain's input for a conversation: `messages` are the client's user and assistant turns, oldest
   * first, the new user turn last (text parts only). It may throw to refuse a conversation (400).
   */
  readonly input: (messages: ChatMessage[], request: Request) => z.input<S> | Promise<z.input<S>>;
  /** The node whose text is the answer. @default the chain's last node */
  readonly answer?: (keyof O & string) | undefined;
  /** Limits; see each for its default. */
  readonly limits?: ChatHandlerLimits | undefined;
  /**
   * Options of each run (client, model, overrides, nodeTimeoutMs, onEvent); the handler sets `signal`.
   * `retryAfterText` defaults to true here: an answer dropped mid-stream is retried, and the stream tells the
   * client to drop the text it had (`reset-step`).
   */
  readonly runOptions?: Omit<ChainRunOptions<O>, 'signal'> | undefined;
  /** Text of the stream's `error` part when a run fails (it reaches the end user: keep it free of detail). */
  readonly errorText?: ((error: string | undefined) => string) | undefined;
  /**
   * Called with each run that ended in an error or passed `maxRunMs` (for server logs); not for runs the
   * client cancelled. Must not throw.
   */
  readonly onError?: ((error: unknown, request: Request) => void) | undefined;
}

/** Why a chat request was refused: the `error.code` of the JSON body. */
export type ChatRejectionCode =
  | 'method_not_allowed'
  | 'payload_too_large'
  | 'request_timeout'
  | 'invalid_request'
  | 'invalid_conversation'
  | 'busy';

/** The JSON body of a refused request. */
export interface ChatRejection {
  readonly error: { readonly code: ChatRejectionCode; readonly message: string };
}

/** A chat endpoint: `(request) => Response`, plus how many runs it has going. */
export interface ChatHandler {
  (request: Request): Promise<Response>;
  /** Runs in progress (each holds one of `maxConcurrentRuns`). */
  readonly running: number;
}

/** Limits with every value set. */
type ResolvedChatLimits = { readonly [K in keyof ChatHandlerLimits]-?: number };

/** The limits' defaults. */
export const DEFAULT_CHAT_LIMITS: ResolvedChatLimits = Object.freeze({
  maxBodyBytes: 1_048_576,
  maxMessages: 200,
  maxMessageChars: 20_000,
  maxConcurrentRuns: 32,
  retryAfterSeconds: 1,
  bodyTimeoutMs: 10_000,
  maxRunMs: 120_000,
});

/**
 * Creates a chat endpoint for `chain`. Per POST it: refuses a body over `maxBodyBytes` (413, by
 * `Content-Length` before reading, else while reading), refuses when `maxConcurrentRuns` run (503 with
 * `Retry-After`), parses the `useChat` body `{ id?, messages: UIMessage[], … }` (400 with a short message
 * naming the field), maps the messages to `ChatMessage[]` (the text parts of user and assistant messages;
 * `system` messages are refused, as the server sets system text), runs the chain on `input(messages,
 * request)` and answers with the UI message stream of the run (`answer` is the reply). When the client goes
 * away (`request.signal` aborts, or the response body is cancelled) the run is aborted, and with it its
 * provider requests. Refusals are JSON `{ error: { code, message } }` ({@link ChatRejection}).
 *
 * @example
 * ```ts
 * const handler = createChatHandler({ chain: chat, input: (messages) => ({ messages }) });
 * export const POST = handler; // a Next.js route handler; for node:http: createServer(toNodeHandler(handler))
 * ```
 * @throws {InvalidOptionError} for a limit that is not a positive integer, or a missing `chain` or `input`.
 */
export function createChatHandler<S extends z.ZodType, O extends Record<string, unknown>>(
  options: ChatHandlerOptions<S, O>,
): ChatHandler {
  const limits = limitsOf(options.limits);
  const { chain, answer, runOptions, errorText, onError } = options;
  if (!isRecord(chain) || typeof chain.stream !== 'function') {
    throw new InvalidOptionError('chain', chain, 'a built chain');
  }
  if (typeof options.input !== 'function') {
    throw new InvalidOptionError('input', options.input, 'a function (messages, request) => chain input');
  }
  const toInput = options.input;
  if (answer !== undefined && !chain.nodes.includes(answer)) {
    throw new InvalidOptionError('answer', answer, `one of the chain's nodes (${chain.nodes.join(', ')})`);
  }
  let running = 0;

  const handle = async (request: Request): Promise<Response> => {
    if (request.method !== 'POST') {
      return reject(405, 'method_not_allowed', 'Send the conversation with POST.', { allow: 'POST' });
    }
    const declared = Number(request.headers.get('content-length') ?? Number.NaN);
    if (declared > limits.maxBodyBytes) return tooLarge(limits.maxBodyBytes);
    if (running >= limits.maxConcurrentRuns) {
      return reject(503, 'busy', 'Too many conversations at once; try again shortly.', {
        'retry-after': String(limits.retryAfterSeconds),
      });
    }
    // The place is taken now, so requests reading their bodies at once cannot pass the bound together.
    running += 1;
    let started = false;
    try {
      const body = await readBody(request, limits);
      if (body instanceof Response) return body;
      const messages = parseConversation(body, limits);
      if (typeof messages === 'string') return reject(400, 'invalid_request', messages);
      let input: unknown;
      try {
        input = await toInput(messages, request);
      } catch {
        return reject(400, 'invalid_conversation', 'This conversation cannot be answered.');
      }
      if (!chain.inputSchema.safeParse(input).success) {
        return reject(400, 'invalid_conversation', 'This conversation cannot be answered.');
      }
      const abort = new AbortController();
      const clientGone = (): void => {
        abort.abort(request.signal.reason);
      };
      request.signal.addEventListener('abort', clientGone, { once: true });
      if (request.signal.aborted) clientGone();
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        abort.abort(new Error(`The run passed maxRunMs (${limits.maxRunMs} ms).`));
      }, limits.maxRunMs);
      // A drop mid-answer is retried: the stream's `reset-step` makes the client drop the text it had.
      const run = chain.stream(input as z.input<S>, {
        retryAfterText: true,
        ...runOptions,
        signal: abort.signal,
      });
      started = true;
      run.result.then(
        () => undefined,
        (error: unknown) => {
          if (onError !== undefined && (timedOut || !abort.signal.aborted)) onError(error, request);
        },
      );
      void run.result
        .catch(() => undefined)
        .finally(() => {
          running -= 1;
          clearTimeout(timer);
          request.signal.removeEventListener('abort', clientGone);
        });
      return toUIMessageStreamResponse(run, {
        answer,
        abortController: abort,
        errorText: errorText ?? (() => DEFAULT_CHAT_ERROR_TEXT),
      });
    } finally {
      if (!started) running -= 1;
    }
  };
  Object.defineProperty(handle, 'running', { get: () => running, enumerable: true });
  return handle as ChatHandler;
}

function limitsOf(given: ChatHandlerLimits | undefined): ResolvedChatLimits {
  const limits = { ...DEFAULT_CHAT_LIMITS };
  for (const [name, value] of Object.entries(given ?? {})) {
    if (value === undefined) continue;
    if (!(name in DEFAULT_CHAT_LIMITS)) {
      throw new InvalidOptionError(
        `limits.${name}`,
        value,
        `one of ${Object.keys(DEFAULT_CHAT_LIMITS).join(', ')}`,
      );
    }
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
      throw new InvalidOptionError(`limits.${name}`, value, 'a positive integer');
    }
    (limits as Record<string, number>)[name] = value;
  }
  return limits;
}

function reject(
  status: number,
  code: ChatRejectionCode,
  message: string,
  headers: Readonly<Record<string, string>> = {},
): Response {
  const body: ChatRejection = { error: { code, message } };
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers },
  });
}

function tooLarge(max: number): Response {
  // The rest of the body is not read: the connection is not reused.
  return reject(413, 'payload_too_large', `The request body is larger than ${max} bytes.`, {
    connection: 'close',
  });
}

/** The parsed JSON body, or the response refusing it. Stops reading at the first byte past the bound. */
async function readBody(request: Request, limits: ResolvedChatLimits): Promise<unknown> {
  if (request.body === null) return reject(400, 'invalid_request', 'The request has no body.');
  const reader = request.body.getReader() as ReadableStreamDefaultReader<Uint8Array>;
  const chunks: Uint8Array[] = [];
  let total = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => {
      resolve('timeout');
    }, limits.bodyTimeoutMs);
  });
  try {
    for (;;) {
      const next = await Promise.race([reader.read(), timeout]);
      if (next === 'timeout') {
        return reject(408, 'request_timeout', 'The request body took too long to arrive.', {
          connection: 'close',
        });
      }
      if (next.done) break;
      total += next.value.byteLength;
      if (total > limits.maxBodyBytes) return tooLarge(limits.maxBodyBytes);
      chunks.push(next.value);
    }
  } catch {
    return reject(400, 'invalid_request', 'The request body could not be read.');
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
  const text = new TextDecoder().decode(Buffer.concat(chunks));
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return reject(400, 'invalid_request', 'The request body is not JSON.');
  }
}

/**
 * The conversation of a `useChat` body as chain messages, or a short reason it is refused. Only `text` parts
 * count (tool, data, reasoning and step parts of earlier answers are dropped); an assistant message without
 * text (an answer that was stopped before its first token) is left out.
 */
export function parseConversation(
  body: unknown,
  limits: Pick<ResolvedChatLimits, 'maxMessages' | 'maxMessageChars'> = DEFAULT_CHAT_LIMITS,
): ChatMessage[] | string {
  if (!isRecord(body)) return 'The body must be a JSON object with a `messages` array.';
  const list = body.messages;
  if (!Array.isArray(list)) return 'The body must have a `messages` array.';
  if (list.length === 0) return '`messages` is empty: send at least the new user message.';
  if (list.length > limits.maxMessages) return `\`messages\` has more than ${limits.maxMessages} messages.`;
  const messages: ChatMessage[] = [];
  for (const [i, message] of list.entries()) {
    if (!isRecord(message)) return `messages[${i}] must be an object.`;
    const role = message.role;
    if (role === 'system') return `messages[${i}]: system messages are set by the server, not sent.`;
    if (role !== 'user' && role !== 'assistant') return `messages[${i}].role must be "user" or "assistant".`;
    const text = textOfMessage(message);
    if (text === undefined) return `messages[${i}].parts must be an array of parts.`;
    if (text.length > limits.maxMessageChars) {
      return `messages[${i}] is longer than ${limits.maxMessageChars} characters.`;
    }
    if (role === 'assistant' && text.trim() === '') continue;
    messages.push({ role, content: text });
  }
  const last = messages.at(-1);
  if (last?.role !== 'user' || last.content.trim() === '') {
    return 'The last message must be the new user message, with text.';
  }
  return messages;
}

/** The text of a UIMessage: its `text` parts joined (or a plain `content` string); undefined when malformed. */
function textOfMessage(message: Readonly<Record<string, unknown>>): string | undefined {
  const parts = message.parts;
  if (parts === undefined && typeof message.content === 'string') return message.content;
  if (!Array.isArray(parts)) return undefined;
  let text = '';
  for (const part of parts) {
    if (!isRecord(part)) return undefined;
    if (part.type === 'text') {
      if (typeof part.text !== 'string') return undefined;
      text += part.text;
    }
  }
  return text;
}

function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
