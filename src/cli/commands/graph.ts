/**
 * `symphonizer graph <chain module>`: print a chain's graph as Mermaid or Graphviz DOT.
 */
import { parseCommandArgs } from '../args.ts';
import { CliError } from '../errors.ts';
import { graphHelp } from '../help.ts';
import { loadChain } from '../load-chain.ts';
import type { CliIO } from '../output.ts';

const formats = ['mermaid', 'dot'] as const;

/** Runs `symphonizer graph`; returns the exit code (0 ok, 2 a usage error). */
export async function graphCommand(args: readonly string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('graph', {
    args: [...args],
    allowPositionals: true,
    strict: true,
    options: {
      format: { type: 'string', default: 'mermaid' },
      export: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    io.stdout.write(graphHelp);
    return 0;
  }
  const format = values.format;
  if (!formats.some((f) => f === format)) {
    throw new CliError('invalid_argument', `--format must be mermaid or dot, got ${JSON.stringify(format)}.`);
  }
  const [specifier, ...extra] = positionals;
  if (specifier === undefined) {
    throw new CliError('invalid_argument', 'symphonizer graph needs a chain module.', {
      hint: 'symphonizer graph <chain module> [--format mermaid|dot]',
    });
  }
  if (extra.length > 0)
    throw new CliError(
      'invalid_argument',
      `Unexpected argument${extra.length > 1 ? 's' : ''}: ${extra.join(' ')}`,
    );
  const { chain } = await loadChain(specifier, io.cwd, values.export);
  io.stdout.write(`${format === 'dot' ? chain.toDot() : chain.toMermaid()}\n`);
  return 0;
}
