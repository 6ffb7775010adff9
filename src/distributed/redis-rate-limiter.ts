/**
 * One rate limit for every process: {@link RedisRateLimiterRegistry} is a drop-in for the in-process
 * `RateLimiterRegistry` whose limiters keep their state in Redis, so any number of `ModelClient`s on any
 * number of machines share each `provider:model`'s concurrency, requests and tokens per window, and a 429
 * or a Retry-After seen by one pauses them all. Each grant is one atomic Lua script clocked by Redis `TIME`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { InvalidOptionError } from '../core/errors.ts';
import { AbortedError } from '../providers/errors.ts';
import {
  RateLimiter,
  RateLimiterRegistry,
  type AcquireOptions,
  type RateLimitPermit,
  type RateLimits,
  type RateLimitWait,
  type RateLimitWaitReason,
} from '../providers/rate-limiter.ts';
import type { RateLimitInfo } from '../providers/types.ts';
import { RateLimiterUnavailableError } from './errors.ts';
import { describeConnection, loadIoredis, redisOptions, type Connection, type RedisClient } from './peer.ts';
import { ACQUIRE, FINISH, HOLD, RENEW } from './scripts.ts';
import { callHook } from '../core/hooks.ts';

/** Options of a {@link RedisRateLimiterRegistry}. */
export interface RedisRateLimiterRegistryOptions {
  /**
   * Limits by provider name (`openai`) or by `${provider}:${model}` (`openai:gpt-4.1-mini`); a model entry
   * overrides its provider's entry field by field, which overrides `defaults` (as `RateLimiterRegistry`).
   * Every process sharing a key must configure the same limits for it.
   */
  readonly limits: Readonly<Record<string, RateLimits>>;
  /** Limits of every key unless overridden. @default {} (unlimited) */
  readonly defaults?: RateLimits | undefined;
  /**
   * Prefix of the Redis keys; registries with different prefixes share nothing. Each `provider:model` uses
   * keys `{prefix:provider:model}:…`, one hash tag, so they sit in one Redis Cluster slot.
   * @default 'symphonizer:rl'
   */
  readonly prefix?: string | undefined;
  /**
   * How long a caller waits for an unreachable Redis before its `acquire` rejects with a
   * {@link RateLimiterUnavailableError}. The limiter fails closed: while Redis is unreachable no permit is
   * granted, so no request is sent; when Redis answers again, each waiter is granted only when the shared
   * limits allow it, so the waiters do not all go at once. A caller's `signal` ends its wait earlier.
   * @default 30_000
   */
  readonly unavailableTimeoutMs?: number | undefined;
  /**
   * Lifetime of a concurrency lease. Leases of live processes are renewed every third of it, so a permit
   * held by a process that died frees its slot after at most this long. @default 30_000
   */
  readonly leaseMs?: number | undefined;
  /**
   * How often a caller waiting for a concurrency slot held by another process looks again (a slot freed
   * in this process is seen at once). @default 25
   */
  readonly pollMs?: number | undefined;
  /** Called whenever the head of a key's local queue starts a new wait. @default none */
  readonly onWait?: ((key: string, wait: RateLimitWait) => void) | undefined;
}

/** How many recent settled requests the learned usage-to-estimate ratio roughly remembers (as in process). */
const USAGE_MEMORY = 20;
/** Between two tries of an unreachable Redis. */
const RETRY_UNAVAILABLE_MS = 100;

/** What the limiters of one registry share. */
interface Shared {
  readonly redis: RedisClient;
  readonly where: string;
  readonly prefix: string;
  readonly unavailableTimeoutMs: number;
  readonly leaseMs: number;
  readonly pollMs: number;
  readonly pending: Set<Promise<unknown>>;
  /** Connected at least once: until then a failing call is the connection still being made. */
  connected: boolean;
  /** The connection's last error, the cause of a {@link RateLimiterUnavailableError}. */
  lastError: unknown;
  closed: boolean;
}

