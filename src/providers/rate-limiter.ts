/**
 * Client-side rate limiting per (provider, model): a concurrency cap, requests and tokens per window, fed by
 * the providers' rate-limit headers and by 429s. Waiters are served first in, first out, and the limiter is
 * event-driven: it holds at most one timer, only while someone waits.
 */
import { InvalidOptionError } from '../core/errors.ts';
import { AbortedError } from './errors.ts';
import type { RateLimitInfo, Usage } from './types.ts';
import { callHook } from '../core/hooks.ts';

/** The limits of one {@link RateLimiter}. */
export interface RateLimits {
  /** Most requests in flight at once (granted, not yet settled or released). @default Infinity */
  readonly maxConcurrency?: number | undefined;
  /**
   * Most requests per `windowMs`. Requests are spaced evenly, `windowMs / requestsPerMinute` apart, so no
   * window ever holds more and there are no bursts for the provider to punish. @default unlimited
   */
  readonly requestsPerMinute?: number | undefined;
  /**
   * Most tokens per `windowMs`. Token grants are paced like requests: a grant of `n` tokens (estimated at
   * acquire) moves the next token grant `n * windowMs / (tokensPerMinute * (1 - headroom))` later, and the
   * real usage reported at settle moves it back or further by the difference, so tokens flow at the limit's
   * rate instead of in bursts at window edges. On top of that, no sliding `windowMs` ever holds more than
   * `tokensPerMinute` granted tokens. A single request larger than the whole limit waits until the window is
   * empty, then goes alone. A request refused with a 429 is refunded (see {@link RateLimitPermit.release}).
   * Estimates are charged scaled by the ratio of real usage to estimate that this limiter learned from its
   * last ~20 settled requests (1 until the first), so a systematic over- or under-count (a `maxTokens` far
   * above the real output, a text that is not 4 characters per token) costs neither throughput nor 429s
   * after a few calls.
   * @default unlimited
   */
  readonly tokensPerMinute?: number | undefined;
  /** Length of the rate window in milliseconds; "per minute" means "per `windowMs`". @default 60_000 */
  readonly windowMs?: number | undefined;
  /**
   * Fraction of `requestsPerMinute` and of `tokensPerMinute` left unused as a safety margin, in `[0, 0.5)`.
   * Requests are spaced `windowMs / (requestsPerMinute * (1 - headroom))` apart and tokens flow at
   * `tokensPerMinute * (1 - headroom)` per window, so network jitter between us and the provider (and the
   * gap between a token estimate and the real usage while a request is in flight) cannot put one request
   * or token too many into the provider's window.
   * @default 0.02
   */
  readonly headroom?: number | undefined;
}

/** Why the head of a {@link RateLimiter}'s queue waits. */
export type RateLimitWaitReason = 'concurrency' | 'requests' | 'tokens' | 'hold';

/** What the `onWait` hooks receive (frozen). */
export interface RateLimitWait {
  /** What the head of the queue waits for; `'hold'` is a pause from headers or {@link RateLimiter.backoff}. */
  readonly reason: RateLimitWaitReason;
  /** Expected wait of the head of the queue in ms; `undefined` while it waits for a concurrency slot. */
  readonly delayMs: number | undefined;
  /** Callers waiting, the head included. */
  readonly waiting: number;
}

/** Options of a {@link RateLimiter}. */
export interface RateLimiterOptions extends RateLimits {
  /** Provider name, used in errors. @default 'unknown' */
  readonly provider?: string | undefined;
  /** Model id, used in errors. @default undefined */
  readonly model?: string | undefined;
  /** Clock in milliseconds; fake timers fake the default. @default () => performance.now() */
  readonly now?: (() => number) | undefined;
  /** Called whenever the head of the queue starts a new wait (a new reason or a new expected delay). */
  readonly onWait?: ((wait: RateLimitWait) => void) | undefined;
}

/** Options of {@link RateLimiter.acquire}. */
export interface AcquireOptions {
  /** Tokens the request is expected to use, input + output (see {@link estimateTokens}). @default 0 */
  readonly estimatedTokens?: number | undefined;
  /** Aborting it removes the caller from the queue at once and rejects with an `AbortedError`. */
  readonly signal?: AbortSignal | undefined;
  /** Called once if this call has to queue; `delayMs` is the head's expected wait (a lower bound for this call). */
  readonly onWait?: ((wait: RateLimitWait) => void) | undefined;
}

