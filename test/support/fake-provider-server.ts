/**
 * A loopback fake of the OpenAI Chat Completions, OpenAI Responses and Anthropic Messages HTTP APIs, speaking
 * their wire formats (JSON and SSE) as the real services do, with request ids, rate-limit headers, real error
 * bodies, rate limiting and scripted faults. Provider tests point the real SDK clients at it.
 *
 * @example
 * ```ts
 * const server = await startFakeProviderServer();
 * const openai = createOpenAIProvider({ baseURL: server.openaiBaseURL, apiKey: 'sk-test-123' });
 * server.failNth(1, 429);
 * await openai.complete(request); // rejects with RateLimitError
 * await server.close();
 * ```
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import {
  contentWords,
  createRandom,
  hashString,
  sampleJsonSchema,
} from '../../src/providers/simulated/json-schema-sample.ts';
import type { Random } from '../../src/providers/simulated/json-schema-sample.ts';
import type { JsonSchema } from '../../src/providers/types.ts';
import { createFakeBatchApi, type FakeBatchApi } from './fake-batch-api.ts';

/** Which API a request was made to. */
export type FakeApi = 'openai' | 'anthropic';

/** A request as the fake server saw it, normalised across both APIs for {@link FakeProviderServerOptions.respond}. */
export interface FakeRequest {
  readonly api: FakeApi;
  readonly method: string;
  readonly path: string;
  /** Lowercased request headers. */
  readonly headers: Readonly<Record<string, string>>;
  /** The parsed JSON body (`undefined` when it did not parse). */
  readonly body: unknown;
  readonly model: string;
  readonly stream: boolean;
  /** System text (OpenAI system/developer messages, or Anthropic `system`). */
  readonly system: string;
  /** Messages flattened to role + text (tool results as role `tool`). */
  readonly messages: readonly { readonly role: string; readonly content: string }[];
  /** Text of the last user message, '' when there is none. */
  readonly lastUserText: string;
  /** True when the last message carries tool results. */
  readonly lastIsToolResult: boolean;
  /** Tools offered to the model (excluding a tool forced for JSON output). */
  readonly tools: readonly { readonly name: string; readonly parameters: JsonSchema }[];
  /** The JSON schema the reply must follow, when structured output was requested (any of the three ways). */
  readonly jsonSchema: JsonSchema | undefined;
  /** How structured output was requested. */
  readonly jsonMode: 'response_format' | 'forced_tool' | 'output_config' | 'text_format' | undefined;
  /** Name of the forced tool, for `forced_tool` mode. */
  readonly forcedTool: string | undefined;
  /** 1-based number of this request since start or the last `reset()`. */
  readonly index: number;
}

/** What the model "says" in reply to a {@link FakeRequest}. */
export interface FakeReply {
  readonly text?: string | undefined;
  /** Structured output; sent as JSON text (OpenAI, output_config) or as the forced tool's input (Anthropic). */
  readonly json?: unknown;
  readonly toolCalls?:
    readonly { readonly id?: string; readonly name: string; readonly arguments: unknown }[] | undefined;
  /**
   * Wire finish reason to report instead of the natural one (e.g. `length`, `max_tokens`). On the Responses
   * API, `length` (or `max_output_tokens`) and `content_filter` make the response `incomplete` with that
   * reason.
   */
  readonly finishReason?: string | undefined;
  /** Reasoning tokens to report within the output tokens (both OpenAI APIs). @default 0 */
  readonly reasoningTokens?: number | undefined;
}

/** A scripted fault: an HTTP status (with the real error body), or a transport misbehaviour. */
export type FakeFault =
  | number
  | {
      readonly status: number;
      readonly retryAfterMs?: number | undefined;
      readonly message?: string | undefined;
    }
  | 'drop'
  | 'hang'
  | 'malformed-json'
  | 'drop-mid-stream'
  | 'hang-mid-stream'
  /**
   * A stall: 200 and `events` SSE events of a stream (or, for a non-streamed call, the headers and half the
   * JSON body), then the connection stays open, sending nothing, until the client closes it.
   */
  | { readonly stallAfter: number }
  /**
   * An error inside a stream after a 200: `streamErrorAfter` SSE events, then the wire's error event (OpenAI: a `data:`
   * chunk `{ error: { type, code, message } }`; Anthropic: `event: error` with `{ error: { type, message } }`),
   * then the stream ends. Only streamed requests see it; a non-streamed request is answered normally. On the
   * Responses API it is an `error` event `{ type: 'error', code, message }` (its `code` is `code`, else
   * `type`), or, with type `response.failed`, a `response.failed` event carrying `error: { code, message }`.
   */
  | {
      readonly streamErrorAfter: number;
      readonly type: string;
      readonly code?: string | undefined;
      readonly message?: string | undefined;
    };

/** Rate limit the fake enforces like the real services (429 with real body and headers). */
export interface FakeRateLimit {
  /** Requests allowed per window. */
  readonly requests: number;
  /**
   * Tokens allowed per window, counted as the service counts what a request used: its input (request body
   * chars / 4) when it is accepted, plus its output (reply chars / 4) once generated, both at the acceptance
   * time. A request is refused when the window's tokens plus its input would pass the limit; refused
   * requests count nothing.
   */
  readonly tokens?: number | undefined;
  readonly windowMs: number;
  /** @default 'fixed' */
  readonly mode?: 'fixed' | 'sliding' | undefined;
}

/** Runtime-settable behaviour of the fake server. */
export interface FakeProviderServerOptions {
  /** Delay before each response starts, in ms. @default 0 */
  latencyMs?: number | undefined;
  /** Delay between SSE events, in ms. @default 0 */
  streamDelayMs?: number | undefined;
  /**
   * The fake tokenizer: characters per token of the request body (input) and of the reply (output), for
   * usage and the token window. Lower it to make clients' chars / 4 estimates under-count. @default 4
   */
  charsPerToken?: number | undefined;
  /** Enforced rate limit; `undefined` means unlimited (nominal headers are still sent). */
  rateLimit?: FakeRateLimit | undefined;
  /** The model's reply. @default a deterministic echo, schema-valid JSON, or a call of the first tool */
  respond?: ((request: FakeRequest) => FakeReply | Promise<FakeReply>) | undefined;
  /** When true, structured-output replies violate their schema (required properties missing). */
  schemaViolation?: boolean | undefined;
  /** When set, only this API key is accepted (others get the real 401 body). */
  apiKey?: string | undefined;
  /**
   * Prompt caching: the cache tokens to report for a request, as the services report them. `read` of its
   * input tokens came from the prompt cache, `write` were written to it (Anthropic only: OpenAI reports no
   * writes). OpenAI sends them as `prompt_tokens_details.cached_tokens` within `prompt_tokens`; Anthropic as
   * `cache_read_input_tokens` / `cache_creation_input_tokens` beside an `input_tokens` without them. Both
   * are capped at the request's input tokens. See {@link anthropicBreakpointCache}. @default none
   */
  cacheTokens?: ((request: FakeRequest) => FakeCacheTokens | undefined) | undefined;
}

// --- Prompt caching (cache tokens in usage) ---

