/**
 * Provider bench: can ModelClient's rate limiter keep a Perform of single-call compositions at the provider's
 * limit (requests per minute, and tokens per minute on both wire formats), without 429s and without losing
 * calls? See bench/README.md.
 *
 *   node bench/providers.bench.ts                    RPM, then TPM on OpenAI and Anthropic (time scale 1: slow)
 *   node bench/providers.bench.ts --time-scale 10    same workloads, 6 s windows: ~20 s RPM + ~70 s per TPM run
 *   node bench/providers.bench.ts --only tpm         just the TPM runs (`rpm`, `tpm`, or both: `rpm,tpm`)
 *   node bench/providers.bench.ts --json             results as JSON on stdout (progress on stderr)
 *   --calls N  --rpm N  --tpm N  --tpm-calls N  --api openai|anthropic|both  --latency-ms N
 *   --high-water N --low-water N  --server-window fixed|sliding
 *
 * TPM workload: `--tpm-calls` compositions whose prompts and replies have seeded sizes (`maxTokens: 400`);
 * the fake server allows `--tpm` tokens per window, counting each accepted request's input at acceptance plus
 * its output once generated, and no request limit; its tokenizer counts `--chars-per-token` (default 2.5)
 * characters per token, so the client's estimate (prompt chars / 4 + maxTokens) under-counts the input and
 * over-counts the output; `--tpm-latency-ms` (default 400) keeps many requests in flight with their estimates
 * not yet reconciled. The client's limiter has `tokensPerMinute: tpm` and nothing else.
 *
 * Workload: `--calls` one-node compositions, each node's runner `client.runner({ model: 'openai:…', prompt })`
 * with `maxTries: client.maxTries`, all submitted at once to one Perform (100/50). The ModelClient uses the
 * real OpenAI SDK provider (createOpenAIProvider, baseURL = the fake server, a fake key) and
 * `limits: { openai: { requestsPerMinute: rpm, windowMs } }`. The loopback fake server (same process)
 * answers after `--latency-ms` and enforces `rpm` requests per window with real 429s (Retry-After, rate-limit
 * headers). Time scale N shrinks the window to 60 000 / N ms on both sides; the limit stays `rpm` per window.
 *
 * Measured: throughput as a share of the limit (steady state = the middle 80 % of the server's acceptances;
 * overall = completed calls over the whole wall time), 429s and the server windows they fell in, retries,
 * lost calls (compositions not completed), per-call latency (composition start → end: limiter waits, HTTP,
 * retries; not the time queued in the Perform), wall time.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { fmt } from './util.ts';
import {
  runProvidersWorkload,
  summarise,
  type ProvidersRun,
  type ProvidersSummary,
  type ProvidersWorkload,
} from './providers-workload.ts';

const TARGET_OF_LIMIT = 0.9;
/** TPM: at most this many 429s per 10 server windows after the first. */
const TARGET_429_PER_10_WINDOWS = 1;

const { values: args } = parseArgs({
  options: {
    calls: { type: 'string', default: '2000' },
    rpm: { type: 'string', default: '600' },
    tpm: { type: 'string', default: '40000' },
    'tpm-calls': { type: 'string', default: '900' },
    api: { type: 'string', default: 'both' },
    'chars-per-token': { type: 'string', default: '2.5' },
    'tpm-latency-ms': { type: 'string', default: '400' },
    only: { type: 'string', default: 'rpm,tpm' },
    'latency-ms': { type: 'string', default: '20' },
    'time-scale': { type: 'string', default: '1' },
    'high-water': { type: 'string', default: '100' },
    'low-water': { type: 'string', default: '50' },
    'server-window': { type: 'string', default: 'fixed' },
    model: { type: 'string', default: 'gpt-4.1-mini' },
    json: { type: 'boolean', default: false },
  },
});

function num(name: keyof typeof args, min: number, integer = true): number {
  const raw = args[name];
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
    throw new Error(`--${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got ${String(raw)}`);
  }
  return value;
}

const serverWindow = args['server-window'];
if (serverWindow !== 'fixed' && serverWindow !== 'sliding') {
  throw new Error(`--server-window must be fixed or sliding, got ${serverWindow}`);
}
const base: ProvidersWorkload = {
  calls: num('calls', 1),
  rpm: num('rpm', 1),
  latencyMs: num('latency-ms', 0),
  timeScale: num('time-scale', Number.MIN_VALUE, false),
  highWater: num('high-water', 1),
  lowWater: num('low-water', 1),
  serverWindow,
  model: args.model,
};
const only = new Set(args.only.split(',').map((s) => s.trim()));
for (const name of only) {
  if (name !== 'rpm' && name !== 'tpm') throw new Error(`--only takes rpm, tpm or rpm,tpm; got ${args.only}`);
}
const apis = args.api === 'both' ? (['openai', 'anthropic'] as const) : ([args.api] as const);
for (const api of apis) {
  if (api !== 'openai' && api !== 'anthropic') {
    throw new Error(`--api must be openai, anthropic or both, got ${args.api}`);
  }
}
const workloads: ProvidersWorkload[] = [];
if (only.has('rpm')) workloads.push(base);
if (only.has('tpm')) {
  for (const api of apis as readonly ('openai' | 'anthropic')[]) {
    workloads.push({
      ...base,
      calls: num('tpm-calls', 1),
      tpm: num('tpm', 1),
      charsPerToken: num('chars-per-token', 0.5, false),
      latencyMs: num('tpm-latency-ms', 0),
      api,
      model: api === 'anthropic' ? 'claude-haiku-4-5' : args.model,
    });
  }
}

