/**
 * `symphonizer runs`: the eval runs of a run store as a table (or one JSON object).
 */
import type { RunSummary } from '../../eval/store.ts';
import { parseCommandArgs } from '../args.ts';
import { CliError } from '../errors.ts';
import { formatTimestamp, openExistingStore, textTable } from '../eval-support.ts';
import { runsHelp } from '../help.ts';
import { formatCost, formatCount, type CliIO } from '../output.ts';

/** Runs `symphonizer runs`; returns the exit code (0 ok, 2 a usage error such as a missing store). */
export async function runsCommand(args: readonly string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('runs', {
    args: [...args],
    allowPositionals: true,
    strict: true,
    options: {
      store: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    io.stdout.write(runsHelp);
    return 0;
  }
  if (positionals.length > 0) {
    throw new CliError('invalid_argument', `Unexpected argument: ${positionals.join(' ')}`, {
      hint: 'symphonizer runs [--store <file or postgres:// URL>] [--json]',
    });
  }
  const store = await openExistingStore(values.store, io.cwd);
  // A URL is shown without its password.
  const path = store.location;
  let runs: RunSummary[];
  try {
    runs = await store.runs();
  } finally {
    await store.close();
  }
  if (values.json) {
    io.stdout.write(`${JSON.stringify({ store: path, runs })}\n`);
    return 0;
  }
  if (runs.length === 0) {
    io.stdout.write(`no runs in ${path}\n`);
    return 0;
  }
  const head = ['Run', 'Chain', 'Variants', 'Rows', 'Pass', 'Fail', 'Error', 'Tokens', 'Cost', 'Updated'];
  const rows = runs.map((r) => [
    r.name,
    r.chain,
    r.variants.join(', '),
    formatCount(r.counts.total),
    formatCount(r.counts.pass),
    formatCount(r.counts.fail),
    formatCount(r.counts.error),
    formatCount(r.tokens),
    formatCost(r.costUsd),
    formatTimestamp(r.updatedAt),
  ]);
  io.stdout.write(textTable(head, rows, new Set([3, 4, 5, 6, 7, 8])));
  io.stdout.write(`\n${runs.length} ${runs.length === 1 ? 'run' : 'runs'} in ${path}\n`);
  return 0;
}