/** Cache tokens of one request, for {@link FakeProviderServerOptions.cacheTokens}. */
export interface FakeCacheTokens {
  readonly read?: number | undefined;
  readonly write?: number | undefined;
}

/** Token counts of one reply: input (cache parts included), output, and the cache parts. */
interface FakeUsage {
  readonly input: number;
  readonly output: number;
  readonly cacheRead?: number | undefined;
  readonly cacheWrite?: number | undefined;
  /** Of `output`, the reasoning tokens. */
  readonly reasoning?: number | undefined;
}

/**
 * A {@link FakeProviderServerOptions.cacheTokens} that caches like Anthropic's Messages API: the prefix of
 * a request up to its last `cache_control` breakpoint (tools, then system, then messages) is written the
 * first time it is seen and read every later time; a request without a breakpoint caches nothing. Tokens
 * are the prefix's JSON characters / `charsPerToken`; Anthropic's minimum cacheable length is not applied.
 */
export function anthropicBreakpointCache(
  charsPerToken = 4,
): (request: FakeRequest) => FakeCacheTokens | undefined {
  const seen = new Set<string>();
  return (request) => {
    if (request.api !== 'anthropic' || typeof request.body !== 'object' || request.body === null)
      return undefined;
    const body = request.body as JsonObject;
    const parts: unknown[] = [];
    let prefix: string | undefined;
    const visit = (items: unknown): void => {
      const list = typeof items === 'string' ? [items] : Array.isArray(items) ? (items as unknown[]) : [];
      for (const item of list) {
        parts.push(item);
        const blocks =
          typeof item === 'object' && item !== null && Array.isArray((item as JsonObject)['content'])
            ? ((item as JsonObject)['content'] as unknown[])
            : [item];
        if (blocks.some((b) => typeof b === 'object' && b !== null && 'cache_control' in b))
          prefix = JSON.stringify(parts);
      }
    };
    visit(body['tools']);
    visit(body['system']);
    visit(body['messages']);
    if (prefix === undefined) return undefined;
    const tokens = estimateTokens(prefix, charsPerToken);
    const key = `${request.model}\n${prefix}`;
    if (seen.has(key)) return { read: tokens };
    seen.add(key);
    return { write: tokens };
  };
}

// --- end of prompt caching ---

/** A running fake server. */
export interface FakeProviderServer {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** `${url}/v1`, the OpenAI SDK's `baseURL`. */
  readonly openaiBaseURL: string;
  /** `url`, the Anthropic SDK's `baseURL` (it appends `/v1/messages`). */
  readonly anthropicBaseURL: string;
  /** Behaviour, settable at any time. */
  readonly options: FakeProviderServerOptions;
  /** Fail the n-th request from now (1 = the next one) with `fault`. */
  failNth(n: number, fault: FakeFault): void;
  /** Fail each request with probability `fraction`, with a fault drawn from `faults`, deterministically per seed. */
  failRate(fraction: number, faults: readonly FakeFault[], seed?: number): void;
  /** Requests received since start or `reset()`. */
  readonly requests: number;
  /** Responses sent, by status (`'drop'` / `'hang'` for transport faults). */
  readonly byStatus: Readonly<Record<string, number>>;
  /** Most requests open at once. */
  readonly peakConcurrency: number;
  /** Most requests that arrived within one rate-limit window (sliding; 1000 ms when no limit is set). */
  readonly peakRequestsPerWindow: number;
  /** Every accepted request since start or `reset()`, oldest first: when, and its tokens (input + output). */
  readonly accepted: readonly { readonly at: number; readonly tokens: number }[];
  /** Requests open right now. */
  readonly inFlight: number;
  /** Requests whose client closed the connection before the response was complete. */
  readonly aborted: number;
  /** Every request since start or `reset()`, oldest first. */
  readonly log: readonly FakeRequest[];
  /** The most recent request, if any. */
  readonly lastRequest: FakeRequest | undefined;
  /** Resolves once `requests >= n` (and the n-th body has been read). */
  waitForRequests(n: number): Promise<void>;
  /** Resolves once `aborted >= n`. */
  waitForAborted(n: number): Promise<void>;
  /** Resolves once `inFlight === 0`. */
  waitForIdle(): Promise<void>;
  /** Clear counters, log, scripted faults and rate-limit state; options are kept. */
  reset(): void;
  /**
   * The Batch API endpoints of both wire formats (see fake-batch-api.ts): their options (turnaround, failing
   * items) and counters (files, batches, polls, submissions per custom id). `reset()` leaves them alone.
   */
  readonly batch: FakeBatchApi;
  /** Stop listening and destroy open connections. */
  close(): Promise<void>;
}

interface Waiter {
  readonly ready: () => boolean;
  readonly resolve: () => void;
}

type JsonObject = Record<string, unknown>;