interface Check {
  readonly name: string;
  readonly pass: boolean;
  readonly measured: string;
}

const pct = (fraction: number): string => `${fmt(fraction * 100, 1)}%`;
const seconds = (ms: number): string => `${fmt(ms / 1000, ms >= 10_000 ? 1 : 2)} s`;

function checksOf(w: ProvidersWorkload, s: ProvidersSummary): Check[] {
  if (w.tpm !== undefined) {
    return [
      {
        name: `steady-state token throughput ≥ ${TARGET_OF_LIMIT * 100}% of the limit`,
        pass: s.steadyOfLimit >= TARGET_OF_LIMIT,
        measured: pct(s.steadyOfLimit),
      },
      { name: 'lost calls = 0', pass: s.lost === 0, measured: String(s.lost) },
      {
        name: `429s after the first window ≤ ${TARGET_429_PER_10_WINDOWS} per 10 windows`,
        pass: s.per10Windows429AfterFirst <= TARGET_429_PER_10_WINDOWS,
        measured:
          s.requests429 === 0
            ? '0'
            : `${fmt(s.per10Windows429AfterFirst, 2)} per 10 (${s.requests429} in window(s) ${s.windowsWith429.join(', ')})`,
      },
    ];
  }
  return [
    {
      name: `steady-state throughput ≥ ${TARGET_OF_LIMIT * 100}% of the limit`,
      pass: s.steadyOfLimit >= TARGET_OF_LIMIT,
      measured: pct(s.steadyOfLimit),
    },
    { name: 'lost calls = 0', pass: s.lost === 0, measured: String(s.lost) },
    {
      name: '429s: none, or only in the first window',
      pass: s.windowsWith429.every((w) => w === 1),
      measured:
        s.requests429 === 0 ? '0' : `${s.requests429} in window(s) ${s.windowsWith429.join(', ') || '?'}`,
    },
  ];
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (c: readonly string[]): string => `| ${c.map((s, i) => s.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)];
}

function render(run: ProvidersRun, s: ProvidersSummary, checks: readonly Check[], meta: Meta): string {
  const w = run.workload;
  const out: string[] = [];
  const api = w.api ?? 'openai';
  const sdk = api === 'openai' ? 'OpenAI' : 'Anthropic';
  const tpm = w.tpm;
  out.push(
    `symphonizer providers bench, ${tpm === undefined ? 'RPM' : `TPM (${sdk})`} — Node ${meta.node}, ` +
      `${meta.platform}, ${meta.cpus} CPUs`,
  );
  if (tpm === undefined) {
    out.push(
      `TIME SCALE ×${w.timeScale}: window = ${fmt(run.windowMs, 0)} ms (limit ${w.rpm} requests per window = ` +
        `${fmt((w.rpm / run.windowMs) * 1000, 1)} req/s; real-time equivalent: ${w.rpm} rpm). ` +
        `At the limit ${w.calls} calls take ≥ ${seconds((w.calls / w.rpm) * run.windowMs)}.`,
    );
  } else {
    out.push(
      `TIME SCALE ×${w.timeScale}: window = ${fmt(run.windowMs, 0)} ms (limit ${tpm} tokens per window, ` +
        `input + output as the server counts them; real-time equivalent: ${tpm} tokens per minute).`,
    );
  }
  out.push(
    `Workload: ${w.calls} one-node compositions (client.runner, maxTries = client.maxTries) through ` +
      `Perform ${w.highWater}/${w.lowWater}; ${sdk} SDK provider → loopback fake server, ${w.latencyMs} ms ` +
      `latency, ${w.serverWindow} ${fmt(run.windowMs, 0)} ms window enforced with 429s; ModelClient limits: ` +
      (tpm === undefined
        ? `${w.rpm} requests per ${fmt(run.windowMs, 0)} ms.`
        : `${tpm} tokens per ${fmt(run.windowMs, 0)} ms (no request limit); seeded prompt and reply sizes, ` +
          `maxTokens 400; the server counts ${w.charsPerToken ?? 4} characters per token, the client's ` +
          `estimate 4.`),
  );
  out.push('');
  const rows: [string, string, string, string][] = [
    [
      tpm === undefined ? 'throughput, steady state' : 'token throughput, steady state',
      `${pct(s.steadyOfLimit)} of limit`,
      'middle 80% of server acceptances',
      checks[0]!.pass ? 'PASS' : 'MISS',
    ],
    ...(tpm === undefined
      ? []
      : [
          [
            'busiest server window',
            `${pct(s.peakWindowOfLimit)} of limit`,
            'tokens the server counted in its fullest window',
            '',
          ] as [string, string, string, string],
        ]),
    ['throughput, overall', `${pct(s.overallOfLimit)} of limit`, 'completed calls / wall time', ''],
    [
      'throughput, full windows',
      Number.isNaN(s.fullWindowsOfLimit) ? '–' : `${pct(s.fullWindowsOfLimit)} of limit`,
      'mean accepted per fully covered server window',
      '',
    ],
    [
      '429s',
      checks[2]!.measured,
      `server saw ${run.server.byStatus['429'] ?? 0}`,
      checks[2]!.pass ? 'PASS' : 'MISS',
    ],
    [
      'retries',
      String(s.retries),
      Object.entries(run.retryReasons)
        .map(([k, v]) => `${v}× ${k}`)
        .join('; ') || '–',
      '',
    ],
    [
      'lost calls',
      String(s.lost),
      `completed ${run.completed}, failed ${run.failed}, cancelled ${run.cancelled}`,
      checks[1]!.pass ? 'PASS' : 'MISS',
    ],
    [
      'call latency p50 / p95 / max',
      `${seconds(s.callP50Ms)} / ${seconds(s.callP95Ms)} / ${seconds(s.callMaxMs)}`,
      'composition start → end (limiter wait + HTTP + retries)',
      '',
    ],
    [
      'HTTP p50 / p95',
      `${fmt(s.httpP50Ms, 1)} / ${fmt(s.httpP95Ms, 1)} ms`,
      `per request, ${run.exchanges.length} requests`,
      '',
    ],
    [
      'limiter',
      `mean wait ${seconds(s.meanLimiterWaitMs)}`,
      `waits announced: ${
        Object.entries(run.waits)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ') || 'none'
      }; longest hold ${fmt(run.longestHoldMs, 0)} ms`,
      '',
    ],
    [
      'wall time',
      seconds(s.wallMs),
      `peak running ${run.peakRunning}; server peak concurrency ${run.server.peakConcurrency}, peak per sliding window ${run.server.peakRequestsPerWindow}`,
      '',
    ],
  ];
  out.push(...table(['Metric', 'Value', 'Notes', 'Result'], rows));
  out.push('');
  out.push(
    `Server windows (${w.serverWindow === 'fixed' ? 'the server’s fixed, epoch-aligned windows' : 'run-relative chunks'}; window 1 holds the first request):`,
  );
  out.push(
    ...table(
      ['Window', 'Starts at', 'In run', 'Accepted', 'Tokens', '429s', 'Of limit'],
      s.windows.map((row) => [
        String(row.index),
        seconds(row.startMs),
        pct(row.coverage),
        String(row.accepted),
        String(row.tokens),
        String(row.rejected429),
        pct(row.ofLimit),
      ]),
    ),
  );
  const failures = Object.entries(run.failures);
  if (failures.length > 0) {
    out.push('', 'Failures:', ...failures.slice(0, 5).map(([k, v]) => `  ${v}× ${k}`));
  }
  out.push('');
  const missed = checks.filter((c) => !c.pass);
  out.push(
    `Targets: ${checks.length - missed.length}/${checks.length} PASS` +
      (missed.length > 0 ? `; MISS: ${missed.map((c) => `${c.name} (${c.measured})`).join('; ')}` : ''),
  );
  return out.join('\n');
}

