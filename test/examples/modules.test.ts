// Every example is a module: importing it runs nothing (no model call, no server, no work), and the ones that
// export a chain load through the `symphonizer` command (`graph`, `run`, and `eval` for the eval examples).
// Running each example directly is covered by its own test file.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.ts';
import type { CliIO } from '../../src/cli/output.ts';
import { ModelClient } from '../../src/index.ts';
import { offlineEnv, runExample, slow, type Outcome } from './run-example.ts';

const root = resolve(import.meta.dirname, '../..');
const scratch = mkdtempSync(join(tmpdir(), 'symphonizer-example-modules-'));

/** The examples that export a chain: file → export name and node names. */
const chains: Readonly<Record<string, { readonly exportName: string; readonly nodes: readonly string[] }>> = {
  'examples/research-report.ts': {
    exportName: 'report',
    nodes: ['history', 'science', 'outlook', 'outline', 'draft', 'critique', 'revise'],
  },
  'examples/eval-batch.ts': { exportName: 'triage', nodes: ['kind'] },
  'examples/eval-report.ts': { exportName: 'triage', nodes: ['kind'] },
  'examples/prompt-comparison.ts': { exportName: 'compare', nodes: ['summary', 'verdict'] },
};
const allExamples = readdirSync(join(root, 'examples'))
  .filter((name) => name.endsWith('.ts'))
  .map((name) => `examples/${name}`)
  .sort();
const withoutChain = allExamples.filter((path) => !(path in chains));

/** Runs `node <args>` from the repository root, offline; kills it after `timeoutMs`. */
function node(args: readonly string[], timeoutMs = 20_000): Promise<Outcome & { killed: boolean }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      args,
      { cwd: root, env: offlineEnv, timeout: timeoutMs, maxBuffer: 10 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        done({ code, stdout, stderr, killed: error?.killed === true });
      },
    );
  });
}

/** Runs the command in-process, collecting what it writes. */
async function cli(args: readonly string[]): Promise<Outcome> {
  let stdout = '';
  let stderr = '';
  const io: CliIO = {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    env: {},
    cwd: root,
  };
  const code = await main(args, io);
  return { code, stdout, stderr };
}

// Model calls made in this process: the examples build their clients from this same ModelClient class, and
// a spy without an implementation calls through.
const spies = (['call', 'stream', 'runner'] as const).map((method) =>
  vi.spyOn(ModelClient.prototype, method),
);
const modelCalls = (): number => spies.reduce((sum, spy) => sum + spy.mock.calls.length, 0);
beforeAll(() => {
  // The examples pick their model when imported: blank every variable that would pick a real one.
  for (const name of ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'SYMPHONIZER_MODEL']) vi.stubEnv(name, '');
});
afterEach(() => {
  for (const spy of spies) spy.mockClear();
});
afterAll(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
  rmSync(scratch, { recursive: true, force: true });
});

describe('importing an example runs nothing', () => {
  it('lists every example', () => {
    expect(allExamples).toEqual(expect.arrayContaining([...Object.keys(chains), ...withoutChain]));
    expect(withoutChain).toEqual(
      expect.arrayContaining(['examples/basic-end-to-end.ts', 'examples/chatbot-server.ts']),
    );
  });

  it('imports each example in a fresh process: it prints nothing and exits at once', slow, async () => {
    // `--import` loads the module before an empty script: the module is not the entry, as under the CLI.
    const outcomes = await Promise.all(
      allExamples.map(async (path) => ({
        path,
        ...(await node(['--import', pathToFileURL(join(root, path)).href, '--eval', ''])),
      })),
    );
    for (const { path, code, stdout, stderr, killed } of outcomes) {
      expect({ path, code, stdout, stderr, killed }).toEqual({
        path,
        code: 0,
        stdout: '',
        stderr: '',
        killed: false,
      });
    }
  });
});

describe('symphonizer graph examples/<x>.ts', () => {
  it.each(Object.entries(chains))('%s prints its graph without a model call', async (path, { nodes }) => {
    const { code, stdout, stderr } = await cli(['graph', path]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout.startsWith('flowchart TD\n')).toBe(true);
    for (const name of nodes) expect(stdout).toMatch(new RegExp(`^  ${name}\\[`, 'm'));
    // Only the graph: no banner, progress, outputs or usage of a run.
    expect(stdout).not.toMatch(/model: |done: |calls|tokens|Usage/);
    expect(modelCalls()).toBe(0);
  });

  it('the examples without a chain load but report that they have none (exit 2, nothing run)', async () => {
    for (const path of withoutChain) {
      const { code, stdout, stderr } = await cli(['graph', path]);
      expect(code).toBe(2);
      expect(stdout).toBe('');
      expect(stderr).toContain(`error [no_chain]: ${join(root, path)} exports no chain.`);
    }
    expect(modelCalls()).toBe(0);
  });

  it('prints DOT too, naming the export with --export', async () => {
    const { code, stdout } = await cli([
      'graph',
      'examples/research-report.ts',
      '--export',
      'report',
      '--format',
      'dot',
    ]);
    expect(code).toBe(0);
    expect(stdout).toContain('digraph');
    expect(stdout).toContain('"critique" -> "revise"');
    expect(modelCalls()).toBe(0);
  });
});