/** Start a fake server on 127.0.0.1 with an OS-assigned port. */
export async function startFakeProviderServer(
  initial: FakeProviderServerOptions = {},
): Promise<FakeProviderServer> {
  const options: FakeProviderServerOptions = { ...initial };
  const sockets = new Set<Socket>();
  let waiters: Waiter[] = [];
  let state = freshState();

  function freshState() {
    return {
      requests: 0,
      byStatus: {} as Record<string, number>,
      peakConcurrency: 0,
      peakRequestsPerWindow: 0,
      inFlight: 0,
      aborted: 0,
      log: [] as FakeRequest[],
      arrivals: [] as number[],
      accepted: [] as { at: number; tokens: number }[],
      acceptedHistory: [] as { at: number; tokens: number }[],
      nth: new Map<number, FakeFault>(),
      rate: undefined as { fraction: number; faults: readonly FakeFault[]; random: Random } | undefined,
      idCounter: 0,
    };
  }

  const notify = (): void => {
    const still: Waiter[] = [];
    for (const waiter of waiters) {
      if (waiter.ready()) waiter.resolve();
      else still.push(waiter);
    }
    waiters = still;
  };
  const waitFor = (ready: () => boolean): Promise<void> =>
    ready()
      ? Promise.resolve()
      : new Promise((resolve) => {
          waiters.push({ ready, resolve });
        });

  // Batch endpoints: each item answered as the same request would be online (reply, usage, cache tokens).
  let baseUrl = '';
  const batchApi = createFakeBatchApi(
    () => baseUrl,
    (api, body) => answerBatchItem(api, body),
  );
  async function answerBatchItem(api: FakeApi, body: JsonObject): Promise<JsonObject> {
    const pseudo = {
      headers: {},
      method: 'POST',
      url: api === 'openai' ? '/v1/chat/completions' : '/v1/messages',
    };
    const request = normalise(api, pseudo, body, 0);
    const reply = await produceReply(request);
    const tokens = estimateTokens(JSON.stringify(body), options.charsPerToken);
    const cache = options.cacheTokens?.(request);
    const cacheRead = Math.min(tokens, Math.max(0, Math.floor(cache?.read ?? 0)));
    const cacheWrite =
      api === 'anthropic' ? Math.min(tokens - cacheRead, Math.max(0, Math.floor(cache?.write ?? 0))) : 0;
    const output = estimateTokens(JSON.stringify(reply), options.charsPerToken);
    const usage: FakeUsage = { input: tokens, output, cacheRead, cacheWrite, reasoning: 0 };
    return api === 'openai'
      ? openaiCompletion(request, reply, usage)
      : anthropicMessage(request, reply, usage);
  }

  const server = createServer((req, res) => {
    void handle(req, res);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const current = state;
    current.requests++;
    const index = current.requests;
    current.inFlight++;
    current.peakConcurrency = Math.max(current.peakConcurrency, current.inFlight);
    const arrivedAt = Date.now();
    const windowMs = options.rateLimit?.windowMs ?? 1000;
    current.arrivals = current.arrivals.filter((t) => t > arrivedAt - windowMs);
    current.arrivals.push(arrivedAt);
    current.peakRequestsPerWindow = Math.max(current.peakRequestsPerWindow, current.arrivals.length);

    // `finished` is set when we complete or deliberately break the response, so a close after it is not
    // counted as a client abort.
    let finished = false;
    const connection = { closed: false };
    const isClosed = (): boolean => connection.closed;
    const closedByClient = new Promise<void>((resolve) => {
      res.on('close', () => {
        connection.closed = true;
        if (!finished && current === state) current.aborted++;
        if (current === state) current.inFlight--;
        notify();
        resolve();
      });
    });
    const count = (key: string): void => {
      if (current === state) current.byStatus[key] = (current.byStatus[key] ?? 0) + 1;
    };
    const sleep = (ms: number): Promise<void> =>
      ms <= 0 || isClosed()
        ? Promise.resolve()
        : Promise.race([new Promise<void>((resolve) => setTimeout(resolve, ms)), closedByClient]);

    const raw = await readBody(req);
    if (batchApi.matches(req.method, req.url)) {
      finished = true;
      await batchApi.handle(req, raw, res);
      return;
    }
    const api: FakeApi | undefined =
      req.url === '/v1/chat/completions' || req.url === RESPONSES_PATH
        ? 'openai'
        : req.url === '/v1/messages'
          ? 'anthropic'
          : undefined;
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      body = undefined;
    }
    const request = normalise(api ?? 'openai', req, body, index);
    if (current === state) current.log.push(request);
    notify();

    const send = (status: number, headers: Record<string, string>, payload: unknown): void => {
      if (isClosed()) return;
      finished = true;
      count(String(status));
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(payload));
    };
    const ids = requestIdHeaders(api ?? 'openai', ++current.idCounter);

    if (req.method !== 'POST' || api === undefined) {
      send(404, ids, errorBody(api ?? 'openai', 404, `Unknown request URL: ${req.method} ${req.url}.`));
      return;
    }

    await sleep(options.latencyMs ?? 0);
    if (isClosed()) return;

    // Authentication first, as the real services do.
    const key = extractKey(request.headers);
    if (key === undefined || (options.apiKey !== undefined && key !== options.apiKey)) {
      const message =
        api === 'openai'
          ? key === undefined
            ? "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            : `Incorrect API key provided: ${maskKey(key)}. You can find your API key at https://platform.openai.com/account/api-keys.`
          : 'invalid x-api-key';
      send(401, ids, errorBody(api, 401, message));
      return;
    }
    if (api === 'anthropic' && request.headers['anthropic-version'] === undefined) {
      send(400, ids, errorBody(api, 400, 'anthropic-version: header is required'));
      return;
    }
    if (
      api === 'anthropic' &&
      request.headers['anthropic-version'] !== '2023-06-01' &&
      typeof body === 'object'
    ) {
      // API version 2026-10-21 removed the sampling parameters; even their defaults are refused.
      const sampling = ['temperature', 'top_p', 'top_k'].find((name) => name in (body as JsonObject));
      if (sampling !== undefined) {
        send(400, ids, errorBody(api, 400, `${sampling}: Extra inputs are not permitted`));
        return;
      }
    }
    if (body === undefined || typeof body !== 'object') {
      send(400, ids, errorBody(api, 400, 'We could not parse the JSON body of your request.'));
      return;
    }

    // Scripted faults.
    let fault = current.nth.get(index);
    current.nth.delete(index);
    if (fault === undefined && current.rate !== undefined && current.rate.faults.length > 0) {
      const draw = current.rate.random.next();
      const which = current.rate.random.pick(current.rate.faults);
      if (draw < current.rate.fraction) fault = which;
    }
    if (fault === 'drop') {
      finished = true;
      count('drop');
      req.socket.destroy();
      return;
    }
    if (fault === 'hang') {
      count('hang');
      await closedByClient;
      return;
    }
    const stallAfter = typeof fault === 'object' && 'stallAfter' in fault ? fault.stallAfter : undefined;
    const streamError = typeof fault === 'object' && 'streamErrorAfter' in fault ? fault : undefined;
    if (typeof fault === 'number' || (typeof fault === 'object' && 'status' in fault)) {
      const status = typeof fault === 'number' ? fault : fault.status;
      const retryAfterMs =
        typeof fault === 'number'
          ? defaultRetryAfter(status)
          : (fault.retryAfterMs ?? defaultRetryAfter(status));
      const message = typeof fault === 'object' ? fault.message : undefined;
      send(
        status,
        { ...ids, ...retryAfterHeaders(api, retryAfterMs), ...limitHeaders(api, 0, undefined) },
        errorBody(api, status, message ?? defaultErrorMessage(api, status, request.model)),
      );
      return;
    }

    // Rate limiting: rejected requests do not consume the budget.
    const tokens = estimateTokens(raw, options.charsPerToken);
    const limitVerdict = checkRateLimit(current, tokens);
    if (limitVerdict.limited) {
      const what = limitVerdict.by === 'tokens' ? 'tokens per min (TPM)' : 'requests per min (RPM)';
      const message =
        api === 'openai'
          ? `Rate limit reached for ${request.model} in organization org-fake on ${what}: Limit ${limitVerdict.limit}, Used ${limitVerdict.used}, Requested ${limitVerdict.by === 'tokens' ? tokens : 1}. Please try again in ${formatDuration(limitVerdict.retryAfterMs)}.`
          : `This request would exceed your organization's rate limit of ${limitVerdict.limit} ${limitVerdict.by === 'tokens' ? 'input tokens' : 'requests'} per minute. Please try again later.`;
      send(
        429,
        {
          ...ids,
          ...retryAfterHeaders(api, limitVerdict.retryAfterMs),
          ...limitHeaders(api, 0, limitVerdict.retryAfterMs),
        },
        errorBody(api, 429, message, limitVerdict.by),
      );
      return;
    }

    const reply = await produceReply(request);
    if (isClosed()) return;
    const cache = options.cacheTokens?.(request);
    const cacheRead = Math.min(tokens, Math.max(0, Math.floor(cache?.read ?? 0)));
    const cacheWrite =
      api === 'anthropic' ? Math.min(tokens - cacheRead, Math.max(0, Math.floor(cache?.write ?? 0))) : 0;
    const output = estimateTokens(JSON.stringify(reply), options.charsPerToken);
    const usage: FakeUsage = {
      input: tokens,
      output,
      cacheRead,
      cacheWrite,
      reasoning: Math.min(output, Math.max(0, Math.floor(reply.reasoningTokens ?? 0))),
    };
    // The output counts against the token window too, once generated (at the acceptance time).
    limitVerdict.entry.tokens += usage.output;
    const headers = { ...ids, ...limitHeaders(api, remaining(current), windowResetMs(current)) };

    if (!request.stream) {
      if (stallAfter !== undefined) {
        count('stall');
        const payload = JSON.stringify(
          request.path === RESPONSES_PATH
            ? responsesObject(request, reply, usage)
            : api === 'openai'
              ? openaiCompletion(request, reply, usage)
              : anthropicMessage(request, reply, usage),
        );
        res.writeHead(200, { 'content-type': 'application/json', ...headers });
        res.write(payload.slice(0, Math.floor(payload.length / 2)));
        await closedByClient;
        return;
      }
      if (fault === 'malformed-json' || fault === 'drop-mid-stream') {
        count(fault);
        finished = true;
        res.writeHead(200, { 'content-type': 'application/json', ...headers });
        if (fault === 'malformed-json') {
          res.end('{"id": "broken", "choices": [ {"message": ');
        } else {
          res.write('{"id": "partial", ');
          setImmediate(() => req.socket.destroy());
        }
        return;
      }
      const payload =
        request.path === RESPONSES_PATH
          ? responsesObject(request, reply, usage)
          : api === 'openai'
            ? openaiCompletion(request, reply, usage)
            : anthropicMessage(request, reply, usage);
      send(200, headers, payload);
      return;
    }

    const events =
      request.path === RESPONSES_PATH
        ? responsesEvents(request, reply, usage)
        : api === 'openai'
          ? openaiChunks(request, reply, usage)
          : anthropicEvents(request, reply, usage);
    count('200');
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      ...headers,
    });
    const half = Math.max(1, Math.floor(events.length / 2));
    for (let i = 0; i < events.length; i++) {
      if (isClosed()) return;
      if (i === stallAfter) {
        await closedByClient;
        return;
      }
      if (i === streamError?.streamErrorAfter) {
        count('stream-error');
        finished = true;
        res.end(
          request.path === RESPONSES_PATH
            ? responsesErrorEvent(streamError, i)
            : streamErrorEvent(api, streamError),
        );
        return;
      }
      if (i === half) {
        if (fault === 'drop-mid-stream') {
          finished = true;
          req.socket.destroy();
          return;
        }
        if (fault === 'hang-mid-stream') {
          await closedByClient;
          return;
        }
        if (fault === 'malformed-json') {
          res.write(
            api === 'openai'
              ? 'data: {"id": "chatcmpl-broken", "choices": [\n\n'
              : 'event: content_block_delta\ndata: {"type": "content_block_delta", \n\n',
          );
        }
      }
      res.write(events[i]);
      await sleep(options.streamDelayMs ?? 0);
    }
    if (isClosed()) return;
    finished = true;
    res.end();
  }

  async function produceReply(request: FakeRequest): Promise<FakeReply> {
    const reply = options.respond === undefined ? defaultReply(request) : await options.respond(request);
    if (request.jsonSchema !== undefined && options.schemaViolation === true) {
      return { ...reply, json: { schema_violation: true } };
    }
    if (
      request.jsonSchema !== undefined &&
      reply.json === undefined &&
      reply.text === undefined &&
      (reply.toolCalls ?? []).length === 0
    ) {
      return {
        ...reply,
        json: sampleJsonSchema(request.jsonSchema, {
          seed: hashString(request.lastUserText),
          vocabulary: contentWords(`${request.system} ${request.lastUserText}`),
        }),
      };
    }
    return reply;
  }

  function checkRateLimit(
    current: ReturnType<typeof freshState>,
    tokens: number,
  ):
    | { limited: false; entry: { at: number; tokens: number } }
    | { limited: true; by: 'requests' | 'tokens'; limit: number; used: number; retryAfterMs: number } {
    const limit = options.rateLimit;
    const now = Date.now();
    const entry = { at: now, tokens };
    if (limit === undefined) {
      current.accepted.push(entry);
      current.acceptedHistory.push(entry);
      return { limited: false, entry };
    }
    const windowStart =
      (limit.mode ?? 'fixed') === 'fixed'
        ? Math.floor(now / limit.windowMs) * limit.windowMs
        : now - limit.windowMs;
    const inWindow = current.accepted.filter((a) =>
      (limit.mode ?? 'fixed') === 'fixed' ? a.at >= windowStart : a.at > windowStart,
    );
    current.accepted = inWindow;
    const retryAfterMs = Math.max(
      1,
      (limit.mode ?? 'fixed') === 'fixed'
        ? windowStart + limit.windowMs - now
        : (inWindow[0]?.at ?? now) + limit.windowMs - now,
    );
    if (inWindow.length >= limit.requests) {
      return { limited: true, by: 'requests', limit: limit.requests, used: inWindow.length, retryAfterMs };
    }
    const usedTokens = inWindow.reduce((sum, a) => sum + a.tokens, 0);
    if (limit.tokens !== undefined && usedTokens + tokens > limit.tokens) {
      return { limited: true, by: 'tokens', limit: limit.tokens, used: usedTokens, retryAfterMs };
    }
    current.accepted.push(entry);
    current.acceptedHistory.push(entry);
    return { limited: false, entry };
  }

  function remaining(current: ReturnType<typeof freshState>): number {
    const limit = options.rateLimit;
    return limit === undefined ? 9999 : Math.max(0, limit.requests - current.accepted.length);
  }

  /** Milliseconds until the current window's requests stop counting (as the real services report it). */
  function windowResetMs(current: typeof state): number | undefined {
    const limit = options.rateLimit;
    if (limit === undefined) return undefined;
    const now = Date.now();
    if ((limit.mode ?? 'fixed') === 'fixed') {
      return Math.max(1, Math.floor(now / limit.windowMs) * limit.windowMs + limit.windowMs - now);
    }
    const oldest = current.accepted[0]?.at;
    return oldest === undefined ? 1 : Math.max(1, oldest + limit.windowMs - now);
  }

  function limitHeaders(
    api: FakeApi,
    remainingRequests: number,
    resetMs: number | undefined,
  ): Record<string, string> {
    const limit = options.rateLimit;
    const requests = limit?.requests ?? 10000;
    const tokens = limit?.tokens ?? 2_000_000;
    const reset = resetMs ?? limit?.windowMs ?? 6;
    const usedTokens = state.accepted.reduce((sum, a) => sum + a.tokens, 0);
    const remainingTokens = Math.max(0, tokens - usedTokens);
    if (api === 'openai') {
      return {
        'x-ratelimit-limit-requests': String(requests),
        'x-ratelimit-remaining-requests': String(remainingRequests),
        'x-ratelimit-reset-requests': formatDuration(reset),
        'x-ratelimit-limit-tokens': String(tokens),
        'x-ratelimit-remaining-tokens': String(remainingTokens),
        'x-ratelimit-reset-tokens': formatDuration(reset),
      };
    }
    const resetAt = new Date(Date.now() + reset).toISOString().replace(/\.\d{3}Z$/, 'Z');
    return {
      'anthropic-ratelimit-requests-limit': String(requests),
      'anthropic-ratelimit-requests-remaining': String(remainingRequests),
      'anthropic-ratelimit-requests-reset': resetAt,
      'anthropic-ratelimit-tokens-limit': String(tokens),
      'anthropic-ratelimit-tokens-remaining': String(remainingTokens),
      'anthropic-ratelimit-tokens-reset': resetAt,
      'anthropic-ratelimit-input-tokens-limit': String(tokens),
      'anthropic-ratelimit-input-tokens-remaining': String(remainingTokens),
      'anthropic-ratelimit-input-tokens-reset': resetAt,
      'anthropic-ratelimit-output-tokens-limit': String(Math.floor(tokens / 5)),
      'anthropic-ratelimit-output-tokens-remaining': String(Math.floor(remainingTokens / 5)),
      'anthropic-ratelimit-output-tokens-reset': resetAt,
    };
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  baseUrl = url;

  return {
    batch: batchApi,
    url,
    openaiBaseURL: `${url}/v1`,
    anthropicBaseURL: url,
    options,
    failNth(n, fault) {
      if (!Number.isInteger(n) || n < 1) throw new RangeError(`failNth: n must be an integer >= 1, got ${n}`);
      state.nth.set(state.requests + n, fault);
    },
    failRate(fraction, faults, seed = 1) {
      state.rate = { fraction, faults: [...faults], random: createRandom(seed) };
    },
    get requests() {
      return state.requests;
    },
    get byStatus() {
      return { ...state.byStatus };
    },
    get peakConcurrency() {
      return state.peakConcurrency;
    },
    get peakRequestsPerWindow() {
      return state.peakRequestsPerWindow;
    },
    get accepted() {
      return state.acceptedHistory.map((entry) => ({ ...entry }));
    },
    get inFlight() {
      return state.inFlight;
    },
    get aborted() {
      return state.aborted;
    },
    get log() {
      return [...state.log];
    },
    get lastRequest() {
      return state.log.at(-1);
    },
    waitForRequests(n) {
      return waitFor(() => state.log.length >= n);
    },
    waitForAborted(n) {
      return waitFor(() => state.aborted >= n);
    },
    waitForIdle() {
      return waitFor(() => state.inFlight === 0);
    },
    reset() {
      state = freshState();
      notify();
    },
    close() {
      return new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Request normalisation

function normalise(
  api: FakeApi,
  req: Pick<IncomingMessage, 'headers' | 'method' | 'url'>,
  body: unknown,
  index: number,
): FakeRequest {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  const b = (typeof body === 'object' && body !== null ? body : {}) as JsonObject;
  const model = typeof b['model'] === 'string' ? b['model'] : '';
  const stream = b['stream'] === true;
  const base = {
    api,
    method: req.method ?? 'GET',
    path: req.url ?? '/',
    headers,
    body,
    model,
    stream,
    index,
  };
  if (api === 'openai' && base.path === RESPONSES_PATH) return { ...base, ...normaliseResponses(b) };
  return api === 'openai' ? { ...base, ...normaliseOpenAI(b) } : { ...base, ...normaliseAnthropic(b) };
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part) => {
        if (typeof part === 'string') return part;
        const p = part as JsonObject;
        if (typeof p['text'] === 'string') return p['text'];
        if (p['type'] === 'tool_result') return textOf(p['content']);
        return '';
      })
      .join('');
  }
  return '';
}

