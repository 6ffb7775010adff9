#!/usr/bin/env node
/**
 * The `symphonizer` command: `run` a chain module, draw its `graph`, `eval` it over a dataset, list stored
 * `runs`, `compare` two of them. {@link main} is the testable entry;
 * run as a script, this module calls it with the process's arguments and sets `process.exitCode`.
 * @packageDocumentation
 */
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SymphonizerError } from '../core/errors.ts';
import { CliError } from './errors.ts';
import { compareHelp, evalHelp, graphHelp, mainHelp, runHelp, runsHelp, workerHelp } from './help.ts';
import { inputIssueLines, printError, scrubbed, type CliIO } from './output.ts';
import { closest } from './suggest.ts';

const commands: Readonly<
  Record<
    string,
    { readonly help: string; readonly run: (args: readonly string[], io: CliIO) => Promise<number> }
  >
> = {
  // Loaded on use: help and version stay fast, without the provider SDKs.
  run: { help: runHelp, run: async (args, io) => (await import('./commands/run.ts')).runCommand(args, io) },
  graph: {
    help: graphHelp,
    run: async (args, io) => (await import('./commands/graph.ts')).graphCommand(args, io),
  },
  eval: {
    help: evalHelp,
    run: async (args, io) => (await import('./commands/eval.ts')).evalCommand(args, io),
  },
  runs: {
    help: runsHelp,
    run: async (args, io) => (await import('./commands/runs.ts')).runsCommand(args, io),
  },
  compare: {
    help: compareHelp,
    run: async (args, io) => (await import('./commands/compare.ts')).compareCommand(args, io),
  },
  worker: {
    help: workerHelp,
    run: async (args, io) => (await import('./commands/worker.ts')).workerCommand(args, io),
  },
};

/** Error codes that are the user's to fix before anything runs: exit code 2. */
const usageCodes = new Set([
  'invalid_input',
  'invalid_chain',
  'invalid_model_id',
  'unknown_provider',
  'missing_api_key',
  'credentials_in_url',
  'invalid_option',
  // eval: a dataset file that cannot be read, a run resumed with another chain, a store that cannot be opened
  'dataset_error',
  'run_mismatch',
  'store_open',
]);

/**
 * Runs the command line `argv` (without `node` and the script) and returns the exit code: 0 ok, 1 the chain
 * failed (or an eval was stopped by its cost ceiling or interrupted), 2 a usage error (bad arguments, missing
 * module or dataset, no chain, bad JSON, invalid input, or, found before anything runs, a model of an
 * unknown provider, a provider without its API key, or a base URL with credentials in it). Never throws.
 *
 * @example
 * ```ts
 * process.exitCode = await main(['run', './chain.ts', '--input', '{"topic":"tides"}']);
 * ```
 */
export async function main(argv: readonly string[], io: Partial<CliIO> = {}): Promise<number> {
  const env = io.env ?? process.env;
  const full: CliIO = {
    stdout: scrubbed(io.stdout ?? process.stdout, env),
    stderr: scrubbed(io.stderr ?? process.stderr, env),
    env,
    cwd: io.cwd ?? process.cwd(),
    signal: io.signal,
  };
  const [first, ...rest] = argv;
  const command = first === undefined ? undefined : commands[first];
  try {
    if (first === undefined) {
      full.stderr.write(mainHelp);
      return 2;
    }
    if (first === '--help' || first === '-h') {
      full.stdout.write(mainHelp);
      return 0;
    }
    if (first === '--version' || first === '-v') {
      full.stdout.write(`${version()}\n`);
      return 0;
    }
    if (first === 'help') {
      const topic = rest[0] === undefined ? undefined : commands[rest[0]];
      if (rest[0] !== undefined && topic === undefined) throw unknownCommand(rest[0]);
      full.stdout.write(topic?.help ?? mainHelp);
      return 0;
    }
    if (command === undefined) throw unknownCommand(first);
    return await command.run(rest, full);
  } catch (error) {
    if (isParseArgsError(error)) {
      printError(
        full.stderr,
        new CliError('invalid_argument', error.message, {
          hint: command === undefined ? 'symphonizer --help' : `symphonizer ${first ?? ''} --help`,
        }),
      );
      return 2;
    }
    printError(
      full.stderr,
      error,
      SymphonizerError.isInstance(error) && error.code === 'invalid_input' ? inputIssueLines(error) : [],
    );
    return error instanceof CliError || (SymphonizerError.isInstance(error) && usageCodes.has(error.code))
      ? 2
      : 1;
  }
}

/** The package version, from package.json. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version?: unknown;
  };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

function unknownCommand(name: string): CliError {
  const names = [...Object.keys(commands), 'help'];
  const nearest = name.startsWith('-')
    ? closest(name.replace(/^-+/, ''), ['help', 'version'])
    : closest(name, names);
  const suggestion =
    nearest === undefined ? '.' : `: did you mean ${name.startsWith('-') ? `--${nearest}` : nearest}?`;
  return new CliError('invalid_argument', `Unknown command "${name}"${suggestion}`, {
    hint: `commands: ${names.join(', ')}; see symphonizer --help`,
  });
}

function isParseArgsError(error: unknown): error is Error {
  const code = (error as { code?: unknown } | null)?.code;
  return error instanceof Error && typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

function isEntry(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntry()) {
  const controller = new AbortController();
  // The first Ctrl+C cancels the run (in-flight requests included); a second one kills the process.
  process.once('SIGINT', () => {
    process.stderr.write('\ncancelling… (Ctrl+C again to quit now)\n');
    controller.abort();
  });
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
  process.exitCode = await main(process.argv.slice(2), { signal: controller.signal });
}
