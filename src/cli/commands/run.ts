/**
 * `symphonizer run <chain module>`: load a chain, validate the input, run it, print outputs, trace, usage and
 * cost (or one JSON object with `--json`).
 */
import { SymphonizerError } from '../../core/errors.ts';
import { redactSecrets } from '../../providers/redact.ts';
import type { UsageTotals } from '../../providers/usage.ts';
import { defaultModelClient } from '../../chain/chain.ts';
import { formatTrace } from '../../chain/graph-text.ts';
import type { ChainEvent, ChainResult, NodeOverride } from '../../chain/types.ts';
import type { NodeRecord } from '../../core/composition.ts';
import { parseCommandArgs } from '../args.ts';
import { CliError } from '../errors.ts';
import { runHelp } from '../help.ts';
import { readInput } from '../input.ts';
import { loadChain } from '../load-chain.ts';
import { clientOf, preflight } from '../preflight.ts';
import {
  createProgress,
  describeError,
  formatDuration,
  formatUsage,
  formatValue,
  inputIssueLines,
  printError,
  type CliIO,
} from '../output.ts';

const modelId = /^[A-Za-z0-9_.-]+:\S+$/;

/** Runs `symphonizer run`; returns the exit code (0 ok, 1 the chain failed, 2 a usage error). */
export async function runCommand(args: readonly string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('run', {
    args: [...args],
    allowPositionals: true,
    strict: true,
    options: {
      input: { type: 'string' },
      export: { type: 'string' },
      model: { type: 'string' },
      stream: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    io.stdout.write(runHelp);
    return 0;
  }
  const [specifier, ...extra] = positionals;
  if (specifier === undefined) {
    throw new CliError('invalid_argument', 'symphonizer run needs a chain module.', {
      hint: 'symphonizer run <chain module> [--input <json>]',
    });
  }
  if (extra.length > 0) {
    throw new CliError(
      'invalid_argument',
      `Unexpected argument${extra.length > 1 ? 's' : ''}: ${extra.join(' ')}`,
      {
        hint: 'give one chain module; pass the input with --input',
      },
    );
  }
  if (values.model !== undefined && !modelId.test(values.model)) {
    throw new CliError(
      'invalid_argument',
      `--model must be provider:model, got ${JSON.stringify(values.model)}.`,
      {
        hint: 'e.g. --model openai:gpt-4.1-mini, --model anthropic:claude-sonnet-4-5 or --model sim:demo',
      },
    );
  }
  if (values.json && values.stream) {
    throw new CliError('invalid_argument', '--json and --stream cannot be combined.', {
      hint: '--json prints one object at the end; --stream prints tokens as they come',
    });
  }

  // Parse the input before importing the module: a typo in the JSON should not wait for a slow import.
  const input = await readInput(values.input, io.cwd);
  const loaded = await loadChain(specifier, io.cwd, values.export);
  const chain = loaded.chain;

  const overrides: Record<string, NodeOverride> = {};
  if (values.model !== undefined) for (const node of chain.nodes) overrides[node] = { model: values.model };

  // The chain runs on its own client (and its registry, custom providers included), else on the shared
  // default one: every model the run will call is checked against that registry before the first node starts.
  const own = clientOf(loaded.raw);
  preflight({
    chain: loaded.raw,
    runs: [{ model: values.model }],
    registry: (own ?? defaultModelClient()).registry,
    env: io.env,
    envKeys: own === undefined,
  });

  const live = !values.json && !values.stream && io.stdout.isTTY === true;
  const progress = values.json ? undefined : createProgress(io.stdout, { stream: values.stream, live });
  const models = new Set<string>();
  const onEvent = (event: ChainEvent): void => {
    if (event.type === 'node-start') models.add(event.model);
    progress?.onEvent(event);
  };

  let result: ChainResult<Record<string, unknown>>;
  try {
    result = await chain.run(input, { onEvent, overrides, streamTokens: values.stream, signal: io.signal });
  } catch (error) {
    progress?.finish();
    if (isRunFailure(error)) return reportFailure(error, values.json, io, chain.name);
    if (values.input === undefined && SymphonizerError.isInstance(error) && error.code === 'invalid_input') {
      throw new CliError(
        'missing_input',
        `No --input was given, and chain "${chain.name}" does not accept {}.`,
        {
          cause: error,
          details: inputIssueLines(error),
          hint: `pass the input as JSON: symphonizer run ${specifier} --input '{...}' (or --input @file.json)`,
        },
      );
    }
    throw error;
  } finally {
    progress?.finish();
  }

  const simulated = result.simulated || [...models].some((m) => m.startsWith('sim:'));
  const order = [
    ...chain.nodes.filter((n) => n in result.outputs),
    ...Object.keys(result.outputs).filter((n) => !chain.nodes.includes(n)),
  ];
  if (values.json) {
    const outputs = Object.fromEntries(order.map((n) => [n, result.outputs[n]]));
    io.stdout.write(
      `${JSON.stringify({
        chain: chain.name,
        status: 'completed',
        runId: result.runId,
        outputs,
        usage: result.usage,
        usageByNode: result.usageByNode,
        simulated,
        elapsedMs: result.elapsedMs,
        trace: result.trace,
      })}\n`,
    );
    return 0;
  }

  const out = io.stdout;
  out.write(`\nchain "${chain.name}" completed in ${formatDuration(result.elapsedMs)}\n`);
  for (const node of order) {
    if (progress?.streamed.has(node) === true) {
      out.write(`\n── ${node} (streamed above)\n`);
      continue;
    }
    out.write(`\n── ${node}\n${formatValue(result.outputs[node])}\n`);
  }
  out.write('\ntrace:\n');
  for (const line of formatTrace(result.trace)) out.write(`  ${redactSecrets(line)}\n`);
  out.write(`\n${formatUsage(result.usage)}\n`);
  if (simulated) {
    out.write(
      'note: answered by the simulated model (offline placeholders, not a real LLM). ' +
        'Use --model openai:gpt-4.1-mini or anthropic:claude-sonnet-4-5 (with its API key set) for real answers.\n',
    );
  }
  return 0;
}

/** What a ChainRunError (from any copy of symphonizer) carries. */
interface RunFailure extends SymphonizerError {
  readonly node?: string | undefined;
  readonly status?: string;
  readonly outputs?: Readonly<Record<string, unknown>>;
  readonly trace?: readonly NodeRecord[];
  readonly usage?: UsageTotals;
}

function isRunFailure(error: unknown): error is RunFailure {
  return (
    SymphonizerError.isInstance(error) && (error.code === 'chain_failed' || error.code === 'chain_cancelled')
  );
}

function reportFailure(error: RunFailure, json: boolean, io: CliIO, chainName: string): number {
  const trace = Array.isArray(error.trace) ? error.trace : [];
  const cause: unknown = error.cause;
  if (json) {
    const { code, message, hint } = describeError(error);
    io.stdout.write(
      `${JSON.stringify({
        chain: chainName,
        status: error.status ?? 'error',
        error: {
          code,
          message,
          hint,
          node: error.node,
          cause: SymphonizerError.isInstance(cause) ? { code: cause.code, name: cause.name } : undefined,
        },
        outputs: error.outputs ?? {},
        usage: error.usage,
        trace,
      })}\n`,
    );
  }
  printError(io.stderr, error);
  if (error.node !== undefined) io.stderr.write(`failed node: ${error.node}\n`);
  if (SymphonizerError.isInstance(cause)) io.stderr.write(`cause: ${cause.name} [${cause.code}]\n`);
  const done = Object.keys(error.outputs ?? {});
  if (done.length > 0) io.stderr.write(`completed before the failure: ${done.join(', ')}\n`);
  if (trace.length > 0) {
    io.stderr.write('trace:\n');
    for (const line of formatTrace(trace)) io.stderr.write(`  ${redactSecrets(line)}\n`);
  }
  if (error.usage !== undefined) io.stderr.write(`${formatUsage(error.usage)}\n`);
  return 1;
}