function normaliseOpenAI(b: JsonObject) {
  const rawMessages = Array.isArray(b['messages']) ? (b['messages'] as JsonObject[]) : [];
  const system = rawMessages
    .filter((m) => m['role'] === 'system' || m['role'] === 'developer')
    .map((m) => textOf(m['content']))
    .join('\n');
  const messages = rawMessages
    .filter((m) => m['role'] !== 'system' && m['role'] !== 'developer')
    .map((m) => ({ role: String(m['role']), content: textOf(m['content']) }));
  const tools = (Array.isArray(b['tools']) ? (b['tools'] as JsonObject[]) : []).map((t) => {
    const fn = (t['function'] ?? {}) as JsonObject;
    return { name: String(fn['name']), parameters: (fn['parameters'] ?? {}) as JsonSchema };
  });
  const format = b['response_format'] as JsonObject | undefined;
  const jsonSchema =
    format?.['type'] === 'json_schema'
      ? (((format['json_schema'] as JsonObject | undefined)?.['schema'] ?? {}) as JsonSchema)
      : undefined;
  return {
    system,
    messages,
    lastUserText: [...messages].reverse().find((m) => m.role === 'user')?.content ?? '',
    lastIsToolResult: messages.at(-1)?.role === 'tool',
    tools,
    jsonSchema,
    jsonMode: jsonSchema === undefined ? undefined : ('response_format' as const),
    forcedTool: undefined,
  };
}

