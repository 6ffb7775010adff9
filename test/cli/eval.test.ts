// `symphonizer eval`, `runs` and `compare`, run as subprocesses against a fixture chain on the offline
// simulated model, each test with its own temporary run store. No network, no timed assertions.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createEvalProgress, isScorer, isVariant, shellQuote } from '../../src/cli/eval-support.ts';
import type { CliWritable } from '../../src/cli/output.ts';
import type { EvalProgress } from '../../src/eval/batch.ts';
import { RunStore } from '../../src/eval/store.ts';

const root = resolve(import.meta.dirname, '../..');
const fixtures = 'test/cli/fixtures';
const chainModule = `${fixtures}/eval-chain.ts`;
const dataset = `${fixtures}/eval-dataset.jsonl`;

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI in a child process from the repository root. */
function cli(args: readonly string[]): Promise<Outcome> {
  // No provider variable of the parent's leaks in.
  const dropped = [
    'SYMPHONIZER_MODEL',
    'OPENAI_API_KEY',
    'OPENAI_BASE_URL',
    'ANTHROPIC_API_KEY',
    'ANTHROPIC_BASE_URL',
  ];
  const env: Record<string, string | undefined> = {
    ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !dropped.includes(name))),
    NO_COLOR: '1',
  };
  return new Promise((done) => {
    execFile(process.execPath, ['src/cli/main.ts', ...args], { cwd: root, env }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      done({ code, stdout, stderr });
    });
  });
}

const dirs: string[] = [];
/** A fresh temporary directory, removed after the tests. */
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'symphonizer-eval-cli-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

// Each child takes a few hundred milliseconds of CPU; generous so a busy 2-core machine cannot time out.
const slow = { timeout: 120_000 };

interface EvalJson {
  run: string;
  stopped: string | null;
  done: number;
  skipped: number;
  rowErrors: number;
  unreadRows: number;
  summary: {
    scorers: string[];
    variants: { variant: string; rows: number; pass: number; fail: number; error: number; cached: number }[];
  };
  cache: { hits: number; misses: number; writes: number } | null;
}