/** The right to send one request. Call exactly one of `settle` or `release`; later calls do nothing. */
export interface RateLimitPermit {
  /** Tokens charged at acquire: the caller's estimate scaled by the learned usage ratio (see `tokensPerMinute`). */
  readonly estimatedTokens: number;
  /** How long this caller waited in the queue, in milliseconds. */
  readonly waitedMs: number;
  /**
   * The request succeeded: charge its real usage (input + output tokens) instead of the estimate, learn from
   * its rate-limit headers, and free its concurrency slot. A `ModelResponse` can be passed as is.
   */
  settle(result?: {
    readonly usage?: Usage | undefined;
    readonly rateLimit?: RateLimitInfo | undefined;
  }): void;
  /**
   * The request failed: free the concurrency slot.
   *
   * For a 429 (or a 529 overload), pass `backoffMs` (and/or the error's `rateLimit`): every caller is paused
   * *before* the slot is freed, so no waiter slips through in between, and the request's token estimate is
   * refunded, because the provider refused it without counting its tokens (keeping it charged under-used the
   * next window). Any other failure keeps the estimate charged: the provider may have read the input, or
   * generated output before the connection broke.
   */
  release(failure?: {
    readonly backoffMs?: number | undefined;
    readonly rateLimit?: RateLimitInfo | undefined;
  }): void;
}

interface Waiter {
  readonly tokens: number;
  readonly enqueuedAt: number;
  readonly resolve: (permit: RateLimitPermit) => void;
  readonly reject: (error: unknown) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

/** One grant's token charge; `tokens` is corrected at settle while the entry is still in the window. */
interface LedgerEntry {
  readonly at: number;
  tokens: number;
  /** False once evicted from the window, after which a correction no longer counts. */
  inWindow: boolean;
}

/**
 * A client-side rate limiter for one (provider, model). Acquire a permit before each request and settle or
 * release it after; permits are granted first in, first out, so a large request is never starved by small
 * ones behind it.
 *
 * @example
 * ```ts
 * const limiter = new RateLimiter({ maxConcurrency: 8, requestsPerMinute: 500, tokensPerMinute: 200_000 });
 * const permit = await limiter.acquire({ estimatedTokens: estimateTokens(request), signal });
 * try { const response = await provider.complete(request); permit.settle(response); return response; }
 * catch (err) { permit.release(err.status === 429 ? { backoffMs: err.retryAfterMs ?? 1000 } : {}); throw err; }
 * ```
 */
export class RateLimiter {
  readonly #provider: string;
  readonly #model: string | undefined;
  readonly #maxConcurrency: number;
  readonly #tokensPerWindow: number;
  readonly #windowMs: number;
  /** Minimum gap between two grants, `windowMs / requestsPerMinute` (0 when unlimited). */
  readonly #spacingMs: number;
  /** Time one token takes at the paced token rate, `windowMs / (tokensPerMinute * (1 - headroom))` (0 when unlimited). */
  readonly #msPerToken: number;
  /** How far behind its schedule the token pacing may be and still catch up (rather than restart from now). */
  readonly #tokenCatchUpMs: number;
  readonly #now: () => number;
  readonly #onWait: ((wait: RateLimitWait) => void) | undefined;
  /** FIFO; only the head is ever considered for a grant. */
  readonly #queue: Waiter[] = [];
  /** Grants of the last `windowMs`, oldest first; `#ledgerTokens` is the sum of their tokens. */
  readonly #ledger: LedgerEntry[] = [];
  #ledgerTokens = 0;
  #inFlight = 0;
  #granted = 0;
  #throttledMs = 0;
  /** Earliest time the next grant may happen under `requestsPerMinute`. */
  #nextRequestAt = -Infinity;
  /** Earliest time the next request with tokens may be granted under the paced `tokensPerMinute`. */
  #nextTokenAt = -Infinity;
  /** Decaying sums of real usage and of the estimates of the same requests; see `#learn`. */
  #usageSum = 0;
  #estimateSum = 0;
  /** Real usage per estimated token, learned from settled requests; charges are estimates times this. */
  #usageRatio = 1;
  /** Nothing is granted before this time (headers said 0 remaining, or a 429 asked us to back off). */
  #holdUntil = -Infinity;
  /** The single pending timer; set only while someone waits for time to pass. */
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The last wait announced, so a re-drain that changes nothing stays silent. */
  #lastWait:
    | { readonly head: Waiter; readonly reason: RateLimitWaitReason; readonly dueAt: number | undefined }
    | undefined;

