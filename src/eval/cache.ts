/**
 * The response cache: model answers stored in SQLite by a hash of the request, so a re-run of a batch
 * replays answers instead of paying for them again, and a recorded run can be replayed offline
 * (`read-only`) with no provider reachable.
 *
 * The cache wraps providers ({@link ResponseCache.wrap}, {@link ResponseCache.wrapRegistry}); nothing else
 * in the chain or the model client needs to know about it. Its table (`response_cache`) may live in its own
 * file or in the run store's file, or in PostgreSQL ({@link ResponseCache.openPostgres}), shared by machines.
 */
import { createHash } from 'node:crypto';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { SymphonizerError } from '../core/errors.ts';
import { AbortedError, UnknownProviderError } from '../providers/errors.ts';
import { ProviderRegistry } from '../providers/registry.ts';
import type { ModelRequest, ModelResponse, Provider, StreamEvent, Usage } from '../providers/types.ts';
import {
  checkPoolSize,
  openPool,
  quoteSchema,
  storeError,
  type PgPool,
  type PostgresRunStoreOptions,
} from './postgres-store.ts';
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

/** Where a cache keeps its answers: a SQLite table or a PostgreSQL one. */
interface CacheBackend {
  readonly isOpen: boolean;
  /** The stored JSON of `key`'s answer, if any. */
  get(key: string): string | undefined | Promise<string | undefined>;
  /** Stores (or replaces) `key`'s answer. */
  put(key: string, provider: string, model: string, response: string): void | Promise<void>;
  close(): Promise<void>;
}

class SqliteCacheBackend implements CacheBackend {
  readonly #db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  get isOpen(): boolean {
    return this.#db.isOpen;
  }

  get(key: string): string | undefined {
    const row = this.#stmt('SELECT response FROM response_cache WHERE key = ?').get(key);
    return row === undefined ? undefined : String(row['response']);
  }

  put(key: string, provider: string, model: string, response: string): void {
    this.#stmt(
      'INSERT OR REPLACE INTO response_cache (key, provider, model, response, created_at) VALUES (?, ?, ?, ?, ?)',
    ).run(key, provider, model, response, Date.now());
  }

  close(): Promise<void> {
    if (this.#db.isOpen) {
      this.#statements.clear();
      this.#db.close();
    }
    return Promise.resolve();
  }

  #stmt(sql: string): StatementSync {
    if (!this.#db.isOpen) throw new CacheClosedError();
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }
}

class PostgresCacheBackend implements CacheBackend {
  readonly #pool: PgPool;
  readonly #url: string;
  readonly #table: string;
  #closed: Promise<void> | undefined;

  constructor(pool: PgPool, url: string, table: string) {
    this.#pool = pool;
    this.#url = url;
    this.#table = table;
  }

  get isOpen(): boolean {
    return this.#closed === undefined;
  }

