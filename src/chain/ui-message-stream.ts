/**
 * A chain's events as the AI SDK's UI message stream: the protocol `useChat` and the `ai` package's `Chat`
 * read (server-sent events, one typed JSON part per `data:` line, `data: [DONE]` last). Written here from the
 * protocol, without importing `ai`.
 *
 * What the parts say:
 * - `start`, then the answer node's tokens as `text-start` / `text-delta` / `text-end` inside `start-step` /
 *   `finish-step` (an agent's turns are a step each: the last one's text is its output; a node that does not
 *   stream text, e.g. one with an output schema, sends its whole output, as JSON, when it is done);
 * - `data-node` (id: the node name, so a client keeps one part per node, updated in place): each node's
 *   progress, `{ node, status: 'running' | <NodeDoneStatus>, attempt }`;
 * - `data-partial-output` (id: `partial-<node>`, updated in place): a schema node's partial output as it
 *   streams (`partial-output` events);
 * - `data-retry` and `data-rate-limit` (transient: delivered to `onData`, not kept in the message): notices of
 *   a retried attempt and of a wait for the rate limiter (no provider text);
 * - `tool-input-available` and then `tool-output-available` (or `tool-output-error` with a short fixed text)
 *   for each tool call of an agent, as dynamic tools with ids `<node>:<call id>`;
 * - at the end `finish` (`finishReason: 'stop'`), or `error` (a short safe text, see `errorText`) then
 *   `finish` (`finishReason: 'error'`), or `abort` for a cancelled run; then `data: [DONE]`.
 *
 * A retry that discards tokens already streamed (see `ChainRunOptions.retryAfterText`) sends `reset-step`,
 * so a client drops the text of the failed attempt (or, for an agent, of the turn in progress). Providers
 * send no reasoning through the chain's events today, so no `reasoning-*` parts are written.
 */
import { errorMessage } from '../core/errors.ts';
import type { ChainEvent } from './types.ts';

/** The response headers of the UI message stream protocol (as the `ai` package sends them). */
export const UI_MESSAGE_STREAM_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  'x-vercel-ai-ui-message-stream': 'v1',
  'x-accel-buffering': 'no',
});

/**
 * The `data-*` parts this stream sends, by name: the `DATA_TYPES` of an AI SDK message,
 * `UIMessage<unknown, ChatDataParts>`.
 */
export type ChatDataParts = {
  /** A node's progress: `running` at each attempt's start, then how it ended. */
  readonly node: {
    readonly node: string;
    readonly status:
      'running' | 'completed' | 'completed_error' | 'retrying' | 'error' | 'timed_out' | 'cancelled';
    readonly attempt: number;
  };
  /** A schema node's output parsed so far (deep-partial); the validated output follows in `node-done`. */
  readonly 'partial-output': { readonly node: string; readonly partial: unknown };
  /** An attempt of `node` failed and is retried after `delayMs`; `discarded`: its streamed text was dropped. */
  readonly retry: {
    readonly node: string;
    readonly attempt: number;
    readonly delayMs: number;
    readonly kind: 'transport' | 'repair';
    readonly discarded: boolean;
  };
  /** A call of `node` waits for the rate limiter (`delayMs` when known, else `null`). */
  readonly 'rate-limit': { readonly node: string; readonly delayMs: number | null };
};

