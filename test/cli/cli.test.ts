// The `symphonizer` command, run as a subprocess (Node 24 runs src/cli/main.ts directly) against fixture
// chain modules on the offline simulated model. No network, no timed assertions.
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createProgress, type CliWritable } from '../../src/cli/output.ts';
import { jsonErrorPosition, parseJson } from '../../src/cli/input.ts';
import { main } from '../../src/cli/main.ts';
import { fakeKey } from '../helpers/fake-keys.ts';
import { startFakeProviderServer } from '../support/fake-provider-server.ts';

const root = resolve(import.meta.dirname, '../..');
const fixtures = 'test/cli/fixtures';

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI in a child process from the repository root. */
function cli(args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<Outcome> {
  // No provider variable of the parent's leaks in: only the ones a test gives.
  const providerVars = ['OPENAI_API_KEY', 'OPENAI_BASE_URL', 'ANTHROPIC_API_KEY', 'ANTHROPIC_BASE_URL'];
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !providerVars.includes(name) && name !== 'SYMPHONIZER_MODEL',
    ),
  );
  const childEnv: Record<string, string | undefined> = { ...inherited, NO_COLOR: '1', ...env };
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['src/cli/main.ts', ...args],
      { cwd: root, env: childEnv },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        done({ code, stdout, stderr });
      },
    );
  });
}

const topic = JSON.stringify({ topic: 'tides' });
// Each child takes a few hundred milliseconds of CPU; generous so a busy 2-core machine cannot time out.
const slow = { timeout: 60_000 };