/**
 * Rate limiters shared through Redis by every process that uses the same Redis and `prefix`: a drop-in for
 * `RateLimiterRegistry` (it is one), accepted as `ModelClient`'s `limits`.
 *
 * Within a process, callers of one key are served first in, first out; across processes, whoever asks
 * Redis first when the limits allow is granted.
 *
 * @example
 * ```ts
 * const limits = new RedisRateLimiterRegistry('redis://127.0.0.1:6379', {
 *   limits: { openai: { maxConcurrency: 16, requestsPerMinute: 500, tokensPerMinute: 200_000 } },
 * });
 * const client = new ModelClient({ limits });
 * // … every replica does the same; together they stay under the limits
 * await limits.close();
 * ```
 */
export class RedisRateLimiterRegistry extends RateLimiterRegistry {
  readonly #shared: Shared;
  readonly #limits = new Map<string, RateLimits>();
  readonly #defaults: RateLimits;
  readonly #limiters = new Map<string, RedisRateLimiter>();
  readonly #onWait: ((key: string, wait: RateLimitWait) => void) | undefined;

  /**
   * Connects to Redis at once (in the background; calls wait for it).
   *
   * @throws {@link MissingPeerDependencyError} when `ioredis` is not installed.
   * @throws {@link InvalidOptionError} for a bad connection or option.
   */
  constructor(connection: Connection, options: RedisRateLimiterRegistryOptions) {
    super();
    if (typeof (options as unknown) !== 'object' || (options as unknown) === null) {
      throw new InvalidOptionError('options', options, 'an object { limits, defaults?, prefix? }');
    }
    if (typeof (options.limits as unknown) !== 'object' || (options.limits as unknown) === null) {
      throw new InvalidOptionError('limits', options.limits, 'an object of limits by provider or model');
    }
    // The in-process registry checks the shape of every entry the same way.
    RateLimiterRegistry.from({ limits: options.limits, defaults: options.defaults }, 'options');
    const prefix = options.prefix ?? 'symphonizer:rl';
    if (typeof prefix !== 'string' || prefix === '' || /[{}]/u.test(prefix)) {
      throw new InvalidOptionError('prefix', prefix, 'a non-empty string without { or }');
    }
    const unavailableTimeoutMs = nonNegative('unavailableTimeoutMs', options.unavailableTimeoutMs, 30_000);
    const leaseMs = nonNegative('leaseMs', options.leaseMs, 30_000);
    if (leaseMs < 100) throw new InvalidOptionError('leaseMs', leaseMs, 'at least 100 ms');
    const pollMs = nonNegative('pollMs', options.pollMs, 25);
    if (options.onWait !== undefined && typeof options.onWait !== 'function') {
      throw new InvalidOptionError('onWait', options.onWait, 'a function');
    }
    this.#onWait = options.onWait;
    this.#defaults = options.defaults ?? {};
    for (const [key, limits] of Object.entries(options.limits)) this.#limits.set(key, limits);
    const Redis = loadIoredis('RedisRateLimiterRegistry');
    const redis = new Redis(
      redisOptions(connection, {
        // Fail closed and fast: a command while disconnected fails at once instead of waiting in a queue,
        // and one lost with its connection is never sent again later (its caller has moved on).
        enableOfflineQueue: false,
        autoResendUnfulfilledCommands: false,
        maxRetriesPerRequest: 0,
        commandTimeout: 2_000,
        connectTimeout: 2_000,
        retryStrategy: (times: number) => Math.min(50 * times, 500),
        lazyConnect: false,
      }),
    );
    this.#shared = {
      redis,
      where: describeConnection(connection),
      prefix,
      unavailableTimeoutMs,
      leaseMs,
      pollMs,
      pending: new Set(),
      connected: false,
      lastError: undefined,
      closed: false,
    };
    // Errors surface through the calls that fail; the client reconnects on its own.
    redis.on('error', (error: unknown) => {
      this.#shared.lastError = error;
    });
    redis.on('ready', () => {
      this.#shared.connected = true;
      for (const limiter of this.#limiters.values()) limiter.wake();
    });
  }