/** One part of the UI message stream as this module writes it (a subset of the AI SDK's `UIMessageChunk`). */
export type UIMessageStreamPart =
  | { readonly type: 'start'; readonly messageId?: string | undefined }
  | { readonly type: 'start-step' }
  | { readonly type: 'finish-step' }
  | { readonly type: 'reset-step' }
  | { readonly type: 'text-start'; readonly id: string }
  | { readonly type: 'text-delta'; readonly id: string; readonly delta: string }
  | { readonly type: 'text-end'; readonly id: string }
  | {
      readonly type: 'tool-input-available';
      readonly toolCallId: string;
      readonly toolName: string;
      readonly input: unknown;
      readonly dynamic: true;
    }
  | {
      readonly type: 'tool-output-available';
      readonly toolCallId: string;
      readonly output: unknown;
      readonly dynamic: true;
    }
  | {
      readonly type: 'tool-output-error';
      readonly toolCallId: string;
      readonly errorText: string;
      readonly dynamic: true;
    }
  | {
      readonly [K in keyof ChatDataParts]: {
        readonly type: `data-${K}`;
        readonly id?: string | undefined;
        readonly data: ChatDataParts[K];
        readonly transient?: true | undefined;
      };
    }[keyof ChatDataParts]
  | { readonly type: 'error'; readonly errorText: string }
  | { readonly type: 'abort' }
  | { readonly type: 'finish'; readonly finishReason: 'stop' | 'error' };

/** Options of {@link toUIMessageStream}. */
export interface UIMessageStreamOptions {
  /**
   * The node whose text is the chat answer; the other nodes show as progress (`data-node`).
   * @default the chain's last node (the last in `chain-start`'s `nodes`)
   */
  readonly answer?: string | undefined;
  /**
   * The controller whose signal the run was started with (`chain.stream(input, { signal })`): cancelling the
   * returned stream (the client went away) aborts it, and with it the run's in-flight requests. Without it,
   * cancelling only stops reading the events and the run goes on to its end.
   */
  readonly abortController?: AbortController | undefined;
  /** `messageId` of the `start` part. @default none (the client makes one) */
  readonly messageId?: string | undefined;
  /**
   * The text of the `error` part when the run fails. It reaches the end user, so it must not carry provider
   * messages, validation details or secrets; the run's own error is `error` (log it on the server).
   * @default a fixed sentence naming no detail
   */
  readonly errorText?: ((error: string | undefined) => string) | undefined;
}

/** Options of {@link toUIMessageStreamResponse}: the stream's, plus the response's status and headers. */
export interface UIMessageStreamResponseOptions extends UIMessageStreamOptions {
  /** @default 200 */
  readonly status?: number | undefined;
  /** Extra headers; the protocol's own ({@link UI_MESSAGE_STREAM_HEADERS}) are set unless given here. */
  readonly headers?: ConstructorParameters<typeof Headers>[0] | undefined;
}

/** The default `errorText`: says something failed, and nothing about what. */
export const DEFAULT_CHAT_ERROR_TEXT = 'The answer could not be completed. Please try again.';

const encoder = new TextEncoder();
const DONE = 'data: [DONE]\n\n';

/** One part as a server-sent event: `data: <json>` and a blank line. */
export function formatUIMessageStreamPart(part: UIMessageStreamPart): string {
  return `data: ${JSON.stringify(part)}\n\n`;
}

/**
 * Turns a chain's events (`chain.stream(input)`) into a web `ReadableStream` of the AI SDK UI message stream
 * protocol (see the module comment for the parts). The stream reads the events as it is read (backpressure:
 * nothing is buffered beyond one event's parts); cancelling it aborts the run when `abortController` is
 * given. A failure ends it with an `error` part carrying `errorText`, never the raw error.
 *
 * @example
 * ```ts
 * const abort = new AbortController();
 * const body = toUIMessageStream(chat.stream(input, { signal: abort.signal }), { answer: 'reply', abortController: abort });
 * return new Response(body, { headers: UI_MESSAGE_STREAM_HEADERS });
 * ```
 */