  /** @throws {@link InvalidOptionError} naming the option, the value and the valid range. */
  constructor(options: RateLimiterOptions = {}) {
    this.#provider = options.provider ?? 'unknown';
    this.#model = options.model;
    this.#maxConcurrency = options.maxConcurrency ?? Infinity;
    if (
      !(Number.isSafeInteger(this.#maxConcurrency) && this.#maxConcurrency >= 1) &&
      this.#maxConcurrency !== Infinity
    ) {
      throw new InvalidOptionError('maxConcurrency', options.maxConcurrency, 'an integer >= 1 or Infinity');
    }
    const requests = positive('requestsPerMinute', options.requestsPerMinute);
    this.#tokensPerWindow = positive('tokensPerMinute', options.tokensPerMinute);
    this.#windowMs = options.windowMs ?? 60_000;
    if (typeof this.#windowMs !== 'number' || !Number.isFinite(this.#windowMs) || this.#windowMs <= 0) {
      throw new InvalidOptionError('windowMs', options.windowMs, 'a finite number of milliseconds > 0');
    }
    const headroom = options.headroom ?? 0.02;
    if (typeof headroom !== 'number' || !(headroom >= 0 && headroom < 0.5)) {
      throw new InvalidOptionError('headroom', options.headroom, 'a number in [0, 0.5)');
    }
    this.#spacingMs = requests === Infinity ? 0 : this.#windowMs / (requests * (1 - headroom));
    this.#msPerToken =
      this.#tokensPerWindow === Infinity ? 0 : this.#windowMs / (this.#tokensPerWindow * (1 - headroom));
    this.#tokenCatchUpMs = (this.#windowMs * headroom) / 2;
    const now = options.now ?? (() => performance.now());
    if (typeof now !== 'function') {
      throw new InvalidOptionError('now', now, 'a function returning milliseconds');
    }
    this.#now = now;
    if (options.onWait !== undefined && typeof options.onWait !== 'function') {
      throw new InvalidOptionError('onWait', options.onWait, 'a function');
    }
    this.#onWait = options.onWait;
  }

  /** Callers waiting for a permit. */
  get waiting(): number {
    return this.#queue.length;
  }
  /** Permits granted and not yet settled or released. */
  get inFlight(): number {
    return this.#inFlight;
  }
  /** Permits granted since creation. */
  get granted(): number {
    return this.#granted;
  }
  /** Total time granted callers spent waiting in the queue, in milliseconds. */
  get throttledMs(): number {
    return this.#throttledMs;
  }

  /**
   * Wait for the right to send one request.
   *
   * @throws {@link InvalidOptionError} when `estimatedTokens` is not an integer >= 0 (synchronously).
   * @returns a permit, once the concurrency cap, the request and token windows and any hold allow it and every
   *   earlier caller has been served; rejects with an `AbortedError` (`code: 'aborted'`, `cause` = the
   *   signal's reason) if `signal` aborts first.
   */
  acquire(options: AcquireOptions = {}): Promise<RateLimitPermit> {
    const tokens = options.estimatedTokens ?? 0;
    if (!Number.isSafeInteger(tokens) || tokens < 0) {
      throw new InvalidOptionError('estimatedTokens', tokens, 'an integer >= 0');
    }
    const { signal } = options;
    if (signal?.aborted === true) return Promise.reject(this.#abortError(signal));
    const now = this.#grantNow(tokens);
    if (now !== undefined) return Promise.resolve(now);
    return new Promise<RateLimitPermit>((resolve, reject) => {
      const waiter: Waiter = {
        tokens,
        enqueuedAt: this.#now(),
        resolve,
        reject,
        signal,
        onAbort: () => {
          const index = this.#queue.indexOf(waiter);
          if (index === -1) return;
          this.#queue.splice(index, 1);
          reject(this.#abortError(signal));
          this.#drain();
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.#queue.push(waiter);
      this.#drain();
      // Still queued iff still last: a drain only removes from the front (or removes aborted waiters).
      if (this.#queue.at(-1) === waiter && options.onWait !== undefined) {
        const wait = this.#lastWait;
        callHook(options.onWait, this.#waitInfo(wait?.reason ?? 'concurrency', wait?.dueAt));
      }
    });
  }

  /**
   * @internal The permit of {@link RateLimiter.acquire} at once, when it would be granted without any wait
   * (no request or token pacing, a free concurrency slot, no hold, nobody queued); else `undefined`, and the
   * caller acquires as usual. Saves a limiter without such limits a promise and a queue entry per request.
   * @throws {@link InvalidOptionError} as {@link RateLimiter.acquire}.
   */
  tryAcquire(estimatedTokens = 0): RateLimitPermit | undefined {
    if (!Number.isSafeInteger(estimatedTokens) || estimatedTokens < 0) {
      throw new InvalidOptionError('estimatedTokens', estimatedTokens, 'an integer >= 0');
    }
    return this.#grantNow(estimatedTokens);
  }

  /**
   * A grant without queueing, as `#grant` would make it for a head that waited 0 ms, when nothing can hold
   * it: only without request and token limits (no spacing to keep, no ledger entry to correct), so settling
   * it only learns from headers and frees the slot.
   */
  #grantNow(tokens: number): RateLimitPermit | undefined {
    if (
      this.#queue.length > 0 ||
      this.#spacingMs !== 0 ||
      this.#tokensPerWindow !== Infinity ||
      this.#inFlight >= this.#maxConcurrency ||
      (this.#holdUntil !== -Infinity && this.#holdUntil > this.#now())
    ) {
      return undefined;
    }
    this.#inFlight += 1;
    this.#granted += 1;
    let open = true;
    const finish = (): void => {
      open = false;
      this.#inFlight -= 1;
      this.#drain();
    };
    return {
      estimatedTokens: tokens,
      waitedMs: 0,
      settle: (result) => {
        if (!open) return;
        const rateLimit = result?.rateLimit;
        if (rateLimit !== undefined) this.observe(rateLimit);
        finish();
      },
      release: (failure) => {
        if (!open) return;
        if (failure?.rateLimit !== undefined) this.observe(failure.rateLimit);
        if (failure?.backoffMs !== undefined) this.backoff(failure.backoffMs);
        finish();
      },
    };
  }

  /**
   * Learn from a response's rate-limit headers: when remaining requests or tokens are 0, hold every caller
   * until the matching reset; a `retryAfterMs` holds everyone that long (as {@link RateLimiter.backoff}).
   */
  observe(rateLimit: RateLimitInfo): void {
    const now = this.#now();
    let holdUntil = this.#holdUntil;
    if (rateLimit.remainingRequests === 0 && rateLimit.resetRequestsMs !== undefined) {
      // "Reset" is the time until the budget is fully restored. When we pace requests ourselves, the next
      // slot is one spacing away, so hold at most that long; otherwise hold until the reset.
      const hold =
        this.#spacingMs > 0
          ? Math.min(rateLimit.resetRequestsMs, this.#spacingMs)
          : rateLimit.resetRequestsMs;
      holdUntil = Math.max(holdUntil, now + hold);
    }
    if (rateLimit.remainingTokens === 0 && rateLimit.resetTokensMs !== undefined) {
      holdUntil = Math.max(holdUntil, now + rateLimit.resetTokensMs);
    }
    if (rateLimit.retryAfterMs !== undefined) holdUntil = Math.max(holdUntil, now + rateLimit.retryAfterMs);
    if (holdUntil !== this.#holdUntil) {
      this.#holdUntil = holdUntil;
      this.#drain();
    }
  }

  /**
   * Pause every caller, not only the one that got the 429, for `ms` milliseconds (extending, never
   * shortening, a pause already in force).
   *
   * @throws {@link InvalidOptionError} when `ms` is not a finite number >= 0.
   */
  backoff(ms: number): void {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
      throw new InvalidOptionError('ms', ms, 'a finite number of milliseconds >= 0');
    }
    this.observe({ retryAfterMs: ms });
  }

  #abortError(signal: AbortSignal | undefined): AbortedError {
    return new AbortedError({
      provider: this.#provider,
      model: this.#model,
      message: 'Waiting for the rate limiter was aborted.',
      cause: signal?.reason,
    });
  }

  /** Grant as many head-of-queue callers as the limits allow, then plan the one timer if someone still waits. */
  #drain(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    for (;;) {
      const head = this.#queue[0];
      if (head === undefined) {
        this.#lastWait = undefined;
        return;
      }
      const now = this.#now();
      if (this.#inFlight >= this.#maxConcurrency) {
        this.#announce(head, 'concurrency', undefined); // a settle or release will drain again
        return;
      }
      const [reason, dueAt] = this.#blockedUntil(this.#charge(head.tokens), now);
      if (reason !== undefined) {
        this.#announce(head, reason, dueAt);
        this.#timer = setTimeout(
          () => {
            this.#timer = undefined;
            this.#drain();
          },
          Math.max(1, Math.ceil(dueAt - now)),
        );
        return;
      }
      this.#queue.shift();
      this.#grant(head, now);
    }
  }

  /** The latest of the hold, the request spacing and the token window for a request of `tokens`. */
  #blockedUntil(tokens: number, now: number): [RateLimitWaitReason | undefined, number] {
    let reason: RateLimitWaitReason | undefined;
    let dueAt = now;
    if (this.#holdUntil > dueAt) [reason, dueAt] = ['hold', this.#holdUntil];
    if (this.#nextRequestAt > dueAt) [reason, dueAt] = ['requests', this.#nextRequestAt];
    const tokensDueAt = this.#tokensDueAt(tokens, now);
    if (tokensDueAt > dueAt) [reason, dueAt] = ['tokens', tokensDueAt];
    return [reason, dueAt];
  }

  /** When the token pacing and the sliding token window allow a request of `tokens` (now, if they do). */
  #tokensDueAt(tokens: number, now: number): number {
    if (this.#tokensPerWindow === Infinity || tokens === 0) return now;
    if (this.#nextTokenAt > now) return this.#nextTokenAt;
    this.#evict(now);
    // Too big for any window: it goes alone, once everything earlier has left the window.
    const need = Math.min(tokens, this.#tokensPerWindow);
    let inWindow = this.#ledgerTokens;
    if (inWindow + need <= this.#tokensPerWindow) return now;
    for (const entry of this.#ledger) {
      inWindow -= entry.tokens;
      if (inWindow + need <= this.#tokensPerWindow) return entry.at + this.#windowMs;
    }
    return now; // unreachable: an empty window always has room
  }

  #evict(now: number): void {
    while (this.#ledger.length > 0 && (this.#ledger[0] as LedgerEntry).at + this.#windowMs <= now) {
      const entry = this.#ledger.shift() as LedgerEntry;
      entry.inWindow = false;
      this.#ledgerTokens -= entry.tokens;
    }
  }

  #grant(waiter: Waiter, now: number): void {
    waiter.signal?.removeEventListener('abort', waiter.onAbort);
    this.#inFlight += 1;
    this.#granted += 1;
    const waitedMs = now - waiter.enqueuedAt;
    this.#throttledMs += waitedMs;
    if (this.#spacingMs > 0) {
      // Keep to the schedule: a grant that a late timer delayed by less than one slot does not push every
      // later slot back (timers fire late and waits are rounded up, which would otherwise drift the rate
      // down by 10-20 % at high request limits). After an idle gap, the schedule restarts from now.
      const due = this.#nextRequestAt;
      this.#nextRequestAt = (now - due < this.#spacingMs ? due : now) + this.#spacingMs;
    }
    let entry: LedgerEntry | undefined;
    const charged = this.#charge(waiter.tokens);
    if (this.#tokensPerWindow !== Infinity) {
      entry = { at: now, tokens: charged, inWindow: true };
      this.#ledger.push(entry);
      this.#ledgerTokens += charged;
      if (charged > 0) {
        // Same schedule-keeping as for requests; after an idle gap the pacing restarts from now, so unused
        // time is not saved up into a burst.
        const due = this.#nextTokenAt;
        this.#nextTokenAt = (now - due < this.#tokenCatchUpMs ? due : now) + charged * this.#msPerToken;
      }
    }
    /** Charge `tokens` instead of what the grant holds now: the ledger and the pacing both move. */
    const recharge = (tokens: number): void => {
      if (entry === undefined) return;
      const delta = tokens - entry.tokens;
      if (entry.inWindow) this.#ledgerTokens += delta;
      // A debit after an idle gap is not charged to the past (the same catch-up bound as at grant).
      const from =
        delta > 0 ? Math.max(this.#nextTokenAt, this.#now() - this.#tokenCatchUpMs) : this.#nextTokenAt;
      this.#nextTokenAt = from + delta * this.#msPerToken;
      entry.tokens = tokens;
    };
    let open = true;
    const finish = (): void => {
      open = false;
      this.#inFlight -= 1;
      this.#drain();
    };
    waiter.resolve(
      Object.freeze({
        estimatedTokens: charged,
        waitedMs,
        settle: (result: Parameters<RateLimitPermit['settle']>[0] = {}) => {
          if (!open) return;
          const { usage, rateLimit } = result;
          if (usage !== undefined) {
            const actual = usage.inputTokens + usage.outputTokens;
            recharge(actual);
            this.#learn(waiter.tokens, actual);
          }
          if (rateLimit !== undefined) this.observe(rateLimit);
          finish();
        },
        release: (failure: Parameters<RateLimitPermit['release']>[0] = {}) => {
          if (!open) return;
          if (failure.backoffMs !== undefined) recharge(0); // refused: the provider counted nothing
          if (failure.rateLimit !== undefined) this.observe(failure.rateLimit);
          if (failure.backoffMs !== undefined) this.backoff(failure.backoffMs);
          finish();
        },
      }),
    );
  }

  /**
   * What a request estimated at `tokens` is charged: the estimate times the learned ratio of real usage to
   * estimates (1 until a request settles with usage), at least 1 token for a non-zero estimate.
   */
  #charge(tokens: number): number {
    if (tokens === 0 || this.#tokensPerWindow === Infinity) return tokens;
    return Math.max(1, Math.ceil(tokens * this.#usageRatio));
  }

  /**
   * Learn how the estimates compare with real usage: a decaying sum of each (about the last
   * {@link USAGE_MEMORY} settled requests), whose quotient, bounded to [1/20, 20], scales later charges.
   */
  #learn(estimated: number, actual: number): void {
    if (estimated === 0 || this.#tokensPerWindow === Infinity) return;
    const keep = 1 - 1 / USAGE_MEMORY;
    this.#usageSum = this.#usageSum * keep + actual;
    this.#estimateSum = this.#estimateSum * keep + estimated;
    this.#usageRatio = Math.min(20, Math.max(1 / 20, this.#usageSum / this.#estimateSum));
  }

  /** Tell `onWait` about the head's wait, once per (head, reason, due time). */
  #announce(head: Waiter, reason: RateLimitWaitReason, dueAt: number | undefined): void {
    const last = this.#lastWait;
    this.#lastWait = { head, reason, dueAt };
    if (last?.head === head && last.reason === reason && last.dueAt === dueAt) return;
    if (this.#onWait !== undefined) callHook(this.#onWait, this.#waitInfo(reason, dueAt));
  }

  #waitInfo(reason: RateLimitWaitReason, dueAt: number | undefined): RateLimitWait {
    const delayMs = dueAt === undefined ? undefined : Math.max(0, dueAt - this.#now());
    return Object.freeze({ reason, delayMs, waiting: this.#queue.length });
  }
}

/** How many recent settled requests the learned usage-to-estimate ratio roughly remembers. */
const USAGE_MEMORY = 20;

/** What {@link RateLimitPermit.release} is told about a failed request. */
export interface RateLimitRelease {
  /** Set for a 429 or 529: pause every caller this long and refund the request's token estimate. */
  readonly backoffMs?: number;
  /** The failure's rate-limit headers, if it had any. */
  readonly rateLimit?: RateLimitInfo;
}

/**
 * How to release a permit after a request failed with `error`: a 429 or 529 (or, inside a stream, an error
 * event whose code says rate limit or overload) pauses every caller for the error's `retryAfterMs`, or
 * `fallbackBackoffMs()` when the provider named no delay, and refunds the estimate; the error's rate-limit
 * headers are passed on either way.
 */
export function failureRelease(error: unknown, fallbackBackoffMs: () => number): RateLimitRelease {
  const fields = (typeof error === 'object' && error !== null ? error : {}) as {
    readonly status?: unknown;
    readonly code?: unknown;
    readonly retryAfterMs?: unknown;
    readonly rateLimit?: RateLimitInfo;
  };
  const rateLimited =
    fields.status === 429 ||
    fields.status === 529 ||
    fields.code === 'rate_limit_error' ||
    fields.code === 'overloaded_error';
  return {
    ...(fields.rateLimit === undefined ? {} : { rateLimit: fields.rateLimit }),
    ...(rateLimited
      ? { backoffMs: typeof fields.retryAfterMs === 'number' ? fields.retryAfterMs : fallbackBackoffMs() }
      : {}),
  };
}

/** Options of a {@link RateLimiterRegistry}. */
export interface RateLimiterRegistryOptions {
  /** Limits of every limiter unless overridden. @default {} (unlimited) */
  readonly defaults?: RateLimits | undefined;
  /**
   * Limits by provider name (`openai`) or by `${provider}:${model}` (`openai:gpt-4.1-mini`); a model entry
   * overrides its provider's entry field by field, which overrides `defaults`. @default {}
   */
  readonly limits?: Readonly<Record<string, RateLimits>> | undefined;
  /** Passed to every limiter created. @default performance.now */
  readonly now?: (() => number) | undefined;
  /** Passed to every limiter created, with its key. @default none */
  readonly onWait?: ((key: string, wait: RateLimitWait) => void) | undefined;
}

/**
 * One {@link RateLimiter} per `${provider}:${model}`, created on first use with the limits configured for
 * that key, its provider, or the defaults.
 *
 * @example
 * ```ts
 * const limiters = new RateLimiterRegistry({ limits: { openai: { requestsPerMinute: 500 }, 'openai:gpt-4.1': { tokensPerMinute: 30_000 } } });
 * const permit = await limiters.get('openai', 'gpt-4.1').acquire({ estimatedTokens: 900 });
 * ```
 */
export class RateLimiterRegistry {
  readonly #limiters = new Map<string, RateLimiter>();
  /** The same limiters by provider, then model. */
  readonly #byProvider = new Map<string, Map<string, RateLimiter>>();
  readonly #defaults: RateLimits;
  readonly #limits = new Map<string, RateLimits>();
  readonly #now: (() => number) | undefined;
  readonly #onWait: ((key: string, wait: RateLimitWait) => void) | undefined;

  constructor(options: RateLimiterRegistryOptions = {}) {
    this.#defaults = options.defaults ?? {};
    for (const [key, limits] of Object.entries(options.limits ?? {})) this.#limits.set(key, limits);
    this.#now = options.now;
    this.#onWait = options.onWait;
  }

  /**
   * A registry from what `ModelClient`'s `limits` option accepts:
   * - a registry: returned as is (share one between clients);
   * - limits by provider (`openai`) or by `${provider}:${model}`: `{ openai: { requestsPerMinute: 500 } }`;
   * - {@link RateLimiterRegistryOptions}: `{ limits, defaults, now, onWait }`. An object with any of these
   *   four keys is read as options, so in the first form they are not provider names (a provider named
   *   `defaults` is configured through `{ limits: { defaults: … } }`).
   *
   * @param option - the option's name in errors. @default 'limits'
   * @throws {@link InvalidOptionError} for anything else: an object mixing option keys with provider keys, an
   *   entry that is not an object of {@link RateLimits} fields, or `now` / `onWait` that is not a function.
   *   The limits' values are checked when their limiter is created ({@link RateLimiterRegistry.get}).
   */
  static from(
    value?: RateLimiterRegistry | RateLimiterRegistryOptions | Readonly<Record<string, RateLimits>>,
    option = 'limits',
  ): RateLimiterRegistry {
    if (value instanceof RateLimiterRegistry) return value;
    if (value === undefined) return new RateLimiterRegistry();
    if (!isPlainObject(value)) {
      throw new InvalidOptionError(option, value, expectedLimits);
    }
    const keys = Object.keys(value);
    const optionKeys = keys.filter((key) => registryOptionKeys.has(key));
    if (optionKeys.length === 0) {
      for (const key of keys) checkLimits(`${option}.${key}`, value[key]);
      return new RateLimiterRegistry({ limits: value });
    }
    if (optionKeys.length < keys.length) {
      throw new InvalidOptionError(option, value, `${expectedLimits}, not a mix of both`, {
        hint: `${[...registryOptionKeys].join(', ')} are option names; put provider limits under \`limits\` or drop those keys`,
      });
    }
    const options = value as RateLimiterRegistryOptions;
    if (options.limits !== undefined) {
      if (!isPlainObject(options.limits)) {
        throw new InvalidOptionError(
          `${option}.limits`,
          options.limits,
          'an object of limits by provider or model',
        );
      }
      for (const [key, limits] of Object.entries(options.limits))
        checkLimits(`${option}.limits.${key}`, limits);
    }
    if (options.defaults !== undefined) checkLimits(`${option}.defaults`, options.defaults);
    for (const name of ['now', 'onWait'] as const) {
      if (options[name] !== undefined && typeof options[name] !== 'function') {
        throw new InvalidOptionError(`${option}.${name}`, options[name], 'a function');
      }
    }
    return new RateLimiterRegistry(options);
  }

  /**
   * Set the limits of a provider (`openai`) or a model (`openai:gpt-4.1`). Limiters already created keep
   * their limits; only later {@link RateLimiterRegistry.get} calls see the change.
   */
  configure(key: string, limits: RateLimits): this {
    this.#limits.set(key, limits);
    return this;
  }

  /**
   * The limiter of a provider's model, created on first use.
   *
   * @throws {@link InvalidOptionError} when the resolved limits are invalid (named as in {@link RateLimits}).
   */
  get(provider: string, model: string): RateLimiter {
    // Every attempt looks its limiter up: by provider, then model, without building the key.
    let byModel = this.#byProvider.get(provider);
    if (byModel === undefined) {
      byModel = new Map();
      this.#byProvider.set(provider, byModel);
    }
    const known = byModel.get(model);
    if (known !== undefined) return known;
    const key = `${provider}:${model}`;
    let limiter = this.#limiters.get(key);
    if (limiter === undefined) {
      const onWait = this.#onWait;
      limiter = new RateLimiter({
        ...this.#defaults,
        ...this.#limits.get(provider),
        ...this.#limits.get(key),
        provider,
        model,
        now: this.#now,
        onWait:
          onWait === undefined
            ? undefined
            : (wait) => {
                onWait(key, wait);
              },
      });
      this.#limiters.set(key, limiter);
    }
    byModel.set(model, limiter);
    return limiter;
  }

  /** Keys of the limiters created so far. */
  keys(): string[] {
    return [...this.#limiters.keys()];
  }
}

/** The keys of {@link RateLimiterRegistryOptions}, which {@link RateLimiterRegistry.from} reads as options. */
const registryOptionKeys: ReadonlySet<string> = new Set(['limits', 'defaults', 'now', 'onWait']);
/** The fields of {@link RateLimits}. */
const rateLimitKeys: ReadonlySet<string> = new Set([
  'maxConcurrency',
  'requestsPerMinute',
  'tokensPerMinute',
  'windowMs',
  'headroom',
]);
const expectedLimits =
  'a RateLimiterRegistry, limits by provider or model ({ openai: { requestsPerMinute: 500 } }), or registry options ({ limits, defaults })';

function isPlainObject(value: unknown): value is Readonly<Record<string, unknown>> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Checks that `value` is an object of {@link RateLimits} fields (their values are checked by the limiter). */
function checkLimits(option: string, value: unknown): void {
  if (!isPlainObject(value)) {
    throw new InvalidOptionError(option, value, 'an object of rate limits ({ requestsPerMinute: 500, … })');
  }
  const unknown = Object.keys(value).find((key) => !rateLimitKeys.has(key));
  if (unknown !== undefined) {
    throw new InvalidOptionError(
      option,
      value,
      `an object of rate limits (${[...rateLimitKeys].join(', ')}); "${unknown}" is not one`,
    );
  }
}

function positive(option: string, value: number | undefined): number {
  if (value === undefined) return Infinity;
  if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) {
    throw new InvalidOptionError(option, value, 'a number > 0 (Infinity or left out for unlimited)');
  }
  return value;
}