  /**
   * Set the limits of a provider or a model for limiters created later (as `RateLimiterRegistry`). Every
   * process sharing the key must use the same limits.
   */
  override configure(key: string, limits: RateLimits): this {
    this.#limits.set(key, limits);
    return this;
  }

  /**
   * The shared limiter of a provider's model, created on first use.
   *
   * @throws {@link InvalidOptionError} when the resolved limits are invalid (named as in `RateLimits`).
   */
  override get(provider: string, model: string): RedisRateLimiter {
    const key = `${provider}:${model}`;
    let limiter = this.#limiters.get(key);
    if (limiter === undefined) {
      const onWait = this.#onWait;
      limiter = new RedisRateLimiter(
        this.#shared,
        provider,
        model,
        { ...this.#defaults, ...this.#limits.get(provider), ...this.#limits.get(key) },
        onWait === undefined
          ? undefined
          : (wait) => {
              onWait(key, wait);
            },
      );
      this.#limiters.set(key, limiter);
    }
    return limiter;
  }

  /** Keys of the limiters created so far in this process. */
  override keys(): string[] {
    return [...this.#limiters.keys()];
  }

  /** Resolves once every settle, release, hold and renewal sent so far has been answered by Redis. */
  async flush(): Promise<void> {
    while (this.#shared.pending.size > 0) await Promise.allSettled([...this.#shared.pending]);
  }

  /**
   * Stops the limiters and disconnects: waiting callers reject with a {@link RateLimiterUnavailableError},
   * permits still held are released in Redis (their later settle does nothing), then the connection closes.
   */
  async close(): Promise<void> {
    if (this.#shared.closed) return;
    for (const limiter of this.#limiters.values()) limiter.shutdown();
    await this.flush();
    this.#shared.closed = true;
    const { redis } = this.#shared;
    if (redis.status === 'ready') {
      await redis.quit().catch(noop);
    }
    redis.disconnect();
  }
}

interface Waiter {
  readonly tokens: number;
  readonly enqueuedAt: number;
  readonly resolve: (permit: RedisRateLimitPermit) => void;
  readonly reject: (error: unknown) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
  readonly onWait: ((wait: RateLimitWait) => void) | undefined;
  announced: boolean;
}

type AcquireReply = [1, number, string] | [0, RateLimitWaitReason, string, string];

/** A permit of a {@link RedisRateLimiter}: a `RateLimitPermit` that also tells when Redis granted it. */
export interface RedisRateLimitPermit extends RateLimitPermit {
  /** Redis time of the grant (`TIME`, in milliseconds since the epoch), the clock every process shares. */
  readonly grantedAt: number;
}

/**
 * The limiter of one `provider:model` in a {@link RedisRateLimiterRegistry}: the `RateLimiter` contract
 * (`acquire`, `observe`, `backoff`), with its state in Redis. Get it from the registry.
 */
export class RedisRateLimiter extends RateLimiter {
  readonly #shared: Shared;
  readonly #provider: string;
  readonly #model: string;
  readonly #keys: readonly [string, string, string, string];
  readonly #onWait: ((wait: RateLimitWait) => void) | undefined;
  /** Script arguments fixed by the limits. */
  readonly #maxConcurrency: number;
  readonly #requests: number;
  readonly #tokens: number;
  readonly #windowMs: number;
  readonly #spacingMs: number;
  readonly #msPerToken: number;
  readonly #catchUpMs: number;
  readonly #ttlMs: number;
  readonly #queue: Waiter[] = [];
  /** Ids of the permits this process holds, for lease renewal. */
  readonly #held = new Set<string>();
  #renewal: ReturnType<typeof setInterval> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #pumping = false;
  #again = false;
  /** Local time of the first of the current run of failed Redis calls. */
  #unavailableSince: number | undefined;
  #lastWait:
    { readonly head: Waiter; readonly reason: RateLimitWaitReason; readonly dueAt: number } | undefined;
  #granted = 0;
  #throttledMs = 0;

  /** @internal Made by {@link RedisRateLimiterRegistry.get}. */
  constructor(
    shared: Shared,
    provider: string,
    model: string,
    limits: RateLimits,
    onWait: ((wait: RateLimitWait) => void) | undefined,
  ) {
    // The in-process limiter validates the limits exactly as for a local limiter; it is never used.
    super({ ...limits, provider, model });
    this.#shared = shared;
    this.#provider = provider;
    this.#model = model;
    this.#onWait = onWait;
    const tag = `{${shared.prefix}:${provider}:${model}}`;
    this.#keys = [`${tag}:state`, `${tag}:leases`, `${tag}:ledger`, `${tag}:tokens`];
    const headroom = limits.headroom ?? 0.02;
    this.#windowMs = limits.windowMs ?? 60_000;
    const concurrency = limits.maxConcurrency ?? Infinity;
    this.#maxConcurrency = concurrency === Infinity ? 0 : concurrency;
    const requests = limits.requestsPerMinute ?? Infinity;
    this.#requests = requests === Infinity ? 0 : Math.max(1, Math.floor(requests));
    const tokens = limits.tokensPerMinute ?? Infinity;
    this.#tokens = tokens === Infinity ? 0 : tokens;
    this.#spacingMs = requests === Infinity ? 0 : this.#windowMs / (requests * (1 - headroom));
    this.#msPerToken = tokens === Infinity ? 0 : this.#windowMs / (tokens * (1 - headroom));
    this.#catchUpMs = (this.#windowMs * headroom) / 2;
    this.#ttlMs = 2 * Math.max(this.#windowMs, shared.leaseMs) + 1_000;
  }

  /** Callers of this process waiting for a permit. */
  override get waiting(): number {
    return this.#queue.length;
  }
  /** Permits this process holds (granted, not yet settled or released). */
  override get inFlight(): number {
    return this.#held.size;
  }
  /** Permits granted to this process since creation. */
  override get granted(): number {
    return this.#granted;
  }
  /** Total time this process's granted callers waited, in milliseconds. */
  override get throttledMs(): number {
    return this.#throttledMs;
  }

  /**
   * Wait for the right to send one request, as `RateLimiter.acquire`, with the limits shared by every
   * process.
   *
   * @throws {@link InvalidOptionError} when `estimatedTokens` is not an integer >= 0 (synchronously).
   * @returns a permit once the shared limits allow it and every earlier caller of this process has been
   *   served; rejects with an `AbortedError` if `signal` aborts first, or with a
   *   {@link RateLimiterUnavailableError} when Redis stayed unreachable for `unavailableTimeoutMs` (or the
   *   registry was closed). In both cases no permit was granted.
   */
  override acquire(options: AcquireOptions = {}): Promise<RedisRateLimitPermit> {
    const tokens = options.estimatedTokens ?? 0;
    if (!Number.isSafeInteger(tokens) || tokens < 0) {
      throw new InvalidOptionError('estimatedTokens', tokens, 'an integer >= 0');
    }
    const { signal } = options;
    if (signal?.aborted === true) return Promise.reject(this.#abortError(signal));
    if (this.#shared.closed) return Promise.reject(this.#unavailable(0, true));
    return new Promise<RedisRateLimitPermit>((resolve, reject) => {
      const waiter: Waiter = {
        tokens,
        enqueuedAt: performance.now(),
        resolve,
        reject,
        signal,
        onWait: options.onWait,
        announced: false,
        onAbort: () => {
          if (!this.#remove(waiter)) return;
          reject(this.#abortError(signal));
          this.wake();
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.#queue.push(waiter);
      if (this.#queue.length > 1 && waiter.onWait !== undefined) {
        // Queued behind others: the head's wait is a lower bound of this one's.
        waiter.announced = true;
        const last = this.#lastWait;
        const delayMs =
          last === undefined || Number.isNaN(last.dueAt)
            ? undefined
            : Math.max(0, last.dueAt - performance.now());
        callHook(
          waiter.onWait,
          Object.freeze({ reason: last?.reason ?? 'concurrency', delayMs, waiting: this.#queue.length }),
        );
      }
      this.#pump();
    });
  }

  /**
   * Learn from a response's rate-limit headers, for every process: when remaining requests or tokens are 0,
   * hold everyone until the matching reset; a `retryAfterMs` holds everyone that long.
   */
  override observe(rateLimit: RateLimitInfo): void {
    const holdMs = this.#holdMs(rateLimit);
    if (holdMs > 0) void this.#send(HOLD, [holdMs, this.#ttlMs]);
  }

  /**
   * Pause every caller of every process for `ms` milliseconds (extending, never shortening, a pause in
   * force).
   *
   * @throws {@link InvalidOptionError} when `ms` is not a finite number >= 0.
   */
  override backoff(ms: number): void {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
      throw new InvalidOptionError('ms', ms, 'a finite number of milliseconds >= 0');
    }
    this.observe({ retryAfterMs: ms });
  }

  /** @internal Look at the queue again now (a slot freed, Redis is back). */
  wake(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#pump();
  }

  /** @internal Reject every waiter and release every held permit (the registry is closing). */
  shutdown(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const waiter of this.#queue.splice(0)) {
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.reject(this.#unavailable(performance.now() - waiter.enqueuedAt, true));
    }
    for (const id of [...this.#held]) this.#finish(id, 0, -1, 0, 0, 0);
    this.#stopRenewal();
  }

  #holdMs(rateLimit: RateLimitInfo): number {
    let hold = 0;
    if (rateLimit.remainingRequests === 0 && rateLimit.resetRequestsMs !== undefined) {
      // As in process: when we pace requests ourselves, the next slot is one spacing away.
      hold = Math.max(
        hold,
        this.#spacingMs > 0
          ? Math.min(rateLimit.resetRequestsMs, this.#spacingMs)
          : rateLimit.resetRequestsMs,
      );
    }
    if (rateLimit.remainingTokens === 0 && rateLimit.resetTokensMs !== undefined) {
      hold = Math.max(hold, rateLimit.resetTokensMs);
    }
    if (rateLimit.retryAfterMs !== undefined) hold = Math.max(hold, rateLimit.retryAfterMs);
    return hold;
  }

  #remove(waiter: Waiter): boolean {
    const index = this.#queue.indexOf(waiter);
    if (index === -1) return false;
    this.#queue.splice(index, 1);
    return true;
  }

  /** Serve the head of the queue: one script call at a time, then again until someone must wait. */
  #pump(): void {
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    if (this.#timer !== undefined || this.#shared.closed) return;
    this.#pumping = true;
    void this.#serve().finally(() => {
      this.#pumping = false;
      if (this.#again) {
        this.#again = false;
        this.#pump();
      }
    });
  }

  async #serve(): Promise<void> {
    for (;;) {
      this.#again = false;
      const head = this.#queue[0];
      if (head === undefined) {
        this.#lastWait = undefined;
        return;
      }
      const id = randomBytes(9).toString('base64url');
      let reply: AcquireReply;
      if (this.#shared.redis.status !== 'ready') {
        // Not connected (yet, or any more): the 'ready' event wakes us; meanwhile the timeout runs.
        this.#failUnavailable(this.#shared.lastError);
        return;
      }
      try {
        reply = (await this.#eval(ACQUIRE, [
          id,
          head.tokens,
          this.#maxConcurrency,
          this.#requests,
          this.#tokens,
          this.#windowMs,
          this.#spacingMs,
          this.#msPerToken,
          this.#catchUpMs,
          this.#shared.leaseMs,
          this.#ttlMs,
        ])) as AcquireReply;
      } catch (error) {
        if (this.#shared.closed) return;
        this.#failUnavailable(error);
        return;
      }
      this.#unavailableSince = undefined;
      if (reply[0] === 1) {
        const charged = reply[1];
        if (this.#queue[0] !== head) {
          // Aborted while Redis granted it: give the permit back (refunded; its request slot stays used).
          this.#finish(id, charged, 0, 0, 0, 0);
          continue;
        }
        this.#queue.shift();
        this.#grant(head, id, charged, Number(reply[2]));
        continue;
      }
      const [, reason, now, due] = reply;
      const delayMs = Math.max(0, Number(due) - Number(now));
      this.#announce(head, reason, delayMs);
      // A concurrency slot of another process may free at any time: look again every pollMs.
      const waitMs = reason === 'concurrency' ? Math.min(this.#shared.pollMs, delayMs) : delayMs;
      if (this.#changed()) continue; // something changed while we asked (a local slot freed)
      this.#schedule(Math.max(1, Math.ceil(waitMs)));
      return;
    }
  }

  /** Whether a wake came in while the last script call was out. */
  #changed(): boolean {
    return this.#again;
  }

  #schedule(ms: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#pump();
    }, ms);
  }

  /** Redis did not answer: keep waiting (fail closed), rejecting the waiters whose patience ran out. */
  #failUnavailable(error: unknown): void {
    const now = performance.now();
    this.#unavailableSince ??= now;
    const since = this.#unavailableSince;
    for (const waiter of [...this.#queue]) {
      const waited = now - Math.max(since, waiter.enqueuedAt);
      if (waited < this.#shared.unavailableTimeoutMs) continue;
      this.#remove(waiter);
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.reject(this.#unavailable(now - waiter.enqueuedAt, false, error));
    }
    if (this.#queue.length > 0) {
      const head = this.#queue[0] as Waiter;
      if (this.#shared.connected) this.#announce(head, 'hold', undefined);
      this.#schedule(RETRY_UNAVAILABLE_MS);
    }
  }

  #grant(waiter: Waiter, id: string, charged: number, grantedAt: number): void {
    waiter.signal?.removeEventListener('abort', waiter.onAbort);
    const waitedMs = performance.now() - waiter.enqueuedAt;
    this.#granted += 1;
    this.#throttledMs += waitedMs;
    this.#held.add(id);
    this.#startRenewal();
    let open = true;
    const close = (): boolean => {
      if (!open || !this.#held.has(id)) return false;
      open = false;
      return true;
    };
    waiter.resolve(
      Object.freeze({
        estimatedTokens: charged,
        waitedMs,
        grantedAt,
        settle: (result: Parameters<RateLimitPermit['settle']>[0] = {}) => {
          if (!close()) return;
          const { usage, rateLimit } = result;
          const actual = usage === undefined ? -1 : usage.inputTokens + usage.outputTokens;
          const learn = usage === undefined ? 0 : waiter.tokens;
          const holdMs = rateLimit === undefined ? 0 : this.#holdMs(rateLimit);
          this.#finish(id, charged, actual, learn, Math.max(0, actual), holdMs);
        },
        release: (failure: Parameters<RateLimitPermit['release']>[0] = {}) => {
          if (!close()) return;
          const refused = failure.backoffMs !== undefined;
          const holdMs = Math.max(
            failure.rateLimit === undefined ? 0 : this.#holdMs(failure.rateLimit),
            failure.backoffMs ?? 0,
          );
          // A 429 is refunded (the provider counted nothing) and pauses everyone in the same script.
          this.#finish(id, charged, refused ? 0 : -1, 0, 0, holdMs);
        },
      }),
    );
  }

  /** Free a held permit in Redis (see the FINISH script), then serve the next local waiter. */
  #finish(
    id: string,
    charged: number,
    newTokens: number,
    learnEstimate: number,
    learnActual: number,
    holdMs: number,
  ): void {
    this.#held.delete(id);
    if (this.#held.size === 0) this.#stopRenewal();
    const sent = this.#send(FINISH, [
      id,
      charged,
      newTokens,
      learnEstimate,
      learnActual,
      holdMs,
      this.#tokens,
      this.#msPerToken,
      this.#catchUpMs,
      1 - 1 / USAGE_MEMORY,
      this.#ttlMs,
    ]);
    // The next waiter asks after this permit's slot is free in Redis (commands of one connection keep order).
    void sent.then(() => {
      this.wake();
    });
  }

  #startRenewal(): void {
    if (this.#renewal !== undefined || this.#maxConcurrency === 0) return;
    this.#renewal = setInterval(() => {
      if (this.#held.size > 0) void this.#send(RENEW, [this.#shared.leaseMs, this.#ttlMs, ...this.#held]);
    }, this.#shared.leaseMs / 3);
    this.#renewal.unref();
  }

  #stopRenewal(): void {
    if (this.#renewal !== undefined) clearInterval(this.#renewal);
    this.#renewal = undefined;
  }

  /** A write whose failure is not the caller's: a lost settle only leaves a lease to expire. */
  #send(script: string, args: readonly (string | number)[]): Promise<void> {
    if (this.#shared.closed) return Promise.resolve();
    const pending = this.#eval(script, args).then(noop, noop);
    this.#shared.pending.add(pending);
    void pending.then(() => this.#shared.pending.delete(pending));
    return pending;
  }

  /** Runs a script by its SHA, loading it on a miss (a new or restarted Redis). */
  async #eval(script: string, args: readonly (string | number)[]): Promise<unknown> {
    const { redis } = this.#shared;
    const argv = args.map(String);
    try {
      return await redis.evalsha(sha1(script), this.#keys.length, ...this.#keys, ...argv);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return await redis.eval(script, this.#keys.length, ...this.#keys, ...argv);
    }
  }

  #announce(head: Waiter, reason: RateLimitWaitReason, delayMs: number | undefined): void {
    const dueAt = delayMs === undefined ? NaN : Math.round(performance.now() + delayMs);
    const last = this.#lastWait;
    const wait = Object.freeze({ reason, delayMs, waiting: this.#queue.length });
    if (!head.announced) {
      head.announced = true;
      if (head.onWait !== undefined) callHook(head.onWait, wait);
    }
    this.#lastWait = { head, reason, dueAt };
    if (last?.head === head && last.reason === reason && (last.dueAt === dueAt || reason === 'concurrency'))
      return;
    if (this.#onWait !== undefined) callHook(this.#onWait, wait);
  }

  #abortError(signal: AbortSignal | undefined): AbortedError {
    return new AbortedError({
      provider: this.#provider,
      model: this.#model,
      message: 'Aborted while waiting for the shared rate limiter.',
      cause: signal?.reason,
    });
  }

  #unavailable(waitedMs: number, closed: boolean, cause?: unknown): RateLimiterUnavailableError {
    return new RateLimiterUnavailableError({
      provider: this.#provider,
      model: this.#model,
      redis: this.#shared.where,
      waitedMs,
      closed,
      cause,
    });
  }
}

const shas = new Map<string, string>();
function sha1(script: string): string {
  let sha = shas.get(script);
  if (sha === undefined) {
    sha = createHash('sha1').update(script).digest('hex');
    shas.set(script, sha);
  }
  return sha;
}

function nonNegative(option: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidOptionError(option, value, 'a finite number of milliseconds >= 0');
  }
  return value;
}

function noop(): void {
  // nothing to do
}
