/**
 * The response cache: model answers stored in SQLite by a hash of the request, so a re-run of a batch
 * replays answers instead of paying for them again, and a recorded run can be replayed offline
 * (`read-only`) with no provider reachable.
 *
 * The cache wraps providers ({@link ResponseCache.wrap}, {@link ResponseCache.wrapRegistry}); nothing else
 * in the chain or the model client needs to know about it. Its table (`response_cache`) may live in its own
 * file or in the run store's file.
 */
import { createHash } from 'node:crypto';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { SymphonizerError } from '../core/errors.ts';
import { AbortedError, UnknownProviderError } from '../providers/errors.ts';
import { ProviderRegistry } from '../providers/registry.ts';
import type { ModelRequest, ModelResponse, Provider, StreamEvent, Usage } from '../providers/types.ts';
import { openDatabase } from './store.ts';
import type { EvalErrorCode } from './errors.ts';

/**
 * How the cache is used:
 * - `read-write`: answer from the cache when it can, else call the provider and store its answer;
 * - `read-only`: answer only from the cache, and throw {@link CacheMissError} on a miss (offline replay);
 * - `off`: no cache at all (the file is not even opened).
 */
export type CacheMode = 'read-write' | 'read-only' | 'off';

/** Counters of a {@link ResponseCache} since it was opened. */
export interface CacheStats {
  /** Calls answered from the cache. */
  readonly hits: number;
  /** Calls the cache could not answer (in `read-only` mode each one threw {@link CacheMissError}). */
  readonly misses: number;
  /** Answers stored. */
  readonly writes: number;
}

/**
 * What a cached call returns: the stored {@link ModelResponse} with `cached: true`, `usage` set to zero
 * tokens (a cached answer costs nothing, so usage meters and budgets count nothing), and the original
 * call's usage in `cachedUsage`, an extension of the object that `ModelResponse` does not declare: check it
 * with {@link isCachedResponse}.
 */
export type CachedModelResponse = ModelResponse & {
  readonly cached: true;
  /** The usage of the call that was recorded. */
  readonly cachedUsage: Usage;
};

/** True when `response` came from a {@link ResponseCache}. */
export function isCachedResponse(response: ModelResponse): response is CachedModelResponse {
  return (response as Partial<CachedModelResponse>).cached === true;
}

/** A `read-only` cache had no answer for a request. */
export class CacheMissError extends SymphonizerError<EvalErrorCode> {
  /** Registry name of the provider. */
  readonly provider: string;
  /** Model id without the provider prefix. */
  readonly model: string;
  /** The request's cache key ({@link cacheKey}). */
  readonly key: string;

  constructor(provider: string, model: string, key: string) {
    super(
      'cache_miss',
      `No cached response for ${provider}:${model} (key ${key.slice(0, 12)}) and the cache is read-only.`,
      {
        hint: 'record the run first with the cache in read-write mode, with the same prompts and parameters',
      },
    );
    this.provider = provider;
    this.model = model;
    this.key = key;
  }
}

/** The response cache was used after {@link ResponseCache.close}. */
export class CacheClosedError extends SymphonizerError<EvalErrorCode> {
  constructor() {
    super('cache_closed', 'The response cache is closed.', {
      hint: 'close the cache only after the providers it wrapped are no longer used',
    });
  }
}

/**
 * The cache key of a request to the provider registered as `provider`: the SHA-256 (hex) of the canonical
 * JSON (keys sorted, `undefined` dropped) of the provider name, model, system text, messages, temperature,
 * max tokens, stop sequences, tools, output spec and provider options. The abort signal is not part of it.
 */
export function cacheKey(provider: string, request: ModelRequest): string {
  const material = {
    v: 1,
    provider,
    model: request.model,
    system: request.system,
    messages: request.messages,
    temperature: request.temperature,
    maxTokens: request.maxTokens,
    stop: request.stop,
    tools: request.tools,
    output: request.output,
    // Merged into the wire body by the network providers (`seed`, `top_p`, ...), so it changes the answer.
    providerOptions: request.providerOptions,
  };
  return createHash('sha256')
    .update(canonicalJson(material) ?? 'null')
    .digest('hex');
}

