import type { ModelRequest, ModelResponse, Provider, StreamEvent } from '../../src/index.ts';

/** What a scripted reply may be: text, JSON, tool calls, or an error to throw. */
export type ScriptedReply =
  | string
  | { readonly json: unknown }
  | {
      readonly toolCalls: readonly { readonly name: string; readonly arguments: unknown }[];
      readonly text?: string;
    }
  | Error;

/**
 * A test double provider: records every request and answers with `reply(request, n)` (n counts calls from 1).
 * Streams split the text into words.
 */
export class ScriptedProvider implements Provider {
  readonly name: string;
  readonly requests: ModelRequest[] = [];
  readonly #reply: (request: ModelRequest, n: number) => ScriptedReply;

  constructor(name: string, reply: (request: ModelRequest, n: number) => ScriptedReply) {
    this.name = name;
    this.#reply = reply;
  }

  complete(request: ModelRequest): Promise<ModelResponse> {
    this.requests.push(request);
    const reply = this.#reply(request, this.requests.length);
    if (reply instanceof Error) return Promise.reject(reply);
    return Promise.resolve(this.#response(request, reply));
  }

  async *stream(request: ModelRequest): AsyncIterable<StreamEvent> {
    this.requests.push(request);
    const reply = this.#reply(request, this.requests.length);
    if (reply instanceof Error) throw reply;
    const response = this.#response(request, reply);
    for (const word of response.text.split(/(?<= )/)) {
      await Promise.resolve();
      yield { type: 'text-delta', text: word };
    }
    yield { type: 'finish', response };
  }

  #response(request: ModelRequest, reply: Exclude<ScriptedReply, Error>): ModelResponse {
    const base = {
      provider: this.name,
      model: request.model,
      finishReason: 'stop' as const,
      usage: { inputTokens: 10, outputTokens: 5 },
    };
    if (typeof reply === 'string') return { ...base, text: reply, toolCalls: [] };
    if ('json' in reply)
      return { ...base, text: JSON.stringify(reply.json), json: reply.json, toolCalls: [] };
    return {
      ...base,
      finishReason: 'tool_calls',
      text: reply.text ?? '',
      toolCalls: reply.toolCalls.map((c, i) => ({
        id: `call_${this.requests.length}_${i}`,
        name: c.name,
        arguments: c.arguments,
      })),
    };
  }
}
