/**
 * Distributed bench: workers on BullMQ + Redis sharing one rate limit, against the loopback fake provider
 * server enforcing it with real 429s. Run at the end of `npm run bench` when `redis-server` is installed
 * (else it prints a skip line).
 *
 *   node bench/distributed.bench.ts                    3 workers, 3,000 runs, time scale ×10 (about 2.5 min)
 *   --runs N  --workers N  --concurrency N (per worker, default 16)  --time-scale N  --latency-ms N (default 30)
 *   --overhead-runs N (default 2000)   --no-kill (no SIGKILL)   --json (results as JSON on stdout)
 *
 * Throughput: `--runs` runs of a 4-call diamond chain (a, then b and c, then d), submitted by one
 * DistributedPerform (maxPending 500) in this process, run by `--workers` worker processes (startWorker,
 * concurrency 16 each), every call by the real OpenAI SDK provider against the fake server in this process,
 * which allows 600 requests per sliding window of `60 000 / time-scale` ms (600 per minute, time-scaled) and
 * answers 429 past it. The workers' ModelClients share one RedisRateLimiterRegistry: 600 requests per
 * window, headroom 5 %. After a third of the runs have settled, one worker is SIGKILLed (its runs' locks
 * expire after 5 s and the others take them, with their finished nodes restored).
 * Measured: accepted requests per window against the limit (steady state, the middle 80 % of acceptances,
 * as bench/providers.bench.ts counts it; and over the whole run), the most requests
 * the server accepted in any sliding window, 429s after the first window, lost runs (submitted, never
 * settled ok), duplicated runs (a result that reached the producer twice, or more jobs completed in the
 * queue than runs), and the nodes asked twice (in flight on the killed worker when it died).
 *
 * Overhead: `--overhead-runs` runs of the same chain on the simulated model (zero latency), once through one
 * in-process Perform (`chain.runAll`, highWater 16) and once through a DistributedPerform and one worker
 * process (concurrency 16): wall time per run, and the difference (what Redis, BullMQ, the checkpoints and
 * the events add per run).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import { z } from 'zod';
import { chain } from '../src/chain/builder.ts';
import { DistributedPerform, RedisRateLimiterRegistry, startWorker } from '../src/distributed/index.ts';
import { ModelClient, ProviderRegistry, createOpenAIProvider } from '../src/providers/index.ts';
import { findBinary } from '../test/support/server-process.ts';

const { values: args } = parseArgs({
  options: {
    worker: { type: 'string' },
    runs: { type: 'string', default: '3000' },
    workers: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '16' },
    'time-scale': { type: 'string', default: '10' },
    'latency-ms': { type: 'string', default: '30' },
    'overhead-runs': { type: 'string', default: '2000' },
    'no-kill': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});

const LIMIT = 600;
const TARGET_OF_LIMIT = 0.93;
const QUEUE_THROUGHPUT = 'bench-throughput';
const QUEUE_OVERHEAD = 'bench-overhead';
const self = fileURLToPath(import.meta.url);

/** The 4-call diamond: the same module builds it in the producer and in every worker, so the hashes agree. */
function diamond(model: string) {
  const input = z.object({ id: z.string() });
  return chain({ name: 'diamond', input, model })
    .prompt('a', { template: 'run {{input.id}} node a' })
    .prompt('b', { after: ['a'], template: 'run {{input.id}} node b' })
    .prompt('c', { after: ['a'], template: 'run {{input.id}} node c' })
    .prompt('d', { after: ['b', 'c'], template: 'run {{input.id}} node d' })
    .build();
}

interface WorkerConfig {
  readonly redis: string;
  readonly queue: string;
  readonly model: string;
  readonly concurrency: number;
  readonly baseURL?: string | undefined;
  readonly windowMs?: number | undefined;
}

/** A worker process: one startWorker, ready line on stdout, drained on SIGTERM. */
async function workerMain(config: WorkerConfig): Promise<void> {
  let client: ModelClient | undefined;
  let limits: RedisRateLimiterRegistry | undefined;
  if (config.baseURL !== undefined) {
    limits = new RedisRateLimiterRegistry(config.redis, {
      prefix: 'bench:rl',
      limits: { openai: { requestsPerMinute: LIMIT, windowMs: config.windowMs, headroom: 0.05 } },
    });
    const apiKey = ['sk', 'fake', 'bench', String(process.pid)].join('-'); // the fake server accepts any
    client = new ModelClient({
      registry: new ProviderRegistry().register(createOpenAIProvider({ baseURL: config.baseURL, apiKey })),
      limits,
    });
  }
  const worker = await startWorker({
    connection: config.redis,
    queue: config.queue,
    chains: { diamond: diamond(config.model) },
    concurrency: config.concurrency,
    client,
    lockDurationMs: 5000,
    stalledIntervalMs: 2000,
  });
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => {
    void (async () => {
      await worker.close();
      await limits?.close();
      process.exit(0);
    })();
  });
}