const schema = `
CREATE TABLE IF NOT EXISTS response_cache (
  key        TEXT PRIMARY KEY,    -- cacheKey(provider, request)
  provider   TEXT NOT NULL,
  model      TEXT NOT NULL,
  response   TEXT NOT NULL,       -- JSON ModelResponse (without rateLimit)
  created_at INTEGER NOT NULL     -- epoch ms
) STRICT;
`;

/**
 * Model answers stored by request, in SQLite.
 *
 * @example
 * ```ts
 * const cache = ResponseCache.open('.symphonizer/cache.db');
 * const registry = cache.wrapRegistry(createDefaultRegistry());
 * // ... run the batch with `registry` ...
 * console.log(cache.stats()); // { hits, misses, writes }
 * cache.close();
 * ```
 */
export class ResponseCache {
  /** How this cache answers. */
  readonly mode: CacheMode;
  readonly #db: DatabaseSync | undefined;
  readonly #statements = new Map<string, StatementSync>();
  #hits = 0;
  #misses = 0;
  #writes = 0;

  private constructor(db: DatabaseSync | undefined, mode: CacheMode) {
    this.#db = db;
    this.mode = mode;
  }

  /**
   * Open (creating if needed) the cache at `path`; `:memory:` gives a private in-memory cache. In `off`
   * mode nothing is opened.
   *
   * @throws {StoreOpenError} when the file cannot be opened.
   */
  static open(path: string, mode: CacheMode = 'read-write'): ResponseCache {
    if (mode === 'off') return new ResponseCache(undefined, mode);
    const db = openDatabase(path);
    try {
      db.exec(schema);
    } catch (err) {
      db.close();
      throw err;
    }
    return new ResponseCache(db, mode);
  }

  /**
   * A provider with the same `name` that answers through the cache. `complete()` returns a
   * {@link CachedModelResponse} on a hit; `stream()` replays a hit as one `text-delta` (plus its `tool-call`
   * events) and the `finish` event. On a miss, `read-write` calls `provider` and stores its answer (a failed
   * call, or a stream that does not finish, stores nothing); `read-only` throws {@link CacheMissError}. In
   * `off` mode `provider` itself is returned.
   *
   * Two identical calls in flight at once both miss and both reach the provider; the second answer stored
   * replaces the first.
   */
  wrap(provider: Provider): Provider {
    if (this.mode === 'off') return provider;
    return {
      name: provider.name,
      complete: (request: ModelRequest): Promise<ModelResponse> => this.#complete(provider, request),
      stream: (request: ModelRequest): AsyncIterable<StreamEvent> => this.#stream(provider, request),
    };
  }

