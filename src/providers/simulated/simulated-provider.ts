/**
 * The offline default model: deterministic, schema-aware, scriptable, with optional latency and failures.
 * Everything runs without a network or a key, so examples, tests and evals work out of the box.
 */
import { InvalidOptionError } from '../../core/errors.ts';
import { readEnv } from '../env.ts';
import { AbortedError, InternalServerError, providerErrorFromStatus } from '../errors.ts';
import type { ModelRequest, ModelResponse, Provider, StreamEvent, ToolCall } from '../types.ts';
import {
  cachedContentWords,
  createRandom,
  hashJson,
  hashMore,
  hashString,
  sampleJsonSchema,
  schemaText,
} from './json-schema-sample.ts';

/** One scripted reply: the first entry whose `match` hits the system text + last user message wins. */
export interface SimulatedScriptEntry {
  /** A substring (case-sensitive) or a regular expression, tested against `${system}\n${lastUserMessage}`. */
  readonly match: string | RegExp;
  /**
   * The reply. A string becomes the text (without the `[simulated]` marker); any other value is structured
   * output (`json`, with `text` its JSON). A function is called with the request and may return either.
   */
  readonly reply: unknown;
}

/** Latency of each simulated call. */
export type SimulatedLatency =
  { readonly minMs: number; readonly maxMs: number } | ((request: ModelRequest) => number);

/** Options of {@link createSimulatedProvider}. Every field is optional. */
export interface SimulatedProviderOptions {
  /**
   * Registry name of this provider.
   * @default 'sim'
   */
  readonly name?: string | undefined;
  /**
   * Mixed into every request's hash: change it to get different (still deterministic) answers.
   * @default 0
   */
  readonly seed?: number | undefined;
  /**
   * Delay before each answer: uniform in `[minMs, maxMs]` (drawn deterministically per request and attempt),
   * or a function of the request. The wait is abortable.
   * @default no delay
   */
  readonly latency?: SimulatedLatency | undefined;
  /**
   * Delay before each streamed piece after the first (a word of a text answer, a few characters of a JSON
   * one), in milliseconds, so streaming can be watched offline; abortable. `complete()` is not slowed.
   * @default the `SYMPHONIZER_SIM_TOKEN_MS` environment variable, else 0
   */
  readonly tokenLatencyMs?: number | undefined;
  /**
   * Probability in `[0, 1]` that a call fails. Decided deterministically from the request and how many times
   * this provider has seen that same request, so a retry of a failed request gets a fresh draw.
   * @default 0
   */
  readonly failureRate?: number | undefined;
  /**
   * HTTP status of the simulated failures, mapped like a real one (500 → retryable `InternalServerError`,
   * 429 → `RateLimitError`, 400 → non-retryable `BadRequestError`, …).
   * @default 500
   */
  readonly failureStatus?: number | undefined;
  /**
   * Scripted replies, tried in order before the generated answer.
   * @default []
   */
  readonly script?: readonly SimulatedScriptEntry[] | undefined;
}

/**
 * Create the simulated provider.
 *
 * - Deterministic: the answer depends only on the model, system text, messages, output schema and `seed`.
 * - Text answers are short, derived from the prompt, start with `[simulated]`, and carry `simulated: true`.
 *   The model `echo` answers `[simulated] ` followed by the last user message.
 * - With `output`, the answer is JSON valid against the schema (see `sampleJsonSchema`).
 * - With `tools` and no tool result yet, the first tool is called with schema-valid arguments; once a tool
 *   result is the last message, a text answer follows, so agent loops terminate.
 * - Usage is estimated as characters / 4.
 *
 * @throws {InvalidOptionError} for a `failureRate` outside `[0, 1]` or a bad `latency` range.
 * @example
 * ```ts
 * const sim = createSimulatedProvider({ script: [{ match: /capital of France/, reply: 'Paris' }] });
 * ```
 */
export function createSimulatedProvider(options: SimulatedProviderOptions = {}): Provider {
  return new SimulatedProvider(options);
}

const echoModels = new Set(['echo']);

/** The environment variable that sets {@link SimulatedProviderOptions.tokenLatencyMs} by default. */
export const SIM_TOKEN_MS_ENV_VAR = 'SYMPHONIZER_SIM_TOKEN_MS';

function tokenLatency(option: number | undefined): number {
  if (option !== undefined) {
    if (!(typeof option === 'number' && Number.isFinite(option) && option >= 0))
      throw new InvalidOptionError('tokenLatencyMs', option, 'a number of milliseconds >= 0');
    return option;
  }
  const raw = readEnv(SIM_TOKEN_MS_ENV_VAR);
  if (raw === undefined) return 0;
  const value = Number(raw);
  if (!(Number.isFinite(value) && value >= 0))
    throw new InvalidOptionError(SIM_TOKEN_MS_ENV_VAR, raw, 'a number of milliseconds >= 0');
  return value;
}

/**
 * A JSON answer cut into pieces of a few characters (whole code points), as a model streams it: JSON has
 * few spaces, so cutting at words would send it in a handful of pieces.
 */