function spawnWorkerProcess(config: WorkerConfig): Promise<ChildProcess> {
  const child = spawn(process.execPath, [self, '--worker', JSON.stringify(config)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) resolve(child);
    });
    child.once('exit', (code) => {
      reject(new Error(`a bench worker exited (${code}) before it was ready`));
    });
  });
}

async function stop(children: readonly ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) {
            resolve();
            return;
          }
          child.once('exit', () => {
            resolve();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
}

/** The most timestamps within any window `[t, t + windowMs)`. */
function busiest(times: readonly number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end += 1) {
    while ((sorted[end] as number) - (sorted[start] as number) >= windowMs) start += 1;
    most = Math.max(most, end - start + 1);
  }
  return most;
}

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

interface Throughput {
  readonly runs: number;
  readonly workers: number;
  readonly windowMs: number;
  readonly wallMs: number;
  readonly accepted: number;
  readonly ofLimit: number;
  readonly wholeRunOfLimit: number;
  /** Accepted requests in each full window counted from the first acceptance. */
  readonly perWindow: readonly number[];
  readonly busiestWindow: number;
  readonly requests429: number;
  readonly after429: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly askedTwice: number;
  readonly killed: boolean;
}

async function throughput(redisUrl: string): Promise<Throughput> {
  const { startFakeProviderServer } = await import('../test/support/fake-provider-server.ts');
  const runs = Number(args.runs);
  const workers = Number(args.workers);
  const windowMs = 60_000 / Number(args['time-scale']);
  const acceptedAt: number[] = [];
  const server = await startFakeProviderServer({
    latencyMs: Number(args['latency-ms']),
    rateLimit: { requests: LIMIT, windowMs, mode: 'sliding' },
    respond: (request) => {
      acceptedAt.push(Date.now());
      return { text: `echo: ${request.lastUserText}` };
    },
  });
  const model = 'openai:gpt-4.1-mini';
  const config: WorkerConfig = {
    redis: redisUrl,
    queue: QUEUE_THROUGHPUT,
    model,
    concurrency: Number(args.concurrency),
    baseURL: server.openaiBaseURL,
    windowMs,
  };
  const children = await Promise.all(Array.from({ length: workers }, () => spawnWorkerProcess(config)));
  const producer = new DistributedPerform({
    connection: redisUrl,
    queue: QUEUE_THROUGHPUT,
    chains: { diamond: diamond(model) },
    maxPending: 500,
  });
  const settled = new Map<string, number>();
  let ok = 0;
  let killed = false;
  let firstWindow429: number | undefined;
  const queueCounts = { completed: 0 };
  const started = Date.now();
  const pending: Promise<void>[] = [];
  const progress = setInterval(() => {
    log(
      `  ${ok}/${runs} runs, ${acceptedAt.length} requests, ${Math.round((Date.now() - started) / 1000)} s`,
    );
  }, 15_000);
  try {
    for (let i = 0; i < runs; i += 1) {
      const runId = `bench-${i}`;
      const run = await producer.submit('diamond', { id: runId }, { runId });
      if (i === 0) {
        void server.waitForRequests(1).then(() => {
          setTimeout(() => {
            firstWindow429 = server.byStatus['429'] ?? 0;
          }, windowMs);
        });
      }
      pending.push(
        run.result().then(
          () => {
            ok += 1;
            settled.set(runId, (settled.get(runId) ?? 0) + 1);
            if (!args['no-kill'] && !killed && ok >= runs / 3) {
              killed = true;
              log(`  SIGKILL one worker after ${ok} runs`);
              children[0]?.kill('SIGKILL');
            }
          },
          () => {
            settled.set(runId, (settled.get(runId) ?? 0) + 1);
          },
        ),
      );
    }
    await Promise.all(pending);
    const jobs = new Queue(QUEUE_THROUGHPUT, {
      connection: { host: '127.0.0.1', port: Number(new URL(redisUrl).port) },
    });
    queueCounts.completed = (await jobs.getJobCounts('completed')).completed ?? 0;
    await jobs.close();
  } finally {
    clearInterval(progress);
    await producer.close();
    await stop(children);
    await server.close();
  }
  const wallMs = Date.now() - started;
  const perNode = new Map<string, number>();
  for (const request of server.log) {
    const key = /run (\S+) node (\w)/u.exec(request.lastUserText)?.slice(1).join(' ');
    if (key !== undefined) perNode.set(key, (perNode.get(key) ?? 0) + 1);
  }
  const sorted = [...acceptedAt].sort((a, b) => a - b);
  const rate = (from: number, to: number): number => {
    const span = (sorted[to] ?? 0) - (sorted[from] ?? 0);
    return span > 0 ? ((to - from) / span) * (windowMs / LIMIT) : 0;
  };
  // Steady state, as bench/providers.bench.ts counts it: the middle 80 % of acceptances (no ramp-up, no tail).
  const ofLimit = rate(Math.floor(sorted.length * 0.1), Math.ceil(sorted.length * 0.9) - 1);
  const wholeRunOfLimit = rate(0, sorted.length - 1);
  // Accepted requests per full window from the first acceptance, to see where throughput was lost.
  const perWindow: number[] = [];
  for (const at of sorted) {
    const k = Math.floor((at - (sorted[0] ?? 0)) / windowMs);
    perWindow[k] = (perWindow[k] ?? 0) + 1;
  }
  perWindow.pop(); // the last window is partial
  const requests429 = server.byStatus['429'] ?? 0;
  const lost = runs - ok;
  // Duplicated: a run whose result reached the producer twice, or jobs the queue completed beyond the runs.
  const duplicated =
    [...settled.values()].filter((n) => n > 1).length + Math.max(0, queueCounts.completed - runs);
  const askedTwice = [...perNode.values()].filter((n) => n > 1).length;
  return {
    runs,
    workers,
    windowMs,
    wallMs,
    accepted: acceptedAt.length,
    ofLimit,
    wholeRunOfLimit,
    perWindow: Array.from(perWindow, (n: number | undefined) => n ?? 0), // a window with none is a hole
    busiestWindow: busiest(acceptedAt, windowMs),
    requests429,
    after429: requests429 - (firstWindow429 ?? requests429),
    lost,
    duplicated,
    askedTwice,
    killed,
  };
}