  async #complete(provider: Provider, request: ModelRequest): Promise<ModelResponse> {
    const key = cacheKey(provider.name, request);
    const hit = this.#lookup(key, provider.name, request);
    if (hit !== undefined) return hit;
    const response = await provider.complete(request);
    this.#store(key, provider.name, request.model, response);
    return response;
  }

  async *#stream(provider: Provider, request: ModelRequest): AsyncGenerator<StreamEvent> {
    const key = cacheKey(provider.name, request);
    const hit = this.#lookup(key, provider.name, request);
    if (hit !== undefined) {
      if (hit.text !== '') yield { type: 'text-delta', text: hit.text };
      for (const toolCall of hit.toolCalls) yield { type: 'tool-call', toolCall };
      yield { type: 'finish', response: hit };
      return;
    }
    for await (const event of provider.stream(request)) {
      if (event.type === 'finish') this.#store(key, provider.name, request.model, event.response);
      yield event;
    }
  }

  /**
   * A new registry with the same provider names as `registry`, whose providers for `names` (default: every
   * registered name) are wrapped by {@link ResponseCache.wrap}; the others are passed through. Lazily
   * registered providers stay lazy: they are created, and wrapped, on first use. Providers registered in
   * `registry` afterwards are not seen.
   *
   * @throws {UnknownProviderError} when a name in `names` is not registered.
   */
  wrapRegistry(registry: ProviderRegistry, names?: readonly string[]): ProviderRegistry {
    const registered = registry.names;
    for (const name of names ?? []) {
      if (!registry.has(name)) throw new UnknownProviderError(name, registered);
    }
    const wrapped = new Set(names ?? registered);
    // The constructor always registers a simulated provider; naming it after a registered name makes the
    // loop below replace it, so the new registry holds exactly the names of `registry`.
    const result = new ProviderRegistry({ simulated: { name: registered[0] ?? 'sim' } });
    for (const name of registered) {
      result.registerLazy(name, () => {
        const provider = registry.get(name);
        return wrapped.has(name) ? this.wrap(provider) : provider;
      });
    }
    return result;
  }

  /** Hits, misses and writes since the cache was opened. */
  stats(): CacheStats {
    return { hits: this.#hits, misses: this.#misses, writes: this.#writes };
  }

  /** Close the database; wrapped providers throw {@link CacheClosedError} afterwards. Closing twice does nothing. */
  close(): void {
    if (this.#db?.isOpen !== true) return;
    this.#statements.clear();
    this.#db.close();
  }

  // Returns the cached answer, or undefined on a miss in read-write mode; throws on a miss in read-only mode.
  #lookup(key: string, provider: string, request: ModelRequest): CachedModelResponse | undefined {
    const row = this.#stmt('SELECT response FROM response_cache WHERE key = ?').get(key);
    if (row === undefined) {
      this.#misses++;
      if (this.mode === 'read-only') throw new CacheMissError(provider, request.model, key);
      return undefined;
    }
    if (request.signal?.aborted === true) throw new AbortedError({ provider, model: request.model });
    this.#hits++;
    const stored = JSON.parse(String(row['response'])) as ModelResponse;
    return {
      ...stored,
      usage: { inputTokens: 0, outputTokens: 0 },
      cached: true,
      cachedUsage: stored.usage,
    };
  }

  #store(key: string, provider: string, model: string, response: ModelResponse): void {
    // A failed generation is not worth replaying; rate-limit state is stale the moment it is stored.
    if (response.finishReason === 'error') return;
    const { rateLimit: _rateLimit, ...rest } = response;
    const stored: ModelResponse = isCachedResponse(response)
      ? { ...withoutCacheFields(response), usage: response.cachedUsage }
      : rest;
    this.#stmt(
      'INSERT OR REPLACE INTO response_cache (key, provider, model, response, created_at) VALUES (?, ?, ?, ?, ?)',
    ).run(key, provider, model, JSON.stringify(stored), Date.now());
    this.#writes++;
  }

  #stmt(sql: string): StatementSync {
    if (this.#db?.isOpen !== true) throw new CacheClosedError();
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }
}

function withoutCacheFields(response: CachedModelResponse): ModelResponse {
  const { cached: _cached, cachedUsage: _cachedUsage, rateLimit: _rateLimit, ...rest } = response;
  return rest;
}

/**
 * JSON with object keys sorted at every level, so equal values give equal text whatever their key order.
 * Like `JSON.stringify`: `undefined`, functions and symbols are dropped from objects and become `null` in
 * arrays, non-finite numbers become `null`, and `toJSON()` is honoured.
 */
function canonicalJson(value: unknown): string | undefined {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'bigint':
      return JSON.stringify(`${value.toString()}n`);
    case 'object':
      break;
  }
  const object = value as Record<string, unknown> & { toJSON?: unknown };
  if (typeof object.toJSON === 'function') return canonicalJson((object.toJSON as () => unknown)());
  if (Array.isArray(object))
    return `[${object.map((item: unknown) => canonicalJson(item) ?? 'null').join(',')}]`;
  const parts: string[] = [];
  for (const key of Object.keys(object).sort()) {
    const text = canonicalJson(object[key]);
    if (text !== undefined) parts.push(`${JSON.stringify(key)}:${text}`);
  }
  return `{${parts.join(',')}}`;
}