describe.concurrent('symphonizer run', slow, () => {
  it('runs a chain and prints every output, the trace, usage, cost and the simulated notice', async () => {
    const r = await cli(['run', `${fixtures}/report-chain.ts`, '--input', topic]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('chain "report" completed');
    for (const node of ['outline', 'draft', 'review']) expect(r.stdout).toContain(`── ${node}\n`);
    expect(r.stdout).toMatch(/── outline\n\{\n {2}"title": /); // structured output as indented JSON
    expect(r.stdout).toMatch(/── draft\n\[simulated\] /);
    expect(r.stdout).toMatch(/^ {2}outline completed \(attempt 1\)/m);
    expect(r.stdout).toMatch(/tokens: \d+ in \/ \d+ out \(\d+\), 3 calls, cost \$0/);
    expect(r.stdout).toContain('simulated model');
    // Piped, not a TTY: progress comes as plain lines, no ANSI.
    expect(r.stdout).toContain('[outline] start · sim:cli-test');
    expect(r.stdout).not.toContain('\x1b[');
  });

  it('--json prints one JSON object with outputs, usage and trace', async () => {
    const r = await cli(['run', `${fixtures}/report-chain.ts`, '--input', topic, '--json']);
    expect(r.code).toBe(0);
    const parsed = JSON.parse(r.stdout) as {
      status: string;
      outputs: { outline: { title: string; points: string[] }; draft: string; review: string };
      usage: { calls: number; inputTokens: number; costUsd: number };
      trace: { key: string; status: string }[];
      simulated: boolean;
    };
    expect(parsed.status).toBe('completed');
    expect(typeof parsed.outputs.outline.title).toBe('string');
    expect(Object.keys(parsed.outputs)).toEqual(['outline', 'draft', 'review']);
    expect(parsed.usage.calls).toBe(3);
    expect(parsed.usage.inputTokens).toBeGreaterThan(0);
    expect(parsed.trace.map((t) => t.status)).toEqual(['completed', 'completed', 'completed']);
    expect(parsed.simulated).toBe(true);
  });

  it('--stream prints tokens prefixed with their node, and node start/done lines', async () => {
    const r = await cli(['run', `${fixtures}/report-chain.ts`, '--input', topic, '--stream']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('[draft] start · sim:cli-test');
    expect(r.stdout).toMatch(/^\[draft\] \[simulated\]/m); // the streamed text itself
    expect(r.stdout).toMatch(/^\[draft\] completed · \d+ tokens/m);
    expect(r.stdout).toContain('── draft (streamed above)');
    expect(r.stdout).toMatch(/── outline\n\{/); // structured nodes do not stream: printed at the end
  });

  it('--model overrides the model of every node', async () => {
    const r = await cli(['run', `${fixtures}/report-chain.ts`, '--input', topic, '--model', 'sim:other']);
    expect(r.code).toBe(0);
    for (const node of ['outline', 'draft', 'review'])
      expect(r.stdout).toContain(`[${node}] start · sim:other`);
    expect(r.stdout).not.toContain('sim:cli-test');
  });

  it('reads the input from @file.json and finds a chain by duck typing', async () => {
    const r = await cli(['run', `${fixtures}/duck-chain.ts`, '--input', `@${fixtures}/input.json`, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { chain: string }).chain).toBe('lookalike');
  });

  it('exits 1 when the chain fails: message, failing node and trace', async () => {
    const r = await cli(['run', `${fixtures}/failing-chain.ts`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'error [chain_failed]: Chain "failing" failed at node "summarize": the summary service is down',
    );
    expect(r.stderr).toContain('failed node: summarize');
    expect(r.stderr).toMatch(/^ {2}collect completed \(attempt 1\)/m);
    expect(r.stderr).toMatch(/^ {2}summarize error \(attempt 1\).*the summary service is down/m);
    expect(r.stderr).toContain('completed before the failure: collect');
  });

  it('never prints an API key, even when an error message quotes it', async () => {
    const key = fakeKey('test', '0123456789abcdefghijklmnop');
    const r = await cli(['run', `${fixtures}/leaky-chain.ts`], { OPENAI_API_KEY: key });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('upstream rejected key');
    expect(r.stdout + r.stderr).not.toContain(key);
    expect(r.stdout + r.stderr).not.toContain('0123456789abcdef');
  });
});

describe.concurrent('symphonizer run: usage errors exit 2', slow, () => {
  it('a missing module, with the path tried', async () => {
    const r = await cli(['run', `${fixtures}/nope.ts`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `error [module_not_found]: Chain module not found: ${resolve(root, fixtures, 'nope.ts')}`,
    );
    expect(r.stderr).toMatch(/^hint: /m);
  });

  it('a module without a chain, listing its exports', async () => {
    const r = await cli(['run', `${fixtures}/no-chain.ts`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error [no_chain]');
    expect(r.stderr).toContain('builder: a chain builder (call .build())');
    expect(r.stderr).toContain('helper: a function');
    expect(r.stderr).toContain('settings: an object');
    expect(r.stderr).toContain('hint: export the result of .build(): builder is a builder');
  });

  it('a module with two chains needs --export, which picks one', async () => {
    const both = await cli(['run', `${fixtures}/two-chains.ts`]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('exports 2 chains: first, second');
    const picked = await cli(['graph', `${fixtures}/two-chains.ts`, '--export', 'second']);
    expect(picked.code).toBe(0);
    expect(picked.stdout).toContain('collect --> summarize');
    const wrong = await cli(['graph', `${fixtures}/two-chains.ts`, '--export', 'third']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('has no export named "third"');
  });

  it('bad JSON in --input, with line, column and a caret', async () => {
    const r = await cli(['run', `${fixtures}/report-chain.ts`, '--input', '{"topic": "tides" "x": 1}']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'error [invalid_json]: Invalid JSON in --input at line 1, column 19 (position 18)',
    );
    expect(r.stderr).toContain(`  {"topic": "tides" "x": 1}\n  ${' '.repeat(18)}^\n`);
  });

  it('bad JSON in an @file, located on its line', async () => {
    const r = await cli(['run', `${fixtures}/report-chain.ts`, '--input', `@${fixtures}/bad-input.txt`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/error \[invalid_json\]: Invalid JSON in .*bad-input\.txt at line 3, column 36/);
  });

  it('an input failing the schema, with the zod issue paths', async () => {
    const input = JSON.stringify({ topic: '', audience: { level: 'guru' } });
    const r = await cli(['run', `${fixtures}/report-chain.ts`, '--input', input]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error [invalid_input]');
    expect(r.stderr).toMatch(/^ {2}- input\.topic: .+/m);
    expect(r.stderr).toMatch(/^ {2}- input\.audience\.level: .+/m);
    expect(r.stderr).toMatch(/^hint: /m);
  });

  it('unknown options, a bad --model and no module', async () => {
    const [unknown, model, none] = await Promise.all([
      cli(['run', `${fixtures}/report-chain.ts`, '--bogus']),
      cli(['run', `${fixtures}/report-chain.ts`, '--model', 'gpt-4']),
      cli(['run']),
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("error [invalid_argument]: Unknown option '--bogus'");
    expect(model.code).toBe(2);
    expect(model.stderr).toContain('--model must be provider:model');
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('needs a chain module');
  });
});

describe.concurrent('symphonizer run: providers are checked before anything runs', slow, () => {
  it("runs a chain on its own client's registry (a custom provider)", async () => {
    const r = await cli([
      'run',
      `${fixtures}/custom-provider-chain.ts`,
      '--input',
      '{"text":"win a free cruise"}',
      '--json',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const parsed = JSON.parse(r.stdout) as { status: string; outputs: { classify: unknown } };
    expect(parsed.status).toBe('completed');
    expect(parsed.outputs.classify).toEqual({ label: 'spam' });
  });

  it('an unknown provider exits 2 before any node starts: no output, no trace', async () => {
    const [flag, own] = await Promise.all([
      cli(['run', `${fixtures}/report-chain.ts`, '--input', topic, '--model', 'nope:x']),
      // The chain's own registry knows only "rules" and "sim": openai is unknown there.
      cli([
        'run',
        `${fixtures}/custom-provider-chain.ts`,
        '--input',
        '{"text":"hi"}',
        '--model',
        'openai:gpt-x',
      ]),
    ]);
    expect(flag.code).toBe(2);
    expect(flag.stdout).toBe('');
    expect(flag.stderr).toContain(
      'error [unknown_provider]: Unknown provider "nope" in model nope:x (nodes "outline", "draft", "review")',
    );
    expect(flag.stderr).toContain('hint: known providers: anthropic, openai, sim');
    expect(flag.stderr).not.toContain('trace');
    expect(own.code).toBe(2);
    expect(own.stdout).toBe('');
    expect(own.stderr).toContain('error [unknown_provider]: Unknown provider "openai"');
    expect(own.stderr).toContain('known providers: rules, sim');
  });

  it('a missing API key exits 2 before anything runs, naming the variable to set', async () => {
    const [openai, anthropic] = await Promise.all([
      cli(['run', `${fixtures}/report-chain.ts`, '--input', topic, '--model', 'openai:gpt-x']),
      cli([
        'run',
        `${fixtures}/report-chain.ts`,
        '--input',
        topic,
        '--model',
        'anthropic:claude-x',
        '--json',
      ]),
    ]);
    expect(openai.code).toBe(2);
    expect(openai.stdout).toBe('');
    expect(openai.stderr).toContain('error [missing_api_key]: No API key for provider "openai"');
    expect(openai.stderr).toContain('needs OPENAI_API_KEY');
    expect(openai.stderr).toMatch(/^hint: set OPENAI_API_KEY/m);
    expect(openai.stderr).not.toContain('trace');
    expect(anthropic.code).toBe(2);
    expect(anthropic.stdout).toBe('');
    expect(anthropic.stderr).toContain('needs ANTHROPIC_API_KEY');
  });

  it('with the key set (or a server of its own) the run is not refused, and runs', async () => {
    const server = await startFakeProviderServer();
    try {
      const key = fakeKey('test', 'preflight0123456789');
      const [keyed, local] = await Promise.all([
        cli(['run', `${fixtures}/report-chain.ts`, '--input', topic, '--model', 'openai:gpt-x', '--json'], {
          OPENAI_API_KEY: key,
          OPENAI_BASE_URL: server.openaiBaseURL,
        }),
        // A base URL that is not OpenAI's needs no key (as the provider itself decides).
        cli(['run', `${fixtures}/report-chain.ts`, '--input', topic, '--model', 'openai:gpt-x', '--json'], {
          OPENAI_BASE_URL: server.openaiBaseURL,
        }),
      ]);
      for (const r of [keyed, local]) {
        expect(r.stderr).not.toContain('missing_api_key');
        expect(r.code).toBe(0);
        const parsed = JSON.parse(r.stdout) as {
          status: string;
          simulated: boolean;
          usage: { calls: number };
        };
        expect(parsed.status).toBe('completed');
        expect(parsed.simulated).toBe(false);
        expect(parsed.usage.calls).toBe(3);
      }
    } finally {
      await server.close();
    }
  });
});

describe.concurrent('symphonizer: misspelt options and commands', slow, () => {
  it('a misspelt option names the nearest known one and exits 2', async () => {
    const [run, evaluate, graph, runs, compare] = await Promise.all([
      cli(['run', `${fixtures}/report-chain.ts`, '--inptu', topic]),
      cli(['eval', `${fixtures}/report-chain.ts`, '--datset', 'rows.jsonl']),
      cli(['graph', `${fixtures}/report-chain.ts`, '--fromat', 'dot']),
      cli(['runs', '--sotre', 'x.sqlite']),
      cli(['compare', 'a', 'b', '--scorr', 'correct']),
    ]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(
      "error [invalid_argument]: Unknown option '--inptu' for symphonizer run: did you mean --input?",
    );
    expect(run.stderr).toContain('hint: options: --input, --export, --model, --stream, --json, --help');
    expect(run.stderr).not.toContain('To specify a positional argument'); // not Node's parseArgs text
    expect(evaluate.code).toBe(2);
    expect(evaluate.stderr).toContain('did you mean --dataset?');
    expect(graph.code).toBe(2);
    expect(graph.stderr).toContain('did you mean --format?');
    expect(runs.code).toBe(2);
    expect(runs.stderr).toContain('did you mean --store?');
    expect(compare.code).toBe(2);
    expect(compare.stderr).toContain('did you mean --scorer?');
  });

  it('a misspelt command names the nearest one', async () => {
    const [rnu, evl, helpTopic] = await Promise.all([
      cli(['rnu']),
      cli(['evla', 'x.ts']),
      cli(['help', 'grpah']),
    ]);
    expect(rnu.code).toBe(2);
    expect(rnu.stderr).toContain('error [invalid_argument]: Unknown command "rnu": did you mean run?');
    expect(evl.code).toBe(2);
    expect(evl.stderr).toContain('did you mean eval?');
    expect(helpTopic.code).toBe(2);
    expect(helpTopic.stderr).toContain('did you mean graph?');
  });
});

describe.concurrent('symphonizer graph, help and version', slow, () => {
  it('prints Mermaid by default and DOT on request', async () => {
    const [mermaid, dot] = await Promise.all([
      cli(['graph', `${fixtures}/report-chain.ts`]),
      cli(['graph', `${fixtures}/report-chain.ts`, '--format', 'dot']),
    ]);
    expect(mermaid.code).toBe(0);
    expect(mermaid.stdout).toMatch(/^flowchart TD\n/);
    expect(mermaid.stdout).toContain('outline --> draft');
    expect(dot.code).toBe(0);
    expect(dot.stdout).toMatch(/^digraph "report" \{/);
    expect(dot.stdout).toContain('"outline" -> "review";');
  });

  it('--help, <cmd> --help and --version', async () => {
    const [help, runHelp, version, unknown] = await Promise.all([
      cli(['--help']),
      cli(['run', '--help']),
      cli(['--version']),
      cli(['frobnicate']),
    ]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: symphonizer <command>');
    expect(runHelp.stdout).toContain('Usage: symphonizer run <chain module>');
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('Unknown command "frobnicate".');
    expect(unknown.stderr).not.toContain('did you mean');
  });
});

describe('in process', () => {
  it('main() takes its streams, cwd and environment from io', async () => {
    let stdout = '';
    let stderr = '';
    const io = {
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: (s: string) => (stderr += s) },
      env: {},
      cwd: root,
    };
    expect(await main(['graph', `${fixtures}/report-chain.ts`, '--format', 'dot'], io)).toBe(0);
    expect(stdout).toContain('digraph');
    expect(await main(['graph', 'missing.ts'], { ...io, cwd: '/tmp' })).toBe(2);
    expect(stderr).toContain('/tmp/missing.ts');
  });

  it('locates JSON errors that V8 reports without a position', () => {
    expect(jsonErrorPosition('[1,]')).toBe(3);
    expect(jsonErrorPosition('{"a":')).toBe(5);
    expect(jsonErrorPosition('{"a": tru\n}')).toBe(9);
    expect(jsonErrorPosition('"\\x"')).toBe(2);
    expect(() => parseJson('{\n  "b": tru\n}', 'x.json')).toThrow(/line 2, column 11/);
    expect(parseJson(' {"a": [1, -2.5e3, true, null, "\\u00e9"]} ', 'x')).toEqual({
      a: [1, -2500, true, null, 'é'],
    });
  });

  it('redraws progress in place on a TTY', () => {
    let text = '';
    const tty: CliWritable = { write: (s: string) => (text += s), isTTY: true, columns: 100 };
    const progress = createProgress(tty, { stream: false, live: true, now: () => 0 });
    progress.onEvent({ type: 'chain-start', chain: 'c', runId: 'r', nodes: ['a', 'b'] });
    progress.onEvent({ type: 'node-start', node: 'a', attempt: 1, model: 'sim:x' });
    const usage = { inputTokens: 3, outputTokens: 4, totalTokens: 7, costUsd: 0, calls: 1, unpricedCalls: 0 };
    progress.onEvent({ type: 'node-done', node: 'a', status: 'completed', output: 'hi', usage });
    progress.finish();
    expect(text).toContain('\x1b[3F'); // back up over the 3-line block (2 nodes + total) to redraw it
    const last = text.slice(text.lastIndexOf('\x1b[3F'));
    expect(last).toContain('✓ a');
    expect(last).toContain('7 tok');
    expect(last).toContain('· b');
    expect(last).toContain('1/2 nodes · 7 tokens');
  });

  it('--stream shows concurrent streams one node at a time, each line prefixed', () => {
    let text = '';
    const progress = createProgress({ write: (s: string) => (text += s) }, { stream: true, live: false });
    const usage = { inputTokens: 1, outputTokens: 2, totalTokens: 3, costUsd: 0, calls: 1, unpricedCalls: 0 };
    progress.onEvent({ type: 'token', node: 'a', text: 'one ' });
    progress.onEvent({ type: 'token', node: 'b', text: 'uno ' }); // held: 'a' has the focus
    progress.onEvent({ type: 'token', node: 'a', text: 'two\nthree' });
    progress.onEvent({ type: 'node-done', node: 'a', status: 'completed', usage });
    progress.onEvent({ type: 'token', node: 'b', text: 'dos' }); // 'b' has the focus now: live
    progress.onEvent({ type: 'node-done', node: 'b', status: 'completed', usage });
    progress.finish();
    expect(text).toBe(
      '[a] one two\n[a] three\n[a] completed · 3 tokens\n[b] uno dos\n[b] completed · 3 tokens\n',
    );
    expect([...progress.streamed]).toEqual(['a', 'b']);
  });
});