function normaliseAnthropic(b: JsonObject) {
  const rawMessages = Array.isArray(b['messages']) ? (b['messages'] as JsonObject[]) : [];
  const system = textOf(b['system']);
  const messages = rawMessages.map((m) => {
    const content = m['content'];
    const isToolResult =
      Array.isArray(content) && content.some((part) => (part as JsonObject)['type'] === 'tool_result');
    return { role: isToolResult ? 'tool' : String(m['role']), content: textOf(content) };
  });
  const allTools = (Array.isArray(b['tools']) ? (b['tools'] as JsonObject[]) : []).map((t) => ({
    name: String(t['name']),
    parameters: (t['input_schema'] ?? {}) as JsonSchema,
  }));
  const choice = b['tool_choice'] as JsonObject | undefined;
  const forcedTool =
    choice?.['type'] === 'tool' && typeof choice['name'] === 'string' ? choice['name'] : undefined;
  const forced = allTools.find((t) => t.name === forcedTool);
  const outputFormat = (b['output_config'] as JsonObject | undefined)?.['format'] as JsonObject | undefined;
  const outputSchema =
    outputFormat?.['type'] === 'json_schema' ? (outputFormat['schema'] as JsonSchema) : undefined;
  const jsonSchema = forced?.parameters ?? outputSchema;
  return {
    system,
    messages,
    lastUserText: [...messages].reverse().find((m) => m.role === 'user')?.content ?? '',
    lastIsToolResult: messages.at(-1)?.role === 'tool',
    tools: allTools.filter((t) => t.name !== forcedTool),
    jsonSchema,
    jsonMode:
      forced !== undefined
        ? ('forced_tool' as const)
        : outputSchema !== undefined
          ? ('output_config' as const)
          : undefined,
    forcedTool,
  };
}

function defaultReply(request: FakeRequest): FakeReply {
  if (request.jsonSchema !== undefined) return {};
  const tool = request.tools[0];
  if (tool !== undefined && !request.lastIsToolResult) {
    return {
      toolCalls: [
        {
          name: tool.name,
          arguments: sampleJsonSchema(tool.parameters, {
            seed: hashString(request.lastUserText),
            vocabulary: contentWords(request.lastUserText),
          }),
        },
      ],
    };
  }
  if (request.lastIsToolResult) return { text: `Tool result: ${request.messages.at(-1)?.content ?? ''}` };
  return { text: `echo: ${request.lastUserText}` };
}

// ---------------------------------------------------------------------------------------------------------
// Wire formats