describe.concurrent('symphonizer eval, runs and compare', slow, () => {
  it('evaluates, writes an HTML report, resumes, lists the run and compares two runs', async () => {
    const store = join(tempDir(), 'runs.sqlite');
    const report = join(tempDir(), 'out', 'report.html');

    const first = await cli([
      'eval',
      chainModule,
      '--dataset',
      dataset,
      '--store',
      store,
      '--report',
      report,
    ]);
    expect(first.code).toBe(0);
    // The chain module's `scorers` export is used; the table has a column per scorer.
    expect(first.stdout).toMatch(
      /^Variant +Rows +Pass +Fail +Error +Pass rate \(95% CI\) +correct \(mean, 95% CI\)/m,
    );
    expect(first.stdout).toContain('labelled (mean, 95% CI)');
    expect(first.stdout).toMatch(/^default +6 /m);
    // r4 was read but fails the input schema: an invalid row, not one that could not be read (exit 0).
    expect(first.stdout).toContain('6 rows run · 1 invalid row · ');
    expect(first.stdout).not.toContain('could not be read');
    // The bad row (empty text) is an ERROR row, listed with its line, and does not stop the batch.
    expect(first.stdout).toMatch(/^default +r4 +4 +invalid_row +line 4: /m);
    // Piped: plain progress lines on stderr, never ANSI codes.
    expect(first.stderr).toMatch(/^eval "spam": 6\/6 rows \(100%\) · .* · \$0$/m);
    expect(first.stdout + first.stderr).not.toContain('\x1b[');
    expect(first.stderr).toContain(`report written to ${report}`);
    expect(readFileSync(report, 'utf8')).toContain('<table');

    const again = await cli(['eval', chainModule, '--dataset', dataset, '--store', store, '--json']);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('resuming run "spam": 6 rows already done');
    const resumed = JSON.parse(again.stdout) as EvalJson;
    expect(resumed).toMatchObject({ run: 'spam', stopped: null, done: 0, skipped: 6 });
    expect(resumed.summary.variants[0]).toMatchObject({ variant: 'default', rows: 6, error: 1 });

    const other = await cli([
      'eval',
      chainModule,
      '--dataset',
      dataset,
      '--store',
      store,
      '--run',
      'beta',
      '--model',
      'sim:beta',
    ]);
    expect(other.code).toBe(0);
    expect(other.stdout).toMatch(/^sim:beta +6 /m); // --model is one variant named after the model

    const runs = await cli(['runs', '--store', store]);
    expect(runs.code).toBe(0);
    expect(runs.stdout).toMatch(/^Run +Chain +Variants +Rows +Pass +Fail +Error +Tokens +Cost +Updated$/m);
    expect(runs.stdout).toMatch(/^spam +spam +default +6 /m);
    expect(runs.stdout).toMatch(/^beta +spam +sim:beta +6 /m);
    expect(runs.stdout).toContain('2 runs in');
    const listed = JSON.parse((await cli(['runs', '--store', store, '--json'])).stdout) as {
      runs: { name: string; counts: { total: number; error: number } }[];
    };
    expect(listed.runs.map((r) => r.name).sort()).toEqual(['beta', 'spam']);
    expect(listed.runs.find((r) => r.name === 'spam')?.counts).toMatchObject({ total: 6, error: 1 });

    const compared = await cli(['compare', 'spam', 'beta', '--store', store]);
    expect(compared.code).toBe(0);
    expect(compared.stdout).toContain('A: run "spam" (variant default) · 6 rows');
    expect(compared.stdout).toContain('scorer: correct'); // the first scorer
    expect(compared.stdout).toMatch(/^A +B +Scorer +Pairs +A wins +B wins +Ties +Mean diff/m);
    expect(compared.stdout).toMatch(/^spam +beta +correct +5 /m); // the error row is not paired
    expect(compared.stdout).toMatch(
      /^A wins \d+, B wins \d+, ties \d+ over 5 paired rows \(2 unpaired\); mean difference \(A − B\) \S+; p = [\d.]+ \(exact sign test\)/m,
    );
    const json = JSON.parse(
      (await cli(['compare', 'spam', 'beta', '--store', store, '--scorer', 'labelled', '--json'])).stdout,
    ) as {
      scorer: string;
      comparison: { wins: number; losses: number; ties: number; n: number; pValue: number };
    };
    expect(json.scorer).toBe('labelled');
    const c = json.comparison;
    expect(c.wins + c.losses + c.ties).toBe(c.n);
    expect(c.pValue).toBeGreaterThan(0);
    expect(c.pValue).toBeLessThanOrEqual(1);

    const badScorer = await cli(['compare', 'spam', 'beta', '--store', store, '--scorer', 'nope']);
    expect(badScorer.code).toBe(2);
    expect(badScorer.stderr).toContain('error [unknown_scorer]');
    expect(badScorer.stderr).toContain('hint: scorers of both sides: correct, labelled');
    const badRun = await cli(['compare', 'spam', 'gamma', '--store', store]);
    expect(badRun.code).toBe(2);
    expect(badRun.stderr).toContain('error [unknown_run]: No run named "gamma"');
  });

  it('variants and scorers from modules; compare two variants of one run; a Markdown report', async () => {
    const dir = tempDir();
    const store = join(dir, 'runs.sqlite');
    const report = join(dir, 'report.md');
    const r = await cli([
      'eval',
      chainModule,
      '--dataset',
      dataset,
      '--store',
      store,
      '--variants',
      `${fixtures}/eval-variants.ts`,
      '--scorers',
      `${fixtures}/eval-scorers.ts`,
      '--run',
      'ab',
      '--report',
      report,
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('isHam (mean, 95% CI)');
    expect(r.stdout).not.toContain('correct (mean'); // --scorers replaces the chain module's scorers
    expect(r.stdout).toMatch(/^alpha +6 /m);
    expect(r.stdout).toMatch(/^beta +6 /m);
    expect(r.stdout).toMatch(/^alpha +beta +isHam +5 /m); // variants are compared in the table too
    const md = readFileSync(report, 'utf8');
    expect(md).toContain('# Eval report: ab (spam)');
    expect(md).toContain('| Variant | Rows | Pass |');

    const compared = await cli(['compare', 'ab', '--variant', 'alpha,beta', '--store', store]);
    expect(compared.code).toBe(0);
    expect(compared.stdout).toContain('A: variant "alpha" of run "ab" · 6 rows');
    expect(compared.stdout).toContain('scorer: isHam');
    expect(compared.stdout).toMatch(/^A wins \d+, B wins \d+, ties \d+ over 5 paired rows/m);

    const one = await cli(['compare', 'ab', '--store', store]);
    expect(one.code).toBe(2);
    expect(one.stderr).toContain(
      'hint: symphonizer compare ab --variant <a>,<b> (its variants: alpha, beta)',
    );
  });

  it('--cache records answers, and --cache-mode read-only replays them', async () => {
    const dir = tempDir();
    const store = join(dir, 'runs.sqlite');
    const cache = join(dir, 'cache.sqlite');
    const base = ['eval', chainModule, '--dataset', dataset, '--store', store, '--cache', cache, '--json'];
    const recorded = await cli([...base, '--run', 'record']);
    expect(recorded.code).toBe(0);
    const rec = JSON.parse(recorded.stdout) as EvalJson;
    expect(rec.cache).toEqual({ hits: 0, misses: 5, writes: 5 }); // 5 valid rows, one call each

    const replayed = await cli([...base, '--run', 'replay', '--cache-mode', 'read-only']);
    expect(replayed.code).toBe(0);
    const rep = JSON.parse(replayed.stdout) as EvalJson;
    expect(rep.cache).toEqual({ hits: 5, misses: 0, writes: 0 });
    const [recordedRows, replayedRows] = [rec, rep].map((x) => x.summary.variants[0]);
    expect(replayedRows).toMatchObject({ cached: 5, error: 1 }); // only the bad row is an error
    expect(replayedRows?.pass).toBe(recordedRows?.pass);

    // Read-only with nothing recorded: every call is a miss, each an ERROR row; still a completed batch.
    const empty = await cli([
      ...base.slice(0, -3),
      '--cache',
      join(dir, 'empty.sqlite'),
      '--cache-mode',
      'read-only',
      '--run',
      'cold',
    ]);
    expect(empty.code).toBe(0);
    expect(empty.stdout).toMatch(/^default +6 +0 +0 +6 /m);
    expect(empty.stdout).toContain('cache_miss');
    expect(empty.stderr).toContain('cache (read-only): 0 hits, 5 misses, 0 answers stored');
  });

  it('usage errors exit 2 with a code and a hint', async () => {
    const store = join(tempDir(), 'runs.sqlite');
    const [missing, noDataset, badReport, badConcurrency, badMode, noScorers, bothModels, noStore] =
      await Promise.all([
        cli(['eval', chainModule, '--dataset', `${fixtures}/nope.jsonl`, '--store', store]),
        cli(['eval', chainModule, '--store', store]),
        cli(['eval', chainModule, '--dataset', dataset, '--report', 'out.pdf']),
        cli(['eval', chainModule, '--dataset', dataset, '--concurrency', '0']),
        cli(['eval', chainModule, '--dataset', dataset, '--cache-mode', 'sometimes']),
        cli(['eval', chainModule, '--dataset', dataset, '--scorers', `${fixtures}/report-chain.ts`]),
        cli([
          'eval',
          chainModule,
          '--dataset',
          dataset,
          '--model',
          'sim:x',
          '--variants',
          `${fixtures}/eval-variants.ts`,
        ]),
        cli(['runs', '--store', join(tempDir(), 'none.sqlite')]),
      ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(
      `error [dataset_not_found]: Dataset not found: ${resolve(root, fixtures, 'nope.jsonl')}`,
    );
    expect(missing.stderr).toMatch(/^hint: /m);
    expect(noDataset.code).toBe(2);
    expect(noDataset.stderr).toContain('error [invalid_argument]: symphonizer eval needs --dataset <file>.');
    expect(badReport.code).toBe(2);
    expect(badReport.stderr).toContain('--report must end in .html or .md');
    expect(badConcurrency.code).toBe(2);
    expect(badConcurrency.stderr).toContain('--concurrency must be an integer >= 1');
    expect(badMode.code).toBe(2);
    expect(badMode.stderr).toContain('--cache-mode must be read-write, read-only, off');
    expect(noScorers.code).toBe(2);
    expect(noScorers.stderr).toContain('error [no_scorers]');
    expect(noScorers.stderr).toContain('  report: a chain');
    expect(bothModels.code).toBe(2);
    expect(bothModels.stderr).toContain('--model and --variants cannot be combined');
    expect(noStore.code).toBe(2);
    expect(noStore.stderr).toContain('error [store_not_found]');
  });

  it('rows that could not be read: stored apart from real ids, counted, and the command exits 1', async () => {
    const dir = tempDir();
    const store = join(dir, 'runs.sqlite');
    // Line 3 is a malformed record; the row after it has the real id "3", which it must not lose.
    const collide = join(dir, 'collide.csv');
    writeFileSync(collide, 'id,text\n1,win a free cruise now\n2,"lunch at noon?"x\n3,cheap pills\n');
    // An unclosed quote at line 3: one row that could not be read; every later line is still a row.
    const unclosed = join(dir, 'unclosed.csv');
    const lines = ['id,text', 'a1,lunch at noon?', 'a2,"never closed'];
    for (let i = 3; i <= 40; i++) lines.push(`a${i},minutes of meeting ${i}`);
    writeFileSync(unclosed, `${lines.join('\n')}\n`);
    const scorersModule = `${fixtures}/eval-scorers.ts`;
    const [text, json] = await Promise.all([
      cli(['eval', chainModule, '--dataset', collide, '--store', store, '--scorers', scorersModule]),
      cli([
        'eval',
        chainModule,
        '--dataset',
        unclosed,
        '--store',
        store,
        '--run',
        'unclosed',
        '--scorers',
        scorersModule,
        '--json',
      ]),
    ]);

    expect(text.code).toBe(1);
    expect(text.stdout).toContain('3 rows run · 1 row could not be read · ');
    // Both are stored: the unreadable one under its reserved id, the real "3" ran (it passed or failed).
    expect(text.stdout).toMatch(/^default +3 +\d +\d +1 /m);
    expect(text.stdout).toMatch(/^default +!line:3 +3 +invalid_row +line 3: Unexpected character "x"/m);
    expect(text.stderr).toContain(
      `error [unread_rows]: 1 row of ${collide} could not be read and was not evaluated: it is stored as an ERROR row (invalid_row) with the id !line:<its line>.`,
    );
    expect(text.stderr).toMatch(/^hint: fix the lines listed as invalid_row/m);

    expect(json.code).toBe(1);
    const parsed = JSON.parse(json.stdout) as EvalJson;
    expect(parsed).toMatchObject({ stopped: null, done: 40, rowErrors: 1, unreadRows: 1 });
    expect(parsed.summary.variants[0]).toMatchObject({ rows: 40, error: 1 });
    expect(json.stderr).toContain('error [unread_rows]: 1 row of');

    // A resume reads the file again: the unreadable row still counts, so the command still exits 1.
    const again = await cli(['eval', chainModule, '--dataset', collide, '--store', store, '--json']);
    expect(again.code).toBe(1);
    expect(JSON.parse(again.stdout)).toMatchObject({ done: 0, skipped: 3, unreadRows: 1 });
  });

  it("scores rows through the chain's own client (a custom provider), not as unknown_provider", async () => {
    const store = join(tempDir(), 'runs.sqlite');
    const module = `${fixtures}/custom-provider-chain.ts`;
    const [plain, capped] = await Promise.all([
      cli(['eval', module, '--dataset', dataset, '--store', store, '--json']),
      // A cost ceiling gives the batch a budget of its own, on the chain client's registry.
      cli([
        'eval',
        module,
        '--dataset',
        dataset,
        '--store',
        store,
        '--run',
        'capped',
        '--max-cost',
        '1',
        '--json',
      ]),
    ]);
    for (const r of [plain, capped]) {
      expect(r.code).toBe(0);
      expect(r.stdout + r.stderr).not.toContain('unknown_provider');
      const parsed = JSON.parse(r.stdout) as EvalJson;
      expect(parsed.stopped).toBeNull();
      // Every readable row is classified right by the keyword provider; r4 fails the input schema.
      expect(parsed.summary.variants[0]).toMatchObject({ rows: 6, pass: 5, fail: 0, error: 1 });
      expect(parsed.rowErrors).toBe(1);
      expect(parsed.unreadRows).toBe(0);
    }
  });

  it('an unknown provider or a missing key exits 2 before the store is opened', async () => {
    const dir = tempDir();
    const store = join(dir, 'runs.sqlite');
    const refused = join(dir, 'refused.sqlite');
    const [unknown, keyless, variant] = await Promise.all([
      cli(['eval', chainModule, '--dataset', dataset, '--store', refused, '--model', 'nope:x']),
      cli(['eval', chainModule, '--dataset', dataset, '--store', refused, '--model', 'openai:gpt-x']),
      cli([
        'eval',
        `${fixtures}/custom-provider-chain.ts`,
        '--dataset',
        dataset,
        '--store',
        store,
        '--model',
        'sim:a',
      ]),
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toContain(
      'error [unknown_provider]: Unknown provider "nope" in model nope:x (variant "nope:x": node "classify")',
    );
    expect(unknown.stderr).toContain('known providers: anthropic, openai, sim');
    expect(keyless.code).toBe(2);
    expect(keyless.stdout).toBe('');
    expect(keyless.stderr).toContain('error [missing_api_key]');
    expect(keyless.stderr).toContain('needs OPENAI_API_KEY');
    expect(keyless.stderr).not.toContain('eval "spam"'); // no progress: no row started
    expect(existsSync(refused)).toBe(false);
    // sim is registered on every registry, the chain's own too: this one runs (and creates the store).
    expect(variant.code).toBe(0);
    expect(existsSync(store)).toBe(true);
  });

  it('a run leased by another live process exits 1 naming the holder; --wait waits for it, then runs', async () => {
    const store = join(tempDir(), 'runs.sqlite');
    const holder = RunStore.open(store);
    try {
      const lease = holder.acquireLease('spam'); // this test process is the live holder
      const refused = await cli(['eval', chainModule, '--dataset', dataset, '--store', store]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`error [run_leased]: Run "spam" is being run by ${lease.holder}`);
      expect(refused.stderr).toContain(`pid ${process.pid}`);
      expect(refused.stderr).toMatch(/^hint: .*--wait/m);
      expect(holder.countRows('spam').total).toBe(0);
      expect(holder.lease('spam')?.holder).toBe(lease.holder);

      const waiting = cli(['eval', chainModule, '--dataset', dataset, '--store', store, '--wait', '--json']);
      // The command records the run just before evaluate() asks for the lease: release a moment after that.
      holder.deleteRun('spam');
      while (holder.run('spam') === undefined) await new Promise((resolve) => setTimeout(resolve, 20));
      await new Promise((resolve) => setTimeout(resolve, 300));
      holder.releaseLease('spam', lease.holder);
      const waited = await waiting;
      expect(waited.code).toBe(0);
      expect(waited.stderr).toContain(`waiting for run "spam": it is being run by ${lease.holder}`);
      expect(JSON.parse(waited.stdout)).toMatchObject({ run: 'spam', done: 6, skipped: 0 });
      expect(holder.lease('spam')).toBeUndefined();
    } finally {
      holder.close();
    }
  });

  it('help texts', async () => {
    const [main, evalHelp, runsHelp, compareHelp] = await Promise.all([
      cli(['--help']),
      cli(['eval', '--help']),
      cli(['help', 'runs']),
      cli(['compare', '-h']),
    ]);
    expect(main.stdout).toContain('eval <chain module>');
    expect(evalHelp.code).toBe(0);
    expect(evalHelp.stdout).toContain('Usage: symphonizer eval <chain module> --dataset <file>');
    expect(evalHelp.stdout).toContain('Exit codes: 0 the batch completed');
    expect(evalHelp.stdout).toContain('--wait');
    expect(evalHelp.stdout).toContain('run_leased');
    expect(runsHelp.stdout).toContain('Usage: symphonizer runs');
    expect(compareHelp.stdout).toContain('Usage: symphonizer compare <run A> <run B>');
  });
});

describe('eval progress and helpers (in process)', () => {
  const progress = (done: number, extra: Partial<EvalProgress> = {}): EvalProgress => ({
    run: 'r',
    done,
    total: 20,
    skipped: 0,
    pass: done,
    fail: 0,
    errors: 0,
    tokens: done * 100,
    costUsd: done * 0.001,
    rate: 2,
    etaMs: (20 - done) * 500,
    ...extra,
  });

  it('piped: a line every 10% (or every second), and always the last state', () => {
    let text = '';
    const out: CliWritable = { write: (s: string) => (text += s) };
    const clock = 0; // the clock never moves: only the 10% steps print
    const view = createEvalProgress(out, { live: false, now: () => clock });
    for (let done = 1; done <= 19; done++) view.update(progress(done));
    view.finish();
    const lines = text.trimEnd().split('\n');
    // The first update, then each 10% step (2, 4, ... 18 of 20), then the last state (19) at finish.
    expect(lines).toHaveLength(11);
    expect(lines[0]).toBe(
      'eval "r": 1/20 rows (5%) · 2.0 rows/s · ETA 9.5 s · 0 fail · 0 errors · 100 tokens · $0.001000',
    );
    expect(lines.at(-1)).toContain('19/20 rows (95%)');
    expect(text).not.toContain('\x1b[');
  });

  it('on a TTY: one bar redrawn in place, cut to the terminal width', () => {
    let text = '';
    const tty: CliWritable = { write: (s: string) => (text += s), isTTY: true, columns: 200 };
    let clock = 0;
    const view = createEvalProgress(tty, { live: true, now: () => clock });
    view.update(progress(5, { errors: 1, fail: 2 }));
    clock += 1000;
    view.update(progress(10));
    view.finish();
    expect(text.startsWith('\r\x1b[2K[')).toBe(true);
    const last = text.slice(text.lastIndexOf('\r\x1b[2K') + 5);
    expect(last).toBe(
      `[${'█'.repeat(10)}${'░'.repeat(10)}] 10/20 rows · 2.0/s · ETA 5.0 s · 0 fail · 0 errors · 1,000 tok · $0.0100\n`,
    );
    expect(text).toContain('5/20 rows · 2.0/s · ETA 7.5 s · 2 fail · 1 error');

    let narrow = '';
    const small = createEvalProgress(
      { write: (s: string) => (narrow += s), isTTY: true, columns: 40 },
      { live: true, now: () => 0 },
    );
    small.update(progress(1));
    small.finish();
    expect(narrow.replace('\r\x1b[2K', '').trimEnd()).toHaveLength(39);
  });

  it('finds scorers and variants by shape, and quotes resume commands', () => {
    expect(isScorer({ name: 'x', score: () => ({ score: 1 }) })).toBe(true);
    expect(isScorer({ name: 'x' })).toBe(false);
    expect(isVariant({ name: 'a', model: 'sim:a' })).toBe(true);
    expect(isVariant({ name: 'a', overrides: { n: { model: 'sim:b' } } })).toBe(true);
    expect(isVariant({ name: 'x', score: () => ({ score: 1 }) })).toBe(false);
    expect(isVariant({ name: 'a', model: 3 })).toBe(false);
    expect(shellQuote('./chains/a.ts')).toBe('./chains/a.ts');
    expect(shellQuote("it's here")).toBe(`'it'\\''s here'`);
  });
});