interface Meta {
  readonly node: string;
  readonly platform: string;
  readonly cpus: number;
  readonly cpuModel: string;
}

const meta: Meta = {
  node: process.version,
  platform: `${process.platform} ${os.release()} ${process.arch}`,
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model ?? 'unknown',
};

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};
const results: unknown[] = [];
for (const workload of workloads) {
  log(
    `providers bench: ${workload.calls} calls, ` +
      (workload.tpm === undefined ? `${workload.rpm} requests` : `${workload.tpm} tokens (${workload.api})`) +
      ` per ${fmt(60_000 / workload.timeScale, 0)} ms window (time scale ×${workload.timeScale}), ` +
      `${workload.latencyMs} ms latency …`,
  );
  const run = await runProvidersWorkload(workload, log);
  const summary = summarise(run);
  const checks = checksOf(workload, summary);
  if (args.json) {
    const {
      exchanges: _exchanges,
      acceptedAt: _acceptedAt,
      acceptedTokens: _tokens,
      callMs: _callMs,
      ...rest
    } = run;
    results.push({ workload, summary, checks, run: rest });
  } else {
    console.log(render(run, summary, checks, meta));
    console.log('');
  }
}
if (args.json) process.stdout.write(JSON.stringify({ meta, results }, null, 2) + '\n');