export function toUIMessageStream<O>(
  events: AsyncIterable<ChainEvent<O>>,
  options: UIMessageStreamOptions = {},
): ReadableStream<Uint8Array> {
  const iterator = events[Symbol.asyncIterator]();
  const writer = new PartWriter(options);
  let cancelled = false;
  let finished = false;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const out: UIMessageStreamPart[] = [];
        try {
          while (out.length === 0 && !finished) {
            const next = await iterator.next();
            if (cancelled) return;
            if (next.done === true) {
              writer.end(out, undefined);
              finished = true;
            } else {
              finished = writer.write(next.value, out);
            }
          }
        } catch (error) {
          if (cancelled) return;
          writer.end(out, error);
          finished = true;
        }
        // One chunk per event: its parts (often one) and, at the end, `[DONE]`.
        let text = '';
        for (const part of out) text += formatUIMessageStreamPart(part);
        if (finished) text += DONE;
        if (text !== '') controller.enqueue(encoder.encode(text));
        if (finished) controller.close();
      },
      cancel(reason) {
        cancelled = true;
        options.abortController?.abort(reason);
        // The run ends (aborted or not); let the iterator finish without waiting for it here.
        void iterator.return?.().catch(() => undefined);
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * A `Response` of the UI message stream of `events` (see {@link toUIMessageStream}), with the protocol's
 * headers (`x-vercel-ai-ui-message-stream: v1`, `content-type: text/event-stream`, no caching or buffering).
 */
export function toUIMessageStreamResponse<O>(
  events: AsyncIterable<ChainEvent<O>>,
  options: UIMessageStreamResponseOptions = {},
): Response {
  const headers = new Headers(options.headers);
  for (const [name, value] of Object.entries(UI_MESSAGE_STREAM_HEADERS)) {
    if (!headers.has(name)) headers.set(name, value);
  }
  return new Response(toUIMessageStream(events, options), { status: options.status ?? 200, headers });
}

/** Maps events to parts, keeping what the protocol needs: which text part is open, whether a step is. */
class PartWriter {
  readonly #options: UIMessageStreamOptions;
  #answer: string | undefined;
  #started = false;
  /** Id of the answer's open text part, if any. */
  #textId: string | undefined;
  /** True once the answer node sent text (streamed or whole); its later `node-done` adds none. */
  #answered = false;
  #texts = 0;
  /** The agent turn of the open text part, when the answer is an agent's. */
  #textStep: number | undefined;
  /** Tool calls sent from `tool-call` events whose `agent-step` has not come yet. */
  readonly #toolCalls = new Set<string>();
  /** The latest attempt per node, repeated in its `node-done` part (a part with an id is replaced whole). */
  readonly #attempts = new Map<string, number>();

  constructor(options: UIMessageStreamOptions) {
    this.#options = options;
    this.#answer = options.answer;
  }

  /** Appends the parts of `event` to `out`; true when it was the last event (`chain-done`). */
  write<O>(event: ChainEvent<O>, out: UIMessageStreamPart[]): boolean {
    this.#start(out);
    switch (event.type) {
      case 'chain-start':
        this.#answer ??= event.nodes.at(-1);
        return false;
      case 'node-start':
        this.#attempts.set(event.node, event.attempt);
        out.push(nodePart(event.node, 'running', event.attempt));
        return false;
      case 'token':
        if (event.node !== this.#answer || event.text === '') return false;
        // An agent's turns are steps of their own: the last one's text is the node's output.
        if (event.step !== undefined && event.step !== this.#textStep) this.#closeText(out);
        this.#textStep = event.step;
        this.#text(event.text, out);
        return false;
      case 'partial-output':
        out.push({
          type: 'data-partial-output',
          id: `partial-${event.node}`,
          data: { node: event.node, partial: event.partial ?? null },
        });
        return false;
      case 'tool-call':
        this.#toolCalls.add(`${event.node}:${event.toolCallId}`);
        out.push({
          type: 'tool-input-available',
          toolCallId: `${event.node}:${event.toolCallId}`,
          toolName: event.toolName,
          input: event.input ?? {},
          dynamic: true,
        });
        return false;
      case 'tool-result':
        out.push(
          event.ok
            ? {
                type: 'tool-output-available',
                toolCallId: `${event.node}:${event.toolCallId}`,
                output: event.output,
                dynamic: true,
              }
            : {
                // What went back to the model may hold validation details: the client gets a short text.
                type: 'tool-output-error',
                toolCallId: `${event.node}:${event.toolCallId}`,
                errorText: `The tool "${event.toolName}" failed.`,
                dynamic: true,
              },
        );
        return false;
      case 'retry':
        if (event.discardTokens === true && event.node === this.#answer && this.#textId !== undefined) {
          // The failed attempt's text is dropped by the client with its step; the next attempt starts anew.
          out.push({ type: 'reset-step' });
          this.#textId = undefined;
          this.#answered = false;
        }
        out.push({
          type: 'data-retry',
          data: {
            node: event.node,
            attempt: event.attempt,
            delayMs: event.delayMs,
            kind: event.kind,
            discarded: event.discardTokens === true,
          },
          transient: true,
        });
        return false;
      case 'rate-limit-wait':
        out.push({
          type: 'data-rate-limit',
          data: { node: event.node, delayMs: event.delayMs ?? null },
          transient: true,
        });
        return false;
      case 'agent-step':
        // Tool calls already sent from their tool-call / tool-result events are not sent again.
        for (const call of event.step.toolCalls) {
          const toolCallId = `${event.node}:${call.id}`;
          if (this.#toolCalls.delete(toolCallId)) continue;
          out.push({
            type: 'tool-input-available',
            toolCallId,
            toolName: call.name,
            input: call.arguments ?? {},
            dynamic: true,
          });
          out.push({ type: 'tool-output-available', toolCallId, output: call.result, dynamic: true });
        }
        return false;
      case 'node-done':
        if (event.node === this.#answer && event.status === 'completed') {
          if (!this.#answered) {
            const text = textOf(event.output);
            if (text !== '') this.#text(text, out);
          }
          this.#closeText(out);
        }
        out.push(nodePart(event.node, event.status, this.#attempts.get(event.node) ?? 1));
        return false;
      case 'chain-done':
        this.#closeText(out);
        if (event.status === 'completed') out.push({ type: 'finish', finishReason: 'stop' });
        else if (event.status === 'cancelled') out.push({ type: 'abort' });
        else this.#fail(event.error, out);
        return true;
      default: {
        const never: never = event;
        return never;
      }
    }
  }

  /** The end of the events without `chain-done` (the run could not start), or a failure reading them. */
  end(out: UIMessageStreamPart[], error: unknown): void {
    this.#start(out);
    this.#closeText(out);
    this.#fail(error === undefined ? undefined : errorMessage(error), out);
  }

  #start(out: UIMessageStreamPart[]): void {
    if (this.#started) return;
    this.#started = true;
    const messageId = this.#options.messageId;
    out.push(messageId === undefined ? { type: 'start' } : { type: 'start', messageId });
  }

  #text(text: string, out: UIMessageStreamPart[]): void {
    if (this.#textId === undefined) {
      this.#textId = `text-${++this.#texts}`;
      out.push({ type: 'start-step' });
      out.push({ type: 'text-start', id: this.#textId });
    }
    this.#answered = true;
    out.push({ type: 'text-delta', id: this.#textId, delta: text });
  }

  #closeText(out: UIMessageStreamPart[]): void {
    if (this.#textId === undefined) return;
    out.push({ type: 'text-end', id: this.#textId });
    out.push({ type: 'finish-step' });
    this.#textId = undefined;
  }

  #fail(error: string | undefined, out: UIMessageStreamPart[]): void {
    let errorText = DEFAULT_CHAT_ERROR_TEXT;
    if (this.#options.errorText !== undefined) {
      try {
        errorText = this.#options.errorText(error);
      } catch {
        // A throwing formatter must not leak the error it was given: keep the default.
      }
    }
    out.push({ type: 'error', errorText });
    out.push({ type: 'finish', finishReason: 'error' });
  }
}

function nodePart(
  node: string,
  status: ChatDataParts['node']['status'],
  attempt: number,
): UIMessageStreamPart {
  return { type: 'data-node', id: node, data: { node, status, attempt } };
}

/** The text of a node's output: a string as it is, anything else as JSON. */
function textOf(output: unknown): string {
  if (output === undefined || output === null) return '';
  return typeof output === 'string' ? output : JSON.stringify(output);
}