  async get(key: string): Promise<string | undefined> {
    if (!this.isOpen) throw new CacheClosedError();
    try {
      const result = await this.#pool.query(`SELECT response FROM ${this.#table} WHERE key = $1`, [key]);
      const row = result.rows[0];
      return row === undefined ? undefined : String(row['response']);
    } catch (error) {
      throw storeError(this.#url, error, 'use');
    }
  }

  async put(key: string, provider: string, model: string, response: string): Promise<void> {
    if (!this.isOpen) throw new CacheClosedError();
    try {
      await this.#pool.query(
        `INSERT INTO ${this.#table} (key, provider, model, response, created_at)
         VALUES ($1, $2, $3, $4, (extract(epoch from clock_timestamp()) * 1000)::bigint)
         ON CONFLICT (key) DO UPDATE SET provider = excluded.provider, model = excluded.model,
           response = excluded.response, created_at = excluded.created_at`,
        [key, provider, model, response],
      );
    } catch (error) {
      throw storeError(this.#url, error, 'use');
    }
  }

  close(): Promise<void> {
    this.#closed ??= this.#pool.end().catch(() => undefined);
    return this.#closed;
  }
}

/**
 * Model answers stored by request, in SQLite (or PostgreSQL: {@link ResponseCache.openPostgres}).
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
  readonly #backend: CacheBackend | undefined;
  #hits = 0;
  #misses = 0;
  #writes = 0;

  private constructor(backend: CacheBackend | undefined, mode: CacheMode) {
    this.#backend = backend;
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
    return new ResponseCache(new SqliteCacheBackend(db), mode);
  }

  /**
   * Open (creating if needed) the cache in the PostgreSQL database at `url`, table
   * `symphonizer_response_cache` in `options.schema` (default `public`): the same answers for every machine,
   * e.g. next to a {@link PostgresRunStore} in the same database. The semantics are the SQLite cache's. In `off`
   * mode nothing is opened. `pg` is loaded here (an optional peer dependency).
   *
   * @example
   * ```ts
   * const cache = await ResponseCache.openPostgres('postgres://eval@db.internal/evals');
   * await evaluate({ chain, dataset, scorers, cache, store: 'postgres://eval@db.internal/evals' });
   * await cache.dispose();
   * ```
   * @throws {MissingPeerDependencyError} when `pg` is not installed.
   * @throws {StoreOpenError} when the database cannot be reached (the URL's password is never shown).
   */
  static async openPostgres(
    url: string,
    mode: CacheMode = 'read-write',
    options: PostgresRunStoreOptions = {},
  ): Promise<ResponseCache> {
    if (mode === 'off') return new ResponseCache(undefined, mode);
    const schemaName = quoteSchema(options.schema);
    const pool = await openPool(url, checkPoolSize(options.poolSize), 'The PostgreSQL response cache');
    const table = `${schemaName}.symphonizer_response_cache`;
    try {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock(1937337712)');
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${schemaName}`);
        await client.query(`CREATE TABLE IF NOT EXISTS ${table} (
          key        TEXT PRIMARY KEY,
          provider   TEXT NOT NULL,
          model      TEXT NOT NULL,
          response   TEXT NOT NULL,
          created_at BIGINT NOT NULL
        )`);
        await client.query('COMMIT');
        client.release();
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        client.release(true);
        throw error;
      }
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw storeError(url, error, 'open');
    }
    return new ResponseCache(new PostgresCacheBackend(pool, url, table), mode);
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
    const hit = await this.#lookup(key, provider.name, request);
    if (hit !== undefined) return hit;
    const response = await provider.complete(request);
    await this.#store(key, provider.name, request.model, response);
    return response;
  }

  async *#stream(provider: Provider, request: ModelRequest): AsyncGenerator<StreamEvent> {
    const key = cacheKey(provider.name, request);
    const hit = await this.#lookup(key, provider.name, request);
    if (hit !== undefined) {
      if (hit.text !== '') yield { type: 'text-delta', text: hit.text };
      for (const toolCall of hit.toolCalls) yield { type: 'tool-call', toolCall };
      yield { type: 'finish', response: hit };
      return;
    }
    for await (const event of provider.stream(request)) {
      if (event.type === 'finish') await this.#store(key, provider.name, request.model, event.response);
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

  /**
   * Close the database; wrapped providers throw {@link CacheClosedError} afterwards. Closing twice does nothing.
   * A PostgreSQL cache ends its connections in the background: await {@link ResponseCache.dispose} to wait.
   */
  close(): void {
    if (this.#backend?.isOpen !== true) return;
    void this.#backend.close();
  }

  /** {@link ResponseCache.close}, resolved once the cache's connections (PostgreSQL) have ended. */
  async dispose(): Promise<void> {
    await this.#backend?.close();
  }

  // Returns the cached answer, or undefined on a miss in read-write mode; throws on a miss in read-only mode.
  async #lookup(
    key: string,
    provider: string,
    request: ModelRequest,
  ): Promise<CachedModelResponse | undefined> {
    const backend = this.#backend;
    if (backend?.isOpen !== true) throw new CacheClosedError();
    const text = await backend.get(key);
    if (text === undefined) {
      this.#misses++;
      if (this.mode === 'read-only') throw new CacheMissError(provider, request.model, key);
      return undefined;
    }
    if (request.signal?.aborted === true) throw new AbortedError({ provider, model: request.model });
    this.#hits++;
    const stored = JSON.parse(text) as ModelResponse;
    return {
      ...stored,
      usage: { inputTokens: 0, outputTokens: 0 },
      cached: true,
      cachedUsage: stored.usage,
    };
  }

  async #store(key: string, provider: string, model: string, response: ModelResponse): Promise<void> {
    // A failed generation is not worth replaying; rate-limit state is stale the moment it is stored.
    if (response.finishReason === 'error') return;
    const { rateLimit: _rateLimit, ...rest } = response;
    const stored: ModelResponse = isCachedResponse(response)
      ? { ...withoutCacheFields(response), usage: response.cachedUsage }
      : rest;
    const backend = this.#backend;
    if (backend?.isOpen !== true) throw new CacheClosedError();
    await backend.put(key, provider, model, JSON.stringify(stored));
    this.#writes++;
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
