/**
 * The rate-limited provider workloads of `bench/providers.bench.ts`: many single-call compositions through one
 * Perform, each call made by the real OpenAI or Anthropic SDK provider against the loopback fake server, which
 * enforces "N requests per window" (RPM) or "N tokens per window" (TPM) with real 429s. Everything is recorded
 * with timestamps; statistics are computed by {@link summarise}.
 */
import { Composition, DAGNote, Perform } from '../src/index.ts';
import {
  ModelClient,
  ProviderRegistry,
  RateLimiterRegistry,
  createAnthropicProvider,
  createOpenAIProvider,
  type CallEvent,
} from '../src/providers/index.ts';
import { startFakeProviderServer } from '../test/support/fake-provider-server.ts';

/** What to run. */
export interface ProvidersWorkload {
  /** Single-call compositions. */
  readonly calls: number;
  /** Requests the server allows per window (and the client's `requestsPerMinute`); unused when `tpm` is set. */
  readonly rpm: number;
  /**
   * When set, a token-limited workload: the server allows this many tokens per window (input + output, see
   * `FakeRateLimit.tokens`) and no request limit, the client's limiter has `tokensPerMinute: tpm` and no
   * request limit, and calls have seeded prompt and reply sizes (about 100–500 tokens in, 50–350 out,
   * `maxTokens: 400`), so the client's estimates over-count and are reconciled at settle.
   */
  readonly tpm?: number | undefined;
  /** The fake server's characters per token (see `FakeProviderServerOptions.charsPerToken`). @default 4 */
  readonly charsPerToken?: number | undefined;
  /** Wire format and SDK. @default 'openai' */
  readonly api?: 'openai' | 'anthropic' | undefined;
  /** The window is `60_000 / timeScale` ms on both the server and the client limiter. */
  readonly timeScale: number;
  /** Server latency before each response, ms. */
  readonly latencyMs: number;
  /** How the server counts its window. */
  readonly serverWindow: 'fixed' | 'sliding';
  readonly highWater: number;
  readonly lowWater: number;
  readonly model: string;
}

/** One HTTP exchange as the client's `fetch` saw it. */
export interface Exchange {
  /** Epoch ms when the request was handed to fetch. */
  readonly sentAt: number;
  /** Epoch ms when the response headers arrived (the server decides 429 vs 200 right before it sends). */
  readonly answeredAt: number;
  /** HTTP status, or 0 for a transport failure. */
  readonly status: number;
}

/** Everything recorded during one run. */
export interface ProvidersRun {
  readonly workload: ProvidersWorkload;
  readonly windowMs: number;
  /** Epoch ms of the first `perform.run()` and of the end of the last composition. */
  readonly startedAt: number;
  readonly endedAt: number;
  readonly exchanges: readonly Exchange[];
  /** Epoch ms at which the server accepted each request (its rate-limit check passed), in order. */
  readonly acceptedAt: readonly number[];
  /** What the server counted against its token window for each accepted request, with its acceptance time. */
  readonly acceptedTokens: readonly { readonly at: number; readonly tokens: number }[];
  /** Per composition: wall time from its start (admitted by the Perform) to its end, ms. */
  readonly callMs: readonly number[];
  readonly completed: number;
  readonly failed: number;
  readonly cancelled: number;
  /** Errors of failed compositions, by message (first 3 kinds). */
  readonly failures: Readonly<Record<string, number>>;
  readonly retries: number;
  readonly retryReasons: Readonly<Record<string, number>>;
  /** Limiter wait announcements by reason (`requests` = pacing, `hold` = a pause from headers or a 429). */
  readonly waits: Readonly<Record<string, number>>;
  /** Longest `hold` the limiter announced, ms. */
  readonly longestHoldMs: number;
  readonly limiterGranted: number;
  readonly limiterThrottledMs: number;
  readonly peakRunning: number;
  readonly server: {
    readonly requests: number;
    readonly byStatus: Readonly<Record<string, number>>;
    readonly peakConcurrency: number;
    readonly peakRequestsPerWindow: number;
  };
}