function jsonPieces(text: string): string[] {
  const pieces: string[] = [];
  const chars = Array.from(text);
  for (let i = 0; i < chars.length; i += 6) pieces.push(chars.slice(i, i + 6).join(''));
  return pieces;
}

/** How many distinct requests' attempt counts a simulated provider remembers. */
const ATTEMPTS_KEPT = 65_536;

class SimulatedProvider implements Provider {
  readonly name: string;
  readonly #seed: number;
  readonly #latency: SimulatedLatency | undefined;
  readonly #tokenLatencyMs: number;
  readonly #failureRate: number;
  readonly #failureStatus: number;
  readonly #script: readonly SimulatedScriptEntry[];
  // How many times each request hash has been answered or failed; keys the per-attempt failure draw. Only
  // the last ATTEMPTS_KEPT / 2 to ATTEMPTS_KEPT distinct requests are remembered (a retry follows its
  // failure closely), so a million-row batch does not keep a counter per row: counts go to the current
  // generation, and when it is full it becomes the previous one and the one before is dropped (cheaper than
  // keeping a Map in least-recently-used order).
  #attempts = new Map<number, number>();
  #previousAttempts = new Map<number, number>();

  constructor(options: SimulatedProviderOptions) {
    this.name = options.name ?? 'sim';
    this.#seed = options.seed ?? 0;
    this.#failureRate = options.failureRate ?? 0;
    if (!(this.#failureRate >= 0 && this.#failureRate <= 1)) {
      throw new InvalidOptionError('failureRate', options.failureRate, 'a number between 0 and 1');
    }
    this.#failureStatus = options.failureStatus ?? 500;
    if (!Number.isInteger(this.#failureStatus) || this.#failureStatus < 400 || this.#failureStatus > 599) {
      throw new InvalidOptionError('failureStatus', options.failureStatus, 'an HTTP error status (400-599)');
    }
    const latency = options.latency;
    if (latency !== undefined && typeof latency !== 'function') {
      if (!(latency.minMs >= 0 && latency.maxMs >= latency.minMs && Number.isFinite(latency.maxMs))) {
        throw new InvalidOptionError('latency', latency, 'a range with 0 <= minMs <= maxMs (finite)');
      }
    }
    this.#latency = latency;
    this.#tokenLatencyMs = tokenLatency(options.tokenLatencyMs);
    this.#script = options.script ?? [];
  }

  async complete(request: ModelRequest): Promise<ModelResponse> {
    return this.#answer(request);
  }

  async *stream(request: ModelRequest): AsyncGenerator<StreamEvent, void, undefined> {
    const response = await this.#answer(request);
    const pieces =
      request.output === undefined ? response.text.match(/\s*\S+\s*/g) : jsonPieces(response.text);
    let first = true;
    for (const piece of pieces ?? []) {
      if (!first && this.#tokenLatencyMs > 0) await this.#sleep(this.#tokenLatencyMs, request);
      first = false;
      this.#throwIfAborted(request);
      yield { type: 'text-delta', text: piece };
    }
    this.#throwIfAborted(request);
    for (const toolCall of response.toolCalls) yield { type: 'tool-call', toolCall };
    yield { type: 'finish', response };
  }

  async #answer(request: ModelRequest): Promise<ModelResponse> {
    this.#throwIfAborted(request);
    const key = requestHash(request, this.#seed);
    const attempt = (this.#attempts.get(key) ?? this.#previousAttempts.get(key) ?? 0) + 1;
    this.#attempts.set(key, attempt);
    if (this.#attempts.size >= ATTEMPTS_KEPT / 2) {
      this.#previousAttempts = this.#attempts;
      this.#attempts = new Map();
    }
    const requestId = `sim_${key.toString(16).padStart(8, '0')}_${attempt}`;
    if (this.#latency !== undefined) await this.#sleep(this.#latencyFor(request, key, attempt), request);
    if (
      this.#failureRate > 0 &&
      createRandom(hashString(`fail:${attempt}`, key)).next() < this.#failureRate
    ) {
      const init = { provider: this.name, model: request.model, requestId, message: 'Simulated failure.' };
      throw this.#failureStatus === 500
        ? new InternalServerError(init)
        : providerErrorFromStatus(this.#failureStatus, init);
    }
    return this.#respond(request, key, requestId);
  }

  #respond(request: ModelRequest, key: number, requestId: string): ModelResponse {
    const system = request.system ?? '';
    const messages = request.messages;
    let lastUser = '';
    for (let i = messages.length - 1; i >= 0; i--) {
      const message = messages[i] as (typeof messages)[number];
      if (message.role === 'user') {
        lastUser = message.content;
        break;
      }
    }
    const last = messages.at(-1);
    const vocabulary = cachedContentWords(`${lastUser} ${system}`);
    const firstTool = request.tools?.[0];
    let text: string;
    let json: unknown;
    let hasJson = false;
    let toolCalls: ToolCall[] = [];

    const scripted = this.#script.find((entry) =>
      typeof entry.match === 'string'
        ? `${system}\n${lastUser}`.includes(entry.match)
        : new RegExp(entry.match.source, entry.match.flags.replace(/[gy]/g, '')).test(
            `${system}\n${lastUser}`,
          ),
    );
    if (scripted !== undefined) {
      const reply: unknown =
        typeof scripted.reply === 'function'
          ? (scripted.reply as (r: ModelRequest) => unknown)(request)
          : scripted.reply;
      if (typeof reply === 'string') {
        text = reply;
        if (request.output !== undefined) {
          try {
            json = JSON.parse(reply) as unknown;
            hasJson = true;
          } catch {
            // A non-JSON scripted reply to a JSON request stays text: that is what a misbehaving model does.
          }
        }
      } else {
        json = reply;
        hasJson = true;
        // JSON.stringify(undefined) is undefined at runtime, despite its declared `string`.
        text = reply === undefined ? 'null' : JSON.stringify(reply);
      }
    } else if (request.output !== undefined) {
      json = sampleJsonSchema(request.output.schema, { seed: key, vocabulary });
      hasJson = true;
      text = JSON.stringify(json);
    } else if (firstTool !== undefined && last?.role !== 'tool') {
      const tool = firstTool;
      toolCalls = [
        {
          id: `call_sim_${key.toString(36)}`,
          name: tool.name,
          arguments: sampleJsonSchema(tool.parameters, { seed: key, vocabulary }),
        },
      ];
      text = '';
    } else if (echoModels.has(request.model)) {
      text = `[simulated] ${lastUser}`;
    } else {
      text = `[simulated] ${compose(request, vocabulary, key)}`;
    }

    const promptChars =
      system.length +
      request.messages.reduce((sum, m) => sum + m.content.length + (m.role === 'tool' ? 8 : 0), 0);
    return {
      provider: this.name,
      model: request.model,
      text,
      ...(hasJson ? { json } : {}),
      toolCalls,
      finishReason: toolCalls.length > 0 ? 'tool_calls' : 'stop',
      usage: { inputTokens: Math.ceil(promptChars / 4), outputTokens: Math.ceil(text.length / 4) },
      requestId,
      simulated: true,
    };
  }

  #latencyFor(request: ModelRequest, key: number, attempt: number): number {
    const latency = this.#latency;
    if (latency === undefined) return 0;
    if (typeof latency === 'function') return Math.max(0, latency(request));
    const r = createRandom(hashString(`latency:${attempt}`, key)).next();
    return latency.minMs + r * (latency.maxMs - latency.minMs);
  }

  #sleep(ms: number, request: ModelRequest): Promise<void> {
    const signal = request.signal;
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(new AbortedError({ provider: this.name, model: request.model }));
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  #throwIfAborted(request: ModelRequest): void {
    if (request.signal?.aborted === true)
      throw new AbortedError({ provider: this.name, model: request.model });
  }
}

/** Hash of everything that determines the answer (not temperature, stop or signal). */
function requestHash(request: ModelRequest, seed: number): number {
  // The hash of the text of JSON.stringify([model, system, messages, schema, toolNames]), hashed piece by
  // piece without building it, the schema's JSON computed once per schema object.
  const output = request.output;
  const tools = request.tools;
  let hash = hashMore((0x811c9dc5 ^ seed) >>> 0, '[');
  hash = hashMore(hashJson(hash, request.model), ',');
  hash = hashMore(hashJson(hash, request.system ?? ''), ',');
  hash = hashMore(hashJson(hash, request.messages), ',');
  hash = hashMore(hash, output === undefined ? 'null' : schemaText(output.schema));
  hash = hashMore(hash, ',');
  hash = hashJson(hash, tools === undefined ? [] : tools.map((t) => t.name));
  return hashMore(hash, ']');
}

const openers = [
  (topic: string) => `In short, ${topic} comes down to a few points.`,
  (topic: string) => `Here is a brief take on ${topic}.`,
  (topic: string) => `A quick answer about ${topic}.`,
  (topic: string) => `Considering ${topic}, the main idea is simple.`,
];

const closers = [
  (a: string, b: string) => `The key factors are ${a} and ${b}.`,
  (a: string, b: string) => `Start with ${a}, then look at ${b}.`,
  (a: string, b: string) => `Most of it depends on ${a}, with ${b} close behind.`,
];

/** A short, plausible answer built from the prompt's own content words. */
function compose(request: ModelRequest, vocabulary: readonly string[], key: number): string {
  const random = createRandom(key);
  const words = vocabulary.length > 0 ? vocabulary : ['the question'];
  const topic = words.slice(0, Math.min(3, words.length)).join(' ');
  const a = random.pick(words);
  const b = words.find((w) => w !== a) ?? 'context';
  const last = request.messages.at(-1);
  const lead = last?.role === 'tool' ? `Based on the tool result (${truncate(last.content, 60)}): ` : '';
  return `${lead}${random.pick(openers)(topic)} ${random.pick(closers)(a, b)}`;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