interface Overhead {
  readonly runs: number;
  readonly inProcessMsPerRun: number;
  readonly distributedMsPerRun: number;
}

async function overhead(redisUrl: string): Promise<Overhead> {
  const runs = Number(args['overhead-runs']);
  const model = 'sim:bench';
  const local = diamond(model);
  const inputs = Array.from({ length: runs }, (_, i) => ({ id: `o-${i}` }));
  await local.runAll(inputs.slice(0, 200), { highWater: 16 }); // warm-up
  const t0 = performance.now();
  const results = await local.runAll(inputs, { highWater: 16 });
  const inProcessMs = performance.now() - t0;
  if (results.some((r) => r.status !== 'fulfilled')) throw new Error('an in-process run failed');

  const child = await spawnWorkerProcess({ redis: redisUrl, queue: QUEUE_OVERHEAD, model, concurrency: 16 });
  const producer = new DistributedPerform({
    connection: redisUrl,
    queue: QUEUE_OVERHEAD,
    chains: { diamond: local },
    maxPending: 64,
  });
  try {
    const warm = await Promise.all(
      inputs.slice(0, 200).map((input) => producer.submit('diamond', input, { runId: `warm-${input.id}` })),
    );
    await Promise.all(warm.map((r) => r.result()));
    const t1 = performance.now();
    const pending: Promise<unknown>[] = [];
    for (const input of inputs) {
      const run = await producer.submit('diamond', input, { runId: input.id });
      pending.push(run.result());
    }
    await Promise.all(pending);
    const distributedMs = performance.now() - t1;
    return { runs, inProcessMsPerRun: inProcessMs / runs, distributedMsPerRun: distributedMs / runs };
  } finally {
    await producer.close();
    await stop([child]);
  }
}

