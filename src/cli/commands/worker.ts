/**
 * `symphonizer worker --chains <module> --redis <url>`: a worker process of `symphonizer/distributed`. It
 * loads the chains module, takes chain runs off a BullMQ queue and runs them, sharing rate limits through
 * Redis when `--limits` is given; SIGTERM or SIGINT drain it (no new job, the runs in flight finish), then it
 * exits 0. The distributed layer (and BullMQ) is loaded only by this command.
 */
import type { Chains } from '../../distributed/worker.ts';
import type { RateLimits } from '../../providers/rate-limiter.ts';
import { parseCommandArgs } from '../args.ts';
import { CliError } from '../errors.ts';
import { workerHelp } from '../help.ts';
import { readInput } from '../input.ts';
import { describeExport, importModule, isChain } from '../load-chain.ts';
import type { CliIO } from '../output.ts';

/**
 * The chains of a module: its `chains` export when that is a record of chains, else every named export that
 * is a chain, by export name.
 * @throws {CliError} `no_chain` when it has none, or a chain that cannot be hashed (another copy's).
 */
export function chainsOf(exports: Readonly<Record<string, unknown>>, path: string): Chains {
  const record = exports.chains;
  const found: Record<string, unknown> = {};
  if (typeof record === 'object' && record !== null && !isChain(record)) {
    for (const [name, value] of Object.entries(record)) {
      if (!isChain(value)) {
        throw new CliError(
          'no_chain',
          `chains.${name} of ${path} is not a chain (it is ${describeExport(value)}).`,
          {
            hint: 'export const chains = { name: chain(...).build(), ... }',
          },
        );
      }
      found[name] = value;
    }
  } else {
    for (const [name, value] of Object.entries(exports)) {
      if (name !== 'default' && isChain(value)) found[name] = value;
    }
  }
  const names = Object.keys(found);
  if (names.length === 0) {
    throw new CliError('no_chain', `${path} exports no chain.`, {
      hint: 'export a `chains` record ({ name: chain }) or chains as named exports',
    });
  }
  for (const name of names) {
    if (typeof (found[name] as { hash?: unknown }).hash !== 'string') {
      throw new CliError('no_chain', `Chain "${name}" of ${path} has no content hash.`, {
        hint: 'build it with the symphonizer this command belongs to (another copy may be older)',
      });
    }
  }
  return found as Chains;
}

function positiveInteger(option: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new CliError(
      'invalid_argument',
      `--${option} must be an integer >= 1, got ${JSON.stringify(value)}.`,
    );
  }
  return n;
}

/** The URL with its password (and user name) replaced, for messages. */
function redactedUrl(url: string): string {
  const parsed = URL.parse(url);
  if (parsed === null) return '(not a URL)';
  if (parsed.username !== '' || parsed.password !== '') {
    parsed.username = parsed.username === '' ? '' : '***';
    parsed.password = parsed.password === '' ? '' : '***';
  }
  return parsed.href;
}

/** Runs `symphonizer worker`; resolves with 0 once drained after SIGTERM / SIGINT (or `io.signal`). */
export async function workerCommand(args: readonly string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('worker', {
    args: [...args],
    allowPositionals: true,
    strict: true,
    options: {
      chains: { type: 'string' },
      redis: { type: 'string' },
      queue: { type: 'string' },
      concurrency: { type: 'string' },
      limits: { type: 'string' },
      prefix: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    io.stdout.write(workerHelp);
    return 0;
  }
  if (positionals.length > 0) {
    throw new CliError('invalid_argument', `Unexpected argument: ${positionals.join(' ')}`, {
      hint: 'symphonizer worker --chains <module> --redis <url>',
    });
  }
  if (values.chains === undefined || values.redis === undefined) {
    throw new CliError('invalid_argument', 'symphonizer worker needs --chains <module> and --redis <url>.', {
      hint: 'e.g. symphonizer worker --chains ./chains.ts --redis redis://127.0.0.1:6379',
    });
  }
  const url = values.redis;
  if (!/^rediss?:\/\//u.test(url)) {
    throw new CliError(
      'invalid_argument',
      `--redis must be a redis:// or rediss:// URL, got ${redactedUrl(url)}.`,
    );
  }
  const concurrency = positiveInteger('concurrency', values.concurrency, 16);
  const limits = values.limits === undefined ? undefined : await readInput(values.limits, io.cwd);
  if (limits !== undefined && (typeof limits !== 'object' || limits === null || Array.isArray(limits))) {
    throw new CliError(
      'invalid_argument',
      '--limits must be a JSON object of limits by provider or provider:model.',
      {
        hint: `e.g. --limits '{"openai": {"requestsPerMinute": 500, "tokensPerMinute": 200000}}'`,
      },
    );
  }
  const { exports, path } = await importModule(values.chains, io.cwd, 'Chains module');
  const chains = chainsOf(exports, path);
  const { startWorker } = await import('../../distributed/worker.ts');
  const { RedisRateLimiterRegistry } = await import('../../distributed/redis-rate-limiter.ts');
  const { describeConnection } = await import('../../distributed/peer.ts');
  const registry =
    limits === undefined
      ? undefined
      : new RedisRateLimiterRegistry(url, { limits: limits as Record<string, RateLimits> });
  const stop = new AbortController();
  const onSignal = (): void => {
    stop.abort();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  io.signal?.addEventListener('abort', onSignal, { once: true });
  let lastError: string | undefined;
  try {
    const worker = await startWorker({
      connection: url,
      queue: values.queue,
      prefix: values.prefix,
      chains,
      concurrency,
      limits: registry,
      signal: stop.signal,
      onError: (error) => {
        // Reconnection errors repeat: each distinct one is printed once in a row.
        if (error.message === lastError) return;
        lastError = error.message;
        io.stderr.write(`worker: ${error.message} (retrying)\n`);
      },
    }).catch((error: unknown) => {
      if (stop.signal.aborted) return undefined; // stopped before Redis answered: nothing to drain
      throw error;
    });
    if (worker === undefined) {
      io.stdout.write('symphonizer worker stopped before it was connected\n');
      return 0;
    }
    io.stdout.write(
      `symphonizer worker ready: queue ${values.queue ?? 'symphonizer'} on ${describeConnection(url)}, ` +
        `chains ${Object.keys(chains).join(', ')}, concurrency ${concurrency}${registry === undefined ? '' : ', shared limits'}\n`,
    );
    if (!stop.signal.aborted) {
      await new Promise<void>((resolve) => {
        stop.signal.addEventListener(
          'abort',
          () => {
            resolve();
          },
          { once: true },
        );
      });
    }
    io.stderr.write(`draining: ${worker.running} running…\n`);
    await worker.close();
    io.stdout.write(`symphonizer worker drained: ${worker.completed} completed, ${worker.failed} failed\n`);
    return 0;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    await registry?.close();
  }
}
