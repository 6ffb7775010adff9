/**
 * Argument parsing shared by every command: `node:util`'s `parseArgs`, whose errors become a
 * {@link CliError} (exit code 2) that names the command and, for a misspelt option, the nearest known one.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CliError } from './errors.ts';
import { closest } from './suggest.ts';

/** What `parseArgs` returns for `config`. */
export type ParsedArgs<T extends ParseArgsConfig> = ReturnType<typeof parseArgs<T>>;

/**
 * Parses the arguments of `symphonizer <command>` with `parseArgs(config)`.
 *
 * @example
 * ```ts
 * const { values } = parseCommandArgs('run', { args, options: { input: { type: 'string' } }, strict: true });
 * // `symphonizer run --inptu x` throws: Unknown option '--inptu': did you mean --input?
 * ```
 * @throws {CliError} `invalid_argument` for an unknown option (with the nearest known option when one is
 *   close), a missing option value or an unexpected positional argument.
 */
export function parseCommandArgs<T extends ParseArgsConfig>(command: string, config: T): ParsedArgs<T> {
  try {
    return parseArgs(config);
  } catch (error) {
    throw argumentError(command, config, error);
  }
}

/** The {@link CliError} for an error of `parseArgs`; any other error unchanged. */
function argumentError(command: string, config: ParseArgsConfig, error: unknown): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (!(error instanceof Error) || typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS_')) {
    return error;
  }
  const help = `symphonizer ${command} --help`;
  const unknown =
    code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /'(-[^']*)'/.exec(error.message)?.[1] : undefined;
  if (unknown === undefined)
    return new CliError('invalid_argument', error.message, { hint: help, cause: error });
  const names = Object.keys(config.options ?? {});
  const options = names.map((n) => `--${n}`);
  // `--inptu=x` is reported as `--inptu`; a short option `-x` is compared with the short ones.
  const long = unknown.startsWith('--');
  const shorts = Object.values(config.options ?? {}).flatMap((o) =>
    o.short === undefined ? [] : [`-${o.short}`],
  );
  const nearest = long ? closest(unknown.slice(2), names) : shorts.find((s) => s === unknown.toLowerCase());
  const suggestion = nearest === undefined ? '' : `: did you mean ${long ? `--${nearest}` : nearest}?`;
  return new CliError(
    'invalid_argument',
    `Unknown option '${unknown}' for symphonizer ${command}${suggestion}`,
    {
      hint: `options: ${options.join(', ')}; see ${help}`,
      cause: error,
    },
  );
}