async function parent(): Promise<void> {
  if (findBinary('redis-server', ['/usr/bin', '/usr/local/bin']) === undefined) {
    console.log(
      '\nsymphonizer distributed bench: SKIPPED (redis-server not found: apt-get install -y redis-server)',
    );
    return;
  }
  const { startRedisServer } = await import('../test/support/redis-server.ts');
  const redis = await startRedisServer();
  try {
    log(`distributed bench: ${args.workers} workers, ${args.runs} runs, time scale ×${args['time-scale']}…`);
    const t = await throughput(redis.url);
    log('distributed bench: overhead…');
    const o = await overhead(redis.url);
    const checks = [
      {
        name: `≥ ${TARGET_OF_LIMIT * 100} % of the limit`,
        pass: t.ofLimit >= TARGET_OF_LIMIT,
        measured: `${(t.ofLimit * 100).toFixed(1)} %`,
      },
      { name: `no window over ${LIMIT}`, pass: t.busiestWindow <= LIMIT, measured: String(t.busiestWindow) },
      { name: '0 429s after the first window', pass: t.after429 === 0, measured: String(t.after429) },
      { name: '0 lost runs', pass: t.lost === 0, measured: String(t.lost) },
      { name: '0 duplicated runs', pass: t.duplicated === 0, measured: String(t.duplicated) },
    ];
    if (args.json) {
      console.log(JSON.stringify({ throughput: t, overhead: o, checks }));
      return;
    }
    const out: string[] = [];
    out.push('');
    out.push(
      `symphonizer distributed bench — Node ${process.versions.node}, ${process.platform}, ` +
        `TIME SCALE ×${args['time-scale']}: window ${t.windowMs} ms, limit ${LIMIT} requests per window`,
    );
    out.push(
      `Workload: ${t.runs} runs of a 4-call diamond, ${t.workers} worker processes × concurrency ${args.concurrency}, ` +
        `one shared RedisRateLimiterRegistry (headroom 5 %), fake server ${args['latency-ms']} ms latency, sliding window enforced with 429s; ` +
        (t.killed ? 'one worker SIGKILLed after a third of the runs.' : 'no SIGKILL.'),
    );
    out.push('');
    out.push('| Measure | Value | Target | Result |');
    out.push('|---|---|---|---|');
    out.push(
      `| requests accepted per window, of the limit (steady state: middle 80 % of acceptances) | ${checks[0]?.measured} | ≥ 93 % | ${checks[0]?.pass ? 'PASS' : 'MISS'} |`,
    );
    out.push(
      `| the same over the whole run (ramp-up and tail included) | ${(t.wholeRunOfLimit * 100).toFixed(1)} % | – | |`,
    );
    out.push(`| accepted per window, window by window | ${t.perWindow.join(' ')} | – | |`);
    out.push(
      `| most requests the server accepted in any window | ${t.busiestWindow} / ${LIMIT} | ≤ ${LIMIT} | ${checks[1]?.pass ? 'PASS' : 'MISS'} |`,
    );
    out.push(
      `| 429s after the first window (all 429s) | ${t.after429} (${t.requests429}) | 0 | ${checks[2]?.pass ? 'PASS' : 'MISS'} |`,
    );
    out.push(`| lost runs | ${t.lost} | 0 | ${checks[3]?.pass ? 'PASS' : 'MISS'} |`);
    out.push(`| duplicated runs | ${t.duplicated} | 0 | ${checks[4]?.pass ? 'PASS' : 'MISS'} |`);
    out.push(`| nodes asked twice (in flight on the killed worker) | ${t.askedTwice} | – | |`);
    out.push(`| wall time, ${t.accepted} requests | ${(t.wallMs / 1000).toFixed(1)} s | – | |`);
    out.push(
      `| per-run wall time, ${o.runs} runs, zero-latency model: in process / distributed (overhead) | ` +
        `${o.inProcessMsPerRun.toFixed(3)} ms / ${o.distributedMsPerRun.toFixed(3)} ms ` +
        `(+${(o.distributedMsPerRun - o.inProcessMsPerRun).toFixed(3)} ms) | – | |`,
    );
    const missed = checks.filter((c) => !c.pass);
    out.push('');
    out.push(
      `Targets: ${checks.length - missed.length}/${checks.length} PASS` +
        (missed.length > 0 ? `; MISS: ${missed.map((c) => `${c.name} (${c.measured})`).join('; ')}` : ''),
    );
    console.log(out.join('\n'));
  } finally {
    await redis.close();
  }
}

if (args.worker !== undefined) await workerMain(JSON.parse(args.worker) as WorkerConfig);
else await parent();