describe('symphonizer run examples/research-report.ts', () => {
  it('runs the report in-process on the simulated model', async () => {
    const { code, stdout, stderr } = await cli([
      'run',
      'examples/research-report.ts',
      '--input',
      '{"topic":"tides"}',
    ]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain('chain "research-report" completed');
    expect(stdout).toContain('── revise\n[simulated]');
    expect(stdout).toMatch(/7 calls, cost \$0/);
    expect(modelCalls()).toBeGreaterThan(0); // the spy sees the examples' clients
  });

  it('runs it as a subprocess, offline (no key in the environment)', slow, async () => {
    const { code, stdout, stderr } = await node([
      'src/cli/main.ts',
      'run',
      'examples/research-report.ts',
      '--input',
      '{"topic":"volcanoes"}',
    ]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain('chain "research-report" started: 7 nodes');
    expect(stdout).toContain('[history] start · sim:demo');
    expect(stdout).toContain('chain "research-report" completed');
    expect(stdout).toMatch(/^ {2}revise completed \(attempt 1\)/m);
    expect(stdout).toMatch(/tokens: [\d,]+ in \/ [\d,]+ out \([\d,]+\), 7 calls, cost \$0/);
  });

  it('refuses to run without an input the chain accepts, naming the field (exit 2)', async () => {
    const { code, stderr } = await cli(['run', 'examples/research-report.ts']);
    expect(code).toBe(2);
    expect(stderr).toContain('error [missing_input]');
    expect(stderr).toContain('input.topic');
    expect(modelCalls()).toBe(0);
  });
});

describe('symphonizer eval on the eval examples', () => {
  const store = join(scratch, 'runs.sqlite');

  it('eval-batch.ts: its label scorer over tickets.jsonl', async () => {
    const { code, stdout } = await cli([
      'eval',
      'examples/eval-batch.ts',
      '--dataset',
      'examples/data/tickets.jsonl',
      '--store',
      store,
      '--run',
      'batch',
    ]);
    // The malformed JSON line could not be read: it is not evaluated, so the command exits 1.
    expect(code).toBe(1);
    expect(stdout).toContain(
      'run "batch" · chain "ticket-triage" · 21 rows run · 1 row could not be read · 1 invalid row',
    );
    expect(stdout).toMatch(/^default +21 +\d+ +\d+ +2 +[\d.]+% \[[\d.]+, [\d.]+\] +[\d.]+ \[/m);
    expect(stdout).toContain('label (mean, 95% CI)');
  });

  it('eval-report.ts: both variants (from --variants on the same module), label and judge scores', async () => {
    const { code, stdout } = await cli([
      'eval',
      'examples/eval-report.ts',
      '--dataset',
      'examples/data/tickets.jsonl',
      '--variants',
      'examples/eval-report.ts',
      '--store',
      store,
      '--run',
      'report',
    ]);
    expect(code).toBe(1);
    expect(stdout).toContain(
      'run "report" · chain "ticket-triage" · 42 rows run · 1 row could not be read · 1 invalid row',
    );
    expect(stdout).toMatch(/^A: agent template +21 +\d+ +\d+ +2 /m);
    expect(stdout).toMatch(/^B: terse template +21 +\d+ +\d+ +2 /m);
    expect(stdout).toContain('judge (mean, 95% CI)');
    expect(stdout).toMatch(/^A: agent template +B: terse template +label +19 /m);
  });

  it('prompt-comparison.ts: variants A and B over news.jsonl, scored by the judge', async () => {
    const { code, stdout } = await cli([
      'eval',
      'examples/prompt-comparison.ts',
      '--dataset',
      'examples/data/news.jsonl',
      '--variants',
      'examples/prompt-comparison.ts',
      '--store',
      store,
    ]);
    expect(code).toBe(0);
    expect(stdout).toContain('run "prompt-comparison" · chain "prompt-comparison" · 10 rows run');
    expect(stdout).toMatch(/^A +5 +\d +\d +0 /m);
    expect(stdout).toMatch(/^B +5 +\d +\d +0 /m);
    expect(stdout).toMatch(/^A +B +verdict +5 /m);
  });
});

describe('examples run directly', () => {
  it('basic-end-to-end.ts runs the given number of diamonds', slow, async () => {
    const { code, stdout, stderr } = await runExample('examples/basic-end-to-end.ts', ['30']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain('Ran 30 diamond compositions');
    expect(stdout).toContain('completed: 30, failed: 0, cancelled: 0');
    const first = /^ {2}results of the first one: (.*)$/m.exec(stdout)?.[1] ?? '';
    for (const result of ["A: 'A'", "B: 'B(A)'", "C: 'C(A)'", "D: 'D(B+C)'"]) expect(first).toContain(result);
  });

  it('basic-end-to-end.ts refuses a count that is not a positive integer (exit 2)', slow, async () => {
    const { code, stdout, stderr } = await runExample('examples/basic-end-to-end.ts', ['0']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain('count must be a positive integer, got "0"');
  });

  it('model-calls.ts makes its three kinds of call offline', slow, async () => {
    const { code, stdout, stderr } = await runExample('examples/model-calls.ts');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^text \(simulated model\): \[simulated\]/);
    expect(stdout).toMatch(/^typed output: .+ → \d steps$/m);
    expect(stdout).toContain('chain: completed');
    expect(stdout).toMatch(/^usage: \{.*"calls":5,/m); // hello, idea, and the three nodes
  });
});