/** A deterministic pseudo-random integer for call `i` (stream `salt`), so every run sees the same sizes. */
function seeded(i: number, salt: number): number {
  let x = (i * 0x9e3779b1 + salt * 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x45d9f3b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

const count = (record: Record<string, number>, key: string): void => {
  record[key] = (record[key] ?? 0) + 1;
};

/** Runs the workload once and returns the raw record. `progress` gets a line now and then. */
export async function runProvidersWorkload(
  workload: ProvidersWorkload,
  progress: (line: string) => void,
): Promise<ProvidersRun> {
  const windowMs = 60_000 / workload.timeScale;
  const api = workload.api ?? 'openai';
  const tpm = workload.tpm;
  const acceptedAt: number[] = [];
  const server = await startFakeProviderServer({
    latencyMs: workload.latencyMs,
    charsPerToken: workload.charsPerToken,
    rateLimit:
      tpm === undefined
        ? { requests: workload.rpm, windowMs, mode: workload.serverWindow }
        : { requests: 1_000_000, tokens: tpm, windowMs, mode: workload.serverWindow },
    // Called right after the server's rate-limit check passed, in the same tick: the acceptance time.
    respond: (request) => {
      acceptedAt.push(Date.now());
      if (tpm === undefined) return { text: `echo: ${request.lastUserText}` };
      const n = Number(/^call (\d+)/.exec(request.lastUserText)?.[1] ?? 0);
      return { text: `reply ${n}: ${'word '.repeat(40 + (seeded(n, 2) % 240))}` };
    },
  });

  const exchanges: Exchange[] = [];
  const recordingFetch: typeof globalThis.fetch = async (input, init) => {
    const sentAt = Date.now();
    try {
      const response = await globalThis.fetch(input, init);
      exchanges.push({ sentAt, answeredAt: Date.now(), status: response.status });
      return response;
    } catch (error) {
      exchanges.push({ sentAt, answeredAt: Date.now(), status: 0 });
      throw error;
    }
  };
  const apiKey = ['sk', 'fake', 'bench', '0000'].join('-'); // not a key: the loopback fake server accepts any
  const provider =
    api === 'openai'
      ? createOpenAIProvider({ baseURL: server.openaiBaseURL, apiKey, fetch: recordingFetch })
      : createAnthropicProvider({ baseURL: server.anthropicBaseURL, apiKey, fetch: recordingFetch });

  const retryReasons: Record<string, number> = {};
  const waits: Record<string, number> = {};
  let retries = 0;
  let longestHoldMs = 0;
  const limiters = new RateLimiterRegistry({
    limits: {
      [api]:
        tpm === undefined
          ? { requestsPerMinute: workload.rpm, windowMs }
          : { tokensPerMinute: tpm, windowMs },
    },
    onWait: (_key, wait) => {
      count(waits, wait.reason);
      if (wait.reason === 'hold') longestHoldMs = Math.max(longestHoldMs, wait.delayMs ?? 0);
    },
  });
  const client = new ModelClient({
    registry: new ProviderRegistry().register(provider),
    limits: limiters,
    onEvent: (event: CallEvent) => {
      if (event.type !== 'retry') return;
      retries += 1;
      // Group by cause: `status 429`, `status 503`, or the error's name for transport failures.
      count(retryReasons, /^status \d+/.exec(event.reason)?.[0] ?? event.reason.split(/[:;(]/)[0]!.trim());
    },
  });

  const callMs: number[] = [];
  const failures: Record<string, number> = {};
  const perform = new Perform({ highWater: workload.highWater, lowWater: workload.lowWater });
  const note = new DAGNote('call');
  const graph = new Map([[note, []]]);
  const modelId = `${api}:${workload.model}`;
  // TPM: prompts of seeded size (about 100–500 tokens of the fake's count), replies capped by maxTokens.
  const spec = (i: number): { model: string; prompt: string; maxTokens?: number } =>
    tpm === undefined
      ? { model: modelId, prompt: `call ${i}` }
      : { model: modelId, prompt: `call ${i} ${'text '.repeat(60 + (seeded(i, 1) % 340))}`, maxTokens: 400 };

  let done = 0;
  const step = Math.max(1, Math.round(workload.calls / 10));
  const startedAt = Date.now();
  const runs: Promise<unknown>[] = [];
  for (let i = 0; i < workload.calls; i++) {
    const composition = new Composition(graph, {
      maxTries: client.maxTries,
      configureNodeRunner: () => client.runner(spec(i)),
      onDone: (c, status, _error, elapsedMs) => {
        callMs.push(elapsedMs);
        if (status !== 'completed') {
          const error = c.error as { cause?: { message?: string }; message?: string } | undefined;
          count(failures, (error?.cause?.message ?? error?.message ?? status).slice(0, 160));
        }
        done += 1;
        if (done % step === 0) {
          const s = (Date.now() - startedAt) / 1000;
          progress(
            `  ${done}/${workload.calls} calls done at ${s.toFixed(1)} s; 429s so far: ${server.byStatus['429'] ?? 0}`,
          );
        }
      },
    });
    runs.push(perform.run(composition));
  }
  await Promise.allSettled(runs);
  await perform.onIdle();
  const endedAt = Date.now();
  const limiter = limiters.get(api, workload.model);
  const result: ProvidersRun = {
    workload,
    windowMs,
    startedAt,
    endedAt,
    exchanges,
    acceptedAt,
    acceptedTokens: server.accepted,
    callMs,
    completed: perform.completed,
    failed: perform.failed,
    cancelled: perform.cancelled,
    failures,
    retries,
    retryReasons,
    waits,
    longestHoldMs,
    limiterGranted: limiter.granted,
    limiterThrottledMs: limiter.throttledMs,
    peakRunning: perform.peakRunning,
    server: {
      requests: server.requests,
      byStatus: { ...server.byStatus },
      peakConcurrency: server.peakConcurrency,
      peakRequestsPerWindow: server.peakRequestsPerWindow,
    },
  };
  await server.close();
  return result;
}

/** One server window of the run. */
export interface WindowRow {
  /** 1-based; window 1 holds the first request. */
  readonly index: number;
  /** Start of the window relative to the run's start, ms (negative when it began before the run). */
  readonly startMs: number;
  /** Fraction of the window inside the run, [0, 1]. */
  readonly coverage: number;
  readonly accepted: number;
  /** Tokens the server counted for the window's accepted requests. */
  readonly tokens: number;
  readonly rejected429: number;
  /** accepted / limit (RPM), or tokens / limit (TPM). */
  readonly ofLimit: number;
}

/** The statistics printed by the bench. */
export interface ProvidersSummary {
  readonly wallMs: number;
  /** Completed calls (TPM: tokens) per window over the whole run, as a fraction of the limit. */
  readonly overallOfLimit: number;
  /**
   * Accepted requests (TPM: tokens) per window between the 10th and 90th percentile of acceptances, as a
   * fraction of the limit.
   */
  readonly steadyOfLimit: number;
  /** Most tokens the server counted in one of its windows, as a fraction of the limit (TPM; NaN for RPM). */
  readonly peakWindowOfLimit: number;
  /** 429s in windows after the first, per 10 such windows. */
  readonly per10Windows429AfterFirst: number;
  /** Mean accepted per fully covered window (fixed server windows only), as a fraction; NaN if none. */
  readonly fullWindowsOfLimit: number;
  readonly requests429: number;
  /** Indices (1-based, see {@link WindowRow}) of windows that saw a 429. */
  readonly windowsWith429: readonly number[];
  readonly retries: number;
  readonly lost: number;
  readonly callP50Ms: number;
  readonly callP95Ms: number;
  readonly callMaxMs: number;
  readonly httpP50Ms: number;
  readonly httpP95Ms: number;
  readonly meanLimiterWaitMs: number;
  readonly windows: readonly WindowRow[];
}

/** Nearest-rank percentile of a non-empty list. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export function summarise(run: ProvidersRun): ProvidersSummary {
  const { windowMs, workload } = run;
  const byTokens = workload.tpm !== undefined;
  const limit = workload.tpm ?? workload.rpm;
  const wallMs = run.endedAt - run.startedAt;
  const entries = [...run.acceptedTokens].sort((a, b) => a.at - b.at);
  const accepted = entries.map((e) => e.at);
  const weight = (e: { readonly tokens: number }): number => (byTokens ? e.tokens : 1);
  const rejected = run.exchanges.filter((e) => e.status === 429).map((e) => e.answeredAt);

  // Steady state: the middle 80 % of acceptances, which leaves out the ramp-up and the tail.
  let steadyOfLimit = Number.NaN;
  if (accepted.length >= 10) {
    const lo = Math.floor(accepted.length * 0.1);
    const hi = Math.ceil(accepted.length * 0.9) - 1;
    const span = accepted[hi]! - accepted[lo]!;
    let amount = 0;
    for (let i = lo + 1; i <= hi; i++) amount += weight(entries[i]!);
    if (span > 0) steadyOfLimit = (amount / span) * (windowMs / limit);
  }

  // Windows: the server's own fixed windows (epoch-aligned), or run-relative chunks for a sliding server.
  const origin = workload.serverWindow === 'fixed' ? 0 : run.startedAt;
  const first = accepted[0] ?? rejected[0] ?? run.startedAt;
  const firstWindow = Math.floor((first - origin) / windowMs);
  const lastAt = Math.max(accepted.at(-1) ?? first, rejected.at(-1) ?? first);
  const lastWindow = Math.floor((lastAt - origin) / windowMs);
  const windows: WindowRow[] = [];
  for (let w = firstWindow; w <= lastWindow; w++) {
    const start = origin + w * windowMs;
    const end = start + windowMs;
    const inside = (t: number): boolean => t >= start && t < end;
    const covered = Math.max(0, Math.min(end, run.endedAt) - Math.max(start, run.startedAt));
    const here = entries.filter((e) => inside(e.at));
    const tokensHere = here.reduce((sum, e) => sum + e.tokens, 0);
    windows.push({
      index: w - firstWindow + 1,
      startMs: start - run.startedAt,
      coverage: covered / windowMs,
      accepted: here.length,
      tokens: tokensHere,
      rejected429: rejected.filter(inside).length,
      ofLimit: (byTokens ? tokensHere : here.length) / limit,
    });
  }
  const full = windows.filter((w) => w.coverage >= 0.999);
  const fullWindowsOfLimit =
    workload.serverWindow === 'fixed' && full.length > 0
      ? full.reduce((s, w) => s + w.ofLimit, 0) / full.length
      : Number.NaN;

  const http = run.exchanges.map((e) => e.answeredAt - e.sentAt);
  const total = byTokens ? entries.reduce((sum, e) => sum + e.tokens, 0) : run.completed;
  const later = windows.slice(1);
  return {
    wallMs,
    overallOfLimit: (total / wallMs) * (windowMs / limit),
    steadyOfLimit,
    peakWindowOfLimit: byTokens ? Math.max(...windows.map((w) => w.ofLimit)) : Number.NaN,
    per10Windows429AfterFirst:
      later.length === 0 ? 0 : (later.reduce((sum, w) => sum + w.rejected429, 0) / later.length) * 10,
    fullWindowsOfLimit,
    requests429: rejected.length,
    windowsWith429: windows.filter((w) => w.rejected429 > 0).map((w) => w.index),
    retries: run.retries,
    lost: workload.calls - run.completed,
    callP50Ms: percentile(run.callMs, 50),
    callP95Ms: percentile(run.callMs, 95),
    callMaxMs: Math.max(...run.callMs),
    httpP50Ms: percentile(http, 50),
    httpP95Ms: percentile(http, 95),
    meanLimiterWaitMs: run.limiterGranted === 0 ? 0 : run.limiterThrottledMs / run.limiterGranted,
    windows,
  };
}