function openaiToolCalls(request: FakeRequest, reply: FakeReply) {
  return (reply.toolCalls ?? []).map((call, i) => ({
    id: call.id ?? `call_${hashString(`${request.index}:${i}`).toString(36)}${i}`,
    type: 'function' as const,
    function: { name: call.name, arguments: JSON.stringify(call.arguments) },
  }));
}

function replyText(reply: FakeReply): string {
  return reply.json !== undefined ? JSON.stringify(reply.json) : (reply.text ?? '');
}

function openaiCompletion(request: FakeRequest, reply: FakeReply, usage: FakeUsage) {
  const toolCalls = openaiToolCalls(request, reply);
  const text = replyText(reply);
  return {
    id: `chatcmpl-${hashString(`c${request.index}`).toString(36)}`,
    object: 'chat.completion',
    created: 1_700_000_000 + request.index,
    model: request.model,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: toolCalls.length > 0 && text === '' ? null : text,
          refusal: null,
          annotations: [],
          ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
        },
        logprobs: null,
        finish_reason: reply.finishReason ?? (toolCalls.length > 0 ? 'tool_calls' : 'stop'),
      },
    ],
    usage: openaiUsage(usage),
    service_tier: 'default',
    system_fingerprint: 'fp_fake',
  };
}

function openaiUsage(usage: FakeUsage) {
  return {
    prompt_tokens: usage.input,
    completion_tokens: usage.output,
    total_tokens: usage.input + usage.output,
    prompt_tokens_details: { cached_tokens: usage.cacheRead ?? 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: usage.reasoning ?? 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

function sse(data: unknown, event?: string): string {
  return `${event === undefined ? '' : `event: ${event}\n`}data: ${JSON.stringify(data)}\n\n`;
}

/** Split text into word-sized pieces that concatenate back to the original. */
function pieces(text: string): string[] {
  return text.match(/\s*\S+\s*/g) ?? (text === '' ? [] : [text]);
}

function openaiChunks(request: FakeRequest, reply: FakeReply, usage: FakeUsage): string[] {
  const body = request.body as JsonObject;
  const includeUsage = (body['stream_options'] as JsonObject | undefined)?.['include_usage'] === true;
  const id = `chatcmpl-${hashString(`s${request.index}`).toString(36)}`;
  const base = {
    id,
    object: 'chat.completion.chunk',
    created: 1_700_000_000 + request.index,
    model: request.model,
    service_tier: 'default',
    system_fingerprint: 'fp_fake',
  };
  const chunk = (delta: JsonObject, finishReason: string | null = null) => ({
    ...base,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    ...(includeUsage ? { usage: null } : {}),
  });
  const out = [sse(chunk({ role: 'assistant', content: '', refusal: null }))];
  for (const piece of pieces(replyText(reply))) out.push(sse(chunk({ content: piece })));
  openaiToolCalls(request, reply).forEach((call, index) => {
    out.push(
      sse(
        chunk({
          tool_calls: [
            { index, id: call.id, type: 'function', function: { name: call.function.name, arguments: '' } },
          ],
        }),
      ),
    );
    const args = call.function.arguments;
    for (let i = 0; i < args.length; i += 8) {
      out.push(sse(chunk({ tool_calls: [{ index, function: { arguments: args.slice(i, i + 8) } }] })));
    }
  });
  const finish = reply.finishReason ?? ((reply.toolCalls ?? []).length > 0 ? 'tool_calls' : 'stop');
  out.push(sse(chunk({}, finish)));
  if (includeUsage) out.push(sse({ ...base, choices: [], usage: openaiUsage(usage) }));
  out.push('data: [DONE]\n\n');
  return out;
}

function anthropicContent(request: FakeRequest, reply: FakeReply): JsonObject[] {
  const content: JsonObject[] = [];
  if (request.jsonMode === 'forced_tool' && reply.json !== undefined) {
    content.push({
      type: 'tool_use',
      id: `toolu_${hashString(`f${request.index}`).toString(36)}`,
      name: request.forcedTool,
      input: reply.json,
    });
    return content;
  }
  const text = replyText(reply);
  if (text !== '') content.push({ type: 'text', text });
  (reply.toolCalls ?? []).forEach((call, i) => {
    content.push({
      type: 'tool_use',
      id: call.id ?? `toolu_${hashString(`${request.index}:${i}`).toString(36)}${i}`,
      name: call.name,
      input: call.arguments,
    });
  });
  return content;
}

function anthropicStopReason(reply: FakeReply, content: readonly JsonObject[]): string {
  if (reply.finishReason !== undefined) return reply.finishReason;
  return content.some((c) => c['type'] === 'tool_use') ? 'tool_use' : 'end_turn';
}

function anthropicUsage(usage: FakeUsage) {
  const read = usage.cacheRead ?? 0;
  const write = usage.cacheWrite ?? 0;
  return {
    // Anthropic's input_tokens leaves the cached parts out.
    input_tokens: usage.input - read - write,
    output_tokens: usage.output,
    cache_creation_input_tokens: write,
    cache_read_input_tokens: read,
    cache_creation: { ephemeral_5m_input_tokens: write, ephemeral_1h_input_tokens: 0 },
    service_tier: 'standard',
  };
}

function anthropicMessage(request: FakeRequest, reply: FakeReply, usage: FakeUsage) {
  const content = anthropicContent(request, reply);
  return {
    id: `msg_${hashString(`m${request.index}`).toString(36)}`,
    type: 'message',
    role: 'assistant',
    model: request.model,
    content,
    stop_reason: anthropicStopReason(reply, content),
    stop_sequence: null,
    usage: anthropicUsage(usage),
  };
}

function anthropicEvents(request: FakeRequest, reply: FakeReply, usage: FakeUsage): string[] {
  const content = anthropicContent(request, reply);
  const out = [
    sse(
      {
        type: 'message_start',
        message: {
          id: `msg_${hashString(`m${request.index}`).toString(36)}`,
          type: 'message',
          role: 'assistant',
          model: request.model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { ...anthropicUsage({ ...usage, output: 1 }) },
        },
      },
      'message_start',
    ),
  ];
  content.forEach((block, index) => {
    if (block['type'] === 'text') {
      out.push(
        sse(
          { type: 'content_block_start', index, content_block: { type: 'text', text: '' } },
          'content_block_start',
        ),
      );
      if (index === 0) out.push(sse({ type: 'ping' }, 'ping'));
      for (const piece of pieces(String(block['text']))) {
        out.push(
          sse(
            { type: 'content_block_delta', index, delta: { type: 'text_delta', text: piece } },
            'content_block_delta',
          ),
        );
      }
    } else {
      out.push(
        sse(
          {
            type: 'content_block_start',
            index,
            content_block: { type: 'tool_use', id: block['id'], name: block['name'], input: {} },
          },
          'content_block_start',
        ),
      );
      const json = JSON.stringify(block['input']);
      out.push(
        sse(
          { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: '' } },
          'content_block_delta',
        ),
      );
      for (let i = 0; i < json.length; i += 8) {
        out.push(
          sse(
            {
              type: 'content_block_delta',
              index,
              delta: { type: 'input_json_delta', partial_json: json.slice(i, i + 8) },
            },
            'content_block_delta',
          ),
        );
      }
    }
    out.push(sse({ type: 'content_block_stop', index }, 'content_block_stop'));
  });
  out.push(
    sse(
      {
        type: 'message_delta',
        delta: { stop_reason: anthropicStopReason(reply, content), stop_sequence: null },
        usage: { output_tokens: usage.output },
      },
      'message_delta',
    ),
  );
  out.push(sse({ type: 'message_stop' }, 'message_stop'));
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Errors and headers

const openaiErrors: Readonly<Record<number, { type: string; code: string | null }>> = {
  400: { type: 'invalid_request_error', code: null },
  401: { type: 'invalid_request_error', code: 'invalid_api_key' },
  403: { type: 'invalid_request_error', code: 'unsupported_country_region_territory' },
  404: { type: 'invalid_request_error', code: 'model_not_found' },
  409: { type: 'invalid_request_error', code: 'conflict' },
  422: { type: 'invalid_request_error', code: null },
  429: { type: 'requests', code: 'rate_limit_exceeded' },
};

const anthropicErrorTypes: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  408: 'timeout_error',
  409: 'conflict_error',
  413: 'request_too_large',
  422: 'invalid_request_error',
  429: 'rate_limit_error',
  500: 'api_error',
  504: 'timeout_error',
  529: 'overloaded_error',
};

function streamErrorEvent(
  api: FakeApi,
  fault: { readonly type: string; readonly code?: string | undefined; readonly message?: string | undefined },
): string {
  const message = fault.message ?? `The stream failed (${fault.type}).`;
  return api === 'openai'
    ? sse({ error: { message, type: fault.type, param: null, code: fault.code ?? null } })
    : sse({ type: 'error', error: { type: fault.type, message } }, 'error');
}

function errorBody(
  api: FakeApi,
  status: number,
  message: string,
  limitedBy?: 'requests' | 'tokens',
): JsonObject {
  if (api === 'openai') {
    const known = openaiErrors[status] ?? {
      type: status >= 500 ? 'server_error' : 'invalid_request_error',
      code: null,
    };
    return {
      error: {
        message,
        type: status === 429 && limitedBy !== undefined ? limitedBy : known.type,
        param: null,
        code: known.code,
      },
    };
  }
  return {
    type: 'error',
    error: {
      type: anthropicErrorTypes[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error'),
      message,
    },
    request_id: null,
  };
}

function defaultErrorMessage(api: FakeApi, status: number, model: string): string {
  switch (status) {
    case 400:
      return api === 'openai'
        ? "Invalid value for 'temperature': must be between 0 and 2."
        : 'messages: field required';
    case 401:
      return api === 'openai' ? 'Incorrect API key provided.' : 'invalid x-api-key';
    case 403:
      return api === 'openai'
        ? 'Country, region, or territory not supported'
        : 'Your API key does not have permission to use the specified resource.';
    case 404:
      return api === 'openai'
        ? `The model \`${model}\` does not exist or you do not have access to it.`
        : `model: ${model}`;
    case 408:
      return 'Request timed out.';
    case 409:
      return 'Conflict with a concurrent request.';
    case 422:
      return 'Unprocessable entity.';
    case 429:
      return api === 'openai'
        ? `Rate limit reached for ${model} on requests per min (RPM).`
        : 'Number of requests has exceeded your per-minute rate limit.';
    case 529:
      return 'Overloaded';
    default:
      return status >= 500
        ? api === 'openai'
          ? 'The server had an error while processing your request. Sorry about that!'
          : 'Internal server error'
        : `Request failed with status ${status}.`;
  }
}

function defaultRetryAfter(status: number): number | undefined {
  return status === 429 || status === 503 || status === 529 ? 1000 : undefined;
}

function retryAfterHeaders(api: FakeApi, retryAfterMs: number | undefined): Record<string, string> {
  if (retryAfterMs === undefined) return {};
  const seconds = String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
  // Anthropic sends only whole-second `retry-after`; OpenAI also sends `retry-after-ms`.
  return api === 'openai'
    ? { 'retry-after': seconds, 'retry-after-ms': String(Math.round(retryAfterMs)) }
    : { 'retry-after': seconds };
}

function requestIdHeaders(api: FakeApi, n: number): Record<string, string> {
  const id = `req_${n.toString(16).padStart(4, '0')}${hashString(`id${n}`).toString(16)}`;
  return api === 'openai' ? { 'x-request-id': id, 'openai-processing-ms': '5' } : { 'request-id': id };
}

function extractKey(headers: Readonly<Record<string, string>>): string | undefined {
  const xApiKey = headers['x-api-key'];
  if (xApiKey !== undefined && xApiKey !== '') return xApiKey;
  const auth = headers['authorization'];
  const match = auth === undefined ? null : /^Bearer\s+(.+)$/i.exec(auth);
  return match?.[1];
}

/** Like OpenAI: echo a partially masked key (which our redaction must still scrub). */
function maskKey(key: string): string {
  return key.length <= 8 ? '********' : `${key.slice(0, 6)}${'*'.repeat(10)}${key.slice(-4)}`;
}

function estimateTokens(text: string, charsPerToken = 4): number {
  return Math.max(1, Math.ceil(text.length / charsPerToken));
}

function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = (ms % 60_000) / 1000;
  const secondsText = Number.isInteger(seconds) ? String(seconds) : seconds.toFixed(3).replace(/0+$/, '');
  return minutes > 0 ? `${minutes}m${secondsText}s` : `${secondsText}s`;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', () => {
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('close', () => {
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}

// ---------------------------------------------------------------------------------------------------------
// OpenAI Responses API (`POST /v1/responses`): request normalisation, the response object and its stream
// events, as the real service sends them.

const RESPONSES_PATH = '/v1/responses';

function normaliseResponses(b: JsonObject) {
  const rawInput: unknown[] =
    typeof b['input'] === 'string'
      ? [{ role: 'user', content: b['input'] }]
      : Array.isArray(b['input'])
        ? (b['input'] as unknown[])
        : [];
  const items = rawInput.map((item) => (typeof item === 'object' && item !== null ? item : {}) as JsonObject);
  const isSystem = (item: JsonObject): boolean => item['role'] === 'system' || item['role'] === 'developer';
  const system = [
    ...(typeof b['instructions'] === 'string' ? [b['instructions']] : []),
    ...items.filter(isSystem).map((item) => textOf(item['content'])),
  ].join('\n');
  const messages = items
    .filter((item) => !isSystem(item))
    .map((item) => {
      if (item['type'] === 'function_call_output') return { role: 'tool', content: textOf(item['output']) };
      if (item['type'] === 'function_call') return { role: 'assistant', content: '' };
      return { role: String(item['role']), content: textOf(item['content']) };
    });
  const tools = (Array.isArray(b['tools']) ? (b['tools'] as JsonObject[]) : [])
    .filter((t) => t['type'] === 'function')
    .map((t) => ({ name: String(t['name']), parameters: (t['parameters'] ?? {}) as JsonSchema }));
  const format = (b['text'] as JsonObject | undefined)?.['format'] as JsonObject | undefined;
  const jsonSchema =
    format?.['type'] === 'json_schema' ? ((format['schema'] ?? {}) as JsonSchema) : undefined;
  return {
    system,
    messages,
    lastUserText: [...messages].reverse().find((m) => m.role === 'user')?.content ?? '',
    lastIsToolResult: messages.at(-1)?.role === 'tool',
    tools,
    jsonSchema,
    jsonMode: jsonSchema === undefined ? undefined : ('text_format' as const),
    forcedTool: undefined,
  };
}

/** The finished output items of a reply: a reasoning item (when it reasoned), the message, the calls. */
function responsesOutput(request: FakeRequest, reply: FakeReply, usage: FakeUsage): JsonObject[] {
  const seed = (what: string): string => hashString(`${what}${request.index}`).toString(36);
  const output: JsonObject[] = [];
  if ((usage.reasoning ?? 0) > 0) {
    output.push({ id: `rs_${seed('r')}`, type: 'reasoning', summary: [] });
  }
  const text = replyText(reply);
  const calls = openaiToolCalls(request, reply);
  if (text !== '' || calls.length === 0) {
    output.push({
      id: `msg_${seed('m')}`,
      type: 'message',
      status: 'completed',
      role: 'assistant',
      content: [{ type: 'output_text', text, annotations: [], logprobs: [] }],
    });
  }
  calls.forEach((call, i) => {
    output.push({
      id: `fc_${seed(`f${i}`)}${i}`,
      type: 'function_call',
      status: 'completed',
      call_id: call.id,
      name: call.function.name,
      arguments: call.function.arguments,
    });
  });
  return output;
}

function responsesUsage(usage: FakeUsage) {
  return {
    input_tokens: usage.input,
    input_tokens_details: { cached_tokens: usage.cacheRead ?? 0 },
    output_tokens: usage.output,
    output_tokens_details: { reasoning_tokens: usage.reasoning ?? 0 },
    total_tokens: usage.input + usage.output,
  };
}

/** The `Response` object: `completed`, or `incomplete` when the reply says it was cut or filtered. */
function responsesObject(
  request: FakeRequest,
  reply: FakeReply,
  usage: FakeUsage,
  state: 'final' | 'in_progress' = 'final',
): JsonObject {
  const body = request.body as JsonObject;
  const reason =
    reply.finishReason === 'length' || reply.finishReason === 'max_output_tokens'
      ? 'max_output_tokens'
      : reply.finishReason === 'content_filter'
        ? 'content_filter'
        : undefined;
  const final = state === 'final';
  return {
    id: `resp_${hashString(`r${request.index}`).toString(36)}`,
    object: 'response',
    created_at: 1_700_000_000 + request.index,
    status: final ? (reason === undefined ? 'completed' : 'incomplete') : 'in_progress',
    background: false,
    error: null,
    incomplete_details: final && reason !== undefined ? { reason } : null,
    instructions: body['instructions'] ?? null,
    max_output_tokens: body['max_output_tokens'] ?? null,
    model: request.model,
    output: final ? responsesOutput(request, reply, usage) : [],
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    service_tier: 'default',
    store: body['store'] ?? true,
    temperature: body['temperature'] ?? 1,
    text: body['text'] ?? { format: { type: 'text' } },
    tool_choice: 'auto',
    tools: body['tools'] ?? [],
    top_p: 1,
    truncation: 'disabled',
    usage: final ? responsesUsage(usage) : null,
    user: null,
    metadata: {},
  };
}

/**
 * The SSE events of a streamed response, named by `event:` like the real service: `response.created`,
 * `response.in_progress`, per output item `response.output_item.added`, its text
 * (`response.content_part.added`, `response.output_text.delta` word by word, `response.output_text.done`,
 * `response.content_part.done`) or arguments (`response.function_call_arguments.delta` in 8-character
 * pieces, `response.function_call_arguments.done`), `response.output_item.done`, then
 * `response.completed` (or `response.incomplete`) with the whole response and its usage.
 */
function responsesEvents(request: FakeRequest, reply: FakeReply, usage: FakeUsage): string[] {
  let sequence = 0;
  const out: string[] = [];
  const emit = (type: string, fields: JsonObject): void => {
    out.push(sse({ type, sequence_number: sequence++, ...fields }, type));
  };
  const started = responsesObject(request, reply, usage, 'in_progress');
  emit('response.created', { response: started });
  emit('response.in_progress', { response: started });
  const output = responsesOutput(request, reply, usage);
  output.forEach((item, outputIndex) => {
    const id = item['id'];
    if (item['type'] === 'message') {
      const written = (item['content'] as JsonObject[])[0]?.['text'];
      const text = typeof written === 'string' ? written : '';
      emit('response.output_item.added', {
        output_index: outputIndex,
        item: { ...item, status: 'in_progress', content: [] },
      });
      const part = { type: 'output_text', text: '', annotations: [], logprobs: [] };
      const where = { item_id: id, output_index: outputIndex, content_index: 0 };
      emit('response.content_part.added', { ...where, part });
      for (const piece of pieces(text)) {
        emit('response.output_text.delta', { ...where, delta: piece, logprobs: [] });
      }
      emit('response.output_text.done', { ...where, text, logprobs: [] });
      emit('response.content_part.done', { ...where, part: { ...part, text } });
    } else if (item['type'] === 'function_call') {
      const args = String(item['arguments']);
      emit('response.output_item.added', {
        output_index: outputIndex,
        item: { ...item, status: 'in_progress', arguments: '' },
      });
      for (let i = 0; i < args.length; i += 8) {
        emit('response.function_call_arguments.delta', {
          item_id: id,
          output_index: outputIndex,
          delta: args.slice(i, i + 8),
        });
      }
      emit('response.function_call_arguments.done', {
        item_id: id,
        output_index: outputIndex,
        name: item['name'],
        arguments: args,
      });
    } else {
      emit('response.output_item.added', { output_index: outputIndex, item });
    }
    emit('response.output_item.done', { output_index: outputIndex, item });
  });
  const done = responsesObject(request, reply, usage);
  emit(done['status'] === 'completed' ? 'response.completed' : 'response.incomplete', { response: done });
  return out;
}

/**
 * The Responses API's failure inside a stream: an `error` event `{ type: 'error', code, message, param }`,
 * or, for the fault type `response.failed`, a `response.failed` event whose response carries
 * `error: { code, message }`.
 */
function responsesErrorEvent(
  fault: { readonly type: string; readonly code?: string | undefined; readonly message?: string | undefined },
  sequence: number,
): string {
  const message = fault.message ?? `The stream failed (${fault.code ?? fault.type}).`;
  if (fault.type === 'response.failed') {
    return sse(
      {
        type: 'response.failed',
        sequence_number: sequence,
        response: {
          id: 'resp_failed',
          object: 'response',
          created_at: 1_700_000_000,
          status: 'failed',
          error: { code: fault.code ?? 'server_error', message },
          incomplete_details: null,
          model: '',
          output: [],
          usage: null,
        },
      },
      'response.failed',
    );
  }
  return sse(
    { type: 'error', sequence_number: sequence, code: fault.code ?? fault.type, message, param: null },
    'error',
  );
}
