/**
 * `symphonizer eval` (in process, on the offline simulated model): the counts of a resume agree with the
 * final line and the table, a re-run without `--variants` goes on with the stored variants (no silent
 * `default`), and an interrupted run's hint counts the ERROR rows the table lists.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import type { CliWritable } from '../../src/cli/output.ts';

const root = resolve(import.meta.dirname, '../..');
const chainModule = 'test/cli/fixtures/eval-chain.ts';
const dataset = 'test/cli/fixtures/eval-dataset.jsonl'; // 6 lines, one (r4) failing the input schema
const variantsModule = 'test/cli/fixtures/eval-variants.ts'; // alpha and beta

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
function storeFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'symphonizer-eval-counts-'));
  dirs.push(dir);
  return join(dir, 'runs.sqlite');
}

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function cli(
  args: readonly string[],
  onStderr?: (text: string) => void,
  signal?: AbortSignal,
): Promise<Outcome> {
  let stdout = '';
  let stderr = '';
  const out: CliWritable = { write: (t: string) => (stdout += t) };
  const err: CliWritable = {
    write: (t: string) => {
      stderr += t;
      onStderr?.(t);
    },
  };
  const code = await main(args, { stdout: out, stderr: err, env: { NO_COLOR: '1' }, cwd: root, signal });
  return { code, stdout, stderr };
}

interface EvalJson {
  done: number;
  skipped: number;
  summary: { variants: { variant: string; rows: number; error: number }[] };
}

const base = ['eval', chainModule, '--dataset', dataset];

describe('eval counts', { timeout: 60_000 }, () => {
  it('a re-run without --variants resumes the stored variants, and its counts agree', async () => {
    const store = storeFile();
    const first = await cli([...base, '--variants', variantsModule, '--store', store, '--json']);
    expect(first.code).toBe(0);
    const firstJson = JSON.parse(first.stdout) as EvalJson;
    expect(firstJson.done).toBe(12); // 6 rows × 2 variants, r4 an ERROR row in each

    const again = await cli([...base, '--store', store]);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('note: run "spam" goes on with its stored variants alpha, beta');
    expect(again.stderr).toContain('resuming run "spam": 12 rows already done over 2 variants\n');
    expect(again.stdout).toContain('· 0 rows run · 12 already done ·');
    expect(again.stdout).not.toMatch(/^default /m);
    expect(again.stdout).toMatch(/^alpha +6 /m);
    expect(again.stdout).toMatch(/^beta +6 /m);

    // --retry-errors: the ERROR rows are counted apart, as the final line counts them.
    const retried = await cli([...base, '--store', store, '--retry-errors', '--json']);
    expect(retried.stderr).toContain(
      'resuming run "spam": 10 rows already done over 2 variants, 2 ERROR rows will be retried\n',
    );
    const retriedJson = JSON.parse(retried.stdout) as EvalJson;
    expect([retriedJson.done, retriedJson.skipped]).toEqual([2, 10]);
    expect(retriedJson.summary.variants.map((v) => v.variant)).toEqual(['alpha', 'beta']);
  });

  it('keeps every variant the run was given, over several invocations, and refuses to guess overrides', async () => {
    const store = storeFile();
    expect((await cli([...base, '--variants', variantsModule, '--store', store])).code).toBe(0);
    expect((await cli([...base, '--model', 'sim:gamma', '--store', store])).code).toBe(0);
    const all = await cli([...base, '--store', store, '--json']);
    expect(all.stderr).toContain('goes on with its stored variants alpha, beta, sim:gamma');
    expect(all.stderr).toContain('resuming run "spam": 18 rows already done over 3 variants\n');
    const json = JSON.parse(all.stdout) as EvalJson;
    expect([json.done, json.skipped]).toEqual([0, 18]);

    // The eval example's variants override a node's template: not stored, so they must be given again.
    const example = ['eval', 'examples/eval-report.ts', '--dataset', 'examples/data/tickets.jsonl'];
    const other = storeFile();
    expect([0, 1]).toContain(
      (await cli([...example, '--variants', 'examples/eval-report.ts', '--store', other])).code,
    );
    const refused = await cli([...example, '--store', other]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/cannot be rebuilt from the store \(node overrides are not stored\)/);
    expect(refused.stderr).toContain('hint: add --variants <the module that exports them>');
  });

  it('--report writes the results matrix: every row and variant, with the models', async () => {
    const store = storeFile();
    const html = join(store, '..', 'report.html');
    const md = join(store, '..', 'report.md');
    expect(
      (await cli([...base, '--variants', variantsModule, '--store', store, '--report', html])).code,
    ).toBe(0);
    const data = /<script type="application\/json" id="m-data">([\s\S]*?)<\/script>/.exec(
      readFileSync(html, 'utf8'),
    );
    const matrix = JSON.parse(data?.[1] ?? 'null') as {
      variants: { name: string; models: string[]; simulated: boolean }[];
      rows: { rowId: string; cells: Record<string, { status: string }> }[];
    };
    expect(matrix.variants).toEqual([
      { name: 'alpha', models: ['sim:alpha'], simulated: true },
      { name: 'beta', models: ['sim:beta'], simulated: true },
    ]);
    expect(matrix.rows.map((r) => r.rowId)).toEqual(['r1', 'r2', 'r3', 'r4', 'r5', 'r6']);
    expect(matrix.rows[3]?.cells['alpha']?.status).toBe('error'); // r4 fails the input schema
    expect((await cli([...base, '--store', store, '--report', md])).code).toBe(0);
    const text = readFileSync(md, 'utf8');
    expect(text).toContain(
      '| Row | Line | Input | Expected | alpha (sim:alpha) · simulated | beta (sim:beta) · simulated |',
    );
    expect(text).toMatch(/\| r4 \| 4 \|.*ERROR \(invalid_row\): line 4: /);
  });

  it('a resume with one variant of a stored run counts only that variant', async () => {
    const store = storeFile();
    expect((await cli([...base, '--variants', variantsModule, '--store', store])).code).toBe(0);
    const one = await cli([...base, '--model', 'sim:alpha', '--store', store, '--run', 'spam']);
    // The variant "sim:alpha" is new to the run: nothing of it is done yet.
    expect(one.stderr).toContain('resuming run "spam": 0 rows already done\n');
    expect(one.stdout).toContain('· 6 rows run ·');
  });

  it("an interrupted run's hint counts every stored ERROR row, as the table lists them", async () => {
    const store = storeFile();
    expect((await cli([...base, '--variants', variantsModule, '--store', store])).code).toBe(0);
    const controller = new AbortController();
    // Ctrl+C as the resume starts: nothing runs this time, the 2 stored ERROR rows are in the table.
    const stopped = await cli(
      [...base, '--store', store],
      (text) => {
        if (text.startsWith('resuming run')) controller.abort();
      },
      controller.signal,
    );
    expect(stopped.code).toBe(1);
    expect(stopped.stdout).toContain('Errors (2):');
    expect(stopped.stderr).toContain('error [eval_interrupted]');
    expect(stopped.stderr).toContain('(add --retry-errors to redo the 2 rows stored as ERROR)');
  });
});
